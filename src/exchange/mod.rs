//! The exchange as a domain service: every front end (`/exchange`, `/oauth2/token`, and
//! the forward-authentication endpoints) calls [`Exchanger::exchange`] with an
//! [`ExchangeRequest`] and renders the [`Issued`] token or the [`ExchangeError`].
//!
//! The straight line: check audience, scope and context → (anonymous, or: the denylist
//! for the session → the session backend) → claims → sign with the active key.
//! Invariants: a revoked session never reaches its backend; a backend that cannot answer
//! is `Unavailable` (503), never a refusal; the session token never enters a claim or a
//! log line (only its `sid` hash).

pub mod policy;

use std::borrow::Cow;
use std::sync::Arc;

use serde_json::Map;

use crate::clients::{Client, ClientError, Clients, PresentedCredentials};
use crate::denylist::{Denylist as _, DenylistStore};
use crate::infra::clock::{Clock, UnixTime};
use crate::infra::redis::RedisUnavailable;
use crate::keys::KeyService;
use crate::keys::signer::SignerError;
use crate::sessions::{Principal, SessionBackend, SessionError, SubjectTokenType};
use crate::tokens::{RequestContext, TokenIssuer, TokenRequest};

/// What a gateway asks for, in any front end's dialect, once parsed.
#[derive(Debug, Default, Clone, Copy)]
pub struct ExchangeRequest<'a> {
    /// The user's session token; `None` = anonymous.
    pub subject_token: Option<&'a str>,
    /// The `subject_token_type` URI as sent; `None` = a session.
    pub subject_token_type: Option<&'a str>,
    /// `None` = the client's default audience.
    pub audience: Option<&'a str>,
    /// Space-separated scope tokens.
    pub scope: Option<&'a str>,
    /// Copied into the `ctx` claim.
    pub context: Option<&'a RequestContext>,
}

/// A token issued (or, with reuse, handed out again).
#[derive(Debug)]
pub struct Issued {
    pub access_token: String,
    pub jti: String,
    /// Seconds until `exp`.
    pub expires_in: u64,
    /// The granted scope, when any.
    pub scope: Option<String>,
    /// The user (`anonymous` for an anonymous exchange).
    pub sub: String,
    /// The key that signed it.
    pub kid: String,
}

/// Why an exchange was refused. Each variant maps to one row of the HTTP error table.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// Malformed parameters (`invalid_request`).
    #[error("{0}")]
    InvalidRequest(Cow<'static, str>),
    #[error("this client may not make anonymous exchanges; send a subject_token")]
    AnonymousNotAllowed,
    #[error("this client may not ask for that audience")]
    AudienceNotAllowed,
    #[error("no audience given and the client has no default_audience")]
    NoAudience,
    #[error("the requested scope exceeds what this client may ask for")]
    ScopeNotAllowed,
    #[error("the session has been revoked")]
    SessionRevoked,
    /// Not visible ASCII without spaces: no session token at all (`invalid_grant`), refused
    /// before the denylist or the backend is asked.
    #[error("subject_token must be visible ASCII without spaces")]
    MalformedSubjectToken,
    /// The session backend refused the token (`invalid_grant`) or cannot answer (503).
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The denylist cannot answer: fail closed.
    #[error("the denylist cannot be reached")]
    Denylist(#[source] RedisUnavailable),
    /// Signing failed: an internal error.
    #[error("the token could not be signed")]
    Signing(#[source] SignerError),
}

/// The exchange and everything it needs, wired once at start-up.
pub struct Exchanger {
    clients: Arc<Clients>,
    sessions: Arc<SessionBackend>,
    denylist: Arc<DenylistStore>,
    keys: Arc<KeyService>,
    issuer: TokenIssuer,
    clock: Arc<dyn Clock>,
    anonymous_roles: Vec<String>,
    no_claims: Map<String, serde_json::Value>,
}

impl std::fmt::Debug for Exchanger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exchanger")
            .field("sessions", &self.sessions.name())
            .field("denylist", &self.denylist.name())
            .finish_non_exhaustive()
    }
}

impl Exchanger {
    pub fn new(
        clients: Arc<Clients>,
        sessions: Arc<SessionBackend>,
        denylist: Arc<DenylistStore>,
        keys: Arc<KeyService>,
        issuer: TokenIssuer,
        clock: Arc<dyn Clock>,
        anonymous_roles: Vec<String>,
    ) -> Self {
        Self {
            clients,
            sessions,
            denylist,
            keys,
            issuer,
            clock,
            anonymous_roles,
            no_claims: Map::new(),
        }
    }

    /// `static`, `redis` or `http`: the label of the session backend's metrics.
    pub fn session_backend_name(&self) -> &'static str {
        self.sessions.name()
    }

    /// The first step of every exchange: the gateway's credentials (from whichever header
    /// its front end uses), its address's failure limit and its own rate limit.
    pub fn authenticate(
        &self,
        presented: &PresentedCredentials<'_>,
        peer: Option<std::net::IpAddr>,
    ) -> Result<&Client, ClientError> {
        self.clients.authenticate(presented, peer)
    }

    /// Exchanges for `client` (authenticated by [`Self::authenticate`]): the whole hot path.
    pub async fn exchange(
        &self,
        client: &Client,
        request: ExchangeRequest<'_>,
    ) -> Result<Issued, ExchangeError> {
        let audience = policy::choose_audience(client, request.audience)?;
        let scope = policy::grant_scope(client, request.scope)?;
        let ctx = policy::check_context(request.context)?;
        let token_type = match request.subject_token_type {
            None => SubjectTokenType::Session,
            Some(uri) => SubjectTokenType::parse(uri).ok_or(ExchangeError::InvalidRequest(
                "subject_token_type must be urn:tessera:params:token-type:session or urn:ietf:params:oauth:token-type:access_token".into(),
            ))?,
        };
        let now = self.clock.now();
        let principal = match request.subject_token {
            None if client.allow_anonymous => None,
            None => return Err(ExchangeError::AnonymousNotAllowed),
            Some("") => {
                return Err(ExchangeError::InvalidRequest(
                    "subject_token is empty".into(),
                ));
            }
            Some(token) => Some(self.resolve_session(token, token_type, now).await?),
        };
        let (sub, roles, extra, sid) = match &principal {
            Some(p) => (
                p.sub.as_str(),
                &p.roles[..],
                &p.claims,
                Some(p.sid.as_str()),
            ),
            None => (
                "anonymous",
                &self.anonymous_roles[..],
                &self.no_claims,
                None,
            ),
        };
        let keyring = self.keys.current();
        let token = self
            .issuer
            .issue(
                &keyring,
                &TokenRequest {
                    sub,
                    roles,
                    extra,
                    sid,
                    client_id: &client.id,
                    audience,
                    scope: scope.as_deref(),
                    ctx,
                    ttl_seconds: client.ttl_seconds,
                },
                now,
            )
            .map_err(ExchangeError::Signing)?;
        Ok(Issued {
            access_token: token.jwt,
            jti: token.jti,
            expires_in: token.expires_in,
            scope,
            sub: sub.to_owned(),
            kid: keyring.active().kid().to_owned(),
        })
    }

    /// The session's user, unless the session is revoked (denylist first: a revoked
    /// session never reaches the backend) or unknown. A token outside the grammar reaches
    /// neither.
    async fn resolve_session(
        &self,
        token: &str,
        token_type: SubjectTokenType,
        now: UnixTime,
    ) -> Result<Arc<Principal>, ExchangeError> {
        if !self.sessions.supports(token_type) {
            return Err(ExchangeError::InvalidRequest(
                format!(
                    "the {} session backend does not accept this subject_token_type",
                    self.sessions.name()
                )
                .into(),
            ));
        }
        if !self.sessions.is_token(token) {
            return Err(ExchangeError::MalformedSubjectToken);
        }
        let sid = self.sessions.sid_of(token);
        let revoked = crate::infra::metrics::time_backend(
            "denylist",
            self.denylist.is_session_revoked(&sid, now),
        )
        .await
        .map_err(ExchangeError::Denylist)?;
        if revoked {
            return Err(ExchangeError::SessionRevoked);
        }
        let started = std::time::Instant::now();
        let resolved = self.sessions.resolve(token, now).await;
        // A refusal is an answer, not a backend error.
        let failed = matches!(resolved, Err(SessionError::Unavailable { .. }));
        crate::infra::metrics::record_backend(self.sessions.name(), started, failed);
        Ok(resolved?)
    }
}

#[cfg(test)]
mod tests;
