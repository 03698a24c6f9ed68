//! The whole shop, end to end, in one process: Tessera, the gateway, product-catalog and
//! product-inventory on loopback ports, talking real HTTP.

use std::time::{Duration, Instant};

use actix_web::{App, HttpServer};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tessera_shop::Gateway;
use tessera_verify::Verifier;

const KEY_A: &str = include_str!("../../../tests/fixtures/rsa-2048-a.pem");
const KEY_B: &str = include_str!("../../../tests/fixtures/rsa-2048-b.pem");
const ADMIN_TOKEN: &str = "shop-admin-token";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

struct Shop {
    tessera: String,
    gateway: String,
    inventory: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn serve(
    configure: impl Fn(&mut actix_web::web::ServiceConfig) + Clone + Send + 'static,
) -> String {
    let server = HttpServer::new(move || App::new().configure(configure.clone()))
        .workers(1)
        .bind("127.0.0.1:0")
        .expect("bind");
    let url = format!("http://{}", server.addrs()[0]);
    tokio::spawn(server.run());
    url
}

async fn start() -> Shop {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = dir.path().join("keys");
    tessera::keys::store::file::import_pem(&keys, KEY_A, 1_700_000_000).expect("key");
    let port = free_port();
    let tessera = format!("http://127.0.0.1:{port}");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/demo.toml");
    let mut s = tessera::config::Settings::load(Some(std::path::Path::new(path)), &[])
        .expect("demo config");
    s.issuer = tessera.parse().expect("issuer URL");
    s.server.listen = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    s.server.workers = 1;
    s.keys.dir = keys;
    s.keys.rotation_interval_seconds = 0;
    s.keys.reload_interval_seconds = 1;
    s.keys.publish_lead_seconds = 2;
    s.jwks.max_age_seconds = 1;
    s.log.level = "warn".into();
    s.admin.token_sha256 = Some(tessera::config::Sha256::of_secret(ADMIN_TOKEN));
    let app = tessera::http::Application::build(s).await.expect("tessera");
    tokio::spawn(app.run_until_stopped());

    let catalog_verifier = Verifier::builder(&tessera, "product-catalog")
        .discover()
        .await
        .expect("discovery");
    let inventory_verifier = Verifier::builder(&tessera, "product-inventory")
        .revocation_feed("demo-inventory", "demo-inventory-secret")
        .discover()
        .await
        .expect("discovery");
    let catalog = serve(move |cfg| tessera_shop::catalog(catalog_verifier.clone())(cfg)).await;
    let inventory =
        serve(move |cfg| tessera_shop::inventory(inventory_verifier.clone())(cfg)).await;
    let gateway = Gateway {
        tessera_url: tessera.clone(),
        client_id: "demo-gateway".into(),
        client_secret: "demo-gateway-secret".into(),
        catalog_url: catalog,
        inventory_url: inventory.clone(),
        http: reqwest::Client::new(),
    };
    let gateway = serve(move |cfg| gateway.clone().configure()(cfg)).await;
    Shop {
        tessera,
        gateway,
        inventory,
        http: reqwest::Client::new(),
        _dir: dir,
    }
}

impl Shop {
    async fn get(&self, path: &str, session: Option<&str>) -> (u16, Value) {
        let mut request = self.http.get(format!("{}{path}", self.gateway));
        if let Some(s) = session {
            request = request.header("cookie", format!("session={s}"));
        }
        let response = request.send().await.expect("gateway");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn direct(&self, token: Option<&str>) -> u16 {
        let mut request = self
            .http
            .get(format!("{}/branches/1/products", self.inventory));
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        request.send().await.expect("inventory").status().as_u16()
    }

    async fn admin(&self, path: &str, body: Value) -> Value {
        let response = self
            .http
            .post(format!("{}{path}", self.tessera))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
            .await
            .expect("admin");
        assert_eq!(response.status(), 200, "{path}");
        response.json().await.expect("json")
    }

    async fn kid(&self) -> String {
        let jwks: Value = self
            .http
            .get(format!("{}/.well-known/jwks.json", self.tessera))
            .send()
            .await
            .expect("jwks")
            .json()
            .await
            .expect("json");
        jwks["keys"][0]["kid"].as_str().expect("kid").to_owned()
    }
}

#[tokio::test]
async fn the_shop_works_end_to_end_through_the_gateway_and_only_through_it() {
    let shop = start().await;

    let (status, body) = shop.get("/products/1", None).await;
    assert_eq!(status, 200, "anonymous → catalog: {body}");
    assert_eq!(body["viewer"], "anonymous");
    assert_eq!(body["via"], "demo-gateway");
    let (status, _) = shop
        .get("/branches/1/products", Some("demo-user-session"))
        .await;
    assert_eq!(status, 403, "a user without admin → inventory");
    let (status, body) = shop
        .get("/branches/1/products", Some("demo-admin-session"))
        .await;
    assert_eq!(status, 200, "admin → inventory: {body}");
    assert_eq!(body["user"], "user-1");
    assert_eq!(body["email"], "admin@example.com");

    // Bypassing the gateway.
    let kid = shop.kid().await;
    let claims = json!({"iss": shop.tessera, "sub": "user-1", "aud": "product-inventory", "roles": ["admin"],
        "exp": 4_000_000_000i64, "iat": 1_700_000_000, "jti": "x"});
    let mut header = Header::new(Algorithm::RS256);
    header.typ = Some("at+jwt".into());
    header.kid = Some(kid.clone());
    let foreign = jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_rsa_pem(KEY_B.as_bytes()).expect("pem"),
    )
    .expect("sign");
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "at+jwt", "kid": kid})),
        b64(&claims)
    );
    let mut hs = Header::new(Algorithm::HS256);
    hs.typ = Some("at+jwt".into());
    hs.kid = Some(kid);
    let jwks: Value = shop
        .http
        .get(format!("{}/.well-known/jwks.json", shop.tessera))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    let public = jwks["keys"][0].to_string();
    let hs256 = jsonwebtoken::encode(&hs, &claims, &EncodingKey::from_secret(public.as_bytes()))
        .expect("hs");
    assert_eq!(shop.direct(None).await, 401, "no token");
    for forged in [&foreign, &none, &hs256] {
        assert_eq!(
            shop.direct(Some(forged)).await,
            401,
            "forged: {}",
            &forged[..20]
        );
    }

    // A key rotation: published first, signing after the lead; services keep verifying.
    let old_kid = shop.kid().await;
    let new = shop.admin("/admin/keys/rotate", json!({})).await;
    assert_eq!(new["state"], "pending");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, _) = shop
            .get("/branches/1/products", Some("demo-admin-session"))
            .await;
        assert_eq!(status, 200, "no request fails during the rotation");
        let active: Value = shop
            .http
            .get(format!("{}/admin/keys", shop.tessera))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("keys")
            .json()
            .await
            .expect("json");
        if active
            .as_array()
            .expect("keys")
            .iter()
            .any(|k| k["kid"] == new["kid"] && k["state"] == "active")
        {
            break;
        }
        assert!(Instant::now() < deadline, "the new key never activated");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (status, body) = shop
        .get("/branches/1/products", Some("demo-admin-session"))
        .await;
    assert_eq!(
        status, 200,
        "tokens of the new key verify with no restart: {body}"
    );
    assert_ne!(old_kid, new["kid"].as_str().expect("kid"));

    // Revoking the admin's session: the gateway gets invalid_grant and refuses, and
    // product-inventory, following the revocation feed, refuses a token of that session
    // it is handed directly (offline, no call to Tessera per request).
    let exchanged: Value = shop
        .http
        .post(format!("{}/exchange", shop.tessera))
        .basic_auth("demo-gateway", Some("demo-gateway-secret"))
        .json(&json!({"subject_token": "demo-admin-session", "audience": "product-inventory"}))
        .send()
        .await
        .expect("exchange")
        .json()
        .await
        .expect("json");
    let token = exchanged["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    assert_eq!(shop.direct(Some(&token)).await, 200);
    shop.admin(
        "/admin/revocations",
        json!({"session": "demo-admin-session", "reason": "e2e"}),
    )
    .await;
    let (status, body) = shop
        .get("/branches/1/products", Some("demo-admin-session"))
        .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    let deadline = Instant::now() + Duration::from_secs(15);
    while shop.direct(Some(&token)).await != 401 {
        assert!(Instant::now() < deadline, "the feed never told inventory");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
