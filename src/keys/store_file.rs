//! The file keystore: `keys.dir/<kid>.pem` (PKCS#8, mode 0600) plus `keyring.json`.
//!
//! Invariants: a private key file readable by group or others is refused, never loaded;
//! files are written to a temporary name then renamed, so a reader never sees half a file.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rsa::RsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::keyring::KeyRecord;

const KEYRING_FILE: &str = "keyring.json";

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
    #[error("keys.dir: {path} is not a PKCS#8 RSA private key in PEM form")]
    BadKey { path: PathBuf },
    #[error("keys.dir: key file {path} holds kid {actual}, not the {expected} its name says")]
    KidMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
}

/// A key as the store holds it: metadata and the parsed private key.
pub struct StoredKey {
    pub record: KeyRecord,
    pub private_key: RsaPrivateKey,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct KeyringFile {
    version: u32,
    keys: Vec<KeyRecord>,
}

#[derive(Debug, Clone)]
pub struct FileKeyStore {
    dir: PathBuf,
}

impl FileKeyStore {
    /// Opens (creating with mode 0700 if needed) the keystore folder.
    pub fn open(dir: &Path) -> Result<Self, FileStoreError> {
        if !dir.exists() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|source| FileStoreError::Io {
                    action: "create",
                    path: dir.to_owned(),
                    source,
                })?;
        }
        Ok(Self {
            dir: dir.to_owned(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn key_path(&self, kid: &str) -> PathBuf {
        self.dir.join(format!("{kid}.pem"))
    }

    /// Every key of the keyring with its private key, checked and parsed.
    pub fn load(&self) -> Result<Vec<StoredKey>, FileStoreError> {
        let records = self.read_records()?;
        records
            .into_iter()
            .map(|record| {
                let path = self.key_path(&record.kid);
                let private_key = read_private_key(&path)?;
                let actual = super::jwk::Jwk::from_public_key(&private_key.to_public_key()).kid;
                if actual != record.kid {
                    return Err(FileStoreError::KidMismatch {
                        path,
                        expected: record.kid,
                        actual,
                    });
                }
                Ok(StoredKey {
                    record,
                    private_key,
                })
            })
            .collect()
    }

    fn read_records(&self) -> Result<Vec<KeyRecord>, FileStoreError> {
        let path = self.dir.join(KEYRING_FILE);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(FileStoreError::Io {
                    action: "read",
                    path,
                    source,
                });
            }
        };
        let file: KeyringFile =
            serde_json::from_str(&text).map_err(|e| FileStoreError::BadKeyring {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        Ok(file.keys)
    }

    /// Stores a new private key and appends its record to the keyring.
    pub fn add(&self, record: KeyRecord, key: &RsaPrivateKey) -> Result<(), FileStoreError> {
        let path = self.key_path(&record.kid);
        let pem = key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|_| FileStoreError::BadKey { path: path.clone() })?;
        write_atomically(&path, pem.as_bytes(), 0o600)?;
        let mut records = self.read_records()?;
        records.retain(|r| r.kid != record.kid);
        records.push(record);
        self.write_records(records)
    }

    fn write_records(&self, keys: Vec<KeyRecord>) -> Result<(), FileStoreError> {
        let file = KeyringFile { version: 1, keys };
        let json = serde_json::to_vec_pretty(&file).unwrap_or_default();
        write_atomically(&self.dir.join(KEYRING_FILE), &json, 0o600)
    }
}

fn read_private_key(path: &Path) -> Result<RsaPrivateKey, FileStoreError> {
    let io = |action| {
        move |source| FileStoreError::Io {
            action,
            path: path.to_owned(),
            source,
        }
    };
    let mode = fs::metadata(path).map_err(io("read"))?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(FileStoreError::InsecurePermissions {
            path: path.to_owned(),
            mode,
        });
    }
    let pem = Zeroizing::new(fs::read_to_string(path).map_err(io("read"))?);
    RsaPrivateKey::from_pkcs8_pem(&pem).map_err(|_| FileStoreError::BadKey {
        path: path.to_owned(),
    })
}

fn write_atomically(path: &Path, contents: &[u8], mode: u32) -> Result<(), FileStoreError> {
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let io = |action, p: &Path| {
        let p = p.to_owned();
        move |source| FileStoreError::Io {
            action,
            path: p,
            source,
        }
    };
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io("write", &tmp))?;
    file.write_all(contents).map_err(io("write", &tmp))?;
    file.sync_all().map_err(io("write", &tmp))?;
    fs::rename(&tmp, path).map_err(io("rename", path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::keyring::KeyState;

    fn fixture() -> RsaPrivateKey {
        let pem = include_str!("../../tests/fixtures/rsa-2048-a.pem");
        RsaPrivateKey::from_pkcs8_pem(pem).expect("fixture key")
    }

    fn record(kid: &str) -> KeyRecord {
        KeyRecord {
            kid: kid.into(),
            state: KeyState::Active,
            created_at: 1,
            activates_at: 1,
            retires_at: None,
        }
    }

    #[test]
    fn stores_keys_with_mode_0600_and_reads_them_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FileKeyStore::open(&dir.path().join("keys")).expect("open");
        let key = fixture();
        let kid = crate::keys::jwk::Jwk::from_public_key(&key.to_public_key()).kid;
        store.add(record(&kid), &key).expect("add");

        let mode = fs::metadata(store.key_path(&kid))
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = fs::metadata(store.dir())
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o777, 0o700);

        let loaded = store.load().expect("load");
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].record.kid, kid);
    }

    #[test]
    fn refuses_a_key_readable_by_others() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FileKeyStore::open(dir.path()).expect("open");
        let key = fixture();
        let kid = crate::keys::jwk::Jwk::from_public_key(&key.to_public_key()).kid;
        store.add(record(&kid), &key).expect("add");
        fs::set_permissions(store.key_path(&kid), fs::Permissions::from_mode(0o644))
            .expect("chmod");
        let err = store.load().err().expect("refused");
        assert!(matches!(err, FileStoreError::InsecurePermissions { .. }));
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }

    #[test]
    fn refuses_a_key_whose_file_name_lies_about_its_kid() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FileKeyStore::open(dir.path()).expect("open");
        store
            .add(record("not-the-thumbprint"), &fixture())
            .expect("add");
        assert!(matches!(
            store.load(),
            Err(FileStoreError::KidMismatch { .. })
        ));
    }
}
