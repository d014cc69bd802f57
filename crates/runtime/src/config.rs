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
}

impl ServerArgs {
    /// Settings for a server on `listen` with every other value at its default (tests, `up`).
    pub fn local(listen: SocketAddr) -> Self {
        Self {
            listen,
            admin_listen: None,
            request_timeout: Duration::from_secs(10),
            concurrency_limit: 512,
            shutdown_delay: Duration::ZERO,
            drain_timeout: Duration::from_secs(20),
            max_connection_age: Duration::from_secs(300),
        }
    }
}

/// Where a service keeps its data.
#[derive(Debug, Clone, clap::Args)]
pub struct DatabaseArgs {
    /// `sqlite:PATH` or `postgres://user@host/db` (it may carry a password: held as a secret).
    #[arg(long, env = "PORTAL_DATABASE_URL", value_parser = parse_secret)]
    pub database_url: SecretString,

    /// Largest number of pooled connections.
    #[arg(long, env = "PORTAL_DATABASE_MAX_CONNECTIONS", default_value_t = 16)]
    pub database_max_connections: u32,
}

impl DatabaseArgs {
    /// `url` with the default pool size.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            database_url: SecretString::from(url.into()),
            database_max_connections: 16,
        }
    }

    pub fn settings(&self) -> DbSettings {
        DbSettings {
            max_connections: self.database_max_connections,
            ..DbSettings::new(self.database_url.expose_secret())
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

/// Reads a secret from a file path or, when it does not name a file, takes it as the value.
pub fn read_secret(value: &SecretString) -> anyhow::Result<SecretString> {
    let value = value.expose_secret();
    let path = std::path::Path::new(value);
    if path.is_file() {
        Ok(SecretString::from(std::fs::read_to_string(path)?.trim()))
    } else {
        Ok(SecretString::from(value.trim()))
    }
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
    fn a_secret_is_read_from_the_file_it_names_or_taken_as_given() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "from-the-file\n").unwrap();
        let named = SecretString::from(file.display().to_string());
        assert_eq!(
            read_secret(&named).unwrap().expose_secret(),
            "from-the-file"
        );
        let given = SecretString::from(" literal ");
        assert_eq!(read_secret(&given).unwrap().expose_secret(), "literal");
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
