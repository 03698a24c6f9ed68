//! The Redis denylist as operators rely on it: TTLs, restarts, replicas, outages, the CLI.

use std::time::{Duration, Instant};

use redis::AsyncCommands;
use serde_json::json;
use tessera::config::{DenylistBackend, Settings};

use crate::helpers::*;
use crate::redis_support::*;

fn on_redis(url: String, prefix: String) -> impl FnOnce(&mut Settings) {
    move |s| {
        s.denylist.backend = DenylistBackend::Redis;
        s.redis.url = redis_url(&url);
        s.redis.key_prefix = prefix;
    }
}

#[tokio::test]
async fn entries_expire_by_themselves_when_nothing_they_cover_is_valid() {
    let (url, prefix) = (shared_redis_url(), unique_prefix());
    let app = spawn_app_with(on_redis(url.clone(), prefix.clone())).await;
    let mut redis = redis_conn(&url).await;

    let jwt = app.token_for(Some(USER_SESSION)).await;
    let claims = app.introspect(&jwt).await;
    let response = app
        .http
        .post(app.url("/revoke"))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[("token", jwt.as_str())])
        .send()
        .await
        .expect("revoke");
    assert_eq!(response.status(), 200);
    let jti_key = format!("{prefix}jti:{}", claims["jti"].as_str().expect("jti"));
    let ttl: i64 = redis.ttl(&jti_key).await.expect("ttl");
    assert!(
        (595..=600).contains(&ttl),
        "a jti lives until its token expires: {ttl}"
    );

    app.admin_revoke(json!({"session": ADMIN_SESSION})).await;
    let sid_key = format!(
        "{prefix}sid:{}",
        tessera::sessions::sid_of_canonical(ADMIN_SESSION)
    );
    let ttl: i64 = redis.ttl(&sid_key).await.expect("ttl");
    assert!(
        (86_395..=86_400).contains(&ttl),
        "denylist.session_ttl_seconds: {ttl}"
    );

    app.admin_revoke(json!({"subject": "user-1"})).await;
    let ttl: i64 = redis.ttl(format!("{prefix}sub:user-1")).await.expect("ttl");
    assert!(
        (3_600..=3_605).contains(&ttl),
        "token.max_ttl_seconds + skew: {ttl}"
    );

    let keys: Vec<String> = redis.keys(format!("{prefix}*")).await.expect("keys");
    assert!(
        keys.iter().all(|k| !k.contains(ADMIN_SESSION)),
        "the session token itself is never stored: {keys:?}"
    );
}

#[tokio::test]
async fn revocations_survive_a_restart_and_are_shared_by_replicas() {
    let (url, prefix) = (shared_redis_url(), unique_prefix());
    let first = spawn_app_with(on_redis(url.clone(), prefix.clone())).await;
    let second = spawn_app_with(on_redis(url.clone(), prefix.clone())).await;
    let jwt = first.token_for(Some(USER_SESSION)).await;

    let response = second.admin_revoke(json!({"session": USER_SESSION})).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        first.introspect(&jwt).await["active"],
        false,
        "replica sees it"
    );
    let response = first
        .exchange_json(json!({"subject_token": USER_SESSION}))
        .await;
    assert_oauth_error(response, 400, "invalid_grant").await;

    first.stop().await;
    second.stop().await;
    let restarted = spawn_app_with(on_redis(url, prefix)).await;
    let response = restarted
        .exchange_json(json!({"subject_token": USER_SESSION}))
        .await;
    assert_oauth_error(response, 400, "invalid_grant").await;
}

#[tokio::test]
async fn redis_down_fails_closed_and_service_recovers_without_a_restart() {
    let mut server = RedisServer::start();
    let app = spawn_app_with(on_redis(server.url(), unique_prefix())).await;
    let jwt = app.token_for(Some(USER_SESSION)).await;

    server.stop();
    let started = Instant::now();
    let response = app
        .exchange_json(json!({"subject_token": USER_SESSION}))
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "a dead Redis must not hang requests"
    );
    assert_eq!(response.headers()["retry-after"], "1");
    assert_oauth_error(response, 503, "temporarily_unavailable").await;

    let response = app
        .http
        .post(app.url("/introspect"))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[("token", jwt.as_str())])
        .send()
        .await
        .expect("introspect");
    assert_oauth_error(response, 503, "temporarily_unavailable").await;

    let (status, body) = app.readiness().await;
    assert_eq!(status, 503);
    assert_eq!(body["status"], "unavailable");
    assert!(
        body["checks"]["denylist"]
            .as_str()
            .expect("check")
            .starts_with("error"),
        "{body}"
    );

    // What needs no denylist keeps working.
    let jwks = app
        .http
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .expect("jwks");
    assert_eq!(jwks.status(), 200);
    let discovery = app
        .http
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .expect("discovery");
    assert_eq!(discovery.status(), 200);
    app.token_for(None).await;

    server.resume();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let response = app
            .exchange_json(json!({"subject_token": USER_SESSION}))
            .await;
        if response.status() == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no recovery after Redis came back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(app.readiness().await.0, 200);
}

#[tokio::test]
async fn tessera_starts_while_redis_is_down_and_serves_once_it_is_up() {
    let mut server = RedisServer::start();
    server.stop();
    let app = spawn_app_with(on_redis(server.url(), unique_prefix())).await;
    assert_eq!(app.readiness().await.0, 503);
    server.resume();
    let deadline = Instant::now() + Duration::from_secs(15);
    while app
        .exchange_json(json!({"subject_token": USER_SESSION}))
        .await
        .status()
        != 200
    {
        assert!(Instant::now() < deadline, "no recovery");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn the_cli_revokes_in_the_shared_denylist() {
    let (url, prefix) = (shared_redis_url(), unique_prefix());
    let app = spawn_app_with(on_redis(url.clone(), prefix.clone())).await;
    let jwt = app.token_for(Some(ADMIN_SESSION)).await;

    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("tessera.toml");
    std::fs::write(
        &config,
        format!(
            "[[sessions.static]]\ntoken = \"{ADMIN_SESSION}\"\nsub = \"user-1\"\n[denylist]\nbackend = \"redis\"\n[redis]\nurl = \"{url}\"\nkey_prefix = \"{prefix}\"\n"
        ),
    )
    .expect("config");
    let out = tessera_cli(
        &config,
        &[
            "revoke",
            "--session",
            ADMIN_SESSION,
            "--reason",
            "offboarding",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("revoked session"), "{stdout}");
    let logs = String::from_utf8_lossy(&out.stderr);
    assert!(logs.contains("offboarding"), "audit line: {logs}");
    assert!(
        !logs.contains(ADMIN_SESSION) && !stdout.contains(ADMIN_SESSION),
        "never print the session token"
    );
    assert_eq!(app.introspect(&jwt).await["active"], false);

    let out = tessera_cli(&config, &["revoke", "--subject", "user-9"]);
    assert!(out.status.success());
    let out = tessera_cli(&config, &["revoke", "--jti", "a", "--subject", "b"]);
    assert!(!out.status.success(), "exactly one target");
}

#[tokio::test]
async fn the_cli_revokes_a_session_by_the_sid_claim_of_its_token() {
    let (url, prefix) = (shared_redis_url(), unique_prefix());
    let app = spawn_app_with(on_redis(url.clone(), prefix.clone())).await;
    let jwt = app.token_for(Some(USER_SESSION)).await;
    let sid = app.introspect(&jwt).await["sid"]
        .as_str()
        .expect("sid")
        .to_owned();

    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("tessera.toml");
    std::fs::write(
        &config,
        format!(
            "[denylist]\nbackend = \"redis\"\n[redis]\nurl = \"{url}\"\nkey_prefix = \"{prefix}\"\n"
        ),
    )
    .expect("config");
    let out = tessera_cli(&config, &["revoke", "--sid", &sid]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("revoked session {sid}")),
        "{stdout}"
    );
    assert_eq!(app.introspect(&jwt).await["active"], false);
    let response = app
        .exchange_json(json!({"subject_token": USER_SESSION}))
        .await;
    assert_oauth_error(response, 400, "invalid_grant").await;

    let out = tessera_cli(&config, &["revoke", "--sid", "not-a-sid"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("sid"));
}

#[test]
fn the_cli_refuses_the_in_process_memory_denylist() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("tessera.toml");
    std::fs::write(&config, "[denylist]\nbackend = \"memory\"\n").expect("config");
    let out = tessera_cli(&config, &["revoke", "--subject", "user-1"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("denylist.backend"), "{stderr}");
}

#[tokio::test]
async fn rediss_urls_speak_tls_and_verify_the_server_certificate() {
    let server = RedisServer::start_tls();
    let prefix = unique_prefix();
    let ca = RedisServer::tls_ca_file();
    let url = server.url();
    let app = spawn_app_with(move |s| {
        on_redis(url, prefix)(s);
        s.redis.tls_ca_file = Some(ca);
    })
    .await;
    let jwt = app.token_for(Some(USER_SESSION)).await;
    let response = app.admin_revoke(json!({"session": USER_SESSION})).await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.introspect(&jwt).await["active"], false);

    // Without the CA the certificate is not trusted: fail closed, not plaintext.
    let untrusted = spawn_app_with(on_redis(server.url(), unique_prefix())).await;
    let response = untrusted
        .exchange_json(json!({"subject_token": USER_SESSION}))
        .await;
    assert_oauth_error(response, 503, "temporarily_unavailable").await;
}
