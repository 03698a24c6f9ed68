//! Claim mapping: RFC 6901 JSON pointers from a backend's session JSON to token claims.
//!
//! Invariants: `sub` must resolve (else the session is refused); `roles` may be an array
//! of strings or a space/comma separated string, absent meaning none; reserved names are
//! refused by configuration validation, so a mapping can never overwrite `iss`, `aud`, ….

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::{Principal, SessionError};

#[derive(Debug, Clone)]
pub struct ClaimMap {
    sub: String,
    roles: String,
    extra: Vec<(String, String)>,
}

impl ClaimMap {
    /// From `[sessions.claims]` (validated: `sub` and `roles` present).
    pub fn from_settings(claims: &BTreeMap<String, String>) -> Self {
        let pointer = |name: &str| claims.get(name).cloned().unwrap_or_default();
        Self {
            sub: pointer("sub"),
            roles: pointer("roles"),
            extra: claims
                .iter()
                .filter(|(name, _)| *name != "sub" && *name != "roles")
                .map(|(name, pointer)| (name.clone(), pointer.clone()))
                .collect(),
        }
    }

    /// The principal the session JSON describes; `sid` is the canonical session's hash.
    pub fn principal(&self, session: &Value, sid: String) -> Result<Principal, SessionError> {
        let sub = match session.pointer(&self.sub) {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return Err(SessionError::Rejected),
        };
        let roles = match session.pointer(&self.roles) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            Some(Value::String(s)) => s
                .split([' ', ','])
                .filter(|r| !r.is_empty())
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        };
        let mut claims = Map::new();
        for (name, pointer) in &self.extra {
            if let Some(value) = session.pointer(pointer).filter(|v| !v.is_null()) {
                claims.insert(name.clone(), value.clone());
            }
        }
        Ok(Principal {
            sub,
            roles,
            claims,
            sid,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn map(pairs: &[(&str, &str)]) -> ClaimMap {
        ClaimMap::from_settings(
            &pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn maps_pointers_into_claims() {
        let m = map(&[
            ("sub", "/user/id"),
            ("roles", "/user/registrations/0/roles"),
            ("email", "/user/email"),
            ("tenant", "/user/tenant"),
        ]);
        let session = json!({"user": {"id": "u-1", "email": "a@b.c",
            "registrations": [{"roles": ["admin", "user"]}]}});
        let p = m.principal(&session, "sid".into()).expect("mapped");
        assert_eq!(p.sub, "u-1");
        assert_eq!(p.roles, vec!["admin", "user"]);
        assert_eq!(
            p.claims,
            json!({"email": "a@b.c"}).as_object().cloned().expect("map")
        );
    }

    #[test]
    fn roles_may_be_a_separated_string_or_absent() {
        let m = map(&[("sub", "/sub"), ("roles", "/scope")]);
        let p = m
            .principal(
                &json!({"sub": "u", "scope": "read write,admin"}),
                String::new(),
            )
            .expect("ok");
        assert_eq!(p.roles, vec!["read", "write", "admin"]);
        let p = m.principal(&json!({"sub": 42}), String::new()).expect("ok");
        assert_eq!((p.sub.as_str(), p.roles.len()), ("42", 0));
    }

    #[test]
    fn a_missing_sub_refuses_the_session() {
        let m = map(&[("sub", "/user/id"), ("roles", "/roles")]);
        for session in [
            json!({}),
            json!({"user": {"id": ""}}),
            json!({"user": {"id": null}}),
            json!([1]),
        ] {
            assert!(matches!(
                m.principal(&session, String::new()),
                Err(SessionError::Rejected)
            ));
        }
    }
}
