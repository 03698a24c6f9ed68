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
    clock: Arc<ManualClock>,
    keys: Arc<KeyService>,
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
    let manual = Arc::new(ManualClock::new(NOW));
    let clock: Arc<dyn Clock> = manual.clone();
    let keys = Arc::new(KeyService::open(&s, clock.clone()).await.expect("keystore"));
    let denylist = Arc::new(DenylistStore::from_settings(&s).expect("denylist"));
    let sessions = Arc::new(SessionBackend::from_settings(&s).expect("sessions"));
    let exchanger = Exchanger::new(
        Arc::new(crate::clients::Clients::from_settings(&s)),
        sessions,
        denylist.clone(),
        keys.clone(),
        TokenIssuer::new(&s.issuer, s.token.clock_skew_seconds),
        clock,
        s.token.anonymous_roles.clone(),
    )
    .with_reuse(reuse::Reuse::new(
        s.token.reuse_fraction,
        s.token.reuse_max_entries,
        s.token.max_ttl_seconds,
    ));
    Fixture {
        exchanger,
        client: client(true),
        denylist,
        clock: manual,
        keys,
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

// Token reuse (API.md, "Token reuse").

impl Fixture {
    async fn exchange(&self, request: ExchangeRequest<'_>) -> Issued {
        self.exchanger
            .exchange(&self.client, request)
            .await
            .expect("issued")
    }

    async fn revoke(&self, revocation: Revocation) {
        crate::denylist::Denylist::revoke(&*self.denylist, &revocation, self.clock.now())
            .await
            .expect("revoked");
    }
}

#[tokio::test]
async fn a_repeat_exchange_hands_out_the_same_young_token() {
    let f = fixture(|_| {}).await;
    let first = f.exchange(session(SESSION)).await;
    assert!(!first.reused);
    f.clock.advance(10);
    let again = f.exchange(session(SESSION)).await;
    assert!(again.reused);
    assert_eq!(again.access_token, first.access_token);
    assert_eq!(again.jti, first.jti);
    assert_eq!(
        again.expires_in, 590,
        "the remaining lifetime; exp is not extended"
    );
    assert_eq!(claims(&again)["exp"], NOW + 600);

    f.clock.set(NOW + 299);
    assert_eq!(f.exchange(session(SESSION)).await.jti, first.jti);
    f.clock.set(NOW + 300);
    let fresh = f.exchange(session(SESSION)).await;
    assert!(
        !fresh.reused,
        "at half its lifetime a token is no longer handed out"
    );
    assert_ne!(fresh.jti, first.jti);
    assert_eq!(fresh.expires_in, 600);
    assert_eq!(f.exchange(session(SESSION)).await.jti, fresh.jti);
}

#[tokio::test]
async fn any_other_claim_is_another_token() {
    let f = fixture(|s| {
        s.sessions.static_sessions.push(StaticSessionSettings {
            token: "bob-session-token".into(),
            sub: "bob".into(),
            roles: vec!["admin".into()],
            claims: serde_json::Map::new(),
        });
    })
    .await;
    let ctx = |path: &str| crate::tokens::RequestContext {
        method: "GET".into(),
        path: path.into(),
    };
    let (p1, p2) = (ctx("/products/1"), ctx("/products/2"));
    let requests = [
        session(SESSION),
        ExchangeRequest {
            audience: Some("inventory"),
            ..session(SESSION)
        },
        ExchangeRequest {
            scope: Some("read"),
            ..session(SESSION)
        },
        ExchangeRequest {
            context: Some(&p1),
            ..session(SESSION)
        },
        ExchangeRequest {
            context: Some(&p2),
            ..session(SESSION)
        },
        session("bob-session-token"),
        ExchangeRequest::default(),
    ];
    let mut seen = std::collections::HashSet::new();
    for request in requests {
        let issued = f.exchange(request).await;
        assert!(!issued.reused);
        assert!(seen.insert(issued.jti.clone()));
        let again = f.exchange(request).await;
        assert!(again.reused, "each is reused for its own request");
        assert_eq!(again.jti, issued.jti);
    }
    // The same scope asked differently is the same granted scope, so the same token.
    let read_read = f
        .exchange(ExchangeRequest {
            scope: Some("read read"),
            ..session(SESSION)
        })
        .await;
    assert!(read_read.reused);
}

#[tokio::test]
async fn a_revoked_token_is_never_handed_out_again() {
    let f = fixture(|_| {}).await;
    let first = f.exchange(session(SESSION)).await;
    f.revoke(Revocation::Jti {
        jti: first.jti.to_string(),
        expires_at: NOW + 600,
    })
    .await;
    let second = f.exchange(session(SESSION)).await;
    assert!(!second.reused);
    assert_ne!(second.jti, first.jti);

    f.clock.advance(1);
    f.revoke(Revocation::Subject {
        sub: "alice".into(),
        issued_up_to: NOW + 1,
    })
    .await;
    let third = f.exchange(session(SESSION)).await;
    assert_ne!(
        third.jti, second.jti,
        "the subject's earlier tokens are dead"
    );
    f.clock.advance(1);
    let fourth = f.exchange(session(SESSION)).await;
    assert_ne!(
        fourth.jti, third.jti,
        "issued in the revocation's second: dead too"
    );
    assert_eq!(f.exchange(session(SESSION)).await.jti, fourth.jti);

    let anonymous = f.exchange(ExchangeRequest::default()).await;
    f.revoke(Revocation::Jti {
        jti: anonymous.jti.to_string(),
        expires_at: NOW + 600,
    })
    .await;
    assert_ne!(
        f.exchange(ExchangeRequest::default()).await.jti,
        anonymous.jti
    );

    f.revoke(Revocation::Session {
        sid: crate::sessions::sid_of_canonical(SESSION),
    })
    .await;
    assert!(matches!(
        f.exchanger.exchange(&f.client, session(SESSION)).await,
        Err(ExchangeError::SessionRevoked)
    ));
}

#[tokio::test]
async fn a_new_active_key_ends_reuse_at_once() {
    let f = fixture(|_| {}).await;
    let first = f.exchange(session(SESSION)).await;
    let new = f.keys.rotate(true, "test").await.expect("rotate --now");
    let next = f.exchange(session(SESSION)).await;
    assert!(!next.reused);
    assert_eq!(*next.kid, *new.record.kid);
    assert_ne!(next.kid, first.kid);
}

#[tokio::test]
async fn reuse_fraction_zero_signs_every_exchange() {
    let f = fixture(|s| s.token.reuse_fraction = 0.0).await;
    let first = f.exchange(session(SESSION)).await;
    let second = f.exchange(session(SESSION)).await;
    assert!(!second.reused);
    assert_ne!(second.jti, first.jti);
    assert!(f.exchanger.reuse().is_empty());
}

#[tokio::test]
async fn the_cache_holds_at_most_reuse_max_entries() {
    let f = fixture(|s| s.token.reuse_max_entries = 8).await;
    for i in 0..100 {
        let ctx = crate::tokens::RequestContext {
            method: "GET".into(),
            path: format!("/items/{i}"),
        };
        f.exchange(ExchangeRequest {
            context: Some(&ctx),
            ..session(SESSION)
        })
        .await;
    }
    assert!(f.exchanger.reuse().len() <= 8);
}

#[tokio::test]
async fn anonymous_reuse_without_a_denylist_signs_afresh() {
    let f = fixture(|s| {
        s.denylist.backend = crate::config::DenylistBackend::Redis;
        s.redis.url = "redis://127.0.0.1:1".parse().expect("url");
        s.redis.timeout_ms = 50;
    })
    .await;
    let first = f.exchange(ExchangeRequest::default()).await;
    let second = f.exchange(ExchangeRequest::default()).await;
    assert!(!second.reused, "an unchecked token is not handed out again");
    assert_ne!(second.jti, first.jti);
}

#[test]
fn the_digests_tell_every_field_apart() {
    use reuse::{RequestKey, principal_digest};
    let base = RequestKey {
        client_id: "gw",
        ttl_seconds: 600,
        token_type: SubjectTokenType::Session,
        sid: Some("s"),
        audience: "a",
        scope: None,
        ctx: None,
    };
    let ctx = crate::tokens::RequestContext {
        method: "GET".into(),
        path: "/".into(),
    };
    let variants = [
        base,
        RequestKey {
            client_id: "gw2",
            ..base
        },
        RequestKey {
            ttl_seconds: 60,
            ..base
        },
        RequestKey {
            token_type: SubjectTokenType::AccessToken,
            ..base
        },
        RequestKey { sid: None, ..base },
        RequestKey {
            audience: "b",
            ..base
        },
        RequestKey {
            scope: Some(""),
            ..base
        },
        RequestKey {
            ctx: Some(&ctx),
            ..base
        },
        // Moving bytes between fields changes the digest (length-prefixed).
        RequestKey {
            client_id: "g",
            audience: "wa",
            ..base
        },
    ];
    let digests: std::collections::HashSet<_> = variants.iter().map(RequestKey::digest).collect();
    assert_eq!(digests.len(), variants.len());
    assert_eq!(base.digest(), RequestKey { ..base }.digest());

    let roles = |r: &[&str]| r.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let claims = |v: serde_json::Value| v.as_object().cloned().expect("object");
    let p = principal_digest(
        "u",
        &roles(&["a"]),
        &claims(serde_json::json!({"t": 1})),
        Some("s"),
    );
    assert_eq!(
        p,
        principal_digest(
            "u",
            &roles(&["a"]),
            &claims(serde_json::json!({"t": 1})),
            Some("s")
        )
    );
    for other in [
        principal_digest(
            "v",
            &roles(&["a"]),
            &claims(serde_json::json!({"t": 1})),
            Some("s"),
        ),
        principal_digest(
            "u",
            &roles(&["a", "b"]),
            &claims(serde_json::json!({"t": 1})),
            Some("s"),
        ),
        principal_digest(
            "u",
            &roles(&[]),
            &claims(serde_json::json!({"t": 1})),
            Some("s"),
        ),
        principal_digest(
            "u",
            &roles(&["a"]),
            &claims(serde_json::json!({"t": "1"})),
            Some("s"),
        ),
        principal_digest(
            "u",
            &roles(&["a"]),
            &claims(serde_json::json!({"t": [1]})),
            Some("s"),
        ),
        principal_digest(
            "u",
            &roles(&["a"]),
            &claims(serde_json::json!({})),
            Some("s"),
        ),
        principal_digest(
            "u",
            &roles(&["a"]),
            &claims(serde_json::json!({"t": 1})),
            None,
        ),
    ] {
        assert_ne!(other, p);
    }
}
