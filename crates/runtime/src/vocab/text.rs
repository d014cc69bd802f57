//! Free text from callers: names, optional text fields, and cutting input down for messages.

/// A required human-readable name: trimmed, 1..=max characters, no control characters.
pub fn parse_name(raw: &str, max: usize) -> Result<String, String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err("is required".into());
    }
    check_text(name, max)?;
    Ok(name.to_string())
}

/// An optional free-text field: trimmed, at most `max` characters, no control characters;
/// empty stays empty.
pub fn parse_optional_text(raw: &str, max: usize) -> Result<String, String> {
    let text = raw.trim();
    check_text(text, max)?;
    Ok(text.to_string())
}

fn check_text(text: &str, max: usize) -> Result<(), String> {
    if text.chars().count() > max {
        return Err(format!("is longer than {max} characters"));
    }
    if text.chars().any(char::is_control) {
        return Err("contains control characters".into());
    }
    Ok(())
}

/// Cuts user input for inclusion in an error message.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let cut: String = text.chars().take(max).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_required_bounded_and_printable() {
        assert_eq!(parse_name("  Ann ", 10).unwrap(), "Ann");
        assert_eq!(parse_name(" ", 10).unwrap_err(), "is required");
        assert!(parse_name("Annabelle-Marie", 10).is_err());
        assert!(parse_name("A\u{7}nn", 10).is_err());
        assert_eq!(parse_optional_text("  ", 10).unwrap(), "");
        assert!(parse_optional_text("x\ny", 10).is_err());
    }

    #[test]
    fn long_input_is_cut_for_messages() {
        assert_eq!(truncate("abcdef", 3), "abc…");
        assert_eq!(truncate("abc", 3), "abc");
    }
}
