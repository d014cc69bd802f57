//! The invitation service's part of the demo `portal up` starts.

use portal_runtime::config::DatabaseArgs;

/// Prepares the demo database for `portal up`. Invitations are made through the service, so
/// there is nothing to seed beyond the schema; idempotent.
pub async fn seed_demo(database: &DatabaseArgs) -> anyhow::Result<()> {
    crate::migrate(database).await
}
