//! The gRPC edge: each call's caller and request parsed into domain input (every bad field
//! named), the use case run, its answer converted back ([`convert`]).

use std::sync::Arc;

use secrecy::SecretString;
use tonic::{Request, Response, Status};

use portal_proto::invitation::v1::invitation_service_server::InvitationServiceServer;

use crate::app::App;
use crate::error::Error;

pub mod convert;
mod invitations;

/// The InvitationService, answering from the use cases.
#[derive(Clone)]
pub struct Api {
    app: Arc<App>,
}

/// The tonic service of the invitation API.
pub fn server(app: Arc<App>) -> InvitationServiceServer<Api> {
    InvitationServiceServer::new(Api { app })
}

/// A handler's answer: its response, or its error as a status with rich details.
fn answer<T>(result: Result<T, Error>) -> Result<Response<T>, Status> {
    result.map(Response::new).map_err(Status::from)
}

/// The caller's own bearer token, for the calls made on their behalf.
fn bearer<T>(request: &Request<T>) -> Option<SecretString> {
    let value = request.metadata().get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| SecretString::from(token.trim()))
}
