//! Helpers for tests and for the quick start: token keys on disk, and waiting for SERVING.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::Utc;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::auth::{KeyPairPem, TokenIssuer, load_or_create_keypair};

/// A token signing key pair written to a directory, with an issuer for minting test tokens.
pub struct TestKeys {
    pub private_key_path: PathBuf,
    pub public_key_path: PathBuf,
    pub pem: KeyPairPem,
    pub issuer: TokenIssuer,
}

impl TestKeys {
    pub fn create(dir: &Path) -> anyhow::Result<Self> {
        let pem = load_or_create_keypair(dir)?;
        Ok(Self {
            private_key_path: dir.join("token-signing.pem"),
            public_key_path: dir.join("token-signing.pub.pem"),
            issuer: TokenIssuer::from_pem(&pem.private_pem)?,
            pem,
        })
    }

    /// A service token for `name`, valid for an hour.
    pub fn service_token(&self, name: &str) -> String {
        self.issuer
            .issue_service(name, Utc::now(), chrono::Duration::hours(1))
            .map(|t| t.token)
            .unwrap_or_default()
    }

    /// A user token for `account_id`, valid for an hour (empty, and so refused, when
    /// `account_id` is not an account id).
    pub fn user_token(&self, account_id: &str) -> String {
        crate::vocab::AccountId::parse(account_id)
            .and_then(|id| {
                self.issuer
                    .issue_user(id, Utc::now(), chrono::Duration::hours(1))
                    .map_err(|e| e.to_string())
            })
            .map(|t| t.token)
            .unwrap_or_default()
    }
}

/// Waits until the server at `addr` reports the overall health status SERVING.
pub async fn wait_for_serving(addr: SocketAddr, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let url = format!("http://{addr}");
    loop {
        let status = async {
            let channel = tonic::transport::Endpoint::from_shared(url.clone())?
                .connect()
                .await?;
            let mut client = HealthClient::new(channel);
            let response = client
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await?;
            anyhow::Ok(response.into_inner().status)
        }
        .await;
        if matches!(status, Ok(s) if s == ServingStatus::Serving as i32) {
            return Ok(());
        }
        if Instant::now() > deadline {
            anyhow::bail!("{addr} did not report SERVING within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The address a `portal` child process logs as "gRPC server listening" (JSON logs on its
/// piped stderr). The rest of its stderr keeps being read, so the child never blocks on it.
pub fn logged_listen_address(
    child: &mut std::process::Child,
    timeout: Duration,
) -> anyhow::Result<String> {
    use std::io::{BufRead, BufReader};
    let stderr = child
        .stderr
        .take()
        .ok_or_else(|| anyhow::anyhow!("the child's stderr is not piped"))?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !sent
                && let Ok(log) = serde_json::from_str::<serde_json::Value>(&line)
                && log["fields"]["message"] == "gRPC server listening"
            {
                let addr = log["fields"]["addr"].as_str().unwrap_or_default();
                let _ = tx.send(addr.to_string());
                sent = true;
            }
        }
    });
    rx.recv_timeout(timeout)
        .map_err(|_| anyhow::anyhow!("the server did not log its address in {timeout:?}"))
}

/// Busy CPU time of the whole machine so far (user, system, interrupts; not idle or I/O
/// wait), from /proc/stat; `None` off Linux. Differences give what an operation costs in
/// CPU, beside how many of them fit in a second.
pub fn machine_busy() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...
    let busy: u64 = [0, 1, 2, 5, 6].iter().filter_map(|i| fields.get(*i)).sum();
    // USER_HZ is 100 on every Linux this runs on.
    Some(Duration::from_millis(busy * 10))
}

/// The machine's busy CPU per operation, for `ops` operations between two [`machine_busy`]
/// readings.
pub fn cpu_per_op(before: Option<Duration>, after: Option<Duration>, ops: f64) -> Option<Duration> {
    match (before, after) {
        (Some(b), Some(a)) if ops > 0.0 && a >= b => Some((a - b).div_f64(ops)),
        _ => None,
    }
}
