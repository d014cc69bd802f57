//! DirectoryService: trusts and schools.

use portal_proto::identity::v1 as pb;
use portal_proto::identity::v1::directory_service_server::DirectoryService;
use portal_runtime::auth::Principal;
use portal_runtime::error::Violations;
use portal_runtime::paging::PageRequest;
use portal_runtime::types::{new_id, parse_id, parse_name};
use tonic::{Request, Response, Status};

use super::{IdentityApi, OPERATOR, answer, principal, require_service, school_pb, trust_pb};
use crate::domain::{MAX_ORG_NAME, NewSchool, NewTrust, parse_optional_text, parse_request_id};
use crate::error::{IdentityError, Result};

impl IdentityApi {
    /// Services read any trust; users only trusts where they hold access. Everything else is
    /// answered exactly like an unknown trust.
    async fn require_trust_visible(&self, principal: &Principal, trust_id: &str) -> Result<()> {
        match principal {
            Principal::Service { .. } => Ok(()),
            Principal::User { account_id } => {
                if self
                    .store()
                    .has_access_in_trust(&account_id.to_string(), trust_id)
                    .await?
                {
                    Ok(())
                } else {
                    Err(IdentityError::TrustNotFound(trust_id.to_string()))
                }
            }
        }
    }

    async fn create_trust_impl(
        &self,
        request: Request<pb::CreateTrustRequest>,
    ) -> Result<pb::CreateTrustResponse> {
        require_service(&principal(&request)?, &[OPERATOR])?;
        let request = request.into_inner();
        let mut v = Violations::new();
        let name = v.take("name", parse_name(&request.name, MAX_ORG_NAME));
        let request_id = v.take("request_id", parse_request_id(&request.request_id));
        v.finish()?;
        let (Some(name), Some(request_id)) = (name, request_id) else {
            return unreachable_parse();
        };
        let trust = self
            .store()
            .create_trust(NewTrust {
                id: new_id(),
                name,
                request_id,
                now: self.now(),
            })
            .await?;
        Ok(pb::CreateTrustResponse {
            trust: Some(trust_pb(trust)),
        })
    }

    async fn get_trust_impl(
        &self,
        request: Request<pb::GetTrustRequest>,
    ) -> Result<pb::GetTrustResponse> {
        let caller = principal(&request)?;
        let mut v = Violations::new();
        let trust_id = v.take("trust_id", parse_id(&request.get_ref().trust_id));
        v.finish()?;
        let trust_id = trust_id.unwrap_or_default();
        self.require_trust_visible(&caller, &trust_id).await?;
        let trust = self
            .store()
            .get_trust(&trust_id)
            .await?
            .ok_or(IdentityError::TrustNotFound(trust_id))?;
        Ok(pb::GetTrustResponse {
            trust: Some(trust_pb(trust)),
        })
    }

    async fn create_school_impl(
        &self,
        request: Request<pb::CreateSchoolRequest>,
    ) -> Result<pb::CreateSchoolResponse> {
        require_service(&principal(&request)?, &[OPERATOR])?;
        let request = request.into_inner();
        let mut v = Violations::new();
        let trust_id = v.take("trust_id", parse_id(&request.trust_id));
        let name = v.take("name", parse_name(&request.name, MAX_ORG_NAME));
        let urn = v.take("urn", parse_urn(request.urn.as_deref().unwrap_or("")));
        let request_id = v.take("request_id", parse_request_id(&request.request_id));
        v.finish()?;
        let (Some(trust_id), Some(name), Some(urn), Some(request_id)) =
            (trust_id, name, urn, request_id)
        else {
            return unreachable_parse();
        };
        let school = self
            .store()
            .create_school(NewSchool {
                id: new_id(),
                trust_id,
                name,
                urn,
                request_id,
                now: self.now(),
            })
            .await?;
        Ok(pb::CreateSchoolResponse {
            school: Some(school_pb(school)),
        })
    }

    async fn get_school_impl(
        &self,
        request: Request<pb::GetSchoolRequest>,
    ) -> Result<pb::GetSchoolResponse> {
        let caller = principal(&request)?;
        let mut v = Violations::new();
        let school_id = v.take("school_id", parse_id(&request.get_ref().school_id));
        v.finish()?;
        let school_id = school_id.unwrap_or_default();
        let school = self
            .store()
            .get_school(&school_id)
            .await?
            .ok_or_else(|| IdentityError::SchoolNotFound(school_id.clone()))?;
        self.require_trust_visible(&caller, &school.trust_id)
            .await
            .map_err(|_| IdentityError::SchoolNotFound(school_id))?;
        Ok(pb::GetSchoolResponse {
            school: Some(school_pb(school)),
        })
    }

    async fn list_schools_impl(
        &self,
        request: Request<pb::ListSchoolsRequest>,
    ) -> Result<pb::ListSchoolsResponse> {
        let caller = principal(&request)?;
        let request = request.into_inner();
        let mut v = Violations::new();
        let trust_id = v.take("trust_id", parse_id(&request.trust_id));
        let filter = format!("schools;trust={}", trust_id.as_deref().unwrap_or(""));
        let page = PageRequest::parse(request.page_size, &request.page_token, &filter, &mut v);
        v.finish()?;
        let trust_id = trust_id.unwrap_or_default();
        self.require_trust_visible(&caller, &trust_id).await?;
        if self.store().get_trust(&trust_id).await?.is_none() {
            return Err(IdentityError::TrustNotFound(trust_id));
        }
        let mut schools = self
            .store()
            .list_schools(&trust_id, page.after.as_deref(), page.fetch_limit())
            .await?;
        let next_page_token = page.finish(&mut schools, &filter, |s| s.id.clone());
        Ok(pb::ListSchoolsResponse {
            schools: schools.into_iter().map(school_pb).collect(),
            next_page_token,
        })
    }
}

/// A URN: empty means none; otherwise 1 to 16 characters, letters and digits.
fn parse_urn(raw: &str) -> std::result::Result<Option<String>, String> {
    let urn = parse_optional_text(raw, 16)?;
    if urn.is_empty() {
        return Ok(None);
    }
    if !urn.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err("must be letters and digits only".into());
    }
    Ok(Some(urn))
}

/// Every field parsed (the violations were empty) yet a value is missing: a bug, not bad input.
pub(super) fn unreachable_parse<T>() -> Result<T> {
    Err(IdentityError::Internal(anyhow::anyhow!(
        "a parsed request field is missing"
    )))
}

#[tonic::async_trait]
impl DirectoryService for IdentityApi {
    async fn create_trust(
        &self,
        request: Request<pb::CreateTrustRequest>,
    ) -> Result<Response<pb::CreateTrustResponse>, Status> {
        answer(self.create_trust_impl(request).await)
    }

    async fn get_trust(
        &self,
        request: Request<pb::GetTrustRequest>,
    ) -> Result<Response<pb::GetTrustResponse>, Status> {
        answer(self.get_trust_impl(request).await)
    }

    async fn create_school(
        &self,
        request: Request<pb::CreateSchoolRequest>,
    ) -> Result<Response<pb::CreateSchoolResponse>, Status> {
        answer(self.create_school_impl(request).await)
    }

    async fn get_school(
        &self,
        request: Request<pb::GetSchoolRequest>,
    ) -> Result<Response<pb::GetSchoolResponse>, Status> {
        answer(self.get_school_impl(request).await)
    }

    async fn list_schools(
        &self,
        request: Request<pb::ListSchoolsRequest>,
    ) -> Result<Response<pb::ListSchoolsResponse>, Status> {
        answer(self.list_schools_impl(request).await)
    }
}
