//! A real Prometheus for the tests: the tools installed by `scripts/ensure-prometheus`,
//! `promtool` runs, and a `prometheus` process of the test's own (temp storage, a free
//! loopback port, scraping one Tessera every second) queried through its HTTP API.
//! Also the text transformations the checks need (template variables, `bool` comparisons).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const DEPLOY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy");

/// `deploy/<relative>`.
pub fn deploy_path(relative: &str) -> PathBuf {
    Path::new(DEPLOY).join(relative)
}

/// Installs prometheus/promtool when absent (root + apt-get), else fails with the
/// script's one line.
pub fn ensure_prometheus_installed() {
    static ONCE: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
    let mut done = ONCE.lock().unwrap_or_else(|e| e.into_inner());
    if *done {
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/ensure-prometheus");
    let output = Command::new(script)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {script}: {e}"));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr).trim()
    );
    *done = true;
}

/// Runs `promtool <args>` in `deploy/prometheus`; returns its output, failing with it
/// when promtool does.
pub fn promtool(args: &[&str]) -> String {
    ensure_prometheus_installed();
    let output = Command::new("promtool")
        .args(args)
        .current_dir(deploy_path("prometheus"))
        .output()
        .expect("promtool runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

/// A `prometheus` process of this test's own; killed on drop.
pub struct Prometheus {
    pub base: reqwest::Url,
    http: reqwest::Client,
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping `target` (`host:port`) as job `tessera` every second
    /// and evaluating `rules` every second; waits until it is ready.
    pub async fn start(target: &str, rules: &Path) -> Self {
        ensure_prometheus_installed();
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 rule_files:\n  - {rules:?}\n\
                 scrape_configs:\n  - job_name: tessera\n    static_configs:\n      - targets: [{target:?}]\n"
            ),
        )
        .expect("write prometheus.yml");
        let port = {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
            listener.local_addr().expect("addr").port()
        };
        let log = dir.path().join("prometheus.log");
        let log_file = std::fs::File::create(&log).expect("log file");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("prometheus starts");
        let server = Self {
            base: reqwest::Url::parse(&format!("http://127.0.0.1:{port}")).expect("url"),
            http: reqwest::Client::new(),
            child,
            log,
            _dir: dir,
        };
        server
            .wait_for("Prometheus to be ready", || async {
                let ready = server.base.join("/-/ready").expect("url");
                matches!(server.http.get(ready).send().await, Ok(r) if r.status() == 200)
            })
            .await;
        server
    }

    /// Polls `done` every 200 ms; fails with the Prometheus log after 60 s (a bound on a
    /// hung process, not a speed requirement).
    pub async fn wait_for<F, Fut>(&self, what: &str, mut done: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !done().await {
            assert!(
                Instant::now() < deadline,
                "gave up waiting for {what}; Prometheus log:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `GET /api/v1/<path>?<params>`: the decoded body, whatever its status.
    pub async fn api(&self, path: &str, params: &[(&str, &str)]) -> Value {
        let mut url = self.base.join(&format!("/api/v1/{path}")).expect("url");
        url.query_pairs_mut().extend_pairs(params);
        match self.http.get(url).send().await {
            Ok(response) => response.json().await.unwrap_or(Value::Null),
            Err(e) => serde_json::json!({"status": "error", "error": e.to_string()}),
        }
    }

    /// An instant query: `Ok(samples)` or `Err(Prometheus' error)`.
    pub async fn query(&self, expr: &str) -> Result<Vec<Value>, String> {
        let body = self.api("query", &[("query", expr)]).await;
        if body["status"] != "success" {
            return Err(format!("{}: {}", body["errorType"], body["error"]));
        }
        Ok(match &body["data"]["result"] {
            Value::Array(samples) => samples.clone(),
            Value::Null => Vec::new(),
            scalar => vec![serde_json::json!({"value": scalar})],
        })
    }

    /// The number of scrapes of job `tessera` stored so far.
    pub async fn scrapes(&self) -> usize {
        let samples = self
            .query(r#"count_over_time(up{job="tessera"}[10m])"#)
            .await
            .unwrap_or_default();
        samples
            .first()
            .and_then(|s| s["value"][1].as_str())
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(0, |v| v as usize)
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether a sample's value (`[time, "1.5"]`) is a finite number.
pub fn is_finite(sample: &Value) -> bool {
    sample["value"][1]
        .as_str()
        .and_then(|v| v.parse::<f64>().ok())
        .is_some_and(f64::is_finite)
}

/// The expression with every comparison operator made a `bool` comparison, so that it
/// returns a 0/1 sample for every series it compares instead of only those past the
/// threshold: data whenever the metrics exist, whatever their values. Label matchers
/// (`{a!="b"}`) and strings are left alone; `and`/`or` keep their meaning.
pub fn with_bool_comparisons(expr: &str) -> String {
    let mut out = String::with_capacity(expr.len() + 32);
    let mut chars = expr.char_indices().peekable();
    let (mut braces, mut quote) = (0usize, None::<char>);
    while let Some((i, c)) = chars.next() {
        out.push(c);
        if let Some(q) = quote {
            if c == '\\' {
                if let Some((_, escaped)) = chars.next() {
                    out.push(escaped);
                }
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' | '`' => quote = Some(c),
            '{' => braces += 1,
            '}' => braces = braces.saturating_sub(1),
            '>' | '<' | '=' | '!' if braces == 0 => {
                let next = chars.peek().map(|&(_, n)| n);
                let op_end = if next == Some('=') {
                    chars.next();
                    out.push('=');
                    i + 2
                } else if c == '>' || c == '<' {
                    i + 1
                } else {
                    continue; // a lone `=` or `!` is not a comparison
                };
                let rest = expr[op_end..].trim_start();
                let has_bool = rest.starts_with("bool")
                    && !rest[4..].starts_with(|n: char| n.is_alphanumeric() || n == '_');
                if !has_bool {
                    out.push_str(" bool");
                }
            }
            _ => {}
        }
    }
    out
}

/// The dashboard expression as Grafana sends it with every instance of `job` selected.
pub fn substitute_variables(expr: &str, job: &str) -> String {
    expr.replace("${job}", job)
        .replace("$job", job)
        .replace("${instance}", ".*")
        .replace("$instance", ".*")
}
