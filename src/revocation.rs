//! Revocation and introspection as domain services: what operators and gateways name (a
//! token, a session, a subject) becomes a denylist entry with an audit line, and "is this
//! token still good?" is answered from its signature, lifetime and the denylist.
//!
//! Invariants: a session is stored only as its `sid` hash, canonicalized exactly as the
//! exchange does; every revocation writes one audit record and, once stored, one event on
//! the revocation feed; a denylist that cannot answer
//! is an error, never "not revoked".

use std::borrow::Cow;
use std::sync::Arc;

use crate::denylist::{Denylist as _, DenylistStore, Revocation, TokenFacts};
use crate::feed::Feed;
use crate::infra::clock::Clock;
use crate::infra::redis::RedisUnavailable;
use crate::keys::KeyService;
use crate::sessions::SessionBackend;
use crate::tokens::{TokenIssuer, VerifiedToken};

/// A revocation as an operator names it (admin API or CLI).
#[derive(Debug, Clone)]
pub enum Target {
    Jti(String),
    /// The session token as the gateway holds it; only its `sid` hash is stored.
    Session(String),
    /// A session by the `sid` claim of its tokens (what an incident responder sees in a
    /// JWT): 43 base64url characters, the SHA-256 of the canonical session id.
    Sid(String),
    Subject(String),
}

#[derive(Debug, thiserror::Error)]
pub enum RevocationError {
    /// The target is empty or too long (`invalid_request`).
    #[error("{0}")]
    InvalidTarget(Cow<'static, str>),
    /// The denylist cannot answer.
    #[error("the denylist cannot be reached")]
    Denylist(#[source] RedisUnavailable),
}

impl Target {
    /// Ids are non-empty and bounded (a session token up to 4 KiB, others 1 KiB); a `sid`
    /// is a base64url SHA-256.
    pub fn check(&self) -> Result<(), RevocationError> {
        let (name, value, max) = match self {
            Self::Jti(v) => ("jti", v, 1024),
            Self::Session(v) => ("session", v, 4096),
            Self::Subject(v) => ("subject", v, 1024),
            Self::Sid(v) => {
                if !is_sid(v) {
                    return Err(RevocationError::InvalidTarget(
                        "sid must be the 43 base64url characters of a token's sid claim".into(),
                    ));
                }
                return Ok(());
            }
        };
        if value.is_empty() || value.len() > max {
            return Err(RevocationError::InvalidTarget(
                format!("{name} must be 1 to {max} bytes").into(),
            ));
        }
        Ok(())
    }
}

/// `base64url(SHA-256(…))` without padding: 43 characters of the URL-safe alphabet.
fn is_sid(value: &str) -> bool {
    value.len() == 43
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// What was revoked, for the caller.
#[derive(Debug, Clone)]
pub struct Revoked {
    pub kind: &'static str,
    /// The jti, the session's `sid` hash, or the user id.
    pub id: String,
    /// Seconds the entry lives (0: everything it covers had already expired).
    pub expires_in: u64,
}

/// Makes revocations: admin API, CLI, and RFC 7009 for a gateway's own tokens.
pub struct Revocations {
    denylist: Arc<DenylistStore>,
    /// Every stored revocation is also published here.
    feed: Arc<Feed>,
    sessions: Arc<SessionBackend>,
    clock: Arc<dyn Clock>,
    /// A revoked jti lives as long as the longest token could.
    max_token_ttl: i64,
}

impl Revocations {
    pub fn new(
        denylist: Arc<DenylistStore>,
        feed: Arc<Feed>,
        sessions: Arc<SessionBackend>,
        clock: Arc<dyn Clock>,
        max_token_ttl_seconds: u64,
    ) -> Self {
        Self {
            denylist,
            feed,
            sessions,
            clock,
            max_token_ttl: max_token_ttl_seconds as i64,
        }
    }

    /// Whether other processes (the CLI, other replicas) share this denylist.
    pub fn is_shared(&self) -> bool {
        self.denylist.is_shared()
    }

    /// Revokes what an operator named; `by` names the operator in the audit record.
    pub async fn revoke(
        &self,
        target: &Target,
        reason: Option<&str>,
        by: &str,
    ) -> Result<Revoked, RevocationError> {
        target.check()?;
        if let Target::Session(token) = target
            && !self.sessions.is_token(token)
        {
            // The exchange refuses such a token before asking anyone: nothing to revoke,
            // and its hash would name no session.
            return Err(RevocationError::InvalidTarget(
                "session must be visible ASCII without spaces".into(),
            ));
        }
        let now = self.clock.now();
        let revocation = match target {
            Target::Jti(jti) => Revocation::Jti {
                jti: jti.clone(),
                expires_at: now + self.max_token_ttl,
            },
            Target::Session(token) => Revocation::Session {
                sid: self.sessions.sid_of(token),
            },
            Target::Sid(sid) => Revocation::Session { sid: sid.clone() },
            Target::Subject(sub) => Revocation::Subject {
                sub: sub.clone(),
                issued_up_to: now,
            },
        };
        self.store(&revocation, reason, by).await
    }

    /// Denies one verified token's `jti` until it expires (RFC 7009).
    pub async fn revoke_token(
        &self,
        token: &VerifiedToken,
        reason: &str,
        by: &str,
    ) -> Result<Revoked, RevocationError> {
        let revocation = Revocation::Jti {
            jti: token.jti.clone(),
            expires_at: token.exp,
        };
        self.store(&revocation, Some(reason), by).await
    }

    /// Stores a revocation and writes its audit line (kind, id or hash, reason, who).
    async fn store(
        &self,
        revocation: &Revocation,
        reason: Option<&str>,
        by: &str,
    ) -> Result<Revoked, RevocationError> {
        let now = self.clock.now();
        let ttl =
            crate::infra::metrics::time_backend("denylist", self.denylist.revoke(revocation, now))
                .await
                .map_err(RevocationError::Denylist)?;
        if ttl > 0 {
            // After the denylist: whoever sees the event finds the entry there too.
            crate::infra::metrics::time_backend(
                "denylist",
                self.feed.publish(revocation, now, ttl),
            )
            .await
            .map_err(RevocationError::Denylist)?;
        }
        metrics::counter!(crate::infra::metrics::REVOCATIONS, "kind" => revocation.kind())
            .increment(1);
        tracing::info!(
            target: "tessera::audit",
            event = "revocation",
            kind = revocation.kind(),
            id = revocation.id(),
            reason = reason.unwrap_or(""),
            by,
            ttl_seconds = ttl,
            "revoked"
        );
        Ok(Revoked {
            kind: revocation.kind(),
            id: revocation.id().to_owned(),
            expires_in: ttl,
        })
    }
}

/// Answers "is this token of ours still good?" (RFC 7662) and lets a gateway revoke its
/// own tokens (RFC 7009).
pub struct Introspection {
    keys: Arc<KeyService>,
    issuer: TokenIssuer,
    denylist: Arc<DenylistStore>,
    revocations: Arc<Revocations>,
    clock: Arc<dyn Clock>,
}

impl Introspection {
    pub fn new(
        keys: Arc<KeyService>,
        issuer: TokenIssuer,
        denylist: Arc<DenylistStore>,
        revocations: Arc<Revocations>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            keys,
            issuer,
            denylist,
            revocations,
            clock,
        }
    }

    /// The token's claims when it is active: our signature, inside its lifetime, and not
    /// covered by any revocation (its jti, its session or its subject); else `None`.
    pub async fn introspect(&self, jwt: &str) -> Result<Option<VerifiedToken>, RevocationError> {
        let now = self.clock.now();
        let token = match crate::tokens::verify(&self.keys.current(), &self.issuer, jwt, now) {
            Ok(t) => t,
            Err(reason) => {
                tracing::debug!(%reason, "inactive token");
                return Ok(None);
            }
        };
        let facts = TokenFacts {
            jti: &token.jti,
            sid: token.sid.as_deref(),
            sub: &token.sub,
            issued_at: token.issued_at,
        };
        let revoked = crate::infra::metrics::time_backend(
            "denylist",
            self.denylist.is_token_revoked(facts, now),
        )
        .await
        .map_err(RevocationError::Denylist)?;
        Ok((!revoked).then_some(token))
    }

    /// RFC 7009: revokes `jwt` when it is a valid token issued to `client_id`; anything
    /// else is ignored (the caller answers 200 either way).
    pub async fn revoke_own(&self, client_id: &str, jwt: &str) -> Result<(), RevocationError> {
        let now = self.clock.now();
        match crate::tokens::verify(&self.keys.current(), &self.issuer, jwt, now) {
            Ok(t) if t.client_id == client_id => {
                self.revocations
                    .revoke_token(&t, "rfc7009", client_id)
                    .await?;
            }
            Ok(_) => tracing::info!("revocation of another client's token ignored"),
            Err(e) => tracing::debug!(reason = %e, "revocation of an invalid token ignored"),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sid_is_a_base64url_sha256() {
        let sid = crate::sessions::sid_of_canonical("some-session");
        assert!(Target::Sid(sid.clone()).check().is_ok());
        for bad in [
            String::new(),
            sid[..42].to_owned(),
            format!("{sid}A"),
            sid.replacen(|c: char| c.is_ascii_alphanumeric(), "+", 1),
            format!("{}=", &sid[..42]),
        ] {
            assert!(Target::Sid(bad.clone()).check().is_err(), "{bad}");
        }
    }
}
