//! Every RPC of the suite called with every service token: each admits exactly the tokens
//! `auth::callers::MATRIX` (and so the README's caller table) says.

#![allow(clippy::unwrap_used)]

use portal_proto::identity::v1 as id;
use portal_proto::invitation::v1 as inv;
use portal_proto::subscription::v1 as sub;
use portal_runtime::auth::callers::{ALL, MATRIX};
use portal_suite_tests::{Backend, Suite, demo, school, staff};
use tonic::Code;

/// Calls `path` with `request` and `token`; the answer's code (OK when it succeeded).
async fn send<M>(suite: &Suite, path: &'static str, request: M, token: &str) -> Code
where
    M: prost::Message + Send + Sync + 'static,
{
    let addr = if path.starts_with("/portal.identity.") {
        suite.identity_addr
    } else if path.starts_with("/portal.subscription.") {
        suite.subscription_addr
    } else {
        suite.invitation_addr
    };
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let mut request = tonic::Request::new(request);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    grpc.unary::<M, (), _>(
        request,
        http::uri::PathAndQuery::from_static(path),
        tonic_prost::ProstCodec::default(),
    )
    .await
    .map_or_else(|status| status.code(), |_| Code::Ok)
}

/// A request to `path` whose trust, school, staff member and account are the demo data's,
/// so that a caller admitted is not refused for its input before it is authorised.
async fn call(suite: &Suite, path: &'static str, token: &str) -> Code {
    let trust = demo::TRUST_ID.to_string();
    let account = uuid::Uuid::new_v4().to_string();
    let method = path.rsplit('/').next().unwrap();
    match method {
        "ListStaffAccess" => {
            let request = id::ListStaffAccessRequest {
                trust_id: trust,
                staff_id: staff(1).0.into(),
            };
            send(suite, path, request, token).await
        }
        "WithdrawAccess" => {
            let request = id::WithdrawAccessRequest {
                trust_id: trust,
                staff_id: staff(1).0.into(),
                organization_id: school(0).into(),
                product_key: "websites-cms".into(),
            };
            send(suite, path, request, token).await
        }
        "RegisterAccount" => send(suite, path, id::RegisterAccountRequest::default(), token).await,
        "SignIn" => send(suite, path, id::SignInRequest::default(), token).await,
        "LookupAccount" => send(suite, path, id::LookupAccountRequest::default(), token).await,
        "GetCurrentAccount" => {
            send(suite, path, id::GetCurrentAccountRequest::default(), token).await
        }
        "CreateTrust" => send(suite, path, id::CreateTrustRequest::default(), token).await,
        "GetTrust" => {
            let request = id::GetTrustRequest { trust_id: trust };
            send(suite, path, request, token).await
        }
        "CreateSchool" => send(suite, path, id::CreateSchoolRequest::default(), token).await,
        "GetSchool" => {
            let request = id::GetSchoolRequest {
                school_id: school(0).into(),
            };
            send(suite, path, request, token).await
        }
        "ListSchools" => {
            let request = id::ListSchoolsRequest {
                trust_id: trust,
                ..Default::default()
            };
            send(suite, path, request, token).await
        }
        "BatchGrant" => send(suite, path, id::BatchGrantRequest::default(), token).await,
        "ActivateGrants" => send(suite, path, id::ActivateGrantsRequest::default(), token).await,
        "RevokeGrants" => send(suite, path, id::RevokeGrantsRequest::default(), token).await,
        "ListAccess" => {
            let request = id::ListAccessRequest {
                account_id: account,
                ..Default::default()
            };
            send(suite, path, request, token).await
        }
        "CheckAdministrator" => {
            let request = id::CheckAdministratorRequest {
                trust_id: trust,
                account_id: account,
            };
            send(suite, path, request, token).await
        }
        "SyncStaff" => send(suite, path, id::SyncStaffRequest::default(), token).await,
        "StreamSyncStaff" => {
            let records = futures::stream::iter(Vec::<id::StreamSyncStaffRequest>::new());
            match suite.staff(Some(token)).stream_sync_staff(records).await {
                Ok(_) => Code::Ok,
                Err(status) => status.code(),
            }
        }
        "ListStaffStatusChanges" => {
            send(
                suite,
                path,
                id::ListStaffStatusChangesRequest::default(),
                token,
            )
            .await
        }
        "GetStaffMember" => {
            let request = id::GetStaffMemberRequest {
                trust_id: trust,
                staff_id: staff(0).0.into(),
            };
            send(suite, path, request, token).await
        }
        "ListStaffMembers" => {
            let request = id::ListStaffMembersRequest {
                trust_id: trust,
                ..Default::default()
            };
            send(suite, path, request, token).await
        }
        "CreateInvitation" => {
            send(suite, path, inv::CreateInvitationRequest::default(), token).await
        }
        "GetInvitation" => send(suite, path, inv::GetInvitationRequest::default(), token).await,
        "ListInvitations" => send(suite, path, inv::ListInvitationsRequest::default(), token).await,
        "ResendInvitation" => {
            send(suite, path, inv::ResendInvitationRequest::default(), token).await
        }
        "RevokeInvitation" => {
            send(suite, path, inv::RevokeInvitationRequest::default(), token).await
        }
        "InspectInvitationLink" => {
            send(
                suite,
                path,
                inv::InspectInvitationLinkRequest::default(),
                token,
            )
            .await
        }
        "AcceptInvitation" => {
            send(suite, path, inv::AcceptInvitationRequest::default(), token).await
        }
        "ListProducts" => send(suite, path, sub::ListProductsRequest::default(), token).await,
        "GetProduct" => send(suite, path, sub::GetProductRequest::default(), token).await,
        "ListRoleEquivalences" => {
            send(
                suite,
                path,
                sub::ListRoleEquivalencesRequest::default(),
                token,
            )
            .await
        }
        "CheckEligibility" => {
            let request = sub::CheckEligibilityRequest {
                trust_id: trust,
                ..Default::default()
            };
            send(suite, path, request, token).await
        }
        "GetSchoolSubscriptions" => {
            let request = sub::GetSchoolSubscriptionsRequest {
                trust_id: trust,
                ..Default::default()
            };
            send(suite, path, request, token).await
        }
        "CreateSubscription" => {
            send(
                suite,
                path,
                sub::CreateSubscriptionRequest::default(),
                token,
            )
            .await
        }
        "UpdateSubscription" => {
            send(
                suite,
                path,
                sub::UpdateSubscriptionRequest::default(),
                token,
            )
            .await
        }
        "CancelSubscription" => {
            send(
                suite,
                path,
                sub::CancelSubscriptionRequest::default(),
                token,
            )
            .await
        }
        "GetSubscription" => send(suite, path, sub::GetSubscriptionRequest::default(), token).await,
        "ListSubscriptions" => {
            send(suite, path, sub::ListSubscriptionsRequest::default(), token).await
        }
        other => panic!("no request for {other}: add one here when adding the RPC"),
    }
}

#[tokio::test]
async fn every_rpc_admits_exactly_the_service_tokens_the_matrix_names() {
    let suite = Suite::start(Backend::Sqlite).await;
    let mut wrong = Vec::new();
    for service in ALL {
        let token = suite.service_token(service);
        for (path, services) in MATRIX {
            let code = call(&suite, path, &token).await;
            let admitted = !matches!(code, Code::PermissionDenied | Code::Unauthenticated);
            if admitted != services.admits(service) {
                wrong.push(format!("{service} on {path}: {code:?}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "cells that differ from the matrix:\n{}",
        wrong.join("\n")
    );
}
