//! SQLite: bulk staff writes as lists of rows, in statements that stay under SQLite's limit
//! of bind parameters; the trust is read, not locked, because the IMMEDIATE transaction
//! already holds the database's one write lock.

use portal_runtime::vocab::{StaffId, TrustId};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use super::Backend;
use crate::domain::StaffRow;

/// SQLite allows 32,766 bind parameters per statement.
const MAX_PARAMS: usize = 32_766;

impl Backend for Sqlite {
    const LOCK_TRUST: &'static str = "SELECT id FROM trusts WHERE id = $1";

    async fn insert_staff(
        conn: &mut SqliteConnection,
        trust_id: TrustId,
        rows: &[StaffRow],
        now: i64,
    ) -> Result<(), sqlx::Error> {
        let trust_id = trust_id.to_string();
        for chunk in rows.chunks(MAX_PARAMS / 10) {
            let mut query = QueryBuilder::<Sqlite>::new(
                "INSERT INTO staff (id, trust_id, mis_id, given_name, family_name, email, \
                 job_title, status, search_key, create_time, update_time) ",
            );
            query.push_values(chunk, |mut b, row| {
                b.push_bind(row.id)
                    .push_bind(trust_id.as_str())
                    .push_bind(row.mis_id.as_str())
                    .push_bind(row.given_name.as_str())
                    .push_bind(row.family_name.as_str())
                    .push_bind(row.email.as_str())
                    .push_bind(row.job_title.as_str())
                    .push("'active'")
                    .push_bind(row.search_key.as_str())
                    .push_bind(now)
                    .push_bind(now);
            });
            query.build().execute(&mut *conn).await?;
        }
        Ok(())
    }

    async fn update_staff(
        conn: &mut SqliteConnection,
        rows: &[StaffRow],
        now: i64,
    ) -> Result<(), sqlx::Error> {
        for chunk in rows.chunks(MAX_PARAMS / 7) {
            let mut query = QueryBuilder::<Sqlite>::new(
                "WITH u (id, given_name, family_name, email, job_title, search_key) AS (",
            );
            query.push_values(chunk, |mut b, row| {
                b.push_bind(row.id)
                    .push_bind(row.given_name.as_str())
                    .push_bind(row.family_name.as_str())
                    .push_bind(row.email.as_str())
                    .push_bind(row.job_title.as_str())
                    .push_bind(row.search_key.as_str());
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

    async fn mark_staff_left(
        conn: &mut SqliteConnection,
        ids: &[StaffId],
        now: i64,
    ) -> Result<(), sqlx::Error> {
        for chunk in ids.chunks(MAX_PARAMS - 1) {
            let mut query =
                QueryBuilder::<Sqlite>::new("UPDATE staff SET status = 'left', update_time = ");
            query.push_bind(now).push(" WHERE id IN (");
            let mut list = query.separated(", ");
            for id in chunk {
                list.push_bind(*id);
            }
            query.push(")");
            query.build().execute(&mut *conn).await?;
        }
        Ok(())
    }
}
