//! The file keystore: `keys.dir/keyring.json` (records), one private key per file —
//! `<kid>.pem` (PKCS#8, mode 0600) or, with a KEK configured, `<kid>.sealed.json`
//! (AES-256-GCM) — and `audit.jsonl` (one line per key event).
//!
//! Invariants: the folder is trusted only when it and everything in it belong to this
//! process's user and nobody else can write there (nor read a private key or
//! `keyring.json`), checked before every read and every plan — else nothing is loaded;
//! key files and `keyring.json` are opened without following symbolic links; files are
//! written to a temporary name then renamed; plans run under an exclusive lock on
//! `keys.dir/.lock`, so instances sharing the folder never both rotate; private key files
//! without a `keyring.json` are refused, never orphaned by a new key.

use std::fs;
use std::io::Read as _;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
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
    /// The folder or a file in it could be written (or a secret read) by someone else.
    #[error("keys.dir: {path} {problem}; {fix}")]
    Unsafe {
        path: PathBuf,
        problem: String,
        fix: String,
    },
    #[error(
        "keys.dir: {dir} holds private key files ({files}) but no keyring.json; restore keyring.json from a backup, or move those files elsewhere to start with a new key"
    )]
    Orphaned { dir: PathBuf, files: String },
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

    /// SHA-256 of `keyring.json`: changes whenever a plan is applied. The folder is
    /// checked first, so an unsafe folder fails every maintenance round.
    pub fn version(&self) -> Result<String, KeyError> {
        self.check_folder()?;
        let path = self.dir.join(KEYRING_FILE);
        match read_secret_file(&path) {
            Ok(text) => Ok(URL_SAFE_NO_PAD.encode(Sha256::digest(text.as_bytes()))),
            Err(FileStoreError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                Ok("empty".into())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The folder and every entry in it: owned by this process's user, writable by no
    /// one else, no symbolic link; private keys and `keyring.json` readable by no one
    /// else either. Anyone else who can write here can plant a signing key.
    pub fn check_folder(&self) -> Result<(), FileStoreError> {
        let me = rustix::process::geteuid().as_raw();
        let meta = fs::metadata(&self.dir).map_err(io("read", &self.dir))?;
        check_entry(&self.dir, &meta, me, false)?;
        for entry in fs::read_dir(&self.dir).map_err(io("read", &self.dir))? {
            let entry = entry.map_err(io("read", &self.dir))?;
            let path = entry.path();
            let meta = fs::symlink_metadata(&path).map_err(io("read", &path))?;
            if meta.file_type().is_symlink() {
                return Err(FileStoreError::Unsafe {
                    problem: "is a symbolic link, which the keystore does not follow".into(),
                    fix: format!(
                        "put the file itself in its place: `cp --remove-destination \"$(readlink -f {0})\" {0}`",
                        path.display()
                    ),
                    path,
                });
            }
            let secret = entry
                .file_name()
                .to_str()
                .is_some_and(|n| n == KEYRING_FILE || is_private_key_file(n));
            check_entry(&path, &meta, me, secret)?;
        }
        Ok(())
    }

    /// Private key files in the folder when there is no `keyring.json`: those keys would
    /// be orphaned by a new one.
    fn check_not_orphaned(&self) -> Result<(), FileStoreError> {
        if self.dir.join(KEYRING_FILE).exists() {
            return Ok(());
        }
        let mut files: Vec<String> = fs::read_dir(&self.dir)
            .map_err(io("read", &self.dir))?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| is_private_key_file(n))
            .collect();
        if files.is_empty() {
            return Ok(());
        }
        files.sort();
        Err(FileStoreError::Orphaned {
            dir: self.dir.clone(),
            files: files.join(", "),
        })
    }

    /// Kids that a `generate` or `import` line of `audit.jsonl` records.
    pub fn recorded_kids(&self) -> Vec<String> {
        let Ok(text) = fs::read_to_string(self.dir.join(AUDIT_FILE)) else {
            return Vec::new();
        };
        text.lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|v| matches!(v["action"].as_str(), Some("generate" | "import")))
            .filter_map(|v| v["kid"].as_str().map(str::to_owned))
            .collect()
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

    /// The records of `keyring.json`; none when it does not exist (unless key files do).
    fn read_records(&self) -> Result<Vec<KeyRecord>, FileStoreError> {
        let path = self.dir.join(KEYRING_FILE);
        let text = match read_secret_file(&path) {
            Ok(text) => text,
            Err(FileStoreError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                self.check_not_orphaned()?;
                return Ok(Vec::new());
            }
            Err(e) => return Err(e),
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
        self.check_folder()?;
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
        // A new key is in the audit log before it is in keyring.json, so a replica that
        // reads the folder in between never takes it for a planted key.
        for a in applied
            .iter()
            .filter(|a| matches!(a, Applied::Generated(_)))
        {
            self.append_audit(actor, a.action(), a.kid(), now)?;
        }
        self.write_records(records)?;
        for a in applied
            .iter()
            .filter(|a| !matches!(a, Applied::Generated(_)))
        {
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
        self.check_folder()?;
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

/// A private key file: `<kid>.pem` or `<kid>.sealed.json`.
fn is_private_key_file(name: &str) -> bool {
    name.ends_with(".pem") || name.ends_with(".sealed.json")
}

/// Refuses an entry someone else owns or may write (or, for a secret, read).
fn check_entry(
    path: &Path,
    meta: &fs::Metadata,
    me: u32,
    secret: bool,
) -> Result<(), FileStoreError> {
    let refuse = |problem: String, fix: String| FileStoreError::Unsafe {
        path: path.to_owned(),
        problem,
        fix,
    };
    let shown = path.display();
    if meta.uid() != me {
        return Err(refuse(
            format!(
                "is owned by uid {}, not by this process's user (uid {me}): whoever owns it could plant a signing key",
                meta.uid()
            ),
            format!("remove it if nobody here put it there, else run `chown {me} {shown}`"),
        ));
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o022 != 0 {
        return Err(refuse(
            format!(
                "is writable by group or others (mode {mode:o}): anyone could plant a signing key"
            ),
            format!("run `chmod go-w {shown}`"),
        ));
    }
    if secret && mode & 0o077 != 0 {
        return Err(refuse(
            format!("is readable by group or others (mode {mode:o})"),
            format!("run `chmod 600 {shown}`"),
        ));
    }
    Ok(())
}

/// Reads a file that only this user may read, without following a symbolic link; the
/// mode is checked on the opened file, so it cannot be swapped in between.
fn read_secret_file(path: &Path) -> Result<String, FileStoreError> {
    let mut file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
        .map_err(io("read", path))?;
    let mode = file.metadata().map_err(io("read", path))?.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(FileStoreError::Unsafe {
            path: path.to_owned(),
            problem: format!("is readable by group or others (mode {mode:o})"),
            fix: format!("run `chmod 600 {}`", path.display()),
        });
    }
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(io("read", path))?;
    Ok(text)
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
    let mut records = store.read_records()?;
    store.write_private_key(&kid, &der)?;
    records.retain(|r| r.kid != kid);
    records.push(KeyRecord {
        kid: kid.clone(),
        created_at: activates_at,
        activates_at,
        retires_at: None,
    });
    store.append_audit("import", "import", &kid, activates_at)?;
    store.write_records(records)?;
    Ok(kid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

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

    fn chmod(path: &Path, mode: u32) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
    }

    #[test]
    fn refuses_a_folder_or_file_others_can_write() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = dir.path().join("keys");
        let kid = import_pem(&keys, PEM, 1).expect("import");
        let store = FileKeyStore::open(&keys, Arc::new(KekRing::default())).expect("open");
        store.load().expect("a safe folder loads");

        chmod(&keys, 0o777);
        let err = store.load().err().expect("refused").to_string();
        assert!(err.contains("writable by group or others"), "{err}");
        assert!(err.contains("chmod go-w"), "{err}");
        chmod(&keys, 0o700);

        chmod(&keys.join(KEYRING_FILE), 0o620);
        let err = store.version().expect_err("refused").to_string();
        assert!(err.contains("keyring.json is writable"), "{err}");
        chmod(&keys.join(KEYRING_FILE), 0o644);
        let err = store.version().expect_err("refused").to_string();
        assert!(err.contains("keyring.json is readable"), "{err}");
        chmod(&keys.join(KEYRING_FILE), 0o600);

        store
            .apply("test", 2, 2048, Box::new(|_| Ok(Vec::new())))
            .expect("a plan on a safe folder");
        chmod(&store.pem_path(&kid), 0o606);
        let err = store
            .apply("test", 2, 2048, Box::new(|_| Ok(Vec::new())))
            .expect_err("a plan is refused too")
            .to_string();
        assert!(err.contains(&format!("{kid}.pem is writable")), "{err}");
    }

    #[test]
    fn refuses_a_symbolic_link_and_does_not_follow_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = dir.path().join("keys");
        let kid = import_pem(&keys, PEM, 1).expect("import");
        let store = FileKeyStore::open(&keys, Arc::new(KekRing::default())).expect("open");
        let elsewhere = dir.path().join("elsewhere.pem");
        fs::rename(store.pem_path(&kid), &elsewhere).expect("move");
        std::os::unix::fs::symlink(&elsewhere, store.pem_path(&kid)).expect("symlink");
        let err = store.load().err().expect("refused").to_string();
        assert!(err.contains("symbolic link"), "{err}");
        let err = read_secret_file(&store.pem_path(&kid))
            .expect_err("not followed")
            .to_string();
        assert!(err.contains("cannot read"), "{err}");
    }

    #[test]
    fn key_files_without_a_keyring_stop_the_load_instead_of_being_orphaned() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = dir.path().join("keys");
        let kid = import_pem(&keys, PEM, 1).expect("import");
        let store = FileKeyStore::open(&keys, Arc::new(KekRing::default())).expect("open");
        fs::remove_file(keys.join(KEYRING_FILE)).expect("rm");
        let err = store.load().err().expect("refused").to_string();
        assert!(err.contains(&format!("{kid}.pem")), "{err}");
        assert!(err.contains("restore keyring.json"), "{err}");
        let err = store
            .apply("test", 2, 2048, Box::new(|_| Ok(Vec::new())))
            .expect_err("no plan on orphans")
            .to_string();
        assert!(err.contains("no keyring.json"), "{err}");
    }

    #[test]
    fn imports_and_generations_are_recorded_in_the_audit_log() {
        let dir = tempfile::tempdir().expect("tempdir");
        let kid = import_pem(dir.path(), PEM, 1).expect("import");
        let store = FileKeyStore::open(dir.path(), Arc::new(KekRing::default())).expect("open");
        assert_eq!(store.recorded_kids(), vec![kid]);
    }
}
