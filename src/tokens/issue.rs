//! Minting: claims from (principal, client, request, clock), signed by the active key.
//!
//! Invariants: `iat = nbf = now − clock_skew`, `exp = now + ttl`; `jti` is 128 random bits;
//! the session token itself never enters a claim (only its `sid` hash).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use super::claims::{Actor, Claims, RequestContext};
use crate::infra::clock::UnixTime;
use crate::keys::keyring::Keyring;
use crate::keys::signer::SignerError;

/// What a token is minted for: everything the exchange decided.
#[derive(Debug)]
pub struct TokenRequest<'a> {
    pub sub: &'a str,
    pub roles: &'a [String],
    pub extra: &'a Map<String, Value>,
    pub sid: Option<&'a str>,
    pub client_id: &'a str,
    pub audience: &'a str,
    pub scope: Option<&'a str>,
    pub ctx: Option<&'a RequestContext>,
    pub ttl_seconds: u64,
}

#[derive(Debug)]
pub struct IssuedToken {
    pub jwt: String,
    pub jti: String,
    pub expires_in: u64,
}

/// Fixed parts of every token: issuer and backdating.
#[derive(Debug, Clone)]
pub struct TokenIssuer {
    issuer: String,
    clock_skew_seconds: i64,
}

impl TokenIssuer {
    pub fn new(issuer: &str, clock_skew_seconds: u64) -> Self {
        Self {
            issuer: issuer.to_owned(),
            clock_skew_seconds: clock_skew_seconds as i64,
        }
    }

    /// The `iss` claim.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The real issuance time of a token whose `iat` is `iat` (undoing the backdating).
    pub fn issued_at(&self, iat: UnixTime) -> UnixTime {
        iat + self.clock_skew_seconds
    }

    pub fn issue(
        &self,
        keyring: &Keyring,
        request: &TokenRequest<'_>,
        now: UnixTime,
    ) -> Result<IssuedToken, SignerError> {
        let jti = new_jti()?;
        let claims = Claims {
            iss: &self.issuer,
            sub: request.sub,
            aud: request.audience,
            iat: now - self.clock_skew_seconds,
            nbf: now - self.clock_skew_seconds,
            exp: now + request.ttl_seconds as i64,
            client_id: request.client_id,
            jti: &jti,
            roles: request.roles,
            scope: request.scope,
            sid: request.sid,
            act: Actor {
                sub: request.client_id,
            },
            ctx: request.ctx,
            extra: request.extra,
        };
        let json = serde_json::to_vec(&claims).map_err(|_| SignerError::SigningFailed)?;
        let jwt = keyring.active().sign_jwt(&json)?;
        Ok(IssuedToken {
            jwt,
            jti,
            expires_in: request.ttl_seconds,
        })
    }
}

/// 128 random bits, base64url (22 characters).
fn new_jti() -> Result<String, SignerError> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| SignerError::SigningFailed)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}
