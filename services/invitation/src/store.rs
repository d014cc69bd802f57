//! Storage of invitations, links, idempotency keys and the outbox, on SQLite or PostgreSQL.
//!
//! One body of SQL serves both databases ([`SqlStore`] is generated for each by a macro); the
//! only difference is how workers claim rows: `FOR UPDATE SKIP LOCKED` on PostgreSQL, where
//! several replicas may run at once, and SQLite's single writer (`BEGIN IMMEDIATE`) elsewhere.

use std::marker::PhantomData;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;

use portal_runtime::clock::{from_micros, to_micros};
use portal_runtime::db::{DbPool, is_unique_violation};
use portal_runtime::types::Email;

use crate::domain::{
    Delivery, GrantedAccess, Invitation, SchoolAccess, SkippedAccess, Status, TrustAccess,
};

pub type StoreResult<T> = Result<T, sqlx::Error>;

/// A step carried out after a commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    /// BatchGrant of the invitation's grants.
    Grant,
    /// RevokeGrants of the invitation (withdrawn or expired).
    Revoke,
    /// The invitation email.
    Email,
}

impl StepKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::Grant => "GRANT",
            StepKind::Revoke => "REVOKE",
            StepKind::Email => "EMAIL",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "GRANT" => Some(StepKind::Grant),
            "REVOKE" => Some(StepKind::Revoke),
            "EMAIL" => Some(StepKind::Email),
            _ => None,
        }
    }
}

/// A new outbox row.
#[derive(Debug, Clone)]
pub struct NewStep {
    pub id: String,
    pub invitation_id: String,
    pub kind: StepKind,
    pub payload: String,
    /// Wall-clock micros before which no worker may claim it: a step the caller runs inline
    /// right after the commit is inserted already leased to it.
    pub claimed_until: i64,
}

/// An outbox row claimed by a worker.
#[derive(Debug, Clone)]
pub struct Step {
    pub id: String,
    pub invitation_id: String,
    pub kind: StepKind,
    pub payload: String,
    /// Attempts including this one.
    pub attempts: i32,
}

/// What storing a new invitation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateOutcome {
    /// Stored. `revoke_steps` are steps of an expired invitation of the same staff member and
    /// product that this create marked EXPIRED (to be run before granting again);
    /// `earlier_revokes_open` says whether revokes of the staff member's earlier invitations
    /// were still open (they too go before granting again).
    Created {
        revoke_steps: Vec<String>,
        earlier_revokes_open: bool,
    },
    /// The caller's request_id was seen before: the invitation it created.
    Replayed { invitation_id: String },
    /// A PENDING invitation of the staff member to the product exists.
    PendingExists { invitation_id: String },
}

/// ListInvitations filters.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub trust_id: String,
    pub status: Option<Status>,
    pub staff_id: Option<String>,
    pub product_key: Option<String>,
}

/// Where a page starts: after the row with this create time and id (newest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageKey {
    pub create_time: i64,
    pub id: String,
}

impl PageKey {
    pub fn of(invitation: &Invitation) -> Self {
        Self {
            create_time: to_micros(invitation.create_time),
            id: invitation.id.clone(),
        }
    }

    pub fn encode(&self) -> String {
        format!("{}/{}", self.create_time, self.id)
    }

    pub fn decode(text: &str) -> Option<Self> {
        let (time, id) = text.split_once('/')?;
        Some(Self {
            create_time: time.parse().ok()?,
            id: id.to_string(),
        })
    }
}

/// Whether a state change applied, or the status that prevented it.
pub type Transition = Result<Invitation, Status>;

#[async_trait]
pub trait InvitationStore: Send + Sync + 'static {
    /// The invitation a caller's request_id created, if any.
    async fn find_create_request(
        &self,
        caller: &str,
        request_id: &str,
    ) -> StoreResult<Option<String>>;

    /// The PENDING invitation of a staff member to a trust product, if any.
    async fn find_pending(
        &self,
        trust_id: &str,
        staff_id: &str,
        product_key: &str,
    ) -> StoreResult<Option<Invitation>>;

    /// Stores a new invitation, its request id and its outbox steps in one transaction. A
    /// PENDING invitation of the same staff member and product blocks it unless it expired by
    /// `now`: that one is marked EXPIRED here, with a revoke step.
    async fn create(
        &self,
        invitation: &Invitation,
        request: Option<(&str, &str)>,
        steps: &[NewStep],
        now: DateTime<Utc>,
        wall_now: i64,
    ) -> StoreResult<CreateOutcome>;

    async fn get(&self, id: &str) -> StoreResult<Option<Invitation>>;

    /// One page (newest first), `limit` rows at most.
    async fn list(
        &self,
        filter: &ListFilter,
        after: Option<&PageKey>,
        limit: i64,
    ) -> StoreResult<Vec<Invitation>>;

    /// R9: a new expiry; earlier links stop working at once; unsent emails of the invitation
    /// are cancelled and `email` queued. Only a PENDING invitation not yet expired at `now`.
    async fn resend(
        &self,
        id: &str,
        now: DateTime<Utc>,
        expire_time: DateTime<Utc>,
        email: &NewStep,
        wall_now: i64,
    ) -> StoreResult<Option<Transition>>;

    /// R10: PENDING → REVOKED with `revoke` queued and unsent emails cancelled. An already
    /// REVOKED invitation is returned unchanged.
    async fn revoke(
        &self,
        id: &str,
        now: DateTime<Utc>,
        revoke: &NewStep,
        wall_now: i64,
    ) -> StoreResult<Option<Transition>>;

    /// R7: marks up to `limit` PENDING invitations past their expiry EXPIRED, each with a
    /// revoke step (payload `revoke_payload`). Returns their ids.
    async fn expire_due(
        &self,
        now: DateTime<Utc>,
        limit: i64,
        revoke_payload: &str,
        wall_now: i64,
    ) -> StoreResult<Vec<String>>;

    /// The invitation a link hash belongs to.
    async fn find_link(&self, token_hash: &str) -> StoreResult<Option<Invitation>>;

    /// Records a newly sent link as the invitation's current one, if it is still PENDING.
    async fn install_link(
        &self,
        invitation_id: &str,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;

    /// Notes that an accept has started registering the invitee's account.
    async fn mark_accepting(&self, id: &str) -> StoreResult<()>;

    /// PENDING → ACCEPTED for `account_id`, recording the request id. False when the
    /// invitation was no longer PENDING.
    async fn complete_accept(
        &self,
        id: &str,
        account_id: &str,
        request_id: Option<&str>,
        granted: &[GrantedAccess],
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;

    /// The account an earlier accept with this request id registered.
    async fn find_accept_request(
        &self,
        invitation_id: &str,
        request_id: &str,
    ) -> StoreResult<Option<String>>;

    /// Records the grants' states as identity reported them.
    async fn update_granted(&self, id: &str, granted: &[GrantedAccess]) -> StoreResult<()>;

    /// Claims up to `limit` due steps until `lease_until`. A revoke waits for the grant step
    /// of its invitation, so grants made late are revoked too.
    async fn claim_due(
        &self,
        wall_now: i64,
        lease_until: i64,
        limit: i64,
    ) -> StoreResult<Vec<Step>>;

    /// Claims one step by id (for running it inline), if it is open and not leased.
    async fn claim_step(
        &self,
        id: &str,
        wall_now: i64,
        lease_until: i64,
    ) -> StoreResult<Option<Step>>;

    /// Marks steps done with `outcome` (`DONE`, `SKIPPED`, `FAILED`), in one statement.
    async fn finish_steps(&self, ids: &[String], outcome: &str, wall_now: i64) -> StoreResult<()>;

    /// Releases a failed step for another attempt at `next_attempt_at`.
    async fn retry_step(&self, id: &str, next_attempt_at: i64, error: &str) -> StoreResult<()>;

    /// Ids of the open steps of one kind of an invitation.
    async fn open_steps(&self, invitation_id: &str, kind: StepKind) -> StoreResult<Vec<String>>;

    /// Outbox steps not yet done (the backlog a metric reports).
    async fn outbox_backlog(&self) -> StoreResult<i64>;

    /// Ids of the open revoke steps of any invitation of a staff member: they must run before
    /// that person is granted the same access again, or identity would see it as still held.
    async fn open_revokes_of_staff(
        &self,
        trust_id: &str,
        staff_id: &str,
    ) -> StoreResult<Vec<String>>;
}

/// The SQL store for one database kind.
#[derive(Debug, Clone)]
pub struct SqlStore<DB: sqlx::Database> {
    pool: portal_runtime::db::WarmPool<DB>,
    _db: PhantomData<DB>,
}

impl<DB: sqlx::Database> SqlStore<DB> {
    pub fn new(pool: portal_runtime::db::WarmPool<DB>) -> Self {
        Self {
            pool,
            _db: PhantomData,
        }
    }
}

/// The store for a runtime pool.
pub fn open(pool: &DbPool) -> std::sync::Arc<dyn InvitationStore> {
    match pool {
        DbPool::Sqlite(pool) => std::sync::Arc::new(SqlStore::<sqlx::Sqlite>::new(pool.clone())),
        DbPool::Postgres(pool) => {
            std::sync::Arc::new(SqlStore::<sqlx::Postgres>::new(pool.clone()))
        }
    }
}

const INVITATION_COLUMNS: &str = "id, trust_id, trust_name, staff_id, staff_email, \
    staff_given_name, inviter_account_id, trust_product_key, trust_role_key, school_access, \
    status, delivery, granted, skipped, expire_time, current_link_hash, accepting, account_id, \
    create_time, update_time";

fn decode_err(what: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("invalid stored {what}").into())
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|_| decode_err(what))
}

/// Binds the twenty columns of an invitation row, as $1..$20 in table order.
macro_rules! bind_invitation_columns {
    ($query:expr, $invitation:expr) => {
        $query
            .bind(&$invitation.id)
            .bind(&$invitation.trust_id)
            .bind(&$invitation.trust_name)
            .bind(&$invitation.staff_id)
            .bind($invitation.staff_email.as_str())
            .bind(&$invitation.staff_given_name)
            .bind(&$invitation.inviter_account_id)
            .bind(&$invitation.trust_access.product_key)
            .bind(&$invitation.trust_access.role_key)
            .bind($invitation.school_access.as_ref().map(json))
            .bind($invitation.status.as_str())
            .bind($invitation.delivery.as_str())
            .bind(json(&$invitation.granted))
            .bind(json(&$invitation.skipped))
            .bind($invitation.expire_time.map(to_micros))
            .bind($invitation.current_link_hash.as_deref())
            .bind($invitation.accepting)
            .bind($invitation.account_id.as_deref())
            .bind(to_micros($invitation.create_time))
            .bind(to_micros($invitation.update_time))
    };
}

/// The columns of an invitation row, decoded the same way for both databases.
struct RawInvitation {
    id: String,
    trust_id: String,
    trust_name: String,
    staff_id: String,
    staff_email: String,
    staff_given_name: String,
    inviter_account_id: String,
    trust_product_key: String,
    trust_role_key: String,
    school_access: Option<String>,
    status: String,
    delivery: String,
    granted: String,
    skipped: String,
    expire_time: Option<i64>,
    current_link_hash: Option<String>,
    accepting: bool,
    account_id: Option<String>,
    create_time: i64,
    update_time: i64,
}

impl RawInvitation {
    fn into_invitation(self) -> StoreResult<Invitation> {
        Ok(Invitation {
            id: self.id,
            trust_id: self.trust_id,
            trust_name: self.trust_name,
            staff_id: self.staff_id,
            staff_email: Email::parse(&self.staff_email).map_err(|_| decode_err("email"))?,
            staff_given_name: self.staff_given_name,
            inviter_account_id: self.inviter_account_id,
            trust_access: TrustAccess {
                product_key: self.trust_product_key,
                role_key: self.trust_role_key,
            },
            school_access: match self.school_access {
                Some(text) => Some(from_json::<SchoolAccess>(&text, "school access")?),
                None => None,
            },
            status: Status::parse(&self.status).ok_or_else(|| decode_err("status"))?,
            delivery: Delivery::parse(&self.delivery).ok_or_else(|| decode_err("delivery"))?,
            granted: from_json::<Vec<GrantedAccess>>(&self.granted, "grants")?,
            skipped: from_json::<Vec<SkippedAccess>>(&self.skipped, "skipped pairs")?,
            expire_time: self.expire_time.map(from_micros),
            current_link_hash: self.current_link_hash,
            accepting: self.accepting,
            account_id: self.account_id,
            create_time: from_micros(self.create_time),
            update_time: from_micros(self.update_time),
        })
    }
}

macro_rules! sql_store {
    ($db:ty, system = $system:literal, begin = $begin:literal, lock = $lock:literal, relaxed_commit = $relaxed_commit:literal) => {
        impl SqlStore<$db> {
            fn invitation_from_row(
                row: &<$db as sqlx::Database>::Row,
            ) -> StoreResult<Invitation> {
                RawInvitation {
                    id: row.try_get("id")?,
                    trust_id: row.try_get("trust_id")?,
                    trust_name: row.try_get("trust_name")?,
                    staff_id: row.try_get("staff_id")?,
                    staff_email: row.try_get("staff_email")?,
                    staff_given_name: row.try_get("staff_given_name")?,
                    inviter_account_id: row.try_get("inviter_account_id")?,
                    trust_product_key: row.try_get("trust_product_key")?,
                    trust_role_key: row.try_get("trust_role_key")?,
                    school_access: row.try_get("school_access")?,
                    status: row.try_get("status")?,
                    delivery: row.try_get("delivery")?,
                    granted: row.try_get("granted")?,
                    skipped: row.try_get("skipped")?,
                    expire_time: row.try_get("expire_time")?,
                    current_link_hash: row.try_get("current_link_hash")?,
                    accepting: row.try_get("accepting")?,
                    account_id: row.try_get("account_id")?,
                    create_time: row.try_get("create_time")?,
                    update_time: row.try_get("update_time")?,
                }
                .into_invitation()
            }

            fn step_from_row(row: &<$db as sqlx::Database>::Row) -> StoreResult<Step> {
                let kind: String = row.try_get("kind")?;
                Ok(Step {
                    id: row.try_get("id")?,
                    invitation_id: row.try_get("invitation_id")?,
                    kind: StepKind::parse(&kind).ok_or_else(|| decode_err("step kind"))?,
                    payload: row.try_get("payload")?,
                    attempts: row.try_get("attempts")?,
                })
            }

            async fn insert_step(
                conn: &mut <$db as sqlx::Database>::Connection,
                step: &NewStep,
                wall_now: i64,
            ) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO outbox (id, invitation_id, kind, payload, attempts, \
                     next_attempt_at, claimed_until, create_time) \
                     VALUES ($1, $2, $3, $4, 0, $5, $6, $5)",
                )
                .bind(&step.id)
                .bind(&step.invitation_id)
                .bind(step.kind.as_str())
                .bind(&step.payload)
                .bind(wall_now)
                .bind(step.claimed_until)
                .execute(&mut *conn)
                .await?;
                Ok(())
            }

            async fn cancel_open_emails(
                conn: &mut <$db as sqlx::Database>::Connection,
                invitation_id: &str,
                wall_now: i64,
            ) -> StoreResult<()> {
                sqlx::query(
                    "UPDATE outbox SET done_at = $1, outcome = 'CANCELLED' \
                     WHERE invitation_id = $2 AND kind = 'EMAIL' AND done_at IS NULL",
                )
                .bind(wall_now)
                .bind(invitation_id)
                .execute(&mut *conn)
                .await?;
                Ok(())
            }

            async fn get_in(
                conn: &mut <$db as sqlx::Database>::Connection,
                id: &str,
            ) -> StoreResult<Option<Invitation>> {
                let sql = format!("SELECT {INVITATION_COLUMNS} FROM invitations WHERE id = $1");
                sqlx::query(&sql)
                    .bind(id)
                    .fetch_optional(&mut *conn)
                    .await?
                    .map(|row| Self::invitation_from_row(&row))
                    .transpose()
            }

            async fn try_create(
                &self,
                invitation: &Invitation,
                request: Option<(&str, &str)>,
                steps: &[NewStep],
                now: DateTime<Utc>,
                wall_now: i64,
            ) -> StoreResult<CreateOutcome> {
                if let Some(outcome) = self
                    .create_in_one_statement(invitation, request, steps, now, wall_now)
                    .await?
                {
                    return Ok(outcome);
                }
                let mut lease = self.pool.lease().await?;
                let mut tx = lease.begin_with($begin).await?;
                if let Some((caller, request_id)) = request {
                    let seen: Option<String> = sqlx::query_scalar(
                        "SELECT invitation_id FROM create_requests \
                         WHERE caller = $1 AND request_id = $2",
                    )
                    .bind(caller)
                    .bind(request_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                    if let Some(invitation_id) = seen {
                        return Ok(CreateOutcome::Replayed { invitation_id });
                    }
                }
                // One statement: the pending invitation of the same person and product, if
                // any, and whether revokes of the person's earlier invitations are open.
                let (pending_id, pending_expire, earlier_revokes_open): (
                    Option<String>,
                    Option<i64>,
                    bool,
                ) = sqlx::query_as(
                    "SELECT p.id, p.expire_time, EXISTS (SELECT 1 FROM outbox o \
                     JOIN invitations i ON i.id = o.invitation_id WHERE i.trust_id = $1 \
                     AND i.staff_id = $2 AND o.kind = 'REVOKE' AND o.done_at IS NULL) \
                     FROM (SELECT 1 AS one) AS one LEFT JOIN invitations p ON p.trust_id = $1 \
                     AND p.staff_id = $2 AND p.trust_product_key = $3 AND p.status = 'PENDING'",
                )
                .bind(&invitation.trust_id)
                .bind(&invitation.staff_id)
                .bind(&invitation.trust_access.product_key)
                .fetch_one(&mut *tx)
                .await?;
                let mut revoke_steps = Vec::new();
                if let Some(id) = pending_id {
                    let expire = pending_expire;
                    if expire.is_none_or(|e| e > to_micros(now)) {
                        return Ok(CreateOutcome::PendingExists { invitation_id: id });
                    }
                    // Expired but not yet swept: expire it now so the new one can be made.
                    sqlx::query(
                        "UPDATE invitations SET status = 'EXPIRED', update_time = $1 \
                         WHERE id = $2",
                    )
                    .bind(to_micros(now))
                    .bind(&id)
                    .execute(&mut *tx)
                    .await?;
                    let step = NewStep {
                        id: portal_runtime::types::new_id(),
                        invitation_id: id,
                        kind: StepKind::Revoke,
                        payload: crate::outbox::REVOKE_PENDING_PAYLOAD.to_string(),
                        claimed_until: 0,
                    };
                    Self::insert_step(&mut *tx, &step, wall_now).await?;
                    revoke_steps.push(step.id);
                }
                let insert = sqlx::query(
                    "INSERT INTO invitations (id, trust_id, trust_name, staff_id, staff_email, \
                     staff_given_name, inviter_account_id, trust_product_key, trust_role_key, \
                     school_access, status, delivery, granted, skipped, expire_time, \
                     current_link_hash, accepting, account_id, create_time, update_time) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, \
                     $15, $16, $17, $18, $19, $20)",
                );
                bind_invitation_columns!(insert, invitation)
                .execute(&mut *tx)
                .await?;
                let keys = invitation.product_keys();
                let values: Vec<String> = (0..keys.len())
                    .map(|i| format!("($1, $2, ${})", i + 3))
                    .collect();
                let sql = format!(
                    "INSERT INTO invitation_products (invitation_id, trust_id, product_key) \
                     VALUES {}",
                    values.join(", ")
                );
                let mut insert = sqlx::query(&sql)
                    .bind(&invitation.id)
                    .bind(&invitation.trust_id);
                for key in keys {
                    insert = insert.bind(key);
                }
                insert.execute(&mut *tx).await?;
                // A link minted with the invitation goes out with its first email.
                if let Some(hash) = &invitation.current_link_hash {
                    sqlx::query(
                        "INSERT INTO invitation_links (token_hash, invitation_id, create_time) \
                         VALUES ($1, $2, $3)",
                    )
                    .bind(hash)
                    .bind(&invitation.id)
                    .bind(to_micros(now))
                    .execute(&mut *tx)
                    .await?;
                }
                if let Some((caller, request_id)) = request {
                    sqlx::query(
                        "INSERT INTO create_requests (caller, request_id, invitation_id) \
                         VALUES ($1, $2, $3)",
                    )
                    .bind(caller)
                    .bind(request_id)
                    .bind(&invitation.id)
                    .execute(&mut *tx)
                    .await?;
                }
                if !steps.is_empty() {
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
                        "INSERT INTO outbox (id, invitation_id, kind, payload, attempts, \
                         next_attempt_at, claimed_until, create_time) VALUES {}",
                        values.join(", ")
                    );
                    let mut insert = sqlx::query(&sql);
                    for step in steps {
                        insert = insert
                            .bind(&step.id)
                            .bind(&step.invitation_id)
                            .bind(step.kind.as_str())
                            .bind(&step.payload)
                            .bind(wall_now)
                            .bind(step.claimed_until);
                    }
                    insert.execute(&mut *tx).await?;
                }
                tx.commit().await?;
                lease.release();
                Ok(CreateOutcome::Created {
                    revoke_steps,
                    earlier_revokes_open,
                })
            }

            async fn find_pending_in(
                &self,
                trust_id: &str,
                staff_id: &str,
                product_key: &str,
            ) -> StoreResult<Option<Invitation>> {
                let sql = format!(
                    "SELECT {INVITATION_COLUMNS} FROM invitations WHERE trust_id = $1 \
                     AND staff_id = $2 AND trust_product_key = $3 AND status = 'PENDING'"
                );
                sqlx::query(&sql)
                    .bind(trust_id)
                    .bind(staff_id)
                    .bind(product_key)
                    .fetch_optional(&self.pool)
                    .await?
                    .map(|row| Self::invitation_from_row(&row))
                    .transpose()
            }
        }

        #[async_trait]
        impl InvitationStore for SqlStore<$db> {
            #[tracing::instrument(name = "invitation.db.find_create_request", skip_all, fields(otel.kind = "client", db.system = $system))]
            async fn find_create_request(
                &self,
                caller: &str,
                request_id: &str,
            ) -> StoreResult<Option<String>> {
                sqlx::query_scalar(
                    "SELECT invitation_id FROM create_requests \
                     WHERE caller = $1 AND request_id = $2",
                )
                .bind(caller)
                .bind(request_id)
                .fetch_optional(&self.pool)
                .await
            }

            #[tracing::instrument(name = "invitation.db.find_pending", skip_all, fields(otel.kind = "client", db.system = $system))]
            async fn find_pending(
                &self,
                trust_id: &str,
                staff_id: &str,
                product_key: &str,
            ) -> StoreResult<Option<Invitation>> {
                self.find_pending_in(trust_id, staff_id, product_key).await
            }

            #[tracing::instrument(name = "invitation.db.create", skip_all, fields(otel.kind = "client", db.system = $system))]
            async fn create(
                &self,
                invitation: &Invitation,
                request: Option<(&str, &str)>,
                steps: &[NewStep],
                now: DateTime<Utc>,
                wall_now: i64,
            ) -> StoreResult<CreateOutcome> {
                match self
                    .try_create(invitation, request, steps, now, wall_now)
                    .await
                {
                    Err(error) if is_unique_violation(&error) => {
                        // A concurrent create won the race: answer as if it had come first.
                        if let Some((caller, request_id)) = request
                            && let Some(invitation_id) =
                                self.find_create_request(caller, request_id).await?
                        {
                            return Ok(CreateOutcome::Replayed { invitation_id });
                        }
                        match self
                            .find_pending_in(
                                &invitation.trust_id,
                                &invitation.staff_id,
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
                    other => other,
                }
            }

            #[tracing::instrument(name = "invitation.db.get", skip_all, fields(otel.kind = "client", db.system = $system))]
            async fn get(&self, id: &str) -> StoreResult<Option<Invitation>> {
                let mut conn = self.pool.lease().await?;
                let found = Self::get_in(&mut conn, id).await;
                if found.is_ok() {
                    conn.release();
                }
                found
            }

            #[tracing::instrument(name = "invitation.db.list", skip_all, fields(otel.kind = "client", db.system = $system))]
            async fn list(
                &self,
                filter: &ListFilter,
                after: Option<&PageKey>,
                limit: i64,
            ) -> StoreResult<Vec<Invitation>> {
                let mut sql = format!(
                    "SELECT {INVITATION_COLUMNS} FROM invitations i WHERE i.trust_id = $1"
                );
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
                let mut query = sqlx::query(&sql).bind(&filter.trust_id);
                if let Some(status) = filter.status {
                    query = query.bind(status.as_str());
                }
                if let Some(staff_id) = &filter.staff_id {
                    query = query.bind(staff_id);
                }
                if let Some(product_key) = &filter.product_key {
                    query = query.bind(product_key);
                }
                if let Some(key) = after {
                    query = query.bind(key.create_time).bind(&key.id);
                }
                query
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?
                    .iter()
                    .map(Self::invitation_from_row)
                    .collect()
            }

            #[tracing::instrument(name = "invitation.db.resend", skip_all, fields(otel.kind = "client", db.system = $system))]
            async fn resend(
                &self,
                id: &str,
                now: DateTime<Utc>,
                expire_time: DateTime<Utc>,
                email: &NewStep,
                wall_now: i64,
            ) -> StoreResult<Option<Transition>> {
                let mut lease = self.pool.lease().await?;
                let mut tx = lease.begin_with($begin).await?;
                let Some(invitation) = Self::get_in(&mut tx, id).await? else {
                    return Ok(None);
                };
                let status = invitation.status_at(now);
                if status != Status::Pending {
                    return Ok(Some(Err(status)));
                }
                sqlx::query(
                    "UPDATE invitations SET expire_time = $1, current_link_hash = NULL, \
                     update_time = $2 WHERE id = $3",
                )
                .bind(to_micros(expire_time))
                .bind(to_micros(now))
                .bind(id)
                .execute(&mut *tx)
                .await?;
                Self::cancel_open_emails(&mut tx, id, wall_now).await?;
                Self::insert_step(&mut tx, email, wall_now).await?;
                let updated = Self::get_in(&mut tx, id).await?;
                tx.commit().await?;
                lease.release();
                Ok(updated.map(Ok))
            }

            #[tracing::instrument(name = "invitation.db.revoke", skip_all, fields(otel.kind = "client", db.system = $system))]
            async fn revoke(
                &self,
                id: &str,
                now: DateTime<Utc>,
                revoke: &NewStep,
                wall_now: i64,
            ) -> StoreResult<Option<Transition>> {
                let mut lease = self.pool.lease().await?;
                let mut tx = lease.begin_with($begin).await?;
                let Some(invitation) = Self::get_in(&mut tx, id).await? else {
                    return Ok(None);
                };
                match invitation.status_at(now) {
                    Status::Revoked => return Ok(Some(Ok(invitation))),
                    Status::Pending => {}
                    other => return Ok(Some(Err(other))),
                }
                sqlx::query(
                    "UPDATE invitations SET status = 'REVOKED', update_time = $1 WHERE id = $2",
                )
                .bind(to_micros(now))
                .bind(id)
                .execute(&mut *tx)
                .await?;
                Self::cancel_open_emails(&mut tx, id, wall_now).await?;
                Self::insert_step(&mut tx, revoke, wall_now).await?;
                let updated = Self::get_in(&mut tx, id).await?;
                tx.commit().await?;
                lease.release();
                Ok(updated.map(Ok))
            }

            #[tracing::instrument(name = "invitation.db.expire_due", skip_all, fields(otel.kind = "client", db.system = $system))]
            async fn expire_due(
                &self,
                now: DateTime<Utc>,
                limit: i64,
                revoke_payload: &str,
                wall_now: i64,
            ) -> StoreResult<Vec<String>> {
                let mut lease = self.pool.lease().await?;
                let mut tx = lease.begin_with($begin).await?;
                let sql = format!(
                    "UPDATE invitations SET status = 'EXPIRED', update_time = $1 \
                     WHERE id IN (SELECT id FROM invitations WHERE status = 'PENDING' \
                     AND expire_time <= $1 ORDER BY expire_time LIMIT $2 {}) \
                     AND status = 'PENDING' RETURNING id",
                    $lock
                );
                let ids: Vec<String> = sqlx::query_scalar(&sql)
                    .bind(to_micros(now))
                    .bind(limit)
                    .fetch_all(&mut *tx)
                    .await?;
                for id in &ids {
                    Self::cancel_open_emails(&mut tx, id, wall_now).await?;
                    let step = NewStep {
                        id: portal_runtime::types::new_id(),
                        invitation_id: id.clone(),
                        kind: StepKind::Revoke,
                        payload: revoke_payload.to_string(),
                        claimed_until: 0,
                    };
                    Self::insert_step(&mut tx, &step, wall_now).await?;
                }
                tx.commit().await?;
                lease.release();
                Ok(ids)
            }

            #[tracing::instrument(name = "invitation.db.find_link", skip_all, fields(otel.kind = "client", db.system = $system))]
            async fn find_link(&self, token_hash: &str) -> StoreResult<Option<Invitation>> {
                let sql = format!(
                    "SELECT {} FROM invitation_links l JOIN invitations i \
                     ON i.id = l.invitation_id WHERE l.token_hash = $1",
                    INVITATION_COLUMNS
                        .split(", ")
                        .map(|c| format!("i.{c}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                sqlx::query(&sql)
                    .bind(token_hash)
                    .fetch_optional(&self.pool)
                    .await?
                    .map(|row| Self::invitation_from_row(&row))
                    .transpose()
            }

            #[tracing::instrument(name = "invitation.db.install_link", skip_all, fields(otel.kind = "client", db.system = $system))]
            async fn install_link(
                &self,
                invitation_id: &str,
                token_hash: &str,
                now: DateTime<Utc>,
            ) -> StoreResult<bool> {
                let mut lease = self.pool.lease().await?;
                let mut tx = lease.begin_with($begin).await?;
                let updated = sqlx::query(
                    "UPDATE invitations SET current_link_hash = $1 \
                     WHERE id = $2 AND status = 'PENDING'",
                )
                .bind(token_hash)
                .bind(invitation_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if updated == 0 {
                    return Ok(false);
                }
                sqlx::query(
                    "INSERT INTO invitation_links (token_hash, invitation_id, create_time) \
                     VALUES ($1, $2, $3)",
                )
                .bind(token_hash)
                .bind(invitation_id)
                .bind(to_micros(now))
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                lease.release();
                Ok(true)
            }

            #[tracing::instrument(name = "invitation.db.mark_accepting", skip_all, fields(otel.kind = "client", db.system = $system))]
            async fn mark_accepting(&self, id: &str) -> StoreResult<()> {
                sqlx::query("UPDATE invitations SET accepting = $1 WHERE id = $2")
                    .bind(true)
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            #[tracing::instrument(name = "invitation.db.complete_accept", skip_all, fields(otel.kind = "client", db.system = $system))]
            async fn complete_accept(
                &self,
                id: &str,
                account_id: &str,
                request_id: Option<&str>,
                granted: &[GrantedAccess],
                now: DateTime<Utc>,
            ) -> StoreResult<bool> {
                let mut lease = self.pool.lease().await?;
                let mut tx = lease.begin_with($begin).await?;
                let updated = sqlx::query(
                    "UPDATE invitations SET status = 'ACCEPTED', account_id = $1, granted = $2, \
                     update_time = $3 WHERE id = $4 AND status = 'PENDING'",
                )
                .bind(account_id)
                .bind(json(&granted))
                .bind(to_micros(now))
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if updated == 0 {
                    return Ok(false);
                }
                if let Some(request_id) = request_id {
                    sqlx::query(
                        "INSERT INTO accept_requests (invitation_id, request_id, account_id) \
                         VALUES ($1, $2, $3)",
                    )
                    .bind(id)
                    .bind(request_id)
                    .bind(account_id)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                lease.release();
                Ok(true)
            }

            #[tracing::instrument(name = "invitation.db.find_accept_request", skip_all, fields(otel.kind = "client", db.system = $system))]
            async fn find_accept_request(
                &self,
                invitation_id: &str,
                request_id: &str,
            ) -> StoreResult<Option<String>> {
                sqlx::query_scalar(
                    "SELECT account_id FROM accept_requests \
                     WHERE invitation_id = $1 AND request_id = $2",
                )
                .bind(invitation_id)
                .bind(request_id)
                .fetch_optional(&self.pool)
                .await
            }

            #[tracing::instrument(name = "invitation.db.update_granted", skip_all, fields(otel.kind = "client", db.system = $system))]
            async fn update_granted(&self, id: &str, granted: &[GrantedAccess]) -> StoreResult<()> {
                sqlx::query("UPDATE invitations SET granted = $1 WHERE id = $2")
                    .bind(json(&granted))
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            #[tracing::instrument(name = "invitation.db.claim_due", skip_all, fields(otel.kind = "client", db.system = $system))]
            async fn claim_due(
                &self,
                wall_now: i64,
                lease_until: i64,
                limit: i64,
            ) -> StoreResult<Vec<Step>> {
                let mut lease = self.pool.lease().await?;
                let mut tx = lease.begin_with($begin).await?;
                let sql = format!(
                    "UPDATE outbox SET claimed_until = $1, attempts = attempts + 1 \
                     WHERE id IN (SELECT o.id FROM outbox o WHERE o.done_at IS NULL \
                     AND o.next_attempt_at <= $2 AND o.claimed_until <= $2 \
                     AND NOT (o.kind = 'REVOKE' AND EXISTS (SELECT 1 FROM outbox g \
                     WHERE g.invitation_id = o.invitation_id AND g.kind = 'GRANT' \
                     AND g.done_at IS NULL)) \
                     AND NOT (o.kind = 'GRANT' AND EXISTS (SELECT 1 FROM invitations gi \
                     JOIN invitations ri ON ri.trust_id = gi.trust_id \
                     AND ri.staff_id = gi.staff_id AND ri.id <> gi.id \
                     JOIN outbox r ON r.invitation_id = ri.id AND r.kind = 'REVOKE' \
                     AND r.done_at IS NULL WHERE gi.id = o.invitation_id)) \
                     ORDER BY o.next_attempt_at LIMIT $3 {}) \
                     RETURNING id, invitation_id, kind, payload, attempts",
                    $lock
                );
                let rows = sqlx::query(&sql)
                    .bind(lease_until)
                    .bind(wall_now)
                    .bind(limit)
                    .fetch_all(&mut *tx)
                    .await?;
                tx.commit().await?;
                lease.release();
                rows.iter().map(Self::step_from_row).collect()
            }

            #[tracing::instrument(name = "invitation.db.claim_step", skip_all, fields(otel.kind = "client", db.system = $system))]
            async fn claim_step(
                &self,
                id: &str,
                wall_now: i64,
                lease_until: i64,
            ) -> StoreResult<Option<Step>> {
                let row = sqlx::query(
                    "UPDATE outbox SET claimed_until = $1, attempts = attempts + 1 \
                     WHERE id = $2 AND done_at IS NULL AND claimed_until <= $3 \
                     AND NOT (kind = 'REVOKE' AND EXISTS (SELECT 1 FROM outbox g \
                     WHERE g.invitation_id = outbox.invitation_id AND g.kind = 'GRANT' \
                     AND g.done_at IS NULL)) \
                     RETURNING id, invitation_id, kind, payload, attempts",
                )
                .bind(lease_until)
                .bind(id)
                .bind(wall_now)
                .fetch_optional(&self.pool)
                .await?;
                row.as_ref().map(Self::step_from_row).transpose()
            }

            #[tracing::instrument(name = "invitation.db.finish_steps", skip_all, fields(otel.kind = "client", db.system = $system))]
            async fn finish_steps(
                &self,
                ids: &[String],
                outcome: &str,
                wall_now: i64,
            ) -> StoreResult<()> {
                if ids.is_empty() {
                    return Ok(());
                }
                let mut lease = self.pool.lease().await?;
                let mut tx = lease.begin_with($begin).await?;
                if !$relaxed_commit.is_empty() {
                    sqlx::query($relaxed_commit).execute(&mut *tx).await?;
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
                    let mut update = sqlx::query(&sql).bind(wall_now).bind(outcome);
                    for id in chunk {
                        update = update.bind(id);
                    }
                    update.execute(&mut *tx).await?;
                }
                tx.commit().await?;
                lease.release();
                Ok(())
            }

            #[tracing::instrument(name = "invitation.db.retry_step", skip_all, fields(otel.kind = "client", db.system = $system))]
            async fn retry_step(
                &self,
                id: &str,
                next_attempt_at: i64,
                error: &str,
            ) -> StoreResult<()> {
                sqlx::query(
                    "UPDATE outbox SET next_attempt_at = $1, claimed_until = 0, last_error = $2 \
                     WHERE id = $3 AND done_at IS NULL",
                )
                .bind(next_attempt_at)
                .bind(portal_runtime::types::truncate(error, 500))
                .bind(id)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            #[tracing::instrument(name = "invitation.db.open_revokes_of_staff", skip_all, fields(otel.kind = "client", db.system = $system))]
            async fn open_revokes_of_staff(
                &self,
                trust_id: &str,
                staff_id: &str,
            ) -> StoreResult<Vec<String>> {
                sqlx::query_scalar(
                    "SELECT o.id FROM outbox o JOIN invitations i ON i.id = o.invitation_id \
                     WHERE i.trust_id = $1 AND i.staff_id = $2 AND o.kind = 'REVOKE' \
                     AND o.done_at IS NULL",
                )
                .bind(trust_id)
                .bind(staff_id)
                .fetch_all(&self.pool)
                .await
            }

            #[tracing::instrument(name = "invitation.db.open_steps", skip_all, fields(otel.kind = "client", db.system = $system))]
            async fn open_steps(
                &self,
                invitation_id: &str,
                kind: StepKind,
            ) -> StoreResult<Vec<String>> {
                sqlx::query_scalar(
                    "SELECT id FROM outbox WHERE invitation_id = $1 AND kind = $2 \
                     AND done_at IS NULL ORDER BY create_time",
                )
                .bind(invitation_id)
                .bind(kind.as_str())
                .fetch_all(&self.pool)
                .await
            }

            #[tracing::instrument(name = "invitation.db.outbox_backlog", skip_all, fields(otel.kind = "client", db.system = $system))]
            async fn outbox_backlog(&self) -> StoreResult<i64> {
                sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE done_at IS NULL")
                    .fetch_one(&self.pool)
                    .await
            }
        }
    };
}

impl SqlStore<sqlx::Sqlite> {
    /// SQLite runs in the process: its create transaction costs no round trips to save.
    async fn create_in_one_statement(
        &self,
        _invitation: &Invitation,
        _request: Option<(&str, &str)>,
        _steps: &[NewStep],
        _now: DateTime<Utc>,
        _wall_now: i64,
    ) -> StoreResult<Option<CreateOutcome>> {
        Ok(None)
    }
}

impl SqlStore<sqlx::Postgres> {
    /// The usual create as one statement, so one round trip and one commit: the request id
    /// and pending checks, and every insert, conditional on both. `None` when a PENDING
    /// invitation of the person and product has passed its expiry but is not yet swept: the
    /// transaction expires it first.
    async fn create_in_one_statement(
        &self,
        invitation: &Invitation,
        request: Option<(&str, &str)>,
        steps: &[NewStep],
        now: DateTime<Utc>,
        wall_now: i64,
    ) -> StoreResult<Option<CreateOutcome>> {
        const SQL: &str = "WITH pending AS (SELECT id, expire_time FROM invitations \
             WHERE trust_id = $2 AND staff_id = $4 AND trust_product_key = $8 \
             AND status = 'PENDING'), \
             seen AS (SELECT invitation_id FROM create_requests \
             WHERE caller = $21 AND request_id = $22), \
             inv AS (INSERT INTO invitations (id, trust_id, trust_name, staff_id, staff_email, \
             staff_given_name, inviter_account_id, trust_product_key, trust_role_key, \
             school_access, status, delivery, granted, skipped, expire_time, \
             current_link_hash, accepting, account_id, create_time, update_time) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
             $17, $18, $19, $20 \
             WHERE NOT EXISTS (SELECT 1 FROM pending) AND NOT EXISTS (SELECT 1 FROM seen) \
             RETURNING id), \
             products AS (INSERT INTO invitation_products (invitation_id, trust_id, product_key) \
             SELECT inv.id, $2, k FROM inv, unnest($23::text[]) AS k), \
             link AS (INSERT INTO invitation_links (token_hash, invitation_id, create_time) \
             SELECT $16, inv.id, $19 FROM inv WHERE $16::text IS NOT NULL), \
             request AS (INSERT INTO create_requests (caller, request_id, invitation_id) \
             SELECT $21, $22, inv.id FROM inv WHERE $21::text IS NOT NULL), \
             steps AS (INSERT INTO outbox (id, invitation_id, kind, payload, attempts, \
             next_attempt_at, claimed_until, create_time) \
             SELECT s.id, inv.id, s.kind, s.payload, 0, $28, s.claimed_until, $28 \
             FROM inv, unnest($24::text[], $25::text[], $26::text[], $27::int8[]) \
             AS s (id, kind, payload, claimed_until)) \
             SELECT (SELECT id FROM pending LIMIT 1), \
             (SELECT expire_time FROM pending LIMIT 1), \
             (SELECT invitation_id FROM seen), \
             EXISTS (SELECT 1 FROM outbox o JOIN invitations i ON i.id = o.invitation_id \
             WHERE i.trust_id = $2 AND i.staff_id = $4 AND o.kind = 'REVOKE' \
             AND o.done_at IS NULL)";
        debug_assert!(steps.iter().all(|s| s.invitation_id == invitation.id));
        let (caller, request_id) = request.unzip();
        let (pending_id, pending_expire, replayed, earlier_revokes_open): (
            Option<String>,
            Option<i64>,
            Option<String>,
            bool,
        ) = bind_invitation_columns!(sqlx::query_as(SQL), invitation)
            .bind(caller)
            .bind(request_id)
            .bind(invitation.product_keys())
            .bind(steps.iter().map(|s| s.id.clone()).collect::<Vec<_>>())
            .bind(steps.iter().map(|s| s.kind.as_str()).collect::<Vec<_>>())
            .bind(steps.iter().map(|s| s.payload.clone()).collect::<Vec<_>>())
            .bind(steps.iter().map(|s| s.claimed_until).collect::<Vec<_>>())
            .bind(wall_now)
            .fetch_one(&self.pool)
            .await?;
        if let Some(invitation_id) = replayed {
            return Ok(Some(CreateOutcome::Replayed { invitation_id }));
        }
        match pending_id {
            None => Ok(Some(CreateOutcome::Created {
                revoke_steps: Vec::new(),
                earlier_revokes_open,
            })),
            Some(id) if pending_expire.is_none_or(|e| e > to_micros(now)) => {
                Ok(Some(CreateOutcome::PendingExists { invitation_id: id }))
            }
            Some(_) => Ok(None),
        }
    }
}

sql_store!(
    sqlx::Sqlite,
    system = "sqlite",
    begin = "BEGIN IMMEDIATE",
    lock = "",
    relaxed_commit = ""
);
// Marking a step done need not wait for the WAL flush: lost in a crash, the step runs again,
// and every step is safe to repeat (grants and revokes are idempotent in identity; an email
// is at worst sent twice, as after any crash between sending and recording it).
sql_store!(
    sqlx::Postgres,
    system = "postgresql",
    begin = "BEGIN",
    lock = "FOR UPDATE SKIP LOCKED",
    relaxed_commit = "SET LOCAL synchronous_commit TO OFF"
);
