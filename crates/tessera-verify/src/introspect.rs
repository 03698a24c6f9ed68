//! The optional online check: Tessera's `/introspect` (RFC 7662), cached briefly by the
//! token's SHA-256, for services that must see revocations before a token expires.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::VerifyError;

/// Entries at most; expired ones are swept when the map is full.
const MAX_CACHED: usize = 10_000;

pub(crate) struct Introspector {
    http: reqwest::Client,
    url: String,
    client_id: String,
    client_secret: String,
    ttl: Duration,
    cache: Mutex<HashMap<[u8; 32], (bool, Instant)>>,
}

impl Introspector {
    pub(crate) fn new(
        http: reqwest::Client,
        url: String,
        client_id: String,
        client_secret: String,
        ttl: Duration,
    ) -> Self {
        Self {
            http,
            url,
            client_id,
            client_secret,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) async fn check(&self, token: &str) -> Result<(), VerifyError> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let cached = {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            cache
                .get(&key)
                .filter(|(_, until)| Instant::now() < *until)
                .map(|(active, _)| *active)
        };
        let active = match cached {
            Some(active) => active,
            None => {
                let answer: serde_json::Value = self
                    .http
                    .post(&self.url)
                    .basic_auth(&self.client_id, Some(&self.client_secret))
                    .form(&[("token", token)])
                    .send()
                    .await
                    .and_then(reqwest::Response::error_for_status)
                    .map_err(|e| VerifyError::IntrospectionUnavailable(e.to_string()))?
                    .json()
                    .await
                    .map_err(|e| VerifyError::IntrospectionUnavailable(e.to_string()))?;
                let active = answer["active"].as_bool() == Some(true);
                let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
                if cache.len() >= MAX_CACHED {
                    let now = Instant::now();
                    cache.retain(|_, (_, until)| now < *until);
                }
                cache.insert(key, (active, Instant::now() + self.ttl));
                active
            }
        };
        if active {
            Ok(())
        } else {
            Err(VerifyError::Revoked)
        }
    }
}
