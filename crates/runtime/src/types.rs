//! Value types every service parses the same way at its edge.

use std::fmt;

/// An email address, normalised (trimmed, lower-cased). Two addresses are the same person only
/// when their normalised forms are equal (rule R12).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let email = raw.trim().to_lowercase();
        if email.is_empty() {
            return Err("is required".into());
        }
        if email.len() > 254 {
            return Err("is longer than 254 characters".into());
        }
        let Some((local, domain)) = email.rsplit_once('@') else {
            return Err("is not an email address (no @)".into());
        };
        let valid_domain = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && domain
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        if local.is_empty() || local.len() > 64 || local.contains('@') {
            return Err("is not an email address (bad local part)".into());
        }
        if !valid_domain {
            return Err("is not an email address (bad domain)".into());
        }
        if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("is not an email address (contains spaces)".into());
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

// Emails stay out of logs: Debug shows only the domain.
impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let domain = self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
        write!(f, "Email(***@{domain})")
    }
}

/// Parses a resource id (a UUID in canonical lower-case form).
pub fn parse_id(raw: &str) -> Result<String, String> {
    let trimmed = raw.trim();
    let key = parse_id_key(trimmed)?;
    // Ids are nearly always given as the services write them: copy those as they are.
    let canonical = trimmed.len() == 36
        && trimmed.as_bytes()[8] == b'-'
        && !trimmed.bytes().any(|b| b.is_ascii_uppercase());
    Ok(if canonical {
        trimmed.to_string()
    } else {
        id_of_key(key)
    })
}

/// Checks a resource id like [`parse_id`] and returns only its 128-bit value, a cheap key
/// for [`IdMap`] that needs no allocation; [`id_of_key`] spells it back.
pub fn parse_id_key(raw: &str) -> Result<u128, String> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err("is required".into());
    }
    uuid::Uuid::parse_str(trimmed)
        .map(|uuid| uuid.as_u128())
        .map_err(|_| format!("`{}` is not a valid id (a UUID)", truncate(trimmed, 64)))
}

/// The canonical spelling (lower-case, hyphenated) of the id whose key [`parse_id_key`] gave.
pub fn id_of_key(key: u128) -> String {
    uuid::Uuid::from_u128(key).hyphenated().to_string()
}

/// The map key of a stored id: its UUID value (ids are checked UUIDs when written; anything
/// else, never expected, still gets a stable key).
pub fn id_key(id: &str) -> u128 {
    match uuid::Uuid::try_parse(id) {
        Ok(uuid) => uuid.as_u128(),
        Err(_) => {
            use std::hash::{Hash, Hasher};
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            id.hash(&mut hasher);
            u128::from(hasher.finish()) << 64
        }
    }
}

/// Hashes a UUID key with one multiply: the ids are made by the services (never chosen by a
/// caller), so SipHash's protection is not needed where a request looks up hundreds of them.
#[derive(Debug, Default, Clone, Copy)]
pub struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_u128(&mut self, value: u128) {
        let folded = (value as u64) ^ ((value >> 64) as u64).rotate_left(32);
        self.0 = folded.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A map keyed by id value ([`id_key`], [`parse_id_key`]).
pub type IdMap<V> = std::collections::HashMap<u128, V, std::hash::BuildHasherDefault<IdHasher>>;
/// A set of id values.
pub type IdSet = std::collections::HashSet<u128, std::hash::BuildHasherDefault<IdHasher>>;

/// A new time-ordered id (UUID v7), each one greater than the last made by this process.
pub fn new_id() -> String {
    // The uuid crate asks the OS for every id's random bits, a system call each; a request
    // makes ids by the dozen, so they come from the thread-local generator instead.
    static LAST: std::sync::Mutex<u128> = std::sync::Mutex::new(0);
    let millis = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or_default();
    let random: [u8; 10] = rand::random();
    let mut id = uuid::Builder::from_unix_timestamp_millis(millis, &random)
        .into_uuid()
        .as_u128();
    let mut last = LAST.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if id <= *last {
        // Same millisecond (or a clock step back): count on from the last one.
        id = *last + 1;
    }
    *last = id;
    drop(last);
    uuid::Uuid::from_u128(id).hyphenated().to_string()
}

/// A required human-readable name: trimmed, 1..=max characters.
pub fn parse_name(raw: &str, max: usize) -> Result<String, String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err("is required".into());
    }
    if name.chars().count() > max {
        return Err(format!("is longer than {max} characters"));
    }
    if name.chars().any(char::is_control) {
        return Err("contains control characters".into());
    }
    Ok(name.to_string())
}

/// Cuts user input for inclusion in an error message.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let cut: String = text.chars().take(max).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_lower_cased() {
        assert_eq!(
            Email::parse("  Jane.Doe@School.Example.ORG ")
                .unwrap()
                .as_str(),
            "jane.doe@school.example.org"
        );
    }

    #[test]
    fn different_addresses_stay_different_people() {
        assert_ne!(
            Email::parse("jane@school.org").unwrap(),
            Email::parse("jane.doe@school.org").unwrap()
        );
    }

    #[test]
    fn malformed_emails_are_refused() {
        for bad in [
            "",
            "jane",
            "@school.org",
            "jane@",
            "jane@school",
            "ja ne@school.org",
            "jane@.org",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn debug_output_hides_the_address() {
        let email = Email::parse("jane@school.org").unwrap();
        assert!(!format!("{email:?}").contains("jane"));
    }

    #[test]
    fn ids_must_be_uuids() {
        assert!(parse_id("not-an-id").is_err());
        assert!(parse_id("").is_err());
        assert_eq!(
            parse_id("7F3C2A10-0000-4000-8000-000000000001").unwrap(),
            "7f3c2a10-0000-4000-8000-000000000001"
        );
        // Every spelling a UUID parser takes comes out in the one canonical form.
        for spelling in [
            " 7f3c2a10-0000-4000-8000-000000000001 ",
            "7f3c2a10000040008000000000000001",
            "{7f3c2a10-0000-4000-8000-000000000001}",
            "urn:uuid:7f3c2a10-0000-4000-8000-000000000001",
        ] {
            assert_eq!(
                parse_id(spelling).unwrap(),
                "7f3c2a10-0000-4000-8000-000000000001",
                "{spelling}"
            );
        }
    }

    #[test]
    fn new_ids_are_version_7_uuids_each_greater_than_the_last() {
        let ids: Vec<String> = (0..1_000).map(|_| new_id()).collect();
        for pair in ids.windows(2) {
            assert!(pair[0] < pair[1], "{} then {}", pair[0], pair[1]);
        }
        let parsed = uuid::Uuid::parse_str(&ids[0]).unwrap();
        assert_eq!(parsed.get_version_num(), 7);
        assert_eq!(parsed.get_variant(), uuid::Variant::RFC4122);
        let (seconds, _) = parsed.get_timestamp().unwrap().to_unix();
        let now = chrono::Utc::now().timestamp().unsigned_abs();
        assert!(
            now.abs_diff(seconds) < 5,
            "timestamp {seconds} is not now ({now})"
        );
    }

    #[test]
    fn an_id_key_is_its_uuid_value_whatever_the_case() {
        let key = parse_id_key(" 7F3C2A10-0000-4000-8000-000000000001").unwrap();
        let id = id_of_key(key);
        assert_eq!(id, "7f3c2a10-0000-4000-8000-000000000001");
        assert_eq!(id_key(&id), key);
        assert_ne!(id_key("7f3c2a10-0000-4000-8000-000000000002"), key);
        let mut map = IdMap::default();
        map.insert(key, "trust");
        assert_eq!(map.get(&id_key(&id)), Some(&"trust"));
    }
}
