//! [`Checked`]: text from a caller that passed its rule once, at the edge, and is passed on
//! as itself. Catalogue keys, emails and request ids are all `Checked` by their own rule, so
//! they share one implementation of comparison, printing, serde and storage as text.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::{Database, Decode, Encode, Type};

/// What a [`Checked`] value must satisfy.
pub trait Rule {
    /// Checks a caller's text and gives its one spelling (trimmed, normalised), or says what
    /// is wrong with it, for a field violation.
    fn check(raw: &str) -> Result<String, String>;

    /// Reads a value this suite stored: stored values passed the rule when written, so by
    /// default they are taken as they are.
    fn stored(text: String) -> Result<String, BoxDynError> {
        Ok(text)
    }

    /// How `Debug` prints a value (emails hide theirs).
    fn debug(text: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(text, f)
    }
}

/// Text that passed rule `R`.
pub struct Checked<R> {
    text: String,
    rule: PhantomData<fn() -> R>,
}

impl<R: Rule> Checked<R> {
    /// Applies the rule to a caller's text.
    pub fn parse(raw: &str) -> Result<Self, String> {
        R::check(raw).map(Self::unchecked)
    }
}

impl<R> Checked<R> {
    /// A value the suite itself names (constants of its rules, the catalogue's own keys).
    pub fn from_known(text: &str) -> Self {
        Self::unchecked(text.to_string())
    }

    fn unchecked(text: String) -> Self {
        Self {
            text,
            rule: PhantomData,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn into_string(self) -> String {
        self.text
    }
}

// Written out rather than derived: a derive would ask the marker `R` for the same traits.

impl<R> Clone for Checked<R> {
    fn clone(&self) -> Self {
        Self::unchecked(self.text.clone())
    }
}

impl<R> PartialEq for Checked<R> {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl<R> Eq for Checked<R> {}

impl<R> PartialOrd for Checked<R> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<R> Ord for Checked<R> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.text.cmp(&other.text)
    }
}

impl<R> Hash for Checked<R> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.text.hash(state);
    }
}

/// Maps keyed by a checked value can be looked up with a `&str`.
impl<R> Borrow<str> for Checked<R> {
    fn borrow(&self) -> &str {
        &self.text
    }
}

impl<R> AsRef<str> for Checked<R> {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

impl<R> PartialEq<str> for Checked<R> {
    fn eq(&self, other: &str) -> bool {
        self.text == other
    }
}

impl<R> PartialEq<&str> for Checked<R> {
    fn eq(&self, other: &&str) -> bool {
        self.text == *other
    }
}

impl<R> fmt::Display for Checked<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl<R: Rule> fmt::Debug for Checked<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        R::debug(&self.text, f)
    }
}

impl<R> From<Checked<R>> for String {
    fn from(value: Checked<R>) -> Self {
        value.text
    }
}

impl<R> serde::Serialize for Checked<R> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de, R: Rule> serde::Deserialize<'de> for Checked<R> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Stored as its text, in either database.
impl<R, DB: Database> Type<DB> for Checked<R>
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

impl<'q, R, DB: Database> Encode<'q, DB> for Checked<R>
where
    String: Encode<'q, DB>,
{
    fn encode_by_ref(&self, buf: &mut DB::ArgumentBuffer<'q>) -> Result<IsNull, BoxDynError> {
        self.text.clone().encode(buf)
    }
}

impl<'r, R: Rule, DB: Database> Decode<'r, DB> for Checked<R>
where
    String: Decode<'r, DB>,
{
    fn decode(value: DB::ValueRef<'r>) -> Result<Self, BoxDynError> {
        let text = <String as Decode<'r, DB>>::decode(value)?;
        Ok(Self::unchecked(R::stored(text)?))
    }
}

impl<R> sqlx::postgres::PgHasArrayType for Checked<R> {
    fn array_type_info() -> sqlx::postgres::PgTypeInfo {
        <String as sqlx::postgres::PgHasArrayType>::array_type_info()
    }

    fn array_compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
        <String as sqlx::postgres::PgHasArrayType>::array_compatible(ty)
    }
}
