//! A new account's password: the policy every service applies the same way, and a holder
//! that keeps the text out of `Debug` output and wipes it when dropped.

use secrecy::{ExposeSecret, SecretString};

pub const MIN_PASSWORD_CHARS: usize = 10;
pub const MAX_PASSWORD_CHARS: usize = 128;

/// A password that satisfies the policy: 10 to 128 characters.
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
    fn debug_output_hides_the_password() {
        let password = Password::parse("correct horse battery").unwrap();
        assert!(!format!("{password:?}").contains("horse"));
    }
}
