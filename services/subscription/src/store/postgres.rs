//! What PostgreSQL does differently.

use sqlx::FromRow as _;
use sqlx::postgres::{PgArguments, PgConnection, PgRow, Postgres};

use super::Backend;
use super::rows::SubscriptionRow;
use crate::domain::Subscription;
use crate::error::Result;

impl Backend for Postgres {
    fn list_is_empty(n: usize) -> String {
        format!("cardinality(${n}::text[]) = 0")
    }

    /// PostgreSQL rows decode cheaply; building JSON would cost more.
    fn select_subscriptions(columns: &str) -> String {
        columns.to_string()
    }

    async fn fetch_subscriptions<'c, 'q: 'c>(
        conn: &'c mut PgConnection,
        query: sqlx::query::Query<'q, Postgres, PgArguments>,
    ) -> Result<Vec<Subscription>> {
        Ok(query
            .try_map(|row: PgRow| SubscriptionRow::from_row(&row).map(Subscription::from))
            .fetch_all(conn)
            .await?)
    }
}
