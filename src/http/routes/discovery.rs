//! RFC 8414 authorization-server metadata, also served as `openid-configuration`.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::http::AppState;

pub const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        super::resource("/.well-known/oauth-authorization-server")
            .route(web::get().to(get_authorization_server_metadata)),
    )
    .service(
        super::resource("/.well-known/openid-configuration")
            .route(web::get().to(get_openid_configuration)),
    );
}

/// The discovery document (RFC 8414 §2).
#[derive(Debug, Serialize, ToSchema)]
pub struct Metadata {
    pub issuer: String,
    pub jwks_uri: String,
    pub token_endpoint: String,
    pub introspection_endpoint: String,
    pub revocation_endpoint: String,
    pub grant_types_supported: Vec<&'static str>,
    pub token_endpoint_auth_methods_supported: Vec<&'static str>,
    pub introspection_endpoint_auth_methods_supported: Vec<&'static str>,
    pub revocation_endpoint_auth_methods_supported: Vec<&'static str>,
    pub id_token_signing_alg_values_supported: Vec<&'static str>,
    pub response_types_supported: Vec<&'static str>,
}

impl Metadata {
    pub fn for_issuer(issuer: &str) -> Self {
        let auth = vec!["client_secret_basic", "client_secret_post"];
        Self {
            issuer: issuer.to_owned(),
            jwks_uri: format!("{issuer}/.well-known/jwks.json"),
            token_endpoint: format!("{issuer}/oauth2/token"),
            introspection_endpoint: format!("{issuer}/introspect"),
            revocation_endpoint: format!("{issuer}/revoke"),
            grant_types_supported: vec![TOKEN_EXCHANGE_GRANT],
            token_endpoint_auth_methods_supported: auth.clone(),
            introspection_endpoint_auth_methods_supported: auth.clone(),
            revocation_endpoint_auth_methods_supported: auth,
            id_token_signing_alg_values_supported: vec!["RS256"],
            response_types_supported: vec![],
        }
    }
}

fn metadata_response(state: &AppState) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, state.jwks_cache_control.clone()))
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        ))
        .body(state.discovery_json.clone())
}

/// Authorization server metadata (RFC 8414).
#[utoipa::path(get, path = "/.well-known/oauth-authorization-server", tag = "discovery",
    responses((status = 200, description = "Server metadata", body = Metadata),
              (status = 405, description = "Method not allowed", body = crate::http::error::ErrorBody)))]
pub async fn get_authorization_server_metadata(state: web::Data<AppState>) -> HttpResponse {
    metadata_response(&state)
}

/// The same document at the OpenID Connect discovery path.
#[utoipa::path(get, path = "/.well-known/openid-configuration", tag = "discovery",
    responses((status = 200, description = "Server metadata", body = Metadata),
              (status = 405, description = "Method not allowed", body = crate::http::error::ErrorBody)))]
pub async fn get_openid_configuration(state: web::Data<AppState>) -> HttpResponse {
    metadata_response(&state)
}
