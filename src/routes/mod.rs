//! HTTP routes. Each module owns its endpoints and exposes `configure`; `app.rs` composes them.

pub mod discovery;
pub mod exchange;
pub mod health;
pub mod jwks;
pub mod openapi;

use actix_web::{HttpMessage, HttpRequest, Resource, web};
use futures_util::StreamExt as _;

use crate::error::ApiError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    exchange::configure(cfg);
    jwks::configure(cfg);
    discovery::configure(cfg);
    health::configure(cfg);
    openapi::configure(cfg);
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

/// Checks the content type, then reads at most `limit` bytes of body.
pub(crate) async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
    allow_json: bool,
) -> Result<(BodyEncoding, web::Bytes), ApiError> {
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
    while let Some(chunk) = payload.next().await {
        let chunk = chunk
            .map_err(|_| ApiError::InvalidRequest("the request body could not be read".into()))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
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
