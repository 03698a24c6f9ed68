//! Verify [Tessera](../../README.md)'s internal JWTs in a Rust service — offline, against
//! Tessera's JWKS — and guard actix-web routes (feature `actix`, default) or any tower
//! service such as axum (feature `tower`) with them.
//!
//! ```no_run
//! use actix_web::{App, HttpServer, web};
//! use tessera_verify::{RequireToken, Verified, Verifier};
//!
//! async fn products(Verified(claims): Verified) -> String {
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
//! `JWT` for Tessera's `token.typ = "JWT"`), a published `kid`, `iss`, `aud` (one of the
//! accepted audiences), `exp`/`nbf` with a leeway. The JWKS cache honours `Cache-Control:
//! max-age` and `ETag`; a stale key set keeps serving while it is refreshed in the
//! background (one refresh at a time), so a request never waits for Tessera when its key
//! is known; an unknown `kid` triggers one refetch (single-flight, with a cooldown so a
//! flood of forged tokens cannot hammer Tessera); while Tessera is down the last good key
//! set keeps serving. To refuse revoked tokens before they expire, a verifier either
//! follows Tessera's revocation feed ([`VerifierBuilder::revocation_feed`]: revocations
//! kept in memory, refused offline within about a second) or asks `/introspect` (cached,
//! single-flight) on each token.
//!
//! Invariants: a verifier has no process-wide side effects (it never installs a TLS
//! provider, and spawns work only onto the runtime that calls it); its `Validation` is
//! built once.

mod access;
#[cfg(feature = "actix")]
mod actix;
mod builder;
mod error;
mod feed;
#[cfg(any(feature = "actix", feature = "tower"))]
mod guard;
mod http;
mod introspect;
mod jwks;
#[cfg(feature = "tower")]
pub mod tower;

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::de::IgnoredAny;

pub use access::AccessClaims;
#[cfg(feature = "actix")]
pub use actix::{RequireToken, RequireTokenMiddleware, Verified};
pub use builder::VerifierBuilder;
pub use error::{FetchError, SetupError, VerifyError};
pub use feed::RevocationFeed;
pub use introspect::Introspection;
pub use tessera_claims::{Actor, Claims, RequestContext};

use feed::Follower;
use introspect::Introspector;
use jwks::JwksCache;

/// Verifies Tessera tokens; cheap to clone (clones share one key cache).
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.inner.issuer)
            .field("audiences", &self.inner.audiences)
            .finish_non_exhaustive()
    }
}

struct Inner {
    issuer: String,
    audiences: Vec<String>,
    accepted_typ: Vec<String>,
    validation: jsonwebtoken::Validation,
    jwks: JwksCache,
    introspector: Option<Introspector>,
    feed: Option<Follower>,
}

impl Verifier {
    /// Tokens of `issuer` (Tessera's `issuer` setting) for `audience`; more audiences with
    /// [`VerifierBuilder::audience`].
    pub fn builder(issuer: &str, audience: &str) -> VerifierBuilder {
        VerifierBuilder::new(issuer, audience)
    }

    /// Verifies `token` and returns Tessera's claims.
    pub async fn verify(&self, token: &str) -> Result<Claims, VerifyError> {
        self.verify_as(token).await
    }

    /// Verifies `token` and returns its claims as `C` — your own type, for claims Tessera
    /// maps from sessions (`email`, `tenant` …) or to read less than [`Claims`].
    /// The checks are the same as [`verify`](Self::verify)'s.
    pub async fn verify_as<C: DeserializeOwned>(&self, token: &str) -> Result<C, VerifyError> {
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
        let claims = match jsonwebtoken::decode::<C>(token, &key, &self.inner.validation) {
            Ok(data) => data.claims,
            // jsonwebtoken reads the claims as `C` before it validates them: when they do
            // not fit, validate alone so the reason stays precise (expired, wrong
            // audience …), and only then blame the type.
            Err(e) if matches!(e.kind(), jsonwebtoken::errors::ErrorKind::Json(_)) => {
                jsonwebtoken::decode::<IgnoredAny>(token, &key, &self.inner.validation)
                    .map_err(|e| error::from_jwt(&e))?;
                return Err(payload::<C>(token).err().unwrap_or(VerifyError::Malformed));
            }
            Err(e) => return Err(error::from_jwt(&e)),
        };
        if let Some(feed) = &self.inner.feed {
            let facts = payload::<feed::Facts>(token)?;
            feed.check(token, &facts).await?;
        }
        if let Some(introspector) = &self.inner.introspector {
            introspector.check(token).await?;
        }
        Ok(claims)
    }

    /// Whether the revocation feed is connected now; `None` when this verifier does not
    /// follow it (see [`VerifierBuilder::revocation_feed`]).
    pub fn revocation_feed_connected(&self) -> Option<bool> {
        self.inner.feed.as_ref().map(|f| {
            f.start();
            f.is_connected()
        })
    }

    /// The issuer tokens must come from.
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// The first accepted audience (the one given to [`Verifier::builder`]).
    pub fn audience(&self) -> &str {
        self.inner
            .audiences
            .first()
            .map(String::as_str)
            .unwrap_or_default()
    }

    /// Every accepted audience.
    pub fn audiences(&self) -> &[String] {
        &self.inner.audiences
    }
}

/// The claims of a token whose signature has been checked, as `C` (here: for the reason
/// they do not fit).
fn payload<C: DeserializeOwned>(token: &str) -> Result<C, VerifyError> {
    use base64::Engine as _;
    let part = token.split('.').nth(1).ok_or(VerifyError::Malformed)?;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| VerifyError::Malformed)?;
    serde_json::from_slice(&json).map_err(VerifyError::UnexpectedClaims)
}
