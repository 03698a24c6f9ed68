//! Tracing setup: text or JSON lines on stderr, filtered by `log.level` (or `RUST_LOG`).
//! The level can be changed while running (a configuration reload), unless `RUST_LOG`
//! set it.

use std::sync::OnceLock;

use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Registry, fmt, reload};

use crate::config::{LogFormat, LogSettings};

/// Set once by [`init`] when the level comes from the configuration.
static LEVEL: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();

/// Installs the global subscriber once; later calls (tests) are no-ops.
pub fn init(log: &LogSettings) {
    let from_env = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| v.parse::<EnvFilter>().ok());
    let configured = from_env.is_none();
    let (filter, handle) =
        reload::Layer::new(from_env.unwrap_or_else(|| EnvFilter::new(&log.level)));
    let registry = tracing_subscriber::registry().with(filter);
    let installed = match log.format {
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Text => registry
            .with(fmt::layer().with_writer(std::io::stderr))
            .try_init(),
    };
    if installed.is_ok() && configured {
        let _ = LEVEL.set(handle);
    }
}

/// Applies `level` (already validated as a filter) to the events from now on. `false`
/// when the level cannot change: `RUST_LOG` set it, or no subscriber of ours is installed.
pub fn set_level(level: &str) -> bool {
    match (LEVEL.get(), level.parse::<EnvFilter>()) {
        (Some(handle), Ok(filter)) => handle.reload(filter).is_ok(),
        _ => false,
    }
}
