//! The embedded denylist: a map with per-entry expiry, for a single instance.
//!
//! Expired entries are ignored on read and swept on write once the map has grown, so
//! memory stays bounded by what is live.

use std::collections::HashMap;
use std::sync::RwLock;

use super::{Denylist, Keys, Lifetimes, Revocation, TokenFacts};
use crate::infra::clock::UnixTime;
use crate::infra::redis::RedisUnavailable;

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// Revocation time, or for a subject its watermark.
    value: UnixTime,
    expires_at: UnixTime,
}

#[derive(Debug)]
pub struct MemoryDenylist {
    keys: Keys,
    lifetimes: Lifetimes,
    entries: RwLock<Map>,
}

#[derive(Debug, Default)]
struct Map {
    entries: HashMap<String, Entry>,
    sweep_at_len: usize,
}

impl MemoryDenylist {
    pub fn new(lifetimes: Lifetimes) -> Self {
        Self {
            keys: Keys::new(""),
            lifetimes,
            entries: RwLock::new(Map {
                entries: HashMap::new(),
                sweep_at_len: 1024,
            }),
        }
    }

    fn get(&self, key: &str, now: UnixTime) -> Option<UnixTime> {
        let map = self.entries.read().unwrap_or_else(|p| p.into_inner());
        map.entries
            .get(key)
            .filter(|e| e.expires_at > now)
            .map(|e| e.value)
    }

    /// Live entries (for tests and diagnostics).
    pub fn len(&self, now: UnixTime) -> usize {
        let map = self.entries.read().unwrap_or_else(|p| p.into_inner());
        map.entries.values().filter(|e| e.expires_at > now).count()
    }

    pub fn is_empty(&self, now: UnixTime) -> bool {
        self.len(now) == 0
    }
}

impl Denylist for MemoryDenylist {
    async fn revoke(
        &self,
        revocation: &Revocation,
        now: UnixTime,
    ) -> Result<u64, RedisUnavailable> {
        let Some(ttl) = self.lifetimes.ttl(revocation, now) else {
            return Ok(0);
        };
        let value = match revocation {
            Revocation::Subject { issued_up_to, .. } => *issued_up_to,
            _ => now,
        };
        let key = self.keys.of(revocation);
        let mut map = self.entries.write().unwrap_or_else(|p| p.into_inner());
        let entry = map.entries.entry(key).or_insert(Entry {
            value,
            expires_at: 0,
        });
        entry.value = entry.value.max(value);
        entry.expires_at = now + ttl as i64;
        if map.entries.len() >= map.sweep_at_len {
            map.entries.retain(|_, e| e.expires_at > now);
            map.sweep_at_len = (map.entries.len() * 2).max(1024);
        }
        Ok(ttl)
    }

    async fn is_session_revoked(&self, sid: &str, now: UnixTime) -> Result<bool, RedisUnavailable> {
        Ok(self.get(&self.keys.sid(sid), now).is_some())
    }

    async fn is_token_revoked(
        &self,
        t: TokenFacts<'_>,
        now: UnixTime,
    ) -> Result<bool, RedisUnavailable> {
        let by_jti = self.get(&self.keys.jti(t.jti), now).is_some();
        let by_sid = t
            .sid
            .is_some_and(|sid| self.get(&self.keys.sid(sid), now).is_some());
        let by_sub = self
            .get(&self.keys.sub(t.sub), now)
            .is_some_and(|watermark| t.issued_at <= watermark);
        Ok(by_jti || by_sid || by_sub)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn denylist() -> MemoryDenylist {
        MemoryDenylist::new(Lifetimes {
            session_seconds: 100,
            subject_seconds: 50,
        })
    }

    fn token<'a>(
        jti: &'a str,
        sid: Option<&'a str>,
        sub: &'a str,
        issued_at: i64,
    ) -> TokenFacts<'a> {
        TokenFacts {
            jti,
            sid,
            sub,
            issued_at,
        }
    }

    #[tokio::test]
    async fn a_revoked_jti_is_dead_until_the_token_expires() {
        let d = denylist();
        let ttl = d
            .revoke(
                &Revocation::Jti {
                    jti: "j1".into(),
                    expires_at: 1_030,
                },
                1_000,
            )
            .await
            .expect("revoke");
        assert_eq!(ttl, 30);
        assert!(
            d.is_token_revoked(token("j1", None, "u", 990), 1_000)
                .await
                .expect("check")
        );
        assert!(
            !d.is_token_revoked(token("j2", None, "u", 990), 1_000)
                .await
                .expect("check")
        );
        assert!(d.is_empty(1_030), "gone once the token is expired");
    }

    #[tokio::test]
    async fn a_revoked_session_kills_its_tokens_and_its_exchanges() {
        let d = denylist();
        d.revoke(&Revocation::Session { sid: "s1".into() }, 1_000)
            .await
            .expect("revoke");
        assert!(d.is_session_revoked("s1", 1_000).await.expect("check"));
        assert!(
            d.is_token_revoked(token("j", Some("s1"), "u", 990), 1_000)
                .await
                .expect("check")
        );
        assert!(
            !d.is_session_revoked("s1", 1_100).await.expect("check"),
            "expires after session_ttl"
        );
    }

    #[tokio::test]
    async fn a_subject_watermark_kills_earlier_tokens_only() {
        let d = denylist();
        d.revoke(
            &Revocation::Subject {
                sub: "u".into(),
                issued_up_to: 1_000,
            },
            1_000,
        )
        .await
        .expect("revoke");
        assert!(
            d.is_token_revoked(token("a", None, "u", 1_000), 1_001)
                .await
                .expect("check")
        );
        assert!(
            !d.is_token_revoked(token("b", None, "u", 1_001), 1_001)
                .await
                .expect("check")
        );
        assert!(
            !d.is_token_revoked(token("c", None, "other", 900), 1_001)
                .await
                .expect("check")
        );
        // An older watermark never lowers a newer one.
        d.revoke(
            &Revocation::Subject {
                sub: "u".into(),
                issued_up_to: 900,
            },
            1_002,
        )
        .await
        .expect("revoke");
        assert!(
            d.is_token_revoked(token("a", None, "u", 1_000), 1_003)
                .await
                .expect("check")
        );
    }
}
