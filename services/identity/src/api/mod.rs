//! The gRPC edge: each handler names its caller, parses the request into a domain input
//! (every bad field named at once), runs the use case and writes the result back.

mod access;
mod accounts;
mod convert;
mod directory;
mod grants;
mod staff;

use std::sync::Arc;

use portal_proto::identity::v1::access_service_server::{self, AccessServiceServer};
use portal_proto::identity::v1::account_service_server::{self, AccountServiceServer};
use portal_proto::identity::v1::directory_service_server::{self, DirectoryServiceServer};
use portal_proto::identity::v1::grant_service_server::{self, GrantServiceServer};
use portal_proto::identity::v1::staff_service_server::{self, StaffServiceServer};
use tonic::codec::CompressionEncoding::Gzip;
use tonic::service::Routes;
use tonic::{Response, Status};

use crate::app::App;
use crate::error::Result;

/// The gRPC services of identity, in the order they are served.
pub const SERVICES: [&str; 5] = [
    directory_service_server::SERVICE_NAME,
    staff_service_server::SERVICE_NAME,
    account_service_server::SERVICE_NAME,
    grant_service_server::SERVICE_NAME,
    access_service_server::SERVICE_NAME,
];

/// Every identity gRPC service, over one [`App`].
#[derive(Clone)]
pub struct Api {
    app: Arc<App>,
}

/// The routes of every service. Each accepts gzip-compressed requests and compresses its
/// answers for clients that accept gzip (large staff snapshots compress well).
pub fn routes(app: Arc<App>) -> Routes {
    let api = Api { app };
    Routes::new(
        DirectoryServiceServer::new(api.clone())
            .accept_compressed(Gzip)
            .send_compressed(Gzip),
    )
    .add_service(
        StaffServiceServer::new(api.clone())
            .accept_compressed(Gzip)
            .send_compressed(Gzip),
    )
    .add_service(
        AccountServiceServer::new(api.clone())
            .accept_compressed(Gzip)
            .send_compressed(Gzip),
    )
    .add_service(
        GrantServiceServer::new(api.clone())
            .accept_compressed(Gzip)
            .send_compressed(Gzip),
    )
    .add_service(
        AccessServiceServer::new(api)
            .accept_compressed(Gzip)
            .send_compressed(Gzip),
    )
}

/// A handler's answer: its message, or its error as a status.
fn answer<T>(result: Result<T>) -> Result<Response<T>, Status> {
    result.map(Response::new).map_err(Status::from)
}
