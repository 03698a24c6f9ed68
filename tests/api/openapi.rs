//! The OpenAPI document: served, committed and generated copies agree, and every
//! operation documents its error responses.

use serde_json::Value;

use crate::helpers::*;

const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json");

#[tokio::test]
async fn served_document_matches_the_committed_one() {
    let generated = tessera::http::openapi::document();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(COMMITTED, &generated).expect("write openapi/openapi.json");
    }
    let committed = std::fs::read_to_string(COMMITTED).expect("openapi/openapi.json exists");
    assert!(
        committed == generated,
        "openapi/openapi.json is stale: run `cargo run -- openapi > openapi/openapi.json` (or UPDATE_OPENAPI=1 cargo test)"
    );
    let app = spawn_app().await;
    let served = app
        .http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .expect("openapi");
    assert_eq!(served.status(), 200);
    assert_eq!(served.text().await.expect("body"), generated);
}

#[test]
fn every_operation_documents_its_error_responses() {
    let doc: Value = serde_json::from_str(&tessera::http::openapi::document()).expect("json");
    assert!(doc["openapi"].as_str().expect("version").starts_with("3.1"));
    let paths = doc["paths"].as_object().expect("paths");
    let expected = [
        "/exchange",
        "/oauth2/token",
        "/.well-known/jwks.json",
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
        "/healthz",
        "/readyz",
        "/openapi.json",
    ];
    for path in expected {
        assert!(paths.contains_key(path), "{path} is documented");
    }
    for (path, item) in paths {
        for (method, op) in item.as_object().expect("path item") {
            let responses = op["responses"].as_object().expect("responses");
            assert!(
                responses
                    .keys()
                    .any(|code| code.starts_with('4') || code.starts_with('5')),
                "{method} {path} documents no error response"
            );
        }
    }
}
