//! The `http` session backend against a real legacy OAuth2 server (a small actix app the
//! test starts): introspection and userinfo, timeouts, 5xx, refused connections, our
//! credentials refused, caching (counting upstream calls) and single-flight.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine as _;
use serde_json::{Value, json};
use tessera::config::{HttpSessionMode, SessionBackendKind, Settings};

use crate::helpers::*;

const LEGACY_ID: &str = "tessera-at-legacy";
const LEGACY_SECRET: &str = "legacy-secret";

/// The legacy server: counts calls; the token decides the answer.
struct Legacy {
    url: String,
    calls: Arc<AtomicUsize>,
}

fn user(token: &str) -> Value {
    json!({"sub": format!("legacy-{token}"), "scope": "orders:read orders:write",
           "profile": {"email": format!("{token}@legacy.example")}})
}

async fn behave(token: &str) -> Result<Value, HttpResponse> {
    match token {
        t if t.starts_with("slow") => {
            tokio::time::sleep(Duration::from_millis(300)).await;
            Ok(user(t))
        }
        t if t.starts_with("hang") => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok(user(t))
        }
        "boom" => Err(HttpResponse::InternalServerError().body("boom")),
        "gone" => Err(HttpResponse::Unauthorized().finish()),
        "nameless" => Ok(json!({"scope": "x"})),
        t => Ok(user(t)),
    }
}

async fn introspect(
    req: HttpRequest,
    form: web::Form<Vec<(String, String)>>,
    calls: web::Data<AtomicUsize>,
) -> HttpResponse {
    calls.fetch_add(1, Ordering::SeqCst);
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{LEGACY_ID}:{LEGACY_SECRET}"))
    );
    if req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        != Some(expected.as_str())
    {
        return HttpResponse::Unauthorized().json(json!({"error": "invalid_client"}));
    }
    let token = form
        .iter()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    if token == "gone" || token.starts_with("inactive") {
        return HttpResponse::Ok().json(json!({"active": false}));
    }
    match behave(&token).await {
        Ok(mut body) => {
            body["active"] = Value::Bool(true);
            HttpResponse::Ok().json(body)
        }
        Err(response) => response,
    }
}

async fn userinfo(req: HttpRequest, calls: web::Data<AtomicUsize>) -> HttpResponse {
    calls.fetch_add(1, Ordering::SeqCst);
    let token = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_owned();
    match behave(&token).await {
        Ok(body) => HttpResponse::Ok().json(body),
        Err(response) => response,
    }
}

async fn start_legacy() -> Legacy {
    let calls = Arc::new(AtomicUsize::new(0));
    let data = web::Data::from(calls.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/oauth2/introspect", web::post().to(introspect))
            .route("/userinfo", web::get().to(userinfo))
    })
    .workers(2)
    .bind("127.0.0.1:0")
    .expect("bind");
    let url = format!("http://{}", server.addrs()[0]);
    tokio::spawn(server.run());
    Legacy { url, calls }
}

fn configure(url: String, mode: HttpSessionMode) -> impl FnOnce(&mut Settings) {
    move |s| {
        s.sessions.backend = SessionBackendKind::Http;
        let h = &mut s.sessions.http;
        h.mode = mode;
        let endpoint = match mode {
            HttpSessionMode::Introspection => format!("{url}/oauth2/introspect"),
            HttpSessionMode::Userinfo => format!("{url}/userinfo"),
        };
        h.url = Some(endpoint.parse().expect("an http URL"));
        h.client_id = LEGACY_ID.into();
        h.client_secret = LEGACY_SECRET.into();
        h.timeout_ms = 1000;
        h.cache_seconds = 30;
        for (claim, pointer) in [
            ("sub", "/sub"),
            ("roles", "/scope"),
            ("email", "/profile/email"),
        ] {
            s.sessions.claims.insert(claim.into(), pointer.into());
        }
    }
}

#[tokio::test]
async fn introspection_maps_the_legacy_answer_and_caches_it() {
    let legacy = start_legacy().await;
    let app = spawn_app_with(configure(
        legacy.url.clone(),
        HttpSessionMode::Introspection,
    ))
    .await;
    let jwt = app.token_for(Some("alice")).await;
    let claims = app.verify(&jwt, "product-catalog").await;
    assert_eq!(claims["sub"], "legacy-alice");
    assert_eq!(claims["roles"], json!(["orders:read", "orders:write"]));
    assert_eq!(claims["email"], "alice@legacy.example");
    assert_eq!(claims["sid"], tessera::sessions::sid_of_canonical("alice"));

    app.token_for(Some("alice")).await;
    let response = app
        .exchange_json(json!({"subject_token": "alice",
            "subject_token_type": "urn:ietf:params:oauth:token-type:access_token"}))
        .await;
    assert_eq!(
        response.status(),
        200,
        "legacy access tokens are accepted too"
    );
    assert_eq!(
        legacy.calls.load(Ordering::SeqCst),
        1,
        "answered from the cache"
    );
}

#[tokio::test]
async fn refusals_are_invalid_grant_and_cached_briefly() {
    let legacy = start_legacy().await;
    let app = spawn_app_with(configure(
        legacy.url.clone(),
        HttpSessionMode::Introspection,
    ))
    .await;
    for _ in 0..3 {
        let response = app
            .exchange_json(json!({"subject_token": "inactive-bob"}))
            .await;
        assert_oauth_error(response, 400, "invalid_grant").await;
    }
    assert_eq!(legacy.calls.load(Ordering::SeqCst), 1, "negative cache");
    let response = app
        .exchange_json(json!({"subject_token": "nameless"}))
        .await;
    assert_oauth_error(response, 400, "invalid_grant").await;
}

#[tokio::test]
async fn upstream_failures_are_503_never_invalid_grant() {
    let legacy = start_legacy().await;
    let app = spawn_app_with(configure(
        legacy.url.clone(),
        HttpSessionMode::Introspection,
    ))
    .await;
    for token in ["boom", "hang-1"] {
        let started = Instant::now();
        let response = app.exchange_json(json!({"subject_token": token})).await;
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{token}: bounded by timeout_ms"
        );
        assert_eq!(response.headers()["retry-after"], "1");
        assert_oauth_error(response, 503, "temporarily_unavailable").await;
    }
    // Failures are not cached: the next call asks again.
    let before = legacy.calls.load(Ordering::SeqCst);
    app.exchange_json(json!({"subject_token": "boom"})).await;
    assert_eq!(legacy.calls.load(Ordering::SeqCst), before + 1);

    // Our own credentials refused: a misconfiguration, 503.
    let wrong = spawn_app_with(|s| {
        configure(legacy.url.clone(), HttpSessionMode::Introspection)(s);
        s.sessions.http.client_secret = "not-it".into();
    })
    .await;
    let response = wrong.exchange_json(json!({"subject_token": "alice"})).await;
    assert_oauth_error(response, 503, "temporarily_unavailable").await;

    // Nobody listening.
    let port = closed_port();
    let refused = spawn_app_with(configure(
        format!("http://127.0.0.1:{port}"),
        HttpSessionMode::Introspection,
    ))
    .await;
    let response = refused
        .exchange_json(json!({"subject_token": "alice"}))
        .await;
    assert_oauth_error(response, 503, "temporarily_unavailable").await;
    let (status, body) = refused.readiness().await;
    assert_eq!(status, 503);
    assert_eq!(
        body["checks"]["sessions"],
        format!("error: http 127.0.0.1:{port}: connection refused")
    );
}

/// `n` exchanges of `token` at once, each answered 200.
async fn exchange_concurrently(app: &Arc<TestApp>, token: &'static str, n: usize) {
    let exchanges = (0..n).map(|_| {
        let app = app.clone();
        tokio::spawn(async move {
            app.exchange_json(json!({"subject_token": token}))
                .await
                .status()
        })
    });
    for result in futures_util::future::join_all(exchanges).await {
        assert_eq!(result.expect("task"), 200);
    }
}

#[tokio::test]
async fn concurrent_exchanges_of_one_token_make_one_upstream_call() {
    let legacy = start_legacy().await;
    let app = Arc::new(
        spawn_app_with(configure(
            legacy.url.clone(),
            HttpSessionMode::Introspection,
        ))
        .await,
    );
    exchange_concurrently(&app, "slow-carol", 20).await;
    assert_eq!(legacy.calls.load(Ordering::SeqCst), 1, "single-flight");
}

#[tokio::test]
async fn without_a_cache_concurrent_exchanges_still_make_one_upstream_call() {
    let legacy = start_legacy().await;
    let app = Arc::new(
        spawn_app_with(|s| {
            configure(legacy.url.clone(), HttpSessionMode::Introspection)(s);
            s.sessions.http.cache_seconds = 0;
        })
        .await,
    );
    exchange_concurrently(&app, "slow-carol", 20).await;
    assert_eq!(legacy.calls.load(Ordering::SeqCst), 1, "single-flight");
    app.token_for(Some("slow-carol")).await;
    assert_eq!(legacy.calls.load(Ordering::SeqCst), 2, "nothing cached");
}

#[tokio::test]
async fn userinfo_mode_uses_the_token_as_bearer() {
    let legacy = start_legacy().await;
    let app = spawn_app_with(configure(legacy.url.clone(), HttpSessionMode::Userinfo)).await;
    let jwt = app.token_for(Some("dave")).await;
    assert_eq!(
        app.verify(&jwt, "product-catalog").await["sub"],
        "legacy-dave"
    );
    let response = app.exchange_json(json!({"subject_token": "gone"})).await;
    assert_oauth_error(response, 400, "invalid_grant").await;
    let response = app.exchange_json(json!({"subject_token": "boom"})).await;
    assert_oauth_error(response, 503, "temporarily_unavailable").await;
    assert_eq!(app.readiness().await.0, 200);
}

#[tokio::test]
async fn a_revoked_session_is_not_served_from_the_cache() {
    let legacy = start_legacy().await;
    let app = spawn_app_with(configure(
        legacy.url.clone(),
        HttpSessionMode::Introspection,
    ))
    .await;
    app.token_for(Some("erin")).await;
    let response = app.admin_revoke(json!({"session": "erin"})).await;
    assert_eq!(response.status(), 200);
    let response = app.exchange_json(json!({"subject_token": "erin"})).await;
    assert_oauth_error(response, 400, "invalid_grant").await;
}

/// Graceful stop (what SIGTERM triggers): an exchange already in flight — here waiting
/// 300 ms on the legacy server — still gets its token; new connections are refused.
#[tokio::test]
async fn a_graceful_stop_lets_the_exchange_in_flight_finish() {
    let legacy = start_legacy().await;
    let app = spawn_app_with(configure(
        legacy.url.clone(),
        HttpSessionMode::Introspection,
    ))
    .await;
    let in_flight = app.exchange_json(json!({"subject_token": "slow-carol"}));
    let stop = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        app.stop().await;
    };
    let (response, ()) = tokio::join!(in_flight, stop);
    assert_eq!(response.status(), 200, "the request in flight completed");
    let after = reqwest::Client::new().get(app.url("/healthz")).send().await;
    assert!(after.is_err(), "the listener is closed after the stop");
}

/// Forward authentication with `bearer = true`: without the session cookie, the user's own
/// `Authorization: Bearer` is the subject token, resolved as an access token by this
/// backend; a refused one is a login.
#[tokio::test]
async fn forward_auth_takes_the_users_bearer_access_token_when_configured() {
    let legacy = start_legacy().await;
    let app = spawn_app_with(|s| {
        configure(legacy.url.clone(), HttpSessionMode::Userinfo)(s);
        crate::forward_auth::forward_auth(s);
        if let Some(fa) = s.forward_auth.as_mut() {
            fa.bearer = true;
        }
    })
    .await;
    let response =
        crate::forward_auth::nginx(&app, "/account/", &[("authorization", "Bearer dave")]).await;
    assert_eq!(response.status(), 200);
    let bearer = response.headers()["authorization"].to_str().expect("ascii");
    let jwt = bearer.strip_prefix("Bearer ").expect("bearer");
    assert_eq!(
        app.verify(jwt, "product-catalog").await["sub"],
        "legacy-dave"
    );
    let response =
        crate::forward_auth::nginx(&app, "/account/", &[("authorization", "Bearer gone")]).await;
    assert_oauth_error(response, 401, "login_required").await;
}
