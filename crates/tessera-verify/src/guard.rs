//! What the actix middleware and the tower layer share: reading the bearer token,
//! verifying it, checking the role and scope guards, and the RFC 6750 answers.
//!
//! Invariants: a missing or refused token is `401` with `WWW-Authenticate: Bearer
//! error="invalid_token"`; a valid token without the required role or scope is `403`
//! with `error="insufficient_scope"`; bodies are the OAuth JSON error format and never
//! say why a token was refused (that goes to the debug log).

use serde::de::DeserializeOwned;

use crate::{AccessClaims, Verifier};

/// The guards of one route.
#[derive(Debug, Clone, Default)]
pub(crate) struct Rule {
    pub(crate) role: Option<String>,
    pub(crate) scope: Option<String>,
}

/// A refusal, ready to render in either framework.
#[derive(Debug)]
pub(crate) struct Denial {
    pub(crate) status: u16,
    pub(crate) www_authenticate: &'static str,
    pub(crate) body: String,
}

impl Denial {
    fn unauthorized(description: &str) -> Self {
        Self {
            status: 401,
            www_authenticate: "Bearer error=\"invalid_token\"",
            body: error_body("invalid_token", description),
        }
    }

    fn forbidden(description: &str) -> Self {
        Self {
            status: 403,
            www_authenticate: "Bearer error=\"insufficient_scope\"",
            body: error_body("insufficient_scope", description),
        }
    }

    /// For an extractor that finds no verified claims (a handler not behind the guard).
    #[cfg(feature = "actix")]
    pub(crate) fn no_token() -> Self {
        Self::unauthorized("a bearer token is required")
    }
}

fn error_body(error: &str, description: &str) -> String {
    serde_json::json!({"error": error, "error_description": description}).to_string()
}

/// The token of an `Authorization: Bearer …` header value.
fn bearer(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Verifies the request's bearer token into `C` and applies `rule`.
pub(crate) async fn authorize<C>(
    verifier: &Verifier,
    rule: &Rule,
    authorization: Option<&str>,
) -> Result<C, Denial>
where
    C: AccessClaims + DeserializeOwned,
{
    let Some(token) = authorization.and_then(bearer) else {
        return Err(Denial::unauthorized("a bearer token is required"));
    };
    let claims: C = verifier.verify_as(token).await.map_err(|e| {
        tracing::debug!(reason = %e, "token refused");
        Denial::unauthorized("the token is invalid")
    })?;
    if let Some(role) = &rule.role
        && !claims.has_role(role)
    {
        return Err(Denial::forbidden(&format!("the {role} role is required")));
    }
    if let Some(scope) = &rule.scope
        && !claims.has_scope(scope)
    {
        return Err(Denial::forbidden(&format!("the {scope} scope is required")));
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_non_empty_bearer_credential_is_a_token() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        for value in ["Basic abc", "Bearer", "Bearer ", "Bearerabc", ""] {
            assert_eq!(bearer(value), None, "{value:?}");
        }
    }
}
