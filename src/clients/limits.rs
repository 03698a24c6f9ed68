//! Rate limits: per gateway client (`rate_limit_per_second`, `rate_limit_burst`), a
//! `governor` rate limiter (GCRA) per client; and per (source address, claimed client)
//! for authentication failures, so credential stuffing is slow without one client's
//! failures locking out another client behind the same address — a small token bucket
//! map of our own, because it is charged only on failure and checked without charging,
//! which a keyed `governor` limiter cannot do.
//!
//! Invariant: an unconfigured limit is `None` and costs nothing on the request path.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

/// Addresses tracked at most; full (idle) buckets are swept first.
const MAX_TRACKED: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// A rate and the burst allowed on top of it.
#[derive(Debug, Clone, Copy)]
pub struct Rate {
    per_second: NonZeroU32,
    burst: NonZeroU32,
}

impl Rate {
    /// `None` when `per_second` is 0 (no limit). A burst of 0 means one second's worth.
    pub fn new(per_second: u32, burst: u32) -> Option<Self> {
        let per_second = NonZeroU32::new(per_second)?;
        Some(Self {
            per_second,
            burst: NonZeroU32::new(burst).unwrap_or(per_second),
        })
    }

    fn quota(&self) -> Quota {
        Quota::per_second(self.per_second).allow_burst(self.burst)
    }

    fn burst(&self) -> f64 {
        f64::from(self.burst.get())
    }

    fn per_second(&self) -> f64 {
        f64::from(self.per_second.get())
    }

    fn refill(&self, b: &mut Bucket, now: Instant) {
        let elapsed = now.saturating_duration_since(b.updated).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.per_second()).min(self.burst());
        b.updated = now;
    }

    /// Seconds until one token is back (for `Retry-After`, at least 1).
    fn wait(&self, b: &Bucket) -> u64 {
        (((1.0 - b.tokens) / self.per_second()).ceil() as u64).max(1)
    }
}

/// Whole seconds to wait, rounded up, at least 1 (`Retry-After`).
fn retry_after_seconds(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

/// One client's limit: a direct (non-keyed) GCRA limiter.
pub struct Limiter<C: Clock = DefaultClock> {
    limiter: RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<C::Instant>>,
    clock: C,
}

impl<C: Clock> std::fmt::Debug for Limiter<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter").finish_non_exhaustive()
    }
}

impl Limiter {
    pub fn new(rate: Rate) -> Self {
        Self::with_clock(rate, DefaultClock::default())
    }
}

impl<C: Clock + Clone> Limiter<C> {
    pub fn with_clock(rate: Rate, clock: C) -> Self {
        Self {
            limiter: RateLimiter::direct_with_clock(rate.quota(), clock.clone()),
            clock,
        }
    }

    /// Lets one request through, or says how many seconds to wait (at least 1).
    pub fn acquire(&self) -> Result<(), u64> {
        self.limiter
            .check()
            .map_err(|not_until| retry_after_seconds(not_until.wait_time_from(self.clock.now())))
    }
}

/// Whose failures a bucket counts at one address: a configured client (by its position in
/// `[[clients]]`), every unknown client id together, or the admin bearer token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Claimant {
    Client(usize),
    Unknown,
    Admin,
}

/// Buckets per (source address, claimant), charged only on authentication failures.
#[derive(Debug)]
pub struct FailureLimiter {
    rate: Rate,
    buckets: Mutex<HashMap<(IpAddr, Claimant), Bucket>>,
}

impl FailureLimiter {
    pub fn new(rate: Rate) -> Self {
        Self {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `who` at `ip` may try to authenticate now; `Err(seconds)` when it failed
    /// too often.
    pub fn check(&self, ip: IpAddr, who: Claimant, now: Instant) -> Result<(), u64> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        match buckets.get_mut(&(ip, who)) {
            Some(b) => {
                self.rate.refill(b, now);
                if b.tokens >= 1.0 {
                    Ok(())
                } else {
                    Err(self.rate.wait(b))
                }
            }
            None => Ok(()),
        }
    }

    /// Charges one failure to `who` at `ip`.
    pub fn failed(&self, ip: IpAddr, who: Claimant, now: Instant) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_TRACKED {
            let full = self.rate.burst();
            let rate = self.rate;
            buckets.retain(|_, b| {
                rate.refill(b, now);
                b.tokens < full
            });
        }
        let b = buckets.entry((ip, who)).or_insert(Bucket {
            tokens: self.rate.burst(),
            updated: now,
        });
        self.rate.refill(b, now);
        b.tokens = (b.tokens - 1.0).max(0.0);
    }
}

/// How long until a bucket of `rate` refills from empty (for documentation and tests).
pub fn full_refill(rate: Rate) -> Duration {
    Duration::from_secs_f64(rate.burst() / rate.per_second())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_its_burst_then_its_rate() {
        let rate = Rate::new(2, 4).expect("limited");
        let clock = governor::clock::FakeRelativeClock::default();
        let limiter = Limiter::with_clock(rate, clock.clone());
        for _ in 0..4 {
            assert!(limiter.acquire().is_ok());
        }
        assert_eq!(limiter.acquire(), Err(1));
        clock.advance(Duration::from_millis(500));
        assert!(limiter.acquire().is_ok(), "2/s refills one in 0.5 s");
        assert!(limiter.acquire().is_err());
        assert_eq!(full_refill(rate), Duration::from_secs(2));
    }

    #[test]
    fn the_wait_is_whole_seconds_rounded_up() {
        let rate = Rate::new(1, 1).expect("limited");
        let clock = governor::clock::FakeRelativeClock::default();
        let limiter = Limiter::with_clock(rate, clock.clone());
        assert!(limiter.acquire().is_ok());
        clock.advance(Duration::from_millis(100));
        assert_eq!(limiter.acquire(), Err(1), "0.9 s is 1 s");
        assert_eq!(retry_after_seconds(Duration::from_millis(2500)), 3);
        assert_eq!(retry_after_seconds(Duration::ZERO), 1);
    }

    #[test]
    fn zero_means_no_limit() {
        assert!(Rate::new(0, 10).is_none());
    }

    #[test]
    fn only_failures_are_charged_per_address_and_claimant() {
        let limiter = FailureLimiter::new(Rate::new(1, 3).expect("limited"));
        let (ip, other): (IpAddr, IpAddr) = (
            "10.0.0.1".parse().expect("ip"),
            "10.0.0.2".parse().expect("ip"),
        );
        let who = Claimant::Unknown;
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check(ip, who, t0).is_ok());
            limiter.failed(ip, who, t0);
        }
        assert_eq!(limiter.check(ip, who, t0), Err(1));
        assert!(
            limiter.check(other, who, t0).is_ok(),
            "other addresses are not affected"
        );
        assert!(
            limiter.check(ip, Claimant::Client(0), t0).is_ok(),
            "nor a configured client at the same address"
        );
        assert!(limiter.check(ip, who, t0 + Duration::from_secs(1)).is_ok());
    }
}
