//! AIP-155 request ids: the key a caller sends so that a retried call returns the first
//! answer instead of doing the work twice.

use super::checked::{Checked, Rule};
use super::text::truncate;

/// The longest request id.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// A caller's idempotency key: at most [`MAX_REQUEST_ID_LEN`] printable ASCII characters
/// (a UUID is best). Empty in a request means none.
pub type RequestId = Checked<Request>;

/// The rule of a [`RequestId`].
#[derive(Debug)]
pub enum Request {}

impl Rule for Request {
    fn check(raw: &str) -> Result<String, String> {
        let id = raw.trim();
        if id.is_empty() {
            return Err("is required".into());
        }
        if id.len() > MAX_REQUEST_ID_LEN || !id.chars().all(|c| c.is_ascii_graphic()) {
            return Err(format!(
                "`{}` is not a request id (at most {MAX_REQUEST_ID_LEN} printable characters; \
                 a UUID is best)",
                truncate(id, 64)
            ));
        }
        Ok(id.to_string())
    }
}

impl Checked<Request> {
    /// Parses the request field: `Ok(None)` when it is empty.
    pub fn parse_optional(raw: &str) -> Result<Option<Self>, String> {
        if raw.trim().is_empty() {
            Ok(None)
        } else {
            Self::parse(raw).map(Some)
        }
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
