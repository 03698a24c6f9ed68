//! The client-authentication failure limiter behind a shared address (NAT, load
//! balancer): buckets per (address, claimed client id), unknown ids sharing one per
//! address, and `server.trusted_proxies` for `X-Forwarded-For`.

use serde_json::json;

use crate::helpers::*;

fn limited(s: &mut tessera::config::Settings) {
    s.server.auth_failures_per_second = 1;
    s.server.auth_failures_burst = 3;
}

/// `POST /exchange` as `id`:`secret` with an optional `X-Forwarded-For`; the status.
async fn attempt(app: &TestApp, id: &str, secret: &str, forwarded: Option<&str>) -> u16 {
    let mut request = app
        .http
        .post(app.url("/exchange"))
        .basic_auth(id, Some(secret))
        .json(&json!({}));
    if let Some(xff) = forwarded {
        request = request.header("x-forwarded-for", xff);
    }
    request.send().await.expect("request").status().as_u16()
}

#[tokio::test]
async fn an_attackers_failures_do_not_lock_out_the_real_gateway_at_the_same_address() {
    let app = spawn_app_with(limited).await;
    // From the gateway's own address: unknown ids, and guesses at another client's secret.
    for (id, secret) in [
        ("attacker", "x"),
        ("admin", "y"),
        (STRICT_CLIENT_ID, "guess"),
    ] {
        for _ in 0..5 {
            let status = attempt(&app, id, secret, None).await;
            assert!(status == 401 || status == 429, "{id}: {status}");
        }
    }
    assert_eq!(
        attempt(&app, "yet-another", "z", None).await,
        429,
        "unknown ids share one bucket per address"
    );
    assert_eq!(
        attempt(&app, STRICT_CLIENT_ID, STRICT_CLIENT_SECRET, None).await,
        429,
        "the client whose secret was guessed waits"
    );
    for _ in 0..30 {
        assert_eq!(
            attempt(&app, CLIENT_ID, CLIENT_SECRET, None).await,
            200,
            "the real gateway is never locked out by others' failures"
        );
    }
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_right_most_untrusted_forwarded_address_is_the_callers() {
    let app = spawn_app_with(|s| {
        limited(s);
        s.server.trusted_proxies = vec!["127.0.0.0/8".parse().expect("cidr")];
    })
    .await;
    for _ in 0..3 {
        assert_eq!(
            attempt(&app, "attacker", "x", Some("203.0.113.7, 127.0.0.2")).await,
            401
        );
    }
    assert_eq!(
        attempt(&app, "attacker", "x", Some("203.0.113.7")).await,
        429
    );
    assert_eq!(
        attempt(&app, "someone", "x", Some("203.0.113.8")).await,
        401,
        "another caller behind the proxy has its own bucket"
    );
    assert_eq!(
        attempt(&app, "attacker", "x", Some("203.0.113.8, 203.0.113.7")).await,
        429,
        "a forged left part of X-Forwarded-For changes nothing"
    );
}

#[tokio::test]
async fn without_trusted_proxies_x_forwarded_for_is_ignored() {
    let app = spawn_app_with(limited).await;
    for i in 0..3 {
        let xff = format!("198.51.100.{i}");
        assert_eq!(attempt(&app, "attacker", "x", Some(&xff)).await, 401);
    }
    assert_eq!(
        attempt(&app, "attacker", "x", Some("198.51.100.99")).await,
        429
    );
}

async fn admin_keys(app: &TestApp, token: &str, forwarded: Option<&str>) -> reqwest::Response {
    let mut request = app.http.get(app.url("/admin/keys")).bearer_auth(token);
    if let Some(xff) = forwarded {
        request = request.header("x-forwarded-for", xff);
    }
    request.send().await.expect("admin request")
}

#[tokio::test]
async fn wrong_admin_tokens_are_slowed_down_per_address() {
    let app = spawn_app_with(|s| {
        limited(s);
        s.server.trusted_proxies = vec!["127.0.0.0/8".parse().expect("cidr")];
    })
    .await;
    let attacker = Some("203.0.113.7");
    for _ in 0..3 {
        let response = admin_keys(&app, "wrong", attacker).await;
        assert_oauth_error(response, 401, "invalid_token").await;
    }
    let response = admin_keys(&app, ADMIN_TOKEN, attacker).await;
    assert!(response.headers().contains_key("retry-after"));
    assert_oauth_error(response, 429, "slow_down").await;

    assert_eq!(
        admin_keys(&app, ADMIN_TOKEN, Some("203.0.113.8"))
            .await
            .status(),
        200,
        "another address is not affected"
    );
    assert_eq!(
        attempt(&app, CLIENT_ID, CLIENT_SECRET, attacker).await,
        200,
        "nor a gateway at the same address"
    );
}
