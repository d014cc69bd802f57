//! Layers that make the server's own answers say what happened: a request that is not a valid
//! protobuf message of its type is the caller's fault (INVALID_ARGUMENT, not INTERNAL), and a
//! call the server's deadline cut short is DEADLINE_EXCEEDED (not CANCELLED).

use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use tower::{Layer, Service};

/// How tonic's message decoder starts the INTERNAL status of a request it cannot decode.
const DECODE_FAILURE: &str = "failed to decode Protobuf message";

/// Answers a request that does not decode with INVALID_ARGUMENT.
#[derive(Clone, Copy, Debug, Default)]
pub struct MalformedLayer;

impl<S> Layer<S> for MalformedLayer {
    type Service = Malformed<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Malformed { inner }
    }
}

#[derive(Clone)]
pub struct Malformed<S> {
    inner: S,
}

/// Whether a trailers-only answer is tonic's failure to decode the request.
fn is_decode_failure(headers: &http::HeaderMap) -> bool {
    headers.get("grpc-status").map(|v| v.as_bytes()) == Some(b"13")
        && headers
            .get("grpc-message")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|m| percent_decoded_starts_with(m, DECODE_FAILURE))
}

/// `grpc-message` is percent-encoded; the prefix looked for has only spaces to decode.
fn percent_decoded_starts_with(message: &str, prefix: &str) -> bool {
    message.replace("%20", " ").starts_with(prefix)
}

/// The answer to a request that is not a valid message of its type.
pub fn malformed_request() -> tonic::Status {
    crate::ApiError::invalid(
        "request",
        "is not a valid protobuf message of the method's request type",
    )
    .into_status("portal")
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for Malformed<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let response = inner.call(request).await?;
            if is_decode_failure(response.headers()) {
                return Ok(malformed_request().into_http());
            }
            Ok(response)
        })
    }
}

/// Whether a trailers-only answer says a peer could not answer (UNAVAILABLE, CANCELLED).
fn gave_up(headers: &http::HeaderMap) -> bool {
    matches!(
        headers.get("grpc-status").map(|v| v.as_bytes()),
        Some(b"14" | b"1")
    )
}

/// Cuts a call short at the server's deadline with DEADLINE_EXCEEDED.
#[derive(Clone, Copy, Debug)]
pub struct CutoffLayer {
    limit: Duration,
}

impl CutoffLayer {
    pub fn new(limit: Duration) -> Self {
        Self { limit }
    }
}

impl<S> Layer<S> for CutoffLayer {
    type Service = Cutoff<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Cutoff {
            inner,
            limit: self.limit,
        }
    }
}

#[derive(Clone)]
pub struct Cutoff<S> {
    inner: S,
    limit: Duration,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for Cutoff<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let limit = self.limit;
        // The caller's own deadline, when sooner, is the call's deadline too: the calls made
        // while serving carry it on, and fail when it passes.
        let deadline = request
            .headers()
            .get("grpc-timeout")
            .and_then(|value| value.to_str().ok())
            .and_then(crate::deadline::parse_grpc_timeout)
            .map_or(limit, |asked| asked.min(limit));
        let started = Instant::now();
        Box::pin(async move {
            let exceeded = || {
                tonic::Status::deadline_exceeded(format!(
                    "the call's deadline of {} ms passed before it finished",
                    deadline.as_millis()
                ))
                .into_http()
            };
            match tokio::time::timeout(limit, inner.call(request)).await {
                // A call the deadline cut short downstream answers for the deadline, not for
                // the peer that could no longer answer in time.
                Ok(Ok(response))
                    if started.elapsed() >= deadline && gave_up(response.headers()) =>
                {
                    Ok(exceeded())
                }
                Ok(response) => response,
                Err(_) => Ok(exceeded()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tonic_decode_failures_are_recognised_in_their_encoded_form() {
        let mut headers = http::HeaderMap::new();
        headers.insert("grpc-status", http::HeaderValue::from_static("13"));
        headers.insert(
            "grpc-message",
            http::HeaderValue::from_static(
                "failed%20to%20decode%20Protobuf%20message:%20invalid%20string",
            ),
        );
        assert!(is_decode_failure(&headers));
        headers.insert(
            "grpc-message",
            http::HeaderValue::from_static("internal error"),
        );
        assert!(!is_decode_failure(&headers));
    }
}
