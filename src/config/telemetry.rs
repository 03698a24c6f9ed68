//! `[telemetry]`: OpenTelemetry traces exported over OTLP/HTTP (protobuf). Off unless an
//! endpoint is set, here or in the standard `OTEL_EXPORTER_OTLP_ENDPOINT` variable (the
//! `OTEL_*` variables win over these keys; see `infra::telemetry`).
//!
//! Invariant: a validated `TelemetrySettings` has an `http(s)` endpoint or none, a ratio in
//! 0..=1 and a bounded queue.

use serde::Deserialize;

use super::{ConfigError, check_range, invalid};

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetrySettings {
    /// OTLP/HTTP base URL of the collector (`/v1/traces` is appended); empty = no traces.
    pub otlp_endpoint: String,
    /// The `service.name` resource attribute.
    pub service_name: String,
    /// Share of the traces that start here that are recorded (parent-based: a gateway's
    /// sampled `traceparent` is always followed).
    pub sample_ratio: f64,
    /// Spans waiting for export; past it, new spans are dropped (and counted).
    pub queue_size: usize,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self {
            otlp_endpoint: String::new(),
            service_name: "tessera".into(),
            sample_ratio: 1.0,
            queue_size: 2048,
        }
    }
}

impl TelemetrySettings {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let endpoint = self.otlp_endpoint.trim();
        let http = ["http://", "https://"]
            .iter()
            .any(|p| endpoint.starts_with(p));
        if !endpoint.is_empty() && !http {
            return Err(invalid(
                "telemetry.otlp_endpoint",
                "must be an http:// or https:// URL",
                "set the collector's OTLP/HTTP address, e.g. http://otel-collector:4318, or leave it empty",
            ));
        }
        if self.service_name.trim().is_empty() {
            return Err(invalid(
                "telemetry.service_name",
                "must not be empty",
                "leave the default \"tessera\" or name the deployment",
            ));
        }
        if !(0.0..=1.0).contains(&self.sample_ratio) {
            return Err(invalid(
                "telemetry.sample_ratio",
                "must be between 0 and 1",
                "1.0 records every trace, 0.1 one in ten",
            ));
        }
        check_range(
            "telemetry.queue_size",
            self.queue_size as u64,
            64..=1_000_000,
            "the default 2048 holds a few seconds of spans at a high rate",
        )
    }
}
