//! The denylist: revoked token ids, sessions and subjects, shared by every replica.
//!
//! Invariants: every entry expires by itself once nothing it covers can still be valid;
//! an exchange costs at most one lookup (one Redis round trip), a token check at most one;
//! a backend that cannot answer is an error, never "not revoked" (fail closed).

mod memory;
mod redis;

use std::time::Duration;

use crate::config::{DenylistBackend, Settings};
use crate::infra::clock::UnixTime;
use crate::infra::redis::{RedisClient, RedisUnavailable};
pub use memory::MemoryDenylist;
pub use redis::RedisDenylist;

/// What to revoke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// One token, until it expires at `expires_at`.
    Jti { jti: String, expires_at: UnixTime },
    /// Every token carrying this `sid`, and further exchanges of the session.
    Session { sid: String },
    /// Every token of `sub` issued at or before `issued_up_to`.
    Subject { sub: String, issued_up_to: UnixTime },
}

impl Revocation {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Jti { .. } => "jti",
            Self::Session { .. } => "session",
            Self::Subject { .. } => "subject",
        }
    }

    /// The id logged and returned: a jti, a session's `sid` hash, or a user id.
    pub fn id(&self) -> &str {
        match self {
            Self::Jti { jti, .. } => jti,
            Self::Session { sid } => sid,
            Self::Subject { sub, .. } => sub,
        }
    }
}

/// What a token check needs to know about a token.
#[derive(Debug, Clone, Copy)]
pub struct TokenFacts<'a> {
    pub jti: &'a str,
    pub sid: Option<&'a str>,
    pub sub: &'a str,
    /// Real issuance time (`iat` + backdating).
    pub issued_at: UnixTime,
}

/// A token an exchange may hand out again (token reuse): what the denylist must clear
/// before it is.
#[derive(Debug, Clone, Copy)]
pub struct ReusedToken<'a> {
    pub jti: &'a str,
    pub sub: &'a str,
    /// Real issuance time (`iat` + backdating).
    pub issued_at: UnixTime,
}

/// The answer of the exchange's one denylist lookup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExchangeCheck {
    /// The session may not be exchanged (and its tokens are dead).
    pub session_revoked: bool,
    /// The token asked about is revoked (its jti, its subject's watermark or its session):
    /// it must not be handed out again.
    pub token_revoked: bool,
}

/// How long each kind of entry must live.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    pub session_seconds: u64,
    /// A subject watermark lives as long as the longest token it can cover.
    pub subject_seconds: u64,
}

impl Lifetimes {
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            session_seconds: settings.denylist.session_ttl_seconds,
            subject_seconds: settings.token.max_ttl_seconds + settings.token.clock_skew_seconds,
        }
    }

    /// Seconds the entry must live from `now`; `None` if it covers nothing still valid.
    pub fn ttl(&self, revocation: &Revocation, now: UnixTime) -> Option<u64> {
        match revocation {
            Revocation::Jti { expires_at, .. } => {
                u64::try_from(expires_at - now).ok().filter(|t| *t > 0)
            }
            Revocation::Session { .. } => Some(self.session_seconds),
            Revocation::Subject { .. } => Some(self.subject_seconds),
        }
    }
}

/// The storage seam: the embedded map or Redis.
pub trait Denylist: Send + Sync {
    /// Stores `revocation`; returns the entry's lifetime in seconds (0: nothing stored
    /// because everything it covers has already expired).
    fn revoke(
        &self,
        revocation: &Revocation,
        now: UnixTime,
    ) -> impl Future<Output = Result<u64, RedisUnavailable>> + Send;

    /// Whether this session was revoked (the exchange check).
    fn is_session_revoked(
        &self,
        sid: &str,
        now: UnixTime,
    ) -> impl Future<Output = Result<bool, RedisUnavailable>> + Send;

    /// The exchange's one lookup (one Redis round trip): whether the session `sid` (if
    /// any) is revoked and, when the exchange may hand out `reused` again, whether that
    /// token is (by its jti, its subject's watermark, or the session).
    fn check_exchange(
        &self,
        sid: Option<&str>,
        reused: Option<ReusedToken<'_>>,
        now: UnixTime,
    ) -> impl Future<Output = Result<ExchangeCheck, RedisUnavailable>> + Send;

    /// Whether any entry covers this token (jti, sid or subject watermark).
    fn is_token_revoked(
        &self,
        token: TokenFacts<'_>,
        now: UnixTime,
    ) -> impl Future<Output = Result<bool, RedisUnavailable>> + Send;
}

/// The configured backend (static dispatch).
#[derive(Debug)]
pub enum DenylistStore {
    Memory(MemoryDenylist),
    Redis(RedisDenylist),
}

impl DenylistStore {
    pub fn from_settings(settings: &Settings) -> Result<Self, RedisUnavailable> {
        let lifetimes = Lifetimes::from_settings(settings);
        match settings.denylist.backend {
            DenylistBackend::Memory => Ok(Self::Memory(MemoryDenylist::new(lifetimes))),
            DenylistBackend::Redis => {
                let r = &settings.redis;
                let timeout = Duration::from_millis(r.timeout_ms);
                let ca = match &r.tls_ca_file {
                    Some(path) => Some(std::fs::read(path).map_err(|e| RedisUnavailable {
                        target: path.display().to_string(),
                        reason: format!("redis.tls_ca_file cannot be read ({e})"),
                    })?),
                    None => None,
                };
                let (client, prefix) = if r.cluster {
                    (
                        RedisClient::cluster(&r.nodes, timeout, ca.as_deref())?,
                        cluster_prefix(&r.key_prefix),
                    )
                } else {
                    (
                        RedisClient::single(&r.url, timeout, ca.as_deref())?,
                        r.key_prefix.clone(),
                    )
                };
                Ok(Self::Redis(RedisDenylist::new(client, &prefix, lifetimes)))
            }
        }
    }

    /// `memory` or `redis`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Memory(_) => "memory",
            Self::Redis(_) => "redis",
        }
    }

    /// Whether other processes (the CLI, other replicas) share this denylist.
    pub fn is_shared(&self) -> bool {
        matches!(self, Self::Redis(_))
    }

    /// The Redis client and key prefix, when the denylist is in Redis (the feed's stream
    /// lives next to it, in the same hash slot).
    pub fn redis_parts(&self) -> Option<(&RedisClient, &str)> {
        match self {
            Self::Memory(_) => None,
            Self::Redis(r) => Some((r.client(), r.prefix())),
        }
    }

    /// Readiness: `None` when nothing external is configured.
    pub async fn check(&self) -> Option<Result<(), RedisUnavailable>> {
        match self {
            Self::Memory(_) => None,
            Self::Redis(r) => Some(r.ping().await),
        }
    }
}

impl Denylist for DenylistStore {
    async fn revoke(
        &self,
        revocation: &Revocation,
        now: UnixTime,
    ) -> Result<u64, RedisUnavailable> {
        match self {
            Self::Memory(m) => m.revoke(revocation, now).await,
            Self::Redis(r) => r.revoke(revocation, now).await,
        }
    }

    async fn is_session_revoked(&self, sid: &str, now: UnixTime) -> Result<bool, RedisUnavailable> {
        match self {
            Self::Memory(m) => m.is_session_revoked(sid, now).await,
            Self::Redis(r) => r.is_session_revoked(sid, now).await,
        }
    }

    async fn check_exchange(
        &self,
        sid: Option<&str>,
        reused: Option<ReusedToken<'_>>,
        now: UnixTime,
    ) -> Result<ExchangeCheck, RedisUnavailable> {
        match self {
            Self::Memory(m) => m.check_exchange(sid, reused, now).await,
            Self::Redis(r) => r.check_exchange(sid, reused, now).await,
        }
    }

    async fn is_token_revoked(
        &self,
        token: TokenFacts<'_>,
        now: UnixTime,
    ) -> Result<bool, RedisUnavailable> {
        match self {
            Self::Memory(m) => m.is_token_revoked(token, now).await,
            Self::Redis(r) => r.is_token_revoked(token, now).await,
        }
    }
}

/// In a cluster every denylist key carries one hash tag, so the keys one check reads
/// (jti, sid, sub) sit in one slot and are read in one round trip.
fn cluster_prefix(prefix: &str) -> String {
    if prefix.contains('{') {
        prefix.to_owned()
    } else {
        format!("{{{prefix}}}")
    }
}

/// Redis keys (the memory backend keeps one map per kind instead).
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    pub(crate) fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    pub(crate) fn jti(&self, jti: &str) -> String {
        format!("{}jti:{jti}", self.prefix)
    }

    pub(crate) fn sid(&self, sid: &str) -> String {
        format!("{}sid:{sid}", self.prefix)
    }

    pub(crate) fn sub(&self, sub: &str) -> String {
        format!("{}sub:{sub}", self.prefix)
    }

    pub(crate) fn of(&self, revocation: &Revocation) -> String {
        match revocation {
            Revocation::Jti { jti, .. } => self.jti(jti),
            Revocation::Session { sid } => self.sid(sid),
            Revocation::Subject { sub, .. } => self.sub(sub),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_live_exactly_as_long_as_what_they_cover() {
        let l = Lifetimes {
            session_seconds: 86_400,
            subject_seconds: 3_605,
        };
        let jti = |expires_at| Revocation::Jti {
            jti: "j".into(),
            expires_at,
        };
        assert_eq!(l.ttl(&jti(1_600), 1_000), Some(600));
        assert_eq!(
            l.ttl(&jti(1_000), 1_000),
            None,
            "already expired: nothing to store"
        );
        assert_eq!(
            l.ttl(&Revocation::Session { sid: "s".into() }, 0),
            Some(86_400)
        );
        let sub = Revocation::Subject {
            sub: "u".into(),
            issued_up_to: 5,
        };
        assert_eq!(l.ttl(&sub, 0), Some(3_605));
    }

    #[test]
    fn cluster_keys_share_one_hash_tag() {
        assert_eq!(cluster_prefix("tessera:"), "{tessera:}");
        assert_eq!(cluster_prefix("{t}:"), "{t}:");
        let keys = Keys::new(&cluster_prefix("tessera:"));
        assert!(keys.jti("a").starts_with("{tessera:}"));
        assert!(keys.sub("b").starts_with("{tessera:}"));
    }
}
