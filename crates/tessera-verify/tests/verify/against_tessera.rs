//! Against a real Tessera: discovery, the actix middleware with its role guard, and
//! introspection seeing a revocation.

use std::time::Duration;

use actix_web::{App, HttpServer, web};
use tessera_verify::{Introspection, RequireToken, Verified, Verifier};

use crate::common::*;

#[tokio::test]
async fn discovery_middleware_roles_and_introspection_against_tessera() {
    let (tessera, _dir) = tessera().await;
    let verifier = Verifier::builder(&tessera, "product-inventory")
        .discover()
        .await
        .expect("discovery");
    let online = Verifier::builder(&tessera, "product-inventory")
        .introspection(Introspection::new("gw", "gw-secret").cache_ttl(Duration::from_millis(10)))
        .discover()
        .await
        .expect("discovery");
    let (v1, v2) = (verifier.clone(), online.clone());
    let server = HttpServer::new(move || {
        App::new()
            .service(
                web::resource("/admin")
                    .wrap(RequireToken::new(v1.clone()).role("admin"))
                    .route(web::get().to(|Verified(c): Verified| async move { c.sub })),
            )
            .service(
                web::resource("/online")
                    .wrap(RequireToken::new(v2.clone()))
                    .route(web::get().to(|Verified(c): Verified| async move { c.sub })),
            )
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .expect("bind");
    let service = format!("http://{}", server.addrs()[0]);
    tokio::spawn(server.run());
    let http = reqwest::Client::new();

    let admin = exchange(&tessera, Some("admin-session")).await;
    let response = http
        .get(format!("{service}/admin"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.expect("body"), "user-1");

    let anonymous = exchange(&tessera, None).await;
    let response = http
        .get(format!("{service}/admin"))
        .bearer_auth(&anonymous)
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), 403);
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer error=\"insufficient_scope\""
    );

    for auth in [None, Some("Bearer nonsense"), Some("Basic abc")] {
        let mut request = http.get(format!("{service}/admin"));
        if let Some(a) = auth {
            request = request.header("authorization", a);
        }
        let response = request.send().await.expect("get");
        assert_eq!(response.status(), 401, "{auth:?}");
        assert_eq!(
            response.headers()["www-authenticate"],
            "Bearer error=\"invalid_token\""
        );
    }

    // Online check: a revoked token is refused before it expires.
    let response = http
        .get(format!("{service}/online"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), 200);
    let revoked = http
        .post(format!("{tessera}/revoke"))
        .basic_auth("gw", Some("gw-secret"))
        .form(&[("token", admin.as_str())])
        .send()
        .await
        .expect("revoke");
    assert_eq!(revoked.status(), 200);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let response = http
        .get(format!("{service}/online"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), 401);
    let response = http
        .get(format!("{service}/admin"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("get");
    assert_eq!(
        response.status(),
        200,
        "offline verification does not see revocations"
    );
}
