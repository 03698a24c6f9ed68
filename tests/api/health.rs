//! `/healthz` and `/readyz`.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn healthz_and_readyz_report_a_ready_server() {
    let app = spawn_app().await;
    let response = app
        .http
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(response.status(), 200);
    let (status, body) = app.readiness().await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"status": "ready", "checks": {"keys": "ok", "keystore": "ok"}})
    );
}

#[tokio::test]
async fn metrics_count_requests_exchanges_and_key_age_in_prometheus_format() {
    let app = spawn_app().await;
    app.token_for(Some(USER_SESSION)).await;
    app.exchange_json(json!({"subject_token": "nope"})).await;
    let response = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics");
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .expect("ct")
            .starts_with("text/plain")
    );
    let text = response.text().await.expect("body");
    for expected in [
        "tessera_http_requests_total{route=\"/exchange\",status=\"200\"}",
        "tessera_exchanges_total{client=\"test-gateway\",outcome=\"issued\"}",
        "tessera_exchanges_total{client=\"test-gateway\",outcome=\"invalid_grant\"}",
        "tessera_exchange_duration_seconds_bucket",
        "tessera_active_key_age_seconds",
        "tessera_backend_duration_seconds_bucket{backend=\"static\"",
    ] {
        assert!(text.contains(expected), "{expected} missing in:\n{text}");
    }
}

#[tokio::test]
async fn readyz_names_the_redis_that_is_down_by_address_never_by_password() {
    let (denylist_port, sessions_port) = (closed_port(), closed_port());
    let app = spawn_app_with(|s| {
        s.denylist.backend = tessera::config::DenylistBackend::Redis;
        s.redis.url = redis_url(&format!("redis://:hunter2@127.0.0.1:{denylist_port}/0"));
        s.redis.timeout_ms = 200;
        s.sessions.backend = tessera::config::SessionBackendKind::Redis;
        s.sessions.redis.url =
            redis_url(&format!("redis://user:swordfish@127.0.0.1:{sessions_port}"));
        s.sessions.redis.timeout_ms = 200;
        for (claim, pointer) in [("sub", "/user/id"), ("roles", "/user/roles")] {
            s.sessions.claims.insert(claim.into(), pointer.into());
        }
    })
    .await;
    let (status, body) = app.readiness().await;
    assert_eq!(status, 503);
    assert_eq!(body["checks"]["keys"], "ok");
    assert_eq!(
        body["checks"]["denylist"],
        format!("error: redis 127.0.0.1:{denylist_port}: connection refused"),
        "{body}"
    );
    assert_eq!(
        body["checks"]["sessions"],
        format!("error: redis 127.0.0.1:{sessions_port}: connection refused"),
        "{body}"
    );
    let text = body.to_string();
    assert!(
        !text.contains("hunter2") && !text.contains("swordfish"),
        "{text}"
    );
}
