//! Subscriptions of organisations to products: when one is in force, how it is created,
//! changed and cancelled, and the organisations that hold them.

use chrono::{DateTime, Utc};
use portal_runtime::vocab::{Id, OrgKind, ProductKey, RequestId, SubscriptionId, TrustId};

/// What an [`OrganizationId`] names. Markers only: never constructed.
pub mod kind {
    /// A trust or one of its schools: whichever holds a subscription.
    #[derive(Debug)]
    pub enum Organization {}
}

/// A trust or a school, as the holder of subscriptions.
pub type OrganizationId = Id<kind::Organization>;

/// An organisation billing has subscribed: a trust, or a school of exactly one trust.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    pub id: OrganizationId,
    pub trust_id: TrustId,
    pub kind: OrgKind,
}

/// Commercial status of a subscription. Stored by name in upper case (`ACTIVE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::EnumString, strum::IntoStaticStr)]
#[strum(serialize_all = "UPPERCASE")]
pub enum Status {
    Active,
    Trial,
    Cancelled,
    Expired,
}

/// An organisation subscribed to a product over the half-open period `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub id: SubscriptionId,
    pub trust_id: TrustId,
    pub organization_kind: OrgKind,
    pub organization_id: OrganizationId,
    pub product_key: ProductKey,
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
    /// dropped). Refused when the period would be empty.
    pub fn apply(
        &self,
        changes: &Changes,
        now: DateTime<Utc>,
    ) -> Result<Subscription, EmptyPeriod> {
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
            return Err(if changes.end_time.is_some() {
                EmptyPeriod::EndTime
            } else {
                EmptyPeriod::StartTime
            });
        }
        next.update_time = now;
        next.version = self.version + 1;
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
                next.version = self.version + 1;
                Ok(Cancelled::Changed(next))
            }
        }
    }
}

/// An update that would leave the period empty, named by the field that made it so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum EmptyPeriod {
    StartTime,
    EndTime,
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

/// An update of one subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    pub id: SubscriptionId,
    pub changes: Changes,
}

/// A cancellation of one subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cancellation {
    pub id: SubscriptionId,
    /// When it takes effect; `None`: now.
    pub at: Option<DateTime<Utc>>,
}

/// The statuses a subscription may be created with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitialStatus {
    Active,
    Trial,
}

impl From<InitialStatus> for Status {
    fn from(status: InitialStatus) -> Self {
        match status {
            InitialStatus::Active => Status::Active,
            InitialStatus::Trial => Status::Trial,
        }
    }
}

/// A validated request to create a subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSubscription {
    pub trust_id: TrustId,
    pub organization_kind: OrgKind,
    pub organization_id: OrganizationId,
    pub product_key: ProductKey,
    pub status: InitialStatus,
    pub start_time: DateTime<Utc>,
    pub end_time: Option<DateTime<Utc>>,
}

impl NewSubscription {
    /// The subscription this request creates, with its id and creation instant.
    pub fn into_subscription(self, id: SubscriptionId, now: DateTime<Utc>) -> Subscription {
        Subscription {
            id,
            trust_id: self.trust_id,
            organization_kind: self.organization_kind,
            organization_id: self.organization_id,
            product_key: self.product_key,
            status: self.status.into(),
            start_time: self.start_time,
            end_time: self.end_time,
            cancel_time: None,
            create_time: now,
            update_time: now,
            version: 1,
        }
    }

    /// A stable digest of the request, so a reused request id with another request is caught.
    /// Digests are stored: the text digested never changes (the kind is spelled as stored).
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let text = format!(
            "{}|{}|{}|{}|{:?}|{}|{}",
            self.trust_id,
            self.organization_kind.as_str().to_ascii_uppercase(),
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

/// A create, with the caller's AIP-155 request id when given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Creation {
    pub subscription: NewSubscription,
    pub request_id: Option<RequestId>,
}

/// Who asked for a create, and their AIP-155 request id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestKey {
    /// The calling service.
    pub caller: String,
    pub request_id: RequestId,
    /// Digest of the request (see [`NewSubscription::fingerprint`]).
    pub fingerprint: String,
}

/// What storing a new subscription did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateOutcome {
    Created(Subscription),
    /// The request id was seen before with the same request: the subscription it created.
    Replayed(Subscription),
    /// The request id was seen before with a different request.
    RequestIdReused,
    /// The organisation is already known with another trust or kind; nothing was created.
    OrganizationConflict(Organization),
}

/// Most organisation ids one list filter may name.
pub const MAX_LIST_ORGANIZATIONS: usize = 1_000;

/// Which of a trust's subscriptions to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListFilter {
    pub trust_id: TrustId,
    /// Empty: every organisation of the trust.
    pub organization_ids: Vec<OrganizationId>,
    pub product_key: Option<ProductKey>,
}

/// One page of a listing, in id order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionPage {
    pub filter: ListFilter,
    /// The id of the last subscription of the previous page.
    pub after: Option<SubscriptionId>,
    /// Most subscriptions to return.
    pub limit: i64,
}

/// A trust's subscriptions as of one revision.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustSnapshot {
    /// The trust's revision: 0 before its first write, then one more for each write.
    pub revision: i64,
    /// Every subscription of the trust, its own and its schools', in any order.
    pub subscriptions: Vec<Subscription>,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    pub(crate) fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 9, 1, 0, 0, 0).unwrap()
    }

    /// A subscription of school 0x51 of trust 0x71 to Websites CMS, numbered 1.
    pub(crate) fn subscription(
        status: Status,
        start: DateTime<Utc>,
        end: Option<DateTime<Utc>>,
    ) -> Subscription {
        Subscription {
            id: SubscriptionId::from_u128(1),
            trust_id: TrustId::from_u128(0x71),
            organization_kind: OrgKind::School,
            organization_id: OrganizationId::from_u128(0x51),
            product_key: ProductKey::from_known("websites-cms"),
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
    fn every_change_moves_the_version_on_by_one() {
        let s = year();
        let Cancelled::Changed(cancelled) = s.cancel(t0(), t0()).unwrap() else {
            panic!("cancelled");
        };
        assert_eq!(cancelled.version, s.version + 1);
        let changes = Changes {
            status: Some(UpdatableStatus::Trial),
            ..Changes::default()
        };
        assert_eq!(
            cancelled.apply(&changes, t0()).unwrap().version,
            s.version + 2
        );
    }

    #[test]
    fn an_update_that_empties_the_period_names_the_field_it_changed() {
        let s = year();
        let end_first = Changes {
            end_time: Some(Some(t0())),
            ..Changes::default()
        };
        assert_eq!(s.apply(&end_first, t0()), Err(EmptyPeriod::EndTime));
        let late_start = Changes {
            start_time: Some(t0() + Duration::days(400)),
            ..Changes::default()
        };
        assert_eq!(s.apply(&late_start, t0()), Err(EmptyPeriod::StartTime));
        let open = Changes {
            start_time: Some(t0() + Duration::days(400)),
            end_time: Some(None),
            ..Changes::default()
        };
        assert_eq!(s.apply(&open, t0()).unwrap().end_time, None);
        assert_eq!(<&str>::from(EmptyPeriod::EndTime), "end_time");
    }

    fn request() -> NewSubscription {
        NewSubscription {
            trust_id: TrustId::parse("7f3c2a10-0000-4000-8000-000000000001").unwrap(),
            organization_kind: OrgKind::School,
            organization_id: OrganizationId::parse("7f3c2a10-0000-4000-8000-000000000101").unwrap(),
            product_key: ProductKey::from_known("sonar"),
            status: InitialStatus::Active,
            start_time: t0(),
            end_time: None,
        }
    }

    #[test]
    fn the_request_fingerprint_changes_with_the_request() {
        let a = request();
        let mut b = a.clone();
        assert_eq!(a.fingerprint(), b.fingerprint());
        b.end_time = Some(t0() + Duration::days(1));
        assert_ne!(a.fingerprint(), b.fingerprint());
    }

    #[test]
    fn request_fingerprints_stay_those_already_stored() {
        assert_eq!(request().fingerprint(), "9f154df3336d801413bd61217dd48985");
        let trust = NewSubscription {
            organization_kind: OrgKind::Trust,
            organization_id: request().trust_id.cast(),
            product_key: ProductKey::from_known("portal"),
            status: InitialStatus::Trial,
            end_time: Some(t0() + Duration::days(365)),
            ..request()
        };
        assert_eq!(trust.fingerprint(), "29f7d8b3111ffb0058019e858c2534e9");
    }

    #[test]
    fn statuses_are_stored_in_upper_case() {
        assert_eq!(<&str>::from(Status::Cancelled), "CANCELLED");
        assert_eq!("TRIAL".parse::<Status>(), Ok(Status::Trial));
        assert!("trial".parse::<Status>().is_err());
    }
}
