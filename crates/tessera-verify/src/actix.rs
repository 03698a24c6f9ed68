//! actix-web integration: [`RequireToken`] verifies the bearer token, guards roles and
//! scopes, and puts the claims into the request extensions, where handlers take them with
//! the [`Verified`] extractor.
//!
//! Invariant: a handler behind `RequireToken<C>` only runs with claims of type `C` that
//! verified and passed the guards; answers follow RFC 6750 (see the `access` module).

use std::future::{Ready, ready};
use std::marker::PhantomData;
use std::ops::Deref;
use std::rc::Rc;

use actix_web::body::EitherBody;
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::{StatusCode, header};
use actix_web::{Error, FromRequest, HttpMessage, HttpRequest, HttpResponse};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

use crate::AccessClaims;
use crate::guard::{Denial, Rule, authorize};
use crate::{Claims, Verifier};

/// Middleware: a valid Tessera token is required; optionally a role and/or a scope.
/// `RequireToken::new` verifies into [`Claims`]; `RequireToken::<C>::with_claims` into
/// your own type.
pub struct RequireToken<C = Claims> {
    verifier: Verifier,
    rule: Rule,
    claims: PhantomData<fn() -> C>,
}

impl<C> Clone for RequireToken<C> {
    fn clone(&self) -> Self {
        Self {
            verifier: self.verifier.clone(),
            rule: self.rule.clone(),
            claims: PhantomData,
        }
    }
}

impl RequireToken<Claims> {
    pub fn new(verifier: Verifier) -> Self {
        Self::with_claims(verifier)
    }
}

impl<C> RequireToken<C> {
    /// Verifies into `C` (any [`AccessClaims`] + `DeserializeOwned` type).
    pub fn with_claims(verifier: Verifier) -> Self {
        Self {
            verifier,
            rule: Rule::default(),
            claims: PhantomData,
        }
    }

    /// Also require this role (`roles` claim); `403` otherwise.
    pub fn role(mut self, role: &str) -> Self {
        self.rule.role = Some(role.to_owned());
        self
    }

    /// Also require this scope (`scope` claim); `403` otherwise.
    pub fn scope(mut self, scope: &str) -> Self {
        self.rule.scope = Some(scope.to_owned());
        self
    }
}

fn response(denial: Denial) -> HttpResponse {
    HttpResponse::build(StatusCode::from_u16(denial.status).unwrap_or(StatusCode::UNAUTHORIZED))
        .insert_header((header::WWW_AUTHENTICATE, denial.www_authenticate))
        .content_type("application/json")
        .body(denial.body)
}

impl<S, B, C> Transform<S, ServiceRequest> for RequireToken<C>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: 'static,
    C: AccessClaims + DeserializeOwned + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = RequireTokenMiddleware<S, C>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RequireTokenMiddleware {
            service: Rc::new(service),
            rule: Rc::new(self.clone()),
        }))
    }
}

pub struct RequireTokenMiddleware<S, C = Claims> {
    service: Rc<S>,
    rule: Rc<RequireToken<C>>,
}

impl<S, B, C> Service<ServiceRequest> for RequireTokenMiddleware<S, C>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: 'static,
    C: AccessClaims + DeserializeOwned + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let service = self.service.clone();
        let rule = self.rule.clone();
        Box::pin(async move {
            let authorization = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            match authorize::<C>(&rule.verifier, &rule.rule, authorization.as_deref()).await {
                Ok(claims) => {
                    req.extensions_mut().insert(claims);
                    service
                        .call(req)
                        .await
                        .map(ServiceResponse::map_into_left_body)
                }
                Err(denial) => Ok(req.into_response(response(denial)).map_into_right_body()),
            }
        })
    }
}

/// A handler argument: the claims [`RequireToken`] verified (`Verified` alone is
/// `Verified<Claims>`). Destructure it (`Verified(claims): Verified`) or use it through
/// `Deref`. Without a matching `RequireToken<C>` in front of the handler it answers `401`.
#[derive(Debug, Clone)]
pub struct Verified<C = Claims>(pub C);

impl<C> Verified<C> {
    pub fn into_inner(self) -> C {
        self.0
    }
}

impl<C> Deref for Verified<C> {
    type Target = C;

    fn deref(&self) -> &C {
        &self.0
    }
}

impl<C: Clone + 'static> FromRequest for Verified<C> {
    type Error = Error;
    type Future = Ready<Result<Self, Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(match req.extensions().get::<C>() {
            Some(claims) => Ok(Verified(claims.clone())),
            None => {
                tracing::error!(
                    claims = std::any::type_name::<C>(),
                    "a handler takes Verified claims but no RequireToken of that type guards it"
                );
                Err(actix_web::error::InternalError::from_response(
                    "no verified token",
                    response(Denial::no_token()),
                )
                .into())
            }
        })
    }
}
