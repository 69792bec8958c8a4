//! Accounts and sessions: password hashing, session tokens, and the
//! throttles that keep guessing and floods from costing real users.

pub mod invites;
pub mod limits;
pub mod password;

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::config::SessionsConfig;
use crate::directory::Directory;
use crate::ids::{Millis, TokenHash, UserId};
use crate::storage::{self, SessionRecord, Store};

/// A session token as the client holds it: 256 random bits, base64url.
pub struct Token(pub String);

impl Token {
    pub fn generate() -> Token {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Token(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
    }

    pub fn hash(token: &str) -> TokenHash {
        TokenHash(Sha256::digest(token.as_bytes()).into())
    }
}

/// Who a request or connection acts as.
#[derive(Debug, Clone, Copy)]
pub struct Identity {
    pub user: UserId,
    pub session: TokenHash,
    /// When the session ends whatever its use (its absolute lifetime): a
    /// WebSocket opened with it is closed then.
    pub expires: Millis,
}

/// A cached session, with its last use kept in memory between writes.
struct CachedSession {
    record: SessionRecord,
    /// The last use, in milliseconds since the epoch.
    last_seen: AtomicU64,
    /// The last use written to the store.
    last_written: AtomicU64,
}

/// Persisted sessions with a cache in front, so most requests do no I/O and
/// a restart logs nobody out.
pub struct Sessions {
    store: Store,
    cache: moka::sync::Cache<TokenHash, Arc<CachedSession>>,
    lifetimes: SessionsConfig,
}

/// The most of a `User-Agent` a session keeps.
const USER_AGENT_MAX: usize = 256;

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
    /// `user_agent` and `ip` say where from, for the account's session list.
    pub async fn create(
        &self,
        user: UserId,
        user_agent: &str,
        ip: IpAddr,
    ) -> storage::Result<Token> {
        self.start(user, user_agent, &ip.to_string(), false).await
    }

    /// Starts a bot's session: it never idles out or expires, and ends
    /// only when revoked (a new token, or the bot deleted).
    pub async fn create_lasting(&self, user: UserId) -> storage::Result<Token> {
        self.start(user, "bot token", "", true).await
    }

    async fn start(
        &self,
        user: UserId,
        user_agent: &str,
        ip: &str,
        lasting: bool,
    ) -> storage::Result<Token> {
        let token = Token::generate();
        let now = Millis::now();
        let mut end = user_agent.len().min(USER_AGENT_MAX);
        while !user_agent.is_char_boundary(end) {
            end -= 1;
        }
        let record = SessionRecord {
            user,
            created_at: now,
            last_seen: now,
            user_agent: user_agent[..end].to_string(),
            ip: ip.to_string(),
            lasting,
        };
        self.store.put_session(&Token::hash(&token.0), &record)?;
        self.store.flush_async().await?;
        Ok(token)
    }

    /// Resolves a token to its identity, if the session is alive and the
    /// account is in good standing. Counts as a use of the session.
    pub fn authenticate(
        &self,
        token: &str,
        directory: &Directory,
    ) -> storage::Result<Option<Identity>> {
        let hash = Token::hash(token);
        let Some(cached) = self.live(&hash)? else {
            return Ok(None);
        };
        match directory.get(cached.record.user) {
            Some(u) if !u.deleted && !u.disabled => {}
            _ => return Ok(None),
        }
        Ok(Some(Identity {
            user: cached.record.user,
            session: hash,
            expires: if cached.record.lasting {
                Millis(u64::MAX)
            } else {
                Millis(
                    cached
                        .record
                        .created_at
                        .0
                        .saturating_add(self.lifetimes.absolute.as_millis() as u64),
                )
            },
        }))
    }

    /// Records a use of a session that is already authenticated (a frame on
    /// its WebSocket), so an open connection keeps its session from idling
    /// out. Returns false if the session has ended.
    pub fn touch(&self, hash: &TokenHash) -> storage::Result<bool> {
        Ok(self.live(hash)?.is_some())
    }

    /// Whether the session has ended (or expired, which ends it now),
    /// without counting as a use of it: a push to its browser is not one.
    pub fn ended(&self, hash: &TokenHash) -> storage::Result<bool> {
        Ok(self.unexpired(hash)?.is_none())
    }

    /// The session, if it has not expired: ends it if it has.
    fn unexpired(&self, hash: &TokenHash) -> storage::Result<Option<Arc<CachedSession>>> {
        let cached = match self.cache.get(hash) {
            Some(c) => c,
            None => {
                let Some(record) = self.store.session(hash)? else {
                    return Ok(None);
                };
                let c = Arc::new(CachedSession {
                    last_seen: AtomicU64::new(record.last_seen.0),
                    last_written: AtomicU64::new(record.last_seen.0),
                    record,
                });
                self.cache.insert(*hash, c.clone());
                c
            }
        };
        let now = Millis::now().0;
        let idle = self.lifetimes.idle.as_millis() as u64;
        let absolute = self.lifetimes.absolute.as_millis() as u64;
        let last_seen = cached.last_seen.load(Ordering::Relaxed);
        let expired = now.saturating_sub(cached.record.created_at.0) >= absolute
            || now.saturating_sub(last_seen) >= idle;
        if expired && !cached.record.lasting {
            self.revoke(hash)?;
            return Ok(None);
        }
        Ok(Some(cached))
    }

    /// The session, if it has not expired: ends it if it has, and records
    /// this use (written back at most every [`LAST_SEEN_WRITE_EVERY`], or
    /// more often when the idle lifetime is shorter than that).
    fn live(&self, hash: &TokenHash) -> storage::Result<Option<Arc<CachedSession>>> {
        let Some(cached) = self.unexpired(hash)? else {
            return Ok(None);
        };
        let now = Millis::now().0;
        let idle = self.lifetimes.idle.as_millis() as u64;
        cached.last_seen.fetch_max(now, Ordering::Relaxed);
        let write_every = (LAST_SEEN_WRITE_EVERY.as_millis() as u64).min(idle / 4);
        let written = cached.last_written.load(Ordering::Relaxed);
        if now.saturating_sub(written) >= write_every
            && cached
                .last_written
                .compare_exchange(written, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let mut record = cached.record.clone();
            record.last_seen = Millis(now);
            self.store.touch_session(hash, &record)?;
        }
        Ok(Some(cached))
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
