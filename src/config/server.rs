//! `[server]` and `[log]`: where and how the HTTP server listens, and what it logs.
//!
//! Invariant: a validated `ServerSettings` binds (`listen` is an address) and bounds
//! every request (body size, timeouts).

use std::net::SocketAddr;

use serde::Deserialize;

use super::{ConfigError, check_nonzero, check_range, invalid};

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    #[serde(deserialize_with = "super::types::socket_addr")]
    pub listen: SocketAddr,
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
    /// Where `tessera serve` writes its process id (removed at exit), so that
    /// `tessera reload` can signal it; unset = no file.
    pub pid_file: Option<std::path::PathBuf>,
    /// Concurrent `GET /revocations/stream` subscribers per client; past it, `429`.
    pub max_feed_subscribers: usize,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: 16 * 1024,
            shutdown_grace_seconds: 30,
            workers: 0,
            client_request_timeout_ms: 5000,
            keep_alive_seconds: 75,
            client_disconnect_timeout_ms: 1000,
            auth_failures_per_second: 1,
            auth_failures_burst: 20,
            pid_file: None,
            max_feed_subscribers: 1000,
        }
    }
}

impl ServerSettings {
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_range(
            "server.max_body_bytes",
            self.max_body_bytes as u64,
            256..=16 * 1024 * 1024,
            "the default 16384 fits every exchange request",
        )?;
        check_nonzero(
            "server.max_feed_subscribers",
            self.max_feed_subscribers as u64,
            "the default 1000 allows one feed connection per service replica",
        )
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
    /// A tracing filter (`info`, `tessera=debug,warn`); checked at load.
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

impl LogSettings {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.level.parse::<tracing_subscriber::EnvFilter>().is_err() {
            return Err(invalid(
                "log.level",
                format!("= {:?} is not a log filter", self.level),
                "use trace, debug, info, warn or error (or a tracing filter such as tessera=debug)",
            ));
        }
        Ok(())
    }
}
