//! What the identity service keeps: one trait, written once for SQLite and PostgreSQL
//! ([`SqlStore`]), with the statements that differ between them behind [`Backend`].

mod postgres;
mod rows;
mod sql;
mod sqlite;

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use portal_runtime::db::{DbPool, Dialect};
use portal_runtime::vocab::{
    AccountId, Email, InvitationId, ProductKey, SchoolId, StaffId, TrustId,
};

use crate::domain::{
    Account, AdminGrant, Grant, GrantBatch, GrantResult, NewAccount, NewSchool, NewTrust,
    OrganizationId, School, StaffCursor, StaffEntry, StaffFilter, StaffMember, StaffRecord,
    StaffRow, StatusChange, StatusChangeQuery, SyncSummary, Trust,
};
use crate::error::Result;

pub use sql::SqlStore;

/// The prefix of every storage span (`identity.db.get_trust`).
const SERVICE: &str = "identity";

/// Everything the identity service keeps.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Creates a trust; with a request id already used, returns the trust that id created.
    async fn create_trust(&self, id: TrustId, new: NewTrust, now: DateTime<Utc>) -> Result<Trust>;
    async fn get_trust(&self, id: TrustId) -> Result<Option<Trust>>;
    /// Creates a school (TrustNotFound, SchoolUrnExists); idempotent per request id.
    async fn create_school(
        &self,
        id: SchoolId,
        new: NewSchool,
        now: DateTime<Utc>,
    ) -> Result<School>;
    async fn get_school(&self, id: SchoolId) -> Result<Option<School>>;
    /// A trust's schools ordered by id, after `after`, at most `limit`.
    async fn list_schools(
        &self,
        trust_id: TrustId,
        after: Option<SchoolId>,
        limit: i64,
    ) -> Result<Vec<School>>;

    /// Applies a full snapshot of a trust's staff in one transaction (TrustNotFound). MIS ids
    /// of the snapshot must be unique.
    async fn sync_staff(
        &self,
        trust_id: TrustId,
        records: Vec<StaffRecord>,
        now: DateTime<Utc>,
    ) -> Result<SyncSummary>;
    /// Inserts staff members with fixed ids, leaving existing ids and MIS ids alone (seeding).
    /// Returns how many were inserted.
    async fn insert_staff_if_missing(
        &self,
        trust_id: TrustId,
        members: Vec<(StaffId, StaffRecord)>,
        now: DateTime<Utc>,
    ) -> Result<u64>;
    async fn get_staff(&self, trust_id: TrustId, staff_id: StaffId) -> Result<Option<StaffMember>>;
    /// Staff records of every trust whose status changed at or after `query.since`, ordered
    /// by (change time, id), after `query.after`, at most `query.limit`.
    async fn staff_status_changes(&self, query: &StatusChangeQuery) -> Result<Vec<StatusChange>>;
    /// A staff member with the id of the account registered with their email, if any; one
    /// query.
    async fn get_staff_with_account(
        &self,
        trust_id: TrustId,
        staff_id: StaffId,
    ) -> Result<Option<StaffEntry>>;
    /// A trust's staff ordered by (family name, given name, id), filtered, after `after`.
    async fn list_staff(
        &self,
        trust_id: TrustId,
        filter: &StaffFilter,
        after: Option<&StaffCursor>,
        limit: i64,
    ) -> Result<Vec<StaffMember>>;

    /// Registers an account (AccountExists when the email is taken).
    async fn create_account(
        &self,
        id: AccountId,
        new: NewAccount,
        now: DateTime<Utc>,
    ) -> Result<Account>;
    async fn get_account(&self, id: AccountId) -> Result<Option<Account>>;
    async fn account_by_email(&self, email: &Email) -> Result<Option<Account>>;
    /// The account of an email with its password hash.
    async fn credentials(&self, email: &Email) -> Result<Option<(Account, String)>>;

    /// Makes an invitation's grants, one result per spec in order; a refused batch
    /// (TrustNotFound, ForeignOrganizations, NoAccountForEmail) writes nothing, and a repeated
    /// one makes nothing twice.
    async fn batch_grant(&self, batch: GrantBatch, now: DateTime<Utc>) -> Result<Vec<GrantResult>>;
    /// Activates an invitation's pending grants for an account; returns all its grants
    /// (AccountNotFound, AccountEmailMismatch).
    async fn activate_grants(
        &self,
        invitation_id: InvitationId,
        account_id: AccountId,
        now: DateTime<Utc>,
    ) -> Result<Vec<Grant>>;
    /// Revokes an invitation's pending (and, unless `pending_only`, active) grants; returns how
    /// many changed.
    async fn revoke_grants(
        &self,
        invitation_id: InvitationId,
        pending_only: bool,
        now: DateTime<Utc>,
    ) -> Result<u64>;
    async fn grants_of_invitation(&self, invitation_id: InvitationId) -> Result<Vec<Grant>>;
    /// A staff member's grants at the trust and its schools that are not revoked (matched by
    /// the staff email); None for an unknown staff member of the trust.
    async fn staff_grants(
        &self,
        trust_id: TrustId,
        staff_id: StaffId,
    ) -> Result<Option<Vec<Grant>>>;
    /// Revokes a staff member's grants at the trust and its schools, or only those of
    /// `target` (organisation, product); refuses (LastAccountOwner) to revoke the trust's last
    /// active Account Owner; StaffNotFound for an unknown staff member. Returns how many.
    async fn withdraw_grants(
        &self,
        trust_id: TrustId,
        staff_id: StaffId,
        target: Option<(OrganizationId, ProductKey)>,
        now: DateTime<Utc>,
    ) -> Result<u64>;
    /// The grants in force for a person: active ones of the account, pending ones of its email.
    async fn access_grants(&self, account: &Account) -> Result<Vec<Grant>>;
    /// The account's active grants of Portal roles, anywhere.
    async fn admin_grants(&self, account_id: AccountId) -> Result<Vec<AdminGrant>>;
    /// Whether the account holds pending or active access at the trust or one of its schools.
    async fn has_access_in_trust(&self, account_id: AccountId, trust_id: TrustId) -> Result<bool>;
}

/// The store for a pool.
pub fn open(pool: &DbPool) -> Arc<dyn Store> {
    pool.open::<dyn Store>(
        SERVICE,
        |db| Arc::new(SqlStore::new(db)),
        |db| Arc::new(SqlStore::new(db)),
    )
}

/// What the identity store says differently to each database: the staff sync's bulk writes
/// (PostgreSQL sends one array per column, SQLite a list of rows) and the lock that keeps two
/// syncs of one trust apart.
pub trait Backend: Dialect {
    /// Reads the trust's id inside a write transaction, locking the trust's staff directory
    /// against a concurrent sync of the same trust.
    const LOCK_TRUST: &'static str;

    /// Inserts new staff rows of a trust, `active`, created and updated at `now`.
    fn insert_staff(
        conn: &mut Self::Connection,
        trust_id: TrustId,
        rows: &[StaffRow],
        now: i64,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;

    /// Rewrites changed staff rows, making them `active` again.
    fn update_staff(
        conn: &mut Self::Connection,
        rows: &[StaffRow],
        now: i64,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;

    /// Marks staff rows `left`.
    fn mark_staff_left(
        conn: &mut Self::Connection,
        ids: &[StaffId],
        now: i64,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
}
