//! AIP-158 pagination: page sizes with a default and a ceiling, and opaque page tokens bound to
//! the filter they were issued for.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::error::Violations;

pub const DEFAULT_PAGE_SIZE: u32 = 50;
pub const MAX_PAGE_SIZE: u32 = 500;

/// A parsed page request: how many rows, and after which key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub size: u32,
    /// The sort key of the last row of the previous page; `None` for the first page.
    pub after: Option<String>,
}

impl PageRequest {
    /// Parses `page_size` and `page_token`. `filter` describes the request's other
    /// parameters, so a token cannot be replayed against a different query (AIP-158).
    pub fn parse(
        page_size: i32,
        page_token: &str,
        filter: &str,
        violations: &mut Violations,
    ) -> PageRequest {
        let size = match page_size {
            n if n < 0 => {
                violations.add("page_size", "must not be negative");
                DEFAULT_PAGE_SIZE
            }
            0 => DEFAULT_PAGE_SIZE,
            n => (n as u32).min(MAX_PAGE_SIZE),
        };
        let after = if page_token.is_empty() {
            None
        } else {
            match decode_token(page_token, filter) {
                Some(key) => Some(key),
                None => {
                    violations.add(
                        "page_token",
                        "is not a token returned by this query (the filter must not change between pages)",
                    );
                    None
                }
            }
        };
        PageRequest { size, after }
    }

    /// How many rows to fetch: one more than the page, to know whether another page follows.
    pub fn fetch_limit(&self) -> i64 {
        i64::from(self.size) + 1
    }

    /// Trims the fetched rows to the page and returns the next page token ("" on the last page).
    pub fn finish<T>(&self, rows: &mut Vec<T>, filter: &str, key: impl Fn(&T) -> String) -> String {
        if rows.len() > self.size as usize {
            rows.truncate(self.size as usize);
            rows.last()
                .map(|last| encode_token(&key(last), filter))
                .unwrap_or_default()
        } else {
            String::new()
        }
    }
}

fn fingerprint(filter: &str) -> [u8; 8] {
    let digest = Sha256::digest(filter.as_bytes());
    let mut out = [0u8; 8];
    out.copy_from_slice(&digest[..8]);
    out
}

fn encode_token(key: &str, filter: &str) -> String {
    let mut bytes = fingerprint(filter).to_vec();
    bytes.extend_from_slice(key.as_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

fn decode_token(token: &str, filter: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
    if bytes.len() < 8 || bytes[..8] != fingerprint(filter) {
        return None;
    }
    String::from_utf8(bytes[8..].to_vec()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_works_only_with_the_filter_it_was_issued_for() {
        let req = PageRequest {
            size: 2,
            after: None,
        };
        let mut rows = vec!["a", "b", "c"];
        let token = req.finish(&mut rows, "status=ACTIVE", |r| r.to_string());
        assert_eq!(rows, vec!["a", "b"]);
        let mut v = Violations::new();
        let next = PageRequest::parse(2, &token, "status=ACTIVE", &mut v);
        assert!(v.is_empty());
        assert_eq!(next.after.as_deref(), Some("b"));
        PageRequest::parse(2, &token, "status=LEFT", &mut v);
        assert_eq!(v.len(), 1);
    }

    #[test]
    fn page_size_defaults_and_is_capped() {
        let mut v = Violations::new();
        assert_eq!(
            PageRequest::parse(0, "", "", &mut v).size,
            DEFAULT_PAGE_SIZE
        );
        assert_eq!(
            PageRequest::parse(10_000, "", "", &mut v).size,
            MAX_PAGE_SIZE
        );
        assert!(v.is_empty());
        PageRequest::parse(-1, "", "", &mut v);
        assert_eq!(v.len(), 1);
    }

    #[test]
    fn the_last_page_has_no_token() {
        let req = PageRequest {
            size: 5,
            after: None,
        };
        let mut rows = vec![1, 2];
        assert_eq!(req.finish(&mut rows, "", |r| r.to_string()), "");
    }
}
