//! `ApiError`: the one table from failure to (HTTP status, OAuth `error` code,
//! `Retry-After`), and the mapping of every domain error into it.
//!
//! Every error a caller can see leaves through here as RFC 6749 §5.2 JSON. The variant's
//! `Display` is the `error_description`; unexpected failures become an opaque 500 and
//! unreachable backends a 503, each with its cause chain in the log only.

use std::borrow::Cow;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::exchange::ExchangeError;
use crate::forward_auth::ForwardAuthError;
use crate::keys::KeyError;
use crate::revocation::RevocationError;
use crate::sessions::SessionError;

type Text = Cow<'static, str>;
type Cause = Box<dyn std::error::Error + Send + Sync>;

/// A part Tessera depends on that did not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Denylist,
    Sessions,
    Keystore,
}

impl Backend {
    /// As named in the error description and the log.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Denylist => "the denylist",
            Self::Sessions => "the session backend",
            Self::Keystore => "the keystore",
        }
    }

    /// Seconds a caller should wait before retrying.
    fn retry_after(self) -> u64 {
        match self {
            Self::Denylist | Self::Sessions => 1,
            Self::Keystore => 5,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    InvalidRequest(Text),
    #[error("the request body exceeds the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("the request body did not arrive within {ms} ms")]
    BodyTimeout { ms: u64 },
    #[error("use Content-Type application/json or application/x-www-form-urlencoded")]
    UnsupportedMediaType,
    #[error("grant_type must be urn:ietf:params:oauth:grant-type:token-exchange")]
    UnsupportedGrantType,
    #[error("{0}")]
    InvalidGrant(Text),
    #[error("{0}")]
    UnauthorizedClient(Text),
    #[error("{0}")]
    InvalidTarget(Text),
    #[error("{0}")]
    InvalidScope(Text),
    #[error("client authentication failed")]
    InvalidClient,
    #[error("a valid admin bearer token is required")]
    InvalidAdminToken,
    /// Forward authentication: a route that needs a logged-in user, and no valid session.
    #[error("{0}")]
    LoginRequired(Text),
    /// Forward authentication: no route, or the user lacks the route's roles.
    #[error("{0}")]
    AccessDenied(Text),
    #[error("rate limit exceeded; retry after {retry_after} s")]
    SlowDown { retry_after: u64 },
    #[error("{} cannot be reached; retry later", .backend.describe())]
    Unavailable {
        backend: Backend,
        #[source]
        cause: Cause,
    },
    #[error("too many open feed connections for this client (at most {limit}); retry later")]
    TooManySubscribers { limit: usize },
    #[error("{0}")]
    Conflict(Text),
    #[error("no such endpoint")]
    NotFound,
    #[error("method not allowed on this endpoint")]
    MethodNotAllowed,
    #[error("internal error")]
    Internal(#[source] Cause),
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

/// One row of the table.
struct Row {
    status: StatusCode,
    code: &'static str,
    retry_after: Option<u64>,
}

const fn row(status: StatusCode, code: &'static str) -> Row {
    Row {
        status,
        code,
        retry_after: None,
    }
}

impl ApiError {
    /// The table. No wildcard arm: a new variant does not compile without its row.
    fn row(&self) -> Row {
        use StatusCode as S;
        match self {
            Self::InvalidRequest(_) => row(S::BAD_REQUEST, "invalid_request"),
            Self::PayloadTooLarge { .. } => row(S::PAYLOAD_TOO_LARGE, "invalid_request"),
            Self::BodyTimeout { .. } => row(S::REQUEST_TIMEOUT, "invalid_request"),
            Self::UnsupportedMediaType => row(S::UNSUPPORTED_MEDIA_TYPE, "invalid_request"),
            Self::UnsupportedGrantType => row(S::BAD_REQUEST, "unsupported_grant_type"),
            Self::InvalidGrant(_) => row(S::BAD_REQUEST, "invalid_grant"),
            Self::UnauthorizedClient(_) => row(S::BAD_REQUEST, "unauthorized_client"),
            Self::InvalidTarget(_) => row(S::BAD_REQUEST, "invalid_target"),
            Self::InvalidScope(_) => row(S::BAD_REQUEST, "invalid_scope"),
            Self::InvalidClient => row(S::UNAUTHORIZED, "invalid_client"),
            Self::InvalidAdminToken => row(S::UNAUTHORIZED, "invalid_token"),
            Self::LoginRequired(_) => row(S::UNAUTHORIZED, "login_required"),
            Self::AccessDenied(_) => row(S::FORBIDDEN, "access_denied"),
            Self::SlowDown { retry_after } => Row {
                retry_after: Some(*retry_after),
                ..row(S::TOO_MANY_REQUESTS, "slow_down")
            },
            Self::Unavailable { backend, .. } => Row {
                retry_after: Some(backend.retry_after()),
                ..row(S::SERVICE_UNAVAILABLE, "temporarily_unavailable")
            },
            Self::TooManySubscribers { .. } => Row {
                retry_after: Some(5),
                ..row(S::TOO_MANY_REQUESTS, "slow_down")
            },
            Self::Conflict(_) => row(S::CONFLICT, "conflict"),
            Self::NotFound => row(S::NOT_FOUND, "not_found"),
            Self::MethodNotAllowed => row(S::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::Internal(_) => row(S::INTERNAL_SERVER_ERROR, "server_error"),
        }
    }

    /// The OAuth `error` code of this variant.
    pub fn code(&self) -> &'static str {
        self.row().code
    }

    /// `backend` did not answer, because of `cause`.
    pub fn unavailable(backend: Backend, cause: impl Into<Cause>) -> Self {
        Self::Unavailable {
            backend,
            cause: cause.into(),
        }
    }

    /// The caller's description of an error whose text is fixed by a domain error.
    fn described(make: fn(Text) -> Self, e: &impl std::fmt::Display) -> Self {
        make(e.to_string().into())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.row().status
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Internal(cause) => {
                tracing::error!(error = format!("{cause:#}"), "internal error");
            }
            Self::Unavailable { backend, cause } => {
                tracing::warn!(
                    backend = backend.describe(),
                    error = format!("{cause:#}"),
                    "backend unavailable"
                );
            }
            _ => {}
        }
        let row = self.row();
        let mut response = HttpResponse::build(row.status);
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
            Self::LoginRequired(_) => {
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"tessera\""),
                ));
            }
            // The rest of the body may still be on its way: do not read it, hang up.
            Self::BodyTimeout { .. } => {
                response.force_close();
            }
            _ => {}
        }
        if let Some(seconds) = row.retry_after {
            response.insert_header((header::RETRY_AFTER, seconds));
        }
        response.json(ErrorBody {
            error: row.code,
            error_description: self.to_string(),
        })
    }
}

impl From<ExchangeError> for ApiError {
    fn from(e: ExchangeError) -> Self {
        use ExchangeError as E;
        match e {
            E::InvalidRequest(text) => Self::InvalidRequest(text),
            E::AnonymousNotAllowed => Self::described(Self::UnauthorizedClient, &e),
            E::AudienceNotAllowed | E::NoAudience => Self::described(Self::InvalidTarget, &e),
            E::ScopeNotAllowed => Self::described(Self::InvalidScope, &e),
            E::SessionRevoked | E::MalformedSubjectToken => Self::described(Self::InvalidGrant, &e),
            E::RolesMissing => Self::described(Self::AccessDenied, &e),
            E::Session(session) => session.into(),
            E::Denylist(cause) => Self::unavailable(Backend::Denylist, cause),
            E::Signing(cause) => Self::Internal(cause.into()),
        }
    }
}

impl From<ForwardAuthError> for ApiError {
    fn from(e: ForwardAuthError) -> Self {
        use ForwardAuthError as E;
        match e {
            E::Client(client) => client.into(),
            E::InvalidRequest(text) => Self::InvalidRequest(text),
            E::NoRoute => Self::described(Self::AccessDenied, &e),
            E::LoginRequired { .. } => Self::described(Self::LoginRequired, &e),
            E::Exchange(exchange) => exchange.into(),
        }
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

impl From<SessionError> for ApiError {
    fn from(e: SessionError) -> Self {
        match e {
            SessionError::Rejected => Self::described(Self::InvalidGrant, &e),
            SessionError::Unavailable { .. } => Self::unavailable(Backend::Sessions, e),
        }
    }
}

impl From<RevocationError> for ApiError {
    fn from(e: RevocationError) -> Self {
        match e {
            RevocationError::InvalidTarget(text) => Self::InvalidRequest(text),
            RevocationError::Denylist(cause) => Self::unavailable(Backend::Denylist, cause),
        }
    }
}

impl From<crate::feed::FeedError> for ApiError {
    fn from(e: crate::feed::FeedError) -> Self {
        use crate::feed::FeedError;
        match e {
            FeedError::Unavailable(cause) => Self::unavailable(Backend::Denylist, cause),
            FeedError::TooManySubscribers { limit } => Self::TooManySubscribers { limit },
        }
    }
}

impl From<KeyError> for ApiError {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::Rotate(_) => Self::described(Self::Conflict, &e),
            // A keystore that cannot be read or trusted: the operator can fix it, retry.
            KeyError::Database(_) | KeyError::Store(_) => Self::unavailable(Backend::Keystore, e),
            other => Self::Internal(other.into()),
        }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        Self::Internal(e.into())
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
        let resp = ApiError::from(anyhow::anyhow!("secret detail")).error_response();
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = to_bytes(resp.into_body()).await.expect("body");
        assert!(!String::from_utf8_lossy(&body).contains("secret detail"));
    }

    #[actix_web::test]
    async fn an_unavailable_backend_is_a_503_with_retry_after_and_no_cause() {
        let resp =
            ApiError::unavailable(Backend::Keystore, "db at 10.0.0.1 refused").error_response();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            resp.headers()
                .get(header::RETRY_AFTER)
                .map(|v| v.as_bytes()),
            Some(&b"5"[..])
        );
        let body = to_bytes(resp.into_body()).await.expect("body");
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains("the keystore cannot be reached"), "{text}");
        assert!(!text.contains("10.0.0.1"), "{text}");
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
