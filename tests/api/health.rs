//! `/healthz` and `/readyz`.

use serde_json::{Value, json};

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
    let response = app
        .http
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body, json!({"status": "ready", "checks": {"keys": "ok"}}));
}
