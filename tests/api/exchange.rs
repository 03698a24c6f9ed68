//! `POST /exchange` and `POST /oauth2/token`.

use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn exchange_returns_a_token_that_verifies_against_the_jwks() {
    let app = spawn_app().await;
    let response = app
        .exchange_json(json!({
            "subject_token": ADMIN_SESSION,
            "audience": "product-inventory",
            "scope": "inventory:read",
            "request": {"method": "GET", "path": "/branches/1/products"}
        }))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["pragma"], "no-cache");
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body["issued_token_type"],
        "urn:ietf:params:oauth:token-type:jwt"
    );
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 600);
    assert_eq!(body["scope"], "inventory:read");

    let jwt = body["access_token"].as_str().expect("token");
    let header = jsonwebtoken::decode_header(jwt).expect("header");
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));

    let claims = app.verify(jwt, "product-inventory").await;
    assert_eq!(claims["iss"], "http://127.0.0.1:8080");
    assert_eq!(claims["sub"], "user-1");
    assert_eq!(claims["aud"], "product-inventory");
    assert_eq!(claims["roles"], json!(["admin"]));
    assert_eq!(claims["scope"], "inventory:read");
    assert_eq!(claims["client_id"], CLIENT_ID);
    assert_eq!(claims["act"], json!({"sub": CLIENT_ID}));
    assert_eq!(
        claims["ctx"],
        json!({"method": "GET", "path": "/branches/1/products"})
    );
    assert_eq!(claims["email"], "admin@example.com");
    assert_eq!(
        claims["sid"],
        tessera::sessions::sid_of_canonical(ADMIN_SESSION)
    );
    assert_eq!(
        claims["jti"].as_str().expect("jti").len(),
        22,
        "128 bits base64url"
    );
    let (iat, nbf, exp) = (
        claims["iat"].as_i64().expect("iat"),
        claims["nbf"].as_i64().expect("nbf"),
        claims["exp"].as_i64().expect("exp"),
    );
    assert_eq!(iat, nbf);
    assert_eq!(exp - iat, 600 + 5, "ttl plus the backdating of iat");
    assert!(!jwt.contains(ADMIN_SESSION));
}

#[tokio::test]
async fn token_endpoint_accepts_the_rfc_8693_form_encoding() {
    let app = spawn_app().await;
    for path in ["/oauth2/token", "/exchange"] {
        let response = app
            .http
            .post(app.url(path))
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .form(&[
                ("grant_type", TOKEN_EXCHANGE),
                ("subject_token", USER_SESSION),
                (
                    "subject_token_type",
                    "urn:tessera:params:token-type:session",
                ),
                ("audience", "product-catalog"),
                (
                    "requested_token_type",
                    "urn:ietf:params:oauth:token-type:jwt",
                ),
            ])
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 200, "{path}");
        let body: Value = response.json().await.expect("json");
        assert!(body.get("scope").is_none(), "no scope asked, none granted");
        let claims = app
            .verify(
                body["access_token"].as_str().expect("token"),
                "product-catalog",
            )
            .await;
        assert_eq!(claims["sub"], "user-2");
        assert_eq!(claims["roles"], json!([]));
    }
}

#[tokio::test]
async fn client_secret_post_authenticates_like_basic() {
    let app = spawn_app().await;
    let response = app
        .http
        .post(app.url("/oauth2/token"))
        .form(&[
            ("grant_type", TOKEN_EXCHANGE),
            ("subject_token", USER_SESSION),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ])
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn anonymous_exchange_yields_an_anonymous_token_without_sid() {
    let app = spawn_app_with(|s| s.token.anonymous_roles = vec!["guest".into()]).await;
    let jwt = app.token_for(None).await;
    let claims = app.verify(&jwt, "product-catalog").await;
    assert_eq!(claims["sub"], "anonymous");
    assert_eq!(claims["roles"], json!(["guest"]));
    assert!(!claims.contains_key("sid"));
    assert!(!claims.contains_key("email"));
    assert!(!claims.contains_key("ctx"));
}

#[tokio::test]
async fn anonymous_exchange_is_unauthorized_client_without_allow_anonymous() {
    let app = spawn_app().await;
    let response = app
        .exchange_as(
            STRICT_CLIENT_ID,
            STRICT_CLIENT_SECRET,
            json!({"audience": "product-inventory"}),
        )
        .await;
    assert_oauth_error(response, 400, "unauthorized_client").await;
}

#[tokio::test]
async fn unknown_client_wrong_secret_and_no_credentials_get_the_same_invalid_client() {
    let app = spawn_app().await;
    let body = json!({"subject_token": ADMIN_SESSION});
    let attempts = [
        app.http
            .post(app.url("/exchange"))
            .basic_auth("nobody", Some(CLIENT_SECRET)),
        app.http
            .post(app.url("/exchange"))
            .basic_auth(CLIENT_ID, Some("wrong")),
        app.http.post(app.url("/exchange")),
        app.http
            .post(app.url("/exchange"))
            .header("authorization", "Basic ###"),
    ];
    let mut bodies = Vec::new();
    for attempt in attempts {
        let response = attempt.json(&body).send().await.expect("request");
        assert_eq!(
            response.headers()["www-authenticate"],
            "Basic realm=\"tessera\""
        );
        bodies.push(assert_oauth_error(response, 401, "invalid_client").await);
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "identical answers");
}

#[tokio::test]
async fn unknown_session_is_invalid_grant() {
    let app = spawn_app().await;
    let response = app
        .exchange_json(json!({"subject_token": "no-such-session"}))
        .await;
    assert_oauth_error(response, 400, "invalid_grant").await;
}

#[tokio::test]
async fn audience_and_scope_outside_the_client_grant_are_refused() {
    let app = spawn_app().await;
    let response = app
        .exchange_json(json!({"subject_token": ADMIN_SESSION, "audience": "billing"}))
        .await;
    assert_oauth_error(response, 400, "invalid_target").await;
    let response = app
        .exchange_json(json!({"subject_token": ADMIN_SESSION, "scope": "products:read admin"}))
        .await;
    assert_oauth_error(response, 400, "invalid_scope").await;

    // A client without default_audience must name one.
    let response = app
        .exchange_as(
            STRICT_CLIENT_ID,
            STRICT_CLIENT_SECRET,
            json!({"subject_token": ADMIN_SESSION}),
        )
        .await;
    assert_oauth_error(response, 400, "invalid_target").await;
}

#[tokio::test]
async fn ttl_is_capped_by_the_client_maximum() {
    let app = spawn_app().await;
    let response = app
        .exchange_as(
            STRICT_CLIENT_ID,
            STRICT_CLIENT_SECRET,
            json!({"subject_token": USER_SESSION, "audience": "product-inventory"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["expires_in"], 120);
}

#[tokio::test]
async fn token_typ_can_be_switched_for_old_verifiers() {
    let app = spawn_app_with(|s| s.token.typ = "JWT".into()).await;
    let jwt = app.token_for(Some(USER_SESSION)).await;
    let header = jsonwebtoken::decode_header(&jwt).expect("header");
    assert_eq!(header.typ.as_deref(), Some("JWT"));
}

#[tokio::test]
async fn every_token_gets_its_own_jti() {
    // With reuse on, a repeat exchange hands out the same young token (see token_reuse.rs).
    let app = spawn_app_with(|s| s.token.reuse_fraction = 0.0).await;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..20 {
        let jwt = app.token_for(Some(USER_SESSION)).await;
        let claims = app.verify(&jwt, "product-catalog").await;
        assert!(seen.insert(claims["jti"].as_str().expect("jti").to_owned()));
    }
}

#[tokio::test]
async fn malformed_requests_get_invalid_request_in_the_contract_format() {
    let app = spawn_app().await;
    let send = |content_type: &'static str, body: Vec<u8>| {
        app.http
            .post(app.url("/exchange"))
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let json_ct = "application/json";
    let form_ct = "application/x-www-form-urlencoded";
    let long_path = format!(
        r#"{{"request": {{"method": "GET", "path": "/{}"}}}}"#,
        "a".repeat(2048)
    );
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (json_ct, b"{not json".to_vec(), 400, "invalid_request"),
        (json_ct, br#"{"audience": 5}"#.to_vec(), 400, "invalid_request"),
        (json_ct, br#"{"audience": "a", "audience": "b"}"#.to_vec(), 400, "invalid_request"),
        (json_ct, br#"["subject_token"]"#.to_vec(), 400, "invalid_request"),
        (json_ct, br#"{"subject_token": ""}"#.to_vec(), 400, "invalid_request"),
        (json_ct, br#"{"subject_token": "x", "subject_token_type": "urn:other"}"#.to_vec(), 400, "invalid_request"),
        (
            json_ct,
            br#"{"subject_token": "x", "subject_token_type": "urn:ietf:params:oauth:token-type:access_token"}"#.to_vec(),
            400,
            "invalid_request",
        ),
        (json_ct, long_path.into_bytes(), 400, "invalid_request"),
        (json_ct, vec![b' '; 20_000], 413, "invalid_request"),
        (json_ct, vec![0xff, 0xfe], 400, "invalid_request"),
        ("text/plain", b"hello".to_vec(), 415, "invalid_request"),
        (form_ct, b"subject_token=x".to_vec(), 400, "invalid_request"),
        (form_ct, b"grant_type=client_credentials".to_vec(), 400, "unsupported_grant_type"),
        (
            form_ct,
            b"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&scope=a&scope=b".to_vec(),
            400,
            "invalid_request",
        ),
        (
            form_ct,
            b"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&actor_token=x".to_vec(),
            400,
            "invalid_request",
        ),
    ];
    for (content_type, body, status, error) in cases {
        let preview = String::from_utf8_lossy(&body[..body.len().min(60)]).into_owned();
        let response = send(content_type, body).await.expect("request");
        assert_eq!(response.status(), status, "{content_type} {preview}");
        let v: Value = response.json().await.expect("JSON error body");
        assert_eq!(v["error"], error, "{content_type} {preview}: {v}");
    }
    // A missing content type is refused too.
    let response = app
        .http
        .post(app.url("/exchange"))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .body("{}")
        .send()
        .await
        .expect("request");
    assert_oauth_error(response, 415, "invalid_request").await;
}

#[tokio::test]
async fn oversize_bodies_are_refused_even_without_content_length() {
    let app = spawn_app().await;
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..40).map(|_| Ok(vec![b' '; 1024])).collect();
    let response = app
        .http
        .post(app.url("/exchange"))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .expect("request");
    assert_oauth_error(response, 413, "invalid_request").await;
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_json() {
    let app = spawn_app().await;
    let response = app
        .http
        .get(app.url("/nope"))
        .send()
        .await
        .expect("request");
    assert_oauth_error(response, 404, "not_found").await;
    let response = app
        .http
        .get(app.url("/exchange"))
        .send()
        .await
        .expect("request");
    assert_oauth_error(response, 405, "method_not_allowed").await;
}

#[tokio::test]
async fn a_client_over_its_rate_limit_gets_slow_down_with_retry_after() {
    let app = spawn_app_with(|s| {
        s.clients[0].rate_limit_per_second = 1;
        s.clients[0].rate_limit_burst = 2;
    })
    .await;
    app.token_for(Some(USER_SESSION)).await;
    app.token_for(Some(USER_SESSION)).await;
    let response = app
        .exchange_json(json!({"subject_token": USER_SESSION}))
        .await;
    assert_eq!(response.headers()["retry-after"], "1");
    assert_oauth_error(response, 429, "slow_down").await;
    // Other clients are not affected.
    let response = app
        .exchange_as(
            STRICT_CLIENT_ID,
            STRICT_CLIENT_SECRET,
            json!({"subject_token": USER_SESSION, "audience": "product-inventory"}),
        )
        .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn an_address_that_keeps_failing_authentication_is_slowed_down() {
    let app = spawn_app_with(|s| {
        s.server.auth_failures_per_second = 1;
        s.server.auth_failures_burst = 3;
    })
    .await;
    for _ in 0..3 {
        let response = app
            .http
            .post(app.url("/exchange"))
            .basic_auth(CLIENT_ID, Some("guess"))
            .json(&json!({}))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 401);
    }
    // Even the right secret waits now: guessing is slow.
    let response = app.exchange_json(json!({})).await;
    assert_oauth_error(response, 429, "slow_down").await;
}

#[tokio::test]
async fn a_request_path_must_start_with_a_slash_and_be_visible_ascii() {
    let app = spawn_app().await;
    for path in [
        "products/1",
        "",
        "http://shop/products/1",
        "/products/1\r\nX-Forwarded-For: 10.0.0.1",
        "/products/\u{1b}[2J",
        "/products 1",
        "/products/\u{0}",
        "/produits/é",
    ] {
        let response = app
            .exchange_json(json!({"request": {"method": "GET", "path": path}}))
            .await;
        let body = assert_oauth_error(response, 400, "invalid_request").await;
        assert!(
            body["error_description"]
                .as_str()
                .is_some_and(|d| d.contains("request.path")),
            "{path:?}: {body}"
        );
    }
    let jwt = {
        let response = app
            .exchange_json(json!({"request": {"method": "GET", "path": "/produits/%C3%A9?q=%1B"}}))
            .await;
        assert_eq!(response.status(), 200);
        let v: Value = response.json().await.expect("json");
        v["access_token"].as_str().expect("token").to_owned()
    };
    let claims = app.verify(&jwt, "product-catalog").await;
    assert_eq!(
        claims["ctx"]["path"], "/produits/%C3%A9?q=%1B",
        "kept as sent"
    );
}
