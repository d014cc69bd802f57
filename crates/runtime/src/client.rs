//! Channels to other services: bounded connect time, per-call deadlines and a bearer token.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tonic::transport::channel::Change;

use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::auth::BearerToken;
use crate::{metrics, propagation};

/// A channel to another service: every call gets a CLIENT span and carries its bearer token,
/// the trace context and its deadline.
pub type AuthedChannel = Traced<InterceptedService<Channel, BearerToken>>;

/// Opens a CLIENT span (OpenTelemetry RPC conventions) around every call of `S`, current
/// while the call is made so the trace context sent is its own, ended with the call's status.
#[derive(Clone, Debug)]
pub struct Traced<S> {
    inner: S,
}

impl<S> Traced<S> {
    pub fn new(inner: S) -> Self {
        Self { inner }
    }
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for Traced<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: http_body::Body,
{
    type Response = http::Response<TracedBody<ResBody>>;
    type Error = S::Error;
    type Future = futures::future::BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        use tracing::Instrument as _;
        let span = propagation::client_span(
            request.uri().path(),
            request.uri().authority().map(|a| a.as_str()),
        );
        let future = span.in_scope(|| self.inner.call(request));
        Box::pin(
            async move {
                let span = tracing::Span::current();
                match future.await {
                    Ok(response) => {
                        let (parts, body) = response.into_parts();
                        let span = match metrics::status_in(&parts.headers) {
                            Some(code) => {
                                propagation::record_status(&span, code, propagation::Side::Client);
                                None
                            }
                            None => Some(span),
                        };
                        Ok(http::Response::from_parts(
                            parts,
                            TracedBody { inner: body, span },
                        ))
                    }
                    Err(error) => {
                        propagation::record_status(
                            &span,
                            tonic::Code::Unavailable,
                            propagation::Side::Client,
                        );
                        Err(error)
                    }
                }
            }
            .instrument(span),
        )
    }
}

pin_project_lite::pin_project! {
    /// A response body that ends its call's CLIENT span with the status in its trailers.
    pub struct TracedBody<B> {
        #[pin]
        inner: B,
        span: Option<tracing::Span>,
    }
}

impl<B: http_body::Body> http_body::Body for TracedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = std::task::ready!(this.inner.poll_frame(cx));
        let code = match &frame {
            Some(Ok(frame)) => frame
                .trailers_ref()
                .map(|trailers| metrics::status_in(trailers).unwrap_or(tonic::Code::Unknown)),
            Some(Err(_)) | None => Some(tonic::Code::Unknown),
        };
        if let Some(code) = code
            && let Some(span) = this.span.take()
        {
            propagation::record_status(&span, code, propagation::Side::Client);
        }
        std::task::Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// How to reach another service.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    pub url: String,
    pub connect_timeout: Duration,
    /// Deadline of each call unless the caller sets a shorter one.
    pub call_timeout: Duration,
}

impl ClientSettings {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            connect_timeout: Duration::from_secs(2),
            call_timeout: Duration::from_secs(5),
        }
    }
}

fn endpoint(url: String, settings: &ClientSettings) -> anyhow::Result<Endpoint> {
    Ok(Endpoint::from_shared(url.clone())
        .map_err(|e| anyhow::anyhow!("invalid service URL `{url}`: {e}"))?
        .connect_timeout(settings.connect_timeout)
        .timeout(settings.call_timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true))
}

/// Builds a lazily connecting channel: the first call connects, and a peer that is down makes
/// calls fail fast with UNAVAILABLE rather than hang.
///
/// A URL naming an IP address gets one connection. A URL naming a host (in Kubernetes, a
/// headless Service) is resolved every [`DNS_REFRESH`] and calls are balanced over every
/// address it returns, so new replicas take load and departed ones stop getting it.
pub fn channel(settings: &ClientSettings) -> anyhow::Result<Channel> {
    let uri: http::Uri = settings
        .url
        .parse()
        .map_err(|e| anyhow::anyhow!("invalid service URL `{}`: {e}", settings.url))?;
    let host = uri
        .host()
        .unwrap_or_default()
        .trim_matches(['[', ']'])
        .to_string();
    if host.is_empty() || host.parse::<IpAddr>().is_ok() {
        return Ok(endpoint(settings.url.clone(), settings)?.connect_lazy());
    }
    let scheme = uri.scheme_str().unwrap_or("http").to_string();
    let port = uri
        .port_u16()
        .unwrap_or(if scheme == "https" { 443 } else { 80 });
    let (channel, changes) = Channel::balance_channel::<SocketAddr>(64);
    let settings = settings.clone();
    tokio::spawn(async move {
        let mut current: HashSet<SocketAddr> = HashSet::new();
        loop {
            match tokio::net::lookup_host((host.as_str(), port)).await {
                Ok(addrs) => {
                    let fresh: HashSet<SocketAddr> = addrs.collect();
                    for gone in current.difference(&fresh) {
                        if changes.send(Change::Remove(*gone)).await.is_err() {
                            return;
                        }
                    }
                    for new in fresh.difference(&current) {
                        let Ok(endpoint) = endpoint(format!("{scheme}://{new}"), &settings) else {
                            continue;
                        };
                        if changes.send(Change::Insert(*new, endpoint)).await.is_err() {
                            return;
                        }
                    }
                    current = fresh;
                }
                Err(error) => {
                    tracing::warn!(%host, %error, "resolving service address failed; keeping the last answer");
                }
            }
            tokio::time::sleep(DNS_REFRESH).await;
            if changes.is_closed() {
                return;
            }
        }
    });
    Ok(channel)
}

/// How often a service host name is resolved again.
pub const DNS_REFRESH: Duration = Duration::from_secs(10);

/// A channel that sends `token`, the trace context and the deadline with every call.
pub fn authed_channel(settings: &ClientSettings, token: &str) -> anyhow::Result<AuthedChannel> {
    Ok(Traced::new(InterceptedService::new(
        channel(settings)?,
        BearerToken::new(token)?.with_call_timeout(settings.call_timeout),
    )))
}

/// A channel that sends the trace context and the deadline with every call, but no token of
/// its own (calls made with the caller's token).
pub fn anonymous_channel(settings: &ClientSettings) -> anyhow::Result<AuthedChannel> {
    Ok(Traced::new(InterceptedService::new(
        channel(settings)?,
        BearerToken::none().with_call_timeout(settings.call_timeout),
    )))
}

/// Whether a failed call to another service means "not now": the peer is unreachable,
/// overloaded or too slow, so the caller answers UNAVAILABLE and the client retries later.
/// Any other failure is a fault of one side, reported as internal.
pub fn is_unavailable(status: &tonic::Status) -> bool {
    use tonic::Code;
    match status.code() {
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::ResourceExhausted => {
            true
        }
        // A connection refused or reset surfaces as Unknown from the transport.
        Code::Unknown => status.message().contains("transport"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_slow_or_overloaded_peers_are_unavailable_and_nothing_else_is() {
        use tonic::{Code, Status};
        for code in [
            Code::Unavailable,
            Code::DeadlineExceeded,
            Code::Cancelled,
            Code::ResourceExhausted,
        ] {
            assert!(is_unavailable(&Status::new(code, "")), "{code:?}");
        }
        assert!(is_unavailable(&Status::unknown("transport error")));
        assert!(!is_unavailable(&Status::unknown("a handler panicked")));
        assert!(!is_unavailable(&Status::internal("")));
        assert!(!is_unavailable(&Status::permission_denied("")));
    }

    #[tokio::test]
    async fn a_host_name_is_balanced_and_an_ip_address_is_not() {
        // Both build without connecting; an unreachable peer must not fail construction.
        assert!(channel(&ClientSettings::new("http://127.0.0.1:1")).is_ok());
        assert!(channel(&ClientSettings::new("http://localhost:1")).is_ok());
        assert!(channel(&ClientSettings::new("not a url")).is_err());
    }

    #[tokio::test]
    async fn a_call_to_a_peer_that_is_down_fails_within_the_call_timeout() {
        for url in ["http://127.0.0.1:1", "http://localhost:1"] {
            let mut settings = ClientSettings::new(url);
            settings.call_timeout = Duration::from_millis(500);
            let mut client =
                tonic_health::pb::health_client::HealthClient::new(channel(&settings).unwrap());
            let started = std::time::Instant::now();
            let result = tokio::time::timeout(
                Duration::from_secs(5),
                client.check(tonic_health::pb::HealthCheckRequest::default()),
            )
            .await;
            assert!(matches!(result, Ok(Err(_))), "{url}: {result:?}");
            assert!(started.elapsed() < Duration::from_secs(3), "{url}");
        }
    }
}
