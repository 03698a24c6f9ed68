//! The JWKS cache: honours `Cache-Control: max-age` and `ETag`, refetches once on an
//! unknown kid (single-flight, cooldown), and keeps serving the last good set when the
//! issuer cannot be reached.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::JwkSet;

use crate::VerifyError;

/// Bounds on a served `max-age`, so a bad header neither pins keys forever nor hammers.
const MIN_MAX_AGE: Duration = Duration::from_secs(1);
const MAX_MAX_AGE: Duration = Duration::from_secs(3600);
/// After a failed fetch, the stale set is used this long before trying again.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5);

#[derive(Default)]
struct State {
    keys: HashMap<String, DecodingKey>,
    etag: Option<String>,
    fresh_until: Option<Instant>,
    last_fetch: Option<Instant>,
}

pub(crate) struct JwksCache {
    http: reqwest::Client,
    url: String,
    default_max_age: Duration,
    cooldown: Duration,
    state: RwLock<State>,
    fetching: tokio::sync::Mutex<()>,
}

impl JwksCache {
    pub(crate) fn new(
        http: reqwest::Client,
        url: String,
        default_max_age: Duration,
        cooldown: Duration,
    ) -> Self {
        Self {
            http,
            url,
            default_max_age,
            cooldown,
            state: RwLock::new(State::default()),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn lookup(&self, kid: &str) -> (Option<DecodingKey>, bool) {
        let state = self.read();
        let fresh = state.fresh_until.is_some_and(|t| Instant::now() < t);
        (state.keys.get(kid).cloned(), fresh)
    }

    /// The key for `kid`, fetching the set when it is stale or does not have the kid.
    pub(crate) async fn key(&self, kid: &str) -> Result<DecodingKey, VerifyError> {
        match self.lookup(kid) {
            (Some(key), true) => return Ok(key),
            (Some(key), false) => {
                // Stale but known: refresh, and keep serving the old set if that fails.
                let _ = self.refresh(false).await;
                return Ok(self.lookup(kid).0.unwrap_or(key));
            }
            (None, fresh) => {
                // Unknown kid: one refetch, unless a fetch happened within the cooldown.
                self.refresh(fresh).await?;
            }
        }
        self.lookup(kid).0.ok_or(VerifyError::UnknownKey)
    }

    /// Fetches the set (single-flight). `for_unknown_kid` fetches are rate-limited by the
    /// cooldown; stale refreshes by their own schedule.
    async fn refresh(&self, for_unknown_kid: bool) -> Result<(), VerifyError> {
        let started = Instant::now();
        let _guard = self.fetching.lock().await;
        {
            let state = self.read();
            if state.last_fetch.is_some_and(|t| t >= started) {
                return Ok(()); // another caller fetched while we waited
            }
            let recent = state
                .last_fetch
                .is_some_and(|t| t.elapsed() < self.cooldown);
            if for_unknown_kid && recent {
                return Ok(());
            }
            if !for_unknown_kid && state.fresh_until.is_some_and(|t| Instant::now() < t) {
                return Ok(());
            }
        }
        let etag = self.read().etag.clone();
        let mut request = self.http.get(&self.url);
        if let Some(etag) = &etag {
            request = request.header(reqwest::header::IF_NONE_MATCH, etag);
        }
        let response = match request.send().await {
            Ok(r) if r.status().is_success() || r.status() == reqwest::StatusCode::NOT_MODIFIED => {
                r
            }
            Ok(r) => return Err(self.failed(format!("HTTP {}", r.status()))),
            Err(e) => return Err(self.failed(e.to_string())),
        };
        let max_age = max_age(response.headers())
            .unwrap_or(self.default_max_age)
            .clamp(MIN_MAX_AGE, MAX_MAX_AGE);
        if response.status() == reqwest::StatusCode::NOT_MODIFIED {
            self.update(|s| {
                s.last_fetch = Some(Instant::now());
                s.fresh_until = Some(Instant::now() + max_age);
            });
            return Ok(());
        }
        let new_etag = response
            .headers()
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let set: JwkSet = match response.json().await {
            Ok(set) => set,
            Err(e) => return Err(self.failed(e.to_string())),
        };
        let keys = set
            .keys
            .iter()
            .filter_map(|jwk| Some((jwk.common.key_id.clone()?, DecodingKey::from_jwk(jwk).ok()?)))
            .collect();
        self.update(|s| {
            s.keys = keys;
            s.etag = new_etag;
            s.last_fetch = Some(Instant::now());
            s.fresh_until = Some(Instant::now() + max_age);
        });
        Ok(())
    }

    fn update(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.state.write().unwrap_or_else(|p| p.into_inner()));
    }

    fn failed(&self, reason: String) -> VerifyError {
        tracing::warn!(url = %self.url, %reason, "JWKS fetch failed; serving the last good key set");
        self.update(|s| {
            s.last_fetch = Some(Instant::now());
            s.fresh_until = Some(Instant::now() + RETRY_AFTER_FAILURE);
        });
        VerifyError::KeySetUnavailable(reason)
    }
}

fn max_age(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::CACHE_CONTROL)?.to_str().ok()?;
    value
        .split(',')
        .find_map(|d| d.trim().strip_prefix("max-age="))
        .and_then(|n| n.trim().parse().ok())
        .map(Duration::from_secs)
}
