//! Configuration reload without a restart (`SIGHUP`, `tessera reload`).
//!
//! What a reload changes: clients (added, removed, secrets, audiences, rate limits), the
//! static sessions, the claim mapping, forward authentication (`[forward_auth]`: its
//! client, cookie, login URL and routes), the admin token and the log level. Each is swapped
//! whole, so a request runs under the settings current when it started, old or new, never
//! a mix. Everything else (listen address, issuer, keystore, Redis and database URLs,
//! token lifetimes, server limits…) needs a restart: a reload that changes it names those
//! sections in one log line and leaves them as they run. An invalid file changes nothing.
//!
//! Invariant: [`Reloader::running`] is what is in force: the settings the server started
//! with, with the reloadable parts of every successful reload applied.

use std::sync::Arc;

use arc_swap::{ArcSwap, ArcSwapOption};

use crate::clients::admin::AdminToken;
use crate::clients::{ClientChanges, Clients};
use crate::config::{ConfigError, ConfigSource, Settings};
use crate::forward_auth::ForwardAuth;
use crate::sessions::SessionBackend;

/// The parts of the running server a reload reaches.
pub struct Reloader {
    source: ConfigSource,
    running: ArcSwap<Settings>,
    clients: Arc<Clients>,
    sessions: Arc<SessionBackend>,
    admin: Arc<AdminToken>,
    forward_auth: Arc<ArcSwapOption<ForwardAuth>>,
}

/// What a successful reload did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reloaded {
    pub clients: ClientChanges,
    /// Sections that changed but need a restart (left as they run).
    pub needs_restart: Vec<&'static str>,
    /// `log.level` changed but `RUST_LOG` fixes the level.
    pub log_level_ignored: bool,
}

impl Reloader {
    pub fn new(
        source: ConfigSource,
        settings: Settings,
        clients: Arc<Clients>,
        sessions: Arc<SessionBackend>,
        admin: Arc<AdminToken>,
        forward_auth: Arc<ArcSwapOption<ForwardAuth>>,
    ) -> Self {
        Self {
            source,
            running: ArcSwap::from_pointee(settings),
            clients,
            sessions,
            admin,
            forward_auth,
        }
    }

    /// The settings in force.
    pub fn running(&self) -> Arc<Settings> {
        self.running.load_full()
    }

    /// Re-reads the configuration from where it was first read and applies it; logs one
    /// line with the outcome and counts it in `tessera_config_reloads_total{result}`.
    pub fn reload(&self) -> Result<Reloaded, ConfigError> {
        let outcome = self.source.load().map(|settings| self.apply(settings));
        match &outcome {
            Ok(done) => {
                count("ok");
                tracing::info!(
                    added = ?done.clients.added,
                    removed = ?done.clients.removed,
                    changed = ?done.clients.changed,
                    "configuration reloaded"
                );
                if !done.needs_restart.is_empty() {
                    tracing::warn!(
                        sections = ?done.needs_restart,
                        "configuration reload: these changed settings need a restart and were left as they run"
                    );
                }
                if done.log_level_ignored {
                    tracing::warn!(
                        "configuration reload: RUST_LOG is set, so log.level was not applied"
                    );
                }
            }
            Err(error) => {
                count("error");
                tracing::error!("configuration reload refused, nothing changed: {error}");
            }
        }
        outcome
    }

    /// Applies the reloadable parts of `new` (already validated).
    pub fn apply(&self, new: Settings) -> Reloaded {
        let old = self.running.load_full();
        let needs_restart = restart_only_changes(&old, &new);
        let mut next = (*old).clone();
        next.clients = new.clients;
        next.admin = new.admin;
        next.sessions.static_sessions = new.sessions.static_sessions;
        next.sessions.claims = new.sessions.claims;
        next.forward_auth = new.forward_auth;
        let level_changed = next.log.level != new.log.level;
        next.log.level = new.log.level;

        let clients = self.clients.reload(&next);
        self.admin.set(next.admin.token_sha256);
        self.sessions.reload(&next.sessions);
        self.forward_auth.store(
            next.forward_auth
                .as_ref()
                .map(|f| Arc::new(ForwardAuth::from_settings(f))),
        );
        let log_level_ignored =
            level_changed && !crate::infra::telemetry::set_level(&next.log.level);
        self.running.store(Arc::new(next));
        Reloaded {
            clients,
            needs_restart,
            log_level_ignored,
        }
    }
}

fn count(result: &'static str) {
    ::metrics::counter!(crate::infra::metrics::CONFIG_RELOADS, "result" => result).increment(1);
}

/// The sections a reload cannot apply that differ between `old` and `new`. Compared as
/// rendered by `Debug`, which shows secrets (URLs with passwords, KEKs) only as
/// addresses and fingerprints: a changed password alone is not reported.
fn restart_only_changes(old: &Settings, new: &Settings) -> Vec<&'static str> {
    fn differs<T: std::fmt::Debug>(a: &T, b: &T) -> bool {
        format!("{a:?}") != format!("{b:?}")
    }
    let sections: [(&'static str, bool); 12] = [
        ("issuer", differs(&old.issuer, &new.issuer)),
        ("server", differs(&old.server, &new.server)),
        ("log.format", differs(&old.log.format, &new.log.format)),
        ("token", differs(&old.token, &new.token)),
        ("keys", differs(&old.keys, &new.keys)),
        ("jwks", differs(&old.jwks, &new.jwks)),
        ("denylist", differs(&old.denylist, &new.denylist)),
        ("redis", differs(&old.redis, &new.redis)),
        ("telemetry", differs(&old.telemetry, &new.telemetry)),
        (
            "sessions.backend",
            differs(&old.sessions.backend, &new.sessions.backend),
        ),
        (
            "sessions.redis",
            differs(&old.sessions.redis, &new.sessions.redis),
        ),
        (
            "sessions.http",
            differs(&old.sessions.http, &new.sessions.http),
        ),
    ];
    sections
        .into_iter()
        .filter_map(|(name, changed)| changed.then_some(name))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ClientSettings, Sha256};

    fn client(id: &str, secret: &str) -> ClientSettings {
        ClientSettings::new(id, vec![Sha256::of_secret(secret)])
    }

    fn reloader(settings: &Settings) -> Reloader {
        Reloader::new(
            ConfigSource::default(),
            settings.clone(),
            Arc::new(Clients::from_settings(settings)),
            Arc::new(SessionBackend::from_settings(settings).expect("static backend")),
            Arc::new(AdminToken::new(settings.admin.token_sha256)),
            Arc::default(),
        )
    }

    #[test]
    fn clients_and_admin_token_change_and_restart_only_sections_are_named_not_applied() {
        let settings = Settings {
            clients: vec![client("a", "s"), client("b", "s")],
            ..Settings::default()
        };
        let reloader = reloader(&settings);

        let mut new = settings.clone();
        new.clients = vec![client("a", "s"), client("c", "s")];
        new.admin.token_sha256 = Some(Sha256::of_secret("admin"));
        new.server.workers = 7;
        new.issuer = "https://other.example".parse().expect("issuer");
        let done = reloader.apply(new);

        assert_eq!(done.clients.added, ["c"]);
        assert_eq!(done.clients.removed, ["b"]);
        assert!(done.clients.changed.is_empty(), "a is unchanged");
        assert_eq!(done.needs_restart, ["issuer", "server"]);
        assert!(reloader.admin.verify("admin"));
        let running = reloader.running();
        assert_eq!(running.server.workers, settings.server.workers);
        assert_eq!(running.issuer, settings.issuer);
        assert_eq!(running.clients.len(), 2);
    }

    #[test]
    fn a_changed_secret_is_a_changed_client() {
        let settings = Settings {
            clients: vec![client("a", "old")],
            ..Settings::default()
        };
        let reloader = reloader(&settings);
        let mut new = settings.clone();
        new.clients = vec![client("a", "new")];
        assert_eq!(reloader.apply(new).clients.changed, ["a"]);
    }
}
