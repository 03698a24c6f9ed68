//! `[forward_auth]`: forward authentication for nginx, Envoy, Traefik and Caddy — which
//! client the gateways authenticate as, where the user's credential is, and the routes
//! (host, path prefix → audience, login, roles, context).
//!
//! Invariants (checked with the clients, in `Settings::validate`): the client exists; every
//! route has a `path_prefix` starting with `/` and an audience the client may ask for; an
//! `optional` route's client allows anonymous exchanges; `login_url` is an http(s) URL.

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;
use serde::de::Deserializer;

use super::clients::ClientSettings;
use super::types::{FieldError, de_error, parse_str};
use super::{ConfigError, invalid};

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ForwardAuthSettings {
    /// The client whose credentials gateways send in `Tessera-Authorization`.
    pub client: String,
    /// The cookie holding the user's session token.
    pub session_cookie: String,
    /// Also accept the user's `Authorization: Bearer` (an access token, `http` backend).
    pub bearer: bool,
    /// Where browsers without a session are sent (`?rd=<original URL>`); `None` = a 401.
    #[serde(deserialize_with = "optional_login_url")]
    pub login_url: Option<url::Url>,
    /// First match in file order.
    pub routes: Vec<ForwardAuthRoute>,
}

impl Default for ForwardAuthSettings {
    fn default() -> Self {
        Self {
            client: String::new(),
            session_cookie: "connect.sid".into(),
            bearer: false,
            login_url: None,
            routes: Vec::new(),
        }
    }
}

/// Whether a route needs a logged-in user.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Login {
    /// No (valid) session: `401 login_required` (or the redirect to `login_url`).
    #[default]
    Required,
    /// No (valid) session: an anonymous token.
    Optional,
}

impl FromStr for Login {
    type Err = FieldError;
    fn from_str(s: &str) -> Result<Self, FieldError> {
        match s {
            "required" => Ok(Self::Required),
            "optional" => Ok(Self::Optional),
            other => Err(FieldError::new(
                format!("= {other:?} is not a login mode"),
                "use \"required\" or \"optional\"",
            )),
        }
    }
}

impl fmt::Display for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Required => "required",
            Self::Optional => "optional",
        })
    }
}

impl<'de> Deserialize<'de> for Login {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_str(d)
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ForwardAuthRoute {
    /// The original request's host, exact (case-insensitive); empty = any host. Without a
    /// port it matches the host on any port.
    pub host: String,
    /// Matched against the original path without its query; required.
    pub path_prefix: Option<String>,
    /// The token's audience; absent = the client's `default_audience`.
    pub audience: Option<String>,
    pub login: Login,
    /// The user needs at least one of these (empty = no role needed).
    pub roles: Vec<String>,
    /// Put `ctx` {method, path} into the token (tokens then differ per request).
    pub context: bool,
}

fn optional_login_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<url::Url>, D::Error> {
    let text = String::deserialize(d)?;
    if text.trim().is_empty() {
        return Ok(None);
    }
    super::urls::parse_http_url(&text).map(Some).map_err(|_| {
        de_error(FieldError::new(
            "is not an http(s) URL",
            "set the login page's absolute URL, e.g. \"https://shop.example/login\", or \"\" for none",
        ))
    })
}

/// RFC 6265 cookie-name characters (an RFC 7230 token).
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// An authority as the `Host` header carries it: host name or IP, optional port.
fn is_host(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._:[]".contains(&b))
}

impl ForwardAuthSettings {
    /// The section's own rules, then those naming the client.
    pub fn validate(&self, clients: &[ClientSettings]) -> Result<(), ConfigError> {
        let Some(client) = clients.iter().find(|c| c.id == self.client) else {
            return Err(invalid(
                "forward_auth.client",
                format!("= {:?} is not a configured client", self.client),
                "name one of the [[clients]] ids (the gateways send its credentials in Tessera-Authorization)",
            ));
        };
        if !is_token(&self.session_cookie) {
            return Err(invalid(
                "forward_auth.session_cookie",
                format!("= {:?} is not a cookie name", self.session_cookie),
                "use the name of the session cookie, e.g. \"connect.sid\"",
            ));
        }
        for (i, route) in self.routes.iter().enumerate() {
            route.validate(i, client)?;
        }
        Ok(())
    }
}

impl ForwardAuthRoute {
    fn validate(&self, i: usize, client: &ClientSettings) -> Result<(), ConfigError> {
        let key = |field: &str| format!("forward_auth.routes[{i}].{field}");
        match self.path_prefix.as_deref() {
            None => {
                return Err(invalid(
                    &key("path_prefix"),
                    "is missing",
                    "give every route a path prefix, e.g. \"/\" or \"/branches/\"",
                ));
            }
            Some(p)
                if !p.starts_with('/')
                    || p.contains(['?', '#'])
                    || p.contains(char::is_whitespace) =>
            {
                return Err(invalid(
                    &key("path_prefix"),
                    format!("= {p:?} is not a path"),
                    "start it with \"/\", without a query",
                ));
            }
            Some(_) => {}
        }
        if !is_host(&self.host) {
            return Err(invalid(
                &key("host"),
                format!("= {:?} is not a host", self.host),
                "use a host name (optionally with :port), or \"\" for any host",
            ));
        }
        match self.audience.as_deref() {
            Some(aud) if !client.allowed_audiences.iter().any(|a| a == aud) => {
                return Err(invalid(
                    &key("audience"),
                    format!(
                        "= {aud:?} is not in the allowed_audiences of client {:?}",
                        client.id
                    ),
                    "add it to that client's allowed_audiences or pick one of them",
                ));
            }
            None if client.default_audience.is_none() => {
                return Err(invalid(
                    &key("audience"),
                    format!(
                        "is missing and client {:?} has no default_audience",
                        client.id
                    ),
                    "name the audience of the service behind this route",
                ));
            }
            _ => {}
        }
        if self.login == Login::Optional && !client.allow_anonymous {
            return Err(invalid(
                &key("login"),
                format!(
                    "= \"optional\" needs anonymous exchanges, which client {:?} may not make",
                    client.id
                ),
                "set allow_anonymous = true on that client, or login = \"required\"",
            ));
        }
        if self.roles.iter().any(String::is_empty) {
            return Err(invalid(
                &key("roles"),
                "contains an empty string",
                "remove it",
            ));
        }
        Ok(())
    }
}
