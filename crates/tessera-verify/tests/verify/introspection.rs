//! The online check's cache: one request per token however many ask at once, refusals
//! kept briefly, answers kept longer, failures not at all.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::json;
use tessera_verify::{Introspection, Verifier, VerifyError};
use tokio::sync::Semaphore;

use crate::common::*;

/// An `/introspect` endpoint that counts requests, answers `active` (or 500 when `up` is
/// false), and holds each answer until the test adds a permit to `gate`.
struct Endpoint {
    url: String,
    calls: Arc<AtomicUsize>,
    active: Arc<AtomicBool>,
    up: Arc<AtomicBool>,
    gate: Arc<Semaphore>,
}

async fn endpoint(active: bool, permits: usize) -> Endpoint {
    let calls = Arc::new(AtomicUsize::new(0));
    let active = Arc::new(AtomicBool::new(active));
    let up = Arc::new(AtomicBool::new(true));
    let gate = Arc::new(Semaphore::new(permits));
    let (c, a, u, g) = (calls.clone(), active.clone(), up.clone(), gate.clone());
    let server = HttpServer::new(move || {
        let (c, a, u, g) = (c.clone(), a.clone(), u.clone(), g.clone());
        App::new().route(
            "/introspect",
            web::post().to(move |req: HttpRequest| {
                let (c, a, u, g) = (c.clone(), a.clone(), u.clone(), g.clone());
                async move {
                    c.fetch_add(1, Ordering::SeqCst);
                    g.acquire().await.expect("gate").forget();
                    let basic = req.headers().get("authorization").expect("credentials");
                    assert!(basic.to_str().expect("ascii").starts_with("Basic "));
                    if !u.load(Ordering::SeqCst) {
                        return HttpResponse::InternalServerError().finish();
                    }
                    HttpResponse::Ok().json(json!({"active": a.load(Ordering::SeqCst)}))
                }
            }),
        )
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .expect("bind");
    let url = format!("http://{}/introspect", server.addrs()[0]);
    tokio::spawn(server.run());
    Endpoint {
        url,
        calls,
        active,
        up,
        gate,
    }
}

async fn online_verifier(endpoint: &Endpoint, introspection: Introspection) -> Verifier {
    let jwks = jwks_server(vec![jwk(KEY_A)], 300).await;
    Verifier::builder(ISSUER, "product-inventory")
        .jwks_uri(&jwks.url)
        .introspection(introspection.url(&endpoint.url))
        .build()
        .expect("verifier")
}

#[tokio::test]
async fn concurrent_checks_of_one_token_make_one_introspection_request() {
    let idp = endpoint(true, 0).await;
    let v = online_verifier(
        &idp,
        Introspection::new("svc", "svc-secret").cache_ttl(Duration::from_secs(3600)),
    )
    .await;
    let token = sign(KEY_A, &claims("product-inventory", 60));
    let checks: Vec<_> = (0..20)
        .map(|_| {
            let (v, t) = (v.clone(), token.clone());
            tokio::spawn(async move { v.verify(&t).await })
        })
        .collect();
    eventually(|| idp.calls.load(Ordering::SeqCst) >= 1).await;
    idp.gate.add_permits(100);
    for check in futures_util::future::join_all(checks).await {
        check.expect("task").expect("active");
    }
    assert_eq!(idp.calls.load(Ordering::SeqCst), 1, "single-flight");
}

#[tokio::test]
async fn a_refusal_is_kept_briefly_and_an_active_answer_for_the_cache_ttl() {
    let idp = endpoint(false, 1000).await;
    let v = online_verifier(
        &idp,
        Introspection::new("svc", "svc-secret")
            .cache_ttl(Duration::from_secs(3600))
            .refusal_cache_ttl(Duration::from_secs(1)),
    )
    .await;
    let token = sign(KEY_A, &claims("product-inventory", 60));
    assert!(matches!(v.verify(&token).await, Err(VerifyError::Revoked)));
    assert!(matches!(v.verify(&token).await, Err(VerifyError::Revoked)));
    assert_eq!(idp.calls.load(Ordering::SeqCst), 1, "the refusal is cached");

    idp.active.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    v.verify(&token)
        .await
        .expect("the refusal expired: asked again");
    idp.active.store(false, Ordering::SeqCst);
    v.verify(&token).await.expect("the active answer is cached");
    assert_eq!(idp.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn an_unreachable_introspection_endpoint_refuses_without_caching_the_failure() {
    let idp = endpoint(true, 1000).await;
    idp.up.store(false, Ordering::SeqCst);
    let v = online_verifier(
        &idp,
        Introspection::new("svc", "svc-secret").cache_ttl(Duration::from_secs(3600)),
    )
    .await;
    let token = sign(KEY_A, &claims("product-inventory", 60));
    let refusal = v.verify(&token).await.expect_err("fails closed");
    assert!(matches!(
        &refusal,
        VerifyError::IntrospectionUnavailable(e) if e.http_status() == Some(500)
    ));
    assert!(refusal.is_transient());
    idp.up.store(true, Ordering::SeqCst);
    v.verify(&token).await.expect("asked again, now active");
    assert_eq!(idp.calls.load(Ordering::SeqCst), 2);
}
