//! The revocation feed: every revocation (HTTP or CLI) becomes an event with an id, and
//! subscribers get the live revocations, then each new one as it happens, so services can
//! refuse revoked tokens offline. With the Redis denylist the feed is a Redis stream that
//! every replica tails; with the memory denylist it is a log in this process.
//!
//! Invariants: ids are `<ms>-<seq>`, increasing, and the same on every replica (Redis
//! stream ids); an event names a session only by its `sid` hash; a subscriber gets its
//! backlog, then live events, with no gap and no duplicate (it joins the live channel
//! before reading the backlog and skips live events at or below the backlog's last id);
//! the live channel is bounded: a subscriber that falls behind is dropped and resumes with
//! `Last-Event-ID`; subscribers per client are capped.

mod memory;
mod redis;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{broadcast, watch};

use crate::config::Settings;
use crate::denylist::{DenylistStore, Revocation};
use crate::infra::clock::UnixTime;
use crate::infra::redis::RedisUnavailable;
pub use memory::MemoryFeed;
pub use redis::RedisFeed;

/// Live events buffered per replica; a subscriber this far behind is dropped.
const LIVE_BUFFER: usize = 4096;

/// An event id: a Redis stream id, `<milliseconds>-<sequence>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EventId {
    pub ms: u64,
    pub seq: u64,
}

impl EventId {
    /// The next id after `self` at wall-clock `now_ms` (the memory feed's ids).
    fn next(self, now_ms: u64) -> Self {
        if now_ms > self.ms {
            Self { ms: now_ms, seq: 0 }
        } else {
            Self {
                ms: self.ms,
                seq: self.seq + 1,
            }
        }
    }
}

impl std::fmt::Display for EventId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

impl std::str::FromStr for EventId {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        let (ms, seq) = s.trim().split_once('-').ok_or(())?;
        Ok(Self {
            ms: ms.parse().map_err(|_| ())?,
            seq: seq.parse().map_err(|_| ())?,
        })
    }
}

/// One revocation as subscribers see it (the SSE `data`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct RevocationEvent {
    /// `jti`, `session` or `subject`.
    pub kind: String,
    /// The jti, the session's `sid` (its hash, never the session token), or the user id.
    pub id: String,
    /// Subject only: every token of that user whose `iat` is below this is revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_before: Option<UnixTime>,
    /// When the revocation stops mattering (nothing it covers can still be valid).
    pub expires_at: UnixTime,
}

impl RevocationEvent {
    /// The event of `revocation`, stored at `now` for `ttl` seconds. A subject watermark
    /// is on the real issuance time; the event states it on `iat`, which tokens carry
    /// backdated by `clock_skew` seconds.
    pub fn of(revocation: &Revocation, now: UnixTime, ttl: u64, clock_skew: u64) -> Self {
        let issued_before = match revocation {
            Revocation::Subject { issued_up_to, .. } => Some(issued_up_to - clock_skew as i64 + 1),
            _ => None,
        };
        Self {
            kind: revocation.kind().to_owned(),
            id: revocation.id().to_owned(),
            issued_before,
            expires_at: now + ttl as i64,
        }
    }
}

/// An event with its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: EventId,
    pub event: RevocationEvent,
}

/// What the live channel carries.
#[derive(Debug, Clone)]
pub(crate) enum Signal {
    Event(Arc<Entry>),
    /// The store cannot be followed (Redis down): every subscriber is disconnected.
    Down,
}

/// Why a subscription was refused.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("the revocation feed cannot be read")]
    Unavailable(#[source] RedisUnavailable),
    #[error("this client already has {limit} feed subscribers")]
    TooManySubscribers { limit: usize },
}

/// The backlog a subscriber starts with.
#[derive(Debug)]
pub(crate) struct Backlog {
    /// The `Last-Event-ID` could not be resumed from: the entries are every live one.
    pub reset: bool,
    pub entries: Vec<Arc<Entry>>,
}

/// The feed's store: this process's log or a Redis stream.
#[derive(Debug)]
enum Store {
    Memory(MemoryFeed),
    Redis(Arc<RedisFeed>),
}

/// The revocation feed of this process.
#[derive(Debug)]
pub struct Feed {
    store: Store,
    clock_skew: u64,
    max_subscribers: usize,
    subscribers: Arc<Mutex<HashMap<String, usize>>>,
    /// Set on shutdown: every subscription ends.
    closing: watch::Sender<bool>,
}

impl Feed {
    /// The feed of the configured denylist (nothing runs until [`Feed::start`]).
    pub fn new(settings: &Settings, denylist: &DenylistStore) -> Self {
        let horizon = settings
            .denylist
            .session_ttl_seconds
            .max(settings.token.max_ttl_seconds + settings.token.clock_skew_seconds);
        let store = match denylist.redis_parts() {
            Some((client, prefix)) => Store::Redis(Arc::new(RedisFeed::new(
                client.clone(),
                &format!("{prefix}feed"),
                horizon,
            ))),
            None => Store::Memory(MemoryFeed::new(horizon)),
        };
        Self {
            store,
            clock_skew: settings.token.clock_skew_seconds,
            max_subscribers: settings.server.max_feed_subscribers,
            subscribers: Arc::default(),
            closing: watch::channel(false).0,
        }
    }

    /// Ends every subscription (shutdown: streams would otherwise hold it up).
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Starts following the Redis stream (a background task on the current runtime).
    pub fn start(&self) {
        if let Store::Redis(r) = &self.store {
            RedisFeed::spawn_tail(r);
        }
    }

    /// Records `revocation`, stored at `now` for `ttl` seconds; returns its event id.
    pub async fn publish(
        &self,
        revocation: &Revocation,
        now: UnixTime,
        ttl: u64,
    ) -> Result<EventId, RedisUnavailable> {
        let event = RevocationEvent::of(revocation, now, ttl, self.clock_skew);
        match &self.store {
            Store::Memory(m) => Ok(m.publish(event, now)),
            Store::Redis(r) => r.publish(&event, now).await,
        }
    }

    /// A subscription of `client_id`: the backlog after `last_event_id` (or every live
    /// revocation), then live events.
    pub async fn subscribe(
        &self,
        client_id: &str,
        last_event_id: Option<&str>,
        now: UnixTime,
    ) -> Result<Subscription, FeedError> {
        let slot = self.take_slot(client_id)?;
        let after = match last_event_id {
            None => Resume::Start,
            Some(text) => text.parse().map_or(Resume::Reset, Resume::After),
        };
        let (live, backlog) = match &self.store {
            Store::Memory(m) => m.subscribe(after, now),
            Store::Redis(r) => r
                .subscribe(after, now)
                .await
                .map_err(FeedError::Unavailable)?,
        };
        let last = backlog
            .entries
            .last()
            .map(|e| e.id)
            .or(match after {
                Resume::After(id) if !backlog.reset => Some(id),
                _ => None,
            })
            .unwrap_or_default();
        Ok(Subscription {
            reset: backlog.reset,
            backlog: backlog.entries,
            live,
            closing: self.closing.subscribe(),
            last,
            _slot: slot,
        })
    }

    fn take_slot(&self, client_id: &str) -> Result<Slot, FeedError> {
        let mut counts = self.subscribers.lock().unwrap_or_else(|p| p.into_inner());
        let count = counts.entry(client_id.to_owned()).or_default();
        if *count >= self.max_subscribers {
            return Err(FeedError::TooManySubscribers {
                limit: self.max_subscribers,
            });
        }
        *count += 1;
        ::metrics::gauge!(crate::infra::metrics::FEED_SUBSCRIBERS).increment(1.0);
        Ok(Slot {
            counts: self.subscribers.clone(),
            client_id: client_id.to_owned(),
        })
    }
}

/// Where a subscriber starts.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Resume {
    /// No `Last-Event-ID`: every live revocation.
    Start,
    /// After this id, if it can be resumed from.
    After(EventId),
    /// An id that is not one of ours: a reset.
    Reset,
}

/// Counts one subscriber of a client while it lives.
#[derive(Debug)]
struct Slot {
    counts: Arc<Mutex<HashMap<String, usize>>>,
    client_id: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = counts.get_mut(&self.client_id) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.client_id);
            }
        }
        ::metrics::gauge!(crate::infra::metrics::FEED_SUBSCRIBERS).decrement(1.0);
    }
}

/// One subscriber: its backlog, then [`Subscription::next`] for live events.
#[derive(Debug)]
pub struct Subscription {
    /// The `Last-Event-ID` was too old (or not ours): send `event: reset` first.
    pub reset: bool,
    /// Sent before any live event, in id order.
    pub backlog: Vec<Arc<Entry>>,
    live: broadcast::Receiver<Signal>,
    closing: watch::Receiver<bool>,
    /// The last id this subscriber has (or will have, from the backlog).
    last: EventId,
    _slot: Slot,
}

/// What happens next on a subscription.
#[derive(Debug)]
pub enum Next {
    Event(Arc<Entry>),
    /// The subscriber fell behind the bounded live buffer: drop it (it resumes).
    Lagged,
    /// The store cannot be followed (Redis down): end with an error.
    Down,
    /// The feed is gone (shutdown).
    Closed,
}

impl Subscription {
    /// The next live event after the backlog.
    pub async fn next(&mut self) -> Next {
        loop {
            let received = tokio::select! {
                r = self.live.recv() => r,
                _ = self.closing.wait_for(|c| *c) => return Next::Closed,
            };
            match received {
                Ok(Signal::Event(entry)) if entry.id <= self.last => continue,
                Ok(Signal::Event(entry)) => {
                    self.last = entry.id;
                    return Next::Event(entry);
                }
                Ok(Signal::Down) => return Next::Down,
                Err(broadcast::error::RecvError::Lagged(_)) => return Next::Lagged,
                Err(broadcast::error::RecvError::Closed) => return Next::Closed,
            }
        }
    }
}

/// Milliseconds since the epoch (ids of the memory feed; trimming horizons).
pub(crate) fn unix_ms(now: UnixTime) -> u64 {
    u64::try_from(now).unwrap_or(0) * 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_order_by_time_then_sequence_and_round_trip() {
        let a: EventId = "1700000000000-0".parse().expect("id");
        let b: EventId = "1700000000000-1".parse().expect("id");
        let c: EventId = "1700000000001-0".parse().expect("id");
        assert!(a < b && b < c);
        assert_eq!(b.to_string(), "1700000000000-1");
        assert!("nonsense".parse::<EventId>().is_err());
        assert_eq!(
            a.next(1_699_999_999_999),
            b,
            "a clock step back still increases"
        );
    }

    #[test]
    fn a_subject_event_states_its_watermark_on_iat() {
        let r = Revocation::Subject {
            sub: "u".into(),
            issued_up_to: 1_000,
        };
        let e = RevocationEvent::of(&r, 1_000, 3_605, 5);
        // Server: revoked iff iat + 5 <= 1000, i.e. iat < 996.
        assert_eq!(e.issued_before, Some(996));
        assert_eq!(e.expires_at, 4_605);
        let json = serde_json::to_value(&e).expect("json");
        assert_eq!(json["kind"], "subject");
        let jti = RevocationEvent::of(
            &Revocation::Jti {
                jti: "j".into(),
                expires_at: 1_060,
            },
            1_000,
            60,
            5,
        );
        assert!(
            serde_json::to_value(&jti).expect("json")["issued_before"].is_null(),
            "only subjects carry issued_before"
        );
    }
}
