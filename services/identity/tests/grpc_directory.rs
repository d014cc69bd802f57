//! DirectoryService over gRPC: trusts and schools, idempotent creates, tenant isolation.

mod common;

use common::{expect_code, expect_reason, expect_violations, start};
use portal_proto::identity::v1 as pb;
use portal_runtime::demo::{
    ADMIN_EMAIL, OTHER_ADMIN_EMAIL, OTHER_SCHOOL, OTHER_TRUST_ID, SCHOOLS, STAFF, TRUST_ID,
    TRUST_NAME,
};
use tonic::Code;

const REQUEST_ID: &str = "22222222-0000-4000-8000-000000000001";

#[tokio::test]
async fn the_operator_creates_a_trust_and_its_schools() {
    let server = start().await;
    let token = server.operator();
    let mut client = server.directory(Some(&token));
    let trust = client
        .create_trust(pb::CreateTrustRequest {
            name: "  Oak Learning Trust ".into(),
            request_id: String::new(),
        })
        .await
        .expect("create trust")
        .into_inner()
        .trust
        .expect("trust");
    assert_eq!(trust.name, "Oak Learning Trust");
    assert!(trust.create_time.is_some());
    let school = client
        .create_school(pb::CreateSchoolRequest {
            trust_id: trust.id.clone(),
            name: "Oak Primary".into(),
            urn: Some("123456".into()),
            request_id: String::new(),
        })
        .await
        .expect("create school")
        .into_inner()
        .school
        .expect("school");
    assert_eq!(school.trust_id, trust.id);
    assert_eq!(school.urn, "123456");
    let fetched = client
        .get_school(pb::GetSchoolRequest {
            school_id: school.id.clone(),
        })
        .await
        .expect("get school")
        .into_inner()
        .school
        .expect("school");
    assert_eq!(fetched, school);
    let got = client
        .get_trust(pb::GetTrustRequest {
            trust_id: trust.id.clone(),
        })
        .await
        .expect("get trust")
        .into_inner()
        .trust
        .expect("trust");
    assert_eq!(got, trust);
}

#[tokio::test]
async fn a_repeated_request_id_returns_the_first_answer() {
    let server = start().await;
    let token = server.operator();
    let mut client = server.directory(Some(&token));
    let create = |name: &str| pb::CreateTrustRequest {
        name: name.into(),
        request_id: REQUEST_ID.into(),
    };
    let first = client.create_trust(create("First")).await.expect("create");
    let second = client.create_trust(create("Second")).await.expect("retry");
    assert_eq!(first.into_inner(), second.into_inner());

    let trust = server.new_trust("Schools Trust").await;
    let school_request = || pb::CreateSchoolRequest {
        trust_id: trust.clone(),
        name: "Elm School".into(),
        urn: Some("555".into()),
        request_id: "22222222-0000-4000-8000-000000000002".into(),
    };
    let first = client
        .create_school(school_request())
        .await
        .expect("create")
        .into_inner();
    let second = client
        .create_school(school_request())
        .await
        .expect("retry with the same URN is not a conflict")
        .into_inner();
    assert_eq!(first, second);
    let listed = client
        .list_schools(pb::ListSchoolsRequest {
            trust_id: trust,
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.schools.len(), 1);
}

#[tokio::test]
async fn two_schools_cannot_share_a_urn() {
    let server = start().await;
    let token = server.operator();
    let result = server
        .directory(Some(&token))
        .create_school(pb::CreateSchoolRequest {
            trust_id: OTHER_TRUST_ID.into(),
            name: "Copycat".into(),
            urn: Some(SCHOOLS[0].2.into()),
            request_id: String::new(),
        })
        .await;
    expect_reason(result, Code::AlreadyExists, "SCHOOL_URN_EXISTS");
}

#[tokio::test]
async fn a_school_needs_an_existing_trust() {
    let server = start().await;
    let token = server.operator();
    let result = server
        .directory(Some(&token))
        .create_school(pb::CreateSchoolRequest {
            trust_id: "7f3c2a10-0000-4000-8000-00000000dead".into(),
            name: "Orphan".into(),
            urn: None,
            request_id: String::new(),
        })
        .await;
    expect_code(result, Code::NotFound);
}

#[tokio::test]
async fn schools_are_listed_in_pages() {
    let server = start().await;
    let token = server.invitation();
    let mut client = server.directory(Some(&token));
    let mut seen = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_schools(pb::ListSchoolsRequest {
                trust_id: TRUST_ID.into(),
                page_size: 2,
                page_token: page_token.clone(),
            })
            .await
            .expect("list")
            .into_inner();
        seen.extend(page.schools.into_iter().map(|s| s.id));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    let expected: Vec<String> = SCHOOLS.iter().map(|s| s.0.to_string()).collect();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn writes_need_the_operator_token() {
    let server = start().await;
    let admin = server.token_of(ADMIN_EMAIL).await;
    for token in [server.invitation(), server.mis_sync(), admin] {
        let mut client = server.directory(Some(&token));
        let result = client
            .create_trust(pb::CreateTrustRequest {
                name: "Nope".into(),
                request_id: String::new(),
            })
            .await;
        expect_code(result, Code::PermissionDenied);
        let result = client
            .create_school(pb::CreateSchoolRequest {
                trust_id: TRUST_ID.into(),
                name: "Nope".into(),
                urn: None,
                request_id: String::new(),
            })
            .await;
        expect_code(result, Code::PermissionDenied);
    }
}

#[tokio::test]
async fn users_read_trusts_where_they_have_access() {
    let server = start().await;
    for email in [ADMIN_EMAIL, STAFF[1].4, STAFF[6].4] {
        let token = server.token_of(email).await;
        let mut client = server.directory(Some(&token));
        let trust = client
            .get_trust(pb::GetTrustRequest {
                trust_id: TRUST_ID.into(),
            })
            .await
            .expect("visible")
            .into_inner()
            .trust
            .expect("trust");
        assert_eq!(trust.name, TRUST_NAME);
        client
            .get_school(pb::GetSchoolRequest {
                school_id: SCHOOLS[4].0.into(),
            })
            .await
            .expect("schools of the trust are visible");
        client
            .list_schools(pb::ListSchoolsRequest {
                trust_id: TRUST_ID.into(),
                ..Default::default()
            })
            .await
            .expect("list");
    }
}

#[tokio::test]
async fn another_trusts_user_gets_not_found_exactly_like_an_unknown_id() {
    let server = start().await;
    let token = server.token_of(OTHER_ADMIN_EMAIL).await;
    let mut client = server.directory(Some(&token));
    let hidden = expect_code(
        client
            .get_trust(pb::GetTrustRequest {
                trust_id: TRUST_ID.into(),
            })
            .await,
        Code::NotFound,
    );
    let unknown = expect_code(
        client
            .get_trust(pb::GetTrustRequest {
                trust_id: "7f3c2a10-0000-4000-8000-00000000dead".into(),
            })
            .await,
        Code::NotFound,
    );
    assert_eq!(
        hidden.message().replace(TRUST_ID, "ID"),
        unknown
            .message()
            .replace("7f3c2a10-0000-4000-8000-00000000dead", "ID")
    );
    expect_code(
        client
            .get_school(pb::GetSchoolRequest {
                school_id: SCHOOLS[0].0.into(),
            })
            .await,
        Code::NotFound,
    );
    expect_code(
        client
            .list_schools(pb::ListSchoolsRequest {
                trust_id: TRUST_ID.into(),
                ..Default::default()
            })
            .await,
        Code::NotFound,
    );
    client
        .get_school(pb::GetSchoolRequest {
            school_id: OTHER_SCHOOL.0.into(),
        })
        .await
        .expect("their own school is visible");
}

#[tokio::test]
async fn bad_directory_requests_name_their_fields() {
    let server = start().await;
    let token = server.operator();
    let mut client = server.directory(Some(&token));
    expect_violations(
        client
            .create_trust(pb::CreateTrustRequest {
                name: "   ".into(),
                request_id: "has spaces in it".into(),
            })
            .await,
        &["name", "request_id"],
    );
    expect_violations(
        client
            .create_school(pb::CreateSchoolRequest {
                trust_id: "abc".into(),
                name: String::new(),
                urn: Some("12 34".into()),
                request_id: String::new(),
            })
            .await,
        &["trust_id", "name", "urn"],
    );
    expect_violations(
        client
            .get_trust(pb::GetTrustRequest {
                trust_id: String::new(),
            })
            .await,
        &["trust_id"],
    );
    expect_violations(
        client
            .get_school(pb::GetSchoolRequest {
                school_id: "x".into(),
            })
            .await,
        &["school_id"],
    );
    expect_violations(
        client
            .list_schools(pb::ListSchoolsRequest {
                trust_id: String::new(),
                page_size: -1,
                page_token: "bogus".into(),
            })
            .await,
        &["trust_id", "page_size", "page_token"],
    );
    let first = client
        .list_schools(pb::ListSchoolsRequest {
            trust_id: TRUST_ID.into(),
            page_size: 1,
            page_token: String::new(),
        })
        .await
        .expect("list")
        .into_inner();
    expect_violations(
        client
            .list_schools(pb::ListSchoolsRequest {
                trust_id: OTHER_TRUST_ID.into(),
                page_size: 1,
                page_token: first.next_page_token,
            })
            .await,
        &["page_token"],
    );
}
