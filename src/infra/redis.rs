//! One Redis connection for the whole process: a multiplexed, self-reconnecting
//! `ConnectionManager` (single node, `redis://` or `rediss://`) or a cluster connection.
//!
//! Invariants: connecting is lazy, so Tessera starts while Redis is down and recovers by
//! itself when it returns; every call is bounded by `timeout`; a URL's password never
//! appears in an error or log line (errors name only the host).

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, FromRedisValue, Pipeline, RedisFuture, Value};

use crate::config::RedisUrl;

/// Redis could not answer in time (down, refusing, timing out, or a protocol error).
/// Shown as `redis <host:port>: <reason>` (`redis cluster <seeds>: …` for a cluster), as
/// `/readyz` reports it; never with a password.
#[derive(Debug, Clone, thiserror::Error)]
#[error("redis {target}: {reason}")]
pub struct RedisUnavailable {
    pub target: String,
    pub reason: String,
}

#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
    /// A connection of its own, for blocking commands.
    Dedicated(MultiplexedConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
            Self::Dedicated(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Dedicated(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
            Self::Dedicated(c) => c.get_db(),
        }
    }
}

#[allow(
    clippy::large_enum_variant,
    reason = "one per client, behind an Arc; boxing would only add an indirection"
)]
enum Source {
    /// Each thread's manager connects lazily and reconnects by itself.
    Single {
        client: redis::Client,
        config: ConnectionManagerConfig,
    },
    /// Each thread's cluster connection is made on first use and kept; it re-discovers
    /// slots and reconnects nodes by itself.
    Cluster(ClusterClient),
}

/// A connection slot of one thread for one client.
type Slot = Arc<tokio::sync::OnceCell<Conn>>;

thread_local! {
    /// One multiplexed connection per (client, thread): every server worker talks to Redis
    /// over its own connection, whose driver runs on that worker's runtime, so a command
    /// costs no cross-thread wake-up. A server has as many connections as workers.
    static CONNECTIONS: RefCell<HashMap<u64, Slot>> = RefCell::new(HashMap::new());
}

static NEXT_CLIENT_ID: AtomicU64 = AtomicU64::new(0);

#[derive(Clone)]
pub struct RedisClient {
    id: u64,
    source: Arc<Source>,
    timeout: Duration,
    target: Arc<str>,
}

impl std::fmt::Debug for RedisClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisClient")
            .field("target", &self.target)
            .finish()
    }
}

impl RedisClient {
    /// A single node (`redis://` or `rediss://` URL; `ca_pem` replaces the system roots
    /// for TLS). Does not connect yet.
    pub fn single(
        url: &RedisUrl,
        timeout: Duration,
        ca_pem: Option<&[u8]>,
    ) -> Result<Self, RedisUnavailable> {
        let target = url.address().to_owned();
        let fail = |e: redis::RedisError| RedisUnavailable {
            target: target.clone(),
            reason: format!("invalid URL or TLS setup ({:?})", e.kind()),
        };
        let client = match ca_pem {
            Some(ca) => redis::Client::build_with_tls(url.expose_url(), tls_roots(ca)),
            None => redis::Client::open(url.expose_url()),
        }
        .map_err(fail)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        Ok(Self::new(
            Source::Single { client, config },
            timeout,
            target,
        ))
    }

    /// A Redis Cluster seeded from `nodes`. Does not connect yet.
    pub fn cluster(
        nodes: &[RedisUrl],
        timeout: Duration,
        ca_pem: Option<&[u8]>,
    ) -> Result<Self, RedisUnavailable> {
        let seeds = nodes
            .iter()
            .map(RedisUrl::address)
            .collect::<Vec<_>>()
            .join(",");
        let target = format!("cluster {seeds}");
        let mut builder = ClusterClient::builder(nodes.iter().map(RedisUrl::expose_url))
            .connection_timeout(timeout)
            .response_timeout(timeout)
            .retries(1);
        if let Some(ca) = ca_pem {
            builder = builder.certs(tls_roots(ca));
        }
        let client = builder.build().map_err(|e| RedisUnavailable {
            target: target.clone(),
            reason: format!("invalid cluster node list ({:?})", e.kind()),
        })?;
        Ok(Self::new(Source::Cluster(client), timeout, target))
    }

    fn new(source: Source, timeout: Duration, target: String) -> Self {
        Self {
            id: NEXT_CLIENT_ID.fetch_add(1, Ordering::Relaxed),
            source: Arc::new(source),
            timeout,
            target: target.into(),
        }
    }

    pub fn target(&self) -> &str {
        &self.target
    }

    fn unavailable(&self, reason: impl Into<String>) -> RedisUnavailable {
        RedisUnavailable {
            target: self.target.to_string(),
            reason: reason.into(),
        }
    }

    /// This thread's connection, made on first use.
    async fn conn(&self) -> Result<Conn, RedisUnavailable> {
        let slot = CONNECTIONS.with(|c| c.borrow_mut().entry(self.id).or_default().clone());
        let conn = slot
            .get_or_try_init(|| async {
                match &*self.source {
                    Source::Single { client, config } => {
                        ConnectionManager::new_lazy_with_config(client.clone(), config.clone())
                            .map(Conn::Single)
                    }
                    Source::Cluster(client) => {
                        client.get_async_connection().await.map(Conn::Cluster)
                    }
                }
            })
            .await
            .map_err(|e| self.unavailable(error_reason(&e)))?;
        Ok(conn.clone())
    }

    /// Runs `f` on a connection, bounded by the timeout.
    async fn run<T, F, Fut>(&self, f: F) -> Result<T, RedisUnavailable>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let work = async {
            let conn = self.conn().await?;
            f(conn)
                .await
                .map_err(|e| self.unavailable(error_reason(&e)))
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| self.unavailable("timed out"))?
    }

    /// One command, one round trip.
    pub async fn query<T: FromRedisValue + Send>(&self, cmd: Cmd) -> Result<T, RedisUnavailable> {
        self.run(|mut c| async move { cmd.query_async(&mut c).await })
            .await
    }

    /// A script (EVALSHA, falling back to EVAL), one round trip.
    pub async fn script<T: FromRedisValue + Send>(
        &self,
        script: &redis::Script,
        keys: &[&str],
        args: &[&str],
    ) -> Result<T, RedisUnavailable> {
        let mut invocation = script.prepare_invoke();
        for k in keys {
            invocation.key(*k);
        }
        for a in args {
            invocation.arg(*a);
        }
        self.run(|mut c| async move { invocation.invoke_async(&mut c).await })
            .await
    }

    /// A connection of its own for a blocking command (`XREAD BLOCK`), which would stall
    /// the shared multiplexed one. Single node: its responses may take `block` longer
    /// than the timeout; cluster: the cluster's timeout bounds it, so `block` is half the
    /// timeout there. Returns the connection and the block time to use with it.
    pub async fn blocking(&self, block: Duration) -> Result<BlockingConnection, RedisUnavailable> {
        let (conn, block) = match &*self.source {
            Source::Single { client, .. } => {
                let config = redis::AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(self.timeout))
                    .set_response_timeout(Some(block + self.timeout));
                let connect = client.get_multiplexed_async_connection_with_config(&config);
                let conn = tokio::time::timeout(self.timeout, connect)
                    .await
                    .map_err(|_| self.unavailable("timed out"))?
                    .map_err(|e| self.unavailable(error_reason(&e)))?;
                (Conn::Dedicated(conn), block)
            }
            Source::Cluster(client) => {
                let conn = tokio::time::timeout(self.timeout, client.get_async_connection())
                    .await
                    .map_err(|_| self.unavailable("timed out"))?
                    .map_err(|e| self.unavailable(error_reason(&e)))?;
                (Conn::Cluster(conn), (self.timeout / 2).min(block))
            }
        };
        Ok(BlockingConnection {
            conn,
            block,
            limit: block + self.timeout,
            client: self.clone(),
        })
    }

    /// `PING`, for readiness.
    pub async fn ping(&self) -> Result<(), RedisUnavailable> {
        let pong: String = self.query(redis::cmd("PING")).await?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(self.unavailable("unexpected PING answer"))
        }
    }
}

/// A connection for blocking commands (see [`RedisClient::blocking`]).
pub struct BlockingConnection {
    conn: Conn,
    /// How long a blocking command may block on this connection.
    pub block: Duration,
    limit: Duration,
    client: RedisClient,
}

impl BlockingConnection {
    /// One command, bounded by the block time plus the timeout.
    pub async fn query<T: FromRedisValue + Send>(
        &mut self,
        cmd: Cmd,
    ) -> Result<T, RedisUnavailable> {
        match tokio::time::timeout(self.limit, cmd.query_async(&mut self.conn)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(self.client.unavailable(error_reason(&e))),
            Err(_) => Err(self.client.unavailable("timed out")),
        }
    }
}

fn tls_roots(ca_pem: &[u8]) -> redis::TlsCertificates {
    redis::TlsCertificates {
        client_tls: None,
        root_cert: Some(ca_pem.to_vec()),
    }
}

/// A short reason without the server's free text (which may echo key names).
fn error_reason(e: &redis::RedisError) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connection_refusal() {
        "connection refused".into()
    } else if e.is_connection_dropped() || e.is_io_error() {
        "connection lost".into()
    } else {
        format!("error ({:?})", e.kind())
    }
}
