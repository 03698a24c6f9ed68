//! The feed of the Redis denylist: a Redis stream `<prefix>feed` (`XADD … MINID ~`, so
//! entries older than the longest entry lifetime go), tailed by every replica with
//! `XREAD BLOCK` on a connection of its own and fanned out to its subscribers.
//!
//! Invariants: ids are the stream's, so they are the same on every replica and survive
//! restarts; subscribers are served only while the tail follows the stream (it has fixed
//! its position), so every event after a subscriber's backlog reaches it live; when the
//! tail loses Redis every subscriber is told (`Down`) and the tail resumes from its last
//! id once Redis is back, so nothing is skipped.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::{broadcast, watch};

use super::{Backlog, Entry, EventId, LIVE_BUFFER, Resume, RevocationEvent, Signal, unix_ms};
use crate::infra::clock::UnixTime;
use crate::infra::redis::{RedisClient, RedisUnavailable};

/// How long one `XREAD` blocks (single node).
const BLOCK: Duration = Duration::from_secs(5);
/// Entries per `XRANGE` / `XREAD` page.
const PAGE: usize = 1000;
/// How long a new subscriber waits for the tail to follow the stream.
const READY_WAIT: Duration = Duration::from_secs(2);

type StreamEntry = (String, HashMap<String, String>);

#[derive(Debug)]
pub struct RedisFeed {
    client: RedisClient,
    key: String,
    horizon_ms: u64,
    sender: broadcast::Sender<Signal>,
    /// Whether the tail follows the stream now.
    ready: watch::Sender<bool>,
}

impl RedisFeed {
    pub fn new(client: RedisClient, key: &str, horizon_seconds: u64) -> Self {
        Self {
            client,
            key: key.to_owned(),
            horizon_ms: horizon_seconds * 1000,
            sender: broadcast::channel(LIVE_BUFFER).0,
            ready: watch::channel(false).0,
        }
    }

    fn unavailable(&self, reason: &str) -> RedisUnavailable {
        RedisUnavailable {
            target: self.client.target().to_owned(),
            reason: reason.to_owned(),
        }
    }

    pub(super) async fn publish(
        &self,
        event: &RevocationEvent,
        now: UnixTime,
    ) -> Result<EventId, RedisUnavailable> {
        let min_id = unix_ms(now).saturating_sub(self.horizon_ms);
        let mut cmd = redis::cmd("XADD");
        cmd.arg(&self.key)
            .arg("MINID")
            .arg("~")
            .arg(min_id)
            .arg("*")
            .arg("k")
            .arg(&event.kind)
            .arg("i")
            .arg(&event.id)
            .arg("e")
            .arg(event.expires_at);
        if let Some(before) = event.issued_before {
            cmd.arg("b").arg(before);
        }
        let id: String = self.client.query(cmd).await?;
        id.parse()
            .map_err(|()| self.unavailable("unexpected XADD answer"))
    }

    pub(super) async fn subscribe(
        &self,
        after: Resume,
        now: UnixTime,
    ) -> Result<(broadcast::Receiver<Signal>, Backlog), RedisUnavailable> {
        let mut ready = self.ready.subscribe();
        tokio::time::timeout(READY_WAIT, ready.wait_for(|up| *up))
            .await
            .map_err(|_| self.unavailable("the feed is not following the stream"))?
            .map_err(|_| self.unavailable("the feed has stopped"))?;
        let live = self.sender.subscribe();
        let (reset, from) = match after {
            Resume::Start => (false, None),
            Resume::Reset => (true, None),
            Resume::After(id) => match self.last_id().await? {
                Some(last) if id <= last => (false, Some(id)),
                // Past the stream's end: the stream was lost (Redis flushed).
                _ => (true, None),
            },
        };
        let entries = self.range(from, now).await?;
        Ok((live, Backlog { reset, entries }))
    }

    async fn last_id(&self) -> Result<Option<EventId>, RedisUnavailable> {
        let mut cmd = redis::cmd("XREVRANGE");
        cmd.arg(&self.key).arg("+").arg("-").arg("COUNT").arg(1);
        let last: Vec<StreamEntry> = self.client.query(cmd).await?;
        Ok(last.first().and_then(|(id, _)| id.parse().ok()))
    }

    /// Every live entry after `after` (all of them for `None`), page by page.
    async fn range(
        &self,
        after: Option<EventId>,
        now: UnixTime,
    ) -> Result<Vec<Arc<Entry>>, RedisUnavailable> {
        let mut start = after.map_or_else(|| "-".to_owned(), |id| format!("({id}"));
        let mut out = Vec::new();
        loop {
            let mut cmd = redis::cmd("XRANGE");
            cmd.arg(&self.key)
                .arg(&start)
                .arg("+")
                .arg("COUNT")
                .arg(PAGE);
            let page: Vec<StreamEntry> = self.client.query(cmd).await?;
            let full = page.len() == PAGE;
            for (id, fields) in &page {
                if let Some(entry) = parse(id, fields).filter(|e| e.event.expires_at > now) {
                    out.push(Arc::new(entry));
                }
            }
            match page.last() {
                Some((id, _)) if full => start = format!("({id}"),
                _ => return Ok(out),
            }
        }
    }

    /// Follows the stream in a background task on the current runtime, until the feed is
    /// dropped.
    pub(super) fn spawn_tail(this: &Arc<Self>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let feed = Arc::downgrade(this);
        runtime.spawn(tail(feed));
    }
}

/// The tail: follow, and on a failure tell the subscribers, wait, and follow again from
/// the last id seen.
async fn tail(feed: Weak<RedisFeed>) {
    let mut position: Option<String> = None;
    let mut retry = Duration::from_millis(100);
    loop {
        let error = match follow(&feed, &mut position, &mut retry).await {
            Ok(()) => return,
            Err(e) => e,
        };
        let Some(f) = feed.upgrade() else { return };
        if f.ready.send_replace(false) {
            tracing::warn!(error = %error, "revocation feed: lost the stream; subscribers disconnected");
        }
        let _ = f.sender.send(Signal::Down);
        drop(f);
        tokio::time::sleep(retry).await;
        retry = (retry * 2).min(Duration::from_secs(2));
    }
}

/// Follows the stream until an error, or `Ok` when the feed is gone.
async fn follow(
    feed: &Weak<RedisFeed>,
    position: &mut Option<String>,
    retry: &mut Duration,
) -> Result<(), RedisUnavailable> {
    let (client, key) = match feed.upgrade() {
        Some(f) => (f.client.clone(), f.key.clone()),
        None => return Ok(()),
    };
    let mut conn = client.blocking(BLOCK).await?;
    if position.is_none() {
        let mut cmd = redis::cmd("XREVRANGE");
        cmd.arg(&key).arg("+").arg("-").arg("COUNT").arg(1);
        let last: Vec<StreamEntry> = conn.query(cmd).await?;
        *position = Some(
            last.first()
                .map_or_else(|| "0-0".into(), |(id, _)| id.clone()),
        );
    }
    match feed.upgrade() {
        Some(f) => {
            if !f.ready.send_replace(true) {
                tracing::info!("revocation feed: following the stream");
            }
        }
        None => return Ok(()),
    }
    *retry = Duration::from_millis(100);
    let block_ms = conn.block.as_millis().max(1) as u64;
    loop {
        let from = position.clone().unwrap_or_else(|| "0-0".into());
        let mut cmd = redis::cmd("XREAD");
        cmd.arg("COUNT")
            .arg(PAGE)
            .arg("BLOCK")
            .arg(block_ms)
            .arg("STREAMS")
            .arg(&key)
            .arg(&from);
        let read: Option<Vec<(String, Vec<StreamEntry>)>> = conn.query(cmd).await?;
        let Some(f) = feed.upgrade() else {
            return Ok(());
        };
        for (_, entries) in read.unwrap_or_default() {
            for (id, fields) in entries {
                match parse(&id, &fields) {
                    Some(entry) => {
                        let _ = f.sender.send(Signal::Event(Arc::new(entry)));
                    }
                    None => tracing::warn!(id, "revocation feed: skipped a malformed entry"),
                }
                *position = Some(id);
            }
        }
    }
}

/// A stream entry: fields `k` (kind), `i` (id), `e` (expires_at), `b` (issued_before).
fn parse(id: &str, fields: &HashMap<String, String>) -> Option<Entry> {
    Some(Entry {
        id: id.parse().ok()?,
        event: RevocationEvent {
            kind: fields.get("k")?.clone(),
            id: fields.get("i")?.clone(),
            issued_before: fields.get("b").and_then(|b| b.parse().ok()),
            expires_at: fields.get("e")?.parse().ok()?,
        },
    })
}
