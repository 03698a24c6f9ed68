//! actix-web integration: [`RequireToken`] verifies the bearer token, puts the [`Claims`]
//! into the request extensions (and so into handlers as an extractor), and guards roles
//! and scopes. Failures follow RFC 6750: `401` with `WWW-Authenticate: Bearer
//! error="invalid_token"`, `403` with `error="insufficient_scope"`.

use std::future::{Ready, ready};
use std::rc::Rc;

use actix_web::body::EitherBody;
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::header;
use actix_web::{Error, FromRequest, HttpMessage, HttpRequest, HttpResponse};
use futures_util::future::LocalBoxFuture;

use crate::{Claims, Verifier};

/// Middleware: a valid Tessera token is required; optionally a role and/or a scope.
#[derive(Clone)]
pub struct RequireToken {
    verifier: Verifier,
    role: Option<String>,
    scope: Option<String>,
}

impl RequireToken {
    pub fn new(verifier: Verifier) -> Self {
        Self {
            verifier,
            role: None,
            scope: None,
        }
    }

    /// Also require this role (`roles` claim); `403` otherwise.
    pub fn role(mut self, role: &str) -> Self {
        self.role = Some(role.to_owned());
        self
    }

    /// Also require this scope (`scope` claim); `403` otherwise.
    pub fn scope(mut self, scope: &str) -> Self {
        self.scope = Some(scope.to_owned());
        self
    }
}

fn unauthorized(description: &str) -> HttpResponse {
    HttpResponse::Unauthorized()
        .insert_header((header::WWW_AUTHENTICATE, "Bearer error=\"invalid_token\""))
        .json(serde_json::json!({"error": "invalid_token", "error_description": description}))
}

fn forbidden(description: &str) -> HttpResponse {
    HttpResponse::Forbidden()
        .insert_header((
            header::WWW_AUTHENTICATE,
            "Bearer error=\"insufficient_scope\"",
        ))
        .json(serde_json::json!({"error": "insufficient_scope", "error_description": description}))
}

fn bearer(req: &ServiceRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

impl<S, B> Transform<S, ServiceRequest> for RequireToken
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = RequireTokenMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RequireTokenMiddleware {
            service: Rc::new(service),
            rule: Rc::new(self.clone()),
        }))
    }
}

pub struct RequireTokenMiddleware<S> {
    service: Rc<S>,
    rule: Rc<RequireToken>,
}

impl<S, B> Service<ServiceRequest> for RequireTokenMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let service = self.service.clone();
        let rule = self.rule.clone();
        Box::pin(async move {
            let Some(token) = bearer(&req).map(str::to_owned) else {
                return Ok(req
                    .into_response(unauthorized("a bearer token is required"))
                    .map_into_right_body());
            };
            let claims = match rule.verifier.verify(&token).await {
                Ok(claims) => claims,
                Err(e) => {
                    tracing::debug!(reason = %e, "token refused");
                    return Ok(req
                        .into_response(unauthorized("the token is invalid"))
                        .map_into_right_body());
                }
            };
            if let Some(role) = &rule.role
                && !claims.has_role(role)
            {
                return Ok(req
                    .into_response(forbidden(&format!("the {role} role is required")))
                    .map_into_right_body());
            }
            if let Some(scope) = &rule.scope
                && !claims.has_scope(scope)
            {
                return Ok(req
                    .into_response(forbidden(&format!("the {scope} scope is required")))
                    .map_into_right_body());
            }
            req.extensions_mut().insert(claims);
            service
                .call(req)
                .await
                .map(ServiceResponse::map_into_left_body)
        })
    }
}

/// Handlers behind [`RequireToken`] take `Claims` as an argument.
impl FromRequest for Claims {
    type Error = Error;
    type Future = Ready<Result<Self, Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(req.extensions().get::<Claims>().cloned().ok_or_else(|| {
            actix_web::error::InternalError::from_response(
                "no verified token",
                unauthorized("a bearer token is required"),
            )
            .into()
        }))
    }
}
