//! Tracing setup: text or JSON lines on stderr, filtered by `log.level` (or `RUST_LOG`).
//! The level can be changed while running (a configuration reload), unless `RUST_LOG`
//! set it.
//!
//! Traces: with an OTLP endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT`,
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `telemetry.otlp_endpoint`), the spans of this
//! crate at `info` and above (whatever the log level) are also exported as OpenTelemetry
//! traces over OTLP/HTTP (protobuf), from a bounded queue drained by the SDK's own
//! thread: a slow or absent collector costs the exchange nothing; spans that find the
//! queue full, or whose export failed, are counted in `tessera_trace_spans_dropped_total`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracerProvider, SpanData, SpanExporter,
    SpanProcessor,
};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::{Layer as _, SubscriberExt as _};
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Registry, fmt, reload};

use crate::config::{LogFormat, LogSettings, TelemetrySettings};

/// Set once by [`init`] when the level comes from the configuration.
static LEVEL: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();

/// The trace pipeline, when traces are on: flushed by [`shutdown`].
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Installs the global subscriber once; later calls (tests) are no-ops. `telemetry`:
/// `None` for the one-shot commands, which export no traces.
pub fn init(log: &LogSettings, telemetry: Option<&TelemetrySettings>) {
    let from_env = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| v.parse::<EnvFilter>().ok());
    let configured = from_env.is_none();
    let (filter, handle) =
        reload::Layer::new(from_env.unwrap_or_else(|| EnvFilter::new(&log.level)));
    let traces = telemetry
        .and_then(|t| TraceSettings::resolve(t, |name| std::env::var(name).ok()))
        .and_then(|settings| match settings.provider() {
            Ok(provider) => Some(provider),
            Err(error) => {
                eprintln!("tessera: traces are off: {error}");
                None
            }
        });
    let registry = tracing_subscriber::registry();
    let installed = match log.format {
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_writer(std::io::stderr)
                    .with_filter(filter),
            )
            .with(otel_layer(traces.as_ref()))
            .try_init(),
        LogFormat::Text => registry
            .with(
                fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_filter(filter),
            )
            .with(otel_layer(traces.as_ref()))
            .try_init(),
    };
    if installed.is_ok() {
        if configured {
            let _ = LEVEL.set(handle);
        }
        if let Some(provider) = traces {
            opentelemetry::global::set_text_map_propagator(
                opentelemetry_sdk::propagation::TraceContextPropagator::new(),
            );
            let _ = PROVIDER.set(provider);
        }
    }
}

/// This crate's spans at `info` and above, whatever the log level, as OpenTelemetry spans.
fn otel_layer<S>(
    provider: Option<&SdkTracerProvider>,
) -> Option<impl tracing_subscriber::Layer<S> + Send + Sync + 'static>
where
    S: tracing::Subscriber
        + Send
        + Sync
        + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    provider.map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("tessera"))
            // Less work per span and smaller exports: no busy/idle timing, source
            // location or thread attributes.
            .with_tracked_inactivity(false)
            .with_location(false)
            .with_threads(false)
            .with_target(false)
            .with_filter(Targets::new().with_target("tessera", tracing::Level::INFO))
    })
}

/// Whether spans are exported (the request middleware skips its work otherwise).
pub fn traces_enabled() -> bool {
    PROVIDER.get().is_some()
}

/// Exports the spans still queued (at most a few seconds); call once, at exit.
pub fn shutdown() {
    if let Some(provider) = PROVIDER.get()
        && let Err(error) = provider.shutdown_with_timeout(Duration::from_secs(5))
    {
        tracing::warn!(%error, "traces: not every queued span was exported at exit");
    }
}

/// Applies `level` (already validated as a filter) to the events from now on. `false`
/// when the level cannot change: `RUST_LOG` set it, or no subscriber of ours is installed.
pub fn set_level(level: &str) -> bool {
    match (LEVEL.get(), level.parse::<EnvFilter>()) {
        (Some(handle), Ok(filter)) => handle.reload(filter).is_ok(),
        _ => false,
    }
}

/// Where and how traces go, the standard `OTEL_*` variables over `[telemetry]`.
#[derive(Debug, PartialEq)]
struct TraceSettings {
    /// The full OTLP/HTTP traces URL (`…/v1/traces`).
    endpoint: String,
    service_name: String,
    /// `None`: `OTEL_TRACES_SAMPLER` is set and the SDK reads it (with `_ARG`).
    sample_ratio: Option<f64>,
    queue_size: usize,
}

impl TraceSettings {
    /// `None` when traces are off: no endpoint, `OTEL_SDK_DISABLED=true` or
    /// `OTEL_TRACES_EXPORTER=none`.
    fn resolve(config: &TelemetrySettings, env: impl Fn(&str) -> Option<String>) -> Option<Self> {
        let set = |name: &str| {
            env(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        if set("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"))
            || set("OTEL_TRACES_EXPORTER").is_some_and(|v| v.eq_ignore_ascii_case("none"))
        {
            return None;
        }
        let base = |url: &str| format!("{}/v1/traces", url.trim_end_matches('/'));
        let endpoint = set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .or_else(|| set("OTEL_EXPORTER_OTLP_ENDPOINT").map(|url| base(&url)))
            .or_else(|| {
                let url = config.otlp_endpoint.trim();
                (!url.is_empty()).then(|| base(url))
            })?;
        Some(Self {
            endpoint,
            service_name: set("OTEL_SERVICE_NAME").unwrap_or_else(|| config.service_name.clone()),
            sample_ratio: match set("OTEL_TRACES_SAMPLER") {
                Some(_) => None,
                None => Some(config.sample_ratio),
            },
            queue_size: set("OTEL_BSP_MAX_QUEUE_SIZE")
                .and_then(|v| v.parse().ok())
                .filter(|n| *n > 0)
                .unwrap_or(config.queue_size),
        })
    }

    fn provider(&self) -> Result<SdkTracerProvider, opentelemetry_otlp::ExporterBuildError> {
        use opentelemetry_otlp::{Protocol, WithExportConfig as _};
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(&self.endpoint)
            .build()?;
        let queued = Arc::new(AtomicUsize::new(0));
        // The SDK's queue is made roomier than ours so that it never drops uncounted:
        // `Bounded` refuses (and counts) a span once `queue_size` wait.
        let batch = BatchSpanProcessor::builder(Counted {
            inner: exporter,
            queued: queued.clone(),
        })
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_max_queue_size(self.queue_size * 2)
                .build(),
        )
        .build();
        let mut builder = SdkTracerProvider::builder()
            .with_span_processor(Bounded {
                inner: batch,
                queued,
                capacity: self.queue_size,
            })
            .with_resource(
                opentelemetry_sdk::Resource::builder()
                    .with_service_name(self.service_name.clone())
                    .build(),
            );
        if let Some(ratio) = self.sample_ratio {
            builder = builder.with_sampler(Sampler::ParentBased(Box::new(
                Sampler::TraceIdRatioBased(ratio),
            )));
        }
        Ok(builder.build())
    }
}

fn count_dropped(spans: usize) {
    metrics::counter!(crate::infra::metrics::TRACE_SPANS_DROPPED).increment(spans as u64);
}

/// Hands ended spans to the batch processor while fewer than `capacity` wait for export;
/// past it, drops them and counts them.
#[derive(Debug)]
struct Bounded<P> {
    inner: P,
    queued: Arc<AtomicUsize>,
    capacity: usize,
}

impl<P: SpanProcessor> SpanProcessor for Bounded<P> {
    fn on_start(&self, span: &mut opentelemetry_sdk::trace::Span, cx: &opentelemetry::Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        let capacity = self.capacity;
        let admitted = self
            .queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < capacity).then_some(n + 1)
            })
            .is_ok();
        if admitted {
            self.inner.on_end(span);
        } else {
            count_dropped(1);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.inner.set_resource(resource);
    }
}

/// The OTLP exporter, releasing [`Bounded`]'s places as batches leave the queue and
/// counting the spans of a failed export as dropped.
#[derive(Debug)]
struct Counted<E> {
    inner: E,
    queued: Arc<AtomicUsize>,
}

impl<E: SpanExporter> SpanExporter for Counted<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let spans = batch.len();
        let _ = self
            .queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                Some(n.saturating_sub(spans))
            });
        let exported = self.inner.export(batch).await;
        if exported.is_err() {
            count_dropped(spans);
        }
        exported
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.inner.set_resource(resource);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(config: &TelemetrySettings, vars: &[(&str, &str)]) -> Option<TraceSettings> {
        TraceSettings::resolve(config, |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn traces_are_off_without_an_endpoint() {
        assert_eq!(resolve(&TelemetrySettings::default(), &[]), None);
    }

    #[test]
    fn the_standard_variables_win_over_the_configuration() {
        let config = TelemetrySettings {
            otlp_endpoint: "http://from-config:4318/".into(),
            ..TelemetrySettings::default()
        };
        let from_config = resolve(&config, &[]).expect("on");
        assert_eq!(from_config.endpoint, "http://from-config:4318/v1/traces");
        assert_eq!(from_config.service_name, "tessera");
        assert_eq!(from_config.sample_ratio, Some(1.0));
        let from_env = resolve(
            &config,
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
                ("OTEL_SERVICE_NAME", "sts-eu"),
                ("OTEL_TRACES_SAMPLER", "always_on"),
            ],
        )
        .expect("on");
        assert_eq!(from_env.endpoint, "http://collector:4318/v1/traces");
        assert_eq!(from_env.service_name, "sts-eu");
        assert_eq!(from_env.sample_ratio, None);
        let signal = resolve(
            &config,
            &[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:4318/traces")],
        )
        .expect("on");
        assert_eq!(signal.endpoint, "http://c:4318/traces");
        assert_eq!(resolve(&config, &[("OTEL_SDK_DISABLED", "true")]), None);
        assert_eq!(resolve(&config, &[("OTEL_TRACES_EXPORTER", "none")]), None);
    }
}
