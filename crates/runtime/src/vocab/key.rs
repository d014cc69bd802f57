//! Typed catalogue keys: product and role keys, parsed once at the edge.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::{Database, Decode, Encode, Type};

use super::text::truncate;

/// The longest catalogue key.
pub const MAX_KEY_LEN: usize = 64;

/// What a [`Key`] names. Markers only: never constructed.
pub mod kind {
    #[derive(Debug)]
    pub enum Product {}
    #[derive(Debug)]
    pub enum Role {}
}

/// A catalogue product (`portal`, `websites-cms`).
pub type ProductKey = Key<kind::Product>;
/// A role of a product (`account-owner`, `writer`).
pub type RoleKey = Key<kind::Role>;

/// A catalogue key: a lower-case letter, then lower-case letters, digits and dashes, at most
/// [`MAX_KEY_LEN`] characters.
pub struct Key<K> {
    text: String,
    kind: PhantomData<fn() -> K>,
}

impl<K> Key<K> {
    /// Parses a caller's key (surrounding blanks ignored); the error says what is wrong, for
    /// a field violation.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let key = raw.trim();
        if key.is_empty() {
            return Err("is required".into());
        }
        let well_formed = key.len() <= MAX_KEY_LEN
            && key.starts_with(|c: char| c.is_ascii_lowercase())
            && key
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !well_formed {
            return Err(format!(
                "`{}` is not a {} key (lower-case letters, digits and dashes, at most \
                 {MAX_KEY_LEN})",
                truncate(key, MAX_KEY_LEN),
                noun::<K>(),
            ));
        }
        Ok(Self::from_known(key))
    }

    /// A key the suite itself names (the catalogue's own keys, constants of its rules).
    pub fn from_known(key: &str) -> Self {
        Self {
            text: key.to_string(),
            kind: PhantomData,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn into_string(self) -> String {
        self.text
    }
}

/// `product` or `role`, for messages.
fn noun<K>() -> String {
    std::any::type_name::<K>()
        .rsplit("::")
        .next()
        .unwrap_or("catalogue")
        .to_lowercase()
}

impl<K> Clone for Key<K> {
    fn clone(&self) -> Self {
        Self::from_known(&self.text)
    }
}

impl<K> PartialEq for Key<K> {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl<K> Eq for Key<K> {}

impl<K> PartialOrd for Key<K> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<K> Ord for Key<K> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.text.cmp(&other.text)
    }
}

impl<K> Hash for Key<K> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.text.hash(state);
    }
}

/// Maps keyed by a key can be looked up with a `&str`.
impl<K> Borrow<str> for Key<K> {
    fn borrow(&self) -> &str {
        &self.text
    }
}

impl<K> AsRef<str> for Key<K> {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

impl<K> PartialEq<str> for Key<K> {
    fn eq(&self, other: &str) -> bool {
        self.text == other
    }
}

impl<K> PartialEq<&str> for Key<K> {
    fn eq(&self, other: &&str) -> bool {
        self.text == *other
    }
}

impl<K> fmt::Display for Key<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl<K> fmt::Debug for Key<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.text, f)
    }
}

impl<K> From<Key<K>> for String {
    fn from(key: Key<K>) -> Self {
        key.text
    }
}

impl<K> serde::Serialize for Key<K> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de, K> serde::Deserialize<'de> for Key<K> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl<K, DB: Database> Type<DB> for Key<K>
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

impl<'q, K, DB: Database> Encode<'q, DB> for Key<K>
where
    String: Encode<'q, DB>,
{
    fn encode_by_ref(&self, buf: &mut DB::ArgumentBuffer<'q>) -> Result<IsNull, BoxDynError> {
        self.text.clone().encode(buf)
    }
}

/// Stored keys are the suite's own: read as they are.
impl<'r, K, DB: Database> Decode<'r, DB> for Key<K>
where
    String: Decode<'r, DB>,
{
    fn decode(value: DB::ValueRef<'r>) -> Result<Self, BoxDynError> {
        let text = <String as Decode<'r, DB>>::decode(value)?;
        Ok(Self {
            text,
            kind: PhantomData,
        })
    }
}

impl<K> sqlx::postgres::PgHasArrayType for Key<K> {
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

    #[test]
    fn catalogue_keys_are_trimmed_and_checked() {
        assert_eq!(ProductKey::parse(" websites-cms ").unwrap(), "websites-cms");
        assert_eq!(RoleKey::parse("").unwrap_err(), "is required");
        for bad in ["Portal", "1st", "full_edit", "a.b", "-x", &"k".repeat(65)] {
            assert!(ProductKey::parse(bad).is_err(), "{bad} should be refused");
        }
        let error = RoleKey::parse("Full Edit").unwrap_err();
        assert!(error.contains("is not a role key"), "{error}");
    }

    #[test]
    fn a_map_keyed_by_keys_is_read_with_a_str() {
        let mut map = std::collections::HashMap::new();
        map.insert(ProductKey::from_known("portal"), 1);
        assert_eq!(map.get("portal"), Some(&1));
    }
}
