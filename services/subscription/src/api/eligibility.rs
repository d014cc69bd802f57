//! EligibilityService: rule R5 for the invitation service, and a school's information icon.

use portal_proto::subscription::v1 as pb;
use portal_proto::subscription::v1::eligibility_service_server::EligibilityService;
use portal_runtime::principal_of;
use tonic::{Request, Response, Status};

use super::{Api, answer};
use crate::domain::{Query, SchoolQuery};

#[tonic::async_trait]
impl EligibilityService for Api {
    async fn check_eligibility(
        &self,
        request: Request<pb::CheckEligibilityRequest>,
    ) -> Result<Response<pb::CheckEligibilityResponse>, Status> {
        answer(
            async {
                let principal = principal_of(&request)?;
                // Product keys are checked against the catalogue with the other fields.
                let catalog = self.app.catalog().await?;
                let query = Query::try_from((request.into_inner(), catalog.as_ref()))?;
                let answers = self
                    .app
                    .check_eligibility(&principal, query, catalog)
                    .await?;
                Ok(answers.into())
            }
            .await,
        )
    }

    async fn get_school_subscriptions(
        &self,
        request: Request<pb::GetSchoolSubscriptionsRequest>,
    ) -> Result<Response<pb::GetSchoolSubscriptionsResponse>, Status> {
        answer(
            async {
                let principal = principal_of(&request)?;
                let query = SchoolQuery::try_from(request.into_inner())?;
                let found = self.app.school_subscriptions(&principal, query).await?;
                Ok(found.into())
            }
            .await,
        )
    }
}
