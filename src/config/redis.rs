//! `[denylist]` and `[redis]`: where revocations live, and the Redis (single node, TLS
//! or cluster) that holds them when they are shared.
//!
//! Invariants: every URL is a parsed `redis://` / `rediss://` URL that shows only its
//! address; a cluster has at least one seed node.

use std::path::PathBuf;

use serde::Deserialize;

use super::urls::RedisUrl;
use super::{ConfigError, check_nonzero, check_range, invalid};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DenylistBackend {
    Memory,
    Redis,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DenylistSettings {
    pub backend: DenylistBackend,
    pub session_ttl_seconds: u64,
}

impl Default for DenylistSettings {
    fn default() -> Self {
        Self {
            backend: DenylistBackend::Memory,
            session_ttl_seconds: 86_400,
        }
    }
}

impl DenylistSettings {
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_nonzero(
            "denylist.session_ttl_seconds",
            self.session_ttl_seconds,
            "set it at least as long as the legacy server's longest session",
        )
    }
}

/// The default Redis of both the denylist and the express-session store.
pub(crate) fn local_redis() -> RedisUrl {
    "redis://127.0.0.1:6379"
        .parse()
        .expect("the default Redis URL is valid")
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisSettings {
    pub url: RedisUrl,
    pub key_prefix: String,
    pub cluster: bool,
    pub nodes: Vec<RedisUrl>,
    /// Bound on connecting and on every command; a dead Redis never hangs a request.
    pub timeout_ms: u64,
    /// PEM CA bundle trusted for `rediss://` instead of the system roots.
    pub tls_ca_file: Option<PathBuf>,
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self {
            url: local_redis(),
            key_prefix: "tessera:".into(),
            cluster: false,
            nodes: Vec::new(),
            timeout_ms: 500,
            tls_ca_file: None,
        }
    }
}

impl RedisSettings {
    /// Checked when the denylist uses Redis.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.cluster && self.nodes.is_empty() {
            return Err(invalid(
                "redis.nodes",
                "is empty while redis.cluster = true",
                "list the cluster's seed nodes, e.g. [\"redis://10.0.0.1:6379\"]",
            ));
        }
        if let Some(ca) = &self.tls_ca_file
            && !ca.is_file()
        {
            return Err(invalid(
                "redis.tls_ca_file",
                format!("= {} is not a readable file", ca.display()),
                "point it at a PEM CA bundle, or remove it to trust the system roots",
            ));
        }
        if self.key_prefix.is_empty() {
            return Err(invalid(
                "redis.key_prefix",
                "is empty",
                "the default is \"tessera:\"",
            ));
        }
        check_timeout("redis.timeout_ms", self.timeout_ms, "the default is 500")
    }
}

/// A network timeout between 10 ms and a minute.
pub(crate) fn check_timeout(key: &str, ms: u64, fix: &str) -> Result<(), ConfigError> {
    check_range(key, ms, 10..=60_000, fix)
}
