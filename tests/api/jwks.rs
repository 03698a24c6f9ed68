//! `GET /.well-known/jwks.json`.

use crate::helpers::*;

#[tokio::test]
async fn jwks_is_cacheable_with_a_strong_etag_and_answers_304() {
    let app = spawn_app().await;
    let response = app
        .http
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .expect("jwks");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "public, max-age=300");
    let etag = response.headers()["etag"]
        .to_str()
        .expect("etag")
        .to_owned();
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "strong ETag: {etag}"
    );

    let response = app
        .http
        .get(app.url("/.well-known/jwks.json"))
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("jwks");
    assert_eq!(response.status(), 304);
    assert_eq!(response.headers()["etag"].to_str().expect("etag"), etag);
    assert!(response.bytes().await.expect("body").is_empty());

    let response = app
        .http
        .get(app.url("/.well-known/jwks.json"))
        .header("if-none-match", "\"stale\"")
        .send()
        .await
        .expect("jwks");
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn jwks_publishes_public_rs256_keys_whose_kid_is_the_rfc_7638_thumbprint() {
    let app = spawn_app().await;
    let raw: serde_json::Value = app
        .http
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    let keys = raw["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 1);
    let key = &keys[0];
    for private in ["d", "p", "q", "dp", "dq", "qi"] {
        assert!(
            key.get(private).is_none(),
            "{private} must never be published"
        );
    }
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["use"], "sig");
    assert_eq!(key["alg"], "RS256");
    assert_eq!(key["e"], "AQAB");
    let thumbprint = tessera::keys::jwk::rsa_thumbprint(
        key["n"].as_str().expect("n"),
        key["e"].as_str().expect("e"),
    );
    assert_eq!(key["kid"], thumbprint);

    // jsonwebtoken's own RFC 7638 implementation agrees.
    let jwks = app.jwks().await;
    let theirs = jwks.keys[0]
        .thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
        .expect("thumbprint");
    assert_eq!(key["kid"], theirs);
}
