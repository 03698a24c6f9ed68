//! Following a real Tessera's revocation feed: revoked tokens are refused offline soon
//! after the revocation; a token issued after a subject revocation is accepted.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tessera_verify::{Verifier, VerifyError};

use crate::common::*;

/// Bounds a failing test only; the refusal is expected within a second.
const PATIENCE: Duration = Duration::from_secs(15);

async fn admin_revoke(tessera: &str, body: Value) {
    let response = reqwest::Client::new()
        .post(format!("{tessera}/admin/revocations"))
        .bearer_auth("admin-token")
        .json(&body)
        .send()
        .await
        .expect("revoke");
    assert_eq!(response.status(), 200);
}

async fn following(tessera: &str) -> Verifier {
    let verifier = Verifier::builder(tessera, "product-inventory")
        .revocation_feed("svc", "svc-secret")
        .discover()
        .await
        .expect("discovery");
    let deadline = Instant::now() + PATIENCE;
    while verifier.revocation_feed_connected() != Some(true) {
        assert!(Instant::now() < deadline, "the feed never connected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    verifier
}

/// Polls until `verifier` refuses `token` as revoked.
async fn refused_eventually(verifier: &Verifier, token: &str) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match verifier.verify(token).await {
            Err(VerifyError::Revoked) => return,
            Ok(_) => {}
            Err(other) => panic!("refused for another reason: {other}"),
        }
        assert!(Instant::now() < deadline, "the revocation never arrived");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn jti_of(token: &str) -> String {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).expect("payload");
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64");
    let claims: Value = serde_json::from_slice(&json).expect("json");
    claims["jti"].as_str().expect("jti").to_owned()
}

#[tokio::test]
async fn a_following_verifier_refuses_revoked_tokens_offline_and_accepts_later_ones() {
    let (tessera, _dir) = tessera().await;
    let verifier = following(&tessera).await;

    let token = exchange(&tessera, Some("admin-session")).await;
    verifier.verify(&token).await.expect("valid before");
    admin_revoke(&tessera, json!({"jti": jti_of(&token)})).await;
    refused_eventually(&verifier, &token).await;

    let older = exchange(&tessera, Some("admin-session")).await;
    verifier.verify(&older).await.expect("another token lives");
    admin_revoke(&tessera, json!({"subject": "user-1"})).await;
    refused_eventually(&verifier, &older).await;

    // "Issued up to now" is to the second: a token of the next second lives.
    let revoked_at = now();
    while now() <= revoked_at {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let later = exchange(&tessera, Some("admin-session")).await;
    let claims = verifier
        .verify(&later)
        .await
        .expect("issued after the revocation");
    assert_eq!(claims.sub, "user-1");
}

#[tokio::test]
async fn a_verifier_without_the_feed_reports_none_and_a_refused_client_never_connects() {
    let (tessera, _dir) = tessera().await;
    let plain = Verifier::builder(&tessera, "product-inventory")
        .build()
        .expect("verifier");
    assert_eq!(plain.revocation_feed_connected(), None);
    let refused = Verifier::builder(&tessera, "product-inventory")
        .revocation_feed("gw", "gw-secret")
        .build()
        .expect("verifier");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        refused.revocation_feed_connected(),
        Some(false),
        "gw has revocation_feed = false"
    );
}
