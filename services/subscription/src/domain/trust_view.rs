//! One trust's subscriptions, as of one revision, indexed by organisation: what eligibility
//! and a school's information icon are answered from.

use std::ops::Range;

use portal_runtime::vocab::{IdMap, TrustId};

use super::subscriptions::{OrganizationId, Subscription, TrustSnapshot};

/// One trust's subscriptions, as of one revision, indexed for lookups by organisation.
#[derive(Debug)]
pub struct TrustView {
    pub trust_id: TrustId,
    pub revision: i64,
    /// Ordered by (organisation, product, start time, id).
    subscriptions: Vec<Subscription>,
    /// Organisation id (its 128-bit value) -> its slice of `subscriptions`.
    by_organization: IdMap<Range<usize>>,
}

impl TrustView {
    pub fn new(trust_id: TrustId, snapshot: TrustSnapshot) -> Self {
        let mut subscriptions = snapshot.subscriptions;
        subscriptions.retain(|s| s.trust_id == trust_id);
        subscriptions.sort_unstable_by(|a, b| {
            (a.organization_id, &a.product_key, a.start_time, a.id).cmp(&(
                b.organization_id,
                &b.product_key,
                b.start_time,
                b.id,
            ))
        });
        let mut by_organization: IdMap<Range<usize>> = IdMap::default();
        let mut start = 0;
        for end in 1..=subscriptions.len() {
            if end == subscriptions.len()
                || subscriptions[end].organization_id != subscriptions[start].organization_id
            {
                by_organization.insert(subscriptions[start].organization_id.as_u128(), start..end);
                start = end;
            }
        }
        Self {
            trust_id,
            revision: snapshot.revision,
            subscriptions,
            by_organization,
        }
    }

    /// Every subscription of an organisation of the trust, by product then start time.
    pub fn of(&self, organization: OrganizationId) -> &[Subscription] {
        self.by_organization
            .get(&organization.as_u128())
            .map_or(&[], |range| &self.subscriptions[range.clone()])
    }

    /// True when the organisation is registered with this trust: it has a subscription of
    /// the trust (the trust itself, or else one of its schools). Organisations never change
    /// trust or kind.
    pub fn knows(&self, organization: OrganizationId) -> bool {
        self.by_organization.contains_key(&organization.as_u128())
    }

    pub fn len(&self) -> usize {
        self.subscriptions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.subscriptions.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use portal_runtime::vocab::{ProductKey, SubscriptionId};

    use super::*;
    use crate::domain::subscriptions::Status;
    use crate::domain::subscriptions::tests::{subscription, t0};

    #[test]
    fn a_view_holds_only_its_trust_s_subscriptions_grouped_by_organisation_and_product() {
        let school = OrganizationId::from_u128(0x51);
        let mut later = subscription(Status::Active, t0() + Duration::days(30), None);
        later.id = SubscriptionId::from_u128(2);
        let mut sonar = subscription(Status::Active, t0(), None);
        sonar.id = SubscriptionId::from_u128(3);
        sonar.product_key = ProductKey::from_known("sonar");
        let mut elsewhere = subscription(Status::Active, t0(), None);
        elsewhere.id = SubscriptionId::from_u128(4);
        elsewhere.trust_id = TrustId::from_u128(0x72);
        let earlier = subscription(Status::Active, t0(), None);
        let trust = earlier.trust_id;
        let view = TrustView::new(
            trust,
            TrustSnapshot {
                revision: 7,
                subscriptions: vec![later.clone(), sonar.clone(), elsewhere, earlier.clone()],
            },
        );
        assert_eq!(view.revision, 7);
        assert_eq!(view.len(), 3);
        assert_eq!(view.of(school), [sonar, earlier, later]);
        assert!(view.knows(school));
        assert!(!view.knows(trust.cast()));
        assert!(view.of(OrganizationId::from_u128(0x99)).is_empty());
    }
}
