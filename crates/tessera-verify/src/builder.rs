//! [`VerifierBuilder`]: the settings of a [`Verifier`], discovery (RFC 8414), and the one
//! place where a verifier's parts (HTTP client, key cache, `Validation`) are made.
//!
//! Invariant: building has no effect outside the verifier (no process-wide TLS provider,
//! no background task until the first verification needs one — except the revocation
//! feed's, which starts at once on the current runtime so revocations are known before
//! the first token arrives).

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Algorithm, Validation};

use crate::feed::RevocationFeed;
use crate::introspect::Introspection;
use crate::jwks::JwksCache;
use crate::{FetchError, Inner, SetupError, Verifier};

/// Settings of a [`Verifier`]; start with [`Verifier::builder`].
#[derive(Debug, Clone)]
pub struct VerifierBuilder {
    issuer: String,
    audiences: Vec<String>,
    jwks_uri: Option<String>,
    leeway: u64,
    accepted_typ: Vec<String>,
    refetch_cooldown: Duration,
    default_max_age: Duration,
    timeout: Duration,
    introspection: Option<Introspection>,
    feed: Option<RevocationFeed>,
}

impl VerifierBuilder {
    pub(crate) fn new(issuer: &str, audience: &str) -> Self {
        Self {
            issuer: issuer.trim_end_matches('/').to_owned(),
            audiences: vec![audience.to_owned()],
            jwks_uri: None,
            leeway: 30,
            accepted_typ: vec!["at+jwt".into(), "application/at+jwt".into(), "JWT".into()],
            refetch_cooldown: Duration::from_secs(10),
            default_max_age: Duration::from_secs(300),
            timeout: Duration::from_secs(5),
            introspection: None,
            feed: None,
        }
    }

    /// Also accept tokens for `audience`: a token is valid when its `aud` is any of them.
    pub fn audience(mut self, audience: &str) -> Self {
        if !self.audiences.iter().any(|a| a == audience) {
            self.audiences.push(audience.to_owned());
        }
        self
    }

    /// Use this JWKS URL instead of discovering it.
    pub fn jwks_uri(mut self, url: &str) -> Self {
        self.jwks_uri = Some(url.to_owned());
        self
    }

    /// Clock leeway for `exp` and `nbf`, in seconds (default 30).
    pub fn leeway(mut self, seconds: u64) -> Self {
        self.leeway = seconds;
        self
    }

    /// Minimum time between two refetches caused by unknown kids (default 10 s).
    pub fn refetch_cooldown(mut self, cooldown: Duration) -> Self {
        self.refetch_cooldown = cooldown;
        self
    }

    /// How long to cache a key set served without `max-age` (default 300 s).
    pub fn default_max_age(mut self, max_age: Duration) -> Self {
        self.default_max_age = max_age;
        self
    }

    /// Timeout of each request to Tessera (default 5 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Also ask Tessera's `/introspect` and refuse tokens it calls inactive (revoked).
    pub fn introspection(mut self, introspection: Introspection) -> Self {
        self.introspection = Some(introspection);
        self
    }

    /// Follow Tessera's revocation feed as this client (it needs `revocation_feed = true`):
    /// revoked tokens are refused offline ([`VerifyError::Revoked`](crate::VerifyError::Revoked))
    /// within about a second of the revocation. A background task keeps the live
    /// revocations in memory and reconnects by itself; see
    /// [`Verifier::revocation_feed_connected`](crate::Verifier::revocation_feed_connected).
    pub fn revocation_feed(self, client_id: &str, client_secret: &str) -> Self {
        self.revocation_feed_with(RevocationFeed::new(client_id, client_secret))
    }

    /// As [`revocation_feed`](Self::revocation_feed), with settings (URL, fallback to
    /// `/introspect` while the feed is down).
    pub fn revocation_feed_with(mut self, feed: RevocationFeed) -> Self {
        self.feed = Some(feed);
        self
    }

    /// Finds the JWKS (and the introspection endpoint) through the issuer's discovery
    /// document (RFC 8414), unless a JWKS URL was given.
    pub async fn discover(mut self) -> Result<Verifier, SetupError> {
        if self.jwks_uri.is_some() {
            return self.build();
        }
        let url = format!("{}/.well-known/oauth-authorization-server", self.issuer);
        let failed = |source| SetupError::Discovery {
            url: url.clone(),
            source,
        };
        let request = format!("GET {url}");
        let response = crate::http::client(self.timeout)?
            .get(&url)
            .send()
            .await
            .map_err(|e| failed(FetchError::transport(request.clone(), e)))?;
        if !response.status().is_success() {
            let status = response.status().as_u16();
            return Err(failed(FetchError::status(request, status)));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| failed(FetchError::transport(request.clone(), e)))?;
        let document: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| failed(FetchError::body(request, e)))?;
        let found = document["issuer"].as_str();
        if found.map(|i| i.trim_end_matches('/')) != Some(self.issuer.as_str()) {
            return Err(SetupError::IssuerMismatch {
                url,
                found: found.map(str::to_owned),
            });
        }
        let Some(jwks_uri) = document["jwks_uri"].as_str() else {
            return Err(SetupError::NoJwksUri { url });
        };
        self.jwks_uri = Some(jwks_uri.to_owned());
        if let (Some(introspection), Some(endpoint)) = (
            self.introspection.take(),
            document["introspection_endpoint"].as_str(),
        ) {
            self.introspection = Some(if introspection.has_url() {
                introspection
            } else {
                introspection.url(endpoint)
            });
        }
        self.build()
    }

    /// Builds without any network call (the key set is fetched on first use). Without
    /// [`jwks_uri`](Self::jwks_uri) the JWKS is assumed at the issuer's
    /// `/.well-known/jwks.json`.
    pub fn build(self) -> Result<Verifier, SetupError> {
        let http = crate::http::client(self.timeout)?;
        let jwks_uri = self
            .jwks_uri
            .unwrap_or_else(|| format!("{}/.well-known/jwks.json", self.issuer));
        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = self.leeway;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&self.audiences);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let introspector = self
            .introspection
            .map(|i| i.into_introspector(http.clone(), &self.issuer));
        let feed = self
            .feed
            .map(|f| f.into_follower(&self.issuer))
            .transpose()?;
        // Follow at once when there is a runtime (else on the first verification).
        if let Some(feed) = &feed {
            feed.start();
        }
        Ok(Verifier {
            inner: Arc::new(Inner {
                jwks: JwksCache::new(http, jwks_uri, self.default_max_age, self.refetch_cooldown),
                issuer: self.issuer,
                audiences: self.audiences,
                accepted_typ: self.accepted_typ,
                validation,
                introspector,
                feed,
            }),
        })
    }
}
