//! CatalogService: the product catalogue, readable by any caller with a valid token.

use portal_proto::subscription::v1 as pb;
use portal_proto::subscription::v1::catalog_service_server::CatalogService;
use portal_runtime::vocab::ProductKey;
use portal_runtime::{ApiError, principal_of};
use tonic::{Request, Response, Status};

use super::convert::Paged;
use super::{Api, answer};
use crate::domain::{ProductPage, RoleSelection};

#[tonic::async_trait]
impl CatalogService for Api {
    async fn list_products(
        &self,
        request: Request<pb::ListProductsRequest>,
    ) -> Result<Response<pb::ListProductsResponse>, Status> {
        answer(
            async {
                principal_of(&request)?;
                let asked = Paged::<ProductPage>::try_from(request.into_inner())?;
                let mut products = self.app.list_products(&asked.input).await?;
                let next_page_token = asked.next_page_token(&mut products, |p| p.key.to_string());
                Ok(pb::ListProductsResponse {
                    products: products.into_iter().map(Into::into).collect(),
                    next_page_token,
                })
            }
            .await,
        )
    }

    async fn get_product(
        &self,
        request: Request<pb::GetProductRequest>,
    ) -> Result<Response<pb::GetProductResponse>, Status> {
        answer(
            async {
                principal_of(&request)?;
                let key = ProductKey::parse(&request.get_ref().product_key)
                    .map_err(|e| ApiError::invalid("product_key", e))?;
                let product = self.app.get_product(&key).await?;
                Ok(pb::GetProductResponse {
                    product: Some(product.into()),
                })
            }
            .await,
        )
    }

    async fn list_role_equivalences(
        &self,
        request: Request<pb::ListRoleEquivalencesRequest>,
    ) -> Result<Response<pb::ListRoleEquivalencesResponse>, Status> {
        answer(
            async {
                principal_of(&request)?;
                let asked = RoleSelection::try_from(request.into_inner())?;
                let equivalences = self.app.role_equivalences(&asked).await?;
                Ok(pb::ListRoleEquivalencesResponse {
                    role_equivalences: equivalences.into_iter().map(Into::into).collect(),
                })
            }
            .await,
        )
    }
}
