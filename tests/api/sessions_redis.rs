//! The `redis` session backend against a real Redis holding sessions exactly as
//! express-session + connect-redis write them (`tests/fixtures/express-session.json` was
//! read out of Redis after a login through `examples/express-gateway`).

use serde_json::{Value, json};
use tessera::config::{SessionBackendKind, Settings};

use crate::helpers::*;
use crate::redis_support::*;

/// A 32-character express sid and its signed cookie value for the secret "keyboard cat",
/// computed in node exactly as cookie-signature does.
const SID: &str = "Qx8Yl2xA1mDdOqRZ2ZJkz9hP0JpVnzJc";
const SIGNED: &str =
    "s:Qx8Yl2xA1mDdOqRZ2ZJkz9hP0JpVnzJc.tCu4B5gim2dCDltuvqlZkI4BUgzT/peXh8jHYQOxJ8U";

fn fixture(expires_in_seconds: i64) -> Value {
    let mut session: Value =
        serde_json::from_str(include_str!("../fixtures/express-session.json")).expect("fixture");
    let expires = time::OffsetDateTime::now_utc() + time::Duration::seconds(expires_in_seconds);
    session["cookie"]["expires"] = Value::from(
        expires
            .format(&time::format_description::well_known::Rfc3339)
            .expect("format"),
    );
    session
}

struct Store {
    url: String,
    prefix: String,
}

impl Store {
    fn new(url: String) -> Self {
        Self {
            url,
            prefix: format!("{}sess:", unique_prefix()),
        }
    }

    fn configure(&self) -> impl FnOnce(&mut Settings) + use<> {
        let (url, prefix) = (self.url.clone(), self.prefix.clone());
        move |s| {
            s.sessions.backend = SessionBackendKind::Redis;
            s.sessions.redis.url = redis_url(&url);
            s.sessions.redis.key_prefix = prefix;
            s.sessions.redis.cookie_secrets =
                vec!["a rotated-in secret".into(), "keyboard cat".into()];
            for (claim, pointer) in [
                ("sub", "/user/id"),
                ("roles", "/user/registrations/0/roles"),
                ("email", "/user/email"),
                ("tenant", "/user/tenant"),
            ] {
                s.sessions.claims.insert(claim.into(), pointer.into());
            }
        }
    }

    /// Writes a session as connect-redis does: `SET <prefix><sid> <JSON> EX <ttl>`;
    /// returns the value written.
    async fn put(&self, sid: &str, session: &Value) -> String {
        let mut conn = redis_conn(&self.url).await;
        let value = session.to_string();
        let _: () = redis::cmd("SET")
            .arg(format!("{}{sid}", self.prefix))
            .arg(&value)
            .arg("EX")
            .arg(86_400)
            .query_async(&mut conn)
            .await
            .expect("set");
        value
    }
}

#[tokio::test]
async fn raw_signed_and_url_encoded_sids_resolve_to_one_user_and_one_sid() {
    let store = Store::new(shared_redis_url());
    store.put(SID, &fixture(3600)).await;
    let app = spawn_app_with(store.configure()).await;
    let encoded = SIGNED
        .replace(':', "%3A")
        .replace('/', "%2F")
        .replace('+', "%2B");
    for token in [SID, SIGNED, encoded.as_str()] {
        let jwt = app.token_for(Some(token)).await;
        let claims = app.verify(&jwt, "product-catalog").await;
        assert_eq!(claims["sub"], "user-1", "{token}");
        assert_eq!(claims["roles"], json!(["admin"]));
        assert_eq!(claims["email"], "admin@example.com");
        assert!(
            !claims.contains_key("tenant"),
            "a missing optional claim is absent"
        );
        assert_eq!(claims["sid"], tessera::sessions::sid_of_canonical(SID));
    }
}

#[tokio::test]
async fn bad_signatures_expired_and_missing_sessions_are_invalid_grant() {
    let store = Store::new(shared_redis_url());
    store.put(SID, &fixture(3600)).await;
    store.put("expired-session-id", &fixture(-1)).await;
    let mut no_user = fixture(3600);
    no_user["user"] = json!({"email": "x@example.com"});
    store.put("session-without-user", &no_user).await;
    let app = spawn_app_with(store.configure()).await;
    let forged = SIGNED.replace("tCu4", "tCu5");
    for token in [
        forged.as_str(),
        "s:Qx8Yl2xA1mDdOqRZ2ZJkz9hP0JpVnzJc",
        "expired-session-id",
        "session-without-user",
        "no-such-session",
    ] {
        let response = app.exchange_json(json!({"subject_token": token})).await;
        assert_oauth_error(response, 400, "invalid_grant").await;
    }
}

#[tokio::test]
async fn a_logout_takes_effect_at_once_and_tessera_never_writes_the_store() {
    let store = Store::new(shared_redis_url());
    let written = store.put(SID, &fixture(3600)).await;
    let app = spawn_app_with(store.configure()).await;
    app.token_for(Some(SIGNED)).await;

    let mut conn = redis_conn(&store.url).await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}*", store.prefix))
        .query_async(&mut conn)
        .await
        .expect("keys");
    assert_eq!(keys, vec![format!("{}{SID}", store.prefix)], "read-only");
    let stored: String = redis::cmd("GET")
        .arg(&keys[0])
        .query_async(&mut conn)
        .await
        .expect("get");
    assert_eq!(stored, written, "the session is untouched");

    let _: () = redis::cmd("DEL")
        .arg(&keys[0])
        .query_async(&mut conn)
        .await
        .expect("del");
    let response = app.exchange_json(json!({"subject_token": SIGNED})).await;
    assert_oauth_error(response, 400, "invalid_grant").await;
}

#[tokio::test]
async fn revoking_a_session_by_any_form_blocks_every_form() {
    let store = Store::new(shared_redis_url());
    store.put(SID, &fixture(3600)).await;
    let app = spawn_app_with(store.configure()).await;
    let jwt = app.token_for(Some(SID)).await;
    let response = app.admin_revoke(json!({"session": SIGNED})).await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.introspect(&jwt).await["active"], false);
    for token in [SID, SIGNED] {
        let response = app.exchange_json(json!({"subject_token": token})).await;
        assert_oauth_error(response, 400, "invalid_grant").await;
    }
}

#[tokio::test]
async fn a_session_store_that_is_down_gives_503_and_readyz_names_it() {
    let mut server = RedisServer::start();
    let store = Store::new(server.url());
    store.put(SID, &fixture(3600)).await;
    let app = spawn_app_with(store.configure()).await;
    app.token_for(Some(SID)).await;
    server.stop();
    let response = app.exchange_json(json!({"subject_token": SID})).await;
    assert_eq!(response.headers()["retry-after"], "1");
    assert_oauth_error(response, 503, "temporarily_unavailable").await;
    let (status, body) = app.readiness().await;
    assert_eq!(status, 503);
    assert!(
        body["checks"]["sessions"]
            .as_str()
            .expect("sessions check")
            .starts_with("error"),
        "{body}"
    );
    app.token_for(None).await;
}

#[tokio::test]
async fn access_tokens_are_not_session_ids() {
    let store = Store::new(shared_redis_url());
    let app = spawn_app_with(store.configure()).await;
    let response = app
        .exchange_json(json!({"subject_token": SID,
            "subject_token_type": "urn:ietf:params:oauth:token-type:access_token"}))
        .await;
    assert_oauth_error(response, 400, "invalid_request").await;
}
