//! The hot path's signer: one private key parsed once into an aws-lc-rs `RsaKeyPair`.
//!
//! Invariant: `sign_jwt` never parses, reads or copies key material; it costs one RSA
//! signature plus base64 of the claims. The JOSE header is encoded once per key.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Largest modulus we allow (`keys.rsa_bits = 4096`), in bytes.
const MAX_SIGNATURE_LEN: usize = 512;

#[derive(Debug, thiserror::Error)]
pub enum SignerError {
    #[error("the private key is not a valid PKCS#8 RSA key")]
    InvalidKey,
    #[error("RSA signing failed")]
    SigningFailed,
}

pub struct Signer {
    kid: String,
    header_b64: String,
    key_pair: RsaKeyPair,
    rng: SystemRandom,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// Parses a PKCS#8 DER private key once; `typ` goes into every header.
    pub fn from_pkcs8_der(kid: &str, der: &[u8], typ: &str) -> Result<Self, SignerError> {
        let key_pair = RsaKeyPair::from_pkcs8(der).map_err(|_| SignerError::InvalidKey)?;
        if key_pair.public_modulus_len() > MAX_SIGNATURE_LEN {
            return Err(SignerError::InvalidKey);
        }
        let header = serde_json::json!({"alg": "RS256", "typ": typ, "kid": kid});
        Ok(Self {
            kid: kid.to_owned(),
            header_b64: URL_SAFE_NO_PAD.encode(header.to_string()),
            key_pair,
            rng: SystemRandom::new(),
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// `base64url(header) . base64url(claims) . base64url(RS256 signature)`.
    pub fn sign_jwt(&self, claims_json: &[u8]) -> Result<String, SignerError> {
        let sig_len = self.key_pair.public_modulus_len();
        let mut jwt = String::with_capacity(
            self.header_b64.len()
                + 2
                + (claims_json.len() * 4).div_ceil(3)
                + (sig_len * 4).div_ceil(3),
        );
        jwt.push_str(&self.header_b64);
        jwt.push('.');
        URL_SAFE_NO_PAD.encode_string(claims_json, &mut jwt);
        let mut signature = [0u8; MAX_SIGNATURE_LEN];
        let signature = &mut signature[..sig_len];
        self.key_pair
            .sign(&RSA_PKCS1_SHA256, &self.rng, jwt.as_bytes(), signature)
            .map_err(|_| SignerError::SigningFailed)?;
        jwt.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut jwt);
        Ok(jwt)
    }
}
