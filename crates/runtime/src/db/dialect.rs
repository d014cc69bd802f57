//! What the stores need of a database, so that each store is one ordinary generic
//! implementation over SQLite and PostgreSQL, with the few statements that differ named here
//! (and, for a service's own differences, in the service's own dialect trait).

use sqlx::{Database, Executor, IntoArguments};

/// A database the suite runs on: [`sqlx::Sqlite`] or [`sqlx::Postgres`].
///
/// The associated-type bounds travel with every `DB: Dialect` bound, so generic code needs
/// no further bound to run a statement on a connection. What Rust cannot carry that way
/// (which Rust types bind and decode, see [`Column`]) a generic store states once in the
/// `where` clause of its impl.
pub trait Dialect:
    Database<Connection: AsExecutor<Self>, QueryResult: RowsAffected> + for<'q> BindsArguments<'q>
{
    /// OpenTelemetry's `db.system`.
    const SYSTEM: &'static str;
    /// Starts a transaction that will write. SQLite takes the write lock at once, so a
    /// transaction that reads before it writes never fails to upgrade its lock.
    const BEGIN_WRITE: &'static str;
    /// Starts a read-only transaction whose statements all see one snapshot.
    const BEGIN_SNAPSHOT: &'static str;
    /// Appended to a `SELECT` that claims rows for work: other replicas skip what this one
    /// holds (PostgreSQL); nothing on SQLite, where one writer runs at a time.
    const CLAIM_ROWS: &'static str;
    /// Appended to a `SELECT` that locks rows until the transaction ends, so that checks
    /// spanning several rows (write skew) run one at a time (PostgreSQL); nothing on SQLite,
    /// where one writer runs at a time.
    const LOCK_ROWS: &'static str;
    /// Run first in a transaction whose commit may skip waiting for the disk, because losing
    /// it in a crash only repeats idempotent work; `None` where the database has no such
    /// setting.
    const RELAXED_COMMIT: Option<&'static str>;

    /// A list of text values bound as one parameter.
    type TextList: for<'q> sqlx::Encode<'q, Self> + sqlx::Type<Self> + Send + 'static;
    /// Makes the value of a [`Self::TextList`] parameter.
    fn text_list<S: AsRef<str>>(values: impl IntoIterator<Item = S>) -> Self::TextList;
    /// The condition "`column` is one of the values of the list bound as parameter `n`".
    fn in_list(column: &str, n: usize) -> String;
}

/// A connection runs statements: `fetch_all(conn.exec())`. (sqlx states this as a bound on
/// `&mut Connection`, which Rust does not carry along with a `DB: Dialect` bound; this trait
/// on the connection itself it does.)
pub trait AsExecutor<DB: Database>: Send {
    fn exec(&mut self) -> impl Executor<'_, Database = DB>;
}

/// How many rows a statement changed (sqlx has no trait for it).
pub trait RowsAffected {
    fn rows_affected(&self) -> u64;
}

impl RowsAffected for sqlx::sqlite::SqliteQueryResult {
    fn rows_affected(&self) -> u64 {
        self.rows_affected()
    }
}

impl RowsAffected for sqlx::postgres::PgQueryResult {
    fn rows_affected(&self) -> u64 {
        self.rows_affected()
    }
}

/// Every argument list a query builds can be sent (carried along with `DB: Dialect`).
pub trait BindsArguments<'q>: Database<Arguments<'q>: IntoArguments<'q, Self>> {}

/// A Rust type a generic store binds and reads in a column of `DB`. A generic store names
/// the types it uses in its `where` clause (`String: Column<DB>`), once per impl block.
pub trait Column<DB: Database>:
    for<'q> sqlx::Encode<'q, DB> + for<'r> sqlx::Decode<'r, DB> + sqlx::Type<DB> + Send
{
}

impl<DB: Database, T> Column<DB> for T where
    T: for<'q> sqlx::Encode<'q, DB> + for<'r> sqlx::Decode<'r, DB> + sqlx::Type<DB> + Send
{
}

impl AsExecutor<sqlx::Sqlite> for sqlx::SqliteConnection {
    fn exec(&mut self) -> impl Executor<'_, Database = sqlx::Sqlite> {
        self
    }
}

impl AsExecutor<sqlx::Postgres> for sqlx::PgConnection {
    fn exec(&mut self) -> impl Executor<'_, Database = sqlx::Postgres> {
        self
    }
}

impl<'q> BindsArguments<'q> for sqlx::Sqlite {}

impl<'q> BindsArguments<'q> for sqlx::Postgres {}

impl Dialect for sqlx::Sqlite {
    const SYSTEM: &'static str = "sqlite";
    const BEGIN_WRITE: &'static str = "BEGIN IMMEDIATE";
    // A deferred transaction reads one WAL snapshot from its first read on.
    const BEGIN_SNAPSHOT: &'static str = "BEGIN";
    const CLAIM_ROWS: &'static str = "";
    const LOCK_ROWS: &'static str = "";
    const RELAXED_COMMIT: Option<&'static str> = None;

    /// A JSON array, read with `json_each`.
    type TextList = String;

    fn text_list<S: AsRef<str>>(values: impl IntoIterator<Item = S>) -> String {
        let values: Vec<S> = values.into_iter().collect();
        let values: Vec<&str> = values.iter().map(AsRef::as_ref).collect();
        serde_json::to_string(&values).unwrap_or_else(|_| "[]".into())
    }

    fn in_list(column: &str, n: usize) -> String {
        format!("{column} IN (SELECT value FROM json_each(${n}))")
    }
}

impl Dialect for sqlx::Postgres {
    const SYSTEM: &'static str = "postgresql";
    const BEGIN_WRITE: &'static str = "BEGIN";
    const BEGIN_SNAPSHOT: &'static str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";
    const CLAIM_ROWS: &'static str = "FOR UPDATE SKIP LOCKED";
    const LOCK_ROWS: &'static str = "FOR UPDATE";
    const RELAXED_COMMIT: Option<&'static str> = Some("SET LOCAL synchronous_commit TO OFF");

    type TextList = Vec<String>;

    fn text_list<S: AsRef<str>>(values: impl IntoIterator<Item = S>) -> Vec<String> {
        values.into_iter().map(|v| v.as_ref().to_string()).collect()
    }

    fn in_list(column: &str, n: usize) -> String {
        format!("{column} = ANY(${n}::text[])")
    }
}
