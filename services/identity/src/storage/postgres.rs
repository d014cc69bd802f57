//! PostgreSQL hooks of the SQL store: bulk staff writes as UNNEST of arrays, so one statement
//! carries thousands of rows with a handful of bind parameters.

use portal_runtime::db::Lease;
use sqlx::{PgConnection, Postgres, Transaction};

use super::sql::SqlStore;
use crate::domain::StaffRow;

/// Rows per bulk statement: large enough to amortise round trips, small enough to keep each
/// statement's memory modest.
const CHUNK: usize = 20_000;

fn column(rows: &[StaffRow], field: impl Fn(&StaffRow) -> &String) -> Vec<&str> {
    rows.iter().map(|r| field(r).as_str()).collect()
}

impl SqlStore<Postgres> {
    /// Locks the trust row, serialising syncs of one trust across replicas. NO KEY UPDATE, so
    /// that the key-share locks of rows inserted meanwhile under the trust (grants, for a
    /// start) do not wait for a long sync to commit.
    pub(super) const LOCK_TRUST: &'static str =
        "SELECT id FROM trusts WHERE id = $1 FOR NO KEY UPDATE";

    pub(super) async fn begin_write(
        lease: &mut Lease<Postgres>,
    ) -> Result<Transaction<'_, Postgres>, sqlx::Error> {
        lease.begin_with("BEGIN").await
    }

    pub(super) async fn insert_staff_rows(
        conn: &mut PgConnection,
        trust_id: &str,
        rows: &[StaffRow],
        now: i64,
    ) -> Result<(), sqlx::Error> {
        for chunk in rows.chunks(CHUNK) {
            sqlx::query(
                "INSERT INTO staff (id, trust_id, mis_id, given_name, family_name, email, \
                 job_title, status, search_key, create_time, update_time) \
                 SELECT u.id, $1, u.mis_id, u.given_name, u.family_name, u.email, u.job_title, \
                 'active', u.search_key, $2, $2 \
                 FROM UNNEST($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], \
                 $8::text[], $9::text[]) \
                 AS u (id, mis_id, given_name, family_name, email, job_title, search_key)",
            )
            .bind(trust_id)
            .bind(now)
            .bind(column(chunk, |r| &r.id))
            .bind(column(chunk, |r| &r.mis_id))
            .bind(column(chunk, |r| &r.given_name))
            .bind(column(chunk, |r| &r.family_name))
            .bind(column(chunk, |r| &r.email))
            .bind(column(chunk, |r| &r.job_title))
            .bind(column(chunk, |r| &r.search_key))
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }

    pub(super) async fn update_staff_rows(
        conn: &mut PgConnection,
        rows: &[StaffRow],
        now: i64,
    ) -> Result<(), sqlx::Error> {
        for chunk in rows.chunks(CHUNK) {
            sqlx::query(
                "UPDATE staff AS s SET given_name = u.given_name, family_name = u.family_name, \
                 email = u.email, job_title = u.job_title, search_key = u.search_key, \
                 status = 'active', update_time = $1 \
                 FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
                 $7::text[]) AS u (id, given_name, family_name, email, job_title, search_key) \
                 WHERE s.id = u.id",
            )
            .bind(now)
            .bind(column(chunk, |r| &r.id))
            .bind(column(chunk, |r| &r.given_name))
            .bind(column(chunk, |r| &r.family_name))
            .bind(column(chunk, |r| &r.email))
            .bind(column(chunk, |r| &r.job_title))
            .bind(column(chunk, |r| &r.search_key))
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }

    pub(super) async fn mark_staff_left(
        conn: &mut PgConnection,
        ids: &[String],
        now: i64,
    ) -> Result<(), sqlx::Error> {
        for chunk in ids.chunks(CHUNK) {
            sqlx::query("UPDATE staff SET status = 'left', update_time = $1 WHERE id = ANY($2)")
                .bind(now)
                .bind(chunk)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }
}
