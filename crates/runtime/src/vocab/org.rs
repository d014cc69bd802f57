//! The two kinds of organisation every service speaks of.

/// A trust (the tenant) or one of its schools. Stored and logged in lower case (`trust`);
/// read back in any case.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::Display,
)]
#[strum(serialize_all = "lowercase", ascii_case_insensitive)]
pub enum OrgKind {
    Trust,
    School,
}

impl OrgKind {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_written_in_lower_case_and_read_in_any() {
        assert_eq!(OrgKind::School.as_str(), "school");
        assert_eq!("TRUST".parse::<OrgKind>(), Ok(OrgKind::Trust));
        assert!("district".parse::<OrgKind>().is_err());
    }
}
