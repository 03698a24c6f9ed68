//! The exchange without HTTP: real keystore (a temp folder with the fixture key), static
//! sessions, the memory denylist — and a Redis or session upstream that is down.

use std::sync::Arc;

use super::*;
use crate::config::{ClientSettings, Settings, StaticSessionSettings};
use crate::denylist::Revocation;
use crate::infra::clock::ManualClock;

const NOW: UnixTime = 1_800_000_000;
const SESSION: &str = "alice-session-token";

struct Fixture {
    exchanger: Exchanger,
    client: Client,
    denylist: Arc<DenylistStore>,
    _dir: tempfile::TempDir,
}

fn settings(dir: &std::path::Path) -> Settings {
    let mut s = Settings::default();
    s.keys.dir = dir.to_owned();
    s.keys.rotation_interval_seconds = 0;
    s.token.anonymous_roles = vec!["guest".into()];
    s.sessions.static_sessions = vec![StaticSessionSettings {
        token: SESSION.into(),
        sub: "alice".into(),
        roles: vec!["admin".into()],
        claims: serde_json::Map::new(),
    }];
    s
}

fn client(allow_anonymous: bool) -> Client {
    let c = ClientSettings {
        id: "gw".into(),
        secret_sha256: vec![crate::config::Sha256::from_bytes([0; 32])],
        allowed_audiences: vec!["catalog".into(), "inventory".into()],
        default_audience: Some("catalog".into()),
        allow_anonymous,
        scopes: vec!["read".into()],
        max_ttl_seconds: 0,
        rate_limit_per_second: 0,
        rate_limit_burst: 0,
        revocation_feed: false,
    };
    Client::from_settings(&c, &Settings::default())
}

async fn fixture(adjust: impl FnOnce(&mut Settings)) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys_dir = dir.path().join("keys");
    crate::keys::store::file::import_pem(
        &keys_dir,
        include_str!("../../tests/fixtures/rsa-2048-a.pem"),
        NOW - 60,
    )
    .expect("fixture key");
    let mut s = settings(&keys_dir);
    adjust(&mut s);
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(NOW));
    let keys = Arc::new(KeyService::open(&s, clock.clone()).await.expect("keystore"));
    let denylist = Arc::new(DenylistStore::from_settings(&s).expect("denylist"));
    let sessions = Arc::new(SessionBackend::from_settings(&s).expect("sessions"));
    let exchanger = Exchanger::new(
        Arc::new(crate::clients::Clients::from_settings(&s)),
        sessions,
        denylist.clone(),
        keys,
        TokenIssuer::new(&s.issuer, s.token.clock_skew_seconds),
        clock,
        s.token.anonymous_roles.clone(),
    );
    Fixture {
        exchanger,
        client: client(true),
        denylist,
        _dir: dir,
    }
}

fn claims(issued: &Issued) -> serde_json::Value {
    use base64::Engine as _;
    let payload = issued.access_token.split('.').nth(1).expect("payload");
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&json).expect("claims JSON")
}

fn session(token: &str) -> ExchangeRequest<'_> {
    ExchangeRequest {
        subject_token: Some(token),
        ..ExchangeRequest::default()
    }
}

#[tokio::test]
async fn a_session_is_exchanged_for_a_token_of_its_user() {
    let f = fixture(|_| {}).await;
    let issued = f
        .exchanger
        .exchange(&f.client, session(SESSION))
        .await
        .expect("issued");
    let c = claims(&issued);
    assert_eq!(c["sub"], "alice");
    assert_eq!(c["aud"], "catalog", "the default audience");
    assert_eq!(c["roles"], serde_json::json!(["admin"]));
    assert_eq!(c["act"]["sub"], "gw");
    assert_eq!(c["sid"], crate::sessions::sid_of_canonical(SESSION));
    assert_eq!(c["iat"], NOW - 5);
    assert_eq!(issued.expires_in, 600);
}

#[tokio::test]
async fn the_audience_and_scope_must_be_the_clients() {
    let f = fixture(|_| {}).await;
    let ask = |audience, scope| ExchangeRequest {
        audience,
        scope,
        ..ExchangeRequest::default()
    };
    assert!(matches!(
        f.exchanger
            .exchange(&f.client, ask(Some("billing"), None))
            .await,
        Err(ExchangeError::AudienceNotAllowed)
    ));
    assert!(matches!(
        f.exchanger
            .exchange(&f.client, ask(None, Some("write")))
            .await,
        Err(ExchangeError::ScopeNotAllowed)
    ));
    let issued = f
        .exchanger
        .exchange(&f.client, ask(Some("inventory"), Some("read read")))
        .await
        .expect("allowed");
    assert_eq!(issued.scope.as_deref(), Some("read"));
    assert_eq!(claims(&issued)["aud"], "inventory");
}

#[tokio::test]
async fn anonymous_exchanges_need_the_clients_permission() {
    let f = fixture(|_| {}).await;
    let issued = f
        .exchanger
        .exchange(&f.client, ExchangeRequest::default())
        .await
        .expect("anonymous");
    let c = claims(&issued);
    assert_eq!(c["sub"], "anonymous");
    assert_eq!(c["roles"], serde_json::json!(["guest"]));
    assert!(c.get("sid").is_none());
    assert!(matches!(
        f.exchanger
            .exchange(&client(false), ExchangeRequest::default())
            .await,
        Err(ExchangeError::AnonymousNotAllowed)
    ));
}

#[tokio::test]
async fn unknown_and_revoked_sessions_are_refused() {
    let f = fixture(|_| {}).await;
    assert!(matches!(
        f.exchanger
            .exchange(&f.client, session("nobody-knows-me"))
            .await,
        Err(ExchangeError::Session(SessionError::Rejected))
    ));
    let revocation = Revocation::Session {
        sid: crate::sessions::sid_of_canonical(SESSION),
    };
    crate::denylist::Denylist::revoke(&*f.denylist, &revocation, NOW)
        .await
        .expect("revoked");
    assert!(matches!(
        f.exchanger.exchange(&f.client, session(SESSION)).await,
        Err(ExchangeError::SessionRevoked)
    ));
}

#[tokio::test]
async fn a_denylist_that_cannot_answer_fails_closed_but_anonymous_still_works() {
    let f = fixture(|s| {
        s.denylist.backend = crate::config::DenylistBackend::Redis;
        s.redis.url = "redis://127.0.0.1:1".parse().expect("url");
        s.redis.timeout_ms = 50;
    })
    .await;
    assert!(matches!(
        f.exchanger.exchange(&f.client, session(SESSION)).await,
        Err(ExchangeError::Denylist(_))
    ));
    assert!(
        f.exchanger
            .exchange(&f.client, ExchangeRequest::default())
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_session_backend_that_cannot_answer_is_unavailable_not_a_refusal() {
    let f = fixture(|s| {
        s.sessions.backend = crate::config::SessionBackendKind::Http;
        s.sessions.http.mode = crate::config::HttpSessionMode::Userinfo;
        s.sessions.http.url = Some("http://127.0.0.1:1/userinfo".parse().expect("url"));
        s.sessions.http.timeout_ms = 200;
        s.sessions.claims = [("sub", "/sub"), ("roles", "/roles")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    })
    .await;
    assert!(matches!(
        f.exchanger.exchange(&f.client, session(SESSION)).await,
        Err(ExchangeError::Session(SessionError::Unavailable { .. }))
    ));
}

#[tokio::test]
async fn a_subject_token_type_the_backend_cannot_resolve_is_invalid_request() {
    let f = fixture(|_| {}).await;
    let access_token = ExchangeRequest {
        subject_token: Some(SESSION),
        subject_token_type: Some(crate::sessions::ACCESS_TOKEN_TYPE),
        ..ExchangeRequest::default()
    };
    assert!(matches!(
        f.exchanger.exchange(&f.client, access_token).await,
        Err(ExchangeError::InvalidRequest(_))
    ));
    let bogus = ExchangeRequest {
        subject_token_type: Some("urn:example:bogus"),
        ..ExchangeRequest::default()
    };
    assert!(matches!(
        f.exchanger.exchange(&f.client, bogus).await,
        Err(ExchangeError::InvalidRequest(_))
    ));
}
