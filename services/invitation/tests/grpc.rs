//! The invitation server on its own: health, reflection, authentication, its own token, and
//! answers when identity and subscription cannot be reached. (The rules themselves are tested
//! with the real identity and subscription services in the workspace's `tests/` crate.)

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use portal_invitation::{Application, Config};
use portal_proto::invitation::v1 as inv;
use portal_proto::invitation::v1::invitation_service_client::InvitationServiceClient;
use portal_runtime::auth::BearerToken;
use portal_runtime::clock;
use portal_runtime::config::{DatabaseArgs, ServerArgs, TokenArgs};
use portal_runtime::db::testing;
use portal_runtime::demo;
use portal_runtime::server::{Bound, Shutdown};
use portal_runtime::testkit::{TestKeys, wait_for_serving};

async fn dead_url() -> String {
    let bound = Bound::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    format!("http://{}", bound.local_addr())
}

async fn config(dir: &std::path::Path, keys: &TestKeys, database_url: String) -> Config {
    let mut config = Config::new(
        ServerArgs::local("127.0.0.1:0".parse().unwrap()),
        DatabaseArgs::with_max_connections(database_url, 4),
        TokenArgs {
            token_public_keys: vec![keys.public_key_path.clone()],
        },
        dead_url().await,
        dead_url().await,
        keys.service_token("invitation"),
    );
    config.mail_dir = Some(dir.join("mail"));
    config.call_timeout = Duration::from_secs(1);
    config
}

async fn databases(dir: &std::path::Path) -> Vec<String> {
    let mut out = vec![testing::sqlite_url(dir)];
    if let Some(url) = testing::postgres_url().await {
        out.push(url);
    }
    out
}

async fn start(config: Config) -> (SocketAddr, Shutdown) {
    let app = Application::build(config, clock::system()).await.unwrap();
    let addr = app.local_addr();
    let shutdown = Shutdown::new();
    tokio::spawn(app.run(shutdown.clone()));
    wait_for_serving(addr, Duration::from_secs(30))
        .await
        .unwrap();
    (addr, shutdown)
}

fn client(
    addr: SocketAddr,
    token: Option<&str>,
) -> InvitationServiceClient<InterceptedService<Channel, BearerToken>> {
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy();
    let bearer = token.map_or_else(BearerToken::none, |t| BearerToken::new(t).unwrap());
    InvitationServiceClient::new(InterceptedService::new(channel, bearer))
}

#[tokio::test]
async fn the_server_reports_serving_once_migrated_and_lists_its_service_by_reflection() {
    let dir = tempfile::tempdir().unwrap();
    let keys = TestKeys::create(&dir.path().join("keys")).unwrap();
    for url in databases(dir.path()).await {
        let (addr, shutdown) = start(config(dir.path(), &keys, url).await).await;
        let channel = Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
        let status = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: portal_invitation::SERVICE_NAME.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(
            status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32
        );
        use tonic_reflection::pb::v1::ServerReflectionRequest;
        use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
        use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
        let mut reflection = ServerReflectionClient::new(channel);
        let mut replies = reflection
            .server_reflection_info(futures::stream::iter([ServerReflectionRequest {
                host: String::new(),
                message_request: Some(MessageRequest::ListServices(String::new())),
            }]))
            .await
            .unwrap()
            .into_inner();
        let reply = replies.message().await.unwrap().unwrap();
        let Some(MessageResponse::ListServicesResponse(list)) = reply.message_response else {
            panic!("unexpected reflection answer");
        };
        assert!(
            list.service
                .iter()
                .any(|s| s.name == portal_invitation::SERVICE_NAME)
        );
        shutdown.trigger();
    }
}

#[tokio::test]
async fn the_service_refuses_to_start_with_another_services_token() {
    let dir = tempfile::tempdir().unwrap();
    let keys = TestKeys::create(&dir.path().join("keys")).unwrap();
    let mut config = config(dir.path(), &keys, testing::sqlite_url(dir.path())).await;
    config.service_token = Some(keys.service_token("billing").into());
    let error = Application::build(config.clone(), clock::system())
        .await
        .err()
        .expect("a billing token is refused");
    assert!(error.to_string().contains("invitation"), "{error}");
    config.service_token = Some(
        keys.user_token("7f3c2a10-0000-4000-8000-00000000beef")
            .into(),
    );
    assert!(Application::build(config, clock::system()).await.is_err());
}

#[tokio::test]
async fn calls_need_a_bearer_token_except_inspecting_and_accepting_a_link() {
    let dir = tempfile::tempdir().unwrap();
    let keys = TestKeys::create(&dir.path().join("keys")).unwrap();
    let (addr, shutdown) =
        start(config(dir.path(), &keys, testing::sqlite_url(dir.path())).await).await;
    let mut anonymous = client(addr, None);
    let status = anonymous
        .get_invitation(inv::GetInvitationRequest {
            invitation_id: demo::TRUST_ID.into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let status = anonymous
        .list_invitations(inv::ListInvitationsRequest {
            trust_id: demo::TRUST_ID.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    // The link methods answer without a token: an unknown link is NOT_FOUND.
    let status = anonymous
        .inspect_invitation_link(inv::InspectInvitationLinkRequest {
            token: "A".repeat(43),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = anonymous
        .accept_invitation(inv::AcceptInvitationRequest {
            token: "A".repeat(43),
            given_name: "Chloe".into(),
            family_name: "Patel".into(),
            password: "long enough password".into(),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    // A token signed by another key is refused.
    let other_dir = tempfile::tempdir().unwrap();
    let stranger = TestKeys::create(other_dir.path()).unwrap();
    let status = client(
        addr,
        Some(&stranger.user_token("7f3c2a10-0000-4000-8000-00000000beef")),
    )
    .get_invitation(inv::GetInvitationRequest {
        invitation_id: demo::TRUST_ID.into(),
    })
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    shutdown.trigger();
}

#[tokio::test]
async fn unreachable_dependencies_answer_unavailable_within_the_call_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let keys = TestKeys::create(&dir.path().join("keys")).unwrap();
    for url in databases(dir.path()).await {
        let (addr, shutdown) = start(config(dir.path(), &keys, url).await).await;
        let admin = keys.user_token("7f3c2a10-0000-4000-8000-00000000ad01");
        let started = Instant::now();
        let status = client(addr, Some(&admin))
            .create_invitation(inv::CreateInvitationRequest {
                trust_id: demo::TRUST_ID.into(),
                staff_id: demo::STAFF[2].0.into(),
                trust_access: Some(inv::TrustAccess {
                    product_key: "portal".into(),
                    role_key: "full-edit".into(),
                }),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        assert!(started.elapsed() < Duration::from_secs(3));
        assert!(
            portal_runtime::error::status_reason(&status).as_deref() == Some("UNAVAILABLE"),
            "{status:?}"
        );
        let status = client(addr, Some(&admin))
            .get_invitation(inv::GetInvitationRequest {
                invitation_id: demo::TRUST_ID.into(),
            })
            .await
            .unwrap_err();
        // Unknown ids are NOT_FOUND before identity is asked anything.
        assert_eq!(status.code(), Code::NotFound);
        shutdown.trigger();
    }
}
