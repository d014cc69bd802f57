//! CatalogService: the product catalogue, readable by any caller with a valid token.

use std::sync::Arc;

use portal_proto::subscription::v1 as pb;
use portal_proto::subscription::v1::catalog_service_server::CatalogService;
use portal_runtime::paging::PageRequest;
use portal_runtime::{ApiError, Violations};
use tonic::{Request, Response, Status};

use super::{State, caller, equivalence_to_proto, product_to_proto};
use crate::domain::{ProductKey, RoleKey, Scope};
use crate::error::{Error, Result};

pub struct Catalog {
    state: Arc<State>,
}

impl Catalog {
    pub fn new(state: Arc<State>) -> Self {
        Self { state }
    }

    async fn list(
        &self,
        request: Request<pb::ListProductsRequest>,
    ) -> Result<pb::ListProductsResponse> {
        caller(&request)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let scope = match pb::ProductScope::try_from(request.scope) {
            Ok(pb::ProductScope::Unspecified) => None,
            Ok(pb::ProductScope::Trust) => Some(Scope::Trust),
            Ok(pb::ProductScope::School) => Some(Scope::School),
            Err(_) => {
                violations.add("scope", format!("{} is not a product scope", request.scope));
                None
            }
        };
        let filter = format!("scope={}", request.scope);
        let page = PageRequest::parse(
            request.page_size,
            &request.page_token,
            &filter,
            &mut violations,
        );
        violations.finish()?;
        let catalog = self.state.catalog().await?;
        let mut products: Vec<_> = catalog
            .products()
            .iter()
            .filter(|p| scope.is_none_or(|s| p.scope == s))
            .filter(|p| {
                page.after
                    .as_deref()
                    .is_none_or(|after| p.key.as_str() > after)
            })
            .take(page.fetch_limit() as usize)
            .collect();
        let next_page_token = page.finish(&mut products, &filter, |p| p.key.clone());
        Ok(pb::ListProductsResponse {
            products: products.into_iter().map(product_to_proto).collect(),
            next_page_token,
        })
    }

    async fn get(&self, request: Request<pb::GetProductRequest>) -> Result<pb::GetProductResponse> {
        caller(&request)?;
        let key = ProductKey::parse(&request.get_ref().product_key)
            .map_err(|e| ApiError::invalid("product_key", e))?;
        let catalog = self.state.catalog().await?;
        let product = catalog
            .product(key.as_str())
            .ok_or_else(|| Error::ProductNotFound(key.to_string()))?;
        Ok(pb::GetProductResponse {
            product: Some(product_to_proto(product)),
        })
    }

    async fn equivalences(
        &self,
        request: Request<pb::ListRoleEquivalencesRequest>,
    ) -> Result<pb::ListRoleEquivalencesResponse> {
        caller(&request)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let key = violations.take("product_key", ProductKey::parse(&request.product_key));
        let role = if request.role_key.trim().is_empty() {
            None
        } else {
            violations.take("role_key", RoleKey::parse(&request.role_key))
        };
        violations.finish()?;
        let Some(key) = key else {
            return Err(ApiError::invalid("product_key", "is required").into());
        };
        let catalog = self.state.catalog().await?;
        let product = catalog
            .product(key.as_str())
            .ok_or_else(|| Error::ProductNotFound(key.to_string()))?;
        if let Some(role) = &role
            && product.role(role.as_str()).is_none()
        {
            return Err(ApiError::invalid(
                "role_key",
                format!(
                    "product `{}` defines no role `{}`",
                    product.key,
                    role.as_str()
                ),
            )
            .into());
        }
        let role_equivalences = catalog
            .equivalences_of(&product.key, role.as_ref().map(RoleKey::as_str))
            .into_iter()
            .map(equivalence_to_proto)
            .collect();
        Ok(pb::ListRoleEquivalencesResponse { role_equivalences })
    }
}

#[tonic::async_trait]
impl CatalogService for Catalog {
    async fn list_products(
        &self,
        request: Request<pb::ListProductsRequest>,
    ) -> Result<Response<pb::ListProductsResponse>, Status> {
        Ok(Response::new(self.list(request).await?))
    }

    async fn get_product(
        &self,
        request: Request<pb::GetProductRequest>,
    ) -> Result<Response<pb::GetProductResponse>, Status> {
        Ok(Response::new(self.get(request).await?))
    }

    async fn list_role_equivalences(
        &self,
        request: Request<pb::ListRoleEquivalencesRequest>,
    ) -> Result<Response<pb::ListRoleEquivalencesResponse>, Status> {
        Ok(Response::new(self.equivalences(request).await?))
    }
}
