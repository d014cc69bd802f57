//! Configuration shared by every service, from flags and `PORTAL_*` environment variables.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};

use crate::auth::TokenVerifier;
use crate::db::{DbPool, DbSettings, Migrations};

/// Parses `250ms`, `10s`, `5m`, `2h`, `14d` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 500ms, 10s, 5m, 2h or 14d"))?;
    let secs = |s: u64| Duration::from_secs(s);
    Ok(match unit {
        "ms" => Duration::from_millis(n),
        "" | "s" => secs(n),
        "m" => secs(n * 60),
        "h" => secs(n * 3600),
        "d" => secs(n * 86_400),
        _ => {
            return Err(format!(
                "`{text}` has an unknown unit; use ms, s, m, h or d"
            ));
        }
    })
}

/// How a gRPC server listens, protects itself and shuts down.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// Address the gRPC server listens on.
    #[arg(long, env = "PORTAL_LISTEN_ADDR", default_value = "0.0.0.0:50051")]
    pub listen: SocketAddr,

    /// Address of the admin HTTP server (Prometheus metrics at /metrics); off when unset.
    #[arg(long, env = "PORTAL_ADMIN_ADDR")]
    pub admin_listen: Option<SocketAddr>,

    /// Per-call deadline applied by the server (a shorter client deadline wins).
    #[arg(long, env = "PORTAL_REQUEST_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub request_timeout: Duration,

    /// Calls served at once; calls beyond it are refused at once with UNAVAILABLE.
    #[arg(long, env = "PORTAL_CONCURRENCY_LIMIT", default_value_t = 512)]
    pub concurrency_limit: usize,

    /// After SIGTERM: how long health says NOT_SERVING before the listener closes.
    #[arg(long, env = "PORTAL_SHUTDOWN_DELAY", default_value = "0s", value_parser = parse_duration)]
    pub shutdown_delay: Duration,

    /// After the listener closes: how long in-flight calls may take to finish.
    #[arg(long, env = "PORTAL_DRAIN_TIMEOUT", default_value = "20s", value_parser = parse_duration)]
    pub drain_timeout: Duration,

    /// Connections are closed gracefully after this age so load spreads over new replicas.
    #[arg(long, env = "PORTAL_MAX_CONNECTION_AGE", default_value = "5m", value_parser = parse_duration)]
    pub max_connection_age: Duration,

    /// Apply the database migrations at start. Off, the server only checks that every
    /// migration it knows is applied (NOT_SERVING until then) and needs no DDL rights: in
    /// production a migration Job with its own credentials migrates (`portal migrate`).
    #[arg(long, env = "PORTAL_MIGRATE")]
    pub migrate: bool,

    /// `production` refuses settings only fit for trying the suite out (placeholder link
    /// and sender addresses).
    #[arg(
        long,
        env = "PORTAL_ENVIRONMENT",
        value_enum,
        default_value = "development"
    )]
    pub environment: Environment,
}

/// Where a server runs: production refuses placeholders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Environment {
    Development,
    Production,
}

/// Whether a host name is one that can never be a real deployment's: loopback, or a name
/// reserved for documentation and testing (RFC 2606, RFC 6761).
pub fn is_placeholder_host(host: &str) -> bool {
    let host = host
        .trim()
        .trim_end_matches('.')
        .trim_matches(['[', ']'])
        .to_ascii_lowercase();
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return ip.is_loopback() || ip.is_unspecified();
    }
    let reserved_domains = ["example.org", "example.com", "example.net", "localhost"];
    let reserved_tlds = ["example", "invalid", "test", "localhost"];
    host.is_empty()
        || reserved_domains
            .iter()
            .any(|d| host == *d || host.ends_with(&format!(".{d}")))
        || reserved_tlds
            .iter()
            .any(|tld| host.rsplit('.').next() == Some(tld))
}

impl ServerArgs {
    /// Settings for a server on `listen` with every other value at its default, migrating at
    /// start (tests, `up`).
    pub fn local(listen: SocketAddr) -> Self {
        Self {
            listen,
            admin_listen: None,
            request_timeout: Duration::from_secs(10),
            concurrency_limit: 512,
            shutdown_delay: Duration::ZERO,
            drain_timeout: Duration::from_secs(20),
            max_connection_age: Duration::from_secs(300),
            migrate: true,
            environment: Environment::Development,
        }
    }
}

/// Where a service keeps its data.
#[derive(Debug, Clone, clap::Args)]
pub struct DatabaseArgs {
    /// `sqlite:PATH` or `postgres://user@host/db` (it may carry a password: held as a secret,
    /// never shown by --help).
    #[arg(
        long,
        env = "PORTAL_DATABASE_URL",
        hide_env_values = true,
        value_parser = parse_secret,
        required_unless_present = "database_url_file",
        conflicts_with = "database_url_file"
    )]
    pub database_url: Option<SecretString>,

    /// A file holding the database URL (a mounted Secret); read at start, and a missing file
    /// is an error.
    #[arg(long, env = "PORTAL_DATABASE_URL_FILE", value_name = "PATH", value_parser = read_secret_file)]
    pub database_url_file: Option<SecretString>,

    /// Largest number of pooled connections.
    #[arg(long, env = "PORTAL_DATABASE_MAX_CONNECTIONS", default_value_t = 16)]
    pub database_max_connections: u32,
}

impl DatabaseArgs {
    /// `url` with the default pool size.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            database_url: Some(SecretString::from(url.into())),
            database_url_file: None,
            database_max_connections: 16,
        }
    }

    /// `url` with a pool of at most `max_connections`.
    pub fn with_max_connections(url: impl Into<String>, max_connections: u32) -> Self {
        Self {
            database_max_connections: max_connections,
            ..Self::new(url)
        }
    }

    /// The URL, from the file when one was named (clap lets only one of the two be set).
    pub fn url(&self) -> Option<&SecretString> {
        secret_from(self.database_url.as_ref(), self.database_url_file.as_ref())
    }

    /// In production a PostgreSQL URL must verify whom it talks to (`sslmode=verify-full`,
    /// with `sslrootcert` naming the CA file unless the server's certificate chains to a
    /// public root): `prefer`, sqlx's default, falls back to plaintext without a word.
    pub fn check_for(&self, environment: Environment) -> anyhow::Result<()> {
        let url = self
            .url()
            .map(|url| url.expose_secret())
            .unwrap_or_default();
        if environment != Environment::Production || url.starts_with("sqlite:") {
            return Ok(());
        }
        let verified = url
            .split_once('?')
            .map(|(_, query)| query.split('&').any(|pair| pair == "sslmode=verify-full"))
            .unwrap_or(false);
        anyhow::ensure!(
            verified,
            "in production the database URL must use TLS with verification: add \
             ?sslmode=verify-full&sslrootcert=<CA file>"
        );
        Ok(())
    }

    pub fn settings(&self) -> DbSettings {
        let url = self
            .url()
            .map(|url| url.expose_secret())
            .unwrap_or_default();
        DbSettings {
            max_connections: self.database_max_connections,
            ..DbSettings::new(url)
        }
    }

    /// Connects, applies `migrations` and disconnects (`portal migrate`, `portal up`).
    pub async fn migrate(&self, migrations: &Migrations) -> anyhow::Result<()> {
        let pool = DbPool::connect_lazy(&self.settings())?;
        let result = pool.migrate(migrations).await;
        pool.close().await;
        result
    }
}

/// Which token signing keys this service trusts.
#[derive(Debug, Clone, clap::Args)]
pub struct TokenArgs {
    /// Ed25519 public keys (PEM files) whose tokens are accepted, comma-separated; list the old
    /// and the new key while rotating.
    #[arg(
        long,
        env = "PORTAL_TOKEN_PUBLIC_KEYS",
        value_delimiter = ',',
        required = true
    )]
    pub token_public_keys: Vec<PathBuf>,
}

impl TokenArgs {
    pub fn verifier(&self) -> anyhow::Result<TokenVerifier> {
        let pems = self
            .token_public_keys
            .iter()
            .map(|p| {
                std::fs::read_to_string(p)
                    .map_err(|e| anyhow::anyhow!("reading token public key {}: {e}", p.display()))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        TokenVerifier::from_pems(pems.iter().map(String::as_str))
    }
}

/// The value of a flag that holds a secret, kept out of `Debug` output (a clap value parser).
pub fn parse_secret(value: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::from(value))
}

/// The contents of the file a `*_FILE` flag names, trimmed (a clap value parser): secrets are
/// given either as a value (`--service-token`, `PORTAL_SERVICE_TOKEN`) or as a file
/// (`--service-token-file`, `PORTAL_SERVICE_TOKEN_FILE`), never guessed from one string.
/// A missing, unreadable or empty file is an error naming the path.
pub fn read_secret_file(path: &str) -> Result<SecretString, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let text = text.trim();
    if text.is_empty() {
        return Err(format!("{path} is empty"));
    }
    Ok(SecretString::from(text))
}

/// The secret given as a value or as a file, whichever was set.
pub fn secret_from<'a>(
    value: Option<&'a SecretString>,
    file: Option<&'a SecretString>,
) -> Option<&'a SecretString> {
    file.or(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_url_with_a_password_is_not_printed() {
        let args = DatabaseArgs::new("postgres://portal:hunter22@db/portal");
        assert!(!format!("{args:?}").contains("hunter22"));
        assert_eq!(
            args.settings().url.expose_secret(),
            "postgres://portal:hunter22@db/portal"
        );
    }

    #[test]
    fn a_secret_file_is_read_and_a_missing_or_empty_one_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "from-the-file\n").unwrap();
        let path = file.display().to_string();
        assert_eq!(
            read_secret_file(&path).unwrap().expose_secret(),
            "from-the-file"
        );
        let missing = dir.path().join("absent").display().to_string();
        let error = read_secret_file(&missing).unwrap_err();
        assert!(error.contains(&missing), "{error}");
        std::fs::write(&file, "\n").unwrap();
        let error = read_secret_file(&path).unwrap_err();
        assert!(error.contains(&path), "{error}");
    }

    #[test]
    fn a_database_url_comes_from_its_flag_or_its_file_but_not_both() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            database: DatabaseArgs,
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("url");
        std::fs::write(&file, "postgres://portal:from-file@db/portal\n").unwrap();
        let file = file.display().to_string();
        let cli = Cli::try_parse_from(["x", "--database-url-file", &file]).unwrap();
        assert_eq!(
            cli.database.settings().url.expose_secret(),
            "postgres://portal:from-file@db/portal"
        );
        let cli = Cli::try_parse_from(["x", "--database-url", "sqlite:a.db"]).unwrap();
        assert_eq!(cli.database.settings().url.expose_secret(), "sqlite:a.db");
        assert!(Cli::try_parse_from(["x"]).is_err());
        assert!(
            Cli::try_parse_from([
                "x",
                "--database-url",
                "sqlite:a.db",
                "--database-url-file",
                &file
            ])
            .is_err()
        );
        let error = Cli::try_parse_from(["x", "--database-url-file", "/nonexistent/url"])
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("/nonexistent/url"), "{error}");
    }

    #[test]
    fn production_takes_postgresql_only_over_verified_tls() {
        let production = Environment::Production;
        let verified = "postgres://app@db/portal?sslmode=verify-full&sslrootcert=/etc/ca.crt";
        assert!(DatabaseArgs::new(verified).check_for(production).is_ok());
        for url in [
            "postgres://app@db/portal",
            "postgres://app@db/portal?sslmode=prefer",
            "postgres://app@db/portal?sslmode=require",
        ] {
            assert!(
                DatabaseArgs::new(url).check_for(production).is_err(),
                "{url}"
            );
            assert!(
                DatabaseArgs::new(url)
                    .check_for(Environment::Development)
                    .is_ok()
            );
        }
        assert!(
            DatabaseArgs::new("sqlite:a.db")
                .check_for(production)
                .is_ok()
        );
    }

    #[test]
    fn loopback_and_reserved_names_are_placeholders_and_real_names_are_not() {
        for host in [
            "localhost",
            "127.0.0.1",
            "[::1]",
            "portal.example.org",
            "example.com",
            "mail.example",
            "relay.invalid",
            "a.test",
            "",
        ] {
            assert!(is_placeholder_host(host), "{host}");
        }
        for host in [
            "portal.northfield.sch.uk",
            "10.0.0.7",
            "example.org.uk",
            "myexample.org",
        ] {
            assert!(!is_placeholder_host(host), "{host}");
        }
    }

    #[test]
    fn durations_parse_in_every_unit() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("14d"), Ok(Duration::from_secs(14 * 86_400)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("3w").is_err());
    }
}
