//! The file keystore as the server uses it.

use std::os::unix::fs::PermissionsExt;

use tessera::http::Application;

use crate::helpers::*;

#[tokio::test]
async fn first_start_generates_a_private_key_with_mode_0600_and_a_restart_keeps_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys_dir = dir.path().join("keys");
    let settings = test_settings(&keys_dir);

    let app = Application::build(settings.clone())
        .await
        .expect("first start");
    let kid_first = app_kid(app).await;
    let pem = keys_dir.join(format!("{kid_first}.pem"));
    let mode = std::fs::metadata(&pem)
        .expect("key file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(
        std::fs::read_to_string(&pem)
            .expect("pem")
            .starts_with("-----BEGIN PRIVATE KEY-----")
    );

    let app = Application::build(settings).await.expect("restart");
    assert_eq!(app_kid(app).await, kid_first, "the restart keeps the key");
}

async fn app_kid(app: Application) -> String {
    let url = format!("http://127.0.0.1:{}/.well-known/jwks.json", app.port());
    let server = tokio::spawn(app.run_until_stopped());
    let jwks: serde_json::Value = reqwest::get(url)
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    server.abort();
    jwks["keys"][0]["kid"].as_str().expect("kid").to_owned()
}

#[tokio::test]
async fn start_is_refused_when_a_private_key_is_readable_by_others() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys_dir = dir.path().join("keys");
    let kid = install_fixture_key(&keys_dir);
    let pem = keys_dir.join(format!("{kid}.pem"));
    std::fs::set_permissions(&pem, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let err = Application::build(test_settings(&keys_dir))
        .await
        .err()
        .expect("start refused");
    let message = format!("{err:#}");
    assert!(message.contains("readable by group or others"), "{message}");
    assert!(message.contains("chmod 600"), "{message}");
}
