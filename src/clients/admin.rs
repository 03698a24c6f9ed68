//! The operators' bearer token for `/admin/*`, kept as its SHA-256 and replaced by a
//! configuration reload.
//!
//! Invariants: the token itself is never stored; a presented token is hashed and compared
//! in constant time; no hash configured means the admin API refuses everyone.

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use subtle::ConstantTimeEq;

use crate::config::Sha256;

#[derive(Debug, Default)]
pub struct AdminToken {
    sha256: ArcSwapOption<Sha256>,
}

impl AdminToken {
    pub fn new(sha256: Option<Sha256>) -> Self {
        Self {
            sha256: ArcSwapOption::new(sha256.map(Arc::new)),
        }
    }

    /// Takes effect for the next admin request.
    pub fn set(&self, sha256: Option<Sha256>) {
        self.sha256.store(sha256.map(Arc::new));
    }

    /// Whether `presented` is the admin token (always false when none is configured).
    pub fn verify(&self, presented: &str) -> bool {
        let presented = Sha256::of_secret(presented);
        self.sha256
            .load()
            .as_deref()
            .is_some_and(|expected| bool::from(expected.as_bytes().ct_eq(presented.as_bytes())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_the_configured_token_and_follows_a_change() {
        let admin = AdminToken::new(None);
        assert!(!admin.verify(""), "no hash: nobody");
        admin.set(Some(Sha256::of_secret("first")));
        assert!(admin.verify("first"));
        assert!(!admin.verify("second"));
        admin.set(Some(Sha256::of_secret("second")));
        assert!(admin.verify("second"));
        assert!(!admin.verify("first"));
    }
}
