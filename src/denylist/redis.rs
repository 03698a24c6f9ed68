//! The shared denylist in Redis: `SET key value EX ttl` per entry, so Redis expires them.
//!
//! Keys: `<prefix>jti:<jti>`, `<prefix>sid:<sid>`, `<prefix>sub:<user id>` (a watermark);
//! in cluster mode the prefix is a hash tag, so one check is one slot and one round trip.

use super::{Denylist, ExchangeCheck, Keys, Lifetimes, ReusedToken, Revocation, TokenFacts};
use crate::infra::clock::UnixTime;
use crate::infra::redis::{RedisClient, RedisUnavailable};

/// Raises a subject's watermark (never lowers it) and renews its expiry, atomically.
const RAISE_WATERMARK: &str = r"
local current = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
local proposed = tonumber(ARGV[1])
if proposed > current then current = proposed end
redis.call('SET', KEYS[1], current, 'EX', ARGV[2])
return current
";

#[derive(Debug)]
pub struct RedisDenylist {
    client: RedisClient,
    keys: Keys,
    lifetimes: Lifetimes,
    raise_watermark: redis::Script,
}

impl RedisDenylist {
    pub fn new(client: RedisClient, prefix: &str, lifetimes: Lifetimes) -> Self {
        Self {
            client,
            keys: Keys::new(prefix),
            lifetimes,
            raise_watermark: redis::Script::new(RAISE_WATERMARK),
        }
    }

    pub async fn ping(&self) -> Result<(), RedisUnavailable> {
        self.client.ping().await
    }

    pub fn client(&self) -> &RedisClient {
        &self.client
    }

    /// The key prefix (hash-tagged in a cluster).
    pub fn prefix(&self) -> &str {
        self.keys.prefix()
    }

    /// One `MGET`: whether `t` is revoked by its jti or its subject's watermark, and
    /// whether session `sid` (if any) is revoked.
    async fn token_and_session(
        &self,
        t: ReusedToken<'_>,
        sid: Option<&str>,
    ) -> Result<(bool, bool), RedisUnavailable> {
        let mut cmd = redis::cmd("MGET");
        cmd.arg(self.keys.jti(t.jti)).arg(self.keys.sub(t.sub));
        if let Some(sid) = sid {
            cmd.arg(self.keys.sid(sid));
        }
        let values: Vec<Option<i64>> = self.client.query(cmd).await?;
        let by_jti = values.first().is_some_and(Option::is_some);
        let by_sub = values
            .get(1)
            .copied()
            .flatten()
            .is_some_and(|watermark| t.issued_at <= watermark);
        let by_sid = values.get(2).is_some_and(Option::is_some);
        Ok((by_jti || by_sub, by_sid))
    }

    /// The storage key of a revocation (for tests and diagnostics).
    pub fn key_of(&self, revocation: &Revocation) -> String {
        self.keys.of(revocation)
    }
}

impl Denylist for RedisDenylist {
    async fn revoke(
        &self,
        revocation: &Revocation,
        now: UnixTime,
    ) -> Result<u64, RedisUnavailable> {
        let Some(ttl) = self.lifetimes.ttl(revocation, now) else {
            return Ok(0);
        };
        let key = self.keys.of(revocation);
        match revocation {
            Revocation::Subject { issued_up_to, .. } => {
                let (watermark, ttl_arg) = (issued_up_to.to_string(), ttl.to_string());
                let _: i64 = self
                    .client
                    .script(&self.raise_watermark, &[&key], &[&watermark, &ttl_arg])
                    .await?;
            }
            Revocation::Jti { .. } | Revocation::Session { .. } => {
                let mut cmd = redis::cmd("SET");
                cmd.arg(&key).arg(now).arg("EX").arg(ttl);
                let _: () = self.client.query(cmd).await?;
            }
        }
        Ok(ttl)
    }

    async fn is_session_revoked(
        &self,
        sid: &str,
        _now: UnixTime,
    ) -> Result<bool, RedisUnavailable> {
        let mut cmd = redis::cmd("EXISTS");
        cmd.arg(self.keys.sid(sid));
        let found: u32 = self.client.query(cmd).await?;
        Ok(found > 0)
    }

    /// `EXISTS sid` when there is nothing to reuse; else one `MGET` of the token's jti and
    /// subject watermark (and the sid, when there is a session).
    async fn check_exchange(
        &self,
        sid: Option<&str>,
        reused: Option<ReusedToken<'_>>,
        now: UnixTime,
    ) -> Result<ExchangeCheck, RedisUnavailable> {
        let Some(t) = reused else {
            let session_revoked = match sid {
                Some(sid) => self.is_session_revoked(sid, now).await?,
                None => false,
            };
            return Ok(ExchangeCheck {
                session_revoked,
                token_revoked: false,
            });
        };
        let (by_token, session_revoked) = self.token_and_session(t, sid).await?;
        Ok(ExchangeCheck {
            session_revoked,
            token_revoked: by_token || session_revoked,
        })
    }

    async fn is_token_revoked(
        &self,
        t: TokenFacts<'_>,
        _now: UnixTime,
    ) -> Result<bool, RedisUnavailable> {
        let token = ReusedToken {
            jti: t.jti,
            sub: t.sub,
            issued_at: t.issued_at,
        };
        let (by_token, by_sid) = self.token_and_session(token, t.sid).await?;
        Ok(by_token || by_sid)
    }
}
