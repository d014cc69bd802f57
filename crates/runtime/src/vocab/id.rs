//! Typed resource ids: one generic type, [`Id`], and a marker per kind of resource, so a
//! trust id cannot be passed where a school id is expected.
//!
//! Every id is a UUID. It is parsed once, at the edge, from any spelling a UUID parser
//! accepts, and always written back in the canonical lower-case hyphenated form, which is how
//! the services store ids (as text) and answer with them.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::str::FromStr;

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::{Database, Decode, Encode, Type};
use uuid::Uuid;

use super::text::truncate;

/// The kinds of resource an [`Id`] names. Markers only: never constructed.
pub mod kind {
    #[derive(Debug)]
    pub enum Trust {}
    #[derive(Debug)]
    pub enum School {}
    #[derive(Debug)]
    pub enum Staff {}
    #[derive(Debug)]
    pub enum Account {}
    #[derive(Debug)]
    pub enum Invitation {}
    #[derive(Debug)]
    pub enum Grant {}
    #[derive(Debug)]
    pub enum Subscription {}
    #[derive(Debug)]
    pub enum Step {}
}

/// A trust (the tenant).
pub type TrustId = Id<kind::Trust>;
/// A school of a trust.
pub type SchoolId = Id<kind::School>;
/// A staff record of a trust's MIS directory.
pub type StaffId = Id<kind::Staff>;
/// A registered account.
pub type AccountId = Id<kind::Account>;
/// An invitation.
pub type InvitationId = Id<kind::Invitation>;
/// One grant of a product role at an organisation.
pub type GrantId = Id<kind::Grant>;
/// A subscription of an organisation to a product.
pub type SubscriptionId = Id<kind::Subscription>;
/// A step of the invitation service's outbox.
pub type StepId = Id<kind::Step>;

/// The id of a `K`: a UUID that knows what it names.
pub struct Id<K> {
    value: Uuid,
    kind: PhantomData<fn() -> K>,
}

impl<K> Id<K> {
    /// A new time-ordered id (UUID v7), greater than every id this process made before.
    pub fn generate() -> Self {
        Self::from_uuid(Uuid::from_u128(next_v7()))
    }

    pub const fn from_uuid(value: Uuid) -> Self {
        Self {
            value,
            kind: PhantomData,
        }
    }

    pub const fn from_u128(value: u128) -> Self {
        Self::from_uuid(Uuid::from_u128(value))
    }

    /// Parses a caller's id: surrounding blanks are ignored, any UUID spelling is taken.
    /// The error says what is wrong, for a field violation.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err("is required".into());
        }
        Uuid::try_parse(trimmed)
            .map(Self::from_uuid)
            .map_err(|_| format!("`{}` is not a valid id (a UUID)", truncate(trimmed, 64)))
    }

    /// [`Id::parse`] for an optional field: empty means none.
    pub fn parse_optional(raw: &str) -> Result<Option<Self>, String> {
        if raw.trim().is_empty() {
            Ok(None)
        } else {
            Self::parse(raw).map(Some)
        }
    }

    pub const fn as_uuid(&self) -> Uuid {
        self.value
    }

    /// The 128-bit value: a cheap map key.
    pub const fn as_u128(&self) -> u128 {
        self.value.as_u128()
    }

    /// The same UUID seen as the id of another kind of resource (a grant's organisation is a
    /// trust or a school).
    pub const fn cast<L>(self) -> Id<L> {
        Id::from_uuid(self.value)
    }
}

/// Makes the bits of each new v7 id: the time in milliseconds, then random bits, and never
/// less than or equal to the last one made here (same millisecond, or a clock step back).
fn next_v7() -> u128 {
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
        id = *last + 1;
    }
    *last = id;
    id
}

// The impls below are written out rather than derived: a derive would ask the marker `K` for
// the same traits, which markers never need.

impl<K> Clone for Id<K> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K> Copy for Id<K> {}

impl<K> PartialEq for Id<K> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl<K> Eq for Id<K> {}

impl<K> PartialOrd for Id<K> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The order of the canonical spelling, as the databases sort the stored text.
impl<K> Ord for Id<K> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.value.cmp(&other.value)
    }
}

impl<K> Hash for Id<K> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.value.hash(state);
    }
}

impl<K> fmt::Display for Id<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.value.hyphenated(), f)
    }
}

impl<K> fmt::Debug for Id<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = std::any::type_name::<K>().rsplit("::").next().unwrap_or("");
        write!(f, "{kind}Id({})", self.value.hyphenated())
    }
}

impl<K> FromStr for Id<K> {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl<K> From<Id<K>> for String {
    fn from(id: Id<K>) -> Self {
        id.to_string()
    }
}

impl<K> serde::Serialize for Id<K> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.value.hyphenated())
    }
}

impl<'de, K> serde::Deserialize<'de> for Id<K> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Stored as text in the canonical spelling, in either database.
impl<K, DB: Database> Type<DB> for Id<K>
where
    String: Type<DB>,
{
    fn type_info() -> DB::TypeInfo {
        <String as Type<DB>>::type_info()
    }

    fn compatible(ty: &DB::TypeInfo) -> bool {
        <String as Type<DB>>::compatible(ty)
    }
}

impl<'q, K, DB: Database> Encode<'q, DB> for Id<K>
where
    String: Encode<'q, DB>,
{
    fn encode_by_ref(&self, buf: &mut DB::ArgumentBuffer<'q>) -> Result<IsNull, BoxDynError> {
        self.to_string().encode(buf)
    }
}

impl<'r, K, DB: Database> Decode<'r, DB> for Id<K>
where
    String: Decode<'r, DB>,
{
    fn decode(value: DB::ValueRef<'r>) -> Result<Self, BoxDynError> {
        let text = <String as Decode<'r, DB>>::decode(value)?;
        Ok(Self::from_uuid(Uuid::try_parse(&text)?))
    }
}

/// Arrays of ids bind as `text[]` (the PostgreSQL statements that take one array per column).
impl<K> sqlx::postgres::PgHasArrayType for Id<K> {
    fn array_type_info() -> sqlx::postgres::PgTypeInfo {
        <String as sqlx::postgres::PgHasArrayType>::array_type_info()
    }

    fn array_compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
        <String as sqlx::postgres::PgHasArrayType>::array_compatible(ty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEMO_TRUST: &str = "7f3c2a10-0000-4000-8000-000000000001";

    #[test]
    fn ids_must_be_uuids_and_every_spelling_parses_to_the_one_canonical_id() {
        for spelling in [
            "7F3C2A10-0000-4000-8000-000000000001",
            " 7f3c2a10-0000-4000-8000-000000000001 ",
            "7f3c2a10000040008000000000000001",
            "{7f3c2a10-0000-4000-8000-000000000001}",
            "urn:uuid:7f3c2a10-0000-4000-8000-000000000001",
        ] {
            assert_eq!(
                TrustId::parse(spelling).unwrap().to_string(),
                DEMO_TRUST,
                "{spelling}"
            );
        }
    }

    #[test]
    fn an_id_that_is_not_a_uuid_is_refused_with_what_was_given() {
        assert_eq!(TrustId::parse("  ").unwrap_err(), "is required");
        let error = SchoolId::parse("not-an-id").unwrap_err();
        assert!(error.contains("`not-an-id` is not a valid id"), "{error}");
        assert_eq!(AccountId::parse_optional("").unwrap(), None);
        assert!(AccountId::parse_optional("x").is_err());
    }

    #[test]
    fn new_ids_are_version_7_uuids_each_greater_than_the_last() {
        let ids: Vec<InvitationId> = (0..1_000).map(|_| InvitationId::generate()).collect();
        for pair in ids.windows(2) {
            assert!(pair[0] < pair[1], "{} then {}", pair[0], pair[1]);
            assert!(pair[0].to_string() < pair[1].to_string());
        }
        let uuid = ids[0].as_uuid();
        assert_eq!(uuid.get_version_num(), 7);
        assert_eq!(uuid.get_variant(), uuid::Variant::RFC4122);
        let (seconds, _) = uuid.get_timestamp().unwrap().to_unix();
        let now = chrono::Utc::now().timestamp().unsigned_abs();
        assert!(
            now.abs_diff(seconds) < 5,
            "timestamp {seconds} is not now ({now})"
        );
    }

    #[test]
    fn debug_names_the_kind_and_serde_uses_the_canonical_text() {
        let id = TrustId::parse(DEMO_TRUST).unwrap();
        assert_eq!(format!("{id:?}"), format!("TrustId({DEMO_TRUST})"));
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{DEMO_TRUST}\""));
        assert_eq!(serde_json::from_str::<TrustId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<TrustId>("\"nope\"").is_err());
    }

    #[tokio::test]
    async fn ids_round_trip_through_a_text_column() {
        let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect("sqlite::memory:")
            .await
            .unwrap();
        let id = StaffId::generate();
        let back: (StaffId, String) = sqlx::query_as("SELECT $1, $1")
            .bind(id)
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(back, (id, id.to_string()));
    }
}
