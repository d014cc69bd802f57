//! Telemetry of every call a server answers, in one place: the server span (OpenTelemetry
//! RPC conventions: `rpc.system`, `rpc.service`, `rpc.method`, `rpc.grpc.status_code`, span
//! status) and the Prometheus metrics, named and labelled as the stock gRPC dashboards read
//! them (go-grpc-prometheus: `grpc_server_started_total`, `grpc_server_handled_total`,
//! `grpc_server_handling_seconds`, labels `grpc_type`, `grpc_service`, `grpc_method`,
//! `grpc_code` with Go's code names); plus database pool use, any gauge a service adds (the
//! invitation outbox backlog), the standard `process_*` metrics and `portal_build_info`,
//! served as text on an admin HTTP port.

use std::collections::HashMap;
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

use tracing::Instrument as _;

use crate::db::DbPool;
use crate::propagation;
use crate::shutdown::Shutdown;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcLabels {
    grpc_type: &'static str,
    grpc_service: &'static str,
    grpc_method: &'static str,
    grpc_code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    grpc_type: &'static str,
    grpc_service: &'static str,
    grpc_method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

/// The service and method label of a call to a path no Portal server answers.
pub const UNKNOWN_METHOD: &str = "unknown";

/// Every method path a Portal server answers (`/package.Service/Method`): the suite's own
/// services, health and both reflection versions. Metrics are labelled only from this closed
/// set: the layer runs before authentication, and a label per path a caller makes up would
/// grow the registry without end.
static KNOWN_METHODS: LazyLock<HashMap<String, &'static str>> = LazyLock::new(|| {
    let sets = [
        portal_proto::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
    ];
    let mut paths = HashMap::new();
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
                    let kind = match (method.client_streaming(), method.server_streaming()) {
                        (false, false) => "unary",
                        (true, false) => "client_stream",
                        (false, true) => "server_stream",
                        (true, true) => "bidi_stream",
                    };
                    paths.insert(format!("/{full}/{}", method.name()), kind);
                }
            }
        }
    }
    paths
});

/// Every method path a Portal server answers (see [`KNOWN_METHODS`]).
pub fn known_methods() -> impl Iterator<Item = &'static str> {
    KNOWN_METHODS.keys().map(String::as_str)
}

/// The (type, service, method) labels of a call's path: its own when a Portal server answers
/// it, [`UNKNOWN_METHOD`] otherwise.
pub fn method_labels(path: &str) -> (&'static str, &'static str, &'static str) {
    match KNOWN_METHODS.get_key_value(path) {
        Some((known, kind)) => {
            let (service, method) = split_path(known);
            (kind, service, method)
        }
        None => ("unary", UNKNOWN_METHOD, UNKNOWN_METHOD),
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
    started: Family<MethodLabels, Counter>,
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
        let mut registry = Registry::default();
        let started = Family::<MethodLabels, Counter>::default();
        let requests = Family::<RpcLabels, Counter>::default();
        let latency = Family::<MethodLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        let pool = Family::<PoolLabels, Gauge>::default();
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        registry.register(
            "grpc_server_started",
            "RPCs started on the server, by type, service and method",
            started.clone(),
        );
        registry.register(
            "grpc_server_handled",
            "RPCs completed on the server, by type, service, method and gRPC status code",
            requests.clone(),
        );
        registry.register(
            "grpc_server_handling_seconds",
            "Time until the server sent an RPC's status, by type, service and method",
            latency.clone(),
        );
        registry.register(
            "portal_db_pool_connections",
            "Database pool connections by state (idle, in_use)",
            pool.clone(),
        );
        registry.register(
            "portal_build_info",
            "Always 1; the labels say which release is running",
            build,
        );
        registry.register_collector(Box::new(ProcessCollector));
        Self {
            registry: Arc::new(Mutex::new(registry)),
            started,
            requests,
            latency,
            pool,
        }
    }

    /// Registers a gauge a service keeps up to date itself (named `portal_<name>`).
    pub fn gauge(&self, name: &str, help: &str) -> Gauge {
        let gauge = Gauge::default();
        self.registry
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .register(format!("portal_{name}"), help, gauge.clone());
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

    fn start(&self, labels: &MethodLabels) {
        self.started.get_or_create(labels).inc();
    }

    fn record(&self, labels: &MethodLabels, code: tonic::Code, started: Instant) {
        self.requests
            .get_or_create(&RpcLabels {
                grpc_type: labels.grpc_type,
                grpc_service: labels.grpc_service,
                grpc_method: labels.grpc_method,
                grpc_code: code_name(code),
            })
            .inc();
        self.latency
            .get_or_create(labels)
            .observe(started.elapsed().as_secs_f64());
    }
}

fn split_path(path: &'static str) -> (&'static str, &'static str) {
    let trimmed = path.trim_start_matches('/');
    trimmed.split_once('/').unwrap_or((trimmed, ""))
}

/// A code's name as gRPC's Go implementation spells it, which the stock dashboards expect.
fn code_name(code: tonic::Code) -> &'static str {
    match code {
        tonic::Code::Ok => "OK",
        tonic::Code::Cancelled => "Canceled",
        tonic::Code::Unknown => "Unknown",
        tonic::Code::InvalidArgument => "InvalidArgument",
        tonic::Code::DeadlineExceeded => "DeadlineExceeded",
        tonic::Code::NotFound => "NotFound",
        tonic::Code::AlreadyExists => "AlreadyExists",
        tonic::Code::PermissionDenied => "PermissionDenied",
        tonic::Code::ResourceExhausted => "ResourceExhausted",
        tonic::Code::FailedPrecondition => "FailedPrecondition",
        tonic::Code::Aborted => "Aborted",
        tonic::Code::OutOfRange => "OutOfRange",
        tonic::Code::Unimplemented => "Unimplemented",
        tonic::Code::Internal => "Internal",
        tonic::Code::Unavailable => "Unavailable",
        tonic::Code::DataLoss => "DataLoss",
        tonic::Code::Unauthenticated => "Unauthenticated",
    }
}

/// The status of a call, from headers (trailers-only answers) or trailers.
pub fn status_in(headers: &http::HeaderMap) -> Option<tonic::Code> {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .map(tonic::Code::from_i32)
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
        let (grpc_type, grpc_service, grpc_method) = method_labels(request.uri().path());
        let labels = MethodLabels {
            grpc_type,
            grpc_service,
            grpc_method,
        };
        self.metrics.start(&labels);
        let span = propagation::server_span(grpc_service, grpc_method, &request);
        let recorder = Recorder {
            metrics: self.metrics.clone(),
            labels,
            started: Instant::now(),
            span: Some(span.clone()),
        };
        let future = span.in_scope(|| inner.call(request));
        Box::pin(
            async move {
                let response = future.await?;
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
            }
            .instrument(span),
        )
    }
}

/// Records one call when its status is known, and ends its span.
struct Recorder {
    metrics: Metrics,
    labels: MethodLabels,
    started: Instant,
    span: Option<tracing::Span>,
}

impl Recorder {
    fn finish(&mut self, code: tonic::Code) {
        if let Some(span) = self.span.take() {
            self.metrics.record(&self.labels, code, self.started);
            propagation::record_status(&span, code, propagation::Side::Server);
        }
    }
}

impl Drop for Recorder {
    // A body dropped before its trailers: the client went away.
    fn drop(&mut self) {
        self.finish(tonic::Code::Cancelled);
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
                    r.finish(status_in(trailers).unwrap_or(tonic::Code::Unknown));
                }
            }
            Some(Err(_)) | None => {
                if let Some(mut r) = this.recorder.take() {
                    r.finish(tonic::Code::Unknown);
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

/// The standard process metrics (as every Prometheus client library exports them), read
/// from `/proc/self` at each scrape; nothing is exported where there is no `/proc`.
#[derive(Debug)]
struct ProcessCollector;

/// Linux reports CPU time in USER_HZ ticks, 100 a second on every architecture it runs on.
const TICKS_PER_SECOND: f64 = 100.0;

#[derive(Debug, Default)]
struct ProcessStats {
    cpu_seconds: f64,
    start_time_seconds: f64,
    resident_bytes: f64,
    virtual_bytes: f64,
    open_fds: f64,
    max_fds: f64,
}

fn process_stats() -> Option<ProcessStats> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<f64>().ok());
    let boot_time = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| {
            l.strip_prefix("btime ")
                .and_then(|v| v.trim().parse::<f64>().ok())
        })?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
            .map(|v| v * 1024.0)
    };
    let max_fds = std::fs::read_to_string("/proc/self/limits")
        .ok()?
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    Some(ProcessStats {
        cpu_seconds: (field(14)? + field(15)?) / TICKS_PER_SECOND,
        start_time_seconds: boot_time + field(22)? / TICKS_PER_SECOND,
        resident_bytes: kib("VmRSS:").unwrap_or(0.0),
        virtual_bytes: kib("VmSize:").unwrap_or(0.0),
        open_fds: std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count()) as f64,
        max_fds,
    })
}

impl prometheus_client::collector::Collector for ProcessCollector {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeMetric;
        use prometheus_client::metrics::counter::ConstCounter;
        use prometheus_client::metrics::gauge::ConstGauge;
        let Some(stats) = process_stats() else {
            return Ok(());
        };
        let cpu = ConstCounter::new(stats.cpu_seconds);
        cpu.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            None,
            cpu.metric_type(),
        )?)?;
        for (name, help, value) in [
            (
                "process_start_time_seconds",
                "Start time of the process since the Unix epoch in seconds",
                stats.start_time_seconds,
            ),
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                stats.resident_bytes,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes",
                stats.virtual_bytes,
            ),
            (
                "process_open_fds",
                "Number of open file descriptors",
                stats.open_fds,
            ),
            (
                "process_max_fds",
                "Maximum number of open file descriptors",
                stats.max_fds,
            ),
        ] {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record_call(metrics: &Metrics, path: &str, code: tonic::Code) {
        let (grpc_type, grpc_service, grpc_method) = method_labels(path);
        let labels = MethodLabels {
            grpc_type,
            grpc_service,
            grpc_method,
        };
        metrics.start(&labels);
        metrics.record(&labels, code, Instant::now());
    }

    #[test]
    fn a_recorded_rpc_appears_with_its_code_and_latency() {
        let metrics = Metrics::new();
        record_call(
            &metrics,
            "/portal.identity.v1.AccountService/SignIn",
            tonic::Code::Unauthenticated,
        );
        let text = metrics.encode();
        // The names and labels the stock gRPC dashboards read.
        assert!(text.contains(
            "grpc_server_handled_total{grpc_type=\"unary\",grpc_service=\"portal.identity.v1.AccountService\",grpc_method=\"SignIn\",grpc_code=\"Unauthenticated\"} 1"
        ), "{text}");
        assert!(text.contains(
            "grpc_server_started_total{grpc_type=\"unary\",grpc_service=\"portal.identity.v1.AccountService\",grpc_method=\"SignIn\"} 1"
        ), "{text}");
        assert!(text.contains("grpc_server_handling_seconds_bucket{"));
        // Streaming methods say so.
        record_call(
            &metrics,
            "/portal.identity.v1.StaffService/StreamSyncStaff",
            tonic::Code::Ok,
        );
        assert!(metrics.encode().contains("grpc_type=\"client_stream\""));
    }

    #[test]
    fn calls_to_paths_no_server_answers_share_one_series() {
        let metrics = Metrics::new();
        for n in 0..1_000 {
            record_call(
                &metrics,
                &format!("/made.Up{n}/Method{n}"),
                tonic::Code::Unimplemented,
            );
            record_call(
                &metrics,
                &format!("/portal.identity.v1.AccountService/Guess{n}"),
                tonic::Code::Unauthenticated,
            );
        }
        let text = metrics.encode();
        assert!(!text.contains("Up1"), "a made-up path became a label");
        assert!(!text.contains("Guess"), "a made-up method became a label");
        let handled: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("grpc_server_handled_total"))
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
            ("unary", "grpc.health.v1.Health", "Check")
        );
        assert_eq!(
            method_labels("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"),
            (
                "bidi_stream",
                "grpc.reflection.v1alpha.ServerReflection",
                "ServerReflectionInfo"
            )
        );
        assert_eq!(
            method_labels("/portal.invitation.v1.InvitationService/CreateInvitation"),
            (
                "unary",
                "portal.invitation.v1.InvitationService",
                "CreateInvitation"
            )
        );
        assert_eq!(
            method_labels("/portal.invitation.v1.InvitationService/CreateInvitation/x"),
            ("unary", UNKNOWN_METHOD, UNKNOWN_METHOD)
        );
    }

    #[test]
    fn process_and_build_metrics_are_exported() {
        let text = Metrics::new().encode();
        for name in [
            "process_cpu_seconds_total ",
            "process_resident_memory_bytes ",
            "process_start_time_seconds ",
            "process_open_fds ",
            "process_max_fds ",
        ] {
            assert!(text.contains(name), "{name} missing from:\n{text}");
        }
        assert!(text.contains(&format!(
            "portal_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        )));
    }

    #[test]
    fn a_service_gauge_is_exported() {
        let metrics = Metrics::new();
        metrics.gauge("outbox_backlog", "rows waiting").set(7);
        assert!(metrics.encode().contains("portal_outbox_backlog 7"));
    }
}
