//! The invitation service (`portal.invitation.v1`): an administrator invites a staff member to
//! the trust's products (rules R1–R12). It asks identity and subscription whether the
//! invitation may be made, stores it with its outbox steps in one transaction, grants through
//! identity, emails the invitee, and handles the sign-up link's lifecycle (resend, revoke,
//! inspect, accept, expiry).
//!
//! A call goes [`api`] (the gRPC edge) → [`app`] (the use cases, and the outbox worker that
//! carries out what follows a commit) → [`domain`] (the rules without I/O) → [`store`]
//! (SQLite or PostgreSQL), with [`clients`] for identity, subscription and outgoing mail.

pub mod api;
pub mod app;
pub mod clients;
pub mod demo;
pub mod domain;
pub mod error;
pub mod store;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use secrecy::{ExposeSecret, SecretString};
use sqlx::migrate::Migrator;

use portal_proto::invitation::v1::invitation_service_server::InvitationServiceServer;
use portal_runtime::Principal;
use portal_runtime::auth::{TokenVerifier, callers};
use portal_runtime::client::ClientSettings;
use portal_runtime::clock::SharedClock;
use portal_runtime::config::{
    DatabaseArgs, Environment, ServerArgs, TokenArgs, is_placeholder_host, parse_duration,
    parse_secret, read_secret_file, secret_from,
};
use portal_runtime::db::{DbPool, Migrations};
use portal_runtime::metrics::Metrics;
use portal_runtime::server::{Bound, ServiceSpec, Shutdown, serve_with_metrics};

use crate::api::Api;
use crate::app::{App, Outbox};
use crate::clients::mail::{Mailer, Sink};
use crate::clients::{Identity, Subscription};

pub use demo::seed_demo;

static SQLITE: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("migrations/postgres");

/// The invitation service's embedded migrations.
pub static MIGRATIONS: Migrations = Migrations {
    sqlite: &SQLITE,
    postgres: &POSTGRES,
};

/// Full name of the gRPC service.
pub const SERVICE_NAME: &str = "portal.invitation.v1.InvitationService";

/// Methods callable without a bearer token: the link token is the credential.
pub const PUBLIC_METHODS: [&str; 2] = [
    "/portal.invitation.v1.InvitationService/InspectInvitationLink",
    "/portal.invitation.v1.InvitationService/AcceptInvitation",
];

/// Flags and PORTAL_* env vars of the invitation service.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub tokens: TokenArgs,

    /// URL of the identity service (`http://host:port`).
    #[arg(long, env = "PORTAL_IDENTITY_URL")]
    pub identity_url: String,

    /// URL of the subscription service (`http://host:port`).
    #[arg(long, env = "PORTAL_SUBSCRIPTION_URL")]
    pub subscription_url: String,

    /// This service's own bearer token (an `invitation` service token).
    #[arg(
        long,
        env = "PORTAL_SERVICE_TOKEN",
        hide_env_values = true,
        value_parser = parse_secret,
        required_unless_present = "service_token_file",
        conflicts_with = "service_token_file"
    )]
    pub service_token: Option<SecretString>,

    /// A file holding that token (a mounted Secret); a missing file is an error.
    #[arg(long, env = "PORTAL_SERVICE_TOKEN_FILE", value_name = "PATH", value_parser = read_secret_file)]
    pub service_token_file: Option<SecretString>,

    /// Address of the page that accepts invitations; the link is `<base>?token=<token>`.
    #[arg(
        long,
        env = "PORTAL_LINK_BASE_URL",
        default_value = "http://localhost:8080/invitations/accept"
    )]
    pub link_base_url: String,

    /// How long a sign-up link works (rule R7).
    #[arg(long, env = "PORTAL_INVITATION_TTL", default_value = "14d", value_parser = parse_duration)]
    pub invitation_ttl: Duration,

    /// SMTP relay for invitation emails; takes precedence over --mail-dir.
    /// `smtps://[user:password@]host[:465]` (implicit TLS) or
    /// `smtp://[user:password@]host[:587]` (STARTTLS, required); `smtp://host:25?tls=none`
    /// is plaintext without credentials, for a relay on the same host. It may carry
    /// credentials: held as a secret, never shown by --help.
    #[arg(
        long,
        env = "PORTAL_SMTP_URL",
        hide_env_values = true,
        value_parser = parse_secret,
        conflicts_with = "smtp_url_file"
    )]
    pub smtp_url: Option<SecretString>,

    /// A file holding the SMTP relay URL (a mounted Secret); a missing file is an error.
    #[arg(long, env = "PORTAL_SMTP_URL_FILE", value_name = "PATH", value_parser = read_secret_file)]
    pub smtp_url_file: Option<SecretString>,

    /// PEM file of the certificate authorities trusted for the relay's certificate, besides
    /// the public ones (a relay with a private CA).
    #[arg(long, env = "PORTAL_SMTP_CA_FILE", value_name = "PATH")]
    pub smtp_ca_file: Option<PathBuf>,

    /// Sender of invitation emails.
    #[arg(
        long,
        env = "PORTAL_MAIL_FROM",
        default_value = "Portal <no-reply@portal.example.org>"
    )]
    pub mail_from: String,

    /// Without an SMTP relay: write each email as an .eml file in this directory. Without
    /// either, emails are only logged (without address or link).
    #[arg(long, env = "PORTAL_MAIL_DIR")]
    pub mail_dir: Option<PathBuf>,

    /// How often the outbox worker and the expiry sweeper run.
    #[arg(long, env = "PORTAL_WORKER_INTERVAL", default_value = "1s", value_parser = parse_duration)]
    pub worker_interval: Duration,

    /// Deadline of each call to identity and subscription.
    #[arg(long, env = "PORTAL_CALL_TIMEOUT", default_value = "3s", value_parser = parse_duration)]
    pub call_timeout: Duration,

    /// Unknown link tokens one address may present (inspect or accept) before each further
    /// one closes it for twice as long as the last, from 1 s up to 15 minutes.
    #[arg(long, env = "PORTAL_LINK_FREE_FAILURES", default_value_t = 20)]
    pub link_free_failures: u32,

    /// Most resends of one invitation in any `--email-quota-window`; more are refused with
    /// RESOURCE_EXHAUSTED and RetryInfo.
    #[arg(long, env = "PORTAL_RESENDS_PER_INVITATION", default_value_t = 5)]
    pub resends_per_invitation: u32,

    /// Most invitation emails (creates and resends) of one trust in any `--email-quota-window`.
    #[arg(long, env = "PORTAL_EMAILS_PER_TRUST", default_value_t = 1_000)]
    pub emails_per_trust: u32,

    /// The window both email quotas count over.
    #[arg(long, env = "PORTAL_EMAIL_QUOTA_WINDOW", default_value = "1h", value_parser = parse_duration)]
    pub email_quota_window: Duration,
}

impl Config {
    /// A configuration with every optional setting at its default.
    pub fn new(
        server: ServerArgs,
        database: DatabaseArgs,
        tokens: TokenArgs,
        identity_url: String,
        subscription_url: String,
        service_token: String,
    ) -> Self {
        Self {
            server,
            database,
            tokens,
            identity_url,
            subscription_url,
            service_token: Some(service_token.into()),
            service_token_file: None,
            link_base_url: "http://localhost:8080/invitations/accept".into(),
            invitation_ttl: Duration::from_secs(14 * 86_400),
            smtp_url: None,
            smtp_url_file: None,
            smtp_ca_file: None,
            mail_from: "Portal <no-reply@portal.example.org>".into(),
            mail_dir: None,
            worker_interval: Duration::from_secs(1),
            call_timeout: Duration::from_secs(3),
            link_free_failures: 20,
            resends_per_invitation: 5,
            emails_per_trust: 1_000,
            email_quota_window: Duration::from_secs(3_600),
        }
    }

    /// This service's token, read and checked: it must be an `invitation` service token.
    fn own_token(&self, verifier: &TokenVerifier) -> anyhow::Result<SecretString> {
        let token = secret_from(
            self.service_token.as_ref(),
            self.service_token_file.as_ref(),
        )
        .context("no service token: set --service-token or --service-token-file")?;
        match verifier.verify(token.expose_secret()) {
            Ok(Principal::Service { name }) if name == callers::INVITATION => Ok(token.clone()),
            Ok(_) => anyhow::bail!("the service token must be an `invitation` service token"),
            Err(error) => anyhow::bail!("the service token is not valid: {error}"),
        }
    }

    /// In production, the link and the sender must be the deployment's own: an email with
    /// a placeholder link or sender would reach real people and fail them.
    fn check_addresses(&self) -> anyhow::Result<()> {
        if self.server.environment != Environment::Production {
            return Ok(());
        }
        let (scheme, rest) = self
            .link_base_url
            .split_once("://")
            .context("--link-base-url is not an absolute URL")?;
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let host = authority.rsplit('@').next().unwrap_or_default();
        let host = match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host,
        };
        anyhow::ensure!(
            scheme == "https" && !is_placeholder_host(host),
            "in production --link-base-url must be the accept page's https address, not `{}`",
            self.link_base_url
        );
        let domain = self
            .mail_from
            .rsplit('@')
            .next()
            .unwrap_or_default()
            .trim_end_matches('>');
        anyhow::ensure!(
            self.mail_from.contains('@') && !is_placeholder_host(domain),
            "in production --mail-from must be the deployment's own sender, not `{}`",
            self.mail_from
        );
        Ok(())
    }

    fn client(&self, url: &str) -> ClientSettings {
        ClientSettings {
            connect_timeout: self.call_timeout.min(Duration::from_secs(2)),
            call_timeout: self.call_timeout,
            ..ClientSettings::new(url)
        }
    }
}

/// A built invitation service: bound listener, services and pool.
pub struct Application {
    bound: Bound,
    api: InvitationServiceServer<Api>,
    outbox: Outbox,
    pool: DbPool,
    verifier: Arc<TokenVerifier>,
    server: ServerArgs,
    worker_interval: Duration,
}

impl Application {
    /// Binds the listener (port 0 allowed) and builds the services; does not wait for the
    /// database or the other services.
    pub async fn build(config: Config, clock: SharedClock) -> anyhow::Result<Self> {
        config.database.check_for(config.server.environment)?;
        config.check_addresses()?;
        let verifier = Arc::new(config.tokens.verifier()?);
        let token = config.own_token(&verifier)?;
        let identity = Identity::new(&config.client(&config.identity_url), &token)?;
        let subscription = Subscription::new(&config.client(&config.subscription_url), &token)?;
        let smtp_url = secret_from(config.smtp_url.as_ref(), config.smtp_url_file.as_ref())
            .map(|url| url.expose_secret());
        let sink = Sink::choose(
            smtp_url,
            config.smtp_ca_file.as_deref(),
            config.mail_dir.as_deref(),
        )?;
        let mailer = Mailer::new(&config.mail_from, sink)?;
        let pool = DbPool::connect_lazy(&config.database.settings())?;
        let store = store::open(&pool);
        let outbox = Outbox::new(
            store.clone(),
            identity.clone(),
            clock.clone(),
            mailer,
            config.link_base_url.clone(),
        );
        let link_ttl = chrono::Duration::from_std(config.invitation_ttl)
            .context("invitation TTL out of range")?;
        let app = App::new(
            store,
            identity,
            subscription,
            outbox.clone(),
            clock,
            link_ttl,
            app::Guardrails {
                link_guesses: app::LinkGuesses::new(config.link_free_failures),
                emails: app::EmailQuotas::new(
                    config.resends_per_invitation,
                    config.emails_per_trust,
                    chrono::Duration::from_std(config.email_quota_window)
                        .context("email quota window out of range")?,
                ),
            },
        );
        let bound = Bound::bind(config.server.listen).await?;
        Ok(Self {
            bound,
            api: api::server(Arc::new(app)),
            outbox,
            pool,
            verifier,
            server: config.server,
            worker_interval: config.worker_interval,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.bound.local_addr()
    }

    /// Serves until `shutdown` fires, with the outbox worker and expiry sweeper running
    /// alongside (migrations run in `serve`; health is SERVING after them).
    pub async fn run(self, shutdown: Shutdown) -> anyhow::Result<()> {
        let worker = tokio::spawn(
            self.outbox
                .clone()
                .work(self.worker_interval, shutdown.clone()),
        );
        let recorder = tokio::spawn(self.outbox.clone().record_finished(shutdown.clone()));
        let spec = ServiceSpec {
            name: "invitation",
            routes: tonic::service::Routes::new(self.api),
            grpc_services: vec![SERVICE_NAME],
            public_methods: PUBLIC_METHODS.to_vec(),
            descriptor_sets: vec![portal_proto::FILE_DESCRIPTOR_SET],
            database: Some((self.pool.clone(), &MIGRATIONS)),
        };
        let metrics = Metrics::new();
        let backlog = metrics.gauge(
            "invitation_outbox_backlog",
            "Outbox steps (grants, revokes, emails) not yet done",
        );
        let outbox = self.outbox.clone();
        let gauge_task = tokio::spawn(async move {
            loop {
                if let Ok(count) = outbox.backlog().await {
                    backlog.set(count);
                }
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        });
        let result = serve_with_metrics(
            self.bound,
            spec,
            &self.server,
            self.verifier,
            shutdown.clone(),
            metrics,
        )
        .await;
        gauge_task.abort();
        worker.abort();
        // Emails still going out and finished steps are seen to before the pool closes.
        shutdown.trigger();
        let _ = recorder.await;
        self.pool.close().await;
        result
    }
}

/// Applies the migrations and exits (`portal migrate`).
pub async fn migrate(database: &DatabaseArgs) -> anyhow::Result<()> {
    database.migrate(&MIGRATIONS).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn production(link: &str, from: &str) -> Config {
        let mut config = Config::new(
            ServerArgs::local("127.0.0.1:0".parse().unwrap()),
            DatabaseArgs::new("sqlite::memory:"),
            TokenArgs {
                token_public_keys: vec![],
            },
            "http://identity:50051".into(),
            "http://subscription:50052".into(),
            "token".into(),
        );
        config.server.environment = Environment::Production;
        config.link_base_url = link.into();
        config.mail_from = from.into();
        config
    }

    #[test]
    fn production_refuses_placeholder_link_and_sender_addresses() {
        let real_link = "https://portal.northfield.sch.uk/invitations/accept";
        let real_from = "Portal <no-reply@portal.northfield.sch.uk>";
        assert!(production(real_link, real_from).check_addresses().is_ok());
        for link in [
            "https://portal.example.org/invitations/accept",
            "http://localhost:8080/invitations/accept",
            "http://portal.northfield.sch.uk/invitations/accept",
            "https://127.0.0.1:8443/accept",
            "portal.northfield.sch.uk/accept",
        ] {
            let error = production(link, real_from).check_addresses().unwrap_err();
            assert!(
                error.to_string().contains("--link-base-url"),
                "{link}: {error}"
            );
        }
        for from in [
            "Portal <no-reply@portal.example.org>",
            "no-reply@localhost",
            "Portal",
        ] {
            let error = production(real_link, from).check_addresses().unwrap_err();
            assert!(error.to_string().contains("--mail-from"), "{from}: {error}");
        }
        // Development (`portal up`, tests) takes the defaults.
        let mut config = production("http://localhost:8080/invitations/accept", "x@example.org");
        config.server.environment = Environment::Development;
        assert!(config.check_addresses().is_ok());
    }

    #[test]
    fn the_configuration_prints_no_secret() {
        let mut config = Config::new(
            ServerArgs::local("127.0.0.1:0".parse().unwrap()),
            DatabaseArgs::new("postgres://portal:db-password@db/portal"),
            TokenArgs {
                token_public_keys: vec!["keys/token.pub.pem".into()],
            },
            "http://identity:50051".into(),
            "http://subscription:50052".into(),
            "the-service-token".into(),
        );
        config.smtp_url = Some("smtp://mailer:relay-password@relay:587".into());
        let printed = format!("{config:?}");
        for secret in ["db-password", "the-service-token", "relay-password"] {
            assert!(!printed.contains(secret), "{secret} in {printed}");
        }
    }
}
