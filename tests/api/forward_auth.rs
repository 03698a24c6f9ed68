//! Forward authentication through the real server, one dialect per endpoint: nginx
//! (`X-Original-*`), forwarded (Traefik, Caddy: `X-Forwarded-*`) and Envoy (the request
//! itself). Answers as the contract has them, and headers of the wrong dialect, or a
//! user's own `Authorization`, never taken for the gateway's.

use base64::Engine as _;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use tessera::config::{ForwardAuthRoute, ForwardAuthSettings, Login, Settings};

use crate::helpers::*;

/// `/branches/` (inventory, admin only), `/account/` (catalog, login, ctx) and
/// `/products/` (catalog, login optional) on any host; `other.example:8080` → inventory.
pub fn forward_auth(s: &mut Settings) {
    let route = |host: &str, prefix: &str, audience: &str, login, roles: &[&str], context| {
        ForwardAuthRoute {
            host: host.into(),
            path_prefix: Some(prefix.into()),
            audience: Some(audience.into()),
            login,
            roles: roles.iter().map(|r| r.to_string()).collect(),
            context,
        }
    };
    s.forward_auth = Some(ForwardAuthSettings {
        client: CLIENT_ID.into(),
        routes: vec![
            route(
                "other.example:8080",
                "/",
                "product-inventory",
                Login::Required,
                &[],
                false,
            ),
            route(
                "",
                "/branches/",
                "product-inventory",
                Login::Required,
                &["admin"],
                false,
            ),
            route(
                "",
                "/account/",
                "product-catalog",
                Login::Required,
                &[],
                true,
            ),
            route(
                "",
                "/products/",
                "product-catalog",
                Login::Optional,
                &[],
                false,
            ),
        ],
        ..ForwardAuthSettings::default()
    });
}

fn gateway_basic() -> String {
    let pair = format!("{CLIENT_ID}:{CLIENT_SECRET}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// Headers as a test builds them: `(name, value)` pairs, repeats kept.
fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            reqwest::header::HeaderName::from_bytes(name.as_bytes()).expect("name"),
            value.parse().expect("value"),
        );
    }
    map
}

/// nginx's auth subrequest for `GET uri` on shop.example, with the gateway's credential
/// and `extra` headers.
pub async fn nginx(app: &TestApp, uri: &str, extra: &[(&str, &str)]) -> reqwest::Response {
    let basic = gateway_basic();
    let mut pairs = vec![
        ("tessera-authorization", basic.as_str()),
        ("x-original-method", "GET"),
        ("x-original-uri", uri),
        ("x-original-host", "shop.example"),
    ];
    pairs.extend_from_slice(extra);
    app.http
        .get(app.url("/forward-auth/nginx"))
        .headers(headers(&pairs))
        .send()
        .await
        .expect("forward auth")
}

fn session(token: &str) -> String {
    format!("theme=dark; connect.sid={token}")
}

/// The bearer token of an allowed answer (asserting the rest of the answer).
async fn allowed(response: reqwest::Response) -> String {
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let authorization = response.headers()["authorization"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(response.bytes().await.expect("body").is_empty());
    authorization
        .strip_prefix("Bearer ")
        .expect("a bearer token")
        .to_owned()
}

#[tokio::test]
async fn nginx_gets_a_token_of_the_routes_audience_for_an_admin() {
    let app = spawn_app_with(forward_auth).await;
    let cookie = session(ADMIN_SESSION);
    let jwt =
        allowed(nginx(&app, "/branches/1/products?page=2", &[("cookie", &cookie)]).await).await;
    let claims = app.verify(&jwt, "product-inventory").await;
    assert_eq!(claims["sub"], "user-1");
    assert_eq!(claims["roles"], json!(["admin"]));
    assert_eq!(claims["act"], json!({"sub": CLIENT_ID}));
    assert_eq!(claims["client_id"], CLIENT_ID);
    assert_eq!(claims["email"], "admin@example.com");
    assert!(!claims.contains_key("ctx"), "no ctx unless the route asks");
    app.stop().await;
}

#[tokio::test]
async fn a_user_without_the_routes_role_is_denied_and_an_unrouted_path_too() {
    let app = spawn_app_with(forward_auth).await;
    let cookie = session(USER_SESSION);
    let response = nginx(&app, "/branches/1/products", &[("cookie", &cookie)]).await;
    assert_oauth_error(response, 403, "access_denied").await;
    let response = nginx(&app, "/admin/", &[("cookie", &cookie)]).await;
    assert_oauth_error(response, 403, "access_denied").await;
    app.stop().await;
}

#[tokio::test]
async fn no_session_on_a_required_route_is_login_required_and_a_browser_goes_to_the_login_page() {
    let app = spawn_app_with(forward_auth).await;
    let response = nginx(&app, "/branches/1/products", &[]).await;
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer realm=\"tessera\""
    );
    assert_oauth_error(response, 401, "login_required").await;
    let unknown = session("no-such-session");
    let response = nginx(&app, "/account/", &[("cookie", &unknown)]).await;
    assert_oauth_error(response, 401, "login_required").await;
    // Without login_url, a browser gets the 401 too.
    let response = nginx(&app, "/account/", &[("accept", "text/html")]).await;
    assert_oauth_error(response, 401, "login_required").await;
    app.stop().await;

    let app = spawn_app_with(|s| {
        forward_auth(s);
        if let Some(fa) = s.forward_auth.as_mut() {
            fa.login_url = Some("https://login.example/?app=shop".parse().expect("url"));
        }
    })
    .await;
    let browser = [
        ("accept", "text/html,application/xhtml+xml;q=0.9"),
        ("x-original-proto", "https"),
    ];
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let response = no_redirects
        .get(app.url("/forward-auth/nginx"))
        .headers(headers(&[
            ("tessera-authorization", &gateway_basic()),
            ("x-original-method", "GET"),
            ("x-original-uri", "/branches/1/products?a=b"),
            ("x-original-host", "shop.example"),
            browser[0],
            browser[1],
        ]))
        .send()
        .await
        .expect("forward auth");
    assert_eq!(response.status(), 302);
    assert_eq!(
        response.headers()["location"],
        "https://login.example/?app=shop&rd=https%3A%2F%2Fshop.example%2Fbranches%2F1%2Fproducts%3Fa%3Db"
    );
    let response = nginx(&app, "/branches/1/products", &[]).await;
    assert_oauth_error(response, 401, "login_required").await;
    app.stop().await;
}

#[tokio::test]
async fn an_optional_route_gives_anonymous_a_token_and_an_unknown_session_too() {
    let app = spawn_app_with(forward_auth).await;
    for extra in [vec![], vec![("cookie", "connect.sid=no-such-session")]] {
        let jwt = allowed(nginx(&app, "/products/1", &extra).await).await;
        let claims = app.verify(&jwt, "product-catalog").await;
        assert_eq!(claims["sub"], "anonymous");
        assert!(!claims.contains_key("sid"));
    }
    let cookie = session(USER_SESSION);
    let jwt = allowed(nginx(&app, "/products/1", &[("cookie", &cookie)]).await).await;
    assert_eq!(app.verify(&jwt, "product-catalog").await["sub"], "user-2");
    app.stop().await;
}

#[tokio::test]
async fn a_revoked_session_is_a_login_on_the_next_request() {
    let app = spawn_app_with(forward_auth).await;
    let cookie = session(ADMIN_SESSION);
    allowed(nginx(&app, "/branches/1/products", &[("cookie", &cookie)]).await).await;
    let revoked = app.admin_revoke(json!({"session": ADMIN_SESSION})).await;
    assert_eq!(revoked.status(), 200);
    let response = nginx(&app, "/branches/1/products", &[("cookie", &cookie)]).await;
    assert_oauth_error(response, 401, "login_required").await;
    app.stop().await;
}

#[tokio::test]
async fn a_context_route_puts_the_original_method_and_uri_into_ctx() {
    let app = spawn_app_with(forward_auth).await;
    let cookie = session(USER_SESSION);
    let jwt = allowed(nginx(&app, "/account/orders?x=1", &[("cookie", &cookie)]).await).await;
    let claims = app.verify(&jwt, "product-catalog").await;
    assert_eq!(
        claims["ctx"],
        json!({"method": "GET", "path": "/account/orders?x=1"})
    );
    app.stop().await;
}

#[tokio::test]
async fn routes_match_the_host_and_the_decoded_path_and_refuse_dot_segments() {
    let app = spawn_app_with(forward_auth).await;
    let cookie = session(USER_SESSION);
    // other.example:8080's only route: inventory for any logged-in user.
    let response = app
        .http
        .get(app.url("/forward-auth/nginx"))
        .headers(headers(&[
            ("tessera-authorization", &gateway_basic()),
            ("x-original-method", "GET"),
            ("x-original-uri", "/products/1"),
            ("host", "other.example:8080"),
            ("cookie", &cookie),
        ]))
        .send()
        .await
        .expect("forward auth");
    let jwt = allowed(response).await;
    app.verify(&jwt, "product-inventory").await;
    // An encoded path is matched as the gateway routes it: /%62ranches/ is /branches/.
    let response = nginx(&app, "/%62ranches/1/products", &[("cookie", &cookie)]).await;
    assert_oauth_error(response, 403, "access_denied").await;
    for uri in [
        "/products/../branches/1/products",
        "/products/%2e%2e/branches/1/products",
        "branches",
    ] {
        let response = nginx(&app, uri, &[("cookie", &cookie)]).await;
        assert_oauth_error(response, 400, "invalid_request").await;
    }
    app.stop().await;
}

#[tokio::test]
async fn the_gateway_must_authenticate_in_tessera_authorization_as_the_forward_auth_client() {
    let app = spawn_app_with(forward_auth).await;
    let cookie = session(ADMIN_SESSION);
    let original = [
        ("x-original-method", "GET"),
        ("x-original-uri", "/products/1"),
        ("x-original-host", "shop.example"),
        ("cookie", cookie.as_str()),
    ];
    let strict = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD
            .encode(format!("{STRICT_CLIENT_ID}:{STRICT_CLIENT_SECRET}"))
    );
    let wrong = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:wrong"))
    );
    let basic = gateway_basic();
    for gateway in [
        vec![],
        vec![("tessera-authorization", wrong.as_str())],
        // Another client's valid credentials.
        vec![("tessera-authorization", strict.as_str())],
        // The right credentials in the user's header are not the gateway's.
        vec![("authorization", basic.as_str())],
    ] {
        let mut pairs = gateway.clone();
        pairs.extend_from_slice(&original);
        let response = app
            .http
            .get(app.url("/forward-auth/nginx"))
            .headers(headers(&pairs))
            .send()
            .await
            .expect("forward auth");
        assert_eq!(
            response.headers()["www-authenticate"],
            "Basic realm=\"tessera\""
        );
        assert_oauth_error(response, 401, "invalid_client").await;
    }
    app.stop().await;
}

#[tokio::test]
async fn each_endpoint_reads_only_its_own_dialects_headers() {
    let app = spawn_app_with(forward_auth).await;
    let basic = gateway_basic();
    let cookie = session(USER_SESSION);
    let forwarded_admin = [
        ("x-forwarded-method", "GET"),
        ("x-forwarded-uri", "/branches/1/products"),
        ("x-forwarded-host", "shop.example"),
    ];
    let original_public = [
        ("x-original-method", "GET"),
        ("x-original-uri", "/products/1"),
        ("x-original-host", "shop.example"),
    ];
    let send = |path: &str, pairs: Vec<(&str, &str)>| {
        app.http.get(app.url(path)).headers(headers(&pairs)).send()
    };
    let mut both = vec![
        ("tessera-authorization", basic.as_str()),
        ("cookie", cookie.as_str()),
    ];
    both.extend_from_slice(&forwarded_admin);
    both.extend_from_slice(&original_public);
    // nginx: the X-Forwarded-* aimed at the admin route mean nothing.
    let response = send("/forward-auth/nginx", both.clone())
        .await
        .expect("nginx");
    let jwt = allowed(response).await;
    app.verify(&jwt, "product-catalog").await;
    // forwarded: the X-Original-* mean nothing; its own say /branches/ → 403.
    let response = send("/forward-auth/forwarded?page=2", both.clone())
        .await
        .expect("forwarded");
    assert_oauth_error(response, 403, "access_denied").await;
    // nginx without its own headers: 400, whatever X-Forwarded-* say.
    let mut only_forwarded = vec![("tessera-authorization", basic.as_str())];
    only_forwarded.extend_from_slice(&forwarded_admin);
    let response = send("/forward-auth/nginx", only_forwarded)
        .await
        .expect("nginx");
    assert_oauth_error(response, 400, "invalid_request").await;
    // A header of its dialect sent twice (the user's and the gateway's) is refused.
    let twice = vec![
        ("tessera-authorization", basic.as_str()),
        ("x-forwarded-method", "GET"),
        ("x-forwarded-uri", "/products/1"),
        ("x-forwarded-uri", "/branches/1/products"),
        ("x-forwarded-host", "shop.example"),
    ];
    let response = send("/forward-auth/forwarded", twice)
        .await
        .expect("forwarded");
    assert_oauth_error(response, 400, "invalid_request").await;
    app.stop().await;
}

#[tokio::test]
async fn forwarded_reads_x_forwarded_headers_and_ignores_its_own_query() {
    let app = spawn_app_with(forward_auth).await;
    let cookie = session(ADMIN_SESSION);
    let response = app
        .http
        .post(app.url("/forward-auth/forwarded?next=/products/1"))
        .headers(headers(&[
            ("tessera-authorization", &gateway_basic()),
            ("x-forwarded-method", "DELETE"),
            ("x-forwarded-uri", "/branches/1/products?next=/products/1"),
            ("x-forwarded-host", "shop.example"),
            ("x-forwarded-proto", "https"),
            ("cookie", &cookie),
        ]))
        .send()
        .await
        .expect("forward auth");
    let jwt = allowed(response).await;
    assert_eq!(app.verify(&jwt, "product-inventory").await["sub"], "user-1");
    app.stop().await;
}

#[tokio::test]
async fn envoy_reads_the_method_path_and_host_of_its_own_request() {
    let app = spawn_app_with(forward_auth).await;
    let cookie = session(ADMIN_SESSION);
    let basic = gateway_basic();
    let response = app
        .http
        .put(app.url("/forward-auth/envoy/account/settings?tab=1"))
        .headers(headers(&[
            ("tessera-authorization", basic.as_str()),
            ("cookie", cookie.as_str()),
            // Another dialect's headers mean nothing here.
            ("x-original-uri", "/branches/1/products"),
            ("x-forwarded-uri", "/branches/1/products"),
        ]))
        .send()
        .await
        .expect("forward auth");
    let jwt = allowed(response).await;
    let claims = app.verify(&jwt, "product-catalog").await;
    assert_eq!(
        claims["ctx"],
        json!({"method": "PUT", "path": "/account/settings?tab=1"})
    );
    let user = session(USER_SESSION);
    let response = app
        .http
        .get(app.url("/forward-auth/envoy/branches/1/products"))
        .headers(headers(&[
            ("tessera-authorization", basic.as_str()),
            ("cookie", user.as_str()),
        ]))
        .send()
        .await
        .expect("forward auth");
    assert_oauth_error(response, 403, "access_denied").await;
    app.stop().await;
}

#[tokio::test]
async fn a_denylist_that_cannot_answer_is_a_503_with_retry_after() {
    let port = closed_port();
    let app = spawn_app_with(|s| {
        forward_auth(s);
        s.denylist.backend = tessera::config::DenylistBackend::Redis;
        s.redis.url = redis_url(&format!("redis://127.0.0.1:{port}"));
        s.redis.timeout_ms = 200;
    })
    .await;
    let cookie = session(ADMIN_SESSION);
    let response = nginx(&app, "/branches/1/products", &[("cookie", &cookie)]).await;
    assert_eq!(response.headers()["retry-after"], "1");
    assert_oauth_error(response, 503, "temporarily_unavailable").await;
    app.stop().await;
}

#[tokio::test]
async fn without_a_forward_auth_section_the_endpoints_are_not_found_and_answers_are_counted() {
    let app = spawn_app().await;
    let response = nginx(&app, "/products/1", &[]).await;
    assert_oauth_error(response, 404, "not_found").await;
    app.stop().await;

    let app = spawn_app_with(forward_auth).await;
    allowed(nginx(&app, "/products/1", &[]).await).await;
    let text = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("body");
    for series in [
        "tessera_forward_auth_total{dialect=\"nginx\",outcome=\"allowed\"} ",
        "tessera_forward_auth_total{dialect=\"envoy\",outcome=\"allowed\"} ",
        "tessera_forward_auth_total{dialect=\"nginx\",outcome=\"not_found\"} ",
    ] {
        assert!(text.contains(series), "{series} missing in:\n{text}");
    }
    let body: Value = serde_json::from_str(
        &app.http
            .get(app.url("/openapi.json"))
            .send()
            .await
            .expect("openapi")
            .text()
            .await
            .expect("body"),
    )
    .expect("json");
    for path in [
        "/forward-auth/nginx",
        "/forward-auth/forwarded",
        "/forward-auth/envoy/{path}",
    ] {
        assert!(body["paths"].get(path).is_some(), "{path} documented");
    }
    app.stop().await;
}
