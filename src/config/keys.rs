//! `[keys]`: the keystore (file or PostgreSQL), generated key size, the rotation
//! schedule and the key-encryption keys (KEKs) that seal private keys at rest.
//!
//! Invariants: KEKs are parsed at load into their 32 bytes (`encryption_key_file` is
//! read then, into `encryption_key`); the postgres store always has a KEK; the rotation
//! interval exceeds the publish lead.

use std::path::PathBuf;

use serde::Deserialize;

use super::types::Kek;
use super::urls::DatabaseUrl;
use super::{ConfigError, check_nonzero, invalid};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyStoreKind {
    File,
    Postgres,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeySettings {
    pub store: KeyStoreKind,
    pub dir: PathBuf,
    pub rsa_bits: usize,
    pub rotation_interval_seconds: u64,
    pub publish_lead_seconds: u64,
    pub reload_interval_seconds: u64,
    pub database_url: DatabaseUrl,
    /// The KEK that seals (and opens) private keys at rest; `None` = keys in clear
    /// (file store only). Filled from `encryption_key_file` at load when that is set.
    #[serde(deserialize_with = "super::types::optional_kek")]
    pub encryption_key: Option<Kek>,
    pub encryption_key_file: Option<PathBuf>,
    /// Earlier KEKs, still accepted for reading until `tessera keys rewrap`.
    pub previous_encryption_keys: Vec<Kek>,
    /// PostgreSQL schema of the keystore's tables.
    pub database_schema: String,
}

impl Default for KeySettings {
    fn default() -> Self {
        Self {
            store: KeyStoreKind::File,
            dir: PathBuf::from("keys"),
            rsa_bits: 2048,
            rotation_interval_seconds: 30 * 24 * 3600,
            publish_lead_seconds: 1800,
            reload_interval_seconds: 5,
            database_url: "postgres://postgres@127.0.0.1:5432/tessera"
                .parse()
                .expect("the default database URL is valid"),
            encryption_key: None,
            encryption_key_file: None,
            previous_encryption_keys: Vec::new(),
            database_schema: "public".into(),
        }
    }
}

impl KeySettings {
    /// Reads `encryption_key_file` (if set) into `encryption_key`.
    pub(crate) fn read_files(&mut self) -> Result<(), ConfigError> {
        let Some(path) = &self.encryption_key_file else {
            return Ok(());
        };
        let text = zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|_| {
            invalid(
                "keys.encryption_key_file",
                format!("= {} cannot be read", path.display()),
                "point it at a file holding the base64 KEK, or use keys.encryption_key",
            )
        })?);
        let kek = text
            .parse::<Kek>()
            .map_err(|e| invalid("keys.encryption_key_file", e.problem, e.fix))?;
        self.encryption_key = Some(kek);
        Ok(())
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.store == KeyStoreKind::Postgres {
            if self.encryption_key.is_none() {
                return Err(invalid(
                    "keys.encryption_key",
                    "is required with keys.store = \"postgres\"",
                    "set it (or keys.encryption_key_file) to `openssl rand -base64 32`; private keys are never stored in clear in the database",
                ));
            }
            let schema = &self.database_schema;
            if schema.is_empty()
                || schema.len() > 63
                || !schema
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                return Err(invalid(
                    "keys.database_schema",
                    "must be 1 to 63 of a-z, 0-9 and _",
                    "the default is \"public\"",
                ));
            }
        }
        if ![2048, 3072, 4096].contains(&self.rsa_bits) {
            return Err(invalid(
                "keys.rsa_bits",
                format!("= {} is not supported", self.rsa_bits),
                "use 2048, 3072 or 4096",
            ));
        }
        if self.dir.as_os_str().is_empty() {
            return Err(invalid(
                "keys.dir",
                "is empty",
                "set the folder of the file keystore, e.g. \"keys\"",
            ));
        }
        if self.rotation_interval_seconds != 0
            && self.rotation_interval_seconds <= self.publish_lead_seconds
        {
            return Err(invalid(
                "keys.rotation_interval_seconds",
                format!(
                    "({}) must exceed keys.publish_lead_seconds ({})",
                    self.rotation_interval_seconds, self.publish_lead_seconds
                ),
                "rotate less often than the publish lead, or set 0 to rotate only by hand",
            ));
        }
        check_nonzero(
            "keys.reload_interval_seconds",
            self.reload_interval_seconds,
            "the default is 5",
        )
    }
}
