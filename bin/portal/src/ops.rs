//! Operator commands: migrations, token keys and service tokens, the first administrator, and
//! staff import from a CSV.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use portal_proto::identity::v1::staff_service_client::StaffServiceClient;
use portal_proto::identity::v1::{StaffRecordInput, StreamSyncStaffRequest};
use portal_runtime::auth::{TokenIssuer, generate_keypair};
use portal_runtime::client::{ClientSettings, authed_channel};
use portal_runtime::config::{
    DatabaseArgs, parse_duration, parse_secret, read_secret_file, secret_from,
};
use portal_runtime::error::status_violations;
use secrecy::{ExposeSecret as _, SecretString};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ServiceName {
    Identity,
    Subscription,
    Invitation,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Which service's database to migrate.
    #[arg(long, value_enum)]
    service: ServiceName,
    #[command(flatten)]
    database: DatabaseArgs,
}

pub async fn migrate(args: MigrateArgs) -> anyhow::Result<()> {
    match args.service {
        ServiceName::Identity => portal_identity::migrate(&args.database).await?,
        ServiceName::Subscription => portal_subscription::migrate(&args.database).await?,
        ServiceName::Invitation => portal_invitation::migrate(&args.database).await?,
    }
    println!("{:?} database migrated", args.service);
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Issue a service token (the bearer token another service or job presents).
    Issue {
        /// The calling service: `invitation`, `billing`, `mis-sync`, `operator`, ...
        #[arg(long)]
        service: String,
        /// The Ed25519 private key (PEM) the identity service signs with.
        #[arg(long, env = "PORTAL_TOKEN_PRIVATE_KEY")]
        private_key: PathBuf,
        /// How long the token is valid.
        #[arg(long, default_value = "90d", value_parser = parse_duration)]
        ttl: Duration,
    },
    /// Generate a new token signing key pair (private and public PEM files).
    GenerateKeys {
        /// Directory to write `token-signing.pem` and `token-signing.pub.pem` into.
        #[arg(long)]
        dir: PathBuf,
    },
}

pub fn token(command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Issue {
            service,
            private_key,
            ttl,
        } => {
            anyhow::ensure!(
                !service.is_empty()
                    && service
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "--service must be a lower-case name such as `invitation`"
            );
            let pem = std::fs::read_to_string(&private_key)
                .with_context(|| format!("reading {}", private_key.display()))?;
            let issuer = TokenIssuer::from_pem(&pem)?;
            let ttl = chrono::Duration::from_std(ttl)?;
            let token = issuer.issue_service(&service, chrono::Utc::now(), ttl)?;
            eprintln!(
                "service token for `{service}`, valid until {}",
                token.expires_at.to_rfc3339()
            );
            println!("{}", token.token);
            Ok(())
        }
        TokenCommand::GenerateKeys { dir } => {
            let private = dir.join("token-signing.pem");
            anyhow::ensure!(
                !private.exists(),
                "{} already exists; refusing to overwrite a signing key",
                private.display()
            );
            std::fs::create_dir_all(&dir)?;
            let pair = generate_keypair()?;
            write_owner_only(&private, &pair.private_pem)?;
            std::fs::write(dir.join("token-signing.pub.pem"), &pair.public_pem)?;
            println!(
                "wrote {} and {}",
                private.display(),
                dir.join("token-signing.pub.pem").display()
            );
            Ok(())
        }
    }
}

fn write_owner_only(path: &std::path::Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(contents.as_bytes())?;
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create (or reuse) an account and make it Portal Account Owner of a trust at trust level.
    Bootstrap {
        /// The trust's id.
        #[arg(long)]
        trust: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        given_name: String,
        #[arg(long)]
        family_name: String,
        /// The password (never shown by --help).
        #[arg(
            long,
            env = "PORTAL_ADMIN_PASSWORD",
            hide_env_values = true,
            value_parser = parse_secret,
            required_unless_present = "password_file",
            conflicts_with = "password_file"
        )]
        password: Option<SecretString>,
        /// A file holding the password; a missing file is an error.
        #[arg(long, env = "PORTAL_ADMIN_PASSWORD_FILE", value_name = "PATH", value_parser = read_secret_file)]
        password_file: Option<SecretString>,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

pub async fn admin(command: AdminCommand) -> anyhow::Result<()> {
    match command {
        AdminCommand::Bootstrap {
            trust,
            email,
            given_name,
            family_name,
            password,
            password_file,
            database,
        } => {
            let password = secret_from(password.as_ref(), password_file.as_ref())
                .context("no password: set --password or --password-file")?;
            portal_identity::migrate(&database).await?;
            let account_id = portal_identity::bootstrap_admin(
                &database,
                &trust,
                &email,
                &given_name,
                &family_name,
                password.expose_secret(),
            )
            .await?;
            println!("account {account_id} is Portal Account Owner of trust {trust}");
            Ok(())
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum StaffCommand {
    /// Replace a trust's staff directory with the records of a CSV file (a full snapshot:
    /// staff absent from the file are marked as having left).
    Import {
        /// The trust's id.
        #[arg(long)]
        trust: String,
        /// CSV with a header row: mis_id,given_name,family_name,email,job_title.
        file: PathBuf,
        /// The identity service.
        #[arg(
            long,
            env = "PORTAL_IDENTITY_URL",
            default_value = "http://127.0.0.1:50051"
        )]
        identity_url: String,
        /// A `mis-sync` or `operator` service token (never shown by --help).
        #[arg(
            long,
            env = "PORTAL_TOKEN",
            hide_env_values = true,
            value_parser = parse_secret,
            required_unless_present = "token_file",
            conflicts_with = "token_file"
        )]
        token: Option<SecretString>,
        /// A file holding that token; a missing file is an error.
        #[arg(long, env = "PORTAL_TOKEN_FILE", value_name = "PATH", value_parser = read_secret_file)]
        token_file: Option<SecretString>,
        /// Records per streamed message.
        #[arg(long, default_value_t = 2000)]
        chunk_size: usize,
    },
}

#[derive(Debug, serde::Deserialize)]
struct CsvRecord {
    mis_id: String,
    given_name: String,
    family_name: String,
    email: String,
    #[serde(default)]
    job_title: String,
}

pub async fn staff(command: StaffCommand) -> anyhow::Result<()> {
    let StaffCommand::Import {
        trust,
        file,
        identity_url,
        token,
        token_file,
        chunk_size,
    } = command;
    let token = secret_from(token.as_ref(), token_file.as_ref())
        .context("no token: set --token or --token-file")?;
    let mut reader =
        csv::Reader::from_path(&file).with_context(|| format!("opening {}", file.display()))?;
    let mut records = Vec::new();
    for (row, record) in reader.deserialize::<CsvRecord>().enumerate() {
        let r = record.with_context(|| format!("{} row {}", file.display(), row + 2))?;
        records.push(StaffRecordInput {
            mis_id: r.mis_id,
            given_name: r.given_name,
            family_name: r.family_name,
            email: r.email,
            job_title: r.job_title,
        });
    }
    let total = records.len() as u64;
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{bar:40}] {pos}/{len} records ({per_sec})")?
            .progress_chars("=> "),
    );
    bar.set_message("sending");

    let mut settings = ClientSettings::new(identity_url);
    settings.call_timeout = Duration::from_secs(600);
    let channel = authed_channel(&settings, token.expose_secret())?;
    let mut client = StaffServiceClient::new(channel);

    let chunk_size = chunk_size.max(1);
    let chunks: Vec<Vec<StaffRecordInput>> = records
        .chunks(chunk_size)
        .map(<[StaffRecordInput]>::to_vec)
        .collect();
    let progress = bar.clone();
    let stream = tokio_stream::iter(chunks.into_iter().map(move |chunk| {
        progress.inc(chunk.len() as u64);
        StreamSyncStaffRequest {
            trust_id: trust.clone(),
            records: chunk,
        }
    }));
    let response = client.stream_sync_staff(stream).await;
    bar.finish_and_clear();
    match response {
        Ok(response) => {
            let summary = response.into_inner().summary.unwrap_or_default();
            println!(
                "received {}: {} added, {} updated, {} marked left, {} unchanged",
                summary.received,
                summary.added,
                summary.updated,
                summary.marked_left,
                summary.unchanged
            );
            Ok(())
        }
        Err(status) => {
            for (field, description) in status_violations(&status).iter().take(50) {
                eprintln!("  {field}: {description}");
            }
            anyhow::bail!("import refused: {:?}: {}", status.code(), status.message())
        }
    }
}
