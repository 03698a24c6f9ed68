//! `/healthz` (the process is up) and `/readyz` (it can issue tokens now).

use std::collections::BTreeMap;

use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::http::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(super::resource("/healthz").route(web::get().to(get_health)))
        .service(super::resource("/readyz").route(web::get().to(get_readiness)));
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// Readiness and the state of each configured part.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` or `unavailable`.
    #[schema(example = "ready")]
    pub status: &'static str,
    /// One entry per configured part: `ok` or `error: <backend> <address>: <reason>`.
    #[schema(example = json!({"keys": "ok"}))]
    pub checks: BTreeMap<&'static str, String>,
}

/// Liveness: 200 while the process runs.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process is up", body = Health),
              (status = 405, description = "Method not allowed", body = crate::http::error::ErrorBody)))]
pub async fn get_health() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// Readiness: 200 only when an active key exists and every configured backend answers.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "Ready to issue tokens", body = Readiness),
              (status = 503, description = "A part is not ready; `checks` names it", body = Readiness)))]
pub async fn get_readiness(state: web::Data<AppState>) -> HttpResponse {
    let mut checks = BTreeMap::new();
    let keys_ok = state
        .keys
        .current()
        .keys()
        .iter()
        .any(|k| k.view.state == crate::keys::keyring::KeyState::Active);
    checks.insert(
        "keys",
        if keys_ok {
            "ok".into()
        } else {
            "error: no active key".into()
        },
    );
    if let Some(result) = state.denylist.check().await {
        checks.insert(
            "denylist",
            result.map_or_else(|e| format!("error: {e}"), |()| "ok".into()),
        );
    }
    if let Some(result) = state.sessions.check().await {
        checks.insert(
            "sessions",
            result.map_or_else(|reason| format!("error: {reason}"), |()| "ok".into()),
        );
    }
    if state
        .shutting_down
        .load(std::sync::atomic::Ordering::SeqCst)
    {
        checks.insert("shutdown", "error: shutting down".into());
    }
    let ready = checks.values().all(|v| v == "ok");
    let body = Readiness {
        status: if ready { "ready" } else { "unavailable" },
        checks,
    };
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
