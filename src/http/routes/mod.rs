//! HTTP routes. Each module owns its endpoints and exposes `configure`; `http::server` composes them.

pub mod admin;
pub mod discovery;
pub mod exchange;
pub mod feed;
pub mod forward_auth;
pub mod health;
pub mod introspect;
pub mod jwks;
pub mod metrics;

pub mod revoke;

use std::net::IpAddr;
use std::sync::Arc;

use actix_web::{HttpMessage, HttpRequest, Resource, web};
use futures_util::StreamExt as _;

use crate::clients::{Client, PresentedCredentials};
use crate::config::ServerSettings;
use crate::http::AppState;
use crate::http::error::ApiError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    exchange::configure(cfg);
    forward_auth::configure(cfg);
    revoke::configure(cfg);
    introspect::configure(cfg);
    feed::configure(cfg);
    admin::configure(cfg);
    jwks::configure(cfg);
    discovery::configure(cfg);
    health::configure(cfg);
    super::openapi::configure(cfg);
    metrics::configure(cfg);
}

/// A resource whose unsupported methods answer `405` in the contract's error format.
pub(crate) fn resource(path: &str) -> Resource {
    web::resource(path).default_service(web::to(|| async {
        Err::<String, _>(ApiError::MethodNotAllowed)
    }))
}

/// The request body encodings the form-and-JSON endpoints accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyEncoding {
    Json,
    Form,
}

/// Checks the content type, then reads at most `server.max_body_bytes` of body within
/// `server.body_timeout_ms` (a body sent slowly holds a connection for no longer).
pub(crate) async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    server: &ServerSettings,
    allow_json: bool,
) -> Result<(BodyEncoding, web::Bytes), ApiError> {
    let limit = server.max_body_bytes;
    let encoding = match req.content_type() {
        "application/x-www-form-urlencoded" => BodyEncoding::Form,
        "application/json" if allow_json => BodyEncoding::Json,
        _ => return Err(ApiError::UnsupportedMediaType),
    };
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let mut body = web::BytesMut::with_capacity(declared.unwrap_or(512).min(limit));
    let read = async {
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|_| {
                ApiError::InvalidRequest("the request body could not be read".into())
            })?;
            if body.len() + chunk.len() > limit {
                return Err(ApiError::PayloadTooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(())
    };
    actix_web::rt::time::timeout(server.body_timeout(), read)
        .await
        .map_err(|_| ApiError::BodyTimeout {
            ms: server.body_timeout_ms,
        })??;
    Ok((encoding, body.freeze()))
}

/// A caller-facing description of why a JSON or form body did not parse.
pub(crate) fn describe_parse_error(
    encoding: BodyEncoding,
    err: &dyn std::fmt::Display,
) -> ApiError {
    let what = match encoding {
        BodyEncoding::Json => "malformed JSON body",
        BodyEncoding::Form => "malformed form body",
    };
    ApiError::InvalidRequest(format!("{what}: {err}").into())
}

/// The client credentials of a request: HTTP Basic, or the body's
/// `client_id`/`client_secret` (client_secret_post).
pub(crate) fn presented_credentials<'r>(
    req: &'r HttpRequest,
    post_id: Option<&'r str>,
    post_secret: Option<&'r str>,
) -> PresentedCredentials<'r> {
    PresentedCredentials {
        authorization: req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .map(actix_web::http::header::HeaderValue::as_bytes),
        post_id,
        post_secret,
    }
}

/// Authenticates the calling client (see [`crate::clients::Clients::authenticate`]).
pub(crate) fn authenticate_client(
    state: &AppState,
    req: &HttpRequest,
    post_id: Option<&str>,
    post_secret: Option<&str>,
) -> Result<Arc<Client>, ApiError> {
    let presented = presented_credentials(req, post_id, post_secret);
    let peer = client_address(req, &state.settings.server);
    Ok(state.clients.authenticate(&presented, peer)?)
}

/// The caller's address for the failure limiter: the peer, or behind a trusted proxy
/// (`server.trusted_proxies`) what its `X-Forwarded-For` says.
pub(crate) fn client_address(req: &HttpRequest, server: &ServerSettings) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    let forwarded = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>();
    Some(server.client_address(peer, forwarded.into_iter()))
}

/// The RFC 7009 / RFC 7662 request body: `token=…` (+ `token_type_hint`, credentials).
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
pub struct TokenForm {
    /// The JWT to revoke or introspect.
    #[schema(required = true)]
    pub token: Option<String>,
    /// Accepted and ignored: Tessera only has one kind of token.
    pub token_type_hint: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

/// Reads a `TokenForm` and authenticates the client; returns the client and the token.
pub(crate) async fn read_token_form(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<(Arc<Client>, String), ApiError> {
    let (encoding, body) = read_body(req, payload, &state.settings.server, false).await?;
    let form: TokenForm =
        serde_urlencoded::from_bytes(&body).map_err(|e| describe_parse_error(encoding, &e))?;
    let client = authenticate_client(
        state,
        req,
        form.client_id.as_deref(),
        form.client_secret.as_deref(),
    )?;
    match form.token {
        Some(token) if !token.is_empty() => Ok((client, token)),
        _ => Err(ApiError::InvalidRequest(
            "the token parameter is required".into(),
        )),
    }
}
