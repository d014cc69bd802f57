//! Failures between the services: before the commit nothing is stored; after it the outbox
//! finishes the work once; several replicas on PostgreSQL do each step once; emails reach a
//! real SMTP server.

#![allow(clippy::unwrap_used)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tonic::Code;

use portal_proto::identity::v1 as id;
use portal_proto::invitation::v1 as inv;
use portal_suite_tests::{Backend, Suite, create_request, demo, read_mail_dir, school, staff};

async fn list_all(suite: &Suite, admin: &str) -> Vec<inv::Invitation> {
    suite
        .invitations(Some(admin))
        .list_invitations(inv::ListInvitationsRequest {
            trust_id: demo::TRUST_ID.into(),
            page_size: 500,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .invitations
}

#[tokio::test]
async fn a_dependency_down_before_the_commit_answers_unavailable_and_stores_nothing() {
    for backend in Backend::all() {
        let suite = Suite::start(backend).await;
        let admin = suite.admin().await;
        let mut client = suite.invitations(Some(&admin));
        let request = || create_request(staff(2).0, ("portal", "full-edit"), None);

        suite.subscription_faults.set_down(true);
        let status = client.create_invitation(request()).await.unwrap_err();
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        suite.subscription_faults.heal();

        suite.identity_faults.set_down(true);
        let status = client.create_invitation(request()).await.unwrap_err();
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        suite.identity_faults.heal();

        // A dependency that hangs is cut off at the call timeout (2 s here).
        suite.identity_faults.set_hang(true);
        let started = Instant::now();
        let status = client.create_invitation(request()).await.unwrap_err();
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        suite.identity_faults.heal();

        assert!(
            list_all(&suite, &admin).await.is_empty(),
            "{backend:?}: no invitation row"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(suite.emails().is_empty());
        // And once the dependencies are back, the same request goes through.
        client.create_invitation(request()).await.expect("created");
    }
}

#[tokio::test]
async fn grants_that_fail_after_the_commit_are_completed_by_the_outbox_once() {
    for backend in Backend::all() {
        let suite = Suite::start(backend).await;
        let admin = suite.admin().await;
        let mut client = suite.invitations(Some(&admin));
        let (ben_id, ben_email, _) = staff(1);
        let (_, ben_account) = suite
            .sign_in_account(ben_email, demo::EXISTING_USER_PASSWORD)
            .await;
        let before = suite.access_of(&ben_account).await;

        suite.identity_faults.fail_method("GrantService/BatchGrant");
        let made = client
            .create_invitation(create_request(
                ben_id,
                ("portal", "partial-edit"),
                Some((&["comms-hub"], "viewer", &[school(1)])),
            ))
            .await
            .expect("committed even though the grant call failed")
            .into_inner()
            .invitation
            .unwrap();
        assert_eq!(made.status, inv::InvitationStatus::Granted as i32);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            suite.access_of(&ben_account).await,
            before,
            "not granted yet"
        );

        suite.identity_faults.heal();
        let after = suite
            .eventually("the outbox grants", || async {
                let now = suite.access_of(&ben_account).await;
                (now.len() == before.len() + 2).then_some(now)
            })
            .await;
        let active = id::GrantStatus::Active as i32;
        assert!(after.contains(&(
            demo::TRUST_ID.into(),
            "portal".into(),
            "partial-edit".into(),
            active
        )));
        assert!(after.contains(&(
            school(1).into(),
            "comms-hub".into(),
            "viewer".into(),
            active
        )));
        // Done once: later rounds add nothing and one notice was sent.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(suite.access_of(&ben_account).await, after);
        assert_eq!(suite.emails_to(ben_email).len(), 1);
    }
}

#[tokio::test]
async fn an_accept_waits_for_grants_the_outbox_has_not_made_yet() {
    for backend in Backend::all() {
        let suite = Suite::start(backend).await;
        let admin = suite.admin().await;
        let (staff_id, email, _) = staff(16);
        suite.identity_faults.fail_method("GrantService/BatchGrant");
        suite
            .invitations(Some(&admin))
            .create_invitation(create_request(staff_id, ("portal", "full-edit"), None))
            .await
            .unwrap();
        let token = suite.link_for(email, 1).await;
        let request = inv::AcceptInvitationRequest {
            token: token.clone(),
            given_name: "Priya".into(),
            family_name: "Shah".into(),
            password: "a long enough password".into(),
            request_id: String::new(),
        };
        let status = suite
            .invitations(None)
            .accept_invitation(request.clone())
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        // Nothing changed: no account was registered.
        assert_eq!(
            suite
                .sign_in(email, "a long enough password")
                .await
                .unwrap_err()
                .code(),
            Code::Unauthenticated
        );
        suite.identity_faults.heal();
        let accepted = suite
            .invitations(None)
            .accept_invitation(request)
            .await
            .expect("accepted once identity is back")
            .into_inner();
        let access = suite.access_of(&accepted.account_id).await;
        assert_eq!(access.len(), 1);
        assert_eq!(access[0].3, id::GrantStatus::Active as i32);
    }
}

#[tokio::test]
async fn two_replicas_on_postgresql_send_each_email_and_make_each_grant_once() {
    if !Backend::all().contains(&Backend::Postgres) {
        println!("skipped: PORTAL_TEST_DATABASE_URL is not set");
        return;
    }
    let suite = Suite::start(Backend::Postgres).await;
    let replica = suite.start_invitation_replica().await;
    let admin = suite.admin().await;
    // Grants fail at first, so both replicas' workers compete for every grant step.
    suite.identity_faults.fail_method("GrantService/BatchGrant");
    // Staff without an account (STAFF[1] and STAFF[6] have one).
    let invited: Vec<usize> = (2..15).filter(|i| *i != 6).collect();
    let mut calls = Vec::new();
    for (n, &i) in invited.iter().enumerate() {
        let mut client = if n % 2 == 0 {
            suite.invitations(Some(&admin))
        } else {
            suite.invitations_at(replica, Some(&admin))
        };
        calls.push(async move {
            client
                .create_invitation(create_request(
                    staff(i).0,
                    ("portal", "full-edit"),
                    Some((&["websites-cms"], "writer", &[school(0), school(1)])),
                ))
                .await
                .expect("created")
        });
    }
    futures::future::join_all(calls).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    suite.identity_faults.heal();
    for &i in &invited {
        suite.wait_for_emails(staff(i).1, 1).await;
    }
    // Let both workers run a few more rounds: nothing is sent twice.
    tokio::time::sleep(Duration::from_secs(1)).await;
    for &i in &invited {
        assert_eq!(suite.emails_to(staff(i).1).len(), 1, "staff {i}");
    }
    assert_eq!(suite.emails().len(), invited.len());
    // Every invitee's grants exist exactly once in identity.
    for &i in &invited {
        let account = suite
            .accounts(Some(&suite.service_token("invitation")))
            .register_account(id::RegisterAccountRequest {
                email: staff(i).1.into(),
                given_name: "Check".into(),
                family_name: "Grants".into(),
                password: "a long enough password".into(),
                invitation_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .account
            .unwrap();
        let access = suite
            .eventually("grants made", || async {
                let access = suite.access_of(&account.id).await;
                (access.len() >= 3).then_some(access)
            })
            .await;
        assert_eq!(access.len(), 3, "staff {i}: {access:?}");
    }
}

/// A local SMTP server (Python's aiosmtpd) delivering into a maildir.
struct SmtpServer {
    child: Child,
    port: u16,
    maildir: tempfile::TempDir,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_smtp() -> Option<SmtpServer> {
    let importable = Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !importable {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "aiosmtpd is required in CI (pip install aiosmtpd)"
        );
        println!("skipped: python3 -m aiosmtpd is not available (pip install aiosmtpd)");
        return None;
    }
    let port = portal_suite_tests::dead_address().await.port();
    let maildir = tempfile::tempdir().unwrap();
    let child = Command::new("python3")
        .args(["-m", "aiosmtpd", "-n", "-l"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["-c", "aiosmtpd.handlers.Mailbox"])
        .arg(maildir.path().join("box"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting aiosmtpd");
    let deadline = Instant::now() + Duration::from_secs(15);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "aiosmtpd did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Some(SmtpServer {
        child,
        port,
        maildir,
    })
}

#[tokio::test]
async fn invitation_emails_reach_a_real_smtp_server() {
    let Some(smtp) = start_smtp().await else {
        return;
    };
    let suite = Suite::start_with(Backend::Sqlite, |config| {
        // A relay on the same host, in plaintext: asked for explicitly.
        config.smtp_url = Some(format!("smtp://127.0.0.1:{}?tls=none", smtp.port).into());
    })
    .await;
    let admin = suite.admin().await;
    let (staff_id, email, given_name) = staff(17);
    suite
        .invitations(Some(&admin))
        .create_invitation(create_request(staff_id, ("portal", "full-edit"), None))
        .await
        .unwrap();
    let inbox = smtp.maildir.path().join("box").join("new");
    let mail = suite
        .eventually("the SMTP server receives the email", || {
            let inbox = inbox.clone();
            async move {
                let mut mails = Vec::new();
                for entry in std::fs::read_dir(&inbox).ok()? {
                    let path = entry.ok()?.path();
                    let raw = std::fs::read_to_string(&path).ok()?;
                    mails.push(portal_suite_tests::parse_mail(path, &raw));
                }
                mails.pop()
            }
        })
        .await;
    assert_eq!(mail.to, email);
    assert!(mail.text.contains(given_name));
    let token = mail.link_token().expect("a link");
    suite
        .invitations(None)
        .inspect_invitation_link(inv::InspectInvitationLinkRequest { token })
        .await
        .expect("the emailed link works");
    // Nothing went to the mail directory: SMTP takes precedence.
    assert!(read_mail_dir(&suite.mail_dir).is_empty());
}

/// A throwaway CA and a certificate for localhost and 127.0.0.1 signed by it
/// (`.ci/tls-certs`): `ca.pem`, `server.pem`, `server.key` in the returned directory.
fn tls_certificates() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.ci/tls-certs");
    let status = Command::new("bash")
        .arg(script)
        .arg(dir.path())
        .status()
        .expect("running .ci/tls-certs (needs openssl)");
    assert!(status.success(), ".ci/tls-certs failed");
    dir
}

/// The SMTP relay of `tests/smtp_relay.py`: TLS (`starttls` required, or `smtps`), AUTH
/// as portal/relay-pass, refusing (550) or deferring (451) the given recipients.
fn start_relay(
    mode: &str,
    certs: &std::path::Path,
    refuse: &[&str],
    defer: &[&str],
) -> Option<SmtpServer> {
    let importable = Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !importable {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "aiosmtpd is required in CI (pip install aiosmtpd)"
        );
        println!("skipped: python3 -m aiosmtpd is not available (pip install aiosmtpd)");
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let maildir = tempfile::tempdir().unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("smtp_relay.py");
    let mut command = Command::new("python3");
    command
        .arg(script)
        .arg(port.to_string())
        .arg(mode)
        .arg(certs.join("server.pem"))
        .arg(certs.join("server.key"))
        .arg(maildir.path().join("box"))
        .args(["portal", "relay-pass"]);
    for address in refuse {
        command.args(["--refuse", address]);
    }
    for address in defer {
        command.args(["--defer", address]);
    }
    let child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting the SMTP relay");
    let deadline = Instant::now() + Duration::from_secs(15);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the SMTP relay did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(SmtpServer {
        child,
        port,
        maildir,
    })
}

async fn delivered(suite: &Suite, smtp: &SmtpServer, what: &str) -> portal_suite_tests::Mail {
    let inbox = smtp.maildir.path().join("box").join("new");
    suite
        .eventually(what, || {
            let inbox = inbox.clone();
            async move {
                let entry = std::fs::read_dir(&inbox).ok()?.next()?.ok()?;
                let raw = std::fs::read_to_string(entry.path()).ok()?;
                Some(portal_suite_tests::parse_mail(entry.path(), &raw))
            }
        })
        .await
}

#[tokio::test]
async fn invitation_emails_reach_a_relay_over_required_starttls_and_over_smtps() {
    let certs = tls_certificates();
    for (mode, url) in [
        ("starttls", "smtp://portal:relay-pass@localhost"),
        ("smtps", "smtps://portal:relay-pass@localhost"),
    ] {
        let Some(smtp) = start_relay(mode, certs.path(), &[], &[]) else {
            return;
        };
        let ca = certs.path().join("ca.pem");
        let suite = Suite::start_with(Backend::Sqlite, |config| {
            config.smtp_url = Some(format!("{url}:{}", smtp.port).into());
            config.smtp_ca_file = Some(ca);
        })
        .await;
        let admin = suite.admin().await;
        let (staff_id, email, _) = staff(17);
        suite
            .invitations(Some(&admin))
            .create_invitation(create_request(staff_id, ("portal", "full-edit"), None))
            .await
            .unwrap();
        let mail = delivered(
            &suite,
            &smtp,
            &format!("the {mode} relay receives the email"),
        )
        .await;
        assert_eq!(mail.to, email, "{mode}");
        assert!(mail.link_token().is_some(), "{mode}");
    }
}

/// Every outbox email step of the suite's invitation database: (outcome, done, last error).
async fn email_steps(suite: &Suite) -> Vec<(Option<String>, bool, Option<String>)> {
    use portal_runtime::db::DbPool;
    const SQL: &str = "SELECT outcome, done_at IS NOT NULL, last_error FROM outbox \
                       WHERE last_error IS NOT NULL";
    let pool = DbPool::connect_lazy(&suite.invitation_config.database.settings()).unwrap();
    let rows = match &pool {
        DbPool::Sqlite(p) => sqlx::query_as(SQL).fetch_all(p.pool()).await,
        DbPool::Postgres(p) => sqlx::query_as(SQL).fetch_all(p.pool()).await,
    }
    .unwrap();
    pool.close().await;
    rows
}

#[tokio::test]
async fn a_relay_refusal_fails_the_email_at_once_keeping_the_reply_and_a_deferral_is_retried() {
    let certs = tls_certificates();
    let (refused_id, refused, _) = staff(17);
    let (deferred_id, deferred, _) = staff(18);
    let Some(smtp) = start_relay("starttls", certs.path(), &[refused], &[deferred]) else {
        return;
    };
    for backend in Backend::all() {
        let ca = certs.path().join("ca.pem");
        let suite = Suite::start_with(backend, |config| {
            config.smtp_url =
                Some(format!("smtp://portal:relay-pass@localhost:{}", smtp.port).into());
            config.smtp_ca_file = Some(ca);
        })
        .await;
        let admin = suite.admin().await;
        for staff_id in [refused_id, deferred_id] {
            suite
                .invitations(Some(&admin))
                .create_invitation(create_request(staff_id, ("portal", "full-edit"), None))
                .await
                .unwrap();
        }
        let steps = suite
            .eventually("the refusal is final and the deferral pending", || async {
                let steps = email_steps(&suite).await;
                let refusal = steps
                    .iter()
                    .find(|s| s.2.as_deref().is_some_and(|e| e.contains("550")))?;
                let deferral = steps
                    .iter()
                    .find(|s| s.2.as_deref().is_some_and(|e| e.contains("451")))?;
                refusal.1.then_some((refusal.clone(), deferral.clone()))
            })
            .await;
        let (refusal, deferral) = steps;
        // Given up after its first answer (the outbox allows 25 attempts over hours), with
        // the relay's own words kept.
        assert_eq!(refusal.0.as_deref(), Some("FAILED"), "{backend:?}");
        assert!(
            refusal.2.unwrap().contains("mailbox unavailable"),
            "{backend:?}"
        );
        // Deferred: still open, to be tried again.
        assert!(!deferral.1, "{backend:?}: {deferral:?}");
        assert!(
            deferral.2.unwrap().contains("try again later"),
            "{backend:?}"
        );
        assert!(
            std::fs::read_dir(smtp.maildir.path().join("box").join("new"))
                .map_or(true, |mut entries| entries.next().is_none())
        );
    }
}
