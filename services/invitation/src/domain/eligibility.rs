//! R5: which (school, product) pairs hold a subscription in force, as the subscription
//! service answers, and how a refusal is explained to the administrator.

use chrono::{DateTime, Utc};

use portal_runtime::vocab::{ProductKey, SchoolId};

/// Why a school is not eligible for a product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ineligibility {
    NoSubscription,
    NotStarted,
    Ended,
    Cancelled,
    Expired,
    /// The catalogue gives the product another scope: it is not granted at schools.
    WrongScope,
}

/// The answer for one (school, product) pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairAnswer {
    pub school_id: SchoolId,
    pub product_key: ProductKey,
    /// `None` when the school is eligible.
    pub refusal: Option<Ineligibility>,
    /// When the refusal took effect, for one that comes from a subscription.
    pub since: Option<DateTime<Utc>>,
}

impl PairAnswer {
    pub fn eligible(&self) -> bool {
        self.refusal.is_none()
    }

    /// A human explanation of why the school is not eligible, for the skipped pair's detail.
    pub fn detail(&self) -> String {
        let date = || {
            self.since
                .map(|t| t.format("%-d %B %Y").to_string())
                .unwrap_or_else(|| "an earlier date".into())
        };
        match self.refusal {
            None | Some(Ineligibility::NoSubscription) => {
                "the school has no subscription to this product".into()
            }
            Some(Ineligibility::NotStarted) => {
                format!("the school's subscription starts on {}", date())
            }
            Some(Ineligibility::Ended) => format!("the school's subscription ended on {}", date()),
            Some(Ineligibility::Cancelled) => format!(
                "the school's subscription was cancelled with effect from {}",
                date()
            ),
            Some(Ineligibility::Expired) => "the school's subscription has expired".into(),
            Some(Ineligibility::WrongScope) => "the product is not a school product".into(),
        }
    }
}

/// R5's answers as a create uses them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Eligibility {
    /// The trust itself holds a subscription in force to the trust product.
    pub trust_subscribed: bool,
    /// One per (school, product) pair: schools, then products, in request order.
    pub pairs: Vec<PairAnswer>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(refusal: Ineligibility, since: Option<DateTime<Utc>>) -> PairAnswer {
        PairAnswer {
            school_id: SchoolId::generate(),
            product_key: ProductKey::from_known("sonar"),
            refusal: Some(refusal),
            since,
        }
    }

    #[test]
    fn a_skipped_pair_says_when_its_subscription_ended_starts_or_was_cancelled() {
        let day = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 8, 31, 0, 0, 0).unwrap();
        assert_eq!(
            pair(Ineligibility::Ended, Some(day)).detail(),
            "the school's subscription ended on 31 August 2026"
        );
        assert_eq!(
            pair(Ineligibility::NotStarted, Some(day)).detail(),
            "the school's subscription starts on 31 August 2026"
        );
        assert_eq!(
            pair(Ineligibility::Cancelled, Some(day)).detail(),
            "the school's subscription was cancelled with effect from 31 August 2026"
        );
        assert_eq!(
            pair(Ineligibility::NoSubscription, None).detail(),
            "the school has no subscription to this product"
        );
    }
}
