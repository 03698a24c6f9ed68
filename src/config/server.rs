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
    /// A second listener (e.g. an internal interface) that alone serves `/admin/*` and
    /// `/metrics`; `None`: they are served on `listen`.
    #[serde(deserialize_with = "super::types::optional_socket_addr")]
    pub admin_listen: Option<SocketAddr>,
    pub max_body_bytes: usize,
    pub shutdown_grace_seconds: u64,
    /// Worker threads; 0 = one per CPU core.
    pub workers: usize,
    /// Time a client has to send the request head.
    pub client_request_timeout_ms: u64,
    /// Time a handler waits for the whole request body, from its first read; then `408`.
    pub body_timeout_ms: u64,
    /// Connections open at once, across workers (each gets its share); more wait in the
    /// kernel's accept queue, which holds as many.
    pub max_connections: usize,
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
    /// Load balancers and proxies (addresses or CIDRs) whose `X-Forwarded-For` is
    /// believed: from them, its right-most address not in this list is the client's.
    #[serde(deserialize_with = "super::types::ip_nets")]
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin_listen: None,
            max_body_bytes: 16 * 1024,
            shutdown_grace_seconds: 30,
            workers: 0,
            client_request_timeout_ms: 5000,
            body_timeout_ms: 5000,
            max_connections: 1024,
            keep_alive_seconds: 75,
            client_disconnect_timeout_ms: 1000,
            auth_failures_per_second: 1,
            auth_failures_burst: 20,
            pid_file: None,
            max_feed_subscribers: 1000,
            trusted_proxies: Vec::new(),
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
        )?;
        check_range(
            "server.body_timeout_ms",
            self.body_timeout_ms,
            100..=600_000,
            "the default 5000 is ample for a 16 KiB body",
        )?;
        check_range(
            "server.max_connections",
            self.max_connections as u64,
            16..=1_000_000,
            "the default is 1024; keep it below the process's open-file limit (ulimit -n)",
        )
    }

    /// The caller's address: the peer, or — when the peer is a trusted proxy — the
    /// right-most address of `X-Forwarded-For` (all its headers, in order) that is not
    /// itself trusted; the left-most when all are; the nearest trusted one when an entry
    /// does not parse.
    pub fn client_address<'h>(
        &self,
        peer: std::net::IpAddr,
        forwarded_for: impl DoubleEndedIterator<Item = &'h str>,
    ) -> std::net::IpAddr {
        let trusted = |ip: &std::net::IpAddr| self.trusted_proxies.iter().any(|n| n.contains(ip));
        if !trusted(&peer) {
            return peer;
        }
        let mut nearest = peer;
        for entry in forwarded_for.rev().flat_map(|h| h.rsplit(',')) {
            let Ok(ip) = entry.trim().parse::<std::net::IpAddr>() else {
                return nearest;
            };
            if !trusted(&ip) {
                return ip;
            }
            nearest = ip;
        }
        nearest
    }

    /// `body_timeout_ms` as a duration.
    pub fn body_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.body_timeout_ms)
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
