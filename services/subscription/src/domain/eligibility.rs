//! Rule R5: which (school, product) pairs hold a subscription in force at an instant, and
//! why the others do not. Every answer is decided in memory from the trust's
//! [`TrustView`], one lookup per school, whatever the number of pairs.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use portal_runtime::Violations;
pub use portal_runtime::limits::{MAX_PRODUCTS_PER_REQUEST, MAX_SCHOOLS_PER_REQUEST};
use portal_runtime::vocab::{IdMap, OrgKind, ProductKey, SchoolId, TrustId};

use super::catalogue::{Catalog, Scope};
use super::subscriptions::{Organization, OrganizationId, Standing, Subscription};
use super::trust_view::TrustView;

/// Why an organisation is not eligible for a product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    NoSubscription,
    NotStarted,
    Ended,
    Cancelled,
    Expired,
    ProductNotSchoolScoped,
    ProductNotTrustScoped,
}

impl From<Standing> for Option<Reason> {
    fn from(standing: Standing) -> Self {
        match standing {
            Standing::InForce => None,
            Standing::NotStarted => Some(Reason::NotStarted),
            Standing::Ended => Some(Reason::Ended),
            Standing::Cancelled => Some(Reason::Cancelled),
            Standing::Expired => Some(Reason::Expired),
        }
    }
}

/// Whether an organisation may use a product at an instant, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict<'a> {
    /// `None` when eligible.
    pub reason: Option<Reason>,
    /// The subscription the answer comes from, if any.
    pub subscription: Option<&'a Subscription>,
}

impl Verdict<'_> {
    pub fn eligible(&self) -> bool {
        self.reason.is_none()
    }

    /// When the reason took effect, for a refusal that comes from a subscription: its start
    /// (not started), its end (ended, or expired when it has an end), its cancellation.
    pub fn effective_time(&self) -> Option<DateTime<Utc>> {
        let subscription = self.subscription?;
        match self.reason? {
            Reason::NotStarted => Some(subscription.start_time),
            Reason::Ended | Reason::Expired => subscription.end_time,
            Reason::Cancelled => subscription.cancel_time,
            Reason::NoSubscription
            | Reason::ProductNotSchoolScoped
            | Reason::ProductNotTrustScoped => None,
        }
    }

    pub fn refused(reason: Reason) -> Self {
        Self {
            reason: Some(reason),
            subscription: None,
        }
    }
}

/// Decides eligibility from every subscription of one organisation to one product.
///
/// Eligible when any is in force; the answer then names the in-force one that started last.
/// Otherwise the reason comes from the subscription that starts last (a renewal not started
/// yet says NOT_STARTED rather than the ENDED of the period before it). Ties go to the
/// greater id, so the answer is stable.
pub fn decide<'a>(
    subscriptions: impl IntoIterator<Item = &'a Subscription>,
    at: DateTime<Utc>,
) -> Verdict<'a> {
    let latest =
        |a: &&Subscription, b: &&Subscription| (a.start_time, a.id).cmp(&(b.start_time, b.id));
    let mut in_force: Option<&Subscription> = None;
    let mut newest: Option<&Subscription> = None;
    for subscription in subscriptions {
        if subscription.in_force_at(at)
            && in_force.is_none_or(|best| latest(&subscription, &best).is_gt())
        {
            in_force = Some(subscription);
        }
        if newest.is_none_or(|best| latest(&subscription, &best).is_gt()) {
            newest = Some(subscription);
        }
    }
    match (in_force, newest) {
        (Some(subscription), _) => Verdict {
            reason: None,
            subscription: Some(subscription),
        },
        (None, Some(subscription)) => Verdict {
            reason: subscription.standing_at(at).into(),
            subscription: Some(subscription),
        },
        (None, None) => Verdict::refused(Reason::NoSubscription),
    }
}

/// A school of a question, with where it was first given (to name it in errors). Only the
/// id is kept: a question names up to a thousand schools, and most answers never spell
/// their ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchoolRef {
    pub id: SchoolId,
    /// Index in the request's `school_ids`.
    pub index: usize,
}

/// How the answer is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// Every pair with its answer and the subscription behind it.
    #[default]
    Full,
    /// Only the refused pairs, as three packed lists (see [`Evaluation::refused`]).
    Compact,
}

/// A parsed eligibility question: every key is in the catalogue, sets are distinct and in
/// first-given order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub trust_id: TrustId,
    pub trust_product: Option<ProductKey>,
    pub school_products: Vec<ProductKey>,
    pub schools: Vec<SchoolRef>,
    /// `None`: now.
    pub at: Option<DateTime<Utc>>,
    pub layout: Layout,
}

impl Query {
    /// Every (school, product) pair asked, in answer order: pair `n` is school
    /// `n / products` with product `n % products` (school-major).
    pub fn pairs(&self) -> impl Iterator<Item = (SchoolId, &ProductKey)> {
        self.schools.iter().flat_map(|school| {
            self.school_products
                .iter()
                .map(move |product| (school.id, product))
        })
    }
}

/// A school information icon's question: every subscription of some schools of a trust.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchoolQuery {
    pub trust_id: TrustId,
    pub schools: Vec<SchoolRef>,
    /// `None`: now.
    pub at: Option<DateTime<Utc>>,
}

/// Validates the sizes of a question's sets (after duplicates are dropped).
pub fn check_sizes(schools: usize, products: usize, violations: &mut Violations) {
    let (most_schools, most_products) = (MAX_SCHOOLS_PER_REQUEST, MAX_PRODUCTS_PER_REQUEST);
    if schools > most_schools {
        violations.add(
            "school_ids",
            format!("has {schools} distinct ids; at most {most_schools} per call: split the query"),
        );
    }
    if products > most_products {
        violations.add(
            "school_product_keys",
            format!(
                "has {products} distinct keys; at most {most_products} per call: split the query"
            ),
        );
    }
}

/// An organisation of a question that is known outside the trust asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misplaced {
    /// The trust id names a school.
    TrustIsASchool,
    /// The school at this index of the request names a trust.
    SchoolIsATrust(usize),
    /// The school at this index of the request belongs to another trust.
    SchoolOfAnotherTrust(usize),
}

/// The organisations of a question the trust's view cannot vouch for: schools it does not
/// know as its own (or that are the trust itself), and the trust when it holds nothing yet.
/// An organisation never changes trust or kind, so what the view knows needs no check.
pub fn unvouched(view: &TrustView, schools: &[SchoolRef]) -> Vec<OrganizationId> {
    let trust: OrganizationId = view.trust_id.cast();
    let mut ids: Vec<OrganizationId> = schools
        .iter()
        .map(|school| school.id.cast())
        .filter(|id| !view.knows(*id) || *id == trust)
        .collect();
    if !view.knows(trust) {
        ids.push(trust);
    }
    ids
}

/// Which organisations of a question are misplaced, given those of them known outside the
/// trust (trusts, and schools of other trusts). Schools never heard of are fine: they simply
/// have no subscription.
pub fn misplaced(
    trust_id: TrustId,
    schools: &[SchoolRef],
    outside: &[Organization],
) -> Vec<Misplaced> {
    if outside.is_empty() {
        return Vec::new();
    }
    let outside: IdMap<&Organization> = outside.iter().map(|o| (o.id.as_u128(), o)).collect();
    let known = |id: OrganizationId| outside.get(&id.as_u128());
    let mut found = Vec::new();
    if known(trust_id.cast()).is_some_and(|org| org.kind == OrgKind::School) {
        found.push(Misplaced::TrustIsASchool);
    }
    for school in schools {
        match known(school.id.cast()) {
            Some(org) if org.kind == OrgKind::Trust => {
                found.push(Misplaced::SchoolIsATrust(school.index));
            }
            Some(org) if org.trust_id != trust_id => {
                found.push(Misplaced::SchoolOfAnotherTrust(school.index));
            }
            _ => {}
        }
    }
    found
}

/// The answers to a question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation<'a> {
    /// The trust's own answer, when a trust product was asked about.
    pub trust: Option<Verdict<'a>>,
    /// One answer per (school, product), in [`Query::pairs`] order.
    pub pairs: Vec<Verdict<'a>>,
}

/// A refused pair, as the COMPACT layout packs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// The pair's number in [`Query::pairs`] order. A question holds at most
    /// [`MAX_SCHOOLS_PER_REQUEST`] x [`MAX_PRODUCTS_PER_REQUEST`] pairs.
    pub pair: u32,
    pub reason: Reason,
    /// When the reason took effect, in microseconds since the epoch; 0 when it has no instant.
    pub effective_unix_micros: i64,
}

impl Evaluation<'_> {
    /// The refused pairs in pair order: every pair left out is eligible.
    pub fn refused(&self) -> impl Iterator<Item = Refusal> + '_ {
        self.pairs.iter().enumerate().filter_map(|(pair, verdict)| {
            Some(Refusal {
                pair: pair as u32,
                reason: verdict.reason?,
                effective_unix_micros: verdict.effective_time().map_or(0, |t| t.timestamp_micros()),
            })
        })
    }
}

/// Decides every answer in memory: one lookup per school and one per product, whatever the
/// number of pairs.
pub fn evaluate<'a>(
    view: &'a TrustView,
    catalog: &Catalog,
    query: &Query,
    at: DateTime<Utc>,
) -> Evaluation<'a> {
    let scope_refusal = |product: &str, expected: Scope| -> Option<Verdict<'a>> {
        match catalog.product(product).map(|p| p.scope) {
            Some(scope) if scope == expected => None,
            Some(Scope::Trust) => Some(Verdict::refused(Reason::ProductNotSchoolScoped)),
            Some(Scope::School) => Some(Verdict::refused(Reason::ProductNotTrustScoped)),
            None => Some(Verdict::refused(Reason::NoSubscription)),
        }
    };
    let verdict = |held: &'a [Subscription], product: &str| -> Verdict<'a> {
        let start = held.partition_point(|s| s.product_key.as_str() < product);
        let len = held[start..].partition_point(|s| s.product_key == product);
        match &held[start..start + len] {
            [] => Verdict::refused(Reason::NoSubscription),
            subscriptions => decide(subscriptions, at),
        }
    };
    let trust = query.trust_product.as_ref().map(|product| {
        scope_refusal(product.as_str(), Scope::Trust)
            .unwrap_or_else(|| verdict(view.of(query.trust_id.cast()), product.as_str()))
    });
    // Each school's answers start as "no subscription" (or the product's scope refusal);
    // one pass over the school's subscriptions, grouped by product, fills in the rest.
    // Per product: the school-scoped key to match subscriptions against (None when the
    // product's scope already refuses it), and the answer a school without one gets.
    let (asked, blank): (Vec<Option<&str>>, Vec<Verdict<'a>>) = query
        .school_products
        .iter()
        .map(
            |product| match scope_refusal(product.as_str(), Scope::School) {
                Some(refusal) => (None, refusal),
                None => (
                    Some(product.as_str()),
                    Verdict::refused(Reason::NoSubscription),
                ),
            },
        )
        .unzip();
    let mut pairs = Vec::with_capacity(query.schools.len() * blank.len());
    for school in &query.schools {
        let row = pairs.len();
        pairs.extend_from_slice(&blank);
        for group in view
            .of(school.id.cast())
            .chunk_by(|a, b| a.product_key == b.product_key)
        {
            let product = group[0].product_key.as_str();
            if let Some(column) = asked.iter().position(|p| *p == Some(product)) {
                pairs[row + column] = decide(group, at);
            }
        }
    }
    Evaluation { trust, pairs }
}

/// A question with everything its answers are decided from.
#[derive(Debug, Clone)]
pub struct Answers {
    pub view: Arc<TrustView>,
    /// The catalogue the question was checked against.
    pub catalog: Arc<Catalog>,
    pub query: Query,
    /// The instant the answers hold for.
    pub at: DateTime<Utc>,
}

impl Answers {
    /// Decides the answers (see [`evaluate`]).
    pub fn evaluate(&self) -> Evaluation<'_> {
        evaluate(&self.view, &self.catalog, &self.query, self.at)
    }
}

/// The subscriptions of the schools of a [`SchoolQuery`].
#[derive(Debug, Clone)]
pub struct SchoolSubscriptions {
    pub view: Arc<TrustView>,
    pub schools: Vec<SchoolRef>,
    /// The instant "in force" is decided for.
    pub at: DateTime<Utc>,
}

impl SchoolSubscriptions {
    /// Each school in the order asked, with every subscription it holds (by product, then
    /// start time) and whether each is in force.
    pub fn schools(
        &self,
    ) -> impl Iterator<Item = (SchoolId, impl Iterator<Item = (&Subscription, bool)>)> {
        self.schools.iter().map(|school| {
            let held = self.view.of(school.id.cast()).iter();
            (school.id, held.map(|s| (s, s.in_force_at(self.at))))
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use portal_runtime::vocab::SubscriptionId;

    use super::*;
    use crate::domain::subscriptions::tests::{subscription, t0};
    use crate::domain::subscriptions::{Status, TrustSnapshot};
    use crate::domain::{Product, Scope};

    #[test]
    fn no_subscription_means_no_subscription() {
        let none: Vec<Subscription> = vec![];
        assert_eq!(
            decide(&none, t0()),
            Verdict::refused(Reason::NoSubscription)
        );
    }

    #[test]
    fn any_subscription_in_force_makes_the_organisation_eligible_and_is_named() {
        let old = subscription(
            Status::Active,
            t0() - Duration::days(400),
            Some(t0() - Duration::days(35)),
        );
        let mut current = subscription(Status::Trial, t0() - Duration::days(10), None);
        current.id = SubscriptionId::from_u128(2);
        let all = [old, current.clone()];
        let verdict = decide(&all, t0());
        assert!(verdict.eligible());
        assert_eq!(verdict.subscription, Some(&current));
    }

    #[test]
    fn with_nothing_in_force_the_reason_comes_from_the_latest_starting_subscription() {
        let ended = subscription(
            Status::Active,
            t0() - Duration::days(400),
            Some(t0() - Duration::days(35)),
        );
        let mut renewal = subscription(Status::Active, t0() + Duration::days(5), None);
        renewal.id = SubscriptionId::from_u128(2);
        let all = [ended.clone(), renewal.clone()];
        let verdict = decide(&all, t0());
        assert_eq!(verdict.reason, Some(Reason::NotStarted));
        assert_eq!(verdict.subscription, Some(&renewal));
        let only_ended = [ended.clone()];
        let verdict = decide(&only_ended, t0());
        assert_eq!(verdict.reason, Some(Reason::Ended));
        assert_eq!(verdict.subscription, Some(&ended));
    }

    fn catalog() -> Catalog {
        let product = |key: &str, scope| Product {
            key: ProductKey::from_known(key),
            name: key.into(),
            scope,
            roles: vec![],
        };
        Catalog::new(
            vec![
                product("portal", Scope::Trust),
                product("websites-cms", Scope::School),
                product("sonar", Scope::School),
            ],
            vec![],
        )
    }

    fn school(n: u128, index: usize) -> SchoolRef {
        SchoolRef {
            id: SchoolId::from_u128(n),
            index,
        }
    }

    #[test]
    fn pairs_are_answered_school_major_and_the_compact_layout_packs_only_the_refused() {
        // School 0x51 holds Websites CMS (in force) and a cancelled Sonar; school 0x52 holds
        // nothing; Portal is a trust product, refused at schools by its scope.
        let cms = subscription(Status::Active, t0() - Duration::days(1), None);
        let mut sonar = subscription(Status::Active, t0() - Duration::days(1), None);
        sonar.id = SubscriptionId::from_u128(2);
        sonar.product_key = ProductKey::from_known("sonar");
        sonar.cancel_time = Some(t0() - Duration::hours(1));
        let view = TrustView::new(
            cms.trust_id,
            TrustSnapshot {
                revision: 1,
                subscriptions: vec![cms.clone(), sonar.clone()],
            },
        );
        let query = Query {
            trust_id: cms.trust_id,
            trust_product: Some(ProductKey::from_known("portal")),
            school_products: ["websites-cms", "sonar", "portal"]
                .map(ProductKey::from_known)
                .to_vec(),
            schools: vec![school(0x51, 0), school(0x52, 1)],
            at: None,
            layout: Layout::Compact,
        };
        let answers = evaluate(&view, &catalog(), &query, t0());
        assert_eq!(
            answers.trust,
            Some(Verdict::refused(Reason::NoSubscription))
        );
        let reasons: Vec<Option<Reason>> = answers.pairs.iter().map(|v| v.reason).collect();
        use Reason::*;
        assert_eq!(
            reasons,
            [
                None,
                Some(Cancelled),
                Some(ProductNotSchoolScoped),
                Some(NoSubscription),
                Some(NoSubscription),
                Some(ProductNotSchoolScoped),
            ]
        );
        assert_eq!(answers.pairs[0].subscription, Some(&cms));
        let pairs: Vec<(SchoolId, &str)> = query.pairs().map(|(s, p)| (s, p.as_str())).collect();
        assert_eq!(pairs[1], (SchoolId::from_u128(0x51), "sonar"));
        assert_eq!(pairs[3], (SchoolId::from_u128(0x52), "websites-cms"));
        let refused: Vec<Refusal> = answers.refused().collect();
        assert_eq!(refused.len(), 5);
        assert_eq!(
            refused[0],
            Refusal {
                pair: 1,
                reason: Cancelled,
                effective_unix_micros: (t0() - Duration::hours(1)).timestamp_micros(),
            }
        );
        assert_eq!(refused[1].pair, 2);
        assert_eq!(refused[1].effective_unix_micros, 0);
    }

    #[test]
    fn only_organisations_the_view_cannot_vouch_for_are_checked_and_misplaced_ones_named() {
        let own = subscription(Status::Active, t0(), None);
        let trust = own.trust_id;
        let view = TrustView::new(
            trust,
            TrustSnapshot {
                revision: 1,
                subscriptions: vec![own],
            },
        );
        // School 0x51 is the trust's own; the trust holds nothing itself yet.
        let schools = [school(0x51, 0), school(0x52, 1), school(0x53, 2)];
        let trust_org: OrganizationId = trust.cast();
        assert_eq!(
            unvouched(&view, &schools),
            [
                OrganizationId::from_u128(0x52),
                OrganizationId::from_u128(0x53),
                trust_org
            ]
        );
        let outside = [
            Organization {
                id: OrganizationId::from_u128(0x52),
                trust_id: TrustId::from_u128(0x72),
                kind: OrgKind::School,
            },
            Organization {
                id: OrganizationId::from_u128(0x53),
                trust_id: TrustId::from_u128(0x53),
                kind: OrgKind::Trust,
            },
        ];
        assert_eq!(
            misplaced(trust, &schools, &outside),
            [
                Misplaced::SchoolOfAnotherTrust(1),
                Misplaced::SchoolIsATrust(2)
            ]
        );
        let a_school = [Organization {
            id: trust_org,
            trust_id: TrustId::from_u128(0x72),
            kind: OrgKind::School,
        }];
        assert_eq!(
            misplaced(trust, &[], &a_school),
            [Misplaced::TrustIsASchool]
        );
        assert!(misplaced(trust, &schools, &[]).is_empty());
    }

    #[test]
    fn oversize_sets_are_named_with_a_hint_to_split() {
        let mut violations = Violations::new();
        check_sizes(
            MAX_SCHOOLS_PER_REQUEST,
            MAX_PRODUCTS_PER_REQUEST,
            &mut violations,
        );
        assert!(violations.is_empty());
        check_sizes(
            MAX_SCHOOLS_PER_REQUEST + 1,
            MAX_PRODUCTS_PER_REQUEST + 1,
            &mut violations,
        );
        assert_eq!(violations.len(), 2);
    }
}
