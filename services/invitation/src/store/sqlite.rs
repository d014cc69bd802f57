//! What SQLite does its own way.

use portal_runtime::db::Db;

use super::{Backend, CreateOutcome, NewInvitation};
use crate::error::Result;

impl Backend for sqlx::Sqlite {
    /// SQLite runs in the process: its create transaction costs no round trips to save.
    async fn create_in_one_statement(
        _db: &Db<Self>,
        _new: NewInvitation<'_>,
    ) -> Result<Option<CreateOutcome>> {
        Ok(None)
    }
}
