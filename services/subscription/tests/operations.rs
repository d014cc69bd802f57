//! What operators run: flags, `portal migrate`, and the demo seed.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use clap::Parser;
use portal_runtime::config::DatabaseArgs;
use portal_runtime::db::testing::{postgres_url, sqlite_url};
use portal_subscription::Config;
use secrecy::ExposeSecret as _;

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    config: Config,
}

#[test]
fn the_identity_url_and_service_token_are_flags() {
    let cli = Cli::try_parse_from([
        "subscription",
        "--listen",
        "127.0.0.1:0",
        "--database-url",
        "sqlite:/tmp/x.db",
        "--token-public-keys",
        "a.pem,b.pem",
        "--identity-url",
        "http://identity:50051",
        "--service-token",
        "/run/secrets/service-token",
    ])
    .unwrap();
    assert_eq!(
        cli.config.identity_url.as_deref(),
        Some("http://identity:50051")
    );
    assert_eq!(
        cli.config
            .service_token
            .as_ref()
            .map(|token| token.expose_secret()),
        Some("/run/secrets/service-token")
    );
    assert_eq!(cli.config.tokens.token_public_keys.len(), 2);
}

#[test]
fn identity_is_optional() {
    let cli = Cli::try_parse_from([
        "subscription",
        "--database-url",
        "sqlite:/tmp/x.db",
        "--token-public-keys",
        "a.pem",
    ])
    .unwrap();
    assert_eq!(cli.config.identity_url, None);
    assert!(cli.config.service_token.is_none());
}

async fn database(dir: &tempfile::TempDir) -> DatabaseArgs {
    DatabaseArgs::with_max_connections(
        match postgres_url().await {
            Some(url) => url,
            None => sqlite_url(dir.path()),
        },
        2,
    )
}

#[tokio::test]
async fn migrating_twice_is_harmless() {
    let dir = tempfile::tempdir().unwrap();
    let database = database(&dir).await;
    portal_subscription::migrate(&database).await.unwrap();
    portal_subscription::migrate(&database).await.unwrap();
}

#[tokio::test]
async fn seeding_the_demo_twice_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let database = database(&dir).await;
    portal_subscription::seed_demo(&database).await.unwrap();
    portal_subscription::seed_demo(&database).await.unwrap();
    let pool = portal_runtime::db::DbPool::connect_lazy(&database.settings()).unwrap();
    let store = portal_subscription::store::open(&pool);
    for subscription in portal_subscription::demo::subscriptions().unwrap() {
        let stored = store.get_subscription(subscription.id).await.unwrap();
        assert_eq!(stored, Some(subscription));
    }
}
