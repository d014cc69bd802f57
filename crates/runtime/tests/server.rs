#![allow(clippy::unwrap_used)]

//! The shared server bootstrap, exercised over real sockets: readiness, liveness, metrics and
//! shutdown.

use std::sync::Arc;
use std::time::Duration;

use portal_runtime::auth::{TokenVerifier, generate_keypair};
use portal_runtime::config::ServerArgs;
use portal_runtime::db::{DbPool, DbSettings, Migrations};
use portal_runtime::server::{Bound, ServiceSpec, Shutdown, serve};
use sqlx::migrate::Migrator;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

static SQLITE: Migrator = sqlx::migrate!("tests/migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("tests/migrations/postgres");
static MIGRATIONS: Migrations = Migrations {
    sqlite: &SQLITE,
    postgres: &POSTGRES,
};

struct Running {
    addr: std::net::SocketAddr,
    admin: std::net::SocketAddr,
    shutdown: Shutdown,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn start(database_url: &str) -> Running {
    let verifier = Arc::new(
        TokenVerifier::from_pems([generate_keypair().unwrap().public_pem.as_str()]).unwrap(),
    );
    let pool = DbPool::connect_lazy(&DbSettings::new(database_url)).unwrap();
    let bound = Bound::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
        .with_admin("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = bound.local_addr();
    let admin = bound.admin_addr().unwrap();
    let spec = ServiceSpec {
        name: "probe",
        routes: tonic::service::Routes::default(),
        grpc_services: vec!["portal.probe.v1.ProbeService"],
        public_methods: vec![],
        descriptor_sets: vec![],
        database: Some((pool, &MIGRATIONS)),
    };
    let shutdown = Shutdown::new();
    let args = ServerArgs::local(addr);
    let handle = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { serve(bound, spec, &args, verifier, shutdown).await }
    });
    Running {
        addr,
        admin,
        shutdown,
        handle,
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

async fn eventually(addr: std::net::SocketAddr, service: &str, want: ServingStatus) -> bool {
    for _ in 0..200 {
        if health(addr, service).await == Some(want as i32) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

async fn scrape(admin: std::net::SocketAddr) -> String {
    let mut stream = tokio::net::TcpStream::connect(admin).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut body = String::new();
    stream.read_to_string(&mut body).await.unwrap();
    body
}

#[tokio::test]
async fn readiness_turns_serving_once_the_database_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(&portal_runtime::db::testing::sqlite_url(dir.path())).await;
    assert!(eventually(running.addr, "", ServingStatus::Serving).await);
    assert!(eventually(running.addr, "readiness", ServingStatus::Serving).await);
    assert!(
        eventually(
            running.addr,
            "portal.probe.v1.ProbeService",
            ServingStatus::Serving
        )
        .await
    );
    assert_eq!(
        health(running.addr, "liveness").await,
        Some(ServingStatus::Serving as i32)
    );
    running.shutdown.trigger();
    running.handle.await.unwrap().unwrap();
}

#[tokio::test]
async fn an_unreachable_database_keeps_readiness_not_serving_while_liveness_serves() {
    let running = start("postgres://postgres@127.0.0.1:1/unreachable").await;
    assert!(eventually(running.addr, "liveness", ServingStatus::Serving).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        health(running.addr, "readiness").await,
        Some(ServingStatus::NotServing as i32)
    );
    running.shutdown.trigger();
    running.handle.await.unwrap().unwrap();
}

#[tokio::test]
async fn the_metrics_endpoint_counts_the_rpc_just_made() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(&portal_runtime::db::testing::sqlite_url(dir.path())).await;
    assert!(eventually(running.addr, "", ServingStatus::Serving).await);
    let text = scrape(running.admin).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains(
        r#"grpc_server_handled_total{grpc_type="unary",grpc_service="grpc.health.v1.Health",grpc_method="Check",grpc_code="OK"}"#
    ), "{text}");
    assert!(text.contains("portal_db_pool_connections"), "{text}");
    running.shutdown.trigger();
    running.handle.await.unwrap().unwrap();
}

#[tokio::test]
async fn health_of_an_unknown_service_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(&portal_runtime::db::testing::sqlite_url(dir.path())).await;
    assert!(eventually(running.addr, "", ServingStatus::Serving).await);
    assert_eq!(health(running.addr, "no.such.Service").await, None);
    running.shutdown.trigger();
    running.handle.await.unwrap().unwrap();
}

#[tokio::test]
async fn shutdown_stops_the_server_and_closes_the_port() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(&portal_runtime::db::testing::sqlite_url(dir.path())).await;
    assert!(eventually(running.addr, "", ServingStatus::Serving).await);
    running.shutdown.trigger();
    tokio::time::timeout(Duration::from_secs(10), running.handle)
        .await
        .expect("server stopped in time")
        .unwrap()
        .unwrap();
    assert!(tokio::net::TcpStream::connect(running.addr).await.is_err());
}
