//! Reload without restart: the real binary, a configuration file rewritten while
//! exchanges keep running, SIGHUP (and `tessera reload`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use tessera::config::Sha256;

use crate::helpers::install_fixture_key;

const ADMIN_TOKEN: &str = "reload-admin-token";

/// A client of the file: id and the secrets whose hashes it lists.
struct FileClient<'a> {
    id: &'a str,
    secrets: &'a [&'a str],
}

/// A server started with `tessera serve --config FILE`; killed when dropped.
struct Served {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
    log: PathBuf,
    http: reqwest::Client,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Served {
    fn config(&self) -> PathBuf {
        self.dir.path().join("tessera.toml")
    }

    fn pid_file(&self) -> PathBuf {
        self.dir.path().join("tessera.pid")
    }

    fn write(&self, clients: &[FileClient<'_>], admin_token: &str, extra: &str) {
        write_config(
            &self.config(),
            self.port,
            self.dir.path(),
            clients,
            admin_token,
            extra,
        );
    }

    fn sighup(&self) {
        let status = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits until `tessera_config_reloads_total{result}` reaches `n`.
    async fn await_reloads(&self, result: &str, n: u64) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if self.reloads(result).await >= n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no {result} reload counted; log:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn reloads(&self, result: &str) -> u64 {
        let text = self
            .http
            .get(format!("http://127.0.0.1:{}/metrics", self.port))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        let series = format!("tessera_config_reloads_total{{result=\"{result}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&series))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }

    async fn exchange(&self, id: &str, secret: &str) -> u16 {
        exchange(&self.http, self.port, id, secret).await
    }

    /// An anonymous visitor's `GET /products` through nginx's forward authentication.
    async fn forward_auth(&self, id: &str, secret: &str) -> u16 {
        use base64::Engine as _;
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
        self.http
            .get(format!("http://127.0.0.1:{}/forward-auth/nginx", self.port))
            .header("tessera-authorization", format!("Basic {basic}"))
            .header("x-original-method", "GET")
            .header("x-original-uri", "/products")
            .header("x-original-host", "shop.example")
            .send()
            .await
            .expect("forward auth")
            .status()
            .as_u16()
    }

    async fn admin_keys(&self, token: &str) -> u16 {
        self.http
            .get(format!("http://127.0.0.1:{}/admin/keys", self.port))
            .bearer_auth(token)
            .send()
            .await
            .expect("admin")
            .status()
            .as_u16()
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

async fn exchange(http: &reqwest::Client, port: u16, id: &str, secret: &str) -> u16 {
    http.post(format!("http://127.0.0.1:{port}/exchange"))
        .basic_auth(id, Some(secret))
        .json(&json!({}))
        .send()
        .await
        .expect("exchange")
        .status()
        .as_u16()
}

fn write_config(
    path: &Path,
    port: u16,
    dir: &Path,
    clients: &[FileClient<'_>],
    admin_token: &str,
    extra: &str,
) {
    let mut text = format!(
        r#"issuer = "http://127.0.0.1:{port}"
{extra}
[server]
listen = "127.0.0.1:{port}"
workers = 2
pid_file = "{pid}"
auth_failures_per_second = 0

[log]
level = "info"

[keys]
dir = "{keys}"
rotation_interval_seconds = 0

[admin]
token_sha256 = "{admin}"
"#,
        pid = dir.join("tessera.pid").display(),
        keys = dir.join("keys").display(),
        admin = Sha256::of_secret(admin_token),
    );
    for c in clients {
        let hashes: Vec<String> = c
            .secrets
            .iter()
            .map(|s| format!("\"{}\"", Sha256::of_secret(s)))
            .collect();
        text.push_str(&format!(
            "\n[[clients]]\nid = \"{}\"\nsecret_sha256 = [{}]\nallow_anonymous = true\nallowed_audiences = [\"svc\"]\ndefault_audience = \"svc\"\n",
            c.id,
            hashes.join(", ")
        ));
    }
    // Write then rename, as editors and configuration tools do: a reload never reads half
    // a file.
    let partial = path.with_extension("partial");
    std::fs::write(&partial, text).expect("write config");
    std::fs::rename(&partial, path).expect("rename config");
}

async fn serve(clients: &[FileClient<'_>]) -> Served {
    let dir = tempfile::tempdir().expect("tempdir");
    install_fixture_key(&dir.path().join("keys"));
    let port = crate::helpers::closed_port();
    let config = dir.path().join("tessera.toml");
    write_config(&config, port, dir.path(), clients, ADMIN_TOKEN, "");
    let log = dir.path().join("tessera.log");
    let child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["--config", config.to_str().expect("utf-8 path"), "serve"])
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("spawn tessera");
    let served = Served {
        child,
        port,
        dir,
        log,
        http: reqwest::Client::new(),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !served.pid_file().exists() {
        assert!(
            Instant::now() < deadline,
            "the server did not start:\n{}",
            served.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    served
}

/// Exchanges as `id`:`secret` without pause until stopped; returns (ok, failed).
fn keep_exchanging(
    served: &Served,
    id: &'static str,
    secret: &'static str,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<(u64, u64)> {
    let (http, port) = (served.http.clone(), served.port);
    tokio::spawn(async move {
        let (ok, failed) = (AtomicU64::new(0), AtomicU64::new(0));
        while !stop.load(Ordering::Relaxed) {
            match exchange(&http, port, id, secret).await {
                200 => ok.fetch_add(1, Ordering::Relaxed),
                _ => failed.fetch_add(1, Ordering::Relaxed),
            };
        }
        (ok.into_inner(), failed.into_inner())
    })
}

#[tokio::test]
async fn sighup_adds_and_removes_clients_under_traffic_without_failing_the_unchanged_one() {
    let steady = FileClient {
        id: "steady",
        secrets: &["steady-secret"],
    };
    let leaving = FileClient {
        id: "leaving",
        secrets: &["leaving-secret"],
    };
    let served = serve(&[steady, leaving]).await;
    assert_eq!(served.exchange("leaving", "leaving-secret").await, 200);
    assert_eq!(served.exchange("arriving", "arriving-secret").await, 401);
    assert_eq!(served.reloads("ok").await, 0, "registered at 0");

    let stop = Arc::new(AtomicBool::new(false));
    let traffic = keep_exchanging(&served, "steady", "steady-secret", stop.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    served.write(
        &[
            FileClient {
                id: "steady",
                secrets: &["steady-secret"],
            },
            FileClient {
                id: "arriving",
                secrets: &["arriving-secret"],
            },
        ],
        "rotated-admin-token",
        "",
    );
    served.sighup();
    served.await_reloads("ok", 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let (ok, failed) = traffic.await.expect("traffic");

    assert_eq!(failed, 0, "the unchanged client never failed ({ok} ok)");
    assert!(ok > 0);
    assert_eq!(served.exchange("arriving", "arriving-secret").await, 200);
    assert_eq!(served.exchange("leaving", "leaving-secret").await, 401);
    assert_eq!(served.admin_keys("rotated-admin-token").await, 200);
    assert_eq!(served.admin_keys(ADMIN_TOKEN).await, 401);
    let log = served.log_text();
    assert!(log.contains("configuration reloaded"), "{log}");
    assert!(!log.contains("arriving-secret") && !log.contains("rotated-admin-token"));
}

#[tokio::test]
async fn an_invalid_file_changes_nothing_and_a_restart_only_setting_is_named_and_left() {
    let served = serve(&[FileClient {
        id: "steady",
        secrets: &["steady-secret"],
    }])
    .await;
    std::fs::write(
        served.config(),
        "[server]\nlisten = \"127.0.0.1:1\"\n[[clients]]\nid = \"x\"\nsecret_sha256 = \"not-hex\"\n",
    )
    .expect("write");
    served.sighup();
    served.await_reloads("error", 1).await;
    assert_eq!(served.exchange("steady", "steady-secret").await, 200);
    assert_eq!(served.admin_keys(ADMIN_TOKEN).await, 200);
    let log = served.log_text();
    let refused: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("configuration reload refused"))
        .collect();
    assert_eq!(refused.len(), 1, "{log}");
    assert!(refused[0].contains("secret_sha256"), "names the key: {log}");

    // The issuer needs a restart: named, and not applied; the client change is.
    served.write(
        &[FileClient {
            id: "second",
            secrets: &["second-secret"],
        }],
        ADMIN_TOKEN,
        "",
    );
    let config = std::fs::read_to_string(served.config()).expect("read");
    std::fs::write(
        served.config(),
        config.replacen(
            "issuer = \"http://127.0.0.1",
            "issuer = \"https://elsewhere.example",
            1,
        ),
    )
    .expect("write");
    served.sighup();
    served.await_reloads("ok", 1).await;
    assert_eq!(served.exchange("second", "second-secret").await, 200);
    assert_eq!(served.exchange("steady", "steady-secret").await, 401);
    let discovery: serde_json::Value = served
        .http
        .get(format!(
            "http://127.0.0.1:{}/.well-known/oauth-authorization-server",
            served.port
        ))
        .send()
        .await
        .expect("discovery")
        .json()
        .await
        .expect("json");
    assert_eq!(
        discovery["issuer"],
        format!("http://127.0.0.1:{}", served.port),
        "the issuer is left as it runs"
    );
    let log = served.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("need a restart") && l.contains("issuer")),
        "{log}"
    );

    // Forward authentication appears with a reload (and its routes change with the next).
    assert_eq!(served.forward_auth("second", "second-secret").await, 404);
    served.write(
        &[FileClient {
            id: "second",
            secrets: &["second-secret"],
        }],
        ADMIN_TOKEN,
        "[forward_auth]\nclient = \"second\"\n[[forward_auth.routes]]\npath_prefix = \"/\"\naudience = \"svc\"\nlogin = \"optional\"\n",
    );
    served.sighup();
    served.await_reloads("ok", 2).await;
    assert_eq!(served.forward_auth("second", "second-secret").await, 200);
}

/// The documented procedure for rolling a gateway's secret: add the new hash, reload,
/// move the gateways, remove the old hash, reload — with both secrets in use throughout.
#[tokio::test]
async fn a_gateway_secret_rolls_over_with_no_refused_request() {
    let served = serve(&[FileClient {
        id: "gateway",
        secrets: &["old-secret"],
    }])
    .await;
    let stop_old = Arc::new(AtomicBool::new(false));
    let old = keep_exchanging(&served, "gateway", "old-secret", stop_old.clone());

    // 1. Both hashes, reloaded with `tessera reload` (SIGHUP through server.pid_file).
    served.write(
        &[FileClient {
            id: "gateway",
            secrets: &["old-secret", "new-secret"],
        }],
        ADMIN_TOKEN,
        "",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args([
            "--config",
            served.config().to_str().expect("utf-8"),
            "reload",
        ])
        .output()
        .expect("tessera reload");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    served.await_reloads("ok", 1).await;

    // 2. The gateways move to the new secret while the old one is still in use.
    let stop_new = Arc::new(AtomicBool::new(false));
    let new = keep_exchanging(&served, "gateway", "new-secret", stop_new.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop_old.store(true, Ordering::Relaxed);
    let (old_ok, old_failed) = old.await.expect("old traffic");

    // 3. The old hash goes.
    served.write(
        &[FileClient {
            id: "gateway",
            secrets: &["new-secret"],
        }],
        ADMIN_TOKEN,
        "",
    );
    served.sighup();
    served.await_reloads("ok", 2).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop_new.store(true, Ordering::Relaxed);
    let (new_ok, new_failed) = new.await.expect("new traffic");

    assert_eq!(
        old_failed, 0,
        "old secret refused while listed ({old_ok} ok)"
    );
    assert_eq!(new_failed, 0, "new secret refused ({new_ok} ok)");
    assert!(old_ok > 0 && new_ok > 0);
    assert_eq!(served.exchange("gateway", "old-secret").await, 401);
    assert_eq!(served.exchange("gateway", "new-secret").await, 200);
}

#[test]
fn tessera_reload_without_a_pid_file_says_what_to_set() {
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .arg("reload")
        .env_remove("TESSERA_CONFIG")
        .output()
        .expect("tessera reload");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("server.pid_file"), "{stderr}");
}
