//! Who is online: a user is while they have a greeted socket. Changes are
//! gathered and announced every [`TICK`] to the sockets of people who share
//! a room with them, one frame per socket, and only if the change still
//! holds then, so a reconnect within the tick does not flap. Rooms over
//! `presence_max_members` share nothing: in a room of 15,000 every arrival
//! would cost 15,000 frames.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use crate::ids::UserId;
use crate::locks::lock;

/// How often changes are announced, at most one frame per socket each time.
pub const TICK: Duration = Duration::from_secs(2);

#[derive(Default)]
pub struct Presence {
    /// Greeted sockets per online user.
    sockets: Mutex<HashMap<UserId, usize>>,
    /// Users whose state may differ from what was last announced.
    changed: Mutex<HashSet<UserId>>,
    /// Users last announced as online.
    announced: Mutex<HashSet<UserId>>,
    /// Held while changes are announced, and while a socket takes its
    /// snapshot (`ready`) and starts hearing changes: a change is then in
    /// the snapshot or announced to it, never lost between the two, and
    /// never sent before its `ready`.
    announcing: Mutex<()>,
}

impl Presence {
    /// A socket of `user` said hello.
    pub fn greeted(&self, user: UserId) {
        let mut sockets = lock(&self.sockets);
        let n = sockets.entry(user).or_insert(0);
        *n += 1;
        if *n == 1 {
            lock(&self.changed).insert(user);
        }
    }

    /// A greeted socket of `user` closed.
    pub fn gone(&self, user: UserId) {
        let mut sockets = lock(&self.sockets);
        if let Some(n) = sockets.get_mut(&user) {
            *n -= 1;
            if *n == 0 {
                sockets.remove(&user);
                lock(&self.changed).insert(user);
            }
        }
    }

    /// See `announcing`.
    pub fn hold(&self) -> std::sync::MutexGuard<'_, ()> {
        lock(&self.announcing)
    }

    pub fn is_online(&self, user: UserId) -> bool {
        lock(&self.sockets).contains_key(&user)
    }

    /// The changes to announce now: users whose state differs from what was
    /// last announced (a user who left and came back within the tick has
    /// none).
    pub fn take_changes(&self) -> Vec<(UserId, bool)> {
        let changed: Vec<UserId> = lock(&self.changed).drain().collect();
        let mut announced = lock(&self.announced);
        changed
            .into_iter()
            .filter_map(|user| {
                let online = self.is_online(user);
                let was = announced.contains(&user);
                if online == was {
                    return None;
                }
                if online {
                    announced.insert(user);
                } else {
                    announced.remove(&user);
                }
                Some((user, online))
            })
            .collect()
    }
}
