//! Signing keys: the keystore, the in-memory keyring snapshot and the signer of the hot path.
//!
//! Invariant: readers get the current [`Keyring`] through one atomic pointer load; nothing
//! on the sign path takes a lock or touches the store.

pub mod jwk;
pub mod keyring;
pub mod signer;
pub mod store_file;

use std::sync::Arc;

use arc_swap::ArcSwap;
use rsa::RsaPrivateKey;
use rsa::pkcs8::EncodePrivateKey;

use crate::clock::Clock;
use crate::config::Settings;
use keyring::{KeyRecord, KeyState, Keyring, KeyringError, LoadedKey};
use store_file::{FileKeyStore, FileStoreError, StoredKey};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Store(#[from] FileStoreError),
    #[error("keys.dir: {0}")]
    Keyring(#[from] KeyringError),
    #[error("keys.dir: key {kid} cannot be used for signing: {reason}")]
    Unusable { kid: String, reason: String },
    #[error("key generation failed: {0}")]
    Generation(String),
}

/// Owns the keystore and publishes the current keyring snapshot.
pub struct KeyService {
    ring: ArcSwap<Keyring>,
    store: FileKeyStore,
    typ: String,
}

impl KeyService {
    /// Loads the keyring; on a first start (no key yet) generates and stores an active key.
    pub async fn open(settings: &Settings, clock: &dyn Clock) -> Result<Self, KeyError> {
        let store = FileKeyStore::open(&settings.keys.dir)?;
        let mut stored = load_blocking(&store).await?;
        if !stored.iter().any(|k| k.record.state == KeyState::Active) {
            let key = generate_rsa(settings.keys.rsa_bits).await?;
            let now = clock.now();
            let record = KeyRecord {
                kid: jwk::Jwk::from_public_key(&key.to_public_key()).kid,
                state: KeyState::Active,
                created_at: now,
                activates_at: now,
                retires_at: None,
            };
            store.add(record.clone(), &key)?;
            tracing::info!(kid = %record.kid, bits = settings.keys.rsa_bits, dir = %store.dir().display(), "generated the first signing key");
            stored.push(StoredKey {
                record,
                private_key: key,
            });
        }
        let ring = build_keyring(stored, &settings.token.typ)?;
        Ok(Self {
            ring: ArcSwap::from_pointee(ring),
            store,
            typ: settings.token.typ.clone(),
        })
    }

    /// The current snapshot; cheap (an atomic load), never blocks.
    pub fn current(&self) -> arc_swap::Guard<Arc<Keyring>> {
        self.ring.load()
    }

    /// Re-reads the store and swaps in the new keyring when it parses.
    pub async fn reload(&self) -> Result<(), KeyError> {
        let stored = load_blocking(&self.store).await?;
        let ring = build_keyring(stored, &self.typ)?;
        self.ring.store(Arc::new(ring));
        Ok(())
    }
}

async fn load_blocking(store: &FileKeyStore) -> Result<Vec<StoredKey>, KeyError> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || store.load())
        .await
        .map_err(|e| KeyError::Generation(e.to_string()))?
        .map_err(KeyError::from)
}

/// Generates an RSA key of `bits` on the blocking pool (≈150 ms for 2048 bits).
pub async fn generate_rsa(bits: usize) -> Result<RsaPrivateKey, KeyError> {
    tokio::task::spawn_blocking(move || RsaPrivateKey::new(&mut rsa::rand_core::OsRng, bits))
        .await
        .map_err(|e| KeyError::Generation(e.to_string()))?
        .map_err(|e| KeyError::Generation(e.to_string()))
}

/// Parses every private key once into its signer and builds the snapshot.
fn build_keyring(stored: Vec<StoredKey>, typ: &str) -> Result<Keyring, KeyError> {
    let keys = stored
        .into_iter()
        .map(|k| {
            let kid = k.record.kid.clone();
            let unusable = |reason: String| KeyError::Unusable {
                kid: kid.clone(),
                reason,
            };
            let der = k
                .private_key
                .to_pkcs8_der()
                .map_err(|e| unusable(e.to_string()))?;
            let signer = signer::Signer::from_pkcs8_der(&kid, der.as_bytes(), typ)
                .map_err(|e| unusable(e.to_string()))?;
            Ok(LoadedKey {
                jwk: jwk::Jwk::from_public_key(&k.private_key.to_public_key()),
                record: k.record,
                signer: Arc::new(signer),
            })
        })
        .collect::<Result<Vec<_>, KeyError>>()?;
    Ok(Keyring::new(keys)?)
}
