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
