//! [`Db`]: how a store runs its work: one span per storage call, a connection leased and
//! parked again, and transactions begun, committed or rolled back in one place.

use tracing::Instrument as _;

use super::dialect::Dialect;
use super::warm::WarmPool;

/// What a store's error must be: made from sqlx's error, and naming it as its source when it
/// is one (thiserror's `#[from]`, not `#[error(transparent)]`, which hides it), so that a
/// connection lost under a statement is not parked for reuse.
pub trait StoreError: From<sqlx::Error> + std::error::Error + 'static {}

impl<E: From<sqlx::Error> + std::error::Error + 'static> StoreError for E {}

/// The sqlx error `error` is, or has in its chain of sources.
pub fn sqlx_cause<'e>(error: &'e (dyn std::error::Error + 'static)) -> Option<&'e sqlx::Error> {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(sqlx) = error.downcast_ref::<sqlx::Error>() {
            return Some(sqlx);
        }
        current = error.source();
    }
    None
}

/// A service's database, as its store uses it. Cheap to clone.
#[derive(Debug)]
pub struct Db<DB: sqlx::Database> {
    pool: WarmPool<DB>,
    service: &'static str,
}

impl<DB: sqlx::Database> Clone for Db<DB> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            service: self.service,
        }
    }
}

impl<DB: Dialect> Db<DB> {
    /// `service` prefixes the span of every call (`identity.db.get_trust`).
    pub fn new(pool: WarmPool<DB>, service: &'static str) -> Self {
        Self { pool, service }
    }

    pub fn pool(&self) -> &WarmPool<DB> {
        &self.pool
    }

    /// Runs `work` on one connection, outside a transaction: single statements, and reads
    /// that need no snapshot.
    pub async fn run<T, E: StoreError>(
        &self,
        op: &'static str,
        work: impl AsyncFnOnce(&mut DB::Connection) -> Result<T, E>,
    ) -> Result<T, E> {
        async {
            let mut lease = self.pool.lease().await?;
            let result = work(&mut lease).await;
            lease.release_unless_lost(result.as_ref().err().and_then(|e| sqlx_cause(e)));
            result
        }
        .instrument(self.span(op))
        .await
    }

    /// Runs `work` in a transaction that writes: committed when it returns `Ok`, rolled back
    /// when it returns an error.
    pub async fn write<T, E: StoreError>(
        &self,
        op: &'static str,
        work: impl AsyncFnOnce(&mut DB::Connection) -> Result<T, E>,
    ) -> Result<T, E> {
        self.transaction(op, DB::BEGIN_WRITE, work).await
    }

    /// Runs `work` in a read-only transaction whose statements all see one snapshot.
    pub async fn snapshot<T, E: StoreError>(
        &self,
        op: &'static str,
        work: impl AsyncFnOnce(&mut DB::Connection) -> Result<T, E>,
    ) -> Result<T, E> {
        self.transaction(op, DB::BEGIN_SNAPSHOT, work).await
    }

    async fn transaction<T, E: StoreError>(
        &self,
        op: &'static str,
        begin: &'static str,
        work: impl AsyncFnOnce(&mut DB::Connection) -> Result<T, E>,
    ) -> Result<T, E> {
        async {
            let mut lease = self.pool.lease().await?;
            let mut tx = lease.begin_with(begin).await?;
            match work(&mut tx).await {
                Ok(value) => {
                    tx.commit().await?;
                    lease.release_unless_lost(None);
                    Ok(value)
                }
                Err(error) => {
                    let cause = sqlx_cause(&error);
                    let lost = cause.is_some_and(super::warm::connection_lost);
                    // A connection that is gone cannot roll back: sqlx's pool checks it.
                    if !lost && tx.rollback().await.is_ok() {
                        lease.release_unless_lost(cause);
                    }
                    Err(error)
                }
            }
        }
        .instrument(self.span(op))
        .await
    }

    /// A client span per storage call, so that traces show the database work. Only inside
    /// another span: a background poller's query that finds nothing starts no trace of its
    /// own (the pollers open a span when they find work).
    fn span(&self, op: &'static str) -> tracing::Span {
        if tracing::Span::current().is_none() {
            return tracing::Span::none();
        }
        tracing::info_span!(
            "db",
            otel.name = %format_args!("{}.db.{op}", self.service),
            otel.kind = "client",
            db.system = DB::SYSTEM,
        )
    }
}

#[cfg(test)]
mod tests {
    use sqlx::ColumnIndex;

    use super::*;
    use crate::db::{AsExecutor as _, Column};

    /// A store written once for both databases, as the services write theirs.
    struct Notes<DB: sqlx::Database> {
        db: Db<DB>,
    }

    #[derive(Debug, thiserror::Error)]
    enum NoteError {
        #[error("note {0} is taken")]
        Taken(String),
        #[error("database: {0}")]
        Database(#[from] sqlx::Error),
    }

    impl<DB: Dialect> Notes<DB>
    where
        String: Column<DB>,
        i64: Column<DB>,
        usize: ColumnIndex<DB::Row>,
    {
        async fn add(&self, id: &str, then_fail: bool) -> Result<(), NoteError> {
            self.db
                .write("add_note", async |conn| {
                    sqlx::query("INSERT INTO notes (id) VALUES ($1)")
                        .bind(id.to_string())
                        .execute(conn.exec())
                        .await?;
                    if then_fail {
                        return Err(NoteError::Taken(id.to_string()));
                    }
                    Ok(())
                })
                .await
        }

        async fn count(&self) -> Result<i64, NoteError> {
            self.db
                .run("count_notes", async |conn| {
                    Ok(sqlx::query_scalar("SELECT count(*) FROM notes")
                        .fetch_one(conn.exec())
                        .await?)
                })
                .await
        }
    }

    async fn notes(dir: &std::path::Path) -> Notes<sqlx::Sqlite> {
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(dir.join("notes.db"))
            .create_if_missing(true);
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await
            .unwrap();
        sqlx::query("CREATE TABLE notes (id TEXT PRIMARY KEY)")
            .execute(&pool)
            .await
            .unwrap();
        Notes {
            db: Db::new(WarmPool::new(pool), "test"),
        }
    }

    #[tokio::test]
    async fn a_write_commits_when_its_work_succeeds_and_rolls_back_when_it_fails() {
        let dir = tempfile::tempdir().unwrap();
        let notes = notes(dir.path()).await;
        notes.add("a", false).await.unwrap();
        assert!(matches!(
            notes.add("b", true).await,
            Err(NoteError::Taken(id)) if id == "b"
        ));
        assert_eq!(notes.count().await.unwrap(), 1);
        // A refusal of the store's own leaves the connection sound: it is parked again.
        assert_eq!(notes.db.pool().parked(), 1);
    }

    #[tokio::test]
    async fn a_failed_statement_inside_a_write_rolls_back_what_came_before() {
        let dir = tempfile::tempdir().unwrap();
        let notes = notes(dir.path()).await;
        notes.add("a", false).await.unwrap();
        let result = notes
            .db
            .write("two_notes", async |conn| {
                sqlx::query("INSERT INTO notes (id) VALUES ('c')")
                    .execute(conn.exec())
                    .await?;
                sqlx::query("INSERT INTO notes (id) VALUES ('a')")
                    .execute(conn.exec())
                    .await?;
                Ok::<_, NoteError>(())
            })
            .await;
        assert!(matches!(result, Err(NoteError::Database(_))));
        assert_eq!(notes.count().await.unwrap(), 1);
    }

    #[test]
    fn the_sqlx_error_behind_a_store_error_is_found_through_its_sources() {
        let error = NoteError::from(sqlx::Error::PoolTimedOut);
        assert!(matches!(
            sqlx_cause(&error),
            Some(sqlx::Error::PoolTimedOut)
        ));
        assert!(sqlx_cause(&NoteError::Taken("a".into())).is_none());
    }
}
