//! The gRPC edge: each handler names the caller, parses the request into a domain input
//! (every bad field named at once), runs the use case and converts its answer back.

mod catalog;
mod convert;
mod eligibility;
mod subscriptions;

use std::sync::Arc;

use portal_proto::subscription::v1::catalog_service_server::CatalogServiceServer;
use portal_proto::subscription::v1::eligibility_service_server::EligibilityServiceServer;
use portal_proto::subscription::v1::subscription_service_server::SubscriptionServiceServer;
use tonic::server::NamedService;
use tonic::service::Routes;

use crate::app::App;
use crate::error::Result;

/// The subscription service's gRPC services, over the use cases.
#[derive(Clone)]
pub struct Api {
    app: Arc<App>,
}

impl Api {
    pub fn new(app: Arc<App>) -> Self {
        Self { app }
    }

    /// The gRPC services, with their full names (for per-service health).
    pub fn services(self) -> (Routes, Vec<&'static str>) {
        let names = vec![
            <CatalogServiceServer<Api> as NamedService>::NAME,
            <SubscriptionServiceServer<Api> as NamedService>::NAME,
            <EligibilityServiceServer<Api> as NamedService>::NAME,
        ];
        let routes = Routes::new(CatalogServiceServer::new(self.clone()))
            .add_service(SubscriptionServiceServer::new(self.clone()))
            .add_service(EligibilityServiceServer::new(self));
        (routes, names)
    }
}

/// A handler's answer: its response, or its error as a status.
fn answer<T>(result: Result<T>) -> std::result::Result<tonic::Response<T>, tonic::Status> {
    result
        .map(tonic::Response::new)
        .map_err(tonic::Status::from)
}
