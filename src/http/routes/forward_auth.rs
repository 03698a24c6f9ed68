//! Forward authentication, one endpoint per header dialect: `/forward-auth/nginx`
//! (`X-Original-*`), `/forward-auth/forwarded` (Traefik and Caddy, `X-Forwarded-*`) and
//! `/forward-auth/envoy/{path}` (Envoy `ext_authz`: the request's own method, path and
//! `Host`).
//!
//! Parse the dialect → [`ForwardAuth::check`] (which exchanges on the one `Exchanger`) →
//! `200` + `Authorization: Bearer <JWT>`, a `302` to the login page, or an [`ApiError`].
//! Each endpoint reads only its own dialect's headers; a header that appears twice is
//! refused rather than guessed at.
//!
//! [`ForwardAuth::check`]: crate::forward_auth::ForwardAuth::check

use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};

use crate::forward_auth::{ForwardAuthError, Inbound};
use crate::http::AppState;
use crate::http::error::{ApiError, ErrorBody};

/// The header carrying the gateway's own `Basic` credentials.
pub const GATEWAY_AUTHORIZATION: &str = "tessera-authorization";
/// The path prefix Envoy's `ext_authz` puts before the original path.
pub const ENVOY_PREFIX: &str = "/forward-auth/envoy";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/forward-auth/nginx").route(web::route().to(check_nginx)))
        .service(web::resource("/forward-auth/forwarded").route(web::route().to(check_forwarded)))
        .service(
            web::resource("/forward-auth/envoy/{path:.*}").route(web::route().to(check_envoy)),
        );
}

/// Whose headers describe the original request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Nginx,
    Forwarded,
    Envoy,
}

impl Dialect {
    /// The `dialect` label of `tessera_forward_auth_total`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Nginx => "nginx",
            Self::Forwarded => "forwarded",
            Self::Envoy => "envoy",
        }
    }

    pub const ALL: [Dialect; 3] = [Self::Nginx, Self::Forwarded, Self::Envoy];
}

/// nginx `auth_request`: the original request from `X-Original-Method`, `X-Original-URI`
/// and `X-Original-Host` (else `Host`); any method.
#[utoipa::path(get, path = "/forward-auth/nginx", tag = "forward-auth",
    params(
        ("X-Original-Method" = String, Header, description = "The original method (`proxy_set_header X-Original-Method $request_method`)"),
        ("X-Original-URI" = String, Header, description = "The original path and query (`$request_uri`)"),
        ("X-Original-Host" = Option<String>, Header, description = "The original host (`$host`); else `Host`"),
        ("X-Original-Proto" = Option<String>, Header, description = "`http` or `https` (`$scheme`), for the login redirect"),
    ),
    security(("gateway_basic" = [])),
    responses(
        (status = 200, description = "Allowed: `Authorization: Bearer <JWT>` (copy it onto the upstream request), `Cache-Control: no-store`, empty body"),
        (status = 302, description = "A browser (`Accept: text/html`) without a valid session on a `required` route, with `forward_auth.login_url` set: `Location: <login_url>?rd=<original URL>`"),
        (status = 400, description = "`invalid_request`: the original method, URI or host is missing, repeated or malformed", body = ErrorBody),
        (status = 401, description = "`login_required` (`WWW-Authenticate: Bearer realm=\"tessera\"`): no valid session on a `required` route; or `invalid_client`: `Tessera-Authorization` missing or wrong", body = ErrorBody),
        (status = 403, description = "`access_denied`: no route matches, or the user has none of the route's roles", body = ErrorBody),
        (status = 404, description = "`not_found`: `[forward_auth]` is not configured", body = ErrorBody),
        (status = 429, description = "`slow_down`: the gateway client's rate limit; `Retry-After`", body = ErrorBody),
        (status = 503, description = "`temporarily_unavailable`: a backend cannot be reached; `Retry-After`", body = ErrorBody)))]
pub async fn check_nginx(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    measured(&req, &state, Dialect::Nginx).await
}

/// Traefik `forwardAuth` and Caddy `forward_auth`: the original request from
/// `X-Forwarded-Method`, `X-Forwarded-Uri` and `X-Forwarded-Host`; this request's own query
/// string is ignored (Caddy appends the original one); any method.
#[utoipa::path(get, path = "/forward-auth/forwarded", tag = "forward-auth",
    params(
        ("X-Forwarded-Method" = String, Header, description = "The original method"),
        ("X-Forwarded-Uri" = String, Header, description = "The original path and query"),
        ("X-Forwarded-Host" = String, Header, description = "The original host"),
        ("X-Forwarded-Proto" = Option<String>, Header, description = "`http` or `https`, for the login redirect"),
    ),
    security(("gateway_basic" = [])),
    responses(
        (status = 200, description = "Allowed: `Authorization: Bearer <JWT>` (copy it onto the upstream request), `Cache-Control: no-store`, empty body"),
        (status = 302, description = "A browser (`Accept: text/html`) without a valid session on a `required` route, with `forward_auth.login_url` set: `Location: <login_url>?rd=<original URL>`"),
        (status = 400, description = "`invalid_request`: the original method, URI or host is missing, repeated or malformed", body = ErrorBody),
        (status = 401, description = "`login_required` (`WWW-Authenticate: Bearer realm=\"tessera\"`): no valid session on a `required` route; or `invalid_client`: `Tessera-Authorization` missing or wrong", body = ErrorBody),
        (status = 403, description = "`access_denied`: no route matches, or the user has none of the route's roles", body = ErrorBody),
        (status = 404, description = "`not_found`: `[forward_auth]` is not configured", body = ErrorBody),
        (status = 429, description = "`slow_down`: the gateway client's rate limit; `Retry-After`", body = ErrorBody),
        (status = 503, description = "`temporarily_unavailable`: a backend cannot be reached; `Retry-After`", body = ErrorBody)))]
pub async fn check_forwarded(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    measured(&req, &state, Dialect::Forwarded).await
}

/// Envoy `ext_authz` (HTTP service, `path_prefix: /forward-auth/envoy`): the original
/// request is this request — its method, the path after the prefix (query included) and
/// `Host`; any method.
#[utoipa::path(method(get, head, post, put, patch, delete, options), path = "/forward-auth/envoy/{path}", tag = "forward-auth",
    params(
        ("path" = String, Path, description = "The original path and query, after the prefix"),
        ("X-Forwarded-Proto" = Option<String>, Header, description = "`http` or `https`, for the login redirect"),
    ),
    security(("gateway_basic" = [])),
    responses(
        (status = 200, description = "Allowed: `Authorization: Bearer <JWT>` (`allowed_upstream_headers`), `Cache-Control: no-store`, empty body"),
        (status = 302, description = "A browser (`Accept: text/html`) without a valid session on a `required` route, with `forward_auth.login_url` set: `Location: <login_url>?rd=<original URL>`"),
        (status = 400, description = "`invalid_request`: the original path or host is missing, repeated or malformed", body = ErrorBody),
        (status = 401, description = "`login_required` (`WWW-Authenticate: Bearer realm=\"tessera\"`): no valid session on a `required` route; or `invalid_client`: `Tessera-Authorization` missing or wrong", body = ErrorBody),
        (status = 403, description = "`access_denied`: no route matches, or the user has none of the route's roles", body = ErrorBody),
        (status = 404, description = "`not_found`: `[forward_auth]` is not configured", body = ErrorBody),
        (status = 429, description = "`slow_down`: the gateway client's rate limit; `Retry-After`", body = ErrorBody),
        (status = 503, description = "`temporarily_unavailable`: a backend cannot be reached; `Retry-After`", body = ErrorBody)))]
pub async fn check_envoy(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    measured(&req, &state, Dialect::Envoy).await
}

/// The answer, counted in `tessera_forward_auth_total{dialect,outcome}` (outcome =
/// `allowed`, `login_redirect` or the error code).
async fn measured(req: &HttpRequest, state: &AppState, dialect: Dialect) -> HttpResponse {
    let (outcome, response) = match answer(req, state, dialect).await {
        Ok((outcome, response)) => (outcome, response),
        Err(e) => (e.code(), actix_web::ResponseError::error_response(&e)),
    };
    metrics::counter!(
        crate::infra::metrics::FORWARD_AUTH,
        "dialect" => dialect.name(),
        "outcome" => outcome
    )
    .increment(1);
    response
}

#[tracing::instrument(name = "forward_auth", skip_all, fields(dialect = dialect.name(), sub, jti))]
async fn answer(
    req: &HttpRequest,
    state: &AppState,
    dialect: Dialect,
) -> Result<(&'static str, HttpResponse), ApiError> {
    let forward_auth = state.forward_auth.load_full().ok_or(ApiError::NotFound)?;
    let inbound = inbound(req, dialect)?;
    match forward_auth.check(&state.exchanger, &inbound).await {
        Ok(issued) => {
            let span = tracing::Span::current();
            span.record("sub", issued.sub.as_str());
            span.record("jti", &*issued.jti);
            let bearer = HeaderValue::from_str(&format!("Bearer {}", issued.access_token))
                .map_err(|e| ApiError::Internal(e.into()))?;
            Ok((
                "allowed",
                HttpResponse::Ok()
                    .insert_header((header::AUTHORIZATION, bearer))
                    .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
                    .finish(),
            ))
        }
        Err(ForwardAuthError::LoginRequired {
            redirect: Some(location),
        }) => {
            let location =
                HeaderValue::from_str(&location).map_err(|e| ApiError::Internal(e.into()))?;
            Ok((
                "login_redirect",
                HttpResponse::Found()
                    .insert_header((header::LOCATION, location))
                    .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
                    .finish(),
            ))
        }
        Err(e) => Err(e.into()),
    }
}

/// The inbound request as `dialect` describes it.
fn inbound<'r>(req: &'r HttpRequest, dialect: Dialect) -> Result<Inbound<'r>, ApiError> {
    let (method, uri, host, scheme) = match dialect {
        Dialect::Nginx => (
            one(req, "x-original-method")?,
            one(req, "x-original-uri")?,
            match one(req, "x-original-host")? {
                Some(host) => Some(host),
                None => one(req, "host")?,
            },
            one(req, "x-original-proto")?,
        ),
        Dialect::Forwarded => (
            one(req, "x-forwarded-method")?,
            one(req, "x-forwarded-uri")?,
            one(req, "x-forwarded-host")?,
            one(req, "x-forwarded-proto")?,
        ),
        Dialect::Envoy => {
            let full = req.uri().path_and_query().map_or("", |pq| pq.as_str());
            let original = full
                .strip_prefix(ENVOY_PREFIX)
                .filter(|p| p.starts_with('/'));
            let host = match one(req, "host")? {
                Some(host) => Some(host),
                None => req.uri().authority().map(|a| a.as_str()),
            };
            (
                Some(req.method().as_str()),
                original,
                host,
                one(req, "x-forwarded-proto")?,
            )
        }
    };
    let cookies = req
        .headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .collect();
    let wants_html = req
        .headers()
        .get_all(header::ACCEPT)
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("text/html"));
    Ok(Inbound {
        gateway_authorization: req
            .headers()
            .get(GATEWAY_AUTHORIZATION)
            .map(HeaderValue::as_bytes),
        peer: req.peer_addr().map(|a| a.ip()),
        method,
        uri,
        host,
        scheme,
        cookies,
        user_authorization: one(req, "authorization")?,
        wants_html,
    })
}

/// The single value of header `name`: `None` when absent, `400` when repeated or not
/// visible ASCII.
fn one<'r>(req: &'r HttpRequest, name: &'static str) -> Result<Option<&'r str>, ApiError> {
    let name = HeaderName::from_static(name);
    let mut values = req.headers().get_all(&name);
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::InvalidRequest(
            format!("the {name} header appears more than once").into(),
        ));
    }
    first.to_str().map(Some).map_err(|_| {
        ApiError::InvalidRequest(format!("the {name} header is not visible ASCII").into())
    })
}
