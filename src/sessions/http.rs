//! The `http` backend: asks a legacy OAuth2 server about each session token, by RFC 7662
//! introspection or OIDC userinfo.
//!
//! Invariants: a token is cached only under its SHA-256, in a cache bounded by entries
//! (accepted answers for `cache_seconds`, refusals for at most `negative_cache_seconds`,
//! failures never); N concurrent exchanges of one token make one upstream call
//! (single-flight, also with `cache_seconds = 0`); at most `max_concurrency` calls are in
//! flight; an upstream that is down, slow, failing or refusing our own credentials is
//! `Unavailable` (503), never `Rejected` (invalid_grant).

use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use moka::Expiry;
use moka::future::Cache;
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use super::claims::ClaimMap;
use super::{Principal, SessionError, sid_of_canonical};
use crate::config::{HttpSessionMode, HttpSessionSettings};

/// Upstream answers larger than this are refused (a userinfo document is a few KiB).
const MAX_BODY: usize = 256 * 1024;
/// Cache entries at most; past this the least useful entries are evicted.
const MAX_CACHED: u64 = 100_000;

type Key = [u8; 32];
type Outcome = Result<Arc<Principal>, SessionError>;
/// A cached answer: the user, or `None` for a refused token.
type Answer = Option<Arc<Principal>>;

/// Accepted answers live `cache_seconds`, refusals `negative_cache_seconds` (never longer).
struct AnswerExpiry {
    accepted: Duration,
    refused: Duration,
}

impl Expiry<Key, Answer> for AnswerExpiry {
    fn expire_after_create(&self, _: &Key, answer: &Answer, _: Instant) -> Option<Duration> {
        Some(if answer.is_some() {
            self.accepted
        } else {
            self.refused
        })
    }
}

pub struct HttpSessions {
    mode: HttpSessionMode,
    url: url::Url,
    credentials: Option<(String, SecretString)>,
    http: reqwest::Client,
    timeout: Duration,
    /// Replaced by a configuration reload.
    claims: ArcSwap<ClaimMap>,
    /// By the token's SHA-256; concurrent misses of one key share one upstream call.
    cache: Cache<Key, Answer>,
    permits: Semaphore,
}

impl std::fmt::Debug for HttpSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSessions")
            .field("mode", &self.mode)
            .field("address", &self.address())
            .finish_non_exhaustive()
    }
}

impl HttpSessions {
    pub fn new(settings: &HttpSessionSettings, claims: ClaimMap) -> anyhow::Result<Self> {
        let url = settings
            .url
            .clone()
            .ok_or_else(|| anyhow::anyhow!("sessions.http.url is not set"))?;
        let timeout = Duration::from_millis(settings.timeout_ms);
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tessera/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let accepted = Duration::from_secs(settings.cache_seconds);
        let refused = Duration::from_secs(settings.negative_cache_seconds).min(accepted);
        Ok(Self {
            mode: settings.mode,
            url,
            credentials: (settings.mode == HttpSessionMode::Introspection)
                .then(|| (settings.client_id.clone(), settings.client_secret.clone())),
            http,
            timeout,
            claims: ArcSwap::from_pointee(claims),
            cache: Cache::builder()
                .max_capacity(MAX_CACHED)
                .expire_after(AnswerExpiry { accepted, refused })
                .build(),
            permits: Semaphore::new(settings.max_concurrency),
        })
    }

    /// Maps the sessions resolved from now on with `claims`; cached answers, mapped with
    /// the previous rules, are dropped.
    pub fn set_claims(&self, claims: ClaimMap) {
        self.claims.store(Arc::new(claims));
        self.cache.invalidate_all();
    }

    /// `host:port` of the upstream, for `/readyz` and logs.
    pub fn address(&self) -> String {
        crate::config::http_address(&self.url)
    }

    /// The cached answer, or one upstream call shared by every concurrent caller of the
    /// same token. `Unavailable` is never cached.
    pub async fn resolve(&self, token: &str) -> Outcome {
        let key: Key = Sha256::digest(token.as_bytes()).into();
        let answer = self
            .cache
            .try_get_with(key, async {
                match self.ask_upstream(token).await {
                    Ok(principal) => Ok(Some(principal)),
                    Err(SessionError::Rejected) => Ok(None),
                    Err(unavailable) => Err(unavailable),
                }
            })
            .await
            .map_err(|shared| (*shared).clone())?;
        answer.ok_or(SessionError::Rejected)
    }

    async fn ask_upstream(&self, token: &str) -> Outcome {
        let _permit = tokio::time::timeout(self.timeout, self.permits.acquire())
            .await
            .map_err(|_| unavailable("too many upstream calls in flight"))?
            .map_err(|_| unavailable("shutting down"))?;
        let request = match (&self.mode, &self.credentials) {
            (HttpSessionMode::Introspection, Some((id, secret))) => self
                .http
                .post(self.url.clone())
                .basic_auth(id, Some(secret.expose_secret()))
                .form(&[("token", token)]),
            _ => self.http.get(self.url.clone()).bearer_auth(token),
        };
        let response = request
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(failed)?;
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
            self.claims
                .load()
                .principal(&document, sid_of_canonical(token))?,
        ))
    }

    /// Readiness: the upstream answers HTTP at all (any status below 500).
    pub async fn check(&self) -> Result<(), String> {
        match self.http.get(self.url.clone()).send().await {
            Ok(r) if r.status().as_u16() < 500 => Ok(()),
            Ok(r) => Err(format!("upstream answered {}", r.status().as_u16())),
            Err(e) => Err(describe(&e)),
        }
    }
}

fn unavailable(reason: impl Into<std::borrow::Cow<'static, str>>) -> SessionError {
    SessionError::unavailable(reason, None)
}

/// The upstream call failed: its reason, with the error (without its URL) as the cause.
fn failed(e: reqwest::Error) -> SessionError {
    SessionError::unavailable(describe(&e), Some(Arc::new(e.without_url())))
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
    while let Some(chunk) = response.chunk().await.map_err(failed)? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(unavailable("upstream answer too large"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
