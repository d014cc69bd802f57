//! Bad input on every invitation RPC gets INVALID_ARGUMENT naming the fields, never INTERNAL.

#![allow(clippy::unwrap_used)]

use portal_proto::invitation::v1 as inv;
use portal_suite_tests::{Backend, Suite, assert_invalid, create_request, demo, school, staff};

#[tokio::test]
async fn bad_input_on_every_invitation_rpc_is_invalid_argument_with_field_violations() {
    for backend in Backend::all() {
        let suite = Suite::start(backend).await;
        let admin = suite.admin().await;
        let mut client = suite.invitations(Some(&admin));

        // CreateInvitation.
        let status = client
            .create_invitation(inv::CreateInvitationRequest::default())
            .await
            .unwrap_err();
        assert_invalid(&status, &["trust_id", "staff_id", "trust_access"]);
        let mut request = create_request(
            "not-a-uuid",
            ("", "Account Owner"),
            Some((&[], "", &["x", school(0), school(0)])),
        );
        request.trust_id = "12345".into();
        request.request_id = "r".repeat(200);
        let status = client.create_invitation(request).await.unwrap_err();
        assert_invalid(
            &status,
            &[
                "trust_id",
                "staff_id",
                "trust_access.product_key",
                "trust_access.role_key",
                "school_access.product_keys",
                "school_access.role_key",
                "school_access.school_ids[0]",
                "school_access.school_ids[2]",
                "request_id",
            ],
        );
        let too_many: Vec<String> = (0..1001)
            .map(|_| uuid::Uuid::new_v4().to_string())
            .collect();
        let too_many: Vec<&str> = too_many.iter().map(String::as_str).collect();
        let status = client
            .create_invitation(create_request(
                staff(2).0,
                ("portal", "full-edit"),
                Some((&["websites-cms"], "writer", &too_many)),
            ))
            .await
            .unwrap_err();
        assert_invalid(&status, &["school_access.school_ids"]);

        // GetInvitation, ResendInvitation, RevokeInvitation.
        for bad in ["", "nope"] {
            let status = client
                .get_invitation(inv::GetInvitationRequest {
                    invitation_id: bad.into(),
                })
                .await
                .unwrap_err();
            assert_invalid(&status, &["invitation_id"]);
            let status = client
                .resend_invitation(inv::ResendInvitationRequest {
                    invitation_id: bad.into(),
                })
                .await
                .unwrap_err();
            assert_invalid(&status, &["invitation_id"]);
            let status = client
                .revoke_invitation(inv::RevokeInvitationRequest {
                    invitation_id: bad.into(),
                })
                .await
                .unwrap_err();
            assert_invalid(&status, &["invitation_id"]);
        }

        // ListInvitations.
        let status = client
            .list_invitations(inv::ListInvitationsRequest {
                trust_id: String::new(),
                status: 42,
                staff_id: "someone".into(),
                product_key: "Portal Product".into(),
                page_size: -1,
                page_token: "not-a-token".into(),
            })
            .await
            .unwrap_err();
        assert_invalid(
            &status,
            &[
                "trust_id",
                "status",
                "staff_id",
                "product_key",
                "page_size",
                "page_token",
            ],
        );

        // InspectInvitationLink and AcceptInvitation (no token needed).
        let mut public = suite.invitations(None);
        for bad in ["", "too-short", "!!!!"] {
            let status = public
                .inspect_invitation_link(inv::InspectInvitationLinkRequest { token: bad.into() })
                .await
                .unwrap_err();
            assert_invalid(&status, &["token"]);
        }
        let status = public
            .accept_invitation(inv::AcceptInvitationRequest::default())
            .await
            .unwrap_err();
        assert_invalid(&status, &["token", "given_name", "family_name", "password"]);
        let status = public
            .accept_invitation(inv::AcceptInvitationRequest {
                token: "A".repeat(43),
                given_name: "  ".into(),
                family_name: "Patel".into(),
                password: "short".into(),
                request_id: String::new(),
            })
            .await
            .unwrap_err();
        assert_invalid(&status, &["given_name", "password"]);
        // A well-formed but unknown id is NOT_FOUND, not INVALID_ARGUMENT.
        let status = client
            .get_invitation(inv::GetInvitationRequest {
                invitation_id: demo::TRUST_ID.into(),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::NotFound);
    }
}
