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
    #[schema(example = json!({"keys": "ok", "keystore": "ok"}))]
    pub checks: BTreeMap<&'static str, String>,
}

/// Liveness: 200 while the process runs.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process is up", body = Health),
              (status = 405, description = "Method not allowed", body = crate::http::error::ErrorBody)))]
pub async fn get_health() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// Readiness: 200 only when an active key exists, the keystore could be read and trusted
/// at the last maintenance round, and every configured backend answers.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "Ready to issue tokens", body = Readiness),
              (status = 503, description = "A part is not ready; `checks` names it", body = Readiness)))]
pub async fn get_readiness(state: web::Data<AppState>) -> HttpResponse {
    let report = state.readiness.check().await;
    let ready = report.ready();
    let body = Readiness {
        status: if ready { "ready" } else { "unavailable" },
        checks: report.checks,
    };
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
