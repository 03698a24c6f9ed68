//! The file keystore against a careless operator and another local user: a folder others
//! can write, a key planted by a real second Unix user (`nobody`, via `setpriv`), a
//! corrupted or deleted `keyring.json`. The last good keyring keeps serving, `/readyz`
//! says why not, a rotation is a 503 naming the keystore, start-up is refused.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tessera::http::Application;

use crate::helpers::*;

const FIXTURE_KEY_B: &str = include_str!("../fixtures/rsa-2048-b.pem");
const NOBODY: u32 = 65534;

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

/// Writes `contents` to `path` as user `nobody` (a real second Unix user), mode 0600.
fn write_as_nobody(path: &Path, contents: &str) {
    let mut child = Command::new("setpriv")
        .args([
            &format!("--reuid={NOBODY}"),
            &format!("--regid={NOBODY}"),
            "--clear-groups",
            "sh",
            "-c",
            "umask 077; cat > \"$1\"",
            "sh",
        ])
        .arg(path)
        .stdin(Stdio::piped())
        .spawn()
        .expect("setpriv (tests run as root)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(contents.as_bytes())
        .expect("write");
    assert!(
        child.wait().expect("setpriv").success(),
        "nobody writes {path:?}"
    );
}

/// `mv -f from to` as user `nobody`.
fn rename_as_nobody(from: &Path, to: &Path) {
    let status = Command::new("setpriv")
        .args([
            &format!("--reuid={NOBODY}"),
            &format!("--regid={NOBODY}"),
            "--clear-groups",
            "mv",
            "-f",
        ])
        .arg(from)
        .arg(to)
        .status()
        .expect("setpriv");
    assert!(status.success(), "nobody renames {from:?}");
}

/// Polls `/readyz` (bounded) until its `keystore` check satisfies `done`; returns it.
async fn readyz_until(app: &TestApp, what: &str, done: impl Fn(u16, &str) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = app.readiness().await;
        if done(
            status,
            body["checks"]["keystore"].as_str().unwrap_or_default(),
        ) {
            return body;
        }
        assert!(Instant::now() < deadline, "waiting until {what}: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn signing_kid(app: &TestApp) -> String {
    let jwt = app.token_for(Some(USER_SESSION)).await;
    jsonwebtoken::decode_header(&jwt)
        .expect("header")
        .kid
        .expect("kid")
}

async fn admin(app: &TestApp, method: reqwest::Method, path: &str) -> reqwest::Response {
    app.http
        .request(method, app.url(path))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"now": true}))
        .send()
        .await
        .expect("admin request")
}

/// A token signed by `pem` under `kid`, claiming what a real one would, plus admin.
fn forge(app: &TestApp, kid: &str, pem: &str) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    header.typ = Some("at+jwt".into());
    let t = now();
    let claims = json!({"iss": app.settings.issuer.as_str(), "sub": "user-2", "aud": "product-catalog",
        "iat": t - 5, "nbf": t - 5, "exp": t + 600, "jti": "forged-jti-0001",
        "client_id": CLIENT_ID, "roles": ["admin"], "act": {"sub": CLIENT_ID}});
    jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).expect("pem"),
    )
    .expect("sign")
}

#[tokio::test]
async fn a_key_planted_by_another_user_through_a_writable_folder_is_never_loaded() {
    let app = spawn_app_with(|s| s.keys.reload_interval_seconds = 1).await;
    let keys_dir = app.settings.keys.dir.clone();
    let real_kid = signing_kid(&app).await;
    assert_eq!(app.readiness().await.0, 200);

    // The attacker's key and a keyring naming it active a minute ago, the real one retired.
    let scratch = tempfile::tempdir().expect("tempdir");
    let planted_kid = tessera::keys::store::file::import_pem(scratch.path(), FIXTURE_KEY_B, 1)
        .expect("attacker key");
    let planted_pem =
        std::fs::read_to_string(scratch.path().join(format!("{planted_kid}.pem"))).expect("pem");
    let t = now() - 60;
    let forged_keyring = json!({"version": 1, "keys": [
        {"kid": real_kid, "created_at": 1_700_000_000, "activates_at": 1_700_000_000, "retires_at": t},
        {"kid": planted_kid, "created_at": t, "activates_at": t}]});

    // The careless operator: the folder is world-writable (and reachable).
    chmod(keys_dir.parent().expect("parent"), 0o755);
    chmod(&keys_dir, 0o777);
    readyz_until(
        &app,
        "the writable folder is refused",
        |status, keystore| status == 503 && keystore.contains("writable by group or others"),
    )
    .await;

    write_as_nobody(&keys_dir.join(format!("{planted_kid}.pem")), &planted_pem);
    let staged = keys_dir.join("keyring.json.planted");
    write_as_nobody(&staged, &forged_keyring.to_string());
    rename_as_nobody(&staged, &keys_dir.join("keyring.json"));

    // The operator tightens the folder; the planted files are still someone else's.
    chmod(&keys_dir, 0o700);
    let body = readyz_until(&app, "the planted files are refused", |status, keystore| {
        status == 503 && keystore.contains(&format!("owned by uid {NOBODY}"))
    })
    .await;
    assert_eq!(
        body["checks"]["keys"], "ok",
        "the last good keyring: {body}"
    );

    let jwks = app.jwks().await;
    let kids: Vec<_> = jwks
        .keys
        .iter()
        .filter_map(|k| k.common.key_id.clone())
        .collect();
    assert_eq!(
        kids,
        vec![real_kid.clone()],
        "only the real key is published"
    );
    let listed: Vec<Value> = admin(&app, reqwest::Method::GET, "/admin/keys")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["kid"], real_kid.as_str());
    assert_eq!(listed[0]["state"], "active");
    assert_eq!(
        signing_kid(&app).await,
        real_kid,
        "still signing with the real key"
    );
    let forged = forge(&app, &planted_kid, FIXTURE_KEY_B);
    assert_eq!(app.introspect(&forged).await, json!({"active": false}));

    let response = admin(&app, reqwest::Method::POST, "/admin/keys/rotate").await;
    let body = assert_oauth_error(response, 503, "temporarily_unavailable").await;
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("keystore")),
        "{body}"
    );

    // A restart on that folder is refused, naming the file and what to do.
    let err = Application::build(app.settings.clone())
        .await
        .err()
        .expect("start refused");
    let message = format!("{err:#}");
    assert!(
        message.contains(&format!("owned by uid {NOBODY}")),
        "{message}"
    );
    assert!(message.contains("keys.dir"), "{message}");
}

#[tokio::test]
async fn a_corrupted_keyring_fails_readyz_keeps_serving_and_a_rotation_is_a_503() {
    let app = spawn_app_with(|s| s.keys.reload_interval_seconds = 1).await;
    let keyring = app.settings.keys.dir.join("keyring.json");
    let good = std::fs::read_to_string(&keyring).expect("keyring");
    let kid = signing_kid(&app).await;

    std::fs::write(&keyring, "{\"version\": 1, \"keys\": [").expect("corrupt");
    let body = readyz_until(
        &app,
        "the corrupted keyring is reported",
        |status, keystore| status == 503 && keystore.contains("not a valid keyring file"),
    )
    .await;
    assert_eq!(body["status"], "unavailable");
    assert_eq!(signing_kid(&app).await, kid, "the last good keyring serves");
    let response = admin(&app, reqwest::Method::POST, "/admin/keys/rotate").await;
    let body = assert_oauth_error(response, 503, "temporarily_unavailable").await;
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("keystore")),
        "{body}"
    );

    std::fs::write(&keyring, good).expect("restore");
    readyz_until(
        &app,
        "the restored keyring is healthy",
        |status, keystore| status == 200 && keystore == "ok",
    )
    .await;
}

/// `tessera serve` on `keys_dir`; returns its exit status and stderr.
fn serve_on(keys_dir: &Path) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .arg("serve")
        .env_remove("TESSERA_CONFIG")
        .env("TESSERA__KEYS__DIR", keys_dir)
        .env("TESSERA__SERVER__LISTEN", "127.0.0.1:0")
        .env("TESSERA__LOG__LEVEL", "error")
        .output()
        .expect("run tessera");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn key_files_without_a_keyring_stop_start_up_with_one_line_saying_what_to_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys_dir = dir.path().join("keys");
    let kid = install_fixture_key(&keys_dir);
    std::fs::remove_file(keys_dir.join("keyring.json")).expect("rm");
    let (code, stderr) = serve_on(&keys_dir);
    assert_ne!(code, Some(0));
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains(&format!("{kid}.pem")), "{stderr}");
    assert!(
        stderr.contains("restore keyring.json from a backup"),
        "{stderr}"
    );
    let left: Vec<_> = std::fs::read_dir(&keys_dir)
        .expect("dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".pem"))
        .collect();
    assert_eq!(left, vec![format!("{kid}.pem")], "no new key was made");
}

#[test]
fn a_group_writable_key_folder_stops_start_up_with_one_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys_dir = dir.path().join("keys");
    install_fixture_key(&keys_dir);
    chmod(&keys_dir, 0o770);
    let (code, stderr) = serve_on(&keys_dir);
    assert_ne!(code, Some(0));
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("writable by group or others (mode 770)"),
        "{stderr}"
    );
    assert!(stderr.contains("chmod go-w"), "{stderr}");
}

/// Waits (bounded) until `path` contains `needle`; returns its text.
async fn file_until(path: &Path, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "waiting for {needle:?} in: {text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_key_that_no_rotation_recorded_is_logged_as_an_error_with_an_audit_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys_dir = dir.path().join("keys");
    install_fixture_key(&keys_dir);
    let log = dir.path().join("tessera.log");
    let port = closed_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .arg("serve")
        .env_remove("TESSERA_CONFIG")
        .env("TESSERA__KEYS__DIR", &keys_dir)
        .env("TESSERA__KEYS__RELOAD_INTERVAL_SECONDS", "1")
        .env("TESSERA__KEYS__ROTATION_INTERVAL_SECONDS", "0")
        .env("TESSERA__SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("TESSERA__LOG__LEVEL", "info")
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("tessera");
    file_until(&log, "tessera listening").await;

    // A well-formed key put in by hand (the folder is safe: same user, 0600), no rotation.
    let scratch = tempfile::tempdir().expect("tempdir");
    let kid =
        tessera::keys::store::file::import_pem(scratch.path(), FIXTURE_KEY_B, 1).expect("key");
    std::fs::copy(
        scratch.path().join(format!("{kid}.pem")),
        keys_dir.join(format!("{kid}.pem")),
    )
    .expect("copy");
    let keyring_path = keys_dir.join("keyring.json");
    let mut keyring: Value =
        serde_json::from_str(&std::fs::read_to_string(&keyring_path).expect("keyring"))
            .expect("json");
    keyring["keys"]
        .as_array_mut()
        .expect("keys")
        .push(json!({"kid": kid, "created_at": now(), "activates_at": now() + 1_000_000}));
    let staged = keys_dir.join("keyring.json.new");
    std::fs::write(&staged, keyring.to_string()).expect("write");
    chmod(&staged, 0o600);
    std::fs::rename(&staged, &keyring_path).expect("rename");

    let text = file_until(&log, "no rotation recorded").await;
    let _ = child.kill();
    let _ = child.wait();
    let error = text
        .lines()
        .find(|l| l.contains("no rotation recorded"))
        .expect("the error line");
    assert!(error.contains("ERROR") && error.contains(&kid), "{error}");
    assert!(
        text.lines()
            .any(|l| l.contains("tessera::audit") && l.contains("unrecorded") && l.contains(&kid)),
        "an audit record: {text}"
    );
}
