//! SubscriptionService: billing writes subscriptions; the invitation service and the trust's
//! administrators read them. Writers are admitted before their request is read.

use portal_proto::subscription::v1 as pb;
use portal_proto::subscription::v1::subscription_service_server::SubscriptionService;
use portal_runtime::vocab::SubscriptionId;
use portal_runtime::{ApiError, principal_of};
use tonic::{Request, Response, Status};

use super::convert::Paged;
use super::{Api, answer};
use crate::domain::{Cancellation, Creation, SubscriptionPage, Update};

#[tonic::async_trait]
impl SubscriptionService for Api {
    async fn create_subscription(
        &self,
        request: Request<pb::CreateSubscriptionRequest>,
    ) -> Result<Response<pb::CreateSubscriptionResponse>, Status> {
        answer(
            async {
                let billing = self.app.billing(&principal_of(&request)?)?;
                // The product is checked against the catalogue with the other fields.
                let catalog = self.app.catalog().await?;
                let creation = Creation::try_from((request.into_inner(), catalog.as_ref()))?;
                let created = self.app.create_subscription(&billing, creation).await?;
                Ok(pb::CreateSubscriptionResponse {
                    subscription: Some(created.into()),
                })
            }
            .await,
        )
    }

    async fn update_subscription(
        &self,
        request: Request<pb::UpdateSubscriptionRequest>,
    ) -> Result<Response<pb::UpdateSubscriptionResponse>, Status> {
        answer(
            async {
                let billing = self.app.billing(&principal_of(&request)?)?;
                let update = Update::try_from(request.into_inner())?;
                let updated = self.app.update_subscription(&billing, update).await?;
                Ok(pb::UpdateSubscriptionResponse {
                    subscription: Some(updated.into()),
                })
            }
            .await,
        )
    }

    async fn cancel_subscription(
        &self,
        request: Request<pb::CancelSubscriptionRequest>,
    ) -> Result<Response<pb::CancelSubscriptionResponse>, Status> {
        answer(
            async {
                let billing = self.app.billing(&principal_of(&request)?)?;
                let cancellation = Cancellation::try_from(request.into_inner())?;
                let cancelled = self.app.cancel_subscription(&billing, cancellation).await?;
                Ok(pb::CancelSubscriptionResponse {
                    subscription: Some(cancelled.into()),
                })
            }
            .await,
        )
    }

    async fn get_subscription(
        &self,
        request: Request<pb::GetSubscriptionRequest>,
    ) -> Result<Response<pb::GetSubscriptionResponse>, Status> {
        answer(
            async {
                let reader = self.app.subscription_reader(principal_of(&request)?)?;
                let id = SubscriptionId::parse(&request.get_ref().subscription_id)
                    .map_err(|e| ApiError::invalid("subscription_id", e))?;
                let subscription = self.app.get_subscription(&reader, id).await?;
                Ok(pb::GetSubscriptionResponse {
                    subscription: Some(subscription.into()),
                })
            }
            .await,
        )
    }

    async fn list_subscriptions(
        &self,
        request: Request<pb::ListSubscriptionsRequest>,
    ) -> Result<Response<pb::ListSubscriptionsResponse>, Status> {
        answer(
            async {
                let principal = principal_of(&request)?;
                // A service that may not read is refused before the request is read.
                self.app.subscription_reader(principal.clone())?;
                let asked = Paged::<SubscriptionPage>::try_from(request.into_inner())?;
                let mut listed = self
                    .app
                    .list_subscriptions(&principal, &asked.input)
                    .await?;
                let next_page_token = asked.next_page_token(&mut listed, |s| s.id.to_string());
                Ok(pb::ListSubscriptionsResponse {
                    subscriptions: listed.iter().map(Into::into).collect(),
                    next_page_token,
                })
            }
            .await,
        )
    }
}
