//! Shared by the test modules: fixture keys, token signing, a JWKS endpoint the test
//! controls (counting fetches, changing keys, going down, answering 304, or accepting
//! connections and never answering), and a real Tessera on a free port.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tessera_verify::Verifier;

pub const KEY_A: &str = include_str!("../../../../tests/fixtures/rsa-2048-a.pem");
pub const KEY_B: &str = include_str!("../../../../tests/fixtures/rsa-2048-b.pem");
pub const ISSUER: &str = "https://sts.test";

pub fn jwk(pem: &str) -> Value {
    let ring = tessera::keys::single_key_keyring(pem, "at+jwt").expect("keyring");
    serde_json::to_value(&ring.keys()[0].key.jwk).expect("jwk")
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs() as i64
}

pub fn claims(aud: &str, exp_in: i64) -> Value {
    json!({"iss": ISSUER, "sub": "user-1", "aud": aud, "iat": now(), "nbf": now(), "exp": now() + exp_in,
           "jti": "j1", "roles": ["admin"], "scope": "orders:read", "client_id": "gw",
           "act": {"sub": "gw"}, "email": "a@example.com"})
}

pub fn header(pem: &str) -> Header {
    let mut header = Header::new(Algorithm::RS256);
    header.typ = Some("at+jwt".into());
    header.kid = jwk(pem)["kid"].as_str().map(str::to_owned);
    header
}

pub fn sign_with(header: &Header, pem: &str, body: &Value) -> String {
    jsonwebtoken::encode(
        header,
        body,
        &EncodingKey::from_rsa_pem(pem.as_bytes()).expect("pem"),
    )
    .expect("sign")
}

pub fn sign(pem: &str, body: &Value) -> String {
    sign_with(&header(pem), pem, body)
}

/// A JWKS endpoint whose keys, availability, max-age and ETag the test changes.
pub struct JwksServer {
    pub url: String,
    pub keys: Arc<Mutex<Vec<Value>>>,
    pub fetches: Arc<AtomicUsize>,
    pub not_modified: Arc<AtomicUsize>,
    pub up: Arc<AtomicBool>,
}

pub async fn jwks_server(keys: Vec<Value>, max_age: u64) -> JwksServer {
    jwks_server_with_etag(keys, max_age, None).await
}

/// As [`jwks_server`], and with `etag` it sends that ETag and answers a matching
/// `If-None-Match` with `304`.
pub async fn jwks_server_with_etag(
    keys: Vec<Value>,
    max_age: u64,
    etag: Option<&'static str>,
) -> JwksServer {
    let server = JwksServer {
        url: String::new(),
        keys: Arc::new(Mutex::new(keys)),
        fetches: Arc::new(AtomicUsize::new(0)),
        not_modified: Arc::new(AtomicUsize::new(0)),
        up: Arc::new(AtomicBool::new(true)),
    };
    let (k, f, n, u) = (
        server.keys.clone(),
        server.fetches.clone(),
        server.not_modified.clone(),
        server.up.clone(),
    );
    let http = HttpServer::new(move || {
        let (k, f, n, u) = (k.clone(), f.clone(), n.clone(), u.clone());
        App::new().route(
            "/jwks",
            web::get().to(move |req: HttpRequest| {
                let (k, f, n, u) = (k.clone(), f.clone(), n.clone(), u.clone());
                async move {
                    let up = u.load(Ordering::SeqCst);
                    let matches = etag.is_some_and(|etag| {
                        req.headers()
                            .get("if-none-match")
                            .is_some_and(|v| v == etag)
                    });
                    if up && matches {
                        n.fetch_add(1, Ordering::SeqCst); // counted before the fetch itself
                    }
                    f.fetch_add(1, Ordering::SeqCst);
                    if !up {
                        return HttpResponse::ServiceUnavailable().finish();
                    }
                    let cache_control = ("cache-control", format!("public, max-age={max_age}"));
                    let Some(etag) = etag else {
                        let body = json!({"keys": *k.lock().expect("lock")});
                        return HttpResponse::Ok().insert_header(cache_control).json(body);
                    };
                    if matches {
                        return HttpResponse::NotModified()
                            .insert_header(cache_control)
                            .insert_header(("etag", etag))
                            .finish();
                    }
                    let body = json!({"keys": *k.lock().expect("lock")});
                    HttpResponse::Ok()
                        .insert_header(cache_control)
                        .insert_header(("etag", etag))
                        .json(body)
                }
            }),
        )
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .expect("bind");
    let url = format!("http://{}/jwks", http.addrs()[0]);
    tokio::spawn(http.run());
    JwksServer { url, ..server }
}

/// A JWKS endpoint that serves `keys` once (with `max-age=1`), then accepts every further
/// connection and never answers: Tessera black-holed.
pub struct BlackHole {
    pub url: String,
    /// Connections accepted after the first answer (each one a fetch left hanging).
    pub hanging: Arc<AtomicUsize>,
}

pub async fn jwks_then_black_hole(keys: Vec<Value>) -> BlackHole {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/jwks", listener.local_addr().expect("addr"));
    let body = json!({ "keys": keys }).to_string();
    let hanging = Arc::new(AtomicUsize::new(0));
    let counter = hanging.clone();
    tokio::spawn(async move {
        let (mut first, _) = listener.accept().await.expect("accept");
        let mut request = [0u8; 4096];
        let _ = first.read(&mut request).await.expect("read");
        let answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncache-control: max-age=1\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        first.write_all(answer.as_bytes()).await.expect("write");
        drop(first);
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            held.push(socket);
        }
    });
    BlackHole { url, hanging }
}

pub fn verifier(url: &str) -> Verifier {
    Verifier::builder(ISSUER, "product-inventory")
        .jwks_uri(url)
        .refetch_cooldown(Duration::from_millis(300))
        .leeway(0)
        .build()
        .expect("verifier")
}

/// Waits (polling, without a deadline of its own) until `condition` holds.
pub async fn eventually(condition: impl Fn() -> bool) {
    while !condition() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A real Tessera on a free port: key A, client `gw` / `gw-secret` (audience
/// `product-inventory`, anonymous allowed), client `svc` / `svc-secret` (may follow the
/// revocation feed), session `admin-session` of `user-1` (admin), admin token
/// `admin-token`.
pub async fn tessera() -> (String, tempfile::TempDir) {
    tessera_with(|_| {}).await
}

/// As [`tessera`], with `adjust` applied to its settings.
pub async fn tessera_with(
    adjust: impl FnOnce(&mut tessera::config::Settings),
) -> (String, tempfile::TempDir) {
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
        revocation_feed: false,
    });
    s.clients.push(tessera::config::ClientSettings {
        id: "svc".into(),
        secret_sha256: vec![tessera::config::Sha256::of_secret("svc-secret")],
        allowed_audiences: vec![],
        default_audience: None,
        allow_anonymous: false,
        scopes: vec![],
        max_ttl_seconds: 0,
        rate_limit_per_second: 0,
        rate_limit_burst: 0,
        revocation_feed: true,
    });
    s.admin.token_sha256 = Some(tessera::config::Sha256::of_secret("admin-token"));
    s.sessions
        .static_sessions
        .push(tessera::config::StaticSessionSettings {
            token: "admin-session".into(),
            sub: "user-1".into(),
            roles: vec!["admin".into()],
            claims: Default::default(),
        });
    adjust(&mut s);
    let app = tessera::http::Application::build(s).await.expect("tessera");
    tokio::spawn(app.run_until_stopped());
    (url, dir)
}

pub async fn exchange(tessera: &str, session: Option<&str>) -> String {
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
