//! Prometheus metrics: per-RPC request counts by gRPC code and latency histograms, database pool
//! use, and any gauge a service adds (the invitation outbox backlog), served as text on an admin
//! HTTP port.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, LazyLock, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Instant;

use bytes::Bytes;
use futures::future::BoxFuture;
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use prost::Message as _;
use tokio::net::TcpListener;
use tower::{Layer, Service};

use crate::db::DbPool;
use crate::shutdown::Shutdown;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcLabels {
    grpc_service: &'static str,
    grpc_method: &'static str,
    grpc_code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    grpc_service: &'static str,
    grpc_method: &'static str,
}

/// The service and method label of a call to a path no Portal server answers.
pub const UNKNOWN_METHOD: &str = "unknown";

/// Every method path a Portal server answers (`/package.Service/Method`): the suite's own
/// services, health and both reflection versions. Metrics are labelled only from this closed
/// set: the layer runs before authentication, and a label per path a caller makes up would
/// grow the registry without end.
static KNOWN_METHODS: LazyLock<HashSet<String>> = LazyLock::new(|| {
    let sets = [
        portal_proto::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
    ];
    let mut paths = HashSet::new();
    for encoded in sets {
        // The sets are compiled in; one that did not decode would only leave its calls
        // labelled unknown.
        let Ok(set) = prost_types::FileDescriptorSet::decode(encoded) else {
            continue;
        };
        for file in set.file {
            for service in &file.service {
                let full = match file.package() {
                    "" => service.name().to_string(),
                    package => format!("{package}.{}", service.name()),
                };
                for method in &service.method {
                    paths.insert(format!("/{full}/{}", method.name()));
                }
            }
        }
    }
    paths
});

/// The (service, method) labels of a call's path: its own when a Portal server answers it,
/// [`UNKNOWN_METHOD`] for both otherwise.
fn method_labels(path: &str) -> (&'static str, &'static str) {
    match KNOWN_METHODS.get(path) {
        Some(known) => split_path(known),
        None => (UNKNOWN_METHOD, UNKNOWN_METHOD),
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    state: &'static str,
}

fn latency_histogram() -> Histogram {
    Histogram::new([
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ])
}

/// One service's metrics registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
    requests: Family<RpcLabels, Counter>,
    latency: Family<MethodLabels, Histogram, fn() -> Histogram>,
    pool: Family<PoolLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("portal");
        let requests = Family::<RpcLabels, Counter>::default();
        let latency = Family::<MethodLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        let pool = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "grpc_server_handled",
            "RPCs completed, by method and gRPC status code",
            requests.clone(),
        );
        registry.register(
            "grpc_server_handling_seconds",
            "RPC latency until the status is sent, by method",
            latency.clone(),
        );
        registry.register(
            "db_pool_connections",
            "Database pool connections by state (idle, in_use)",
            pool.clone(),
        );
        Self {
            registry: Arc::new(Mutex::new(registry)),
            requests,
            latency,
            pool,
        }
    }

    /// Registers a gauge a service keeps up to date itself.
    pub fn gauge(&self, name: &str, help: &str) -> Gauge {
        let gauge = Gauge::default();
        self.registry
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .register(name, help, gauge.clone());
        gauge
    }

    fn record_pool(&self, pool: &DbPool) {
        let (size, idle) = pool.usage();
        let idle = idle as i64;
        self.pool
            .get_or_create(&PoolLabels { state: "idle" })
            .set(idle);
        self.pool
            .get_or_create(&PoolLabels { state: "in_use" })
            .set(i64::from(size) - idle);
    }

    /// The registry in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        if prometheus_client::encoding::text::encode(&mut out, &registry).is_err() {
            out.clear();
        }
        out
    }

    fn record(&self, path: &str, code: &'static str, started: Instant) {
        let (grpc_service, grpc_method) = method_labels(path);
        self.requests
            .get_or_create(&RpcLabels {
                grpc_service,
                grpc_method,
                grpc_code: code,
            })
            .inc();
        self.latency
            .get_or_create(&MethodLabels {
                grpc_service,
                grpc_method,
            })
            .observe(started.elapsed().as_secs_f64());
    }
}

fn split_path(path: &'static str) -> (&'static str, &'static str) {
    let trimmed = path.trim_start_matches('/');
    trimmed.split_once('/').unwrap_or((trimmed, ""))
}

fn code_name(code: i32) -> &'static str {
    match tonic::Code::from_i32(code) {
        tonic::Code::Ok => "OK",
        tonic::Code::Cancelled => "CANCELLED",
        tonic::Code::Unknown => "UNKNOWN",
        tonic::Code::InvalidArgument => "INVALID_ARGUMENT",
        tonic::Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        tonic::Code::NotFound => "NOT_FOUND",
        tonic::Code::AlreadyExists => "ALREADY_EXISTS",
        tonic::Code::PermissionDenied => "PERMISSION_DENIED",
        tonic::Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        tonic::Code::FailedPrecondition => "FAILED_PRECONDITION",
        tonic::Code::Aborted => "ABORTED",
        tonic::Code::OutOfRange => "OUT_OF_RANGE",
        tonic::Code::Unimplemented => "UNIMPLEMENTED",
        tonic::Code::Internal => "INTERNAL",
        tonic::Code::Unavailable => "UNAVAILABLE",
        tonic::Code::DataLoss => "DATA_LOSS",
        tonic::Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

fn status_in(headers: &http::HeaderMap) -> Option<&'static str> {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .map(code_name)
}

/// Records each RPC when its status is known: in the response headers (trailers-only answers)
/// or in the trailers at the end of the body.
#[derive(Clone)]
pub struct MetricsLayer {
    metrics: Metrics,
}

impl MetricsLayer {
    pub fn new(metrics: Metrics) -> Self {
        Self { metrics }
    }
}

impl<S> Layer<S> for MetricsLayer {
    type Service = MetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MetricsService {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

#[derive(Clone)]
pub struct MetricsService<S> {
    inner: S,
    metrics: Metrics,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for MetricsService<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Send + 'static,
{
    type Response = http::Response<ObservedBody<ResBody>>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let recorder = Recorder {
            metrics: self.metrics.clone(),
            path: request.uri().path().to_string(),
            started: Instant::now(),
            done: false,
        };
        Box::pin(async move {
            let response = inner.call(request).await?;
            let (parts, body) = response.into_parts();
            let mut recorder = Some(recorder);
            if let Some(code) = status_in(&parts.headers)
                && let Some(mut r) = recorder.take()
            {
                r.finish(code);
            }
            Ok(http::Response::from_parts(
                parts,
                ObservedBody {
                    inner: body,
                    recorder,
                },
            ))
        })
    }
}

struct Recorder {
    metrics: Metrics,
    path: String,
    started: Instant,
    done: bool,
}

impl Recorder {
    fn finish(&mut self, code: &'static str) {
        if !self.done {
            self.done = true;
            self.metrics.record(&self.path, code, self.started);
        }
    }
}

impl Drop for Recorder {
    // A body dropped before its trailers: the client went away.
    fn drop(&mut self) {
        self.finish("CANCELLED");
    }
}

pin_project_lite::pin_project! {
    /// A response body that records the RPC when its trailers pass.
    pub struct ObservedBody<B> {
        #[pin]
        inner: B,
        recorder: Option<Recorder>,
    }
}

impl<B: Body> Body for ObservedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        match &frame {
            Some(Ok(f)) => {
                if let Some(trailers) = f.trailers_ref()
                    && let Some(mut r) = this.recorder.take()
                {
                    r.finish(status_in(trailers).unwrap_or("UNKNOWN"));
                }
            }
            Some(Err(_)) => {
                if let Some(mut r) = this.recorder.take() {
                    r.finish("UNKNOWN");
                }
            }
            None => {
                if let Some(mut r) = this.recorder.take() {
                    r.finish("UNKNOWN");
                }
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Serves `GET /metrics` until shutdown; refreshes the pool gauges on each scrape.
pub async fn serve_admin(
    listener: TcpListener,
    metrics: Metrics,
    pool: Option<DbPool>,
    shutdown: Shutdown,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.wait() => return,
        };
        let Ok((stream, _)) = accepted else {
            continue;
        };
        let metrics = metrics.clone();
        let pool = pool.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
                let metrics = metrics.clone();
                let pool = pool.clone();
                async move {
                    if request.uri().path() == "/metrics" {
                        if let Some(pool) = &pool {
                            metrics.record_pool(pool);
                        }
                        http::Response::builder()
                            .header(
                                http::header::CONTENT_TYPE,
                                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                            )
                            .body(Full::new(Bytes::from(metrics.encode())))
                    } else {
                        http::Response::builder()
                            .status(http::StatusCode::NOT_FOUND)
                            .body(Full::new(Bytes::from_static(b"not found; try /metrics\n")))
                    }
                }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Binds the admin port; returns the listener and its real address.
pub async fn bind_admin(addr: SocketAddr) -> anyhow::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("binding admin port {addr}: {e}"))?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_rpc_appears_with_its_code_and_latency() {
        let metrics = Metrics::new();
        metrics.record(
            "/portal.identity.v1.AccountService/SignIn",
            "UNAUTHENTICATED",
            Instant::now(),
        );
        let text = metrics.encode();
        assert!(text.contains("grpc_service=\"portal.identity.v1.AccountService\""));
        assert!(text.contains("grpc_method=\"SignIn\""));
        assert!(text.contains("grpc_code=\"UNAUTHENTICATED\""));
        assert!(text.contains("portal_grpc_server_handling_seconds_bucket"));
    }

    #[test]
    fn calls_to_paths_no_server_answers_share_one_series() {
        let metrics = Metrics::new();
        for n in 0..1_000 {
            metrics.record(
                &format!("/made.Up{n}/Method{n}"),
                "UNIMPLEMENTED",
                Instant::now(),
            );
            metrics.record(
                &format!("/portal.identity.v1.AccountService/Guess{n}"),
                "UNAUTHENTICATED",
                Instant::now(),
            );
        }
        let text = metrics.encode();
        assert!(!text.contains("Up1"), "a made-up path became a label");
        assert!(!text.contains("Guess"), "a made-up method became a label");
        let handled: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("portal_grpc_server_handled_total"))
            .collect();
        assert_eq!(handled.len(), 2, "{handled:?}");
        assert!(
            handled
                .iter()
                .all(|l| l.contains("grpc_service=\"unknown\",grpc_method=\"unknown\""))
        );
        assert!(handled.iter().any(|l| l.ends_with(" 1000")), "{handled:?}");
    }

    #[test]
    fn health_and_reflection_calls_keep_their_names() {
        assert_eq!(
            method_labels("/grpc.health.v1.Health/Check"),
            ("grpc.health.v1.Health", "Check")
        );
        assert_eq!(
            method_labels("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"),
            (
                "grpc.reflection.v1alpha.ServerReflection",
                "ServerReflectionInfo"
            )
        );
        assert_eq!(
            method_labels("/portal.invitation.v1.InvitationService/CreateInvitation"),
            ("portal.invitation.v1.InvitationService", "CreateInvitation")
        );
        assert_eq!(
            method_labels("/portal.invitation.v1.InvitationService/CreateInvitation/x"),
            (UNKNOWN_METHOD, UNKNOWN_METHOD)
        );
    }

    #[test]
    fn a_service_gauge_is_exported() {
        let metrics = Metrics::new();
        metrics.gauge("outbox_backlog", "rows waiting").set(7);
        assert!(metrics.encode().contains("portal_outbox_backlog 7"));
    }
}
