//! Builds the application state and the actix server; shared by `main` and the tests.
//!
//! Invariant: everything a request needs is in [`AppState`], built once here; no globals.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::http::header::HeaderValue;
use actix_web::middleware::{Next, from_fn};
use actix_web::{App, HttpServer, web};
use bytes::Bytes;
use serde_json::Map;

use super::routes;
use crate::clients::ClientRegistry;
use crate::config::Settings;
use crate::denylist::DenylistStore;
use crate::http::error::ApiError;
use crate::infra::clock::{Clock, SystemClock};
use crate::keys::KeyService;
use crate::sessions::SessionBackend;
use crate::tokens::TokenIssuer;

/// Everything the handlers share.
pub struct AppState {
    pub settings: Arc<Settings>,
    pub clock: Arc<dyn Clock>,
    pub keys: Arc<KeyService>,
    pub clients: ClientRegistry,
    pub sessions: SessionBackend,
    pub denylist: DenylistStore,
    pub issuer: TokenIssuer,
    /// Discovery document, serialized once.
    pub discovery_json: Bytes,
    /// OpenAPI document, serialized once.
    pub openapi_json: Bytes,
    /// `public, max-age=<jwks.max_age_seconds>`.
    pub jwks_cache_control: HeaderValue,
    /// SHA-256 of the admin token; `None`: the admin API is disabled.
    pub admin_token_sha256: Option<[u8; 32]>,
    /// Authentication failures per source address; `None` = unlimited.
    pub auth_failures: Option<crate::clients::limits::FailureLimiter>,
    /// Set on SIGTERM: `/readyz` answers 503 from then on.
    pub shutting_down: Arc<std::sync::atomic::AtomicBool>,
    /// Renders `/metrics`.
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    /// The empty extra-claims map of anonymous tokens.
    pub no_claims: Map<String, serde_json::Value>,
}

impl AppState {
    pub async fn build(settings: Settings, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let keys = Arc::new(KeyService::open(&settings, clock.clone()).await?);
        let metadata = routes::discovery::Metadata::for_issuer(&settings.issuer);
        let cache_control = format!("public, max-age={}", settings.jwks.max_age_seconds);
        Ok(Self {
            clients: ClientRegistry::from_settings(&settings),
            sessions: SessionBackend::from_settings(&settings)?,
            denylist: DenylistStore::from_settings(&settings)?,
            issuer: TokenIssuer::new(&settings.issuer, settings.token.clock_skew_seconds),
            discovery_json: Bytes::from(serde_json::to_vec(&metadata)?),
            openapi_json: Bytes::from(super::openapi::document()),
            jwks_cache_control: HeaderValue::from_str(&cache_control)?,
            no_claims: Map::new(),
            metrics: crate::infra::metrics::handle(),
            auth_failures: crate::clients::limits::Rate::new(
                settings.server.auth_failures_per_second,
                settings.server.auth_failures_burst,
            )
            .map(crate::clients::limits::FailureLimiter::new),
            shutting_down: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            admin_token_sha256: settings.admin.token_sha256.map(|h| *h.as_bytes()),
            settings: Arc::new(settings),
            clock,
            keys,
        })
    }
}

/// A bound, not yet running server.
pub struct Application {
    port: u16,
    server: Server,
    shutting_down: Arc<std::sync::atomic::AtomicBool>,
}

impl Application {
    /// Builds the state and binds `server.listen` (port 0 picks a free port).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with_clock(settings, Arc::new(SystemClock)).await
    }

    pub async fn build_with_clock(
        settings: Settings,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(settings.server.listen).map_err(|e| {
            anyhow::anyhow!(
                "server.listen: cannot listen on {}: {e}",
                settings.server.listen
            )
        })?;
        let port = listener.local_addr()?.port();
        let workers = settings.server.workers;
        let grace = settings.server.shutdown_grace_seconds;
        let reload_every = Duration::from_secs(settings.keys.reload_interval_seconds);
        let server_settings = settings.server.clone();
        for warning in settings.warnings() {
            tracing::warn!("configuration: {warning}");
        }
        let state = web::Data::new(AppState::build(settings, clock).await?);
        let shutting_down = state.shutting_down.clone();
        spawn_key_maintenance(state.keys.clone(), reload_every);
        if state.clients.is_empty() {
            tracing::warn!(
                "no [[clients]] configured: every exchange will fail with invalid_client"
            );
        }
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .wrap(from_fn(access_log))
                .configure(routes::configure)
                .default_service(web::to(|| async { Err::<String, _>(ApiError::NotFound) }))
        })
        .listen(listener)?
        .disable_signals()
        .shutdown_timeout(grace)
        .client_request_timeout(Duration::from_millis(
            server_settings.client_request_timeout_ms,
        ))
        .client_disconnect_timeout(Duration::from_millis(
            server_settings.client_disconnect_timeout_ms,
        ))
        .keep_alive(Duration::from_secs(server_settings.keep_alive_seconds));
        if workers > 0 {
            server = server.workers(workers);
        }
        Ok(Self {
            port,
            server: server.run(),
            shutting_down,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle to stop the server gracefully.
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Graceful shutdown, as on SIGTERM: `/readyz` turns 503 at once, the listeners
    /// close, requests in flight complete (for at most `server.shutdown_grace_seconds`).
    pub fn shutdown_trigger(&self) -> impl Future<Output = ()> + 'static {
        let (flag, handle) = (self.shutting_down.clone(), self.server.handle());
        async move {
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
            tracing::info!("shutting down: readiness off, finishing requests in flight");
            handle.stop(true).await;
        }
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// Every `keys.reload_interval_seconds`: notice rotations made by other replicas or the
/// CLI, apply scheduled rotation and retirement, and switch keys at their activation time.
fn spawn_key_maintenance(keys: Arc<KeyService>, every: Duration) {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        interval.tick().await;
        loop {
            interval.tick().await;
            if let Err(e) = keys.tick().await {
                tracing::warn!(error = %e, "keyring maintenance failed; serving the last good keyring");
            }
        }
    });
}

/// One line per request: method, path (never the query or a body), status, latency.
async fn access_log(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.path().to_owned();
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
    let response = next.call(req).await?;
    metrics::counter!(
        crate::infra::metrics::HTTP_REQUESTS,
        "route" => route,
        "status" => response.status().as_str().to_owned()
    )
    .increment(1);
    tracing::info!(
        target: "tessera::access",
        %method,
        path,
        status = response.status().as_u16(),
        micros = started.elapsed().as_micros() as u64,
        "request"
    );
    Ok(response)
}
