//! PostgreSQL: bulk staff writes as UNNEST of one array per column, so one statement carries
//! thousands of rows with a handful of bind parameters; and the trust's row locked for the
//! length of a staff sync, so syncs of one trust on several replicas take turns.

use portal_runtime::vocab::{StaffId, TrustId};
use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::{PgConnection, Postgres};

use super::Backend;
use crate::domain::StaffRow;

/// Rows per bulk statement: large enough to amortise round trips, small enough to keep each
/// statement's memory modest.
const CHUNK: usize = 20_000;

/// One column of `rows`, as the array a bulk statement binds.
fn column<'r>(rows: &'r [StaffRow], field: impl Fn(&'r StaffRow) -> &'r str) -> Vec<&'r str> {
    rows.iter().map(field).collect()
}

/// Binds the arrays of what an insert and an update both write, in this order: given name,
/// family name, email, job title, search key.
fn bind_written<'r>(
    query: Query<'r, Postgres, PgArguments>,
    rows: &'r [StaffRow],
) -> Query<'r, Postgres, PgArguments> {
    query
        .bind(column(rows, |r| &r.given_name))
        .bind(column(rows, |r| &r.family_name))
        .bind(column(rows, |r| r.email.as_str()))
        .bind(column(rows, |r| &r.job_title))
        .bind(column(rows, |r| &r.search_key))
}

fn ids(rows: &[StaffRow]) -> Vec<StaffId> {
    rows.iter().map(|r| r.id).collect()
}

impl Backend for Postgres {
    /// NO KEY UPDATE, so that the key-share locks of rows inserted meanwhile under the trust
    /// (schools, staff) do not wait for a long sync to commit.
    const LOCK_TRUST: &'static str = "SELECT id FROM trusts WHERE id = $1 FOR NO KEY UPDATE";

    async fn insert_staff(
        conn: &mut PgConnection,
        trust_id: TrustId,
        rows: &[StaffRow],
        now: i64,
    ) -> Result<(), sqlx::Error> {
        for chunk in rows.chunks(CHUNK) {
            let insert = sqlx::query(
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
            .bind(ids(chunk))
            .bind(column(chunk, |r| &r.mis_id));
            bind_written(insert, chunk).execute(&mut *conn).await?;
        }
        Ok(())
    }

    async fn update_staff(
        conn: &mut PgConnection,
        rows: &[StaffRow],
        now: i64,
    ) -> Result<(), sqlx::Error> {
        for chunk in rows.chunks(CHUNK) {
            let update = sqlx::query(
                "UPDATE staff AS s SET given_name = u.given_name, family_name = u.family_name, \
                 email = u.email, job_title = u.job_title, search_key = u.search_key, \
                 status = 'active', update_time = $1 \
                 FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
                 $7::text[]) AS u (id, given_name, family_name, email, job_title, search_key) \
                 WHERE s.id = u.id",
            )
            .bind(now)
            .bind(ids(chunk));
            bind_written(update, chunk).execute(&mut *conn).await?;
        }
        Ok(())
    }

    async fn mark_staff_left(
        conn: &mut PgConnection,
        ids: &[StaffId],
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
