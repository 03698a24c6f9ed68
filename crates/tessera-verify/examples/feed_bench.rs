//! Revocation → refusal latency through the revocation feed, and the memory a subscriber
//! costs (run by `benches/feed.sh`, which builds the binary and provides Redis).
//!
//! Two Tessera replicas (`$TESSERA_BIN`, the demo configuration, the Redis denylist under
//! a throwaway prefix, one keystore). A `tessera-verify` verifier follows replica B's feed.
//! For each of N tokens: revoke its `jti` on replica A (admin API), then poll the verifier
//! until it refuses the token; the latency is from sending the revocation to the first
//! refusal. Run 1: steady. Run 2: replica B is restarted (SIGTERM, start again) in the
//! middle. Then: 1,000 subscribers on replica B, its RSS before and after.
//!
//!   TESSERA_BIN=target/debug/tessera cargo run -p tessera-verify --example feed_bench -- [n=200]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tessera_verify::{RevocationFeed, Verifier, VerifyError};

const ISSUER: &str = "http://tessera.bench";
/// A revocation not seen by then is counted as missed.
const GIVE_UP: Duration = Duration::from_secs(10);

struct Replica {
    port: u16,
    child: Option<Child>,
    env: Vec<(String, String)>,
}

impl Replica {
    fn start(port: u16, env: &[(String, String)]) -> Self {
        let mut r = Self {
            port,
            child: None,
            env: env.to_vec(),
        };
        r.spawn();
        r
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let bin = std::env::var("TESSERA_BIN").unwrap_or_else(|_| "target/debug/tessera".into());
        let child = Command::new(bin)
            .args(["--config", "config/demo.toml", "serve"])
            .envs(self.env.iter().cloned())
            .env(
                "TESSERA__SERVER__LISTEN",
                format!("127.0.0.1:{}", self.port),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start tessera ($TESSERA_BIN)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "tessera did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, wait for the exit (graceful shutdown).
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }

    fn rss_kib(&self) -> u64 {
        let pid = self.child.as_ref().map(Child::id).unwrap_or_default();
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port()
}

async fn tokens(http: &reqwest::Client, a: &str, n: usize) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let answer: Value = http
            .post(format!("{a}/exchange"))
            .basic_auth("demo-gateway", Some("demo-gateway-secret"))
            .json(&json!({"subject_token": "demo-admin-session", "audience": "product-inventory"}))
            .send()
            .await
            .expect("exchange")
            .json()
            .await
            .expect("json");
        let token = answer["access_token"].as_str().expect("token").to_owned();
        let jti = claims(&token)["jti"].as_str().expect("jti").to_owned();
        out.push((token, jti));
    }
    out
}

fn claims(token: &str) -> Value {
    use base64::Engine as _;
    let part = token.split('.').nth(1).expect("payload");
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("base64");
    serde_json::from_slice(&json).expect("claims")
}

/// Revokes each token on `a` and waits for `verifier` to refuse it; calls `middle` once
/// half-way. Returns the latencies and the number missed.
async fn run(
    http: &reqwest::Client,
    a: &str,
    verifier: &Verifier,
    tokens: &[(String, String)],
    mut middle: impl FnMut(),
) -> (Vec<Duration>, usize) {
    let mut latencies = Vec::with_capacity(tokens.len());
    let mut missed = 0;
    for (i, (token, jti)) in tokens.iter().enumerate() {
        if i == tokens.len() / 2 {
            middle();
        }
        verifier
            .verify(token)
            .await
            .expect("valid before its revocation");
        let started = Instant::now();
        let response = http
            .post(format!("{a}/admin/revocations"))
            .bearer_auth("demo-admin-token")
            .json(&json!({"jti": jti}))
            .send()
            .await
            .expect("revoke");
        assert_eq!(response.status(), 200);
        loop {
            match verifier.verify(token).await {
                Err(VerifyError::Revoked) => {
                    latencies.push(started.elapsed());
                    break;
                }
                Ok(_) if started.elapsed() < GIVE_UP => {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Ok(_) => {
                    missed += 1;
                    break;
                }
                Err(e) => panic!("refused for another reason: {e}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (latencies, missed)
}

fn report(label: &str, mut latencies: Vec<Duration>, missed: usize) {
    latencies.sort();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or_default()
    };
    println!(
        "RESULT {label}: n={} p50={:.1}ms p99={:.1}ms max={:.1}ms missed={missed}",
        latencies.len() + missed,
        at(0.50).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let redis = std::env::var("TESSERA_BENCH_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let dir = std::env::temp_dir().join(format!("tessera-feed-bench-{}", std::process::id()));
    let env: Vec<(String, String)> = [
        ("TESSERA__ISSUER", ISSUER.to_owned()),
        ("TESSERA__KEYS__DIR", dir.join("keys").display().to_string()),
        ("TESSERA__DENYLIST__BACKEND", "redis".into()),
        ("TESSERA__REDIS__URL", redis),
        (
            "TESSERA__REDIS__KEY_PREFIX",
            format!("tessera-feed-bench:{}:", std::process::id()),
        ),
        ("TESSERA__SERVER__SHUTDOWN_GRACE_SECONDS", "2".into()),
        ("TESSERA__SERVER__MAX_FEED_SUBSCRIBERS", "2000".into()),
        ("TESSERA__LOG__LEVEL", "warn".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let replica_a = Replica::start(free_port(), &env);
    let mut replica_b = Replica::start(free_port(), &env);
    let (a, b) = (replica_a.url(), replica_b.url());
    let http = reqwest::Client::new();

    let verifier = Verifier::builder(ISSUER, "product-inventory")
        .jwks_uri(&format!("{b}/.well-known/jwks.json"))
        .revocation_feed_with(
            RevocationFeed::new("demo-inventory", "demo-inventory-secret")
                .url(&format!("{b}/revocations/stream"))
                .max_backoff(Duration::from_millis(500)),
        )
        .build()
        .expect("verifier");
    while verifier.revocation_feed_connected() != Some(true) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let steady = tokens(&http, &a, n).await;
    let (latencies, missed) = run(&http, &a, &verifier, &steady, || {}).await;
    report("steady", latencies, missed);

    let restarted = tokens(&http, &a, n).await;
    let (latencies, missed) = run(&http, &a, &verifier, &restarted, || {
        replica_b.stop();
        replica_b.spawn();
    })
    .await;
    report("replica B restarted mid-run", latencies, missed);

    // Memory: 1,000 subscribers on replica B.
    let before = replica_b.rss_kib();
    let subscribers = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let mut open = Vec::with_capacity(1000);
    for _ in 0..1000 {
        let mut response = subscribers
            .get(format!("{b}/revocations/stream"))
            .basic_auth("demo-inventory", Some("demo-inventory-secret"))
            .send()
            .await
            .expect("subscribe");
        assert_eq!(response.status(), 200);
        let _ = response.chunk().await; // the preamble
        open.push(response);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = replica_b.rss_kib();
    println!(
        "RESULT memory: 1000 subscribers, RSS {before} KiB -> {after} KiB (+{} KiB, {:.1} KiB each; {} live revocations in each backlog)",
        after.saturating_sub(before),
        after.saturating_sub(before) as f64 / 1000.0,
        2 * n
    );
    drop(open);
    let _ = std::fs::remove_dir_all(dir);
}
