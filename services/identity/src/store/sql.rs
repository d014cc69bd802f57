//! The identity store, written once for SQLite and PostgreSQL. What the two databases say
//! differently is asked of [`Backend`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use portal_runtime::auth::admin::portal_product;
use portal_runtime::clock::{from_micros, to_micros};
use portal_runtime::db::{
    AsExecutor as _, Column, Db, RowsAffected as _, Statement, Text, is_unique_violation,
};
use portal_runtime::vocab::{
    AccountId, Email, GrantId, IdSet, InvitationId, OrgKind, ProductKey, RequestId, RoleKey,
    SchoolId, StaffId, TrustId,
};
use sqlx::{ColumnIndex, Database, Encode, FromRow, Type};

use super::rows::{
    AccountRow, AdminGrantRow, CredentialsRow, ExistingStaffRow, GRANT_COLUMNS, GrantRow,
    STAFF_COLUMNS, SchoolRow, StaffMemberRow, StaffWithAccountRow, TrustRow, grants,
};
use super::{Backend, Store};
use crate::domain::{
    Account, AdminGrant, ExistingStaff, Grant, GrantBatch, GrantOutcome, GrantResult, GrantStatus,
    NewAccount, NewSchool, NewTrust, OrganizationId, School, StaffCursor, StaffEntry, StaffFilter,
    StaffMember, StaffRecord, StaffStatus, StatusChange, StatusChangeQuery, SyncSummary, Trust,
    classify_grants, plan_sync, replaced_by, staff_search_key,
};
use crate::error::{Error, Result};

const INSERT_TRUST: &str =
    "INSERT INTO trusts (id, name, request_id, create_time) VALUES ($1, $2, $3, $4)";
const GET_TRUST: &str = "SELECT id, name, create_time FROM trusts WHERE id = $1";
const TRUST_BY_REQUEST: &str = "SELECT id, name, create_time FROM trusts WHERE request_id = $1";

const INSERT_SCHOOL: &str = "INSERT INTO schools (id, trust_id, name, urn, request_id, \
                             create_time) VALUES ($1, $2, $3, $4, $5, $6)";
const GET_SCHOOL: &str = "SELECT id, trust_id, name, urn, create_time FROM schools WHERE id = $1";
const SCHOOL_BY_REQUEST: &str =
    "SELECT id, trust_id, name, urn, create_time FROM schools WHERE request_id = $1";
const LIST_SCHOOLS: &str = "SELECT id, trust_id, name, urn, create_time FROM schools \
                            WHERE trust_id = $1 AND id > $2 ORDER BY id LIMIT $3";

/// Followed by a list of rows.
const INSERT_STAFF: &str = "INSERT INTO staff (id, trust_id, mis_id, given_name, family_name, \
                            email, job_title, status, search_key, create_time, update_time) ";
const EXISTING_STAFF: &str = "SELECT id, mis_id, given_name, family_name, email, job_title, \
                              status FROM staff WHERE trust_id = $1";
const GET_STAFF: &str = "SELECT id, trust_id, mis_id, given_name, family_name, email, \
                         job_title, status, create_time, update_time \
                         FROM staff WHERE id = $1 AND trust_id = $2";
const GET_STAFF_WITH_ACCOUNT: &str = "SELECT s.id, s.trust_id, s.mis_id, s.given_name, \
                                      s.family_name, s.email, s.job_title, s.status, \
                                      s.create_time, s.update_time, a.id AS account_id \
                                      FROM staff s LEFT JOIN accounts a ON a.email = s.email \
                                      WHERE s.id = $1 AND s.trust_id = $2";

const INSERT_ACCOUNT: &str = "INSERT INTO accounts (id, email, given_name, family_name, \
                              password_hash, invitation_id, create_time) \
                              VALUES ($1, $2, $3, $4, $5, $6, $7)";
const GET_ACCOUNT: &str =
    "SELECT id, email, given_name, family_name, create_time FROM accounts WHERE id = $1";
const ACCOUNT_BY_EMAIL: &str =
    "SELECT id, email, given_name, family_name, create_time FROM accounts WHERE email = $1";
const CREDENTIALS: &str = "SELECT id, email, given_name, family_name, create_time, \
                           password_hash FROM accounts WHERE email = $1";
const ACCOUNT_ID_BY_EMAIL: &str = "SELECT id FROM accounts WHERE email = $1";
const ACCOUNT_EMAIL: &str = "SELECT email FROM accounts WHERE id = $1";

/// The trust and its schools in one statement: no row means no such trust.
const TRUST_AND_SCHOOLS: &str = "SELECT t.id, s.id FROM trusts t \
                                 LEFT JOIN schools s ON s.trust_id = t.id WHERE t.id = $1";
/// Followed by a list of rows.
const INSERT_GRANTS: &str = "INSERT INTO grants (id, invitation_id, trust_id, \
                             organization_kind, organization_id, product_key, role_key, email, \
                             staff_id, account_id, status, create_time, update_time, \
                             previous_role_key) ";
/// One role per product per organisation: the grant a new one replaces is revoked.
/// By the grant's natural key (an invitation makes each grant once).
const REVOKE_REPLACED: &str = "UPDATE grants SET status = 'revoked', update_time = $1 \
                               WHERE invitation_id = $2 AND organization_id = $3 \
                               AND product_key = $4 AND role_key = $5 AND status <> 'revoked'";
const INVITATION_GRANTS: &str = "SELECT id, invitation_id, trust_id, organization_kind, \
                                 organization_id, product_key, role_key, email, account_id, \
                                 status, create_time, update_time, previous_role_key \
                                 FROM grants WHERE invitation_id = $1 ORDER BY id";
/// The grants of an invitation and those held by an email (not revoked).
const RELEVANT_GRANTS: &str = "SELECT id, invitation_id, trust_id, organization_kind, \
                               organization_id, product_key, role_key, email, account_id, \
                               status, create_time, update_time, previous_role_key \
                               FROM grants WHERE invitation_id = $1 \
                               OR (email = $2 AND status <> 'revoked') ORDER BY id";
const ACTIVATE_GRANTS: &str = "UPDATE grants SET status = 'active', account_id = $1, \
                               update_time = $2 WHERE invitation_id = $3 AND status = 'pending'";
const REVOKE_PENDING: &str = "UPDATE grants SET status = 'revoked', update_time = $1 \
                              WHERE invitation_id = $2 AND status = 'pending'";
const REVOKE_IN_FORCE: &str = "UPDATE grants SET status = 'revoked', update_time = $1 \
                               WHERE invitation_id = $2 \
                               AND status IN ('pending', 'active', 'suspended')";
const ACTIVE_ACCOUNT_OWNERS: &str = "SELECT COUNT(*) FROM grants WHERE trust_id = $1 \
                                     AND organization_kind = $2 AND product_key = $3 \
                                     AND role_key = $4 AND status = 'active'";
/// The Portal role that owns a trust's account.
const ACCOUNT_OWNER: &str = "account-owner";
const ACCESS_GRANTS: &str = "SELECT id, invitation_id, trust_id, organization_kind, \
                             organization_id, product_key, role_key, email, account_id, status, \
                             create_time, update_time, previous_role_key \
                             FROM grants WHERE account_id = $1 AND status = 'active' \
                             UNION ALL \
                             SELECT id, invitation_id, trust_id, organization_kind, \
                             organization_id, product_key, role_key, email, account_id, status, \
                             create_time, update_time, previous_role_key \
                             FROM grants WHERE email = $2 AND status = 'pending' \
                             AND account_id IS NULL";
const ADMIN_GRANTS: &str = "SELECT trust_id, organization_kind, role_key FROM grants \
                            WHERE account_id = $1 AND status = 'active' AND product_key = $2";
const HAS_ACCESS_IN_TRUST: &str = "SELECT 1 FROM grants \
                                   WHERE account_id = $1 AND status = 'active' AND trust_id = $2 \
                                   UNION ALL \
                                   SELECT 1 FROM grants g JOIN accounts a ON a.email = g.email \
                                   WHERE a.id = $1 AND g.status = 'pending' AND g.trust_id = $2 \
                                   LIMIT 1";

/// The store over one database.
pub struct SqlStore<DB: Database> {
    db: Db<DB>,
}

/// What BatchGrant's one guarded insert settled.
enum Guarded {
    /// Every grant, made or found.
    Settled(Vec<GrantResult>),
    /// Nothing written: the transaction decides every grant (already held, already granted,
    /// an unknown trust or a foreign school).
    Nothing,
    /// Some grants settled; those at `unsettled` were freed meanwhile (a concurrent revoke)
    /// and are made by the transaction.
    Partly {
        results: Vec<Option<GrantResult>>,
        unsettled: Vec<usize>,
    },
}

#[async_trait]
impl<DB> Store for SqlStore<DB>
where
    DB: Backend,
    String: Column<DB>,
    i64: Column<DB>,
    Option<String>: Column<DB>,
    usize: ColumnIndex<DB::Row>,
    for<'s> &'s str: ColumnIndex<DB::Row>,
{
    async fn create_trust(&self, id: TrustId, new: NewTrust, now: DateTime<Utc>) -> Result<Trust> {
        self.db
            .run("create_trust", async |conn| {
                if let Some(request_id) = &new.request_id
                    && let Some(existing) =
                        Self::find::<TrustRow, _, _>(conn, TRUST_BY_REQUEST, request_id).await?
                {
                    return Ok(existing);
                }
                let inserted = sqlx::query(INSERT_TRUST)
                    .bind(id)
                    .bind(&new.name)
                    .bind(new.request_id.as_ref().map(RequestId::to_string))
                    .bind(to_micros(now))
                    .execute(conn.exec())
                    .await;
                match (inserted, &new.request_id) {
                    (Ok(_), _) => Ok(Trust {
                        id,
                        name: new.name,
                        create_time: from_micros(to_micros(now)),
                    }),
                    // A concurrent call with the same request id won the race.
                    (Err(e), Some(request_id)) if is_unique_violation(&e) => {
                        Self::find::<TrustRow, _, _>(conn, TRUST_BY_REQUEST, request_id)
                            .await?
                            .ok_or(Error::Database(e))
                    }
                    (Err(e), _) => Err(e.into()),
                }
            })
            .await
    }

    async fn get_trust(&self, id: TrustId) -> Result<Option<Trust>> {
        self.db
            .run("get_trust", async |conn| {
                Self::find::<TrustRow, _, _>(conn, GET_TRUST, id).await
            })
            .await
    }

    async fn create_school(
        &self,
        id: SchoolId,
        new: NewSchool,
        now: DateTime<Utc>,
    ) -> Result<School> {
        self.db
            .run("create_school", async |conn| {
                if let Some(request_id) = &new.request_id
                    && let Some(existing) =
                        Self::find::<SchoolRow, _, _>(conn, SCHOOL_BY_REQUEST, request_id).await?
                {
                    return Ok(existing);
                }
                let trust = sqlx::query(GET_TRUST)
                    .bind(new.trust_id)
                    .fetch_optional(conn.exec())
                    .await?;
                if trust.is_none() {
                    return Err(Error::TrustNotFound(new.trust_id));
                }
                let inserted = sqlx::query(INSERT_SCHOOL)
                    .bind(id)
                    .bind(new.trust_id)
                    .bind(&new.name)
                    .bind(&new.urn)
                    .bind(new.request_id.as_ref().map(RequestId::to_string))
                    .bind(to_micros(now))
                    .execute(conn.exec())
                    .await;
                match inserted {
                    Ok(_) => Ok(School {
                        id,
                        trust_id: new.trust_id,
                        name: new.name,
                        urn: new.urn,
                        create_time: from_micros(to_micros(now)),
                    }),
                    Err(e) if is_unique_violation(&e) => {
                        if let Some(request_id) = &new.request_id
                            && let Some(existing) =
                                Self::find::<SchoolRow, _, _>(conn, SCHOOL_BY_REQUEST, request_id)
                                    .await?
                        {
                            return Ok(existing);
                        }
                        match new.urn {
                            Some(urn) => Err(Error::SchoolUrnExists(urn)),
                            None => Err(e.into()),
                        }
                    }
                    Err(e) => Err(e.into()),
                }
            })
            .await
    }

    async fn get_school(&self, id: SchoolId) -> Result<Option<School>> {
        self.db
            .run("get_school", async |conn| {
                Self::find::<SchoolRow, _, _>(conn, GET_SCHOOL, id).await
            })
            .await
    }

    async fn list_schools(
        &self,
        trust_id: TrustId,
        after: Option<SchoolId>,
        limit: i64,
    ) -> Result<Vec<School>> {
        self.db
            .run("list_schools", async |conn| {
                let rows: Vec<SchoolRow> = sqlx::query_as(LIST_SCHOOLS)
                    .bind(trust_id)
                    // Every id sorts after the empty text.
                    .bind(after.map(|id| id.to_string()).unwrap_or_default())
                    .bind(limit)
                    .fetch_all(conn.exec())
                    .await?;
                Ok(rows.into_iter().map(School::from).collect())
            })
            .await
    }

    async fn sync_staff(
        &self,
        trust_id: TrustId,
        records: Vec<StaffRecord>,
        now: DateTime<Utc>,
    ) -> Result<SyncSummary> {
        let now = to_micros(now);
        self.db
            .write("sync_staff", async |conn| {
                let trust = sqlx::query(DB::LOCK_TRUST)
                    .bind(trust_id)
                    .fetch_optional(conn.exec())
                    .await?;
                if trust.is_none() {
                    return Err(Error::TrustNotFound(trust_id));
                }
                let rows: Vec<ExistingStaffRow> = sqlx::query_as(EXISTING_STAFF)
                    .bind(trust_id)
                    .fetch_all(conn.exec())
                    .await?;
                let existing: Vec<ExistingStaff> =
                    rows.into_iter().map(ExistingStaff::from).collect();
                let plan = plan_sync(&existing, records);
                drop(existing);
                let leavers = !plan.mark_left.is_empty();
                let owners_before = match leavers {
                    true => Self::active_account_owners(conn, trust_id).await?,
                    false => 0,
                };
                let mut summary = plan.summary;
                // Leavers' grants are suspended before their records change (keyed by the
                // email they had); returners' are restored after (by the email they have).
                if leavers {
                    summary.suspended_grants =
                        Self::suspend_grants(conn, trust_id, &plan.mark_left, now).await?;
                }
                DB::insert_staff(conn, trust_id, &plan.inserts, now).await?;
                DB::update_staff(conn, &plan.updates, now).await?;
                DB::mark_staff_left(conn, &plan.mark_left, now).await?;
                if !plan.reactivated.is_empty() {
                    summary.restored_grants =
                        Self::restore_grants(conn, trust_id, &plan.reactivated, now).await?;
                }
                let changed: Vec<StaffId> = plan
                    .mark_left
                    .iter()
                    .chain(&plan.reactivated)
                    .copied()
                    .collect();
                Self::note_status_changes(conn, trust_id, &changed, now).await?;
                if leavers && owners_before > 0 {
                    summary.last_account_owner_left =
                        Self::active_account_owners(conn, trust_id).await? == 0;
                }
                Ok(summary)
            })
            .await
    }

    async fn insert_staff_if_missing(
        &self,
        trust_id: TrustId,
        members: Vec<(StaffId, StaffRecord)>,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        if members.is_empty() {
            return Ok(0);
        }
        let now = to_micros(now);
        self.db
            .run("insert_staff_if_missing", async |conn| {
                let mut statement = Statement::<DB>::new(INSERT_STAFF);
                statement.values(members, |row, (id, record)| {
                    let key = staff_search_key(&record.given_name, &record.family_name);
                    row.bind(id)
                        .bind(trust_id)
                        .bind(record.mis_id)
                        .bind(record.given_name)
                        .bind(record.family_name)
                        .bind(record.email)
                        .bind(record.job_title)
                        .bind(Text(StaffStatus::Active))
                        .bind(key)
                        .bind(now)
                        .bind(now);
                });
                statement.push(" ON CONFLICT DO NOTHING");
                let (sql, arguments) = statement.into_parts()?;
                let done = sqlx::query_with(&sql, arguments)
                    .execute(conn.exec())
                    .await?;
                Ok(done.rows_affected())
            })
            .await
    }

    async fn get_staff(&self, trust_id: TrustId, staff_id: StaffId) -> Result<Option<StaffMember>> {
        self.db
            .run("get_staff", async |conn| {
                let row: Option<StaffMemberRow> = sqlx::query_as(GET_STAFF)
                    .bind(staff_id)
                    .bind(trust_id)
                    .fetch_optional(conn.exec())
                    .await?;
                Ok(row.map(StaffMember::from))
            })
            .await
    }

    async fn staff_status_changes(&self, query: &StatusChangeQuery) -> Result<Vec<StatusChange>> {
        let (after_micros, after_id) = match query.after {
            Some(cursor) => (cursor.micros, cursor.staff_id.to_string()),
            None => (i64::MIN, String::new()),
        };
        self.db
            .run("staff_status_changes", async |conn| {
                let rows: Vec<(TrustId, StaffId, Text<StaffStatus>, i64)> = sqlx::query_as(
                    "SELECT trust_id, id, status, status_time FROM staff \
                     WHERE status_time > 0 AND status_time >= $1 \
                     AND (status_time > $2 OR (status_time = $2 AND id > $3)) \
                     ORDER BY status_time, id LIMIT $4",
                )
                .bind(query.since)
                .bind(after_micros)
                .bind(after_id)
                .bind(query.limit)
                .fetch_all(conn.exec())
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(trust_id, staff_id, status, micros)| StatusChange {
                        trust_id,
                        staff_id,
                        status: status.into_inner(),
                        change_time: from_micros(micros),
                    })
                    .collect())
            })
            .await
    }

    async fn get_staff_with_account(
        &self,
        trust_id: TrustId,
        staff_id: StaffId,
    ) -> Result<Option<StaffEntry>> {
        self.db
            .run("get_staff_with_account", async |conn| {
                let row: Option<StaffWithAccountRow> = sqlx::query_as(GET_STAFF_WITH_ACCOUNT)
                    .bind(staff_id)
                    .bind(trust_id)
                    .fetch_optional(conn.exec())
                    .await?;
                Ok(row.map(|row| StaffEntry {
                    member: row.staff.into(),
                    account_id: row.account_id,
                }))
            })
            .await
    }

    async fn list_staff(
        &self,
        trust_id: TrustId,
        filter: &StaffFilter,
        after: Option<&StaffCursor>,
        limit: i64,
    ) -> Result<Vec<StaffMember>> {
        self.db
            .run("list_staff", async |conn| {
                let mut statement = Statement::<DB>::new("SELECT ");
                statement
                    .push(STAFF_COLUMNS)
                    .push(" FROM staff WHERE trust_id = ")
                    .bind(trust_id);
                if let Some(status) = filter.status {
                    statement.push(" AND status = ").bind(Text(status));
                }
                if let Some(needle) = &filter.name_contains {
                    statement
                        .push(" AND search_key LIKE ")
                        .bind(Self::containing(needle))
                        .push(" ESCAPE '\\'");
                }
                if let Some(email) = &filter.email {
                    statement.push(" AND email = ").bind(email.clone());
                }
                if let Some(cursor) = after {
                    statement
                        .push(" AND (family_name, given_name, id) > (")
                        .bind(cursor.family_name.clone())
                        .push(", ")
                        .bind(cursor.given_name.clone())
                        .push(", ")
                        .bind(cursor.id)
                        .push(")");
                }
                statement
                    .push(" ORDER BY family_name, given_name, id LIMIT ")
                    .bind(limit);
                let (sql, arguments) = statement.into_parts()?;
                let rows: Vec<StaffMemberRow> = sqlx::query_as_with(&sql, arguments)
                    .fetch_all(conn.exec())
                    .await?;
                Ok(rows.into_iter().map(StaffMember::from).collect())
            })
            .await
    }

    async fn create_account(
        &self,
        id: AccountId,
        new: NewAccount,
        now: DateTime<Utc>,
    ) -> Result<Account> {
        self.db
            .run("create_account", async |conn| {
                let inserted = sqlx::query(INSERT_ACCOUNT)
                    .bind(id)
                    .bind(&new.email)
                    .bind(&new.given_name)
                    .bind(&new.family_name)
                    .bind(&new.password_hash)
                    .bind(new.invitation_id.map(|id| id.to_string()))
                    .bind(to_micros(now))
                    .execute(conn.exec())
                    .await;
                match inserted {
                    Ok(_) => Ok(Account {
                        id,
                        email: new.email,
                        given_name: new.given_name,
                        family_name: new.family_name,
                        create_time: from_micros(to_micros(now)),
                    }),
                    Err(e) if is_unique_violation(&e) => Err(Error::AccountExists),
                    Err(e) => Err(e.into()),
                }
            })
            .await
    }

    async fn get_account(&self, id: AccountId) -> Result<Option<Account>> {
        self.db
            .run("get_account", async |conn| {
                Self::find::<AccountRow, _, _>(conn, GET_ACCOUNT, id).await
            })
            .await
    }

    async fn account_by_email(&self, email: &Email) -> Result<Option<Account>> {
        self.db
            .run("account_by_email", async |conn| {
                Self::find::<AccountRow, _, _>(conn, ACCOUNT_BY_EMAIL, email).await
            })
            .await
    }

    async fn credentials(&self, email: &Email) -> Result<Option<(Account, String)>> {
        self.db
            .run("credentials", async |conn| {
                Self::find::<CredentialsRow, _, _>(conn, CREDENTIALS, email).await
            })
            .await
    }

    async fn batch_grant(&self, batch: GrantBatch, now: DateTime<Utc>) -> Result<Vec<GrantResult>> {
        // Fast path, one statement: every grant inserted at once, guarded so nothing is
        // written unless the trust exists and every school is one of its own. Grants the
        // invitation or the person already hold are left out by the unique indices and
        // classified afterwards; only an answer that is not plain goes to a transaction.
        let guarded = self
            .db
            .run("batch_grant", async |conn| {
                Self::insert_guarded(conn, &batch, now).await
            })
            .await?;
        match guarded {
            Guarded::Settled(results) => Ok(results),
            Guarded::Nothing => self.batch_grant_in_tx(&batch, now).await,
            Guarded::Partly {
                mut results,
                unsettled,
            } => {
                let retry = GrantBatch {
                    specs: unsettled.iter().map(|i| batch.specs[*i].clone()).collect(),
                    ..batch
                };
                let retried = self.batch_grant_in_tx(&retry, now).await?;
                for (index, result) in unsettled.into_iter().zip(retried) {
                    results[index] = Some(result);
                }
                Self::all_settled(results)
            }
        }
    }

    async fn activate_grants(
        &self,
        invitation_id: InvitationId,
        account_id: AccountId,
        now: DateTime<Utc>,
    ) -> Result<Vec<Grant>> {
        self.db
            .write("activate_grants", async |conn| {
                let email: Option<Email> = sqlx::query_scalar(ACCOUNT_EMAIL)
                    .bind(account_id)
                    .fetch_optional(conn.exec())
                    .await?;
                let Some(email) = email else {
                    return Err(Error::AccountNotFound(account_id));
                };
                let grants = Self::invitation_grants(conn, invitation_id).await?;
                if grants.iter().any(|g| g.email != email) {
                    return Err(Error::AccountEmailMismatch);
                }
                let done = sqlx::query(ACTIVATE_GRANTS)
                    .bind(account_id)
                    .bind(to_micros(now))
                    .bind(invitation_id)
                    .execute(conn.exec())
                    .await?;
                if done.rows_affected() > 0 {
                    Self::invitation_grants(conn, invitation_id).await
                } else {
                    Ok(grants)
                }
            })
            .await
    }

    async fn revoke_grants(
        &self,
        invitation_id: InvitationId,
        pending_only: bool,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let statement = if pending_only {
            REVOKE_PENDING
        } else {
            REVOKE_IN_FORCE
        };
        self.db
            .run("revoke_grants", async |conn| {
                let done = sqlx::query(statement)
                    .bind(to_micros(now))
                    .bind(invitation_id)
                    .execute(conn.exec())
                    .await?;
                Ok(done.rows_affected())
            })
            .await
    }

    async fn grants_of_invitation(&self, invitation_id: InvitationId) -> Result<Vec<Grant>> {
        self.db
            .run("grants_of_invitation", async |conn| {
                Self::invitation_grants(conn, invitation_id).await
            })
            .await
    }

    async fn staff_grants(
        &self,
        trust_id: TrustId,
        staff_id: StaffId,
    ) -> Result<Option<Vec<Grant>>> {
        self.db
            .run("staff_grants", async |conn| {
                let Some(email) = Self::staff_email(conn, trust_id, staff_id).await? else {
                    return Ok(None);
                };
                let rows: Vec<GrantRow> = sqlx::query_as(&format!(
                    "SELECT {GRANT_COLUMNS} FROM grants WHERE trust_id = $1 AND email = $2 \
                     AND status <> 'revoked' \
                     ORDER BY organization_kind DESC, organization_id, product_key"
                ))
                .bind(trust_id)
                .bind(&email)
                .fetch_all(conn.exec())
                .await?;
                Ok(Some(grants(rows)))
            })
            .await
    }

    async fn withdraw_grants(
        &self,
        trust_id: TrustId,
        staff_id: StaffId,
        target: Option<(OrganizationId, ProductKey)>,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let mut scope = String::from(
            "trust_id = $1 AND email = $2 AND status IN ('pending', 'active', 'suspended')",
        );
        if target.is_some() {
            scope.push_str(" AND organization_id = $3 AND product_key = $4");
        }
        self.db
            .write("withdraw_grants", async |conn| {
                // Withdrawals at one trust run one at a time: two administrators withdrawing
                // the trust's two Account Owners at once must not both see the other remain.
                sqlx::query(&format!(
                    "SELECT id FROM trusts WHERE id = $1 {}",
                    DB::LOCK_ROWS
                ))
                .bind(trust_id)
                .fetch_optional(conn.exec())
                .await?;
                let Some(email) = Self::staff_email(conn, trust_id, staff_id).await? else {
                    return Err(Error::StaffNotFound(staff_id));
                };
                // The trust keeps an active Account Owner.
                let owners_sql = format!(
                    "SELECT COUNT(*) FROM grants WHERE {scope} AND status = 'active' \
                     AND organization_kind = ${a} AND product_key = ${b} AND role_key = ${c}",
                    a = if target.is_some() { 5 } else { 3 },
                    b = if target.is_some() { 6 } else { 4 },
                    c = if target.is_some() { 7 } else { 5 },
                );
                let mut owners = sqlx::query_scalar(&owners_sql).bind(trust_id).bind(&email);
                if let Some((org, product)) = &target {
                    owners = owners.bind(*org).bind(product);
                }
                let theirs: i64 = owners
                    .bind(Text(OrgKind::Trust))
                    .bind(portal_product())
                    .bind(ACCOUNT_OWNER.to_string())
                    .fetch_one(conn.exec())
                    .await?;
                if theirs > 0 && Self::active_account_owners(conn, trust_id).await? <= theirs {
                    return Err(Error::LastAccountOwner);
                }
                let sql = format!(
                    "UPDATE grants SET status = 'revoked', suspended_from = NULL, \
                     update_time = ${n} WHERE {scope}",
                    n = if target.is_some() { 5 } else { 3 }
                );
                let mut update = sqlx::query(&sql).bind(trust_id).bind(&email);
                if let Some((org, product)) = &target {
                    update = update.bind(*org).bind(product);
                }
                let done = update.bind(to_micros(now)).execute(conn.exec()).await?;
                Ok(done.rows_affected())
            })
            .await
    }

    async fn access_grants(&self, account: &Account) -> Result<Vec<Grant>> {
        self.db
            .run("access_grants", async |conn| {
                let rows: Vec<GrantRow> = sqlx::query_as(ACCESS_GRANTS)
                    .bind(account.id)
                    .bind(&account.email)
                    .fetch_all(conn.exec())
                    .await?;
                Ok(grants(rows))
            })
            .await
    }

    async fn admin_grants(&self, account_id: AccountId) -> Result<Vec<AdminGrant>> {
        self.db
            .run("admin_grants", async |conn| {
                let rows: Vec<AdminGrantRow> = sqlx::query_as(ADMIN_GRANTS)
                    .bind(account_id)
                    .bind(portal_product())
                    .fetch_all(conn.exec())
                    .await?;
                Ok(rows.into_iter().map(AdminGrant::from).collect())
            })
            .await
    }

    async fn has_access_in_trust(&self, account_id: AccountId, trust_id: TrustId) -> Result<bool> {
        self.db
            .run("has_access_in_trust", async |conn| {
                let hit = sqlx::query(HAS_ACCESS_IN_TRUST)
                    .bind(account_id)
                    .bind(trust_id)
                    .fetch_optional(conn.exec())
                    .await?;
                Ok(hit.is_some())
            })
            .await
    }
}

impl<DB> SqlStore<DB>
where
    DB: Backend,
    String: Column<DB>,
    i64: Column<DB>,
    Option<String>: Column<DB>,
    usize: ColumnIndex<DB::Row>,
    for<'s> &'s str: ColumnIndex<DB::Row>,
{
    pub fn new(db: Db<DB>) -> Self {
        Self { db }
    }

    /// The row `sql` finds by its one parameter, `key`, as a domain value.
    async fn find<'k, R, K, T>(
        conn: &mut DB::Connection,
        sql: &'static str,
        key: K,
    ) -> Result<Option<T>>
    where
        R: for<'r> FromRow<'r, DB::Row> + Send + Unpin,
        K: 'k + Encode<'k, DB> + Type<DB> + Send,
        T: From<R>,
    {
        let row: Option<R> = sqlx::query_as(sql)
            .bind(key)
            .fetch_optional(conn.exec())
            .await?;
        Ok(row.map(T::from))
    }

    /// The LIKE pattern of text containing `needle`, with `%`, `_` and `\` escaped for
    /// `ESCAPE '\'`.
    fn containing(needle: &str) -> String {
        let mut pattern = String::with_capacity(needle.len() + 2);
        pattern.push('%');
        for c in needle.chars() {
            if matches!(c, '%' | '_' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('%');
        pattern
    }

    /// The email of a staff member of the trust.
    async fn staff_email(
        conn: &mut DB::Connection,
        trust_id: TrustId,
        staff_id: StaffId,
    ) -> Result<Option<Email>> {
        Ok(
            sqlx::query_scalar("SELECT email FROM staff WHERE trust_id = $1 AND id = $2")
                .bind(trust_id)
                .bind(staff_id)
                .fetch_optional(conn.exec())
                .await?,
        )
    }

    /// Active Portal Account Owners of the trust at trust level.
    async fn active_account_owners(conn: &mut DB::Connection, trust_id: TrustId) -> Result<i64> {
        Ok(sqlx::query_scalar(ACTIVE_ACCOUNT_OWNERS)
            .bind(trust_id)
            .bind(Text(OrgKind::Trust))
            .bind(portal_product())
            .bind(ACCOUNT_OWNER.to_string())
            .fetch_one(conn.exec())
            .await?)
    }

    /// Suspends the grants in force at the trust and its schools of the staff members
    /// `left` (matched by their staff email), remembering what each was.
    async fn suspend_grants(
        conn: &mut DB::Connection,
        trust_id: TrustId,
        left: &[StaffId],
        now: i64,
    ) -> Result<u32> {
        let sql = format!(
            "UPDATE grants SET suspended_from = status, status = 'suspended', update_time = $1 \
             WHERE trust_id = $2 AND status IN ('pending', 'active') AND email IN \
             (SELECT email FROM staff WHERE trust_id = $2 AND {})",
            DB::in_list("id", 3)
        );
        let done = sqlx::query(&sql)
            .bind(now)
            .bind(trust_id)
            .bind(DB::text_list(left.iter().map(|id| id.to_string())))
            .execute(conn.exec())
            .await?;
        Ok(u32::try_from(done.rows_affected()).unwrap_or(u32::MAX))
    }

    /// Puts the suspended grants at the trust of the staff members `back` in force again.
    async fn restore_grants(
        conn: &mut DB::Connection,
        trust_id: TrustId,
        back: &[StaffId],
        now: i64,
    ) -> Result<u32> {
        let sql = format!(
            "UPDATE grants SET status = suspended_from, suspended_from = NULL, \
             update_time = $1 WHERE trust_id = $2 AND status = 'suspended' AND email IN \
             (SELECT email FROM staff WHERE trust_id = $2 AND {})",
            DB::in_list("id", 3)
        );
        let done = sqlx::query(&sql)
            .bind(now)
            .bind(trust_id)
            .bind(DB::text_list(back.iter().map(|id| id.to_string())))
            .execute(conn.exec())
            .await?;
        Ok(u32::try_from(done.rows_affected()).unwrap_or(u32::MAX))
    }

    /// Records when the staff members `changed` became LEFT or ACTIVE again (the feed of
    /// ListStaffStatusChanges).
    async fn note_status_changes(
        conn: &mut DB::Connection,
        trust_id: TrustId,
        changed: &[StaffId],
        now: i64,
    ) -> Result<()> {
        if changed.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "UPDATE staff SET status_time = $1 WHERE trust_id = $2 AND {}",
            DB::in_list("id", 3)
        );
        sqlx::query(&sql)
            .bind(now)
            .bind(trust_id)
            .bind(DB::text_list(changed.iter().map(|id| id.to_string())))
            .execute(conn.exec())
            .await?;
        Ok(())
    }

    /// The account registered with the batch's email, which active grants need.
    async fn account_of(conn: &mut DB::Connection, email: &Email) -> Result<AccountId> {
        let id: Option<AccountId> = sqlx::query_scalar(ACCOUNT_ID_BY_EMAIL)
            .bind(email)
            .fetch_optional(conn.exec())
            .await?;
        id.ok_or(Error::NoAccountForEmail)
    }

    async fn invitation_grants(
        conn: &mut DB::Connection,
        invitation_id: InvitationId,
    ) -> Result<Vec<Grant>> {
        let rows: Vec<GrantRow> = sqlx::query_as(INVITATION_GRANTS)
            .bind(invitation_id)
            .fetch_all(conn.exec())
            .await?;
        Ok(grants(rows))
    }

    /// The grants of an invitation, and those held by an email (not revoked), in one
    /// statement.
    async fn relevant_grants(
        conn: &mut DB::Connection,
        invitation_id: InvitationId,
        email: &Email,
    ) -> Result<(Vec<Grant>, Vec<Grant>)> {
        let rows: Vec<GrantRow> = sqlx::query_as(RELEVANT_GRANTS)
            .bind(invitation_id)
            .bind(email)
            .fetch_all(conn.exec())
            .await?;
        let grants = grants(rows);
        let of_invitation = grants
            .iter()
            .filter(|g| g.invitation_id == invitation_id)
            .cloned()
            .collect();
        let held = grants
            .into_iter()
            .filter(|g| g.email == *email && g.status != GrantStatus::Revoked)
            .collect();
        Ok((of_invitation, held))
    }

    /// BatchGrant's fast path: every grant inserted by one statement that writes nothing
    /// unless the trust exists and every school is one of its own; what it leaves undecided
    /// is classified on one more read.
    async fn insert_guarded(
        conn: &mut DB::Connection,
        batch: &GrantBatch,
        now: DateTime<Utc>,
    ) -> Result<Guarded> {
        let account_id = match batch.activate {
            true => Some(Self::account_of(conn, &batch.email).await?),
            false => None,
        };
        if batch.specs.is_empty() {
            return Ok(Guarded::Nothing);
        }
        let status = batch.status();
        let micros = to_micros(now);
        let ids: Vec<GrantId> = batch.specs.iter().map(|_| GrantId::generate()).collect();
        let mut statement = Statement::<DB>::new("WITH v (id, kind, org, product, role) AS (");
        statement.values(batch.specs.iter().zip(&ids), |row, (spec, id)| {
            row.bind(*id)
                .bind(Text(spec.kind))
                .bind(spec.organization_id)
                .bind(spec.product_key.clone())
                .bind(spec.role_key.clone());
        });
        statement.push(
            ") INSERT INTO grants (id, invitation_id, trust_id, organization_kind, \
             organization_id, product_key, role_key, email, staff_id, account_id, status, \
             create_time, update_time) SELECT v.id, ",
        );
        statement
            .bind(batch.invitation_id)
            .push(", ")
            .bind(batch.trust_id)
            .push(", v.kind, v.org, v.product, v.role, ")
            .bind(batch.email.clone())
            .push(", ")
            .bind(batch.staff_id.map(|id| id.to_string()))
            .push(", ")
            .bind(account_id.map(|id| id.to_string()))
            .push(", ")
            .bind(Text(status))
            .push(", ")
            .bind(micros)
            .push(", ")
            .bind(micros)
            .push(" FROM v WHERE EXISTS (SELECT 1 FROM trusts t WHERE t.id = ")
            .bind(batch.trust_id)
            .push(") AND NOT EXISTS (SELECT 1 FROM v f WHERE f.kind = ")
            .bind(Text(OrgKind::School))
            .push(
                " AND NOT EXISTS (SELECT 1 FROM schools s WHERE s.id = f.org \
                 AND s.trust_id = ",
            )
            .bind(batch.trust_id)
            .push(")) ON CONFLICT DO NOTHING RETURNING id");
        let (sql, arguments) = statement.into_parts()?;
        let inserted: IdSet = sqlx::query_scalar_with::<_, GrantId, _>(&sql, arguments)
            .fetch_all(conn.exec())
            .await?
            .into_iter()
            .map(|id| id.as_u128())
            .collect();
        // The rows are what was bound: no need to read them back.
        let mut results: Vec<Option<GrantResult>> = batch
            .specs
            .iter()
            .zip(&ids)
            .map(|(spec, id)| {
                inserted.contains(&id.as_u128()).then(|| {
                    let grant = Grant {
                        id: *id,
                        invitation_id: batch.invitation_id,
                        trust_id: batch.trust_id,
                        kind: spec.kind,
                        organization_id: spec.organization_id,
                        product_key: spec.product_key.clone(),
                        role_key: spec.role_key.clone(),
                        email: batch.email.clone(),
                        account_id,
                        status,
                        create_time: from_micros(micros),
                        update_time: from_micros(micros),
                        previous_role_key: None,
                    };
                    GrantResult {
                        grant,
                        outcome: GrantOutcome::Created,
                    }
                })
            })
            .collect();
        if inserted.len() == batch.specs.len() {
            return Self::all_settled(results).map(Guarded::Settled);
        }
        if inserted.is_empty() {
            return Ok(Guarded::Nothing);
        }
        // Some made, the rest held already: classify the rest on a fresh read.
        let (of_invitation, held) =
            Self::relevant_grants(conn, batch.invitation_id, &batch.email).await?;
        let mut unsettled = Vec::new();
        for (index, result) in results.iter_mut().enumerate() {
            if result.is_some() {
                continue;
            }
            let spec = std::slice::from_ref(&batch.specs[index]);
            match classify_grants(spec, &of_invitation, &held).pop().flatten() {
                Some(settled) => *result = Some(settled),
                None => unsettled.push(index),
            }
        }
        if unsettled.is_empty() {
            Self::all_settled(results).map(Guarded::Settled)
        } else {
            Ok(Guarded::Partly { results, unsettled })
        }
    }

    /// BatchGrant in one transaction: the organisations checked, the relevant grants read and
    /// classified, the missing ones inserted.
    async fn batch_grant_in_tx(
        &self,
        batch: &GrantBatch,
        now: DateTime<Utc>,
    ) -> Result<Vec<GrantResult>> {
        let micros = to_micros(now);
        self.db
            .write("batch_grant_in_tx", async |conn| {
                let organizations: Vec<(TrustId, Option<SchoolId>)> =
                    sqlx::query_as(TRUST_AND_SCHOOLS)
                        .bind(batch.trust_id)
                        .fetch_all(conn.exec())
                        .await?;
                if organizations.is_empty() {
                    return Err(Error::TrustNotFound(batch.trust_id));
                }
                let schools: IdSet = organizations
                    .iter()
                    .filter_map(|(_, school)| school.map(|id| id.as_u128()))
                    .collect();
                let foreign: Vec<usize> = batch
                    .specs
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| {
                        s.kind == OrgKind::School && !schools.contains(&s.organization_id.as_u128())
                    })
                    .map(|(i, _)| i)
                    .collect();
                if !foreign.is_empty() {
                    return Err(Error::ForeignOrganizations(foreign));
                }
                let account_id = match batch.activate {
                    true => Some(Self::account_of(conn, &batch.email).await?),
                    false => None,
                };
                let status = batch.status();

                let (of_invitation, held) =
                    Self::relevant_grants(conn, batch.invitation_id, &batch.email).await?;
                let mut results = classify_grants(&batch.specs, &of_invitation, &held);

                let to_make: Vec<(usize, GrantId)> = results
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| r.is_none())
                    .map(|(i, _)| (i, GrantId::generate()))
                    .collect();
                // One role per product per organisation: a grant of another role of the same
                // product at the same organisation is revoked, and the new one names it.
                let mut replaced: Vec<Option<RoleKey>> = vec![None; batch.specs.len()];
                for (index, _) in &to_make {
                    if let Some(old) = replaced_by(&batch.specs[*index], &held) {
                        sqlx::query(REVOKE_REPLACED)
                            .bind(micros)
                            .bind(old.invitation_id)
                            .bind(old.organization_id)
                            .bind(&old.product_key)
                            .bind(&old.role_key)
                            .execute(conn.exec())
                            .await?;
                        replaced[*index] = Some(old.role_key.clone());
                    }
                }
                if !to_make.is_empty() {
                    let mut statement = Statement::<DB>::new(INSERT_GRANTS);
                    statement.values(&to_make, |row, (index, id)| {
                        let spec = &batch.specs[*index];
                        row.bind(*id)
                            .bind(batch.invitation_id)
                            .bind(batch.trust_id)
                            .bind(Text(spec.kind))
                            .bind(spec.organization_id)
                            .bind(spec.product_key.clone())
                            .bind(spec.role_key.clone())
                            .bind(batch.email.clone())
                            .bind(batch.staff_id.map(|id| id.to_string()))
                            .bind(account_id.map(|id| id.to_string()))
                            .bind(Text(status))
                            .bind(micros)
                            .bind(micros)
                            .bind(replaced[*index].clone().map(RoleKey::into_string));
                    });
                    // A concurrent call may have made some of them meanwhile: those rows are
                    // skipped here and classified again below.
                    statement
                        .push(" ON CONFLICT DO NOTHING RETURNING ")
                        .push(GRANT_COLUMNS);
                    let (sql, arguments) = statement.into_parts()?;
                    let rows: Vec<GrantRow> = sqlx::query_as_with(&sql, arguments)
                        .fetch_all(conn.exec())
                        .await?;
                    let made = grants(rows);
                    let (of_invitation, held) = if made.len() == to_make.len() {
                        (made, Vec::new())
                    } else {
                        Self::relevant_grants(conn, batch.invitation_id, &batch.email).await?
                    };
                    for (index, id) in &to_make {
                        let spec = std::slice::from_ref(&batch.specs[*index]);
                        let made = of_invitation.iter().find(|g| g.id == *id);
                        results[*index] = match made {
                            Some(grant) => Some(GrantResult {
                                grant: grant.clone(),
                                outcome: match grant.previous_role_key {
                                    Some(_) => GrantOutcome::RoleChanged,
                                    None => GrantOutcome::Created,
                                },
                            }),
                            None => classify_grants(spec, &of_invitation, &held).pop().flatten(),
                        };
                    }
                }
                Self::all_settled(results)
            })
            .await
    }

    /// Every grant of a batch with its outcome, or an internal error if one was left
    /// undecided.
    fn all_settled(results: Vec<Option<GrantResult>>) -> Result<Vec<GrantResult>> {
        results
            .into_iter()
            .map(|r| {
                r.ok_or_else(|| {
                    Error::Internal(anyhow::anyhow!("a grant was neither made nor found"))
                })
            })
            .collect()
    }
}
