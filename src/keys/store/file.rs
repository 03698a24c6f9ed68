//! The file keystore: `keys.dir/keyring.json` (records), one private key per file —
//! `<kid>.pem` (PKCS#8, mode 0600) or, with a KEK configured, `<kid>.sealed.json`
//! (AES-256-GCM) — and `audit.jsonl` (one line per key event).
//!
//! Invariants: a private key file readable by group or others is refused, never loaded;
//! files are written to a temporary name then renamed; plans run under an exclusive
//! lock on `keys.dir/.lock`, so instances sharing the folder never both rotate.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::RsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::{Applied, Plan, StoredKey, generate};
use crate::infra::clock::UnixTime;
use crate::keys::KeyError;
use crate::keys::kek::{KekRing, Sealed};
use crate::keys::policy::Change;
use crate::keys::record::KeyRecord;

const KEYRING_FILE: &str = "keyring.json";
const LOCK_FILE: &str = ".lock";
const AUDIT_FILE: &str = "audit.jsonl";

#[derive(Debug, thiserror::Error)]
pub enum FileStoreError {
    #[error("keys.dir: cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "keys.dir: private key file {path} is readable by group or others (mode {mode:o}); run `chmod 600 {path}`"
    )]
    InsecurePermissions { path: PathBuf, mode: u32 },
    #[error("keys.dir: {path} is not a valid keyring file ({reason}); restore it from a backup")]
    BadKeyring { path: PathBuf, reason: String },
    #[error("keys.dir: {path} is not a PKCS#8 RSA private key")]
    BadKey { path: PathBuf },
    #[error("keys.dir: no private key file for key {kid} ({kid}.pem or {kid}.sealed.json)")]
    MissingKey { kid: String },
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct KeyringFile {
    version: u32,
    keys: Vec<KeyRecord>,
}

#[derive(Debug, Serialize)]
struct AuditLine<'a> {
    at: String,
    actor: &'a str,
    action: &'a str,
    kid: &'a str,
}

#[derive(Debug, Clone)]
pub struct FileKeyStore {
    dir: PathBuf,
    kek: Arc<KekRing>,
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> FileStoreError {
    let path = path.to_owned();
    move |source| FileStoreError::Io {
        action,
        path,
        source,
    }
}

impl FileKeyStore {
    /// Opens (creating with mode 0700 if needed) the keystore folder.
    pub fn open(dir: &Path, kek: Arc<KekRing>) -> Result<Self, FileStoreError> {
        if !dir.exists() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io("create", dir))?;
        }
        Ok(Self {
            dir: dir.to_owned(),
            kek,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn pem_path(&self, kid: &str) -> PathBuf {
        self.dir.join(format!("{kid}.pem"))
    }

    fn sealed_path(&self, kid: &str) -> PathBuf {
        self.dir.join(format!("{kid}.sealed.json"))
    }

    /// SHA-256 of `keyring.json`: changes whenever a plan is applied.
    pub fn version(&self) -> Result<String, KeyError> {
        let path = self.dir.join(KEYRING_FILE);
        match fs::read(&path) {
            Ok(bytes) => Ok(URL_SAFE_NO_PAD.encode(Sha256::digest(&bytes))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok("empty".into()),
            Err(e) => Err(io("read", &path)(e).into()),
        }
    }

    pub fn load(&self) -> Result<(String, Vec<StoredKey>), KeyError> {
        let version = self.version()?;
        let keys = self
            .read_records()?
            .into_iter()
            .map(|record| {
                let pkcs8_der = self.read_private_key(&record.kid)?;
                Ok(StoredKey { record, pkcs8_der })
            })
            .collect::<Result<_, KeyError>>()?;
        Ok((version, keys))
    }

    fn read_records(&self) -> Result<Vec<KeyRecord>, FileStoreError> {
        let path = self.dir.join(KEYRING_FILE);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io("read", &path)(e)),
        };
        let file: KeyringFile =
            serde_json::from_str(&text).map_err(|e| FileStoreError::BadKeyring {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        Ok(file.keys)
    }

    fn read_private_key(&self, kid: &str) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let sealed_path = self.sealed_path(kid);
        if sealed_path.exists() {
            let text = Zeroizing::new(read_secret_file(&sealed_path)?);
            let sealed: Sealed =
                serde_json::from_str(&text).map_err(|_| FileStoreError::BadKey {
                    path: sealed_path.clone(),
                })?;
            return Ok(self.kek.open(kid, &sealed)?);
        }
        let pem_path = self.pem_path(kid);
        if !pem_path.exists() {
            return Err(FileStoreError::MissingKey {
                kid: kid.to_owned(),
            }
            .into());
        }
        let pem = Zeroizing::new(read_secret_file(&pem_path)?);
        let key = RsaPrivateKey::from_pkcs8_pem(&pem).map_err(|_| FileStoreError::BadKey {
            path: pem_path.clone(),
        })?;
        let der = key
            .to_pkcs8_der()
            .map_err(|_| FileStoreError::BadKey { path: pem_path })?;
        Ok(Zeroizing::new(der.as_bytes().to_vec()))
    }

    /// Writes a private key: sealed when a KEK is configured, else PKCS#8 PEM; mode 0600.
    fn write_private_key(&self, kid: &str, der: &[u8]) -> Result<(), KeyError> {
        if self.kek.current_id().is_some() {
            let sealed = self.kek.seal(kid, der)?;
            let json = serde_json::to_vec_pretty(&sealed).unwrap_or_default();
            write_atomically(&self.sealed_path(kid), &json)?;
            remove_if_present(&self.pem_path(kid))?;
        } else {
            let key = RsaPrivateKey::from_pkcs8_der(der).map_err(|_| FileStoreError::BadKey {
                path: self.pem_path(kid),
            })?;
            let pem = key
                .to_pkcs8_pem(LineEnding::LF)
                .map_err(|_| FileStoreError::BadKey {
                    path: self.pem_path(kid),
                })?;
            write_atomically(&self.pem_path(kid), pem.as_bytes())?;
        }
        Ok(())
    }

    fn write_records(&self, keys: Vec<KeyRecord>) -> Result<(), FileStoreError> {
        let json = serde_json::to_vec_pretty(&KeyringFile { version: 1, keys }).unwrap_or_default();
        write_atomically(&self.dir.join(KEYRING_FILE), &json)
    }

    fn lock(&self) -> Result<fs::File, FileStoreError> {
        let path = self.dir.join(LOCK_FILE);
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(io("open", &path))?;
        file.lock().map_err(io("lock", &path))?;
        Ok(file)
    }

    pub fn apply(
        &self,
        actor: &str,
        now: UnixTime,
        bits: usize,
        plan: Plan,
    ) -> Result<Vec<Applied>, KeyError> {
        let _lock = self.lock()?;
        let mut records = self.read_records()?;
        let mut applied = Vec::new();
        for change in plan(&records)? {
            match change {
                Change::Generate { activates_at } => {
                    let (record, der) = generate(bits, now, activates_at)?;
                    self.write_private_key(&record.kid, &der)?;
                    records.push(record.clone());
                    applied.push(Applied::Generated(record));
                }
                Change::Retire { kid, at } => {
                    if let Some(r) = records.iter_mut().find(|r| r.kid == kid) {
                        r.retires_at = Some(at);
                        applied.push(Applied::Retired { kid, at });
                    }
                }
                Change::Remove { kid } => {
                    records.retain(|r| r.kid != kid);
                    applied.push(Applied::Removed { kid });
                }
            }
        }
        if applied.is_empty() {
            return Ok(applied);
        }
        self.write_records(records)?;
        for a in &applied {
            if let Applied::Removed { kid } = a {
                remove_if_present(&self.pem_path(kid))?;
                remove_if_present(&self.sealed_path(kid))?;
            }
            self.append_audit(actor, a.action(), a.kid(), now)?;
        }
        Ok(applied)
    }

    pub fn rewrap(&self, actor: &str, now: UnixTime) -> Result<usize, KeyError> {
        let Some(current) = self.kek.current_id().map(str::to_owned) else {
            return Err(KeyError::Generation(
                "keys.encryption_key is not set: nothing to rewrap under".into(),
            ));
        };
        let _lock = self.lock()?;
        let mut changed = 0;
        for record in self.read_records()? {
            let sealed_path = self.sealed_path(&record.kid);
            let already = sealed_path.exists()
                && serde_json::from_str::<Sealed>(&read_secret_file(&sealed_path)?)
                    .is_ok_and(|s| s.kek_id == current);
            if !already {
                let der = self.read_private_key(&record.kid)?;
                self.write_private_key(&record.kid, &der)?;
                self.append_audit(actor, "rewrap", &record.kid, now)?;
                changed += 1;
            }
        }
        Ok(changed)
    }

    fn append_audit(
        &self,
        actor: &str,
        action: &str,
        kid: &str,
        at: UnixTime,
    ) -> Result<(), FileStoreError> {
        let path = self.dir.join(AUDIT_FILE);
        let mut file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(io("open", &path))?;
        let line = AuditLine {
            at: crate::infra::clock::rfc3339(at),
            actor,
            action,
            kid,
        };
        let mut json = serde_json::to_vec(&line).unwrap_or_default();
        json.push(b'\n');
        file.write_all(&json).map_err(io("write", &path))
    }
}

fn read_secret_file(path: &Path) -> Result<String, FileStoreError> {
    let mode = fs::metadata(path)
        .map_err(io("read", path))?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        return Err(FileStoreError::InsecurePermissions {
            path: path.to_owned(),
            mode,
        });
    }
    fs::read_to_string(path).map_err(io("read", path))
}

fn remove_if_present(path: &Path) -> Result<(), FileStoreError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("remove", path)(e)),
        _ => Ok(()),
    }
}

fn write_atomically(path: &Path, contents: &[u8]) -> Result<(), FileStoreError> {
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io("write", &tmp))?;
    file.write_all(contents).map_err(io("write", &tmp))?;
    file.sync_all().map_err(io("write", &tmp))?;
    fs::rename(&tmp, path).map_err(io("rename", path))
}

/// Puts an existing PKCS#8 PEM key into `dir` as a key active since `activates_at`
/// (for tests and for bringing a key from elsewhere); returns its kid.
pub fn import_pem(dir: &Path, pem: &str, activates_at: UnixTime) -> Result<String, KeyError> {
    let store = FileKeyStore::open(dir, Arc::new(KekRing::default()))?;
    let key = RsaPrivateKey::from_pkcs8_pem(pem).map_err(|_| FileStoreError::BadKey {
        path: dir.to_owned(),
    })?;
    let der = Zeroizing::new(
        key.to_pkcs8_der()
            .map_err(|_| FileStoreError::BadKey {
                path: dir.to_owned(),
            })?
            .as_bytes()
            .to_vec(),
    );
    let kid = crate::keys::jwk::Jwk::from_public_key(&key.to_public_key()).kid;
    let _lock = store.lock()?;
    store.write_private_key(&kid, &der)?;
    let mut records = store.read_records()?;
    records.retain(|r| r.kid != kid);
    records.push(KeyRecord {
        kid: kid.clone(),
        created_at: activates_at,
        activates_at,
        retires_at: None,
    });
    store.write_records(records)?;
    Ok(kid)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEM: &str = include_str!("../../../tests/fixtures/rsa-2048-a.pem");

    #[test]
    fn stores_keys_with_mode_0600_and_reads_them_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = dir.path().join("keys");
        let kid = import_pem(&keys, PEM, 1).expect("import");
        let store = FileKeyStore::open(&keys, Arc::new(KekRing::default())).expect("open");
        let mode = fs::metadata(store.pem_path(&kid))
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = fs::metadata(store.dir())
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        let (_, loaded) = store.load().expect("load");
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].record.kid, kid);
    }

    #[test]
    fn refuses_a_key_readable_by_others() {
        let dir = tempfile::tempdir().expect("tempdir");
        let kid = import_pem(dir.path(), PEM, 1).expect("import");
        let store = FileKeyStore::open(dir.path(), Arc::new(KekRing::default())).expect("open");
        fs::set_permissions(store.pem_path(&kid), fs::Permissions::from_mode(0o644))
            .expect("chmod");
        let err = store.load().err().expect("refused");
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }

    #[test]
    fn with_a_kek_keys_are_sealed_and_rewrap_moves_them_to_the_new_kek() {
        let dir = tempfile::tempdir().expect("tempdir");
        let kid = import_pem(dir.path(), PEM, 1).expect("import");
        let settings = crate::config::KeySettings {
            encryption_key: Some(
                "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
                    .parse()
                    .expect("kek"),
            ),
            ..crate::config::KeySettings::default()
        };
        let kek = Arc::new(KekRing::from_settings(&settings).expect("kek"));
        let store = FileKeyStore::open(dir.path(), kek).expect("open");
        assert_eq!(store.rewrap("test", 2).expect("rewrap"), 1);
        assert!(!store.pem_path(&kid).exists(), "no clear copy left");
        let sealed = fs::read_to_string(store.sealed_path(&kid)).expect("sealed");
        assert!(!sealed.contains("PRIVATE KEY"));
        assert_eq!(store.rewrap("test", 3).expect("rewrap"), 0, "idempotent");
        assert_eq!(store.load().expect("load").1.len(), 1);

        let without = FileKeyStore::open(dir.path(), Arc::new(KekRing::default())).expect("open");
        let err = without.load().err().expect("needs the KEK");
        assert!(err.to_string().contains("keys.encryption_key"), "{err}");
        let audit = fs::read_to_string(dir.path().join(AUDIT_FILE)).expect("audit");
        assert!(audit.contains("\"action\":\"rewrap\""), "{audit}");
    }
}
