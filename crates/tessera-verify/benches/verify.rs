//! What a service pays per request: `Verifier::verify` (key lookup in the cache, header
//! checks, signature and claims, claims into `Claims`) against the floor, a bare
//! `jsonwebtoken::decode` with a key and `Validation` already in hand, and against the
//! previous verifier's per-token work (a `Validation` rebuilt each time).
//!
//! `cargo bench -p tessera-verify --bench verify` (add `--profile dev` to reuse the test
//! build: dependencies are optimized there too, this crate is not).

use std::hint::black_box;

use actix_web::{App, HttpResponse, HttpServer, web};
use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Value, json};
use tessera_verify::{Claims, Verifier};

const PEM: &str = include_str!("../../../tests/fixtures/rsa-2048-a.pem");

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
    let url = runtime.block_on(async {
        let keys = json!({ "keys": [jwk.clone()] });
        let server = HttpServer::new(move || {
            let keys = keys.clone();
            App::new().route(
                "/jwks",
                web::get().to(move || {
                    let keys = keys.clone();
                    async move { HttpResponse::Ok().json(keys) }
                }),
            )
        })
        .workers(1)
        .bind("127.0.0.1:0")
        .expect("bind");
        let url = format!("http://{}/jwks", server.addrs()[0]);
        tokio::spawn(server.run());
        url
    });
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs();
    let claims = json!({
        "iss": "https://sts.test", "sub": "user-1", "aud": "product-inventory",
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

    let verifier = Verifier::builder("https://sts.test", "product-inventory")
        .jwks_uri(&url)
        .build()
        .expect("verifier");
    runtime
        .block_on(verifier.verify(&token))
        .expect("warm the key cache");

    let key = DecodingKey::from_rsa_components(
        jwk["n"].as_str().expect("n"),
        jwk["e"].as_str().expect("e"),
    )
    .expect("key");
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&["https://sts.test"]);
    validation.set_audience(&["product-inventory"]);

    c.bench_function("jsonwebtoken_decode_floor", |b| {
        b.iter(|| {
            jsonwebtoken::decode::<Claims>(black_box(&token), &key, &validation).expect("valid")
        })
    });
    c.bench_function("previous_verifier_path", |b| {
        // What tessera-verify did per token before: header, a fresh Validation, decode.
        b.iter(|| {
            let header = jsonwebtoken::decode_header(black_box(&token)).expect("header");
            assert!(header.kid.is_some());
            let mut validation = Validation::new(Algorithm::RS256);
            validation.leeway = 30;
            validation.validate_nbf = true;
            validation.set_issuer(&["https://sts.test"]);
            validation.set_audience(&["product-inventory"]);
            validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
            jsonwebtoken::decode::<Claims>(&token, &key, &validation).expect("valid")
        })
    });
    c.bench_function("verifier_verify", |b| {
        b.iter(|| {
            runtime
                .block_on(verifier.verify(black_box(&token)))
                .expect("valid")
        })
    });
    c.bench_function("verifier_verify_as_value", |b| {
        b.iter(|| {
            runtime
                .block_on(verifier.verify_as::<Value>(black_box(&token)))
                .expect("valid")
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
