//! `GET /.well-known/jwks.json`: the published keys, serialized once per keyring change.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};

use crate::http::AppState;
use crate::keys::jwk::JwkSet;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(super::resource("/.well-known/jwks.json").route(web::get().to(get_jwks)));
}

/// The JSON Web Key Set every service verifies tokens with: pending, active and
/// still-verifying retired keys, never a private parameter.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "keys",
    params(("If-None-Match" = Option<String>, Header, description = "ETag of a cached copy")),
    responses(
        (status = 200, description = "The key set; `Cache-Control: public, max-age`, strong `ETag`", body = JwkSet),
        (status = 304, description = "The cached copy named by `If-None-Match` is current"),
        (status = 405, description = "Method not allowed", body = crate::http::error::ErrorBody)))]
pub async fn get_jwks(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let ring = state.keys.current();
    let etag = ring.jwks_etag();
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| if_none_match_matches(v, etag));
    let mut response = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::CACHE_CONTROL, state.jwks_cache_control.clone()))
        .insert_header((header::ETAG, etag));
    if fresh {
        response.finish()
    } else {
        response
            .insert_header((
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ))
            .body(ring.jwks_json().clone())
    }
}

/// RFC 9110 §13.1.2: `*`, or any listed tag equal under weak comparison.
fn if_none_match_matches(header: &str, etag: &str) -> bool {
    let bare = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    header.trim() == "*" || header.split(',').any(|t| bare(t) == bare(etag))
}

#[cfg(test)]
mod tests {
    use super::if_none_match_matches;

    #[test]
    fn if_none_match_uses_weak_comparison_and_lists() {
        assert!(if_none_match_matches("\"abc\"", "\"abc\""));
        assert!(if_none_match_matches("W/\"abc\"", "\"abc\""));
        assert!(if_none_match_matches("\"x\", \"abc\"", "\"abc\""));
        assert!(if_none_match_matches("*", "\"abc\""));
        assert!(!if_none_match_matches("\"abd\"", "\"abc\""));
    }
}
