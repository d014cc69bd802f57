//! `portal.invitation.v1.InvitationService`.

use tonic::{Request, Response, Status};

use portal_proto::invitation::v1 as pb;
use portal_proto::invitation::v1::invitation_service_server::InvitationService;
use portal_runtime::error::ApiError;
use portal_runtime::{Principal, principal_of};

use super::convert::invitation_id;
use super::{Api, answer, bearer};
use crate::domain::{AcceptInput, CreateInput, LinkToken, ListQuery};

#[tonic::async_trait]
impl InvitationService for Api {
    async fn create_invitation(
        &self,
        request: Request<pb::CreateInvitationRequest>,
    ) -> Result<Response<pb::CreateInvitationResponse>, Status> {
        answer(
            async {
                let caller = principal_of(&request)?;
                // Only users call these: a service token is refused before the request is read.
                self.app.require_user(&caller)?;
                let bearer = bearer(&request);
                let input = CreateInput::try_from(request.into_inner())?;
                let created = self.app.create(&caller, bearer.as_ref(), input).await?;
                Ok(created.into())
            }
            .await,
        )
    }

    async fn get_invitation(
        &self,
        request: Request<pb::GetInvitationRequest>,
    ) -> Result<Response<pb::GetInvitationResponse>, Status> {
        answer(
            async {
                let caller = principal_of(&request)?;
                // Only users call these: a service token is refused before the request is read.
                self.app.require_user(&caller)?;
                let id = invitation_id(&request.get_ref().invitation_id)?;
                let invitation = self.app.get(&caller, id).await?;
                Ok(pb::GetInvitationResponse {
                    invitation: Some(invitation.into()),
                })
            }
            .await,
        )
    }

    async fn list_invitations(
        &self,
        request: Request<pb::ListInvitationsRequest>,
    ) -> Result<Response<pb::ListInvitationsResponse>, Status> {
        answer(
            async {
                let caller = principal_of(&request)?;
                // Only users call these: a service token is refused before the request is read.
                self.app.require_user(&caller)?;
                let query = ListQuery::try_from(request.into_inner())?;
                let page = self.app.list(&caller, query).await?;
                Ok(page.into())
            }
            .await,
        )
    }

    async fn resend_invitation(
        &self,
        request: Request<pb::ResendInvitationRequest>,
    ) -> Result<Response<pb::ResendInvitationResponse>, Status> {
        answer(
            async {
                let caller = principal_of(&request)?;
                // Only users call these: a service token is refused before the request is read.
                self.app.require_user(&caller)?;
                let bearer = bearer(&request);
                let id = invitation_id(&request.get_ref().invitation_id)?;
                let invitation = self.app.resend(&caller, bearer.as_ref(), id).await?;
                Ok(pb::ResendInvitationResponse {
                    invitation: Some(invitation.into()),
                })
            }
            .await,
        )
    }

    async fn revoke_invitation(
        &self,
        request: Request<pb::RevokeInvitationRequest>,
    ) -> Result<Response<pb::RevokeInvitationResponse>, Status> {
        answer(
            async {
                let caller = principal_of(&request)?;
                // Only users call these: a service token is refused before the request is read.
                self.app.require_user(&caller)?;
                let id = invitation_id(&request.get_ref().invitation_id)?;
                let invitation = self.app.revoke(&caller, id).await?;
                Ok(pb::RevokeInvitationResponse {
                    invitation: Some(invitation.into()),
                })
            }
            .await,
        )
    }

    /// Public: the link's token is the credential.
    async fn inspect_invitation_link(
        &self,
        request: Request<pb::InspectInvitationLinkRequest>,
    ) -> Result<Response<pb::InspectInvitationLinkResponse>, Status> {
        let address = request.remote_addr().map(|a| a.ip());
        let answered = async {
            self.app.admit_link(address)?;
            let token = LinkToken::try_from(request.get_ref())?;
            let invitation = self.app.inspect(&token).await?;
            Ok(pb::InspectInvitationLinkResponse {
                link: Some(invitation.into()),
            })
        }
        .await;
        self.app.link_answered(address, &answered);
        answer(answered)
    }

    /// Public: the link's token is the credential.
    async fn accept_invitation(
        &self,
        request: Request<pb::AcceptInvitationRequest>,
    ) -> Result<Response<pb::AcceptInvitationResponse>, Status> {
        let address = request.remote_addr().map(|a| a.ip());
        let answered = async {
            self.app.admit_link(address)?;
            // A caller signed in to the invitee's account accepts without registering. A
            // token sent but not accepted must not turn the call into a sign-up.
            let bearer = bearer(&request);
            let signed_in = match (request.extensions().get::<Principal>(), bearer) {
                (Some(Principal::User { account_id }), Some(bearer)) => Some((*account_id, bearer)),
                (None, None) => None,
                _ => {
                    return Err(ApiError::Unauthenticated {
                        reason: "TOKEN_INVALID",
                        message: "the bearer token is not a valid user token; sign in again, \
                                      or accept without a token to sign up"
                            .into(),
                    }
                    .into());
                }
            };
            let input = AcceptInput::try_from((request.into_inner(), signed_in))?;
            let accepted = self.app.accept(input).await?;
            Ok(accepted.into())
        }
        .await;
        self.app.link_answered(address, &answered);
        answer(answered)
    }
}
