//! An invitation: what it offers, what came of it, and where it is in its lifecycle.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use portal_runtime::paging::PageRequest;
use portal_runtime::vocab::{
    AccountId, Email, Id, InvitationId, OrgKind, ProductKey, RoleKey, SchoolId, StaffId, TrustId,
};

use super::link::{LinkHash, LinkRefusal};

/// Lifecycle of an invitation, stored by name (`PENDING`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::EnumString, strum::Display,
)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Pending,
    Granted,
    Accepted,
    Expired,
    Revoked,
}

/// Why an invitation was revoked other than by an administrator, stored by name.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::EnumString, strum::Display,
)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum RevokeReason {
    /// A staff sync marked the invitee LEFT.
    StaffLeft,
}

/// What the invitation email carries, stored by name (`SIGN_UP_LINK`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::EnumString)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum Delivery {
    /// The invitee has no account: a single-use sign-up link.
    SignUpLink,
    /// The invitee has an account: a notice that new access is available.
    NewProductNotice,
}

impl Delivery {
    /// R7/R8: a sign-up link for a person without an account, a notice for one with.
    pub fn for_account(account: Option<AccountId>) -> Self {
        match account {
            Some(_) => Delivery::NewProductNotice,
            None => Delivery::SignUpLink,
        }
    }

    /// The status a new invitation starts in: a link waits to be accepted; a notice's access
    /// is granted at once.
    pub fn first_status(self) -> Status {
        match self {
            Delivery::SignUpLink => Status::Pending,
            Delivery::NewProductNotice => Status::Granted,
        }
    }

    /// The state of the grants a new invitation makes.
    pub fn first_grant_state(self) -> GrantState {
        match self {
            Delivery::SignUpLink => GrantState::Pending,
            Delivery::NewProductNotice => GrantState::Active,
        }
    }
}

/// The organisation a grant applies at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Org {
    Trust(TrustId),
    School(SchoolId),
}

impl Org {
    /// The organisation of `kind` whose id is `id`.
    pub fn new<K>(kind: OrgKind, id: Id<K>) -> Self {
        match kind {
            OrgKind::Trust => Org::Trust(id.cast()),
            OrgKind::School => Org::School(id.cast()),
        }
    }

    pub fn kind(self) -> OrgKind {
        match self {
            Org::Trust(_) => OrgKind::Trust,
            Org::School(_) => OrgKind::School,
        }
    }

    /// The organisation's id, seen as an id of `K` (where trusts and schools share a field).
    pub fn id<K>(self) -> Id<K> {
        match self {
            Org::Trust(id) => id.cast(),
            Org::School(id) => id.cast(),
        }
    }
}

/// The organisation's id.
impl std::fmt::Display for Org {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Org::Trust(id) => id.fmt(f),
            Org::School(id) => id.fmt(f),
        }
    }
}

/// The state of one grant, stored by variant name in the invitation's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GrantState {
    Pending,
    Active,
    /// The person already held this access through another invitation.
    AlreadyHeld,
    /// Not in force: withdrawn with its invitation, which expired or was revoked.
    Dropped,
    /// Granted in place of another role of the same product at the same organisation, which
    /// the person held and no longer does (`previous_role_key`); in force as the invitation
    /// says (pending until sign-up, or active).
    RoleChanged,
}

/// One access an invitation grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantedAccess {
    pub org: Org,
    pub product_key: ProductKey,
    pub role_key: RoleKey,
    pub state: GrantState,
    /// The role this grant replaced (state RoleChanged).
    pub previous_role_key: Option<RoleKey>,
}

/// Why a (school, product) pair asked for was not granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum SkipReason {
    /// R5: the school holds no subscription in force to the product.
    NoActiveSubscription,
}

/// One (school, product) pair asked for but not granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedAccess {
    pub school_id: SchoolId,
    pub product_key: ProductKey,
    pub reason: SkipReason,
    /// Why, in words, with the date the reason took effect.
    pub detail: String,
}

/// The trust product and role offered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustAccess {
    pub product_key: ProductKey,
    pub role_key: RoleKey,
}

/// School products at schools of the trust, all with one role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchoolAccess {
    pub product_keys: Vec<ProductKey>,
    pub role_key: RoleKey,
    pub school_ids: Vec<SchoolId>,
}

/// A stored invitation.
#[derive(Debug, Clone)]
pub struct Invitation {
    pub id: InvitationId,
    pub trust_id: TrustId,
    pub trust_name: String,
    pub staff_id: StaffId,
    pub staff_email: Email,
    pub staff_given_name: String,
    pub inviter_account_id: AccountId,
    pub trust_access: TrustAccess,
    pub school_access: Option<SchoolAccess>,
    pub status: Status,
    pub delivery: Delivery,
    pub granted: Vec<GrantedAccess>,
    pub skipped: Vec<SkippedAccess>,
    pub expire_time: Option<DateTime<Utc>>,
    /// The hash of the link most recently sent; older links are superseded.
    pub current_link_hash: Option<LinkHash>,
    /// An accept has started registering the invitee's account.
    pub accepting: bool,
    /// The account an accepted invitation registered.
    pub account_id: Option<AccountId>,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    /// Wall-clock micros until which an accept holds the invitation (0: none does). While
    /// it holds, the invitation is not revoked, resent or expired.
    pub accept_until: i64,
    /// The invitation whose accept registered the invitee's account and settled this one.
    pub settled_by: Option<InvitationId>,
    /// Why a REVOKED invitation was revoked, when not by an administrator.
    pub revoke_reason: Option<RevokeReason>,
}

impl Invitation {
    /// Whether an accept holds the invitation at wall-clock `wall_now`.
    pub fn being_accepted(&self, wall_now: i64) -> bool {
        self.accept_until > wall_now
    }

    /// The status as of `now`: a PENDING invitation past its expiry is EXPIRED even before the
    /// sweeper has recorded it.
    pub fn status_at(&self, now: DateTime<Utc>) -> Status {
        match (self.status, self.expire_time) {
            (Status::Pending, Some(expire)) if now >= expire => Status::Expired,
            (status, _) => status,
        }
    }

    /// Whether the link with `hash` can be used at `now`: only the current link of a PENDING
    /// invitation can.
    pub fn check_link(&self, hash: &LinkHash, now: DateTime<Utc>) -> Result<(), LinkRefusal> {
        let current = self
            .current_link_hash
            .as_ref()
            .is_some_and(|current| current.matches(hash));
        if !current {
            return Err(LinkRefusal::Superseded);
        }
        match self.status_at(now) {
            Status::Pending => Ok(()),
            Status::Accepted if self.settled_by.is_none() => Err(LinkRefusal::Used),
            Status::Accepted | Status::Granted => Err(LinkRefusal::SignIn),
            Status::Revoked if self.revoke_reason == Some(RevokeReason::StaffLeft) => {
                Err(LinkRefusal::StaffLeft)
            }
            Status::Revoked => Err(LinkRefusal::Revoked),
            Status::Expired => Err(LinkRefusal::Expired),
        }
    }

    /// The invitation as a caller sees it at `now`: its status as of then and, once it
    /// expired or was revoked, its grants as dropped (but for access the person already held).
    pub fn seen_at(mut self, now: DateTime<Utc>) -> Self {
        self.status = self.status_at(now);
        if matches!(self.status, Status::Expired | Status::Revoked) {
            for grant in &mut self.granted {
                if grant.state != GrantState::AlreadyHeld {
                    grant.state = GrantState::Dropped;
                }
            }
        }
        self
    }

    /// R11: the grants once the invitee has accepted: active, but for the access the person
    /// already held and those `withdrawn` in identity meanwhile (organisation id, product,
    /// role: replaced by another role), which are dropped.
    pub fn accepted_grants(&self, withdrawn: &[(String, String, String)]) -> Vec<GrantedAccess> {
        self.granted
            .iter()
            .map(|g| {
                let gone = withdrawn.iter().any(|(org, product, role)| {
                    *org == g.org.to_string()
                        && product == g.product_key.as_str()
                        && role == g.role_key.as_str()
                });
                GrantedAccess {
                    state: match g.state {
                        GrantState::AlreadyHeld => GrantState::AlreadyHeld,
                        _ if gone => GrantState::Dropped,
                        GrantState::RoleChanged => GrantState::RoleChanged,
                        GrantState::Pending | GrantState::Active | GrantState::Dropped => {
                            GrantState::Active
                        }
                    },
                    ..g.clone()
                }
            })
            .collect()
    }

    /// Every product the invitation offers, the trust product first.
    pub fn product_keys(&self) -> Vec<ProductKey> {
        let mut keys = vec![self.trust_access.product_key.clone()];
        if let Some(school) = &self.school_access {
            for key in &school.product_keys {
                if !keys.contains(key) {
                    keys.push(key.clone());
                }
            }
        }
        keys
    }
}

#[cfg(test)]
impl Invitation {
    /// A PENDING sign-up invitation to Portal (Full edit) at trust level, made at `now` and
    /// lasting a day.
    pub(crate) fn example(now: DateTime<Utc>) -> Self {
        let trust_id = TrustId::generate();
        let trust_access = TrustAccess {
            product_key: ProductKey::from_known("portal"),
            role_key: RoleKey::from_known("full-edit"),
        };
        Invitation {
            id: InvitationId::generate(),
            trust_id,
            trust_name: "Northfield Learning Trust".into(),
            staff_id: StaffId::generate(),
            staff_email: Email::parse("chloe.patel@northfield.example.org").unwrap(),
            staff_given_name: "Chloe".into(),
            inviter_account_id: AccountId::generate(),
            granted: vec![GrantedAccess {
                org: Org::Trust(trust_id),
                product_key: trust_access.product_key.clone(),
                role_key: trust_access.role_key.clone(),
                state: GrantState::Pending,
                previous_role_key: None,
            }],
            trust_access,
            school_access: None,
            status: Status::Pending,
            delivery: Delivery::SignUpLink,
            skipped: vec![],
            expire_time: Some(now + chrono::Duration::days(1)),
            current_link_hash: None,
            accepting: false,
            account_id: None,
            create_time: now,
            update_time: now,
            accept_until: 0,
            settled_by: None,
            revoke_reason: None,
        }
    }
}

/// What a create answers: the invitation made, or on a dry run the one that would be.
#[derive(Debug, Clone)]
pub enum Created {
    Stored(Invitation),
    /// `validate_only`: nothing was stored, so the invitation has no id a caller may use.
    Validated(Invitation),
}

/// What an accept answers.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// The account registered for the invitee.
    pub account_id: AccountId,
    pub invitation: Invitation,
}

/// ListInvitations filters.
#[derive(Debug, Clone)]
pub struct ListFilter {
    pub trust_id: TrustId,
    pub status: Option<Status>,
    pub staff_id: Option<StaffId>,
    pub product_key: Option<ProductKey>,
}

/// Where a page starts: after the row with this create time and id (newest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageKey {
    pub create_time: i64,
    pub id: InvitationId,
}

impl PageKey {
    pub fn of(invitation: &Invitation) -> Self {
        Self {
            create_time: portal_runtime::clock::to_micros(invitation.create_time),
            id: invitation.id,
        }
    }

    pub fn encode(&self) -> String {
        format!("{}/{}", self.create_time, self.id)
    }

    pub fn decode(text: &str) -> Option<Self> {
        let (time, id) = text.split_once('/')?;
        Some(Self {
            create_time: time.parse().ok()?,
            id: InvitationId::parse(id).ok()?,
        })
    }
}

/// A parsed ListInvitations request.
#[derive(Debug, Clone)]
pub struct ListQuery {
    pub filter: ListFilter,
    pub page: PageRequest,
    pub after: Option<PageKey>,
    /// What the page token is bound to: the filter as the caller sent it.
    pub fingerprint: String,
}

/// One page of invitations, newest first.
#[derive(Debug, Clone)]
pub struct Page {
    pub invitations: Vec<Invitation>,
    /// Empty on the last page.
    pub next_page_token: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::domain::link::LinkToken;

    fn invitation(status: Status, expire: DateTime<Utc>, link: &LinkToken) -> Invitation {
        Invitation {
            status,
            expire_time: Some(expire),
            current_link_hash: Some(link.hash()),
            ..Invitation::example(expire)
        }
    }

    #[test]
    fn a_link_is_refused_for_each_final_state_with_its_own_reason() {
        let now = Utc::now();
        let later = now + chrono::Duration::days(1);
        let token = LinkToken::generate();
        let hash = token.hash();
        assert_eq!(
            invitation(Status::Pending, later, &token).check_link(&hash, now),
            Ok(())
        );
        assert_eq!(
            invitation(Status::Accepted, later, &token).check_link(&hash, now),
            Err(LinkRefusal::Used)
        );
        assert_eq!(
            invitation(Status::Revoked, later, &token).check_link(&hash, now),
            Err(LinkRefusal::Revoked)
        );
        let settled = Invitation {
            settled_by: Some(InvitationId::generate()),
            ..invitation(Status::Accepted, later, &token)
        };
        assert_eq!(settled.check_link(&hash, now), Err(LinkRefusal::SignIn));
        assert_eq!(
            invitation(Status::Granted, later, &token).check_link(&hash, now),
            Err(LinkRefusal::SignIn)
        );
        assert_eq!(
            invitation(Status::Pending, now, &token).check_link(&hash, now),
            Err(LinkRefusal::Expired)
        );
        let newer = LinkToken::generate();
        assert_eq!(
            invitation(Status::Pending, later, &newer).check_link(&hash, now),
            Err(LinkRefusal::Superseded)
        );
    }

    #[test]
    fn an_expired_or_revoked_invitation_shows_its_grants_as_dropped() {
        let now = Utc::now();
        let token = LinkToken::generate();
        let mut held = invitation(Status::Revoked, now + chrono::Duration::days(1), &token);
        held.granted.push(GrantedAccess {
            state: GrantState::AlreadyHeld,
            ..held.granted[0].clone()
        });
        let revoked = held.seen_at(now);
        assert_eq!(revoked.granted[0].state, GrantState::Dropped);
        assert_eq!(revoked.granted[1].state, GrantState::AlreadyHeld);
        let expired = invitation(Status::Pending, now, &token).seen_at(now);
        assert_eq!(expired.status, Status::Expired);
        assert_eq!(expired.granted[0].state, GrantState::Dropped);
        let pending = invitation(Status::Pending, now + chrono::Duration::days(1), &token);
        assert_eq!(pending.seen_at(now).granted[0].state, GrantState::Pending);
    }

    #[test]
    fn statuses_are_stored_by_their_upper_case_names() {
        assert_eq!(<&str>::from(Status::Pending), "PENDING");
        assert_eq!("REVOKED".parse::<Status>(), Ok(Status::Revoked));
        assert_eq!(
            <&str>::from(Delivery::NewProductNotice),
            "NEW_PRODUCT_NOTICE"
        );
        assert_eq!(
            <&str>::from(SkipReason::NoActiveSubscription),
            "NO_ACTIVE_SUBSCRIPTION"
        );
    }

    #[test]
    fn a_page_key_reads_back_what_it_wrote() {
        let key = PageKey {
            create_time: 1_767_225_600_000_000,
            id: InvitationId::generate(),
        };
        assert_eq!(PageKey::decode(&key.encode()), Some(key));
        assert_eq!(PageKey::decode("12/not-an-id"), None);
    }
}
