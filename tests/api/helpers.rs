//! `spawn_app()`: the real application on 127.0.0.1:0 with its own keystore folder.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::Value;
use tessera::config::{ClientSettings, RedisUrl, Settings, Sha256, StaticSessionSettings};
use tessera::http::Application;
use tessera::infra::clock::{Clock, SystemClock};

pub const CLIENT_ID: &str = "test-gateway";
pub const CLIENT_SECRET: &str = "test-gateway-secret";
pub const STRICT_CLIENT_ID: &str = "strict-gateway";
pub const STRICT_CLIENT_SECRET: &str = "strict-gateway-secret";
pub const ADMIN_SESSION: &str = "admin-session-token";
pub const USER_SESSION: &str = "user-session-token";
pub const FIXTURE_KEY_A: &str = include_str!("../fixtures/rsa-2048-a.pem");
pub const ADMIN_TOKEN: &str = "test-admin-token";
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

pub struct TestApp {
    pub address: String,
    pub http: reqwest::Client,
    pub settings: Settings,
    pub handle: actix_web::dev::ServerHandle,
    pub _dir: tempfile::TempDir,
}

/// Settings of a test server: two clients, two static sessions, keys under `keys_dir`.
pub fn test_settings(keys_dir: &Path) -> Settings {
    let mut s = Settings::default();
    s.server.listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    s.server.workers = 1;
    s.keys.dir = keys_dir.to_owned();
    // Rotation only by hand, so no scheduled key appears in the middle of a test; the
    // schedule has tests of its own.
    s.keys.rotation_interval_seconds = 0;
    s.log.level = "warn".into();
    s.admin.token_sha256 = Some(Sha256::of_secret(ADMIN_TOKEN));
    s.clients = vec![
        ClientSettings {
            id: CLIENT_ID.into(),
            secret_sha256: vec![Sha256::of_secret(CLIENT_SECRET)],
            allowed_audiences: vec!["product-catalog".into(), "product-inventory".into()],
            default_audience: Some("product-catalog".into()),
            allow_anonymous: true,
            scopes: vec!["products:read".into(), "inventory:read".into()],
            max_ttl_seconds: 0,
            rate_limit_per_second: 0,
            rate_limit_burst: 0,
            revocation_feed: false,
        },
        ClientSettings {
            id: STRICT_CLIENT_ID.into(),
            secret_sha256: vec![Sha256::of_secret(STRICT_CLIENT_SECRET)],
            allowed_audiences: vec!["product-inventory".into()],
            default_audience: None,
            allow_anonymous: false,
            scopes: vec![],
            max_ttl_seconds: 120,
            rate_limit_per_second: 0,
            rate_limit_burst: 0,
            revocation_feed: false,
        },
    ];
    let claims = |email: &str| {
        let mut m = serde_json::Map::new();
        m.insert("email".into(), Value::from(email));
        m
    };
    s.sessions.static_sessions = vec![
        StaticSessionSettings {
            token: ADMIN_SESSION.into(),
            sub: "user-1".into(),
            roles: vec!["admin".into()],
            claims: claims("admin@example.com"),
        },
        StaticSessionSettings {
            token: USER_SESSION.into(),
            sub: "user-2".into(),
            roles: vec![],
            claims: claims("user@example.com"),
        },
    ];
    s
}

/// Runs the `tessera` binary with `--config config` and `args` (logging at info); its
/// output.
pub fn tessera_cli(config: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("TESSERA_CONFIG")
        .env("TESSERA__LOG__LEVEL", "info")
        .output()
        .expect("run tessera")
}

/// A port nobody listens on (bound once, then released).
pub fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A Redis URL of a test's setup.
pub fn redis_url(url: &str) -> RedisUrl {
    url.parse().expect("a redis:// URL")
}

/// Puts the pre-generated fixture key into `dir` as the active key (generating keys in
/// tests is slow and random); returns its kid.
pub fn install_fixture_key(dir: &Path) -> String {
    tessera::keys::store::file::import_pem(dir, FIXTURE_KEY_A, 1_700_000_000).expect("install key")
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_with_clock(adjust, Arc::new(SystemClock)).await
}

/// With `TESSERA_TEST_LOG` set (scripts/test sets it), every test server logs at debug
/// level into that file, which `scripts/check-logs` then searches for secrets.
fn init_test_logging() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        let Some(path) = std::env::var_os("TESSERA_TEST_LOG") else {
            return;
        };
        let Ok(file) = std::fs::OpenOptions::new().create(true).append(true).open(path) else {
            return;
        };
        let _ = tracing_subscriber::fmt()
            .with_env_filter("debug,h2=info,hyper=info,hyper_util=info,reqwest=info,sqlx=info,redis=info,rustls=info")
            .with_writer(std::sync::Mutex::new(file))
            .with_ansi(false)
            .try_init();
    });
}

/// The application on a clock the test controls.
pub async fn spawn_app_with_clock(
    adjust: impl FnOnce(&mut Settings),
    clock: Arc<dyn Clock>,
) -> TestApp {
    init_test_logging();
    let dir = tempfile::tempdir().expect("tempdir");
    let keys_dir = dir.path().join("keys");
    install_fixture_key(&keys_dir);
    let mut settings = test_settings(&keys_dir);
    adjust(&mut settings);
    settings.validate().expect("test settings are valid");
    let app = Application::build_with_clock(settings.clone(), clock)
        .await
        .expect("build app");
    let address = format!("http://127.0.0.1:{}", app.port());
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        http: reqwest::Client::new(),
        settings,
        handle,
        _dir: dir,
    }
}

impl TestApp {
    /// Stops the server (graceful) and waits until it has.
    pub async fn stop(&self) {
        self.handle.stop(true).await;
    }

    /// `POST /introspect` as the test gateway; returns the JSON body (asserting 200).
    pub async fn introspect(&self, token: &str) -> Value {
        let response = self
            .http
            .post(self.url("/introspect"))
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .form(&[("token", token)])
            .send()
            .await
            .expect("introspect");
        assert_eq!(response.status(), 200);
        response.json().await.expect("json")
    }

    /// `GET /readyz`: the status code and the body.
    pub async fn readiness(&self) -> (u16, Value) {
        let response = self
            .http
            .get(self.url("/readyz"))
            .send()
            .await
            .expect("readyz");
        let status = response.status().as_u16();
        (status, response.json().await.expect("readyz JSON"))
    }

    /// `POST /admin/revocations` with the test admin token.
    pub async fn admin_revoke(&self, body: Value) -> reqwest::Response {
        self.http
            .post(self.url("/admin/revocations"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
            .await
            .expect("admin revocation")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// `POST /exchange` with a JSON body, authenticated as the test gateway.
    pub async fn exchange_json(&self, body: Value) -> reqwest::Response {
        self.exchange_as(CLIENT_ID, CLIENT_SECRET, body).await
    }

    /// `POST /exchange` with a JSON body, authenticated by Basic as `id`:`secret`.
    pub async fn exchange_as(&self, id: &str, secret: &str, body: Value) -> reqwest::Response {
        self.http
            .post(self.url("/exchange"))
            .basic_auth(id, Some(secret))
            .json(&body)
            .send()
            .await
            .expect("request")
    }

    /// An issued token for `session` (None = anonymous), checked to be a 200.
    pub async fn token_for(&self, session: Option<&str>) -> String {
        let body = match session {
            Some(s) => serde_json::json!({"subject_token": s}),
            None => serde_json::json!({}),
        };
        let response = self.exchange_json(body).await;
        assert_eq!(response.status(), 200);
        let v: Value = response.json().await.expect("json");
        v["access_token"].as_str().expect("access_token").to_owned()
    }

    pub async fn jwks(&self) -> JwkSet {
        self.http
            .get(self.url("/.well-known/jwks.json"))
            .send()
            .await
            .expect("jwks")
            .json()
            .await
            .expect("jwks json")
    }

    /// Verifies `jwt` the way any service would: JWKS, issuer and audience only.
    pub async fn verify(&self, jwt: &str, audience: &str) -> HashMap<String, Value> {
        let header = jsonwebtoken::decode_header(jwt).expect("header");
        let jwks = self.jwks().await;
        let kid = header.kid.expect("kid");
        let jwk = jwks.find(&kid).expect("kid is published");
        let key = DecodingKey::from_jwk(jwk).expect("decoding key");
        let mut validation = Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.set_audience(&[audience]);
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
        jsonwebtoken::decode::<HashMap<String, Value>>(jwt, &key, &validation)
            .expect("token verifies")
            .claims
    }
}

/// Asserts an OAuth error response and returns it.
pub async fn assert_oauth_error(response: reqwest::Response, status: u16, error: &str) -> Value {
    assert_eq!(response.status(), status, "status");
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    let body: Value = response.json().await.expect("error body is JSON");
    assert_eq!(body["error"], error, "{body}");
    assert!(body["error_description"].is_string(), "{body}");
    body
}
