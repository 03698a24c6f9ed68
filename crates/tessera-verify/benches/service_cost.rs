//! What authenticating one request costs a service (issue 17, the seed's "Go further"
//! benchmark), per request, side by side:
//!
//! * `api_key_ct_eq`: a shared API key compared in constant time (`subtle`);
//! * `hs256_shared_secret`: the seeds' HS256 JWT verified with a shared secret
//!   (`jsonwebtoken`, key and `Validation` built once);
//! * `rs256_tessera_verify`: a Tessera RS256 token through `Verifier::verify`, key set warm;
//! * `rs256_tessera_verify_feed`: the same with the revocation feed followed and 10,000
//!   live revocations held (the lookup on each verification);
//! * `cold_start_discover_first_verify`: a fresh verifier, discovery + JWKS fetch + the
//!   first verification (over loopback HTTP).
//!
//! The issuer here is a local actix server that serves the discovery document, the JWKS
//! and a revocation feed (10,000 `jti` revocations, then keep-alives); the end-to-end
//! figures against a real Tessera come from `benches/service.sh`.
//!
//! `cargo bench -p tessera-verify --bench service_cost`

use std::hint::black_box;
use std::time::Duration;

use actix_web::web::Bytes;
use actix_web::{App, HttpResponse, HttpServer, web};
use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;
use tessera_verify::Verifier;

const PEM: &str = include_str!("../../../tests/fixtures/rsa-2048-a.pem");
const AUDIENCE: &str = "product-inventory";
const REVOCATIONS: usize = 10_000;

/// The revocation feed's opening: `REVOCATIONS` live `jti` revocations (none of them the
/// benchmarked token's).
fn feed_events(now: u64) -> String {
    let mut out = String::new();
    for i in 0..REVOCATIONS {
        let data = json!({"kind": "jti", "id": format!("revoked-{i}"), "expires_at": now + 3600});
        out.push_str(&format!("id: {i}\nevent: revocation\ndata: {data}\n\n"));
    }
    out
}

/// Serves discovery, the JWKS and the feed on a free loopback port; returns the issuer.
fn issuer_server(runtime: &tokio::runtime::Runtime, jwk: Value, now: u64) -> String {
    runtime.block_on(async {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let issuer = format!("http://{}", listener.local_addr().expect("addr"));
        let discovery = json!({"issuer": issuer, "jwks_uri": format!("{issuer}/jwks")});
        let keys = json!({"keys": [jwk]});
        let events = Bytes::from(feed_events(now));
        let server = HttpServer::new(move || {
            let (discovery, keys, events) = (discovery.clone(), keys.clone(), events.clone());
            App::new()
                .route(
                    "/.well-known/oauth-authorization-server",
                    web::get().to(move || {
                        let d = discovery.clone();
                        async move { HttpResponse::Ok().json(d) }
                    }),
                )
                .route(
                    "/jwks",
                    web::get().to(move || {
                        let k = keys.clone();
                        async move { HttpResponse::Ok().json(k) }
                    }),
                )
                .route(
                    "/revocations/stream",
                    web::get().to(move || {
                        let first = events.clone();
                        async move {
                            // The snapshot, then keep-alives for as long as it is followed.
                            let stream = futures_util::stream::unfold(Some(first), |next| async {
                                let chunk = match next {
                                    Some(first) => first,
                                    None => {
                                        tokio::time::sleep(Duration::from_secs(10)).await;
                                        Bytes::from_static(b": keep-alive\n\n")
                                    }
                                };
                                Some((Ok::<_, actix_web::Error>(chunk), None))
                            });
                            HttpResponse::Ok()
                                .content_type("text/event-stream")
                                .streaming(stream)
                        }
                    }),
                )
        })
        .workers(1)
        .listen(listener)
        .expect("listen");
        tokio::spawn(server.run());
        issuer
    })
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let jwk = serde_json::to_value(
        &tessera::keys::single_key_keyring(PEM, "at+jwt")
            .expect("keyring")
            .keys()[0]
            .key
            .jwk,
    )
    .expect("jwk");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs();
    let issuer = issuer_server(&runtime, jwk.clone(), now);

    // (a) A shared API key, as the seeds' services compared it (here in constant time).
    let api_key = b"3a1f0c9e5b7d4e2f8a6c1b0d9e7f5a3c".to_vec();
    let presented = api_key.clone();
    c.bench_function("api_key_ct_eq", |b| {
        b.iter(|| assert!(bool::from(black_box(&presented[..]).ct_eq(&api_key))))
    });

    // (b) The seeds' HS256 JWT with a shared secret.
    let secret = b"a-shared-hmac-secret-of-32-bytes!";
    let hs_claims = json!({"iss": &issuer, "sub": "user-1", "aud": AUDIENCE, "iat": now,
                           "exp": now + 3600, "roles": ["admin"], "email": "admin@example.com"});
    let hs_token = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &hs_claims,
        &EncodingKey::from_secret(secret),
    )
    .expect("sign hs256");
    let hs_key = DecodingKey::from_secret(secret);
    let mut hs_validation = Validation::new(Algorithm::HS256);
    hs_validation.set_issuer(&[&issuer]);
    hs_validation.set_audience(&[AUDIENCE]);
    c.bench_function("hs256_shared_secret", |b| {
        b.iter(|| {
            jsonwebtoken::decode::<Value>(black_box(&hs_token), &hs_key, &hs_validation)
                .expect("valid")
        })
    });

    // (c) A Tessera RS256 token, key set warm.
    let claims = json!({
        "iss": &issuer, "sub": "user-1", "aud": AUDIENCE,
        "iat": now, "nbf": now, "exp": now + 3600, "client_id": "gw", "jti": "Vx3aaaaaaaaaaaaaaaaaaa",
        "roles": ["admin"], "act": {"sub": "gw"}, "ctx": {"method": "GET", "path": "/branches/1/products"},
        "email": "admin@example.com"
    });
    let mut header = Header::new(Algorithm::RS256);
    header.typ = Some("at+jwt".into());
    header.kid = jwk["kid"].as_str().map(str::to_owned);
    let token = jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_rsa_pem(PEM.as_bytes()).expect("pem"),
    )
    .expect("sign");
    let jwks_uri = format!("{issuer}/jwks");
    let verifier = Verifier::builder(&issuer, AUDIENCE)
        .jwks_uri(&jwks_uri)
        .build()
        .expect("verifier");
    runtime
        .block_on(verifier.verify(&token))
        .expect("warm the key cache");
    c.bench_function("rs256_tessera_verify", |b| {
        b.iter(|| {
            runtime
                .block_on(verifier.verify(black_box(&token)))
                .expect("valid")
        })
    });

    // (d) The same, following the feed (10,000 live revocations held).
    let following = runtime.block_on(async {
        let v = Verifier::builder(&issuer, AUDIENCE)
            .jwks_uri(&jwks_uri)
            .revocation_feed("svc", "svc-secret")
            .build()
            .expect("verifier");
        while v.revocation_feed_connected() != Some(true) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        v.verify(&token).await.expect("warm the key cache");
        // The snapshot is read: a revoked token is refused.
        let revoked = {
            let mut last = claims.clone();
            last["jti"] = json!(format!("revoked-{}", REVOCATIONS - 1));
            jsonwebtoken::encode(
                &header,
                &last,
                &EncodingKey::from_rsa_pem(PEM.as_bytes()).expect("pem"),
            )
            .expect("sign")
        };
        while v.verify(&revoked).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        v
    });
    c.bench_function("rs256_tessera_verify_feed", |b| {
        b.iter(|| {
            runtime
                .block_on(following.verify(black_box(&token)))
                .expect("valid")
        })
    });

    // (e) Cold start: a fresh verifier, discovery, JWKS fetch, first verification.
    c.bench_function("cold_start_discover_first_verify", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let v = Verifier::builder(&issuer, AUDIENCE)
                    .discover()
                    .await
                    .expect("discovery");
                v.verify(black_box(&token)).await.expect("valid")
            })
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
