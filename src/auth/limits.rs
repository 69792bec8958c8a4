//! Rate limits, each a keyed token bucket (governor's GCRA), answering with
//! how long to wait so clients get a `Retry-After`.

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::LimitsConfig;
use crate::error::ApiError;
use crate::ids::UserId;

/// One keyed limiter.
pub struct Limiter<K: Hash + Eq + Clone> {
    inner: DefaultKeyedRateLimiter<K>,
    /// Requests refused, for `/metrics`.
    pub rejected: AtomicU64,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    pub fn new(quota: Quota) -> Self {
        Limiter {
            inner: RateLimiter::keyed(quota),
            rejected: AtomicU64::new(0),
        }
    }

    /// Takes one unit for `key`, or says how long until one is free.
    pub fn check(&self, key: &K) -> Result<(), ApiError> {
        self.inner.check_key(key).map_err(|not_until| {
            self.rejected.fetch_add(1, Ordering::Relaxed);
            ApiError::RateLimited {
                retry_after: not_until.wait_time_from(DefaultClock::default().now()),
            }
        })
    }

    /// Forgets keys whose buckets are full again, bounding memory.
    pub fn sweep(&self) {
        self.inner.retain_recent();
        self.inner.shrink_to_fit();
    }
}

/// Every throttle the server applies.
pub struct Limits {
    /// Messages per user, REST and WebSocket together.
    pub send: Limiter<UserId>,
    /// Signups per client IP.
    pub signup: Limiter<IpAddr>,
    /// Login attempts per client IP.
    pub login_ip: Limiter<IpAddr>,
    /// Failed logins per account (lower-cased login name).
    pub login_failures: Limiter<String>,
}

impl Limits {
    pub fn new(c: &LimitsConfig) -> Limits {
        Limits {
            send: Limiter::new(Quota::per_second(nz(c.send_per_sec)).allow_burst(nz(c.send_burst))),
            signup: Limiter::new(
                Quota::with_period(c.signup_refill)
                    .unwrap_or_else(|| Quota::per_second(nz(1)))
                    .allow_burst(nz(c.signup_burst)),
            ),
            login_ip: Limiter::new(Quota::per_minute(nz(c.login_per_minute))),
            login_failures: Limiter::new(
                Quota::with_period(Duration::from_secs(3600) / c.login_failures_per_hour.max(1))
                    .unwrap_or_else(|| Quota::per_second(nz(1)))
                    .allow_burst(nz(c.login_failures_per_hour)),
            ),
        }
    }

    pub fn sweep(&self) {
        self.send.sweep();
        self.signup.sweep();
        self.login_ip.sweep();
        self.login_failures.sweep();
    }
}

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}
