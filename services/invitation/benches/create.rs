//! CreateInvitation throughput and latency on PostgreSQL, against pgbench on the same machine.
//!
//! Starts identity, subscription and invitation in-process on fresh schemas of
//! `PORTAL_BENCH_DATABASE_URL` (default postgres://postgres@127.0.0.1:5432/test), seeds the
//! demo data plus five more schools (ten in all) and enough staff for one invitation each,
//! then creates invitations (1 trust product + 3 school products × 10 schools) with a real
//! client at a fixed concurrency for a fixed time, and runs pgbench's default script against a
//! scratch database for as long; prints both rates and their ratio.
//!
//! Rounds of creates and of pgbench alternate (three of each by default) and the median of
//! the rounds' ratios is the figure, so that the drift of a shared machine's speed during the
//! run does not decide it.
//!
//! `cargo bench -p portal-invitation --bench create`; `BENCH_CONCURRENCY`, `BENCH_SECONDS`
//! (per round), `BENCH_ROUNDS` adjust the run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use portal_proto::identity::v1 as id;
use portal_proto::invitation::v1 as inv;
use portal_proto::subscription::v1 as sub;
use portal_runtime::auth::BearerToken;
use portal_runtime::clock::{self, to_timestamp};
use portal_runtime::config::{DatabaseArgs, ServerArgs, TokenArgs};
use portal_runtime::demo;
use portal_runtime::server::Shutdown;
use portal_runtime::testkit::{self, TestKeys, wait_for_serving};

type Authed = InterceptedService<Channel, BearerToken>;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn client(addr: std::net::SocketAddr, token: &str) -> Authed {
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .tcp_nodelay(true)
        .connect_lazy();
    InterceptedService::new(channel, BearerToken::new(token).unwrap())
}

/// One connection to the benchmark's server, for setting up and clearing away.
async fn admin_pool(base: &str) -> sqlx::PgPool {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(base)
        .await
        .expect("PostgreSQL reachable at PORTAL_BENCH_DATABASE_URL")
}

/// Schemas this run made, dropped at its end.
static SCHEMAS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

async fn drop_schemas(base: &str) {
    let schemas = std::mem::take(&mut *SCHEMAS.lock().unwrap());
    let pool = admin_pool(base).await;
    for schema in schemas {
        sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
            .execute(&pool)
            .await
            .unwrap();
    }
    pool.close().await;
}

async fn fresh_schema(base: &str) -> String {
    let pool = admin_pool(base).await;
    let schema = format!("bench_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options[search_path]={schema}");
    SCHEMAS.lock().unwrap().push(schema);
    url
}

/// Refreshes the planner's statistics of every table of this run's schemas, as autovacuum does
/// within a minute on a running database. Without it the run measures plans made while the
/// tables were empty: the statements are prepared once and planned for tables of a few rows.
async fn analyze_schemas(base: &str) {
    let schemas = SCHEMAS.lock().unwrap().clone();
    let pool = admin_pool(base).await;
    for schema in schemas {
        let tables: Vec<String> =
            sqlx::query_scalar("SELECT tablename::text FROM pg_tables WHERE schemaname = $1")
                .bind(&schema)
                .fetch_all(&pool)
                .await
                .unwrap();
        for table in tables {
            sqlx::query(&format!("ANALYZE {schema}.{table}"))
                .execute(&pool)
                .await
                .unwrap();
        }
    }
    pool.close().await;
}

fn database(url: String) -> DatabaseArgs {
    DatabaseArgs::with_max_connections(url, 16)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn find_pgbench() -> Option<PathBuf> {
    if Command::new("pgbench").arg("--version").output().is_ok() {
        return Some(PathBuf::from("pgbench"));
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin/pgbench")))
        .filter(|p| p.exists())
        .collect();
    found.sort();
    found.pop()
}

fn cpu_text(per_op: Option<Duration>) -> String {
    per_op.map_or("CPU not measured".into(), |d| {
        format!("{:.2} ms machine CPU each", d.as_secs_f64() * 1e3)
    })
}

/// pgbench and a scratch database initialised for its default (TPC-B-like) script.
struct Pgbench {
    program: PathBuf,
    url: String,
}

impl Pgbench {
    async fn init(base: &str) -> Option<Self> {
        let Some(program) = find_pgbench() else {
            println!("pgbench not found on PATH or under /usr/lib/postgresql/*/bin: skipped");
            return None;
        };
        let pool = admin_pool(base).await;
        let scratch = "portal_bench_pgbench";
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {scratch}"))
            .execute(&pool)
            .await;
        sqlx::query(&format!("CREATE DATABASE {scratch}"))
            .execute(&pool)
            .await
            .ok()?;
        pool.close().await;
        let url = database_url(base, scratch);
        let init = Command::new(&program)
            .args(["-i", "-q", &url])
            .output()
            .ok()?;
        if !init.status.success() {
            println!(
                "pgbench -i failed: {}",
                String::from_utf8_lossy(&init.stderr)
            );
            return None;
        }
        Some(Self { program, url })
    }

    /// Runs the default script; returns its tps and the machine's CPU per transaction.
    fn run(&self, clients: usize, seconds: u64) -> Option<(f64, Option<Duration>)> {
        let busy = testkit::machine_busy();
        let run = Command::new(&self.program)
            .args([
                "-c",
                &clients.to_string(),
                "-j",
                "2",
                "-T",
                &seconds.to_string(),
                &self.url,
            ])
            .output()
            .ok()?;
        let busy_after = testkit::machine_busy();
        let text = String::from_utf8_lossy(&run.stdout);
        let tps: Option<f64> = text
            .lines()
            .find(|l| l.starts_with("tps = "))
            .and_then(|l| l["tps = ".len()..].split_whitespace().next())
            .and_then(|v| v.parse().ok());
        if tps.is_none() {
            println!(
                "pgbench output not understood:\n{text}\n{}",
                String::from_utf8_lossy(&run.stderr)
            );
        }
        let processed = text
            .lines()
            .find(|l| l.starts_with("number of transactions actually processed: "))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
        tps.map(|tps| (tps, testkit::cpu_per_op(busy, busy_after, processed)))
    }
}

/// The URL of database `db` on the server of `base` (its query string dropped).
fn database_url(base: &str, db: &str) -> String {
    let server = base.split('?').next().unwrap_or(base);
    match server.rsplit_once('/') {
        Some((prefix, _)) if prefix.contains("://") && !prefix.ends_with('/') => {
            format!("{prefix}/{db}")
        }
        _ => format!("{server}/{db}"),
    }
}

#[tokio::main]
async fn main() {
    let base = std::env::var("PORTAL_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let concurrency: usize = env_or("BENCH_CONCURRENCY", 8);
    if let Ok(filter) = std::env::var("BENCH_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .init();
    }
    let seconds: u64 = env_or("BENCH_SECONDS", 10);
    let rounds: usize = env_or("BENCH_ROUNDS", 3);

    let dir = tempfile::tempdir().unwrap();
    let keys = TestKeys::create(dir.path()).unwrap();
    let tokens = TokenArgs {
        token_public_keys: vec![keys.public_key_path.clone()],
    };
    let local = || ServerArgs::local("127.0.0.1:0".parse().unwrap());
    let clock = clock::system();
    let shutdown = Shutdown::new();

    let identity_db = database(fresh_schema(&base).await);
    let subscription_db = database(fresh_schema(&base).await);
    let invitation_db = database(fresh_schema(&base).await);
    portal_identity::seed_demo(&identity_db).await.unwrap();
    portal_subscription::seed_demo(&subscription_db)
        .await
        .unwrap();
    portal_invitation::seed_demo(&invitation_db).await.unwrap();

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
    .await
    .unwrap();
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
    .await
    .unwrap();
    let subscription_addr = subscription.local_addr();
    let invitation = portal_invitation::Application::build(
        portal_invitation::Config::new(
            local(),
            invitation_db,
            tokens,
            format!("http://{identity_addr}"),
            format!("http://{subscription_addr}"),
            keys.service_token("invitation"),
        ),
        clock.clone(),
    )
    .await
    .unwrap();
    let invitation_addr = invitation.local_addr();
    tokio::spawn(identity.run(shutdown.clone()));
    tokio::spawn(subscription.run(shutdown.clone()));
    tokio::spawn(invitation.run(shutdown.clone()));
    for addr in [identity_addr, subscription_addr, invitation_addr] {
        wait_for_serving(addr, Duration::from_secs(30))
            .await
            .unwrap();
    }

    // Ten schools: the demo's five and five more, subscribed to the three school products.
    let products = ["websites-cms", "comms-hub", "sonar"];
    let mut schools: Vec<String> = demo::SCHOOLS.iter().map(|s| s.0.to_string()).collect();
    let mut directory = id::directory_service_client::DirectoryServiceClient::new(client(
        identity_addr,
        &keys.service_token("operator"),
    ));
    let mut billing = sub::subscription_service_client::SubscriptionServiceClient::new(client(
        subscription_addr,
        &keys.service_token("billing"),
    ));
    for n in 0..5 {
        let school = directory
            .create_school(id::CreateSchoolRequest {
                trust_id: demo::TRUST_ID.into(),
                name: format!("Bench School {n}"),
                urn: None,
                request_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .school
            .unwrap();
        for product in products {
            billing
                .create_subscription(sub::CreateSubscriptionRequest {
                    subscription: Some(sub::Subscription {
                        trust_id: demo::TRUST_ID.into(),
                        organization_kind: sub::OrganizationKind::School as i32,
                        organization_id: school.id.clone(),
                        product_key: product.into(),
                        status: sub::SubscriptionStatus::Active as i32,
                        start_time: Some(to_timestamp(
                            chrono::Utc::now() - chrono::Duration::days(30),
                        )),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                })
                .await
                .unwrap();
        }
        schools.push(school.id);
    }

    // Staff: the demo's twenty and enough more for one invitation each.
    let staff_count: usize = env_or("BENCH_STAFF", 40_000);
    let mut records: Vec<id::StaffRecordInput> = demo::STAFF
        .iter()
        .map(|s| id::StaffRecordInput {
            mis_id: s.1.into(),
            given_name: s.2.into(),
            family_name: s.3.into(),
            email: s.4.into(),
            job_title: s.5.into(),
        })
        .collect();
    for n in 0..staff_count {
        records.push(id::StaffRecordInput {
            mis_id: format!("BENCH{n:06}"),
            given_name: "Bench".into(),
            family_name: format!("Person {n}"),
            email: format!("bench.person.{n}@northfield.example.org"),
            job_title: "Teacher".into(),
        });
    }
    let mut staff_client = id::staff_service_client::StaffServiceClient::new(client(
        identity_addr,
        &keys.service_token("mis-sync"),
    ));
    let chunks: Vec<id::StreamSyncStaffRequest> = records
        .chunks(5000)
        .map(|chunk| id::StreamSyncStaffRequest {
            trust_id: demo::TRUST_ID.into(),
            records: chunk.to_vec(),
        })
        .collect();
    staff_client
        .stream_sync_staff(futures::stream::iter(chunks))
        .await
        .unwrap();
    let mut staff_ids = Vec::with_capacity(staff_count);
    let mut page_token = String::new();
    loop {
        let page = staff_client
            .list_staff_members(id::ListStaffMembersRequest {
                trust_id: demo::TRUST_ID.into(),
                page_size: 500,
                page_token: page_token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        staff_ids.extend(
            page.staff_members
                .into_iter()
                .filter(|s| s.mis_id.starts_with("BENCH"))
                .map(|s| s.id),
        );
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    println!(
        "setup: 3 services on PostgreSQL, {} schools, {} bench staff",
        schools.len(),
        staff_ids.len()
    );

    let admin = id::account_service_client::AccountServiceClient::new(
        Endpoint::from_shared(format!("http://{identity_addr}"))
            .unwrap()
            .connect_lazy(),
    )
    .sign_in(id::SignInRequest {
        email: demo::ADMIN_EMAIL.into(),
        password: demo::ADMIN_PASSWORD.into(),
    })
    .await
    .unwrap()
    .into_inner()
    .access_token;

    if std::env::var_os("BENCH_PROBE").is_some() {
        probe(
            identity_addr,
            subscription_addr,
            &keys,
            &staff_ids,
            &schools,
            &products,
        )
        .await;
        probe_store(&base).await;
    }
    let staff_ids = Arc::new(staff_ids);
    let schools = Arc::new(schools);
    let next = Arc::new(AtomicUsize::new(0));
    let request = move |staff_id: String, schools: &[String]| inv::CreateInvitationRequest {
        trust_id: demo::TRUST_ID.into(),
        staff_id,
        trust_access: Some(inv::TrustAccess {
            product_key: "portal".into(),
            role_key: "full-edit".into(),
        }),
        school_access: Some(inv::SchoolAccess {
            product_keys: products.iter().map(|p| p.to_string()).collect(),
            role_key: "administrator".into(),
            school_ids: schools.to_vec(),
        }),
        request_id: String::new(),
        validate_only: false,
    };

    // Warm-up: connections, caches, some history for the statistics, then plans made on them.
    for round in [200, 20] {
        if round == 20 {
            analyze_schemas(&base).await;
        }
        let mut c = inv::invitation_service_client::InvitationServiceClient::new(client(
            invitation_addr,
            &admin,
        ));
        for _ in 0..round {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let reply = c
                .create_invitation(request(staff_ids[i].clone(), &schools))
                .await
                .unwrap()
                .into_inner()
                .invitation
                .unwrap();
            assert_eq!(reply.granted.len(), 1 + 30 - reply.skipped.len());
        }
    }

    // Rounds of creates and of pgbench alternate, so that a change in the machine's speed
    // during the run (it shares its host) weighs on both figures alike.
    let pgbench = Pgbench::init(&base).await;
    let mut all_latencies = Vec::new();
    let mut ratios = Vec::new();
    for round in 1..=rounds {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let mut workers = Vec::new();
        for _ in 0..concurrency {
            let mut c = inv::invitation_service_client::InvitationServiceClient::new(client(
                invitation_addr,
                &admin,
            ));
            let staff_ids = staff_ids.clone();
            let schools = schools.clone();
            let next = next.clone();
            workers.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0usize;
                while Instant::now() < deadline {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(staff_id) = staff_ids.get(i) else {
                        break;
                    };
                    let started = Instant::now();
                    match c
                        .create_invitation(request(staff_id.clone(), &schools))
                        .await
                    {
                        Ok(_) => latencies.push(started.elapsed()),
                        Err(status) => {
                            errors += 1;
                            if errors < 3 {
                                eprintln!("create failed: {status:?}");
                            }
                        }
                    }
                }
                (latencies, errors)
            }));
        }
        let started = Instant::now();
        let busy = testkit::machine_busy();
        let mut latencies = Vec::new();
        let mut errors = 0;
        for worker in workers {
            let (l, e) = worker.await.unwrap();
            latencies.extend(l);
            errors += e;
        }
        let elapsed = started.elapsed();
        let cpu = cpu_text(testkit::cpu_per_op(
            busy,
            testkit::machine_busy(),
            latencies.len() as f64,
        ));
        latencies.sort();
        let rate = latencies.len() as f64 / elapsed.as_secs_f64();
        println!(
            "round {round}: create invitation (1 trust product + 3 school products x 10 \
             schools), {concurrency} concurrent clients, {:.1} s: {} ok, {errors} failed, \
             {rate:.0}/s, p50 {:.2} ms, p99 {:.2} ms, {cpu}",
            elapsed.as_secs_f64(),
            latencies.len(),
            percentile(&latencies, 0.50).as_secs_f64() * 1000.0,
            percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
        );
        all_latencies.extend(latencies);
        // Let the outbox settle the round's last emails before pgbench has the machine.
        tokio::time::sleep(Duration::from_millis(300)).await;
        match pgbench.as_ref().and_then(|p| p.run(concurrency, seconds)) {
            Some((tps, cpu)) => {
                println!(
                    "round {round}: pgbench default script, -c {concurrency} -j 2 -T {seconds}: \
                     {tps:.0} tps, {}; ratio {:.2}",
                    cpu_text(cpu),
                    rate / tps
                );
                ratios.push(rate / tps);
            }
            None => println!("round {round}: pgbench figure unavailable"),
        }
    }
    shutdown.trigger();
    all_latencies.sort();
    ratios.sort_by(f64::total_cmp);
    if !ratios.is_empty() {
        println!(
            "ratio create/pgbench, median of {} rounds: {:.2} (target >= 0.50); p99 over all \
             rounds {:.2} ms (target < 25 ms)",
            ratios.len(),
            ratios[ratios.len() / 2],
            percentile(&all_latencies, 0.99).as_secs_f64() * 1000.0,
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop_schemas(&base).await;
}

/// Times each call a create makes to identity and subscription, one at a time.
async fn probe(
    identity: std::net::SocketAddr,
    subscription: std::net::SocketAddr,
    keys: &TestKeys,
    staff_ids: &[String],
    schools: &[String],
    products: &[&str],
) {
    let token = keys.service_token("invitation");
    let mut grants = id::grant_service_client::GrantServiceClient::new(client(identity, &token));
    let mut staff = id::staff_service_client::StaffServiceClient::new(client(identity, &token));
    let mut accounts =
        id::account_service_client::AccountServiceClient::new(client(identity, &token));
    let mut eligibility = sub::eligibility_service_client::EligibilityServiceClient::new(client(
        subscription,
        &token,
    ));
    let admin_id = uuid::Uuid::new_v4().to_string();
    let report = |name: &str, mut times: Vec<Duration>| {
        times.sort();
        println!(
            "  {name}: p50 {:.2} ms, p99 {:.2} ms",
            percentile(&times, 0.5).as_secs_f64() * 1000.0,
            percentile(&times, 0.99).as_secs_f64() * 1000.0
        );
    };
    println!("probe (sequential, 50 calls each):");
    let mut times = Vec::new();
    for _ in 0..50 {
        let t = Instant::now();
        grants
            .check_administrator(id::CheckAdministratorRequest {
                trust_id: demo::TRUST_ID.into(),
                account_id: admin_id.clone(),
            })
            .await
            .unwrap();
        times.push(t.elapsed());
    }
    report("identity CheckAdministrator", times);
    let mut times = Vec::new();
    for staff_id in staff_ids.iter().rev().take(50) {
        let t = Instant::now();
        staff
            .get_staff_member(id::GetStaffMemberRequest {
                trust_id: demo::TRUST_ID.into(),
                staff_id: staff_id.clone(),
            })
            .await
            .unwrap();
        times.push(t.elapsed());
    }
    report("identity GetStaffMember", times);
    let mut times = Vec::new();
    for n in 0..50 {
        let t = Instant::now();
        accounts
            .lookup_account(id::LookupAccountRequest {
                email: format!("bench.person.{n}@northfield.example.org"),
            })
            .await
            .unwrap();
        times.push(t.elapsed());
    }
    report("identity LookupAccount", times);
    let mut times = Vec::new();
    for _ in 0..50 {
        let t = Instant::now();
        eligibility
            .check_eligibility(sub::CheckEligibilityRequest {
                trust_id: demo::TRUST_ID.into(),
                trust_product_key: "portal".into(),
                school_product_keys: products.iter().map(|p| p.to_string()).collect(),
                school_ids: schools.to_vec(),
                at: None,
                view: sub::EligibilityView::Compact as i32,
            })
            .await
            .unwrap();
        times.push(t.elapsed());
    }
    report("subscription CheckEligibility 3x10", times);
    let mut times = Vec::new();
    for n in 0..50 {
        let mut specs = vec![id::GrantSpec {
            organization_kind: id::OrganizationKind::Trust as i32,
            organization_id: demo::TRUST_ID.into(),
            product_key: "portal".into(),
            role_key: "full-edit".into(),
        }];
        for school in schools {
            for product in products {
                specs.push(id::GrantSpec {
                    organization_kind: id::OrganizationKind::School as i32,
                    organization_id: school.clone(),
                    product_key: product.to_string(),
                    role_key: "administrator".into(),
                });
            }
        }
        let t = Instant::now();
        grants
            .batch_grant(id::BatchGrantRequest {
                invitation_id: uuid::Uuid::new_v4().to_string(),
                trust_id: demo::TRUST_ID.into(),
                email: format!("probe.{n}@northfield.example.org"),
                staff_id: uuid::Uuid::new_v4().to_string(),
                grants: specs,
                activate: false,
            })
            .await
            .unwrap();
        times.push(t.elapsed());
    }
    report("identity BatchGrant 31 grants", times);
}

/// Times the invitation store's create transaction on its own.
async fn probe_store(base: &str) {
    use portal_invitation::domain::{
        Delivery, GrantState, GrantedAccess, Invitation, Org, Status, TrustAccess,
    };
    use portal_invitation::store::NewInvitation;
    use portal_runtime::vocab::{
        AccountId, Email, InvitationId, ProductKey, RoleKey, StaffId, TrustId,
    };
    let pool = portal_runtime::db::DbPool::connect_lazy(&portal_runtime::db::DbSettings::new(
        fresh_schema(base).await,
    ))
    .unwrap();
    pool.migrate(&portal_invitation::MIGRATIONS).await.unwrap();
    let store = portal_invitation::store::open(&pool);
    let trust_id = TrustId::parse(demo::TRUST_ID).unwrap();
    let mut times = Vec::new();
    for _ in 0..50 {
        let now = chrono::Utc::now();
        let invitation = Invitation {
            id: InvitationId::generate(),
            trust_id,
            trust_name: "T".into(),
            staff_id: StaffId::generate(),
            staff_email: Email::parse("a@b.org").unwrap(),
            staff_given_name: "A".into(),
            inviter_account_id: AccountId::generate(),
            trust_access: TrustAccess {
                product_key: ProductKey::from_known("portal"),
                role_key: RoleKey::from_known("full-edit"),
            },
            school_access: None,
            status: Status::Pending,
            delivery: Delivery::SignUpLink,
            granted: vec![GrantedAccess {
                org: Org::Trust(trust_id),
                product_key: ProductKey::from_known("portal"),
                role_key: RoleKey::from_known("full-edit"),
                state: GrantState::Pending,
                previous_role_key: None,
            }],
            skipped: vec![],
            expire_time: Some(now),
            current_link_hash: None,
            accepting: false,
            account_id: None,
            create_time: now,
            update_time: now,
            accept_until: 0,
            settled_by: None,
            revoke_reason: None,
        };
        let t = Instant::now();
        store
            .create(NewInvitation {
                invitation: &invitation,
                request: None,
                steps: &[],
                now,
                wall_now: 0,
            })
            .await
            .unwrap();
        times.push(t.elapsed());
    }
    times.sort();
    println!(
        "  invitation store create transaction: p50 {:.2} ms, p99 {:.2} ms",
        percentile(&times, 0.5).as_secs_f64() * 1000.0,
        percentile(&times, 0.99).as_secs_f64() * 1000.0
    );
}

#[global_allocator]
static ALLOC: portal_runtime::alloc::Allocator = portal_runtime::alloc::Allocator;
