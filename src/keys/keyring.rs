//! The keyring: the immutable snapshot the server reads (active signer, serialized JWKS,
//! ETag), built from parsed keys and their lifecycle states.
//!
//! Invariant: a [`Keyring`] has exactly one active key and its JWKS body is the
//! serialization of exactly the keys published at the instant it was built.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::jwk::{Jwk, JwkSet};
use super::policy::{self, KeyView, Policy};
use super::record::{KeyRecord, KeyState};
use super::signer::Signer;
use crate::infra::clock::UnixTime;

/// A key parsed once for serving: its record, public JWK, signer and verifying key.
pub struct LoadedKey {
    pub record: KeyRecord,
    pub jwk: Jwk,
    pub signer: Arc<Signer>,
    /// The public key as `jsonwebtoken` verifies with it (built once, from `jwk`).
    pub decoding: Arc<jsonwebtoken::DecodingKey>,
}

impl std::fmt::Debug for LoadedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedKey")
            .field("record", &self.record)
            .finish_non_exhaustive()
    }
}

/// A published key and its state when the snapshot was built.
#[derive(Debug)]
pub struct PublishedKey {
    pub key: Arc<LoadedKey>,
    pub view: KeyView,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error("the keyring has no active key")]
    NoActiveKey,
}

/// An immutable view of the keyring, swapped atomically when it changes.
#[derive(Debug)]
pub struct Keyring {
    keys: Vec<PublishedKey>,
    active: Arc<LoadedKey>,
    jwks_json: Bytes,
    jwks_etag: String,
    built_at: UnixTime,
}

impl Keyring {
    /// The snapshot at `now`: published keys and the active one, per the policy.
    pub fn new(
        loaded: &[Arc<LoadedKey>],
        now: UnixTime,
        policy: &Policy,
    ) -> Result<Self, KeyringError> {
        let records: Vec<KeyRecord> = loaded.iter().map(|k| k.record.clone()).collect();
        let views = policy::view(&records, now, policy);
        let keys: Vec<PublishedKey> = policy::published(&views, now)
            .filter_map(|v| {
                let key = loaded.iter().find(|k| k.record.kid == v.record.kid)?;
                Some(PublishedKey {
                    key: key.clone(),
                    view: v.clone(),
                })
            })
            .collect();
        let active = keys
            .iter()
            .find(|k| k.view.state == KeyState::Active)
            .map(|k| k.key.clone())
            .ok_or(KeyringError::NoActiveKey)?;
        let set = JwkSet {
            keys: keys.iter().map(|k| k.key.jwk.clone()).collect(),
        };
        let jwks_json = Bytes::from(serde_json::to_vec(&set).unwrap_or_default());
        let jwks_etag = format!(
            "\"{}\"",
            URL_SAFE_NO_PAD.encode(&Sha256::digest(&jwks_json)[..18])
        );
        Ok(Self {
            keys,
            active,
            jwks_json,
            jwks_etag,
            built_at: now,
        })
    }

    /// The key that signs now.
    pub fn active(&self) -> &Signer {
        &self.active.signer
    }

    /// The active key with its record.
    pub fn active_key(&self) -> &LoadedKey {
        &self.active
    }

    /// Every published key with its state.
    pub fn keys(&self) -> &[PublishedKey] {
        &self.keys
    }

    /// The published key with this kid.
    pub fn find(&self, kid: &str) -> Option<&LoadedKey> {
        self.keys
            .iter()
            .map(|k| &*k.key)
            .find(|k| k.record.kid == kid)
    }

    /// The JWKS document, serialized once.
    pub fn jwks_json(&self) -> &Bytes {
        &self.jwks_json
    }

    /// A strong ETag over the JWKS body.
    pub fn jwks_etag(&self) -> &str {
        &self.jwks_etag
    }

    pub fn built_at(&self) -> UnixTime {
        self.built_at
    }

    /// Whether a snapshot built at `now` would sign with another key or publish others.
    pub fn is_stale(&self, loaded: &[Arc<LoadedKey>], now: UnixTime, policy: &Policy) -> bool {
        match Self::new(loaded, now, policy) {
            Ok(fresh) => {
                fresh.jwks_etag != self.jwks_etag
                    || fresh.active.record.kid != self.active.record.kid
                    || fresh
                        .keys
                        .iter()
                        .map(|k| k.view.state)
                        .ne(self.keys.iter().map(|k| k.view.state))
            }
            Err(_) => false,
        }
    }
}
