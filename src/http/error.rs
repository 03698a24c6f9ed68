//! `ApiError`: the one table from failure to (HTTP status, OAuth `error` code).
//!
//! Every error a caller can see leaves through here as RFC 6749 §5.2 JSON. Unexpected
//! failures become an opaque 500 whose cause chain goes to the log only.

use std::borrow::Cow;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

type Text = Cow<'static, str>;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("invalid_request: {0}")]
    InvalidRequest(Text),
    #[error("request body too large")]
    PayloadTooLarge { limit: usize },
    #[error("unsupported content type")]
    UnsupportedMediaType,
    #[error("unsupported_grant_type")]
    UnsupportedGrantType,
    #[error("invalid_grant: {0}")]
    InvalidGrant(Text),
    #[error("unauthorized_client")]
    UnauthorizedClient(Text),
    #[error("invalid_target")]
    InvalidTarget(Text),
    #[error("invalid_scope")]
    InvalidScope(Text),
    #[error("invalid_client")]
    InvalidClient,
    #[error("invalid admin token")]
    InvalidAdminToken,
    #[error("slow_down")]
    SlowDown { retry_after: u64 },
    #[error("temporarily_unavailable: {what}")]
    TemporarilyUnavailable { what: Text, retry_after: u64 },
    #[error("conflict: {0}")]
    Conflict(Text),
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("internal error: {0:#}")]
    Internal(#[from] anyhow::Error),
}

/// The error body of every endpoint (RFC 6749 §5.2).
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// OAuth error code, e.g. `invalid_grant`.
    #[schema(example = "invalid_grant")]
    pub error: &'static str,
    /// Human-readable explanation for the developer of the calling gateway.
    #[schema(example = "the session token is unknown, expired or revoked")]
    pub error_description: String,
}

impl ApiError {
    /// The OAuth `error` code of this variant.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) | Self::PayloadTooLarge { .. } | Self::UnsupportedMediaType => {
                "invalid_request"
            }
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidGrant(_) => "invalid_grant",
            Self::UnauthorizedClient(_) => "unauthorized_client",
            Self::InvalidTarget(_) => "invalid_target",
            Self::InvalidScope(_) => "invalid_scope",
            Self::InvalidClient => "invalid_client",
            Self::InvalidAdminToken => "invalid_token",
            Self::SlowDown { .. } => "slow_down",
            Self::TemporarilyUnavailable { .. } => "temporarily_unavailable",
            Self::Conflict(_) => "conflict",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Internal(_) => "server_error",
        }
    }

    fn description(&self) -> String {
        match self {
            Self::InvalidRequest(d)
            | Self::InvalidGrant(d)
            | Self::UnauthorizedClient(d)
            | Self::InvalidTarget(d)
            | Self::InvalidScope(d)
            | Self::Conflict(d) => d.to_string(),
            Self::PayloadTooLarge { limit } => {
                format!("the request body exceeds the limit of {limit} bytes")
            }
            Self::UnsupportedMediaType => {
                "use Content-Type application/json or application/x-www-form-urlencoded".into()
            }
            Self::UnsupportedGrantType => {
                "grant_type must be urn:ietf:params:oauth:grant-type:token-exchange".into()
            }
            Self::InvalidClient => "client authentication failed".into(),
            Self::InvalidAdminToken => "a valid admin bearer token is required".into(),
            Self::SlowDown { retry_after } => {
                format!("rate limit exceeded; retry after {retry_after} s")
            }
            Self::TemporarilyUnavailable { what, .. } => {
                format!("{what} cannot be reached; retry later")
            }
            Self::NotFound => "no such endpoint".into(),
            Self::MethodNotAllowed => "method not allowed on this endpoint".into(),
            Self::Internal(_) => "internal error".into(),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::InvalidClient | Self::InvalidAdminToken => StatusCode::UNAUTHORIZED,
            Self::SlowDown { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::TemporarilyUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Internal(cause) = self {
            tracing::error!(error = format!("{cause:#}"), "internal error");
        }
        let mut response = HttpResponse::build(self.status_code());
        response
            .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
            .insert_header((header::PRAGMA, HeaderValue::from_static("no-cache")));
        match self {
            Self::InvalidClient => {
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"tessera\""),
                ));
            }
            Self::InvalidAdminToken => {
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(
                        "Bearer realm=\"tessera-admin\", error=\"invalid_token\"",
                    ),
                ));
            }
            Self::SlowDown { retry_after } | Self::TemporarilyUnavailable { retry_after, .. } => {
                response.insert_header((header::RETRY_AFTER, *retry_after));
            }
            _ => {}
        }
        response.json(ErrorBody {
            error: self.code(),
            error_description: self.description(),
        })
    }
}

impl From<crate::clients::ClientError> for ApiError {
    fn from(e: crate::clients::ClientError) -> Self {
        use crate::clients::ClientError;
        match e {
            ClientError::InvalidClient => Self::InvalidClient,
            ClientError::TwoMethods => Self::InvalidRequest(e.to_string().into()),
            ClientError::RateLimited { retry_after, .. } => Self::SlowDown {
                retry_after: retry_after.as_secs_f64().ceil().max(1.0) as u64,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::to_bytes;

    #[actix_web::test]
    async fn invalid_client_has_the_basic_challenge_and_json_body() {
        let resp = ApiError::InvalidClient.error_response();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            resp.headers()
                .get(header::WWW_AUTHENTICATE)
                .map(|v| v.as_bytes()),
            Some(&b"Basic realm=\"tessera\""[..])
        );
        let body = to_bytes(resp.into_body()).await.expect("body");
        let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(v["error"], "invalid_client");
    }

    #[actix_web::test]
    async fn internal_errors_do_not_leak_their_cause() {
        let resp = ApiError::Internal(anyhow::anyhow!("secret detail")).error_response();
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = to_bytes(resp.into_body()).await.expect("body");
        assert!(!String::from_utf8_lossy(&body).contains("secret detail"));
    }

    #[test]
    fn oversize_and_media_type_errors_are_invalid_request() {
        assert_eq!(
            ApiError::PayloadTooLarge { limit: 1 }.code(),
            "invalid_request"
        );
        assert_eq!(ApiError::UnsupportedMediaType.code(), "invalid_request");
        assert_eq!(
            ApiError::PayloadTooLarge { limit: 1 }.status_code(),
            StatusCode::PAYLOAD_TOO_LARGE
        );
    }
}
