//! `POST /introspect` (RFC 7662): is this token valid and unrevoked, and what does it say.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Map, Value};

use super::{TokenForm, read_token_form};
use crate::http::AppState;
use crate::http::error::{ApiError, ErrorBody};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(super::resource("/introspect").route(web::post().to(introspect_token)));
}

/// RFC 7662 response: `{"active": false}`, or `active: true` with every claim.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[schema(example = json!({"active": true, "token_type": "Bearer", "sub": "user-1", "aud": "product-inventory",
    "client_id": "demo-gateway", "roles": ["admin"], "exp": 1763820605}))]
pub struct Introspection {
    /// Whether the token is valid now: our signature, not expired, not revoked.
    pub active: bool,
    /// `Bearer`, when active.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
    /// The token's claims, when active.
    #[serde(flatten)]
    pub claims: Map<String, Value>,
}

impl Introspection {
    fn inactive() -> Self {
        Self {
            active: false,
            token_type: None,
            claims: Map::new(),
        }
    }
}

/// Check a token: inactive for a bad signature, an expired token, or any revocation
/// (its jti, its session, or its subject).
#[utoipa::path(post, path = "/introspect", tag = "revocation",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    security(("client_basic" = [])),
    responses(
        (status = 200, description = "The token's state and, when active, its claims", body = Introspection),
        (status = 400, description = "`invalid_request`: malformed form or no `token`", body = ErrorBody),
        (status = 401, description = "`invalid_client`", body = ErrorBody),
        (status = 405, description = "Method not allowed", body = ErrorBody),
        (status = 429, description = "`slow_down`: the client's rate limit, or too many authentication failures from this address; `Retry-After`", body = ErrorBody),
        (status = 413, description = "`invalid_request`: body too large", body = ErrorBody),
        (status = 415, description = "`invalid_request`: not a form", body = ErrorBody),
        (status = 503, description = "`temporarily_unavailable`: the denylist cannot be reached; `Retry-After`", body = ErrorBody)))]
#[tracing::instrument(name = "introspect", skip_all, fields(client_id))]
pub async fn introspect_token(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (client, token) = read_token_form(&req, payload, &state).await?;
    tracing::Span::current().record("client_id", client.id.as_str());
    let body = match state.introspection.introspect(&token).await? {
        None => Introspection::inactive(),
        Some(t) => Introspection {
            active: true,
            token_type: Some("Bearer"),
            claims: t.claims,
        },
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .json(body))
}
