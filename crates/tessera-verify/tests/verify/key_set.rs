//! The JWKS cache: one refetch for a new key, no hammering by forged kids, the last good
//! set while Tessera is down, ETag revalidation, and stale sets refreshed off the request
//! path.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tessera_verify::{Verifier, VerifyError};

use crate::common::*;

#[tokio::test]
async fn a_key_that_appeared_after_the_cache_was_filled_verifies_via_one_refetch() {
    let jwks = jwks_server(vec![jwk(KEY_A)], 300).await;
    let v = verifier(&jwks.url);
    v.verify(&sign(KEY_A, &claims("product-inventory", 60)))
        .await
        .expect("fills the cache");
    jwks.keys.lock().expect("lock").push(jwk(KEY_B));
    tokio::time::sleep(Duration::from_millis(350)).await;
    v.verify(&sign(KEY_B, &claims("product-inventory", 60)))
        .await
        .expect("rotated key");
    assert_eq!(
        jwks.fetches.load(Ordering::SeqCst),
        2,
        "exactly one refetch"
    );
}

#[tokio::test]
async fn a_flood_of_unknown_kids_cannot_hammer_the_issuer() {
    let jwks = jwks_server(vec![jwk(KEY_A)], 300).await;
    let v = verifier(&jwks.url);
    v.verify(&sign(KEY_A, &claims("product-inventory", 60)))
        .await
        .expect("fills the cache");
    let unknown = sign(KEY_B, &claims("product-inventory", 60));
    let attempts = (0..50).map(|_| {
        let (v, t) = (v.clone(), unknown.clone());
        tokio::spawn(async move { v.verify(&t).await })
    });
    for result in futures_util::future::join_all(attempts).await {
        assert!(matches!(
            result.expect("task"),
            Err(VerifyError::UnknownKey)
        ));
    }
    assert!(
        jwks.fetches.load(Ordering::SeqCst) <= 2,
        "at most one refetch per cooldown"
    );
}

#[tokio::test]
async fn the_last_good_key_set_serves_while_the_issuer_is_down() {
    let jwks = jwks_server(vec![jwk(KEY_A)], 1).await;
    let v = verifier(&jwks.url);
    let token = sign(KEY_A, &claims("product-inventory", 60));
    v.verify(&token).await.expect("fills the cache");
    jwks.up.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    v.verify(&token).await.expect("stale but last good");
    // The refresh runs in the background: wait for it to have been answered (503).
    eventually(|| jwks.fetches.load(Ordering::SeqCst) >= 2).await;
    v.verify(&token)
        .await
        .expect("still the last good set after the failed refresh");
    assert!(
        jwks.fetches.load(Ordering::SeqCst) >= 2,
        "it did try to refresh"
    );
}

#[tokio::test]
async fn a_stale_key_set_is_refreshed_in_the_background_while_requests_go_on() {
    let tessera = jwks_then_black_hole(vec![jwk(KEY_A)]).await;
    // A refresh on the request path would wait for this timeout, i.e. hang the test.
    let v = Verifier::builder(ISSUER, "product-inventory")
        .jwks_uri(&tessera.url)
        .timeout(Duration::from_secs(24 * 3600))
        .build()
        .expect("verifier");
    let token = sign(KEY_A, &claims("product-inventory", 60));
    v.verify(&token).await.expect("fills the cache");
    tokio::time::sleep(Duration::from_millis(1100)).await; // max-age=1: the set is stale

    v.verify(&token)
        .await
        .expect("the stale set answers at once");
    eventually(|| tessera.hanging.load(Ordering::SeqCst) == 1).await;
    for _ in 0..20 {
        v.verify(&token)
            .await
            .expect("served while the refresh is still pending");
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        tessera.hanging.load(Ordering::SeqCst),
        1,
        "at most one refresh in flight"
    );
}

#[tokio::test]
async fn an_unchanged_key_set_is_revalidated_with_its_etag() {
    let jwks = jwks_server_with_etag(vec![jwk(KEY_A)], 1, Some("\"v1\"")).await;
    let v = verifier(&jwks.url);
    let token = sign(KEY_A, &claims("product-inventory", 60));
    v.verify(&token).await.expect("fills the cache");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    v.verify(&token).await.expect("stale set");
    eventually(|| jwks.fetches.load(Ordering::SeqCst) >= 2).await;
    assert_eq!(
        jwks.not_modified.load(Ordering::SeqCst),
        1,
        "the refresh sent If-None-Match and got 304"
    );
    v.verify(&token)
        .await
        .expect("the revalidated set keeps its keys");
}
