//! Key rotation as verifiers live it, on the real PostgreSQL keystore (own schema per
//! test) and the file keystore: replicas converge, only one rotates, old tokens keep
//! verifying, `--now` signs at once, restarts keep the keyring, the KEK is required.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tessera::config::{KeyStoreKind, Settings};
use tessera::infra::clock::{Clock, ManualClock};
use tessera::keys::KeyService;
use tessera::keys::record::KeyState;

use crate::helpers::*;
use crate::redis_support::unique_prefix;

const KEK: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const OTHER_KEK: &str = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";

fn pg_url() -> String {
    std::env::var("TESSERA_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A schema of this test's own.
fn unique_schema() -> String {
    unique_prefix()
        .replace("tessera-test:", "tessera_test_")
        .trim_end_matches(':')
        .to_owned()
}

fn on_postgres(schema: String) -> impl Fn(&mut Settings) + Clone {
    move |s: &mut Settings| {
        s.keys.store = KeyStoreKind::Postgres;
        s.keys.database_url = pg_url().parse().expect("a postgres URL");
        s.keys.database_schema = schema.clone();
        s.keys.encryption_key = KEK.parse().ok();
        s.keys.reload_interval_seconds = 1;
    }
}

async fn drop_schema(schema: &str) {
    use sqlx::Connection as _;
    if let Ok(mut conn) = sqlx::PgConnection::connect(&pg_url()).await {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
        )))
        .execute(&mut conn)
        .await;
    }
}

async fn admin_keys(app: &TestApp) -> Vec<Value> {
    let response = app
        .http
        .get(app.url("/admin/keys"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("admin keys");
    assert_eq!(response.status(), 200);
    response.json().await.expect("json")
}

async fn rotate(app: &TestApp, now: bool) -> reqwest::Response {
    app.http
        .post(app.url("/admin/keys/rotate"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"now": now}))
        .send()
        .await
        .expect("rotate")
}

async fn signing_kid(app: &TestApp) -> String {
    let jwt = app.token_for(Some(USER_SESSION)).await;
    jsonwebtoken::decode_header(&jwt)
        .expect("header")
        .kid
        .expect("kid")
}

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn replicas_on_one_postgres_keystore_converge_after_a_rotation_made_on_one() {
    let schema = unique_schema();
    let a = spawn_app_with(on_postgres(schema.clone())).await;
    let b = spawn_app_with(on_postgres(schema.clone())).await;
    let first = signing_kid(&a).await;
    assert_eq!(
        signing_kid(&b).await,
        first,
        "the second replica uses the first one's key"
    );

    let response = rotate(&a, true).await;
    assert_eq!(response.status(), 200);
    let new: Value = response.json().await.expect("json");
    assert_eq!(new["state"], "active");
    let new_kid = new["kid"].as_str().expect("kid").to_owned();
    assert_ne!(new_kid, first);
    assert_eq!(signing_kid(&a).await, new_kid, "--now signs at once");
    eventually("the other replica signs with the new key", async || {
        signing_kid(&b).await == new_kid
    })
    .await;
    drop_schema(&schema).await;
}

#[tokio::test]
async fn a_token_signed_before_a_rotation_verifies_with_the_jwks_fetched_after_it() {
    let schema = unique_schema();
    let app = spawn_app_with(on_postgres(schema.clone())).await;
    let before = app.token_for(Some(ADMIN_SESSION)).await;
    assert_eq!(rotate(&app, true).await.status(), 200);
    let after = app.token_for(Some(ADMIN_SESSION)).await;
    assert_eq!(
        app.jwks().await.keys.len(),
        2,
        "the retired key stays published"
    );
    app.verify(&before, "product-catalog").await;
    app.verify(&after, "product-catalog").await;
    assert_eq!(app.introspect(&before).await["active"], true);

    let keys = admin_keys(&app).await;
    let mut states: Vec<&str> = keys
        .iter()
        .map(|k| k["state"].as_str().expect("state"))
        .collect();
    states.sort_unstable();
    assert_eq!(states, ["active", "retired"]);
    let retired = keys
        .iter()
        .find(|k| k["state"] == "retired")
        .expect("retired");
    assert!(
        retired["retires_at"]
            .as_str()
            .expect("retires_at")
            .ends_with('Z'),
        "RFC 3339"
    );
    assert!(
        !serde_json::to_string(&keys)
            .expect("json")
            .contains("\"d\"")
    );
    drop_schema(&schema).await;
}

#[tokio::test]
async fn a_normal_rotation_publishes_first_and_signs_after_the_lead() {
    let schema = unique_schema();
    let app = spawn_app_with(on_postgres(schema.clone())).await;
    let old = signing_kid(&app).await;
    let response = rotate(&app, false).await;
    assert_eq!(response.status(), 200);
    let new: Value = response.json().await.expect("json");
    assert_eq!(new["state"], "pending");
    let jwks = app.jwks().await;
    assert!(
        jwks.find(new["kid"].as_str().expect("kid")).is_some(),
        "published before it signs"
    );
    assert_eq!(signing_kid(&app).await, old, "the old key still signs");

    let response = rotate(&app, false).await;
    let body = assert_oauth_error(response, 409, "conflict").await;
    assert!(
        body["error_description"]
            .as_str()
            .expect("description")
            .contains("already pending"),
        "{body}"
    );
    drop_schema(&schema).await;
}

#[tokio::test]
async fn the_jwks_never_holds_more_than_five_keys() {
    let schema = unique_schema();
    let app = spawn_app_with(on_postgres(schema.clone())).await;
    for _ in 0..6 {
        assert_eq!(rotate(&app, true).await.status(), 200);
    }
    assert_eq!(app.jwks().await.keys.len(), 5);
    let response = rotate(&app, false).await;
    let body = assert_oauth_error(response, 409, "conflict").await;
    assert!(
        body["error_description"]
            .as_str()
            .expect("d")
            .contains("possible from"),
        "{body}"
    );
    drop_schema(&schema).await;
}

#[tokio::test]
async fn a_restart_keeps_the_keyring_and_migrations_apply_twice() {
    let schema = unique_schema();
    let app = spawn_app_with(on_postgres(schema.clone())).await;
    let kid = signing_kid(&app).await;
    app.stop().await;
    let again = spawn_app_with(on_postgres(schema.clone())).await;
    assert_eq!(signing_kid(&again).await, kid);
    drop_schema(&schema).await;
}

#[tokio::test]
async fn private_keys_are_sealed_in_the_database_and_need_the_kek() {
    use sqlx::Connection as _;
    let schema = unique_schema();
    let app = spawn_app_with(on_postgres(schema.clone())).await;
    rotate(&app, false).await;

    let mut conn = sqlx::PgConnection::connect(&pg_url())
        .await
        .expect("postgres");
    let rows: Vec<(String, Vec<u8>)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT kek_id, ciphertext FROM \"{schema}\".tessera_keys"
    )))
    .fetch_all(&mut conn)
    .await
    .expect("rows");
    assert_eq!(rows.len(), 2);
    for (_, ciphertext) in &rows {
        assert!(
            !ciphertext
                .windows(4)
                .any(|w| w == [0x30, 0x82, 0x04, 0xbd] || w == b"PRIV"),
            "sealed, not DER or PEM"
        );
    }
    let events: Vec<(String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT actor, action FROM \"{schema}\".tessera_key_events ORDER BY id"
    )))
    .fetch_all(&mut conn)
    .await
    .expect("events");
    assert_eq!(
        events,
        [
            ("startup".to_owned(), "generate".to_owned()),
            ("admin".to_owned(), "generate".to_owned())
        ]
    );

    let dir = tempfile::tempdir().expect("tempdir");
    for (kek, expected) in [("", "keys.encryption_key"), (OTHER_KEK, "KEK")] {
        let mut settings = test_settings(dir.path());
        on_postgres(schema.clone())(&mut settings);
        settings.keys.encryption_key = kek.parse().ok();
        let result = tessera::http::Application::build(settings).await;
        let message = format!("{:#}", result.err().expect("start refused"));
        assert!(message.contains(expected), "{message}");
    }
    drop_schema(&schema).await;
}

#[tokio::test]
async fn concurrent_scheduled_rotations_on_two_instances_make_exactly_one_key() {
    let schema = unique_schema();
    let clock = Arc::new(ManualClock::new(1_900_000_000));
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = test_settings(dir.path());
    on_postgres(schema.clone())(&mut settings);
    settings.keys.rotation_interval_seconds = 7200;
    settings.keys.publish_lead_seconds = 1800;
    let a = KeyService::open(&settings, clock.clone()).await.expect("a");
    let b = KeyService::open(&settings, clock.clone()).await.expect("b");
    assert_eq!(a.list().await.len(), 1);

    clock.advance(7200 - 1800);
    let (ra, rb) = tokio::join!(a.tick(), b.tick());
    ra.expect("tick a");
    rb.expect("tick b");
    b.tick().await.expect("b sees a's key");
    let keys = a.list().await;
    assert_eq!(keys.len(), 2, "exactly one new key: {keys:?}");
    assert_eq!(b.list().await.len(), 2);
    let pending = keys
        .iter()
        .find(|k| k.state == KeyState::Pending)
        .expect("pending");
    assert_eq!(
        pending.record.activates_at,
        1_900_000_000 + 7200,
        "on schedule"
    );

    clock.set(pending.record.activates_at);
    a.tick().await.expect("tick");
    b.tick().await.expect("tick");
    for s in [&a, &b] {
        assert_eq!(
            s.current().active().kid(),
            pending.record.kid,
            "both switch at the activation time"
        );
    }
    assert_eq!(clock.now(), pending.record.activates_at);
    drop_schema(&schema).await;
}

#[tokio::test]
async fn replicas_sharing_a_key_folder_converge_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys_dir = dir.path().join("shared-keys");
    let shared = keys_dir.clone();
    let a = spawn_app_with(move |s| {
        s.keys.dir = shared.clone();
        s.keys.reload_interval_seconds = 1;
    })
    .await;
    let shared = keys_dir.clone();
    let b = spawn_app_with(move |s| {
        s.keys.dir = shared.clone();
        s.keys.reload_interval_seconds = 1;
    })
    .await;
    assert_eq!(signing_kid(&a).await, signing_kid(&b).await);
    let new: Value = rotate(&b, true).await.json().await.expect("json");
    let new_kid = new["kid"].as_str().expect("kid").to_owned();
    eventually("the other replica follows the folder", async || {
        signing_kid(&a).await == new_kid
    })
    .await;
    let audit = std::fs::read_to_string(keys_dir.join("audit.jsonl")).expect("audit log");
    assert!(audit.contains("\"actor\":\"admin\""), "{audit}");
}

#[tokio::test]
async fn the_keys_cli_lists_rotates_and_retires_on_postgres() {
    let schema = unique_schema();
    let app = spawn_app_with(on_postgres(schema.clone())).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("tessera.toml");
    std::fs::write(
        &config,
        format!(
            "[keys]\nstore = \"postgres\"\ndatabase_url = \"{}\"\ndatabase_schema = \"{schema}\"\nencryption_key = \"{KEK}\"\n",
            pg_url()
        ),
    )
    .expect("config");
    let cli = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
            .arg("--config")
            .arg(&config)
            .args(args)
            .output()
            .expect("run tessera")
    };
    let out = cli(&["keys", "rotate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pending = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(2)
        .expect("kid")
        .to_owned();
    let out = cli(&["keys", "list"]);
    let listing = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        listing.contains("active") && listing.contains("pending"),
        "{listing}"
    );
    eventually("the server publishes the CLI's key", async || {
        app.jwks().await.find(&pending).is_some()
    })
    .await;

    let out = cli(&["keys", "retire", &pending]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let active = signing_kid(&app).await;
    let out = cli(&["keys", "retire", &active]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("rotate first"));
    let out = cli(&["keys", "rewrap"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop_schema(&schema).await;
}
