//! Micro-benchmarks of the sign path, against the raw RSA ceiling of this machine.
//!
//! `cargo bench --bench sign` prints, per iteration:
//! - `raw_rsa_sign`: aws-lc-rs RS256-2048 over a token-sized message (the ceiling);
//! - `signer_sign_jwt`: our cached-key signer (header + base64 + signature);
//! - `issue_token`: the whole mint step of an exchange (claims, jti, JSON, sign);
//! - `jsonwebtoken_encode`: what re-parsing the key per token would cost.

use std::hint::black_box;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use criterion::{Criterion, criterion_group, criterion_main};
use rsa::RsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use serde_json::{Map, Value, json};
use tessera::keys::jwk::Jwk;
use tessera::keys::signer::Signer;
use tessera::tokens::{RequestContext, TokenIssuer, TokenRequest};

const PEM: &str = include_str!("../tests/fixtures/rsa-2048-a.pem");

fn bench(c: &mut Criterion) {
    let key = RsaPrivateKey::from_pkcs8_pem(PEM).expect("fixture");
    let der = key.to_pkcs8_der().expect("der");
    let jwk = Jwk::from_public_key(&key.to_public_key());
    let signer = Signer::from_pkcs8_der(&jwk.kid, der.as_bytes(), "at+jwt").expect("signer");
    let claims = json!({
        "iss": "http://127.0.0.1:8080", "sub": "user-1", "aud": "product-inventory",
        "iat": 1_700_000_000, "nbf": 1_700_000_000, "exp": 1_700_000_600,
        "client_id": "demo-gateway", "jti": "AAAAAAAAAAAAAAAAAAAAAA", "roles": ["admin"],
        "sid": "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU", "act": {"sub": "demo-gateway"},
        "email": "admin@example.com"
    });
    let claims_json = serde_json::to_vec(&claims).expect("json");

    let raw = RsaKeyPair::from_pkcs8(der.as_bytes()).expect("raw key");
    let rng = SystemRandom::new();
    let message = vec![b'a'; 400];
    let mut sig = vec![0u8; raw.public_modulus_len()];
    c.bench_function("raw_rsa_sign", |b| {
        b.iter(|| raw.sign(&RSA_PKCS1_SHA256, &rng, black_box(&message), &mut sig))
    });

    c.bench_function("signer_sign_jwt", |b| {
        b.iter(|| signer.sign_jwt(black_box(&claims_json)).expect("sign"))
    });

    let keyring = tessera::keys::single_key_keyring(PEM, "at+jwt").expect("keyring");
    let issuer = TokenIssuer::new("http://127.0.0.1:8080", 5);
    let roles = vec!["admin".to_owned()];
    let mut extra = Map::new();
    extra.insert("email".into(), Value::from("admin@example.com"));
    let ctx = RequestContext {
        method: "GET".into(),
        path: "/branches/1/products".into(),
    };
    c.bench_function("issue_token", |b| {
        b.iter(|| {
            issuer
                .issue(
                    &keyring,
                    &TokenRequest {
                        sub: "user-1",
                        roles: &roles,
                        extra: &extra,
                        sid: Some("47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"),
                        client_id: "demo-gateway",
                        audience: "product-inventory",
                        scope: None,
                        ctx: Some(&ctx),
                        ttl_seconds: 600,
                    },
                    black_box(1_700_000_000),
                )
                .expect("issue")
        })
    });

    let encoding = jsonwebtoken::EncodingKey::from_rsa_pem(PEM.as_bytes()).expect("pem");
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(jwk.kid.clone());
    c.bench_function("jsonwebtoken_encode", |b| {
        b.iter(|| jsonwebtoken::encode(&header, black_box(&claims), &encoding).expect("encode"))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
