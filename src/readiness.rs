//! Readiness: can this process issue tokens now? One check per configured part — the
//! keyring has an active key, the keystore could be read and trusted at the last
//! maintenance round, each external backend answers, no shutdown is under way.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::denylist::DenylistStore;
use crate::keys::KeyService;
use crate::keys::record::KeyState;
use crate::sessions::SessionBackend;

/// The parts readiness looks at.
pub struct Readiness {
    keys: Arc<KeyService>,
    denylist: Arc<DenylistStore>,
    sessions: Arc<SessionBackend>,
    shutting_down: Arc<AtomicBool>,
}

/// Each configured part: `ok` or `error: <reason>`.
#[derive(Debug)]
pub struct Report {
    pub checks: BTreeMap<&'static str, String>,
}

impl Report {
    pub fn ready(&self) -> bool {
        self.checks.values().all(|v| v == "ok")
    }
}

impl Readiness {
    pub fn new(
        keys: Arc<KeyService>,
        denylist: Arc<DenylistStore>,
        sessions: Arc<SessionBackend>,
        shutting_down: Arc<AtomicBool>,
    ) -> Self {
        Self {
            keys,
            denylist,
            sessions,
            shutting_down,
        }
    }

    /// From now on, readiness fails (SIGTERM: stop sending us traffic).
    pub fn shut_down(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    pub async fn check(&self) -> Report {
        let mut checks = BTreeMap::new();
        let keys_ok = self
            .keys
            .current()
            .keys()
            .iter()
            .any(|k| k.view.state == KeyState::Active);
        checks.insert(
            "keys",
            if keys_ok {
                "ok".into()
            } else {
                "error: no active key".into()
            },
        );
        // Read or trusted at the last maintenance round (a corrupted keyring.json, a
        // folder others can write): the last good keyring serves meanwhile.
        checks.insert(
            "keystore",
            self.keys
                .health()
                .map_or_else(|reason| format!("error: {reason}"), |()| "ok".into()),
        );
        if let Some(result) = self.denylist.check().await {
            checks.insert(
                "denylist",
                result.map_or_else(|e| format!("error: {e}"), |()| "ok".into()),
            );
        }
        if let Some(result) = self.sessions.check().await {
            checks.insert(
                "sessions",
                result.map_or_else(|reason| format!("error: {reason}"), |()| "ok".into()),
            );
        }
        if self.shutting_down.load(Ordering::SeqCst) {
            checks.insert("shutdown", "error: shutting down".into());
        }
        Report { checks }
    }
}
