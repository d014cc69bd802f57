//! The subscription service (`portal.subscription.v1`): the product catalogue, subscriptions
//! of trusts and schools to products, and the eligibility query of rule R5.
//!
//! Every RPC takes one path, edge -> use case -> domain -> store:
//! - [`api`]: the gRPC edge. Names the caller, parses the request into a domain input,
//!   converts the answer back.
//! - [`app`]: the use cases, authorisation first. Holds this replica's state: the catalogue
//!   and, per trust, its subscriptions in memory for eligibility ([`app::views`]).
//! - [`domain`]: the pure rules: catalogue, subscriptions, eligibility (with the COMPACT
//!   packing), who may call.
//! - [`store`]: SQLite and PostgreSQL, one generic store.
//! - [`clients`]: identity, asked whether a user administers a trust.
//! - [`error`]: the one error type and its mapping to gRPC statuses; [`demo`]: `portal up`'s
//!   subscriptions.

pub mod api;
pub mod app;
pub mod clients;
pub mod demo;
pub mod domain;
pub mod error;
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use portal_runtime::SharedClock;
use portal_runtime::TokenVerifier;
use portal_runtime::config::{
    DatabaseArgs, ServerArgs, TokenArgs, parse_secret, read_secret_file, secret_from,
};
use portal_runtime::db::{DbPool, Migrations};
use portal_runtime::server::{Bound, ServiceSpec, Shutdown, serve};
use secrecy::SecretString;
use sqlx::migrate::Migrator;

use crate::api::Api;
use crate::app::{App, ViewArgs};
use crate::clients::Identity;

static SQLITE: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("migrations/postgres");

/// The embedded migrations (schema and catalogue) of this service.
pub static MIGRATIONS: Migrations = Migrations {
    sqlite: &SQLITE,
    postgres: &POSTGRES,
};

/// Flags and PORTAL_* env vars of this service (clap).
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub tokens: TokenArgs,
    /// URL of the identity service, asked whether a signed-in user administers a trust.
    /// Without it (and a service token) only service tokens may read subscriptions.
    #[arg(long, env = "PORTAL_IDENTITY_URL")]
    pub identity_url: Option<String>,
    /// This service's own token for calling identity (a `subscription` service token).
    #[arg(
        long,
        env = "PORTAL_SERVICE_TOKEN",
        hide_env_values = true,
        value_parser = parse_secret,
        conflicts_with = "service_token_file"
    )]
    pub service_token: Option<SecretString>,
    /// A file holding that token (a mounted Secret); a missing file is an error.
    #[arg(long, env = "PORTAL_SERVICE_TOKEN_FILE", value_name = "PATH", value_parser = read_secret_file)]
    pub service_token_file: Option<SecretString>,
    #[command(flatten)]
    pub views: ViewArgs,
}

/// The subscription service, bound and ready to serve.
pub struct Application {
    bound: Bound,
    server: ServerArgs,
    verifier: Arc<TokenVerifier>,
    pool: DbPool,
    app: Arc<App>,
}

impl Application {
    /// Binds the listener (port 0 allowed) and builds the services; does not wait for the database.
    pub async fn build(config: Config, clock: SharedClock) -> anyhow::Result<Self> {
        config.database.check_for(config.server.environment)?;
        let verifier = Arc::new(config.tokens.verifier()?);
        let pool = DbPool::connect_lazy(&config.database.settings())?;
        let token = secret_from(
            config.service_token.as_ref(),
            config.service_token_file.as_ref(),
        );
        let identity = match (&config.identity_url, token) {
            (Some(url), Some(token)) => Some(Identity::new(url, token)?),
            (None, None) => None,
            _ => anyhow::bail!(
                "--identity-url and --service-token go together: set both to admit administrators, \
                 or neither to admit service tokens only"
            ),
        };
        let app = Arc::new(App::new(store::open(&pool), identity, clock, &config.views));
        let bound = Bound::bind(config.server.listen).await?;
        Ok(Self {
            bound,
            server: config.server,
            verifier,
            pool,
            app,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.bound.local_addr()
    }

    /// Serves until `shutdown` fires (migrations run first; health SERVING after).
    pub async fn run(self, shutdown: Shutdown) -> anyhow::Result<()> {
        let (routes, grpc_services) = Api::new(self.app.clone()).services();
        let spec = ServiceSpec {
            name: "subscription",
            routes,
            grpc_services,
            public_methods: vec![],
            descriptor_sets: vec![portal_proto::FILE_DESCRIPTOR_SET],
            database: Some((self.pool.clone(), &MIGRATIONS)),
        };
        let refresher = tokio::spawn(self.app.views().clone().keep_fresh(shutdown.clone()));
        let result = serve(
            self.bound,
            spec,
            &self.server,
            self.verifier,
            shutdown.clone(),
        )
        .await;
        shutdown.trigger();
        let _ = refresher.await;
        self.pool.close().await;
        result
    }
}

/// Applies migrations and exits (`portal migrate`).
pub async fn migrate(database: &DatabaseArgs) -> anyhow::Result<()> {
    database
        .migrate(&MIGRATIONS)
        .await
        .context("migrating the subscription database")
}

/// Seeds the demo data for `portal up`; idempotent (a second call changes nothing).
pub async fn seed_demo(database: &DatabaseArgs) -> anyhow::Result<()> {
    let pool = DbPool::connect_lazy(&database.settings())?;
    let result = async {
        pool.migrate(&MIGRATIONS).await?;
        demo::seed(store::open(&pool).as_ref()).await
    }
    .await;
    pool.close().await;
    result.context("seeding the subscription demo data")
}
