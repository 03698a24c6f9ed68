//! [`AccessClaims`]: what the role and scope guards ask of a claim type.
//!
//! Invariant: for [`Claims`] the answers are exactly `Claims::has_role` / `has_scope`.

use crate::Claims;

/// Claims the role and scope guards can ask. Implemented for [`Claims`]; implement it for
/// your own claim type to use [`RequireToken`](crate::RequireToken) (or the tower layer)
/// with it. Without guards the methods are never called, so the defaults (`false`) do.
pub trait AccessClaims {
    /// Whether the token grants `role`.
    fn has_role(&self, role: &str) -> bool {
        let _ = role;
        false
    }

    /// Whether the token grants `scope`.
    fn has_scope(&self, scope: &str) -> bool {
        let _ = scope;
        false
    }
}

impl AccessClaims for Claims {
    fn has_role(&self, role: &str) -> bool {
        Claims::has_role(self, role)
    }

    fn has_scope(&self, scope: &str) -> bool {
        Claims::has_scope(self, scope)
    }
}
