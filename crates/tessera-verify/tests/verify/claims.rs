//! Claims come out typed: Tessera's `Claims`, or the service's own type; a verifier may
//! accept several audiences.

use std::sync::atomic::Ordering;

use serde::Deserialize;
use serde_json::json;
use tessera_verify::{Verifier, VerifyError};

use crate::common::*;

#[tokio::test]
async fn verifies_tessera_shaped_tokens_into_typed_claims() {
    let jwks = jwks_server(vec![jwk(KEY_A)], 300).await;
    let v = verifier(&jwks.url);
    let c = v
        .verify(&sign(KEY_A, &claims("product-inventory", 60)))
        .await
        .expect("valid");
    assert_eq!(c.sub, "user-1");
    assert!(c.has_role("admin") && c.has_scope("orders:read") && !c.has_scope("orders"));
    assert_eq!(c.act.expect("act").sub, "gw");
    assert_eq!(c.extra["email"], "a@example.com");
    v.verify(&sign(KEY_A, &claims("product-inventory", 60)))
        .await
        .expect("cached");
    assert_eq!(
        jwks.fetches.load(Ordering::SeqCst),
        1,
        "served from the cache"
    );
}

/// A service's own view of the token: only what it reads, mapped claims included.
#[derive(Debug, Deserialize)]
struct ShopClaims {
    sub: String,
    email: String,
    #[serde(default)]
    tenant: Option<String>,
}

#[tokio::test]
async fn verify_as_reads_the_claims_into_the_services_own_type() {
    let jwks = jwks_server(vec![jwk(KEY_A)], 300).await;
    let v = verifier(&jwks.url);
    let mine: ShopClaims = v
        .verify_as(&sign(KEY_A, &claims("product-inventory", 60)))
        .await
        .expect("valid");
    assert_eq!(
        (mine.sub.as_str(), mine.email.as_str(), mine.tenant),
        ("user-1", "a@example.com", None)
    );

    let mut no_email = claims("product-inventory", 60);
    no_email.as_object_mut().expect("object").remove("email");
    let refusal = v
        .verify_as::<ShopClaims>(&sign(KEY_A, &no_email))
        .await
        .expect_err("does not fit");
    assert!(matches!(refusal, VerifyError::UnexpectedClaims(_)));
    assert!(
        std::error::Error::source(&refusal).is_some(),
        "keeps serde's reason"
    );

    // The reason stays precise whatever the target type: an expired token is Expired.
    assert!(matches!(
        v.verify_as::<ShopClaims>(&sign(KEY_A, &claims("product-inventory", -10)))
            .await,
        Err(VerifyError::Expired)
    ));
}

#[tokio::test]
async fn a_verifier_may_accept_several_audiences() {
    let jwks = jwks_server(vec![jwk(KEY_A)], 300).await;
    let v = Verifier::builder(ISSUER, "product-inventory")
        .audience("product-catalog")
        .jwks_uri(&jwks.url)
        .build()
        .expect("verifier");
    assert_eq!(v.audiences(), ["product-inventory", "product-catalog"]);
    for audience in ["product-inventory", "product-catalog"] {
        let c = v
            .verify(&sign(KEY_A, &claims(audience, 60)))
            .await
            .expect("accepted audience");
        assert_eq!(c.aud, audience);
    }
    assert!(matches!(
        v.verify(&sign(KEY_A, &claims("billing", 60))).await,
        Err(VerifyError::WrongAudience)
    ));
    let mut both = claims("x", 60);
    both["aud"] = json!(["billing", "product-catalog"]);
    assert!(
        v.verify_as::<serde_json::Value>(&sign(KEY_A, &both))
            .await
            .is_ok(),
        "an aud array is valid when any of its entries is accepted"
    );
}
