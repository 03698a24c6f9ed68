//! Token reuse (API.md, "Token reuse") as gateways and operators see it: a repeat
//! exchange gets the same young token; any other claim, a changed session, a new active
//! key (API, CLI, another replica) or an old enough token means a new one; memory stays
//! bounded under a flood of distinct sessions. (The revocation cases run on every
//! denylist backend in revocation.rs.)

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tessera::config::{SessionBackendKind, Settings};
use tessera::infra::clock::ManualClock;

use crate::helpers::*;
use crate::redis_support::*;

const NOW: i64 = 1_800_000_000;

/// `POST /exchange` with `body`: the 200 response's JSON.
async fn exchange(app: &TestApp, body: Value) -> Value {
    let response = app.exchange_json(body).await;
    assert_eq!(response.status(), 200);
    response.json().await.expect("json")
}

fn token(answer: &Value) -> String {
    answer["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

fn kid(jwt: &str) -> String {
    jsonwebtoken::decode_header(jwt)
        .expect("header")
        .kid
        .expect("kid")
}

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_same_request_twice_gets_the_same_token_with_less_time_left() {
    let clock = Arc::new(ManualClock::new(NOW));
    let app = spawn_app_with_clock(|_| {}, clock.clone()).await;
    let body = json!({"subject_token": ADMIN_SESSION, "audience": "product-inventory",
        "scope": "products:read", "request": {"method": "GET", "path": "/products/1"}});
    let first = exchange(&app, body.clone()).await;
    assert_eq!(first["expires_in"], 600);
    clock.advance(1);
    let second = exchange(&app, body.clone()).await;
    assert_eq!(token(&second), token(&first));
    assert_eq!(second["expires_in"], 599, "the remaining lifetime");
    assert_eq!(second["scope"], "products:read");
    let claims = app.verify(&token(&second), "product-inventory").await;
    assert_eq!(claims["exp"], NOW + 600, "exp is not extended");
    // The form encoding at the token endpoint is the same exchange.
    let response = app
        .http
        .post(app.url("/oauth2/token"))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[
            ("grant_type", TOKEN_EXCHANGE),
            ("subject_token", ADMIN_SESSION),
            ("audience", "product-catalog"),
        ])
        .send()
        .await
        .expect("token endpoint");
    assert_eq!(response.status(), 200);
    let form: Value = response.json().await.expect("json");
    let json = exchange(&app, json!({"subject_token": ADMIN_SESSION})).await;
    assert_eq!(token(&json), token(&form));

    let metrics = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    for result in ["hit", "miss"] {
        let series = format!("tessera_token_reuse_total{{result=\"{result}\"}}");
        assert!(metrics.contains(&series), "{series} missing");
    }
}

#[tokio::test]
async fn another_audience_scope_context_or_user_gets_another_token() {
    let app = spawn_app().await;
    let bodies = [
        json!({"subject_token": ADMIN_SESSION}),
        json!({"subject_token": ADMIN_SESSION, "audience": "product-inventory"}),
        json!({"subject_token": ADMIN_SESSION, "scope": "products:read"}),
        json!({"subject_token": ADMIN_SESSION, "scope": "products:read inventory:read"}),
        json!({"subject_token": ADMIN_SESSION, "request": {"method": "GET", "path": "/a"}}),
        json!({"subject_token": ADMIN_SESSION, "request": {"method": "PUT", "path": "/a"}}),
        json!({"subject_token": USER_SESSION}),
        json!({}),
    ];
    let mut seen = std::collections::HashSet::new();
    for body in bodies {
        let first = token(&exchange(&app, body.clone()).await);
        assert!(seen.insert(first.clone()), "{body}: a token of its own");
        assert_eq!(token(&exchange(&app, body.clone()).await), first, "{body}");
    }
    // The strict client asks for the same user and audience: its own token.
    let response = app
        .exchange_as(
            STRICT_CLIENT_ID,
            STRICT_CLIENT_SECRET,
            json!({"subject_token": ADMIN_SESSION, "audience": "product-inventory"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert!(seen.insert(token(&response.json().await.expect("json"))));
}

/// The redis session backend reads the store on every exchange: changed roles are a new
/// token at once, a logout a refusal.
#[tokio::test]
async fn changed_session_claims_get_a_new_token() {
    let url = shared_redis_url();
    let prefix = format!("{}sess:", unique_prefix());
    let key = format!("{prefix}reuse-sid");
    let mut conn = redis_conn(&url).await;
    let put = async |conn: &mut redis::aio::MultiplexedConnection, roles: Value| {
        let session = json!({"cookie": {"path": "/"}, "user": {"id": "u-7", "roles": roles}});
        let _: () = redis::cmd("SET")
            .arg(&key)
            .arg(session.to_string())
            .arg("EX")
            .arg(3600)
            .query_async(conn)
            .await
            .expect("set");
    };
    put(&mut conn, json!(["reader"])).await;
    let (u, p) = (url.clone(), prefix.clone());
    let app = spawn_app_with(move |s: &mut Settings| {
        s.sessions.backend = SessionBackendKind::Redis;
        s.sessions.redis.url = redis_url(&u);
        s.sessions.redis.key_prefix = p;
        s.sessions.claims.insert("sub".into(), "/user/id".into());
        s.sessions
            .claims
            .insert("roles".into(), "/user/roles".into());
    })
    .await;
    let body = json!({"subject_token": "reuse-sid"});
    let first = token(&exchange(&app, body.clone()).await);
    assert_eq!(token(&exchange(&app, body.clone()).await), first);

    put(&mut conn, json!(["reader", "writer"])).await;
    let promoted = token(&exchange(&app, body.clone()).await);
    assert_ne!(promoted, first);
    let claims = app.verify(&promoted, "product-catalog").await;
    assert_eq!(claims["roles"], json!(["reader", "writer"]));
    assert_eq!(token(&exchange(&app, body.clone()).await), promoted);

    put(&mut conn, json!(["reader"])).await;
    let demoted = token(&exchange(&app, body.clone()).await);
    assert!(demoted != first && demoted != promoted);
    let claims = app.verify(&demoted, "product-catalog").await;
    assert_eq!(claims["roles"], json!(["reader"]));

    let _: () = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .expect("del");
    let response = app.exchange_json(body).await;
    assert_oauth_error(response, 400, "invalid_grant").await;
}

#[tokio::test]
async fn rotate_now_through_the_api_is_the_kid_of_the_very_next_exchange() {
    let app = spawn_app().await;
    let old = token(&exchange(&app, json!({"subject_token": USER_SESSION})).await);
    let response = app
        .http
        .post(app.url("/admin/keys/rotate"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"now": true}))
        .send()
        .await
        .expect("rotate");
    assert_eq!(response.status(), 200);
    let new: Value = response.json().await.expect("json");
    let next = token(&exchange(&app, json!({"subject_token": USER_SESSION})).await);
    assert_eq!(kid(&next), new["kid"].as_str().expect("kid"));
    assert_ne!(kid(&next), kid(&old));
}

/// Two replicas share a key folder: `tessera keys rotate --now` (the CLI, on the folder)
/// and an API rotation on one replica reach both through the keystore; the first exchange
/// on each after it switched carries the new kid.
#[tokio::test]
async fn rotate_now_by_the_cli_and_on_another_replica_ends_reuse_on_each() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys_dir = dir.path().join("shared-keys");
    install_fixture_key(&keys_dir);
    let replica = || {
        let shared = keys_dir.clone();
        spawn_app_with(move |s: &mut Settings| {
            s.keys.dir = shared;
            s.keys.reload_interval_seconds = 1;
        })
    };
    let (a, b) = (replica().await, replica().await);
    let body = json!({"subject_token": ADMIN_SESSION});
    let first_a = token(&exchange(&a, body.clone()).await);
    let first_b = token(&exchange(&b, body.clone()).await);
    assert_eq!(token(&exchange(&a, body.clone()).await), first_a);
    assert_eq!(token(&exchange(&b, body.clone()).await), first_b);
    let old_kid = kid(&first_a);

    let config = dir.path().join("tessera.toml");
    std::fs::write(
        &config,
        format!("[keys]\ndir = \"{}\"\n", keys_dir.display()),
    )
    .expect("config");
    let out = tessera_cli(&config, &["keys", "rotate", "--now"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let switched = async |app: &TestApp, old: &str| {
        // --now publishes and activates in one step: the first snapshot with a new key
        // in the JWKS signs with it.
        eventually("the replica loads the new key", async || {
            app.jwks().await.keys.len() > 1
                && app
                    .jwks()
                    .await
                    .keys
                    .iter()
                    .any(|k| k.common.key_id.as_deref().is_some_and(|id| id != old))
        })
        .await;
        let next = token(&exchange(app, json!({"subject_token": ADMIN_SESSION})).await);
        assert_ne!(
            kid(&next),
            old,
            "the very next exchange carries the new kid"
        );
        kid(&next)
    };
    let cli_kid = switched(&a, &old_kid).await;
    assert_eq!(switched(&b, &old_kid).await, cli_kid);

    let response = b
        .http
        .post(b.url("/admin/keys/rotate"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"now": true}))
        .send()
        .await
        .expect("rotate");
    assert_eq!(response.status(), 200);
    let api: Value = response.json().await.expect("json");
    let api_kid = api["kid"].as_str().expect("kid").to_owned();
    assert_eq!(
        kid(&token(&exchange(&b, body.clone()).await)),
        api_kid,
        "on the replica that rotated: at once"
    );
    eventually("the other replica loads the API's key", async || {
        a.jwks().await.find(&api_kid).is_some()
    })
    .await;
    assert_eq!(
        kid(&token(&exchange(&a, body.clone()).await)),
        api_kid,
        "on the other replica: the first exchange after it switched"
    );
}

#[tokio::test]
async fn reuse_fraction_zero_signs_every_exchange() {
    let app = spawn_app_with(|s| s.token.reuse_fraction = 0.0).await;
    let body = json!({"subject_token": USER_SESSION});
    let first = token(&exchange(&app, body.clone()).await);
    assert_ne!(token(&exchange(&app, body.clone()).await), first);
    let anonymous = app.token_for(None).await;
    assert_ne!(app.token_for(None).await, anonymous);
}

#[tokio::test]
async fn a_token_past_its_reuse_age_is_not_handed_out_again() {
    let clock = Arc::new(ManualClock::new(NOW));
    let app = spawn_app_with_clock(
        |s| {
            s.token.ttl_seconds = 4;
            s.token.reuse_fraction = 0.5;
        },
        clock.clone(),
    )
    .await;
    let body = json!({"subject_token": USER_SESSION});
    let first = exchange(&app, body.clone()).await;
    assert_eq!(first["expires_in"], 4);
    clock.advance(1);
    let young = exchange(&app, body.clone()).await;
    assert_eq!(token(&young), token(&first));
    assert_eq!(young["expires_in"], 3);
    clock.advance(1);
    let fresh = exchange(&app, body.clone()).await;
    assert_ne!(
        token(&fresh),
        token(&first),
        "age 2 of 4: past half its life"
    );
    assert_eq!(fresh["expires_in"], 4);
}

/// RSS of a process, from /proc, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .expect("proc status")
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS")
}

/// A flood of distinct sessions through a server process with a small cache: its RSS
/// stays flat (without the bound each kept token would add about 1 KiB).
#[tokio::test]
async fn a_flood_of_distinct_sessions_does_not_grow_memory_past_the_bound() {
    const WARM_UP: usize = 1_500;
    const FLOOD: usize = 6_000;
    let url = shared_redis_url();
    let prefix = format!("{}sess:", unique_prefix());
    let mut conn = redis_conn(&url).await;
    let mut pipe = redis::pipe();
    for i in 0..WARM_UP + FLOOD {
        let session = json!({"user": {"id": format!("user-{i}"), "roles": ["reader"]}});
        pipe.cmd("SET")
            .arg(format!("{prefix}sid-{i}"))
            .arg(session.to_string())
            .arg("EX")
            .arg(600)
            .ignore();
    }
    let _: () = pipe.query_async(&mut conn).await.expect("sessions");

    let dir = tempfile::tempdir().expect("tempdir");
    install_fixture_key(&dir.path().join("keys"));
    let port = closed_port();
    let config = dir.path().join("tessera.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[server]
listen = "127.0.0.1:{port}"
workers = 1
[log]
level = "warn"
[keys]
dir = "{keys}"
rotation_interval_seconds = 0
[token]
reuse_max_entries = 64
[sessions]
backend = "redis"
[sessions.redis]
url = "{url}"
key_prefix = "{prefix}"
[sessions.claims]
sub = "/user/id"
roles = "/user/roles"
[[clients]]
id = "{CLIENT_ID}"
secret_sha256 = "{secret}"
allowed_audiences = ["product-catalog"]
default_audience = "product-catalog"
"#,
            keys = dir.path().join("keys").display(),
            secret = hex::encode(tessera::config::Sha256::of_secret(CLIENT_SECRET).as_bytes()),
        ),
    )
    .expect("config");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .env_remove("TESSERA_CONFIG")
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    eventually("the server is ready", async || {
        http.get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;

    let flood = async |range: std::ops::Range<usize>| {
        let sessions: Vec<usize> = range.collect();
        for chunk in sessions.chunks(8) {
            let calls = chunk.iter().map(|i| {
                http.post(format!("{base}/exchange"))
                    .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
                    .json(&json!({"subject_token": format!("sid-{i}")}))
                    .send()
            });
            for response in futures_util::future::join_all(calls).await {
                assert_eq!(response.expect("exchange").status(), 200);
            }
        }
    };
    flood(0..WARM_UP).await;
    let before = rss_kib(pid);
    flood(WARM_UP..WARM_UP + FLOOD).await;
    let after = rss_kib(pid);
    let _ = child.kill();
    let _ = child.wait();
    let _: () = redis::cmd("EVAL")
        .arg("for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end")
        .arg(0)
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .expect("cleanup");
    // Unbounded, 6,000 more tokens would add ≥ 6 MiB.
    assert!(
        after <= before + 2 * 1024,
        "RSS grew from {before} KiB to {after} KiB over {FLOOD} distinct sessions"
    );
}
