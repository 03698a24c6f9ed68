//! The embedded denylist: a map per kind of entry with per-entry expiry, for a single
//! instance.
//!
//! Expired entries are ignored on read and swept on write once the maps have grown, so
//! memory stays bounded by what is live. Lookups borrow the id (no key is built), and one
//! check takes the lock once.

use std::collections::HashMap;
use std::sync::RwLock;

use super::{Denylist, ExchangeCheck, Lifetimes, ReusedToken, Revocation, TokenFacts};
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
    lifetimes: Lifetimes,
    entries: RwLock<Maps>,
}

type Map = HashMap<String, Entry>;

#[derive(Debug, Default)]
struct Maps {
    jti: Map,
    sid: Map,
    sub: Map,
    sweep_at_len: usize,
}

impl Maps {
    fn len(&self) -> usize {
        self.jti.len() + self.sid.len() + self.sub.len()
    }

    fn live(map: &Map, id: &str, now: UnixTime) -> Option<UnixTime> {
        map.get(id).filter(|e| e.expires_at > now).map(|e| e.value)
    }

    fn session_revoked(&self, sid: Option<&str>, now: UnixTime) -> bool {
        sid.is_some_and(|sid| Self::live(&self.sid, sid, now).is_some())
    }

    fn token_revoked(&self, jti: &str, sub: &str, issued_at: UnixTime, now: UnixTime) -> bool {
        Self::live(&self.jti, jti, now).is_some()
            || Self::live(&self.sub, sub, now).is_some_and(|watermark| issued_at <= watermark)
    }
}

impl MemoryDenylist {
    pub fn new(lifetimes: Lifetimes) -> Self {
        Self {
            lifetimes,
            entries: RwLock::new(Maps {
                sweep_at_len: 1024,
                ..Maps::default()
            }),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Maps> {
        self.entries.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Live entries (for tests and diagnostics).
    pub fn len(&self, now: UnixTime) -> usize {
        let maps = self.read();
        [&maps.jti, &maps.sid, &maps.sub]
            .iter()
            .map(|m| m.values().filter(|e| e.expires_at > now).count())
            .sum()
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
        let mut guard = self.entries.write().unwrap_or_else(|p| p.into_inner());
        let maps = &mut *guard;
        let map = match revocation {
            Revocation::Jti { .. } => &mut maps.jti,
            Revocation::Session { .. } => &mut maps.sid,
            Revocation::Subject { .. } => &mut maps.sub,
        };
        let entry = map.entry(revocation.id().to_owned()).or_insert(Entry {
            value,
            expires_at: 0,
        });
        entry.value = entry.value.max(value);
        entry.expires_at = now + ttl as i64;
        if maps.len() >= maps.sweep_at_len {
            for map in [&mut maps.jti, &mut maps.sid, &mut maps.sub] {
                map.retain(|_, e| e.expires_at > now);
            }
            maps.sweep_at_len = (maps.len() * 2).max(1024);
        }
        Ok(ttl)
    }

    async fn is_session_revoked(&self, sid: &str, now: UnixTime) -> Result<bool, RedisUnavailable> {
        Ok(self.read().session_revoked(Some(sid), now))
    }

    async fn check_exchange(
        &self,
        sid: Option<&str>,
        reused: Option<ReusedToken<'_>>,
        now: UnixTime,
    ) -> Result<ExchangeCheck, RedisUnavailable> {
        let maps = self.read();
        let session_revoked = maps.session_revoked(sid, now);
        let token_revoked = reused
            .is_some_and(|t| session_revoked || maps.token_revoked(t.jti, t.sub, t.issued_at, now));
        Ok(ExchangeCheck {
            session_revoked,
            token_revoked,
        })
    }

    async fn is_token_revoked(
        &self,
        t: TokenFacts<'_>,
        now: UnixTime,
    ) -> Result<bool, RedisUnavailable> {
        let maps = self.read();
        Ok(maps.session_revoked(t.sid, now) || maps.token_revoked(t.jti, t.sub, t.issued_at, now))
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

    #[tokio::test]
    async fn the_exchange_check_covers_session_jti_and_watermark_in_one_lookup() {
        let d = denylist();
        let reused = |jti, issued_at| ReusedToken {
            jti,
            sub: "u",
            issued_at,
        };
        let clear = d
            .check_exchange(Some("s1"), Some(reused("j1", 990)), 1_000)
            .await
            .expect("check");
        assert_eq!(clear, ExchangeCheck::default());
        d.revoke(
            &Revocation::Jti {
                jti: "j1".into(),
                expires_at: 1_600,
            },
            1_000,
        )
        .await
        .expect("revoke");
        let check = d
            .check_exchange(Some("s1"), Some(reused("j1", 990)), 1_000)
            .await
            .expect("check");
        assert!(check.token_revoked && !check.session_revoked);
        d.revoke(
            &Revocation::Subject {
                sub: "u".into(),
                issued_up_to: 995,
            },
            1_000,
        )
        .await
        .expect("revoke");
        let by_watermark = d
            .check_exchange(None, Some(reused("j2", 995)), 1_000)
            .await
            .expect("check");
        assert!(by_watermark.token_revoked);
        let later = d
            .check_exchange(None, Some(reused("j3", 996)), 1_000)
            .await
            .expect("check");
        assert!(!later.token_revoked, "issued after the watermark");
        d.revoke(&Revocation::Session { sid: "s1".into() }, 1_000)
            .await
            .expect("revoke");
        let check = d
            .check_exchange(Some("s1"), Some(reused("j3", 996)), 1_000)
            .await
            .expect("check");
        assert!(check.session_revoked && check.token_revoked);
        let check = d
            .check_exchange(Some("s1"), None, 1_000)
            .await
            .expect("check");
        assert!(check.session_revoked && !check.token_revoked);
    }
}
