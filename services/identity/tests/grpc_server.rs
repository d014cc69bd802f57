//! The server as a whole: health tied to migrations, reflection, and authentication refusals on
//! every RPC.

mod common;

use std::time::Duration;

use chrono::Utc;
use common::{Server, start};
use portal_identity::Application;
use portal_proto::identity::v1 as pb;
use portal_runtime::auth::{TokenIssuer, generate_keypair};
use portal_runtime::clock::ManualClock;
use portal_runtime::config::DatabaseArgs;
use portal_runtime::demo::{ADMIN_EMAIL, ADMIN_PASSWORD, STAFF, TRUST_ID};
use portal_runtime::error::status_reason;
use portal_runtime::server::Shutdown;
use portal_runtime::testkit::{TestKeys, wait_for_serving};
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// Calls every RPC that needs a token and returns each one's status code and reason.
async fn call_every_rpc(
    server: &Server,
    token: Option<&str>,
) -> Vec<(&'static str, Code, Option<String>)> {
    let mut directory = server.directory(token);
    let mut staff = server.staff(token);
    let mut accounts = server.accounts(token);
    let mut grants = server.grants(token);
    let code = |r: Result<(), tonic::Status>| match r {
        Ok(()) => (Code::Ok, None),
        Err(s) => (s.code(), status_reason(&s)),
    };
    let mut out = Vec::new();
    macro_rules! call {
        ($name:literal, $e:expr) => {{
            let (c, reason) = code($e.await.map(|_| ()));
            out.push(($name, c, reason));
        }};
    }
    call!(
        "CreateTrust",
        directory.create_trust(pb::CreateTrustRequest::default())
    );
    call!(
        "GetTrust",
        directory.get_trust(pb::GetTrustRequest::default())
    );
    call!(
        "CreateSchool",
        directory.create_school(pb::CreateSchoolRequest::default())
    );
    call!(
        "GetSchool",
        directory.get_school(pb::GetSchoolRequest::default())
    );
    call!(
        "ListSchools",
        directory.list_schools(pb::ListSchoolsRequest::default())
    );
    call!(
        "SyncStaff",
        staff.sync_staff(pb::SyncStaffRequest::default())
    );
    call!(
        "StreamSyncStaff",
        staff.stream_sync_staff(tokio_stream::iter(vec![
            pb::StreamSyncStaffRequest::default()
        ]))
    );
    call!(
        "GetStaffMember",
        staff.get_staff_member(pb::GetStaffMemberRequest::default())
    );
    call!(
        "ListStaffMembers",
        staff.list_staff_members(pb::ListStaffMembersRequest::default())
    );
    call!(
        "RegisterAccount",
        accounts.register_account(pb::RegisterAccountRequest::default())
    );
    call!(
        "LookupAccount",
        accounts.lookup_account(pb::LookupAccountRequest::default())
    );
    call!(
        "GetCurrentAccount",
        accounts.get_current_account(pb::GetCurrentAccountRequest::default())
    );
    call!(
        "BatchGrant",
        grants.batch_grant(pb::BatchGrantRequest::default())
    );
    call!(
        "ActivateGrants",
        grants.activate_grants(pb::ActivateGrantsRequest::default())
    );
    call!(
        "RevokeGrants",
        grants.revoke_grants(pb::RevokeGrantsRequest::default())
    );
    call!(
        "ListAccess",
        grants.list_access(pb::ListAccessRequest::default())
    );
    call!(
        "CheckAdministrator",
        grants.check_administrator(pb::CheckAdministratorRequest::default())
    );
    out
}

fn assert_all_refused(calls: &[(&str, Code, Option<String>)], reason: &str) {
    assert_eq!(calls.len(), 17);
    for (name, code, got) in calls {
        assert_eq!(*code, Code::Unauthenticated, "{name}");
        assert_eq!(got.as_deref(), Some(reason), "{name}");
    }
}

#[tokio::test]
async fn every_rpc_but_sign_in_needs_a_token() {
    let server = start().await;
    assert_all_refused(&call_every_rpc(&server, None).await, "TOKEN_MISSING");
    let result = server
        .accounts(None)
        .sign_in(pb::SignInRequest {
            email: ADMIN_EMAIL.into(),
            password: ADMIN_PASSWORD.into(),
        })
        .await;
    assert!(result.is_ok(), "SignIn is public: {result:?}");
}

#[tokio::test]
async fn a_token_signed_by_another_key_is_refused_everywhere() {
    let server = start().await;
    let stranger = TokenIssuer::from_pem(&generate_keypair().expect("keys").private_pem)
        .expect("issuer")
        .issue_service("operator", Utc::now(), chrono::Duration::hours(1))
        .expect("token")
        .token;
    assert_all_refused(
        &call_every_rpc(&server, Some(&stranger)).await,
        "TOKEN_KEY_UNKNOWN",
    );
}

#[tokio::test]
async fn a_tampered_token_is_refused_everywhere() {
    let server = start().await;
    let token = server.service_token("mis-sync");
    let (rest, signature) = token.rsplit_once('.').expect("jwt");
    let mut bytes = signature.as_bytes().to_vec();
    bytes[3] = if bytes[3] == b'A' { b'B' } else { b'A' };
    let forged = format!("{rest}.{}", String::from_utf8(bytes).expect("ascii"));
    let calls = call_every_rpc(&server, Some(&forged)).await;
    for (name, code, _) in &calls {
        assert_eq!(*code, Code::Unauthenticated, "{name}");
    }
}

#[tokio::test]
async fn an_expired_token_is_refused_everywhere() {
    let server = start().await;
    let expired = server
        .keys
        .issuer
        .issue_service(
            "operator",
            Utc::now() - chrono::Duration::hours(3),
            chrono::Duration::hours(1),
        )
        .expect("token")
        .token;
    assert_all_refused(
        &call_every_rpc(&server, Some(&expired)).await,
        "TOKEN_EXPIRED",
    );
    let garbage = call_every_rpc(&server, Some("not-a-jwt")).await;
    assert_all_refused(&garbage, "TOKEN_MALFORMED");
}

#[tokio::test]
async fn an_expired_user_token_from_sign_in_stops_working() {
    let server = start().await;
    let account = server.account_id(ADMIN_EMAIL).await;
    let stale = server
        .keys
        .issuer
        .issue_user(
            portal_runtime::vocab::AccountId::parse(&account).expect("account id"),
            Utc::now() - chrono::Duration::hours(2),
            chrono::Duration::hours(1),
        )
        .expect("token")
        .token;
    let result = server
        .accounts(Some(&stale))
        .get_current_account(pb::GetCurrentAccountRequest {})
        .await;
    let status = result.expect_err("expired");
    assert_eq!(status.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn no_bad_input_ever_answers_internal() {
    let server = start().await;
    let admin = server.token_of(ADMIN_EMAIL).await;
    for token in [
        server.operator(),
        server.invitation(),
        server.mis_sync(),
        admin,
        server.user_token("7f3c2a10-0000-4000-8000-00000000dead"),
    ] {
        for (name, code, _) in call_every_rpc(&server, Some(&token)).await {
            assert_ne!(code, Code::Internal, "{name}");
            assert_ne!(code, Code::Unknown, "{name}");
        }
    }
}

async fn health(addr: std::net::SocketAddr, service: &str) -> Option<i32> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .ok()?
        .connect()
        .await
        .ok()?;
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .ok()
        .map(|r| r.into_inner().status)
}

#[tokio::test]
async fn health_is_not_serving_until_the_database_is_migrated() {
    let dir = tempfile::tempdir().expect("dir");
    let keys = TestKeys::create(&dir.path().join("keys")).expect("keys");
    // The database path is a directory at first, so the database cannot open.
    let db_path = dir.path().join("data").join("identity.db");
    std::fs::create_dir_all(&db_path).expect("blocker");
    let database = DatabaseArgs::with_max_connections(format!("sqlite:{}", db_path.display()), 4);
    let app = Application::build(
        common::config(&keys, database),
        ManualClock::new(Utc::now()),
    )
    .await
    .expect("build");
    let addr = app.local_addr();
    let shutdown = Shutdown::new();
    let running = tokio::spawn(app.run(shutdown.clone()));
    let mut answered = false;
    for _ in 0..50 {
        if let Some(status) = health(addr, "").await {
            assert_eq!(status, ServingStatus::NotServing as i32);
            answered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(answered, "health answers before the database is ready");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        health(addr, "portal.identity.v1.StaffService").await,
        Some(ServingStatus::NotServing as i32)
    );
    assert_eq!(
        health(addr, "liveness").await,
        Some(ServingStatus::Serving as i32)
    );

    std::fs::remove_dir(&db_path).expect("unblock");
    wait_for_serving(addr, Duration::from_secs(20))
        .await
        .expect("serving once migrated");
    for service in [
        "readiness",
        "portal.identity.v1.DirectoryService",
        "portal.identity.v1.StaffService",
        "portal.identity.v1.AccountService",
        "portal.identity.v1.GrantService",
    ] {
        assert_eq!(
            health(addr, service).await,
            Some(ServingStatus::Serving as i32),
            "{service}"
        );
    }
    shutdown.trigger();
    running.await.expect("join").expect("clean shutdown");
}

#[tokio::test]
async fn reflection_lists_the_identity_services() {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let server = start().await;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", server.addr))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .expect("reflection")
        .into_inner();
    let response = responses.message().await.expect("answer").expect("one");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection answer");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [
        "portal.identity.v1.DirectoryService",
        "portal.identity.v1.StaffService",
        "portal.identity.v1.AccountService",
        "portal.identity.v1.GrantService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
}

#[tokio::test]
async fn seeding_twice_changes_nothing() {
    let server = start().await;
    let token = server.invitation();
    let before = server
        .grants(Some(&token))
        .list_access(pb::ListAccessRequest {
            account_id: server.account_id(STAFF[1].4).await,
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    portal_identity::seed_demo(&server.database)
        .await
        .expect("second seed");
    let after = server
        .grants(Some(&token))
        .list_access(pb::ListAccessRequest {
            account_id: server.account_id(STAFF[1].4).await,
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(before, after);
    let staff = server
        .staff(Some(&token))
        .list_staff_members(pb::ListStaffMembersRequest {
            trust_id: TRUST_ID.into(),
            page_size: 100,
            ..Default::default()
        })
        .await
        .expect("staff")
        .into_inner();
    assert_eq!(staff.staff_members.len(), STAFF.len());
    assert!(
        staff
            .staff_members
            .iter()
            .all(|m| m.status == pb::StaffStatus::Active as i32)
    );
}

#[tokio::test]
async fn bootstrap_admin_makes_an_administrator_once() {
    let server = start().await;
    let trust = server.new_trust("Bootstrap Trust").await;
    let first = portal_identity::bootstrap_admin(
        &server.database,
        &trust,
        "Boss@Bootstrap.org",
        "Bo",
        "Ss",
        "a long password",
    )
    .await
    .expect("bootstrap");
    let second = portal_identity::bootstrap_admin(
        &server.database,
        &trust,
        "boss@bootstrap.org",
        "Bo",
        "Ss",
        "another long password",
    )
    .await
    .expect("again");
    assert_eq!(first, second);
    let token = server.invitation();
    let decision = server
        .grants(Some(&token))
        .check_administrator(pb::CheckAdministratorRequest {
            trust_id: trust.clone(),
            account_id: first.clone(),
        })
        .await
        .expect("check")
        .into_inner();
    assert!(decision.administrator);
    let access = server
        .grants(Some(&token))
        .list_access(pb::ListAccessRequest {
            account_id: first,
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner()
        .access;
    assert_eq!(access.len(), 1);
    assert_eq!(access[0].products.len(), 1, "granted once");
    // The first password stays.
    server
        .accounts(None)
        .sign_in(pb::SignInRequest {
            email: "boss@bootstrap.org".into(),
            password: "a long password".into(),
        })
        .await
        .expect("first password still works");
    let missing = portal_identity::bootstrap_admin(
        &server.database,
        "7f3c2a10-0000-4000-8000-00000000dead",
        "x@y.org",
        "X",
        "Y",
        "a long password",
    )
    .await;
    assert!(missing.is_err());
}

/// The identity migrations plus one a later release adds: it only expands the schema (a new
/// nullable column, a new table), as every migration must (k8s/README.md).
fn a_later_release(current: &'static sqlx::migrate::Migrator) -> sqlx::migrate::Migrator {
    use sqlx::migrate::{Migration, MigrationType, Migrator};
    let mut migrations = current.migrations.to_vec();
    migrations.push(Migration::new(
        9_999,
        "a later release".into(),
        MigrationType::Simple,
        "ALTER TABLE accounts ADD COLUMN preferred_name TEXT;
         CREATE TABLE account_notes (account_id TEXT NOT NULL, note TEXT NOT NULL);"
            .into(),
        false,
    ));
    Migrator {
        migrations: migrations.into(),
        ..Migrator::DEFAULT
    }
}

async fn sign_in_admin(addr: std::net::SocketAddr) -> Result<(), tonic::Status> {
    let mut accounts =
        pb::account_service_client::AccountServiceClient::connect(format!("http://{addr}"))
            .await
            .expect("connect");
    accounts
        .sign_in(pb::SignInRequest {
            email: ADMIN_EMAIL.into(),
            password: ADMIN_PASSWORD.into(),
        })
        .await
        .map(|_| ())
}

#[tokio::test]
async fn a_server_serves_on_a_schema_migrated_by_a_later_release_so_a_rollback_works() {
    let dir = tempfile::tempdir().expect("dir");
    let keys = TestKeys::create(&dir.path().join("keys")).expect("keys");
    let (database, _) = common::database(dir.path()).await;
    portal_identity::seed_demo(&database).await.expect("seed");
    // The later release's migration Job ran; then its Deployment was rolled back.
    let pool = portal_runtime::db::DbPool::connect_lazy(&database.settings()).expect("pool");
    match &pool {
        portal_runtime::db::DbPool::Sqlite(p) => {
            a_later_release(portal_identity::MIGRATIONS.sqlite)
                .run(p.pool())
                .await
        }
        portal_runtime::db::DbPool::Postgres(p) => {
            a_later_release(portal_identity::MIGRATIONS.postgres)
                .run(p.pool())
                .await
        }
    }
    .expect("the later release migrates");
    pool.close().await;

    // This release's migration Job runs again (a re-run of the rollback's pipeline)...
    portal_identity::migrate(&database)
        .await
        .expect("migrating leaves a later release's migrations alone");
    // ...and its servers, which do not migrate, are ready and serve reads and writes.
    let mut config = common::config(&keys, database);
    config.server.migrate = false;
    let app = Application::build(config, ManualClock::new(Utc::now()))
        .await
        .expect("build");
    let addr = app.local_addr();
    let shutdown = Shutdown::new();
    let running = tokio::spawn(app.run(shutdown.clone()));
    wait_for_serving(addr, Duration::from_secs(20))
        .await
        .expect("serving on the newer schema");
    sign_in_admin(addr).await.expect("sign-in reads and writes");
    shutdown.trigger();
    running.await.expect("join").expect("clean shutdown");
}

#[tokio::test]
async fn a_server_that_does_not_migrate_waits_for_the_migration_job() {
    let dir = tempfile::tempdir().expect("dir");
    let keys = TestKeys::create(&dir.path().join("keys")).expect("keys");
    let (database, _) = common::database(dir.path()).await;
    let mut config = common::config(&keys, database.clone());
    config.server.migrate = false;
    let app = Application::build(config, ManualClock::new(Utc::now()))
        .await
        .expect("build");
    let addr = app.local_addr();
    let shutdown = Shutdown::new();
    let running = tokio::spawn(app.run(shutdown.clone()));
    let mut not_serving = 0;
    for _ in 0..100 {
        if health(addr, "readiness").await == Some(ServingStatus::NotServing as i32) {
            not_serving += 1;
            if not_serving == 5 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(not_serving, 5, "readiness says NOT_SERVING");
    assert_eq!(
        health(addr, "liveness").await,
        Some(ServingStatus::Serving as i32)
    );

    portal_identity::migrate(&database)
        .await
        .expect("the migration Job");
    wait_for_serving(addr, Duration::from_secs(20))
        .await
        .expect("serving once migrated");
    shutdown.trigger();
    running.await.expect("join").expect("clean shutdown");
}
