//! Start-up time and idle memory of each service, as separate `portal` processes on SQLite:
//! the time from spawning the process to its first SERVING health answer (migrations
//! included), and its resident set size after it has sat idle for a few seconds.
//!
//! `cargo bench -p portal --bench footprint` (release build of the binary). Knob:
//! BENCH_IDLE_SECONDS (default 5).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use portal_runtime::testkit::{TestKeys, logged_listen_address, wait_for_serving};

const PORTAL: &str = env!("CARGO_BIN_EXE_portal");

struct Started {
    child: Child,
    addr: String,
    serving_after: Duration,
}

/// Spawns `portal <service>` on a free port with `envs`, and waits for SERVING.
async fn start(service: &str, dir: &Path, envs: &[(&str, String)]) -> Started {
    let spawned = Instant::now();
    let mut child = Command::new(PORTAL)
        .arg(service)
        .env("PORTAL_LISTEN_ADDR", "127.0.0.1:0")
        .env("PORTAL_MIGRATE", "true")
        .env(
            "PORTAL_DATABASE_URL",
            format!("sqlite:{}", dir.join(format!("{service}.db")).display()),
        )
        .env("PORTAL_LOG_FORMAT", "json")
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .stderr(Stdio::piped())
        .spawn()
        .expect("portal starts");
    let addr = logged_listen_address(&mut child, Duration::from_secs(30))
        .expect("the server logs its address");
    wait_for_serving(addr.parse().unwrap(), Duration::from_secs(30))
        .await
        .expect("SERVING");
    Started {
        child,
        addr,
        serving_after: spawned.elapsed(),
    }
}

/// Resident set size of a process, in MiB.
fn resident_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn stop(mut started: Started) {
    let _ = Command::new("kill")
        .args(["-TERM", &started.child.id().to_string()])
        .status();
    let _ = started.child.wait();
}

#[tokio::main]
async fn main() {
    let idle: u64 = std::env::var("BENCH_IDLE_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let dir = tempfile::tempdir().unwrap();
    let keys = TestKeys::create(dir.path()).unwrap();
    let public = (
        "PORTAL_TOKEN_PUBLIC_KEYS",
        keys.public_key_path.display().to_string(),
    );

    let identity = start(
        "identity",
        dir.path(),
        &[
            public.clone(),
            (
                "PORTAL_TOKEN_PRIVATE_KEY",
                keys.private_key_path.display().to_string(),
            ),
        ],
    )
    .await;
    let identity_url = format!("http://{}", identity.addr);
    let subscription = start(
        "subscription",
        dir.path(),
        &[
            public.clone(),
            ("PORTAL_IDENTITY_URL", identity_url.clone()),
            ("PORTAL_SERVICE_TOKEN", keys.service_token("subscription")),
        ],
    )
    .await;
    let mail = dir.path().join("mail");
    std::fs::create_dir_all(&mail).unwrap();
    let invitation = start(
        "invitation",
        dir.path(),
        &[
            public,
            ("PORTAL_IDENTITY_URL", identity_url),
            (
                "PORTAL_SUBSCRIPTION_URL",
                format!("http://{}", subscription.addr),
            ),
            ("PORTAL_SERVICE_TOKEN", keys.service_token("invitation")),
            ("PORTAL_MAIL_DIR", mail.display().to_string()),
        ],
    )
    .await;

    tokio::time::sleep(Duration::from_secs(idle)).await;
    println!("footprint: each service a separate process on SQLite, idle for {idle} s");
    for (name, started) in [
        ("identity", &identity),
        ("subscription", &subscription),
        ("invitation", &invitation),
    ] {
        println!(
            "{name:<13} SERVING {:>7.1} ms after spawn   resident at idle {:>6.1} MiB   \
             (targets: within 1,000 ms, under 50 MB)",
            started.serving_after.as_secs_f64() * 1e3,
            resident_mib(started.child.id()),
        );
    }
    for started in [invitation, subscription, identity] {
        stop(started);
    }
}
