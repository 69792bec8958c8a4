//! Rate limits, each a keyed token bucket (governor's GCRA), answering with
//! how long to wait so clients get a `Retry-After`.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::{FilesConfig, LimitsConfig};
use crate::error::ApiError;
use crate::ids::{RoomId, UserId};
use crate::locks::lock;

/// At most one typing notice per user and room this often.
pub const TYPING_EVERY: Duration = Duration::from_secs(2);

/// The clock every limiter reads. Making one asks the CPU what counters it
/// has (`cpuid`), which a virtual machine traps at tens of microseconds, so
/// it is made once and copied: a socket's frame limiter, made per
/// connection, cost a third of a core during a connection storm before.
pub fn clock() -> DefaultClock {
    static CLOCK: LazyLock<DefaultClock> = LazyLock::new(DefaultClock::default);
    CLOCK.clone()
}

/// One keyed limiter.
pub struct Limiter<K: Hash + Eq + Clone> {
    inner: DefaultKeyedRateLimiter<K>,
    /// Requests refused, for `/metrics`.
    pub rejected: AtomicU64,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    pub fn new(quota: Quota) -> Self {
        Limiter {
            inner: RateLimiter::new(quota, Default::default(), clock()),
            rejected: AtomicU64::new(0),
        }
    }

    /// Takes one unit for `key`, or says how long until one is free.
    pub fn check(&self, key: &K) -> Result<(), ApiError> {
        self.inner.check_key(key).map_err(|not_until| {
            self.rejected.fetch_add(1, Ordering::Relaxed);
            ApiError::RateLimited {
                retry_after: not_until.wait_time_from(clock().now()),
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
    /// Failed logins per account and per (account, IP).
    pub logins: LoginGuard,
    /// Typing notices relayed per user and room: one every 2 s.
    pub typing: Limiter<(UserId, RoomId)>,
    /// User searches per user: 5 a second, bursts of 20.
    pub search: Limiter<UserId>,
    /// Avatar uploads per user: 10 a minute (each is decoded on a
    /// shared, small pool of threads).
    pub avatar: Limiter<UserId>,
    /// Message searches per user (`limits.search_per_sec`, `search_burst`):
    /// each one runs a query over the index.
    pub message_search: Limiter<UserId>,
    /// File uploads started per user (`files.uploads_per_minute`).
    pub upload: Limiter<UserId>,
    /// File uploads in progress per user (`files.uploads_at_once`).
    pub uploading: InFlight<UserId>,
}

/// Work in progress per key, at most `per_key` at once: a key past it is
/// `rate_limited` until one of its own finishes.
pub struct InFlight<K: Hash + Eq + Clone> {
    per_key: usize,
    counts: Arc<Mutex<HashMap<K, usize>>>,
    /// Requests refused, for `/metrics`.
    pub rejected: AtomicU64,
}

/// One unit of work in progress; dropping it frees its place.
pub struct InFlightGuard<K: Hash + Eq + Clone> {
    key: K,
    counts: Arc<Mutex<HashMap<K, usize>>>,
}

impl<K: Hash + Eq + Clone> InFlight<K> {
    pub fn new(per_key: usize) -> Self {
        InFlight {
            per_key,
            counts: Arc::default(),
            rejected: AtomicU64::new(0),
        }
    }

    /// A place for one more of `key`'s, or `rate_limited` (wait a second).
    pub fn enter(&self, key: &K) -> Result<InFlightGuard<K>, ApiError> {
        let mut counts = lock(&self.counts);
        let n = counts.entry(key.clone()).or_insert(0);
        if *n >= self.per_key {
            self.rejected.fetch_add(1, Ordering::Relaxed);
            return Err(ApiError::RateLimited {
                retry_after: Duration::from_secs(1),
            });
        }
        *n += 1;
        Ok(InFlightGuard {
            key: key.clone(),
            counts: self.counts.clone(),
        })
    }
}

impl<K: Hash + Eq + Clone> Drop for InFlightGuard<K> {
    fn drop(&mut self) {
        let mut counts = lock(&self.counts);
        if let Some(n) = counts.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

impl Limits {
    pub fn new(c: &LimitsConfig, files: &FilesConfig) -> Limits {
        Limits {
            upload: Limiter::new(Quota::per_minute(nz(files.uploads_per_minute))),
            uploading: InFlight::new(files.uploads_at_once),
            send: Limiter::new(Quota::per_second(nz(c.send_per_sec)).allow_burst(nz(c.send_burst))),
            signup: Limiter::new(
                Quota::with_period(c.signup_refill)
                    .unwrap_or_else(|| Quota::per_second(nz(1)))
                    .allow_burst(nz(c.signup_burst)),
            ),
            login_ip: Limiter::new(Quota::per_minute(nz(c.login_per_minute))),
            logins: LoginGuard::new(c.login_failures_per_hour),
            search: Limiter::new(Quota::per_second(nz(5)).allow_burst(nz(20))),
            avatar: Limiter::new(Quota::per_minute(nz(10))),
            message_search: Limiter::new(
                Quota::per_second(nz(c.search_per_sec)).allow_burst(nz(c.search_burst)),
            ),
            typing: Limiter::new(
                Quota::with_period(TYPING_EVERY)
                    .unwrap_or_else(|| Quota::per_second(nz(1)))
                    .allow_burst(nz(1)),
            ),
        }
    }

    pub fn sweep(&self) {
        self.send.sweep();
        self.signup.sweep();
        self.login_ip.sweep();
        self.typing.sweep();
        self.search.sweep();
        self.avatar.sweep();
        self.message_search.sweep();
        self.upload.sweep();
    }
}

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

/// Guards accounts against password guessing without letting a guesser lock
/// the owner out:
/// - each (account, IP) that keeps failing waits longer and longer (1 s,
///   2 s, 4 s … up to a minute) after its third failure in a row;
/// - an account that takes more than `failures_per_hour` failures in an hour
///   refuses further attempts for the rest of that hour, except from
///   addresses that have logged into it successfully before.
pub struct LoginGuard {
    streaks: moka::sync::Cache<(String, IpAddr), Streak>,
    hourly: moka::sync::Cache<String, Window>,
    trusted: moka::sync::Cache<(String, IpAddr), ()>,
    failures_per_hour: u32,
    /// Attempts refused, for `/metrics`.
    pub rejected: AtomicU64,
}

#[derive(Clone, Copy)]
struct Streak {
    failures: u32,
    not_before: Instant,
}

#[derive(Clone, Copy)]
struct Window {
    failures: u32,
    started: Instant,
}

const HOUR: Duration = Duration::from_secs(3600);
/// Failures in a row before delays start.
const FREE_FAILURES: u32 = 3;
const MAX_DELAY: Duration = Duration::from_secs(60);

impl LoginGuard {
    fn new(failures_per_hour: u32) -> LoginGuard {
        LoginGuard {
            streaks: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(HOUR)
                .build(),
            hourly: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(HOUR)
                .build(),
            trusted: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(HOUR * 24 * 30)
                .build(),
            failures_per_hour,
            rejected: AtomicU64::new(0),
        }
    }

    /// Whether this attempt may proceed to the password check.
    pub fn check(&self, account: &str, ip: IpAddr) -> Result<(), ApiError> {
        let now = Instant::now();
        let key = (account.to_string(), ip);
        if let Some(s) = self.streaks.get(&key) {
            if s.not_before > now {
                self.rejected.fetch_add(1, Ordering::Relaxed);
                return Err(ApiError::RateLimited {
                    retry_after: s.not_before - now,
                });
            }
        }
        if let Some(w) = self.hourly.get(account) {
            if w.failures >= self.failures_per_hour && !self.trusted.contains_key(&key) {
                self.rejected.fetch_add(1, Ordering::Relaxed);
                return Err(ApiError::RateLimited {
                    retry_after: (w.started + HOUR).saturating_duration_since(now),
                });
            }
        }
        Ok(())
    }

    pub fn failed(&self, account: &str, ip: IpAddr) {
        let now = Instant::now();
        let key = (account.to_string(), ip);
        let failures = self.streaks.get(&key).map_or(0, |s| s.failures) + 1;
        let delay = match failures.checked_sub(FREE_FAILURES) {
            None => Duration::ZERO,
            Some(n) => Duration::from_secs(1u64 << n.min(6)).min(MAX_DELAY),
        };
        self.streaks.insert(
            key,
            Streak {
                failures,
                not_before: now + delay,
            },
        );
        let w = self.hourly.get(account).unwrap_or(Window {
            failures: 0,
            started: now,
        });
        self.hourly.insert(
            account.to_string(),
            Window {
                failures: w.failures.saturating_add(1),
                ..w
            },
        );
    }

    pub fn succeeded(&self, account: &str, ip: IpAddr) {
        let key = (account.to_string(), ip);
        self.streaks.invalidate(&key);
        self.trusted.insert(key, ());
    }
}
