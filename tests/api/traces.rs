//! OpenTelemetry traces: the real binary exports OTLP/HTTP (protobuf) to a receiver in
//! the test, which decodes what it gets with the `opentelemetry-proto` types. The tracing
//! subscriber is process-wide, hence a child process with the `OTEL_*` variables.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use prost::Message as _;
use serde_json::json;
use tessera::config::Sha256;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};

use crate::helpers::{USER_SESSION, install_fixture_key};

const CLIENT_SECRET: &str = "traces-gateway-secret";
const ADMIN_TOKEN: &str = "traces-admin-token";

/// An OTLP/HTTP collector: keeps the body of every `POST /v1/traces`, answers 200.
#[derive(Clone, Default)]
struct Receiver {
    bodies: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Receiver {
    async fn start() -> (Self, u16) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let port = listener.local_addr().expect("addr").port();
        let receiver = Self::default();
        let kept = receiver.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(kept.clone().serve(stream));
            }
        });
        (receiver, port)
    }

    /// HTTP/1.1 with keep-alive, as far as the exporter needs it.
    async fn serve(self, stream: tokio::net::TcpStream) {
        let mut stream = BufReader::new(stream);
        loop {
            let mut length = 0usize;
            let mut path = String::new();
            let mut line = String::new();
            loop {
                line.clear();
                match stream.read_line(&mut line).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                let trimmed = line.trim_end();
                if trimmed.is_empty() {
                    break;
                }
                if path.is_empty() {
                    path = trimmed.split(' ').nth(1).unwrap_or_default().to_owned();
                } else if let Some((name, value)) = trimmed.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            if stream.read_exact(&mut body).await.is_err() {
                return;
            }
            if path == "/v1/traces" {
                self.bodies.lock().expect("lock").push(body);
            }
            let answer = b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
            if stream.get_mut().write_all(answer).await.is_err() {
                return;
            }
        }
    }

    fn bodies(&self) -> Vec<Vec<u8>> {
        self.bodies.lock().expect("lock").clone()
    }

    /// Every span received so far, with its resource's `service.name`.
    fn spans(&self) -> Vec<Received> {
        let mut spans = Vec::new();
        for body in self.bodies() {
            let request =
                ExportTraceServiceRequest::decode(body.as_slice()).expect("OTLP protobuf");
            for resource in request.resource_spans {
                let service = resource
                    .resource
                    .iter()
                    .flat_map(|r| &r.attributes)
                    .find(|a| a.key == "service.name")
                    .and_then(|a| a.value.as_ref()?.value.as_ref())
                    .and_then(|v| match v {
                        Value::StringValue(s) => Some(s.clone()),
                        _ => None,
                    })
                    .unwrap_or_default();
                for scope in resource.scope_spans {
                    for span in scope.spans {
                        spans.push(Received {
                            service: service.clone(),
                            name: span.name,
                            trace_id: hex::encode(span.trace_id),
                            attributes: span
                                .attributes
                                .into_iter()
                                .map(|a| (a.key, format!("{:?}", a.value)))
                                .collect(),
                        });
                    }
                }
            }
        }
        spans
    }
}

#[derive(Debug)]
struct Received {
    service: String,
    name: String,
    trace_id: String,
    attributes: HashMap<String, String>,
}

struct Served {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_config(path: &Path, port: u16, dir: &Path) {
    let text = format!(
        r#"issuer = "http://127.0.0.1:{port}"

[server]
listen = "127.0.0.1:{port}"
workers = 1
pid_file = "{pid}"
auth_failures_per_second = 0

[log]
level = "warn"

[keys]
dir = "{keys}"
rotation_interval_seconds = 0

[admin]
token_sha256 = "{admin}"

[[clients]]
id = "gateway"
secret_sha256 = "{secret}"
allow_anonymous = true
allowed_audiences = ["svc"]
default_audience = "svc"

[[sessions.static]]
token = "{session}"
sub = "user-1"

[forward_auth]
client = "gateway"
[[forward_auth.routes]]
path_prefix = "/"
audience = "svc"
login = "optional"
"#,
        pid = dir.join("tessera.pid").display(),
        keys = dir.join("keys").display(),
        admin = Sha256::of_secret(ADMIN_TOKEN),
        secret = Sha256::of_secret(CLIENT_SECRET),
        session = USER_SESSION,
    );
    std::fs::write(path, text).expect("write config");
}

async fn serve(collector: u16) -> Served {
    let dir = tempfile::tempdir().expect("tempdir");
    install_fixture_key(&dir.path().join("keys"));
    let port = crate::helpers::closed_port();
    let config = dir.path().join("tessera.toml");
    write_config(&config, port, dir.path());
    let log = dir.path().join("tessera.log");
    let mut command = Command::new(env!("CARGO_BIN_EXE_tessera"));
    for (name, _) in std::env::vars().filter(|(k, _)| k.starts_with("OTEL_")) {
        command.env_remove(name);
    }
    let child = command
        .args(["--config", config.to_str().expect("utf-8 path"), "serve"])
        .env_remove("RUST_LOG")
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{collector}"),
        )
        .env("OTEL_SERVICE_NAME", "tessera-traces-test")
        .env("OTEL_TRACES_SAMPLER", "parentbased_always_on")
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("spawn tessera");
    let served = Served {
        child,
        port,
        log,
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !served._dir.path().join("tessera.pid").exists() {
        assert!(
            Instant::now() < deadline,
            "the server did not start:\n{}",
            std::fs::read_to_string(&served.log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    served
}

fn traceparent(trace_id: &str) -> String {
    format!("00-{trace_id}-00f067aa0ba902b7-01")
}

#[tokio::test]
async fn exchanges_are_traced_over_otlp_continuing_the_gateways_trace_without_secrets() {
    let (receiver, collector) = Receiver::start().await;
    let served = serve(collector).await;
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{}", served.port);
    let (first, second, forward) = (
        "4bf92f3577b34da6a3ce929d0e0e4736",
        "0af7651916cd43dd8448eb211c80319c",
        "5e3a1d2c4b6f7a8e9d0c1b2a39485766",
    );
    for trace_id in [first, second] {
        let response = http
            .post(format!("{base}/exchange"))
            .basic_auth("gateway", Some(CLIENT_SECRET))
            .header("traceparent", traceparent(trace_id))
            .json(&json!({ "subject_token": USER_SESSION }))
            .send()
            .await
            .expect("exchange");
        assert_eq!(response.status(), 200, "{:?}", response.text().await);
    }
    // No traceparent: a trace of its own.
    let response = http
        .post(format!("{base}/exchange"))
        .basic_auth("gateway", Some(CLIENT_SECRET))
        .json(&json!({ "subject_token": USER_SESSION }))
        .send()
        .await
        .expect("exchange");
    assert_eq!(response.status(), 200);
    let basic = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(format!("gateway:{CLIENT_SECRET}"))
    };
    let response = http
        .get(format!("{base}/forward-auth/nginx"))
        .header("tessera-authorization", format!("Basic {basic}"))
        .header("traceparent", traceparent(forward))
        .header("x-original-method", "GET")
        .header("x-original-uri", "/products")
        .header("x-original-host", "shop.example")
        .send()
        .await
        .expect("forward auth");
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    for probe in ["healthz", "metrics"] {
        let response = http
            .get(format!("{base}/{probe}"))
            .header("traceparent", traceparent(forward))
            .send()
            .await
            .expect("probe");
        assert_eq!(response.status(), 200);
    }
    let response = http
        .get(format!("{base}/admin/keys"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("admin");
    assert_eq!(response.status(), 200);

    // Spans arrive in batches: wait for the last request's (the admin one).
    let deadline = Instant::now() + Duration::from_secs(30);
    let spans = loop {
        let spans = receiver.spans();
        let requests = spans
            .iter()
            .filter(|s| s.name.starts_with("GET ") || s.name.starts_with("POST "))
            .count();
        if requests >= 5 {
            break spans;
        }
        assert!(
            Instant::now() < deadline,
            "not every request's span was exported: {spans:#?}\nlog:\n{}",
            std::fs::read_to_string(&served.log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(spans.iter().all(|s| s.service == "tessera-traces-test"));
    // Probes and scrapes are never traced.
    assert!(
        !spans
            .iter()
            .any(|s| s.name == "GET /healthz" || s.name == "GET /metrics"),
        "{spans:#?}"
    );
    let names_of = |trace_id: &str| -> BTreeSet<&str> {
        spans
            .iter()
            .filter(|s| s.trace_id == trace_id)
            .map(|s| s.name.as_str())
            .collect()
    };
    // The first exchange signs, the second (same session, same audience) reuses.
    let expected_first: BTreeSet<&str> = [
        "POST /exchange",
        "exchange",
        "client_authentication",
        "denylist",
        "session_backend",
        "sign",
    ]
    .into();
    assert_eq!(names_of(first), expected_first, "{spans:#?}");
    let second_names = names_of(second);
    assert!(second_names.contains("token_reuse"), "{spans:#?}");
    assert!(!second_names.contains("sign"), "{spans:#?}");
    let forward_names = names_of(forward);
    assert!(
        forward_names.contains("forward_auth") && forward_names.contains("GET /forward-auth/nginx"),
        "{spans:#?}"
    );
    // One trace per exchange: the one without traceparent has its own, whole.
    let own: BTreeSet<&str> = spans
        .iter()
        .filter(|s| s.name == "POST /exchange" && ![first, second].contains(&s.trace_id.as_str()))
        .map(|s| s.trace_id.as_str())
        .collect();
    assert_eq!(own.len(), 1, "{spans:#?}");
    let own = own.into_iter().next().expect("one");
    assert!(names_of(own).contains("session_backend"), "{spans:#?}");
    let backend = spans
        .iter()
        .find(|s| s.trace_id == first && s.name == "session_backend")
        .expect("session span");
    assert!(backend.attributes["kind"].contains("static"), "{backend:?}");
    assert!(backend.attributes["outcome"].contains("ok"), "{backend:?}");
    let auth = spans
        .iter()
        .find(|s| s.trace_id == first && s.name == "client_authentication")
        .expect("authentication span");
    assert!(auth.attributes["client_id"].contains("gateway"), "{auth:?}");

    let exported: Vec<u8> = receiver.bodies().concat();
    for secret in [USER_SESSION, CLIENT_SECRET, ADMIN_TOKEN] {
        assert!(
            !exported
                .windows(secret.len())
                .any(|w| w == secret.as_bytes()),
            "{secret} was exported"
        );
    }
}

fn dropped_spans(metrics: &str) -> Option<u64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("tessera_trace_spans_dropped_total "))
        .and_then(|v| v.trim().parse().ok())
}

/// A collector that is down costs the exchanges nothing: they all succeed, and the spans
/// that could not be exported are counted.
#[tokio::test]
async fn with_the_collector_down_exchanges_succeed_and_lost_spans_are_counted() {
    let served = serve(crate::helpers::closed_port()).await;
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{}", served.port);
    let metrics = || async {
        http.get(format!("{base}/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text")
    };
    assert!(
        dropped_spans(&metrics().await).is_some(),
        "registered from start-up"
    );
    for _ in 0..20 {
        let response = http
            .post(format!("{base}/exchange"))
            .basic_auth("gateway", Some(CLIENT_SECRET))
            .json(&json!({ "subject_token": USER_SESSION }))
            .send()
            .await
            .expect("exchange");
        assert_eq!(response.status(), 200);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while dropped_spans(&metrics().await).unwrap_or(0) == 0 {
        assert!(
            Instant::now() < deadline,
            "no dropped span counted; log:\n{}",
            std::fs::read_to_string(&served.log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
