//! The `http` backend: asks a legacy OAuth2 server about each session token, by RFC 7662
//! introspection or OIDC userinfo.
//!
//! Invariants: a token is cached only under its SHA-256; N concurrent exchanges of one
//! token make one upstream call (single-flight); at most `max_concurrency` calls are in
//! flight; an upstream that is down, slow, failing or refusing our own credentials is
//! `Unavailable` (503), never `Rejected` (invalid_grant).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::{OnceCell, Semaphore};

use super::claims::ClaimMap;
use super::{Principal, SessionError, sid_of_canonical};
use crate::config::{HttpSessionMode, HttpSessionSettings};

/// Upstream answers larger than this are refused (a userinfo document is a few KiB).
const MAX_BODY: usize = 256 * 1024;
/// Cache entries at most; expired ones are swept first, and past this nothing new is cached.
const MAX_CACHED: usize = 100_000;

type Key = [u8; 32];
type Outcome = Result<Arc<Principal>, SessionError>;

#[derive(Debug)]
struct Cached {
    principal: Option<Arc<Principal>>,
    until: Instant,
}

#[derive(Debug)]
pub struct HttpSessions {
    mode: HttpSessionMode,
    url: String,
    credentials: Option<(String, String)>,
    http: reqwest::Client,
    timeout: Duration,
    positive_ttl: Duration,
    negative_ttl: Duration,
    claims: ClaimMap,
    cache: Mutex<HashMap<Key, Cached>>,
    in_flight: Mutex<HashMap<Key, Arc<OnceCell<Outcome>>>>,
    permits: Semaphore,
}

impl HttpSessions {
    pub fn new(settings: &HttpSessionSettings, claims: ClaimMap) -> anyhow::Result<Self> {
        let secret = match &settings.client_secret_file {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|e| {
                    anyhow::anyhow!(
                        "sessions.http.client_secret_file: cannot read {}: {e}",
                        path.display()
                    )
                })?
                .trim_end()
                .to_owned(),
            None => settings.client_secret.clone(),
        };
        let timeout = Duration::from_millis(settings.timeout_ms);
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tessera/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let positive_ttl = Duration::from_secs(settings.cache_seconds);
        Ok(Self {
            mode: settings.mode,
            url: settings.url.clone(),
            credentials: (settings.mode == HttpSessionMode::Introspection)
                .then(|| (settings.client_id.clone(), secret)),
            http,
            timeout,
            positive_ttl,
            negative_ttl: Duration::from_secs(settings.negative_cache_seconds).min(positive_ttl),
            claims,
            cache: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(HashMap::new()),
            permits: Semaphore::new(settings.max_concurrency),
        })
    }

    pub async fn resolve(&self, token: &str) -> Outcome {
        let key: Key = Sha256::digest(token.as_bytes()).into();
        if let Some(hit) = self.cached(&key) {
            return hit;
        }
        let flight = lock(&self.in_flight).entry(key).or_default().clone();
        let outcome = flight.get_or_init(|| self.fetch(token, key)).await.clone();
        let mut in_flight = lock(&self.in_flight);
        if in_flight.get(&key).is_some_and(|f| Arc::ptr_eq(f, &flight)) {
            in_flight.remove(&key);
        }
        outcome
    }

    fn cached(&self, key: &Key) -> Option<Outcome> {
        let cache = lock(&self.cache);
        let entry = cache.get(key).filter(|e| e.until > Instant::now())?;
        Some(entry.principal.clone().ok_or(SessionError::Rejected))
    }

    async fn fetch(&self, token: &str, key: Key) -> Outcome {
        let outcome = self.ask_upstream(token).await;
        let ttl = match &outcome {
            Ok(_) => self.positive_ttl,
            Err(SessionError::Rejected) => self.negative_ttl,
            Err(SessionError::Unavailable(_)) => Duration::ZERO,
        };
        if !ttl.is_zero() {
            let now = Instant::now();
            let mut cache = lock(&self.cache);
            if cache.len() >= MAX_CACHED {
                cache.retain(|_, e| e.until > now);
            }
            if cache.len() < MAX_CACHED {
                cache.insert(
                    key,
                    Cached {
                        principal: outcome.as_ref().ok().cloned(),
                        until: now + ttl,
                    },
                );
            }
        }
        outcome
    }

    async fn ask_upstream(&self, token: &str) -> Outcome {
        let _permit = tokio::time::timeout(self.timeout, self.permits.acquire())
            .await
            .map_err(|_| unavailable("too many upstream calls in flight"))?
            .map_err(|_| unavailable("shutting down"))?;
        let request = match (&self.mode, &self.credentials) {
            (HttpSessionMode::Introspection, Some((id, secret))) => self
                .http
                .post(&self.url)
                .basic_auth(id, Some(secret))
                .form(&[("token", token)]),
            _ => self.http.get(&self.url).bearer_auth(token),
        };
        let response = request
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| unavailable(describe(&e)))?;
        let status = response.status();
        match (self.mode, status.as_u16()) {
            (_, 200) => {}
            (HttpSessionMode::Userinfo, 401 | 403) => return Err(SessionError::Rejected),
            (HttpSessionMode::Introspection, 401 | 403) => {
                tracing::error!(%status, "the legacy server refuses Tessera's own credentials (sessions.http.client_id / client_secret)");
                return Err(unavailable("upstream refused our credentials"));
            }
            (_, code) => return Err(unavailable(format!("upstream answered {code}"))),
        }
        let body = read_limited(response).await?;
        let document: Value = serde_json::from_slice(&body)
            .map_err(|_| unavailable("upstream answer is not JSON"))?;
        if self.mode == HttpSessionMode::Introspection
            && document.get("active").and_then(Value::as_bool) != Some(true)
        {
            return Err(SessionError::Rejected);
        }
        Ok(Arc::new(
            self.claims.principal(&document, sid_of_canonical(token))?,
        ))
    }

    /// Readiness: the upstream answers HTTP at all (any status below 500).
    pub async fn check(&self) -> Result<(), String> {
        match self.http.get(&self.url).send().await {
            Ok(r) if r.status().as_u16() < 500 => Ok(()),
            Ok(r) => Err(format!("upstream answered {}", r.status().as_u16())),
            Err(e) => Err(describe(&e)),
        }
    }
}

fn unavailable(reason: impl Into<String>) -> SessionError {
    SessionError::Unavailable(reason.into())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A reason without the URL's query or credentials.
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection refused".into()
    } else {
        "request failed".into()
    }
}

async fn read_limited(mut response: reqwest::Response) -> Result<Vec<u8>, SessionError> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| unavailable(describe(&e)))?
    {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(unavailable("upstream answer too large"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
