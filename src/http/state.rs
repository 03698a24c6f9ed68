//! `AppState`: the domain services and the few pre-rendered answers the handlers share,
//! built once at start-up. No globals.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use actix_web::http::header::HeaderValue;
use arc_swap::ArcSwapOption;
use bytes::Bytes;

use crate::clients::Clients;
use crate::clients::admin::AdminToken;
use crate::config::{ConfigSource, Settings};
use crate::denylist::DenylistStore;
use crate::exchange::Exchanger;
use crate::exchange::reuse::Reuse;
use crate::feed::Feed;
use crate::forward_auth::ForwardAuth;
use crate::infra::clock::Clock;
use crate::keys::KeyService;
use crate::readiness::Readiness;
use crate::reload::Reloader;
use crate::revocation::{Introspection, Revocations};
use crate::sessions::SessionBackend;
use crate::tokens::TokenIssuer;

/// Everything the handlers share.
pub struct AppState {
    pub settings: Arc<Settings>,
    pub keys: Arc<KeyService>,
    pub clients: Arc<Clients>,
    pub exchanger: Exchanger,
    /// `[forward_auth]`, when configured; replaced by a reload.
    pub forward_auth: Arc<ArcSwapOption<ForwardAuth>>,
    pub revocations: Arc<Revocations>,
    /// The revocation feed (`GET /revocations/stream`).
    pub feed: Arc<Feed>,
    pub introspection: Introspection,
    pub readiness: Readiness,
    /// Discovery document, serialized once.
    pub discovery_json: Bytes,
    /// OpenAPI document, serialized once.
    pub openapi_json: Bytes,
    /// `public, max-age=<jwks.max_age_seconds>`.
    pub jwks_cache_control: HeaderValue,
    /// The admin token's hash (none: the admin API is disabled); reloadable.
    pub admin: Arc<AdminToken>,
    /// Applies a configuration reload to the services above.
    pub reloader: Reloader,
    /// Renders `/metrics`.
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    pub clock: Arc<dyn Clock>,
}

impl AppState {
    /// `source` is where `settings` came from: a reload reads it again.
    pub async fn build(
        settings: Settings,
        source: ConfigSource,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        let keys = Arc::new(KeyService::open(&settings, clock.clone()).await?);
        let sessions = Arc::new(SessionBackend::from_settings(&settings)?);
        let denylist = Arc::new(DenylistStore::from_settings(&settings)?);
        let clients = Arc::new(Clients::from_settings(&settings));
        let issuer = TokenIssuer::new(&settings.issuer, settings.token.clock_skew_seconds);
        let feed = Arc::new(Feed::new(&settings, &denylist));
        let revocations = Arc::new(Revocations::new(
            denylist.clone(),
            feed.clone(),
            sessions.clone(),
            clock.clone(),
            settings.token.max_ttl_seconds,
        ));
        let metadata = super::routes::discovery::Metadata::for_issuer(&settings.issuer);
        let cache_control = format!("public, max-age={}", settings.jwks.max_age_seconds);
        let admin = Arc::new(AdminToken::new(settings.admin.token_sha256));
        let forward_auth = Arc::new(ArcSwapOption::new(
            settings
                .forward_auth
                .as_ref()
                .map(|f| Arc::new(ForwardAuth::from_settings(f))),
        ));
        let reloader = Reloader::new(
            source,
            settings.clone(),
            clients.clone(),
            sessions.clone(),
            admin.clone(),
            forward_auth.clone(),
        );
        Ok(Self {
            forward_auth,
            clients: clients.clone(),
            exchanger: Exchanger::new(
                clients,
                sessions.clone(),
                denylist.clone(),
                keys.clone(),
                issuer.clone(),
                clock.clone(),
                settings.token.anonymous_roles.clone(),
            )
            .with_reuse(Reuse::new(
                settings.token.reuse_fraction,
                settings.token.reuse_max_entries,
                settings.token.max_ttl_seconds,
            )),
            introspection: Introspection::new(
                keys.clone(),
                issuer,
                denylist.clone(),
                revocations.clone(),
                clock.clone(),
            ),
            readiness: Readiness::new(
                keys.clone(),
                denylist,
                sessions,
                Arc::new(AtomicBool::new(false)),
            ),
            revocations,
            feed,
            discovery_json: Bytes::from(serde_json::to_vec(&metadata)?),
            openapi_json: Bytes::from(super::openapi::document()),
            jwks_cache_control: HeaderValue::from_str(&cache_control)?,
            metrics: crate::infra::metrics::handle(),
            admin,
            reloader,
            settings: Arc::new(settings),
            keys,
            clock,
        })
    }
}
