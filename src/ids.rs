//! Identifier newtypes, so a room id can never be passed where a user id belongs.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// The nil UUID: no such thing ever exists (a room seen by
            /// nobody in it; an id that did not parse).
            pub const NIL: Self = Self(Uuid::nil());

            /// A new, time-ordered id (UUID v7).
            pub fn generate() -> Self {
                Self(Uuid::now_v7())
            }

            /// The 16 bytes used in storage keys.
            pub fn to_bytes(self) -> [u8; 16] {
                *self.0.as_bytes()
            }

            pub fn from_slice(bytes: &[u8]) -> Option<Self> {
                Uuid::from_slice(bytes).ok().map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0.hyphenated())
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

uuid_id!(
    /// A user account.
    UserId
);
uuid_id!(
    /// A room.
    RoomId
);
uuid_id!(
    /// One event in a room's log (a message, for now).
    EventId
);
uuid_id!(
    /// An incoming webhook.
    HookId
);
uuid_id!(
    /// One uploaded file: its name, type and uploader, over bytes that
    /// may be shared with other uploads of the same content.
    FileId
);

/// The SHA-256 of a stored file's bytes: where its blob lives on disk and
/// its `ETag`. Identical bytes are stored once.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ContentHash(pub [u8; 32]);

impl ContentHash {
    pub fn from_slice(bytes: &[u8]) -> Option<ContentHash> {
        bytes.try_into().ok().map(ContentHash)
    }
}

impl fmt::Display for ContentHash {
    /// 64 lower-case hex digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentHash({self})")
    }
}

/// A position in one room's log: starts at 1, never skips, never repeats.
/// The SHA-256 of a secret a client holds (a session token, an invite
/// code): all the server keeps, so a stolen database holds no usable
/// secrets.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for TokenHash {
    /// Only a prefix: enough to tell two apart in a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TokenHash({:02x}{:02x}{:02x}{:02x}…)",
            self.0[0], self.0[1], self.0[2], self.0[3]
        )
    }
}

/// A client's name for one send, unique per user and room, which makes a
/// retried send idempotent. Only [`crate::validate::client_id`] makes one,
/// so holding one means it was checked (1 to 64 characters, no controls).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientId(String);

impl ClientId {
    pub(crate) fn checked(id: String) -> ClientId {
        ClientId(id)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Seq(pub u64);

impl Seq {
    pub const ZERO: Seq = Seq(0);

    pub fn next(self) -> Seq {
        Seq(self.0 + 1)
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Which picture a user's avatar is: the first 8 bytes of the SHA-256 of
/// its stored PNG. It names the avatar in its URL and `ETag`, so a URL that
/// carries it can be cached for good; a new picture is a new version.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AvatarVersion(u64);

impl AvatarVersion {
    /// The version of these stored PNG bytes.
    pub fn of(png: &[u8]) -> AvatarVersion {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(png);
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        AvatarVersion(u64::from_be_bytes(first))
    }
}

impl fmt::Display for AvatarVersion {
    /// 16 lower-case hex digits, as in URLs and `ETag`s.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Debug for AvatarVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AvatarVersion({self})")
    }
}

/// Milliseconds since the Unix epoch, as stored on disk.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Millis(pub u64);

impl Millis {
    pub fn now() -> Millis {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Millis(d.as_millis() as u64)
    }

    /// RFC 3339 in UTC with milliseconds, the API's time format.
    pub fn to_rfc3339(self) -> String {
        self.rfc3339().to_string()
    }

    pub(crate) fn rfc3339(self) -> humantime::Rfc3339Timestamp {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(self.0);
        humantime::format_rfc3339_millis(t)
    }
}

impl Serialize for SerdeRfc3339 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Written straight into the output: no string of its own per time.
        s.collect_str(&self.0.rfc3339())
    }
}

/// Wraps [`Millis`] to serialize it as an RFC 3339 string in API output.
pub struct SerdeRfc3339(pub Millis);
