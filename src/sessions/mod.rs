//! Session backends: turn a gateway's session token into a [`Principal`] (who, with which
//! roles and extra claims) — the migration path from sessions to JWTs.
//!
//! Invariants: a session token is never logged or stored; it is identified by
//! `sid = base64url(SHA-256(canonical session id))`.

pub mod claims;
mod http;
mod redis;
mod static_;

use std::borrow::Cow;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::config::{SessionBackendKind, SessionSettings, Settings};
use crate::infra::clock::UnixTime;
use crate::infra::redis::RedisClient;
use claims::ClaimMap;
pub use http::HttpSessions;
pub use redis::RedisSessions;
pub use static_::StaticSessions;

/// `subject_token_type` of a gateway session (the default).
pub const SESSION_TOKEN_TYPE: &str = "urn:tessera:params:token-type:session";
/// `subject_token_type` of a legacy OAuth access token (RFC 8693 §3).
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// The kind of subject token the gateway sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectTokenType {
    Session,
    AccessToken,
}

impl SubjectTokenType {
    pub fn parse(uri: &str) -> Option<Self> {
        match uri {
            SESSION_TOKEN_TYPE => Some(Self::Session),
            ACCESS_TOKEN_TYPE => Some(Self::AccessToken),
            _ => None,
        }
    }
}

/// A user as a session backend resolved it.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    pub sub: String,
    pub roles: Vec<String>,
    /// Extra claims (e.g. `email`); never a reserved claim name.
    pub claims: Map<String, Value>,
    /// base64url SHA-256 of the canonical session id.
    pub sid: String,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum SessionError {
    /// The token is unknown, expired or refused: `invalid_grant`.
    #[error("the session token is unknown, expired or revoked")]
    Rejected,
    /// The backend cannot answer: `503 temporarily_unavailable`. The reason names no
    /// token, URL query or credential; the cause, when there is one, likewise.
    #[error("{reason}")]
    Unavailable {
        reason: Cow<'static, str>,
        #[source]
        cause: Option<Arc<dyn std::error::Error + Send + Sync>>,
    },
}

impl SessionError {
    /// The backend cannot answer because of `reason` (and `cause`, if any).
    pub fn unavailable(
        reason: impl Into<Cow<'static, str>>,
        cause: Option<Arc<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Unavailable {
            reason: reason.into(),
            cause,
        }
    }
}

/// The configured backend (enum dispatch: no boxing on the hot path).
#[derive(Debug)]
pub enum SessionBackend {
    Static(StaticSessions),
    Redis(RedisSessions),
    Http(HttpSessions),
}

impl SessionBackend {
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let sessions = &settings.sessions;
        Ok(match sessions.backend {
            SessionBackendKind::Static => {
                Self::Static(StaticSessions::from_settings(&sessions.static_sessions))
            }
            SessionBackendKind::Redis => {
                let r = &sessions.redis;
                let ca = r.tls_ca_file.as_ref().map(std::fs::read).transpose()?;
                let client = RedisClient::single(
                    &r.url,
                    std::time::Duration::from_millis(r.timeout_ms),
                    ca.as_deref(),
                )?;
                Self::Redis(RedisSessions::new(
                    client,
                    &r.key_prefix,
                    &r.cookie_secrets,
                    ClaimMap::from_settings(&sessions.claims),
                ))
            }
            SessionBackendKind::Http => Self::Http(HttpSessions::new(
                &sessions.http,
                ClaimMap::from_settings(&sessions.claims),
            )?),
        })
    }

    /// Applies what a configuration reload may change: the static sessions and the claim
    /// mapping. (The kind of backend and its connection need a restart.)
    pub fn reload(&self, sessions: &SessionSettings) {
        match self {
            Self::Static(s) => s.replace(&sessions.static_sessions),
            Self::Redis(r) => r.set_claims(ClaimMap::from_settings(&sessions.claims)),
            Self::Http(h) => h.set_claims(ClaimMap::from_settings(&sessions.claims)),
        }
    }

    /// The name used in `/readyz` and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Static(_) => "static",
            Self::Redis(_) => "redis",
            Self::Http(_) => "http",
        }
    }

    /// Whether this backend can resolve `token_type`.
    pub fn supports(&self, token_type: SubjectTokenType) -> bool {
        match self {
            Self::Static(_) | Self::Redis(_) => token_type == SubjectTokenType::Session,
            Self::Http(_) => true,
        }
    }

    pub async fn resolve(
        &self,
        token: &str,
        now: UnixTime,
    ) -> Result<Arc<Principal>, SessionError> {
        match self {
            Self::Static(s) => s.resolve(token),
            Self::Redis(r) => r.resolve(token, now).await,
            Self::Http(h) => h.resolve(token).await,
        }
    }

    /// Whether `token` can be a session token at all: visible ASCII without spaces
    /// (RFC 6750 `b64token`, RFC 6265 `cookie-octet`, both within `%x21-7E`), for `redis`
    /// after URL-decoding (the `s%3A…` form). Anything else is refused before the denylist
    /// or the backend is asked: an upstream that trims whitespace or decodes `%20` would
    /// otherwise resolve a variant of a revoked token under another `sid`.
    pub fn is_token(&self, token: &str) -> bool {
        match self {
            Self::Redis(_) => is_visible_ascii(&redis::url_decoded(token)),
            Self::Static(_) | Self::Http(_) => is_visible_ascii(token),
        }
    }

    /// The `sid` of a session token as this backend canonicalizes it: for `redis` the sid
    /// itself (signed, URL-encoded or raw alike), otherwise the token as sent.
    pub fn sid_of(&self, token: &str) -> String {
        match self {
            Self::Redis(_) => sid_of_canonical(&redis::canonical_sid(token)),
            Self::Static(_) | Self::Http(_) => sid_of_canonical(token),
        }
    }

    /// Readiness: `None` when nothing external is configured; a failure names the kind
    /// of backend and its address (`redis 10.0.0.5:6379: connection refused`,
    /// `http legacy.internal:80: timed out`), never a password.
    pub async fn check(&self) -> Option<Result<(), String>> {
        match self {
            Self::Static(_) => None,
            Self::Redis(r) => Some(r.client().ping().await.map_err(|e| e.to_string())),
            Self::Http(h) => Some(
                h.check()
                    .await
                    .map_err(|reason| format!("http {}: {reason}", h.address())),
            ),
        }
    }
}

/// Non-empty, and every byte visible ASCII (`%x21-7E`): no space, tab, CR, LF, NUL or
/// anything non-ASCII.
pub fn is_visible_ascii(value: &str) -> bool {
    !value.is_empty() && value.bytes().all(|b| b.is_ascii_graphic())
}

/// `base64url(SHA-256(canonical))`.
pub fn sid_of_canonical(canonical: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}
