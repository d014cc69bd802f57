//! DirectoryService: trusts and schools.

use portal_proto::identity::v1 as pb;
use portal_proto::identity::v1::directory_service_server::DirectoryService;
use portal_runtime::auth::principal_of;
use tonic::{Request, Response, Status};

use super::convert::{Listing, Parsed};
use super::{Api, answer};
use crate::app::DirectoryWrites;
use crate::domain::{NewSchool, NewTrust, SchoolQuery};

#[tonic::async_trait]
impl DirectoryService for Api {
    async fn create_trust(
        &self,
        request: Request<pb::CreateTrustRequest>,
    ) -> Result<Response<pb::CreateTrustResponse>, Status> {
        answer(
            async {
                let caller = principal_of(&request)?;
                let admitted = self.app.admit::<DirectoryWrites>(&caller)?;
                let new = NewTrust::try_from(request.into_inner())?;
                let trust = self.app.create_trust(&admitted, new).await?;
                Ok(pb::CreateTrustResponse {
                    trust: Some(trust.into()),
                })
            }
            .await,
        )
    }

    async fn get_trust(
        &self,
        request: Request<pb::GetTrustRequest>,
    ) -> Result<Response<pb::GetTrustResponse>, Status> {
        answer(
            async {
                let caller = principal_of(&request)?;
                let Parsed(trust_id) = request.into_inner().try_into()?;
                let trust = self.app.get_trust(&caller, trust_id).await?;
                Ok(pb::GetTrustResponse {
                    trust: Some(trust.into()),
                })
            }
            .await,
        )
    }

    async fn create_school(
        &self,
        request: Request<pb::CreateSchoolRequest>,
    ) -> Result<Response<pb::CreateSchoolResponse>, Status> {
        answer(
            async {
                let caller = principal_of(&request)?;
                let admitted = self.app.admit::<DirectoryWrites>(&caller)?;
                let new = NewSchool::try_from(request.into_inner())?;
                let school = self.app.create_school(&admitted, new).await?;
                Ok(pb::CreateSchoolResponse {
                    school: Some(school.into()),
                })
            }
            .await,
        )
    }

    async fn get_school(
        &self,
        request: Request<pb::GetSchoolRequest>,
    ) -> Result<Response<pb::GetSchoolResponse>, Status> {
        answer(
            async {
                let caller = principal_of(&request)?;
                let Parsed(school_id) = request.into_inner().try_into()?;
                let school = self.app.get_school(&caller, school_id).await?;
                Ok(pb::GetSchoolResponse {
                    school: Some(school.into()),
                })
            }
            .await,
        )
    }

    async fn list_schools(
        &self,
        request: Request<pb::ListSchoolsRequest>,
    ) -> Result<Response<pb::ListSchoolsResponse>, Status> {
        answer(
            async {
                let caller = principal_of(&request)?;
                let listing = Listing::<SchoolQuery>::try_from(request.into_inner())?;
                let mut schools = self.app.list_schools(&caller, &listing.query).await?;
                let next_page_token = listing.next_page(&mut schools, |s| s.id.to_string());
                Ok(pb::ListSchoolsResponse {
                    schools: schools.into_iter().map(Into::into).collect(),
                    next_page_token,
                })
            }
            .await,
        )
    }
}
