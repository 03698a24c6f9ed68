//! The optional online check: Tessera's `/introspect` (RFC 7662), for services that must
//! see revocations before a token expires; [`Introspection`] holds its settings.
//!
//! Invariants: answers are cached by the token's SHA-256 (never the token), bounded by
//! entry count; concurrent checks of one token make one request (single-flight); an
//! "active" answer lives `cache_ttl`, a refusal at most `refusal_cache_ttl` (≤ 5 s by
//! default, since a replica may briefly not know a brand-new key); failures are not cached.

use std::time::{Duration, Instant};

use moka::Expiry;
use moka::future::Cache;
use sha2::{Digest, Sha256};

use crate::{FetchError, VerifyError};

/// Client credentials and cache settings for [`VerifierBuilder::introspection`](crate::VerifierBuilder::introspection).
///
/// ```
/// # use std::time::Duration;
/// let introspection = tessera_verify::Introspection::new("inventory", "its-secret")
///     .cache_ttl(Duration::from_secs(5));
/// ```
#[derive(Clone)]
pub struct Introspection {
    client_id: String,
    client_secret: String,
    url: Option<String>,
    cache_ttl: Duration,
    refusal_cache_ttl: Duration,
    max_entries: u64,
}

impl std::fmt::Debug for Introspection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Introspection")
            .field("client_id", &self.client_id)
            .field("url", &self.url)
            .field("cache_ttl", &self.cache_ttl)
            .field("refusal_cache_ttl", &self.refusal_cache_ttl)
            .field("max_entries", &self.max_entries)
            .finish_non_exhaustive()
    }
}

impl Introspection {
    /// Ask `/introspect` as this Tessera client (HTTP Basic).
    pub fn new(client_id: impl Into<String>, client_secret: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            url: None,
            cache_ttl: Duration::from_secs(10),
            refusal_cache_ttl: Duration::from_secs(5),
            max_entries: 10_000,
        }
    }

    /// The introspection endpoint (default: discovery's `introspection_endpoint`, else
    /// `<issuer>/introspect`).
    pub fn url(mut self, url: &str) -> Self {
        self.url = Some(url.to_owned());
        self
    }

    /// How long an "active" answer is reused (default 10 s): a revocation is seen at
    /// most this late.
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = ttl;
        self
    }

    /// How long an "inactive" answer is reused (default 5 s, never more than `cache_ttl`).
    pub fn refusal_cache_ttl(mut self, ttl: Duration) -> Self {
        self.refusal_cache_ttl = ttl;
        self
    }

    /// How many answers are kept at most (default 10 000).
    pub fn max_entries(mut self, entries: u64) -> Self {
        self.max_entries = entries;
        self
    }

    pub(crate) fn has_url(&self) -> bool {
        self.url.is_some()
    }

    pub(crate) fn into_introspector(self, http: reqwest::Client, issuer: &str) -> Introspector {
        let ttl = Ttl {
            active: self.cache_ttl,
            refused: self.refusal_cache_ttl.min(self.cache_ttl),
        };
        Introspector {
            http,
            url: self.url.unwrap_or_else(|| format!("{issuer}/introspect")),
            client_id: self.client_id,
            client_secret: self.client_secret,
            cache: Cache::builder()
                .max_capacity(self.max_entries)
                .expire_after(ttl)
                .build(),
        }
    }
}

/// Per-entry lifetime: answers of either kind live their own TTL from creation.
struct Ttl {
    active: Duration,
    refused: Duration,
}

impl Expiry<[u8; 32], bool> for Ttl {
    fn expire_after_create(&self, _: &[u8; 32], active: &bool, _: Instant) -> Option<Duration> {
        Some(if *active { self.active } else { self.refused })
    }
}

pub(crate) struct Introspector {
    http: reqwest::Client,
    url: String,
    client_id: String,
    client_secret: String,
    cache: Cache<[u8; 32], bool>,
}

impl Introspector {
    pub(crate) async fn check(&self, token: &str) -> Result<(), VerifyError> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let active = self
            .cache
            .try_get_with(key, self.ask(token))
            .await
            .map_err(|e| VerifyError::IntrospectionUnavailable((*e).clone()))?;
        if active {
            Ok(())
        } else {
            Err(VerifyError::Revoked)
        }
    }

    /// One `/introspect` request: whether Tessera calls the token active.
    async fn ask(&self, token: &str) -> Result<bool, FetchError> {
        let request = format!("POST {}", self.url);
        let response = self
            .http
            .post(&self.url)
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .form(&[("token", token)])
            .send()
            .await
            .map_err(|e| FetchError::transport(request.clone(), e))?;
        if !response.status().is_success() {
            let error = FetchError::status(request, response.status().as_u16());
            tracing::warn!(error = %error, client_id = %self.client_id, "introspection failed");
            return Err(error);
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| FetchError::transport(request.clone(), e))?;
        let answer: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| FetchError::body(request, e))?;
        Ok(answer["active"].as_bool() == Some(true))
    }
}
