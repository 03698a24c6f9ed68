//! Value types of the configuration (hashes, KEKs, addresses; URLs are in `urls`) and the
//! serde glue that gives their errors the key's name: each is parsed (and so validated)
//! once, when the configuration is loaded, and consumers use the typed value as it is.
//!
//! Invariants: a value that exists is valid; `Debug` and `Display` never show a secret (a
//! KEK's bytes).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret, SecretBox};
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use sha2::Digest as _;

/// Why one value is wrong, and how to fix it; the loader adds the key's name in front.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub problem: String,
    pub fix: &'static str,
}

impl FieldError {
    pub fn new(problem: impl Into<String>, fix: &'static str) -> Self {
        Self {
            problem: problem.into(),
            fix,
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}; {}", self.problem, self.fix)
    }
}

/// Marks a serde message as one of ours, so the loader can put the key in front of it.
pub(crate) const FIELD_MARK: &str = "\u{1}";

pub(super) fn de_error<E: de::Error>(e: FieldError) -> E {
    E::custom(format!("{FIELD_MARK}{e}"))
}

/// Deserializes any `FromStr<Err = FieldError>` from a string.
pub(super) fn parse_str<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr<Err = FieldError>,
{
    let text = String::deserialize(d)?;
    text.parse().map_err(de_error)
}

/// Like [`parse_str`], with the empty string meaning "not set".
fn parse_optional<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr<Err = FieldError>,
{
    let text = String::deserialize(d)?;
    if text.trim().is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(de_error)
}

/// A SHA-256 digest, written as 64 hex digits in the configuration.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sha256([u8; 32]);

impl Sha256 {
    /// The digest of `secret`, as `secret_sha256` and `admin.token_sha256` hold it.
    pub fn of_secret(secret: &str) -> Self {
        Self(sha2::Sha256::digest(secret.as_bytes()).into())
    }

    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl FromStr for Sha256 {
    type Err = FieldError;

    fn from_str(s: &str) -> Result<Self, FieldError> {
        let mut bytes = [0u8; 32];
        match hex::decode_to_slice(s, &mut bytes) {
            Ok(()) => Ok(Self(bytes)),
            Err(_) => Err(FieldError::new(
                "is not a hex SHA-256 (64 hex digits)",
                "compute it with `printf %s 'the-secret' | sha256sum` or `tessera hash-secret`",
            )),
        }
    }
}

impl fmt::Display for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256({self})")
    }
}

impl<'de> Deserialize<'de> for Sha256 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_str(d)
    }
}

impl Serialize for Sha256 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// `admin.token_sha256`: a hash, or the empty string for "not set".
pub(crate) fn optional_sha256<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Sha256>, D::Error> {
    parse_optional(d)
}

/// `secret_sha256`: one hash, or a list of them (secret rotation).
pub(crate) fn one_or_more_sha256<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Sha256>, D::Error> {
    struct OneOrMore;

    impl<'de> Visitor<'de> for OneOrMore {
        type Value = Vec<Sha256>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a hex SHA-256 or a list of them")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            v.parse().map(|h| vec![h]).map_err(de_error)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut hashes = Vec::new();
            while let Some(h) = seq.next_element::<Sha256>()? {
                hashes.push(h);
            }
            Ok(hashes)
        }
    }

    d.deserialize_any(OneOrMore)
}

/// A key-encryption key: 32 bytes, written as base64, known by its id (the first 8 bytes
/// of its SHA-256, hex), which sealed keys record.
#[derive(Clone)]
pub struct Kek {
    id: String,
    bytes: Arc<SecretBox<[u8; 32]>>,
}

impl Kek {
    /// A fingerprint, safe to log and to store next to what the KEK sealed.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The key itself, for building the cipher only.
    pub fn expose_bytes(&self) -> &[u8; 32] {
        self.bytes.expose_secret()
    }
}

impl FromStr for Kek {
    type Err = FieldError;

    fn from_str(s: &str) -> Result<Self, FieldError> {
        let bad = || {
            FieldError::new(
                "is not the base64 of 32 random bytes",
                "generate one with `openssl rand -base64 32`",
            )
        };
        let decoded = zeroize::Zeroizing::new(STANDARD.decode(s.trim()).map_err(|_| bad())?);
        let bytes: [u8; 32] = decoded.as_slice().try_into().map_err(|_| bad())?;
        let id = hex::encode(&sha2::Sha256::digest(bytes)[..8]);
        Ok(Self {
            id,
            bytes: Arc::new(SecretBox::new(Box::new(bytes))),
        })
    }
}

impl PartialEq for Kek {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kek")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl<'de> Deserialize<'de> for Kek {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_str(d)
    }
}

/// `keys.encryption_key`: a KEK, or the empty string for "not set".
pub(crate) fn optional_kek<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Kek>, D::Error> {
    parse_optional(d)
}

/// A list of addresses or CIDRs (`10.0.0.0/8`, `fd00::/8`, `192.0.2.7`).
pub(crate) fn ip_nets<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ipnet::IpNet>, D::Error> {
    let texts = Vec::<String>::deserialize(d)?;
    texts
        .iter()
        .map(|text| {
            let t = text.trim();
            t.parse::<ipnet::IpNet>()
                .or_else(|_| t.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    de_error(FieldError::new(
                        format!("= {text:?} is not an address or CIDR"),
                        "write e.g. 10.0.0.0/8, fd00::/8 or 192.0.2.7",
                    ))
                })
        })
        .collect()
}

/// `server.admin_listen`: `address:port`, or empty for none.
pub(crate) fn optional_socket_addr<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<std::net::SocketAddr>, D::Error> {
    let text = Option::<String>::deserialize(d)?.unwrap_or_default();
    if text.trim().is_empty() {
        return Ok(None);
    }
    text.trim().parse().map(Some).map_err(|_| {
        de_error(FieldError::new(
            format!("= {text:?} is not an address:port"),
            "write e.g. 10.0.0.5:9090, or leave it empty to serve /admin and /metrics on server.listen",
        ))
    })
}

/// `server.listen`: `address:port`.
pub(crate) fn socket_addr<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<std::net::SocketAddr, D::Error> {
    let text = String::deserialize(d)?;
    text.trim().parse().map_err(|_| {
        de_error(FieldError::new(
            format!("= {text:?} is not an address:port"),
            "use e.g. 127.0.0.1:8080 or 0.0.0.0:8080",
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sha256_is_64_hex_digits() {
        let h = Sha256::of_secret("demo-gateway-secret");
        assert_eq!(
            h.to_string(),
            "6573306c7f45369b2cf77c3286f2683ae5dfaf9f8135895401621a7f543cd140"
        );
        assert_eq!(h.to_string().parse::<Sha256>(), Ok(h));
        assert!("abc".parse::<Sha256>().is_err());
        assert!("g".repeat(64).parse::<Sha256>().is_err());
    }

    #[test]
    fn a_kek_is_32_bytes_of_base64_known_by_its_id() {
        let kek: Kek = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
            .parse()
            .expect("valid");
        assert_eq!(kek.expose_bytes(), b"0123456789abcdef0123456789abcdef");
        assert_eq!(kek.id().len(), 16);
        assert!(!format!("{kek:?}").contains("MDEy"));
        assert!("c2hvcnQ=".parse::<Kek>().is_err());
        assert!("not base64!".parse::<Kek>().is_err());
    }
}
