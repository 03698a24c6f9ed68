//! Prometheus metrics: the recorder, the names, and `GET /metrics`.
//!
//! The `metrics` facade has one process-wide recorder; it is installed once and every
//! application in the process (tests run several) renders the same registry.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const HTTP_REQUESTS: &str = "tessera_http_requests_total";
pub const EXCHANGE_DURATION: &str = "tessera_exchange_duration_seconds";
pub const EXCHANGES: &str = "tessera_exchanges_total";
pub const FORWARD_AUTH: &str = "tessera_forward_auth_total";
pub const ACTIVE_KEY_AGE: &str = "tessera_active_key_age_seconds";
pub const BACKEND_ERRORS: &str = "tessera_backend_errors_total";
pub const BACKEND_DURATION: &str = "tessera_backend_duration_seconds";
pub const REVOCATIONS: &str = "tessera_revocations_total";
pub const RATE_LIMITED: &str = "tessera_rate_limited_total";
pub const KEYS: &str = "tessera_keys";
pub const FEED_SUBSCRIBERS: &str = "tessera_feed_subscribers";
pub const KEYSTORE_UP: &str = "tessera_keystore_up";
pub const KEY_ROTATION_INTERVAL: &str = "tessera_key_rotation_interval_seconds";
pub const KEY_PUBLISH_LEAD: &str = "tessera_key_publish_lead_seconds";
pub const CONFIG_RELOADS: &str = "tessera_config_reloads_total";
pub const TOKEN_REUSE: &str = "tessera_token_reuse_total";
pub const TRACE_SPANS_DROPPED: &str = "tessera_trace_spans_dropped_total";

/// Latency buckets from 100 µs to 5 s.
const BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// How often buffered histogram samples are folded into their buckets. The exporter keeps
/// every recorded sample until this upkeep drains it, so without it memory grows with
/// every exchange (measured: ~60 bytes per request).
const UPKEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// The process's recorder handle, installed on first use together with its upkeep thread.
pub fn handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_duration_seconds".into()), BUCKETS)
                .map(PrometheusBuilder::build_recorder)
                .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics may be empty");
            }
            describe();
            let upkeep = handle.clone();
            let (started, running) = std::sync::mpsc::channel();
            let spawned = std::thread::Builder::new()
                .name("tessera-metrics-upkeep".into())
                .spawn(move || {
                    // The thread names itself before this runs; say it is there.
                    let _ = started.send(());
                    loop {
                        std::thread::sleep(UPKEEP_INTERVAL);
                        upkeep.run_upkeep();
                    }
                });
            match spawned {
                Ok(_) => {
                    let _ = running.recv();
                }
                Err(error) => {
                    tracing::warn!(%error, "metrics upkeep thread not started; /metrics renders drain samples");
                }
            }
            handle
        })
        .clone()
}

fn describe() {
    metrics::describe_counter!(HTTP_REQUESTS, "HTTP requests by route and status");
    metrics::describe_histogram!(
        EXCHANGE_DURATION,
        metrics::Unit::Seconds,
        "Time to answer an exchange"
    );
    metrics::describe_counter!(
        EXCHANGES,
        "Exchanges by client and outcome (issued or the OAuth error code)"
    );
    metrics::describe_counter!(
        FORWARD_AUTH,
        "Forward-authentication answers by dialect (nginx, forwarded, envoy) and outcome (allowed, login_redirect or the error code)"
    );
    metrics::describe_gauge!(
        ACTIVE_KEY_AGE,
        metrics::Unit::Seconds,
        "Seconds since the signing key activated"
    );
    metrics::describe_counter!(
        BACKEND_ERRORS,
        "Errors of the session backend and the denylist"
    );
    metrics::describe_histogram!(
        BACKEND_DURATION,
        metrics::Unit::Seconds,
        "Latency of session backend and denylist calls"
    );
    metrics::describe_counter!(REVOCATIONS, "Revocations by kind");
    metrics::describe_counter!(RATE_LIMITED, "Requests refused by a rate limit, by limit");
    metrics::describe_gauge!(
        KEYS,
        "Published signing keys by state (pending, active, retired); active is 1 when healthy"
    );
    metrics::describe_gauge!(
        FEED_SUBSCRIBERS,
        "Open GET /revocations/stream connections on this replica"
    );
    metrics::describe_gauge!(
        KEYSTORE_UP,
        "1 when the last keyring maintenance round (keystore read, scheduled rotation) succeeded, else 0"
    );
    metrics::describe_gauge!(
        KEY_ROTATION_INTERVAL,
        metrics::Unit::Seconds,
        "keys.rotation_interval_seconds (0 = rotation only by hand)"
    );
    metrics::describe_counter!(
        TOKEN_REUSE,
        "Exchanges answered with an earlier, still young token (hit) or a new signature (miss)"
    );
    metrics::describe_gauge!(
        KEY_PUBLISH_LEAD,
        metrics::Unit::Seconds,
        "keys.publish_lead_seconds"
    );
    metrics::describe_counter!(
        CONFIG_RELOADS,
        "Configuration reloads by result (ok, error)"
    );
    metrics::describe_counter!(
        TRACE_SPANS_DROPPED,
        "Trace spans not exported: the export queue was full or the collector failed"
    );
}

/// Publishes the rotation policy, and the keystore as reachable (it was just opened):
/// called once when the key maintenance starts, so these series exist from start-up.
pub fn record_key_policy(policy: &crate::keys::policy::Policy) {
    metrics::gauge!(KEY_ROTATION_INTERVAL).set(policy.rotation_interval as f64);
    metrics::gauge!(KEY_PUBLISH_LEAD).set(policy.publish_lead as f64);
    record_keystore(true);
}

/// The outcome of one keyring maintenance round.
pub fn record_keystore(up: bool) {
    metrics::gauge!(KEYSTORE_UP).set(if up { 1.0 } else { 0.0 });
}

/// The key gauges at `now`, from this replica's keyring: the active key's age and the
/// published keys by state (each state set, 0 included, so every series always exists).
pub fn record_keys(keys: &crate::keys::KeyService, now: crate::infra::clock::UnixTime) {
    use crate::keys::record::KeyState;
    let ring = keys.current();
    let age = now - ring.active_key().record.activates_at;
    metrics::gauge!(ACTIVE_KEY_AGE).set(age.max(0) as f64);
    let records: Vec<_> = ring.keys().iter().map(|k| k.key.record.clone()).collect();
    let views = crate::keys::policy::view(&records, now, keys.policy());
    for (state, name) in [
        (KeyState::Pending, "pending"),
        (KeyState::Active, "active"),
        (KeyState::Retired, "retired"),
    ] {
        let count = crate::keys::policy::published(&views, now)
            .filter(|v| v.state == state)
            .count();
        metrics::gauge!(KEYS, "state" => name).set(count as f64);
    }
}

/// Registers the error counters of the denylist and the session backend at 0, so a
/// healthy backend shows a zero error rate rather than no data.
pub fn register_backends(session_backend: &'static str) {
    for backend in ["denylist", session_backend] {
        metrics::counter!(BACKEND_ERRORS, "backend" => backend).increment(0);
    }
    metrics::gauge!(FEED_SUBSCRIBERS).increment(0.0);
}

/// Registers both reload outcomes at 0, so a failed reload is an increase, not a new
/// series.
/// `tessera_trace_spans_dropped_total` at 0, traces on or off.
pub fn register_trace_drops() {
    metrics::counter!(TRACE_SPANS_DROPPED).increment(0);
}

pub fn register_config_reloads() {
    for result in ["ok", "error"] {
        metrics::counter!(CONFIG_RELOADS, "result" => result).increment(0);
    }
}

/// The token reuse counters `[hit, miss]`, registered at 0 (the recorder is installed
/// first, so the handles count into it).
pub fn reuse_counters() -> [metrics::Counter; 2] {
    let _ = handle();
    ["hit", "miss"].map(|result| {
        let counter = metrics::counter!(TOKEN_REUSE, "result" => result);
        counter.increment(0);
        counter
    })
}

/// Registers `tessera_forward_auth_total{dialect, outcome="allowed"}` at 0 for each
/// dialect, so a configured forward authentication shows a rate from start-up.
pub fn register_forward_auth(dialects: &[&'static str]) {
    for dialect in dialects {
        metrics::counter!(FORWARD_AUTH, "dialect" => *dialect, "outcome" => "allowed").increment(0);
    }
}

/// Times a backend call and counts its errors (every `Err` is one).
pub async fn time_backend<T, E>(
    backend: &'static str,
    call: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let started = std::time::Instant::now();
    let result = call.await;
    record_backend(backend, started, result.is_err());
    result
}

/// Records one backend call that started at `started`.
pub fn record_backend(backend: &'static str, started: std::time::Instant, failed: bool) {
    metrics::histogram!(BACKEND_DURATION, "backend" => backend)
        .record(started.elapsed().as_secs_f64());
    if failed {
        metrics::counter!(BACKEND_ERRORS, "backend" => backend).increment(1);
    }
}

#[cfg(test)]
mod tests {
    /// The recorder buffers histogram samples until upkeep drains them; without the
    /// upkeep thread the process grows with every exchange (the soak benchmark caught it).
    #[test]
    fn the_recorder_comes_with_its_upkeep_thread() {
        let _ = super::handle();
        let names: Vec<String> = std::fs::read_dir("/proc/self/task")
            .map(|tasks| {
                tasks
                    .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
                    .map(|name| name.trim().to_owned())
                    .collect()
            })
            .unwrap_or_default();
        if names.is_empty() {
            return; // no procfs: nothing to look at
        }
        // Thread names are cut to 15 bytes by the kernel.
        assert!(
            names.iter().any(|n| n.starts_with("tessera-metrics")),
            "threads: {names:?}"
        );
    }
}
