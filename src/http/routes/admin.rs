//! `/admin/*`: operator endpoints behind the admin bearer token.
//!
//! Invariant: the token is compared as a SHA-256 in constant time; with no
//! `admin.token_sha256` configured every admin call is refused.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{describe_parse_error, read_body};
use crate::http::AppState;
use crate::http::error::{ApiError, ErrorBody};
use crate::infra::clock::rfc3339;
use crate::keys::policy::KeyView;
use crate::keys::record::KeyState;
use crate::revocation::Target;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(super::resource("/admin/revocations").route(web::post().to(create_revocation)))
        .service(super::resource("/admin/keys").route(web::get().to(list_keys)))
        .service(super::resource("/admin/keys/rotate").route(web::post().to(rotate_keys)));
}

/// A signing key as operators see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyInfo {
    /// RFC 7638 thumbprint.
    pub kid: String,
    pub state: KeyState,
    /// RFC 3339.
    pub created_at: String,
    /// When it signs (or signed) from.
    pub activates_at: String,
    /// When it stops (or stopped) signing, if decided.
    pub retires_at: Option<String>,
}

impl From<&KeyView> for KeyInfo {
    fn from(v: &KeyView) -> Self {
        Self {
            kid: v.record.kid.clone(),
            state: v.state,
            created_at: rfc3339(v.record.created_at),
            activates_at: rfc3339(v.record.activates_at),
            retires_at: v.retired_at.map(rfc3339),
        }
    }
}

/// `{"now": true}` signs with the new key at once (key compromise).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateRequest {
    #[serde(default)]
    pub now: bool,
}

/// Every key in the keystore with its lifecycle state.
#[utoipa::path(get, path = "/admin/keys", tag = "admin",
    security(("admin_bearer" = [])),
    responses(
        (status = 200, description = "The keys, oldest first", body = [KeyInfo]),
        (status = 401, description = "`invalid_token`: missing or wrong admin token", body = ErrorBody),
        (status = 429, description = "`slow_down`: too many wrong admin tokens from this address; with `Retry-After`", body = ErrorBody),
        (status = 405, description = "Method not allowed", body = ErrorBody)))]
pub async fn list_keys(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    require_admin(&req, &state)?;
    let keys: Vec<KeyInfo> = state.keys.list().await.iter().map(KeyInfo::from).collect();
    Ok(HttpResponse::Ok().json(keys))
}

/// Rotate: the new key is published now and signs after `keys.publish_lead_seconds`,
/// or at once with `{"now": true}` (the old key retires at once).
#[utoipa::path(post, path = "/admin/keys/rotate", tag = "admin",
    request_body(content = Option<RotateRequest>, content_type = "application/json"),
    security(("admin_bearer" = [])),
    responses(
        (status = 200, description = "The new key", body = KeyInfo),
        (status = 400, description = "`invalid_request`: malformed body", body = ErrorBody),
        (status = 401, description = "`invalid_token`: missing or wrong admin token", body = ErrorBody),
        (status = 429, description = "`slow_down`: too many wrong admin tokens from this address; with `Retry-After`", body = ErrorBody),
        (status = 405, description = "Method not allowed", body = ErrorBody),
        (status = 409, description = "`conflict`: a rotation is pending, or the JWKS is full (the message says from when a rotation is possible)", body = ErrorBody),
        (status = 415, description = "`invalid_request`: not JSON", body = ErrorBody),
        (status = 503, description = "`temporarily_unavailable`: the keystore cannot be reached", body = ErrorBody)))]
pub async fn rotate_keys(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    require_admin(&req, &state)?;
    let (_, body) = read_optional_json(&req, payload, &state.settings.server).await?;
    let request: RotateRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RotateRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| describe_parse_error(super::BodyEncoding::Json, &e))?
    };
    let key = state.keys.rotate(request.now, "admin").await?;
    Ok(HttpResponse::Ok().json(KeyInfo::from(&key)))
}

/// A JSON body that may be empty (then any or no content type is fine).
async fn read_optional_json(
    req: &HttpRequest,
    payload: web::Payload,
    server: &crate::config::ServerSettings,
) -> Result<(Option<super::BodyEncoding>, web::Bytes), ApiError> {
    let declared_empty = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .is_none_or(|v| v.as_bytes() == b"0");
    if declared_empty && req.headers().get(header::CONTENT_TYPE).is_none() {
        return Ok((None, web::Bytes::new()));
    }
    let (encoding, body) = read_body(req, payload, server, true).await?;
    if encoding != super::BodyEncoding::Json {
        return Err(ApiError::UnsupportedMediaType);
    }
    Ok((Some(encoding), body))
}

/// Checks `Authorization: Bearer <admin token>`; failures are charged to the caller's
/// address in the authentication-failure limiter, which refuses it (429) when it failed
/// too often.
pub(crate) fn require_admin(req: &HttpRequest, state: &AppState) -> Result<(), ApiError> {
    let peer = super::client_address(req, &state.settings.server);
    state.clients.admit_admin(peer)?;
    check_admin_token(req, state).inspect_err(|_| state.clients.admin_failed(peer))
}

fn check_admin_token(req: &HttpRequest, state: &AppState) -> Result<(), ApiError> {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .ok_or(ApiError::InvalidAdminToken)?;
    if state.admin.verify(presented.trim()) {
        Ok(())
    } else {
        Err(ApiError::InvalidAdminToken)
    }
}

/// Exactly one of `jti`, `session`, `sid`, `subject`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevocationRequest {
    /// One token's id.
    pub jti: Option<String>,
    /// A session token as the gateway holds it (stored only as its `sid` hash).
    pub session: Option<String>,
    /// A session by the `sid` claim of its tokens (base64url SHA-256, 43 characters).
    pub sid: Option<String>,
    /// A user id: every token of that user issued up to now.
    pub subject: Option<String>,
    /// Free text for the audit log.
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RevocationResult {
    /// `jti`, `session` or `subject`.
    #[schema(example = "session")]
    pub kind: &'static str,
    /// The jti, the session's `sid` hash, or the user id.
    pub id: String,
    /// Seconds the denylist entry lives (0: everything it covers had already expired).
    #[schema(example = 86400)]
    pub expires_in: u64,
}

/// Revoke a token (`jti`), a session (by its token or by the `sid` claim: every token
/// with that `sid`, and further exchanges) or a user (every token issued up to now).
#[utoipa::path(post, path = "/admin/revocations", tag = "admin",
    request_body(content = RevocationRequest, content_type = "application/json",
        example = json!({"session": "the-session-token", "reason": "stolen laptop"})),
    security(("admin_bearer" = [])),
    responses(
        (status = 200, description = "Revoked", body = RevocationResult),
        (status = 400, description = "`invalid_request`: not exactly one of jti, session, sid, subject, or a malformed one", body = ErrorBody),
        (status = 401, description = "`invalid_token`: missing or wrong admin token", body = ErrorBody),
        (status = 429, description = "`slow_down`: too many wrong admin tokens from this address; with `Retry-After`", body = ErrorBody),
        (status = 405, description = "Method not allowed", body = ErrorBody),
        (status = 413, description = "`invalid_request`: body too large", body = ErrorBody),
        (status = 415, description = "`invalid_request`: not JSON", body = ErrorBody),
        (status = 503, description = "`temporarily_unavailable`: the denylist cannot be reached", body = ErrorBody)))]
pub async fn create_revocation(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    require_admin(&req, &state)?;
    let (encoding, body) = read_body(&req, payload, &state.settings.server, true).await?;
    if encoding != super::BodyEncoding::Json {
        return Err(ApiError::UnsupportedMediaType);
    }
    let request: RevocationRequest =
        serde_json::from_slice(&body).map_err(|e| describe_parse_error(encoding, &e))?;
    let target = match (request.jti, request.session, request.sid, request.subject) {
        (Some(jti), None, None, None) => Target::Jti(jti),
        (None, Some(session), None, None) => Target::Session(session),
        (None, None, Some(sid), None) => Target::Sid(sid),
        (None, None, None, Some(subject)) => Target::Subject(subject),
        _ => {
            return Err(ApiError::InvalidRequest(
                "give exactly one of jti, session, sid, subject".into(),
            ));
        }
    };
    if request.reason.as_ref().is_some_and(|r| r.len() > 512) {
        return Err(ApiError::InvalidRequest("reason exceeds 512 bytes".into()));
    }
    let revoked = state
        .revocations
        .revoke(&target, request.reason.as_deref(), "admin")
        .await?;
    Ok(HttpResponse::Ok().json(RevocationResult {
        kind: revoked.kind,
        id: revoked.id,
        expires_in: revoked.expires_in,
    }))
}
