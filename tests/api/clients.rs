//! Gateway clients as operators configure them: secrets that rotate, maxima that an
//! emergency lowers.

use serde_json::{Value, json};
use tessera::config::Sha256;

use crate::helpers::*;

const ROTATED_SECRET: &str = "test-gateway-rotated-secret";

#[tokio::test]
async fn a_client_with_two_secret_hashes_authenticates_with_either_secret() {
    let app = spawn_app_with(|s| {
        s.clients[0]
            .secret_sha256
            .push(Sha256::of_secret(ROTATED_SECRET));
    })
    .await;
    for (secret, status) in [
        (CLIENT_SECRET, 200),
        (ROTATED_SECRET, 200),
        ("neither-of-them", 401),
    ] {
        let response = app
            .exchange_as(CLIENT_ID, secret, json!({"subject_token": USER_SESSION}))
            .await;
        assert_eq!(response.status(), status, "{secret}");
    }
}

/// An operator lowers `token.max_ttl_seconds` in an emergency without editing clients:
/// the server starts, and the lower maximum applies.
#[tokio::test]
async fn a_client_maximum_above_the_global_one_starts_and_the_global_one_applies() {
    let app = spawn_app_with(|s| {
        s.token.ttl_seconds = 5;
        s.token.max_ttl_seconds = 5;
        s.clients[0].max_ttl_seconds = 600;
    })
    .await;
    let response = app
        .exchange_json(json!({"subject_token": USER_SESSION}))
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["expires_in"], 5);
    let claims = app
        .verify(
            body["access_token"].as_str().expect("token"),
            "product-catalog",
        )
        .await;
    let lifetime = claims["exp"].as_i64().expect("exp") - claims["iat"].as_i64().expect("iat");
    assert_eq!(lifetime, 5 + 5, "ttl plus the backdating of iat");
}
