//! Forward authentication: a gateway (nginx `auth_request`, Envoy `ext_authz`, Traefik
//! `forwardAuth`, Caddy `forward_auth`) describes an inbound request; Tessera picks the
//! route, exchanges the user's credential on [`Exchanger`] and answers with the token or
//! the reason to refuse.
//!
//! Invariants: the gateway is authenticated first (as `forward_auth.client`, nobody else);
//! nothing is signed for a request that is refused (roles are checked by the exchange
//! before it signs); an unknown, expired or revoked session is a login on a `required`
//! route and an anonymous token on an `optional` one; paths with dot segments are refused
//! rather than matched; nothing here knows HTTP frameworks, and no credential is logged.

use std::borrow::Cow;
use std::net::IpAddr;

use percent_encoding::percent_decode_str;

use crate::clients::{ClientError, PresentedCredentials};
use crate::config::{ForwardAuthRoute, ForwardAuthSettings, Login};
use crate::exchange::{ExchangeError, ExchangeRequest, Exchanger, Issued};
use crate::sessions::{ACCESS_TOKEN_TYPE, SessionError};
use crate::tokens::RequestContext;

/// Longest original URI (path and query) accepted.
pub const MAX_URI_BYTES: usize = 8192;

/// Why a request is not let through. Each variant is one answer of the contract.
#[derive(Debug, thiserror::Error)]
pub enum ForwardAuthError {
    /// The gateway's `Tessera-Authorization` is missing or wrong, or over a limit.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The original method, URI or host is missing or malformed.
    #[error("{0}")]
    InvalidRequest(Cow<'static, str>),
    /// No route matches the original host and path.
    #[error("no route matches this request")]
    NoRoute,
    /// A `required` route and no valid session; `redirect` when a browser should be sent
    /// to `login_url`.
    #[error("this route requires a logged-in user")]
    LoginRequired { redirect: Option<String> },
    /// The exchange refused (roles missing: 403) or could not answer (503).
    #[error(transparent)]
    Exchange(#[from] ExchangeError),
}

/// The inbound request as the gateway's dialect describes it, still unchecked.
#[derive(Debug, Default)]
pub struct Inbound<'a> {
    /// The gateway's own credentials (`Tessera-Authorization`).
    pub gateway_authorization: Option<&'a [u8]>,
    /// The gateway's address (for the authentication-failure limit).
    pub peer: Option<IpAddr>,
    pub method: Option<&'a str>,
    /// Path and query, as received by the gateway.
    pub uri: Option<&'a str>,
    pub host: Option<&'a str>,
    /// `http` or `https`, when the dialect says; only used for the login redirect.
    pub scheme: Option<&'a str>,
    /// Every `Cookie` header value the user sent.
    pub cookies: Vec<&'a str>,
    /// The user's `Authorization` header (read only with `forward_auth.bearer`).
    pub user_authorization: Option<&'a str>,
    /// The user's browser asks for HTML (`Accept` includes `text/html`).
    pub wants_html: bool,
}

/// A route, prepared for matching.
#[derive(Debug)]
struct Route {
    /// Lower-case; `None` = any host.
    host: Option<String>,
    /// Whether `host` names a port (then the whole authority must match).
    host_has_port: bool,
    path_prefix: String,
    audience: Option<String>,
    login: Login,
    roles: Vec<String>,
    context: bool,
}

impl Route {
    fn new(r: &ForwardAuthRoute) -> Self {
        let host = (!r.host.is_empty()).then(|| r.host.to_ascii_lowercase());
        Self {
            host_has_port: host.as_deref().is_some_and(|h| strip_port(h) != h),
            host,
            path_prefix: r.path_prefix.clone().unwrap_or_else(|| "/".into()),
            audience: r.audience.clone(),
            login: r.login,
            roles: r.roles.clone(),
            context: r.context,
        }
    }

    fn matches(&self, host: &str, path: &str) -> bool {
        let host_ok = match &self.host {
            None => true,
            Some(h) if self.host_has_port => h.eq_ignore_ascii_case(host),
            Some(h) => h.eq_ignore_ascii_case(strip_port(host)),
        };
        host_ok && path.starts_with(&self.path_prefix)
    }
}

/// The host of an authority (`example.com:8080` → `example.com`, `[::1]:80` → `[::1]`).
fn strip_port(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority
            .find(']')
            .map_or(authority, |end| &authority[..=end]);
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    }
}

/// The original request, checked.
#[derive(Debug)]
struct Original<'a> {
    method: &'a str,
    uri: &'a str,
    host: &'a str,
    /// The path without its query, percent-decoded: what routes match.
    path: String,
}

fn invalid(text: &'static str) -> ForwardAuthError {
    ForwardAuthError::InvalidRequest(text.into())
}

impl<'a> Original<'a> {
    fn parse(inbound: &Inbound<'a>) -> Result<Self, ForwardAuthError> {
        let method = inbound
            .method
            .ok_or_else(|| invalid("the original method is missing"))?;
        let token_char = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        if method.is_empty() || method.len() > 32 || !method.bytes().all(token_char) {
            return Err(invalid("the original method is not an HTTP method"));
        }
        let uri = inbound
            .uri
            .ok_or_else(|| invalid("the original URI is missing"))?;
        if !uri.starts_with('/')
            || uri.len() > MAX_URI_BYTES
            || uri.bytes().any(|b| b <= b' ' || b == 0x7f || b == b'#')
        {
            return Err(invalid("the original URI is not a path"));
        }
        let raw_path = uri.split_once('?').map_or(uri, |(p, _)| p);
        let path = percent_decode_str(raw_path).decode_utf8_lossy();
        if path
            .split(['/', '\\'])
            .any(|segment| segment == "." || segment == "..")
            || path.contains('\\')
        {
            return Err(invalid("the original path has dot segments or backslashes"));
        }
        let host = inbound
            .host
            .ok_or_else(|| invalid("the original host is missing"))?;
        let host_char = |b: u8| b.is_ascii_alphanumeric() || b"-._:[]".contains(&b);
        if host.is_empty() || host.len() > 255 || !host.bytes().all(host_char) {
            return Err(invalid("the original host is not a host"));
        }
        Ok(Self {
            method,
            uri,
            host,
            path: path.into_owned(),
        })
    }
}

/// The user's credential: the session cookie, else (when allowed) a bearer token.
enum Credential<'a> {
    Session(Cow<'a, str>),
    Bearer(&'a str),
}

/// Forward authentication as configured in `[forward_auth]`.
#[derive(Debug)]
pub struct ForwardAuth {
    client_id: String,
    session_cookie: String,
    bearer: bool,
    login_url: Option<url::Url>,
    routes: Vec<Route>,
}

impl ForwardAuth {
    pub fn from_settings(settings: &ForwardAuthSettings) -> Self {
        Self {
            client_id: settings.client.clone(),
            session_cookie: settings.session_cookie.clone(),
            bearer: settings.bearer,
            login_url: settings.login_url.clone(),
            routes: settings.routes.iter().map(Route::new).collect(),
        }
    }

    /// Decides about one inbound request: the token to put on the upstream request, or
    /// why not.
    pub async fn check(
        &self,
        exchanger: &Exchanger,
        inbound: &Inbound<'_>,
    ) -> Result<Issued, ForwardAuthError> {
        let presented = PresentedCredentials {
            authorization: inbound.gateway_authorization,
            ..PresentedCredentials::default()
        };
        let client = match exchanger.authenticate(&presented, inbound.peer) {
            Ok(client) if client.id == self.client_id => client,
            Ok(_) | Err(ClientError::InvalidClient) => {
                tracing::error!(
                    "forward auth: the gateway's Tessera-Authorization is missing or is not forward_auth.client's (a gateway misconfiguration)"
                );
                return Err(ClientError::InvalidClient.into());
            }
            Err(other) => return Err(other.into()),
        };
        let original = Original::parse(inbound)?;
        let route = self
            .routes
            .iter()
            .find(|r| r.matches(original.host, &original.path))
            .ok_or(ForwardAuthError::NoRoute)?;
        let context = route.context.then(|| RequestContext {
            method: original.method.to_owned(),
            path: original.uri.to_owned(),
        });
        let mut request = ExchangeRequest {
            audience: route.audience.as_deref(),
            context: context.as_ref(),
            required_roles: Some(&route.roles),
            ..ExchangeRequest::default()
        };
        let credential = self.credential(inbound);
        if let Some(credential) = &credential {
            let mut user = request;
            match credential {
                Credential::Session(token) => user.subject_token = Some(token.as_ref()),
                Credential::Bearer(token) => {
                    user.subject_token = Some(*token);
                    user.subject_token_type = Some(ACCESS_TOKEN_TYPE);
                }
            }
            match exchanger.exchange(&client, user).await {
                Err(
                    ExchangeError::SessionRevoked | ExchangeError::Session(SessionError::Rejected),
                ) => {}
                answer => return Ok(answer?),
            }
        }
        // No session, or an unknown, expired or revoked one.
        match route.login {
            Login::Required => Err(ForwardAuthError::LoginRequired {
                redirect: self.login_redirect(inbound, &original),
            }),
            Login::Optional => {
                request.subject_token = None;
                Ok(exchanger.exchange(&client, request).await?)
            }
        }
    }

    /// The session cookie's value (URL-decoded, as express-session cookies need), else the
    /// user's bearer token when `bearer = true`.
    fn credential<'a>(&self, inbound: &Inbound<'a>) -> Option<Credential<'a>> {
        let cookie = inbound
            .cookies
            .iter()
            .flat_map(|header| header.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, value)| *name == self.session_cookie && !value.is_empty())
            .map(|(_, value)| {
                let value = value.trim_matches('"');
                percent_decode_str(value).decode_utf8_lossy()
            })
            .filter(|v| !v.is_empty());
        if let Some(session) = cookie {
            return Some(Credential::Session(session));
        }
        if !self.bearer {
            return None;
        }
        let header = inbound.user_authorization?;
        let (scheme, token) = header.split_once(' ')?;
        let token = token.trim();
        (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty())
            .then_some(Credential::Bearer(token))
    }

    /// `login_url?rd=<original URL>` for a browser, when a login URL is configured.
    fn login_redirect(&self, inbound: &Inbound<'_>, original: &Original<'_>) -> Option<String> {
        let login = self.login_url.as_ref().filter(|_| inbound.wants_html)?;
        let scheme = match inbound.scheme {
            Some(s) if s.eq_ignore_ascii_case("https") => "https",
            _ => "http",
        };
        let back = format!("{scheme}://{}{}", original.host, original.uri);
        let mut url = login.clone();
        url.query_pairs_mut().append_pair("rd", &back);
        Some(url.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(host: &str, prefix: &str) -> Route {
        Route::new(&ForwardAuthRoute {
            host: host.into(),
            path_prefix: Some(prefix.into()),
            ..ForwardAuthRoute::default()
        })
    }

    fn inbound<'a>(method: &'a str, uri: &'a str, host: &'a str) -> Inbound<'a> {
        Inbound {
            method: Some(method),
            uri: Some(uri),
            host: Some(host),
            ..Inbound::default()
        }
    }

    #[test]
    fn a_route_matches_its_host_on_any_port_unless_it_names_one() {
        let any = route("", "/branches/");
        assert!(any.matches("shop.example", "/branches/1"));
        assert!(!any.matches("shop.example", "/products/1"));
        let shop = route("Shop.Example", "/");
        assert!(shop.matches("shop.example:8443", "/x"));
        assert!(!shop.matches("evil.example", "/x"));
        let port = route("shop.example:8443", "/");
        assert!(port.matches("SHOP.example:8443", "/x"));
        assert!(!port.matches("shop.example:80", "/x"));
        assert_eq!(strip_port("[::1]:80"), "[::1]");
        assert_eq!(strip_port("[::1]"), "[::1]");
    }

    #[test]
    fn the_path_is_matched_without_its_query_and_decoded() {
        let o = Original::parse(&inbound("GET", "/%62ranches/1?next=/x", "h")).expect("ok");
        assert_eq!(o.path, "/branches/1");
        assert_eq!(o.uri, "/%62ranches/1?next=/x");
    }

    #[test]
    fn malformed_originals_are_invalid_requests() {
        for (method, uri, host) in [
            ("G T", "/", "h"),
            ("", "/", "h"),
            ("GET", "products", "h"),
            ("GET", "/a b", "h"),
            ("GET", "/products/../branches/1", "h"),
            ("GET", "/products/%2e%2E/branches/1", "h"),
            ("GET", "/products/..%2Fbranches/1", "h"),
            ("GET", "/a\\..\\b", "h"),
            ("GET", "/", ""),
            ("GET", "/", "h/x"),
        ] {
            assert!(
                matches!(
                    Original::parse(&inbound(method, uri, host)),
                    Err(ForwardAuthError::InvalidRequest(_))
                ),
                "{method} {uri} {host}"
            );
        }
        let missing = Inbound::default();
        assert!(Original::parse(&missing).is_err());
    }

    fn forward_auth(bearer: bool, login_url: &str) -> ForwardAuth {
        ForwardAuth::from_settings(&ForwardAuthSettings {
            client: "gw".into(),
            session_cookie: "connect.sid".into(),
            bearer,
            login_url: (!login_url.is_empty()).then(|| login_url.parse().expect("url")),
            routes: vec![],
        })
    }

    #[test]
    fn the_session_cookie_is_found_among_others_and_url_decoded() {
        let fa = forward_auth(false, "");
        let mut i = inbound("GET", "/", "h");
        i.cookies = vec!["a=1; connect.sid=", "b=2;connect.sid=s%3Aabc.sig; c=3"];
        match fa.credential(&i) {
            Some(Credential::Session(s)) => assert_eq!(s, "s:abc.sig"),
            _ => panic!("the cookie"),
        }
        i.cookies = vec!["connect.sidx=1"];
        i.user_authorization = Some("Bearer t");
        assert!(fa.credential(&i).is_none(), "bearer is off");
        match forward_auth(true, "").credential(&i) {
            Some(Credential::Bearer(t)) => assert_eq!(t, "t"),
            _ => panic!("the bearer token"),
        }
    }

    #[test]
    fn a_browser_is_sent_to_the_login_page_with_the_original_url() {
        let fa = forward_auth(false, "https://login.example/start?app=shop");
        let mut i = inbound("GET", "/branches/1?x=a b", "shop.example");
        i.uri = Some("/branches/1?x=y");
        i.scheme = Some("https");
        let o = Original::parse(&i).expect("ok");
        assert_eq!(fa.login_redirect(&i, &o), None, "not a browser");
        i.wants_html = true;
        assert_eq!(
            fa.login_redirect(&i, &o).as_deref(),
            Some(
                "https://login.example/start?app=shop&rd=https%3A%2F%2Fshop.example%2Fbranches%2F1%3Fx%3Dy"
            )
        );
    }
}
