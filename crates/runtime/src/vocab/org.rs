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

    /// The kind a request names in an `OrganizationKind` field. Every Portal package numbers
    /// its `OrganizationKind` alike (UNSPECIFIED 0, TRUST 1, SCHOOL 2), so one reading serves
    /// them all. The error says what is wrong, for a field violation.
    pub fn from_proto(value: i32) -> Result<Self, String> {
        match value {
            TRUST => Ok(OrgKind::Trust),
            SCHOOL => Ok(OrgKind::School),
            0 => Err("is required: ORGANIZATION_KIND_TRUST or ORGANIZATION_KIND_SCHOOL".into()),
            other => Err(format!(
                "{other} is not an organization kind (ORGANIZATION_KIND_TRUST or \
                 ORGANIZATION_KIND_SCHOOL)"
            )),
        }
    }

    /// The value of an `OrganizationKind` field of any Portal package.
    pub fn to_proto(self) -> i32 {
        match self {
            OrgKind::Trust => TRUST,
            OrgKind::School => SCHOOL,
        }
    }
}

const TRUST: i32 = 1;
const SCHOOL: i32 = 2;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_written_in_lower_case_and_read_in_any() {
        assert_eq!(OrgKind::School.as_str(), "school");
        assert_eq!("TRUST".parse::<OrgKind>(), Ok(OrgKind::Trust));
        assert!("district".parse::<OrgKind>().is_err());
    }

    #[test]
    fn every_package_numbers_organization_kinds_alike() {
        use portal_proto::{identity, invitation, subscription};
        for (kind, values) in [
            (
                OrgKind::Trust,
                [
                    identity::v1::OrganizationKind::Trust as i32,
                    subscription::v1::OrganizationKind::Trust as i32,
                    invitation::v1::OrganizationKind::Trust as i32,
                ],
            ),
            (
                OrgKind::School,
                [
                    identity::v1::OrganizationKind::School as i32,
                    subscription::v1::OrganizationKind::School as i32,
                    invitation::v1::OrganizationKind::School as i32,
                ],
            ),
        ] {
            for value in values {
                assert_eq!(kind.to_proto(), value);
                assert_eq!(OrgKind::from_proto(value), Ok(kind));
            }
        }
        assert!(OrgKind::from_proto(0).is_err());
        assert!(OrgKind::from_proto(7).is_err());
    }
}
