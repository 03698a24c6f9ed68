//! Gateway clients: the registry built from `[[clients]]` and client authentication
//! (RFC 6749 §2.3.1: HTTP Basic or `client_secret_post`).
//!
//! Invariants: secrets exist only as SHA-256 hashes; an unknown client, a wrong secret and
//! missing credentials fail the same way (`invalid_client`) after the same work.

pub mod limits;

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use percent_encoding::percent_decode_str;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::{ClientSettings, Settings};
use crate::http::error::ApiError;

/// A configured gateway, ready for the exchange path.
#[derive(Debug)]
pub struct Client {
    pub id: String,
    secret_sha256: [u8; 32],
    pub allowed_audiences: Vec<String>,
    pub default_audience: Option<String>,
    pub allow_anonymous: bool,
    pub scopes: Vec<String>,
    /// Lifetime of this client's tokens: `token.ttl_seconds` capped by both maxima.
    pub ttl_seconds: u64,
    /// `rate_limit_per_second` / `rate_limit_burst`; `None` = unlimited.
    pub limiter: Option<crate::clients::limits::Limiter>,
}

#[derive(Debug, Default)]
pub struct ClientRegistry {
    clients: HashMap<String, Client>,
}

/// Credentials as presented, before authentication.
#[derive(Debug, Default)]
pub struct PresentedCredentials<'a> {
    /// The raw `Authorization` header value, if any.
    pub authorization: Option<&'a [u8]>,
    /// `client_id` / `client_secret` body fields (client_secret_post).
    pub post_id: Option<&'a str>,
    pub post_secret: Option<&'a str>,
}

/// Hash the unknown-client path compares against, so it costs what a known client costs.
const DUMMY_HASH: [u8; 32] = [0x5a; 32];

impl ClientRegistry {
    pub fn from_settings(settings: &Settings) -> Self {
        let clients = settings
            .clients
            .iter()
            .map(|c| (c.id.clone(), Client::from_settings(c, settings)))
            .collect();
        Self { clients }
    }

    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    /// Authenticates the caller by exactly one method; every failure is `invalid_client`,
    /// except using two methods at once, which RFC 6749 §2.3 forbids (`invalid_request`).
    pub fn authenticate(&self, presented: &PresentedCredentials<'_>) -> Result<&Client, ApiError> {
        let basic = presented.authorization.filter(|h| is_basic(h));
        let (id, secret) = match (basic, presented.post_id, presented.post_secret) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                return Err(ApiError::InvalidRequest(
                    "use one client authentication method: Basic or client_secret_post, not both"
                        .into(),
                ));
            }
            (Some(header), None, None) => {
                let (id, secret) = parse_basic(header).ok_or(ApiError::InvalidClient)?;
                // RFC 6749 §2.3.1 form-encodes both; many clients send them as they are.
                return self
                    .verify(&id, &secret)
                    .or_else(|| match (form_decode(&id), form_decode(&secret)) {
                        (None, None) => None,
                        (i, s) => self
                            .verify(i.as_deref().unwrap_or(&id), s.as_deref().unwrap_or(&secret)),
                    })
                    .ok_or(ApiError::InvalidClient);
            }
            (None, Some(id), Some(secret)) => (id, secret),
            _ => return Err(ApiError::InvalidClient),
        };
        self.verify(id, secret).ok_or(ApiError::InvalidClient)
    }

    fn verify(&self, id: &str, secret: &str) -> Option<&Client> {
        let presented: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        match self.clients.get(id) {
            Some(client) if bool::from(client.secret_sha256.ct_eq(&presented)) => Some(client),
            Some(_) => None,
            None => {
                let _ = DUMMY_HASH.ct_eq(&presented);
                None
            }
        }
    }
}

impl Client {
    pub(crate) fn from_settings(c: &ClientSettings, settings: &Settings) -> Self {
        let mut secret_sha256 = [0u8; 32];
        // Validated as 64 hex digits at start-up.
        let _ = hex::decode_to_slice(&c.secret_sha256, &mut secret_sha256);
        Self {
            id: c.id.clone(),
            secret_sha256,
            allowed_audiences: c.allowed_audiences.clone(),
            default_audience: c.default_audience.clone(),
            allow_anonymous: c.allow_anonymous,
            scopes: c.scopes.clone(),
            ttl_seconds: settings.ttl_for(c.max_ttl_seconds),
            limiter: crate::clients::limits::Rate::new(c.rate_limit_per_second, c.rate_limit_burst)
                .map(crate::clients::limits::Limiter::new),
        }
    }
}

fn is_basic(header: &[u8]) -> bool {
    header.len() > 6 && header[..6].eq_ignore_ascii_case(b"basic ")
}

/// `Basic base64(id ":" secret)`, the two parts as sent (not yet form-decoded).
fn parse_basic(header: &[u8]) -> Option<(String, String)> {
    let encoded = std::str::from_utf8(&header[6..]).ok()?.trim();
    let decoded = STANDARD.decode(encoded).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

/// `application/x-www-form-urlencoded` decoding; `None` when it would change nothing.
fn form_decode(s: &str) -> Option<String> {
    if !s.contains(['%', '+']) {
        return None;
    }
    let spaced = s.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|d| d.into_owned())
}

/// Hex SHA-256 of a secret, as `secret_sha256` and `admin.token_sha256` expect.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> ClientRegistry {
        let mut settings = Settings::default();
        settings.clients.push(ClientSettings {
            id: "gateway".into(),
            secret_sha256: hash_secret("s3cret+/="),
            allowed_audiences: vec!["a".into()],
            default_audience: Some("a".into()),
            allow_anonymous: false,
            scopes: vec![],
            max_ttl_seconds: 0,
            rate_limit_per_second: 0,
            rate_limit_burst: 0,
        });
        ClientRegistry::from_settings(&settings)
    }

    fn basic(id: &str, secret: &str) -> Vec<u8> {
        format!("Basic {}", STANDARD.encode(format!("{id}:{secret}"))).into_bytes()
    }

    fn auth<'a>(
        r: &'a ClientRegistry,
        header: Option<&'a [u8]>,
        post: Option<(&'a str, &'a str)>,
    ) -> Result<&'a Client, ApiError> {
        r.authenticate(&PresentedCredentials {
            authorization: header,
            post_id: post.map(|p| p.0),
            post_secret: post.map(|p| p.1),
        })
    }

    #[test]
    fn basic_and_post_credentials_authenticate() {
        let r = registry();
        let h = basic("gateway", "s3cret+/=");
        assert_eq!(auth(&r, Some(&h), None).expect("basic").id, "gateway");
        let h = basic("gateway", "s3cret%2B%2F%3D");
        assert!(auth(&r, Some(&h), None).is_ok(), "form-encoded secret");
        assert!(auth(&r, None, Some(("gateway", "s3cret+/="))).is_ok());
    }

    #[test]
    fn every_failure_is_invalid_client() {
        let r = registry();
        for header in [
            basic("gateway", "wrong"),
            basic("nobody", "s3cret+/="),
            b"Basic !!!".to_vec(),
            format!("Basic {}", STANDARD.encode("no-colon")).into_bytes(),
            b"Bearer abc".to_vec(),
        ] {
            assert!(matches!(
                auth(&r, Some(&header), None),
                Err(ApiError::InvalidClient)
            ));
        }
        assert!(matches!(auth(&r, None, None), Err(ApiError::InvalidClient)));
        assert!(matches!(
            auth(&r, None, Some(("gateway", ""))),
            Err(ApiError::InvalidClient)
        ));
    }

    #[test]
    fn two_methods_at_once_are_refused() {
        let r = registry();
        let h = basic("gateway", "s3cret+/=");
        assert!(matches!(
            auth(&r, Some(&h), Some(("gateway", "s3cret+/="))),
            Err(ApiError::InvalidRequest(_))
        ));
    }
}
