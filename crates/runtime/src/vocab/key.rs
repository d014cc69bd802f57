//! Catalogue keys: product and role keys.

use super::checked::{Checked, Rule};
use super::text::truncate;

/// The longest catalogue key.
pub const MAX_KEY_LEN: usize = 64;

/// A catalogue product (`portal`, `websites-cms`).
pub type ProductKey = Checked<Product>;
/// A role of a product (`account-owner`, `writer`).
pub type RoleKey = Checked<Role>;

/// The rule of a [`ProductKey`].
#[derive(Debug)]
pub enum Product {}

/// The rule of a [`RoleKey`].
#[derive(Debug)]
pub enum Role {}

impl Rule for Product {
    fn check(raw: &str) -> Result<String, String> {
        check_key(raw, "product")
    }
}

impl Rule for Role {
    fn check(raw: &str) -> Result<String, String> {
        check_key(raw, "role")
    }
}

/// A lower-case letter, then lower-case letters, digits and dashes, at most [`MAX_KEY_LEN`]
/// characters; surrounding blanks ignored.
fn check_key(raw: &str, noun: &str) -> Result<String, String> {
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
            "`{}` is not a {noun} key (lower-case letters, digits and dashes, at most \
             {MAX_KEY_LEN})",
            truncate(key, MAX_KEY_LEN),
        ));
    }
    Ok(key.to_string())
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

    #[tokio::test]
    async fn keys_round_trip_through_a_text_column() {
        let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect("sqlite::memory:")
            .await
            .unwrap();
        let key = RoleKey::from_known("full-edit");
        let back: RoleKey = sqlx::query_scalar("SELECT $1")
            .bind(key.clone())
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(back, key);
    }
}
