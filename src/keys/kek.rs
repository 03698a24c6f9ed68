//! Encryption of private keys at rest: AES-256-GCM under a key-encryption key (KEK).
//!
//! Every sealed key names the KEK that sealed it (`kek_id`, a fingerprint, never the KEK),
//! and its `kid` is bound as associated data, so a ciphertext cannot be moved to another
//! key's row. Previous KEKs stay usable for reading until `tessera keys rewrap` has
//! re-sealed everything under the current one.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::config::{self, KeySettings};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KekError {
    #[error(
        "{key} is not the base64 of 32 random bytes; generate one with `openssl rand -base64 32`"
    )]
    Invalid { key: &'static str },
    #[error(
        "key {kid} is encrypted under KEK {kek_id}, but keys.encryption_key is not set; set it (or keys.encryption_key_file) to that KEK"
    )]
    Missing { kid: String, kek_id: String },
    #[error(
        "key {kid} is encrypted under KEK {kek_id}, which is neither keys.encryption_key (KEK {current}) nor in keys.previous_encryption_keys; configure the KEK it was sealed with"
    )]
    Unknown {
        kid: String,
        kek_id: String,
        current: String,
    },
    #[error("key {kid} does not decrypt under KEK {kek_id}: wrong KEK or corrupted ciphertext")]
    Corrupt { kid: String, kek_id: String },
    #[error("encryption failed")]
    Seal,
}

/// A private key sealed under a KEK.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    pub kek_id: String,
    #[serde(with = "b64")]
    pub nonce: Vec<u8>,
    #[serde(with = "b64")]
    pub ciphertext: Vec<u8>,
}

mod b64 {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

/// A KEK ready to seal and open (its `Debug` shows the id and the algorithm only).
#[derive(Debug)]
struct Kek {
    id: String,
    key: LessSafeKey,
}

impl Kek {
    fn new(kek: &config::Kek, key: &'static str) -> Result<Self, KekError> {
        let unbound = UnboundKey::new(&AES_256_GCM, kek.expose_bytes())
            .map_err(|_| KekError::Invalid { key })?;
        Ok(Self {
            id: kek.id().to_owned(),
            key: LessSafeKey::new(unbound),
        })
    }
}

/// The configured KEKs: the current one seals, every one opens.
#[derive(Debug, Default)]
pub struct KekRing {
    current: Option<Kek>,
    previous: Vec<Kek>,
}

impl KekRing {
    /// The KEKs of `[keys]`, parsed at load (`encryption_key` or its file, and
    /// `previous_encryption_keys`).
    pub fn from_settings(keys: &KeySettings) -> Result<Self, KekError> {
        Self::new(keys.encryption_key.as_ref(), &keys.previous_encryption_keys)
    }

    pub fn new(current: Option<&config::Kek>, previous: &[config::Kek]) -> Result<Self, KekError> {
        let current = current
            .map(|k| Kek::new(k, "keys.encryption_key"))
            .transpose()?;
        let previous = previous
            .iter()
            .map(|k| Kek::new(k, "keys.previous_encryption_keys"))
            .collect::<Result<_, _>>()?;
        Ok(Self { current, previous })
    }

    /// The id of the KEK that seals, if any.
    pub fn current_id(&self) -> Option<&str> {
        self.current.as_ref().map(|k| k.id.as_str())
    }

    pub fn seal(&self, kid: &str, plaintext: &[u8]) -> Result<Sealed, KekError> {
        let kek = self.current.as_ref().ok_or(KekError::Seal)?;
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| KekError::Seal)?;
        let mut buffer = plaintext.to_vec();
        kek.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(kid.as_bytes()),
                &mut buffer,
            )
            .map_err(|_| KekError::Seal)?;
        Ok(Sealed {
            kek_id: kek.id.clone(),
            nonce: nonce.to_vec(),
            ciphertext: buffer,
        })
    }

    pub fn open(&self, kid: &str, sealed: &Sealed) -> Result<Zeroizing<Vec<u8>>, KekError> {
        let kek = self
            .current
            .iter()
            .chain(&self.previous)
            .find(|k| k.id == sealed.kek_id)
            .ok_or_else(|| match &self.current {
                None => KekError::Missing {
                    kid: kid.to_owned(),
                    kek_id: sealed.kek_id.clone(),
                },
                Some(current) => KekError::Unknown {
                    kid: kid.to_owned(),
                    kek_id: sealed.kek_id.clone(),
                    current: current.id.clone(),
                },
            })?;
        let corrupt = || KekError::Corrupt {
            kid: kid.to_owned(),
            kek_id: sealed.kek_id.clone(),
        };
        let nonce = Nonce::try_assume_unique_for_key(&sealed.nonce).map_err(|_| corrupt())?;
        let mut buffer = Zeroizing::new(sealed.ciphertext.clone());
        let plain_len = kek
            .key
            .open_in_place(nonce, Aad::from(kid.as_bytes()), &mut buffer)
            .map_err(|_| corrupt())?
            .len();
        buffer.truncate(plain_len);
        Ok(buffer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(current: &str, previous: &[&str]) -> KekRing {
        let keys = KeySettings {
            encryption_key: Some(current.parse().expect("kek")),
            previous_encryption_keys: previous.iter().map(|s| s.parse().expect("kek")).collect(),
            ..KeySettings::default()
        };
        KekRing::from_settings(&keys).expect("valid")
    }

    const A: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
    const B: &str = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";

    #[test]
    fn seals_and_opens_bound_to_the_kid() {
        let r = ring(A, &[]);
        let sealed = r.seal("kid-1", b"secret key").expect("seal");
        assert_ne!(sealed.ciphertext, b"secret key");
        assert_eq!(&**r.open("kid-1", &sealed).expect("open"), b"secret key");
        assert!(
            matches!(r.open("kid-2", &sealed), Err(KekError::Corrupt { .. })),
            "moved to another row"
        );
    }

    #[test]
    fn previous_keks_open_and_missing_or_unknown_ones_are_named() {
        let sealed = ring(A, &[]).seal("k", b"x").expect("seal");
        assert!(
            ring(B, &[A]).open("k", &sealed).is_ok(),
            "rotated KEK still reads"
        );
        let err = ring(B, &[]).open("k", &sealed).expect_err("unknown");
        assert!(matches!(err, KekError::Unknown { .. }), "{err}");
        let err = KekRing::default().open("k", &sealed).expect_err("missing");
        assert!(
            err.to_string().contains("keys.encryption_key is not set"),
            "{err}"
        );
    }

    #[test]
    fn a_kek_must_be_32_bytes_of_base64() {
        let err = "c2hvcnQ=".parse::<config::Kek>().expect_err("short");
        assert!(
            err.to_string().contains("base64 of 32 random bytes"),
            "{err}"
        );
    }
}
