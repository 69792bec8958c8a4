//! Password hashing with argon2id, off the async workers and bounded: each
//! hash holds 19 MiB and ~20 ms of a core, so a login flood must queue
//! briefly or be refused, never starve message delivery or exhaust memory.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use tokio::sync::oneshot;

use crate::error::ApiError;

/// A hash to compute, with when it was queued.
struct Job {
    queued: Instant,
    run: Box<dyn FnOnce() + Send>,
}

/// How long a request may wait for a hashing thread before it gets 503:
/// under a storm, or while message delivery takes every core, logins are
/// refused promptly instead of piling up.
const MAX_WAIT: Duration = Duration::from_secs(2);

/// Time a hash itself may take once started (about 20 ms; slack for a
/// busy machine).
const MAX_HASH: Duration = Duration::from_secs(2);

/// A hash not done this long after it was queued is starving.
const STARVING: Duration = Duration::from_millis(300);

/// Below this share of one core, this process is not what keeps the CPUs
/// busy while a hash starves: other programs are.
const QUIET_CORES: f64 = 0.5;

/// The niceness idle-class hashing threads are raised to while other
/// programs starve them.
const RAISED_NICE: i32 = 10;

/// Hashes on a few dedicated threads that run only on CPU time nothing else
/// wants (`SCHED_IDLE`, unless configured off), behind a queue bounded in
/// length and in waiting time.
///
/// Measured: with hashes on tokio's blocking pool at normal priority, a
/// storm of 200 logins/s during the 15,000-client fan-out cut deliveries by
/// a quarter and took message p50 from 190 ms to 7.8 s. At nice 10 the
/// hashes still took a tenth of a saturated core, and message p99 rose by
/// seconds. Idle-class threads take none of it: when delivery needs every
/// core, logins wait at most [`MAX_WAIT`] and get 503.
///
/// But other programs can keep the cores busy too (a build on the same
/// host), and then idle-class threads seldom run, however quiet hearth is.
/// So a hash still not done after [`STARVING`] looks at what this process
/// used meanwhile: under half a core means the load is not hearth's own,
/// and the hashing threads move to the normal class at niceness 10 until
/// the queue is empty again. While hearth itself is busy they stay idle.
pub struct Hasher {
    queue: SyncSender<Job>,
    pool: Arc<Pool>,
}

/// What the hashing threads share with the hasher.
struct Pool {
    on_idle_cpu: bool,
    /// The threads' ids, to raise them from another thread.
    threads: Mutex<Vec<i32>>,
    /// Jobs queued and not yet taken by a thread.
    pending: AtomicUsize,
    /// The threads were raised out of the idle class.
    raised: AtomicBool,
}

impl Pool {
    /// Raises the hashing threads out of the idle class, unless already.
    fn raise(&self) {
        if self.raised.swap(true, SeqCst) {
            return;
        }
        let threads = crate::locks::lock(&self.threads).clone();
        let all = threads
            .iter()
            .all(|&tid| crate::priority::raise_from_idle(tid, RAISED_NICE));
        if all {
            tracing::info!("Password hashes starve while this server is quiet: other programs keep the CPUs busy. Hashing runs at niceness 10 until the queue is empty.");
        } else {
            tracing::warn!("Password hashes starve while this server is quiet, and the hashing threads may not leave the idle class here (that needs CAP_SYS_NICE or RLIMIT_NICE); on a host whose CPUs other programs keep busy, set hash_on_idle_cpu = false.");
        }
    }
}

impl Hasher {
    /// `concurrency` threads; up to 32 requests per thread may wait, more
    /// are refused with 503 at once. `on_idle_cpu` puts the threads in the
    /// idle scheduling class; otherwise they run at the lowest niceness,
    /// for hosts whose CPUs other programs keep busy (where idle-class
    /// threads would seldom run at all).
    pub fn new(concurrency: usize, on_idle_cpu: bool) -> Hasher {
        let (queue, jobs) = sync_channel::<Job>(concurrency * 32);
        let jobs = Arc::new(Mutex::new(jobs));
        let pool = Arc::new(Pool {
            on_idle_cpu,
            threads: Mutex::new(Vec::new()),
            pending: AtomicUsize::new(0),
            raised: AtomicBool::new(false),
        });
        for i in 0..concurrency {
            let (jobs, pool) = (jobs.clone(), pool.clone());
            std::thread::Builder::new()
                .name(format!("hearth-hash-{i}"))
                .spawn(move || work(&jobs, &pool))
                .expect("spawning a thread at start-up only fails when the OS is out of threads");
        }
        Hasher { queue, pool }
    }

    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        self.run(move || hash_now(&password)).await
    }

    /// Checks `password` against `phc`, or against the dummy hash when there
    /// is no account, so both cost the same.
    pub async fn verify(&self, phc: Option<String>, password: String) -> Result<bool, ApiError> {
        let real = phc.is_some();
        let phc = phc.unwrap_or_else(|| DUMMY.to_string());
        let ok = self.run(move || verify_now(&phc, &password)).await?;
        Ok(ok && real)
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let (tx, rx) = oneshot::channel();
        let job = Job {
            queued: Instant::now(),
            run: Box::new(move || {
                let _ = tx.send(f());
            }),
        };
        let cpu_before = crate::priority::process_cpu_secs();
        let queued = Instant::now();
        self.pool.pending.fetch_add(1, SeqCst);
        match self.queue.try_send(job) {
            // A job that waited too long is dropped unrun by the thread,
            // which ends the wait here too.
            Ok(()) => {
                tokio::pin!(rx);
                let answer = match tokio::time::timeout(STARVING, &mut rx).await {
                    Ok(answer) => Ok(answer),
                    Err(_) => {
                        self.starving(cpu_before, queued);
                        tokio::time::timeout(MAX_WAIT + MAX_HASH - STARVING, &mut rx).await
                    }
                };
                match answer {
                    Ok(Ok(value)) => Ok(value),
                    Ok(Err(_)) | Err(_) => Err(ApiError::Busy),
                }
            }
            Err(e) => {
                self.pool.pending.fetch_sub(1, SeqCst);
                match e {
                    TrySendError::Full(_) => Err(ApiError::Busy),
                    TrySendError::Disconnected(_) => Err(ApiError::Internal),
                }
            }
        }
    }

    /// A hash queued at `since` is not done: if this process used under
    /// [`QUIET_CORES`] meanwhile, other programs starve the idle-class
    /// threads, so they are raised.
    fn starving(&self, cpu_before: Option<f64>, since: Instant) {
        if !self.pool.on_idle_cpu || self.pool.raised.load(SeqCst) {
            return;
        }
        let (Some(before), Some(now)) = (cpu_before, crate::priority::process_cpu_secs()) else {
            return;
        };
        let cores = (now - before) / since.elapsed().as_secs_f64();
        if cores < QUIET_CORES {
            self.pool.raise();
        }
    }
}

/// A hashing thread: lowers its own priority, then runs jobs until the
/// queue is gone. Raised out of the idle class, the threads go back to it
/// once no job waits.
fn work(jobs: &Mutex<Receiver<Job>>, pool: &Pool) {
    if pool.on_idle_cpu {
        crate::locks::lock(&pool.threads).push(crate::priority::thread_id());
        crate::priority::idle_or_lowest();
    } else {
        crate::priority::lowest();
    }
    loop {
        let job = {
            let Ok(rx) = jobs.lock() else { return };
            match rx.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        let left = pool.pending.fetch_sub(1, SeqCst) - 1;
        if job.queued.elapsed() <= MAX_WAIT {
            (job.run)();
        }
        if left == 0 && pool.raised.swap(false, SeqCst) {
            // Nothing waits: every hashing thread goes back to idle.
            for &tid in crate::locks::lock(&pool.threads).iter() {
                crate::priority::to_idle(tid);
            }
        }
    }
}

/// A real hash, with the parameters every new hash gets, to verify against
/// for unknown users, so "no such user" takes as long as "wrong password".
/// Made once ahead of time rather than at every start: a hash costs tens
/// of milliseconds of the start-up's first answer. Its password (the
/// sentence in the test below) logs no one in: an unknown user's check
/// always fails.
const DUMMY: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$PYS3Pj7KFFmxh8bF6A8Isg$BVloQEKiBhIV9KVPSHJEWa2YFQEzSBgSTe1NfCQorOM";

fn hash_now(password: &str) -> String {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .expect("argon2 with default parameters and a fresh salt cannot fail")
}

fn verify_now(phc: &str, password: &str) -> bool {
    PasswordHash::new(phc)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The timing twin must cost what a real check costs: the same
    /// algorithm, version and parameters as a hash made now.
    #[test]
    fn the_dummy_hash_has_the_parameters_of_a_new_hash() {
        let fresh = hash_now("anything");
        let params = |phc: &str| {
            let h = PasswordHash::new(phc).expect("a PHC string");
            (h.algorithm.to_string(), h.version, h.params.to_string())
        };
        assert_eq!(params(DUMMY), params(&fresh));
        assert!(verify_now(DUMMY, "not a real password, only a timing twin"));
    }
}
