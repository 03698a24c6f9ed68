//! The claim contract of Tessera's internal JWTs (API.md, "The issued JWT"), shared by the
//! issuer and every verifier: the issuer serializes [`ClaimsRef`] straight from borrowed
//! data (the sign path allocates only the JSON), verifiers deserialize [`Claims`].
//!
//! Invariants: both forms name the same claims with the same JSON shapes (a unit test
//! serializes one and reads it back as the other), and every claim Tessera sets itself is
//! in [`RESERVED_CLAIMS`], so no mapped session attribute can shadow it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Claim names Tessera sets itself (plus `active` and `token_type`, which `/introspect`
/// writes next to the claims); neither a session's claims nor a claim mapping may set them.
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

/// RFC 6749 §3.3 `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`: one token of the
/// space-separated `scope` claim.
pub fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

/// `sub` of a token issued without a session (anonymous exchange).
pub const ANONYMOUS: &str = "anonymous";

/// `act` (RFC 8693 §4.1): the client (gateway) that asked for the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub sub: String,
}

/// The gateway's inbound request, copied into the `ctx` claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct RequestContext {
    /// HTTP method, e.g. `GET`.
    #[cfg_attr(feature = "utoipa", schema(example = "GET"))]
    pub method: String,
    /// Path (and query) the gateway received; at most 2 KiB.
    #[cfg_attr(feature = "utoipa", schema(example = "/products/1"))]
    pub path: String,
}

/// The claims of a Tessera token, owned: what a verifier reads.
///
/// Claims Tessera always writes but that other issuers' tokens may lack (`iat`, `nbf`,
/// `jti`, `roles`) default to zero or empty; `exp`, `iss`, `aud` and `sub` are required.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    /// The user id, or `anonymous`.
    pub sub: String,
    pub aud: String,
    #[serde(default)]
    pub iat: i64,
    #[serde(default)]
    pub nbf: i64,
    pub exp: i64,
    /// The gateway's client id (RFC 9068).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default)]
    pub jti: String,
    #[serde(default)]
    pub roles: Vec<String>,
    /// Granted scopes, space-separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// base64url SHA-256 of the session id; absent for anonymous tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Actor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ctx: Option<RequestContext>,
    /// Every other claim (mapped session attributes such as `email`).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Claims {
    /// Whether `roles` holds `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// Whether the space-separated `scope` holds `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scope
            .as_deref()
            .is_some_and(|s| s.split(' ').any(|t| t == scope))
    }

    /// Whether the token came from an anonymous exchange (no session behind it).
    pub fn is_anonymous(&self) -> bool {
        self.sub == ANONYMOUS && self.sid.is_none()
    }
}

/// `act`, borrowed: the issuer's form of [`Actor`].
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ActorRef<'a> {
    pub sub: &'a str,
}

/// The claims of a Tessera token, borrowed: what the issuer serializes, without copying
/// anything but the JSON. Same names and shapes as [`Claims`].
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ClaimsRef<'a> {
    pub iss: &'a str,
    pub sub: &'a str,
    pub aud: &'a str,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub client_id: &'a str,
    pub jti: &'a str,
    pub roles: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<&'a str>,
    pub act: ActorRef<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ctx: Option<&'a RequestContext>,
    #[serde(flatten)]
    pub extra: &'a Map<String, Value>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn extra() -> Map<String, Value> {
        let mut extra = Map::new();
        extra.insert("email".into(), json!("a@example.com"));
        extra.insert("tenant".into(), json!({"id": 7, "tags": ["eu"]}));
        extra
    }

    fn borrowed<'a>(
        roles: &'a [String],
        ctx: Option<&'a RequestContext>,
        extra: &'a Map<String, Value>,
    ) -> ClaimsRef<'a> {
        ClaimsRef {
            iss: "https://sts.example.com",
            sub: "user-1",
            aud: "product-inventory",
            iat: 995,
            nbf: 995,
            exp: 1_600,
            client_id: "gw",
            jti: "Vx3aaaaaaaaaaaaaaaaaaa",
            roles,
            scope: ctx.map(|_| "orders:read orders:write"),
            sid: ctx.map(|_| "c2lk"),
            act: ActorRef { sub: "gw" },
            ctx,
            extra,
        }
    }

    #[test]
    fn what_the_issuer_writes_a_verifier_reads_back_as_the_same_values() {
        let roles = vec!["admin".to_owned(), "ops".to_owned()];
        let ctx = RequestContext {
            method: "GET".into(),
            path: "/branches/1/products?x=1".into(),
        };
        let extra = extra();
        let json = serde_json::to_vec(&borrowed(&roles, Some(&ctx), &extra)).expect("json");
        let read: Claims = serde_json::from_slice(&json).expect("owned");
        let expected = Claims {
            iss: "https://sts.example.com".into(),
            sub: "user-1".into(),
            aud: "product-inventory".into(),
            iat: 995,
            nbf: 995,
            exp: 1_600,
            client_id: Some("gw".into()),
            jti: "Vx3aaaaaaaaaaaaaaaaaaa".into(),
            roles,
            scope: Some("orders:read orders:write".into()),
            sid: Some("c2lk".into()),
            act: Some(Actor { sub: "gw".into() }),
            ctx: Some(ctx),
            extra,
        };
        assert_eq!(read, expected);
        assert!(read.has_role("ops") && !read.has_role("adm"));
        assert!(read.has_scope("orders:write") && !read.has_scope("orders"));
        assert!(!read.is_anonymous());

        let again: Claims =
            serde_json::from_slice(&serde_json::to_vec(&read).expect("json")).expect("owned");
        assert_eq!(again, expected, "the owned form round-trips too");
    }

    #[test]
    fn optional_claims_the_issuer_leaves_out_are_none_and_nothing_leaks_into_extra() {
        let extra = Map::new();
        let json = serde_json::to_value(borrowed(&[], None, &extra)).expect("json");
        for absent in ["scope", "sid", "ctx"] {
            assert!(json.get(absent).is_none(), "{absent} is skipped");
        }
        let read: Claims = serde_json::from_value(json).expect("owned");
        assert_eq!((read.scope, read.sid, read.ctx), (None, None, None));
        assert!(read.roles.is_empty() && read.extra.is_empty());
    }

    #[test]
    fn every_claim_the_issuer_sets_is_reserved() {
        let roles = vec!["admin".to_owned()];
        let ctx = RequestContext {
            method: "GET".into(),
            path: "/".into(),
        };
        let extra = Map::new();
        let json = serde_json::to_value(borrowed(&roles, Some(&ctx), &extra)).expect("json");
        let names = json.as_object().expect("object").keys();
        for name in names {
            assert!(RESERVED_CLAIMS.contains(&name.as_str()), "{name}");
        }
        assert!(RESERVED_CLAIMS.contains(&"active") && RESERVED_CLAIMS.contains(&"token_type"));
    }

    #[test]
    fn scope_tokens_follow_rfc_6749() {
        assert!(is_scope_token("products:read"));
        assert!(!is_scope_token("a b"));
        assert!(!is_scope_token("quote\""));
        assert!(!is_scope_token(""));
    }

    #[test]
    fn an_anonymous_token_has_the_anonymous_subject_and_no_session() {
        let read: Claims = serde_json::from_value(json!({
            "iss": "i", "sub": "anonymous", "aud": "a", "exp": 1
        }))
        .expect("minimal claims");
        assert!(read.is_anonymous());
        assert_eq!((read.iat, read.nbf, read.jti.as_str()), (0, 0, ""));
    }

    #[test]
    fn claims_without_a_subject_are_refused() {
        let missing = serde_json::from_value::<Claims>(json!({"iss": "i", "aud": "a", "exp": 1}));
        assert!(missing.is_err());
    }
}
