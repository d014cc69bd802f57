//! [`SqlStore`]: the [`Store`] written once for both databases.

use async_trait::async_trait;
use portal_runtime::clock::to_micros;
use portal_runtime::db::{
    AsExecutor as _, Column, Db, RowsAffected as _, Text, is_unique_violation,
};
use portal_runtime::vocab::{ProductKey, SubscriptionId, TrustId};
use sqlx::ColumnIndex;

use super::rows::{
    CatalogRows, EquivalenceRow, OrganizationRow, ProductRow, RoleRow, SUBSCRIPTION_COLUMNS,
    SubscriptionRow,
};
use super::{Backend, Store};
use crate::domain::{
    Catalog, CreateOutcome, Organization, OrganizationId, RequestKey, Subscription,
    SubscriptionPage, TrustSnapshot,
};
use crate::error::{Error, Result};

const PRODUCTS: &str = "SELECT key, name, scope FROM products ORDER BY key";
const ROLES: &str = "SELECT product_key, key, name, description FROM roles \
     ORDER BY product_key, position, key";
const EQUIVALENCES: &str = "SELECT left_product_key, left_role_key, right_product_key, \
     right_role_key, description FROM role_equivalences \
     ORDER BY left_product_key, left_role_key, right_product_key, right_role_key";

const RECORDED_REQUEST: &str = "SELECT fingerprint, subscription_id FROM create_requests \
     WHERE caller = $1 AND request_id = $2";
/// No conflict target: with `(id)` alone, two concurrent first subscriptions of one
/// organisation could trip over the (id, trust_id, kind) unique index before the primary key
/// and fail instead of doing nothing. Kinds are stored in upper case.
const REGISTER_ORGANIZATION: &str = "INSERT INTO organizations (id, trust_id, kind, create_time) \
     VALUES ($1, $2, UPPER($3), $4) ON CONFLICT DO NOTHING";
const ORGANIZATION: &str = "SELECT id, trust_id, kind FROM organizations WHERE id = $1";
const INSERT_SUBSCRIPTION: &str = "INSERT INTO subscriptions (id, trust_id, organization_kind, \
     organization_id, product_key, status, start_time, end_time, cancel_time, create_time, \
     update_time, version) \
     VALUES ($1, $2, UPPER($3), $4, $5, $6, $7, $8, $9, $10, $11, $12)";
const RECORD_REQUEST: &str = "INSERT INTO create_requests \
     (caller, request_id, fingerprint, subscription_id, create_time) \
     VALUES ($1, $2, $3, $4, $5)";
const REPLACE_SUBSCRIPTION: &str = "UPDATE subscriptions SET status = $2, start_time = $3, \
     end_time = $4, cancel_time = $5, update_time = $6, version = $7 \
     WHERE id = $1 AND version = $8";
/// Increments a trust's revision; part of every write transaction.
const BUMP_REVISION: &str = "INSERT INTO trust_revisions (trust_id, revision) VALUES ($1, 1) \
     ON CONFLICT (trust_id) DO UPDATE SET revision = trust_revisions.revision + 1";
const REVISION: &str = "SELECT revision FROM trust_revisions WHERE trust_id = $1";

/// The statements that take a list or read many subscriptions, built once from the
/// backend's clauses.
#[derive(Debug)]
struct Statements {
    subscription: String,
    subscriptions_of_any_product: String,
    subscriptions_of_products: String,
    /// Every subscription of trust $1.
    trust_subscriptions: String,
    /// Revisions of the trusts in list $1.
    trust_revisions: String,
    organizations_outside: String,
    list: String,
}

impl Statements {
    fn new<DB: Backend>() -> Self {
        let many = DB::select_subscriptions(SUBSCRIPTION_COLUMNS);
        Self {
            subscription: format!("SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE id = $1"),
            // The trust is checked on the rows, not in SQL, so that the planner has no other
            // index to prefer over (organization_id, product_key).
            subscriptions_of_any_product: format!(
                "SELECT {many} FROM subscriptions WHERE {}",
                DB::in_list("organization_id", 1)
            ),
            subscriptions_of_products: format!(
                "SELECT {many} FROM subscriptions WHERE {} AND {}",
                DB::in_list("organization_id", 1),
                DB::in_list("product_key", 2)
            ),
            trust_subscriptions: format!("SELECT {many} FROM subscriptions WHERE trust_id = $1"),
            trust_revisions: format!(
                "SELECT trust_id, revision FROM trust_revisions WHERE {}",
                DB::in_list("trust_id", 1)
            ),
            organizations_outside: format!(
                "SELECT id, trust_id, kind FROM organizations \
                 WHERE {} AND (kind <> 'SCHOOL' OR trust_id <> $1)",
                DB::in_list("id", 2)
            ),
            list: format!(
                "SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions \
                 WHERE trust_id = $1 AND ({} OR {}) \
                 AND ($3 IS NULL OR product_key = $3) AND id > $4 \
                 ORDER BY id LIMIT $5",
                DB::list_is_empty(2),
                DB::in_list("organization_id", 2)
            ),
        }
    }
}

/// A [`Store`] on database `DB`.
#[derive(Debug)]
pub struct SqlStore<DB: sqlx::Database> {
    db: Db<DB>,
    sql: Statements,
}

impl<DB> SqlStore<DB>
where
    DB: Backend,
    String: Column<DB>,
    i64: Column<DB>,
    Option<String>: Column<DB>,
    Option<i64>: Column<DB>,
    usize: ColumnIndex<DB::Row>,
    for<'s> &'s str: ColumnIndex<DB::Row>,
{
    pub fn new(db: Db<DB>) -> Self {
        Self {
            db,
            sql: Statements::new::<DB>(),
        }
    }

    /// The outcome of a create whose request id is already recorded, if it is.
    async fn replay(
        &self,
        conn: &mut DB::Connection,
        request: &RequestKey,
    ) -> Result<Option<CreateOutcome>> {
        let recorded: Option<(String, SubscriptionId)> = sqlx::query_as(RECORDED_REQUEST)
            .bind(&request.caller)
            .bind(&request.request_id)
            .fetch_optional(conn.exec())
            .await?;
        let Some((fingerprint, subscription_id)) = recorded else {
            return Ok(None);
        };
        if fingerprint != request.fingerprint {
            return Ok(Some(CreateOutcome::RequestIdReused));
        }
        let row: SubscriptionRow = sqlx::query_as(&self.sql.subscription)
            .bind(subscription_id)
            .fetch_one(conn.exec())
            .await?;
        Ok(Some(CreateOutcome::Replayed(row.into())))
    }

    /// Registers the organisation, stores the subscription and records the request, unless
    /// the request was already recorded or the organisation is known otherwise.
    async fn insert(
        &self,
        conn: &mut DB::Connection,
        s: &Subscription,
        request: Option<&RequestKey>,
    ) -> Result<CreateOutcome> {
        if let Some(request) = request
            && let Some(outcome) = self.replay(conn, request).await?
        {
            return Ok(outcome);
        }
        sqlx::query(REGISTER_ORGANIZATION)
            .bind(s.organization_id)
            .bind(s.trust_id)
            .bind(Text(s.organization_kind))
            .bind(to_micros(s.create_time))
            .execute(conn.exec())
            .await?;
        let known: OrganizationRow = sqlx::query_as(ORGANIZATION)
            .bind(s.organization_id)
            .fetch_one(conn.exec())
            .await?;
        let known = Organization::from(known);
        if known.trust_id != s.trust_id || known.kind != s.organization_kind {
            return Ok(CreateOutcome::OrganizationConflict(known));
        }
        sqlx::query(INSERT_SUBSCRIPTION)
            .bind(s.id)
            .bind(s.trust_id)
            .bind(Text(s.organization_kind))
            .bind(s.organization_id)
            .bind(&s.product_key)
            .bind(Text(s.status))
            .bind(to_micros(s.start_time))
            .bind(s.end_time.map(to_micros))
            .bind(s.cancel_time.map(to_micros))
            .bind(to_micros(s.create_time))
            .bind(to_micros(s.update_time))
            .bind(s.version)
            .execute(conn.exec())
            .await?;
        sqlx::query(BUMP_REVISION)
            .bind(s.trust_id)
            .execute(conn.exec())
            .await?;
        if let Some(request) = request {
            sqlx::query(RECORD_REQUEST)
                .bind(&request.caller)
                .bind(&request.request_id)
                .bind(&request.fingerprint)
                .bind(s.id)
                .bind(to_micros(s.create_time))
                .execute(conn.exec())
                .await?;
        }
        Ok(CreateOutcome::Created(s.clone()))
    }
}

#[async_trait]
impl<DB> Store for SqlStore<DB>
where
    DB: Backend,
    String: Column<DB>,
    i64: Column<DB>,
    Option<String>: Column<DB>,
    Option<i64>: Column<DB>,
    usize: ColumnIndex<DB::Row>,
    for<'s> &'s str: ColumnIndex<DB::Row>,
{
    async fn load_catalog(&self) -> Result<Catalog> {
        self.db
            .run("load_catalog", async |conn| {
                let products: Vec<ProductRow> =
                    sqlx::query_as(PRODUCTS).fetch_all(conn.exec()).await?;
                let roles: Vec<RoleRow> = sqlx::query_as(ROLES).fetch_all(conn.exec()).await?;
                let equivalences: Vec<EquivalenceRow> =
                    sqlx::query_as(EQUIVALENCES).fetch_all(conn.exec()).await?;
                Ok(Catalog::from(CatalogRows {
                    products,
                    roles,
                    equivalences,
                }))
            })
            .await
    }

    async fn create_subscription(
        &self,
        subscription: &Subscription,
        request: Option<&RequestKey>,
    ) -> Result<CreateOutcome> {
        let created = self
            .db
            .write("create_subscription", async |conn| {
                self.insert(conn, subscription, request).await
            })
            .await;
        match (created, request) {
            // A concurrent retry of the same request committed first: its answer is ours.
            (Err(Error::Database(error)), Some(request)) if is_unique_violation(&error) => {
                let replayed = self
                    .db
                    .run("create_subscription", async |conn| {
                        self.replay(conn, request).await
                    })
                    .await?;
                replayed.ok_or(Error::Database(error))
            }
            (created, _) => created,
        }
    }

    async fn get_subscription(&self, id: SubscriptionId) -> Result<Option<Subscription>> {
        self.db
            .run("get_subscription", async |conn| {
                let row: Option<SubscriptionRow> = sqlx::query_as(&self.sql.subscription)
                    .bind(id)
                    .fetch_optional(conn.exec())
                    .await?;
                Ok(row.map(Subscription::from))
            })
            .await
    }

    async fn replace_subscription(&self, updated: &Subscription) -> Result<bool> {
        self.db
            .write("replace_subscription", async |conn| {
                let result = sqlx::query(REPLACE_SUBSCRIPTION)
                    .bind(updated.id)
                    .bind(Text(updated.status))
                    .bind(to_micros(updated.start_time))
                    .bind(updated.end_time.map(to_micros))
                    .bind(updated.cancel_time.map(to_micros))
                    .bind(to_micros(updated.update_time))
                    .bind(updated.version)
                    .bind(updated.version - 1)
                    .execute(conn.exec())
                    .await?;
                if result.rows_affected() != 1 {
                    return Ok(false);
                }
                sqlx::query(BUMP_REVISION)
                    .bind(updated.trust_id)
                    .execute(conn.exec())
                    .await?;
                Ok(true)
            })
            .await
    }

    async fn list_subscriptions(&self, page: &SubscriptionPage) -> Result<Vec<Subscription>> {
        let filter = &page.filter;
        // An empty list: every organisation of the trust.
        let organizations = DB::text_list(filter.organization_ids.iter().map(ToString::to_string));
        let product = filter
            .product_key
            .as_ref()
            .map(|key| key.as_str().to_owned());
        // Ids sort as their text does: the first page starts after the empty text.
        let after = page.after.map(|id| id.to_string()).unwrap_or_default();
        self.db
            .run("list_subscriptions", async |conn| {
                let rows: Vec<SubscriptionRow> = sqlx::query_as(&self.sql.list)
                    .bind(filter.trust_id)
                    .bind(organizations)
                    .bind(product)
                    .bind(after)
                    .bind(page.limit)
                    .fetch_all(conn.exec())
                    .await?;
                Ok(rows.into_iter().map(Subscription::from).collect())
            })
            .await
    }

    async fn subscriptions_of(
        &self,
        trust_id: TrustId,
        organization_ids: &[OrganizationId],
        product_keys: Option<&[ProductKey]>,
    ) -> Result<Vec<Subscription>> {
        let organizations = DB::text_list(organization_ids.iter().map(ToString::to_string));
        let mut subscriptions = self
            .db
            .run("subscriptions_of", async |conn| {
                let query = match product_keys {
                    Some(products) => sqlx::query(&self.sql.subscriptions_of_products)
                        .bind(organizations)
                        .bind(DB::text_list(products)),
                    None => sqlx::query(&self.sql.subscriptions_of_any_product).bind(organizations),
                };
                DB::fetch_subscriptions(conn, query).await
            })
            .await?;
        subscriptions.retain(|s| s.trust_id == trust_id);
        Ok(subscriptions)
    }

    async fn organizations_outside(
        &self,
        trust_id: TrustId,
        ids: &[OrganizationId],
    ) -> Result<Vec<Organization>> {
        let ids = DB::text_list(ids.iter().map(ToString::to_string));
        self.db
            .run("organizations_outside", async |conn| {
                let rows: Vec<OrganizationRow> = sqlx::query_as(&self.sql.organizations_outside)
                    .bind(trust_id)
                    .bind(ids)
                    .fetch_all(conn.exec())
                    .await?;
                Ok(rows.into_iter().map(Organization::from).collect())
            })
            .await
    }

    async fn trust_snapshot(&self, trust_id: TrustId) -> Result<TrustSnapshot> {
        self.db
            .snapshot("trust_snapshot", async |conn| {
                let revision: Option<i64> = sqlx::query_scalar(REVISION)
                    .bind(trust_id)
                    .fetch_optional(conn.exec())
                    .await?;
                let query = sqlx::query(&self.sql.trust_subscriptions).bind(trust_id);
                let subscriptions = DB::fetch_subscriptions(conn, query).await?;
                Ok(TrustSnapshot {
                    revision: revision.unwrap_or(0),
                    subscriptions,
                })
            })
            .await
    }

    async fn trust_revisions(&self, trust_ids: &[TrustId]) -> Result<Vec<(TrustId, i64)>> {
        let trusts = DB::text_list(trust_ids.iter().map(ToString::to_string));
        self.db
            .run("trust_revisions", async |conn| {
                Ok(sqlx::query_as(&self.sql.trust_revisions)
                    .bind(trusts)
                    .fetch_all(conn.exec())
                    .await?)
            })
            .await
    }
}
