//! The keyring: which keys exist, their lifecycle state, and the immutable snapshot the
//! server reads (active signer, serialized JWKS, ETag).
//!
//! Invariant: a [`Keyring`] always has exactly one active key and its JWKS body is the
//! serialization of exactly the published keys; both are fixed at construction.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::jwk::{Jwk, JwkSet};
use super::signer::Signer;
use crate::clock::UnixTime;

/// `pending` (published, not signing) → `active` (the one signer) → `retired` (published
/// until its last token has expired) → removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    Pending,
    Active,
    Retired,
}

/// What the keystore persists about a key besides its private half.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub kid: String,
    pub state: KeyState,
    pub created_at: UnixTime,
    pub activates_at: UnixTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retires_at: Option<UnixTime>,
}

/// A key loaded for serving: its record, public JWK and (parsed once) signer.
#[derive(Debug)]
pub struct LoadedKey {
    pub record: KeyRecord,
    pub jwk: Jwk,
    pub signer: Arc<Signer>,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error("the keyring has no active key")]
    NoActiveKey,
    #[error("the keyring has {0} active keys; exactly one may sign")]
    SeveralActiveKeys(usize),
}

/// An immutable view of the keyring, swapped atomically when the keyring changes.
#[derive(Debug)]
pub struct Keyring {
    keys: Vec<LoadedKey>,
    active: Arc<Signer>,
    jwks_json: Bytes,
    jwks_etag: String,
}

impl Keyring {
    pub fn new(keys: Vec<LoadedKey>) -> Result<Self, KeyringError> {
        let mut active = keys.iter().filter(|k| k.record.state == KeyState::Active);
        let signer = match (active.next(), active.count()) {
            (Some(key), 0) => key.signer.clone(),
            (None, _) => return Err(KeyringError::NoActiveKey),
            (Some(_), more) => return Err(KeyringError::SeveralActiveKeys(more + 1)),
        };
        let set = JwkSet {
            keys: keys.iter().map(|k| k.jwk.clone()).collect(),
        };
        let jwks_json = Bytes::from(serde_json::to_vec(&set).unwrap_or_default());
        let jwks_etag = format!(
            "\"{}\"",
            URL_SAFE_NO_PAD.encode(&Sha256::digest(&jwks_json)[..18])
        );
        Ok(Self {
            keys,
            active: signer,
            jwks_json,
            jwks_etag,
        })
    }

    /// The key that signs now.
    pub fn active(&self) -> &Signer {
        &self.active
    }

    /// Every published key with its record.
    pub fn keys(&self) -> &[LoadedKey] {
        &self.keys
    }

    /// The published key with this kid.
    pub fn find(&self, kid: &str) -> Option<&LoadedKey> {
        self.keys.iter().find(|k| k.record.kid == kid)
    }

    /// The JWKS document, serialized once.
    pub fn jwks_json(&self) -> &Bytes {
        &self.jwks_json
    }

    /// A strong ETag over the JWKS body.
    pub fn jwks_etag(&self) -> &str {
        &self.jwks_etag
    }
}
