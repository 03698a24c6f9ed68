//! `[sessions]`: which backend resolves session tokens (static table, express-session
//! store in Redis, legacy OAuth2 server over HTTP) and how its JSON maps to claims.
//!
//! Invariants: secrets (`cookie_secrets`, `client_secret`) are `secrecy` types, read from
//! `client_secret_file` at load; the backend in use has what it needs (URL, credentials,
//! a claim mapping with `sub` and `roles` that sets no reserved claim).

use std::collections::BTreeMap;
use std::path::PathBuf;

use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;

use super::redis::{check_timeout, local_redis};
use super::urls::RedisUrl;
use super::{ConfigError, check_nonzero, invalid};
use tessera_claims::RESERVED_CLAIMS;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionBackendKind {
    #[default]
    Static,
    Redis,
    Http,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionSettings {
    pub backend: SessionBackendKind,
    #[serde(rename = "static")]
    pub static_sessions: Vec<StaticSessionSettings>,
    pub redis: RedisSessionSettings,
    pub http: HttpSessionSettings,
    /// Claim name → RFC 6901 JSON pointer into the backend's session JSON.
    pub claims: BTreeMap<String, String>,
}

/// An express-session / connect-redis store, read-only.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisSessionSettings {
    pub url: RedisUrl,
    pub key_prefix: String,
    /// express-session secrets (any verifies, for rotation); empty: only raw sids.
    pub cookie_secrets: Vec<SecretString>,
    pub timeout_ms: u64,
    pub tls_ca_file: Option<PathBuf>,
}

impl Default for RedisSessionSettings {
    fn default() -> Self {
        Self {
            url: local_redis(),
            key_prefix: "sess:".into(),
            cookie_secrets: Vec::new(),
            timeout_ms: 500,
            tls_ca_file: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HttpSessionMode {
    Introspection,
    Userinfo,
}

/// A legacy OAuth2 / OIDC server asked per session token.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSessionSettings {
    pub mode: HttpSessionMode,
    /// The introspection or userinfo endpoint; required with `backend = "http"`.
    #[serde(deserialize_with = "super::urls::optional_http_url")]
    pub url: Option<url::Url>,
    /// Tessera's own credentials at the introspection endpoint.
    pub client_id: String,
    /// Filled from `client_secret_file` at load when that is set.
    pub client_secret: SecretString,
    pub client_secret_file: Option<PathBuf>,
    pub timeout_ms: u64,
    /// How long an accepted token's user is cached (0 = no cache).
    pub cache_seconds: u64,
    /// How long a refusal is cached (at most 5, and at most cache_seconds).
    pub negative_cache_seconds: u64,
    /// Upstream calls in flight at once.
    pub max_concurrency: usize,
}

impl Default for HttpSessionSettings {
    fn default() -> Self {
        Self {
            mode: HttpSessionMode::Introspection,
            url: None,
            client_id: String::new(),
            client_secret: SecretString::default(),
            client_secret_file: None,
            timeout_ms: 2000,
            cache_seconds: 30,
            negative_cache_seconds: 5,
            max_concurrency: 64,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticSessionSettings {
    pub token: String,
    pub sub: String,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub claims: serde_json::Map<String, serde_json::Value>,
}

impl SessionSettings {
    /// Reads `sessions.http.client_secret_file` (if set, for the http backend) into
    /// `client_secret`.
    pub(crate) fn read_files(&mut self) -> Result<(), ConfigError> {
        let h = &mut self.http;
        if self.backend != SessionBackendKind::Http {
            return Ok(());
        }
        let Some(path) = &h.client_secret_file else {
            return Ok(());
        };
        let text = std::fs::read_to_string(path).map_err(|_| {
            invalid(
                "sessions.http.client_secret_file",
                format!("= {} is not a readable file", path.display()),
                "point it at a file holding the secret, or use client_secret",
            )
        })?;
        h.client_secret = SecretString::from(text.trim_end());
        Ok(())
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        match self.backend {
            SessionBackendKind::Static => {}
            SessionBackendKind::Redis => {
                self.validate_claim_mapping()?;
                self.redis.validate()?;
            }
            SessionBackendKind::Http => {
                self.validate_claim_mapping()?;
                self.http.validate()?;
            }
        }
        self.validate_static()
    }

    fn validate_static(&self) -> Result<(), ConfigError> {
        let mut seen = std::collections::HashSet::new();
        for (i, s) in self.static_sessions.iter().enumerate() {
            let key = |field: &str| format!("sessions.static[{i}].{field}");
            if s.token.len() < 8 {
                return Err(invalid(
                    &key("token"),
                    "is shorter than 8 characters",
                    "use a longer session token",
                ));
            }
            if !seen.insert(s.token.as_str()) {
                return Err(invalid(
                    &key("token"),
                    "repeats the token of an earlier entry",
                    "give every static session its own token",
                ));
            }
            if s.sub.is_empty() {
                return Err(invalid(&key("sub"), "is empty", "set the user id"));
            }
            if let Some(name) = s
                .claims
                .keys()
                .find(|n| RESERVED_CLAIMS.contains(&n.as_str()))
            {
                return Err(invalid(
                    &key("claims"),
                    format!("sets the reserved claim {name:?}"),
                    "Tessera sets that claim itself; remove it or rename it",
                ));
            }
        }
        Ok(())
    }

    fn validate_claim_mapping(&self) -> Result<(), ConfigError> {
        for required in ["sub", "roles"] {
            if !self.claims.contains_key(required) {
                return Err(invalid(
                    &format!("sessions.claims.{required}"),
                    "is missing",
                    "map it to the session JSON with a JSON pointer, e.g. sub = \"/user/id\"",
                ));
            }
        }
        for (name, pointer) in &self.claims {
            if name != "sub" && name != "roles" && RESERVED_CLAIMS.contains(&name.as_str()) {
                return Err(invalid(
                    &format!("sessions.claims.{name}"),
                    "maps a reserved claim",
                    "Tessera sets that claim itself; map the value to another name",
                ));
            }
            if !pointer.is_empty() && !pointer.starts_with('/') {
                return Err(invalid(
                    &format!("sessions.claims.{name}"),
                    format!("= {pointer:?} is not an RFC 6901 JSON pointer"),
                    "start it with a slash, e.g. \"/user/email\"",
                ));
            }
        }
        Ok(())
    }
}

impl RedisSessionSettings {
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_timeout(
            "sessions.redis.timeout_ms",
            self.timeout_ms,
            "the default is 500",
        )?;
        // Without a prefix every JSON value in that Redis database is a session.
        if self.key_prefix.is_empty() {
            return Err(invalid(
                "sessions.redis.key_prefix",
                "is empty, so any JSON key in that Redis database could be exchanged as a session",
                "set the prefix connect-redis writes (its default is \"sess:\")",
            ));
        }
        if self
            .cookie_secrets
            .iter()
            .any(|s| s.expose_secret().is_empty())
        {
            return Err(invalid(
                "sessions.redis.cookie_secrets",
                "contains an empty secret",
                "remove it",
            ));
        }
        Ok(())
    }
}

impl HttpSessionSettings {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.url.is_none() {
            return Err(invalid(
                "sessions.http.url",
                "is not an http(s) URL",
                "point it at the legacy server's introspection or userinfo endpoint",
            ));
        }
        if self.mode == HttpSessionMode::Introspection && self.client_id.is_empty() {
            return Err(invalid(
                "sessions.http.client_id",
                "is empty while mode = \"introspection\"",
                "set Tessera's client credentials at the legacy server (client_id, client_secret or client_secret_file)",
            ));
        }
        check_timeout(
            "sessions.http.timeout_ms",
            self.timeout_ms,
            "the default is 2000",
        )?;
        if self.cache_seconds > 3600 {
            return Err(invalid(
                "sessions.http.cache_seconds",
                "must be at most 3600",
                "a short cache (the default is 30) keeps logouts effective",
            ));
        }
        if self.negative_cache_seconds > 5 {
            return Err(invalid(
                "sessions.http.negative_cache_seconds",
                "must be at most 5",
                "a refused token may become valid at the next login",
            ));
        }
        check_nonzero(
            "sessions.http.max_concurrency",
            self.max_concurrency as u64,
            "the default is 64",
        )
    }
}
