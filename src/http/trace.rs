//! The request span of OpenTelemetry traces: continues the caller's W3C `traceparent`
//! (a gateway's trace) and carries the method, route and status, never a header's value
//! or the query. Without traces (the default), and for `/healthz`, `/readyz` and
//! `/metrics`, it does nothing.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::HeaderMap;
use actix_web::middleware::Next;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// Reads `traceparent` / `tracestate` for the propagator.
struct Headers<'a>(&'a HeaderMap);

impl opentelemetry::propagation::Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

pub async fn request_span(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    // Probes and scrapes would bury the traces of real requests.
    let probe = matches!(req.path(), "/healthz" | "/readyz" | "/metrics");
    if probe || !crate::infra::telemetry::traces_enabled() {
        return next.call(req).await;
    }
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
    let method = req.method().as_str().to_owned();
    let span = tracing::info_span!(
        "request",
        otel.name = %format_args!("{method} {route}"),
        otel.kind = "server",
        http.request.method = %method,
        http.route = %route,
        http.response.status_code = tracing::field::Empty,
    );
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&Headers(req.headers()))
    });
    // A missing or malformed traceparent leaves the span a root: nothing to report.
    let _ = span.set_parent(parent);
    let response = next.call(req).instrument(span.clone()).await?;
    span.record("http.response.status_code", response.status().as_u16());
    Ok(response)
}
