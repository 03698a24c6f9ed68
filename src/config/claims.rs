//! Token-domain rules the configuration checks against: the claim names Tessera sets
//! itself and the RFC 6749 scope grammar. (They live here so that `config` stays a leaf;
//! they are meant to move to a small shared claims crate.)

/// Claim names Tessera sets itself (and `/introspect` answers with); neither a session's
/// claims nor a mapping may set them.
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
    "active",
    "token_type",
];

/// RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
pub fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_tokens_follow_rfc_6749() {
        assert!(is_scope_token("products:read"));
        assert!(!is_scope_token("a b"));
        assert!(!is_scope_token("quote\""));
        assert!(!is_scope_token(""));
    }

    #[test]
    fn introspection_fields_are_reserved() {
        assert!(RESERVED_CLAIMS.contains(&"active"));
        assert!(RESERVED_CLAIMS.contains(&"token_type"));
    }
}
