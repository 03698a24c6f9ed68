//! The subject-token grammar (visible ASCII without spaces), against a real legacy
//! userinfo endpoint on node's HTTP parser, which trims whitespace around header values:
//! a revoked session cannot come back as `" token"` or `"token\t"`, and CR/LF/NUL are a
//! refusal, not an outage.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};
use tessera::config::{HttpSessionMode, SessionBackendKind, Settings, Sha256};

use crate::helpers::*;

const ALICE: &str = "legacy-token-alice-0123456789";

/// `tests/fixtures/legacy-userinfo.js` running in node; killed when dropped.
pub struct NodeLegacy {
    child: Child,
    pub url: String,
}

impl NodeLegacy {
    pub fn start() -> Self {
        let mut child = Command::new("node")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/legacy-userinfo.js"
            ))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("node is installed");
        let mut port = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut port)
            .expect("node prints its port");
        let url = format!("http://127.0.0.1:{}", port.trim());
        Self { child, url }
    }

    /// How many `/userinfo` calls the legacy server answered.
    pub async fn calls(&self) -> u64 {
        let v: Value = reqwest::get(format!("{}/calls", self.url))
            .await
            .expect("calls")
            .json()
            .await
            .expect("json");
        v["calls"].as_u64().expect("a count")
    }
}

impl Drop for NodeLegacy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn userinfo(url: &str) -> impl FnOnce(&mut Settings) + use<> {
    let endpoint = format!("{url}/userinfo");
    move |s| {
        s.sessions.backend = SessionBackendKind::Http;
        let h = &mut s.sessions.http;
        h.mode = HttpSessionMode::Userinfo;
        h.url = Some(endpoint.parse().expect("an http URL"));
        h.timeout_ms = 1000;
        h.cache_seconds = 30;
        s.sessions.claims.insert("sub".into(), "/sub".into());
        s.sessions.claims.insert("roles".into(), "/scope".into());
    }
}

#[tokio::test]
async fn a_revoked_session_stays_revoked_with_whitespace_around_it_through_a_trimming_upstream() {
    let legacy = NodeLegacy::start();
    let app = spawn_app_with(userinfo(&legacy.url)).await;

    let jwt = app.token_for(Some(ALICE)).await;
    let claims = app.verify(&jwt, "product-catalog").await;
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["sid"], tessera::sessions::sid_of_canonical(ALICE));
    assert_eq!(legacy.calls().await, 1);

    let response = app.admin_revoke(json!({"session": ALICE})).await;
    assert_eq!(response.status(), 200);
    let padded = [
        ALICE.to_owned(),
        format!("{ALICE} "),
        format!(" {ALICE}"),
        format!("\t{ALICE}"),
        format!("{ALICE}\t"),
        format!("  {ALICE}  "),
    ];
    for token in &padded {
        let response = app.exchange_json(json!({"subject_token": token})).await;
        assert_oauth_error(response, 400, "invalid_grant").await;
    }
    assert_eq!(
        legacy.calls().await,
        1,
        "no variant of the revoked token reached the upstream"
    );

    // Nor can an operator revoke a variant the exchange would never look up.
    let response = app
        .admin_revoke(json!({"session": format!("{ALICE} ")}))
        .await;
    assert_oauth_error(response, 400, "invalid_request").await;
}

#[tokio::test]
async fn a_padded_or_non_ascii_token_is_invalid_grant_for_the_static_backend_too() {
    let app = spawn_app().await;
    for token in [
        format!("{USER_SESSION} "),
        format!("\u{a0}{USER_SESSION}"),
        format!("{USER_SESSION}é"),
    ] {
        let response = app.exchange_json(json!({"subject_token": token})).await;
        let body = assert_oauth_error(response, 400, "invalid_grant").await;
        assert_eq!(
            body["error_description"],
            "subject_token must be visible ASCII without spaces"
        );
    }
    assert_eq!(
        app.exchange_json(json!({"subject_token": USER_SESSION}))
            .await
            .status(),
        200
    );
}

/// `tessera serve` in its own process (its own metrics registry), with a config file.
struct Process {
    child: Child,
    address: String,
    _dir: tempfile::TempDir,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn serve_in_a_process(legacy_url: &str) -> Process {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = closed_port();
    let config = dir.path().join("tessera.toml");
    let toml = format!(
        r#"
[server]
listen = "127.0.0.1:{port}"
workers = 1
[keys]
dir = "{keys}"
rotation_interval_seconds = 0
[log]
level = "error"
[[clients]]
id = "{CLIENT_ID}"
secret_sha256 = "{secret}"
allowed_audiences = ["product-catalog"]
default_audience = "product-catalog"
[sessions]
backend = "http"
[sessions.http]
mode = "userinfo"
url = "{legacy_url}/userinfo"
timeout_ms = 1000
[sessions.claims]
sub = "/sub"
roles = "/scope"
"#,
        keys = dir.path().join("keys").display(),
        secret = Sha256::of_secret(CLIENT_SECRET),
    );
    std::fs::write(&config, toml).expect("config");
    let child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .env_remove("TESSERA_CONFIG")
        .stdout(Stdio::null())
        .spawn()
        .expect("tessera");
    let process = Process {
        child,
        address: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    };
    let http = reqwest::Client::new();
    for _ in 0..200 {
        if http
            .get(format!("{}/healthz", process.address))
            .send()
            .await
            .is_ok()
        {
            return process;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("tessera serve did not start");
}

/// The value of `tessera_backend_errors_total{backend="http"}` (0 when not yet written).
async fn http_backend_errors(address: &str) -> f64 {
    let text = reqwest::get(format!("{address}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    text.lines()
        .find_map(|l| l.strip_prefix("tessera_backend_errors_total{backend=\"http\"} "))
        .map_or(0.0, |v| v.trim().parse().expect("a number"))
}

#[tokio::test]
async fn control_characters_in_a_subject_token_are_invalid_grant_and_no_backend_error() {
    let legacy = NodeLegacy::start();
    let tessera = serve_in_a_process(&legacy.url).await;
    let http = reqwest::Client::new();
    let exchange = |token: String| {
        http.post(format!("{}/exchange", tessera.address))
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .json(&json!({"subject_token": token}))
            .send()
    };
    for token in [
        format!("{ALICE}\r\n"),
        format!("{ALICE}\r\nX-Injected: 1"),
        format!("{ALICE}\n"),
        format!("{ALICE}\0"),
        format!("\u{1b}[31m{ALICE}"),
    ] {
        let response = exchange(token).await.expect("exchange");
        assert_oauth_error(response, 400, "invalid_grant").await;
    }
    assert_eq!(http_backend_errors(&tessera.address).await, 0.0);
    assert_eq!(legacy.calls().await, 0, "nothing reached the upstream");

    // The counter does move when the upstream really fails.
    let response = exchange("boom".into()).await.expect("exchange");
    assert_oauth_error(response, 503, "temporarily_unavailable").await;
    assert_eq!(http_backend_errors(&tessera.address).await, 1.0);
}
