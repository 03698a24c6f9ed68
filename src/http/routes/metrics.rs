//! `GET /metrics`: Prometheus text format.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, web};

use crate::http::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(super::resource("/metrics").route(web::get().to(get_metrics)));
}

/// Request, exchange, backend, key and revocation metrics (Prometheus text format 0.0.4).
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain"),
              (status = 405, description = "Method not allowed", body = crate::http::error::ErrorBody)))]
pub async fn get_metrics(state: web::Data<AppState>) -> HttpResponse {
    crate::infra::metrics::record_keys(&state.keys, state.clock.now());
    HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        ))
        .body(state.metrics.render())
}
