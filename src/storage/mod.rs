//! Storage: everything hearth keeps on disk, behind one small interface so
//! the engine (sled) stays an implementation detail.
//!
//! Trees, named for what they map (values are MessagePack records from
//! [`records`] unless noted):
//!
//! | tree               | key                                   | value                     |
//! |--------------------|---------------------------------------|---------------------------|
//! | `meta`             | `b"schema_version"`                   | u32 big-endian            |
//! | `meta`             | `b"registration"` (see [`settings`])  | the mode's name (UTF-8)   |
//! | `userid_user`      | user id (16)                          | [`UserRecord`]            |
//! | `username_userid`  | lower-cased username                  | user id (16)              |
//! | `email_userid`     | lower-cased email                     | user id (16)              |
//! | `tokenhash_session`| SHA-256 of the token (32)             | [`SessionRecord`]         |
//! | `userid_tokenhash` | user id (16) ‖ token hash (32)        | empty                     |
//! | `roomid_room`      | room id (16)                          | [`RoomRecord`]            |
//! | `roomname_roomid`  | a public room's lower-cased name, or `\0direct:` ‖ SHA-256 of a direct room's people | room id (16) |
//! | `roomid_userid`    | room id (16) ‖ user id (16)           | joined-at millis (u64 BE) |
//! | `userid_roomid`    | user id (16) ‖ room id (16)           | empty                     |
//! | `roomlog`          | see [`log`]                           |                           |
//! | `invitecode_invite`| SHA-256 of the invite code (32)       | [`InviteRecord`]          |
//! | `resetcode_reset`  | SHA-256 of a password-reset code (32) | [`ResetRecord`]           |
//! | `userid_avatar`    | user id (16)                          | the avatar's PNG bytes    |
//! | `userid_roomid_readseq` | user id (16) ‖ room id (16)      | read cursor seq (u64 BE)  |
//! | `roomid_tally`     | room id (16)                          | unread tally snapshot (see [`crate::unread`]) |
//! | `hooksecret_hook`  | SHA-256 of a webhook's secret (32)    | [`HookRecord`]            |
//! | `userid_callback`  | a bot's user id (16)                  | [`CallbackRecord`]        |
//! | `userid_roomid_notify` | user id (16) ‖ room id (16)       | notification level (1 byte: all, mentions, none) |
//! | `fileid_file`      | file id (16)                          | [`records::FileRecord`]   |
//! | `hash_fileid`      | content hash (32) ‖ file id (16)      | empty (who uses a blob)   |
//! | `userid_fileid`    | uploader (16) ‖ file id (16)          | size (u64 BE), for quotas |
//!
//! `roomid_tally` is derived from the log and rebuilt from it when missing,
//! so backups leave it out.
//!
//! The room log keeps events, message states and each room's head in one
//! tree so that one atomic batch covers them (sled batches are per tree).

//!
//! Files: [`store`] opens the database and owns its lifecycle; one file per
//! domain reads and writes its trees ([`users`], [`sessions`], [`rooms`],
//! [`invites`] and password-reset codes, [`avatars`], the room [`log`], read cursors in [`reads`], Web Push
//! subscriptions and keys in [`push`]);
//! [`records`] are the stored values; [`backup`] and [`verify`] walk all of
//! them.

mod avatars;
pub mod backup;
mod error;
pub mod files;
mod hooks;
mod invites;
pub mod log;
mod push;
mod reads;
pub mod records;
mod resets;
mod rooms;
mod sessions;
mod settings;
mod store;
mod users;
pub mod verify;

pub use error::{Result, StorageError};
pub use records::{
    CallbackRecord, HookRecord, InviteRecord, PushSubRecord, ResetRecord, RoomRecord,
    SessionRecord, UserRecord, Visibility,
};
pub use store::{hex, snapshot_for_next_open, Store, SCHEMA_VERSION};
pub use users::Taken;
