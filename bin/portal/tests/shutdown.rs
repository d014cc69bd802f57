//! The real `portal identity` process under load: SIGTERM lets every in-flight call finish.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};
use std::time::Duration;

use portal_proto::identity::v1::SignInRequest;
use portal_proto::identity::v1::account_service_client::AccountServiceClient;
use portal_proto::identity::v1::directory_service_client::DirectoryServiceClient;
use portal_runtime::testkit::{TestKeys, logged_listen_address, wait_for_serving};

const PORTAL: &str = env!("CARGO_BIN_EXE_portal");

/// Starts `portal identity` on a free port and returns the child and its gRPC address.
fn start_identity(dir: &std::path::Path, keys: &TestKeys) -> (std::process::Child, String) {
    let mut child = Command::new(PORTAL)
        .arg("identity")
        .env("PORTAL_LISTEN_ADDR", "127.0.0.1:0")
        .env("PORTAL_MIGRATE", "true")
        .env(
            "PORTAL_DATABASE_URL",
            format!("sqlite:{}", dir.join("identity.db").display()),
        )
        .env("PORTAL_TOKEN_PUBLIC_KEYS", &keys.public_key_path)
        .env("PORTAL_TOKEN_PRIVATE_KEY", &keys.private_key_path)
        .env("PORTAL_LOG_FORMAT", "json")
        .env("PORTAL_DRAIN_TIMEOUT", "30s")
        // Every sign-in of the load below waits for a hashing slot rather than being refused.
        .env("PORTAL_PASSWORD_HASH_QUEUE", "64")
        .env("PORTAL_PASSWORD_HASH_WAIT", "60s")
        .stderr(Stdio::piped())
        .spawn()
        .expect("portal starts");
    let addr = logged_listen_address(&mut child, Duration::from_secs(30))
        .expect("the server logs its address");
    (child, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_lets_every_in_flight_call_complete() {
    let dir = tempfile::tempdir().unwrap();
    let keys = TestKeys::create(dir.path()).unwrap();
    let (mut child, addr) = start_identity(dir.path(), &keys);
    wait_for_serving(addr.parse().unwrap(), Duration::from_secs(30))
        .await
        .unwrap();
    let url = format!("http://{addr}");

    // An administrator to sign in as: sign-in costs an argon2 verification, so calls stay in
    // flight long enough to be caught by the signal.
    let channel = portal_runtime::client::authed_channel(
        &portal_runtime::client::ClientSettings::new(url.clone()),
        &keys.service_token("operator"),
    )
    .unwrap();
    let trust = DirectoryServiceClient::new(channel)
        .create_trust(portal_proto::identity::v1::CreateTrustRequest {
            name: "Drain Test Trust".into(),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .trust
        .unwrap();
    let status = Command::new(PORTAL)
        .args(["admin", "bootstrap", "--trust", &trust.id])
        .args([
            "--email",
            "drain@example.org",
            "--given-name",
            "Dee",
            "--family-name",
            "Rain",
        ])
        .args(["--password", "drain-test-password"])
        .env(
            "PORTAL_DATABASE_URL",
            format!("sqlite:{}", dir.path().join("identity.db").display()),
        )
        .env("PORTAL_LOG", "warn")
        .status()
        .unwrap();
    assert!(status.success());

    let channel = tonic::transport::Endpoint::from_shared(url)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let calls: Vec<_> = (0..60)
        .map(|_| {
            let mut client = AccountServiceClient::new(channel.clone());
            tokio::spawn(async move {
                client
                    .sign_in(SignInRequest {
                        email: "drain@example.org".into(),
                        password: "drain-test-password".into(),
                    })
                    .await
            })
        })
        .collect();
    // Let every request reach the server, then ask it to stop while most are still running.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());

    let mut completed = 0;
    for call in calls {
        let response = call.await.unwrap().expect("an in-flight call completes");
        assert!(!response.into_inner().access_token.is_empty());
        completed += 1;
    }
    assert_eq!(completed, 60);
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "portal exited with {exit}");
}
