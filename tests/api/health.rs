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
    assert_eq!(body, json!({"status": "ready", "checks": {"keys": "ok"}}));
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
