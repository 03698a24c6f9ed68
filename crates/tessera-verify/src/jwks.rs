//! The JWKS cache: honours `Cache-Control: max-age` and `ETag`, keeps serving the last
//! good key set when the issuer cannot be reached, and refetches on an unknown kid.
//!
//! Invariants:
//! * at most one fetch is in flight; every caller that needs one joins it (single-flight);
//! * a known kid never waits for the network: a stale set is refreshed by a background
//!   task while the request goes on with the stale key;
//! * only a request that cannot be answered without the network waits for a fetch (the
//!   first one, or an unknown kid), and unknown kids start at most one fetch per cooldown,
//!   so a flood of forged kids cannot hammer the issuer;
//! * a fetch runs in its own task, so a request that gives up does not stall it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use futures_util::future::{BoxFuture, FutureExt as _, Shared};
use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{Jwk, KeyAlgorithm, PublicKeyUse};

use crate::{FetchError, VerifyError};

/// Bounds on a served `max-age`, so a bad header neither pins keys forever nor hammers.
const MIN_MAX_AGE: Duration = Duration::from_secs(1);
const MAX_MAX_AGE: Duration = Duration::from_secs(3600);
/// After a failed fetch, the stale set is used this long before trying again.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5);

type Keys = Arc<HashMap<String, Arc<DecodingKey>>>;
type Flight = Shared<BoxFuture<'static, Result<(), FetchError>>>;

#[derive(Default)]
struct State {
    /// `None` until the first successful fetch.
    keys: Option<Keys>,
    etag: Option<String>,
    /// When a (background) refresh is due: `max-age` after a success, a short retry
    /// delay after a failure.
    refresh_at: Option<Instant>,
    /// When the last fetch started (the unknown-kid cooldown counts from it).
    last_attempt: Option<Instant>,
    last_error: Option<FetchError>,
}

/// The fetch in flight, numbered so that its task clears only its own slot.
#[derive(Default)]
struct InFlight {
    next_id: u64,
    current: Option<(u64, Flight)>,
}

struct Source {
    http: reqwest::Client,
    url: String,
    default_max_age: Duration,
    cooldown: Duration,
    state: RwLock<State>,
    flight: Mutex<InFlight>,
}

/// Why a fetch is wanted.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Need {
    /// The set is stale but has the kid: refresh in the background, never wait.
    Refresh,
    /// No set yet, or the kid is unknown: wait for a fetch, within the cooldown.
    Keys,
}

pub(crate) struct JwksCache {
    source: Arc<Source>,
}

impl JwksCache {
    pub(crate) fn new(
        http: reqwest::Client,
        url: String,
        default_max_age: Duration,
        cooldown: Duration,
    ) -> Self {
        Self {
            source: Arc::new(Source {
                http,
                url,
                default_max_age,
                cooldown,
                state: RwLock::new(State::default()),
                flight: Mutex::new(InFlight::default()),
            }),
        }
    }

    /// The key for `kid`: from the cache when the set has it (refreshing a stale set in
    /// the background), else after one (joined or new) fetch.
    pub(crate) async fn key(&self, kid: &str) -> Result<Arc<DecodingKey>, VerifyError> {
        let (key, due) = {
            let state = self.source.read();
            let key = state.keys.as_ref().and_then(|keys| keys.get(kid).cloned());
            (key, state.refresh_at.is_none_or(|t| Instant::now() >= t))
        };
        if let Some(key) = key {
            if due {
                self.source.start(Need::Refresh);
            }
            return Ok(key);
        }
        if let Some(flight) = self.source.start(Need::Keys) {
            flight.await.map_err(VerifyError::KeySetUnavailable)?;
        }
        let state = self.source.read();
        match &state.keys {
            Some(keys) => keys.get(kid).cloned().ok_or(VerifyError::UnknownKey),
            None => Err(VerifyError::KeySetUnavailable(
                state.last_error.clone().unwrap_or_else(|| {
                    FetchError::new(
                        format!("GET {}", self.source.url),
                        "not fetched: no tokio runtime",
                    )
                }),
            )),
        }
    }
}

impl Source {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn update(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.state.write().unwrap_or_else(|p| p.into_inner()));
    }

    /// The fetch to wait for, if `need` warrants one: the one in flight, or a new one
    /// (spawned on the current runtime). `None`: nothing to wait for.
    fn start(self: &Arc<Self>, need: Need) -> Option<Flight> {
        let mut slot = self.flight.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, flight)) = &slot.current {
            return (need == Need::Keys).then(|| flight.clone());
        }
        let now = Instant::now();
        {
            let state = self.read();
            let due = state.refresh_at.is_none_or(|t| now >= t);
            let cooled = state
                .last_attempt
                .is_none_or(|t| now.duration_since(t) >= self.cooldown);
            if !(due || need == Need::Keys && cooled) {
                return None;
            }
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // No runtime to run it on (reqwest needs one anyway): nothing to wait for.
            return None;
        };
        self.update(|s| s.last_attempt = Some(now));
        let id = slot.next_id;
        slot.next_id += 1;
        let source = self.clone();
        let flight = async move { source.fetch().await }.boxed().shared();
        slot.current = Some((id, flight.clone()));
        drop(slot); // ClearSlot takes this lock, even if the task is dropped at once
        let clear = ClearSlot {
            source: self.clone(),
            id,
        };
        let task = flight.clone();
        runtime.spawn(async move {
            let _clear = clear;
            let _ = task.await;
        });
        Some(flight)
    }

    /// One conditional GET of the key set; the state is updated either way.
    async fn fetch(&self) -> Result<(), FetchError> {
        let request = format!("GET {}", self.url);
        let etag = self.read().etag.clone();
        let mut get = self.http.get(&self.url);
        if let Some(etag) = &etag {
            get = get.header(reqwest::header::IF_NONE_MATCH, etag);
        }
        let response = match get.send().await {
            Ok(r) if r.status().is_success() || r.status() == reqwest::StatusCode::NOT_MODIFIED => {
                r
            }
            Ok(r) => return Err(self.failed(FetchError::status(request, r.status().as_u16()))),
            Err(e) => return Err(self.failed(FetchError::transport(request, e))),
        };
        let max_age = max_age(response.headers())
            .unwrap_or(self.default_max_age)
            .clamp(MIN_MAX_AGE, MAX_MAX_AGE);
        let not_modified = response.status() == reqwest::StatusCode::NOT_MODIFIED;
        let new_etag = response
            .headers()
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let keys = if not_modified {
            None
        } else {
            let body = match response.bytes().await {
                Ok(body) => body,
                Err(e) => return Err(self.failed(FetchError::transport(request, e))),
            };
            match parse(&body) {
                Ok(keys) => Some(Arc::new(keys)),
                Err(e) => return Err(self.failed(FetchError::body(request, e))),
            }
        };
        self.update(|s| {
            if let Some(keys) = keys {
                s.keys = Some(keys);
                s.etag = new_etag;
            }
            s.refresh_at = Some(Instant::now() + max_age);
            s.last_error = None;
        });
        Ok(())
    }

    fn failed(&self, error: FetchError) -> FetchError {
        tracing::warn!(error = %error, "JWKS fetch failed; serving the last good key set");
        self.update(|s| {
            s.refresh_at = Some(Instant::now() + RETRY_AFTER_FAILURE);
            s.last_error = Some(error.clone());
        });
        error
    }
}

/// Empties the in-flight slot when its fetch task ends — also when the task is dropped
/// with its runtime (polled or not), so a dead fetch never blocks the next one.
struct ClearSlot {
    source: Arc<Source>,
    id: u64,
}

impl Drop for ClearSlot {
    fn drop(&mut self) {
        let mut slot = self.source.flight.lock().unwrap_or_else(|p| p.into_inner());
        if slot.current.as_ref().is_some_and(|(id, _)| *id == self.id) {
            slot.current = None;
        }
    }
}

/// The usable keys of a JWKS: RSA signature keys with a `kid`. A key the library cannot
/// read is skipped rather than failing the whole set.
fn parse(body: &[u8]) -> Result<HashMap<String, Arc<DecodingKey>>, serde_json::Error> {
    #[derive(serde::Deserialize)]
    struct Set {
        keys: Vec<serde_json::Value>,
    }
    let set: Set = serde_json::from_slice(body)?;
    Ok(set
        .keys
        .into_iter()
        .filter_map(|value| serde_json::from_value::<Jwk>(value).ok())
        .filter(|jwk| {
            jwk.common
                .public_key_use
                .as_ref()
                .is_none_or(|u| *u == PublicKeyUse::Signature)
                && jwk
                    .common
                    .key_algorithm
                    .is_none_or(|a| a == KeyAlgorithm::RS256)
                && matches!(
                    jwk.algorithm,
                    jsonwebtoken::jwk::AlgorithmParameters::RSA(_)
                )
        })
        .filter_map(|jwk| {
            Some((
                jwk.common.key_id.clone()?,
                Arc::new(DecodingKey::from_jwk(&jwk).ok()?),
            ))
        })
        .collect())
}

fn max_age(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::CACHE_CONTROL)?.to_str().ok()?;
    value
        .split(',')
        .find_map(|d| d.trim().strip_prefix("max-age="))
        .and_then(|n| n.trim().parse().ok())
        .map(Duration::from_secs)
}
