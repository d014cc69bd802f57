//! The store, written once for both databases.

use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::query::Query;
use sqlx::{ColumnIndex, Database};

use portal_runtime::clock::to_micros;
use portal_runtime::db::{
    AsExecutor as _, Column, Db, RowsAffected as _, Text, is_unique_violation,
};
use portal_runtime::vocab::{
    AccountId, InvitationId, ProductKey, RequestId, StaffId, StepId, TrustId, truncate,
};

use super::rows::{INVITATION_COLUMNS, InvitationRow, StepRow, bind_invitation, granted_json};
use super::{Backend, CompleteAccept, CreateOutcome, NewInvitation, Refusal, Store, Transition};
use crate::domain::{
    GrantedAccess, Invitation, LinkHash, ListFilter, NewStep, PageKey, RevokeReason, Status, Step,
    StepKind, StepOutcome,
};
use crate::error::{Error, Result};

/// The invitation service's store on one database.
#[derive(Debug, Clone)]
pub struct SqlStore<DB: Database> {
    db: Db<DB>,
}

impl<DB: Database> SqlStore<DB> {
    pub fn new(db: Db<DB>) -> Self {
        Self { db }
    }
}

static GET_INVITATION: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {INVITATION_COLUMNS} FROM invitations i WHERE i.id = $1"));

static FIND_PENDING: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {INVITATION_COLUMNS} FROM invitations i WHERE i.trust_id = $1 \
         AND i.staff_id = $2 AND i.trust_product_key = $3 AND i.status = 'PENDING'"
    )
});

static FIND_LINK: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {INVITATION_COLUMNS} FROM invitation_links l JOIN invitations i \
         ON i.id = l.invitation_id WHERE l.token_hash = $1"
    )
});

/// Claims one open step that is not leased; a revoke or activate waits for its invitation's
/// grant.
const CLAIM_STEP: &str = "UPDATE outbox SET claimed_until = $1, attempts = attempts + 1 \
     WHERE id = $2 AND done_at IS NULL AND claimed_until <= $3 \
     AND NOT (kind IN ('REVOKE', 'ACTIVATE') AND EXISTS (SELECT 1 FROM outbox g \
     WHERE g.invitation_id = outbox.invitation_id AND g.kind = 'GRANT' \
     AND g.done_at IS NULL)) \
     RETURNING id, invitation_id, kind, payload, attempts";

const FIND_CREATE_REQUEST: &str =
    "SELECT invitation_id FROM create_requests WHERE caller = $1 AND request_id = $2";

/// The pending invitation of the same person and product, if any, and whether revokes of the
/// person's earlier invitations are open: one statement.
const PENDING_AND_OPEN_REVOKES: &str = "SELECT p.id, p.expire_time, EXISTS (SELECT 1 \
     FROM outbox o JOIN invitations i ON i.id = o.invitation_id WHERE i.trust_id = $1 \
     AND i.staff_id = $2 AND o.kind = 'REVOKE' AND o.done_at IS NULL) \
     FROM (SELECT 1 AS one) AS one LEFT JOIN invitations p ON p.trust_id = $1 \
     AND p.staff_id = $2 AND p.trust_product_key = $3 AND p.status = 'PENDING'";

const INSERT_INVITATION: &str = "INSERT INTO invitations (id, trust_id, trust_name, staff_id, \
     staff_email, staff_given_name, inviter_account_id, trust_product_key, trust_role_key, \
     school_access, status, delivery, granted, skipped, expire_time, current_link_hash, \
     accepting, account_id, create_time, update_time) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
     $18, $19, $20)";

const INSERT_LINK: &str =
    "INSERT INTO invitation_links (token_hash, invitation_id, create_time) VALUES ($1, $2, $3)";

const INSERT_CREATE_REQUEST: &str =
    "INSERT INTO create_requests (caller, request_id, invitation_id) VALUES ($1, $2, $3)";

const INSERT_STEP: &str = "INSERT INTO outbox (id, invitation_id, kind, payload, attempts, \
     next_attempt_at, claimed_until, create_time) VALUES ($1, $2, $3, $4, 0, $5, $6, $5)";

const CANCEL_OPEN_EMAILS: &str = "UPDATE outbox SET done_at = $1, outcome = 'CANCELLED' \
     WHERE invitation_id = $2 AND kind = 'EMAIL' AND done_at IS NULL";

const EXPIRE_ONE: &str =
    "UPDATE invitations SET status = 'EXPIRED', update_time = $1 WHERE id = $2";

/// The other PENDING invitations of a person, by email or by staff record of the trust, that
/// no accept holds and whose link has not expired.
const SAME_PERSON_PENDING: &str = "SELECT id FROM invitations WHERE status = 'PENDING' \
     AND id <> $1 AND (staff_email = $2 OR (trust_id = $3 AND staff_id = $4)) \
     AND (expire_time IS NULL OR expire_time > $5) AND accept_until <= $6";

/// The open revoke steps of a staff member's invitations.
const OPEN_REVOKES_OF_STAFF: &str = "SELECT o.id FROM outbox o \
     JOIN invitations i ON i.id = o.invitation_id WHERE i.trust_id = $1 AND i.staff_id = $2 \
     AND o.kind = 'REVOKE' AND o.done_at IS NULL";

impl<DB> SqlStore<DB>
where
    DB: Backend,
    String: Column<DB>,
    i64: Column<DB>,
    i32: Column<DB>,
    bool: Column<DB>,
    Option<String>: Column<DB>,
    Option<i64>: Column<DB>,
    usize: ColumnIndex<DB::Row>,
    for<'s> &'s str: ColumnIndex<DB::Row>,
{
    async fn insert_step(conn: &mut DB::Connection, step: &NewStep, wall_now: i64) -> Result<()> {
        sqlx::query(INSERT_STEP)
            .bind(step.id)
            .bind(step.invitation_id)
            .bind(Text(step.kind))
            .bind(&step.payload)
            .bind(wall_now)
            .bind(step.claimed_until)
            .execute(conn.exec())
            .await?;
        Ok(())
    }

    async fn cancel_open_emails(
        conn: &mut DB::Connection,
        invitation_id: InvitationId,
        wall_now: i64,
    ) -> Result<()> {
        sqlx::query(CANCEL_OPEN_EMAILS)
            .bind(wall_now)
            .bind(invitation_id)
            .execute(conn.exec())
            .await?;
        Ok(())
    }

    async fn get_in(conn: &mut DB::Connection, id: InvitationId) -> Result<Option<Invitation>> {
        let row: Option<InvitationRow> = sqlx::query_as(&GET_INVITATION)
            .bind(id)
            .fetch_optional(conn.exec())
            .await?;
        Ok(row.map(Invitation::try_from).transpose()?)
    }

    /// The create as a transaction: where the database cannot say it in one statement, and
    /// where an expired but unswept PENDING invitation must be expired first.
    async fn create_in_transaction(&self, new: NewInvitation<'_>) -> Result<CreateOutcome> {
        let invitation = new.invitation;
        self.db
            .write("create", async |conn| {
                if let Some((caller, request_id)) = new.request {
                    let seen: Option<InvitationId> = sqlx::query_scalar(FIND_CREATE_REQUEST)
                        .bind(caller)
                        .bind(request_id)
                        .fetch_optional(conn.exec())
                        .await?;
                    if let Some(invitation_id) = seen {
                        return Ok(CreateOutcome::Replayed { invitation_id });
                    }
                }
                let (pending_id, pending_expire, earlier_revokes_open): (
                    Option<InvitationId>,
                    Option<i64>,
                    bool,
                ) = sqlx::query_as(PENDING_AND_OPEN_REVOKES)
                    .bind(invitation.trust_id)
                    .bind(invitation.staff_id)
                    .bind(&invitation.trust_access.product_key)
                    .fetch_one(conn.exec())
                    .await?;
                let mut revoke_steps = Vec::new();
                if let Some(id) = pending_id {
                    if pending_expire.is_none_or(|e| e > to_micros(new.now)) {
                        return Ok(CreateOutcome::PendingExists { invitation_id: id });
                    }
                    // Expired but not yet swept: expire it now so the new one can be made.
                    sqlx::query(EXPIRE_ONE)
                        .bind(to_micros(new.now))
                        .bind(id)
                        .execute(conn.exec())
                        .await?;
                    let step = NewStep::revoke_dropped(id);
                    Self::insert_step(conn, &step, new.wall_now).await?;
                    revoke_steps.push(step.id);
                }
                bind_invitation(sqlx::query(INSERT_INVITATION), invitation)
                    .execute(conn.exec())
                    .await?;
                Self::insert_products(conn, invitation).await?;
                // A link minted with the invitation goes out with its first email.
                if let Some(hash) = &invitation.current_link_hash {
                    sqlx::query(INSERT_LINK)
                        .bind(hash)
                        .bind(invitation.id)
                        .bind(to_micros(new.now))
                        .execute(conn.exec())
                        .await?;
                }
                if let Some((caller, request_id)) = new.request {
                    sqlx::query(INSERT_CREATE_REQUEST)
                        .bind(caller)
                        .bind(request_id)
                        .bind(invitation.id)
                        .execute(conn.exec())
                        .await?;
                }
                Self::insert_steps(conn, new.steps, new.wall_now).await?;
                Ok(CreateOutcome::Created {
                    revoke_steps,
                    earlier_revokes_open,
                })
            })
            .await
    }

    /// Every product the invitation offers (the product filter of a list), one statement.
    async fn insert_products(conn: &mut DB::Connection, invitation: &Invitation) -> Result<()> {
        let keys = invitation.product_keys();
        let values: Vec<String> = (0..keys.len())
            .map(|i| format!("($1, $2, ${})", i + 3))
            .collect();
        let sql = format!(
            "INSERT INTO invitation_products (invitation_id, trust_id, product_key) VALUES {}",
            values.join(", ")
        );
        let mut insert = sqlx::query(&sql)
            .bind(invitation.id)
            .bind(invitation.trust_id);
        for key in keys {
            insert = insert.bind(key);
        }
        insert.execute(conn.exec()).await?;
        Ok(())
    }

    /// Outbox steps, one statement.
    async fn insert_steps(
        conn: &mut DB::Connection,
        steps: &[NewStep],
        wall_now: i64,
    ) -> Result<()> {
        if steps.is_empty() {
            return Ok(());
        }
        let values: Vec<String> = (0..steps.len())
            .map(|i| {
                let b = i * 6;
                format!(
                    "(${}, ${}, ${}, ${}, 0, ${}, ${}, ${})",
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4,
                    b + 5,
                    b + 6,
                    b + 5
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO outbox (id, invitation_id, kind, payload, attempts, next_attempt_at, \
             claimed_until, create_time) VALUES {}",
            values.join(", ")
        );
        let mut insert = sqlx::query(&sql);
        for step in steps {
            insert = insert
                .bind(step.id)
                .bind(step.invitation_id)
                .bind(Text(step.kind))
                .bind(&step.payload)
                .bind(wall_now)
                .bind(step.claimed_until);
        }
        insert.execute(conn.exec()).await?;
        Ok(())
    }

    /// After a create lost a race on a unique key: the answer it would have had coming second.
    async fn create_lost_race(
        &self,
        new: NewInvitation<'_>,
        error: Error,
    ) -> Result<CreateOutcome> {
        if let Some((caller, request_id)) = new.request
            && let Some(invitation_id) = self.find_create_request(caller, request_id).await?
        {
            return Ok(CreateOutcome::Replayed { invitation_id });
        }
        let invitation = new.invitation;
        match self
            .find_pending(
                invitation.trust_id,
                invitation.staff_id,
                &invitation.trust_access.product_key,
            )
            .await?
        {
            Some(pending) => Ok(CreateOutcome::PendingExists {
                invitation_id: pending.id,
            }),
            None => Err(error),
        }
    }

    /// A change of a PENDING invitation, in one transaction: when the invitation is PENDING
    /// at `now` and no accept holds it, `update` changes its row, its unsent emails are cancelled and `queued` is
    /// queued; it is then read back. One already in `done` is returned unchanged; one in any
    /// other status is refused with it.
    async fn transition(
        &self,
        op: &'static str,
        change: Change<'_, DB>,
    ) -> Result<Option<Transition>> {
        let Change {
            id,
            now,
            done,
            update,
            queued,
            wall_now,
        } = change;
        // The answer when the invitation is not PENDING and free at `now`.
        let refused = |invitation: Invitation| match invitation.status_at(now) {
            // An accept that claimed the invitation first wins.
            Status::Pending if invitation.being_accepted(wall_now) => {
                Some(Err(Refusal::BeingAccepted))
            }
            Status::Pending => None,
            status if Some(status) == done => Some(Ok(invitation)),
            other => Some(Err(Refusal::NotPending(other))),
        };
        self.db
            .write(op, async |conn| {
                let Some(invitation) = Self::get_in(conn, id).await? else {
                    return Ok(None);
                };
                if let Some(answer) = refused(invitation) {
                    return Ok(Some(answer));
                }
                // The update is conditional on the same: a claim or change that committed
                // since the read (PostgreSQL reads without locking) makes it change nothing.
                if update.execute(conn.exec()).await?.rows_affected() == 0 {
                    let Some(invitation) = Self::get_in(conn, id).await? else {
                        return Ok(None);
                    };
                    return Ok(Some(
                        refused(invitation).unwrap_or(Err(Refusal::BeingAccepted)),
                    ));
                }
                Self::cancel_open_emails(conn, id, wall_now).await?;
                Self::insert_steps(conn, queued, wall_now).await?;
                Ok(Self::get_in(conn, id).await?.map(Ok))
            })
            .await
    }
}

/// What [`SqlStore::transition`] does to an invitation.
struct Change<'q, DB: Database> {
    id: InvitationId,
    now: DateTime<Utc>,
    /// The status in which the change is already done.
    done: Option<Status>,
    /// The statement that changes the row.
    update: Query<'q, DB, DB::Arguments<'q>>,
    /// The steps the change queues.
    queued: &'q [NewStep],
    wall_now: i64,
}

#[async_trait]
impl<DB> Store for SqlStore<DB>
where
    DB: Backend,
    String: Column<DB>,
    i64: Column<DB>,
    i32: Column<DB>,
    bool: Column<DB>,
    Option<String>: Column<DB>,
    Option<i64>: Column<DB>,
    usize: ColumnIndex<DB::Row>,
    for<'s> &'s str: ColumnIndex<DB::Row>,
{
    async fn find_create_request(
        &self,
        caller: AccountId,
        request_id: &RequestId,
    ) -> Result<Option<InvitationId>> {
        self.db
            .run("find_create_request", async |conn| {
                Ok(sqlx::query_scalar(FIND_CREATE_REQUEST)
                    .bind(caller)
                    .bind(request_id)
                    .fetch_optional(conn.exec())
                    .await?)
            })
            .await
    }

    async fn find_pending(
        &self,
        trust_id: TrustId,
        staff_id: StaffId,
        product_key: &ProductKey,
    ) -> Result<Option<Invitation>> {
        self.db
            .run("find_pending", async |conn| {
                let row: Option<InvitationRow> = sqlx::query_as(&FIND_PENDING)
                    .bind(trust_id)
                    .bind(staff_id)
                    .bind(product_key)
                    .fetch_optional(conn.exec())
                    .await?;
                Ok(row.map(Invitation::try_from).transpose()?)
            })
            .await
    }

    async fn create(&self, new: NewInvitation<'_>) -> Result<CreateOutcome> {
        let made = match DB::create_in_one_statement(&self.db, new).await {
            Ok(Some(outcome)) => Ok(outcome),
            Ok(None) => self.create_in_transaction(new).await,
            Err(error) => Err(error),
        };
        match made {
            // A concurrent create won the race: answer as if it had come first.
            Err(Error::Database(error)) if is_unique_violation(&error) => {
                self.create_lost_race(new, Error::Database(error)).await
            }
            other => other,
        }
    }

    async fn get(&self, id: InvitationId) -> Result<Option<Invitation>> {
        self.db
            .run("get", async |conn| Self::get_in(conn, id).await)
            .await
    }

    async fn list(
        &self,
        filter: &ListFilter,
        after: Option<&PageKey>,
        limit: i64,
    ) -> Result<Vec<Invitation>> {
        let mut sql =
            format!("SELECT {INVITATION_COLUMNS} FROM invitations i WHERE i.trust_id = $1");
        let mut n = 1;
        let mut next = || {
            n += 1;
            n
        };
        if filter.status.is_some() {
            sql.push_str(&format!(" AND i.status = ${}", next()));
        }
        if filter.staff_id.is_some() {
            sql.push_str(&format!(" AND i.staff_id = ${}", next()));
        }
        if filter.product_key.is_some() {
            sql.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM invitation_products p \
                 WHERE p.invitation_id = i.id AND p.product_key = ${})",
                next()
            ));
        }
        if after.is_some() {
            let (a, b) = (next(), next());
            sql.push_str(&format!(
                " AND (i.create_time < ${a} OR (i.create_time = ${a} AND i.id < ${b}))"
            ));
        }
        sql.push_str(&format!(
            " ORDER BY i.create_time DESC, i.id DESC LIMIT ${}",
            next()
        ));
        self.db
            .run("list", async |conn| {
                let mut query = sqlx::query_as(&sql).bind(filter.trust_id);
                if let Some(status) = filter.status {
                    query = query.bind(Text(status));
                }
                if let Some(staff_id) = filter.staff_id {
                    query = query.bind(staff_id);
                }
                if let Some(product_key) = &filter.product_key {
                    query = query.bind(product_key);
                }
                if let Some(key) = after {
                    query = query.bind(key.create_time).bind(key.id);
                }
                let rows: Vec<InvitationRow> = query.bind(limit).fetch_all(conn.exec()).await?;
                Ok(rows
                    .into_iter()
                    .map(Invitation::try_from)
                    .collect::<Result<_, _>>()?)
            })
            .await
    }

    async fn resend(
        &self,
        id: InvitationId,
        now: DateTime<Utc>,
        expire_time: DateTime<Utc>,
        email: &NewStep,
        wall_now: i64,
    ) -> Result<Option<Transition>> {
        let update = sqlx::query(
            "UPDATE invitations SET expire_time = $1, current_link_hash = NULL, \
             update_time = $2 WHERE id = $3 AND status = 'PENDING' AND accept_until <= $4",
        )
        .bind(to_micros(expire_time))
        .bind(to_micros(now))
        .bind(id)
        .bind(wall_now);
        let change = Change {
            id,
            now,
            done: None,
            update,
            queued: std::slice::from_ref(email),
            wall_now,
        };
        self.transition("resend", change).await
    }

    async fn revoke(
        &self,
        id: InvitationId,
        now: DateTime<Utc>,
        revoke: &NewStep,
        wall_now: i64,
    ) -> Result<Option<Transition>> {
        let update = sqlx::query(
            "UPDATE invitations SET status = 'REVOKED', update_time = $1 \
             WHERE id = $2 AND status = 'PENDING' AND accept_until <= $3",
        )
        .bind(to_micros(now))
        .bind(id)
        .bind(wall_now);
        let change = Change {
            id,
            now,
            done: Some(Status::Revoked),
            update,
            queued: std::slice::from_ref(revoke),
            wall_now,
        };
        self.transition("revoke", change).await
    }

    async fn grant_to_account(
        &self,
        id: InvitationId,
        account_id: AccountId,
        now: DateTime<Utc>,
        steps: &[NewStep],
        wall_now: i64,
    ) -> Result<Option<Transition>> {
        let update = sqlx::query(
            "UPDATE invitations SET status = 'GRANTED', delivery = 'NEW_PRODUCT_NOTICE', \
             account_id = $1, expire_time = NULL, update_time = $2 \
             WHERE id = $3 AND status = 'PENDING' AND accept_until <= $4",
        )
        .bind(account_id)
        .bind(to_micros(now))
        .bind(id)
        .bind(wall_now);
        let change = Change {
            id,
            now,
            done: None,
            update,
            queued: steps,
            wall_now,
        };
        self.transition("grant_to_account", change).await
    }

    async fn revoke_leaver(
        &self,
        trust_id: TrustId,
        staff_id: StaffId,
        now: DateTime<Utc>,
        wall_now: i64,
    ) -> Result<Vec<StepId>> {
        self.db
            .write("revoke_leaver", async |conn| {
                let pending: Vec<InvitationId> = sqlx::query_scalar(
                    "SELECT id FROM invitations WHERE trust_id = $1 AND staff_id = $2 \
                     AND status = 'PENDING'",
                )
                .bind(trust_id)
                .bind(staff_id)
                .fetch_all(conn.exec())
                .await?;
                let mut steps = Vec::new();
                for id in pending {
                    // An accept that claimed it first wins, as against any revoke.
                    let revoked = sqlx::query(
                        "UPDATE invitations SET status = 'REVOKED', revoke_reason = $1, \
                         update_time = $2 WHERE id = $3 AND status = 'PENDING' \
                         AND accept_until <= $4",
                    )
                    .bind(Text(RevokeReason::StaffLeft))
                    .bind(to_micros(now))
                    .bind(id)
                    .bind(wall_now)
                    .execute(conn.exec())
                    .await?;
                    if revoked.rows_affected() == 0 {
                        continue;
                    }
                    Self::cancel_open_emails(conn, id, wall_now).await?;
                    let step = NewStep::revoke_dropped(id);
                    Self::insert_step(conn, &step, wall_now).await?;
                    steps.push(step.id);
                }
                Ok(steps)
            })
            .await
    }

    async fn feed_position(&self, name: &str) -> Result<Option<i64>> {
        self.db
            .run("feed_position", async |conn| {
                Ok(
                    sqlx::query_scalar("SELECT position FROM feed_positions WHERE name = $1")
                        .bind(name.to_string())
                        .fetch_optional(conn.exec())
                        .await?,
                )
            })
            .await
    }

    async fn set_feed_position(&self, name: &str, position: i64) -> Result<()> {
        self.db
            .run("set_feed_position", async |conn| {
                sqlx::query(
                    "INSERT INTO feed_positions (name, position) VALUES ($1, $2) \
                     ON CONFLICT (name) DO UPDATE SET position = excluded.position \
                     WHERE feed_positions.position < excluded.position",
                )
                .bind(name.to_string())
                .bind(position)
                .execute(conn.exec())
                .await?;
                Ok(())
            })
            .await
    }

    async fn expire_due(
        &self,
        now: DateTime<Utc>,
        limit: i64,
        wall_now: i64,
    ) -> Result<Vec<InvitationId>> {
        let sql = format!(
            "UPDATE invitations SET status = 'EXPIRED', update_time = $1 \
             WHERE id IN (SELECT id FROM invitations WHERE status = 'PENDING' \
             AND expire_time <= $1 AND accept_until <= $3 ORDER BY expire_time LIMIT $2 {}) \
             AND status = 'PENDING' AND accept_until <= $3 RETURNING id",
            DB::CLAIM_ROWS
        );
        self.db
            .write("expire_due", async |conn| {
                let ids: Vec<InvitationId> = sqlx::query_scalar(&sql)
                    .bind(to_micros(now))
                    .bind(limit)
                    .bind(wall_now)
                    .fetch_all(conn.exec())
                    .await?;
                for &id in &ids {
                    Self::cancel_open_emails(conn, id, wall_now).await?;
                    let step = NewStep::revoke_dropped(id);
                    Self::insert_step(conn, &step, wall_now).await?;
                }
                Ok(ids)
            })
            .await
    }

    async fn find_link(&self, hash: &LinkHash) -> Result<Option<Invitation>> {
        self.db
            .run("find_link", async |conn| {
                let row: Option<InvitationRow> = sqlx::query_as(&FIND_LINK)
                    .bind(hash)
                    .fetch_optional(conn.exec())
                    .await?;
                Ok(row.map(Invitation::try_from).transpose()?)
            })
            .await
    }

    async fn install_link(
        &self,
        invitation_id: InvitationId,
        hash: &LinkHash,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        self.db
            .write("install_link", async |conn| {
                let updated = sqlx::query(
                    "UPDATE invitations SET current_link_hash = $1 \
                     WHERE id = $2 AND status = 'PENDING'",
                )
                .bind(hash)
                .bind(invitation_id)
                .execute(conn.exec())
                .await?;
                let updated = updated.rows_affected();
                if updated == 0 {
                    return Ok(false);
                }
                sqlx::query(INSERT_LINK)
                    .bind(hash)
                    .bind(invitation_id)
                    .bind(to_micros(now))
                    .execute(conn.exec())
                    .await?;
                Ok(true)
            })
            .await
    }

    async fn claim_accept(
        &self,
        id: InvitationId,
        hash: &LinkHash,
        now: DateTime<Utc>,
        until: i64,
    ) -> Result<bool> {
        self.db
            .run("claim_accept", async |conn| {
                let claimed = sqlx::query(
                    "UPDATE invitations SET accepting = $1, accept_until = $2 \
                     WHERE id = $3 AND status = 'PENDING' AND current_link_hash = $4 \
                     AND (expire_time IS NULL OR expire_time > $5)",
                )
                .bind(true)
                .bind(until)
                .bind(id)
                .bind(hash)
                .bind(to_micros(now))
                .execute(conn.exec())
                .await?;
                Ok(claimed.rows_affected() == 1)
            })
            .await
    }

    async fn release_accept(&self, id: InvitationId) -> Result<()> {
        self.db
            .run("release_accept", async |conn| {
                sqlx::query("UPDATE invitations SET accept_until = 0 WHERE id = $1")
                    .bind(id)
                    .execute(conn.exec())
                    .await?;
                Ok(())
            })
            .await
    }

    async fn complete_accept(&self, accept: CompleteAccept<'_>) -> Result<Option<Vec<StepId>>> {
        let CompleteAccept {
            id,
            account_id,
            request_id,
            granted,
            now,
            wall_now,
        } = accept;
        self.db
            .write("complete_accept", async |conn| {
                let updated = sqlx::query(
                    "UPDATE invitations SET status = 'ACCEPTED', account_id = $1, granted = $2, \
                     update_time = $3, accept_until = 0 WHERE id = $4 AND status = 'PENDING'",
                )
                .bind(account_id)
                .bind(granted_json(granted))
                .bind(to_micros(now))
                .bind(id)
                .execute(conn.exec())
                .await?;
                let updated = updated.rows_affected();
                if updated == 0 {
                    return Ok(None);
                }
                if let Some(request_id) = request_id {
                    sqlx::query(
                        "INSERT INTO accept_requests (invitation_id, request_id, account_id) \
                         VALUES ($1, $2, $3)",
                    )
                    .bind(id)
                    .bind(request_id)
                    .bind(account_id)
                    .execute(conn.exec())
                    .await?;
                }
                let Some(accepted) = Self::get_in(conn, id).await? else {
                    return Ok(Some(Vec::new()));
                };
                // Every other pending invitation of the same person is theirs now too.
                let others: Vec<InvitationId> = sqlx::query_scalar(SAME_PERSON_PENDING)
                    .bind(id)
                    .bind(&accepted.staff_email)
                    .bind(accepted.trust_id)
                    .bind(accepted.staff_id)
                    .bind(to_micros(now))
                    .bind(wall_now)
                    .fetch_all(conn.exec())
                    .await?;
                let mut steps = Vec::new();
                for other in others {
                    // Conditional, like every change of a pending invitation: a revoke or
                    // accept of it that committed meanwhile keeps it.
                    let settled = sqlx::query(
                        "UPDATE invitations SET status = 'ACCEPTED', account_id = $1, \
                         settled_by = $2, update_time = $3 \
                         WHERE id = $4 AND status = 'PENDING' AND accept_until <= $5",
                    )
                    .bind(account_id)
                    .bind(id)
                    .bind(to_micros(now))
                    .bind(other)
                    .bind(wall_now)
                    .execute(conn.exec())
                    .await?;
                    if settled.rows_affected() == 0 {
                        continue;
                    }
                    Self::cancel_open_emails(conn, other, wall_now).await?;
                    let step = NewStep::activate(other, account_id);
                    Self::insert_step(conn, &step, wall_now).await?;
                    steps.push(step.id);
                }
                Ok(Some(steps))
            })
            .await
    }

    async fn find_accept_request(
        &self,
        invitation_id: InvitationId,
        request_id: &RequestId,
    ) -> Result<Option<AccountId>> {
        self.db
            .run("find_accept_request", async |conn| {
                Ok(sqlx::query_scalar(
                    "SELECT account_id FROM accept_requests \
                     WHERE invitation_id = $1 AND request_id = $2",
                )
                .bind(invitation_id)
                .bind(request_id)
                .fetch_optional(conn.exec())
                .await?)
            })
            .await
    }

    async fn update_granted(&self, id: InvitationId, granted: &[GrantedAccess]) -> Result<()> {
        self.db
            .run("update_granted", async |conn| {
                sqlx::query("UPDATE invitations SET granted = $1 WHERE id = $2")
                    .bind(granted_json(granted))
                    .bind(id)
                    .execute(conn.exec())
                    .await?;
                Ok(())
            })
            .await
    }

    async fn claim_due(&self, wall_now: i64, lease_until: i64, limit: i64) -> Result<Vec<Step>> {
        let sql = format!(
            "UPDATE outbox SET claimed_until = $1, attempts = attempts + 1 \
             WHERE id IN (SELECT o.id FROM outbox o WHERE o.done_at IS NULL \
             AND o.next_attempt_at <= $2 AND o.claimed_until <= $2 \
             AND NOT (o.kind IN ('REVOKE', 'ACTIVATE') AND EXISTS (SELECT 1 FROM outbox g \
             WHERE g.invitation_id = o.invitation_id AND g.kind = 'GRANT' \
             AND g.done_at IS NULL)) \
             AND NOT (o.kind = 'GRANT' AND EXISTS (SELECT 1 FROM invitations gi \
             JOIN invitations ri ON ri.trust_id = gi.trust_id \
             AND ri.staff_id = gi.staff_id AND ri.id <> gi.id \
             JOIN outbox r ON r.invitation_id = ri.id AND r.kind = 'REVOKE' \
             AND r.done_at IS NULL WHERE gi.id = o.invitation_id)) \
             ORDER BY o.next_attempt_at LIMIT $3 {}) \
             RETURNING id, invitation_id, kind, payload, attempts",
            DB::CLAIM_ROWS
        );
        self.db
            .write("claim_due", async |conn| {
                let rows: Vec<StepRow> = sqlx::query_as(&sql)
                    .bind(lease_until)
                    .bind(wall_now)
                    .bind(limit)
                    .fetch_all(conn.exec())
                    .await?;
                Ok(rows.into_iter().map(Step::from).collect())
            })
            .await
    }

    async fn claim_step(
        &self,
        id: StepId,
        wall_now: i64,
        lease_until: i64,
    ) -> Result<Option<Step>> {
        self.db
            .run("claim_step", async |conn| {
                let row: Option<StepRow> = sqlx::query_as(CLAIM_STEP)
                    .bind(lease_until)
                    .bind(id)
                    .bind(wall_now)
                    .fetch_optional(conn.exec())
                    .await?;
                Ok(row.map(Step::from))
            })
            .await
    }

    async fn finish_steps(
        &self,
        ids: &[StepId],
        outcome: StepOutcome,
        wall_now: i64,
    ) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.db
            .write("finish_steps", async |conn| {
                // Marking a step done need not wait for the disk: lost in a crash, the step
                // runs again, and every step is safe to repeat (grants and revokes are
                // idempotent in identity; an email is at worst sent twice, as after any crash
                // between sending and recording it).
                if let Some(relaxed) = DB::RELAXED_COMMIT {
                    sqlx::query(relaxed).execute(conn.exec()).await?;
                }
                // Bounded statements: both databases cap the number of parameters.
                for chunk in ids.chunks(500) {
                    let placeholders: Vec<String> =
                        (0..chunk.len()).map(|i| format!("${}", i + 3)).collect();
                    let sql = format!(
                        "UPDATE outbox SET done_at = $1, outcome = $2, claimed_until = 0 \
                         WHERE id IN ({}) AND done_at IS NULL",
                        placeholders.join(", ")
                    );
                    let mut update = sqlx::query(&sql).bind(wall_now).bind(Text(outcome));
                    for &id in chunk {
                        update = update.bind(id);
                    }
                    update.execute(conn.exec()).await?;
                }
                Ok(())
            })
            .await
    }

    async fn retry_step(&self, id: StepId, next_attempt_at: i64, error: &str) -> Result<()> {
        self.db
            .run("retry_step", async |conn| {
                sqlx::query(
                    "UPDATE outbox SET next_attempt_at = $1, claimed_until = 0, last_error = $2 \
                     WHERE id = $3 AND done_at IS NULL",
                )
                .bind(next_attempt_at)
                .bind(truncate(error, 500))
                .bind(id)
                .execute(conn.exec())
                .await?;
                Ok(())
            })
            .await
    }

    async fn fail_step(&self, id: StepId, error: &str, wall_now: i64) -> Result<()> {
        self.db
            .run("fail_step", async |conn| {
                sqlx::query(
                    "UPDATE outbox SET done_at = $1, outcome = $2, claimed_until = 0, \
                     last_error = $3 WHERE id = $4 AND done_at IS NULL",
                )
                .bind(wall_now)
                .bind(Text(StepOutcome::Failed))
                .bind(truncate(error, 500))
                .bind(id)
                .execute(conn.exec())
                .await?;
                Ok(())
            })
            .await
    }

    async fn open_steps(&self, invitation_id: InvitationId, kind: StepKind) -> Result<Vec<StepId>> {
        self.db
            .run("open_steps", async |conn| {
                Ok(sqlx::query_scalar(
                    "SELECT id FROM outbox WHERE invitation_id = $1 AND kind = $2 \
                     AND done_at IS NULL ORDER BY create_time",
                )
                .bind(invitation_id)
                .bind(Text(kind))
                .fetch_all(conn.exec())
                .await?)
            })
            .await
    }

    async fn outbox_backlog(&self) -> Result<i64> {
        self.db
            .run("outbox_backlog", async |conn| {
                Ok(
                    sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE done_at IS NULL")
                        .fetch_one(conn.exec())
                        .await?,
                )
            })
            .await
    }

    async fn open_revokes_of_staff(
        &self,
        trust_id: TrustId,
        staff_id: StaffId,
    ) -> Result<Vec<StepId>> {
        self.db
            .run("open_revokes_of_staff", async |conn| {
                Ok(sqlx::query_scalar(OPEN_REVOKES_OF_STAFF)
                    .bind(trust_id)
                    .bind(staff_id)
                    .fetch_all(conn.exec())
                    .await?)
            })
            .await
    }
}
