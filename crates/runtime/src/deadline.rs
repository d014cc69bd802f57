//! Deadlines across gRPC hops: a server knows when the call it is serving must be answered
//! (its own per-call timeout or the caller's `grpc-timeout`, whichever is sooner), and every
//! call it makes while serving carries the time left, so a downstream service stops working
//! on an answer nobody will wait for. Work off the call's path (the invitation outbox) has no
//! such deadline and keeps the client's own call timeout.

use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tower::{Layer, Service};

tokio::task_local! {
    static DEADLINE: Instant;
}

/// The instant by which the call being served on this task must be answered, if any.
pub fn current() -> Option<Instant> {
    DEADLINE.try_with(|deadline| *deadline).ok()
}

/// Runs `future` as a call that must be answered by `deadline`.
pub async fn scope<F: Future>(deadline: Instant, future: F) -> F::Output {
    DEADLINE.scope(deadline, future).await
}

/// The timeout an outgoing call should carry: the shortest of the one it already has, the
/// client's own call timeout and the time left of the call being served.
pub fn outgoing(existing: Option<Duration>, call_timeout: Option<Duration>) -> Option<Duration> {
    let left = current().map(|deadline| deadline.saturating_duration_since(Instant::now()));
    [existing, call_timeout, left].into_iter().flatten().min()
}

/// Sets `grpc-timeout` on an outgoing call (see [`outgoing`]).
pub fn apply(request: &mut tonic::Request<()>, call_timeout: Option<Duration>) {
    let existing = request
        .metadata()
        .get(GRPC_TIMEOUT)
        .and_then(|value| value.to_str().ok())
        .and_then(parse_grpc_timeout);
    if let Some(timeout) = outgoing(existing, call_timeout) {
        // A deadline already passed still goes out as the smallest one, so the peer fails
        // the call at once instead of starting it.
        request.set_timeout(timeout.max(Duration::from_micros(1)));
    }
}

const GRPC_TIMEOUT: &str = "grpc-timeout";

/// Parses a `grpc-timeout` value: at most eight digits and a unit (H, M, S, m, u, n).
pub fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Server layer: each call runs in the scope of its deadline, the sooner of `timeout` (the
/// server's per-call limit) and the caller's `grpc-timeout`.
#[derive(Clone, Debug)]
pub struct DeadlineLayer {
    timeout: Duration,
}

impl DeadlineLayer {
    pub fn new(timeout: Duration) -> Self {
        Self { timeout }
    }
}

impl<S> Layer<S> for DeadlineLayer {
    type Service = DeadlineService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DeadlineService {
            inner,
            timeout: self.timeout,
        }
    }
}

#[derive(Clone, Debug)]
pub struct DeadlineService<S> {
    inner: S,
    timeout: Duration,
}

impl<S, B> Service<http::Request<B>> for DeadlineService<S>
where
    S: Service<http::Request<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = futures::future::BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let asked = request
            .headers()
            .get(GRPC_TIMEOUT)
            .and_then(|value| value.to_str().ok())
            .and_then(parse_grpc_timeout);
        let timeout = asked.map_or(self.timeout, |asked| asked.min(self.timeout));
        let deadline = Instant::now() + timeout;
        let future = self.inner.call(request);
        Box::pin(DEADLINE.scope(deadline, future))
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};

    use tonic::transport::Server;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::health_server::{Health, HealthServer};
    use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

    use super::*;
    use crate::client::{ClientSettings, authed_channel};

    #[test]
    fn grpc_timeouts_parse_in_every_unit_and_nothing_else_does() {
        assert_eq!(parse_grpc_timeout("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_grpc_timeout("3M"), Some(Duration::from_secs(180)));
        assert_eq!(parse_grpc_timeout("10S"), Some(Duration::from_secs(10)));
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("7u"), Some(Duration::from_micros(7)));
        assert_eq!(parse_grpc_timeout("9n"), Some(Duration::from_nanos(9)));
        for bad in ["", "S", "10", "10s", "-1S", "123456789S", "1.5S"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad}");
        }
    }

    #[tokio::test]
    async fn outside_a_call_only_the_clients_own_timeout_applies() {
        assert_eq!(
            outgoing(None, Some(Duration::from_secs(3))),
            Some(Duration::from_secs(3))
        );
        assert_eq!(outgoing(None, None), None);
        let inside = scope(Instant::now() + Duration::from_secs(1), async {
            outgoing(None, Some(Duration::from_secs(3)))
        })
        .await
        .unwrap();
        assert!(inside <= Duration::from_secs(1), "{inside:?}");
    }

    /// Records the `grpc-timeout` of every call it gets.
    #[derive(Clone, Default)]
    struct Downstream {
        seen: Arc<Mutex<Vec<Option<Duration>>>>,
    }

    #[tonic::async_trait]
    impl Health for Downstream {
        async fn check(
            &self,
            request: tonic::Request<HealthCheckRequest>,
        ) -> Result<tonic::Response<HealthCheckResponse>, tonic::Status> {
            let timeout = request
                .metadata()
                .get(GRPC_TIMEOUT)
                .and_then(|value| value.to_str().ok())
                .and_then(parse_grpc_timeout);
            self.seen.lock().unwrap().push(timeout);
            Ok(tonic::Response::new(HealthCheckResponse { status: 1 }))
        }

        type WatchStream = futures::stream::Empty<Result<HealthCheckResponse, tonic::Status>>;

        async fn watch(
            &self,
            _: tonic::Request<HealthCheckRequest>,
        ) -> Result<tonic::Response<Self::WatchStream>, tonic::Status> {
            Err(tonic::Status::unimplemented(""))
        }
    }

    /// Serves a call by making one to the downstream server, as the services do.
    struct Upstream {
        downstream: crate::client::AuthedChannel,
    }

    #[tonic::async_trait]
    impl Health for Upstream {
        async fn check(
            &self,
            request: tonic::Request<HealthCheckRequest>,
        ) -> Result<tonic::Response<HealthCheckResponse>, tonic::Status> {
            HealthClient::new(self.downstream.clone())
                .check(request.into_inner())
                .await
        }

        type WatchStream = futures::stream::Empty<Result<HealthCheckResponse, tonic::Status>>;

        async fn watch(
            &self,
            _: tonic::Request<HealthCheckRequest>,
        ) -> Result<tonic::Response<Self::WatchStream>, tonic::Status> {
            Err(tonic::Status::unimplemented(""))
        }
    }

    async fn spawn_server<S: Health>(service: S, server_timeout: Duration) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(
            Server::builder()
                .timeout(server_timeout)
                .layer(DeadlineLayer::new(server_timeout))
                .add_service(HealthServer::new(service))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        addr
    }

    #[tokio::test]
    async fn a_call_made_while_serving_carries_the_time_left_of_the_call_that_caused_it() {
        let downstream = Downstream::default();
        let downstream_addr = spawn_server(downstream.clone(), Duration::from_secs(30)).await;
        let settings = ClientSettings::new(format!("http://{downstream_addr}"));
        assert_eq!(settings.call_timeout, Duration::from_secs(5));
        let upstream = Upstream {
            downstream: authed_channel(&settings, "token").unwrap(),
        };
        // The upstream server allows each call 4 s: less than its client's own 5 s.
        let upstream_addr = spawn_server(upstream, Duration::from_secs(4)).await;
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{upstream_addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut client = HealthClient::new(channel);

        let mut request = tonic::Request::new(HealthCheckRequest::default());
        request.set_timeout(Duration::from_millis(1500));
        client.check(request).await.unwrap();
        client
            .check(tonic::Request::new(HealthCheckRequest::default()))
            .await
            .unwrap();

        let seen = downstream.seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 2);
        let caller_bound = seen[0].expect("the first downstream call carries a deadline");
        assert!(
            caller_bound <= Duration::from_millis(1500) && caller_bound > Duration::ZERO,
            "{caller_bound:?}"
        );
        let server_bound = seen[1].expect("the second downstream call carries a deadline");
        assert!(
            server_bound <= Duration::from_secs(4) && server_bound > Duration::from_millis(1500),
            "{server_bound:?}"
        );
    }
}
