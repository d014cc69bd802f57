//! The identity service (`portal.identity.v1`): trusts and schools, the staff directory and its
//! MIS sync, accounts with argon2id passwords and signed user tokens, and grants of product
//! roles at organisations.
//!
//! A call goes `api` (the gRPC edge: parse, convert) → `app` (the use cases: authorise,
//! orchestrate) → [`domain`] (the rules) → [`store`] (SQLite or PostgreSQL). Beside them:
//! `hashing`, the argon2id password hashes; `demo`, the demo data of `portal up` and the
//! first administrator of a trust.

mod api;
mod app;
mod demo;
pub mod domain;
pub mod error;
mod hashing;
pub mod store;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use portal_runtime::auth::{TokenIssuer, TokenVerifier};
use portal_runtime::clock::SharedClock;
use portal_runtime::config::{DatabaseArgs, ServerArgs, TokenArgs, parse_duration};
use portal_runtime::db::{DbPool, Migrations};
use portal_runtime::server::{Bound, ServiceSpec, serve};
use portal_runtime::shutdown::Shutdown;
use sqlx::migrate::Migrator;

pub use demo::{bootstrap_admin, seed_demo};

static SQLITE: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("migrations/postgres");

/// The identity service's embedded migrations.
pub static MIGRATIONS: Migrations = Migrations {
    sqlite: &SQLITE,
    postgres: &POSTGRES,
};

/// The one method callable without a bearer token.
pub const PUBLIC_METHODS: [&str; 1] = ["/portal.identity.v1.AccountService/SignIn"];

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
    #[command(flatten)]
    pub sign_in: SignInArgs,
}

/// What sign-in and registration may cost: password hashing within a memory budget, and
/// failed sign-ins slowed then refused.
#[derive(Debug, Clone, clap::Args)]
pub struct SignInArgs {
    /// Most password hashes computed at once. Each argon2id hash takes 19 MiB: the default 4
    /// keeps hashing under 80 MiB of a 256 MiB pod.
    #[arg(long, env = "PORTAL_PASSWORD_HASH_CONCURRENCY", default_value_t = 4)]
    pub password_hash_concurrency: usize,
    /// Most sign-ins and registrations waiting for a hashing slot; beyond it they are refused
    /// at once (UNAVAILABLE with RetryInfo).
    #[arg(long, env = "PORTAL_PASSWORD_HASH_QUEUE", default_value_t = 32)]
    pub password_hash_queue: usize,
    /// How long one waits for a hashing slot before it is refused the same way.
    #[arg(long, env = "PORTAL_PASSWORD_HASH_WAIT", default_value = "2s", value_parser = parse_duration)]
    pub password_hash_wait: Duration,
    /// Failed sign-ins to one account from one address before each further one closes that
    /// pair for twice as long as the last (from 1 s, up to `--sign-in-max-delay`).
    #[arg(long, env = "PORTAL_SIGN_IN_FREE_FAILURES", default_value_t = 5)]
    pub sign_in_free_failures: u32,
    /// The same for one account from any address.
    #[arg(
        long,
        env = "PORTAL_SIGN_IN_ACCOUNT_FREE_FAILURES",
        default_value_t = 10
    )]
    pub sign_in_account_free_failures: u32,
    /// The same for one address, whatever the accounts (the web back end's address carries
    /// many users' sign-ins).
    #[arg(
        long,
        env = "PORTAL_SIGN_IN_ADDRESS_FREE_FAILURES",
        default_value_t = 100
    )]
    pub sign_in_source_free_failures: u32,
    /// The longest a key is closed for; failures are forgotten this long after the last.
    #[arg(long, env = "PORTAL_SIGN_IN_MAX_DELAY", default_value = "15m", value_parser = parse_duration)]
    pub sign_in_max_delay: Duration,
    /// While an account is closed by failures, how often a try from an address that has not
    /// failed for it still goes through, so its owner is never locked out for long.
    #[arg(long, env = "PORTAL_SIGN_IN_FRESH_ADDRESS_EVERY", default_value = "1m", value_parser = parse_duration)]
    pub sign_in_fresh_address_every: Duration,
}

impl Default for SignInArgs {
    fn default() -> Self {
        Self {
            password_hash_concurrency: 4,
            password_hash_queue: 32,
            password_hash_wait: Duration::from_secs(2),
            sign_in_free_failures: 5,
            sign_in_account_free_failures: 10,
            sign_in_source_free_failures: 100,
            sign_in_max_delay: Duration::from_secs(15 * 60),
            sign_in_fresh_address_every: Duration::from_secs(60),
        }
    }
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
        config.database.check_for(config.server.environment)?;
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
        tokio::task::spawn_blocking(hashing::warm_up);
        let hasher = hashing::Hasher::new(
            config.sign_in.password_hash_concurrency,
            config.sign_in.password_hash_queue,
            config.sign_in.password_hash_wait,
        );
        let guessing = app::Guessing::new(&config.sign_in);
        let app = app::App::new(store::open(&pool), clock, issuer, ttl, hasher, guessing);
        let spec = ServiceSpec {
            name: "identity",
            routes: api::routes(Arc::new(app)),
            grpc_services: api::SERVICES.to_vec(),
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
