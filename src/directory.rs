//! The directory of accounts, in memory: every user's name, standing and
//! look (display name, avatar version), so authors and member lists are
//! rendered and sessions checked without a disk read. The
//! store stays the source of truth; every change is written there first.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use crate::ids::{AvatarVersion, UserId};
use crate::locks::{read, write};
use crate::protocol::{AuthorView, DELETED_USERNAME};
use crate::storage::{self, Store, UserRecord};

/// What the rest of the server needs to know about a user without a disk read.
#[derive(Debug, Clone)]
pub struct UserSummary {
    pub username: String,
    /// Shown beside the username in member lists.
    pub display_name: Option<String>,
    /// The avatar's version, for its URL in member lists.
    pub avatar: Option<AvatarVersion>,
    pub deleted: bool,
    pub disabled: bool,
    pub admin: bool,
    pub bot: bool,
}

/// Every account's name and standing, kept in memory to render authors.
#[derive(Default)]
pub struct Directory {
    users: RwLock<HashMap<UserId, Arc<UserSummary>>>,
    /// Counts the changes, for what is kept rendered from it (history
    /// pages, [`crate::recent`]).
    version: AtomicU64,
}

impl Directory {
    pub fn load(store: &Store) -> storage::Result<Directory> {
        let dir = Directory::default();
        for user in store.users() {
            dir.put(&user?);
        }
        Ok(dir)
    }

    pub fn put(&self, user: &UserRecord) {
        write(&self.users).insert(
            user.id,
            Arc::new(UserSummary {
                username: user.username.clone(),
                display_name: user.display_name.clone(),
                avatar: user.avatar,
                deleted: user.deleted,
                disabled: user.disabled,
                admin: user.admin,
                bot: user.bot,
            }),
        );
        // After the change: whoever reads this version and then the
        // directory sees the change.
        self.version.fetch_add(1, Ordering::SeqCst);
    }

    /// Moves on every change. Read it before reading what is rendered from
    /// the directory: what was rendered is current while it has not moved.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::SeqCst)
    }

    pub fn get(&self, id: UserId) -> Option<Arc<UserSummary>> {
        read(&self.users).get(&id).cloned()
    }

    /// Active accounts (not disabled or deleted) whose username starts
    /// with `prefix`, ignoring case.
    pub fn with_prefix(&self, prefix: &str) -> Vec<(UserId, Arc<UserSummary>)> {
        let prefix = prefix.to_lowercase();
        read(&self.users)
            .iter()
            .filter(|(_, u)| {
                !u.deleted && !u.disabled && u.username.to_lowercase().starts_with(&prefix)
            })
            .map(|(id, u)| (*id, u.clone()))
            .collect()
    }

    pub fn count(&self) -> usize {
        read(&self.users).len()
    }
}

/// Shown for what the operator did from the admin CLI (no account).
pub const OPERATOR_USERNAME: &str = "server administrator";

/// Builds the author view for `id` from a looked-up summary.
pub fn author_view(id: UserId, summary: Option<&UserSummary>) -> AuthorView<'_> {
    if id == UserId::NIL {
        // The operator, acting from the admin CLI.
        return AuthorView {
            id,
            username: OPERATOR_USERNAME,
            deleted: false,
        };
    }
    match summary {
        Some(s) if !s.deleted => AuthorView {
            id,
            username: &s.username,
            deleted: false,
        },
        _ => AuthorView {
            id,
            username: DELETED_USERNAME,
            deleted: true,
        },
    }
}
