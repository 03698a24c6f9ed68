//! The claims of a Tessera token, typed.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Value;

/// `act`: the gateway that asked for the token (RFC 8693 §4.1).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Actor {
    pub sub: String,
}

/// `ctx`: the gateway's inbound request.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RequestContext {
    pub method: String,
    pub path: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Claims {
    pub iss: String,
    /// The user id, or `anonymous`.
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    #[serde(default)]
    pub iat: i64,
    #[serde(default)]
    pub jti: String,
    #[serde(default)]
    pub roles: Vec<String>,
    pub scope: Option<String>,
    pub client_id: Option<String>,
    pub sid: Option<String>,
    pub act: Option<Actor>,
    pub ctx: Option<RequestContext>,
    /// Every other claim (mapped session attributes such as `email`).
    #[serde(flatten)]
    pub extra: HashMap<String, Value>,
}

impl Claims {
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scope
            .as_deref()
            .is_some_and(|s| s.split(' ').any(|t| t == scope))
    }

    pub fn is_anonymous(&self) -> bool {
        self.sub == "anonymous" && self.sid.is_none()
    }
}
