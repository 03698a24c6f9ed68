//! Every refusal names its reason: forgeries, other issuers and audiences, time, missing
//! and mistyped claims.

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tessera_verify::VerifyError;

use crate::common::*;

#[tokio::test]
async fn refuses_forgeries_and_wrong_tokens() {
    let jwks = jwks_server(vec![jwk(KEY_A)], 300).await;
    let v = verifier(&jwks.url);
    let body = claims("product-inventory", 60);
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let kid = jwk(KEY_A)["kid"].clone();

    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "at+jwt", "kid": kid})),
        b64(&body)
    );
    assert!(matches!(
        v.verify(&none).await,
        Err(VerifyError::WrongAlgorithm | VerifyError::Malformed)
    ));

    // HS256 keyed with the public key: the classic algorithm-confusion forgery.
    let mut hs = Header::new(Algorithm::HS256);
    hs.typ = Some("at+jwt".into());
    hs.kid = kid.as_str().map(str::to_owned);
    let public_pem = jwk(KEY_A)["n"].as_str().expect("n").to_owned();
    let forged = jsonwebtoken::encode(&hs, &body, &EncodingKey::from_secret(public_pem.as_bytes()))
        .expect("hs");
    assert!(matches!(
        v.verify(&forged).await,
        Err(VerifyError::WrongAlgorithm)
    ));

    // A foreign RSA key claiming our kid.
    let foreign = sign_with(&header(KEY_A), KEY_B, &body);
    assert!(matches!(
        v.verify(&foreign).await,
        Err(VerifyError::BadSignature)
    ));

    assert!(matches!(
        v.verify(&sign(KEY_A, &claims("billing", 60))).await,
        Err(VerifyError::WrongAudience)
    ));
    assert!(matches!(
        v.verify(&sign(KEY_A, &claims("product-inventory", -10)))
            .await,
        Err(VerifyError::Expired)
    ));
    let mut other_issuer = claims("product-inventory", 60);
    other_issuer["iss"] = json!("https://evil.test");
    assert!(matches!(
        v.verify(&sign(KEY_A, &other_issuer)).await,
        Err(VerifyError::WrongIssuer)
    ));
    assert!(matches!(
        v.verify("garbage").await,
        Err(VerifyError::Malformed)
    ));
}

#[tokio::test]
async fn a_tampered_payload_is_a_bad_signature() {
    let jwks = jwks_server(vec![jwk(KEY_A)], 300).await;
    let v = verifier(&jwks.url);
    let token = sign(KEY_A, &claims("product-inventory", 60));
    let mut parts: Vec<&str> = token.split('.').collect();
    let mut body = claims("product-inventory", 60);
    body["roles"] = json!(["admin", "root"]);
    let forged_body =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(body.to_string().as_bytes());
    parts[1] = &forged_body;
    assert!(matches!(
        v.verify(&parts.join(".")).await,
        Err(VerifyError::BadSignature)
    ));
}

#[tokio::test]
async fn time_headers_and_claims_each_give_their_own_reason() {
    let jwks = jwks_server(vec![jwk(KEY_A)], 300).await;
    let v = verifier(&jwks.url);

    let mut early = claims("product-inventory", 600);
    early["nbf"] = json!(now() + 300);
    assert!(matches!(
        v.verify(&sign(KEY_A, &early)).await,
        Err(VerifyError::NotYetValid)
    ));

    let mut no_subject = claims("product-inventory", 60);
    no_subject.as_object_mut().expect("object").remove("sub");
    assert!(matches!(
        v.verify(&sign(KEY_A, &no_subject)).await,
        Err(VerifyError::MissingClaim("sub"))
    ));

    let mut bad_nbf = claims("product-inventory", 60);
    bad_nbf["nbf"] = json!("soon");
    assert!(matches!(
        v.verify(&sign(KEY_A, &bad_nbf)).await,
        Err(VerifyError::InvalidClaim("nbf"))
    ));

    let mut id_token = header(KEY_A);
    id_token.typ = Some("id+jwt".into());
    let body = claims("product-inventory", 60);
    assert!(matches!(
        v.verify(&sign_with(&id_token, KEY_A, &body)).await,
        Err(VerifyError::WrongType)
    ));

    let mut no_kid = header(KEY_A);
    no_kid.kid = None;
    assert!(matches!(
        v.verify(&sign_with(&no_kid, KEY_A, &body)).await,
        Err(VerifyError::NoKeyId)
    ));

    let refusal = v
        .verify(&sign(KEY_A, &claims("product-inventory", -10)))
        .await
        .expect_err("expired");
    assert_eq!(refusal.to_string(), "the token has expired");
    assert!(!refusal.is_transient());
}
