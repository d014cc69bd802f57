//! Eligibility benchmark: the real server on 127.0.0.1:0 (SQLite, or PostgreSQL when
//! `PORTAL_BENCH_DATABASE_URL` is set), CheckEligibility for 100 schools x 5 school products
//! through a real tonic client, in both views (COMPACT is what the invitation service asks),
//! against a bare gRPC echo (grpc.health.v1 Check) of the same server measured the same way
//! in the same run.
//!
//! `cargo bench -p portal-subscription --bench eligibility`
//! Knobs: BENCH_CALLS (sequential calls, default 2000), BENCH_CONCURRENCY (default 32),
//! BENCH_SECONDS (length of each throughput run, default 5), BENCH_ROUNDS (echo and COMPACT
//! rounds, alternating, default 3; the median ratio is the figure).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use portal_proto::subscription::v1 as pb;
use portal_proto::subscription::v1::eligibility_service_client::EligibilityServiceClient;
use portal_proto::subscription::v1::subscription_service_client::SubscriptionServiceClient;
use portal_runtime::auth::BearerToken;
use portal_runtime::clock::to_timestamp;
use portal_runtime::config::{DatabaseArgs, ServerArgs, TokenArgs};
use portal_runtime::server::Shutdown;
use portal_runtime::testkit::{self, TestKeys, wait_for_serving};
use portal_subscription::{Application, Config};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

const SCHOOLS: usize = 100;
const TRUST_ID: &str = "55555555-0000-4000-8000-000000000001";
/// The catalogue has four school products; the bench database gets a fifth so the query is
/// a true 100 x 5.
const PRODUCTS: [&str; 5] = ["websites-cms", "comms-hub", "sonar", "mis", "bench-extra"];

fn school(i: usize) -> String {
    format!("55555555-0000-4000-8000-{:012}", i + 1_001)
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Debug)]
struct Figures {
    p50: Duration,
    p99: Duration,
    mean: Duration,
    rate: f64,
    /// The whole machine's busy CPU per call (client and server share it).
    cpu: Option<Duration>,
}

/// N sequential calls for latency, then `concurrency` callers for `seconds` for throughput.
async fn measure<F, Fut>(call: F, calls: usize, concurrency: usize, seconds: u64) -> Figures
where
    F: Fn() -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    for _ in 0..(calls / 10).max(50) {
        call().await;
    }
    let mut latencies = Vec::with_capacity(calls);
    for _ in 0..calls {
        let start = Instant::now();
        call().await;
        latencies.push(start.elapsed());
    }
    latencies.sort();
    let pick = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    let mean = latencies.iter().sum::<Duration>() / latencies.len() as u32;

    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let busy = testkit::machine_busy();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let call = call.clone();
            let done = done.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    call().await;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        let _ = worker.await;
    }
    let calls = done.load(Ordering::Relaxed) as f64;
    let rate = calls / started.elapsed().as_secs_f64();
    Figures {
        p50: pick(0.50),
        p99: pick(0.99),
        mean,
        rate,
        cpu: testkit::cpu_per_op(busy, testkit::machine_busy(), calls),
    }
}

/// A fresh PostgreSQL schema for the run, when a server is given.
async fn postgres_schema(base: &str) -> anyhow::Result<(String, String)> {
    let schema = format!(
        "bench_{:032x}",
        portal_runtime::vocab::TrustId::generate().as_u128()
    );
    let pool = sqlx::PgPool::connect(base).await?;
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&pool)
        .await?;
    pool.close().await;
    let sep = if base.contains('?') { '&' } else { '?' };
    Ok((format!("{base}{sep}options[search_path]={schema}"), schema))
}

/// Adds the fifth school product to this run's own database.
async fn add_extra_product(database: &DatabaseArgs) -> anyhow::Result<()> {
    portal_subscription::migrate(database).await?;
    let pool = portal_runtime::db::DbPool::connect_lazy(&database.settings())?;
    let product =
        "INSERT INTO products (key, name, scope) VALUES ('bench-extra', 'Bench Extra', 'SCHOOL')";
    let role = "INSERT INTO roles (product_key, key, name, description, position) \
                VALUES ('bench-extra', 'viewer', 'Viewer', 'Benchmark product', 1)";
    match &pool {
        portal_runtime::db::DbPool::Sqlite(p) => {
            sqlx::query(product).execute(p).await?;
            sqlx::query(role).execute(p).await?;
        }
        portal_runtime::db::DbPool::Postgres(p) => {
            sqlx::query(product).execute(p).await?;
            sqlx::query(role).execute(p).await?;
        }
    }
    pool.close().await;
    Ok(())
}

type Authed = InterceptedService<Channel, BearerToken>;

/// 100 schools x 5 products, in every situation: mostly active, some trials, cancellations,
/// lapsed periods with renewals, expired ones, and gaps.
async fn seed(billing: &mut SubscriptionServiceClient<Authed>) -> anyhow::Result<usize> {
    let now = chrono::Utc::now();
    let year = chrono::Duration::days(365);
    let mut created = 0;
    let mut create = |org: String,
                      kind: pb::OrganizationKind,
                      product: &str,
                      status: pb::SubscriptionStatus,
                      start: chrono::DateTime<chrono::Utc>,
                      end: Option<chrono::DateTime<chrono::Utc>>| {
        created += 1;
        pb::CreateSubscriptionRequest {
            subscription: Some(pb::Subscription {
                trust_id: TRUST_ID.into(),
                organization_kind: kind as i32,
                organization_id: org,
                product_key: product.into(),
                status: status as i32,
                start_time: Some(to_timestamp(start)),
                end_time: end.map(to_timestamp),
                ..Default::default()
            }),
            request_id: String::new(),
        }
    };
    use pb::SubscriptionStatus as S;
    let mut requests = vec![create(
        TRUST_ID.into(),
        pb::OrganizationKind::Trust,
        "portal",
        S::Active,
        now - year,
        None,
    )];
    for i in 0..SCHOOLS {
        for (p, product) in PRODUCTS.iter().enumerate() {
            let kind = pb::OrganizationKind::School;
            match (i + p) % 10 {
                0 => {} // not subscribed
                1 => requests.push(create(
                    school(i),
                    kind,
                    product,
                    S::Trial,
                    now - year,
                    Some(now + year),
                )),
                2 => {
                    // A lapsed period followed by its renewal.
                    requests.push(create(
                        school(i),
                        kind,
                        product,
                        S::Active,
                        now - year * 2,
                        Some(now - year),
                    ));
                    requests.push(create(
                        school(i),
                        kind,
                        product,
                        S::Active,
                        now - year,
                        None,
                    ));
                }
                3 => requests.push(create(
                    school(i),
                    kind,
                    product,
                    S::Active,
                    now + year,
                    None,
                )),
                _ => requests.push(create(
                    school(i),
                    kind,
                    product,
                    S::Active,
                    now - year,
                    Some(now + year),
                )),
            }
        }
    }
    let total = created;
    for request in requests {
        billing.create_subscription(request).await?;
    }
    Ok(total)
}

/// One CheckEligibility call of `request`, checked to answer every school.
fn calling(
    client: EligibilityServiceClient<Authed>,
    request: pb::CheckEligibilityRequest,
    expected_listed: usize,
) -> impl Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
+ Clone
+ Send
+ Sync
+ 'static {
    move || {
        let mut client = client.clone();
        let request = request.clone();
        Box::pin(async move {
            let answer = client
                .check_eligibility(request)
                .await
                .expect("eligibility call")
                .into_inner();
            // FULL lists every pair, COMPACT the refused ones.
            let listed = answer.pairs.len() + answer.refused.map_or(0, |r| r.pairs.len());
            assert_eq!(listed, expected_listed);
        })
    }
}

fn print(name: &str, f: &Figures) {
    println!(
        "{name:<40} p50 {:>8.3} ms   p99 {:>8.3} ms   mean {:>8.3} ms   {:>9.0} calls/s   {}",
        f.p50.as_secs_f64() * 1e3,
        f.p99.as_secs_f64() * 1e3,
        f.mean.as_secs_f64() * 1e3,
        f.rate,
        f.cpu.map_or("CPU not measured".into(), |d| format!(
            "{:>6.1} us machine CPU per call",
            d.as_secs_f64() * 1e6
        )),
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let calls = env_number("BENCH_CALLS", 2_000) as usize;
    let concurrency = env_number("BENCH_CONCURRENCY", 32) as usize;
    let seconds = env_number("BENCH_SECONDS", 5);
    let rounds = env_number("BENCH_ROUNDS", 3).max(1) as usize;
    let dir = tempfile::tempdir()?;
    let keys = TestKeys::create(dir.path())?;
    let (url, schema, backend) = match std::env::var("PORTAL_BENCH_DATABASE_URL") {
        Ok(base) if !base.is_empty() => {
            let (url, schema) = postgres_schema(&base).await?;
            (url, Some((base, schema)), "PostgreSQL")
        }
        _ => (
            portal_runtime::db::testing::sqlite_url(dir.path()),
            None,
            "SQLite",
        ),
    };
    let database = DatabaseArgs::with_max_connections(url, 16);
    add_extra_product(&database).await?;
    let config = Config {
        server: ServerArgs::local("127.0.0.1:0".parse()?),
        database: database.clone(),
        tokens: TokenArgs {
            token_public_keys: vec![keys.public_key_path.clone()],
        },
        identity_url: None,
        service_token: None,
        service_token_file: None,
        views: Default::default(),
    };
    let app = Application::build(config, portal_runtime::clock::system()).await?;
    let addr = app.local_addr();
    let shutdown = Shutdown::new();
    let server = tokio::spawn(app.run(shutdown.clone()));
    wait_for_serving(addr, Duration::from_secs(20)).await?;

    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
        .tcp_nodelay(true)
        .connect()
        .await?;
    let authed = |name: &str| -> anyhow::Result<Authed> {
        Ok(InterceptedService::new(
            channel.clone(),
            BearerToken::new(&keys.service_token(name))?,
        ))
    };
    let mut billing = SubscriptionServiceClient::new(authed("billing")?);
    let seeded = seed(&mut billing).await?;

    let request = pb::CheckEligibilityRequest {
        trust_id: TRUST_ID.into(),
        trust_product_key: "portal".into(),
        school_product_keys: PRODUCTS.iter().map(|p| p.to_string()).collect(),
        school_ids: (0..SCHOOLS).map(school).collect(),
        at: None,
        view: pb::EligibilityView::Full as i32,
    };
    let compact_request = pb::CheckEligibilityRequest {
        view: pb::EligibilityView::Compact as i32,
        ..request.clone()
    };
    let eligibility = EligibilityServiceClient::new(authed("invitation")?);
    let sample = eligibility
        .clone()
        .check_eligibility(request.clone())
        .await?
        .into_inner();
    let eligible = sample.pairs.iter().filter(|p| p.eligible).count();
    let reply_bytes = prost::Message::encoded_len(&sample);
    let compact_sample = eligibility
        .clone()
        .check_eligibility(compact_request.clone())
        .await?
        .into_inner();
    let compact_bytes = prost::Message::encoded_len(&compact_sample);
    let compact_eligible = sample.pairs.len()
        - compact_sample
            .refused
            .as_ref()
            .map_or(0, |refused| refused.pairs.len());
    anyhow::ensure!(
        compact_eligible == eligible,
        "the two views disagree: {compact_eligible} and {eligible} eligible pairs"
    );

    let eligibility_call = calling(eligibility.clone(), request.clone(), sample.pairs.len());
    let compact_call = calling(
        eligibility.clone(),
        compact_request.clone(),
        sample.pairs.len() - eligible,
    );
    let health = HealthClient::new(channel.clone());
    let echo_call = move || {
        let mut client = health.clone();
        async move {
            client
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .expect("health check");
        }
    };

    println!(
        "eligibility benchmark: {backend}, {SCHOOLS} schools x {} products ({} pairs, {eligible} eligible, \
         {seeded} subscriptions; reply {reply_bytes} bytes FULL, {compact_bytes} bytes COMPACT); \
         {calls} sequential calls, {concurrency} concurrent callers for {seconds} s",
        PRODUCTS.len(),
        SCHOOLS * PRODUCTS.len()
    );
    // FULL once, for the comparison; then rounds of echo and COMPACT alternate, so that the
    // drift of a shared machine's speed during the run weighs on both alike.
    let full = measure(eligibility_call, calls, concurrency, seconds).await;
    print("CheckEligibility 100 x 5, FULL", &full);
    let mut ratios = Vec::new();
    let mut worst_p99 = Duration::ZERO;
    for round in 1..=rounds {
        let echo = measure(echo_call.clone(), calls, concurrency, seconds).await;
        let check = measure(compact_call.clone(), calls, concurrency, seconds).await;
        print(
            &format!("round {round}: grpc.health.v1 Check (echo)"),
            &echo,
        );
        print(&format!("round {round}: CheckEligibility COMPACT"), &check);
        ratios.push(check.rate / echo.rate);
        worst_p99 = worst_p99.max(check.p99);
        println!(
            "round {round}: COMPACT / echo throughput {:.2}; FULL / echo {:.2}",
            check.rate / echo.rate,
            full.rate / echo.rate,
        );
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "COMPACT (the invitation service's call) / echo throughput, median of {rounds} rounds: \
         {:.2} (target >= 0.50); worst round's p99 {:.3} ms (target < 5 ms)",
        ratios[ratios.len() / 2],
        worst_p99.as_secs_f64() * 1e3,
    );

    shutdown.trigger();
    let _ = server.await;
    if let Some((base, schema)) = schema {
        let pool = sqlx::PgPool::connect(&base).await?;
        sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
            .execute(&pool)
            .await?;
        pool.close().await;
    }
    Ok(())
}

#[global_allocator]
static ALLOC: portal_runtime::alloc::Allocator = portal_runtime::alloc::Allocator;
