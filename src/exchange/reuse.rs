//! Token reuse (API.md, "Token reuse"): a young token whose claims other than
//! `iat`/`nbf`/`exp`/`jti` would be the same, signed by the key that is active now, is
//! handed out again instead of signing a new one.
//!
//! Two digests, so the exchange keeps its one denylist round trip and a revoked session
//! still never reaches its backend:
//! * the cache key, [`RequestKey::digest`], covers what the request alone decides (client,
//!   lifetime, subject token type, the session's `sid` hash, audience, granted scope,
//!   `ctx`): known before the session is resolved, so the candidate token's `jti` and
//!   subject ride along in the denylist lookup of the session;
//! * the entry's [`principal_digest`] covers what the session backend decides (`sub`,
//!   `roles`, mapped claims, `sid`): the candidate is handed out only when the session
//!   resolves to exactly those claims now (a role change or logout is a new token).
//!
//! Together they cover every claim of the token but `iat`, `nbf`, `exp` and `jti` (`iss`
//! and `act` follow from the issuer and the client). Neither holds the session token.
//! Invariants: a candidate is reused only while `age < fraction × lifetime` and its `kid`
//! is the active key's; memory is bounded by `token.reuse_max_entries`.

use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use crate::denylist::ReusedToken;
use crate::infra::clock::UnixTime;
use crate::sessions::SubjectTokenType;
use crate::tokens::RequestContext;

pub type Key = [u8; 32];

/// A token kept for reuse.
#[derive(Debug)]
pub struct Reusable {
    /// [`principal_digest`] of the claims the session backend gave it.
    pub principal: Key,
    pub jwt: Arc<str>,
    pub jti: Arc<str>,
    pub kid: Arc<str>,
    pub sub: Arc<str>,
    /// Real issuance time (`iat` + backdating).
    pub issued_at: UnixTime,
    pub exp: UnixTime,
}

impl Reusable {
    /// What the denylist must clear before this token is handed out again.
    pub fn facts(&self) -> ReusedToken<'_> {
        ReusedToken {
            jti: &self.jti,
            sub: &self.sub,
            issued_at: self.issued_at,
        }
    }
}

/// What the request alone decides about the token's claims.
#[derive(Debug, Clone, Copy)]
pub struct RequestKey<'a> {
    pub client_id: &'a str,
    pub ttl_seconds: u64,
    pub token_type: SubjectTokenType,
    /// The session's `sid` hash; `None` = anonymous.
    pub sid: Option<&'a str>,
    pub audience: &'a str,
    /// The granted (normalized) scope.
    pub scope: Option<&'a str>,
    pub ctx: Option<&'a RequestContext>,
}

impl RequestKey<'_> {
    pub fn digest(&self) -> Key {
        let mut h = Hasher::new(b"tessera reuse request v1");
        h.text(self.client_id);
        h.bytes(&self.ttl_seconds.to_le_bytes());
        h.bytes(&[self.token_type as u8]);
        h.optional(self.sid);
        h.text(self.audience);
        h.optional(self.scope);
        match self.ctx {
            None => h.bytes(&[0]),
            Some(c) => {
                h.bytes(&[1]);
                h.text(&c.method);
                h.text(&c.path);
            }
        }
        h.finish()
    }
}

/// The digest of what the session backend decided: `sub`, `roles`, mapped claims, `sid`.
pub fn principal_digest(
    sub: &str,
    roles: &[String],
    claims: &Map<String, Value>,
    sid: Option<&str>,
) -> Key {
    let mut h = Hasher::new(b"tessera reuse principal v1");
    h.text(sub);
    h.bytes(&(roles.len() as u64).to_le_bytes());
    for role in roles {
        h.text(role);
    }
    h.object(claims);
    h.optional(sid);
    h.finish()
}

/// SHA-256 over length-prefixed, tagged fields: no two different inputs share an encoding,
/// and no JSON is built.
struct Hasher(Sha256);

impl Hasher {
    fn new(domain: &[u8]) -> Self {
        let mut h = Self(Sha256::new());
        h.bytes(domain);
        h
    }

    fn bytes(&mut self, b: &[u8]) {
        self.0.update(b);
    }

    fn text(&mut self, s: &str) {
        self.0.update((s.len() as u64).to_le_bytes());
        self.0.update(s.as_bytes());
    }

    fn optional(&mut self, s: Option<&str>) {
        match s {
            None => self.bytes(&[0]),
            Some(s) => {
                self.bytes(&[1]);
                self.text(s);
            }
        }
    }

    fn object(&mut self, map: &Map<String, Value>) {
        self.bytes(&(map.len() as u64).to_le_bytes());
        for (name, value) in map {
            self.text(name);
            self.value(value);
        }
    }

    fn value(&mut self, v: &Value) {
        match v {
            Value::Null => self.bytes(b"n"),
            Value::Bool(b) => self.bytes(if *b { b"t" } else { b"f" }),
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    self.bytes(b"i");
                    self.bytes(&i.to_le_bytes());
                } else if let Some(u) = n.as_u64() {
                    self.bytes(b"u");
                    self.bytes(&u.to_le_bytes());
                } else {
                    self.bytes(b"d");
                    self.bytes(&n.as_f64().unwrap_or(f64::NAN).to_bits().to_le_bytes());
                }
            }
            Value::String(s) => {
                self.bytes(b"s");
                self.text(s);
            }
            Value::Array(items) => {
                self.bytes(b"a");
                self.bytes(&(items.len() as u64).to_le_bytes());
                for item in items {
                    self.value(item);
                }
            }
            Value::Object(map) => {
                self.bytes(b"o");
                self.object(map);
            }
        }
    }

    fn finish(self) -> Key {
        self.0.finalize().into()
    }
}

/// The per-replica cache of young tokens and its counters.
pub struct Reuse {
    /// `None`: reuse is off (`token.reuse_fraction = 0`).
    cache: Option<Cache<Key, Arc<Reusable>>>,
    fraction: f64,
    hits: metrics::Counter,
    misses: metrics::Counter,
}

impl std::fmt::Debug for Reuse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reuse")
            .field("fraction", &self.fraction)
            .field("entries", &self.cache.as_ref().map(|c| c.entry_count()))
            .finish()
    }
}

impl Reuse {
    /// Reuse while `age < fraction × lifetime`, at most `max_entries` tokens; entries are
    /// dropped once even the longest lifetime (`max_ttl_seconds`) makes them too old.
    pub fn new(fraction: f64, max_entries: u64, max_ttl_seconds: u64) -> Self {
        let [hits, misses] = crate::infra::metrics::reuse_counters();
        let cache = (fraction > 0.0).then(|| {
            let useful = Duration::from_secs_f64(fraction * max_ttl_seconds as f64);
            Cache::builder()
                .max_capacity(max_entries)
                .time_to_live(useful + Duration::from_secs(1))
                .build()
        });
        Self {
            cache,
            fraction,
            hits,
            misses,
        }
    }

    /// No reuse: every exchange signs.
    pub fn off() -> Self {
        Self::new(0.0, 1, 1)
    }

    /// The cache key of a request; `None` when reuse is off.
    pub fn key(&self, request: &RequestKey<'_>) -> Option<Key> {
        self.cache.as_ref().map(|_| request.digest())
    }

    /// The token kept under `key`, if it may still be handed out at `now` while
    /// `active_kid` signs.
    pub fn candidate(&self, key: &Key, now: UnixTime, active_kid: &str) -> Option<Arc<Reusable>> {
        let entry = self.cache.as_ref()?.get(key)?;
        self.is_reusable(&entry, now, active_kid).then_some(entry)
    }

    /// Young enough (`age < fraction × lifetime`) and signed by the active key.
    pub fn is_reusable(&self, entry: &Reusable, now: UnixTime, active_kid: &str) -> bool {
        let age = now - entry.issued_at;
        let lifetime = entry.exp - entry.issued_at;
        age >= 0 && (age as f64) < self.fraction * lifetime as f64 && *entry.kid == *active_kid
    }

    /// Keeps a newly signed token for reuse.
    pub fn keep(&self, key: Key, entry: Reusable) {
        if let Some(cache) = &self.cache {
            cache.insert(key, Arc::new(entry));
        }
    }

    /// Never hands this key's token out again (it was revoked).
    pub fn forget(&self, key: &Key) {
        if let Some(cache) = &self.cache {
            cache.invalidate(key);
        }
    }

    pub fn record(&self, hit: bool) {
        if hit {
            self.hits.increment(1);
        } else {
            self.misses.increment(1);
        }
    }

    /// Tokens kept now (moka counts lazily: for tests and diagnostics).
    pub fn len(&self) -> u64 {
        self.cache.as_ref().map_or(0, |c| {
            c.run_pending_tasks();
            c.entry_count()
        })
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
