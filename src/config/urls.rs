//! URL-valued settings: the issuer, Redis and database URLs (which may carry a password
//! and so show only `host:port`), and the legacy server's http(s) URL.
//!
//! Invariants: a value that exists is a parsed URL of the right scheme with a host;
//! `Debug` and `Display` of a URL with credentials never show them.

use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::Deserializer;

use super::types::{FieldError, de_error, parse_str};

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
