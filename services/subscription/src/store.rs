//! Storage: the [`Store`] trait and its SQLite and PostgreSQL adapters.
//!
//! Both adapters come from one body (`sql_store!`); the SQL differs only in how a set of
//! values is passed (a JSON array read with `json_each` on SQLite, an array with `= ANY` on
//! PostgreSQL), how a write transaction begins, and whether the eligibility candidates come
//! back as rows or as one aggregated JSON value (SQLite, where each row crosses threads).

use std::sync::Arc;

use async_trait::async_trait;
use portal_runtime::clock::{from_micros, to_micros};
use portal_runtime::db::{DbPool, WarmPool, is_unique_violation};
use sqlx::FromRow;

use crate::domain::{
    Catalog, OrgKind, Organization, Product, Role, RoleEquivalence, RoleRef, Scope, Status,
    Subscription,
};

/// Who asked for a create, and their AIP-155 request id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestKey {
    pub caller: String,
    pub request_id: String,
    /// Digest of the request (see `NewSubscription::fingerprint`).
    pub fingerprint: String,
}

/// What [`Store::create_subscription`] did.
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

/// Filters of [`Store::list_subscriptions`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    pub trust_id: String,
    /// Empty: every organisation of the trust.
    pub organization_ids: Vec<String>,
    pub product_key: Option<String>,
}

/// A trust's subscriptions as of one revision (see [`Store::trust_snapshot`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustSnapshot {
    /// The trust's revision: 0 before its first write, then one more for each write.
    pub revision: i64,
    /// Every subscription of the trust, its own and its schools', in any order.
    pub subscriptions: Vec<Subscription>,
}

/// The subscription service's storage.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The whole catalogue.
    async fn load_catalog(&self) -> Result<Catalog, sqlx::Error>;

    /// Creates a subscription, registering its organisation, and its request id when given,
    /// in one transaction.
    async fn create_subscription(
        &self,
        subscription: &Subscription,
        request: Option<&RequestKey>,
    ) -> Result<CreateOutcome, sqlx::Error>;

    async fn get_subscription(&self, id: &str) -> Result<Option<Subscription>, sqlx::Error>;

    /// Stores the new status, period and cancellation of `updated` if the stored version is
    /// still `updated.version - 1`; `false` when someone else changed it first.
    async fn replace_subscription(&self, updated: &Subscription) -> Result<bool, sqlx::Error>;

    /// A trust's subscriptions matching `filter`, in id order, after `after`, at most `limit`.
    async fn list_subscriptions(
        &self,
        filter: &ListFilter,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Subscription>, sqlx::Error>;

    /// Every subscription of the trust held by one of `organization_ids`, to one of
    /// `product_keys` (`None`: any product). One query, whatever the sizes of the sets.
    async fn subscriptions_of(
        &self,
        trust_id: &str,
        organization_ids: &[String],
        product_keys: Option<&[String]>,
    ) -> Result<Vec<Subscription>, sqlx::Error>;

    /// The known organisations among `ids` that are not schools of `trust_id`: trusts, and
    /// schools of other trusts. One query; usually an empty answer.
    async fn organizations_outside(
        &self,
        trust_id: &str,
        ids: &[String],
    ) -> Result<Vec<Organization>, sqlx::Error>;

    /// Every subscription of a trust with the trust's revision, read in one snapshot. Every
    /// write to a subscription increments its trust's revision in the same transaction.
    async fn trust_snapshot(&self, trust_id: &str) -> Result<TrustSnapshot, sqlx::Error>;

    /// The current revisions of those of `trust_ids` that were ever written. One query.
    async fn trust_revisions(
        &self,
        trust_ids: &[String],
    ) -> Result<Vec<(String, i64)>, sqlx::Error>;
}

/// Increments a trust's revision; part of every write transaction.
const BUMP_REVISION: &str = "INSERT INTO trust_revisions (trust_id, revision) VALUES ($1, 1) \
     ON CONFLICT (trust_id) DO UPDATE SET revision = trust_revisions.revision + 1";

/// The store of a pool, whichever database it is.
pub fn for_pool(pool: &DbPool) -> Arc<dyn Store> {
    match pool {
        DbPool::Sqlite(pool) => Arc::new(SqlStore::<sqlx::Sqlite>::new(pool.clone())),
        DbPool::Postgres(pool) => Arc::new(SqlStore::<sqlx::Postgres>::new(pool.clone())),
    }
}

fn corrupt(what: &str, value: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("unexpected {what} `{value}` in the database").into())
}

#[derive(Debug, FromRow)]
struct SubscriptionRow {
    id: String,
    trust_id: String,
    organization_kind: String,
    organization_id: String,
    product_key: String,
    status: String,
    start_time: i64,
    end_time: Option<i64>,
    cancel_time: Option<i64>,
    create_time: i64,
    update_time: i64,
    version: i64,
}

impl TryFrom<SubscriptionRow> for Subscription {
    type Error = sqlx::Error;

    fn try_from(row: SubscriptionRow) -> Result<Self, Self::Error> {
        Ok(Subscription {
            organization_kind: OrgKind::from_db(&row.organization_kind)
                .ok_or_else(|| corrupt("organisation kind", &row.organization_kind))?,
            status: Status::from_db(&row.status).ok_or_else(|| corrupt("status", &row.status))?,
            id: row.id,
            trust_id: row.trust_id,
            organization_id: row.organization_id,
            product_key: row.product_key,
            start_time: from_micros(row.start_time),
            end_time: row.end_time.map(from_micros),
            cancel_time: row.cancel_time.map(from_micros),
            create_time: from_micros(row.create_time),
            update_time: from_micros(row.update_time),
            version: row.version,
        })
    }
}

fn rows_to_subscriptions(rows: Vec<SubscriptionRow>) -> Result<Vec<Subscription>, sqlx::Error> {
    rows.into_iter().map(Subscription::try_from).collect()
}

#[derive(Debug, FromRow)]
struct OrganizationRow {
    id: String,
    trust_id: String,
    kind: String,
}

impl TryFrom<OrganizationRow> for Organization {
    type Error = sqlx::Error;

    fn try_from(row: OrganizationRow) -> Result<Self, Self::Error> {
        Ok(Organization {
            kind: OrgKind::from_db(&row.kind)
                .ok_or_else(|| corrupt("organisation kind", &row.kind))?,
            id: row.id,
            trust_id: row.trust_id,
        })
    }
}

#[derive(Debug, FromRow)]
struct ProductRow {
    key: String,
    name: String,
    scope: String,
}

#[derive(Debug, FromRow)]
struct RoleRow {
    product_key: String,
    key: String,
    name: String,
    description: String,
}

#[derive(Debug, FromRow)]
struct EquivalenceRow {
    left_product_key: String,
    left_role_key: String,
    right_product_key: String,
    right_role_key: String,
    description: String,
}

fn build_catalog(
    products: Vec<ProductRow>,
    roles: Vec<RoleRow>,
    equivalences: Vec<EquivalenceRow>,
) -> Result<Catalog, sqlx::Error> {
    let mut products = products
        .into_iter()
        .map(|row| {
            Ok(Product {
                scope: Scope::from_db(&row.scope).ok_or_else(|| corrupt("scope", &row.scope))?,
                key: row.key,
                name: row.name,
                roles: Vec::new(),
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    for role in roles {
        if let Some(product) = products.iter_mut().find(|p| p.key == role.product_key) {
            product.roles.push(Role {
                key: role.key,
                name: role.name,
                description: role.description,
            });
        }
    }
    let equivalences = equivalences
        .into_iter()
        .map(|row| RoleEquivalence {
            left: RoleRef {
                product_key: row.left_product_key,
                role_key: row.left_role_key,
            },
            right: RoleRef {
                product_key: row.right_product_key,
                role_key: row.right_role_key,
            },
            description: row.description,
        })
        .collect();
    products.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(Catalog::new(products, equivalences))
}

const SUBSCRIPTION_COLUMNS: &str = "id, trust_id, organization_kind, organization_id, product_key, \
     status, start_time, end_time, cancel_time, create_time, update_time, version";

/// One subscription as an element of a JSON array (see [`Queries::new`]'s `aggregate`).
type SubscriptionTuple = (
    String,
    String,
    String,
    String,
    String,
    String,
    i64,
    Option<i64>,
    Option<i64>,
    i64,
    i64,
    i64,
);

fn tuple_to_subscription(t: SubscriptionTuple) -> Result<Subscription, sqlx::Error> {
    Subscription::try_from(SubscriptionRow {
        id: t.0,
        trust_id: t.1,
        organization_kind: t.2,
        organization_id: t.3,
        product_key: t.4,
        status: t.5,
        start_time: t.6,
        end_time: t.7,
        cancel_time: t.8,
        create_time: t.9,
        update_time: t.10,
        version: t.11,
    })
}

/// Decodes the JSON array of subscriptions an aggregated query returns.
fn parse_aggregate(json: &str) -> Result<Vec<Subscription>, sqlx::Error> {
    let tuples: Vec<SubscriptionTuple> =
        serde_json::from_str(json).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    tuples.into_iter().map(tuple_to_subscription).collect()
}

/// The SQL of one backend, built once from its dialect.
#[derive(Debug)]
struct Queries {
    begin_write: &'static str,
    /// Begins a read-only transaction whose statements all see one snapshot.
    begin_snapshot: &'static str,
    /// Whether the candidate queries return one aggregated JSON value instead of rows.
    aggregated: bool,
    subscriptions_of_any_product: String,
    subscriptions_of_products: String,
    organizations: String,
    list: String,
    /// Every subscription of trust $1.
    of_trust: String,
    /// Revisions of the trusts in set $1.
    revisions: String,
}

impl Queries {
    /// `in_set(column, n)`: the condition "column is one of the values of parameter n".
    /// `set_is_null(n)`: true when parameter n (a set) is NULL.
    /// `aggregate(columns)`, when given: the JSON array (as text) of one JSON array of
    /// `columns` per row, so the eligibility query returns its hundreds of rows as one value.
    fn new(
        begin_write: &'static str,
        begin_snapshot: &'static str,
        in_set: fn(&str, usize) -> String,
        set_is_null: fn(usize) -> String,
        aggregate: Option<fn(&str) -> String>,
    ) -> Self {
        let all = aggregate.map_or_else(
            || SUBSCRIPTION_COLUMNS.to_string(),
            |a| a(SUBSCRIPTION_COLUMNS),
        );
        Self {
            begin_write,
            begin_snapshot,
            aggregated: aggregate.is_some(),
            // The trust is checked on the rows, not in SQL, so that the planner has no other
            // index to prefer over (organization_id, product_key).
            subscriptions_of_any_product: format!(
                "SELECT {all} FROM subscriptions WHERE {}",
                in_set("organization_id", 1)
            ),
            subscriptions_of_products: format!(
                "SELECT {all} FROM subscriptions WHERE {} AND {}",
                in_set("organization_id", 1),
                in_set("product_key", 2)
            ),
            of_trust: format!("SELECT {all} FROM subscriptions WHERE trust_id = $1"),
            revisions: format!(
                "SELECT trust_id, revision FROM trust_revisions WHERE {}",
                in_set("trust_id", 1)
            ),
            organizations: format!(
                "SELECT id, trust_id, kind FROM organizations \
                 WHERE {} AND (kind <> 'SCHOOL' OR trust_id <> $1)",
                in_set("id", 2)
            ),
            list: format!(
                "SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions \
                 WHERE trust_id = $1 AND ({} OR {}) \
                 AND ($3 IS NULL OR product_key = $3) AND id > $4 \
                 ORDER BY id LIMIT $5",
                set_is_null(2),
                in_set("organization_id", 2)
            ),
        }
    }
}

/// A [`Store`] over a sqlx pool of database `DB`.
#[derive(Debug)]
pub struct SqlStore<DB: sqlx::Database> {
    pool: WarmPool<DB>,
    queries: Queries,
}

impl SqlStore<sqlx::Sqlite> {
    pub fn new(pool: WarmPool<sqlx::Sqlite>) -> Self {
        Self {
            pool,
            // IMMEDIATE takes the write lock at once, so two writers wait for each other
            // (busy timeout) instead of failing on a lock upgrade.
            queries: Queries::new(
                "BEGIN IMMEDIATE",
                // A deferred transaction reads one WAL snapshot from its first read on.
                "BEGIN",
                |column, n| format!("{column} IN (SELECT value FROM json_each(${n}))"),
                |n| format!("${n} IS NULL"),
                // Rows cross from SQLite's worker thread one at a time; one value for
                // hundreds of rows is several times faster.
                Some(|columns| format!("json_group_array(json_array({columns}))")),
            ),
        }
    }
}

impl SqlStore<sqlx::Postgres> {
    pub fn new(pool: WarmPool<sqlx::Postgres>) -> Self {
        Self {
            pool,
            queries: Queries::new(
                "BEGIN",
                "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
                |column, n| format!("{column} = ANY(${n}::text[])"),
                |n| format!("${n}::text[] IS NULL"),
                // PostgreSQL rows decode cheaply; building JSON would cost more.
                None,
            ),
        }
    }
}

/// How a set of strings is bound: a JSON array on SQLite, a text array on PostgreSQL.
fn sqlite_set(values: &[String]) -> String {
    serde_json::to_string(values).unwrap_or_else(|_| "[]".into())
}

fn postgres_set(values: &[String]) -> Vec<String> {
    values.to_vec()
}

macro_rules! sql_store {
    ($db:ty, $set:path, $system:literal) => {
        impl SqlStore<$db> {
            /// The outcome of a create whose request id is already recorded, if it is.
            async fn replay(
                conn: &mut <$db as sqlx::Database>::Connection,
                request: &RequestKey,
            ) -> Result<Option<CreateOutcome>, sqlx::Error> {
                let recorded: Option<(String, String)> = sqlx::query_as(
                    "SELECT fingerprint, subscription_id FROM create_requests \
                     WHERE caller = $1 AND request_id = $2",
                )
                .bind(&request.caller)
                .bind(&request.request_id)
                .fetch_optional(&mut *conn)
                .await?;
                let Some((fingerprint, subscription_id)) = recorded else {
                    return Ok(None);
                };
                if fingerprint != request.fingerprint {
                    return Ok(Some(CreateOutcome::RequestIdReused));
                }
                let sql = format!("SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE id = $1");
                let row: SubscriptionRow = sqlx::query_as(&sql)
                    .bind(&subscription_id)
                    .fetch_one(&mut *conn)
                    .await?;
                Ok(Some(CreateOutcome::Replayed(Subscription::try_from(row)?)))
            }
        }

        #[async_trait]
        impl Store for SqlStore<$db> {
            #[tracing::instrument(name = "subscription.db.load_catalog", skip_all, fields(otel.kind = "client", db.system = $system))]
            async fn load_catalog(&self) -> Result<Catalog, sqlx::Error> {
                let products: Vec<ProductRow> =
                    sqlx::query_as("SELECT key, name, scope FROM products ORDER BY key")
                        .fetch_all(&self.pool)
                        .await?;
                let roles: Vec<RoleRow> = sqlx::query_as(
                    "SELECT product_key, key, name, description FROM roles \
                     ORDER BY product_key, position, key",
                )
                .fetch_all(&self.pool)
                .await?;
                let equivalences: Vec<EquivalenceRow> = sqlx::query_as(
                    "SELECT left_product_key, left_role_key, right_product_key, right_role_key, \
                     description FROM role_equivalences \
                     ORDER BY left_product_key, left_role_key, right_product_key, right_role_key",
                )
                .fetch_all(&self.pool)
                .await?;
                build_catalog(products, roles, equivalences)
            }

            #[tracing::instrument(name = "subscription.db.create_subscription", skip_all, fields(otel.kind = "client", db.system = $system))]
            async fn create_subscription(
                &self,
                subscription: &Subscription,
                request: Option<&RequestKey>,
            ) -> Result<CreateOutcome, sqlx::Error> {
                let mut lease = self.pool.lease().await?;
                let mut tx = lease.begin_with(self.queries.begin_write).await?;
                if let Some(request) = request
                    && let Some(outcome) = Self::replay(&mut tx, request).await?
                {
                    return Ok(outcome);
                }
                let s = subscription;
                // No conflict target: with `(id)` alone, two concurrent first subscriptions
                // of one organisation could trip over the (id, trust_id, kind) unique index
                // before the primary key and fail instead of doing nothing.
                sqlx::query(
                    "INSERT INTO organizations (id, trust_id, kind, create_time) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                )
                .bind(&s.organization_id)
                .bind(&s.trust_id)
                .bind(s.organization_kind.as_db())
                .bind(to_micros(s.create_time))
                .execute(&mut *tx)
                .await?;
                let known: OrganizationRow =
                    sqlx::query_as("SELECT id, trust_id, kind FROM organizations WHERE id = $1")
                        .bind(&s.organization_id)
                        .fetch_one(&mut *tx)
                        .await?;
                let known = Organization::try_from(known)?;
                if known.trust_id != s.trust_id || known.kind != s.organization_kind {
                    return Ok(CreateOutcome::OrganizationConflict(known));
                }
                sqlx::query(
                    "INSERT INTO subscriptions (id, trust_id, organization_kind, organization_id, \
                     product_key, status, start_time, end_time, cancel_time, create_time, \
                     update_time, version) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                )
                .bind(&s.id)
                .bind(&s.trust_id)
                .bind(s.organization_kind.as_db())
                .bind(&s.organization_id)
                .bind(&s.product_key)
                .bind(s.status.as_db())
                .bind(to_micros(s.start_time))
                .bind(s.end_time.map(to_micros))
                .bind(s.cancel_time.map(to_micros))
                .bind(to_micros(s.create_time))
                .bind(to_micros(s.update_time))
                .bind(s.version)
                .execute(&mut *tx)
                .await?;
                sqlx::query(BUMP_REVISION)
                    .bind(&s.trust_id)
                    .execute(&mut *tx)
                    .await?;
                if let Some(request) = request {
                    let inserted = sqlx::query(
                        "INSERT INTO create_requests \
                         (caller, request_id, fingerprint, subscription_id, create_time) \
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(&request.caller)
                    .bind(&request.request_id)
                    .bind(&request.fingerprint)
                    .bind(&s.id)
                    .bind(to_micros(s.create_time))
                    .execute(&mut *tx)
                    .await;
                    match inserted {
                        Ok(_) => {}
                        // A concurrent retry of the same request committed first.
                        Err(error) if is_unique_violation(&error) => {
                            tx.rollback().await?;
                            let mut conn = self.pool.lease().await?;
                            return match Self::replay(&mut conn, request).await? {
                                Some(outcome) => Ok(outcome),
                                None => Err(error),
                            };
                        }
                        Err(error) => return Err(error),
                    }
                }
                tx.commit().await?;
                lease.release();
                Ok(CreateOutcome::Created(subscription.clone()))
            }

            #[tracing::instrument(name = "subscription.db.get_subscription", skip_all, fields(otel.kind = "client", db.system = $system))]
            async fn get_subscription(
                &self,
                id: &str,
            ) -> Result<Option<Subscription>, sqlx::Error> {
                let sql = format!("SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE id = $1");
                let row: Option<SubscriptionRow> = sqlx::query_as(&sql)
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                row.map(Subscription::try_from).transpose()
            }

            #[tracing::instrument(name = "subscription.db.replace_subscription", skip_all, fields(otel.kind = "client", db.system = $system))]
            async fn replace_subscription(
                &self,
                updated: &Subscription,
            ) -> Result<bool, sqlx::Error> {
                let mut lease = self.pool.lease().await?;
                let mut tx = lease.begin_with(self.queries.begin_write).await?;
                let result = sqlx::query(
                    "UPDATE subscriptions SET status = $2, start_time = $3, end_time = $4, \
                     cancel_time = $5, update_time = $6, version = $7 \
                     WHERE id = $1 AND version = $8",
                )
                .bind(&updated.id)
                .bind(updated.status.as_db())
                .bind(to_micros(updated.start_time))
                .bind(updated.end_time.map(to_micros))
                .bind(updated.cancel_time.map(to_micros))
                .bind(to_micros(updated.update_time))
                .bind(updated.version)
                .bind(updated.version - 1)
                .execute(&mut *tx)
                .await?;
                if result.rows_affected() != 1 {
                    return Ok(false);
                }
                sqlx::query(BUMP_REVISION)
                    .bind(&updated.trust_id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                lease.release();
                Ok(true)
            }

            #[tracing::instrument(name = "subscription.db.list_subscriptions", skip_all, fields(otel.kind = "client", db.system = $system))]
            async fn list_subscriptions(
                &self,
                filter: &ListFilter,
                after: Option<&str>,
                limit: i64,
            ) -> Result<Vec<Subscription>, sqlx::Error> {
                let organizations =
                    (!filter.organization_ids.is_empty()).then(|| $set(&filter.organization_ids));
                let rows: Vec<SubscriptionRow> = sqlx::query_as(&self.queries.list)
                    .bind(&filter.trust_id)
                    .bind(organizations)
                    .bind(filter.product_key.as_deref())
                    .bind(after.unwrap_or(""))
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                rows_to_subscriptions(rows)
            }

            #[tracing::instrument(name = "subscription.db.subscriptions_of", skip_all, fields(otel.kind = "client", db.system = $system))]
            async fn subscriptions_of(
                &self,
                trust_id: &str,
                organization_ids: &[String],
                product_keys: Option<&[String]>,
            ) -> Result<Vec<Subscription>, sqlx::Error> {
                let query = match product_keys {
                    Some(_) => self.queries.subscriptions_of_products.as_str(),
                    None => self.queries.subscriptions_of_any_product.as_str(),
                };
                let organizations = $set(organization_ids);
                let products = product_keys.map($set);
                let mut subscriptions = if self.queries.aggregated {
                    let mut q = sqlx::query_scalar::<_, Option<String>>(query).bind(organizations);
                    if let Some(products) = products {
                        q = q.bind(products);
                    }
                    let json = q.fetch_one(&self.pool).await?;
                    parse_aggregate(json.as_deref().unwrap_or("[]"))?
                } else {
                    let mut q = sqlx::query_as::<_, SubscriptionRow>(query).bind(organizations);
                    if let Some(products) = products {
                        q = q.bind(products);
                    }
                    rows_to_subscriptions(q.fetch_all(&self.pool).await?)?
                };
                subscriptions.retain(|s| s.trust_id == trust_id);
                Ok(subscriptions)
            }

            #[tracing::instrument(name = "subscription.db.organizations_outside", skip_all, fields(otel.kind = "client", db.system = $system))]
            async fn organizations_outside(
                &self,
                trust_id: &str,
                ids: &[String],
            ) -> Result<Vec<Organization>, sqlx::Error> {
                let rows: Vec<OrganizationRow> = sqlx::query_as(&self.queries.organizations)
                    .bind(trust_id)
                    .bind($set(ids))
                    .fetch_all(&self.pool)
                    .await?;
                rows.into_iter().map(Organization::try_from).collect()
            }

            #[tracing::instrument(name = "subscription.db.trust_snapshot", skip_all, fields(otel.kind = "client", db.system = $system))]
            async fn trust_snapshot(&self, trust_id: &str) -> Result<TrustSnapshot, sqlx::Error> {
                let mut lease = self.pool.lease().await?;
                let mut tx = lease.begin_with(self.queries.begin_snapshot).await?;
                let revision: Option<i64> =
                    sqlx::query_scalar("SELECT revision FROM trust_revisions WHERE trust_id = $1")
                        .bind(trust_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                let subscriptions = if self.queries.aggregated {
                    let json: Option<String> = sqlx::query_scalar(&self.queries.of_trust)
                        .bind(trust_id)
                        .fetch_one(&mut *tx)
                        .await?;
                    parse_aggregate(json.as_deref().unwrap_or("[]"))?
                } else {
                    let rows: Vec<SubscriptionRow> = sqlx::query_as(&self.queries.of_trust)
                        .bind(trust_id)
                        .fetch_all(&mut *tx)
                        .await?;
                    rows_to_subscriptions(rows)?
                };
                tx.commit().await?;
                lease.release();
                Ok(TrustSnapshot {
                    revision: revision.unwrap_or(0),
                    subscriptions,
                })
            }

            #[tracing::instrument(name = "subscription.db.trust_revisions", skip_all, fields(otel.kind = "client", db.system = $system))]
            async fn trust_revisions(
                &self,
                trust_ids: &[String],
            ) -> Result<Vec<(String, i64)>, sqlx::Error> {
                sqlx::query_as(&self.queries.revisions)
                    .bind($set(trust_ids))
                    .fetch_all(&self.pool)
                    .await
            }
        }
    };
}

sql_store!(sqlx::Sqlite, sqlite_set, "sqlite");
sql_store!(sqlx::Postgres, postgres_set, "postgresql");
