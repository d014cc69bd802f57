//! `portal`: every Portal service and operator command in one binary.

mod ops;
mod up;

use clap::{Parser, Subcommand};
use portal_runtime::clock;
use portal_runtime::server::Shutdown;
use portal_runtime::telemetry::{self, LogFormat, TelemetryArgs};

#[derive(Debug, Parser)]
#[command(
    name = "portal",
    version,
    about = "Invite a trust's staff to its products, and fan access out to its subscribed schools."
)]
struct Cli {
    #[command(flatten)]
    telemetry: TelemetryArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run all three services in one process on local ports, with SQLite files and demo data.
    Up(up::UpArgs),
    /// Run the identity service (trusts, schools, staff directory, accounts, grants).
    Identity(Box<portal_identity::Config>),
    /// Run the subscription service (catalogue, subscriptions, eligibility).
    Subscription(Box<portal_subscription::Config>),
    /// Run the invitation service (invitations, links, email outbox).
    Invitation(Box<portal_invitation::Config>),
    /// Apply a service's database migrations and exit.
    Migrate(ops::MigrateArgs),
    /// Token signing keys and service tokens.
    #[command(subcommand)]
    Token(ops::TokenCommand),
    /// Administrator accounts.
    #[command(subcommand)]
    Admin(ops::AdminCommand),
    /// The trust's MIS staff directory.
    #[command(subcommand)]
    Staff(ops::StaffCommand),
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Up(args) => {
            let _guard = telemetry::init(&cli.telemetry, "portal", LogFormat::Pretty)?;
            up::run(args).await
        }
        Command::Identity(config) => {
            let _guard = telemetry::init(&cli.telemetry, "portal-identity", LogFormat::Json)?;
            let app = portal_identity::Application::build(*config, clock::system()).await?;
            app.run(shutdown_on_signals()).await
        }
        Command::Subscription(config) => {
            let _guard = telemetry::init(&cli.telemetry, "portal-subscription", LogFormat::Json)?;
            let app = portal_subscription::Application::build(*config, clock::system()).await?;
            app.run(shutdown_on_signals()).await
        }
        Command::Invitation(config) => {
            let _guard = telemetry::init(&cli.telemetry, "portal-invitation", LogFormat::Json)?;
            let app = portal_invitation::Application::build(*config, clock::system()).await?;
            app.run(shutdown_on_signals()).await
        }
        Command::Migrate(args) => {
            let _guard = telemetry::init(&cli.telemetry, "portal", LogFormat::Pretty)?;
            ops::migrate(args).await
        }
        Command::Token(command) => ops::token(command),
        Command::Admin(command) => {
            let _guard = telemetry::init(&cli.telemetry, "portal", LogFormat::Pretty)?;
            ops::admin(command).await
        }
        Command::Staff(command) => ops::staff(command).await,
    }
}

fn shutdown_on_signals() -> Shutdown {
    let shutdown = Shutdown::new();
    shutdown.trigger_on_signals();
    shutdown
}

#[global_allocator]
static ALLOC: portal_runtime::alloc::Allocator = portal_runtime::alloc::Allocator;
