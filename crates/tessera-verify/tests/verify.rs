//! The verifier against a JWKS server the test controls (counting fetches, changing keys,
//! going down) and against a real Tessera (discovery, middleware, introspection).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tessera_verify::{Claims, RequireToken, Verifier, VerifyError};

const KEY_A: &str = include_str!("../../../tests/fixtures/rsa-2048-a.pem");
const KEY_B: &str = include_str!("../../../tests/fixtures/rsa-2048-b.pem");
const ISSUER: &str = "https://sts.test";

fn jwk(pem: &str) -> Value {
    let ring = tessera::keys::single_key_keyring(pem, "at+jwt").expect("keyring");
    serde_json::to_value(&ring.keys()[0].key.jwk).expect("jwk")
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs() as i64
}

fn claims(aud: &str, exp_in: i64) -> Value {
    json!({"iss": ISSUER, "sub": "user-1", "aud": aud, "iat": now(), "nbf": now(), "exp": now() + exp_in,
           "jti": "j1", "roles": ["admin"], "scope": "orders:read", "client_id": "gw",
           "act": {"sub": "gw"}, "email": "a@example.com"})
}

fn sign(pem: &str, body: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.typ = Some("at+jwt".into());
    header.kid = jwk(pem)["kid"].as_str().map(str::to_owned);
    jsonwebtoken::encode(
        &header,
        body,
        &EncodingKey::from_rsa_pem(pem.as_bytes()).expect("pem"),
    )
    .expect("sign")
}

/// A JWKS endpoint whose keys, availability and max-age the test changes.
struct JwksServer {
    url: String,
    keys: Arc<Mutex<Vec<Value>>>,
    fetches: Arc<AtomicUsize>,
    up: Arc<std::sync::atomic::AtomicBool>,
}

async fn jwks_server(keys: Vec<Value>, max_age: u64) -> JwksServer {
    let keys = Arc::new(Mutex::new(keys));
    let fetches = Arc::new(AtomicUsize::new(0));
    let up = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let (k, f, u) = (keys.clone(), fetches.clone(), up.clone());
    let server = HttpServer::new(move || {
        let (k, f, u) = (k.clone(), f.clone(), u.clone());
        App::new().route(
            "/jwks",
            web::get().to(move || {
                let (k, f, u) = (k.clone(), f.clone(), u.clone());
                async move {
                    f.fetch_add(1, Ordering::SeqCst);
                    if !u.load(Ordering::SeqCst) {
                        return HttpResponse::ServiceUnavailable().finish();
                    }
                    let body = json!({"keys": *k.lock().expect("lock")});
                    HttpResponse::Ok()
                        .insert_header(("cache-control", format!("public, max-age={max_age}")))
                        .json(body)
                }
            }),
        )
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .expect("bind");
    let url = format!("http://{}/jwks", server.addrs()[0]);
    tokio::spawn(server.run());
    JwksServer {
        url,
        keys,
        fetches,
        up,
    }
}

fn verifier(url: &str) -> Verifier {
    Verifier::builder(ISSUER, "product-inventory")
        .jwks_uri(url)
        .refetch_cooldown(Duration::from_millis(300))
        .leeway(0)
        .build()
        .expect("verifier")
}

#[tokio::test]
async fn verifies_tessera_shaped_tokens_into_typed_claims() {
    let jwks = jwks_server(vec![jwk(KEY_A)], 300).await;
    let v = verifier(&jwks.url);
    let c = v
        .verify(&sign(KEY_A, &claims("product-inventory", 60)))
        .await
        .expect("valid");
    assert_eq!(c.sub, "user-1");
    assert!(c.has_role("admin") && c.has_scope("orders:read") && !c.has_scope("orders"));
    assert_eq!(c.act.expect("act").sub, "gw");
    assert_eq!(c.extra["email"], "a@example.com");
    v.verify(&sign(KEY_A, &claims("product-inventory", 60)))
        .await
        .expect("cached");
    assert_eq!(
        jwks.fetches.load(Ordering::SeqCst),
        1,
        "served from the cache"
    );
}

#[tokio::test]
async fn refuses_forgeries_and_wrong_tokens() {
    let jwks = jwks_server(vec![jwk(KEY_A)], 300).await;
    let v = verifier(&jwks.url);
    let body = claims("product-inventory", 60);
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let kid = jwk(KEY_A)["kid"].clone();

    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "at+jwt", "kid": kid})),
        b64(&body)
    );
    assert!(matches!(
        v.verify(&none).await,
        Err(VerifyError::WrongAlgorithm | VerifyError::Malformed)
    ));

    // HS256 keyed with the public key: the classic algorithm-confusion forgery.
    let mut hs = Header::new(Algorithm::HS256);
    hs.typ = Some("at+jwt".into());
    hs.kid = kid.as_str().map(str::to_owned);
    let public_pem = jwk(KEY_A)["n"].as_str().expect("n").to_owned();
    let forged = jsonwebtoken::encode(&hs, &body, &EncodingKey::from_secret(public_pem.as_bytes()))
        .expect("hs");
    assert!(matches!(
        v.verify(&forged).await,
        Err(VerifyError::WrongAlgorithm)
    ));

    // A foreign RSA key claiming our kid.
    let mut foreign = Header::new(Algorithm::RS256);
    foreign.typ = Some("at+jwt".into());
    foreign.kid = kid.as_str().map(str::to_owned);
    let foreign = jsonwebtoken::encode(
        &foreign,
        &body,
        &EncodingKey::from_rsa_pem(KEY_B.as_bytes()).expect("pem"),
    )
    .expect("sign");
    assert!(matches!(
        v.verify(&foreign).await,
        Err(VerifyError::Invalid(_))
    ));

    assert!(matches!(
        v.verify(&sign(KEY_A, &claims("billing", 60))).await,
        Err(VerifyError::Invalid(_))
    ));
    assert!(matches!(
        v.verify(&sign(KEY_A, &claims("product-inventory", -10)))
            .await,
        Err(VerifyError::Invalid(_))
    ));
    let mut other_issuer = claims("product-inventory", 60);
    other_issuer["iss"] = json!("https://evil.test");
    assert!(matches!(
        v.verify(&sign(KEY_A, &other_issuer)).await,
        Err(VerifyError::Invalid(_))
    ));
    assert!(matches!(
        v.verify("garbage").await,
        Err(VerifyError::Malformed)
    ));
}

#[tokio::test]
async fn a_key_that_appeared_after_the_cache_was_filled_verifies_via_one_refetch() {
    let jwks = jwks_server(vec![jwk(KEY_A)], 300).await;
    let v = verifier(&jwks.url);
    v.verify(&sign(KEY_A, &claims("product-inventory", 60)))
        .await
        .expect("fills the cache");
    jwks.keys.lock().expect("lock").push(jwk(KEY_B));
    tokio::time::sleep(Duration::from_millis(350)).await;
    v.verify(&sign(KEY_B, &claims("product-inventory", 60)))
        .await
        .expect("rotated key");
    assert_eq!(
        jwks.fetches.load(Ordering::SeqCst),
        2,
        "exactly one refetch"
    );
}

#[tokio::test]
async fn a_flood_of_unknown_kids_cannot_hammer_the_issuer() {
    let jwks = jwks_server(vec![jwk(KEY_A)], 300).await;
    let v = verifier(&jwks.url);
    v.verify(&sign(KEY_A, &claims("product-inventory", 60)))
        .await
        .expect("fills the cache");
    let unknown = sign(KEY_B, &claims("product-inventory", 60));
    let attempts = (0..50).map(|_| {
        let (v, t) = (v.clone(), unknown.clone());
        tokio::spawn(async move { v.verify(&t).await })
    });
    for result in futures_util::future::join_all(attempts).await {
        assert!(matches!(
            result.expect("task"),
            Err(VerifyError::UnknownKey)
        ));
    }
    assert!(
        jwks.fetches.load(Ordering::SeqCst) <= 2,
        "at most one refetch per cooldown"
    );
}

#[tokio::test]
async fn the_last_good_key_set_serves_while_the_issuer_is_down() {
    let jwks = jwks_server(vec![jwk(KEY_A)], 1).await;
    let v = verifier(&jwks.url);
    let token = sign(KEY_A, &claims("product-inventory", 60));
    v.verify(&token).await.expect("fills the cache");
    jwks.up.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    v.verify(&token).await.expect("stale but last good");
    assert!(
        jwks.fetches.load(Ordering::SeqCst) >= 2,
        "it did try to refresh"
    );
}

// ---- against a real Tessera ----

async fn tessera() -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = dir.path().join("keys");
    tessera::keys::store::file::import_pem(&keys, KEY_A, 1_700_000_000).expect("key");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let mut s = tessera::config::Settings {
        issuer: url.parse().expect("issuer URL"),
        ..Default::default()
    };
    s.server.listen = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    s.server.workers = 1;
    s.keys.dir = keys;
    s.keys.rotation_interval_seconds = 0;
    s.log.level = "warn".into();
    s.clients.push(tessera::config::ClientSettings {
        id: "gw".into(),
        secret_sha256: vec![tessera::config::Sha256::of_secret("gw-secret")],
        allowed_audiences: vec!["product-inventory".into()],
        default_audience: Some("product-inventory".into()),
        allow_anonymous: true,
        scopes: vec![],
        max_ttl_seconds: 0,
        rate_limit_per_second: 0,
        rate_limit_burst: 0,
    });
    s.sessions
        .static_sessions
        .push(tessera::config::StaticSessionSettings {
            token: "admin-session".into(),
            sub: "user-1".into(),
            roles: vec!["admin".into()],
            claims: Default::default(),
        });
    let app = tessera::http::Application::build(s).await.expect("tessera");
    tokio::spawn(app.run_until_stopped());
    (url, dir)
}

async fn exchange(tessera: &str, session: Option<&str>) -> String {
    let body = match session {
        Some(s) => json!({"subject_token": s}),
        None => json!({}),
    };
    let answer: Value = reqwest::Client::new()
        .post(format!("{tessera}/exchange"))
        .basic_auth("gw", Some("gw-secret"))
        .json(&body)
        .send()
        .await
        .expect("exchange")
        .json()
        .await
        .expect("json");
    answer["access_token"].as_str().expect("token").to_owned()
}

#[tokio::test]
async fn discovery_middleware_roles_and_introspection_against_tessera() {
    let (tessera, _dir) = tessera().await;
    let verifier = Verifier::builder(&tessera, "product-inventory")
        .discover()
        .await
        .expect("discovery");
    let online = Verifier::builder(&tessera, "product-inventory")
        .introspect(
            &format!("{tessera}/introspect"),
            "gw",
            "gw-secret",
            Duration::from_millis(10),
        )
        .discover()
        .await
        .expect("discovery");
    let (v1, v2) = (verifier.clone(), online.clone());
    let server = HttpServer::new(move || {
        App::new()
            .service(
                web::resource("/admin")
                    .wrap(RequireToken::new(v1.clone()).role("admin"))
                    .route(web::get().to(|c: Claims| async move { c.sub })),
            )
            .service(
                web::resource("/online")
                    .wrap(RequireToken::new(v2.clone()))
                    .route(web::get().to(|c: Claims| async move { c.sub })),
            )
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .expect("bind");
    let service = format!("http://{}", server.addrs()[0]);
    tokio::spawn(server.run());
    let http = reqwest::Client::new();

    let admin = exchange(&tessera, Some("admin-session")).await;
    let response = http
        .get(format!("{service}/admin"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.expect("body"), "user-1");

    let anonymous = exchange(&tessera, None).await;
    let response = http
        .get(format!("{service}/admin"))
        .bearer_auth(&anonymous)
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), 403);
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer error=\"insufficient_scope\""
    );

    for auth in [None, Some("Bearer nonsense"), Some("Basic abc")] {
        let mut request = http.get(format!("{service}/admin"));
        if let Some(a) = auth {
            request = request.header("authorization", a);
        }
        let response = request.send().await.expect("get");
        assert_eq!(response.status(), 401, "{auth:?}");
        assert_eq!(
            response.headers()["www-authenticate"],
            "Bearer error=\"invalid_token\""
        );
    }

    // Online check: a revoked token is refused before it expires.
    let response = http
        .get(format!("{service}/online"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), 200);
    let revoked = http
        .post(format!("{tessera}/revoke"))
        .basic_auth("gw", Some("gw-secret"))
        .form(&[("token", admin.as_str())])
        .send()
        .await
        .expect("revoke");
    assert_eq!(revoked.status(), 200);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let response = http
        .get(format!("{service}/online"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), 401);
    let response = http
        .get(format!("{service}/admin"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("get");
    assert_eq!(
        response.status(),
        200,
        "offline verification does not see revocations"
    );
}
