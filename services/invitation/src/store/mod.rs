//! Storage of invitations, links, idempotency keys and the outbox, on SQLite or PostgreSQL:
//! one generic [`SqlStore`] ([`sql`]), its rows ([`rows`]), and what differs between the two
//! databases ([`Backend`], in [`sqlite`] and [`postgres`]).

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use portal_runtime::db::{Db, DbPool, Dialect};
use portal_runtime::vocab::{
    AccountId, InvitationId, ProductKey, RequestId, StaffId, StepId, TrustId,
};

use crate::domain::{
    GrantedAccess, Invitation, LinkHash, ListFilter, NewStep, PageKey, Status, Step, StepKind,
    StepOutcome,
};
use crate::error::Result;

mod postgres;
mod rows;
mod sql;
mod sqlite;

pub use sql::SqlStore;

/// The span names' prefix: `invitation.db.<op>`.
const SERVICE: &str = "invitation";

/// What storing a new invitation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateOutcome {
    /// Stored. `revoke_steps` are steps of an expired invitation of the same staff member and
    /// product that this create marked EXPIRED (to be run before granting again);
    /// `earlier_revokes_open` says whether revokes of the staff member's earlier invitations
    /// were still open (they too go before granting again).
    Created {
        revoke_steps: Vec<StepId>,
        earlier_revokes_open: bool,
    },
    /// The caller's request_id was seen before: the invitation it created.
    Replayed { invitation_id: InvitationId },
    /// A PENDING invitation of the staff member to the product exists.
    PendingExists { invitation_id: InvitationId },
}

/// Why a change of an invitation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The invitation is no longer PENDING: it is in this status.
    NotPending(Status),
    /// An accept of its link holds it: the accept committed first.
    BeingAccepted,
}

/// Whether a state change applied, or why it was refused.
pub type Transition = std::result::Result<Invitation, Refusal>;

/// An accept to record (see [`Store::complete_accept`]).
#[derive(Debug, Clone, Copy)]
pub struct CompleteAccept<'a> {
    pub id: InvitationId,
    pub account_id: AccountId,
    pub request_id: Option<&'a RequestId>,
    /// The invitation's grants as the accept left them.
    pub granted: &'a [GrantedAccess],
    pub now: DateTime<Utc>,
    pub wall_now: i64,
}

/// A new invitation as the store is asked to keep it.
#[derive(Debug, Clone, Copy)]
pub struct NewInvitation<'a> {
    pub invitation: &'a Invitation,
    /// The caller and its AIP-155 request id, when it sent one.
    pub request: Option<(AccountId, &'a RequestId)>,
    /// Outbox steps stored with it.
    pub steps: &'a [NewStep],
    pub now: DateTime<Utc>,
    /// Wall-clock micros, for the steps' scheduling.
    pub wall_now: i64,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The invitation a caller's request_id created, if any.
    async fn find_create_request(
        &self,
        caller: AccountId,
        request_id: &RequestId,
    ) -> Result<Option<InvitationId>>;

    /// The PENDING invitation of a staff member to a trust product, if any.
    async fn find_pending(
        &self,
        trust_id: TrustId,
        staff_id: StaffId,
        product_key: &ProductKey,
    ) -> Result<Option<Invitation>>;

    /// Stores a new invitation, its request id, its first link's hash and its outbox steps
    /// in one transaction. A PENDING invitation of the same staff member and product blocks
    /// it unless it expired by `now`: that one is marked EXPIRED here, with a revoke step.
    async fn create(&self, new: NewInvitation<'_>) -> Result<CreateOutcome>;

    async fn get(&self, id: InvitationId) -> Result<Option<Invitation>>;

    /// One page (newest first), `limit` rows at most.
    async fn list(
        &self,
        filter: &ListFilter,
        after: Option<&PageKey>,
        limit: i64,
    ) -> Result<Vec<Invitation>>;

    /// R9: a new expiry; earlier links stop working at once; unsent emails of the invitation
    /// are cancelled and `email` queued. Only a PENDING invitation not yet expired at `now`
    /// and not held by an accept at `wall_now`.
    async fn resend(
        &self,
        id: InvitationId,
        now: DateTime<Utc>,
        expire_time: DateTime<Utc>,
        email: &NewStep,
        wall_now: i64,
    ) -> Result<Option<Transition>>;

    /// PENDING → GRANTED for the account the invitee now has (a resend found it): the
    /// delivery becomes a new-product notice, the expiry goes, unsent emails are cancelled
    /// and `steps` (activate, then the notice) queued; refused like a resend.
    async fn grant_to_account(
        &self,
        id: InvitationId,
        account_id: AccountId,
        now: DateTime<Utc>,
        steps: &[NewStep],
        wall_now: i64,
    ) -> Result<Option<Transition>>;

    /// R10: PENDING → REVOKED with `revoke` queued and unsent emails cancelled, unless an
    /// accept holds the invitation at `wall_now`. An already REVOKED invitation is returned
    /// unchanged.
    async fn revoke(
        &self,
        id: InvitationId,
        now: DateTime<Utc>,
        revoke: &NewStep,
        wall_now: i64,
    ) -> Result<Option<Transition>>;

    /// A leaver: every PENDING invitation of the staff member at the trust that no accept
    /// holds at `wall_now` becomes REVOKED with reason STAFF_LEFT, its unsent emails
    /// cancelled and a revoke step queued. Returns the revoke steps.
    async fn revoke_leaver(
        &self,
        trust_id: TrustId,
        staff_id: StaffId,
        now: DateTime<Utc>,
        wall_now: i64,
    ) -> Result<Vec<StepId>>;

    /// How far a feed has been followed (None: not yet).
    async fn feed_position(&self, name: &str) -> Result<Option<i64>>;

    /// Records how far a feed has been followed.
    async fn set_feed_position(&self, name: &str, position: i64) -> Result<()>;

    /// R7: marks up to `limit` PENDING invitations past their expiry EXPIRED, each with a
    /// revoke of its grants queued; one an accept holds at `wall_now` waits. Returns their
    /// ids.
    async fn expire_due(
        &self,
        now: DateTime<Utc>,
        limit: i64,
        wall_now: i64,
    ) -> Result<Vec<InvitationId>>;

    /// The invitation a link hash belongs to.
    async fn find_link(&self, hash: &LinkHash) -> Result<Option<Invitation>>;

    /// Records a newly sent link as the invitation's current one, if it is still PENDING.
    async fn install_link(
        &self,
        invitation_id: InvitationId,
        hash: &LinkHash,
        now: DateTime<Utc>,
    ) -> Result<bool>;

    /// An accept's claim on the invitation, before anything is registered: it holds the
    /// invitation until `until` (wall-clock micros) if the invitation is PENDING, `hash` is
    /// its current link and the link has not expired at `now`. False when a revoke, resend or
    /// expiry committed first. Also notes that an accept has started registering the
    /// invitee's account.
    async fn claim_accept(
        &self,
        id: InvitationId,
        hash: &LinkHash,
        now: DateTime<Utc>,
        until: i64,
    ) -> Result<bool>;

    /// Lets go of an accept's claim that registered nothing.
    async fn release_accept(&self, id: InvitationId) -> Result<()>;

    /// PENDING → ACCEPTED, recording the request id and ending the accept's claim. In the
    /// same transaction every other PENDING invitation of the same person (the same email, or
    /// the same staff record of the trust) that no accept holds and whose link has not
    /// expired becomes ACCEPTED for the account too, settled by this one, with its unsent
    /// emails cancelled and an activate step queued. None when the invitation was no longer
    /// PENDING; otherwise the activate steps queued.
    async fn complete_accept(&self, accept: CompleteAccept<'_>) -> Result<Option<Vec<StepId>>>;

    /// The account an earlier accept with this request id registered.
    async fn find_accept_request(
        &self,
        invitation_id: InvitationId,
        request_id: &RequestId,
    ) -> Result<Option<AccountId>>;

    /// Records the grants' states as identity reported them.
    async fn update_granted(&self, id: InvitationId, granted: &[GrantedAccess]) -> Result<()>;

    /// Claims up to `limit` due steps until `lease_until`. A revoke waits for the grant step
    /// of its invitation, so grants made late are revoked too.
    async fn claim_due(&self, wall_now: i64, lease_until: i64, limit: i64) -> Result<Vec<Step>>;

    /// Claims one step by id (for running it inline), if it is open and not leased.
    async fn claim_step(&self, id: StepId, wall_now: i64, lease_until: i64)
    -> Result<Option<Step>>;

    /// Marks steps done with `outcome`, together.
    async fn finish_steps(&self, ids: &[StepId], outcome: StepOutcome, wall_now: i64)
    -> Result<()>;

    /// Releases a failed step for another attempt at `next_attempt_at`.
    async fn retry_step(&self, id: StepId, next_attempt_at: i64, error: &str) -> Result<()>;

    /// Gives a step up for good (FAILED), keeping why (a relay's reply, the last error).
    async fn fail_step(&self, id: StepId, error: &str, wall_now: i64) -> Result<()>;

    /// Ids of the open steps of one kind of an invitation.
    async fn open_steps(&self, invitation_id: InvitationId, kind: StepKind) -> Result<Vec<StepId>>;

    /// Outbox steps not yet done (the backlog a metric reports).
    async fn outbox_backlog(&self) -> Result<i64>;

    /// Ids of the open revoke steps of any invitation of a staff member: they must run before
    /// that person is granted the same access again, or identity would see it as still held.
    async fn open_revokes_of_staff(
        &self,
        trust_id: TrustId,
        staff_id: StaffId,
    ) -> Result<Vec<StepId>>;
}

/// The store for a runtime pool.
pub fn open(pool: &DbPool) -> Arc<dyn Store> {
    pool.open::<dyn Store>(
        SERVICE,
        |db| Arc::new(SqlStore::new(db)),
        |db| Arc::new(SqlStore::new(db)),
    )
}

/// What differs between the databases for this service.
pub trait Backend: Dialect {
    /// The usual create in one statement, where the database can say it in one (one round
    /// trip, one commit): the request id and pending checks, and every insert conditional on
    /// both. `None` when it cannot decide alone: then the create runs as a transaction.
    fn create_in_one_statement(
        db: &Db<Self>,
        new: NewInvitation<'_>,
    ) -> impl Future<Output = Result<Option<CreateOutcome>>> + Send;
}
