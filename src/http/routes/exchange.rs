//! `POST /exchange` and `POST /oauth2/token`: RFC 8693 token exchange over HTTP.
//!
//! Parse (JSON or the RFC 8693 form) → authenticate the client → [`Exchanger::exchange`]
//! → render. Every refusal is an [`ApiError`]; nothing a caller sends can make this a 500.
//!
//! [`Exchanger::exchange`]: crate::exchange::Exchanger::exchange

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::discovery::TOKEN_EXCHANGE_GRANT;
use super::{BodyEncoding, describe_parse_error, presented_credentials, read_body};
use crate::exchange::ExchangeRequest;
use crate::http::AppState;
use crate::http::error::{ApiError, ErrorBody};
use crate::tokens::RequestContext;

pub const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(super::resource("/exchange").route(web::post().to(exchange_token)))
        .service(super::resource("/oauth2/token").route(web::post().to(oauth2_token)));
}

/// The JSON encoding of an exchange request.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ExchangeJson {
    /// The user's session token; absent for an anonymous exchange.
    pub subject_token: Option<String>,
    /// Default `urn:tessera:params:token-type:session`.
    #[schema(example = "urn:tessera:params:token-type:session")]
    pub subject_token_type: Option<String>,
    /// The target service; default: the client's `default_audience`.
    #[schema(example = "product-catalog")]
    pub audience: Option<String>,
    /// Space-separated scopes, a subset of the client's.
    pub scope: Option<String>,
    /// The gateway's inbound request, copied into the `ctx` claim.
    pub request: Option<RequestContext>,
    /// `client_secret_post` credentials (instead of HTTP Basic).
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

/// The RFC 8693 §2.1 form encoding.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ExchangeForm {
    /// Must be `urn:ietf:params:oauth:grant-type:token-exchange`.
    #[schema(example = "urn:ietf:params:oauth:grant-type:token-exchange")]
    pub grant_type: Option<String>,
    pub subject_token: Option<String>,
    pub subject_token_type: Option<String>,
    pub audience: Option<String>,
    pub scope: Option<String>,
    /// If given, `urn:ietf:params:oauth:token-type:jwt` or `…:access_token`.
    pub requested_token_type: Option<String>,
    /// Not supported (no delegation by actor token); its presence is refused.
    pub actor_token: Option<String>,
    /// Not supported (use `audience`); its presence is refused.
    pub resource: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

/// RFC 8693 §2.2.1 success response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExchangeResponse {
    /// The signed RS256 JWT.
    pub access_token: String,
    #[schema(example = "urn:ietf:params:oauth:token-type:jwt")]
    pub issued_token_type: &'static str,
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// Seconds until `exp`.
    #[schema(example = 600)]
    pub expires_in: u64,
    /// Granted scope, when any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// [`ExchangeResponse`] as written: borrowing the token (shared with the reuse cache)
/// instead of copying it.
#[derive(Debug, Serialize)]
struct Rendered<'a> {
    access_token: &'a str,
    issued_token_type: &'static str,
    token_type: &'static str,
    expires_in: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<&'a str>,
}

/// Exchange a gateway session token (or nothing, for anonymous traffic) for an internal JWT.
#[utoipa::path(post, path = "/exchange", tag = "exchange",
    request_body(content(
        (ExchangeJson = "application/json"),
        (ExchangeForm = "application/x-www-form-urlencoded"))),
    security(("client_basic" = []), ()),
    responses(
        (status = 200, description = "Token issued (`Cache-Control: no-store`)", body = ExchangeResponse),
        (status = 400, description = "`invalid_request`, `unsupported_grant_type`, `invalid_grant`, `unauthorized_client`, `invalid_target` or `invalid_scope`", body = ErrorBody),
        (status = 401, description = "`invalid_client`, with `WWW-Authenticate: Basic realm=\"tessera\"`", body = ErrorBody),
        (status = 405, description = "Method not allowed", body = ErrorBody),
        (status = 429, description = "`slow_down`: the client's rate limit, or too many authentication failures from this address; `Retry-After`", body = ErrorBody),
        (status = 413, description = "`invalid_request`: body over `server.max_body_bytes`", body = ErrorBody),
        (status = 415, description = "`invalid_request`: unsupported content type", body = ErrorBody),
        (status = 503, description = "`temporarily_unavailable`: a backend cannot be reached; `Retry-After`", body = ErrorBody)))]
pub async fn exchange_token(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    measured_exchange(&req, payload, &state).await
}

/// The same exchange at the OAuth token endpoint named in discovery.
#[utoipa::path(post, path = "/oauth2/token", tag = "exchange",
    request_body(content(
        (ExchangeForm = "application/x-www-form-urlencoded"),
        (ExchangeJson = "application/json"))),
    security(("client_basic" = []), ()),
    responses(
        (status = 200, description = "Token issued (`Cache-Control: no-store`)", body = ExchangeResponse),
        (status = 400, description = "`invalid_request`, `unsupported_grant_type`, `invalid_grant`, `unauthorized_client`, `invalid_target` or `invalid_scope`", body = ErrorBody),
        (status = 401, description = "`invalid_client`, with `WWW-Authenticate: Basic realm=\"tessera\"`", body = ErrorBody),
        (status = 405, description = "Method not allowed", body = ErrorBody),
        (status = 429, description = "`slow_down`: the client's rate limit, or too many authentication failures from this address; `Retry-After`", body = ErrorBody),
        (status = 413, description = "`invalid_request`: body over `server.max_body_bytes`", body = ErrorBody),
        (status = 415, description = "`invalid_request`: unsupported content type", body = ErrorBody),
        (status = 503, description = "`temporarily_unavailable`: a backend cannot be reached; `Retry-After`", body = ErrorBody)))]
pub async fn oauth2_token(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    measured_exchange(&req, payload, &state).await
}

/// The exchange, with its latency and outcome (`issued` or the error code) recorded.
async fn measured_exchange(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<HttpResponse, ApiError> {
    let started = std::time::Instant::now();
    let mut client = None;
    let result = exchange(req, payload, state, &mut client).await;
    let outcome = result.as_ref().map_or_else(ApiError::code, |_| "issued");
    metrics::histogram!(crate::infra::metrics::EXCHANGE_DURATION)
        .record(started.elapsed().as_secs_f64());
    metrics::counter!(
        crate::infra::metrics::EXCHANGES,
        "client" => client.unwrap_or_else(|| "unknown".to_owned()),
        "outcome" => outcome
    )
    .increment(1);
    result
}

/// Both encodings, reduced to one shape.
#[derive(Debug, Default)]
pub(crate) struct ExchangeParams {
    subject_token: Option<String>,
    subject_token_type: Option<String>,
    audience: Option<String>,
    scope: Option<String>,
    request: Option<RequestContext>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

impl ExchangeParams {
    pub(crate) fn parse(encoding: BodyEncoding, body: &[u8]) -> Result<Self, ApiError> {
        match encoding {
            BodyEncoding::Json => {
                let j: ExchangeJson =
                    serde_json::from_slice(body).map_err(|e| describe_parse_error(encoding, &e))?;
                Ok(Self {
                    subject_token: j.subject_token,
                    subject_token_type: j.subject_token_type,
                    audience: j.audience,
                    scope: j.scope,
                    request: j.request,
                    client_id: j.client_id,
                    client_secret: j.client_secret,
                })
            }
            BodyEncoding::Form => {
                let f: ExchangeForm = serde_urlencoded::from_bytes(body)
                    .map_err(|e| describe_parse_error(encoding, &e))?;
                match f.grant_type.as_deref() {
                    None => {
                        return Err(ApiError::InvalidRequest(
                            "grant_type is required in the form encoding".into(),
                        ));
                    }
                    Some(TOKEN_EXCHANGE_GRANT) => {}
                    Some(_) => return Err(ApiError::UnsupportedGrantType),
                }
                if f.actor_token.is_some() {
                    return Err(ApiError::InvalidRequest(
                        "actor_token is not supported".into(),
                    ));
                }
                if f.resource.is_some() {
                    return Err(ApiError::InvalidRequest(
                        "resource is not supported; name the target service in audience".into(),
                    ));
                }
                if let Some(t) = f.requested_token_type.as_deref()
                    && t != JWT_TOKEN_TYPE
                    && t != crate::sessions::ACCESS_TOKEN_TYPE
                {
                    return Err(ApiError::InvalidRequest(
                        "requested_token_type must be urn:ietf:params:oauth:token-type:jwt".into(),
                    ));
                }
                Ok(Self {
                    subject_token: f.subject_token,
                    subject_token_type: f.subject_token_type,
                    audience: f.audience,
                    scope: f.scope,
                    request: None,
                    client_id: f.client_id,
                    client_secret: f.client_secret,
                })
            }
        }
    }
}

#[tracing::instrument(name = "exchange", skip_all, fields(client_id, sub, jti))]
async fn exchange(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    client_id: &mut Option<String>,
) -> Result<HttpResponse, ApiError> {
    let (encoding, body) = read_body(req, payload, &state.settings.server, true).await?;
    let params = ExchangeParams::parse(encoding, &body)?;
    let credentials = presented_credentials(
        req,
        params.client_id.as_deref(),
        params.client_secret.as_deref(),
    );
    let peer = super::client_address(req, &state.settings.server);
    let client = state.exchanger.authenticate(&credentials, peer)?;
    let span = tracing::Span::current();
    span.record("client_id", client.id.as_str());
    *client_id = Some(client.id.clone());
    let issued = state
        .exchanger
        .exchange(
            &client,
            ExchangeRequest {
                subject_token: params.subject_token.as_deref(),
                subject_token_type: params.subject_token_type.as_deref(),
                audience: params.audience.as_deref(),
                scope: params.scope.as_deref(),
                context: params.request.as_ref(),
                required_roles: None,
            },
        )
        .await?;
    span.record("sub", issued.sub.as_str());
    span.record("jti", &*issued.jti);
    tracing::debug!(kid = &*issued.kid, reused = issued.reused, "token issued");
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .insert_header((header::PRAGMA, HeaderValue::from_static("no-cache")))
        .json(Rendered {
            access_token: &issued.access_token,
            issued_token_type: JWT_TOKEN_TYPE,
            token_type: "Bearer",
            expires_in: issued.expires_in,
            scope: issued.scope.as_deref(),
        }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_needs_the_token_exchange_grant() {
        let err =
            ExchangeParams::parse(BodyEncoding::Form, b"subject_token=x").expect_err("missing");
        assert!(matches!(err, ApiError::InvalidRequest(_)));
        let err =
            ExchangeParams::parse(BodyEncoding::Form, b"grant_type=password").expect_err("other");
        assert!(matches!(err, ApiError::UnsupportedGrantType));
        let err = ExchangeParams::parse(
            BodyEncoding::Form,
            b"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&audience=a&audience=b",
        )
        .expect_err("duplicate");
        assert!(matches!(err, ApiError::InvalidRequest(_)));
    }

    #[test]
    fn the_rendered_response_is_the_documented_one() {
        let documented = ExchangeResponse {
            access_token: "a.b.c".into(),
            issued_token_type: JWT_TOKEN_TYPE,
            token_type: "Bearer",
            expires_in: 42,
            scope: Some("read".into()),
        };
        let rendered = Rendered {
            access_token: "a.b.c",
            issued_token_type: JWT_TOKEN_TYPE,
            token_type: "Bearer",
            expires_in: 42,
            scope: Some("read"),
        };
        assert_eq!(
            serde_json::to_value(&documented).expect("json"),
            serde_json::to_value(&rendered).expect("json")
        );
    }

    #[test]
    fn json_duplicates_and_wrong_types_are_invalid_request() {
        for body in [
            &br#"{"audience":"a","audience":"b"}"#[..],
            br#"{"scope":5}"#,
            b"{",
            b"[]",
        ] {
            let err = ExchangeParams::parse(BodyEncoding::Json, body).expect_err("invalid");
            assert!(matches!(err, ApiError::InvalidRequest(_)), "{body:?}");
        }
    }
}
