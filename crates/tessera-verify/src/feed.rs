//! Following Tessera's revocation feed (`GET /revocations/stream`, server-sent events): a
//! background task keeps the live revocations in memory, so revoked tokens are refused
//! offline ([`RevocationFeed`] holds its settings).
//!
//! Invariants: each revocation is kept until its `expires_at` and no longer; the task
//! reconnects with backoff and `Last-Event-ID`, so no revocation is missed across a
//! disconnect; an `event: reset` keeps what is known (every entry expires by itself) and
//! adds the fresh snapshot; the task holds the state weakly and ends once every verifier
//! sharing it is gone; a session is known only by its `sid` hash.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::introspect::{Introspection, Introspector};
use crate::{FetchError, SetupError, VerifyError};

/// Client credentials and settings for
/// [`VerifierBuilder::revocation_feed_with`](crate::VerifierBuilder::revocation_feed_with).
///
/// ```
/// # use std::time::Duration;
/// let feed = tessera_verify::RevocationFeed::new("inventory", "its-secret")
///     .introspect_when_down_for(Duration::from_secs(30));
/// ```
#[derive(Clone)]
pub struct RevocationFeed {
    client_id: String,
    client_secret: String,
    url: Option<String>,
    fallback_after: Option<Duration>,
    max_backoff: Duration,
}

impl std::fmt::Debug for RevocationFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevocationFeed")
            .field("client_id", &self.client_id)
            .field("url", &self.url)
            .field("fallback_after", &self.fallback_after)
            .finish_non_exhaustive()
    }
}

impl RevocationFeed {
    /// Follow the feed as this Tessera client (HTTP Basic; the client needs
    /// `revocation_feed = true`).
    pub fn new(client_id: impl Into<String>, client_secret: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            url: None,
            fallback_after: None,
            max_backoff: Duration::from_secs(5),
        }
    }

    /// The feed's URL (default `<issuer>/revocations/stream`).
    pub fn url(mut self, url: &str) -> Self {
        self.url = Some(url.to_owned());
        self
    }

    /// When the feed has been disconnected for longer than `after`, ask `/introspect`
    /// (with the same credentials) until it is back. Default: off (a disconnected
    /// verifier keeps refusing what it knows and accepts the rest).
    pub fn introspect_when_down_for(mut self, after: Duration) -> Self {
        self.fallback_after = Some(after);
        self
    }

    /// The longest wait between two reconnection attempts (default 5 s).
    pub fn max_backoff(mut self, backoff: Duration) -> Self {
        self.max_backoff = backoff;
        self
    }

    pub(crate) fn into_follower(self, issuer: &str) -> Result<Follower, SetupError> {
        // A stream is silent at most 15 s between keep-alives.
        let http = crate::http::streaming_client(Duration::from_secs(5), Duration::from_secs(40))?;
        let fallback = match self.fallback_after {
            Some(after) => Some((
                after,
                Introspection::new(&self.client_id, &self.client_secret)
                    .cache_ttl(Duration::from_secs(1))
                    .refusal_cache_ttl(Duration::from_secs(1))
                    .into_introspector(crate::http::client(Duration::from_secs(5))?, issuer),
            )),
            None => None,
        };
        Ok(Follower {
            shared: Arc::new(Shared {
                http,
                url: self
                    .url
                    .unwrap_or_else(|| format!("{issuer}/revocations/stream")),
                client_id: self.client_id,
                client_secret: self.client_secret,
                max_backoff: self.max_backoff,
                revoked: RwLock::new(Revoked::default()),
                connected: AtomicBool::new(false),
                down_since: Mutex::new(Some(Instant::now())),
            }),
            started: AtomicBool::new(false),
            fallback,
        })
    }
}

/// What a revocation check needs from a token (read after its signature is checked).
#[derive(Debug, Deserialize)]
pub(crate) struct Facts {
    #[serde(default)]
    jti: String,
    #[serde(default)]
    sid: Option<String>,
    #[serde(default)]
    sub: String,
    #[serde(default)]
    iat: i64,
}

/// The live revocations, each until its `expires_at`.
#[derive(Debug, Default)]
struct Revoked {
    jti: HashMap<String, i64>,
    sid: HashMap<String, i64>,
    /// user id → (tokens with `iat` below this are revoked, until).
    sub: HashMap<String, (i64, i64)>,
    sweep_at: usize,
}

/// The `data` of a `revocation` event.
#[derive(Debug, Deserialize)]
struct Event {
    kind: String,
    id: String,
    #[serde(default)]
    issued_before: Option<i64>,
    expires_at: i64,
}

impl Revoked {
    fn add(&mut self, e: Event, now: i64) {
        if e.expires_at <= now {
            return;
        }
        match e.kind.as_str() {
            "jti" => keep_max(self.jti.entry(e.id).or_insert(0), e.expires_at),
            "session" => keep_max(self.sid.entry(e.id).or_insert(0), e.expires_at),
            "subject" => {
                let (before, until) = self.sub.entry(e.id).or_insert((0, 0));
                keep_max(before, e.issued_before.unwrap_or(0));
                keep_max(until, e.expires_at);
            }
            other => tracing::debug!(kind = other, "revocation feed: unknown kind ignored"),
        }
        let len = self.len();
        if len >= self.sweep_at {
            self.jti.retain(|_, until| *until > now);
            self.sid.retain(|_, until| *until > now);
            self.sub.retain(|_, (_, until)| *until > now);
            self.sweep_at = (self.len() * 2).max(1024);
        }
    }

    fn len(&self) -> usize {
        self.jti.len() + self.sid.len() + self.sub.len()
    }

    fn covers(&self, t: &Facts, now: i64) -> bool {
        let live = |until: Option<&i64>| until.is_some_and(|u| *u > now);
        live(self.jti.get(&t.jti))
            || t.sid.as_ref().is_some_and(|sid| live(self.sid.get(sid)))
            || self
                .sub
                .get(&t.sub)
                .is_some_and(|(before, until)| *until > now && t.iat < *before)
    }
}

fn keep_max(slot: &mut i64, value: i64) {
    *slot = (*slot).max(value);
}

struct Shared {
    http: reqwest::Client,
    url: String,
    client_id: String,
    client_secret: String,
    max_backoff: Duration,
    revoked: RwLock<Revoked>,
    connected: AtomicBool,
    /// Since when the feed has been disconnected (`None` while connected).
    down_since: Mutex<Option<Instant>>,
}

/// The feed of one verifier (shared by its clones).
pub(crate) struct Follower {
    shared: Arc<Shared>,
    started: AtomicBool,
    fallback: Option<(Duration, Introspector)>,
}

impl Follower {
    /// Starts the background task on the current runtime, once.
    pub(crate) fn start(&self) {
        if self.started.load(Ordering::Relaxed) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.started.swap(true, Ordering::SeqCst) {
            return;
        }
        runtime.spawn(follow(Arc::downgrade(&self.shared)));
    }

    pub(crate) fn is_connected(&self) -> bool {
        self.shared.connected.load(Ordering::SeqCst)
    }

    /// Refuses a token the feed has seen revoked; while the feed has been down longer than
    /// the configured bound, asks `/introspect` instead.
    pub(crate) async fn check(&self, token: &str, facts: &Facts) -> Result<(), VerifyError> {
        self.start();
        let now = unix_now();
        let revoked = self
            .shared
            .revoked
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .covers(facts, now);
        if revoked {
            return Err(VerifyError::Revoked);
        }
        if let Some((after, introspector)) = &self.fallback {
            let down_since = *self
                .shared
                .down_since
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if down_since.is_some_and(|since| since.elapsed() > *after) {
                return introspector.check(token).await;
            }
        }
        Ok(())
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The background task: connect, read events, reconnect with backoff and `Last-Event-ID`.
async fn follow(shared: Weak<Shared>) {
    let mut last_id: Option<String> = None;
    let mut backoff = Duration::from_millis(100);
    loop {
        let Some(s) = shared.upgrade() else { return };
        let outcome = connect(&s, last_id.as_deref()).await;
        let max_backoff = s.max_backoff;
        match outcome {
            Ok(response) => {
                s.connected.store(true, Ordering::SeqCst);
                *s.down_since.lock().unwrap_or_else(|p| p.into_inner()) = None;
                tracing::info!(url = %s.url, "revocation feed connected");
                drop(s);
                backoff = Duration::from_millis(100);
                let ended = read(&shared, response, &mut last_id).await;
                let Some(s) = shared.upgrade() else { return };
                s.connected.store(false, Ordering::SeqCst);
                *s.down_since.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
                tracing::warn!(url = %s.url, reason = ended, "revocation feed disconnected; reconnecting");
            }
            Err(error) => {
                tracing::warn!(error = %error, "revocation feed: cannot connect");
                if error.http_status().is_some_and(|s| s == 401 || s == 403) {
                    backoff = max_backoff;
                }
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(max_backoff);
    }
}

async fn connect(s: &Shared, last_id: Option<&str>) -> Result<reqwest::Response, FetchError> {
    let request = format!("GET {}", s.url);
    let mut get = s
        .http
        .get(&s.url)
        .basic_auth(&s.client_id, Some(&s.client_secret))
        .header(reqwest::header::ACCEPT, "text/event-stream");
    if let Some(id) = last_id {
        get = get.header("last-event-id", id);
    }
    let response = get
        .send()
        .await
        .map_err(|e| FetchError::transport(request.clone(), e))?;
    if !response.status().is_success() {
        return Err(FetchError::status(request, response.status().as_u16()));
    }
    Ok(response)
}

/// Reads events until the stream ends; returns why it ended.
async fn read(
    shared: &Weak<Shared>,
    mut response: reqwest::Response,
    last_id: &mut Option<String>,
) -> &'static str {
    let mut buffer: Vec<u8> = Vec::new();
    loop {
        let chunk = match response.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => return "the stream ended",
            Err(_) => return "the connection failed",
        };
        let Some(s) = shared.upgrade() else {
            return "the verifier is gone";
        };
        buffer.extend_from_slice(&chunk);
        while let Some(end) = find_blank_line(&buffer) {
            let block: Vec<u8> = buffer.drain(..end.1).take(end.0).collect();
            handle(&s, &String::from_utf8_lossy(&block), last_id);
        }
        if buffer.len() > 1 << 20 {
            return "an event exceeds 1 MiB";
        }
    }
}

/// The end of the first event block: (length without the blank line, length with it).
fn find_blank_line(buffer: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i + 1 < buffer.len() {
        match (buffer[i], buffer[i + 1]) {
            (b'\n', b'\n') => return Some((i, i + 2)),
            (b'\r', b'\n') if buffer.get(i + 2..i + 4) == Some(b"\r\n") => {
                return Some((i, i + 4));
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// One SSE event block.
fn handle(s: &Shared, block: &str, last_id: &mut Option<String>) {
    let (mut id, mut event, mut data) = (None, "message", String::new());
    for line in block.lines() {
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "id" => id = Some(value),
            "event" => event = value,
            "data" => data.push_str(value),
            _ => {} // comments (": keep-alive"), retry
        }
    }
    match event {
        "revocation" => match serde_json::from_str::<Event>(&data) {
            Ok(e) => {
                s.revoked
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .add(e, unix_now());
            }
            Err(error) => tracing::warn!(%error, "revocation feed: unreadable event skipped"),
        },
        "reset" => tracing::info!(
            "revocation feed: reset (our position was too old); the live revocations follow"
        ),
        "error" => tracing::warn!(data = %data, "revocation feed: the server ends the stream"),
        _ => {}
    }
    if let Some(id) = id.filter(|i| !i.is_empty()) {
        *last_id = Some(id.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(jti: &str, sid: Option<&str>, sub: &str, iat: i64) -> Facts {
        Facts {
            jti: jti.into(),
            sid: sid.map(str::to_owned),
            sub: sub.into(),
            iat,
        }
    }

    fn event(kind: &str, id: &str, issued_before: Option<i64>, expires_at: i64) -> Event {
        Event {
            kind: kind.into(),
            id: id.into(),
            issued_before,
            expires_at,
        }
    }

    #[test]
    fn revocations_cover_their_tokens_until_they_expire() {
        let mut r = Revoked::default();
        r.add(event("jti", "j", None, 2_000), 1_000);
        r.add(event("session", "s", None, 2_000), 1_000);
        r.add(event("subject", "u", Some(995), 2_000), 1_000);
        assert!(r.covers(&facts("j", None, "x", 0), 1_500));
        assert!(!r.covers(&facts("j", None, "x", 0), 2_000), "expired");
        assert!(r.covers(&facts("k", Some("s"), "x", 0), 1_500));
        assert!(r.covers(&facts("k", None, "u", 994), 1_500));
        assert!(
            !r.covers(&facts("k", None, "u", 995), 1_500),
            "issued after the watermark"
        );
        assert!(!r.covers(&facts("k", None, "other", 0), 1_500));
    }

    #[test]
    fn event_blocks_split_on_blank_lines() {
        assert_eq!(find_blank_line(b"id: 1\ndata: x\n\nrest"), Some((13, 15)));
        assert_eq!(find_blank_line(b"a\r\n\r\nb"), Some((1, 5)));
        assert_eq!(find_blank_line(b"partial\n"), None);
    }
}
