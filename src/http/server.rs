//! The actix server: binds the listener, composes the routes, logs every request, and
//! stops gracefully; shared by `tessera serve` and the tests.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::middleware::{Next, from_fn};
use actix_web::{App, HttpServer, web};

use super::AppState;
use super::error::ApiError;
use super::routes;
use crate::config::{ConfigSource, Settings};
use crate::infra::clock::{Clock, SystemClock};

/// A bound, not yet running server.
pub struct Application {
    port: u16,
    /// The port of `server.admin_listen`, when set.
    admin_port: Option<u16>,
    server: Server,
    state: web::Data<AppState>,
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
        Self::build_from(settings, ConfigSource::default(), clock).await
    }

    /// Builds from `settings`, read from `source` (which a reload reads again).
    pub async fn build_from(
        settings: Settings,
        source: ConfigSource,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(settings.server.listen).map_err(|e| {
            anyhow::anyhow!(
                "server.listen: cannot listen on {}: {e}",
                settings.server.listen
            )
        })?;
        let port = listener.local_addr()?.port();
        let admin_listener = settings
            .server
            .admin_listen
            .map(|addr| {
                TcpListener::bind(addr).map_err(|e| {
                    anyhow::anyhow!("server.admin_listen: cannot listen on {addr}: {e}")
                })
            })
            .transpose()?;
        let admin_addr = admin_listener
            .as_ref()
            .map(TcpListener::local_addr)
            .transpose()?;
        let server_settings = settings.server.clone();
        let reload_every = Duration::from_secs(settings.keys.reload_interval_seconds);
        for warning in settings.warnings() {
            tracing::warn!("configuration: {warning}");
        }
        let state = web::Data::new(AppState::build(settings, source, clock).await?);
        crate::infra::metrics::register_backends(state.exchanger.session_backend_name());
        crate::infra::metrics::register_config_reloads();
        crate::infra::metrics::register_trace_drops();
        if state.forward_auth.load().is_some() {
            crate::infra::metrics::register_forward_auth(
                &routes::forward_auth::Dialect::ALL.map(routes::forward_auth::Dialect::name),
            );
        }
        state.keys.clone().spawn_maintenance(reload_every);
        state.feed.start();
        if state.clients.is_empty() {
            tracing::warn!(
                "no [[clients]] configured: every exchange will fail with invalid_client"
            );
        }
        let app_state = state.clone();
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(app_state.clone())
                .wrap(from_fn(move |req, next| {
                    split_listeners(admin_addr, req, next)
                }))
                .wrap(from_fn(access_log))
                .wrap(from_fn(super::trace::request_span))
                .configure(routes::configure)
                .default_service(web::to(|| async { Err::<String, _>(ApiError::NotFound) }))
        })
        .listen(listener)?
        .disable_signals()
        .shutdown_timeout(server_settings.shutdown_grace_seconds)
        .client_request_timeout(Duration::from_millis(
            server_settings.client_request_timeout_ms,
        ))
        .client_disconnect_timeout(Duration::from_millis(
            server_settings.client_disconnect_timeout_ms,
        ))
        .keep_alive(Duration::from_secs(server_settings.keep_alive_seconds));
        if server_settings.workers > 0 {
            server = server.workers(server_settings.workers);
        }
        // actix counts connections per worker: each gets its share of the total.
        let workers = match server_settings.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        server = server.max_connections(server_settings.max_connections.div_ceil(workers));
        warn_if_above_open_file_limit(server_settings.max_connections);
        if let Some(admin) = admin_listener {
            server = server.listen(admin)?;
        }
        Ok(Self {
            port,
            admin_port: admin_addr.map(|a| a.port()),
            server: server.run(),
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of `server.admin_listen`, when set.
    pub fn admin_port(&self) -> Option<u16> {
        self.admin_port
    }

    /// A handle to stop the server gracefully.
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Graceful shutdown, as on SIGTERM: `/readyz` turns 503 at once, the listeners
    /// close, requests in flight complete (for at most `server.shutdown_grace_seconds`).
    pub fn shutdown_trigger(&self) -> impl Future<Output = ()> + 'static {
        let (state, handle) = (self.state.clone(), self.server.handle());
        async move {
            state.readiness.shut_down();
            state.feed.close();
            tracing::info!("shutting down: readiness off, finishing requests in flight");
            handle.stop(true).await;
        }
    }

    /// Reloads the configuration on every SIGHUP (see [`crate::reload`]); the handler is
    /// installed before it returns.
    pub fn reload_on_sighup(&self) -> std::io::Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangup = signal(SignalKind::hangup())?;
        let state = self.state.clone();
        actix_web::rt::spawn(async move {
            while hangup.recv().await.is_some() {
                // Reading the file is blocking work; keep it off the event loop.
                let state = state.clone();
                let _ = actix_web::rt::task::spawn_blocking(move || state.reloader.reload()).await;
            }
        });
        Ok(())
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// Each connection is a file descriptor: a `server.max_connections` the process cannot
/// open would fail with "too many open files" before the cap ever applies.
fn warn_if_above_open_file_limit(max_connections: usize) {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
    // Room for the keystore, Redis, PostgreSQL, the session upstream and the listeners.
    if let Some(limit) = limit
        && max_connections as u64 + 64 > limit
    {
        tracing::warn!(
            max_connections,
            open_file_limit = limit,
            "server.max_connections is above the open-file limit (ulimit -n) minus 64: raise the limit or lower server.max_connections"
        );
    }
}

/// `tessera serve`: runs the server until SIGTERM or SIGINT, then stops gracefully;
/// SIGHUP reloads the configuration from `source`.
pub fn serve(settings: Settings, source: ConfigSource) -> anyhow::Result<()> {
    actix_web::rt::System::new().block_on(async move {
        let listen = settings.server.listen;
        let issuer = settings.issuer.clone();
        let pid_file = settings.server.pid_file.clone();
        // Handlers first: a SIGTERM that arrives during start-up still stops gracefully.
        let termination = termination_signals()?;
        let app = Application::build_from(settings, source, Arc::new(SystemClock)).await?;
        app.reload_on_sighup()?;
        if let Some(path) = &pid_file {
            std::fs::write(path, format!("{}\n", std::process::id())).map_err(|e| {
                anyhow::anyhow!("server.pid_file: cannot write {}: {e}", path.display())
            })?;
        }
        tracing::info!(%listen, port = app.port(), %issuer, "tessera listening");
        let shutdown = app.shutdown_trigger();
        actix_web::rt::spawn(async move {
            termination.await;
            shutdown.await;
        });
        let stopped = app.run_until_stopped().await;
        if let Some(path) = &pid_file {
            let _ = std::fs::remove_file(path);
        }
        crate::infra::telemetry::shutdown();
        stopped?;
        tracing::info!("tessera stopped");
        Ok(())
    })
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C); the handlers are installed before it returns.
fn termination_signals() -> std::io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

/// One line per request: method, path (never the query or a body), status, latency.
/// With `server.admin_listen`, `/admin/*` and `/metrics` are served there only, and
/// nothing else is: elsewhere they do not exist (404).
async fn split_listeners(
    admin: Option<std::net::SocketAddr>,
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::EitherBody<impl MessageBody>>, actix_web::Error> {
    if let Some(admin) = admin {
        let path = req.path();
        let admin_path = path == "/metrics" || path == "/admin" || path.starts_with("/admin/");
        let on_admin = req.app_config().local_addr() == admin;
        if admin_path != on_admin {
            let response = actix_web::ResponseError::error_response(&ApiError::NotFound);
            return Ok(req.into_response(response).map_into_right_body());
        }
    }
    Ok(next.call(req).await?.map_into_left_body())
}

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
