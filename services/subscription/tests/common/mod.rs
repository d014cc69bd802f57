//! Test harness: the real subscription server on 127.0.0.1:0 (SQLite, or PostgreSQL when
//! `PORTAL_TEST_DATABASE_URL` is set), a manual clock, and a stand-in identity GrantService
//! that answers CheckAdministrator from a fixed table.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use portal_proto::identity::v1 as idpb;
use portal_proto::identity::v1::grant_service_server::{GrantService, GrantServiceServer};
use portal_proto::subscription::v1 as pb;
use portal_proto::subscription::v1::catalog_service_client::CatalogServiceClient;
use portal_proto::subscription::v1::eligibility_service_client::EligibilityServiceClient;
use portal_proto::subscription::v1::subscription_service_client::SubscriptionServiceClient;
use portal_runtime::auth::BearerToken;
use portal_runtime::clock::{ManualClock, to_timestamp};
use portal_runtime::config::{DatabaseArgs, ServerArgs, TokenArgs};
use portal_runtime::db::testing::{postgres_url, sqlite_url};
use portal_runtime::server::Shutdown;
use portal_runtime::testkit::{TestKeys, wait_for_serving};
use portal_subscription::{Application, Config};
use tokio::task::JoinHandle;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Request, Response, Status};

pub type Authed = InterceptedService<Channel, BearerToken>;

/// The instant the manual clock starts at.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 9, 1, 8, 0, 0).unwrap()
}

pub const TRUST: &str = "11111111-0000-4000-8000-000000000001";
pub const OTHER_TRUST: &str = "11111111-0000-4000-8000-000000000002";
/// Accounts the stand-in identity knows.
pub const ADMIN: &str = "22222222-0000-4000-8000-000000000001";
pub const SCHOOL_ADMIN: &str = "22222222-0000-4000-8000-000000000002";
pub const OTHER_ADMIN: &str = "22222222-0000-4000-8000-000000000003";
pub const NOBODY: &str = "22222222-0000-4000-8000-000000000004";

/// A school id of the test trust, numbered.
pub fn school(n: u32) -> String {
    format!("33333333-0000-4000-8000-{n:012}")
}

/// A stand-in for identity's GrantService: CheckAdministrator from a table, nothing else.
#[derive(Clone, Default)]
pub struct FakeIdentity {
    pub decisions: Arc<Mutex<HashMap<(String, String), idpb::AdministratorDecision>>>,
    pub calls: Arc<AtomicUsize>,
    pub tokens_seen: Arc<Mutex<Vec<String>>>,
}

impl FakeIdentity {
    pub fn standard() -> Self {
        let fake = Self::default();
        {
            let mut table = fake.decisions.lock().unwrap();
            use idpb::AdministratorDecision as D;
            table.insert((TRUST.into(), ADMIN.into()), D::Administrator);
            table.insert((TRUST.into(), SCHOOL_ADMIN.into()), D::SchoolLevelOnly);
            table.insert((TRUST.into(), OTHER_ADMIN.into()), D::OtherTrust);
            table.insert((OTHER_TRUST.into(), OTHER_ADMIN.into()), D::Administrator);
        }
        fake
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    pub fn set(&self, trust: &str, account: &str, decision: idpb::AdministratorDecision) {
        self.decisions
            .lock()
            .unwrap()
            .insert((trust.into(), account.into()), decision);
    }

    /// Serves on 127.0.0.1:0 until the test ends.
    pub async fn serve(self) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(GrantServiceServer::new(self))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        addr
    }
}

#[tonic::async_trait]
impl GrantService for FakeIdentity {
    async fn batch_grant(
        &self,
        _: Request<idpb::BatchGrantRequest>,
    ) -> Result<Response<idpb::BatchGrantResponse>, Status> {
        Err(Status::unimplemented("not in this stand-in"))
    }

    async fn activate_grants(
        &self,
        _: Request<idpb::ActivateGrantsRequest>,
    ) -> Result<Response<idpb::ActivateGrantsResponse>, Status> {
        Err(Status::unimplemented("not in this stand-in"))
    }

    async fn revoke_grants(
        &self,
        _: Request<idpb::RevokeGrantsRequest>,
    ) -> Result<Response<idpb::RevokeGrantsResponse>, Status> {
        Err(Status::unimplemented("not in this stand-in"))
    }

    async fn list_access(
        &self,
        _: Request<idpb::ListAccessRequest>,
    ) -> Result<Response<idpb::ListAccessResponse>, Status> {
        Err(Status::unimplemented("not in this stand-in"))
    }

    async fn check_administrator(
        &self,
        request: Request<idpb::CheckAdministratorRequest>,
    ) -> Result<Response<idpb::CheckAdministratorResponse>, Status> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let token = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        self.tokens_seen.lock().unwrap().push(token);
        let request = request.into_inner();
        let decision = self
            .decisions
            .lock()
            .unwrap()
            .get(&(request.trust_id.clone(), request.account_id.clone()))
            .copied()
            .unwrap_or(idpb::AdministratorDecision::NotAdministrator);
        let administrator = decision == idpb::AdministratorDecision::Administrator;
        Ok(Response::new(idpb::CheckAdministratorResponse {
            administrator,
            decision: decision as i32,
            role_key: if administrator {
                "account-owner".into()
            } else {
                String::new()
            },
        }))
    }
}

/// How the server reaches identity.
pub enum IdentitySetup {
    /// The stand-in, with the given table.
    Fake(FakeIdentity),
    /// No identity configured: user tokens are refused.
    None,
    /// An address nothing listens on.
    Down,
}

pub struct Harness {
    pub addr: SocketAddr,
    pub keys: TestKeys,
    pub clock: Arc<ManualClock>,
    pub identity: FakeIdentity,
    pub database: DatabaseArgs,
    pub service_token: String,
    shutdown: Shutdown,
    server: Option<JoinHandle<anyhow::Result<()>>>,
    _dir: tempfile::TempDir,
}

impl Harness {
    pub async fn start() -> Self {
        Self::start_with(IdentitySetup::Fake(FakeIdentity::standard())).await
    }

    pub async fn start_with(setup: IdentitySetup) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let keys = TestKeys::create(dir.path()).unwrap();
        let url = match postgres_url().await {
            Some(url) => url,
            None => sqlite_url(dir.path()),
        };
        let database = DatabaseArgs::with_max_connections(url, 8);
        let service_token = keys.service_token("subscription");
        let (identity, identity_url) = match setup {
            IdentitySetup::Fake(fake) => {
                let addr = fake.clone().serve().await;
                (fake, Some(format!("http://{addr}")))
            }
            IdentitySetup::None => (FakeIdentity::default(), None),
            IdentitySetup::Down => {
                let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                let addr = listener.local_addr().unwrap();
                drop(listener);
                (FakeIdentity::default(), Some(format!("http://{addr}")))
            }
        };
        // The token is given as a file, as an operator would mount it.
        let token_file = dir.path().join("service-token");
        std::fs::write(&token_file, format!("{service_token}\n")).unwrap();
        let config = Config {
            server: ServerArgs::local("127.0.0.1:0".parse().unwrap()),
            database: database.clone(),
            tokens: TokenArgs {
                token_public_keys: vec![keys.public_key_path.clone()],
            },
            service_token: None,
            service_token_file: identity_url.as_ref().map(|_| {
                portal_runtime::config::read_secret_file(&token_file.display().to_string()).unwrap()
            }),
            identity_url,
            views: Default::default(),
        };
        let clock = ManualClock::new(t0());
        let app = Application::build(config, clock.clone()).await.unwrap();
        let addr = app.local_addr();
        let shutdown = Shutdown::new();
        let server = tokio::spawn(app.run(shutdown.clone()));
        wait_for_serving(addr, Duration::from_secs(20))
            .await
            .unwrap();
        Self {
            addr,
            keys,
            clock,
            identity,
            database,
            service_token,
            shutdown,
            server: Some(server),
            _dir: dir,
        }
    }

    fn channel(&self) -> Channel {
        tonic::transport::Endpoint::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect_lazy()
    }

    fn authed(&self, token: Option<String>) -> Authed {
        let bearer = match token {
            Some(token) => BearerToken::new(&token).unwrap(),
            None => BearerToken::none(),
        };
        InterceptedService::new(self.channel(), bearer)
    }

    pub fn service(&self, name: &str) -> Option<String> {
        Some(self.keys.service_token(name))
    }

    pub fn user(&self, account: &str) -> Option<String> {
        Some(self.keys.user_token(account))
    }

    pub fn subscriptions(&self, token: Option<String>) -> SubscriptionServiceClient<Authed> {
        SubscriptionServiceClient::new(self.authed(token))
    }

    pub fn billing(&self) -> SubscriptionServiceClient<Authed> {
        self.subscriptions(self.service("billing"))
    }

    pub fn eligibility(&self, token: Option<String>) -> EligibilityServiceClient<Authed> {
        EligibilityServiceClient::new(self.authed(token)).max_decoding_message_size(64 << 20)
    }

    pub fn invitation(&self) -> EligibilityServiceClient<Authed> {
        self.eligibility(self.service("invitation"))
    }

    pub fn catalog(&self, token: Option<String>) -> CatalogServiceClient<Authed> {
        CatalogServiceClient::new(self.authed(token))
    }

    /// Creates a subscription through billing and returns it.
    pub async fn create(&self, spec: Spec) -> pb::Subscription {
        self.billing()
            .create_subscription(pb::CreateSubscriptionRequest {
                subscription: Some(spec.into_proto()),
                request_id: String::new(),
            })
            .await
            .unwrap_or_else(|status| panic!("create failed: {status:?}"))
            .into_inner()
            .subscription
            .unwrap()
    }

    pub async fn stop(mut self) {
        self.shutdown.trigger();
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

/// A subscription to create.
#[derive(Clone, Debug)]
pub struct Spec {
    pub trust: String,
    pub kind: pb::OrganizationKind,
    pub org: String,
    pub product: String,
    pub status: pb::SubscriptionStatus,
    pub start: DateTime<Utc>,
    pub end: Option<DateTime<Utc>>,
}

impl Spec {
    pub fn school(
        org: &str,
        product: &str,
        start: DateTime<Utc>,
        end: Option<DateTime<Utc>>,
    ) -> Self {
        Self {
            trust: TRUST.into(),
            kind: pb::OrganizationKind::School,
            org: org.into(),
            product: product.into(),
            status: pb::SubscriptionStatus::Active,
            start,
            end,
        }
    }

    pub fn trust(trust: &str, product: &str) -> Self {
        Self {
            trust: trust.into(),
            kind: pb::OrganizationKind::Trust,
            org: trust.into(),
            product: product.into(),
            status: pb::SubscriptionStatus::Active,
            start: t0() - chrono::Duration::days(365),
            end: None,
        }
    }

    pub fn status(mut self, status: pb::SubscriptionStatus) -> Self {
        self.status = status;
        self
    }

    pub fn in_trust(mut self, trust: &str) -> Self {
        self.trust = trust.into();
        self
    }

    pub fn into_proto(self) -> pb::Subscription {
        pb::Subscription {
            trust_id: self.trust,
            organization_kind: self.kind as i32,
            organization_id: self.org,
            product_key: self.product,
            status: self.status as i32,
            start_time: Some(to_timestamp(self.start)),
            end_time: self.end.map(to_timestamp),
            ..Default::default()
        }
    }
}

/// The field names of a status's BadRequest violations.
pub fn violated_fields(status: &Status) -> Vec<String> {
    portal_runtime::error::status_violations(status)
        .into_iter()
        .map(|(field, _)| field)
        .collect()
}

/// Asserts a refusal's code and ErrorInfo reason.
pub fn assert_refused(result: Result<impl std::fmt::Debug, Status>, code: Code, reason: &str) {
    let status = result.expect_err("the call should be refused");
    assert_eq!(status.code(), code, "{status:?}");
    assert_eq!(
        portal_runtime::error::status_reason(&status).as_deref(),
        Some(reason),
        "{status:?}"
    );
}

/// Asserts INVALID_ARGUMENT naming exactly `fields` (in any order).
pub fn assert_invalid(result: Result<impl std::fmt::Debug, Status>, fields: &[&str]) {
    let status = result.expect_err("the call should be refused");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let mut got = violated_fields(&status);
    got.sort();
    let mut want: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
    want.sort();
    assert_eq!(got, want, "{status:?}");
}
