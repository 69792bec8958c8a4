//! Web Push (RFC 8030): notifications to browsers whose user is away.
//!
//! The committer hands every durable message to [`Feed::message`], and
//! [`crate::actions::reads::mark`] every moved read cursor to
//! [`Push::read`]; neither waits (a full queue drops the notification and
//! counts it). One task, [`deliver::run`], decides who hears of a message
//! (members other than the sender, by their notification level, who have a
//! subscription and no active socket), and queues the notification per
//! user. Each user's queue is drained by a task of its own, which sends to
//! each of the user's subscriptions at once, so a hanging push service
//! delays nobody else. A queue that fills keeps one notification per room.
//!
//! Payloads are encrypted for each browser and signed with the server's
//! VAPID key ([`crypto`]), which is made at first start and kept in the
//! store (so backups carry it).

pub mod crypto;
pub mod deliver;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::mpsc;

use crate::ids::{RoomId, Seq, UserId};
use crate::locks::{lock, read, write};
use crate::storage::{self, Store};
use crypto::Vapid;

/// Events waiting for the push task; past this they are dropped (counted).
const FEED_CAPACITY: usize = 4096;

/// The longest excerpt of a message a notification carries, in characters.
pub const EXCERPT_CHARS: usize = 140;

/// What the push task is told.
pub(crate) enum Op {
    Message(Box<Posted>),
    Read {
        user: UserId,
        room: RoomId,
        seq: Seq,
    },
}

/// A durable new message, as much of it as a notification needs.
pub(crate) struct Posted {
    room: RoomId,
    seq: Seq,
    author: UserId,
    excerpt: String,
    mentions: Vec<UserId>,
    mentions_room: bool,
}

/// Counts for `/metrics`.
#[derive(Default, Debug)]
pub struct PushStats {
    /// Pushes a push service accepted.
    pub sent: AtomicU64,
    /// Pushes given up on (refused, or failing after every retry).
    pub failed: AtomicU64,
    /// Notifications never sent: collapsed or dropped from a full queue.
    pub dropped: AtomicU64,
    /// Subscriptions removed because the push service said they are gone.
    pub expired: AtomicU64,
}

/// The users who may have a subscription: everyone who had one at start
/// or subscribed since (one whose subscriptions ended stays: forgetting
/// could race a new subscription). It only saves looking in the store, and
/// at room members, for the many who never subscribed.
#[derive(Default)]
pub(crate) struct Subscribers {
    users: RwLock<HashSet<UserId>>,
}

impl Subscribers {
    pub(crate) fn contains(&self, user: UserId) -> bool {
        read(&self.users).contains(&user)
    }

    pub(crate) fn snapshot(&self) -> Vec<UserId> {
        read(&self.users).iter().copied().collect()
    }

    pub(crate) fn len(&self) -> usize {
        read(&self.users).len()
    }
}

/// The server's side of Web Push: its key, and the queue into the push task.
pub struct Push {
    vapid: Vapid,
    feed: Feed,
    /// Taken once by the task that delivers (none runs without a server).
    queue: Mutex<Option<mpsc::Receiver<Op>>>,
    pub(crate) subscribers: Arc<Subscribers>,
    pub stats: Arc<PushStats>,
}

/// The sending side of the push task's queue; never waits.
#[derive(Clone)]
pub struct Feed {
    tx: mpsc::Sender<Op>,
    subscribers: Arc<Subscribers>,
    stats: Arc<PushStats>,
}

impl Push {
    /// Loads the VAPID key from the store, making and keeping one the
    /// first time.
    pub fn open(store: &Store) -> Result<Push, PushError> {
        let pkcs8 = match store.vapid_key()? {
            Some(k) => k,
            None => {
                let k = Vapid::generate()?;
                store.put_vapid_key(&k)?;
                store.flush()?;
                k
            }
        };
        let vapid = Vapid::from_pkcs8(&pkcs8)?;
        let (tx, rx) = mpsc::channel(FEED_CAPACITY);
        let stats = Arc::new(PushStats::default());
        let subscribers = Arc::new(Subscribers {
            users: RwLock::new(store.push_subscribers()?),
        });
        Ok(Push {
            vapid,
            feed: Feed {
                tx,
                subscribers: subscribers.clone(),
                stats: stats.clone(),
            },
            queue: Mutex::new(Some(rx)),
            subscribers,
            stats,
        })
    }

    /// The VAPID public key, base64url, for browsers to subscribe with.
    pub fn public_key(&self) -> String {
        self.vapid.public_key()
    }

    pub fn feed(&self) -> Feed {
        self.feed.clone()
    }

    /// `user` has read `room` up to `seq` (on any device).
    pub fn read(&self, user: UserId, room: RoomId, seq: Seq) {
        if self.subscribers.contains(user) {
            self.feed.send(Op::Read { user, room, seq });
        }
    }

    /// `user` subscribed a browser.
    pub fn subscribed(&self, user: UserId) {
        write(&self.subscribers.users).insert(user);
    }

    /// The queue, for the task that delivers (once).
    pub(crate) fn take_queue(&self) -> Option<mpsc::Receiver<Op>> {
        lock(&self.queue).take()
    }

    pub(crate) fn vapid(&self) -> &Vapid {
        &self.vapid
    }
}

impl Feed {
    /// Message `seq` of `room` by `author` is durable.
    pub fn message(
        &self,
        room: RoomId,
        seq: Seq,
        author: UserId,
        body: &str,
        mentions: &[UserId],
        mentions_room: bool,
    ) {
        // Most servers, and every benchmark, have no subscriber at all.
        if self.subscribers.len() == 0 {
            return;
        }
        let excerpt = body.chars().take(EXCERPT_CHARS).collect();
        self.send(Op::Message(Box::new(Posted {
            room,
            seq,
            author,
            excerpt,
            mentions: mentions.to_vec(),
            mentions_room,
        })));
    }

    fn send(&self, op: Op) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.tx.try_send(op) {
            self.stats.dropped.fetch_add(1, Relaxed);
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
    #[error(transparent)]
    Crypto(#[from] crypto::CryptoError),
}
