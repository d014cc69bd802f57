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
    if text.chars().any(is_format) {
        return Err(
            "contains invisible formatting characters (such as direction overrides or line \
             separators)"
                .into(),
        );
    }
    Ok(())
}

/// Unicode's format characters (general category Cf) and the line and paragraph separators:
/// invisible, they can reorder or break what a name shows in an email's subject or a page.
/// The zero-width joiner and non-joiner are let through: names in several scripts need them.
fn is_format(c: char) -> bool {
    matches!(
        c,
        '\u{AD}'
            | '\u{600}'..='\u{605}'
            | '\u{61C}'
            | '\u{6DD}'
            | '\u{70F}'
            | '\u{890}'..='\u{891}'
            | '\u{8E2}'
            | '\u{180E}'
            | '\u{200B}'
            | '\u{200E}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}'
    )
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
    fn names_with_invisible_formatting_are_refused() {
        for spoof in [
            "Ann\u{202E}cod.exe",
            "Ann\u{2028}Subject: urgent",
            "\u{200B}Ann",
            "Ann\u{2066}x\u{2069}",
            "Ann\u{FEFF}",
        ] {
            let refused = parse_name(spoof, 40).unwrap_err();
            assert!(
                refused.contains("invisible formatting"),
                "{spoof:?}: {refused}"
            );
        }
        // Joiners belong to names in several scripts.
        assert_eq!(
            parse_name("می\u{200C}خواهم", 40).unwrap(),
            "می\u{200C}خواهم"
        );
        assert_eq!(parse_name("José Ñúñez", 40).unwrap(), "José Ñúñez");
    }

    #[test]
    fn long_input_is_cut_for_messages() {
        assert_eq!(truncate("abcdef", 3), "abc…");
        assert_eq!(truncate("abc", 3), "abc");
    }
}
