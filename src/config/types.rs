//! Value types of the configuration: each is parsed (and so validated) once, when the
//! configuration is loaded, and consumers use the typed value as it is.
//!
//! Invariants: a value that exists is valid; `Debug` and `Display` never show a secret (a
//! KEK's bytes, a password inside a Redis or database URL).

use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret, SecretBox, SecretString};
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

fn de_error<E: de::Error>(e: FieldError) -> E {
    E::custom(format!("{FIELD_MARK}{e}"))
}

/// Deserializes any `FromStr<Err = FieldError>` from a string.
fn parse_str<'de, D, T>(d: D) -> Result<T, D::Error>
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

/// `issuer`: an http(s) URL without query or fragment, kept without a trailing slash.
#[derive(Clone, PartialEq, Eq)]
pub struct Issuer {
    url: url::Url,
    text: String,
}

impl Issuer {
    /// The issuer as tokens and discovery carry it (no trailing slash).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn url(&self) -> &url::Url {
        &self.url
    }
}

impl FromStr for Issuer {
    type Err = FieldError;

    fn from_str(s: &str) -> Result<Self, FieldError> {
        let text = s.trim_end_matches('/');
        let bad = || {
            FieldError::new(
                format!("= {text:?} is not an http(s) URL without query or fragment"),
                "set it to the URL services reach Tessera at, e.g. https://sts.example.com",
            )
        };
        if text.contains(['?', '#']) || text.trim() != text {
            return Err(bad());
        }
        let url = url::Url::parse(text).map_err(|_| bad())?;
        if !matches!(url.scheme(), "http" | "https")
            || url.host_str().is_none_or(str::is_empty)
            || !url.username().is_empty()
            || url.password().is_some()
        {
            return Err(bad());
        }
        Ok(Self {
            url,
            text: text.to_owned(),
        })
    }
}

impl std::ops::Deref for Issuer {
    type Target = str;

    fn deref(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Issuer({:?})", self.text)
    }
}

impl<'de> Deserialize<'de> for Issuer {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_str(d)
    }
}

/// `host:port` of a URL (the scheme's default port when none is written).
fn address(url: &url::Url, default_port: u16) -> String {
    let host = url.host_str().unwrap_or_default();
    let port = url.port_or_known_default().unwrap_or(default_port);
    format!("{host}:{port}")
}

/// What a kind of [`SecretUrl`] accepts and how it is explained.
pub trait UrlKind {
    const NAME: &'static str;
    const SCHEMES: &'static [&'static str];
    const DEFAULT_PORT: u16;
    const PROBLEM: &'static str;
    const FIX: &'static str;
}

/// Redis: `redis://` or `rediss://` (TLS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Redis;

impl UrlKind for Redis {
    const NAME: &'static str = "RedisUrl";
    const SCHEMES: &'static [&'static str] = &["redis", "rediss"];
    const DEFAULT_PORT: u16 = 6379;
    const PROBLEM: &'static str = "is not a redis:// or rediss:// URL";
    const FIX: &'static str =
        "write it as redis://host:port, e.g. redis://127.0.0.1:6379 (rediss:// for TLS)";
}

/// PostgreSQL: `postgres://` or `postgresql://`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Postgres;

impl UrlKind for Postgres {
    const NAME: &'static str = "DatabaseUrl";
    const SCHEMES: &'static [&'static str] = &["postgres", "postgresql"];
    const DEFAULT_PORT: u16 = 5432;
    const PROBLEM: &'static str = "is not a postgres:// URL";
    const FIX: &'static str = "e.g. postgres://tessera@db:5432/tessera";
}

/// A URL of a `K` server. It may carry a password, so `Display` and `Debug` show only
/// its scheme and `host:port`.
#[derive(Clone)]
pub struct SecretUrl<K> {
    full: SecretString,
    scheme: String,
    address: String,
    kind: PhantomData<K>,
}

/// A `redis://` or `rediss://` URL.
pub type RedisUrl = SecretUrl<Redis>;
/// A `postgres://` URL.
pub type DatabaseUrl = SecretUrl<Postgres>;

impl<K> SecretUrl<K> {
    /// The URL with its credentials, for connecting only (never log it).
    pub fn expose_url(&self) -> &str {
        self.full.expose_secret()
    }

    /// `host:port`, for messages and `/readyz`.
    pub fn address(&self) -> &str {
        &self.address
    }
}

impl RedisUrl {
    /// `rediss://`.
    pub fn is_tls(&self) -> bool {
        self.scheme == "rediss"
    }
}

impl<K: UrlKind> FromStr for SecretUrl<K> {
    type Err = FieldError;

    fn from_str(s: &str) -> Result<Self, FieldError> {
        let bad = || FieldError::new(K::PROBLEM, K::FIX);
        let url = url::Url::parse(s.trim()).map_err(|_| bad())?;
        if !K::SCHEMES.contains(&url.scheme()) || url.host_str().is_none_or(str::is_empty) {
            return Err(bad());
        }
        Ok(Self {
            full: SecretString::from(s.trim()),
            scheme: url.scheme().to_owned(),
            address: address(&url, K::DEFAULT_PORT),
            kind: PhantomData,
        })
    }
}

impl<K> PartialEq for SecretUrl<K> {
    fn eq(&self, other: &Self) -> bool {
        self.expose_url() == other.expose_url()
    }
}

impl<K> fmt::Display for SecretUrl<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.address)
    }
}

impl<K: UrlKind> fmt::Debug for SecretUrl<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({}://{})", K::NAME, self.scheme, self.address)
    }
}

impl<'de, K: UrlKind> Deserialize<'de> for SecretUrl<K> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_str(d)
    }
}

/// `sessions.http.url`: an http(s) URL, or the empty string for "not set".
pub(crate) fn optional_http_url<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<url::Url>, D::Error> {
    let text = String::deserialize(d)?;
    if text.trim().is_empty() {
        return Ok(None);
    }
    parse_http_url(&text).map(Some).map_err(de_error)
}

/// An `http://` or `https://` URL with a host.
pub fn parse_http_url(text: &str) -> Result<url::Url, FieldError> {
    let bad = || {
        FieldError::new(
            "is not an http(s) URL",
            "point it at the legacy server's introspection or userinfo endpoint",
        )
    };
    let url = url::Url::parse(text.trim()).map_err(|_| bad())?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(bad());
    }
    Ok(url)
}

/// `host:port` of an http(s) URL, for messages and `/readyz` (never its credentials).
pub fn http_address(url: &url::Url) -> String {
    address(url, 80)
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
    fn redis_urls_never_show_their_credentials() {
        let url: RedisUrl = "redis://:hunter2@cache:6379/0".parse().expect("valid");
        assert_eq!(url.address(), "cache:6379");
        assert_eq!(url.to_string(), "cache:6379");
        assert!(!format!("{url:?}").contains("hunter2"));
        assert_eq!(url.expose_url(), "redis://:hunter2@cache:6379/0");
        let url: RedisUrl = "rediss://user:pw@10.0.0.1:6380".parse().expect("valid");
        assert_eq!(url.address(), "10.0.0.1:6380");
        assert!(url.is_tls());
        let url: RedisUrl = "redis://127.0.0.1".parse().expect("valid");
        assert_eq!(url.address(), "127.0.0.1:6379", "the default port is named");
    }

    #[test]
    fn only_redis_schemes_with_a_host_are_redis_urls() {
        for bad in [
            "http://cache:6379",
            "cache:6379",
            "redis://",
            "unix:///tmp/r.sock",
            "",
        ] {
            assert!(bad.parse::<RedisUrl>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_issuer_loses_its_trailing_slash_and_keeps_its_text() {
        let issuer: Issuer = "https://sts.example.com/".parse().expect("valid");
        assert_eq!(issuer.as_str(), "https://sts.example.com");
        let issuer: Issuer = "https://sts.example.com/tenant/".parse().expect("valid");
        assert_eq!(&*issuer, "https://sts.example.com/tenant");
        for bad in [
            "ftp://x",
            "https://",
            "https://a?b",
            "https://a#f",
            "sts.example.com",
        ] {
            assert!(bad.parse::<Issuer>().is_err(), "{bad}");
        }
    }

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

    #[test]
    fn database_and_http_urls_name_only_their_address() {
        let db: DatabaseUrl = "postgres://u:secret@db:5433/x".parse().expect("valid");
        assert_eq!(db.to_string(), "db:5433");
        assert!(!format!("{db:?}").contains("secret"));
        assert!("mysql://db/x".parse::<DatabaseUrl>().is_err());
        let url = parse_http_url("http://legacy.internal/oauth2/introspect").expect("valid");
        assert_eq!(http_address(&url), "legacy.internal:80");
        assert!(parse_http_url("ftp://legacy").is_err());
    }
}
