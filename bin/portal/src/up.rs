//! `portal up`: the whole suite in one process, for trying it out and for local development.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, Parser};
use portal_runtime::auth::{TokenIssuer, load_or_create_keypair, write_private};
use portal_runtime::clock;
use portal_runtime::config::DatabaseArgs;
use portal_runtime::demo;
use portal_runtime::server::Shutdown;
use secrecy::ExposeSecret as _;

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Where the SQLite files, keys, tokens and the mail sink live.
    #[arg(long, env = "PORTAL_DATA_DIR", default_value = ".portal")]
    data_dir: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    #[arg(long, default_value_t = 50051)]
    identity_port: u16,
    #[arg(long, default_value_t = 50052)]
    subscription_port: u16,
    #[arg(long, default_value_t = 50053)]
    invitation_port: u16,
    /// Prometheus metrics of each service on its own port (`/metrics`).
    #[arg(long, default_value_t = 9091)]
    identity_metrics_port: u16,
    #[arg(long, default_value_t = 9092)]
    subscription_metrics_port: u16,
    #[arg(long, default_value_t = 9093)]
    invitation_metrics_port: u16,
    /// Skip seeding the demo trust.
    #[arg(long)]
    no_demo: bool,
    /// Print the calls between services this command wires, as JSON, and exit (the
    /// Kubernetes manifests are checked against it).
    #[arg(long, hide = true)]
    print_links: bool,
}

/// A call from one service to another: `caller` reaches `callee` at the URL given by
/// `flag` (`env` in the environment) and presents its own service token.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Link {
    pub caller: &'static str,
    pub callee: &'static str,
    pub flag: &'static str,
    pub env: &'static str,
}

/// Every service-to-service call of the suite. `portal up` wires exactly these, and
/// `.ci/check-k8s` checks that the manifests do too (URL, service token, NetworkPolicies).
pub const LINKS: [Link; 3] = [
    Link {
        caller: "subscription",
        callee: "identity",
        flag: "--identity-url",
        env: "PORTAL_IDENTITY_URL",
    },
    Link {
        caller: "invitation",
        callee: "identity",
        flag: "--identity-url",
        env: "PORTAL_IDENTITY_URL",
    },
    Link {
        caller: "invitation",
        callee: "subscription",
        flag: "--subscription-url",
        env: "PORTAL_SUBSCRIPTION_URL",
    },
];

/// The flags that wire `caller` to the services it calls: their URLs and its token.
fn links_of(
    caller: &str,
    url_of: impl Fn(&str) -> String,
    tokens: &std::collections::HashMap<&str, String>,
) -> anyhow::Result<Vec<String>> {
    let mut flags = Vec::new();
    for link in LINKS.iter().filter(|link| link.caller == caller) {
        flags.extend([link.flag.to_string(), url_of(link.callee)]);
    }
    if !flags.is_empty() {
        let token = tokens
            .get(caller)
            .with_context(|| format!("no service token for {caller}"))?;
        flags.extend(["--service-token".to_string(), token.clone()]);
    }
    Ok(flags)
}

/// Parses a service's configuration from flags, as its own subcommand would.
fn service_config<C: Args>(flags: Vec<String>) -> anyhow::Result<C> {
    #[derive(Parser)]
    struct Wrapper<C: Args> {
        #[command(flatten)]
        config: C,
    }
    let argv = std::iter::once("portal".to_string()).chain(flags);
    Ok(Wrapper::<C>::try_parse_from(argv)?.config)
}

/// Creates `dir` (and its parents) so that only its owner may enter it (0700 on Unix): the
/// data directory holds the signing key, service tokens, password hashes and emails with
/// sign-up links.
fn private_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    restrict(dir, 0o700)
}

/// Sets `path`'s permission bits (Unix only).
fn restrict(path: &Path, mode: u32) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("restricting {}", path.display()))?;
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

/// Makes each service's SQLite files (with their journals, when present) owner-only.
fn restrict_databases(data_dir: &Path) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(data_dir)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if path.is_file() && name.contains(".db") {
            restrict(&path, 0o600)?;
        }
    }
    Ok(())
}

fn database(data_dir: &Path, name: &str) -> DatabaseArgs {
    DatabaseArgs::with_max_connections(
        format!("sqlite:{}", data_dir.join(format!("{name}.db")).display()),
        8,
    )
}

pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    if args.print_links {
        println!("{}", serde_json::to_string_pretty(&LINKS)?);
        return Ok(());
    }
    let data = &args.data_dir;
    private_dir(data)?;
    let keys_dir = data.join("keys");
    private_dir(&keys_dir)?;
    let keys = load_or_create_keypair(&keys_dir)?;
    let issuer = TokenIssuer::from_pem(&keys.private_pem)?;
    let public_key = keys_dir.join("token-signing.pub.pem");
    let private_key = keys_dir.join("token-signing.pem");

    // Service tokens for the in-process callers, and for an operator trying the internal RPCs.
    let tokens_dir = data.join("tokens");
    private_dir(&tokens_dir)?;
    let mut tokens = std::collections::HashMap::new();
    for name in [
        "invitation",
        "subscription",
        "billing",
        "mis-sync",
        "operator",
    ] {
        let token = issuer
            .issue_service(name, chrono::Utc::now(), chrono::Duration::days(30))?
            .token;
        write_private(&tokens_dir.join(format!("{name}.token")), &token)?;
        tokens.insert(name, token);
    }

    let identity_db = database(data, "identity");
    let subscription_db = database(data, "subscription");
    let invitation_db = database(data, "invitation");
    portal_identity::migrate(&identity_db).await?;
    portal_subscription::migrate(&subscription_db).await?;
    portal_invitation::migrate(&invitation_db).await?;
    if !args.no_demo {
        portal_identity::seed_demo(&identity_db).await?;
        portal_subscription::seed_demo(&subscription_db).await?;
    }
    restrict_databases(data)?;

    let addr = |port| SocketAddr::new(args.host, port);
    let common = |port: u16, metrics_port: u16, db: &DatabaseArgs| {
        vec![
            "--listen".to_string(),
            addr(port).to_string(),
            "--admin-listen".to_string(),
            addr(metrics_port).to_string(),
            "--database-url".into(),
            db.url()
                .map(|url| url.expose_secret().to_string())
                .unwrap_or_default(),
            "--token-public-keys".into(),
            public_key.display().to_string(),
        ]
    };
    let url_of = |service: &str| {
        let port = match service {
            "identity" => args.identity_port,
            "subscription" => args.subscription_port,
            _ => args.invitation_port,
        };
        format!("http://{}", addr(port))
    };
    let mail_dir = data.join("mail");
    private_dir(&mail_dir)?;

    let mut flags = common(args.identity_port, args.identity_metrics_port, &identity_db);
    flags.extend([
        "--token-private-key".into(),
        private_key.display().to_string(),
    ]);
    flags.extend(links_of("identity", url_of, &tokens)?);
    let identity: portal_identity::Config = service_config(flags)?;

    let mut flags = common(
        args.subscription_port,
        args.subscription_metrics_port,
        &subscription_db,
    );
    flags.extend(links_of("subscription", url_of, &tokens)?);
    let subscription: portal_subscription::Config = service_config(flags)?;

    let mut flags = common(
        args.invitation_port,
        args.invitation_metrics_port,
        &invitation_db,
    );
    flags.extend(links_of("invitation", url_of, &tokens)?);
    flags.extend([
        "--mail-dir".into(),
        mail_dir.display().to_string(),
        "--link-base-url".into(),
        "http://localhost:8080/invitations/accept".into(),
    ]);
    let invitation: portal_invitation::Config = service_config(flags)?;

    let clock = clock::system();
    let identity = portal_identity::Application::build(identity, clock.clone()).await?;
    let subscription = portal_subscription::Application::build(subscription, clock.clone()).await?;
    let invitation = portal_invitation::Application::build(invitation, clock).await?;

    print_banner(
        &args,
        identity.local_addr(),
        subscription.local_addr(),
        invitation.local_addr(),
        &tokens_dir,
        &mail_dir,
    );

    let shutdown = Shutdown::new();
    shutdown.trigger_on_signals();
    // One service failing stops the others rather than leaving a half-working suite.
    let stop_all = |result: anyhow::Result<()>| {
        if result.is_err() {
            shutdown.trigger();
        }
        result
    };
    let (a, b, c) = tokio::join!(
        async { stop_all(identity.run(shutdown.clone()).await) },
        async { stop_all(subscription.run(shutdown.clone()).await) },
        async { stop_all(invitation.run(shutdown.clone()).await) },
    );
    a.context("identity")
        .and(b.context("subscription"))
        .and(c.context("invitation"))
}

fn print_banner(
    args: &UpArgs,
    identity: SocketAddr,
    subscription: SocketAddr,
    invitation: SocketAddr,
    tokens_dir: &Path,
    mail_dir: &Path,
) {
    println!();
    println!("Portal suite is up (data in {}):", args.data_dir.display());
    println!("  identity      {identity}   portal.identity.v1");
    println!("  subscription  {subscription}   portal.subscription.v1");
    println!("  invitation    {invitation}   portal.invitation.v1");
    println!(
        "Metrics: http://{host}:{}/metrics, :{}/metrics, :{}/metrics",
        args.identity_metrics_port,
        args.subscription_metrics_port,
        args.invitation_metrics_port,
        host = args.host
    );
    if !args.no_demo {
        println!();
        println!("Demo trust: {} ({})", demo::TRUST_NAME, demo::TRUST_ID);
        println!(
            "  administrator: {} / {}",
            demo::ADMIN_EMAIL,
            demo::ADMIN_PASSWORD
        );
    }
    println!();
    println!("Service tokens: {}/<name>.token", tokens_dir.display());
    println!("Outgoing mail:  {}/*.eml", mail_dir.display());
    println!("Try: grpcurl -plaintext {identity} list");
    println!("Stop with ctrl-c.");
    println!();
}

#[cfg(all(test, unix))]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[tokio::test]
    async fn the_data_directory_and_what_it_holds_are_readable_by_their_owner_only() {
        let scratch = tempfile::tempdir().unwrap();
        let data = scratch.path().join("data");
        private_dir(&data.join("tokens")).unwrap();
        private_dir(&data).unwrap();
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&data.join("tokens")), 0o700);
        write_private(&data.join("tokens/operator.token"), "token").unwrap();
        assert_eq!(mode(&data.join("tokens/operator.token")), 0o600);
        let identity = database(&data, "identity");
        portal_identity::migrate(&identity).await.unwrap();
        restrict_databases(&data).unwrap();
        assert_eq!(mode(&data.join("identity.db")), 0o600);
    }
}
