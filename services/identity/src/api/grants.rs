//! GrantService: grants made for invitations, and who may do what where.

use portal_proto::identity::v1 as pb;
use portal_proto::identity::v1::grant_service_server::GrantService;
use portal_runtime::auth::principal_of;
use tonic::{Request, Response, Status};

use super::convert::{Listing, Parsed};
use super::{Api, answer};
use crate::app::Grants;
use crate::domain::{AccessQuery, AdministratorCheck, GrantBatch};

#[tonic::async_trait]
impl GrantService for Api {
    async fn batch_grant(
        &self,
        request: Request<pb::BatchGrantRequest>,
    ) -> Result<Response<pb::BatchGrantResponse>, Status> {
        answer(
            async {
                let caller = principal_of(&request)?;
                let admitted = self.app.admit::<Grants>(&caller)?;
                let batch = GrantBatch::try_from(request.into_inner())?;
                let results = self.app.batch_grant(&admitted, batch).await?;
                Ok(pb::BatchGrantResponse {
                    results: results.into_iter().map(Into::into).collect(),
                })
            }
            .await,
        )
    }

    async fn activate_grants(
        &self,
        request: Request<pb::ActivateGrantsRequest>,
    ) -> Result<Response<pb::ActivateGrantsResponse>, Status> {
        answer(
            async {
                let caller = principal_of(&request)?;
                let admitted = self.app.admit::<Grants>(&caller)?;
                let Parsed((invitation_id, account_id)) = request.into_inner().try_into()?;
                let grants = self
                    .app
                    .activate_grants(&admitted, invitation_id, account_id)
                    .await?;
                Ok(pb::ActivateGrantsResponse {
                    grants: grants.into_iter().map(Into::into).collect(),
                })
            }
            .await,
        )
    }

    async fn revoke_grants(
        &self,
        request: Request<pb::RevokeGrantsRequest>,
    ) -> Result<Response<pb::RevokeGrantsResponse>, Status> {
        answer(
            async {
                let caller = principal_of(&request)?;
                let admitted = self.app.admit::<Grants>(&caller)?;
                let Parsed((invitation_id, pending_only)) = request.into_inner().try_into()?;
                let revoked = self
                    .app
                    .revoke_grants(&admitted, invitation_id, pending_only)
                    .await?;
                Ok(pb::RevokeGrantsResponse {
                    revoked_count: i32::try_from(revoked).unwrap_or(i32::MAX),
                })
            }
            .await,
        )
    }

    async fn list_access(
        &self,
        request: Request<pb::ListAccessRequest>,
    ) -> Result<Response<pb::ListAccessResponse>, Status> {
        answer(
            async {
                let caller = principal_of(&request)?;
                let listing = Listing::<AccessQuery>::try_from((request.into_inner(), &caller))?;
                let mut access = self.app.list_access(&caller, &listing.query).await?;
                let next_page_token = listing.next_page(&mut access, |a| a.key());
                Ok(pb::ListAccessResponse {
                    access: access.into_iter().map(Into::into).collect(),
                    next_page_token,
                })
            }
            .await,
        )
    }

    async fn check_administrator(
        &self,
        request: Request<pb::CheckAdministratorRequest>,
    ) -> Result<Response<pb::CheckAdministratorResponse>, Status> {
        answer(
            async {
                let caller = principal_of(&request)?;
                let check = AdministratorCheck::try_from((request.into_inner(), &caller))?;
                let answer = self.app.check_administrator(&caller, check).await?;
                Ok(answer.into())
            }
            .await,
        )
    }
}
