//! The subscription domain: the catalogue, subscriptions and when a subscription is in force.
//!
//! Everything here is pure: no storage, no clock, no gRPC. The one definition of "in force at
//! an instant" is [`Subscription::standing_at`]; eligibility is [`decide`] over it.

use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, Utc};

/// Longest product or role key accepted.
const MAX_KEY_LEN: usize = 64;

fn parse_key(raw: &str, what: &str) -> Result<String, String> {
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
            "`{}` is not a {what} key (lower-case letters, digits and dashes, at most {MAX_KEY_LEN})",
            portal_runtime::types::truncate(key, MAX_KEY_LEN)
        ));
    }
    Ok(key.to_string())
}

/// A catalogue product key such as `portal`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProductKey(String);

impl ProductKey {
    pub fn parse(raw: &str) -> Result<Self, String> {
        parse_key(raw, "product").map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProductKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A role key such as `account-owner`, unique within its product.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoleKey(String);

impl RoleKey {
    pub fn parse(raw: &str) -> Result<Self, String> {
        parse_key(raw, "role").map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// At which level of organisation a product is subscribed to and granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    Trust,
    School,
}

impl Scope {
    pub fn as_db(self) -> &'static str {
        match self {
            Scope::Trust => "TRUST",
            Scope::School => "SCHOOL",
        }
    }

    pub fn from_db(text: &str) -> Option<Self> {
        match text {
            "TRUST" => Some(Scope::Trust),
            "SCHOOL" => Some(Scope::School),
            _ => None,
        }
    }

    /// The organisation kind that subscribes to a product of this scope.
    pub fn organization_kind(self) -> OrgKind {
        match self {
            Scope::Trust => OrgKind::Trust,
            Scope::School => OrgKind::School,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub key: String,
    pub name: String,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    pub key: String,
    pub name: String,
    pub scope: Scope,
    /// In display order.
    pub roles: Vec<Role>,
}

impl Product {
    pub fn role(&self, key: &str) -> Option<&Role> {
        self.roles.iter().find(|r| r.key == key)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleRef {
    pub product_key: String,
    pub role_key: String,
}

/// Two roles of two products that give the same access; symmetric.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleEquivalence {
    pub left: RoleRef,
    pub right: RoleRef,
    pub description: String,
}

impl RoleEquivalence {
    /// Whether one side is `product` (and `role`, when given).
    pub fn involves(&self, product: &str, role: Option<&str>) -> bool {
        [&self.left, &self.right]
            .iter()
            .any(|side| side.product_key == product && role.is_none_or(|r| side.role_key == r))
    }
}

/// The whole catalogue, small enough to keep in memory.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// Ordered by key.
    products: Vec<Product>,
    index: HashMap<String, usize>,
    equivalences: Vec<RoleEquivalence>,
}

impl Catalog {
    pub fn new(mut products: Vec<Product>, equivalences: Vec<RoleEquivalence>) -> Self {
        products.sort_by(|a, b| a.key.cmp(&b.key));
        let index = products
            .iter()
            .enumerate()
            .map(|(i, p)| (p.key.clone(), i))
            .collect();
        Self {
            products,
            index,
            equivalences,
        }
    }

    pub fn product(&self, key: &str) -> Option<&Product> {
        self.index.get(key).map(|&i| &self.products[i])
    }

    /// Every product, ordered by key.
    pub fn products(&self) -> &[Product] {
        &self.products
    }

    /// The equivalences with `product` (and `role`, when given) on either side.
    pub fn equivalences_of(&self, product: &str, role: Option<&str>) -> Vec<&RoleEquivalence> {
        self.equivalences
            .iter()
            .filter(|e| e.involves(product, role))
            .collect()
    }
}

/// What kind of organisation an id names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrgKind {
    Trust,
    School,
}

impl OrgKind {
    pub fn as_db(self) -> &'static str {
        match self {
            OrgKind::Trust => "TRUST",
            OrgKind::School => "SCHOOL",
        }
    }

    pub fn from_db(text: &str) -> Option<Self> {
        match text {
            "TRUST" => Some(OrgKind::Trust),
            "SCHOOL" => Some(OrgKind::School),
            _ => None,
        }
    }
}

/// An organisation billing has subscribed: a trust, or a school of exactly one trust.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    pub id: String,
    pub trust_id: String,
    pub kind: OrgKind,
}

/// Commercial status of a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Active,
    Trial,
    Cancelled,
    Expired,
}

impl Status {
    pub fn as_db(self) -> &'static str {
        match self {
            Status::Active => "ACTIVE",
            Status::Trial => "TRIAL",
            Status::Cancelled => "CANCELLED",
            Status::Expired => "EXPIRED",
        }
    }

    pub fn from_db(text: &str) -> Option<Self> {
        match text {
            "ACTIVE" => Some(Status::Active),
            "TRIAL" => Some(Status::Trial),
            "CANCELLED" => Some(Status::Cancelled),
            "EXPIRED" => Some(Status::Expired),
            _ => None,
        }
    }
}

/// An organisation subscribed to a product over the half-open period `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub id: String,
    pub trust_id: String,
    pub organization_kind: OrgKind,
    pub organization_id: String,
    pub product_key: String,
    pub status: Status,
    pub start_time: DateTime<Utc>,
    /// `None`: open-ended.
    pub end_time: Option<DateTime<Utc>>,
    /// When a cancellation takes effect; always set when the status is CANCELLED.
    pub cancel_time: Option<DateTime<Utc>>,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    /// Incremented by every change (optimistic concurrency).
    pub version: i64,
}

/// Where a subscription stands at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Standing {
    InForce,
    NotStarted,
    Ended,
    Cancelled,
    Expired,
}

impl Subscription {
    /// Where the subscription stands at `t`: the one definition of "in force".
    ///
    /// In force when the status is not EXPIRED, `start_time <= t`, `t < end_time` (or no end)
    /// and `t < cancel_time` (or no cancellation). When it is not, the reason is EXPIRED for
    /// that status, else whichever of the cancellation and the end took effect first (the
    /// cancellation on a tie), else NOT_STARTED.
    pub fn standing_at(&self, t: DateTime<Utc>) -> Standing {
        if self.status == Status::Expired {
            return Standing::Expired;
        }
        let cancelled = match (self.status, self.cancel_time) {
            (_, Some(at)) if at <= t => Some(at),
            // A cancelled status without its instant never happens; never in force then.
            (Status::Cancelled, None) => Some(DateTime::<Utc>::MIN_UTC),
            _ => None,
        };
        let ended = self.end_time.filter(|end| *end <= t);
        match (cancelled, ended) {
            (Some(cancel), Some(end)) if end < cancel => Standing::Ended,
            (Some(_), _) => Standing::Cancelled,
            (None, Some(_)) => Standing::Ended,
            (None, None) if t < self.start_time => Standing::NotStarted,
            (None, None) => Standing::InForce,
        }
    }

    pub fn in_force_at(&self, t: DateTime<Utc>) -> bool {
        self.standing_at(t) == Standing::InForce
    }

    /// Applies an update of status and period (AIP-134 semantics decided by the caller).
    /// Setting ACTIVE or TRIAL reinstates a cancelled subscription (its cancellation is
    /// dropped). Returns the violated field when the period would be empty.
    pub fn apply(&self, changes: &Changes, now: DateTime<Utc>) -> Result<Subscription, String> {
        let mut next = self.clone();
        if let Some(status) = changes.status {
            next.status = status.into();
            if matches!(status, UpdatableStatus::Active | UpdatableStatus::Trial) {
                next.cancel_time = None;
            }
        }
        if let Some(start) = changes.start_time {
            next.start_time = start;
        }
        if let Some(end) = changes.end_time {
            next.end_time = end;
        }
        if let Some(end) = next.end_time
            && end <= next.start_time
        {
            let field = if changes.end_time.is_some() {
                "end_time"
            } else {
                "start_time"
            };
            return Err(field.to_string());
        }
        next.update_time = now;
        Ok(next)
    }

    /// Cancels with effect at `at`. An already cancelled subscription is returned unchanged.
    pub fn cancel(
        &self,
        at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Cancelled, AlreadyExpired> {
        match self.status {
            Status::Expired => Err(AlreadyExpired),
            Status::Cancelled => Ok(Cancelled::Unchanged),
            Status::Active | Status::Trial => {
                let mut next = self.clone();
                next.status = Status::Cancelled;
                next.cancel_time = Some(at);
                next.update_time = now;
                Ok(Cancelled::Changed(next))
            }
        }
    }
}

/// The outcome of [`Subscription::cancel`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cancelled {
    Changed(Subscription),
    Unchanged,
}

/// An EXPIRED subscription cannot be cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlreadyExpired;

/// The statuses an update may set (CANCELLED only comes from a cancellation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdatableStatus {
    Active,
    Trial,
    Expired,
}

impl From<UpdatableStatus> for Status {
    fn from(status: UpdatableStatus) -> Self {
        match status {
            UpdatableStatus::Active => Status::Active,
            UpdatableStatus::Trial => Status::Trial,
            UpdatableStatus::Expired => Status::Expired,
        }
    }
}

/// The fields an update changes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    pub status: Option<UpdatableStatus>,
    pub start_time: Option<DateTime<Utc>>,
    /// `Some(None)` makes the subscription open-ended.
    pub end_time: Option<Option<DateTime<Utc>>>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.status.is_none() && self.start_time.is_none() && self.end_time.is_none()
    }
}

/// The statuses a subscription may be created with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitialStatus {
    Active,
    Trial,
}

/// A validated request to create a subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSubscription {
    pub trust_id: String,
    pub organization_kind: OrgKind,
    pub organization_id: String,
    pub product_key: String,
    pub status: InitialStatus,
    pub start_time: DateTime<Utc>,
    pub end_time: Option<DateTime<Utc>>,
}

impl NewSubscription {
    /// The subscription this request creates, with its id and creation instant.
    pub fn into_subscription(self, id: String, now: DateTime<Utc>) -> Subscription {
        Subscription {
            id,
            trust_id: self.trust_id,
            organization_kind: self.organization_kind,
            organization_id: self.organization_id,
            product_key: self.product_key,
            status: match self.status {
                InitialStatus::Active => Status::Active,
                InitialStatus::Trial => Status::Trial,
            },
            start_time: self.start_time,
            end_time: self.end_time,
            cancel_time: None,
            create_time: now,
            update_time: now,
            version: 1,
        }
    }

    /// A stable digest of the request, so a reused request id with another request is caught.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let text = format!(
            "{}|{}|{}|{}|{:?}|{}|{}",
            self.trust_id,
            self.organization_kind.as_db(),
            self.organization_id,
            self.product_key,
            self.status,
            self.start_time.timestamp_micros(),
            self.end_time
                .map(|t| t.timestamp_micros().to_string())
                .unwrap_or_default(),
        );
        Sha256::digest(text.as_bytes())
            .iter()
            .take(16)
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

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
        |a: &&Subscription, b: &&Subscription| (a.start_time, &a.id).cmp(&(b.start_time, &b.id));
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 9, 1, 0, 0, 0).unwrap()
    }

    fn subscription(
        status: Status,
        start: DateTime<Utc>,
        end: Option<DateTime<Utc>>,
    ) -> Subscription {
        Subscription {
            id: "00000000-0000-4000-8000-000000000001".into(),
            trust_id: "t".into(),
            organization_kind: OrgKind::School,
            organization_id: "s".into(),
            product_key: "websites-cms".into(),
            status,
            start_time: start,
            end_time: end,
            cancel_time: None,
            create_time: start,
            update_time: start,
            version: 1,
        }
    }

    fn year() -> Subscription {
        subscription(Status::Active, t0(), Some(t0() + Duration::days(365)))
    }

    const MICRO: Duration = Duration::microseconds(1);

    #[test]
    fn a_subscription_is_in_force_at_exactly_its_start_instant() {
        assert_eq!(year().standing_at(t0()), Standing::InForce);
    }

    #[test]
    fn a_subscription_is_not_in_force_the_instant_before_its_start() {
        assert_eq!(year().standing_at(t0() - MICRO), Standing::NotStarted);
    }

    #[test]
    fn a_subscription_is_not_in_force_at_exactly_its_end_instant() {
        let s = year();
        let end = s.end_time.unwrap();
        assert_eq!(s.standing_at(end - MICRO), Standing::InForce);
        assert_eq!(s.standing_at(end), Standing::Ended);
        assert_eq!(s.standing_at(end + Duration::days(400)), Standing::Ended);
    }

    #[test]
    fn a_trial_is_in_force_like_an_active_subscription() {
        let trial = subscription(Status::Trial, t0(), Some(t0() + Duration::days(30)));
        assert_eq!(trial.standing_at(t0()), Standing::InForce);
        assert_eq!(
            trial.standing_at(t0() + Duration::days(30)),
            Standing::Ended
        );
    }

    #[test]
    fn a_subscription_cancelled_mid_period_is_in_force_only_before_the_cancellation() {
        let cancel_at = t0() + Duration::days(100);
        let Cancelled::Changed(s) = year().cancel(cancel_at, t0()).unwrap() else {
            panic!("an active subscription is cancelled");
        };
        assert_eq!(s.status, Status::Cancelled);
        assert_eq!(s.standing_at(cancel_at - MICRO), Standing::InForce);
        assert_eq!(s.standing_at(cancel_at), Standing::Cancelled);
        assert_eq!(
            s.standing_at(cancel_at + Duration::days(1)),
            Standing::Cancelled
        );
    }

    #[test]
    fn a_subscription_starting_in_the_future_has_not_started() {
        let s = subscription(Status::Active, t0() + Duration::days(10), None);
        assert_eq!(s.standing_at(t0()), Standing::NotStarted);
        assert!(!s.in_force_at(t0()));
    }

    #[test]
    fn an_open_ended_subscription_is_in_force_forever_after_its_start() {
        let s = subscription(Status::Active, t0(), None);
        assert!(s.in_force_at(t0()));
        assert!(s.in_force_at(t0() + Duration::days(365 * 200)));
        assert!(!s.in_force_at(t0() - MICRO));
    }

    #[test]
    fn an_expired_subscription_is_never_in_force_even_inside_its_period() {
        let s = subscription(Status::Expired, t0(), None);
        assert_eq!(s.standing_at(t0() + Duration::days(1)), Standing::Expired);
        assert_eq!(s.standing_at(t0() - Duration::days(1)), Standing::Expired);
    }

    #[test]
    fn a_cancellation_after_the_end_reports_the_end() {
        let mut s = year();
        let end = s.end_time.unwrap();
        s.status = Status::Cancelled;
        s.cancel_time = Some(end + Duration::days(5));
        assert_eq!(s.standing_at(end + Duration::days(10)), Standing::Ended);
        s.cancel_time = Some(end - Duration::days(5));
        assert_eq!(s.standing_at(end + Duration::days(10)), Standing::Cancelled);
    }

    #[test]
    fn a_subscription_cancelled_before_it_starts_reports_the_cancellation() {
        let mut s = subscription(Status::Cancelled, t0() + Duration::days(10), None);
        s.cancel_time = Some(t0());
        assert_eq!(s.standing_at(t0() + Duration::days(1)), Standing::Cancelled);
    }

    #[test]
    fn a_future_cancellation_leaves_the_subscription_in_force_until_then() {
        let mut s = subscription(Status::Cancelled, t0(), None);
        s.cancel_time = Some(t0() + Duration::days(10));
        assert!(s.in_force_at(t0() + Duration::days(9)));
        assert!(!s.in_force_at(t0() + Duration::days(10)));
    }

    #[test]
    fn cancelling_twice_changes_nothing_and_an_expired_subscription_cannot_be_cancelled() {
        let Cancelled::Changed(once) = year().cancel(t0(), t0()).unwrap() else {
            panic!("first cancellation changes the subscription");
        };
        assert_eq!(
            once.cancel(t0() + Duration::days(3), t0()),
            Ok(Cancelled::Unchanged)
        );
        let expired = subscription(Status::Expired, t0(), None);
        assert_eq!(expired.cancel(t0(), t0()), Err(AlreadyExpired));
    }

    #[test]
    fn reactivating_a_cancelled_subscription_drops_its_cancellation() {
        let Cancelled::Changed(cancelled) = year().cancel(t0(), t0()).unwrap() else {
            panic!("cancelled");
        };
        let changes = Changes {
            status: Some(UpdatableStatus::Active),
            ..Changes::default()
        };
        let back = cancelled.apply(&changes, t0()).unwrap();
        assert_eq!(back.cancel_time, None);
        assert!(back.in_force_at(t0() + Duration::days(1)));
    }

    #[test]
    fn an_update_that_empties_the_period_names_the_field_it_changed() {
        let s = year();
        let end_first = Changes {
            end_time: Some(Some(t0())),
            ..Changes::default()
        };
        assert_eq!(s.apply(&end_first, t0()), Err("end_time".to_string()));
        let late_start = Changes {
            start_time: Some(t0() + Duration::days(400)),
            ..Changes::default()
        };
        assert_eq!(s.apply(&late_start, t0()), Err("start_time".to_string()));
        let open = Changes {
            start_time: Some(t0() + Duration::days(400)),
            end_time: Some(None),
            ..Changes::default()
        };
        assert_eq!(s.apply(&open, t0()).unwrap().end_time, None);
    }

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
        current.id = "00000000-0000-4000-8000-000000000002".into();
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
        renewal.id = "00000000-0000-4000-8000-000000000002".into();
        let all = [ended.clone(), renewal.clone()];
        let verdict = decide(&all, t0());
        assert_eq!(verdict.reason, Some(Reason::NotStarted));
        assert_eq!(verdict.subscription, Some(&renewal));
        let only_ended = [ended.clone()];
        let verdict = decide(&only_ended, t0());
        assert_eq!(verdict.reason, Some(Reason::Ended));
        assert_eq!(verdict.subscription, Some(&ended));
    }

    #[test]
    fn keys_are_lower_case_words_with_dashes() {
        assert!(ProductKey::parse("websites-cms").is_ok());
        assert_eq!(ProductKey::parse(" portal ").unwrap().as_str(), "portal");
        for bad in ["", "Portal", "web sites", "-x", "a_b", &"x".repeat(65)] {
            assert!(ProductKey::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn equivalences_are_found_from_either_side() {
        let catalog = Catalog::new(
            vec![],
            vec![RoleEquivalence {
                left: RoleRef {
                    product_key: "websites-cms".into(),
                    role_key: "administrator".into(),
                },
                right: RoleRef {
                    product_key: "portal".into(),
                    role_key: "account-owner".into(),
                },
                description: String::new(),
            }],
        );
        assert_eq!(
            catalog
                .equivalences_of("portal", Some("account-owner"))
                .len(),
            1
        );
        assert_eq!(catalog.equivalences_of("websites-cms", None).len(), 1);
        assert_eq!(
            catalog.equivalences_of("portal", Some("full-edit")).len(),
            0
        );
    }

    #[test]
    fn the_request_fingerprint_changes_with_the_request() {
        let a = NewSubscription {
            trust_id: "t".into(),
            organization_kind: OrgKind::School,
            organization_id: "s".into(),
            product_key: "sonar".into(),
            status: InitialStatus::Active,
            start_time: t0(),
            end_time: None,
        };
        let mut b = a.clone();
        assert_eq!(a.fingerprint(), b.fingerprint());
        b.end_time = Some(t0() + Duration::days(1));
        assert_ne!(a.fingerprint(), b.fingerprint());
    }
}
