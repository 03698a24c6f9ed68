//! Typed settings: built-in defaults → TOML file → `TESSERA__SECTION__KEY` environment.
//!
//! Invariants: a `Settings` value that left [`Settings::load`] has been validated; every
//! other module may rely on its numbers being in range and its cross-references holding.
//! Values are parsed once, into what they are (`SocketAddr`, URLs, hashes, KEKs,
//! secrets), never re-checked as strings later. Each section validates itself; the rules
//! that span sections are here. This module imports nothing else of the crate.

mod clients;
mod forward_auth;
mod keys;
mod redis;
mod server;
mod sessions;
mod telemetry;
mod token;
mod types;
mod urls;

#[cfg(test)]
mod tests;

use std::path::Path;

use serde::Deserialize;

pub use clients::{AdminSettings, ClientSettings};
pub use forward_auth::{ForwardAuthRoute, ForwardAuthSettings, Login};
pub use keys::{KeySettings, KeyStoreKind};
pub use redis::{DenylistBackend, DenylistSettings, RedisSettings};
pub use server::{LogFormat, LogSettings, ServerSettings};
pub use sessions::{
    HttpSessionMode, HttpSessionSettings, RedisSessionSettings, SessionBackendKind,
    SessionSettings, StaticSessionSettings,
};
pub use telemetry::TelemetrySettings;
pub use token::{JwksSettings, TokenSettings};
pub use types::{FieldError, Kek, Sha256};
pub use urls::{
    DatabaseUrl, Issuer, Postgres, Redis, RedisUrl, SecretUrl, UrlKind, http_address,
    parse_http_url,
};

/// The one error type of configuration: a single line naming the key and the fix.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

fn invalid(key: &str, problem: impl std::fmt::Display, fix: &str) -> ConfigError {
    ConfigError(format!("invalid configuration: `{key}` {problem}; {fix}"))
}

/// `value` within `range`, else "`key` must be between … and …; fix".
fn check_range(
    key: &str,
    value: u64,
    range: std::ops::RangeInclusive<u64>,
    fix: &str,
) -> Result<(), ConfigError> {
    if range.contains(&value) {
        return Ok(());
    }
    let (lo, hi) = range.into_inner();
    Err(invalid(key, format!("must be between {lo} and {hi}"), fix))
}

/// `value` of at least 1, else "`key` must be at least 1; fix".
fn check_nonzero(key: &str, value: u64, fix: &str) -> Result<(), ConfigError> {
    if value == 0 {
        return Err(invalid(key, "must be at least 1", fix));
    }
    Ok(())
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// The `iss` claim and the base of every URL in discovery (no trailing slash).
    pub issuer: Issuer,
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
    /// `[forward_auth]`; absent = the forward-authentication endpoints answer 404.
    pub forward_auth: Option<ForwardAuthSettings>,
    /// `[telemetry]`: OpenTelemetry traces (off by default).
    pub telemetry: TelemetrySettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            issuer: "http://127.0.0.1:8080"
                .parse()
                .expect("the default issuer is valid"),
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
            forward_auth: None,
            telemetry: TelemetrySettings::default(),
        }
    }
}

/// Where the running configuration came from, so a reload reads the same place.
#[derive(Debug, Clone, Default)]
pub struct ConfigSource {
    pub file: Option<std::path::PathBuf>,
}

impl ConfigSource {
    /// [`Settings::load`] from this file and the process's environment.
    pub fn load(&self) -> Result<Settings, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Settings::load(self.file.as_deref(), &env)
    }
}

impl Settings {
    /// Loads defaults, then `file` (if any), then the `TESSERA__…` variables of `env`;
    /// reads the files that settings point at (`*_file`); validates.
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
                .with_list_parse_key("server.trusted_proxies")
                .source(Some(vars)),
        );
        let raw = builder.build().map_err(describe)?;
        let mut settings: Settings = raw.try_deserialize().map_err(describe)?;
        settings.keys.read_files()?;
        settings.sessions.read_files()?;
        settings.validate()?;
        Ok(settings)
    }

    /// Every rule a running server depends on; the first broken one is reported.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.server.validate()?;
        self.log.validate()?;
        self.token.validate()?;
        self.keys.validate()?;
        self.jwks.validate()?;
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
        clients::validate_clients(&self.clients)?;
        self.denylist.validate()?;
        if self.denylist.backend == DenylistBackend::Redis {
            self.redis.validate()?;
        }
        self.sessions.validate()?;
        self.telemetry.validate()?;
        if let Some(forward_auth) = &self.forward_auth {
            forward_auth.validate(&self.clients)?;
            if forward_auth.bearer && self.sessions.backend != SessionBackendKind::Http {
                return Err(invalid(
                    "forward_auth.bearer",
                    "= true needs a session backend that resolves access tokens",
                    "set sessions.backend = \"http\" or bearer = false",
                ));
            }
        }
        Ok(())
    }

    /// Settings that are valid but probably not what the operator meant, one line each
    /// (`check-config` prints them; the server logs them at start).
    pub fn warnings(&self) -> Vec<String> {
        self.clients
            .iter()
            .enumerate()
            .filter(|(_, c)| c.max_ttl_seconds > self.token.max_ttl_seconds)
            .map(|(i, c)| {
                format!(
                    "`clients[{i}].max_ttl_seconds` ({}) exceeds token.max_ttl_seconds ({}); the lower applies",
                    c.max_ttl_seconds, self.token.max_ttl_seconds
                )
            })
            .collect()
    }

    /// The TTL a client's tokens get: the configured TTL, capped by both maxima.
    pub fn ttl_for(&self, client_max_ttl: u64) -> u64 {
        self.token.ttl_for(client_max_ttl)
    }
}

/// A loader error as one line; a typed value's own message gets its key in front.
fn describe(e: config::ConfigError) -> ConfigError {
    if let config::ConfigError::At {
        error,
        key: Some(key),
        ..
    } = &e
        && let config::ConfigError::Message(message) = &**error
        && let Some(message) = message.strip_prefix(types::FIELD_MARK)
    {
        return ConfigError(format!(
            "invalid configuration: `{}` {}",
            key_path(key),
            one_line(message)
        ));
    }
    let text = e.to_string().replace(types::FIELD_MARK, "");
    ConfigError(format!("invalid configuration: {}", one_line(&text)))
}

/// The loader writes `clients[0]secret_sha256`; we write `clients[0].secret_sha256`.
fn key_path(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    let mut after_index = false;
    for c in key.chars() {
        if after_index && c != '[' && c != '.' {
            out.push('.');
        }
        after_index = c == ']';
        out.push(c);
    }
    out
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
