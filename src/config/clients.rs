//! `[admin]` and `[[clients]]`: who may call Tessera, stored only as SHA-256 hashes.
//!
//! Invariants: client ids are unique printable ASCII; every client has at least one
//! secret hash (several during a secret rotation); a default audience is an allowed one.

use serde::Deserialize;

use super::types::Sha256;
use super::{ConfigError, invalid};
use tessera_claims::is_scope_token;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminSettings {
    /// SHA-256 of the admin bearer token (hex in the file; empty = the admin API is
    /// disabled).
    #[serde(deserialize_with = "super::types::optional_sha256")]
    pub token_sha256: Option<Sha256>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSettings {
    pub id: String,
    /// SHA-256 of the client secret; a list during a rotation (any of them authenticates).
    #[serde(deserialize_with = "super::types::one_or_more_sha256")]
    pub secret_sha256: Vec<Sha256>,
    #[serde(default)]
    pub allowed_audiences: Vec<String>,
    #[serde(default)]
    pub default_audience: Option<String>,
    #[serde(default)]
    pub allow_anonymous: bool,
    #[serde(default)]
    pub scopes: Vec<String>,
    /// 0 = only the global `token.max_ttl_seconds` applies; above it, the global applies.
    #[serde(default)]
    pub max_ttl_seconds: u64,
    #[serde(default)]
    pub rate_limit_per_second: u32,
    /// Requests the client may make in a burst (0 = one second's worth).
    #[serde(default)]
    pub rate_limit_burst: u32,
    /// May follow `GET /revocations/stream`.
    #[serde(default)]
    pub revocation_feed: bool,
}

impl ClientSettings {
    /// A client authenticated by any of `secret_sha256` and nothing else: anonymous
    /// exchanges allowed, no audiences, scopes, limits or feed. Tests start from it.
    pub fn new(id: impl Into<String>, secret_sha256: Vec<Sha256>) -> Self {
        Self {
            id: id.into(),
            secret_sha256,
            allowed_audiences: vec![],
            default_audience: None,
            allow_anonymous: true,
            scopes: vec![],
            max_ttl_seconds: 0,
            rate_limit_per_second: 0,
            rate_limit_burst: 0,
            revocation_feed: false,
        }
    }

    /// The rules of one client; `i` is its position, for the key in the message.
    pub fn validate(&self, i: usize) -> Result<(), ConfigError> {
        let key = |field: &str| format!("clients[{i}].{field}");
        if self.id.is_empty() || !self.id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid(
                &key("id"),
                "must be non-empty printable ASCII without spaces",
                "name the client, e.g. \"gateway\"",
            ));
        }
        if self.secret_sha256.is_empty() {
            return Err(invalid(
                &key("secret_sha256"),
                "lists no hash",
                "set the hex SHA-256 of the client's secret (`tessera hash-secret`)",
            ));
        }
        if let Some(aud) = &self.default_audience
            && !self.allowed_audiences.contains(aud)
        {
            return Err(invalid(
                &key("default_audience"),
                format!("= {aud:?} is not in allowed_audiences"),
                "add it to allowed_audiences or pick one of them",
            ));
        }
        if self.allowed_audiences.iter().any(|a| a.is_empty()) {
            return Err(invalid(
                &key("allowed_audiences"),
                "contains an empty string",
                "remove it",
            ));
        }
        if let Some(bad) = self.scopes.iter().find(|s| !is_scope_token(s)) {
            return Err(invalid(
                &key("scopes"),
                format!("contains {bad:?}, which is not an RFC 6749 scope token"),
                "use printable ASCII without spaces, quotes or backslashes",
            ));
        }
        Ok(())
    }
}

/// Every client's own rules, then unique ids.
pub(crate) fn validate_clients(clients: &[ClientSettings]) -> Result<(), ConfigError> {
    let mut seen = std::collections::HashSet::new();
    for (i, c) in clients.iter().enumerate() {
        c.validate(i)?;
        if !seen.insert(c.id.as_str()) {
            return Err(invalid(
                &format!("clients[{i}].id"),
                format!("= {:?} is defined twice", c.id),
                "give every client its own id",
            ));
        }
    }
    Ok(())
}
