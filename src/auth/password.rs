//! Password hashing with argon2id, off the async workers and bounded: each
//! hash holds 19 MiB and ~20 ms of a core, so a login flood must queue
//! briefly or be refused, never starve message delivery or exhaust memory.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use tokio::sync::Semaphore;

use crate::error::ApiError;

pub struct Hasher {
    permits: Arc<Semaphore>,
    /// Requests waiting for a permit; past `max_waiting` new ones get 503.
    waiting: AtomicUsize,
    max_waiting: usize,
    /// A real hash to verify against for unknown users, so "no such user"
    /// takes as long as "wrong password".
    dummy: String,
}

/// How long a request may wait for a hashing slot before it is refused.
const MAX_WAIT: Duration = Duration::from_secs(3);

impl Hasher {
    pub fn new(concurrency: usize) -> Hasher {
        Hasher {
            permits: Arc::new(Semaphore::new(concurrency)),
            waiting: AtomicUsize::new(0),
            max_waiting: concurrency * 32,
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
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(ApiError::Busy);
        }
        let permit = tokio::time::timeout(MAX_WAIT, self.permits.clone().acquire_owned()).await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        let permit = match permit {
            Ok(Ok(p)) => p,
            _ => return Err(ApiError::Busy),
        };
        tokio::task::spawn_blocking(move || {
            let out = f();
            drop(permit);
            out
        })
        .await
        .map_err(|_| ApiError::Internal)
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
