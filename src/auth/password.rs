//! Password hashing with argon2id, off the async workers and bounded: each
//! hash holds 19 MiB and ~20 ms of a core, so a login flood must queue
//! briefly or be refused, never starve message delivery or exhaust memory.

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
pub struct Hasher {
    queue: SyncSender<Job>,
    /// A real hash to verify against for unknown users, so "no such user"
    /// takes as long as "wrong password".
    dummy: String,
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
        for i in 0..concurrency {
            let jobs = jobs.clone();
            std::thread::Builder::new()
                .name(format!("hearth-hash-{i}"))
                .spawn(move || work(&jobs, on_idle_cpu))
                .expect("spawning a thread at start-up only fails when the OS is out of threads");
        }
        Hasher {
            queue,
            dummy: hash_now("not a real password, only a timing twin"),
        }
    }

    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        self.run(move || hash_now(&password)).await
    }

    /// Checks `password` against `phc`, or against the dummy hash when there
    /// is no account, so both cost the same.
    pub async fn verify(&self, phc: Option<String>, password: String) -> Result<bool, ApiError> {
        let real = phc.is_some();
        let phc = phc.unwrap_or_else(|| self.dummy.clone());
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
        match self.queue.try_send(job) {
            // A job that waited too long is dropped unrun by the thread,
            // which ends the wait here too.
            Ok(()) => match tokio::time::timeout(MAX_WAIT + MAX_HASH, rx).await {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(_)) | Err(_) => Err(ApiError::Busy),
            },
            Err(TrySendError::Full(_)) => Err(ApiError::Busy),
            Err(TrySendError::Disconnected(_)) => Err(ApiError::Internal),
        }
    }
}

/// A hashing thread: lowers its own priority, then runs jobs until the
/// queue is gone.
fn work(jobs: &Mutex<Receiver<Job>>, on_idle_cpu: bool) {
    if on_idle_cpu {
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
        if job.queued.elapsed() <= MAX_WAIT {
            (job.run)();
        }
    }
}

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
