//! Verify [Tessera](../../README.md)'s internal JWTs in a Rust service — offline, against
//! Tessera's JWKS — and guard actix-web routes with them.
//!
//! ```no_run
//! use actix_web::{App, HttpServer, web};
//! use tessera_verify::{Claims, RequireToken, Verifier};
//!
//! async fn products(claims: Claims) -> String {
//!     format!("hello {}, via {:?}", claims.sub, claims.act.map(|a| a.sub))
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // Discovery → jwks_uri; tokens must be issued by this issuer for this audience.
//! let verifier = Verifier::builder("http://127.0.0.1:8080", "product-inventory")
//!     .discover()
//!     .await?;
//! HttpServer::new(move || {
//!     App::new().service(
//!         web::resource("/branches/{id}/products")
//!             .wrap(RequireToken::new(verifier.clone()).role("admin"))
//!             .route(web::get().to(products)),
//!     )
//! })
//! .bind("127.0.0.1:3002")?
//! .run()
//! .await?;
//! # Ok(()) }
//! ```
//!
//! What it checks: RS256 only (never `none`, never HS*), the `typ` header (`at+jwt`, or
//! `JWT` for Tessera's `token.typ = "JWT"`), a published `kid`, `iss`, `aud`, `exp`/`nbf`
//! with a leeway. The JWKS cache honours `Cache-Control: max-age` and `ETag`; an unknown
//! `kid` triggers one refetch (single-flight, with a cooldown so a flood of forged tokens
//! cannot hammer Tessera); when Tessera is briefly down the last good key set keeps
//! serving. Optionally, `/introspect` is asked too (with a short cache) for services that
//! must see revocations before a token expires.

mod claims;
mod introspect;
mod jwks;
#[cfg(feature = "actix")]
mod middleware;

use std::sync::Arc;
use std::time::Duration;

pub use claims::{Actor, Claims, RequestContext};
use introspect::Introspector;
use jwks::JwksCache;
#[cfg(feature = "actix")]
pub use middleware::RequireToken;

/// Why a token was refused (a service answers 401 for any of them).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("the token is not a JWS in compact form")]
    Malformed,
    #[error("the token is not signed with RS256")]
    WrongAlgorithm,
    #[error("the token's typ header is not an access token type")]
    WrongType,
    #[error("the token names no key (kid)")]
    NoKeyId,
    #[error("the token's key is not in the issuer's key set")]
    UnknownKey,
    #[error("the issuer's key set cannot be fetched: {0}")]
    KeySetUnavailable(String),
    #[error("the token is invalid: {0}")]
    Invalid(String),
    #[error("the token has been revoked")]
    Revoked,
    #[error("the introspection endpoint cannot be reached: {0}")]
    IntrospectionUnavailable(String),
}

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("discovery at {url} failed: {reason}")]
    Discovery { url: String, reason: String },
    #[error("HTTP client: {0}")]
    Http(String),
}

/// Verifies Tessera tokens; cheap to clone (shares one cache).
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.inner.issuer)
            .field("audience", &self.inner.audience)
            .finish_non_exhaustive()
    }
}

struct Inner {
    issuer: String,
    audience: String,
    leeway: u64,
    accepted_typ: Vec<String>,
    jwks: JwksCache,
    introspector: Option<Introspector>,
}

/// Settings of a [`Verifier`]; start with [`Verifier::builder`].
#[derive(Debug, Clone)]
pub struct VerifierBuilder {
    issuer: String,
    audience: String,
    jwks_uri: Option<String>,
    leeway: u64,
    accepted_typ: Vec<String>,
    refetch_cooldown: Duration,
    default_max_age: Duration,
    timeout: Duration,
    introspection: Option<(String, String, String, Duration)>,
}

impl Verifier {
    /// Tokens of `issuer` (Tessera's `issuer` setting) for `audience`.
    pub fn builder(issuer: &str, audience: &str) -> VerifierBuilder {
        VerifierBuilder {
            issuer: issuer.trim_end_matches('/').to_owned(),
            audience: audience.to_owned(),
            jwks_uri: None,
            leeway: 30,
            accepted_typ: vec!["at+jwt".into(), "application/at+jwt".into(), "JWT".into()],
            refetch_cooldown: Duration::from_secs(10),
            default_max_age: Duration::from_secs(300),
            timeout: Duration::from_secs(5),
            introspection: None,
        }
    }

    /// Verifies `token` and returns its claims.
    pub async fn verify(&self, token: &str) -> Result<Claims, VerifyError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed)?;
        if header.alg != jsonwebtoken::Algorithm::RS256 {
            return Err(VerifyError::WrongAlgorithm);
        }
        let typ = header.typ.as_deref().unwrap_or_default();
        if !self
            .inner
            .accepted_typ
            .iter()
            .any(|t| t.eq_ignore_ascii_case(typ))
        {
            return Err(VerifyError::WrongType);
        }
        let kid = header.kid.ok_or(VerifyError::NoKeyId)?;
        let key = self.inner.jwks.key(&kid).await?;
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.leeway = self.inner.leeway;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.inner.issuer]);
        validation.set_audience(&[&self.inner.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map_err(|e| VerifyError::Invalid(e.to_string()))?
            .claims;
        if let Some(introspector) = &self.inner.introspector {
            introspector.check(token).await?;
        }
        Ok(claims)
    }

    pub fn audience(&self) -> &str {
        &self.inner.audience
    }
}

impl VerifierBuilder {
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

    /// Also ask Tessera's `/introspect` (with these client credentials) and refuse revoked
    /// tokens; answers are cached for `cache_ttl`.
    pub fn introspect(
        mut self,
        url: &str,
        client_id: &str,
        client_secret: &str,
        cache_ttl: Duration,
    ) -> Self {
        self.introspection = Some((
            url.to_owned(),
            client_id.to_owned(),
            client_secret.to_owned(),
            cache_ttl,
        ));
        self
    }

    fn http(&self) -> Result<reqwest::Client, SetupError> {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        reqwest::Client::builder()
            .timeout(self.timeout)
            .build()
            .map_err(|e| SetupError::Http(e.to_string()))
    }

    /// Finds the JWKS through the issuer's discovery document (RFC 8414), unless a JWKS
    /// URL was given.
    pub async fn discover(mut self) -> Result<Verifier, SetupError> {
        if self.jwks_uri.is_none() {
            let url = format!("{}/.well-known/oauth-authorization-server", self.issuer);
            let failed = |reason: String| SetupError::Discovery {
                url: url.clone(),
                reason,
            };
            let document: serde_json::Value = self
                .http()?
                .get(&url)
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .map_err(|e| failed(e.to_string()))?
                .json()
                .await
                .map_err(|e| failed(e.to_string()))?;
            if document["issuer"].as_str().map(|i| i.trim_end_matches('/'))
                != Some(self.issuer.as_str())
            {
                return Err(failed("the document names another issuer".into()));
            }
            let jwks_uri = document["jwks_uri"]
                .as_str()
                .ok_or_else(|| failed("no jwks_uri".into()))?;
            self.jwks_uri = Some(jwks_uri.to_owned());
        }
        self.build()
    }

    /// Builds without any network call (the key set is fetched on first use). Needs
    /// [`jwks_uri`](Self::jwks_uri); without it the JWKS is assumed at the issuer's
    /// `/.well-known/jwks.json`.
    pub fn build(self) -> Result<Verifier, SetupError> {
        let http = self.http()?;
        let jwks_uri = self
            .jwks_uri
            .clone()
            .unwrap_or_else(|| format!("{}/.well-known/jwks.json", self.issuer));
        let introspector = self
            .introspection
            .clone()
            .map(|(url, id, secret, ttl)| Introspector::new(http.clone(), url, id, secret, ttl));
        Ok(Verifier {
            inner: Arc::new(Inner {
                jwks: JwksCache::new(http, jwks_uri, self.default_max_age, self.refetch_cooldown),
                issuer: self.issuer,
                audience: self.audience,
                leeway: self.leeway,
                accepted_typ: self.accepted_typ,
                introspector,
            }),
        })
    }
}
