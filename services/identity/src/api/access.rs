//! AccessService: trust administrators list and withdraw a staff member's access.

use portal_proto::identity::v1 as pb;
use portal_proto::identity::v1::access_service_server::AccessService;
use portal_runtime::auth::principal_of;
use tonic::{Request, Response, Status};

use super::convert::{Parsed, Withdrawal};
use super::{Api, answer};

#[tonic::async_trait]
impl AccessService for Api {
    async fn list_staff_access(
        &self,
        request: Request<pb::ListStaffAccessRequest>,
    ) -> Result<Response<pb::ListStaffAccessResponse>, Status> {
        answer(
            async {
                let caller = principal_of(&request)?;
                let Parsed((trust_id, staff_id)) = request.into_inner().try_into()?;
                let grants = self
                    .app
                    .list_staff_access(&caller, trust_id, staff_id)
                    .await?;
                Ok(pb::ListStaffAccessResponse {
                    access: grants.into_iter().map(Into::into).collect(),
                })
            }
            .await,
        )
    }

    async fn withdraw_access(
        &self,
        request: Request<pb::WithdrawAccessRequest>,
    ) -> Result<Response<pb::WithdrawAccessResponse>, Status> {
        answer(
            async {
                let caller = principal_of(&request)?;
                let Withdrawal {
                    trust_id,
                    staff_id,
                    target,
                } = request.into_inner().try_into()?;
                let withdrawn = self
                    .app
                    .withdraw_access(&caller, trust_id, staff_id, target)
                    .await?;
                Ok(pb::WithdrawAccessResponse {
                    withdrawn_count: i32::try_from(withdrawn).unwrap_or(i32::MAX),
                })
            }
            .await,
        )
    }
}
