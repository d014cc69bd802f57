//! StaffService over gRPC: full-snapshot sync (R13), streaming, reads and their callers.

mod common;

use common::{expect_code, expect_reason, expect_violations, record, start};
use portal_proto::identity::v1 as pb;
use portal_runtime::demo::{ADMIN_EMAIL, OTHER_ADMIN_EMAIL, OTHER_TRUST_ID, STAFF, TRUST_ID};
use tonic::Code;

async fn sync(
    server: &common::Server,
    trust_id: &str,
    records: Vec<pb::StaffRecordInput>,
) -> Result<pb::SyncSummary, tonic::Status> {
    let token = server.mis_sync();
    server
        .staff(Some(&token))
        .sync_staff(pb::SyncStaffRequest {
            trust_id: trust_id.into(),
            records,
        })
        .await
        .map(|r| r.into_inner().summary.expect("summary"))
}

async fn list_all(server: &common::Server, trust_id: &str) -> Vec<pb::StaffMember> {
    let token = server.operator();
    let mut client = server.staff(Some(&token));
    let mut all = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_staff_members(pb::ListStaffMembersRequest {
                trust_id: trust_id.into(),
                page_size: 500,
                page_token: page_token.clone(),
                ..Default::default()
            })
            .await
            .expect("list")
            .into_inner();
        all.extend(page.staff_members);
        if page.next_page_token.is_empty() {
            return all;
        }
        page_token = page.next_page_token;
    }
}

fn by_mis<'a>(members: &'a [pb::StaffMember], mis_id: &str) -> &'a pb::StaffMember {
    members
        .iter()
        .find(|m| m.mis_id == mis_id)
        .expect("member present")
}

fn summary(received: i32, added: i32, updated: i32, left: i32, unchanged: i32) -> pb::SyncSummary {
    pb::SyncSummary {
        received,
        added,
        updated,
        marked_left: left,
        unchanged,
        ..Default::default()
    }
}

#[tokio::test]
async fn a_first_snapshot_adds_every_record_with_normalised_emails() {
    let server = start().await;
    let trust = server.new_trust("Sync Trust").await;
    let got = sync(
        &server,
        &trust,
        vec![
            record("A1", "Ann", "Lee", "  Ann.Lee@School.ORG "),
            record("A2", "Bob", "Ray", "bob@school.org"),
        ],
    )
    .await
    .expect("sync");
    assert_eq!(got, summary(2, 2, 0, 0, 0));
    let members = list_all(&server, &trust).await;
    assert_eq!(members.len(), 2);
    let ann = by_mis(&members, "A1");
    assert_eq!(ann.email, "ann.lee@school.org");
    assert_eq!(ann.status, pb::StaffStatus::Active as i32);
    assert_eq!(ann.trust_id, trust);
}

#[tokio::test]
async fn a_changed_record_is_updated_and_an_absent_one_is_marked_left() {
    let server = start().await;
    let trust = server.new_trust("Sync Trust").await;
    sync(
        &server,
        &trust,
        vec![
            record("A1", "Ann", "Lee", "ann@school.org"),
            record("A2", "Bob", "Ray", "bob@school.org"),
            record("A3", "Cy", "Fox", "cy@school.org"),
        ],
    )
    .await
    .expect("first sync");
    let before = list_all(&server, &trust).await;
    server.clock.advance(chrono::Duration::minutes(5));
    let got = sync(
        &server,
        &trust,
        vec![
            record("A1", "Ann", "Lee-Smith", "ann@school.org"),
            record("A2", "Bob", "Ray", "bob@school.org"),
            record("A4", "Dee", "Oak", "dee@school.org"),
        ],
    )
    .await
    .expect("second sync");
    assert_eq!(got, summary(3, 1, 1, 1, 1));
    let after = list_all(&server, &trust).await;
    assert_eq!(by_mis(&after, "A1").family_name, "Lee-Smith");
    assert_ne!(
        by_mis(&after, "A1").update_time,
        by_mis(&before, "A1").update_time
    );
    assert_eq!(
        by_mis(&after, "A1").id,
        by_mis(&before, "A1").id,
        "ids are stable"
    );
    assert_eq!(by_mis(&after, "A3").status, pb::StaffStatus::Left as i32);
    assert_eq!(by_mis(&after, "A4").status, pb::StaffStatus::Active as i32);
    assert_eq!(
        by_mis(&after, "A2").update_time,
        by_mis(&before, "A2").update_time
    );
}

#[tokio::test]
async fn a_member_who_left_and_reappears_becomes_active_again() {
    let server = start().await;
    let trust = server.new_trust("Sync Trust").await;
    let ann = record("A1", "Ann", "Lee", "ann@school.org");
    let bob = record("A2", "Bob", "Ray", "bob@school.org");
    sync(&server, &trust, vec![ann.clone(), bob.clone()])
        .await
        .expect("sync");
    let left = sync(&server, &trust, vec![ann.clone()])
        .await
        .expect("sync");
    assert_eq!(left, summary(1, 0, 0, 1, 1));
    let again = sync(&server, &trust, vec![ann.clone()])
        .await
        .expect("sync");
    assert_eq!(again.marked_left, 0, "a LEFT member is not marked again");
    let back = sync(&server, &trust, vec![ann, bob]).await.expect("sync");
    assert_eq!(back, summary(2, 0, 1, 0, 1));
    let members = list_all(&server, &trust).await;
    assert_eq!(
        by_mis(&members, "A2").status,
        pb::StaffStatus::Active as i32
    );
}

#[tokio::test]
async fn rerunning_the_same_snapshot_changes_nothing() {
    let server = start().await;
    let trust = server.new_trust("Sync Trust").await;
    let snapshot: Vec<_> = (0..50)
        .map(|i| {
            record(
                &format!("M{i}"),
                "Given",
                &format!("Family{i}"),
                &format!("p{i}@s.org"),
            )
        })
        .collect();
    sync(&server, &trust, snapshot.clone()).await.expect("sync");
    let before = list_all(&server, &trust).await;
    server.clock.advance(chrono::Duration::hours(1));
    let again = sync(&server, &trust, snapshot).await.expect("sync");
    assert_eq!(again, summary(50, 0, 0, 0, 50));
    let after = list_all(&server, &trust).await;
    assert_eq!(before, after, "nothing changed, update_time included");
}

#[tokio::test]
async fn every_malformed_row_is_named_and_nothing_is_applied() {
    let server = start().await;
    let trust = server.new_trust("Sync Trust").await;
    let result = sync(
        &server,
        &trust,
        vec![
            record("A1", "Ann", "Lee", "ann@school.org"),
            record("", "Bob", "Ray", "bob@school.org"),
            record("A3", " ", "Fox", "not-an-email"),
            record("A4", "Dee", "", "dee@school.org"),
        ],
    )
    .await;
    let status = expect_code(result.map(tonic::Response::new), Code::InvalidArgument);
    let fields: Vec<String> = portal_runtime::error::status_violations(&status)
        .into_iter()
        .map(|(f, _)| f)
        .collect();
    assert_eq!(
        fields,
        vec![
            "records[1].mis_id",
            "records[2].given_name",
            "records[2].email",
            "records[3].family_name"
        ]
    );
    assert!(list_all(&server, &trust).await.is_empty());
}

#[tokio::test]
async fn duplicate_emails_and_mis_ids_name_both_rows() {
    let server = start().await;
    let trust = server.new_trust("Sync Trust").await;
    let mut records: Vec<_> = (0..13)
        .map(|i| record(&format!("M{i}"), "G", "F", &format!("p{i}@s.org")))
        .collect();
    records[12].email = "P3@S.org".into();
    records[7].mis_id = "M2".into();
    let result = sync(&server, &trust, records).await;
    let violations = expect_violations(
        result.map(tonic::Response::new),
        &["records[7].mis_id", "records[12].email"],
    );
    assert!(violations.contains(&(
        "records[12].email".into(),
        "duplicates records[3].email".into()
    )));
    assert!(violations.contains(&(
        "records[7].mis_id".into(),
        "duplicates records[2].mis_id".into()
    )));
}

#[tokio::test]
async fn a_snapshot_for_an_unknown_trust_is_not_found() {
    let server = start().await;
    let result = sync(
        &server,
        "7f3c2a10-0000-4000-8000-00000000dead",
        vec![record("A1", "Ann", "Lee", "ann@school.org")],
    )
    .await;
    expect_code(result.map(tonic::Response::new), Code::NotFound);
}

#[tokio::test]
async fn a_bad_trust_id_is_named_with_the_bad_rows() {
    let server = start().await;
    let result = sync(&server, "nope", vec![record("A1", "Ann", "Lee", "bad")]).await;
    expect_violations(
        result.map(tonic::Response::new),
        &["trust_id", "records[0].email"],
    );
}

fn chunked(
    trust_id: &str,
    records: Vec<pb::StaffRecordInput>,
    chunk: usize,
) -> Vec<pb::StreamSyncStaffRequest> {
    records
        .chunks(chunk)
        .map(|c| pb::StreamSyncStaffRequest {
            trust_id: trust_id.into(),
            records: c.to_vec(),
        })
        .collect()
}

#[tokio::test]
async fn a_streamed_snapshot_is_applied_when_the_stream_closes() {
    let server = start().await;
    let trust = server.new_trust("Stream Trust").await;
    let records: Vec<_> = (0..10_000)
        .map(|i| {
            record(
                &format!("M{i}"),
                "Given",
                &format!("Fam{i:05}"),
                &format!("p{i}@s.org"),
            )
        })
        .collect();
    let token = server.mis_sync();
    let mut client = server.staff(Some(&token));
    let first = client
        .stream_sync_staff(tokio_stream::iter(chunked(&trust, records.clone(), 1_000)))
        .await
        .expect("stream sync")
        .into_inner()
        .summary
        .expect("summary");
    assert_eq!(first, summary(10_000, 10_000, 0, 0, 0));

    // 1% changed, 1% removed, 1% new: exercises every bulk path past the chunk sizes.
    let mut changed = records.clone();
    for r in changed.iter_mut().take(100) {
        r.job_title = "Changed".into();
    }
    changed.truncate(9_900);
    changed.extend(
        (0..100).map(|i| record(&format!("N{i}"), "New", "Person", &format!("n{i}@s.org"))),
    );
    let second = client
        .stream_sync_staff(tokio_stream::iter(chunked(&trust, changed.clone(), 3_000)))
        .await
        .expect("stream sync")
        .into_inner()
        .summary
        .expect("summary");
    assert_eq!(second, summary(10_000, 100, 100, 100, 9_800));
    let members = list_all(&server, &trust).await;
    assert_eq!(members.len(), 10_100);
    assert_eq!(
        members
            .iter()
            .filter(|m| m.status == pb::StaffStatus::Left as i32)
            .count(),
        100
    );
    assert_eq!(by_mis(&members, "M5").job_title, "Changed");

    let third = client
        .stream_sync_staff(tokio_stream::iter(chunked(&trust, changed, 2_500)))
        .await
        .expect("stream sync")
        .into_inner()
        .summary
        .expect("summary");
    assert_eq!(third, summary(10_000, 0, 0, 0, 10_000));
}

#[tokio::test]
async fn row_numbers_of_a_stream_count_across_messages() {
    let server = start().await;
    let trust = server.new_trust("Stream Trust").await;
    let mut records: Vec<_> = (0..30)
        .map(|i| record(&format!("M{i}"), "G", "F", &format!("p{i}@s.org")))
        .collect();
    records[25].email = "p4@s.org".into();
    let token = server.mis_sync();
    let result = server
        .staff(Some(&token))
        .stream_sync_staff(tokio_stream::iter(chunked(&trust, records, 10)))
        .await;
    let violations = expect_violations(result, &["records[25].email"]);
    assert_eq!(violations[0].1, "duplicates records[4].email");
    assert!(list_all(&server, &trust).await.is_empty());
}

#[tokio::test]
async fn a_stream_naming_two_trusts_is_refused_and_applies_nothing() {
    let server = start().await;
    let first = server.new_trust("One").await;
    let second = server.new_trust("Two").await;
    let messages = vec![
        pb::StreamSyncStaffRequest {
            trust_id: first.clone(),
            records: vec![record("A1", "Ann", "Lee", "ann@s.org")],
        },
        pb::StreamSyncStaffRequest {
            trust_id: second.clone(),
            records: vec![record("A2", "Bob", "Ray", "bob@s.org")],
        },
    ];
    let token = server.mis_sync();
    let result = server
        .staff(Some(&token))
        .stream_sync_staff(tokio_stream::iter(messages))
        .await;
    expect_violations(result, &["trust_id"]);
    assert!(list_all(&server, &first).await.is_empty());
    assert!(list_all(&server, &second).await.is_empty());
}

#[tokio::test]
async fn an_empty_stream_is_refused() {
    let server = start().await;
    let token = server.mis_sync();
    let result = server
        .staff(Some(&token))
        .stream_sync_staff(tokio_stream::iter(Vec::<pb::StreamSyncStaffRequest>::new()))
        .await;
    expect_violations(result, &["trust_id"]);
}

#[tokio::test]
async fn many_bad_rows_are_listed_up_to_a_limit_and_counted() {
    let server = start().await;
    let trust = server.new_trust("Bad Trust").await;
    let records: Vec<_> = (0..5_000)
        .map(|i| record(&format!("M{i}"), "G", "F", "not-an-email"))
        .collect();
    let token = server.mis_sync();
    let result = server
        .staff(Some(&token))
        .stream_sync_staff(tokio_stream::iter(chunked(&trust, records, 1_000)))
        .await;
    let status = expect_code(result, Code::InvalidArgument);
    let violations = portal_runtime::error::status_violations(&status);
    assert_eq!(violations.len(), 51);
    assert_eq!(violations[0].0, "records[0].email");
    assert_eq!(violations[50].0, "records");
    assert!(violations[50].1.starts_with("4950 more"));
}

#[tokio::test]
async fn only_the_mis_sync_and_operator_tokens_may_sync() {
    let server = start().await;
    let request = || pb::SyncStaffRequest {
        trust_id: TRUST_ID.into(),
        records: vec![],
    };
    for token in [server.invitation(), server.token_of(ADMIN_EMAIL).await] {
        let result = server.staff(Some(&token)).sync_staff(request()).await;
        expect_code(result, Code::PermissionDenied);
    }
    let result = server.staff(None).sync_staff(request()).await;
    expect_code(result, Code::Unauthenticated);
    let operator = server.operator();
    let trust = server.new_trust("Operator Trust").await;
    server
        .staff(Some(&operator))
        .sync_staff(pb::SyncStaffRequest {
            trust_id: trust,
            records: vec![record("A1", "Ann", "Lee", "ann@s.org")],
        })
        .await
        .expect("operator may sync");
}

#[tokio::test]
async fn trust_administrators_the_invitation_service_and_operators_read_the_staff_directory() {
    let server = start().await;
    let request = || pb::ListStaffMembersRequest {
        trust_id: TRUST_ID.into(),
        ..Default::default()
    };
    for token in [
        server.token_of(ADMIN_EMAIL).await,
        server.invitation(),
        server.service_token("operator"),
    ] {
        let page = server
            .staff(Some(&token))
            .list_staff_members(request())
            .await
            .expect("list")
            .into_inner();
        assert_eq!(page.staff_members.len(), STAFF.len());
    }
    // The sync job writes the directory; it has no need to read names and emails back.
    for service in ["mis-sync", "billing", "subscription"] {
        let token = server.service_token(service);
        let result = server
            .staff(Some(&token))
            .list_staff_members(request())
            .await;
        expect_code(result, Code::PermissionDenied);
    }
}

#[tokio::test]
async fn users_who_do_not_administer_the_trust_may_not_read_its_staff() {
    let server = start().await;
    let school_admin = server.token_of(STAFF[6].4).await;
    let plain_user = server.token_of(STAFF[1].4).await;
    let other_admin = server.token_of(OTHER_ADMIN_EMAIL).await;
    for token in [school_admin, plain_user, other_admin] {
        let result = server
            .staff(Some(&token))
            .list_staff_members(pb::ListStaffMembersRequest {
                trust_id: TRUST_ID.into(),
                ..Default::default()
            })
            .await;
        expect_reason(result, Code::PermissionDenied, "NOT_TRUST_ADMINISTRATOR");
        let result = server
            .staff(Some(&token))
            .get_staff_member(pb::GetStaffMemberRequest {
                trust_id: TRUST_ID.into(),
                staff_id: STAFF[0].0.into(),
            })
            .await;
        expect_code(result, Code::PermissionDenied);
    }
}

#[tokio::test]
async fn a_staff_member_is_found_only_in_their_own_trust() {
    let server = start().await;
    let token = server.invitation();
    let member = server
        .staff(Some(&token))
        .get_staff_member(pb::GetStaffMemberRequest {
            trust_id: TRUST_ID.into(),
            staff_id: STAFF[3].0.into(),
        })
        .await
        .expect("get")
        .into_inner()
        .staff_member
        .expect("member");
    assert_eq!(member.email, STAFF[3].4);
    assert_eq!(member.mis_id, STAFF[3].1);
    let result = server
        .staff(Some(&token))
        .get_staff_member(pb::GetStaffMemberRequest {
            trust_id: OTHER_TRUST_ID.into(),
            staff_id: STAFF[3].0.into(),
        })
        .await;
    expect_code(result, Code::NotFound);
}

#[tokio::test]
async fn a_staff_member_comes_with_their_account_once_they_have_signed_up() {
    let server = start().await;
    let token = server.invitation();
    let get = || {
        let mut client = server.staff(Some(&token));
        async move {
            client
                .get_staff_member(pb::GetStaffMemberRequest {
                    trust_id: TRUST_ID.into(),
                    staff_id: STAFF[3].0.into(),
                })
                .await
                .expect("get")
                .into_inner()
        }
    };
    assert_eq!(get().await.account_id, "", "not signed up yet");
    let account = server
        .accounts(Some(&token))
        .register_account(pb::RegisterAccountRequest {
            email: STAFF[3].4.to_uppercase(),
            given_name: "Signed".into(),
            family_name: "Up".into(),
            password: "long enough password".into(),
            invitation_id: "7f3c2a10-0000-4000-8000-0000000000ff".into(),
        })
        .await
        .expect("register")
        .into_inner()
        .account
        .expect("account");
    assert_eq!(get().await.account_id, account.id);
}

#[tokio::test]
async fn staff_are_filtered_by_status_name_and_email_and_paginated_in_name_order() {
    let server = start().await;
    let trust = server.new_trust("Filter Trust").await;
    sync(
        &server,
        &trust,
        vec![
            record("1", "Zoë", "Ångström", "zoe@s.org"),
            record("2", "Adam", "Smith", "adam@s.org"),
            record("3", "Eve", "Smithers", "eve@s.org"),
            record("4", "Sam", "Brown", "sam@s.org"),
            record("5", "Aaron", "Smith", "al@s.org"),
        ],
    )
    .await
    .expect("sync");
    sync(
        &server,
        &trust,
        vec![
            record("1", "Zoë", "Ångström", "zoe@s.org"),
            record("2", "Adam", "Smith", "adam@s.org"),
            record("3", "Eve", "Smithers", "eve@s.org"),
            record("5", "Aaron", "Smith", "al@s.org"),
        ],
    )
    .await
    .expect("sync");
    let token = server.operator();
    let mut client = server.staff(Some(&token));
    let list = |status: pb::StaffStatus, name: &str, email: &str| pb::ListStaffMembersRequest {
        trust_id: trust.clone(),
        status: status as i32,
        name_contains: name.into(),
        email: email.into(),
        ..Default::default()
    };
    let names = |page: pb::ListStaffMembersResponse| -> Vec<String> {
        page.staff_members.into_iter().map(|m| m.mis_id).collect()
    };
    let smiths = client
        .list_staff_members(list(pb::StaffStatus::Unspecified, "SMITH", ""))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(
        names(smiths),
        vec!["5", "2", "3"],
        "family, then given name"
    );
    let sam = client
        .list_staff_members(list(pb::StaffStatus::Unspecified, "sam", ""))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(names(sam), vec!["4"], "given names match too");
    let unicode = client
        .list_staff_members(list(pb::StaffStatus::Unspecified, "ÅNGS", ""))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(names(unicode), vec!["1"]);
    let left = client
        .list_staff_members(list(pb::StaffStatus::Left, "", ""))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(names(left), vec!["4"]);
    let by_email = client
        .list_staff_members(list(pb::StaffStatus::Unspecified, "", " EVE@S.ORG "))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(names(by_email), vec!["3"]);
    let percent = client
        .list_staff_members(list(pb::StaffStatus::Unspecified, "%", ""))
        .await
        .expect("list")
        .into_inner();
    assert!(
        percent.staff_members.is_empty(),
        "LIKE wildcards are literal"
    );

    let mut seen = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_staff_members(pb::ListStaffMembersRequest {
                trust_id: trust.clone(),
                page_size: 2,
                page_token: page_token.clone(),
                ..Default::default()
            })
            .await
            .expect("list")
            .into_inner();
        assert!(page.staff_members.len() <= 2);
        seen.extend(page.staff_members.into_iter().map(|m| m.mis_id));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(seen.len(), 5);
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 5);
}

#[tokio::test]
async fn bad_staff_read_requests_name_their_fields() {
    let server = start().await;
    let token = server.operator();
    let mut client = server.staff(Some(&token));
    let result = client
        .get_staff_member(pb::GetStaffMemberRequest {
            trust_id: String::new(),
            staff_id: "123".into(),
        })
        .await;
    expect_violations(result, &["trust_id", "staff_id"]);
    let result = client
        .list_staff_members(pb::ListStaffMembersRequest {
            trust_id: "x".into(),
            status: 9,
            name_contains: "a\u{7}".into(),
            email: "nope".into(),
            page_size: -1,
            page_token: "garbage".into(),
        })
        .await;
    expect_violations(
        result,
        &[
            "trust_id",
            "status",
            "name_contains",
            "email",
            "page_size",
            "page_token",
        ],
    );
    let first = client
        .list_staff_members(pb::ListStaffMembersRequest {
            trust_id: TRUST_ID.into(),
            page_size: 1,
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    let result = client
        .list_staff_members(pb::ListStaffMembersRequest {
            trust_id: TRUST_ID.into(),
            page_size: 1,
            status: pb::StaffStatus::Left as i32,
            page_token: first.next_page_token,
            ..Default::default()
        })
        .await;
    expect_violations(result, &["page_token"]);
    let result = client
        .list_staff_members(pb::ListStaffMembersRequest {
            trust_id: "7f3c2a10-0000-4000-8000-00000000dead".into(),
            ..Default::default()
        })
        .await;
    expect_code(result, Code::NotFound);
}
