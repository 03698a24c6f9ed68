//! The feed of the memory denylist: a log in this process with the Redis stream's
//! semantics (ids `<ms>-<seq>`, entries kept for the longest entry lifetime).
//!
//! Invariant: appending and joining the live channel happen under one lock, so a
//! subscriber's backlog and its live events neither overlap nor leave a gap. Ids from
//! before this process started cannot be resumed from (the log died with the old process).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

use super::{Backlog, Entry, EventId, LIVE_BUFFER, Resume, RevocationEvent, Signal, unix_ms};
use crate::infra::clock::UnixTime;

#[derive(Debug)]
pub struct MemoryFeed {
    log: Mutex<Log>,
    sender: broadcast::Sender<Signal>,
    horizon_ms: u64,
}

#[derive(Debug)]
struct Log {
    entries: VecDeque<Arc<Entry>>,
    /// Ids below this are from before this process: not resumable.
    first: EventId,
    last: EventId,
}

impl MemoryFeed {
    pub fn new(horizon_seconds: u64) -> Self {
        let start = EventId {
            ms: wall_ms(),
            seq: 0,
        };
        Self {
            log: Mutex::new(Log {
                entries: VecDeque::new(),
                first: start,
                last: start,
            }),
            sender: broadcast::channel(LIVE_BUFFER).0,
            horizon_ms: horizon_seconds * 1000,
        }
    }

    pub(super) fn publish(&self, event: RevocationEvent, now: UnixTime) -> EventId {
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        let id = log.last.next(wall_ms());
        log.last = id;
        let horizon = unix_ms(now).saturating_sub(self.horizon_ms);
        while log.entries.front().is_some_and(|e| e.id.ms < horizon) {
            log.entries.pop_front();
        }
        let entry = Arc::new(Entry { id, event });
        log.entries.push_back(entry.clone());
        let _ = self.sender.send(Signal::Event(entry));
        id
    }

    pub(super) fn subscribe(
        &self,
        after: Resume,
        now: UnixTime,
    ) -> (broadcast::Receiver<Signal>, Backlog) {
        let log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        let live = self.sender.subscribe();
        let (reset, after) = match after {
            Resume::Start => (false, None),
            Resume::After(id) if id >= log.first && id <= log.last => (false, Some(id)),
            Resume::After(_) | Resume::Reset => (true, None),
        };
        let entries = log
            .entries
            .iter()
            .filter(|e| after.is_none_or(|a| e.id > a) && e.event.expires_at > now)
            .cloned()
            .collect();
        (live, Backlog { reset, entries })
    }
}

fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::Next;

    fn event(id: &str, expires_at: UnixTime) -> RevocationEvent {
        RevocationEvent {
            kind: "jti".into(),
            id: id.into(),
            issued_before: None,
            expires_at,
        }
    }

    #[test]
    fn a_new_subscriber_gets_the_live_entries_and_a_resumer_only_the_later_ones() {
        let feed = MemoryFeed::new(3600);
        let a = feed.publish(event("a", 2_000), 1_000);
        let _expired = feed.publish(event("gone", 1_000), 1_000);
        let c = feed.publish(event("c", 2_000), 1_000);
        let (_, all) = feed.subscribe(Resume::Start, 1_500);
        let ids: Vec<_> = all.entries.iter().map(|e| e.event.id.as_str()).collect();
        assert_eq!(ids, ["a", "c"]);
        assert!(!all.reset);
        let (_, later) = feed.subscribe(Resume::After(a), 1_500);
        assert_eq!(later.entries.len(), 1);
        assert_eq!(later.entries[0].id, c);
        let (_, old) = feed.subscribe(Resume::After(EventId { ms: 1, seq: 0 }), 1_500);
        assert!(old.reset, "an id from before this process is a reset");
        assert_eq!(old.entries.len(), 2);
    }

    #[tokio::test]
    async fn live_events_follow_the_backlog_without_duplicates() {
        let feed = Arc::new(crate::feed::Feed {
            store: super::super::Store::Memory(MemoryFeed::new(3600)),
            clock_skew: 5,
            max_subscribers: 1,
            subscribers: Arc::default(),
            closing: tokio::sync::watch::channel(false).0,
        });
        let revocation = crate::denylist::Revocation::Jti {
            jti: "j1".into(),
            expires_at: 2_000,
        };
        feed.publish(&revocation, 1_000, 1_000)
            .await
            .expect("publish");
        let mut sub = feed.subscribe("svc", None, 1_000).await.expect("subscribe");
        assert_eq!(sub.backlog.len(), 1);
        assert!(
            matches!(
                feed.subscribe("svc", None, 1_000).await,
                Err(crate::feed::FeedError::TooManySubscribers { limit: 1 })
            ),
            "one subscriber per client here"
        );
        let second = crate::denylist::Revocation::Session { sid: "s".into() };
        feed.publish(&second, 1_000, 60).await.expect("publish");
        match sub.next().await {
            Next::Event(e) => assert_eq!(e.event.id, "s"),
            other => panic!("{other:?}"),
        }
        drop(sub);
        assert!(
            feed.subscribe("svc", None, 1_000).await.is_ok(),
            "slot freed"
        );
    }
}
