//! Database pools for `sqlite:` and `postgres:` URLs, embedded migrations, and what the
//! services' stores are written against: [`Dialect`], [`Db`] and [`Text`].

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context as _;
use secrecy::{ExposeSecret as _, SecretString};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

mod dialect;
mod handle;
mod statement;
mod text;
mod warm;

pub use dialect::{AsExecutor, BindsArguments, Column, Dialect, RowsAffected};
pub use handle::{Db, StoreError, sqlx_cause};
pub use statement::{Statement, Tuple};
pub use text::Text;
pub use warm::{Lease, WarmPool};

/// A connection idle this long (in sqlx's PostgreSQL pool, or parked in a [`WarmPool`]) is
/// pinged before it is handed out.
const PING_IDLE_AFTER: Duration = Duration::from_secs(10);

/// A service's connection pool: SQLite (embedded default) or PostgreSQL (production).
#[derive(Debug, Clone)]
pub enum DbPool {
    Sqlite(WarmPool<sqlx::Sqlite>),
    Postgres(WarmPool<sqlx::Postgres>),
}

/// The migrations a service embeds, one set per database kind.
#[derive(Debug)]
pub struct Migrations {
    pub sqlite: &'static Migrator,
    pub postgres: &'static Migrator,
}

/// Where a database's schema stands against the migrations a binary embeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// Every migration of the binary is applied (later ones, of a newer release, may be too).
    Current,
    /// This migration of the binary, and perhaps later ones, are not applied yet.
    Behind { missing: i64 },
    /// This migration was applied with other contents than the binary's: never served on.
    Diverged { version: i64 },
}

impl Schema {
    fn of(migrator: &Migrator, applied: &std::collections::HashMap<i64, Vec<u8>>) -> Self {
        for migration in migrator.iter() {
            if migration.migration_type.is_down_migration() {
                continue;
            }
            match applied.get(&migration.version) {
                None => {
                    return Schema::Behind {
                        missing: migration.version,
                    };
                }
                Some(checksum) if checksum.as_slice() != migration.checksum.as_ref() => {
                    return Schema::Diverged {
                        version: migration.version,
                    };
                }
                Some(_) => {}
            }
        }
        Schema::Current
    }
}

/// The same migrations, with those applied by a newer release tolerated.
fn tolerant(migrator: &Migrator) -> Migrator {
    Migrator {
        migrations: migrator.migrations.clone(),
        ignore_missing: true,
        locking: migrator.locking,
        no_tx: migrator.no_tx,
    }
}

/// How to reach the database.
#[derive(Debug, Clone)]
pub struct DbSettings {
    /// May carry a password: held as a secret.
    pub url: SecretString,
    pub max_connections: u32,
    pub acquire_timeout: Duration,
}

impl DbSettings {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: SecretString::from(url.into()),
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

impl DbPool {
    /// Builds the pool without connecting, so a server can start (and report NOT_SERVING)
    /// before its database is reachable.
    pub fn connect_lazy(settings: &DbSettings) -> anyhow::Result<Self> {
        let url = settings.url.expose_secret();
        if url.starts_with("sqlite:") {
            let in_memory = url.contains(":memory:") || url.contains("mode=memory");
            let options = SqliteConnectOptions::from_str(url)
                .with_context(|| "parsing the SQLite database URL")?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true);
            if let Some(dir) = options.get_filename().parent()
                && !in_memory
                && !dir.as_os_str().is_empty()
            {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            let pool_options = if in_memory {
                // Every connection to `:memory:` is a new database: keep exactly one, forever.
                SqlitePoolOptions::new()
                    .max_connections(1)
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None)
            } else {
                // A connection to a local file cannot drop like a socket: no ping on acquire.
                SqlitePoolOptions::new()
                    .max_connections(settings.max_connections.min(8))
                    .test_before_acquire(false)
            };
            Ok(DbPool::Sqlite(WarmPool::new(
                pool_options
                    .acquire_timeout(settings.acquire_timeout)
                    .connect_lazy_with(options),
            )))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let options = PgConnectOptions::from_str(url)
                .with_context(|| "parsing the PostgreSQL database URL")?;
            Ok(DbPool::Postgres(WarmPool::new(
                PgPoolOptions::new()
                    .max_connections(settings.max_connections)
                    .acquire_timeout(settings.acquire_timeout)
                    // sqlx pings every connection it hands out by default: a round trip per
                    // acquire. Only a connection left idle a while is worth checking; one in
                    // steady use has just proved itself.
                    .test_before_acquire(false)
                    .before_acquire(|conn, meta| {
                        Box::pin(async move {
                            if meta.idle_for >= PING_IDLE_AFTER {
                                sqlx::Connection::ping(conn).await?;
                            }
                            Ok(true)
                        })
                    })
                    .connect_lazy_with(options),
            )))
        } else {
            anyhow::bail!("unsupported database URL: use `sqlite:PATH` or `postgres://...`")
        }
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        match self {
            DbPool::Sqlite(pool) => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()),
            DbPool::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()),
        }
    }

    /// Applies the embedded migrations this database has not had yet. Migrations applied by a
    /// newer release, which this binary does not know, are left in place: after a rollback
    /// an older binary runs on the newer schema (every migration only expands the schema the
    /// previous release reads and writes; k8s/README.md).
    pub async fn migrate(&self, migrations: &Migrations) -> anyhow::Result<()> {
        match self {
            DbPool::Sqlite(pool) => tolerant(migrations.sqlite).run(pool.pool()).await?,
            DbPool::Postgres(pool) => tolerant(migrations.postgres).run(pool.pool()).await?,
        }
        Ok(())
    }

    /// Where the schema stands against this binary's migrations, read without changing
    /// anything (a server that does not migrate needs no DDL rights).
    pub async fn schema(&self, migrations: &Migrations) -> anyhow::Result<Schema> {
        const APPLIED: &str = "SELECT version, checksum FROM _sqlx_migrations WHERE success";
        let (applied, migrator) = match self {
            DbPool::Sqlite(pool) => (
                sqlx::query_as::<_, (i64, Vec<u8>)>(APPLIED)
                    .fetch_all(pool.pool())
                    .await,
                migrations.sqlite,
            ),
            DbPool::Postgres(pool) => (
                sqlx::query_as::<_, (i64, Vec<u8>)>(APPLIED)
                    .fetch_all(pool.pool())
                    .await,
                migrations.postgres,
            ),
        };
        let applied = match applied {
            Ok(applied) => applied,
            // No migrations table: nothing was ever applied.
            Err(sqlx::Error::Database(error))
                if error.message().contains("_sqlx_migrations")
                    && (error.code().as_deref() == Some("42P01")
                        || error.message().contains("no such table")) =>
            {
                Vec::new()
            }
            Err(error) => return Err(error).context("reading the applied migrations"),
        };
        Ok(Schema::of(migrator, &applied.into_iter().collect()))
    }

    pub fn kind(&self) -> &'static str {
        match self {
            DbPool::Sqlite(_) => "sqlite",
            DbPool::Postgres(_) => "postgres",
        }
    }

    /// Connections open and idle (parked or in sqlx's pool), for metrics.
    pub fn usage(&self) -> (u32, usize) {
        match self {
            DbPool::Sqlite(warm) => (warm.pool().size(), warm.pool().num_idle() + warm.parked()),
            DbPool::Postgres(warm) => (warm.pool().size(), warm.pool().num_idle() + warm.parked()),
        }
    }

    /// Makes a service's store for this pool's database: `sqlite` or `postgres` gets the
    /// [`Db`] it runs on, its spans named after `service`.
    pub fn open<T: ?Sized>(
        &self,
        service: &'static str,
        sqlite: impl FnOnce(Db<sqlx::Sqlite>) -> std::sync::Arc<T>,
        postgres: impl FnOnce(Db<sqlx::Postgres>) -> std::sync::Arc<T>,
    ) -> std::sync::Arc<T> {
        match self {
            DbPool::Sqlite(pool) => sqlite(Db::new(pool.clone(), service)),
            DbPool::Postgres(pool) => postgres(Db::new(pool.clone(), service)),
        }
    }

    pub async fn close(&self) {
        match self {
            DbPool::Sqlite(pool) => pool.close().await,
            DbPool::Postgres(pool) => pool.close().await,
        }
    }
}

/// Test support: databases for the storage suites.
pub mod testing {
    /// The PostgreSQL URL tests run against, from `PORTAL_TEST_DATABASE_URL`.
    pub const POSTGRES_URL_VAR: &str = "PORTAL_TEST_DATABASE_URL";

    /// A fresh SQLite database file in `dir`.
    pub fn sqlite_url(dir: &std::path::Path) -> String {
        format!("sqlite:{}", dir.join("test.db").display())
    }

    /// Test schemas are named `t_<unix seconds>_<random>`; one older than this belongs to a
    /// run long over (no test lasts an hour) and is dropped by the next run, so a developer's
    /// database does not fill with thousands of schemas (which slows PostgreSQL's catalogue
    /// for everything else, benchmarks included).
    const STALE_AFTER_SECS: u64 = 3_600;

    /// A URL to a new, empty schema of the test PostgreSQL server, or `None` when no server
    /// was given (the PostgreSQL tests are then skipped). Panics when a server was given but
    /// cannot be reached, so a misconfigured CI run fails instead of passing quietly.
    pub async fn postgres_url() -> Option<String> {
        let base = std::env::var(POSTGRES_URL_VAR)
            .ok()
            .filter(|u| !u.is_empty())?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let schema = format!("t_{now}_{}", uuid::Uuid::new_v4().simple());
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect(&base)
            .await
            .unwrap_or_else(|e| panic!("{POSTGRES_URL_VAR} is set but unreachable: {e}"));
        drop_stale_schemas(&pool, now).await;
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&pool)
            .await
            .unwrap_or_else(|e| panic!("creating test schema: {e}"));
        pool.close().await;
        let sep = if base.contains('?') { '&' } else { '?' };
        Some(format!("{base}{sep}options[search_path]={schema}"))
    }

    /// Drops the test schemas of runs long over: best effort, as another run may be dropping
    /// the same ones.
    async fn drop_stale_schemas(pool: &sqlx::PgPool, now: u64) {
        let Ok(names) = sqlx::query_scalar::<_, String>(
            "SELECT nspname FROM pg_namespace WHERE nspname ~ '^t_([0-9]+_)?[0-9a-f]{32}$'",
        )
        .fetch_all(pool)
        .await
        else {
            return;
        };
        for name in names {
            // Names without a time come from before schemas carried one: stale by now.
            let parts: Vec<&str> = name.split('_').collect();
            let made: Option<u64> = match parts.as_slice() {
                [_, made, _] => made.parse().ok(),
                _ => Some(0),
            };
            if made.is_some_and(|made| now.saturating_sub(made) > STALE_AFTER_SECS) {
                let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                    .execute(pool)
                    .await;
            }
        }
    }
}

/// Whether an error is a unique-constraint violation, in either database.
pub fn is_unique_violation(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => db.is_unique_violation(),
        _ => false,
    }
}

#[cfg(test)]
mod tls_tests {
    use super::*;

    /// A PostgreSQL server that takes only TLS (`.ci/postgres-tls` starts one), reached with
    /// `sslmode=verify-full` and `sslrootcert`: `PORTAL_TEST_TLS_DATABASE_URL`.
    const TLS_URL_VAR: &str = "PORTAL_TEST_TLS_DATABASE_URL";

    async fn ssl_in_use(url: &str) -> anyhow::Result<bool> {
        let pool = DbPool::connect_lazy(&DbSettings::new(url))?;
        let DbPool::Postgres(pg) = &pool else {
            anyhow::bail!("not a PostgreSQL URL");
        };
        let ssl: bool =
            sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                .fetch_one(pg.pool())
                .await?;
        pool.close().await;
        Ok(ssl)
    }

    #[tokio::test]
    async fn postgres_is_reached_over_verified_tls_and_not_with_an_unknown_authority() {
        let Some(url) = std::env::var(TLS_URL_VAR).ok().filter(|u| !u.is_empty()) else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{TLS_URL_VAR} is required in CI (.ci/postgres-tls)"
            );
            println!("skipped: {TLS_URL_VAR} is not set (.ci/postgres-tls starts a server)");
            return;
        };
        assert!(url.contains("sslmode=verify-full"), "{url}");
        assert!(ssl_in_use(&url).await.unwrap(), "the connection is not TLS");

        // Another authority's certificate file: the server's certificate does not verify.
        let other = tempfile::tempdir().unwrap();
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.ci/tls-certs");
        let made = std::process::Command::new("bash")
            .arg(script)
            .arg(other.path())
            .status()
            .unwrap();
        assert!(made.success());
        let (base, _) = url.split_once("sslrootcert=").unwrap();
        let wrong = format!(
            "{base}sslrootcert={}",
            other.path().join("ca.pem").display()
        );
        let error = ssl_in_use(&wrong).await.unwrap_err();
        assert!(
            format!("{error:#}").to_lowercase().contains("certificate"),
            "{error:#}"
        );
    }
}
