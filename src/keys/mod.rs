//! Signing keys: the keystore, the lifecycle policy, the in-memory keyring snapshot and
//! the signer of the hot path.
//!
//! Invariants: readers get the current [`Keyring`] through one atomic pointer load;
//! nothing on the sign path takes a lock or touches the store; a private key is parsed
//! once per process (snapshots are rebuilt from the parsed keys).

pub mod jwk;
pub mod kek;
pub mod keyring;
pub mod policy;
pub mod record;
pub mod signer;
pub mod store;

use std::sync::Arc;

use arc_swap::ArcSwap;
use rsa::RsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;

use crate::config::{KeyStoreKind, Settings};
use crate::infra::clock::{Clock, UnixTime};
use kek::{KekError, KekRing};
use keyring::{Keyring, KeyringError, LoadedKey};
use policy::{KeyView, Policy, RetireError, RotateError};
use record::KeyRecord;
use store::file::{FileKeyStore, FileStoreError};
use store::pg::PgKeyStore;
use store::{Applied, KeyStore, StoredKey};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Store(#[from] FileStoreError),
    #[error("keys.database_url: {0}")]
    Database(String),
    #[error(transparent)]
    Kek(#[from] KekError),
    #[error("keys: {0}")]
    Keyring(#[from] KeyringError),
    #[error("keys: key {kid} cannot be used for signing: {reason}")]
    Unusable { kid: String, reason: String },
    #[error("key generation failed: {0}")]
    Generation(String),
    #[error(transparent)]
    Rotate(#[from] RotateError),
    #[error(transparent)]
    Retire(#[from] RetireError),
}

/// The keys parsed so far, by the store version they were read at.
struct Loaded {
    version: String,
    keys: Vec<Arc<LoadedKey>>,
}

/// Owns the keystore and publishes the current keyring snapshot.
pub struct KeyService {
    ring: ArcSwap<Keyring>,
    loaded: tokio::sync::Mutex<Loaded>,
    store: KeyStore,
    policy: Policy,
    typ: String,
    bits: usize,
    clock: Arc<dyn Clock>,
    /// Why the last maintenance round failed (`None`: it succeeded), for `/readyz`.
    health: std::sync::Mutex<Option<String>>,
}

impl KeyService {
    /// Opens the configured store and loads the keyring; a first start (no key that can
    /// sign) generates and stores an active key.
    pub async fn open(settings: &Settings, clock: Arc<dyn Clock>) -> Result<Self, KeyError> {
        let store = open_store(settings).await?;
        let policy = Policy::from_settings(settings);
        let typ = settings.token.typ.clone();
        let now = clock.now();
        let (version, stored) = store.load().await?;
        let mut keys = parse_new(&[], stored, &typ)?;
        let mut version = version;
        if Keyring::new(&keys, now, &policy).is_err() {
            let applied = store
                .apply(
                    "startup",
                    now,
                    settings.keys.rsa_bits,
                    Box::new(move |records| Ok(policy::maintain(records, now, &policy))),
                )
                .await?;
            for a in &applied {
                tracing::info!(
                    kid = a.kid(),
                    action = a.action(),
                    store = store.name(),
                    "keyring bootstrapped"
                );
            }
            let (v, stored) = store.load().await?;
            keys = parse_new(&keys, stored, &typ)?;
            version = v;
        }
        let ring = Keyring::new(&keys, now, &policy)?;
        Ok(Self {
            ring: ArcSwap::from_pointee(ring),
            loaded: tokio::sync::Mutex::new(Loaded { version, keys }),
            store,
            policy,
            typ,
            bits: settings.keys.rsa_bits,
            clock,
            health: std::sync::Mutex::new(None),
        })
    }

    /// The keystore as the last maintenance round found it: `Err(reason)` when it could
    /// not be read or trusted (the last good keyring keeps serving meanwhile).
    pub fn health(&self) -> Result<(), String> {
        match &*self.health.lock().unwrap_or_else(|p| p.into_inner()) {
            None => Ok(()),
            Some(reason) => Err(reason.clone()),
        }
    }

    /// Records a maintenance round's outcome; logs only when it changes.
    fn record_health(&self, result: &Result<(), KeyError>) {
        crate::infra::metrics::record_keystore(result.is_ok());
        let now = result.as_ref().err().map(|e| e.to_string());
        let mut health = self.health.lock().unwrap_or_else(|p| p.into_inner());
        if *health == now {
            return;
        }
        match &now {
            Some(reason) => tracing::error!(
                store = self.store.name(),
                error = %reason,
                "keyring maintenance failed; serving the last good keyring, /readyz failing until it is fixed"
            ),
            None => tracing::info!(store = self.store.name(), "keystore healthy again"),
        }
        *health = now;
    }

    /// The current snapshot; cheap (an atomic load), never blocks.
    pub fn current(&self) -> arc_swap::Guard<Arc<Keyring>> {
        self.ring.load()
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// One round of the background task: notice changes made elsewhere, apply scheduled
    /// maintenance (bootstrap, supersession, removal, preparing the next key), and swap
    /// in a new snapshot when the keys or their states changed.
    pub async fn tick(&self) -> Result<(), KeyError> {
        let now = self.clock.now();
        let mut loaded = self.loaded.lock().await;
        let version = self.store.version().await?;
        if version != loaded.version {
            self.reload(&mut loaded).await?;
        }
        let records: Vec<KeyRecord> = loaded.keys.iter().map(|k| k.record.clone()).collect();
        if !policy::maintain(&records, now, &self.policy).is_empty() {
            let policy = self.policy;
            self.store
                .apply(
                    "scheduler",
                    now,
                    self.bits,
                    Box::new(move |records| Ok(policy::maintain(records, now, &policy))),
                )
                .await?;
            self.reload(&mut loaded).await?;
        }
        if self.ring.load().is_stale(&loaded.keys, now, &self.policy) {
            self.ring
                .store(Arc::new(Keyring::new(&loaded.keys, now, &self.policy)?));
        }
        Ok(())
    }

    async fn reload(&self, loaded: &mut Loaded) -> Result<(), KeyError> {
        let (version, stored) = self.store.load().await?;
        let appeared: Vec<String> = stored
            .iter()
            .filter(|s| !loaded.keys.iter().any(|k| k.record.kid == s.record.kid))
            .map(|s| s.record.kid.clone())
            .collect();
        if !appeared.is_empty() {
            self.report_unrecorded(&appeared).await;
        }
        loaded.keys = parse_new(&loaded.keys, stored, &self.typ)?;
        loaded.version = version;
        let ring = Keyring::new(&loaded.keys, self.clock.now(), &self.policy)?;
        self.ring.store(Arc::new(ring));
        Ok(())
    }

    /// A key that appeared in the store without a rotation of this keystore recording it
    /// (file store: no `generate` or `import` line in `audit.jsonl`): an error and an
    /// audit record, for someone to look at.
    async fn report_unrecorded(&self, appeared: &[String]) {
        let now = self.clock.now();
        for kid in self.store.unrecorded(appeared).await {
            tracing::error!(
                kid = %kid,
                store = self.store.name(),
                "a key appeared in the keystore that no rotation recorded; if nobody here put it there, remove it and run `tessera keys rotate --now`"
            );
            tracing::info!(
                target: "tessera::audit",
                event = "key",
                action = "unrecorded",
                kid = %kid,
                by = "unknown",
                at = crate::infra::clock::rfc3339(now),
                "key event"
            );
        }
    }

    async fn apply(
        &self,
        actor: &str,
        plan: impl FnOnce(&[KeyRecord], UnixTime, &Policy) -> Result<Vec<policy::Change>, KeyError>
        + Send
        + 'static,
    ) -> Result<Vec<Applied>, KeyError> {
        let now = self.clock.now();
        let policy = self.policy;
        let mut loaded = self.loaded.lock().await;
        let applied = self
            .store
            .apply(
                actor,
                now,
                self.bits,
                Box::new(move |records| plan(records, now, &policy)),
            )
            .await?;
        self.reload(&mut loaded).await?;
        Ok(applied)
    }

    /// An operator's rotation; returns the new key's record.
    pub async fn rotate(&self, immediate: bool, actor: &str) -> Result<KeyView, KeyError> {
        let applied = self
            .apply(actor, move |records, now, policy| {
                Ok(policy::rotate(records, now, policy, immediate)?)
            })
            .await?;
        let kid = applied
            .iter()
            .find_map(|a| match a {
                Applied::Generated(r) => Some(r.kid.clone()),
                _ => None,
            })
            .ok_or_else(|| KeyError::Generation("no key was generated".into()))?;
        self.list()
            .await
            .into_iter()
            .find(|v| v.record.kid == kid)
            .ok_or_else(|| KeyError::Generation("the new key is not in the keyring".into()))
    }

    /// An operator retires (or cancels) a key.
    pub async fn retire(&self, kid: &str, actor: &str) -> Result<(), KeyError> {
        let kid = kid.to_owned();
        self.apply(actor, move |records, now, policy| {
            Ok(policy::retire(records, now, policy, &kid)?)
        })
        .await?;
        Ok(())
    }

    /// Every key the store holds, with its state now.
    pub async fn list(&self) -> Vec<KeyView> {
        let loaded = self.loaded.lock().await;
        let records: Vec<KeyRecord> = loaded.keys.iter().map(|k| k.record.clone()).collect();
        policy::view(&records, self.clock.now(), &self.policy)
    }

    /// Re-seals every private key under the current KEK.
    pub async fn rewrap(&self, actor: &str) -> Result<usize, KeyError> {
        self.store.rewrap(actor, self.clock.now()).await
    }

    pub fn store_name(&self) -> &'static str {
        self.store.name()
    }

    /// Every `every`: notice rotations made by other replicas or the CLI, apply scheduled
    /// rotation and retirement, and switch keys at their activation time.
    pub fn spawn_maintenance(self: Arc<Self>, every: std::time::Duration) {
        crate::infra::metrics::record_key_policy(&self.policy);
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(every);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            interval.tick().await;
            loop {
                interval.tick().await;
                let result = self.tick().await;
                self.record_health(&result);
            }
        });
    }
}

/// A keyring of one PKCS#8 PEM key, active since the epoch: for tests and benchmarks.
pub fn single_key_keyring(pem: &str, typ: &str) -> Result<Keyring, KeyError> {
    let private =
        RsaPrivateKey::from_pkcs8_pem(pem).map_err(|e| KeyError::Generation(e.to_string()))?;
    let der = rsa::pkcs8::EncodePrivateKey::to_pkcs8_der(&private)
        .map_err(|e| KeyError::Generation(e.to_string()))?;
    let record = KeyRecord {
        kid: jwk::Jwk::from_public_key(&private.to_public_key()).kid,
        created_at: 0,
        activates_at: 0,
        retires_at: None,
    };
    let key = parse(
        StoredKey {
            record,
            pkcs8_der: zeroize::Zeroizing::new(der.as_bytes().to_vec()),
        },
        typ,
    )?;
    let policy = Policy {
        rotation_interval: 0,
        publish_lead: 0,
        reload_interval: 0,
        max_token_ttl: 0,
        jwks_max_age: 0,
    };
    Ok(Keyring::new(&[Arc::new(key)], 0, &policy)?)
}

/// The configured keystore (file or postgres), opened and migrated.
pub async fn open_store(settings: &Settings) -> Result<KeyStore, KeyError> {
    let kek = Arc::new(KekRing::from_settings(&settings.keys)?);
    Ok(match settings.keys.store {
        KeyStoreKind::File => KeyStore::File(FileKeyStore::open(&settings.keys.dir, kek)?),
        KeyStoreKind::Postgres => KeyStore::Postgres(
            PgKeyStore::open(
                settings.keys.database_url.expose_url(),
                &settings.keys.database_schema,
                kek,
            )
            .await?,
        ),
    })
}

/// Keeps already parsed keys (by kid, with their current record) and parses only new ones.
fn parse_new(
    known: &[Arc<LoadedKey>],
    stored: Vec<StoredKey>,
    typ: &str,
) -> Result<Vec<Arc<LoadedKey>>, KeyError> {
    stored
        .into_iter()
        .map(|s| {
            if let Some(k) = known.iter().find(|k| k.record.kid == s.record.kid) {
                return Ok(if k.record == s.record {
                    k.clone()
                } else {
                    Arc::new(LoadedKey {
                        record: s.record,
                        jwk: k.jwk.clone(),
                        signer: k.signer.clone(),
                        decoding: k.decoding.clone(),
                    })
                });
            }
            parse(s, typ).map(Arc::new)
        })
        .collect()
}

fn parse(stored: StoredKey, typ: &str) -> Result<LoadedKey, KeyError> {
    let kid = stored.record.kid.clone();
    let unusable = |reason: String| KeyError::Unusable {
        kid: kid.clone(),
        reason,
    };
    let private =
        RsaPrivateKey::from_pkcs8_der(&stored.pkcs8_der).map_err(|e| unusable(e.to_string()))?;
    let jwk = jwk::Jwk::from_public_key(&private.to_public_key());
    if jwk.kid != kid {
        return Err(unusable(format!(
            "its thumbprint is {}, not the kid it is stored under",
            jwk.kid
        )));
    }
    let signer = signer::Signer::from_pkcs8_der(&kid, &stored.pkcs8_der, typ)
        .map_err(|e| unusable(e.to_string()))?;
    let decoding = jsonwebtoken::DecodingKey::from_rsa_components(&jwk.n, &jwk.e)
        .map_err(|e| unusable(e.to_string()))?;
    Ok(LoadedKey {
        record: stored.record,
        jwk,
        signer: Arc::new(signer),
        decoding: Arc::new(decoding),
    })
}
