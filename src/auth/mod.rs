//! Accounts and sessions: password hashing, session tokens, and the
//! throttles that keep guessing and floods from costing real users.

pub mod invites;
pub mod limits;
pub mod password;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::config::SessionsConfig;
use crate::ids::{Millis, UserId};
use crate::rooms::Directory;
use crate::storage::{self, SessionRecord, Store};

/// A session token as the client holds it: 256 random bits, base64url.
pub struct Token(pub String);

/// The SHA-256 of a token: all the server keeps, so a stolen database
/// holds no usable tokens.
pub type TokenHash = [u8; 32];

impl Token {
    pub fn generate() -> Token {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Token(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
    }

    pub fn hash(token: &str) -> TokenHash {
        Sha256::digest(token.as_bytes()).into()
    }
}

/// Who a request or connection acts as.
#[derive(Debug, Clone, Copy)]
pub struct Identity {
    pub user: UserId,
    pub session: TokenHash,
}

/// A cached session, with its last use kept in memory between writes.
struct CachedSession {
    record: SessionRecord,
    last_seen: AtomicU64,
}

/// Persisted sessions with a cache in front, so most requests do no I/O and
/// a restart logs nobody out.
pub struct Sessions {
    store: Store,
    cache: moka::sync::Cache<TokenHash, Arc<CachedSession>>,
    lifetimes: SessionsConfig,
}

/// How often a session's last use is written back.
const LAST_SEEN_WRITE_EVERY: Duration = Duration::from_secs(60);

impl Sessions {
    pub fn new(store: Store, lifetimes: SessionsConfig) -> Sessions {
        Sessions {
            store,
            cache: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(Duration::from_secs(3600))
                .build(),
            lifetimes,
        }
    }

    /// Starts a session for `user`, durable before the token is returned.
    pub async fn create(&self, user: UserId) -> storage::Result<Token> {
        let token = Token::generate();
        let now = Millis::now();
        let record = SessionRecord {
            user,
            created_at: now,
            last_seen: now,
        };
        self.store.put_session(&Token::hash(&token.0), &record)?;
        self.store.flush_async().await?;
        Ok(token)
    }

    /// Resolves a token to its identity, if the session is alive and the
    /// account is in good standing.
    pub fn authenticate(
        &self,
        token: &str,
        directory: &Directory,
    ) -> storage::Result<Option<Identity>> {
        let hash = Token::hash(token);
        let cached = match self.cache.get(&hash) {
            Some(c) => c,
            None => {
                let Some(record) = self.store.session(&hash)? else {
                    return Ok(None);
                };
                let c = Arc::new(CachedSession {
                    last_seen: AtomicU64::new(record.last_seen.0),
                    record,
                });
                self.cache.insert(hash, c.clone());
                c
            }
        };
        let now = Millis::now();
        let last_seen = cached.last_seen.load(Ordering::Relaxed);
        let expired = now.0.saturating_sub(cached.record.created_at.0)
            > self.lifetimes.absolute.as_millis() as u64
            || now.0.saturating_sub(last_seen) > self.lifetimes.idle.as_millis() as u64;
        if expired {
            self.revoke(&hash)?;
            return Ok(None);
        }
        match directory.get(cached.record.user) {
            Some(u) if !u.deleted && !u.disabled => {}
            _ => return Ok(None),
        }
        if now.0.saturating_sub(last_seen) > LAST_SEEN_WRITE_EVERY.as_millis() as u64 {
            cached.last_seen.store(now.0, Ordering::Relaxed);
            let mut record = cached.record.clone();
            record.last_seen = now;
            self.store.put_session(&hash, &record)?;
        }
        Ok(Some(Identity {
            user: cached.record.user,
            session: hash,
        }))
    }

    /// Ends one session at once, everywhere.
    pub fn revoke(&self, hash: &TokenHash) -> storage::Result<()> {
        self.cache.invalidate(hash);
        self.store.remove_session(hash)?;
        Ok(())
    }

    /// Ends every session of a user, optionally sparing one.
    pub fn revoke_all(&self, user: UserId, except: Option<&TokenHash>) -> storage::Result<()> {
        for hash in self.store.sessions_of(user)? {
            if except != Some(&hash) {
                self.revoke(&hash)?;
            }
        }
        Ok(())
    }
}
