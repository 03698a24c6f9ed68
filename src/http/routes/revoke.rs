//! `POST /revoke` (RFC 7009): a gateway revokes one of its own tokens.
//!
//! Invariants: the answer is `200` whatever the token was (RFC 7009 §2.2); only a valid
//! token issued to the calling client is revoked.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};

use super::{TokenForm, read_token_form};
use crate::http::AppState;
use crate::http::error::{ApiError, ErrorBody};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(super::resource("/revoke").route(web::post().to(revoke_token)));
}

/// Revoke a token issued to the calling client: its `jti` is denied until it expires.
#[utoipa::path(post, path = "/revoke", tag = "revocation",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    security(("client_basic" = [])),
    responses(
        (status = 200, description = "Done, whether or not the token was valid or the caller's (RFC 7009 §2.2)"),
        (status = 400, description = "`invalid_request`: malformed form or no `token`", body = ErrorBody),
        (status = 401, description = "`invalid_client`", body = ErrorBody),
        (status = 405, description = "Method not allowed", body = ErrorBody),
        (status = 429, description = "`slow_down`: the client's rate limit, or too many authentication failures from this address; `Retry-After`", body = ErrorBody),
        (status = 413, description = "`invalid_request`: body too large", body = ErrorBody),
        (status = 415, description = "`invalid_request`: not a form", body = ErrorBody),
        (status = 503, description = "`temporarily_unavailable`: the denylist cannot be reached; `Retry-After`", body = ErrorBody)))]
#[tracing::instrument(name = "revoke", skip_all, fields(client_id))]
pub async fn revoke_token(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (client, token) = read_token_form(&req, payload, &state).await?;
    tracing::Span::current().record("client_id", client.id.as_str());
    state.introspection.revoke_own(&client.id, &token).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .finish())
}
