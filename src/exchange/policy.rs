//! What a client may ask for: the audience, the scope and the request context of a token.
//! Pure functions of (client, request); the first refusal wins.

use super::ExchangeError;
use crate::clients::Client;
use crate::tokens::RequestContext;

/// Longest `request.path` copied into `ctx`.
pub const MAX_PATH_BYTES: usize = 2048;
const MAX_METHOD_BYTES: usize = 32;

/// The audience asked for, else the client's default; it must be one the client may name.
pub fn choose_audience<'c>(
    client: &'c Client,
    asked: Option<&str>,
) -> Result<&'c str, ExchangeError> {
    match asked {
        Some(aud) => client
            .allowed_audiences
            .iter()
            .find(|a| a.as_str() == aud)
            .map(String::as_str)
            .ok_or(ExchangeError::AudienceNotAllowed),
        None => client
            .default_audience
            .as_deref()
            .ok_or(ExchangeError::NoAudience),
    }
}

/// The granted scope: the requested scope tokens, deduplicated, each allowed to the client.
pub fn grant_scope(client: &Client, asked: Option<&str>) -> Result<Option<String>, ExchangeError> {
    let Some(asked) = asked else { return Ok(None) };
    let mut granted: Vec<&str> = Vec::new();
    for token in asked.split(' ').filter(|t| !t.is_empty()) {
        if !tessera_claims::is_scope_token(token) || !client.scopes.iter().any(|s| s == token) {
            return Err(ExchangeError::ScopeNotAllowed);
        }
        if !granted.contains(&token) {
            granted.push(token);
        }
    }
    Ok((!granted.is_empty()).then(|| granted.join(" ")))
}

/// The user's `roles` include one of `required` (if any are required).
pub fn require_roles(required: Option<&[String]>, roles: &[String]) -> Result<(), ExchangeError> {
    match required {
        Some(required) if !required.is_empty() && !required.iter().any(|r| roles.contains(r)) => {
            Err(ExchangeError::RolesMissing)
        }
        _ => Ok(()),
    }
}

/// The gateway's inbound request, if given, bounded, with an HTTP method token and an
/// origin-form path (a leading `/`, visible ASCII only: no space, CR, LF, ESC or NUL to
/// carry into a downstream log).
pub fn check_context(
    ctx: Option<&RequestContext>,
) -> Result<Option<&RequestContext>, ExchangeError> {
    if let Some(c) = ctx {
        if c.path.len() > MAX_PATH_BYTES {
            return Err(ExchangeError::InvalidRequest(
                "request.path exceeds 2048 bytes".into(),
            ));
        }
        if !c.path.starts_with('/') || !c.path.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ExchangeError::InvalidRequest(
                "request.path must start with / and be visible ASCII (percent-encode the rest)"
                    .into(),
            ));
        }
        let token_char = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        if c.method.is_empty()
            || c.method.len() > MAX_METHOD_BYTES
            || !c.method.bytes().all(token_char)
        {
            return Err(ExchangeError::InvalidRequest(
                "request.method is not an HTTP method".into(),
            ));
        }
    }
    Ok(ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn client(scopes: &[&str]) -> Client {
        let settings = crate::config::Settings::default();
        let c = crate::config::ClientSettings {
            id: "gw".into(),
            secret_sha256: vec![crate::config::Sha256::from_bytes([0; 32])],
            allowed_audiences: vec!["a".into(), "b".into()],
            default_audience: Some("a".into()),
            allow_anonymous: true,
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            max_ttl_seconds: 0,
            rate_limit_per_second: 0,
            rate_limit_burst: 0,
            revocation_feed: false,
        };
        Client::from_settings(&c, &settings)
    }

    #[test]
    fn scope_is_deduplicated_and_checked() {
        let c = client(&["read", "write"]);
        assert_eq!(
            grant_scope(&c, Some("read read  write"))
                .expect("ok")
                .as_deref(),
            Some("read write")
        );
        assert_eq!(grant_scope(&c, Some("")).expect("ok"), None);
        assert!(matches!(
            grant_scope(&c, Some("admin")),
            Err(ExchangeError::ScopeNotAllowed)
        ));
    }

    #[test]
    fn audience_defaults_and_is_checked() {
        let c = client(&[]);
        assert_eq!(choose_audience(&c, None).expect("default"), "a");
        assert_eq!(choose_audience(&c, Some("b")).expect("allowed"), "b");
        assert!(matches!(
            choose_audience(&c, Some("c")),
            Err(ExchangeError::AudienceNotAllowed)
        ));
    }

    #[test]
    fn one_required_role_is_enough() {
        let roles = ["user".to_owned(), "admin".to_owned()];
        let admin = ["admin".to_owned()];
        assert!(require_roles(None, &[]).is_ok());
        assert!(require_roles(Some(&[]), &[]).is_ok());
        assert!(require_roles(Some(&admin), &roles).is_ok());
        assert!(matches!(
            require_roles(Some(&admin), &roles[..1]),
            Err(ExchangeError::RolesMissing)
        ));
    }

    #[test]
    fn request_context_is_bounded() {
        let long = RequestContext {
            method: "GET".into(),
            path: "/".repeat(2049),
        };
        assert!(check_context(Some(&long)).is_err());
        let bad = RequestContext {
            method: "G T".into(),
            path: "/".into(),
        };
        assert!(check_context(Some(&bad)).is_err());
        let ok = RequestContext {
            method: "GET".into(),
            path: "/p?q=1".into(),
        };
        assert!(check_context(Some(&ok)).is_ok());
        for path in [
            "",
            "p",
            "*",
            "/a b",
            "/a\r\nX: y",
            "/\u{1b}[31m",
            "/\0",
            "/é",
        ] {
            let bad = RequestContext {
                method: "GET".into(),
                path: path.into(),
            };
            assert!(check_context(Some(&bad)).is_err(), "{path:?}");
        }
    }
}
