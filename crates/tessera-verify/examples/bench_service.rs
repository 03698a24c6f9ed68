//! A small actix service for `benches/service.sh`: `GET /branches/1/products` behind one
//! of five ways of authenticating the caller, to measure what each costs per request.
//!
//!   bench_service serve MODE PORT   MODE: none | api-key | hs256 | rs256 | introspect
//!                                   (introspect: one `POST /introspect` per request)
//!   bench_service hs256-token       prints an HS256 token for the hs256 mode
//!   bench_service cold-start N      N fresh verifiers: discovery + JWKS + first verify
//!
//! `$TESSERA_URL` is the issuer (rs256, introspect, cold-start; default
//! `http://127.0.0.1:8080`), `$TOKEN` the token of cold-start. The API key and the HMAC
//! secret are this benchmark's own (never secrets of anything real). One actix worker.

use std::time::Instant;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;
use tessera_verify::{RequireToken, Verifier};

const AUDIENCE: &str = "product-inventory";
const API_KEY: &str = "bench-api-key-3a1f0c9e5b7d4e2f8a6c";
const HS256_SECRET: &[u8] = b"bench-hmac-secret-of-32-bytes!!!";
const HS256_ISSUER: &str = "https://fusionauth.bench";

fn products() -> HttpResponse {
    HttpResponse::Ok().json(json!([{"id": 1, "name": "Widget", "stock": 12},
                                   {"id": 2, "name": "Gadget", "stock": 3}]))
}

fn bearer(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

fn hs256_validation() -> Validation {
    let mut v = Validation::new(Algorithm::HS256);
    v.set_issuer(&[HS256_ISSUER]);
    v.set_audience(&[AUDIENCE]);
    v
}

fn issuer() -> String {
    std::env::var("TESSERA_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into())
}

async fn serve(mode: &str, port: u16) -> std::io::Result<()> {
    let verifier = match mode {
        "rs256" => Some(
            Verifier::builder(&issuer(), AUDIENCE)
                .discover()
                .await
                .expect("discovery"),
        ),
        "none" | "api-key" | "hs256" | "introspect" => None,
        other => panic!("unknown mode {other}"),
    };
    let mode = mode.to_owned();
    let hs_key = DecodingKey::from_secret(HS256_SECRET);
    let hs_validation = hs256_validation();
    HttpServer::new(move || {
        let app = App::new();
        match (&verifier, mode.as_str()) {
            (Some(verifier), _) => app.service(
                web::resource("/branches/1/products")
                    .wrap(RequireToken::new(verifier.clone()))
                    .route(web::get().to(|| async { products() })),
            ),
            (None, "api-key") => app.route(
                "/branches/1/products",
                web::get().to(|req: HttpRequest| async move {
                    let presented = req.headers().get("x-api-key").map(|v| v.as_bytes());
                    match presented {
                        Some(k) if bool::from(k.ct_eq(API_KEY.as_bytes())) => products(),
                        _ => HttpResponse::Unauthorized().finish(),
                    }
                }),
            ),
            (None, "hs256") => {
                let (key, validation) = (hs_key.clone(), hs_validation.clone());
                app.route(
                    "/branches/1/products",
                    web::get().to(move |req: HttpRequest| {
                        let ok = bearer(&req).is_some_and(|t| {
                            jsonwebtoken::decode::<Value>(t, &key, &validation).is_ok()
                        });
                        async move {
                            if ok {
                                products()
                            } else {
                                HttpResponse::Unauthorized().finish()
                            }
                        }
                    }),
                )
            }
            (None, "introspect") => {
                // No cache and no coalescing: one POST /introspect per request.
                let (http, url) = (reqwest::Client::new(), format!("{}/introspect", issuer()));
                app.route(
                    "/branches/1/products",
                    web::get().to(move |req: HttpRequest| {
                        let (http, url) = (http.clone(), url.clone());
                        let token = bearer(&req).map(str::to_owned);
                        async move { introspect(&http, &url, token).await }
                    }),
                )
            }
            (None, _) => app.route(
                "/branches/1/products",
                web::get().to(|| async { products() }),
            ),
        }
    })
    .workers(1)
    .bind(("127.0.0.1", port))?
    .run()
    .await
}

/// Asks Tessera's `/introspect` (as the demo's inventory client) whether `token` is active.
async fn introspect(http: &reqwest::Client, url: &str, token: Option<String>) -> HttpResponse {
    let Some(token) = token else {
        return HttpResponse::Unauthorized().finish();
    };
    let answer = http
        .post(url)
        .basic_auth("demo-inventory", Some("demo-inventory-secret"))
        .form(&[("token", token)])
        .send()
        .await;
    let Ok(answer) = answer.and_then(reqwest::Response::error_for_status) else {
        return HttpResponse::ServiceUnavailable().finish();
    };
    match answer.json::<Value>().await {
        Ok(body) if body["active"] == true => products(),
        Ok(_) => HttpResponse::Unauthorized().finish(),
        Err(_) => HttpResponse::ServiceUnavailable().finish(),
    }
}

fn hs256_token() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs();
    let claims = json!({"iss": HS256_ISSUER, "sub": "user-1", "aud": AUDIENCE, "iat": now,
                        "exp": now + 3600, "roles": ["admin"], "email": "admin@example.com"});
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(HS256_SECRET),
    )
    .expect("sign")
}

/// Discovery, JWKS fetch and first verification by `n` fresh verifiers, one after another.
async fn cold_start(n: usize) {
    let token = std::env::var("TOKEN").expect("$TOKEN");
    let mut ms: Vec<f64> = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        let verifier = Verifier::builder(&issuer(), AUDIENCE)
            .discover()
            .await
            .expect("discovery");
        verifier.verify(&token).await.expect("valid");
        ms.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    println!(
        "RESULT cold_start n={n} p50_ms={:.3} p99_ms={:.3}",
        at(0.5),
        at(0.99)
    );
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("serve") if args.len() == 3 => serve(&args[1], args[2].parse().expect("port")).await,
        Some("hs256-token") => {
            println!("{}", hs256_token());
            Ok(())
        }
        Some("cold-start") => {
            cold_start(args.get(1).and_then(|n| n.parse().ok()).unwrap_or(50)).await;
            Ok(())
        }
        _ => {
            eprintln!("usage: bench_service serve MODE PORT | hs256-token | cold-start [N]");
            std::process::exit(2)
        }
    }
}
