//! Server bootstrap shared by every service: health, reflection, authentication, protective
//! tower layers, readiness tied to the database, and graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::service::Routes;
use tonic::transport::Server;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use tower::{Layer, Service};

use crate::answers::{CutoffLayer, MalformedLayer};
use crate::auth::{AuthLayer, TokenVerifier};
use crate::config::ServerArgs;
use crate::db::{DbPool, Migrations, Schema};
use crate::deadline::DeadlineLayer;
use crate::metrics::{self, Metrics, MetricsLayer};
pub use crate::shutdown::Shutdown;

/// Health service name a liveness probe asks: SERVING for as long as the process runs.
pub const LIVENESS: &str = "liveness";
/// Health service name a readiness probe asks: SERVING only while the database is ready and
/// the server is not draining (the overall "" status says the same).
pub const READINESS: &str = "readiness";

/// What a service contributes to its server.
pub struct ServiceSpec {
    /// Short name used in logs (`identity`).
    pub name: &'static str,
    /// The service's gRPC services.
    pub routes: Routes,
    /// Full names of those gRPC services, for per-service health.
    pub grpc_services: Vec<&'static str>,
    /// Full method paths callable without a token.
    pub public_methods: Vec<&'static str>,
    /// Encoded descriptor sets served by reflection.
    pub descriptor_sets: Vec<&'static [u8]>,
    /// The database whose readiness gates SERVING, with its migrations.
    pub database: Option<(DbPool, &'static Migrations)>,
}

/// A bound listener: knows its real port before the server runs (tests bind port 0).
pub struct Bound {
    listener: TcpListener,
    local_addr: SocketAddr,
    admin: Option<(TcpListener, SocketAddr)>,
}

impl Bound {
    pub async fn bind(addr: SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("binding {addr}: {e}"))?;
        let local_addr = listener.local_addr()?;
        Ok(Self {
            listener,
            local_addr,
            admin: None,
        })
    }

    /// Also binds the admin (metrics) port now, so its real port is known before serving.
    pub async fn with_admin(mut self, addr: SocketAddr) -> anyhow::Result<Self> {
        self.admin = Some(metrics::bind_admin(addr).await?);
        Ok(self)
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(|(_, addr)| *addr)
    }
}

/// Runs one service's server until `shutdown` fires and in-flight calls have drained.
pub async fn serve(
    bound: Bound,
    spec: ServiceSpec,
    args: &ServerArgs,
    verifier: Arc<TokenVerifier>,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    serve_with_metrics(bound, spec, args, verifier, shutdown, Metrics::new()).await
}

/// [`serve`] with a metrics registry the service has added its own gauges to.
pub async fn serve_with_metrics(
    bound: Bound,
    spec: ServiceSpec,
    args: &ServerArgs,
    verifier: Arc<TokenVerifier>,
    shutdown: Shutdown,
    metrics: Metrics,
) -> anyhow::Result<()> {
    let admin = match (bound.admin, args.admin_listen) {
        (Some(admin), _) => Some(admin),
        (None, Some(addr)) => Some(metrics::bind_admin(addr).await?),
        (None, None) => None,
    };
    if let Some((listener, addr)) = admin {
        tracing::info!(service = spec.name, %addr, "metrics at http://{addr}/metrics");
        tokio::spawn(metrics::serve_admin(
            listener,
            metrics.clone(),
            spec.database.as_ref().map(|(pool, _)| pool.clone()),
            shutdown.clone(),
        ));
    }
    let (reporter, health_service) = tonic_health::server::health_reporter();
    let health = Health {
        reporter,
        names: spec.grpc_services.clone(),
    };
    health.set_live().await;
    health.set_ready(false).await;

    // google.rpc error details are described too, so grpcurl prints ErrorInfo and BadRequest.
    let mut reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET);
    let mut reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET);
    for set in &spec.descriptor_sets {
        reflection_v1 = reflection_v1.register_encoded_file_descriptor_set(set);
        reflection_v1alpha = reflection_v1alpha.register_encoded_file_descriptor_set(set);
    }
    // Advertise only what this server serves: the shared descriptor set describes every service.
    for name in spec.grpc_services.iter().chain(&["grpc.health.v1.Health"]) {
        reflection_v1 = reflection_v1.with_service_name(*name);
        reflection_v1alpha = reflection_v1alpha.with_service_name(*name);
    }
    reflection_v1 = reflection_v1.with_service_name("grpc.reflection.v1.ServerReflection");
    reflection_v1alpha =
        reflection_v1alpha.with_service_name("grpc.reflection.v1alpha.ServerReflection");
    let routes = spec
        .routes
        .add_service(health_service)
        .add_service(reflection_v1.build_v1()?)
        .add_service(reflection_v1alpha.build_v1alpha()?);

    let readiness = tokio::spawn(track_readiness(
        spec.name,
        spec.database.clone(),
        args.migrate,
        health.clone(),
        shutdown.clone(),
    ));

    let layers = tower::ServiceBuilder::new()
        .layer(MetricsLayer::new(metrics))
        .layer(MalformedLayer)
        .layer(CutoffLayer::new(args.request_timeout))
        .layer(DeadlineLayer::new(args.request_timeout))
        .layer(ShedLayer::new(args.concurrency_limit))
        .layer(AuthLayer::new(verifier, &spec.public_methods))
        .into_inner();
    let server = Server::builder()
        .max_connection_age(args.max_connection_age)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .layer(layers)
        .add_routes(routes);

    tracing::info!(service = spec.name, addr = %bound.local_addr, "gRPC server listening");
    let delay = args.shutdown_delay;
    let drain_signal = {
        let shutdown = shutdown.clone();
        let health = health.clone();
        async move {
            shutdown.wait().await;
            health.set_ready(false).await;
            tokio::time::sleep(delay).await;
        }
    };
    // Nagle's algorithm would hold a reply's last segment for the peer's delayed ACK (~40 ms
    // per call); gRPC writes headers, message and trailers separately, so turn it off.
    let incoming = tokio_stream::StreamExt::map(TcpListenerStream::new(bound.listener), |conn| {
        if let Ok(stream) = &conn {
            let _ = stream.set_nodelay(true);
        }
        conn
    });
    let serving = server.serve_with_incoming_shutdown(incoming, drain_signal);
    let drain_limit = args.drain_timeout + delay;
    let result = tokio::select! {
        result = serving => result.map_err(anyhow::Error::from),
        _ = async { shutdown.wait().await; tokio::time::sleep(drain_limit).await } => {
            tracing::warn!(service = spec.name, "drain timeout reached; closing remaining calls");
            Ok(())
        }
    };
    readiness.abort();
    tracing::info!(service = spec.name, "gRPC server stopped");
    result
}

#[derive(Clone)]
struct Health {
    reporter: HealthReporter,
    names: Vec<&'static str>,
}

impl Health {
    async fn set_live(&self) {
        self.reporter
            .set_service_status(LIVENESS, ServingStatus::Serving)
            .await;
    }

    async fn set_ready(&self, ready: bool) {
        let status = if ready {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        for name in ["", READINESS].iter().chain(self.names.iter()) {
            self.reporter.set_service_status(*name, status).await;
        }
    }
}

/// Migrates the database (`migrate`) or waits until another process has (retrying until it
/// answers), reports SERVING, then keeps checking.
async fn track_readiness(
    service: &'static str,
    database: Option<(DbPool, &'static Migrations)>,
    migrate: bool,
    health: Health,
    shutdown: Shutdown,
) {
    let Some((pool, migrations)) = database else {
        if !shutdown.is_triggered() {
            health.set_ready(true).await;
        }
        return;
    };
    let mut backoff = Duration::from_millis(100);
    let mut reported = None;
    loop {
        let outcome = if migrate {
            pool.migrate(migrations).await.map(|()| Schema::Current)
        } else {
            pool.schema(migrations).await
        };
        match outcome {
            Ok(Schema::Current) => break,
            Ok(schema) => {
                // Said once per state, not once per retry.
                if reported != Some(schema) {
                    match schema {
                        Schema::Behind { missing } => tracing::warn!(
                            service,
                            missing,
                            "the database lacks migrations this release needs; NOT_SERVING until `portal migrate` has run"
                        ),
                        Schema::Diverged { version } => tracing::error!(
                            service,
                            version,
                            "an applied migration differs from this release's; NOT_SERVING"
                        ),
                        Schema::Current => {}
                    }
                    reported = Some(schema);
                }
            }
            Err(error) => {
                tracing::warn!(service, error = %format!("{error:#}"), "database not ready; retrying");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.wait() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
    let mut ready = false;
    loop {
        if shutdown.is_triggered() {
            return;
        }
        let now_ready = pool.ping().await.is_ok();
        if now_ready != ready {
            ready = now_ready;
            if ready {
                tracing::info!(service, "database ready; SERVING");
            } else {
                tracing::warn!(service, "database unreachable; NOT_SERVING");
            }
            if !shutdown.is_triggered() {
                health.set_ready(ready).await;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            _ = shutdown.wait() => return,
        }
    }
}

/// Global concurrency limit with load shedding: a call beyond the limit is refused at once
/// with UNAVAILABLE (safe for clients to retry with backoff) instead of queueing.
#[derive(Clone)]
pub struct ShedLayer {
    permits: Arc<Semaphore>,
}

impl ShedLayer {
    pub fn new(limit: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(limit.max(1))),
        }
    }
}

impl<S> Layer<S> for ShedLayer {
    type Service = Shed<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Shed {
            inner,
            permits: self.permits.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Shed<S> {
    inner: S,
    permits: Arc<Semaphore>,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for Shed<S>
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
        match self.permits.clone().try_acquire_owned() {
            Ok(permit) => Box::pin(async move {
                let response = inner.call(request).await;
                drop(permit);
                response
            }),
            Err(_) => Box::pin(async {
                Ok(
                    tonic::Status::unavailable("the server is at capacity; retry with backoff")
                        .into_http(),
                )
            }),
        }
    }
}
