//! The seed articles' shop, on Tessera: a gateway that exchanges the user's session (or
//! nothing) for an internal JWT per request, a public `product-catalog` service (anonymous
//! tokens accepted, but only Tessera's) and a `product-inventory` service that requires the
//! `admin` role. The services verify offline with `tessera-verify`; none shares a secret.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;
use tessera_verify::{RequireToken, Verified, Verifier};

/// `product-catalog`: `GET /products/{id}` for anyone the gateway vouches for.
pub fn catalog(verifier: Verifier) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.service(
            web::resource("/products/{id}")
                .wrap(RequireToken::new(verifier))
                .route(web::get().to(
                    |id: web::Path<u32>, Verified(claims): Verified| async move {
                        HttpResponse::Ok().json(json!({
                            "product": {"id": *id, "name": "espresso beans", "price": 12.5},
                            "viewer": claims.sub,
                            "via": claims.act.map(|a| a.sub),
                        }))
                    },
                )),
        );
    }
}

/// `product-inventory`: `GET /branches/{id}/products`, role `admin` only. Its verifier
/// follows the revocation feed ([`inventory_verifier_from_env`]).
pub fn inventory(verifier: Verifier) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.service(
            web::resource("/branches/{id}/products")
                .wrap(RequireToken::new(verifier).role("admin"))
                .route(web::get().to(
                    |id: web::Path<u32>, Verified(claims): Verified| async move {
                        HttpResponse::Ok().json(json!({
                            "branch": *id,
                            "products": [{"id": 1, "name": "espresso beans", "stock": 12}],
                            "user": claims.sub,
                            "email": claims.extra.get("email"),
                            "roles": claims.roles,
                            "via": claims.act.map(|a| a.sub),
                        }))
                    },
                )),
        );
    }
}

/// Where the gateway sends what.
#[derive(Debug, Clone)]
pub struct Gateway {
    pub tessera_url: String,
    pub client_id: String,
    pub client_secret: String,
    pub catalog_url: String,
    pub inventory_url: String,
    pub http: reqwest::Client,
}

impl Gateway {
    /// Routes: `/products/{id}` → catalog, `/branches/{id}/products` → inventory. The
    /// user's session token comes in the `session` cookie (absent = anonymous).
    pub fn configure(self) -> impl FnOnce(&mut web::ServiceConfig) {
        move |cfg| {
            cfg.app_data(web::Data::new(self))
                .route(
                    "/products/{id}",
                    web::get().to(|req: HttpRequest, gw: web::Data<Gateway>| async move {
                        gw.forward(&req, "product-catalog", &gw.catalog_url).await
                    }),
                )
                .route(
                    "/branches/{id}/products",
                    web::get().to(|req: HttpRequest, gw: web::Data<Gateway>| async move {
                        gw.forward(&req, "product-inventory", &gw.inventory_url)
                            .await
                    }),
                );
        }
    }

    async fn forward(&self, req: &HttpRequest, audience: &str, service: &str) -> HttpResponse {
        let path = req.uri().path();
        let mut body = json!({"audience": audience, "request": {"method": req.method().as_str(), "path": path}});
        if let Some(session) = session_cookie(req) {
            body["subject_token"] = json!(session);
        }
        let exchanged = self
            .http
            .post(format!("{}/exchange", self.tessera_url))
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .json(&body)
            .send()
            .await;
        let exchanged = match exchanged {
            Ok(r) => r,
            Err(_) => {
                return HttpResponse::BadGateway().json(json!({"error": "tessera_unreachable"}));
            }
        };
        let status = exchanged.status().as_u16();
        let answer: serde_json::Value = exchanged.json().await.unwrap_or_default();
        if status != 200 {
            // invalid_grant: the session is unknown, expired or revoked — log in again.
            let code = if answer["error"] == "invalid_grant" {
                401
            } else {
                status
            };
            return HttpResponse::build(
                StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_GATEWAY),
            )
            .json(answer);
        }
        let token = answer["access_token"].as_str().unwrap_or_default();
        match self
            .http
            .get(format!("{service}{path}"))
            .bearer_auth(token)
            .send()
            .await
        {
            Ok(r) => {
                let status =
                    StatusCode::from_u16(r.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
                let body = r.bytes().await.unwrap_or_default();
                HttpResponse::build(status)
                    .content_type("application/json")
                    .body(body)
            }
            Err(_) => HttpResponse::BadGateway().json(json!({"error": "service_unreachable"})),
        }
    }
}

/// The `session` cookie's value, if the browser sent one.
fn session_cookie(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get_all(actix_web::http::header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix("session=").map(str::to_owned))
        .filter(|v| !v.is_empty())
}

/// `name` from the environment, or `default`.
pub fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// The verifier every service of the shop builds: Tessera's issuer and JWKS, one audience.
pub async fn verifier_from_env(audience: &str) -> anyhow::Result<Verifier> {
    let issuer = env("TESSERA_URL", "http://127.0.0.1:8080");
    Ok(Verifier::builder(&issuer, audience).discover().await?)
}

/// product-inventory's verifier: as [`verifier_from_env`], and it follows Tessera's
/// revocation feed as `$TESSERA_FEED_CLIENT_ID` (default `demo-inventory`), so a revoked
/// token is refused within a second, offline.
pub async fn inventory_verifier_from_env() -> anyhow::Result<Verifier> {
    let issuer = env("TESSERA_URL", "http://127.0.0.1:8080");
    Ok(Verifier::builder(&issuer, "product-inventory")
        .revocation_feed(
            &env("TESSERA_FEED_CLIENT_ID", "demo-inventory"),
            &env("TESSERA_FEED_CLIENT_SECRET", "demo-inventory-secret"),
        )
        .discover()
        .await?)
}
