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
        String::from_utf8_lossy(&self.rfc3339_bytes()).into_owned()
    }

    /// The text of [`Millis::to_rfc3339`], `YYYY-MM-DDTHH:MM:SS.mmmZ`,
    /// written digit by digit: every message frame carries a time, and
    /// going through the formatting machinery cost the committer a few per
    /// cent of its time. A time after the year 9999, which four digits
    /// cannot hold (an imported file or an operator's far expiry can name
    /// one), is written as the last instant they can.
    pub(crate) fn rfc3339_bytes(self) -> [u8; 24] {
        /// 9999-12-31T23:59:59.999Z
        const LAST: u64 = 253_402_300_799_999;
        let ms = self.0.min(LAST);
        let secs = ms / 1000;
        let (year, month, day) = civil_from_days(secs / 86_400);
        let in_day = secs % 86_400;
        let mut out = *b"0000-00-00T00:00:00.000Z";
        let mut put = |at: usize, width: usize, mut n: u64| {
            for i in (at..at + width).rev() {
                out[i] = b'0' + (n % 10) as u8;
                n /= 10;
            }
        };
        put(0, 4, year);
        put(5, 2, month);
        put(8, 2, day);
        put(11, 2, in_day / 3600);
        put(14, 2, in_day / 60 % 60);
        put(17, 2, in_day % 60);
        put(20, 3, ms % 1000);
        out
    }
}

/// The proleptic Gregorian date (year, month 1-12, day 1-31) of a day
/// counted from 1970-01-01 (Howard Hinnant's `civil_from_days`, in
/// unsigned arithmetic: days before 1970 do not occur here).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Counted from 0000-03-01, so that a leap day ends its year.
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

impl Serialize for SerdeRfc3339 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let text = self.0.rfc3339_bytes();
        s.serialize_str(std::str::from_utf8(&text).unwrap_or_default())
    }
}

/// Wraps [`Millis`] to serialize it as an RFC 3339 string in API output.
pub struct SerdeRfc3339(pub Millis);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The general formatter the hand-written text must agree with.
    fn general(t: Millis) -> String {
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(t.0);
        humantime::format_rfc3339_millis(at).to_string()
    }

    #[test]
    fn times_written_by_hand_match_the_general_formatter_at_the_edges() {
        for ms in [
            0,
            999,
            86_399_999,
            86_400_000,
            // 2000-02-29, 2000-03-01, 2100-02-28, 2100-03-01
            951_782_400_123,
            951_868_800_000,
            4_107_456_000_000,
            4_107_542_400_000,
            // 2024-12-31T23:59:59.999, 2025-01-01
            1_735_689_599_999,
            1_735_689_600_000,
            253_402_300_799_999,
        ] {
            let t = Millis(ms);
            let mine = t.rfc3339_bytes();
            assert_eq!(std::str::from_utf8(&mine).unwrap(), general(t), "{ms}");
            assert_eq!(t.to_rfc3339(), general(t));
        }
        // Past the year 9999 (where the general formatter fails) a time
        // is written as the last one four digits hold, and never panics.
        for far in [253_402_300_800_000, u64::MAX] {
            assert_eq!(Millis(far).to_rfc3339(), "9999-12-31T23:59:59.999Z");
            assert_eq!(
                serde_json::to_string(&SerdeRfc3339(Millis(far))).unwrap(),
                "\"9999-12-31T23:59:59.999Z\""
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]
        #[test]
        fn times_written_by_hand_match_the_general_formatter(ms in 0u64..=253_402_300_799_999) {
            let t = Millis(ms);
            let mine = t.rfc3339_bytes();
            prop_assert_eq!(std::str::from_utf8(&mine).unwrap(), general(t));
            prop_assert_eq!(
                serde_json::to_string(&SerdeRfc3339(t)).unwrap(),
                format!("\"{}\"", general(t))
            );
        }
    }
}
