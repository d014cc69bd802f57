//! W3C trace context across gRPC hops and the spans of both ends of a call: servers continue
//! the caller's trace, clients open a CLIENT span and pass it on, so one request is one trace
//! over every service it touches.

use opentelemetry::propagation::{Extractor, Injector};
use tracing_opentelemetry::OpenTelemetrySpanExt;

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

struct MetadataInjector<'a>(&'a mut tonic::metadata::MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            tonic::metadata::MetadataKey::from_bytes(key.as_bytes()),
            value.parse(),
        ) {
            self.0.insert(key, value);
        }
    }
}

/// The server span of one RPC (OpenTelemetry RPC conventions), a child of the caller's span
/// when the request carries one. `service` and `method` come from the closed set of methods
/// the server answers ([`crate::metrics::method_labels`]), never from the caller's path.
pub fn server_span<B>(
    service: &'static str,
    method: &'static str,
    request: &http::Request<B>,
) -> tracing::Span {
    let span = tracing::info_span!(
        "grpc.server",
        otel.name = %format_args!("{service}/{method}"),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        rpc.system = "grpc",
        rpc.service = service,
        rpc.method = method,
        rpc.grpc.status_code = tracing::field::Empty,
    );
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderExtractor(request.headers()))
    });
    let _ = span.set_parent(parent);
    span
}

/// Which end of a call a span describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Server,
    Client,
}

/// Records a call's gRPC status on its span; the span's status is an error for a client
/// whenever the call failed, and for a server only when the fault is its own (the
/// conventions: UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS).
pub fn record_status(span: &tracing::Span, code: tonic::Code, side: Side) {
    use tonic::Code;
    span.record("rpc.grpc.status_code", code as i64);
    let error = match side {
        Side::Client => code != Code::Ok,
        Side::Server => matches!(
            code,
            Code::Unknown
                | Code::DeadlineExceeded
                | Code::Unimplemented
                | Code::Internal
                | Code::Unavailable
                | Code::DataLoss
        ),
    };
    if error {
        span.record("otel.status_code", "ERROR");
    }
}

/// The client span of one outgoing RPC, a child of the current span.
pub fn client_span(path: &str, authority: Option<&str>) -> tracing::Span {
    let (service, method) = path
        .trim_start_matches('/')
        .split_once('/')
        .unwrap_or((path, ""));
    tracing::info_span!(
        "grpc.client",
        otel.name = %format_args!("{service}/{method}"),
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
        rpc.system = "grpc",
        rpc.service = service,
        rpc.method = method,
        rpc.grpc.status_code = tracing::field::Empty,
        server.address = authority.unwrap_or_default(),
    )
}

/// Adds the current span's context to an outgoing call.
pub fn inject_current(metadata: &mut tonic::metadata::MetadataMap) {
    let context = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut MetadataInjector(metadata));
    });
}
