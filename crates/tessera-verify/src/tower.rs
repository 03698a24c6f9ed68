//! tower integration (feature `tower`): [`RequireTokenLayer`] wraps any
//! `Service<http::Request<B>>` (axum routers and handlers, tonic, hyper) so that only
//! requests with a valid Tessera token reach it, with the claims in the request
//! extensions (axum: `Extension<Claims>`).
//!
//! Invariant: the same answers as the actix middleware (see the `access` module): `401`
//! with `WWW-Authenticate: Bearer error="invalid_token"`, `403` for a missing role or
//! scope; the inner service is called only with verified claims inserted.
//!
//! ```
//! use tessera_verify::{Verifier, tower::RequireTokenLayer};
//! use tower_layer::Layer as _;
//!
//! # fn wrap<S>(inner: S) -> Result<(), tessera_verify::SetupError> {
//! let verifier = Verifier::builder("https://sts.example.com", "product-inventory").build()?;
//! let guarded = RequireTokenLayer::new(verifier).role("admin").layer(inner);
//! # Ok(()) }
//! ```

use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use http::{Request, Response, StatusCode, header};
use serde::de::DeserializeOwned;
use tower_layer::Layer;
use tower_service::Service;

use crate::AccessClaims;
use crate::guard::{Denial, Rule, authorize};
use crate::{Claims, Verifier};

/// The layer: a valid token is required; optionally a role and/or a scope.
/// `RequireTokenLayer::new` verifies into [`Claims`], `RequireTokenLayer::<C>::with_claims`
/// into your own type.
pub struct RequireTokenLayer<C = Claims> {
    verifier: Verifier,
    rule: Arc<Rule>,
    claims: PhantomData<fn() -> C>,
}

impl<C> Clone for RequireTokenLayer<C> {
    fn clone(&self) -> Self {
        Self {
            verifier: self.verifier.clone(),
            rule: self.rule.clone(),
            claims: PhantomData,
        }
    }
}

impl RequireTokenLayer<Claims> {
    pub fn new(verifier: Verifier) -> Self {
        Self::with_claims(verifier)
    }
}

impl<C> RequireTokenLayer<C> {
    /// Verifies into `C` (any [`AccessClaims`] + `DeserializeOwned` type).
    pub fn with_claims(verifier: Verifier) -> Self {
        Self {
            verifier,
            rule: Arc::new(Rule::default()),
            claims: PhantomData,
        }
    }

    /// Also require this role (`roles` claim); `403` otherwise.
    pub fn role(mut self, role: &str) -> Self {
        Arc::make_mut(&mut self.rule).role = Some(role.to_owned());
        self
    }

    /// Also require this scope (`scope` claim); `403` otherwise.
    pub fn scope(mut self, scope: &str) -> Self {
        Arc::make_mut(&mut self.rule).scope = Some(scope.to_owned());
        self
    }
}

impl<S, C> Layer<S> for RequireTokenLayer<C> {
    type Service = RequireTokenService<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireTokenService {
            inner,
            verifier: self.verifier.clone(),
            rule: self.rule.clone(),
            claims: PhantomData,
        }
    }
}

/// The service [`RequireTokenLayer`] makes.
pub struct RequireTokenService<S, C = Claims> {
    inner: S,
    verifier: Verifier,
    rule: Arc<Rule>,
    claims: PhantomData<fn() -> C>,
}

impl<S: Clone, C> Clone for RequireTokenService<S, C> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            verifier: self.verifier.clone(),
            rule: self.rule.clone(),
            claims: PhantomData,
        }
    }
}

fn response<B: From<String>>(denial: Denial) -> Response<B> {
    let mut response = Response::new(B::from(denial.body));
    *response.status_mut() =
        StatusCode::from_u16(denial.status).unwrap_or(StatusCode::UNAUTHORIZED);
    let headers = response.headers_mut();
    headers.insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static(denial.www_authenticate),
    );
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

impl<S, C, ReqBody, ResBody> Service<Request<ReqBody>> for RequireTokenService<S, C>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    ReqBody: Send + 'static,
    ResBody: From<String>,
    C: AccessClaims + DeserializeOwned + Clone + Send + Sync + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response<ResBody>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        // The clone that was polled ready is the one that serves this request.
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        let (verifier, rule) = (self.verifier.clone(), self.rule.clone());
        let authorization = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Box::pin(async move {
            match authorize::<C>(&verifier, &rule, authorization.as_deref()).await {
                Ok(claims) => {
                    request.extensions_mut().insert(claims);
                    inner.call(request).await
                }
                Err(denial) => Ok(response(denial)),
            }
        })
    }
}
