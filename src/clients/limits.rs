//! Token buckets: per gateway client (`rate_limit_per_second`, `rate_limit_burst`) and per
//! source address for authentication failures, so secret guessing is slow.
//!
//! Invariant: an unconfigured limit is `None` and costs nothing on the request path.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Addresses tracked at most; full (idle) buckets are swept first.
const MAX_TRACKED: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

#[derive(Debug, Clone, Copy)]
pub struct Rate {
    per_second: f64,
    burst: f64,
}

impl Rate {
    /// `None` when `per_second` is 0 (no limit). A burst of 0 means one second's worth.
    pub fn new(per_second: u32, burst: u32) -> Option<Self> {
        (per_second > 0).then(|| Self {
            per_second: f64::from(per_second),
            burst: f64::from(if burst == 0 { per_second } else { burst }),
        })
    }

    fn refill(&self, b: &mut Bucket, now: Instant) {
        let elapsed = now.saturating_duration_since(b.updated).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.per_second).min(self.burst);
        b.updated = now;
    }

    /// Seconds until one token is back (for `Retry-After`, at least 1).
    fn wait(&self, b: &Bucket) -> u64 {
        (((1.0 - b.tokens) / self.per_second).ceil() as u64).max(1)
    }
}

/// One bucket (a client's).
#[derive(Debug)]
pub struct Limiter {
    rate: Rate,
    bucket: Mutex<Bucket>,
}

impl Limiter {
    pub fn new(rate: Rate) -> Self {
        Self {
            rate,
            bucket: Mutex::new(Bucket {
                tokens: rate.burst,
                updated: Instant::now(),
            }),
        }
    }

    /// Takes a token, or says how many seconds to wait.
    pub fn acquire(&self, now: Instant) -> Result<(), u64> {
        let mut b = self.bucket.lock().unwrap_or_else(|p| p.into_inner());
        self.rate.refill(&mut b, now);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(self.rate.wait(&b))
        }
    }
}

/// Buckets per source address, charged only on authentication failures.
#[derive(Debug)]
pub struct FailureLimiter {
    rate: Rate,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

impl FailureLimiter {
    pub fn new(rate: Rate) -> Self {
        Self {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `ip` may try to authenticate now; `Err(seconds)` when it failed too often.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), u64> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        match buckets.get_mut(&ip) {
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

    /// Charges one failure to `ip`.
    pub fn failed(&self, ip: IpAddr, now: Instant) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_TRACKED {
            let full = self.rate.burst;
            let rate = self.rate;
            buckets.retain(|_, b| {
                rate.refill(b, now);
                b.tokens < full
            });
        }
        let b = buckets.entry(ip).or_insert(Bucket {
            tokens: self.rate.burst,
            updated: now,
        });
        self.rate.refill(b, now);
        b.tokens = (b.tokens - 1.0).max(0.0);
    }
}

/// How long until a bucket of `rate` refills from empty (for documentation and tests).
pub fn full_refill(rate: Rate) -> Duration {
    Duration::from_secs_f64(rate.burst / rate.per_second)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_its_burst_then_its_rate() {
        let rate = Rate::new(2, 4).expect("limited");
        let limiter = Limiter::new(rate);
        let t0 = Instant::now();
        for _ in 0..4 {
            assert!(limiter.acquire(t0).is_ok());
        }
        assert_eq!(limiter.acquire(t0), Err(1));
        assert!(
            limiter.acquire(t0 + Duration::from_millis(500)).is_ok(),
            "2/s refills one in 0.5 s"
        );
        assert!(limiter.acquire(t0 + Duration::from_millis(500)).is_err());
        assert_eq!(full_refill(rate), Duration::from_secs(2));
    }

    #[test]
    fn zero_means_no_limit() {
        assert!(Rate::new(0, 10).is_none());
    }

    #[test]
    fn only_failures_are_charged_per_address() {
        let limiter = FailureLimiter::new(Rate::new(1, 3).expect("limited"));
        let (ip, other): (IpAddr, IpAddr) = (
            "10.0.0.1".parse().expect("ip"),
            "10.0.0.2".parse().expect("ip"),
        );
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check(ip, t0).is_ok());
            limiter.failed(ip, t0);
        }
        assert_eq!(limiter.check(ip, t0), Err(1));
        assert!(
            limiter.check(other, t0).is_ok(),
            "other addresses are not affected"
        );
        assert!(limiter.check(ip, t0 + Duration::from_secs(1)).is_ok());
    }
}
