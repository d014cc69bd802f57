//! SQLite hooks of the SQL store.

use portal_runtime::db::Lease;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection, Transaction};

use super::sql::SqlStore;
use crate::domain::StaffRow;

/// SQLite allows 32,766 bind parameters per statement.
const MAX_PARAMS: usize = 32_766;

impl SqlStore<Sqlite> {
    /// SQLite's trust lookup; the IMMEDIATE transaction already holds the write lock.
    pub(super) const LOCK_TRUST: &'static str = "SELECT id FROM trusts WHERE id = $1";

    /// Takes the write lock at once, so a read-then-write transaction never fails to upgrade.
    pub(super) async fn begin_write(
        lease: &mut Lease<Sqlite>,
    ) -> Result<Transaction<'_, Sqlite>, sqlx::Error> {
        lease.begin_with("BEGIN IMMEDIATE").await
    }

    pub(super) async fn insert_staff_rows(
        conn: &mut SqliteConnection,
        trust_id: &str,
        rows: &[StaffRow],
        now: i64,
    ) -> Result<(), sqlx::Error> {
        for chunk in rows.chunks(MAX_PARAMS / 10) {
            let mut query = QueryBuilder::<Sqlite>::new(
                "INSERT INTO staff (id, trust_id, mis_id, given_name, family_name, email, \
                 job_title, status, search_key, create_time, update_time) ",
            );
            query.push_values(chunk, |mut b, row| {
                b.push_bind(&row.id)
                    .push_bind(trust_id)
                    .push_bind(&row.mis_id)
                    .push_bind(&row.given_name)
                    .push_bind(&row.family_name)
                    .push_bind(&row.email)
                    .push_bind(&row.job_title)
                    .push("'active'")
                    .push_bind(&row.search_key)
                    .push_bind(now)
                    .push_bind(now);
            });
            query.build().execute(&mut *conn).await?;
        }
        Ok(())
    }

    pub(super) async fn update_staff_rows(
        conn: &mut SqliteConnection,
        rows: &[StaffRow],
        now: i64,
    ) -> Result<(), sqlx::Error> {
        for chunk in rows.chunks(MAX_PARAMS / 7) {
            let mut query = QueryBuilder::<Sqlite>::new(
                "WITH u (id, given_name, family_name, email, job_title, search_key) AS (",
            );
            query.push_values(chunk, |mut b, row| {
                b.push_bind(&row.id)
                    .push_bind(&row.given_name)
                    .push_bind(&row.family_name)
                    .push_bind(&row.email)
                    .push_bind(&row.job_title)
                    .push_bind(&row.search_key);
            });
            query
                .push(
                    ") UPDATE staff SET given_name = u.given_name, family_name = u.family_name, \
                     email = u.email, job_title = u.job_title, search_key = u.search_key, \
                     status = 'active', update_time = ",
                )
                .push_bind(now)
                .push(" FROM u WHERE staff.id = u.id");
            query.build().execute(&mut *conn).await?;
        }
        Ok(())
    }

    pub(super) async fn mark_staff_left(
        conn: &mut SqliteConnection,
        ids: &[String],
        now: i64,
    ) -> Result<(), sqlx::Error> {
        for chunk in ids.chunks(MAX_PARAMS - 1) {
            let mut query =
                QueryBuilder::<Sqlite>::new("UPDATE staff SET status = 'left', update_time = ");
            query.push_bind(now).push(" WHERE id IN (");
            let mut list = query.separated(", ");
            for id in chunk {
                list.push_bind(id);
            }
            query.push(")");
            query.build().execute(&mut *conn).await?;
        }
        Ok(())
    }
}
