//! Storage of the identity service: one trait, one SQL body for SQLite and PostgreSQL.

mod postgres;
mod sql;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use portal_runtime::clock::from_micros;
use portal_runtime::db::DbPool;
use portal_runtime::types::Email;

use crate::domain::{
    Account, AdminGrant, Grant, GrantBatch, GrantOutcome, GrantStatus, NewAccount, NewSchool,
    NewTrust, OrgKind, School, StaffCursor, StaffFilter, StaffMember, StaffRecord, StaffStatus,
    SyncSummary, Trust,
};
use crate::error::{IdentityError, Result};

pub use sql::SqlStore;

/// Everything the identity service keeps.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Creates a trust; with a request id already used, returns the trust that id created.
    async fn create_trust(&self, new: NewTrust) -> Result<Trust>;
    async fn get_trust(&self, id: &str) -> Result<Option<Trust>>;
    /// Creates a school (TrustNotFound, SchoolUrnExists); idempotent per request id.
    async fn create_school(&self, new: NewSchool) -> Result<School>;
    async fn get_school(&self, id: &str) -> Result<Option<School>>;
    /// A trust's schools ordered by id, after `after`, at most `limit`.
    async fn list_schools(
        &self,
        trust_id: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<School>>;

    /// Applies a full snapshot of a trust's staff in one transaction (TrustNotFound). MIS ids
    /// of the snapshot must be unique.
    async fn sync_staff(
        &self,
        trust_id: &str,
        records: Vec<StaffRecord>,
        now: DateTime<Utc>,
    ) -> Result<SyncSummary>;
    /// Inserts staff members with fixed ids, leaving existing ids and MIS ids alone (seeding).
    /// Returns how many were inserted.
    async fn insert_staff_if_missing(
        &self,
        trust_id: &str,
        members: Vec<(String, StaffRecord)>,
        now: DateTime<Utc>,
    ) -> Result<u64>;
    async fn get_staff(&self, trust_id: &str, staff_id: &str) -> Result<Option<StaffMember>>;
    /// A staff member with the id of the account registered with their email, if any; one
    /// query.
    async fn get_staff_with_account(
        &self,
        trust_id: &str,
        staff_id: &str,
    ) -> Result<Option<(StaffMember, Option<String>)>>;
    /// A trust's staff ordered by (family name, given name, id), filtered, after `after`.
    async fn list_staff(
        &self,
        trust_id: &str,
        filter: &StaffFilter,
        after: Option<&StaffCursor>,
        limit: i64,
    ) -> Result<Vec<StaffMember>>;

    /// Registers an account (AccountExists when the email is taken).
    async fn create_account(&self, new: NewAccount) -> Result<Account>;
    async fn get_account(&self, id: &str) -> Result<Option<Account>>;
    async fn account_by_email(&self, email: &Email) -> Result<Option<Account>>;
    /// The account of an email with its password hash.
    async fn credentials(&self, email: &Email) -> Result<Option<(Account, String)>>;

    /// Makes an invitation's grants, one result per spec in order; a refused batch
    /// (TrustNotFound, ForeignOrganizations, NoAccountForEmail) writes nothing, and a repeated
    /// one makes nothing twice.
    async fn batch_grant(&self, batch: GrantBatch) -> Result<Vec<(Grant, GrantOutcome)>>;
    /// Activates an invitation's pending grants for an account; returns all its grants
    /// (AccountNotFound, AccountEmailMismatch).
    async fn activate_grants(
        &self,
        invitation_id: &str,
        account_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<Grant>>;
    /// Revokes an invitation's pending (and, unless `pending_only`, active) grants; returns how
    /// many changed.
    async fn revoke_grants(
        &self,
        invitation_id: &str,
        pending_only: bool,
        now: DateTime<Utc>,
    ) -> Result<u64>;
    async fn grants_of_invitation(&self, invitation_id: &str) -> Result<Vec<Grant>>;
    /// The grants in force for a person: active ones of the account, pending ones of its email.
    async fn access_grants(&self, account: &Account) -> Result<Vec<Grant>>;
    /// The account's active Portal administrator-role grants, anywhere.
    async fn admin_grants(&self, account_id: &str) -> Result<Vec<AdminGrant>>;
    /// Whether the account holds pending or active access at the trust or one of its schools.
    async fn has_access_in_trust(&self, account_id: &str, trust_id: &str) -> Result<bool>;
}

/// The store for a pool.
pub fn open(pool: &DbPool) -> Arc<dyn Store> {
    match pool {
        DbPool::Sqlite(pool) => Arc::new(SqlStore::new(pool.clone())),
        DbPool::Postgres(pool) => Arc::new(SqlStore::new(pool.clone())),
    }
}

fn corrupt(what: &str, value: &str) -> IdentityError {
    IdentityError::Internal(anyhow::anyhow!("stored {what} `{value}` is not valid"))
}

fn stored_email(text: &str) -> Result<Email> {
    Email::parse(text).map_err(|_| corrupt("email", "(hidden)"))
}

#[derive(sqlx::FromRow)]
struct TrustRow {
    id: String,
    name: String,
    create_time: i64,
}

impl From<TrustRow> for Trust {
    fn from(row: TrustRow) -> Self {
        Trust {
            id: row.id,
            name: row.name,
            create_time: from_micros(row.create_time),
        }
    }
}

#[derive(sqlx::FromRow)]
struct SchoolRow {
    id: String,
    trust_id: String,
    name: String,
    urn: Option<String>,
    create_time: i64,
}

impl From<SchoolRow> for School {
    fn from(row: SchoolRow) -> Self {
        School {
            id: row.id,
            trust_id: row.trust_id,
            name: row.name,
            urn: row.urn,
            create_time: from_micros(row.create_time),
        }
    }
}

#[derive(sqlx::FromRow)]
struct StaffWithAccountRow {
    #[sqlx(flatten)]
    staff: StaffDbRow,
    account_id: Option<String>,
}

#[derive(sqlx::FromRow)]
struct StaffDbRow {
    id: String,
    trust_id: String,
    mis_id: String,
    given_name: String,
    family_name: String,
    email: String,
    job_title: String,
    status: String,
    create_time: i64,
    update_time: i64,
}

impl TryFrom<StaffDbRow> for StaffMember {
    type Error = IdentityError;

    fn try_from(row: StaffDbRow) -> Result<Self> {
        Ok(StaffMember {
            status: StaffStatus::from_db(&row.status)
                .ok_or_else(|| corrupt("staff status", &row.status))?,
            email: stored_email(&row.email)?,
            id: row.id,
            trust_id: row.trust_id,
            mis_id: row.mis_id,
            given_name: row.given_name,
            family_name: row.family_name,
            job_title: row.job_title,
            create_time: from_micros(row.create_time),
            update_time: from_micros(row.update_time),
        })
    }
}

#[derive(sqlx::FromRow)]
struct AccountRow {
    id: String,
    email: String,
    given_name: String,
    family_name: String,
    create_time: i64,
}

impl TryFrom<AccountRow> for Account {
    type Error = IdentityError;

    fn try_from(row: AccountRow) -> Result<Self> {
        Ok(Account {
            email: stored_email(&row.email)?,
            id: row.id,
            given_name: row.given_name,
            family_name: row.family_name,
            create_time: from_micros(row.create_time),
        })
    }
}

#[derive(sqlx::FromRow)]
struct CredentialsRow {
    id: String,
    email: String,
    given_name: String,
    family_name: String,
    create_time: i64,
    password_hash: String,
}

#[derive(sqlx::FromRow)]
struct GrantDbRow {
    id: String,
    invitation_id: String,
    trust_id: String,
    organization_kind: String,
    organization_id: String,
    product_key: String,
    role_key: String,
    email: String,
    account_id: Option<String>,
    status: String,
    create_time: i64,
    update_time: i64,
}

impl TryFrom<GrantDbRow> for Grant {
    type Error = IdentityError;

    fn try_from(row: GrantDbRow) -> Result<Self> {
        Ok(Grant {
            kind: OrgKind::from_db(&row.organization_kind)
                .ok_or_else(|| corrupt("organization kind", &row.organization_kind))?,
            status: GrantStatus::from_db(&row.status)
                .ok_or_else(|| corrupt("grant status", &row.status))?,
            email: stored_email(&row.email)?,
            id: row.id,
            invitation_id: row.invitation_id,
            trust_id: row.trust_id,
            organization_id: row.organization_id,
            product_key: row.product_key,
            role_key: row.role_key,
            account_id: row.account_id,
            create_time: from_micros(row.create_time),
            update_time: from_micros(row.update_time),
        })
    }
}

fn grants_from(rows: Vec<GrantDbRow>) -> Result<Vec<Grant>> {
    rows.into_iter().map(Grant::try_from).collect()
}

const TRUST_COLUMNS: &str = "id, name, create_time";
const SCHOOL_COLUMNS: &str = "id, trust_id, name, urn, create_time";
const STAFF_COLUMNS: &str = "id, trust_id, mis_id, given_name, family_name, email, job_title, \
                             status, create_time, update_time";
const ACCOUNT_COLUMNS: &str = "id, email, given_name, family_name, create_time";
const GRANT_COLUMNS: &str = "id, invitation_id, trust_id, organization_kind, organization_id, \
                             product_key, role_key, email, account_id, status, create_time, \
                             update_time";

/// Escapes `%`, `_` and `\` for a LIKE pattern with `ESCAPE '\'`.
fn like_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
