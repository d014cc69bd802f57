//! Test harness: the real identity server on 127.0.0.1:0 (SQLite, or PostgreSQL when
//! `PORTAL_TEST_DATABASE_URL` is set), token keys on disk, typed clients.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use portal_identity::{Application, Config};
use portal_proto::identity::v1 as pb;
use portal_proto::identity::v1::account_service_client::AccountServiceClient;
use portal_proto::identity::v1::directory_service_client::DirectoryServiceClient;
use portal_proto::identity::v1::grant_service_client::GrantServiceClient;
use portal_proto::identity::v1::staff_service_client::StaffServiceClient;
use portal_runtime::auth::BearerToken;
use portal_runtime::clock::ManualClock;
use portal_runtime::config::{DatabaseArgs, ServerArgs, TokenArgs};
use portal_runtime::error::{status_reason, status_violations};
use portal_runtime::server::Shutdown;
use portal_runtime::testkit::{TestKeys, wait_for_serving};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub type Authed = InterceptedService<Channel, BearerToken>;

pub struct Server {
    pub addr: std::net::SocketAddr,
    pub keys: TestKeys,
    pub clock: Arc<ManualClock>,
    pub database: DatabaseArgs,
    pub backend: &'static str,
    shutdown: Shutdown,
    channel: Channel,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

/// A database for one test: a fresh PostgreSQL schema when configured, else a SQLite file.
pub async fn database(dir: &std::path::Path) -> (DatabaseArgs, &'static str) {
    match portal_runtime::db::testing::postgres_url().await {
        Some(url) => (DatabaseArgs::with_max_connections(url, 8), "postgres"),
        None => (
            DatabaseArgs::with_max_connections(portal_runtime::db::testing::sqlite_url(dir), 8),
            "sqlite",
        ),
    }
}

pub fn config(keys: &TestKeys, database: DatabaseArgs) -> Config {
    Config {
        server: ServerArgs::local("127.0.0.1:0".parse().expect("address")),
        database,
        tokens: TokenArgs {
            token_public_keys: vec![keys.public_key_path.clone()],
        },
        token_private_key: keys.private_key_path.clone(),
        user_token_ttl: Duration::from_secs(3600),
        sign_in: Default::default(),
    }
}

/// Starts a server with the demo data seeded.
pub async fn start() -> Server {
    start_with(true).await
}

/// Starts a server on an empty database.
pub async fn start_empty() -> Server {
    start_with(false).await
}

async fn start_with(seed: bool) -> Server {
    start_configured(seed, |_| {}).await
}

/// Starts a server, letting the test adjust its configuration.
pub async fn start_configured(seed: bool, adjust: impl FnOnce(&mut Config)) -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    let keys = TestKeys::create(&dir.path().join("keys")).expect("keys");
    let (database, backend) = database(dir.path()).await;
    if seed {
        portal_identity::seed_demo(&database).await.expect("seed");
    }
    let clock = ManualClock::new(Utc::now());
    let mut config = config(&keys, database.clone());
    adjust(&mut config);
    let app = Application::build(config, clock.clone())
        .await
        .expect("build");
    let addr = app.local_addr();
    let shutdown = Shutdown::new();
    tokio::spawn(app.run(shutdown.clone()));
    wait_for_serving(addr, Duration::from_secs(20))
        .await
        .expect("serving");
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    Server {
        addr,
        keys,
        clock,
        database,
        backend,
        shutdown,
        channel,
        _dir: dir,
    }
}

fn bearer(token: Option<&str>) -> BearerToken {
    match token {
        Some(t) => BearerToken::new(t).expect("token"),
        None => BearerToken::none(),
    }
}

impl Server {
    pub fn service_token(&self, name: &str) -> String {
        self.keys.service_token(name)
    }

    pub fn user_token(&self, account_id: &str) -> String {
        self.keys.user_token(account_id)
    }

    pub fn directory(&self, token: Option<&str>) -> DirectoryServiceClient<Authed> {
        DirectoryServiceClient::with_interceptor(self.channel.clone(), bearer(token))
    }

    pub fn staff(&self, token: Option<&str>) -> StaffServiceClient<Authed> {
        StaffServiceClient::with_interceptor(self.channel.clone(), bearer(token))
    }

    pub fn accounts(&self, token: Option<&str>) -> AccountServiceClient<Authed> {
        AccountServiceClient::with_interceptor(self.channel.clone(), bearer(token))
    }

    /// An AccountService client without a token, connecting from `local` (another loopback
    /// address: another source).
    pub async fn accounts_from(&self, local: std::net::IpAddr) -> AccountServiceClient<Authed> {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", self.addr))
            .expect("endpoint")
            .local_address(Some(local))
            .connect()
            .await
            .expect("connect");
        AccountServiceClient::with_interceptor(channel, bearer(None))
    }

    pub fn grants(&self, token: Option<&str>) -> GrantServiceClient<Authed> {
        GrantServiceClient::with_interceptor(self.channel.clone(), bearer(token))
    }

    pub fn operator(&self) -> String {
        self.service_token("operator")
    }

    pub fn invitation(&self) -> String {
        self.service_token("invitation")
    }

    pub fn mis_sync(&self) -> String {
        self.service_token("mis-sync")
    }

    /// The account id of an email (through LookupAccount).
    pub async fn account_id(&self, email: &str) -> String {
        let token = self.invitation();
        let found = self
            .accounts(Some(&token))
            .lookup_account(pb::LookupAccountRequest {
                email: email.into(),
            })
            .await
            .expect("lookup")
            .into_inner();
        found.account.expect("account exists").id
    }

    /// A user token of the account with this email.
    pub async fn token_of(&self, email: &str) -> String {
        self.user_token(&self.account_id(email).await)
    }

    /// Creates a trust through the API and returns its id.
    pub async fn new_trust(&self, name: &str) -> String {
        let token = self.operator();
        self.directory(Some(&token))
            .create_trust(pb::CreateTrustRequest {
                name: name.into(),
                request_id: String::new(),
            })
            .await
            .expect("create trust")
            .into_inner()
            .trust
            .expect("trust")
            .id
    }

    /// Creates a school through the API and returns its id.
    pub async fn new_school(&self, trust_id: &str, name: &str) -> String {
        let token = self.operator();
        self.directory(Some(&token))
            .create_school(pb::CreateSchoolRequest {
                trust_id: trust_id.into(),
                name: name.into(),
                urn: None,
                request_id: String::new(),
            })
            .await
            .expect("create school")
            .into_inner()
            .school
            .expect("school")
            .id
    }

    /// Registers an account through the API and returns its id.
    pub async fn register(&self, email: &str, password: &str) -> String {
        let token = self.invitation();
        self.accounts(Some(&token))
            .register_account(pb::RegisterAccountRequest {
                email: email.into(),
                given_name: "Test".into(),
                family_name: "Person".into(),
                password: password.into(),
                invitation_id: String::new(),
            })
            .await
            .expect("register")
            .into_inner()
            .account
            .expect("account")
            .id
    }
}

pub fn record(mis_id: &str, given: &str, family: &str, email: &str) -> pb::StaffRecordInput {
    pb::StaffRecordInput {
        mis_id: mis_id.into(),
        given_name: given.into(),
        family_name: family.into(),
        email: email.into(),
        job_title: String::new(),
    }
}

/// Asserts a status code and returns the status for further checks.
#[track_caller]
pub fn expect_code<T: std::fmt::Debug>(
    result: Result<tonic::Response<T>, tonic::Status>,
    code: tonic::Code,
) -> tonic::Status {
    match result {
        Ok(response) => panic!("expected {code:?}, got {:?}", response.into_inner()),
        Err(status) => {
            assert_eq!(status.code(), code, "unexpected status: {status:?}");
            status
        }
    }
}

/// Asserts INVALID_ARGUMENT naming exactly these fields (in any order).
#[track_caller]
pub fn expect_violations<T: std::fmt::Debug>(
    result: Result<tonic::Response<T>, tonic::Status>,
    fields: &[&str],
) -> Vec<(String, String)> {
    let status = expect_code(result, tonic::Code::InvalidArgument);
    let violations = status_violations(&status);
    let mut got: Vec<&str> = violations.iter().map(|(f, _)| f.as_str()).collect();
    got.sort_unstable();
    let mut want = fields.to_vec();
    want.sort_unstable();
    assert_eq!(got, want, "violations: {violations:?}");
    violations
}

/// Asserts a status code with an ErrorInfo reason.
#[track_caller]
pub fn expect_reason<T: std::fmt::Debug>(
    result: Result<tonic::Response<T>, tonic::Status>,
    code: tonic::Code,
    reason: &str,
) -> tonic::Status {
    let status = expect_code(result, code);
    assert_eq!(
        status_reason(&status).as_deref(),
        Some(reason),
        "{status:?}"
    );
    status
}
