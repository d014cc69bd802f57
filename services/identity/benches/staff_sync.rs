//! Staff sync benchmark: a 100,000-record snapshot streamed through StreamSyncStaff to the real
//! server on PostgreSQL, then the same snapshot again (idempotent), then a changed one (1%
//! changed, 1% removed, 1% new).
//!
//! `PORTAL_BENCH_DATABASE_URL` (default postgres://postgres@127.0.0.1:5432/test); each run
//! uses a fresh schema and drops it at the end.

use std::time::{Duration, Instant};

use portal_identity::{Application, Config};
use portal_proto::identity::v1 as pb;
use portal_proto::identity::v1::directory_service_client::DirectoryServiceClient;
use portal_proto::identity::v1::staff_service_client::StaffServiceClient;
use portal_runtime::auth::BearerToken;
use portal_runtime::clock;
use portal_runtime::config::{DatabaseArgs, ServerArgs, TokenArgs};
use portal_runtime::server::Shutdown;
use portal_runtime::testkit::{TestKeys, wait_for_serving};

const RECORDS: usize = 100_000;
const CHUNK: usize = 5_000;

fn record(i: usize, job_title: &str) -> pb::StaffRecordInput {
    pb::StaffRecordInput {
        mis_id: format!("MIS{i:07}"),
        given_name: format!("Given{i}"),
        family_name: format!("Family{}", i % 997),
        email: format!("person{i}@bench.example.org"),
        job_title: job_title.to_string(),
    }
}

fn messages(trust_id: &str, records: &[pb::StaffRecordInput]) -> Vec<pb::StreamSyncStaffRequest> {
    records
        .chunks(CHUNK)
        .map(|chunk| pb::StreamSyncStaffRequest {
            trust_id: trust_id.to_string(),
            records: chunk.to_vec(),
        })
        .collect()
}

fn main() -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let base = std::env::var("PORTAL_BENCH_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".into());
    let schema = format!("bench_{}", uuid::Uuid::new_v4().simple());
    let admin = sqlx::PgPool::connect(&base).await?;
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await?;
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options[search_path]={schema}");

    let result = bench(url).await;
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&admin)
        .await?;
    admin.close().await;
    result
}

async fn bench(url: String) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let keys = TestKeys::create(dir.path())?;
    let config = Config {
        server: ServerArgs {
            request_timeout: Duration::from_secs(120),
            ..ServerArgs::local("127.0.0.1:0".parse()?)
        },
        database: DatabaseArgs::with_max_connections(url, 8),
        tokens: TokenArgs {
            token_public_keys: vec![keys.public_key_path.clone()],
        },
        token_private_key: keys.private_key_path.clone(),
        user_token_ttl: Duration::from_secs(3600),
        sign_in: Default::default(),
    };
    let app = Application::build(config, clock::system()).await?;
    let addr = app.local_addr();
    let shutdown = Shutdown::new();
    let server = tokio::spawn(app.run(shutdown.clone()));
    wait_for_serving(addr, Duration::from_secs(30)).await?;

    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let operator = BearerToken::new(&keys.service_token("operator"))?;
    let trust_id = DirectoryServiceClient::with_interceptor(channel.clone(), operator)
        .create_trust(pb::CreateTrustRequest {
            name: "Benchmark Trust".into(),
            request_id: String::new(),
        })
        .await?
        .into_inner()
        .trust
        .ok_or_else(|| anyhow::anyhow!("no trust"))?
        .id;
    let mut staff = StaffServiceClient::with_interceptor(
        channel,
        BearerToken::new(&keys.service_token("mis-sync"))?,
    );

    let snapshot: Vec<_> = (0..RECORDS).map(|i| record(i, "Teacher")).collect();
    let mut changed = snapshot.clone();
    for r in changed.iter_mut().take(RECORDS / 100) {
        r.job_title = "Head of Year".into();
    }
    changed.truncate(RECORDS - RECORDS / 100);
    changed.extend((RECORDS..RECORDS + RECORDS / 100).map(|i| record(i, "Teacher")));

    println!("staff sync benchmark: {RECORDS} records streamed in chunks of {CHUNK} on PostgreSQL");
    let runs = [
        ("initial snapshot", &snapshot),
        ("same snapshot again", &snapshot),
        ("1% changed, 1% removed, 1% new", &changed),
    ];
    for (name, records) in runs {
        let requests = messages(&trust_id, records);
        let started = Instant::now();
        let summary = staff
            .stream_sync_staff(tokio_stream::iter(requests))
            .await?
            .into_inner()
            .summary
            .ok_or_else(|| anyhow::anyhow!("no summary"))?;
        let elapsed = started.elapsed();
        println!(
            "{name:<32} {:>8.3} s {:>10.0} records/s  received={} added={} updated={} marked_left={} unchanged={}",
            elapsed.as_secs_f64(),
            records.len() as f64 / elapsed.as_secs_f64(),
            summary.received,
            summary.added,
            summary.updated,
            summary.marked_left,
            summary.unchanged,
        );
    }

    shutdown.trigger();
    server.await??;
    Ok(())
}

#[global_allocator]
static ALLOC: portal_runtime::alloc::Allocator = portal_runtime::alloc::Allocator;
