//! Email addresses: how a person is recognised across products (rule R12).

use std::fmt;

use sqlx::error::BoxDynError;

use super::checked::{Checked, Rule};

/// An email address, normalised (trimmed, lower-cased). Two addresses are the same person only
/// when their normalised forms are equal (rule R12).
pub type Email = Checked<Address>;

/// The rule of an [`Email`].
#[derive(Debug)]
pub enum Address {}

impl Rule for Address {
    fn check(raw: &str) -> Result<String, String> {
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
        Ok(email)
    }

    /// A stored address was normalised when written; one that no longer passes is corrupt.
    fn stored(text: String) -> Result<String, BoxDynError> {
        Self::check(&text).map_err(|_| "a stored email address is not valid".into())
    }

    /// Emails stay out of logs: only the domain is shown.
    fn debug(text: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let domain = text.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
        write!(f, "Email(***@{domain})")
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
}
