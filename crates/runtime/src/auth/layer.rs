//! The server side: a tower layer that verifies the bearer token of every call but the
//! public ones and attaches the caller's [`Principal`](super::Principal).

use std::collections::HashSet;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use tonic::Status;
use tower::{Layer, Service};

use super::tokens::TokenVerifier;
use crate::error::ApiError;

/// Paths every server answers without a token.
const ALWAYS_PUBLIC_PREFIXES: &[&str] = &[
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1.ServerReflection/",
    "/grpc.reflection.v1alpha.ServerReflection/",
];

/// Verifies the bearer token of every call but the public ones and attaches the [`Principal`].
#[derive(Clone)]
pub struct AuthLayer {
    verifier: Arc<TokenVerifier>,
    public_methods: Arc<HashSet<String>>,
}

impl AuthLayer {
    /// `public_methods` are full paths (`/portal.identity.v1.AccountService/SignIn`) that need
    /// no token; health and reflection never do.
    pub fn new(verifier: Arc<TokenVerifier>, public_methods: &[&str]) -> Self {
        Self {
            verifier,
            public_methods: Arc::new(public_methods.iter().map(|m| m.to_string()).collect()),
        }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    layer: AuthLayer,
}

fn bearer(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for AuthService<S>
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

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        let path = request.uri().path();
        let public = ALWAYS_PUBLIC_PREFIXES.iter().any(|p| path.starts_with(p))
            || self.layer.public_methods.contains(path);
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        if public {
            // A public call may still say who is calling (accepting an invitation link while
            // signed in): a valid token's principal is attached; without one the call is
            // anonymous, and the handler decides what a token it cannot use means.
            if let Some(Ok(principal)) =
                bearer(request.headers()).map(|t| self.layer.verifier.verify(t))
            {
                request.extensions_mut().insert(principal);
            }
            return Box::pin(inner.call(request));
        }
        let verdict = match bearer(request.headers()) {
            Some(token) => self.layer.verifier.verify(token),
            None => Err(ApiError::Unauthenticated {
                reason: "TOKEN_MISSING",
                message: "this call needs `authorization: Bearer <token>`".into(),
            }),
        };
        match verdict {
            Ok(principal) => {
                request.extensions_mut().insert(principal);
                Box::pin(inner.call(request))
            }
            Err(error) => {
                let status: Status = error.into_status("auth.portal");
                Box::pin(async move { Ok(status.into_http()) })
            }
        }
    }
}
