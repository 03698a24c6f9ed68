//! The keystore seam: where key records and (sealed) private keys live — a folder, or
//! PostgreSQL shared by every replica. Both apply a plan under a lock, so concurrent
//! rotations on several instances produce exactly one new key.

pub mod file;
pub mod pg;

use rsa::RsaPrivateKey;
use rsa::pkcs8::EncodePrivateKey;
use zeroize::Zeroizing;

use super::KeyError;
use super::jwk::Jwk;
use super::policy::Change;
use super::record::KeyRecord;
use crate::infra::clock::UnixTime;
use file::FileKeyStore;
use pg::PgKeyStore;

/// A key as a store returns it: its record and PKCS#8 DER private key (decrypted).
pub struct StoredKey {
    pub record: KeyRecord,
    pub pkcs8_der: Zeroizing<Vec<u8>>,
}

/// What a plan did, for the caller and the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    Generated(KeyRecord),
    Retired { kid: String, at: UnixTime },
    Removed { kid: String },
}

impl Applied {
    pub fn action(&self) -> &'static str {
        match self {
            Self::Generated(_) => "generate",
            Self::Retired { .. } => "retire",
            Self::Removed { .. } => "remove",
        }
    }

    pub fn kid(&self) -> &str {
        match self {
            Self::Generated(r) => &r.kid,
            Self::Retired { kid, .. } | Self::Removed { kid } => kid,
        }
    }
}

/// A planning function: given the current records, what to change (or why not).
pub type Plan = Box<dyn FnOnce(&[KeyRecord]) -> Result<Vec<Change>, KeyError> + Send>;

/// One audit record per key event.
pub fn audit(actor: &str, applied: &Applied, at: UnixTime) {
    tracing::info!(
        target: "tessera::audit",
        event = "key",
        action = applied.action(),
        kid = applied.kid(),
        by = actor,
        at = crate::infra::clock::rfc3339(at),
        "key event"
    );
}

/// A freshly generated key: its DER and record (kid = RFC 7638 thumbprint).
pub fn generate(
    bits: usize,
    now: UnixTime,
    activates_at: UnixTime,
) -> Result<(KeyRecord, Zeroizing<Vec<u8>>), KeyError> {
    let key = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, bits)
        .map_err(|e| KeyError::Generation(e.to_string()))?;
    let der = key
        .to_pkcs8_der()
        .map_err(|e| KeyError::Generation(e.to_string()))?;
    let record = KeyRecord {
        kid: Jwk::from_public_key(&key.to_public_key()).kid,
        created_at: now,
        activates_at,
        retires_at: None,
    };
    Ok((record, Zeroizing::new(der.as_bytes().to_vec())))
}

#[derive(Debug)]
pub enum KeyStore {
    File(FileKeyStore),
    Postgres(PgKeyStore),
}

impl KeyStore {
    pub fn name(&self) -> &'static str {
        match self {
            Self::File(_) => "file",
            Self::Postgres(_) => "postgres",
        }
    }

    /// A cheap fingerprint of the keyring; it changes with every applied plan.
    pub async fn version(&self) -> Result<String, KeyError> {
        match self {
            Self::File(f) => {
                let f = f.clone();
                blocking(move || f.version()).await
            }
            Self::Postgres(p) => p.version().await,
        }
    }

    /// Every key with its private key, and the version they were read at.
    pub async fn load(&self) -> Result<(String, Vec<StoredKey>), KeyError> {
        match self {
            Self::File(f) => {
                let f = f.clone();
                blocking(move || f.load()).await
            }
            Self::Postgres(p) => p.load().await,
        }
    }

    /// Runs `plan` on the current records under the store's lock and applies it; keys
    /// are generated (`bits`) inside the lock, so no two instances both generate.
    pub async fn apply(
        &self,
        actor: &str,
        now: UnixTime,
        bits: usize,
        plan: Plan,
    ) -> Result<Vec<Applied>, KeyError> {
        let applied = match self {
            Self::File(f) => {
                let (f, actor) = (f.clone(), actor.to_owned());
                blocking(move || f.apply(&actor, now, bits, plan)).await?
            }
            Self::Postgres(p) => p.apply(actor, now, bits, plan).await?,
        };
        for a in &applied {
            audit(actor, a, now);
        }
        Ok(applied)
    }

    /// Of `kids`, those no rotation of this keystore recorded (file store: no `generate`
    /// or `import` line in its audit log; PostgreSQL: every change goes through a plan).
    pub async fn unrecorded(&self, kids: &[String]) -> Vec<String> {
        match self {
            Self::File(f) => {
                let (f, kids) = (f.clone(), kids.to_vec());
                blocking(move || {
                    let recorded = f.recorded_kids();
                    Ok(kids.into_iter().filter(|k| !recorded.contains(k)).collect())
                })
                .await
                .unwrap_or_default()
            }
            Self::Postgres(_) => Vec::new(),
        }
    }

    /// Re-seals every private key under the current KEK; returns how many changed.
    pub async fn rewrap(&self, actor: &str, now: UnixTime) -> Result<usize, KeyError> {
        match self {
            Self::File(f) => {
                let (f, actor) = (f.clone(), actor.to_owned());
                blocking(move || f.rewrap(&actor, now)).await
            }
            Self::Postgres(p) => p.rewrap(actor, now).await,
        }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, KeyError> + Send + 'static,
) -> Result<T, KeyError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| KeyError::Generation(e.to_string()))?
}
