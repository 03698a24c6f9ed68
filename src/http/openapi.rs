//! The OpenAPI 3.1 document, generated from the handlers' annotations and served as JSON.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, web};
use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};

use crate::http::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tessera",
        description = "Token-exchange service: gateway session tokens (or nothing, for anonymous traffic) in, short-lived RS256 JWTs out, verified offline against the JWKS.",
        license(name = "Apache-2.0")
    ),
    paths(
        super::routes::exchange::exchange_token,
        super::routes::exchange::oauth2_token,
        super::routes::forward_auth::check_nginx,
        super::routes::forward_auth::check_forwarded,
        super::routes::forward_auth::check_envoy,
        super::routes::revoke::revoke_token,
        super::routes::introspect::introspect_token,
        super::routes::feed::stream_revocations,
        super::routes::admin::create_revocation,
        super::routes::admin::list_keys,
        super::routes::admin::rotate_keys,
        super::routes::jwks::get_jwks,
        super::routes::discovery::get_authorization_server_metadata,
        super::routes::discovery::get_openid_configuration,
        super::routes::health::get_health,
        super::routes::health::get_readiness,
        get_openapi,
        super::routes::metrics::get_metrics,
    ),
    components(schemas(crate::http::error::ErrorBody, crate::keys::jwk::Jwk)),
    modifiers(&SecuritySchemes),
    tags(
        (name = "exchange", description = "Gateways exchange session tokens for internal JWTs"),
        (name = "forward-auth", description = "Forward authentication for nginx, Envoy, Traefik and Caddy: the gateway describes the inbound request; `200` + `Authorization: Bearer <JWT>` or a denial to relay"),
        (name = "revocation", description = "Revoke and introspect tokens (RFC 7009, RFC 7662), and follow revocations"),
        (name = "admin", description = "Operator endpoints (admin bearer token)"),
        (name = "keys", description = "Public keys for offline verification"),
        (name = "discovery", description = "Server metadata (RFC 8414)"),
        (name = "operations", description = "Health, readiness and this document"),
    )
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "client_basic",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)),
        );
        components.add_security_scheme(
            "gateway_basic",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Tessera-Authorization",
                "`Basic base64(client_id:client_secret)` of `forward_auth.client`, set by the gateway on the auth request only",
            ))),
        );
        components.add_security_scheme(
            "admin_bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The document as committed in `openapi/openapi.json` (pretty, trailing newline).
pub fn document() -> String {
    let mut json = ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|_| "{}".into());
    json.push('\n');
    json
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(super::routes::resource("/openapi.json").route(web::get().to(get_openapi)));
}

/// This OpenAPI document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json"),
              (status = 405, description = "Method not allowed", body = crate::http::error::ErrorBody)))]
pub async fn get_openapi(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        ))
        .body(state.openapi_json.clone())
}
