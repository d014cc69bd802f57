//! What SQLite does differently.

use sqlx::Row as _;
use sqlx::sqlite::{Sqlite, SqliteArguments, SqliteConnection};

use super::Backend;
use super::rows::subscriptions_from_json;
use crate::domain::Subscription;
use crate::error::Result;

impl Backend for Sqlite {
    fn list_is_empty(n: usize) -> String {
        format!("json_array_length(${n}) = 0")
    }

    /// Rows cross from SQLite's worker thread one at a time; one JSON value for hundreds of
    /// rows is several times faster.
    fn select_subscriptions(columns: &str) -> String {
        format!("json_group_array(json_array({columns}))")
    }

    async fn fetch_subscriptions<'c, 'q: 'c>(
        conn: &'c mut SqliteConnection,
        query: sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>>,
    ) -> Result<Vec<Subscription>> {
        let row = query.fetch_one(conn).await?;
        let json: Option<String> = row.try_get(0)?;
        Ok(subscriptions_from_json(json.as_deref().unwrap_or("[]"))?)
    }
}
