//! Real Redis for the tests: the shared server (`TESSERA_TEST_REDIS_URL`, provisioned by
//! `scripts/test`), and throwaway `redis-server` processes for outage and cluster tests.
//! Every test gets its own key prefix.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn shared_redis_url() -> String {
    std::env::var("TESSERA_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A key prefix no other test uses.
pub fn unique_prefix() -> String {
    let mut bytes = [0u8; 6];
    aws_lc_rs::rand::fill(&mut bytes).expect("random");
    format!("tessera-test:{}:", hex::encode(bytes))
}

/// A connection for reading back what Tessera wrote.
pub async fn redis_conn(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .expect("redis url")
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| panic!("Redis at {url} does not answer ({e}); run the tests with scripts/test, which provisions it"))
}

/// A free loopback port whose cluster-bus port (+10000) is free too.
fn free_port() -> u16 {
    loop {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        if port < 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

/// A `redis-server` process of this test's own.
pub struct RedisServer {
    pub port: u16,
    dir: tempfile::TempDir,
    cluster: bool,
    tls: bool,
    child: Option<Child>,
}

const TLS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls");

impl RedisServer {
    pub fn start() -> Self {
        Self::start_with(false, false)
    }

    /// A server that speaks only TLS, with the test CA's certificate for 127.0.0.1.
    pub fn start_tls() -> Self {
        Self::start_with(false, true)
    }

    pub fn tls_ca_file() -> PathBuf {
        PathBuf::from(TLS_DIR).join("ca.pem")
    }

    fn start_with(cluster: bool, tls: bool) -> Self {
        let mut server = Self {
            port: free_port(),
            dir: tempfile::tempdir().expect("tempdir"),
            cluster,
            tls,
            child: None,
        };
        server.resume();
        server
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    fn config_file(&self) -> PathBuf {
        self.dir.path().join("nodes.conf")
    }

    /// Starts (again) on the same port and waits until it answers.
    pub fn resume(&mut self) {
        let mut cmd = Command::new("redis-server");
        let port = self.port.to_string();
        if self.tls {
            let file = |name: &str| format!("{TLS_DIR}/{name}");
            cmd.args([
                "--port",
                "0",
                "--tls-port",
                &port,
                "--tls-auth-clients",
                "no",
            ])
            .args([
                "--tls-cert-file",
                &file("server.pem"),
                "--tls-key-file",
                &file("server.key"),
            ])
            .args(["--tls-ca-cert-file", &file("ca.pem")]);
        } else {
            cmd.args(["--port", &port]);
        }
        cmd.args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if self.cluster {
            cmd.args(["--cluster-enabled", "yes", "--cluster-config-file"])
                .arg(self.config_file());
        }
        let child = cmd
            .spawn()
            .expect("redis-server is installed (apt-get install redis-server)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server (as a crash would).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A real three-master Redis Cluster on loopback ports.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    pub async fn start() -> Self {
        let nodes: Vec<RedisServer> = (0..3)
            .map(|_| RedisServer::start_with(true, false))
            .collect();
        let addresses: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let status = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("redis-cli is installed (apt-get install redis-tools)");
        assert!(status.success(), "redis-cli --cluster create failed");
        let cluster = Self { nodes };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut ok = true;
            for node in &cluster.nodes {
                let mut conn = redis_conn(&node.url()).await;
                let info: String = redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query_async(&mut conn)
                    .await
                    .expect("cluster info");
                ok &= info.contains("cluster_state:ok");
            }
            if ok {
                return cluster;
            }
            assert!(
                Instant::now() < deadline,
                "the cluster did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }
}
