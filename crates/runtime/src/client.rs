//! Channels to other services: bounded connect time, per-call deadlines and a bearer token.

use std::time::Duration;

use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::auth::BearerToken;

/// A channel to another service with its bearer token attached to every call.
pub type AuthedChannel = InterceptedService<Channel, BearerToken>;

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

/// Builds a lazily connecting channel: the first call connects, and a peer that is down makes
/// calls fail fast with UNAVAILABLE rather than hang.
pub fn channel(settings: &ClientSettings) -> anyhow::Result<Channel> {
    let endpoint = Endpoint::from_shared(settings.url.clone())
        .map_err(|e| anyhow::anyhow!("invalid service URL `{}`: {e}", settings.url))?
        .connect_timeout(settings.connect_timeout)
        .timeout(settings.call_timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true);
    Ok(endpoint.connect_lazy())
}

/// A channel that sends `token` with every call.
pub fn authed_channel(settings: &ClientSettings, token: &str) -> anyhow::Result<AuthedChannel> {
    Ok(InterceptedService::new(
        channel(settings)?,
        BearerToken::new(token)?,
    ))
}
