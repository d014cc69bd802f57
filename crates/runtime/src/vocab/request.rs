//! AIP-155 request ids: the key a caller sends so that a retried call returns the first
//! answer instead of doing the work twice.

use std::fmt;

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::{Database, Decode, Encode, Type};

use super::text::truncate;

/// The longest request id.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// A caller's idempotency key: at most [`MAX_REQUEST_ID_LEN`] printable ASCII characters
/// (a UUID is best). Empty in a request means none.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(String);

impl RequestId {
    /// Parses the request field: `Ok(None)` when it is empty.
    pub fn parse_optional(raw: &str) -> Result<Option<Self>, String> {
        let id = raw.trim();
        if id.is_empty() {
            return Ok(None);
        }
        if id.len() > MAX_REQUEST_ID_LEN || !id.chars().all(|c| c.is_ascii_graphic()) {
            return Err(format!(
                "`{}` is not a request id (at most {MAX_REQUEST_ID_LEN} printable characters; \
                 a UUID is best)",
                truncate(id, 64)
            ));
        }
        Ok(Some(Self(id.to_string())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RequestId({:?})", self.0)
    }
}

impl<DB: Database> Type<DB> for RequestId
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

impl<'q, DB: Database> Encode<'q, DB> for RequestId
where
    String: Encode<'q, DB>,
{
    fn encode_by_ref(&self, buf: &mut DB::ArgumentBuffer<'q>) -> Result<IsNull, BoxDynError> {
        self.0.clone().encode(buf)
    }
}

impl<'r, DB: Database> Decode<'r, DB> for RequestId
where
    String: Decode<'r, DB>,
{
    fn decode(value: DB::ValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(Self(<String as Decode<'r, DB>>::decode(value)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_optional_printable_and_bounded() {
        assert_eq!(RequestId::parse_optional(" ").unwrap(), None);
        assert_eq!(
            RequestId::parse_optional(" 9a4f7f0e-retry ")
                .unwrap()
                .unwrap()
                .as_str(),
            "9a4f7f0e-retry"
        );
        assert!(RequestId::parse_optional("has spaces in it").is_err());
        assert!(RequestId::parse_optional(&"r".repeat(129)).is_err());
    }
}
