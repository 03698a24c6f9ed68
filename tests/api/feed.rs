//! `GET /revocations/stream`: who may follow it, what a subscriber sees (across replicas,
//! after a resume, after a restart, from the CLI), and its bounds.

use std::time::Duration;

use serde_json::{Value, json};
use tessera::config::{DenylistBackend, Settings};

use crate::helpers::*;
use crate::redis_support::*;

/// The client that follows the feed in these tests.
const FEED_ID: &str = STRICT_CLIENT_ID;
const FEED_SECRET: &str = STRICT_CLIENT_SECRET;
/// Generous: an event is expected within 1 s; this only bounds a failing test.
const PATIENCE: Duration = Duration::from_secs(15);

fn with_feed(s: &mut Settings) {
    s.clients[1].revocation_feed = true;
    s.server.shutdown_grace_seconds = 1;
}

fn on_redis(url: String, prefix: String) -> impl FnOnce(&mut Settings) {
    move |s| {
        with_feed(s);
        s.denylist.backend = DenylistBackend::Redis;
        s.redis.url = redis_url(&url);
        s.redis.key_prefix = prefix;
    }
}

/// One server-sent event.
#[derive(Debug, Clone)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: String,
    pub data: Value,
}

/// A subscriber reading `GET /revocations/stream`.
pub struct Subscriber {
    response: reqwest::Response,
    buffer: String,
}

impl Subscriber {
    pub async fn open(app: &TestApp, last_event_id: Option<&str>) -> Self {
        let response = request(app, FEED_ID, FEED_SECRET, last_event_id).await;
        assert_eq!(response.status(), 200, "subscribe");
        assert_eq!(
            response.headers()["content-type"].to_str().ok(),
            Some("text/event-stream")
        );
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next event (comments and `retry:` skipped); `None` when the stream ended.
    pub async fn next(&mut self) -> Option<SseEvent> {
        tokio::time::timeout(PATIENCE, self.next_unbounded())
            .await
            .expect("an event within the test's patience")
    }

    async fn next_unbounded(&mut self) -> Option<SseEvent> {
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut id, mut event, mut data) = (None, None, None);
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        id = Some(v.to_owned());
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        event = Some(v.to_owned());
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data = Some(serde_json::from_str(v).expect("data is JSON"));
                    }
                }
                if let Some(data) = data {
                    return Some(SseEvent {
                        id,
                        event: event.unwrap_or_else(|| "message".into()),
                        data,
                    });
                }
            }
            match self.response.chunk().await {
                Ok(Some(chunk)) => self
                    .buffer
                    .push_str(std::str::from_utf8(&chunk).expect("utf-8")),
                Ok(None) | Err(_) => return None,
            }
        }
    }

    /// The next `revocation` event, asserting that is what comes.
    pub async fn revocation(&mut self) -> SseEvent {
        let e = self.next().await.expect("the stream goes on");
        assert_eq!(e.event, "revocation", "{e:?}");
        assert!(e.id.is_some(), "{e:?}");
        e
    }
}

async fn request(
    app: &TestApp,
    id: &str,
    secret: &str,
    last_event_id: Option<&str>,
) -> reqwest::Response {
    let mut request = app
        .http
        .get(app.url("/revocations/stream"))
        .basic_auth(id, Some(secret));
    if let Some(last) = last_event_id {
        request = request.header("last-event-id", last);
    }
    request.send().await.expect("stream request")
}

fn sid_of(app_token_claims: &std::collections::HashMap<String, Value>) -> String {
    app_token_claims["sid"].as_str().expect("sid").to_owned()
}

#[tokio::test]
async fn the_feed_is_only_for_authenticated_clients_allowed_to_follow_it() {
    let app = spawn_app_with(with_feed).await;
    let anonymous = app
        .http
        .get(app.url("/revocations/stream"))
        .send()
        .await
        .expect("request");
    assert_oauth_error(anonymous, 401, "invalid_client").await;
    let wrong = request(&app, FEED_ID, "wrong-secret", None).await;
    assert_oauth_error(wrong, 401, "invalid_client").await;
    let not_allowed = request(&app, CLIENT_ID, CLIENT_SECRET, None).await;
    assert_oauth_error(not_allowed, 403, "access_denied").await;
}

#[tokio::test]
async fn with_the_memory_denylist_the_feed_serves_this_process() {
    let app = spawn_app_with(with_feed).await;
    let response = app.admin_revoke(json!({"jti": "before"})).await;
    assert_eq!(response.status(), 200);
    let mut sub = Subscriber::open(&app, None).await;
    let first = sub.revocation().await;
    assert_eq!(first.data["kind"], "jti");
    assert_eq!(
        first.data["id"], "before",
        "the live revocations come first"
    );

    app.admin_revoke(json!({"jti": "after"})).await;
    let second = sub.revocation().await;
    assert_eq!(second.data["id"], "after");
    assert!(second.data["expires_at"].as_i64() > Some(0));

    drop(sub);
    let mut resumed = Subscriber::open(&app, first.id.as_deref()).await;
    assert_eq!(resumed.revocation().await.data["id"], "after");

    let mut old = Subscriber::open(&app, Some("1-0")).await;
    let reset = old.next().await.expect("an event");
    assert_eq!(reset.event, "reset", "an id from before this process");
    assert_eq!(old.revocation().await.data["id"], "before");
}

#[tokio::test]
async fn a_subscriber_of_one_replica_sees_what_is_revoked_on_another() {
    let (url, prefix) = (shared_redis_url(), unique_prefix());
    let a = spawn_app_with(on_redis(url.clone(), prefix.clone())).await;
    let b = spawn_app_with(on_redis(url.clone(), prefix.clone())).await;
    let token = a.token_for(Some(ADMIN_SESSION)).await;
    let claims = a.verify(&token, "product-catalog").await;
    let mut sub = Subscriber::open(&b, None).await;

    assert_eq!(a.admin_revoke(json!({"jti": "jti-1"})).await.status(), 200);
    let jti = sub.revocation().await;
    assert_eq!(jti.data["kind"], "jti");
    assert_eq!(jti.data["id"], "jti-1");

    a.admin_revoke(json!({"session": ADMIN_SESSION})).await;
    let session = sub.revocation().await;
    assert_eq!(session.data["kind"], "session");
    assert_eq!(session.data["id"], sid_of(&claims), "named by its sid hash");
    assert!(!session.data.to_string().contains(ADMIN_SESSION));

    a.admin_revoke(json!({"subject": "user-1"})).await;
    let subject = sub.revocation().await;
    assert_eq!(subject.data["kind"], "subject");
    assert_eq!(subject.data["id"], "user-1");
    let iat = claims["iat"].as_i64().expect("iat");
    assert!(
        subject.data["issued_before"].as_i64() > Some(iat),
        "covers the token issued before: {subject:?}"
    );

    let ids: Vec<_> = [&jti, &session, &subject]
        .iter()
        .map(|e| e.id.clone().expect("id"))
        .collect();
    // The same ids on every replica: a subscriber of A gets the same stream.
    let mut on_a = Subscriber::open(&a, None).await;
    for id in &ids {
        assert_eq!(on_a.revocation().await.id.as_ref(), Some(id));
    }
}

#[tokio::test]
async fn resuming_with_last_event_id_misses_nothing_even_on_another_replica() {
    let (url, prefix) = (shared_redis_url(), unique_prefix());
    let a = spawn_app_with(on_redis(url.clone(), prefix.clone())).await;
    let b = spawn_app_with(on_redis(url.clone(), prefix.clone())).await;
    let mut sub = Subscriber::open(&b, None).await;
    a.admin_revoke(json!({"jti": "one"})).await;
    let one = sub.revocation().await;
    drop(sub);

    for jti in ["two", "three", "four"] {
        a.admin_revoke(json!({"jti": jti})).await;
    }
    let mut resumed = Subscriber::open(&a, one.id.as_deref()).await;
    for jti in ["two", "three", "four"] {
        assert_eq!(resumed.revocation().await.data["id"], jti);
    }
    a.admin_revoke(json!({"jti": "five"})).await;
    assert_eq!(resumed.revocation().await.data["id"], "five", "then live");

    let mut reset = Subscriber::open(&a, Some("not-an-id")).await;
    assert_eq!(reset.next().await.expect("event").event, "reset");
    assert_eq!(reset.revocation().await.data["id"], "one");
}

#[tokio::test]
async fn a_restart_loses_nothing() {
    let (url, prefix) = (shared_redis_url(), unique_prefix());
    let first = spawn_app_with(on_redis(url.clone(), prefix.clone())).await;
    first.admin_revoke(json!({"subject": "user-7"})).await;
    let mut sub = Subscriber::open(&first, None).await;
    let before = sub.revocation().await;
    drop(sub);
    first.stop().await;

    let second = spawn_app_with(on_redis(url.clone(), prefix.clone())).await;
    second.admin_revoke(json!({"jti": "after-restart"})).await;
    let mut fresh = Subscriber::open(&second, None).await;
    assert_eq!(fresh.revocation().await.data["id"], "user-7");
    assert_eq!(fresh.revocation().await.data["id"], "after-restart");
    let mut resumed = Subscriber::open(&second, before.id.as_deref()).await;
    assert_eq!(resumed.revocation().await.data["id"], "after-restart");
}

#[tokio::test]
async fn a_cli_revocation_reaches_a_subscriber() {
    let (url, prefix) = (shared_redis_url(), unique_prefix());
    let app = spawn_app_with(on_redis(url.clone(), prefix.clone())).await;
    let mut sub = Subscriber::open(&app, None).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("tessera.toml");
    std::fs::write(
        &config,
        format!(
            "[denylist]\nbackend = \"redis\"\n[redis]\nurl = \"{url}\"\nkey_prefix = \"{prefix}\"\n"
        ),
    )
    .expect("config");
    let out = tessera_cli(&config, &["revoke", "--subject", "user-cli"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let event = sub.revocation().await;
    assert_eq!(event.data["kind"], "subject");
    assert_eq!(event.data["id"], "user-cli");
}

#[tokio::test]
async fn subscribers_past_the_cap_are_refused_with_429() {
    let app = spawn_app_with(|s| {
        with_feed(s);
        s.server.max_feed_subscribers = 2;
    })
    .await;
    let first = Subscriber::open(&app, None).await;
    let _second = Subscriber::open(&app, None).await;
    let third = request(&app, FEED_ID, FEED_SECRET, None).await;
    assert_oauth_error(third, 429, "slow_down").await;
    drop(first);
    // The slot is given back once the server notices the closed connection: at the
    // latest when its next keep-alive (every 15 s) fails to be written.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let again = request(&app, FEED_ID, FEED_SECRET, None).await;
        if again.status() == 200 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "slot never freed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_redis_outage_ends_the_stream_and_the_subscriber_resumes_without_loss() {
    let mut redis = RedisServer::start();
    let app = spawn_app_with(on_redis(redis.url(), unique_prefix())).await;
    app.admin_revoke(json!({"jti": "first"})).await;
    let mut sub = Subscriber::open(&app, None).await;
    let first = sub.revocation().await;

    redis.stop();
    match sub.next().await {
        None => {}
        Some(e) => assert_eq!(e.event, "error", "{e:?}"),
    }
    let refused = request(&app, FEED_ID, FEED_SECRET, None).await;
    assert_oauth_error(refused, 503, "temporarily_unavailable").await;

    redis.resume();
    // Redis restarted empty here (no persistence): what matters is that the stream is
    // followed again and a new revocation arrives.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut resumed = loop {
        let response = request(&app, FEED_ID, FEED_SECRET, first.id.as_deref()).await;
        if response.status() == 200 {
            break Subscriber {
                response,
                buffer: String::new(),
            };
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "feed never came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    app.admin_revoke(json!({"jti": "second"})).await;
    let mut next = resumed.next().await.expect("event");
    if next.event == "reset" {
        next = resumed.next().await.expect("event");
    }
    assert_eq!(next.data["id"], "second");
}
