//! The `static` backend: sessions listed in the configuration, for demos and tests.
//!
//! Lookups go by the token's SHA-256, so comparison time does not depend on how much of
//! a guessed token matches.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;

use sha2::{Digest, Sha256};

use super::{Principal, SessionError, sid_of_canonical};
use crate::config::StaticSessionSettings;

/// The configured sessions by the SHA-256 of their token; replaced whole by a reload.
#[derive(Debug, Default)]
pub struct StaticSessions {
    by_hash: ArcSwap<HashMap<[u8; 32], Arc<Principal>>>,
}

impl StaticSessions {
    pub fn from_settings(entries: &[StaticSessionSettings]) -> Self {
        Self {
            by_hash: ArcSwap::from_pointee(Self::table(entries)),
        }
    }

    /// The sessions resolved from now on are `entries`.
    pub fn replace(&self, entries: &[StaticSessionSettings]) {
        self.by_hash.store(Arc::new(Self::table(entries)));
    }

    fn table(entries: &[StaticSessionSettings]) -> HashMap<[u8; 32], Arc<Principal>> {
        entries
            .iter()
            .map(|s| {
                let principal = Principal {
                    sub: s.sub.clone(),
                    roles: s.roles.clone(),
                    claims: s.claims.clone(),
                    sid: sid_of_canonical(&s.token),
                };
                (
                    Sha256::digest(s.token.as_bytes()).into(),
                    Arc::new(principal),
                )
            })
            .collect()
    }

    pub fn resolve(&self, token: &str) -> Result<Arc<Principal>, SessionError> {
        let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        self.by_hash
            .load()
            .get(&hash)
            .cloned()
            .ok_or(SessionError::Rejected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_configured_tokens_only() {
        let sessions = StaticSessions::from_settings(&[StaticSessionSettings {
            token: "demo-admin-session".into(),
            sub: "user-1".into(),
            roles: vec!["admin".into()],
            claims: serde_json::json!({"email": "a@example.com"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        }]);
        let p = sessions.resolve("demo-admin-session").expect("known");
        assert_eq!(p.sub, "user-1");
        assert_eq!(p.roles, vec!["admin"]);
        assert_eq!(p.claims["email"], "a@example.com");
        assert_eq!(p.sid, sid_of_canonical("demo-admin-session"));
        assert!(matches!(
            sessions.resolve("demo-admin-sessio"),
            Err(SessionError::Rejected)
        ));
    }
}
