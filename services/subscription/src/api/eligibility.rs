//! EligibilityService: rule R5 for the invitation service, and a school's information icon.

use portal_proto::subscription::v1 as pb;
use portal_proto::subscription::v1::eligibility_service_server::EligibilityService;
use portal_runtime::vocab::TrustId;
use portal_runtime::{Principal, principal_of};
use tonic::{Request, Response, Status};

use super::{Api, answer};
use crate::domain::{Query, SchoolQuery};

impl Api {
    /// Authorisation before the request is read: a trust id that does not parse is answered
    /// with every bad field by the parse that follows.
    async fn admit(&self, principal: &Principal, trust_id: &str) -> crate::error::Result<()> {
        match TrustId::parse(trust_id) {
            Ok(trust_id) => self.app.admit_eligibility(principal, trust_id).await,
            Err(_) => Ok(()),
        }
    }
}

#[tonic::async_trait]
impl EligibilityService for Api {
    async fn check_eligibility(
        &self,
        request: Request<pb::CheckEligibilityRequest>,
    ) -> Result<Response<pb::CheckEligibilityResponse>, Status> {
        answer(
            async {
                let principal = principal_of(&request)?;
                self.admit(&principal, &request.get_ref().trust_id).await?;
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
                self.admit(&principal, &request.get_ref().trust_id).await?;
                let query = SchoolQuery::try_from(request.into_inner())?;
                let found = self.app.school_subscriptions(&principal, query).await?;
                Ok(found.into())
            }
            .await,
        )
    }
}
