//! A connection pool that keeps connections warm between uses.
//!
//! sqlx (0.8) checks every connection handed back to its pool with a round trip to the
//! database (a Sync and its ReadyForQuery on PostgreSQL, a worker hand-off on SQLite), even
//! when the use that just ended ran to completion. On a busy service that is one extra round
//! trip per statement, which the database server pays for as much as the client. A
//! [`WarmPool`] parks a connection whose use finished cleanly instead of handing it back, and
//! gives it to the next caller as it is; a use that failed at the transport, or was cancelled
//! half way, drops its connection the usual way, so sqlx still checks it.

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::PING_IDLE_AFTER;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{StreamExt as _, TryStreamExt as _};
use sqlx::pool::PoolConnection;
use sqlx::{Connection as _, Database, Describe, Either, Execute, Executor, Pool, Transaction};

/// A connection goes back to sqlx's pool after this long in service, so sqlx's own lifetime
/// and idle limits still renew connections now and then.
const RETIRE_AFTER: Duration = Duration::from_secs(10 * 60);
/// A parked connection unused this long goes back to sqlx's pool (whose idle timeout closes
/// it), so the parked set follows the concurrency of the last minute, not of the busiest.
const UNPARK_AFTER: Duration = Duration::from_secs(60);

/// A sqlx pool plus the connections parked in front of it. Cheap to clone.
pub struct WarmPool<DB: Database> {
    shared: Arc<Shared<DB>>,
}

struct Shared<DB: Database> {
    pool: Pool<DB>,
    state: Mutex<State<DB>>,
    closed: std::sync::atomic::AtomicBool,
}

struct State<DB: Database> {
    parked: Vec<Parked<DB>>,
    /// Callers waiting on sqlx's pool. While there are any, a released connection goes back
    /// to sqlx, which hands it to one of them: parking it would leave them waiting for a
    /// connection nobody uses.
    waiting: usize,
}

struct Parked<DB: Database> {
    conn: PoolConnection<DB>,
    since: Instant,
    first_leased: Instant,
}

impl<DB: Database> Clone for WarmPool<DB> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<DB: Database> std::fmt::Debug for WarmPool<DB> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WarmPool")
            .field("pool", &self.shared.pool)
            .field("parked", &self.parked())
            .finish()
    }
}

impl<DB: Database> WarmPool<DB> {
    pub fn new(pool: Pool<DB>) -> Self {
        Self {
            shared: Arc::new(Shared {
                pool,
                state: Mutex::new(State {
                    parked: Vec::new(),
                    waiting: 0,
                }),
                closed: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }

    /// The sqlx pool underneath (migrations, and anything that wants sqlx's own checks).
    pub fn pool(&self) -> &Pool<DB> {
        &self.shared.pool
    }

    /// Connections parked here now.
    pub fn parked(&self) -> usize {
        self.shared.lock().parked.len()
    }

    /// A connection: a parked one if there is one (pinged first when it sat idle a while),
    /// otherwise one from sqlx's pool.
    pub async fn lease(&self) -> Result<Lease<DB>, sqlx::Error> {
        loop {
            let parked = {
                let mut state = self.shared.lock();
                let parked = state.parked.pop();
                if parked.is_none() {
                    // Counted under the same lock a release looks at, so no release parks
                    // its connection unseen while this caller waits on sqlx.
                    state.waiting += 1;
                }
                parked
            };
            let Some(parked) = parked else {
                break;
            };
            let mut lease = Lease {
                conn: Some(parked.conn),
                first_leased: parked.first_leased,
                shared: self.shared.clone(),
            };
            if parked.since.elapsed() < PING_IDLE_AFTER {
                return Ok(lease);
            }
            // A connection that sat idle may have been dropped by the server or a proxy.
            if lease.ping().await.is_ok() {
                return Ok(lease);
            }
        }
        let waiting = Waiting(&self.shared);
        let acquired = self.shared.pool.acquire().await;
        drop(waiting);
        Ok(Lease {
            conn: Some(acquired?),
            first_leased: Instant::now(),
            shared: self.shared.clone(),
        })
    }

    /// Hands the parked connections back and closes sqlx's pool (which waits for the
    /// connections still leased).
    pub async fn close(&self) {
        self.shared
            .closed
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let parked = std::mem::take(&mut self.shared.lock().parked);
        drop(parked);
        self.shared.pool.close().await;
    }
}

/// One caller counted in [`State::waiting`], uncounted when it stops waiting (or is
/// cancelled while it waits).
struct Waiting<'a, DB: Database>(&'a Shared<DB>);

impl<DB: Database> Drop for Waiting<'_, DB> {
    fn drop(&mut self) {
        self.0.lock().waiting -= 1;
    }
}

impl<DB: Database> Shared<DB> {
    fn lock(&self) -> MutexGuard<'_, State<DB>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Whether an error says the connection itself is gone: a transport failure, or the
/// server's own notice that it ended the session (SQLSTATE class 08, connection exception;
/// class 57, operator intervention, such as a shutdown or `pg_terminate_backend`).
pub(super) fn connection_lost(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|code| code.starts_with("08") || code.starts_with("57P")),
        _ => false,
    }
}

/// A connection leased from a [`WarmPool`]. [`Lease::release`] parks it for the next caller;
/// dropping it instead hands it back to sqlx's pool, which checks it first.
pub struct Lease<DB: Database> {
    conn: Option<PoolConnection<DB>>,
    first_leased: Instant,
    shared: Arc<Shared<DB>>,
}

impl<DB: Database> Lease<DB> {
    /// Parks the connection: call this once the use is over and ran to completion (a
    /// statement answered, a transaction committed or rolled back).
    pub fn release(mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        let shared = &self.shared;
        if shared.closed.load(std::sync::atomic::Ordering::SeqCst)
            || self.first_leased.elapsed() >= RETIRE_AFTER
        {
            return;
        }
        let mut state = shared.lock();
        // The stack's bottom holds the connections unused longest.
        let unused = state
            .parked
            .iter()
            .take_while(|p| p.since.elapsed() >= UNPARK_AFTER)
            .count();
        let unparked: Vec<Parked<DB>> = state.parked.drain(..unused).collect();
        // Never more parked than sqlx may open, nor while someone waits on sqlx's pool.
        if state.waiting == 0
            && state.parked.len() < shared.pool.options().get_max_connections() as usize
        {
            state.parked.push(Parked {
                conn,
                since: Instant::now(),
                first_leased: self.first_leased,
            });
            drop(state);
        } else {
            drop(state);
            drop(conn);
        }
        drop(unparked);
    }

    /// Parks the connection when `result` says the use completed: Ok, or an error the
    /// database answered (the connection itself is sound). Transport and protocol errors
    /// drop it, for sqlx to check.
    pub fn release_after<T>(self, result: &Result<T, sqlx::Error>) {
        self.release_unless_lost(result.as_ref().err());
    }

    /// Parks the connection unless `failure` says the use did not complete: a transport or
    /// protocol error drops it for sqlx to check (with every parked one, when the server
    /// itself went away); an error the database answered, or a failure of the caller's own
    /// (`None`), leaves it sound.
    pub fn release_unless_lost(self, failure: Option<&sqlx::Error>) {
        match failure {
            Some(error) if connection_lost(error) => {
                // Most often the server went away (a restart, a failover): the parked
                // connections are lost too, so they go back for sqlx to check rather than
                // to the next callers to fail on.
                let parked = std::mem::take(&mut self.shared.lock().parked);
                drop(parked);
                drop(self);
            }
            None | Some(sqlx::Error::Database(_)) | Some(sqlx::Error::RowNotFound) => {
                self.release()
            }
            Some(_) => drop(self),
        }
    }

    /// Starts a transaction on this connection; it rolls back if dropped uncommitted.
    pub async fn begin_with(
        &mut self,
        statement: &'static str,
    ) -> Result<Transaction<'_, DB>, sqlx::Error> {
        DB::Connection::begin_with(&mut **self, statement).await
    }
}

impl<DB: Database> Deref for Lease<DB> {
    type Target = DB::Connection;

    fn deref(&self) -> &Self::Target {
        self.conn
            .as_ref()
            .expect("a lease holds its connection until released")
    }
}

impl<DB: Database> DerefMut for Lease<DB> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.conn
            .as_mut()
            .expect("a lease holds its connection until released")
    }
}

/// A statement run on `&WarmPool` leases a connection for itself and parks it again when
/// the statement has answered, as `&Pool` does with sqlx's pool. Rows are gathered before
/// they are handed on, so the connection is free again before the caller sees them.
impl<'p, DB: Database> Executor<'p> for &'_ WarmPool<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    type Database = DB;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, Result<Either<DB::QueryResult, DB::Row>, sqlx::Error>>
    where
        E: 'q + Execute<'q, Self::Database>,
    {
        let warm = self.clone();
        futures::stream::once(async move {
            let mut lease = warm.lease().await?;
            let answer: Result<Vec<_>, sqlx::Error> =
                lease.deref_mut().fetch_many(query).try_collect().await;
            lease.release_after(&answer);
            answer
        })
        .map_ok(|items| futures::stream::iter(items.into_iter().map(Ok)))
        .try_flatten()
        .boxed()
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<DB::Row>, sqlx::Error>>
    where
        E: 'q + Execute<'q, Self::Database>,
    {
        let warm = self.clone();
        Box::pin(async move {
            let mut lease = warm.lease().await?;
            let answer = lease.deref_mut().fetch_optional(query).await;
            lease.release_after(&answer);
            answer
        })
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        sql: &'q str,
        parameters: &'e [DB::TypeInfo],
    ) -> BoxFuture<'e, Result<DB::Statement<'q>, sqlx::Error>> {
        let warm = self.clone();
        Box::pin(async move {
            let mut lease = warm.lease().await?;
            let answer = lease.deref_mut().prepare_with(sql, parameters).await;
            lease.release_after(&answer);
            answer
        })
    }

    fn describe<'e, 'q: 'e>(
        self,
        sql: &'q str,
    ) -> BoxFuture<'e, Result<Describe<DB>, sqlx::Error>> {
        let warm = self.clone();
        Box::pin(async move {
            let mut lease = warm.lease().await?;
            let answer = lease.deref_mut().describe(sql).await;
            lease.release_after(&answer);
            answer
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn sqlite(dir: &std::path::Path, max: u32) -> WarmPool<sqlx::Sqlite> {
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(dir.join("warm.db"))
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal);
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(max)
            .acquire_timeout(Duration::from_secs(2))
            .connect_with(options)
            .await
            .unwrap();
        WarmPool::new(pool)
    }

    /// A transaction on `lease` that has created table `t`, not yet committed.
    async fn table_created_in_a_transaction(
        lease: &mut Lease<sqlx::Sqlite>,
    ) -> Transaction<'_, sqlx::Sqlite> {
        let mut tx = lease.begin_with("BEGIN IMMEDIATE").await.unwrap();
        sqlx::query("CREATE TABLE t (x INTEGER)")
            .execute(&mut *tx)
            .await
            .unwrap();
        tx
    }

    #[tokio::test]
    async fn a_statement_that_answered_leaves_its_connection_parked_for_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let warm = sqlite(dir.path(), 4).await;
        assert_eq!(warm.parked(), 0);
        let one: i64 = sqlx::query_scalar("SELECT 1")
            .fetch_one(&warm)
            .await
            .unwrap();
        assert_eq!(one, 1);
        assert_eq!(warm.parked(), 1);
        // The next statement takes the parked connection rather than opening another.
        let rows: Vec<i64> = sqlx::query_scalar("SELECT 2 UNION ALL SELECT 3")
            .fetch_all(&warm)
            .await
            .unwrap();
        assert_eq!(rows, vec![2, 3]);
        assert_eq!(warm.parked(), 1);
        assert_eq!(warm.pool().size(), 1);
    }

    #[tokio::test]
    async fn an_error_the_database_answered_still_parks_the_connection() {
        let dir = tempfile::tempdir().unwrap();
        let warm = sqlite(dir.path(), 4).await;
        let error = sqlx::query("SELECT * FROM no_such_table")
            .execute(&warm)
            .await
            .unwrap_err();
        assert!(matches!(error, sqlx::Error::Database(_)));
        assert_eq!(warm.parked(), 1);
    }

    #[tokio::test]
    async fn a_lease_dropped_without_release_goes_back_to_sqlx_not_to_the_parked_set() {
        let dir = tempfile::tempdir().unwrap();
        let warm = sqlite(dir.path(), 4).await;
        let mut lease = warm.lease().await.unwrap();
        let tx = table_created_in_a_transaction(&mut lease).await;
        drop(tx);
        drop(lease);
        assert_eq!(warm.parked(), 0);
        // The rolled-back table never existed, and the connection is sound for the next use.
        let tables: i64 = sqlx::query_scalar("SELECT count(*) FROM sqlite_master WHERE name = 't'")
            .fetch_one(&warm)
            .await
            .unwrap();
        assert_eq!(tables, 0);
    }

    #[tokio::test]
    async fn a_committed_transaction_parks_its_connection_when_released() {
        let dir = tempfile::tempdir().unwrap();
        let warm = sqlite(dir.path(), 4).await;
        let mut lease = warm.lease().await.unwrap();
        let tx = table_created_in_a_transaction(&mut lease).await;
        tx.commit().await.unwrap();
        lease.release();
        assert_eq!(warm.parked(), 1);
        let mut next = warm.lease().await.unwrap();
        assert!(!sqlx::Connection::is_in_transaction(&*next));
        sqlx::query("INSERT INTO t VALUES (1)")
            .execute(&mut *next)
            .await
            .unwrap();
        next.release();
    }

    #[tokio::test]
    async fn callers_waiting_on_a_full_pool_get_the_connections_others_release() {
        let dir = tempfile::tempdir().unwrap();
        let warm = sqlite(dir.path(), 2).await;
        let calls: Vec<_> = (0..40)
            .map(|_| {
                let warm = warm.clone();
                tokio::spawn(async move {
                    let mut lease = warm.lease().await?;
                    let one: i64 = sqlx::query_scalar("SELECT 1")
                        .fetch_one(&mut *lease)
                        .await?;
                    // Held a while, so most callers queue up behind the two connections.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    lease.release();
                    Ok::<_, sqlx::Error>(one)
                })
            })
            .collect();
        for call in calls {
            assert_eq!(call.await.unwrap().unwrap(), 1);
        }
        assert!(warm.pool().size() <= 2);
    }

    #[tokio::test]
    async fn a_connection_lost_under_a_statement_hands_back_every_parked_one() {
        let Some(url) = crate::db::testing::postgres_url().await else {
            return;
        };
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(5))
            .connect(&url)
            .await
            .unwrap();
        let warm = WarmPool::new(pool);
        // Two connections parked, as after two concurrent statements.
        let mut first = warm.lease().await.unwrap();
        let mut second = warm.lease().await.unwrap();
        let mut pids = Vec::new();
        for lease in [&mut first, &mut second] {
            let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
                .fetch_one(&mut **lease)
                .await
                .unwrap();
            pids.push(pid);
        }
        first.release();
        second.release();
        assert_eq!(warm.parked(), 2);
        // The server drops both, as a restart would.
        let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
            .await
            .unwrap();
        for pid in &pids {
            sqlx::query("SELECT pg_terminate_backend($1)")
                .bind(pid)
                .execute(&mut admin)
                .await
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let lost = sqlx::query("SELECT 1").execute(&warm).await;
        assert!(lost.is_err(), "a terminated connection cannot answer");
        assert_eq!(
            warm.parked(),
            0,
            "the other parked connection is handed back too"
        );
        // The next statement gets a live connection.
        let one: i32 = sqlx::query_scalar("SELECT 1")
            .fetch_one(&warm)
            .await
            .unwrap();
        assert_eq!(one, 1);
        warm.close().await;
    }

    #[tokio::test]
    async fn close_hands_back_parked_connections_and_closes_the_pool() {
        let dir = tempfile::tempdir().unwrap();
        let warm = sqlite(dir.path(), 4).await;
        sqlx::query("SELECT 1").execute(&warm).await.unwrap();
        assert_eq!(warm.parked(), 1);
        tokio::time::timeout(Duration::from_secs(5), warm.close())
            .await
            .expect("close does not wait on parked connections");
        assert!(warm.pool().is_closed());
        assert_eq!(warm.parked(), 0);
        assert!(matches!(
            sqlx::query("SELECT 1").execute(&warm).await,
            Err(sqlx::Error::PoolClosed)
        ));
    }
}
