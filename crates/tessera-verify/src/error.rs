//! Why a token is refused ([`VerifyError`]), why a verifier cannot be built
//! ([`SetupError`]), and why a request to Tessera failed ([`FetchError`]).
//!
//! Invariants: every refusal names its reason (no catch-all string), and every error
//! keeps its underlying cause as `source()` rather than copying its text.

use std::error::Error as StdError;
use std::sync::Arc;

use jsonwebtoken::errors::ErrorKind;

/// Why a token was refused. A service answers `401` for any of them; the two
/// `…Unavailable` variants are transient (see [`VerifyError::is_transient`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
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
    #[error("the token's signature does not verify")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet (nbf)")]
    NotYetValid,
    #[error("the token was issued by another issuer")]
    WrongIssuer,
    #[error("the token is meant for another audience")]
    WrongAudience,
    #[error("the token lacks the required `{0}` claim")]
    MissingClaim(&'static str),
    #[error("the token's `{0}` claim has the wrong type")]
    InvalidClaim(&'static str),
    /// The signature and the standard claims are fine, but the claims do not deserialize
    /// into the type asked for ([`Verifier::verify_as`](crate::Verifier::verify_as)).
    #[error("the token's claims do not fit the expected type")]
    UnexpectedClaims(#[source] serde_json::Error),
    #[error("the issuer's key set cannot be fetched")]
    KeySetUnavailable(#[source] FetchError),
    /// Tessera's `/introspect` calls the token inactive (revoked, or expired by its clock).
    #[error("the token has been revoked")]
    Revoked,
    #[error("the introspection endpoint cannot be reached")]
    IntrospectionUnavailable(#[source] FetchError),
}

impl VerifyError {
    /// Whether the refusal may go away by itself (Tessera unreachable) rather than being
    /// about the token.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::KeySetUnavailable(_) | Self::IntrospectionUnavailable(_)
        )
    }
}

/// The registered claims jsonwebtoken checks, as `'static` names for our variants.
fn claim_name(name: &str) -> Option<&'static str> {
    ["exp", "nbf", "iss", "aud", "sub"]
        .into_iter()
        .find(|c| *c == name)
}

/// Maps jsonwebtoken's verdict onto ours, one reason each.
pub(crate) fn from_jwt(error: &jsonwebtoken::errors::Error) -> VerifyError {
    match error.kind() {
        ErrorKind::InvalidSignature | ErrorKind::RsaFailedSigning | ErrorKind::Provider(_) => {
            VerifyError::BadSignature
        }
        ErrorKind::InvalidAlgorithm
        | ErrorKind::MissingAlgorithm
        | ErrorKind::UnsupportedAlgorithm
        | ErrorKind::InvalidAlgorithmName => VerifyError::WrongAlgorithm,
        // The published key cannot check an RS256 signature: no usable key for this kid.
        ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidKeyFormat
        | ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidEddsaKey => VerifyError::UnknownKey,
        ErrorKind::ExpiredSignature => VerifyError::Expired,
        ErrorKind::ImmatureSignature => VerifyError::NotYetValid,
        ErrorKind::InvalidIssuer => VerifyError::WrongIssuer,
        ErrorKind::InvalidAudience => VerifyError::WrongAudience,
        ErrorKind::MissingRequiredClaim(name) => {
            claim_name(name).map_or(VerifyError::Malformed, VerifyError::MissingClaim)
        }
        ErrorKind::InvalidClaimFormat(name) => {
            claim_name(name).map_or(VerifyError::Malformed, VerifyError::InvalidClaim)
        }
        _ => VerifyError::Malformed,
    }
}

/// Why a verifier could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    #[error("discovery at {url} failed")]
    Discovery {
        url: String,
        #[source]
        source: FetchError,
    },
    #[error("the discovery document at {url} names another issuer ({found:?})")]
    IssuerMismatch { url: String, found: Option<String> },
    #[error("the discovery document at {url} has no jwks_uri")]
    NoJwksUri { url: String },
    #[error("the HTTP client cannot be built")]
    Http(#[source] Box<dyn StdError + Send + Sync>),
}

/// A request to Tessera (discovery, key set, introspection) that failed: what was asked,
/// what went wrong, and the underlying error when there is one. Cheap to clone (shared by
/// every caller that waited for the same request).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{request}: {problem}")]
pub struct FetchError {
    request: String,
    problem: String,
    status: Option<u16>,
    #[source]
    source: Option<Arc<dyn StdError + Send + Sync>>,
}

impl FetchError {
    pub(crate) fn new(request: String, problem: &str) -> Self {
        Self {
            request,
            problem: problem.into(),
            status: None,
            source: None,
        }
    }

    pub(crate) fn transport(request: String, error: reqwest::Error) -> Self {
        let problem = if error.is_timeout() {
            "timed out"
        } else if error.is_decode() {
            "unreadable answer"
        } else {
            "request failed"
        };
        Self {
            request,
            problem: problem.into(),
            status: None,
            source: Some(Arc::new(error)),
        }
    }

    pub(crate) fn status(request: String, status: u16) -> Self {
        Self {
            request,
            problem: format!("HTTP {status}"),
            status: Some(status),
            source: None,
        }
    }

    pub(crate) fn body(request: String, error: serde_json::Error) -> Self {
        Self {
            request,
            problem: "unreadable answer".into(),
            status: None,
            source: Some(Arc::new(error)),
        }
    }

    /// The HTTP status Tessera answered with, when it answered.
    pub fn http_status(&self) -> Option<u16> {
        self.status
    }
}
