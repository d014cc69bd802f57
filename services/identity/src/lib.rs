//! The identity service (`portal.identity.v1`): trusts and schools, the staff directory and its
//! MIS sync, accounts with argon2id passwords and signed user tokens, and grants of product
//! roles at organisations.

pub mod domain;
pub mod error;
pub mod grpc;
pub mod password;
mod seed;
pub mod storage;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use portal_proto::identity::v1::account_service_server::{self, AccountServiceServer};
use portal_proto::identity::v1::directory_service_server::{self, DirectoryServiceServer};
use portal_proto::identity::v1::grant_service_server::{self, GrantServiceServer};
use portal_proto::identity::v1::staff_service_server::{self, StaffServiceServer};
use portal_runtime::auth::{TokenIssuer, TokenVerifier};
use portal_runtime::clock::SharedClock;
use portal_runtime::config::{DatabaseArgs, ServerArgs, TokenArgs, parse_duration};
use portal_runtime::db::{DbPool, Migrations};
use portal_runtime::server::{Bound, ServiceSpec, Shutdown, serve};
use sqlx::migrate::Migrator;
use tonic::codec::CompressionEncoding;
use tonic::service::Routes;

pub use grpc::IdentityApi;
pub use seed::{bootstrap_admin, seed_demo};

static SQLITE: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("migrations/postgres");

/// The identity service's embedded migrations.
pub static MIGRATIONS: Migrations = Migrations {
    sqlite: &SQLITE,
    postgres: &POSTGRES,
};

/// The one method callable without a bearer token.
pub const PUBLIC_METHODS: [&str; 1] = ["/portal.identity.v1.AccountService/SignIn"];

/// Accepts gzip-compressed requests and compresses answers for clients that accept gzip
/// (large staff snapshots compress well).
macro_rules! with_gzip {
    ($server:expr) => {
        $server
            .accept_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Gzip)
    };
}

/// Flags and PORTAL_* env vars of this service (clap).
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub tokens: TokenArgs,
    /// Ed25519 private key (PKCS#8 PEM file) that signs user tokens issued at sign-in.
    #[arg(long, env = "PORTAL_TOKEN_PRIVATE_KEY")]
    pub token_private_key: PathBuf,
    /// How long a user token from sign-in stays valid.
    #[arg(long, env = "PORTAL_USER_TOKEN_TTL", default_value = "1h", value_parser = parse_duration)]
    pub user_token_ttl: Duration,
}

/// The identity server: a bound listener, its services and its database pool.
pub struct Application {
    bound: Bound,
    spec: ServiceSpec,
    server: ServerArgs,
    verifier: Arc<TokenVerifier>,
    pool: DbPool,
}

impl Application {
    /// Binds the listener (port 0 allowed) and builds the services; does not wait for the
    /// database.
    pub async fn build(config: Config, clock: SharedClock) -> anyhow::Result<Self> {
        let pem = std::fs::read_to_string(&config.token_private_key).with_context(|| {
            format!(
                "reading the token private key {}",
                config.token_private_key.display()
            )
        })?;
        let issuer = TokenIssuer::from_pem(&pem)?;
        let verifier = Arc::new(config.tokens.verifier()?);
        let ttl = chrono::Duration::from_std(config.user_token_ttl)
            .context("the user token TTL is too long")?;
        let pool = DbPool::connect_lazy(&config.database.settings())?;
        tokio::task::spawn_blocking(password::warm_up);
        let api = IdentityApi::new(storage::open(&pool), clock, issuer, ttl);
        let routes = Routes::new(with_gzip!(DirectoryServiceServer::new(api.clone())))
            .add_service(with_gzip!(StaffServiceServer::new(api.clone())))
            .add_service(with_gzip!(AccountServiceServer::new(api.clone())))
            .add_service(with_gzip!(GrantServiceServer::new(api)));
        let spec = ServiceSpec {
            name: "identity",
            routes,
            grpc_services: vec![
                directory_service_server::SERVICE_NAME,
                staff_service_server::SERVICE_NAME,
                account_service_server::SERVICE_NAME,
                grant_service_server::SERVICE_NAME,
            ],
            public_methods: PUBLIC_METHODS.to_vec(),
            descriptor_sets: vec![portal_proto::FILE_DESCRIPTOR_SET],
            database: Some((pool.clone(), &MIGRATIONS)),
        };
        let bound = Bound::bind(config.server.listen).await?;
        Ok(Self {
            bound,
            spec,
            server: config.server,
            verifier,
            pool,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.bound.local_addr()
    }

    /// Serves until `shutdown` fires (migrations run first; health is SERVING after them).
    pub async fn run(self, shutdown: Shutdown) -> anyhow::Result<()> {
        let result = serve(self.bound, self.spec, &self.server, self.verifier, shutdown).await;
        self.pool.close().await;
        result
    }
}

/// Applies migrations and exits (`portal migrate`).
pub async fn migrate(database: &DatabaseArgs) -> anyhow::Result<()> {
    database.migrate(&MIGRATIONS).await
}
