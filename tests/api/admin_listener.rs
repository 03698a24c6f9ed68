//! `server.admin_listen`: `/admin/*` and `/metrics` on a second listener only.

use tessera::http::Application;

use crate::helpers::*;

#[tokio::test]
async fn with_admin_listen_admin_and_metrics_move_to_the_second_listener() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys_dir = dir.path().join("keys");
    install_fixture_key(&keys_dir);
    let mut settings = test_settings(&keys_dir);
    settings.server.admin_listen = Some("127.0.0.1:0".parse().expect("addr"));
    let app = Application::build(settings).await.expect("start");
    let main = format!("http://127.0.0.1:{}", app.port());
    let admin = format!(
        "http://127.0.0.1:{}",
        app.admin_port().expect("an admin port")
    );
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    let http = reqwest::Client::new();
    let get = async |base: &str, path: &str| {
        http.get(format!("{base}{path}"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("request")
    };

    for path in ["/admin/keys", "/metrics"] {
        assert_oauth_error(get(&main, path).await, 404, "not_found").await;
        assert_eq!(get(&admin, path).await.status(), 200, "{path}");
    }
    for path in ["/healthz", "/.well-known/jwks.json"] {
        assert_eq!(get(&main, path).await.status(), 200, "{path}");
        assert_oauth_error(get(&admin, path).await, 404, "not_found").await;
    }
    let response = http
        .post(format!("{main}/exchange"))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .json(&serde_json::json!({}))
        .send()
        .await
        .expect("exchange");
    assert_eq!(response.status(), 200);
    handle.stop(true).await;
}
