//! The client side: the bearer token, the trace context and the deadline every outgoing call
//! carries.

use std::time::Duration;

use tonic::Status;

/// Adds a bearer token, the current trace context and a `grpc-timeout` (the time left of the
/// call being served, or the client's own call timeout) to every outgoing call of a client.
#[derive(Clone)]
pub struct BearerToken {
    value: Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
    call_timeout: Option<Duration>,
}

impl BearerToken {
    pub fn new(token: &str) -> anyhow::Result<Self> {
        Ok(Self {
            value: Some(format!("Bearer {token}").parse()?),
            call_timeout: None,
        })
    }

    /// No token: for calls that carry their caller's own, or need none.
    pub fn none() -> Self {
        Self {
            value: None,
            call_timeout: None,
        }
    }

    /// Every call also tells the server this deadline (or a sooner one: see
    /// [`crate::deadline`]).
    pub fn with_call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = Some(timeout);
        self
    }
}

impl tonic::service::Interceptor for BearerToken {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        if let Some(value) = &self.value {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        crate::propagation::inject_current(request.metadata_mut());
        crate::deadline::apply(&mut request, self.call_timeout);
        Ok(request)
    }
}
