//! Revocation as callers see it: `/revoke`, `/introspect`, `/admin/revocations`, the
//! exchange check. Each scenario runs on the memory denylist, on a real Redis and on a
//! real Redis Cluster.

use std::sync::Arc;

use serde_json::{Value, json};
use tessera::config::{DenylistBackend, Settings};
use tessera::infra::clock::ManualClock;

use crate::helpers::*;
use crate::redis_support::*;

/// Where the denylist of a scenario lives.
#[derive(Clone)]
enum Backend {
    Memory,
    Redis(String),
    Cluster(Vec<String>),
}

impl Backend {
    fn apply(&self, s: &mut Settings, prefix: &str) {
        match self {
            Self::Memory => {}
            Self::Redis(url) => {
                s.denylist.backend = DenylistBackend::Redis;
                s.redis.url = redis_url(url);
                s.redis.key_prefix = prefix.to_owned();
            }
            Self::Cluster(nodes) => {
                s.denylist.backend = DenylistBackend::Redis;
                s.redis.cluster = true;
                s.redis.nodes = nodes.iter().map(|n| redis_url(n)).collect();
                s.redis.key_prefix = prefix.to_owned();
            }
        }
    }

    async fn spawn(&self) -> TestApp {
        let prefix = unique_prefix();
        let me = self.clone();
        spawn_app_with(move |s| me.apply(s, &prefix)).await
    }

    async fn spawn_with_clock(&self, clock: Arc<ManualClock>) -> TestApp {
        let prefix = unique_prefix();
        let me = self.clone();
        spawn_app_with_clock(move |s| me.apply(s, &prefix), clock).await
    }
}

async fn a_client_revokes_its_own_token(backend: Backend) {
    let app = backend.spawn().await;
    let jwt = app.token_for(Some(ADMIN_SESSION)).await;
    let active = app.introspect(&jwt).await;
    assert_eq!(active["active"], true);
    assert_eq!(active["token_type"], "Bearer");
    assert_eq!(active["sub"], "user-1");
    assert_eq!(active["client_id"], CLIENT_ID);
    assert_eq!(active["roles"], json!(["admin"]));

    let response = app
        .http
        .post(app.url("/revoke"))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[("token", jwt.as_str()), ("token_type_hint", "access_token")])
        .send()
        .await
        .expect("revoke");
    assert_eq!(response.status(), 200);
    assert_eq!(app.introspect(&jwt).await, json!({"active": false}));

    // Other tokens of the same session live on.
    let other = app.token_for(Some(ADMIN_SESSION)).await;
    assert_eq!(app.introspect(&other).await["active"], true);
}

async fn a_client_cannot_revoke_another_clients_token(backend: Backend) {
    let app = backend.spawn().await;
    let jwt = app.token_for(Some(USER_SESSION)).await;
    let response = app
        .http
        .post(app.url("/revoke"))
        .basic_auth(STRICT_CLIENT_ID, Some(STRICT_CLIENT_SECRET))
        .form(&[("token", jwt.as_str())])
        .send()
        .await
        .expect("revoke");
    assert_eq!(response.status(), 200, "RFC 7009: 200 regardless");
    assert_eq!(app.introspect(&jwt).await["active"], true);
}

async fn a_revoked_session_kills_its_tokens_and_its_exchanges(backend: Backend) {
    let app = backend.spawn().await;
    let admin_jwt = app.token_for(Some(ADMIN_SESSION)).await;
    let user_jwt = app.token_for(Some(USER_SESSION)).await;
    let response = app
        .admin_revoke(json!({"session": ADMIN_SESSION, "reason": "stolen laptop"}))
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["kind"], "session");
    assert_eq!(
        body["id"],
        tessera::sessions::sid_of_canonical(ADMIN_SESSION)
    );
    assert_eq!(body["expires_in"], 86_400);
    assert!(
        !body.to_string().contains(ADMIN_SESSION),
        "never echo the session token"
    );

    assert_eq!(app.introspect(&admin_jwt).await["active"], false);
    assert_eq!(app.introspect(&user_jwt).await["active"], true);
    let response = app
        .exchange_json(json!({"subject_token": ADMIN_SESSION}))
        .await;
    assert_oauth_error(response, 400, "invalid_grant").await;
    app.token_for(Some(USER_SESSION)).await;
}

/// An incident responder holds a JWT, not the session token: its `sid` claim revokes the
/// session just as the token would.
async fn a_session_revoked_by_the_sid_claim_of_its_token_is_dead(backend: Backend) {
    let app = backend.spawn().await;
    let jwt = app.token_for(Some(ADMIN_SESSION)).await;
    let user_jwt = app.token_for(Some(USER_SESSION)).await;
    let sid = app.introspect(&jwt).await["sid"]
        .as_str()
        .expect("sid")
        .to_owned();
    let response = app
        .admin_revoke(json!({"sid": sid, "reason": "seen in an incident"}))
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["kind"], "session");
    assert_eq!(body["id"], sid);

    assert_eq!(app.introspect(&jwt).await["active"], false);
    let response = app
        .exchange_json(json!({"subject_token": ADMIN_SESSION}))
        .await;
    assert_oauth_error(response, 400, "invalid_grant").await;
    assert_eq!(app.introspect(&user_jwt).await["active"], true);
}

async fn a_revoked_subject_kills_earlier_tokens_but_not_later_ones(backend: Backend) {
    let clock = Arc::new(ManualClock::new(1_800_000_000));
    let app = backend.spawn_with_clock(clock.clone()).await;
    let before = app.token_for(Some(ADMIN_SESSION)).await;
    let other_user = app.token_for(Some(USER_SESSION)).await;
    let response = app.admin_revoke(json!({"subject": "user-1"})).await;
    assert_eq!(response.status(), 200);
    clock.advance(1);
    let after = app.token_for(Some(ADMIN_SESSION)).await;
    assert_eq!(app.introspect(&before).await["active"], false);
    assert_eq!(
        app.introspect(&after).await["active"],
        true,
        "issued a second after: lives"
    );
    assert_eq!(app.introspect(&other_user).await["active"], true);
}

async fn a_revoked_jti_kills_that_token_only(backend: Backend) {
    let app = backend.spawn().await;
    let jwt = app.token_for(Some(USER_SESSION)).await;
    // Another audience: another token (the same request would reuse the first one).
    let response = app
        .exchange_json(json!({"subject_token": USER_SESSION, "audience": "product-inventory"}))
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    let twin = body["access_token"].as_str().expect("token").to_owned();
    let jti = app.introspect(&jwt).await["jti"]
        .as_str()
        .expect("jti")
        .to_owned();
    let response = app.admin_revoke(json!({"jti": jti})).await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.introspect(&jwt).await["active"], false);
    assert_eq!(app.introspect(&twin).await["active"], true);
}

/// Token reuse never hands out a token the denylist covers: after `/revoke` of it, after
/// its subject's revocation, after its session's (then the exchange is refused).
async fn a_revoked_token_is_never_handed_out_again(backend: Backend) {
    let clock = Arc::new(ManualClock::new(1_800_000_000));
    let app = backend.spawn_with_clock(clock.clone()).await;
    let exchange = async || {
        let response = app
            .exchange_json(json!({"subject_token": ADMIN_SESSION}))
            .await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.expect("json");
        body["access_token"].as_str().expect("token").to_owned()
    };
    let first = exchange().await;
    assert_eq!(
        exchange().await,
        first,
        "a repeat exchange reuses the young token"
    );
    let response = app
        .http
        .post(app.url("/revoke"))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[("token", first.as_str())])
        .send()
        .await
        .expect("revoke");
    assert_eq!(response.status(), 200);
    let second = exchange().await;
    assert_ne!(second, first, "never the revoked token");
    assert_eq!(app.introspect(&second).await["active"], true);
    assert_eq!(exchange().await, second);

    let response = app.admin_revoke(json!({"subject": "user-1"})).await;
    assert_eq!(response.status(), 200);
    clock.advance(1);
    let third = exchange().await;
    assert!(
        third != first && third != second,
        "the subject's earlier tokens are dead"
    );
    assert_eq!(app.introspect(&third).await["active"], true);
    assert_eq!(exchange().await, third);

    let response = app.admin_revoke(json!({"session": ADMIN_SESSION})).await;
    assert_eq!(response.status(), 200);
    let response = app
        .exchange_json(json!({"subject_token": ADMIN_SESSION}))
        .await;
    assert_oauth_error(response, 400, "invalid_grant").await;
    // Anonymous tokens are reused too, and checked the same way.
    let anonymous = app.token_for(None).await;
    assert_eq!(app.token_for(None).await, anonymous);
    let jti = app.introspect(&anonymous).await["jti"].clone();
    let response = app.admin_revoke(json!({"jti": jti})).await;
    assert_eq!(response.status(), 200);
    assert_ne!(app.token_for(None).await, anonymous);
}

macro_rules! on_every_backend {
    ($($scenario:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test]
            async fn $scenario() {
                super::$scenario(super::Backend::Memory).await;
            })*
        }
        mod redis {
            $(#[tokio::test]
            async fn $scenario() {
                super::$scenario(super::Backend::Redis(super::shared_redis_url())).await;
            })*
        }
        mod redis_cluster {
            $(#[tokio::test]
            async fn $scenario() {
                let cluster = super::RedisCluster::start().await;
                super::$scenario(super::Backend::Cluster(cluster.urls())).await;
            })*
        }
    };
}

on_every_backend!(
    a_client_revokes_its_own_token,
    a_client_cannot_revoke_another_clients_token,
    a_revoked_session_kills_its_tokens_and_its_exchanges,
    a_session_revoked_by_the_sid_claim_of_its_token_is_dead,
    a_revoked_subject_kills_earlier_tokens_but_not_later_ones,
    a_revoked_jti_kills_that_token_only,
    a_revoked_token_is_never_handed_out_again,
);

#[tokio::test]
async fn introspection_reports_forged_expired_and_garbage_tokens_inactive() {
    let clock = Arc::new(ManualClock::new(1_800_000_000));
    let app = spawn_app_with_clock(|_| {}, clock.clone()).await;
    let jwt = app.token_for(Some(USER_SESSION)).await;
    let mut forged = jwt.clone();
    forged.pop();
    forged.push(if jwt.ends_with('A') { 'B' } else { 'A' });
    for token in [forged.as_str(), "not-a-jwt", "a.b.c"] {
        assert_eq!(app.introspect(token).await, json!({"active": false}));
    }
    clock.advance(601);
    assert_eq!(
        app.introspect(&jwt).await,
        json!({"active": false}),
        "expired"
    );
}

#[tokio::test]
async fn revoke_and_introspect_require_client_authentication_and_a_token() {
    let app = spawn_app().await;
    for path in ["/revoke", "/introspect"] {
        let response = app
            .http
            .post(app.url(path))
            .form(&[("token", "x")])
            .send()
            .await
            .expect("request");
        assert_oauth_error(response, 401, "invalid_client").await;
        let response = app
            .http
            .post(app.url(path))
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .form(&[("token_type_hint", "access_token")])
            .send()
            .await
            .expect("request");
        assert_oauth_error(response, 400, "invalid_request").await;
        let response = app
            .http
            .post(app.url(path))
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .json(&json!({"token": "x"}))
            .send()
            .await
            .expect("request");
        assert_oauth_error(response, 415, "invalid_request").await;
    }
    // Garbage is "revoked" without complaint (RFC 7009 §2.2).
    let response = app
        .http
        .post(app.url("/revoke"))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[("token", "garbage")])
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn the_admin_api_needs_the_admin_token_and_one_target() {
    let app = spawn_app().await;
    let url = app.url("/admin/revocations");
    let body = json!({"subject": "user-1"});
    for request in [
        app.http.post(&url).json(&body),
        app.http.post(&url).bearer_auth("wrong").json(&body),
        app.http
            .post(&url)
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .json(&body),
    ] {
        let response = request.send().await.expect("request");
        assert_oauth_error(response, 401, "invalid_token").await;
    }
    for bad in [
        json!({}),
        json!({"jti": "a", "subject": "b"}),
        json!({"subject": ""}),
        json!({"subject": "u", "extra": 1}),
        json!({"subject": 5}),
        json!({"sid": "not-a-sid"}),
        json!({"sid": format!("{}=", "A".repeat(42))}),
        json!({"sid": "A".repeat(43), "session": "x"}),
        json!({"session": "two words"}),
    ] {
        let response = app.admin_revoke(bad.clone()).await;
        assert_oauth_error(response, 400, "invalid_request").await;
    }

    let disabled = spawn_app_with(|s| s.admin.token_sha256 = None).await;
    let response = disabled.admin_revoke(body).await;
    assert_oauth_error(response, 401, "invalid_token").await;
}
