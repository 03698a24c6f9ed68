//! The exchange as a domain service: every front end (`/exchange`, `/oauth2/token`, and
//! the forward-authentication endpoints) calls [`Exchanger::exchange`] with an
//! [`ExchangeRequest`] and renders the [`Issued`] token or the [`ExchangeError`].
//!
//! The straight line: check audience, scope and context → the denylist (the session, and
//! the young token [`reuse`] might hand out again: one lookup) → the session backend →
//! claims → the young token if its claims are these, else sign with the active key.
//! Invariants: a revoked session never reaches its backend; a backend that cannot answer
//! is `Unavailable` (503), never a refusal; the session token never enters a claim, a
//! log line or the reuse cache (only its `sid` hash); a token handed out again is one the
//! denylist cleared in this exchange, signed by the active key.

pub mod policy;
pub mod reuse;

use std::borrow::Cow;
use std::sync::Arc;

use serde_json::Map;
use tracing::Instrument as _;

use crate::clients::{Client, ClientError, Clients, PresentedCredentials};
use crate::denylist::{Denylist as _, DenylistStore};
use crate::infra::clock::{Clock, UnixTime};
use crate::infra::redis::RedisUnavailable;
use crate::keys::KeyService;
use crate::keys::signer::SignerError;
use crate::sessions::{Principal, SessionBackend, SessionError, SubjectTokenType};
use crate::tokens::{RequestContext, TokenIssuer, TokenRequest};
use reuse::{RequestKey, Reusable, Reuse};

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
    /// The user must have at least one of these roles (forward-auth routes); `None` = any.
    /// Checked before anything is signed.
    pub required_roles: Option<&'a [String]>,
}

/// A token issued (or, with reuse, handed out again: the strings are shared with the
/// reuse cache, not copied).
#[derive(Debug)]
pub struct Issued {
    pub access_token: Arc<str>,
    pub jti: Arc<str>,
    /// Seconds until `exp`.
    pub expires_in: u64,
    /// The granted scope, when any.
    pub scope: Option<String>,
    /// The user (`anonymous` for an anonymous exchange).
    pub sub: String,
    /// The key that signed it.
    pub kid: Arc<str>,
    /// Handed out again (token reuse) rather than signed now.
    pub reused: bool,
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
    /// The user has none of the roles the request requires.
    #[error("the user has none of the roles this route requires")]
    RolesMissing,
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
    reuse: Reuse,
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
            reuse: Reuse::off(),
        }
    }

    /// Token reuse (`token.reuse_fraction`, `token.reuse_max_entries`); off by default.
    pub fn with_reuse(mut self, reuse: Reuse) -> Self {
        self.reuse = reuse;
        self
    }

    /// The reuse cache (for tests and diagnostics).
    pub fn reuse(&self) -> &Reuse {
        &self.reuse
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
    ) -> Result<std::sync::Arc<Client>, ClientError> {
        let span = tracing::info_span!(
            "client_authentication",
            client_id = tracing::field::Empty,
            outcome = tracing::field::Empty
        );
        let _entered = span.enter();
        let authenticated = self.clients.authenticate(presented, peer);
        match &authenticated {
            Ok(client) => {
                span.record("client_id", client.id.as_str());
                span.record("outcome", "ok");
            }
            Err(_) => {
                span.record("outcome", "refused");
            }
        }
        authenticated
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
        let session = match request.subject_token {
            None if client.allow_anonymous => None,
            None => return Err(ExchangeError::AnonymousNotAllowed),
            Some("") => {
                return Err(ExchangeError::InvalidRequest(
                    "subject_token is empty".into(),
                ));
            }
            Some(token) => {
                if !self.sessions.supports(token_type) {
                    return Err(ExchangeError::InvalidRequest(
                        format!(
                            "the {} session backend does not accept this subject_token_type",
                            self.sessions.name()
                        )
                        .into(),
                    ));
                }
                // Outside the grammar it is no session token at all: refused before the
                // denylist or the backend is asked.
                if !self.sessions.is_token(token) {
                    return Err(ExchangeError::MalformedSubjectToken);
                }
                Some((token, self.sessions.sid_of(token)))
            }
        };
        let session_sid = session.as_ref().map(|(_, sid)| sid.as_str());
        let key = self.reuse.key(&RequestKey {
            client_id: &client.id,
            ttl_seconds: client.ttl_seconds,
            token_type,
            sid: session_sid,
            audience,
            scope: scope.as_deref(),
            ctx,
        });
        let mut candidate = key.as_ref().and_then(|k| {
            self.reuse
                .candidate(k, now, self.keys.current().active().kid())
        });
        if session_sid.is_some() || candidate.is_some() {
            // The one denylist lookup: the session, and the token we may hand out again.
            let check = crate::infra::metrics::time_backend(
                "denylist",
                self.denylist.check_exchange(
                    session_sid,
                    candidate.as_deref().map(Reusable::facts),
                    now,
                ),
            )
            .instrument(tracing::info_span!("denylist"))
            .await;
            match check {
                Ok(c) if c.session_revoked => return Err(ExchangeError::SessionRevoked),
                Ok(c) if c.token_revoked => {
                    if let Some(k) = &key {
                        self.reuse.forget(k);
                    }
                    candidate = None;
                }
                Ok(_) => {}
                Err(e) if session_sid.is_some() => return Err(ExchangeError::Denylist(e)),
                // Anonymous: no denylist needed to sign a fresh token.
                Err(_) => candidate = None,
            }
        }
        let principal = match &session {
            Some((token, _)) => Some(self.resolve_session(token, now).await?),
            None => None,
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
        policy::require_roles(request.required_roles, roles)?;
        let keyring = self.keys.current();
        let active_kid = keyring.active().kid();
        let principal_digest = key.map(|_| reuse::principal_digest(sub, roles, extra, sid));
        if let (Some(c), Some(digest)) = (&candidate, &principal_digest)
            && c.principal == *digest
            && self.reuse.is_reusable(c, now, active_kid)
        {
            self.reuse.record(true);
            tracing::info_span!("token_reuse", kid = &*c.kid).in_scope(|| {});
            return Ok(Issued {
                access_token: c.jwt.clone(),
                jti: c.jti.clone(),
                expires_in: (c.exp - now) as u64,
                scope,
                sub: sub.to_owned(),
                kid: c.kid.clone(),
                reused: true,
            });
        }
        let token = tracing::info_span!("sign", kid = active_kid)
            .in_scope(|| {
                self.issuer.issue(
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
            })
            .map_err(ExchangeError::Signing)?;
        let issued = Issued {
            access_token: token.jwt.into(),
            jti: token.jti.into(),
            expires_in: token.expires_in,
            scope,
            sub: sub.to_owned(),
            kid: active_kid.into(),
            reused: false,
        };
        if let (Some(key), Some(principal)) = (key, principal_digest) {
            self.reuse.record(false);
            self.reuse.keep(
                key,
                Reusable {
                    principal,
                    jwt: issued.access_token.clone(),
                    jti: issued.jti.clone(),
                    kid: issued.kid.clone(),
                    sub: sub.into(),
                    issued_at: now,
                    exp: now + client.ttl_seconds as i64,
                },
            );
        }
        Ok(issued)
    }

    /// The session's user (the denylist has cleared the session), or a refusal.
    async fn resolve_session(
        &self,
        token: &str,
        now: UnixTime,
    ) -> Result<Arc<Principal>, ExchangeError> {
        let started = std::time::Instant::now();
        let span = tracing::info_span!(
            "session_backend",
            kind = self.sessions.name(),
            outcome = tracing::field::Empty
        );
        let resolved = self
            .sessions
            .resolve(token, now)
            .instrument(span.clone())
            .await;
        // A refusal is an answer, not a backend error.
        let failed = matches!(resolved, Err(SessionError::Unavailable { .. }));
        span.record(
            "outcome",
            match &resolved {
                Ok(_) => "ok",
                Err(_) if failed => "unavailable",
                Err(_) => "refused",
            },
        );
        crate::infra::metrics::record_backend(self.sessions.name(), started, failed);
        Ok(resolved?)
    }
}

#[cfg(test)]
mod tests;
