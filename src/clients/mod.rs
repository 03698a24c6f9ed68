//! Gateway clients: the registry built from `[[clients]]` and client authentication
//! (RFC 6749 §2.3.1: HTTP Basic or `client_secret_post`).
//!
//! Invariants: secrets exist only as SHA-256 hashes (several per client while a secret
//! rotates); an unknown client, a wrong secret and missing credentials fail the same way
//! (`invalid_client`) after the same work: every configured hash of the client is
//! compared in constant time with no early exit. Nothing here knows HTTP.

pub mod admin;
pub mod limits;

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use percent_encoding::percent_decode_str;
use subtle::{Choice, ConstantTimeEq};

use crate::config::{ClientSettings, Settings, Sha256};

/// Why a client was not let through.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// Unknown client, wrong secret, missing or malformed credentials (all alike).
    #[error("client authentication failed")]
    InvalidClient,
    /// Basic and `client_secret_post` at once (RFC 6749 §2.3 forbids it).
    #[error("use one client authentication method: Basic or client_secret_post, not both")]
    TwoMethods,
    /// Over a rate limit: `client` (the client's own) or `auth_failures` (its address).
    #[error("rate limit `{limit}` exceeded; retry after {retry_after:?}")]
    RateLimited {
        retry_after: Duration,
        limit: &'static str,
    },
}

/// A rate limit hit: counted in `tessera_rate_limited_total{limit}`.
pub fn rate_limited(limit: &'static str, retry_after_seconds: u64) -> ClientError {
    ::metrics::counter!(crate::infra::metrics::RATE_LIMITED, "limit" => limit).increment(1);
    ClientError::RateLimited {
        retry_after: Duration::from_secs(retry_after_seconds),
        limit,
    }
}

/// A configured gateway, ready for the exchange path.
#[derive(Debug)]
pub struct Client {
    pub id: String,
    /// What it was built from: a reload keeps a client whose settings did not change
    /// (and so its rate limiter's state).
    source: ClientSettings,
    /// Any of these authenticates (more than one while a secret rotates).
    secret_sha256: Vec<Sha256>,
    pub allowed_audiences: Vec<String>,
    pub default_audience: Option<String>,
    pub allow_anonymous: bool,
    pub scopes: Vec<String>,
    /// Lifetime of this client's tokens: `token.ttl_seconds` capped by both maxima.
    pub ttl_seconds: u64,
    /// `rate_limit_per_second` / `rate_limit_burst`; `None` = unlimited.
    pub limiter: Option<crate::clients::limits::Limiter>,
    /// May follow the revocation feed.
    pub revocation_feed: bool,
    /// Its position in `[[clients]]`: its failure buckets' key.
    slot: usize,
}

/// Client authentication with its limits: the registry, the per-address failure limiter
/// and each client's own rate limit. What every client-authenticated endpoint calls.
///
/// The registry is swapped whole by a configuration reload: a request authenticates
/// against one registry, the one current when it started.
#[derive(Debug, Default)]
pub struct Clients {
    registry: ArcSwap<ClientRegistry>,
    /// Authentication failures per source address; `None` = unlimited.
    failures: Option<limits::FailureLimiter>,
}

impl Clients {
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            registry: ArcSwap::from_pointee(ClientRegistry::from_settings(settings, None)),
            failures: limits::Rate::new(
                settings.server.auth_failures_per_second,
                settings.server.auth_failures_burst,
            )
            .map(limits::FailureLimiter::new),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.registry.load().is_empty()
    }

    /// Replaces the registry with the clients of `settings`; a client whose settings did
    /// not change is kept as it is (with its rate limiter's state). Requests that already
    /// authenticated finish with the client they got.
    pub fn reload(&self, settings: &Settings) -> ClientChanges {
        let old = self.registry.load_full();
        let new = ClientRegistry::from_settings(settings, Some(&old));
        let changes = ClientChanges {
            added: new.ids_not_in(&old),
            removed: old.ids_not_in(&new),
            changed: new
                .clients
                .iter()
                .filter(|(id, c)| old.clients.get(*id).is_some_and(|o| !Arc::ptr_eq(o, c)))
                .map(|(id, _)| id.clone())
                .collect(),
        };
        self.registry.store(Arc::new(new));
        changes
    }

    /// Authenticates the caller coming from `peer`, then takes one request from its rate
    /// limit. Failures are counted per (address, claimed client id) — every unknown id of
    /// an address in one bucket — so a noisy neighbour behind the same NAT or load
    /// balancer does not lock a gateway out. A bucket that failed too often is refused
    /// before its credentials are even checked; only `invalid_client` is charged to it.
    pub fn authenticate(
        &self,
        presented: &PresentedCredentials<'_>,
        peer: Option<IpAddr>,
    ) -> Result<Arc<Client>, ClientError> {
        let now = Instant::now();
        let registry = self.registry.load();
        // Parsed once: the limiter's key and the authentication both come from it.
        let sent = Sent::from(presented);
        let limited = self.failures.as_ref().zip(peer).map(|(limiter, ip)| {
            let who = sent
                .as_ref()
                .map_or(limits::Claimant::Unknown, |s| registry.claimant(s));
            (limiter, ip, who)
        });
        if let Some((limiter, ip, who)) = limited {
            limiter
                .check(ip, who, now)
                .map_err(|wait| rate_limited("auth_failures", wait))?;
        }
        let client = sent
            .and_then(|s| registry.verify_sent(&s))
            .inspect_err(|e| {
                if let (ClientError::InvalidClient, Some((limiter, ip, who))) = (e, limited) {
                    limiter.failed(ip, who, now);
                }
            })?;
        client.admit()?;
        Ok(client.clone())
    }
}

impl Clients {
    /// Whether `peer` may present an admin token now: admin failures are charged to the
    /// same limiter, in a bucket of their own per address.
    pub fn admit_admin(&self, peer: Option<IpAddr>) -> Result<(), ClientError> {
        match self.failures.as_ref().zip(peer) {
            Some((limiter, ip)) => limiter
                .check(ip, limits::Claimant::Admin, Instant::now())
                .map_err(|wait| rate_limited("auth_failures", wait)),
            None => Ok(()),
        }
    }

    /// Charges a wrong or missing admin token to `peer`.
    pub fn admin_failed(&self, peer: Option<IpAddr>) {
        if let Some((limiter, ip)) = self.failures.as_ref().zip(peer) {
            limiter.failed(ip, limits::Claimant::Admin, Instant::now());
        }
    }
}

/// What a reload changed, by client id (sorted).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ClientChanges {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
}

#[derive(Debug, Default)]
pub struct ClientRegistry {
    clients: HashMap<String, Arc<Client>>,
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

/// Credentials by exactly one method, as sent (Basic: base64-decoded, not yet
/// form-decoded).
struct Sent<'a> {
    id: Cow<'a, str>,
    secret: Cow<'a, str>,
    basic: bool,
}

impl<'a> Sent<'a> {
    fn from(presented: &PresentedCredentials<'a>) -> Result<Self, ClientError> {
        let basic = presented.authorization.filter(|h| is_basic(h));
        match (basic, presented.post_id, presented.post_secret) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => Err(ClientError::TwoMethods),
            (Some(header), None, None) => {
                let (id, secret) = parse_basic(header).ok_or(ClientError::InvalidClient)?;
                Ok(Self {
                    id: Cow::Owned(id),
                    secret: Cow::Owned(secret),
                    basic: true,
                })
            }
            (None, Some(id), Some(secret)) => Ok(Self {
                id: Cow::Borrowed(id),
                secret: Cow::Borrowed(secret),
                basic: false,
            }),
            _ => Err(ClientError::InvalidClient),
        }
    }
}

/// Hashes the unknown-client path compares against, so it costs what a client with one
/// hash costs.
const DUMMY_HASHES: &[Sha256] = &[Sha256::from_bytes([0x5a; 32])];

impl ClientRegistry {
    /// The clients of `settings`; those identical in `previous` are shared with it.
    pub fn from_settings(settings: &Settings, previous: Option<&ClientRegistry>) -> Self {
        let clients = settings
            .clients
            .iter()
            .enumerate()
            .map(|(slot, c)| {
                let fresh = Client {
                    slot,
                    ..Client::from_settings(c, settings)
                };
                let client = previous
                    .and_then(|p| p.clients.get(&c.id))
                    .filter(|old| {
                        old.source == fresh.source
                            && old.ttl_seconds == fresh.ttl_seconds
                            && old.slot == fresh.slot
                    })
                    .cloned()
                    .unwrap_or_else(|| Arc::new(fresh));
                (c.id.clone(), client)
            })
            .collect();
        Self { clients }
    }

    fn ids_not_in(&self, other: &ClientRegistry) -> Vec<String> {
        let mut ids: Vec<String> = self
            .clients
            .keys()
            .filter(|id| !other.clients.contains_key(*id))
            .cloned()
            .collect();
        ids.sort();
        ids
    }

    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    /// Authenticates the caller by exactly one method; every failure is `invalid_client`,
    /// except using two methods at once, which RFC 6749 §2.3 forbids (`invalid_request`).
    pub fn authenticate(
        &self,
        presented: &PresentedCredentials<'_>,
    ) -> Result<&Arc<Client>, ClientError> {
        self.verify_sent(&Sent::from(presented)?)
    }

    /// The client `sent` names, if its secret is right. Basic credentials are tried as
    /// sent, then form-decoded (RFC 6749 §2.3.1 form-encodes both; many clients do not).
    fn verify_sent(&self, sent: &Sent) -> Result<&Arc<Client>, ClientError> {
        let (id, secret) = (sent.id.as_ref(), sent.secret.as_ref());
        let found = if sent.basic {
            self.verify(id, secret)
                .or_else(|| match (form_decode(id), form_decode(secret)) {
                    (None, None) => None,
                    (i, s) => {
                        self.verify(i.as_deref().unwrap_or(id), s.as_deref().unwrap_or(secret))
                    }
                })
        } else {
            self.verify(id, secret)
        };
        found.ok_or(ClientError::InvalidClient)
    }

    /// Which configured client `sent` names (its secret unchecked), for the failure
    /// limiter; `Unknown` when none.
    fn claimant(&self, sent: &Sent) -> limits::Claimant {
        let known = |id: &str| self.clients.get(id).map(|c| c.slot);
        let slot = known(&sent.id).or_else(|| {
            sent.basic
                .then(|| form_decode(&sent.id))
                .flatten()
                .and_then(|d| known(&d))
        });
        slot.map_or(limits::Claimant::Unknown, limits::Claimant::Client)
    }

    fn verify(&self, id: &str, secret: &str) -> Option<&Arc<Client>> {
        let presented = Sha256::of_secret(secret);
        match self.clients.get(id) {
            Some(client) if matches_any(&client.secret_sha256, &presented) => Some(client),
            Some(_) => None,
            None => {
                let _ = matches_any(DUMMY_HASHES, &presented);
                None
            }
        }
    }
}

/// Whether `presented` is one of `hashes`: every hash is compared, in constant time, with
/// no early exit, so the work does not depend on which one (if any) matches.
fn matches_any(hashes: &[Sha256], presented: &Sha256) -> bool {
    let mut found = Choice::from(0);
    for hash in hashes {
        found |= hash.as_bytes().ct_eq(presented.as_bytes());
    }
    found.into()
}

impl Client {
    pub(crate) fn from_settings(c: &ClientSettings, settings: &Settings) -> Self {
        Self {
            id: c.id.clone(),
            source: c.clone(),
            secret_sha256: c.secret_sha256.clone(),
            allowed_audiences: c.allowed_audiences.clone(),
            default_audience: c.default_audience.clone(),
            allow_anonymous: c.allow_anonymous,
            scopes: c.scopes.clone(),
            ttl_seconds: settings.ttl_for(c.max_ttl_seconds),
            limiter: crate::clients::limits::Rate::new(c.rate_limit_per_second, c.rate_limit_burst)
                .map(crate::clients::limits::Limiter::new),
            revocation_feed: c.revocation_feed,
            slot: 0,
        }
    }
}

impl Client {
    /// Applies this client's rate limit (if any) to one request.
    pub fn admit(&self) -> Result<(), ClientError> {
        match &self.limiter {
            Some(limiter) => limiter
                .acquire()
                .map_err(|wait| rate_limited("client", wait)),
            None => Ok(()),
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
    Sha256::of_secret(secret).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> ClientRegistry {
        let mut settings = Settings::default();
        settings.clients.push(ClientSettings {
            allowed_audiences: vec!["a".into()],
            default_audience: Some("a".into()),
            allow_anonymous: false,
            ..ClientSettings::new("gateway", vec![Sha256::of_secret("s3cret+/=")])
        });
        ClientRegistry::from_settings(&settings, None)
    }

    fn basic(id: &str, secret: &str) -> Vec<u8> {
        format!("Basic {}", STANDARD.encode(format!("{id}:{secret}"))).into_bytes()
    }

    fn auth<'a>(
        r: &'a ClientRegistry,
        header: Option<&'a [u8]>,
        post: Option<(&'a str, &'a str)>,
    ) -> Result<&'a Client, ClientError> {
        r.authenticate(&PresentedCredentials {
            authorization: header,
            post_id: post.map(|p| p.0),
            post_secret: post.map(|p| p.1),
        })
        .map(|c| &**c)
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
                Err(ClientError::InvalidClient)
            ));
        }
        assert!(matches!(
            auth(&r, None, None),
            Err(ClientError::InvalidClient)
        ));
        assert!(matches!(
            auth(&r, None, Some(("gateway", ""))),
            Err(ClientError::InvalidClient)
        ));
    }

    #[test]
    fn two_methods_at_once_are_refused() {
        let r = registry();
        let h = basic("gateway", "s3cret+/=");
        assert!(matches!(
            auth(&r, Some(&h), Some(("gateway", "s3cret+/="))),
            Err(ClientError::TwoMethods)
        ));
    }

    fn registry_with(hashes: Vec<Sha256>) -> ClientRegistry {
        let mut settings = Settings::default();
        settings
            .clients
            .push(ClientSettings::new("gateway", hashes));
        ClientRegistry::from_settings(&settings, None)
    }

    #[test]
    fn any_hash_of_a_rotating_secret_authenticates() {
        let r = registry_with(vec![Sha256::of_secret("old"), Sha256::of_secret("new")]);
        for secret in ["old", "new"] {
            assert!(
                auth(&r, None, Some(("gateway", secret))).is_ok(),
                "{secret}"
            );
        }
        assert_eq!(
            auth(&r, None, Some(("gateway", "neither"))).err(),
            Some(ClientError::InvalidClient)
        );
    }

    #[test]
    fn every_hash_is_compared_whichever_matches() {
        let hashes: Vec<Sha256> = ["a", "b", "c"]
            .iter()
            .map(|s| Sha256::of_secret(s))
            .collect();
        for (i, secret) in ["a", "b", "c"].iter().enumerate() {
            assert!(matches_any(&hashes, &Sha256::of_secret(secret)), "hash {i}");
        }
        assert!(!matches_any(&hashes, &Sha256::of_secret("d")));
        assert!(!matches_any(&[], &Sha256::of_secret("a")));
        assert_eq!(
            DUMMY_HASHES.len(),
            1,
            "an unknown client costs one comparison"
        );
    }

    #[test]
    fn a_client_over_its_rate_is_told_when_to_retry() {
        let mut settings = Settings::default();
        settings.clients.push(ClientSettings {
            rate_limit_per_second: 1,
            rate_limit_burst: 1,
            ..ClientSettings::new("gateway", vec![Sha256::of_secret("s")])
        });
        let r = ClientRegistry::from_settings(&settings, None);
        let client = auth(&r, None, Some(("gateway", "s"))).expect("auth");
        assert!(client.admit().is_ok());
        assert_eq!(
            client.admit(),
            Err(ClientError::RateLimited {
                retry_after: Duration::from_secs(1),
                limit: "client"
            })
        );
    }
}
