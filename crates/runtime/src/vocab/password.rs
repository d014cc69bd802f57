//! A new account's password: the policy every service applies the same way, and a holder
//! that keeps the text out of `Debug` output and wipes it when dropped.

use std::collections::HashSet;
use std::sync::LazyLock;

use secrecy::{ExposeSecret, SecretString};

pub const MIN_PASSWORD_CHARS: usize = 10;
pub const MAX_PASSWORD_CHARS: usize = 128;

/// Passwords guessed first: breach corpora's most common ones long enough for the policy.
static COMMON: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("common_passwords.txt")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect()
});

/// Whether `raw` is a common password (ignoring case and surrounding spaces), or one
/// character repeated.
fn is_common(raw: &str) -> bool {
    let folded = raw.trim().to_lowercase();
    let mut chars = folded.chars();
    let repeated = chars.next().is_some_and(|first| chars.all(|c| c == first));
    repeated || COMMON.contains(folded.as_str())
}

/// A password that satisfies the policy: 10 to 128 characters, not a common one.
#[derive(Clone)]
pub struct Password(SecretString);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

impl Password {
    /// Applies the policy; the error says what is wrong, for a field violation.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let count = raw.chars().count();
        if count == 0 {
            return Err("is required".into());
        }
        if count < MIN_PASSWORD_CHARS {
            return Err(format!(
                "must have at least {MIN_PASSWORD_CHARS} characters"
            ));
        }
        if count > MAX_PASSWORD_CHARS {
            return Err(format!("must have at most {MAX_PASSWORD_CHARS} characters"));
        }
        if is_common(raw) {
            return Err("is one of the passwords most often guessed; choose another".into());
        }
        Ok(Self(SecretString::from(raw)))
    }

    /// The text, for hashing or for passing on to the service that hashes it.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_ten_to_a_hundred_and_twenty_eight_characters() {
        assert_eq!(Password::parse("").unwrap_err(), "is required");
        assert!(Password::parse("short").is_err());
        assert!(Password::parse(&"p".repeat(129)).is_err());
        assert_eq!(
            Password::parse("long enough!").unwrap().expose(),
            "long enough!"
        );
    }

    #[test]
    fn common_passwords_are_refused_whatever_their_case() {
        for common in [
            "password123",
            "Password123",
            "QWERTYUIOP",
            " 1234567890 ",
            "xxxxxxxxxxxx",
        ] {
            let refused = Password::parse(common).unwrap_err();
            assert!(
                refused.contains("most often guessed"),
                "{common}: {refused}"
            );
        }
        assert!(Password::parse("correct horse battery").is_ok());
    }

    #[test]
    fn debug_output_hides_the_password() {
        let password = Password::parse("correct horse battery").unwrap();
        assert!(!format!("{password:?}").contains("horse"));
    }
}
