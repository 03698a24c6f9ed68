//! The tower layer (feature `tower`) on a plain `service_fn`: what reaches the inner
//! service, and the RFC 6750 answers for what does not.

use std::convert::Infallible;

use http::{Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::Value;
use tessera_verify::tower::RequireTokenLayer;
use tessera_verify::{AccessClaims, Claims, Verifier};
use tower::{Layer as _, ServiceExt as _, service_fn};

use crate::common::*;

async fn echo_subject(request: Request<String>) -> Result<Response<String>, Infallible> {
    let claims = request
        .extensions()
        .get::<Claims>()
        .expect("claims inserted");
    Ok(Response::new(claims.sub.clone()))
}

fn request(authorization: Option<&str>) -> Request<String> {
    let mut request = Request::builder().uri("/branches/1/products");
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    request.body(String::new()).expect("request")
}

async fn verifier_for_key_a() -> Verifier {
    verifier(&jwks_server(vec![jwk(KEY_A)], 300).await.url)
}

#[tokio::test]
async fn a_valid_token_reaches_the_inner_service_with_its_claims() {
    let layer = RequireTokenLayer::new(verifier_for_key_a().await).role("admin");
    let token = sign(KEY_A, &claims("product-inventory", 60));
    let response = layer
        .layer(service_fn(echo_subject))
        .oneshot(request(Some(&format!("Bearer {token}"))))
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.body(), "user-1");
}

#[tokio::test]
async fn a_missing_or_refused_token_is_401_invalid_token() {
    let layer = RequireTokenLayer::new(verifier_for_key_a().await);
    let expired = format!("Bearer {}", sign(KEY_A, &claims("product-inventory", -10)));
    for authorization in [
        None,
        Some("Bearer nonsense"),
        Some("Basic abc"),
        Some(&*expired),
    ] {
        let response = layer
            .layer(service_fn(echo_subject))
            .oneshot(request(authorization))
            .await
            .expect("infallible");
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{authorization:?}"
        );
        assert_eq!(
            response.headers()["www-authenticate"],
            "Bearer error=\"invalid_token\""
        );
        let body: Value = serde_json::from_str(response.body()).expect("json error");
        assert_eq!(body["error"], "invalid_token");
    }
}

#[tokio::test]
async fn a_valid_token_without_the_role_is_403_insufficient_scope() {
    let layer = RequireTokenLayer::new(verifier_for_key_a().await).role("ops");
    let token = sign(KEY_A, &claims("product-inventory", 60));
    let response = layer
        .layer(service_fn(echo_subject))
        .oneshot(request(Some(&format!("Bearer {token}"))))
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer error=\"insufficient_scope\""
    );
}

#[derive(Debug, Clone, Deserialize)]
struct Staff {
    sub: String,
    roles: Vec<String>,
}

impl AccessClaims for Staff {
    fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

#[tokio::test]
async fn the_layer_verifies_into_the_services_own_claim_type() {
    let layer = RequireTokenLayer::<Staff>::with_claims(verifier_for_key_a().await).role("admin");
    let inner = service_fn(|request: Request<String>| async move {
        let staff = request.extensions().get::<Staff>().expect("staff inserted");
        Ok::<_, Infallible>(Response::new(staff.sub.clone()))
    });
    let token = sign(KEY_A, &claims("product-inventory", 60));
    let response = layer
        .layer(inner)
        .oneshot(request(Some(&format!("Bearer {token}"))))
        .await
        .expect("infallible");
    assert_eq!(response.body(), "user-1");
}
