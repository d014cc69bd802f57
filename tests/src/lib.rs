//! Harness of the cross-service tests: the identity, subscription and invitation services
//! started for real on 127.0.0.1:0 with demo data, one shared manual clock, a mail directory
//! the tests read, and proxies in front of identity and subscription that can fail calls on
//! demand.

use std::collections::HashSet;
use std::convert::Infallible;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use portal_proto::identity::v1 as id;
use portal_proto::invitation::v1 as inv;
use portal_proto::subscription::v1 as sub;
use portal_runtime::auth::BearerToken;
use portal_runtime::clock::ManualClock;
use portal_runtime::config::{DatabaseArgs, ServerArgs, TokenArgs};
use portal_runtime::db::testing;
use portal_runtime::server::{Bound, Shutdown};
use portal_runtime::testkit::{TestKeys, wait_for_serving};

pub use portal_runtime::demo;

/// Which database the services run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// Every backend available here: SQLite always, PostgreSQL when
    /// `PORTAL_TEST_DATABASE_URL` is set.
    pub fn all() -> Vec<Backend> {
        let mut out = vec![Backend::Sqlite];
        if std::env::var(testing::POSTGRES_URL_VAR).is_ok_and(|u| !u.is_empty()) {
            out.push(Backend::Postgres);
        }
        out
    }
}

/// A client with a bearer token (or none).
pub type Authed = InterceptedService<Channel, BearerToken>;
pub type InvitationClient = inv::invitation_service_client::InvitationServiceClient<Authed>;
pub type AccountClient = id::account_service_client::AccountServiceClient<Authed>;
pub type GrantClient = id::grant_service_client::GrantServiceClient<Authed>;
pub type AccessClient = id::access_service_client::AccessServiceClient<Authed>;
pub type StaffClient = id::staff_service_client::StaffServiceClient<Authed>;
pub type SubscriptionClient = sub::subscription_service_client::SubscriptionServiceClient<Authed>;
pub type EligibilityClient = sub::eligibility_service_client::EligibilityServiceClient<Authed>;

/// Failures injected into calls that pass a proxy.
#[derive(Debug, Default)]
pub struct Faults {
    down: AtomicBool,
    hang: AtomicBool,
    failing: Mutex<HashSet<String>>,
    /// The path of every call that reached the proxy, in order.
    calls: Mutex<Vec<String>>,
}

impl Faults {
    /// Every call fails with UNAVAILABLE.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// Every call hangs (until the caller's deadline).
    pub fn set_hang(&self, hang: bool) {
        self.hang.store(hang, Ordering::SeqCst);
    }

    /// Calls of one method (`GrantService/BatchGrant`) fail with UNAVAILABLE.
    pub fn fail_method(&self, method: &str) {
        self.failing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(method.to_string());
    }

    /// No more failures.
    pub fn heal(&self) {
        self.set_down(false);
        self.set_hang(false);
        self.failing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// The paths (`/package.Service/Method`) of the calls that reached the proxy so far.
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn record(&self, path: &str) {
        self.calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(path.to_string());
    }

    fn fails(&self, path: &str) -> bool {
        self.down.load(Ordering::SeqCst)
            || self
                .failing
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .any(|m| path.ends_with(m.as_str()))
    }
}

trait ServiceName: Send + Sync + 'static {
    const NAME: &'static str;
}

macro_rules! service_names {
    ($($ty:ident = $name:literal),* $(,)?) => {
        $( struct $ty; impl ServiceName for $ty { const NAME: &'static str = $name; } )*
    };
}

service_names!(
    DirectoryName = "portal.identity.v1.DirectoryService",
    StaffName = "portal.identity.v1.StaffService",
    AccountName = "portal.identity.v1.AccountService",
    GrantName = "portal.identity.v1.GrantService",
    CatalogName = "portal.subscription.v1.CatalogService",
    EligibilityName = "portal.subscription.v1.EligibilityService",
    SubscriptionName = "portal.subscription.v1.SubscriptionService",
);

/// Forwards one gRPC service's calls to the real server unless a fault says otherwise.
struct Forward<N> {
    upstream: Channel,
    faults: Arc<Faults>,
    _name: PhantomData<fn() -> N>,
}

impl<N> Clone for Forward<N> {
    fn clone(&self) -> Self {
        Self {
            upstream: self.upstream.clone(),
            faults: self.faults.clone(),
            _name: PhantomData,
        }
    }
}

impl<N: ServiceName> NamedService for Forward<N> {
    const NAME: &'static str = N::NAME;
}

impl<N: ServiceName> tower::Service<http::Request<Body>> for Forward<N> {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let upstream = self.upstream.clone();
        let faults = self.faults.clone();
        faults.record(request.uri().path());
        Box::pin(async move {
            if faults.hang.load(Ordering::SeqCst) {
                futures::future::pending::<()>().await;
            }
            if faults.fails(request.uri().path()) {
                return Ok(tonic::Status::unavailable("injected failure").into_http());
            }
            match tower::ServiceExt::oneshot(upstream, request).await {
                Ok(response) => Ok(response),
                Err(error) => Ok(tonic::Status::unavailable(error.to_string()).into_http()),
            }
        })
    }
}

fn forward<N: ServiceName>(upstream: &Channel, faults: &Arc<Faults>) -> Forward<N> {
    Forward {
        upstream: upstream.clone(),
        faults: faults.clone(),
        _name: PhantomData,
    }
}

/// Starts a proxy for the named services of `upstream`; returns its address.
async fn start_proxy(
    upstream: SocketAddr,
    identity: bool,
    faults: Arc<Faults>,
    shutdown: Shutdown,
) -> anyhow::Result<SocketAddr> {
    let channel = Endpoint::from_shared(format!("http://{upstream}"))?.connect_lazy();
    let routes = if identity {
        tonic::service::Routes::new(forward::<DirectoryName>(&channel, &faults))
            .add_service(forward::<StaffName>(&channel, &faults))
            .add_service(forward::<AccountName>(&channel, &faults))
            .add_service(forward::<GrantName>(&channel, &faults))
    } else {
        tonic::service::Routes::new(forward::<CatalogName>(&channel, &faults))
            .add_service(forward::<EligibilityName>(&channel, &faults))
            .add_service(forward::<SubscriptionName>(&channel, &faults))
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_routes(routes)
            .serve_with_incoming_shutdown(tokio_stream_wrapper(listener), async move {
                shutdown.wait().await
            })
            .await;
    });
    Ok(addr)
}

fn tokio_stream_wrapper(
    listener: tokio::net::TcpListener,
) -> impl futures::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures::stream::unfold(listener, |listener| async move {
        let accepted = listener.accept().await.map(|(stream, _)| {
            let _ = stream.set_nodelay(true);
            stream
        });
        Some((accepted, listener))
    })
}

/// A parsed email from the mail directory.
#[derive(Debug, Clone)]
pub struct Mail {
    pub file: PathBuf,
    pub to: String,
    pub subject: String,
    /// The message with quoted-printable soft breaks and `=3D` undone.
    pub text: String,
}

impl Mail {
    /// The sign-up link token the email carries, if any.
    pub fn link_token(&self) -> Option<String> {
        let at = self.text.find("?token=")? + "?token=".len();
        let token: String = self.text[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        (!token.is_empty()).then_some(token)
    }
}

/// Reads every email of a mail directory, oldest first.
pub fn read_mail_dir(dir: &Path) -> Vec<Mail> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .filter_map(|file| {
            let raw = std::fs::read_to_string(&file).ok()?;
            Some(parse_mail(file, &raw))
        })
        .collect()
}

/// Reads a message (RFC 5322, as lettre or aiosmtpd writes it) far enough for the tests.
pub fn parse_mail(file: PathBuf, raw: &str) -> Mail {
    let header = |name: &str| {
        raw.lines()
            .find_map(|l| {
                l.strip_prefix(name)
                    .map(|v| v.trim().to_string())
                    .filter(|_| true)
            })
            .unwrap_or_default()
    };
    let text = raw
        .replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=");
    Mail {
        file,
        to: header("To: ").to_lowercase(),
        subject: header("Subject: "),
        text,
    }
}

/// The three services, started with demo data.
pub struct Suite {
    pub backend: Backend,
    pub dir: tempfile::TempDir,
    pub keys: TestKeys,
    pub clock: Arc<ManualClock>,
    pub identity_addr: SocketAddr,
    pub subscription_addr: SocketAddr,
    pub invitation_addr: SocketAddr,
    /// Failures injected between invitation and identity.
    pub identity_faults: Arc<Faults>,
    /// Failures injected between invitation and subscription.
    pub subscription_faults: Arc<Faults>,
    /// Where the invitation service writes emails.
    pub mail_dir: PathBuf,
    /// The invitation service's configuration (to start another replica on its database).
    pub invitation_config: portal_invitation::Config,
    pub shutdown: Shutdown,
}

impl Drop for Suite {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

async fn database(backend: Backend, dir: &Path, name: &str) -> DatabaseArgs {
    let url = match backend {
        Backend::Sqlite => {
            let sub = dir.join(name);
            std::fs::create_dir_all(&sub).expect("creating a database directory");
            testing::sqlite_url(&sub)
        }
        Backend::Postgres => testing::postgres_url()
            .await
            .expect("PORTAL_TEST_DATABASE_URL is set"),
    };
    DatabaseArgs::with_max_connections(url, 8)
}

fn local() -> ServerArgs {
    ServerArgs::local("127.0.0.1:0".parse().expect("a socket address"))
}

impl Suite {
    /// Starts the suite on `backend` with default invitation settings.
    pub async fn start(backend: Backend) -> Suite {
        Self::start_with(backend, |_| {}).await
    }

    /// Starts the suite, letting the test adjust the invitation service's configuration.
    pub async fn start_with(
        backend: Backend,
        adjust: impl FnOnce(&mut portal_invitation::Config),
    ) -> Suite {
        Self::try_start(backend, adjust)
            .await
            .expect("starting the suite")
    }

    async fn try_start(
        backend: Backend,
        adjust: impl FnOnce(&mut portal_invitation::Config),
    ) -> anyhow::Result<Suite> {
        let dir = tempfile::tempdir()?;
        let keys = TestKeys::create(&dir.path().join("keys"))?;
        let tokens = TokenArgs {
            token_public_keys: vec![keys.public_key_path.clone()],
        };
        let clock = ManualClock::new(chrono::Utc::now());
        let shutdown = Shutdown::new();

        let identity_db = database(backend, dir.path(), "identity").await;
        let subscription_db = database(backend, dir.path(), "subscription").await;
        let invitation_db = database(backend, dir.path(), "invitation").await;
        portal_identity::seed_demo(&identity_db).await?;
        portal_subscription::seed_demo(&subscription_db).await?;
        portal_invitation::seed_demo(&invitation_db).await?;

        let identity = portal_identity::Application::build(
            portal_identity::Config {
                server: local(),
                database: identity_db,
                tokens: tokens.clone(),
                token_private_key: keys.private_key_path.clone(),
                user_token_ttl: Duration::from_secs(3600),
                sign_in: Default::default(),
            },
            clock.clone(),
        )
        .await?;
        let identity_addr = identity.local_addr();
        let subscription = portal_subscription::Application::build(
            portal_subscription::Config {
                server: local(),
                database: subscription_db,
                tokens: tokens.clone(),
                identity_url: Some(format!("http://{identity_addr}")),
                service_token: Some(keys.service_token("subscription").into()),
                service_token_file: None,
                views: Default::default(),
            },
            clock.clone(),
        )
        .await?;
        let subscription_addr = subscription.local_addr();
        tokio::spawn(identity.run(shutdown.clone()));
        tokio::spawn(subscription.run(shutdown.clone()));

        let identity_faults = Arc::new(Faults::default());
        let subscription_faults = Arc::new(Faults::default());
        let identity_proxy = start_proxy(
            identity_addr,
            true,
            identity_faults.clone(),
            shutdown.clone(),
        )
        .await?;
        let subscription_proxy = start_proxy(
            subscription_addr,
            false,
            subscription_faults.clone(),
            shutdown.clone(),
        )
        .await?;

        let mail_dir = dir.path().join("mail");
        let mut config = portal_invitation::Config::new(
            local(),
            invitation_db,
            tokens,
            format!("http://{identity_proxy}"),
            format!("http://{subscription_proxy}"),
            keys.service_token("invitation"),
        );
        config.mail_dir = Some(mail_dir.clone());
        config.link_base_url = "https://portal.example.org/invitations/accept".into();
        config.worker_interval = Duration::from_millis(100);
        config.call_timeout = Duration::from_secs(2);
        adjust(&mut config);
        let invitation =
            portal_invitation::Application::build(config.clone(), clock.clone()).await?;
        let invitation_addr = invitation.local_addr();
        tokio::spawn(invitation.run(shutdown.clone()));

        for addr in [identity_addr, subscription_addr, invitation_addr] {
            wait_for_serving(addr, Duration::from_secs(30)).await?;
        }
        Ok(Suite {
            backend,
            dir,
            keys,
            clock,
            identity_addr,
            subscription_addr,
            invitation_addr,
            identity_faults,
            subscription_faults,
            mail_dir,
            invitation_config: config,
            shutdown,
        })
    }

    /// Starts another invitation replica on the same database and services; returns its
    /// address once SERVING.
    pub async fn start_invitation_replica(&self) -> SocketAddr {
        let app = portal_invitation::Application::build(
            self.invitation_config.clone(),
            self.clock.clone(),
        )
        .await
        .expect("building a replica");
        let addr = app.local_addr();
        tokio::spawn(app.run(self.shutdown.clone()));
        wait_for_serving(addr, Duration::from_secs(30))
            .await
            .expect("replica SERVING");
        addr
    }

    fn channel(addr: SocketAddr, token: Option<&str>) -> Authed {
        let channel = Endpoint::from_shared(format!("http://{addr}"))
            .expect("a URL")
            .timeout(Duration::from_secs(20))
            .connect_lazy();
        let bearer = match token {
            Some(token) => BearerToken::new(token).expect("a token"),
            None => BearerToken::none(),
        };
        InterceptedService::new(channel, bearer)
    }

    /// The invitation service, calling with `token` (None: no bearer token).
    pub fn invitations(&self, token: Option<&str>) -> InvitationClient {
        InvitationClient::new(Self::channel(self.invitation_addr, token))
    }

    /// An invitation replica at `addr`.
    pub fn invitations_at(&self, addr: SocketAddr, token: Option<&str>) -> InvitationClient {
        InvitationClient::new(Self::channel(addr, token))
    }

    pub fn accounts(&self, token: Option<&str>) -> AccountClient {
        AccountClient::new(Self::channel(self.identity_addr, token))
    }

    pub fn grants(&self, token: Option<&str>) -> GrantClient {
        GrantClient::new(Self::channel(self.identity_addr, token))
    }

    pub fn access(&self, token: Option<&str>) -> AccessClient {
        AccessClient::new(Self::channel(self.identity_addr, token))
    }

    pub fn staff(&self, token: Option<&str>) -> StaffClient {
        StaffClient::new(Self::channel(self.identity_addr, token))
    }

    pub fn eligibility(&self, token: Option<&str>) -> EligibilityClient {
        EligibilityClient::new(Self::channel(self.subscription_addr, token))
    }

    pub fn subscriptions(&self, token: Option<&str>) -> SubscriptionClient {
        SubscriptionClient::new(Self::channel(self.subscription_addr, token))
    }

    /// A service token of `name` signed by the suite's key.
    pub fn service_token(&self, name: &str) -> String {
        self.keys.service_token(name)
    }

    /// Signs in and returns the user token.
    pub async fn sign_in(&self, email: &str, password: &str) -> Result<String, tonic::Status> {
        let reply = self
            .accounts(None)
            .sign_in(id::SignInRequest {
                email: email.into(),
                password: password.into(),
            })
            .await?;
        Ok(reply.into_inner().access_token)
    }

    /// Signs in and returns the user token and the account id.
    pub async fn sign_in_account(&self, email: &str, password: &str) -> (String, String) {
        let reply = self
            .accounts(None)
            .sign_in(id::SignInRequest {
                email: email.into(),
                password: password.into(),
            })
            .await
            .expect("signing in")
            .into_inner();
        let account_id = reply.account.map(|a| a.id).unwrap_or_default();
        (reply.access_token, account_id)
    }

    /// The demo trust's administrator's token.
    pub async fn admin(&self) -> String {
        self.sign_in(demo::ADMIN_EMAIL, demo::ADMIN_PASSWORD)
            .await
            .expect("the demo admin signs in")
    }

    /// Every email sent so far, oldest first.
    pub fn emails(&self) -> Vec<Mail> {
        read_mail_dir(&self.mail_dir)
    }

    /// The emails sent to `address`, oldest first.
    pub fn emails_to(&self, address: &str) -> Vec<Mail> {
        let address = address.to_lowercase();
        self.emails()
            .into_iter()
            .filter(|m| m.to == address)
            .collect()
    }

    /// Waits until `address` has received `count` emails; returns them.
    pub async fn wait_for_emails(&self, address: &str, count: usize) -> Vec<Mail> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let mails = self.emails_to(address);
            if mails.len() >= count {
                return mails;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{address} received {} emails, expected {count}",
                mails.len()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The link token of the newest email to `address`, waiting for the `count`th email.
    pub async fn link_for(&self, address: &str, count: usize) -> String {
        self.wait_for_emails(address, count)
            .await
            .last()
            .and_then(Mail::link_token)
            .expect("the email carries a sign-up link")
    }

    /// Polls `check` until it returns Some, for at most 15 s.
    pub async fn eventually<T, F, Fut>(&self, what: &str, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(value) = check().await {
                return value;
            }
            assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// A person's access as identity lists it (service view): (org id, product, role, status).
    pub async fn access_of(&self, account_id: &str) -> Vec<(String, String, String, i32)> {
        let reply = self
            .grants(Some(&self.service_token("invitation")))
            .list_access(id::ListAccessRequest {
                account_id: account_id.into(),
                page_size: 500,
                page_token: String::new(),
            })
            .await
            .expect("listing access")
            .into_inner();
        let mut out = Vec::new();
        for org in reply.access {
            for p in org.products {
                out.push((
                    org.organization_id.clone(),
                    p.product_key,
                    p.role_key,
                    p.status,
                ));
            }
        }
        out.sort();
        out
    }
}

/// The demo trust's MIS snapshot as seeded, as a sync sends it.
pub fn demo_snapshot() -> Vec<id::StaffRecordInput> {
    demo::STAFF
        .iter()
        .map(|s| id::StaffRecordInput {
            mis_id: s.1.into(),
            given_name: s.2.into(),
            family_name: s.3.into(),
            email: s.4.into(),
            job_title: s.5.into(),
        })
        .collect()
}

/// A staff record of the demo trust's MIS beyond the seeded ones: `MIS9<n>`,
/// `new.starter<n>@northfield.example.org`.
pub fn new_starter(n: usize) -> id::StaffRecordInput {
    id::StaffRecordInput {
        mis_id: format!("MIS9{n:03}"),
        given_name: "New".into(),
        family_name: format!("Starter{n}"),
        email: format!("new.starter{n}@northfield.example.org"),
        job_title: "Teacher".into(),
    }
}

impl Suite {
    /// Replaces the demo trust's MIS snapshot (as the MIS sync job does).
    pub async fn sync_staff(&self, records: Vec<id::StaffRecordInput>) -> id::SyncSummary {
        self.sync_staff_of(demo::TRUST_ID, records).await
    }

    /// Replaces a trust's MIS snapshot.
    pub async fn sync_staff_of(
        &self,
        trust_id: &str,
        records: Vec<id::StaffRecordInput>,
    ) -> id::SyncSummary {
        self.staff(Some(&self.service_token("mis-sync")))
            .sync_staff(id::SyncStaffRequest {
                trust_id: trust_id.into(),
                records,
            })
            .await
            .expect("the sync is applied")
            .into_inner()
            .summary
            .expect("a summary")
    }

    /// The id of the demo trust's staff member with `email`.
    pub async fn staff_id_of(&self, email: &str) -> String {
        self.staff_id_in(demo::TRUST_ID, email).await
    }

    /// The id of a trust's staff member with `email`.
    pub async fn staff_id_in(&self, trust_id: &str, email: &str) -> String {
        self.staff(Some(&self.service_token("invitation")))
            .list_staff_members(id::ListStaffMembersRequest {
                trust_id: trust_id.into(),
                email: email.into(),
                ..Default::default()
            })
            .await
            .expect("listing staff")
            .into_inner()
            .staff_members
            .into_iter()
            .next()
            .map(|s| s.id)
            .expect("the staff member is in the directory")
    }

    /// Adds `count` new starters to the demo trust's MIS (the seeded staff stay); returns
    /// their (staff id, email).
    pub async fn add_new_starters(&self, count: usize) -> Vec<(String, String)> {
        let mut records = demo_snapshot();
        records.extend((0..count).map(new_starter));
        self.sync_staff(records).await;
        let mut out = Vec::new();
        for n in 0..count {
            let email = new_starter(n).email;
            out.push((self.staff_id_of(&email).await, email));
        }
        out
    }

    /// Whether identity has an account for `email`.
    pub async fn has_account(&self, email: &str) -> bool {
        self.accounts(Some(&self.service_token("invitation")))
            .lookup_account(id::LookupAccountRequest {
                email: email.into(),
            })
            .await
            .expect("looking up an account")
            .into_inner()
            .found
    }
}

/// The demo staff member at `index`: (id, email, given name).
pub fn staff(index: usize) -> (&'static str, &'static str, &'static str) {
    let s = demo::STAFF[index];
    (s.0, s.4, s.2)
}

/// The id of demo school `index`.
pub fn school(index: usize) -> &'static str {
    demo::SCHOOLS[index].0
}

/// A create request for the demo trust.
pub fn create_request(
    staff_id: &str,
    trust: (&str, &str),
    school: Option<(&[&str], &str, &[&str])>,
) -> inv::CreateInvitationRequest {
    inv::CreateInvitationRequest {
        trust_id: demo::TRUST_ID.into(),
        staff_id: staff_id.into(),
        trust_access: Some(inv::TrustAccess {
            product_key: trust.0.into(),
            role_key: trust.1.into(),
        }),
        school_access: school.map(|(products, role, schools)| inv::SchoolAccess {
            product_keys: products.iter().map(|s| s.to_string()).collect(),
            role_key: role.into(),
            school_ids: schools.iter().map(|s| s.to_string()).collect(),
        }),
        request_id: String::new(),
        validate_only: false,
    }
}

/// Binds and drops a port, so nothing listens there (an unreachable service).
pub async fn dead_address() -> SocketAddr {
    let bound = Bound::bind("127.0.0.1:0".parse().expect("an address"))
        .await
        .expect("binding");
    bound.local_addr()
}

/// Asserts a refusal's code and ErrorInfo reason.
pub fn assert_refused(status: &tonic::Status, code: tonic::Code, reason: &str) {
    assert_eq!(status.code(), code, "{status:?}");
    assert_eq!(
        portal_runtime::error::status_reason(status).as_deref(),
        Some(reason),
        "{status:?}"
    );
}

/// Asserts INVALID_ARGUMENT naming exactly `fields` (in any order).
pub fn assert_invalid(status: &tonic::Status, fields: &[&str]) {
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    let mut got: Vec<String> = portal_runtime::error::status_violations(status)
        .into_iter()
        .map(|(field, _)| field)
        .collect();
    got.sort();
    let mut want: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
    want.sort();
    assert_eq!(got, want, "{status:?}");
}
