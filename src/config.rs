//! Typed settings: built-in defaults → TOML file → `TESSERA__SECTION__KEY` environment.
//!
//! Invariant: a `Settings` value that left [`Settings::load`] has been validated; every
//! other module may rely on its numbers being in range and its cross-references holding.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The one error type of configuration: a single line naming the key and the fix.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

fn invalid(key: &str, problem: impl std::fmt::Display, fix: &str) -> ConfigError {
    ConfigError(format!("invalid configuration: `{key}` {problem}; {fix}"))
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// The `iss` claim and the base of every URL in discovery.
    pub issuer: String,
    pub server: ServerSettings,
    pub log: LogSettings,
    pub token: TokenSettings,
    pub keys: KeySettings,
    pub jwks: JwksSettings,
    pub denylist: DenylistSettings,
    pub redis: RedisSettings,
    pub admin: AdminSettings,
    pub clients: Vec<ClientSettings>,
    pub sessions: SessionSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            issuer: "http://127.0.0.1:8080".into(),
            server: ServerSettings::default(),
            log: LogSettings::default(),
            token: TokenSettings::default(),
            keys: KeySettings::default(),
            jwks: JwksSettings::default(),
            denylist: DenylistSettings::default(),
            redis: RedisSettings::default(),
            admin: AdminSettings::default(),
            clients: Vec::new(),
            sessions: SessionSettings::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    pub listen: String,
    pub max_body_bytes: usize,
    pub shutdown_grace_seconds: u64,
    /// Worker threads; 0 = one per CPU core.
    pub workers: usize,
    /// Time a client has to send the request head.
    pub client_request_timeout_ms: u64,
    /// Idle keep-alive connections are closed after this.
    pub keep_alive_seconds: u64,
    /// Time to close a connection cleanly.
    pub client_disconnect_timeout_ms: u64,
    /// Authentication failures allowed per second and source address; 0 = no limit.
    pub auth_failures_per_second: u32,
    /// Failures an address may make in a row before the rate applies.
    pub auth_failures_burst: u32,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            max_body_bytes: 16 * 1024,
            shutdown_grace_seconds: 30,
            workers: 0,
            client_request_timeout_ms: 5000,
            keep_alive_seconds: 75,
            client_disconnect_timeout_ms: 1000,
            auth_failures_per_second: 1,
            auth_failures_burst: 20,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokenSettings {
    pub ttl_seconds: u64,
    pub max_ttl_seconds: u64,
    pub clock_skew_seconds: u64,
    pub typ: String,
    pub anonymous_roles: Vec<String>,
}

impl Default for TokenSettings {
    fn default() -> Self {
        Self {
            ttl_seconds: 600,
            max_ttl_seconds: 3600,
            clock_skew_seconds: 5,
            typ: "at+jwt".into(),
            anonymous_roles: Vec::new(),
        }
    }
}

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
    pub database_url: String,
    /// Base64 of the 32-byte key-encryption key that seals private keys at rest.
    pub encryption_key: String,
    pub encryption_key_file: Option<PathBuf>,
    /// Earlier KEKs, still accepted for reading until `tessera keys rewrap`.
    pub previous_encryption_keys: Vec<String>,
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
            database_url: "postgres://postgres@127.0.0.1:5432/tessera".into(),
            encryption_key: String::new(),
            encryption_key_file: None,
            previous_encryption_keys: Vec::new(),
            database_schema: "public".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JwksSettings {
    pub max_age_seconds: u64,
}

impl Default for JwksSettings {
    fn default() -> Self {
        Self {
            max_age_seconds: 300,
        }
    }
}

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

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisSettings {
    pub url: String,
    pub key_prefix: String,
    pub cluster: bool,
    pub nodes: Vec<String>,
    /// Bound on connecting and on every command; a dead Redis never hangs a request.
    pub timeout_ms: u64,
    /// PEM CA bundle trusted for `rediss://` instead of the system roots.
    pub tls_ca_file: Option<PathBuf>,
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self {
            url: "redis://127.0.0.1:6379".into(),
            key_prefix: "tessera:".into(),
            cluster: false,
            nodes: Vec::new(),
            timeout_ms: 500,
            tls_ca_file: None,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminSettings {
    /// Hex SHA-256 of the admin bearer token; empty = the admin API is disabled.
    pub token_sha256: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSettings {
    pub id: String,
    pub secret_sha256: String,
    #[serde(default)]
    pub allowed_audiences: Vec<String>,
    #[serde(default)]
    pub default_audience: Option<String>,
    #[serde(default)]
    pub allow_anonymous: bool,
    #[serde(default)]
    pub scopes: Vec<String>,
    /// 0 = only the global `token.max_ttl_seconds` applies.
    #[serde(default)]
    pub max_ttl_seconds: u64,
    #[serde(default)]
    pub rate_limit_per_second: u32,
    /// Requests the client may make in a burst (0 = one second's worth).
    #[serde(default)]
    pub rate_limit_burst: u32,
}

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
    pub url: String,
    pub key_prefix: String,
    /// express-session secrets (any verifies, for rotation); empty: only raw sids.
    pub cookie_secrets: Vec<String>,
    pub timeout_ms: u64,
    pub tls_ca_file: Option<PathBuf>,
}

impl Default for RedisSessionSettings {
    fn default() -> Self {
        Self {
            url: "redis://127.0.0.1:6379".into(),
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
    pub url: String,
    /// Tessera's own credentials at the introspection endpoint.
    pub client_id: String,
    pub client_secret: String,
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
            url: String::new(),
            client_id: String::new(),
            client_secret: String::new(),
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

/// Claim names Tessera sets itself; neither a session's claims nor a mapping may set them.
pub const RESERVED_CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "jti",
    "act",
    "client_id",
    "sid",
    "roles",
    "scope",
    "ctx",
];

impl Settings {
    /// Loads defaults, then `file` (if any), then the `TESSERA__…` variables of `env`.
    pub fn load(file: Option<&Path>, env: &[(String, String)]) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder();
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError(format!(
                    "invalid configuration: config file {} does not exist; pass an existing file with --config or TESSERA_CONFIG",
                    path.display()
                )));
            }
            builder = builder.add_source(config::File::from(path).format(config::FileFormat::Toml));
        }
        let vars: config::Map<String, String> = env
            .iter()
            .filter(|(k, _)| k.starts_with("TESSERA__"))
            .cloned()
            .collect();
        builder = builder.add_source(
            config::Environment::with_prefix("TESSERA")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .list_separator(",")
                .with_list_parse_key("token.anonymous_roles")
                .with_list_parse_key("redis.nodes")
                .source(Some(vars)),
        );
        let raw = builder.build().map_err(|e| {
            ConfigError(format!(
                "invalid configuration: {}",
                one_line(&e.to_string())
            ))
        })?;
        let settings: Settings = raw.try_deserialize().map_err(|e| {
            ConfigError(format!(
                "invalid configuration: {}",
                one_line(&e.to_string())
            ))
        })?;
        settings.validate()?;
        Ok(settings)
    }

    /// The settings with derived forms fixed (the issuer without a trailing slash).
    pub fn normalized(mut self) -> Self {
        while self.issuer.ends_with('/') {
            self.issuer.pop();
        }
        self
    }

    /// Every rule a running server depends on; the first broken one is reported.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let issuer = self.issuer.trim_end_matches('/');
        if !(issuer.starts_with("https://") || issuer.starts_with("http://"))
            || issuer.contains(['?', '#'])
            || issuer.len() <= "https://".len()
        {
            return Err(invalid(
                "issuer",
                format!("= {issuer:?} is not an http(s) URL without query or fragment"),
                "set it to the URL services reach Tessera at, e.g. https://sts.example.com",
            ));
        }
        if self.server.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(invalid(
                "server.listen",
                format!("= {:?} is not an address:port", self.server.listen),
                "use e.g. 127.0.0.1:8080 or 0.0.0.0:8080",
            ));
        }
        if !(256..=16 * 1024 * 1024).contains(&self.server.max_body_bytes) {
            return Err(invalid(
                "server.max_body_bytes",
                "must be between 256 and 16777216",
                "the default 16384 fits every exchange request",
            ));
        }
        if self
            .log
            .level
            .parse::<tracing_subscriber::EnvFilter>()
            .is_err()
        {
            return Err(invalid(
                "log.level",
                format!("= {:?} is not a log filter", self.log.level),
                "use trace, debug, info, warn or error (or a tracing filter such as tessera=debug)",
            ));
        }
        self.validate_token()?;
        self.validate_keys()?;
        if self.jwks.max_age_seconds == 0 || self.jwks.max_age_seconds > 86_400 {
            return Err(invalid(
                "jwks.max_age_seconds",
                "must be between 1 and 86400",
                "the default is 300",
            ));
        }
        if self.keys.publish_lead_seconds < self.jwks.max_age_seconds {
            return Err(invalid(
                "keys.publish_lead_seconds",
                format!(
                    "({}) is shorter than jwks.max_age_seconds ({}), so a verifier could meet a kid it has not fetched",
                    self.keys.publish_lead_seconds, self.jwks.max_age_seconds
                ),
                "raise keys.publish_lead_seconds or lower jwks.max_age_seconds",
            ));
        }
        if let Some(hash) = Some(&self.admin.token_sha256).filter(|h| !h.is_empty()) {
            check_sha256_hex("admin.token_sha256", hash)?;
        }
        self.validate_clients()?;
        self.validate_redis()?;
        self.validate_sessions()
    }

    fn validate_redis(&self) -> Result<(), ConfigError> {
        if self.denylist.session_ttl_seconds == 0 {
            return Err(invalid(
                "denylist.session_ttl_seconds",
                "must be at least 1",
                "set it at least as long as the legacy server's longest session",
            ));
        }
        if self.denylist.backend != DenylistBackend::Redis {
            return Ok(());
        }
        let r = &self.redis;
        let is_url = |u: &str| u.starts_with("redis://") || u.starts_with("rediss://");
        if r.cluster {
            if r.nodes.is_empty() {
                return Err(invalid(
                    "redis.nodes",
                    "is empty while redis.cluster = true",
                    "list the cluster's seed nodes, e.g. [\"redis://10.0.0.1:6379\"]",
                ));
            }
            if let Some(bad) = r.nodes.iter().find(|n| !is_url(n)) {
                return Err(invalid(
                    "redis.nodes",
                    format!(
                        "contains {:?}, which is not a redis:// or rediss:// URL",
                        crate::infra::redis::describe_url(bad)
                    ),
                    "write each node as redis://host:port",
                ));
            }
        } else if !is_url(&r.url) {
            return Err(invalid(
                "redis.url",
                "is not a redis:// or rediss:// URL",
                "e.g. redis://127.0.0.1:6379 (rediss:// for TLS)",
            ));
        }
        if let Some(ca) = &r.tls_ca_file
            && !ca.is_file()
        {
            return Err(invalid(
                "redis.tls_ca_file",
                format!("= {} is not a readable file", ca.display()),
                "point it at a PEM CA bundle, or remove it to trust the system roots",
            ));
        }
        if r.key_prefix.is_empty() {
            return Err(invalid(
                "redis.key_prefix",
                "is empty",
                "the default is \"tessera:\"",
            ));
        }
        if !(10..=60_000).contains(&r.timeout_ms) {
            return Err(invalid(
                "redis.timeout_ms",
                "must be between 10 and 60000",
                "the default is 500",
            ));
        }
        Ok(())
    }

    fn validate_token(&self) -> Result<(), ConfigError> {
        let t = &self.token;
        if t.max_ttl_seconds == 0 || t.max_ttl_seconds > 86_400 {
            return Err(invalid(
                "token.max_ttl_seconds",
                "must be between 1 and 86400",
                "internal tokens should live minutes, not days",
            ));
        }
        if t.ttl_seconds == 0 || t.ttl_seconds > t.max_ttl_seconds {
            return Err(invalid(
                "token.ttl_seconds",
                format!(
                    "({}) must be between 1 and token.max_ttl_seconds ({})",
                    t.ttl_seconds, t.max_ttl_seconds
                ),
                "lower token.ttl_seconds or raise token.max_ttl_seconds",
            ));
        }
        if t.clock_skew_seconds > 300 {
            return Err(invalid(
                "token.clock_skew_seconds",
                "must be at most 300",
                "a few seconds is enough for clocks kept by NTP",
            ));
        }
        if t.typ.is_empty() || !t.typ.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid(
                "token.typ",
                format!("= {:?} is not a media type", t.typ),
                "use \"at+jwt\" (RFC 9068) or \"JWT\" for old verifiers",
            ));
        }
        Ok(())
    }

    fn validate_keys(&self) -> Result<(), ConfigError> {
        let k = &self.keys;
        if k.store == KeyStoreKind::Postgres {
            if k.encryption_key.is_empty() && k.encryption_key_file.is_none() {
                return Err(invalid(
                    "keys.encryption_key",
                    "is required with keys.store = \"postgres\"",
                    "set it (or keys.encryption_key_file) to `openssl rand -base64 32`; private keys are never stored in clear in the database",
                ));
            }
            if !(k.database_url.starts_with("postgres://")
                || k.database_url.starts_with("postgresql://"))
            {
                return Err(invalid(
                    "keys.database_url",
                    "is not a postgres:// URL",
                    "e.g. postgres://tessera@db:5432/tessera",
                ));
            }
            if k.database_schema.is_empty()
                || k.database_schema.len() > 63
                || !k
                    .database_schema
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
        if let Err(e) = crate::keys::kek::KekRing::from_settings(k) {
            return Err(ConfigError(format!("invalid configuration: {e}")));
        }
        if ![2048, 3072, 4096].contains(&k.rsa_bits) {
            return Err(invalid(
                "keys.rsa_bits",
                format!("= {} is not supported", k.rsa_bits),
                "use 2048, 3072 or 4096",
            ));
        }
        if k.dir.as_os_str().is_empty() {
            return Err(invalid(
                "keys.dir",
                "is empty",
                "set the folder of the file keystore, e.g. \"keys\"",
            ));
        }
        if k.rotation_interval_seconds != 0 && k.rotation_interval_seconds <= k.publish_lead_seconds
        {
            return Err(invalid(
                "keys.rotation_interval_seconds",
                format!(
                    "({}) must exceed keys.publish_lead_seconds ({})",
                    k.rotation_interval_seconds, k.publish_lead_seconds
                ),
                "rotate less often than the publish lead, or set 0 to rotate only by hand",
            ));
        }
        if k.reload_interval_seconds == 0 {
            return Err(invalid(
                "keys.reload_interval_seconds",
                "must be at least 1",
                "the default is 5",
            ));
        }
        Ok(())
    }

    fn validate_clients(&self) -> Result<(), ConfigError> {
        let mut seen = std::collections::HashSet::new();
        for (i, c) in self.clients.iter().enumerate() {
            let key = |field: &str| format!("clients[{i}].{field}");
            if c.id.is_empty() || !c.id.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(invalid(
                    &key("id"),
                    "must be non-empty printable ASCII without spaces",
                    "name the client, e.g. \"gateway\"",
                ));
            }
            if !seen.insert(c.id.as_str()) {
                return Err(invalid(
                    &key("id"),
                    format!("= {:?} is defined twice", c.id),
                    "give every client its own id",
                ));
            }
            check_sha256_hex(&key("secret_sha256"), &c.secret_sha256)?;
            if let Some(aud) = &c.default_audience
                && !c.allowed_audiences.contains(aud)
            {
                return Err(invalid(
                    &key("default_audience"),
                    format!("= {aud:?} is not in allowed_audiences"),
                    "add it to allowed_audiences or pick one of them",
                ));
            }
            if c.allowed_audiences.iter().any(|a| a.is_empty()) {
                return Err(invalid(
                    &key("allowed_audiences"),
                    "contains an empty string",
                    "remove it",
                ));
            }
            if let Some(bad) = c.scopes.iter().find(|s| !is_scope_token(s)) {
                return Err(invalid(
                    &key("scopes"),
                    format!("contains {bad:?}, which is not an RFC 6749 scope token"),
                    "use printable ASCII without spaces, quotes or backslashes",
                ));
            }
            if c.max_ttl_seconds > self.token.max_ttl_seconds {
                return Err(invalid(
                    &key("max_ttl_seconds"),
                    format!(
                        "({}) exceeds token.max_ttl_seconds ({})",
                        c.max_ttl_seconds, self.token.max_ttl_seconds
                    ),
                    "lower it; 0 means the global maximum applies",
                ));
            }
        }
        Ok(())
    }

    fn validate_sessions(&self) -> Result<(), ConfigError> {
        match self.sessions.backend {
            SessionBackendKind::Static => {}
            SessionBackendKind::Redis => {
                self.validate_claim_mapping()?;
                let r = &self.sessions.redis;
                if !(r.url.starts_with("redis://") || r.url.starts_with("rediss://")) {
                    return Err(invalid(
                        "sessions.redis.url",
                        "is not a redis:// or rediss:// URL",
                        "point it at the express-session store, e.g. redis://127.0.0.1:6379",
                    ));
                }
                if !(10..=60_000).contains(&r.timeout_ms) {
                    return Err(invalid(
                        "sessions.redis.timeout_ms",
                        "must be between 10 and 60000",
                        "the default is 500",
                    ));
                }
                if r.cookie_secrets.iter().any(String::is_empty) {
                    return Err(invalid(
                        "sessions.redis.cookie_secrets",
                        "contains an empty secret",
                        "remove it",
                    ));
                }
            }
            SessionBackendKind::Http => {
                self.validate_claim_mapping()?;
                let h = &self.sessions.http;
                if !(h.url.starts_with("http://") || h.url.starts_with("https://")) {
                    return Err(invalid(
                        "sessions.http.url",
                        "is not an http(s) URL",
                        "point it at the legacy server's introspection or userinfo endpoint",
                    ));
                }
                if h.mode == HttpSessionMode::Introspection && h.client_id.is_empty() {
                    return Err(invalid(
                        "sessions.http.client_id",
                        "is empty while mode = \"introspection\"",
                        "set Tessera's client credentials at the legacy server (client_id, client_secret or client_secret_file)",
                    ));
                }
                if let Some(f) = &h.client_secret_file
                    && !f.is_file()
                {
                    return Err(invalid(
                        "sessions.http.client_secret_file",
                        format!("= {} is not a readable file", f.display()),
                        "point it at a file holding the secret, or use client_secret",
                    ));
                }
                if !(10..=60_000).contains(&h.timeout_ms) {
                    return Err(invalid(
                        "sessions.http.timeout_ms",
                        "must be between 10 and 60000",
                        "the default is 2000",
                    ));
                }
                if h.cache_seconds > 3600 {
                    return Err(invalid(
                        "sessions.http.cache_seconds",
                        "must be at most 3600",
                        "a short cache (the default is 30) keeps logouts effective",
                    ));
                }
                if h.negative_cache_seconds > 5 {
                    return Err(invalid(
                        "sessions.http.negative_cache_seconds",
                        "must be at most 5",
                        "a refused token may become valid at the next login",
                    ));
                }
                if h.max_concurrency == 0 {
                    return Err(invalid(
                        "sessions.http.max_concurrency",
                        "must be at least 1",
                        "the default is 64",
                    ));
                }
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (i, s) in self.sessions.static_sessions.iter().enumerate() {
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
        let claims = &self.sessions.claims;
        for required in ["sub", "roles"] {
            if !claims.contains_key(required) {
                return Err(invalid(
                    &format!("sessions.claims.{required}"),
                    "is missing",
                    "map it to the session JSON with a JSON pointer, e.g. sub = \"/user/id\"",
                ));
            }
        }
        for (name, pointer) in claims {
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

    /// The TTL a client's tokens get: the configured TTL, capped by both maxima.
    pub fn ttl_for(&self, client_max_ttl: u64) -> u64 {
        let cap = match client_max_ttl {
            0 => self.token.max_ttl_seconds,
            n => n.min(self.token.max_ttl_seconds),
        };
        self.token.ttl_seconds.min(cap)
    }
}

/// A parser's message on one line: its code-frame lines (`1 | …`, `^`) dropped, the rest
/// joined with "; ".
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| {
            let frame = l
                .trim_start_matches(|c: char| c.is_ascii_digit())
                .trim_start();
            !l.is_empty() && !frame.starts_with('|') && !frame.starts_with('^')
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn check_sha256_hex(key: &str, value: &str) -> Result<(), ConfigError> {
    if value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(invalid(
            key,
            "is not a hex SHA-256 (64 hex digits)",
            "compute it with `printf %s 'the-secret' | sha256sum` or `tessera hash-secret`",
        ))
    }
}

/// RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
pub fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn write(contents: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::Builder::new()
            .suffix(".toml")
            .tempfile()
            .expect("temp file");
        std::io::Write::write_all(&mut f, contents.as_bytes()).expect("write");
        f
    }

    #[test]
    fn defaults_match_the_contract() {
        let s = Settings::load(None, &[]).expect("defaults are valid");
        assert_eq!(s.issuer, "http://127.0.0.1:8080");
        assert_eq!(s.server.listen, "127.0.0.1:8080");
        assert_eq!(s.server.max_body_bytes, 16384);
        assert_eq!(s.token.ttl_seconds, 600);
        assert_eq!(s.token.typ, "at+jwt");
        assert_eq!(s.keys.store, KeyStoreKind::File);
        assert_eq!(s.keys.publish_lead_seconds, 1800);
        assert_eq!(s.jwks.max_age_seconds, 300);
        assert_eq!(s.denylist.backend, DenylistBackend::Memory);
        assert!(s.clients.is_empty());
    }

    #[test]
    fn environment_overrides_the_file() {
        let f = write("[token]\nttl_seconds = 120\nmax_ttl_seconds = 900\n");
        let s = Settings::load(
            Some(f.path()),
            &env(&[
                ("TESSERA__TOKEN__TTL_SECONDS", "300"),
                ("TESSERA__TOKEN__ANONYMOUS_ROLES", "guest,public"),
                ("TESSERA_CONFIG", "ignored"),
            ]),
        )
        .expect("valid");
        assert_eq!(s.token.ttl_seconds, 300);
        assert_eq!(s.token.max_ttl_seconds, 900);
        assert_eq!(s.token.anonymous_roles, vec!["guest", "public"]);
    }

    #[test]
    fn a_wrong_type_names_the_key() {
        let err = Settings::load(None, &env(&[("TESSERA__TOKEN__TTL_SECONDS", "soon")]))
            .expect_err("invalid");
        assert!(err.0.contains("token.ttl_seconds"), "{err}");
    }

    #[test]
    fn an_unknown_key_is_rejected_by_name() {
        let f = write("[token]\nttl_secs = 5\n");
        let err = Settings::load(Some(f.path()), &[]).expect_err("invalid");
        assert!(err.0.contains("ttl_secs"), "{err}");
    }

    #[test]
    fn ttl_above_the_maximum_is_rejected_with_the_fix() {
        let err = Settings::load(None, &env(&[("TESSERA__TOKEN__TTL_SECONDS", "7200")]))
            .expect_err("invalid");
        assert!(err.0.contains("`token.ttl_seconds`"), "{err}");
        assert!(err.0.contains("raise token.max_ttl_seconds"), "{err}");
        assert_eq!(err.0.lines().count(), 1);
    }

    #[test]
    fn publish_lead_shorter_than_jwks_max_age_is_rejected() {
        let err = Settings::load(None, &env(&[("TESSERA__KEYS__PUBLISH_LEAD_SECONDS", "60")]))
            .expect_err("invalid");
        assert!(err.0.contains("keys.publish_lead_seconds"), "{err}");
    }

    #[test]
    fn clients_are_checked() {
        let f = write("[[clients]]\nid = \"gw\"\nsecret_sha256 = \"abc\"\n");
        let err = Settings::load(Some(f.path()), &[]).expect_err("invalid");
        assert!(err.0.contains("clients[0].secret_sha256"), "{err}");

        let f = write(&format!(
            "[[clients]]\nid = \"gw\"\nsecret_sha256 = \"{}\"\nallowed_audiences = [\"a\"]\ndefault_audience = \"b\"\n",
            "0".repeat(64)
        ));
        let err = Settings::load(Some(f.path()), &[]).expect_err("invalid");
        assert!(err.0.contains("clients[0].default_audience"), "{err}");
    }

    #[test]
    fn static_sessions_cannot_set_reserved_claims() {
        let f = write(
            "[[sessions.static]]\ntoken = \"session-token-1\"\nsub = \"u\"\nclaims = { iss = \"evil\" }\n",
        );
        let err = Settings::load(Some(f.path()), &[]).expect_err("invalid");
        assert!(err.0.contains("sessions.static[0].claims"), "{err}");
    }

    #[test]
    fn claim_mappings_need_sub_and_roles_and_cannot_touch_reserved_claims() {
        let base = "[sessions]\nbackend = \"redis\"\n[sessions.claims]\n";
        let f = write(&format!("{base}roles = \"/r\"\n"));
        let err = Settings::load(Some(f.path()), &[]).expect_err("no sub");
        assert!(err.0.contains("sessions.claims.sub"), "{err}");
        let f = write(&format!(
            "{base}sub = \"/u\"\nroles = \"/r\"\naud = \"/x\"\n"
        ));
        let err = Settings::load(Some(f.path()), &[]).expect_err("reserved");
        assert!(err.0.contains("sessions.claims.aud"), "{err}");
        let f = write(&format!("{base}sub = \"user.id\"\nroles = \"/r\"\n"));
        let err = Settings::load(Some(f.path()), &[]).expect_err("not a pointer");
        assert!(err.0.contains("JSON pointer"), "{err}");
        let f = write(&format!(
            "{base}sub = \"/u\"\nroles = \"/r\"\ntenantId = \"/t\"\n"
        ));
        let s = Settings::load(Some(f.path()), &[]).expect("valid");
        assert!(
            s.sessions.claims.contains_key("tenantId"),
            "claim names keep their case"
        );
    }

    #[test]
    fn http_backend_in_introspection_mode_needs_credentials() {
        let f = write(
            "[sessions]\nbackend = \"http\"\n[sessions.http]\nurl = \"http://legacy/introspect\"\n[sessions.claims]\nsub = \"/sub\"\nroles = \"/scope\"\n",
        );
        let err = Settings::load(Some(f.path()), &[]).expect_err("no client id");
        assert!(err.0.contains("sessions.http.client_id"), "{err}");
    }

    #[test]
    fn ttl_is_capped_by_client_and_global_maximum() {
        let mut s = Settings::default();
        s.token.ttl_seconds = 900;
        s.token.max_ttl_seconds = 1200;
        assert_eq!(s.ttl_for(0), 900);
        assert_eq!(s.ttl_for(300), 300);
        assert_eq!(s.ttl_for(5000), 900);
    }

    #[test]
    fn scope_tokens_follow_rfc_6749() {
        assert!(is_scope_token("products:read"));
        assert!(!is_scope_token("a b"));
        assert!(!is_scope_token("quote\""));
        assert!(!is_scope_token(""));
    }

    #[test]
    fn shipped_configurations_are_valid() {
        for file in ["config/demo.toml", "config/example.toml"] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
            Settings::load(Some(&path), &[]).unwrap_or_else(|e| panic!("{file}: {e}"));
        }
    }
}
