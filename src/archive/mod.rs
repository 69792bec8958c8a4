//! The export format: JSON Lines, one record a line, written by `hearth
//! export` and read by `hearth import` (docs/export.md documents it for
//! people and other programs).
//!
//! The first line is a [`Header`]; then users, rooms, and each room's log
//! in seq order, one record per event (a message in its current state, an
//! edit, a deletion, a reaction); the last line is an [`End`] counting the
//! records between, so a file cut at a line boundary is told apart from a
//! whole one. Ids, seqs, `client_id`s and times are the originals: an
//! import into a fresh server rebuilds the same logs, and an import of the
//! same file again finds every event already there.
//!
//! This module only reads and writes lines; what an import does with them
//! is [`crate::actions::exchange`]. [`slack`] turns a Slack workspace
//! export into this format.

pub mod slack;

use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};

use crate::ids::{EventId, Millis, RoomId, Seq, UserId};
use crate::storage::records::Visibility;

/// The header's `format`.
pub const FORMAT: &str = "hearth-export";
/// The newest format version this build writes and reads.
pub const VERSION: u32 = 1;
/// Longest line read: a room with tens of thousands of members is one line.
pub const MAX_LINE: usize = 16 << 20;

/// One line of an export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    Header(Header),
    User(User),
    Room(Room),
    Message(Message),
    Edit(Edit),
    Delete(Delete),
    Reaction(Reaction),
    File(File),
    End(End),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// Always [`FORMAT`].
    pub format: String,
    pub version: u32,
    /// The hearth version that wrote the file.
    pub server_version: String,
    /// When the export began (RFC 3339).
    pub exported_at: String,
    /// The rooms asked for with `--room`; absent: every room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rooms: Option<Vec<RoomId>>,
}

/// An account, without its password hash, sessions or avatar.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub username: String,
    #[serde(default)]
    pub email: String,
    pub created_at: Millis,
    #[serde(default)]
    pub admin: bool,
    #[serde(default)]
    pub disabled: bool,
    #[serde(default)]
    pub deleted: bool,
    #[serde(default)]
    pub bot: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub about: String,
}

/// A room, its roles and its members.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Room {
    pub id: RoomId,
    pub name: String,
    #[serde(default)]
    pub topic: String,
    /// The owner.
    pub created_by: UserId,
    pub created_at: Millis,
    pub visibility: Visibility,
    /// A direct room's people (sorted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub direct: Vec<UserId>,
    #[serde(default)]
    pub moderators: Vec<UserId>,
    #[serde(default)]
    pub banned: Vec<UserId>,
    /// Members now, sorted.
    #[serde(default)]
    pub members: Vec<UserId>,
    /// Extra facts kept from a foreign source (an archived Slack channel),
    /// not acted on.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub archived: bool,
}

/// A message as first sent, with what it looks like now. The `edit`,
/// `delete` and `reaction` records that changed it follow at their own
/// seqs; an import replays those, and the current-state fields here are
/// for readers of the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub room: RoomId,
    pub seq: Seq,
    pub id: EventId,
    pub at: Millis,
    pub author: UserId,
    #[serde(default)]
    pub client_id: Option<String>,
    /// The text as it reads now (empty once deleted).
    pub body: String,
    /// The text as first sent, when it was edited since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<Seq>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mentions: Vec<UserId>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mentions_room: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<Millis>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
    /// Each emoji with who reacted, in the order each first appeared.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reactions: Vec<ReactionNow>,
    /// Attached files (see [`File`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileRef>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReactionNow {
    pub emoji: String,
    pub users: Vec<UserId>,
}

/// A file a message carries: its content hash (the blob's name under
/// `--with-files DIR` and in the server's store) and what it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileRef {
    /// Lower-case hex SHA-256 of the content; absent when only the file's
    /// description came in (a Slack export links its files, not holds them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    pub name: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub content_type: String,
    /// Where the file was, when it is not carried (a Slack URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_url: Option<String>,
}

/// A blob written beside the export by `--with-files DIR`, at
/// `DIR/<sha256>`; listed once, before the first message that uses it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct File {
    pub sha256: String,
    pub size: u64,
    #[serde(default)]
    pub content_type: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Edit {
    pub room: RoomId,
    pub seq: Seq,
    pub id: EventId,
    pub at: Millis,
    pub target: Seq,
    pub by: UserId,
    pub body: String,
    #[serde(default)]
    pub client_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delete {
    pub room: RoomId,
    pub seq: Seq,
    pub id: EventId,
    pub at: Millis,
    pub target: Seq,
    pub by: UserId,
    #[serde(default)]
    pub client_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reaction {
    pub room: RoomId,
    pub seq: Seq,
    pub id: EventId,
    pub at: Millis,
    pub target: Seq,
    pub by: UserId,
    pub emoji: String,
    /// False: the reaction was taken back.
    pub on: bool,
    #[serde(default)]
    pub client_id: Option<String>,
}

/// The last line: how many records lie between the header and it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct End {
    pub records: u64,
}

impl Record {
    /// The room and seq of a log event (message, edit, deletion, reaction).
    pub fn event_at(&self) -> Option<(RoomId, Seq, EventId)> {
        match self {
            Record::Message(m) => Some((m.room, m.seq, m.id)),
            Record::Edit(e) => Some((e.room, e.seq, e.id)),
            Record::Delete(d) => Some((d.room, d.seq, d.id)),
            Record::Reaction(r) => Some((r.room, r.seq, r.id)),
            _ => None,
        }
    }
}

/// A line that is not a record of this format.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("line {line}: {message}")]
    Line { line: u64, message: String },
    #[error("cannot read the export: {0}")]
    Io(#[from] std::io::Error),
    #[error("Slack export: {0}")]
    Slack(String),
}

impl ArchiveError {
    pub fn at(line: u64, message: impl Into<String>) -> ArchiveError {
        ArchiveError::Line {
            line,
            message: message.into(),
        }
    }
}

/// Writes records, one a line, counting them for the [`End`] line.
pub struct Writer<W: Write> {
    out: W,
    records: u64,
}

impl<W: Write> Writer<W> {
    pub fn new(out: W, header: Header) -> std::io::Result<Self> {
        let mut w = Writer { out, records: 0 };
        w.line(&Record::Header(header))?;
        Ok(w)
    }

    pub fn write(&mut self, record: &Record) -> std::io::Result<()> {
        self.records += 1;
        self.line(record)
    }

    /// Writes the [`End`] line and hands back the output to sync.
    pub fn finish(mut self) -> std::io::Result<(W, u64)> {
        let n = self.records;
        self.line(&Record::End(End { records: n }))?;
        self.out.flush()?;
        Ok((self.out, n))
    }

    fn line(&mut self, record: &Record) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.out, record)?;
        self.out.write_all(b"\n")
    }
}

/// Reads records one line at a time (memory bounded by [`MAX_LINE`]),
/// checking the header, the order of lines and the end line. Each item is
/// the line number and the record; header and end are not yielded.
pub struct Reader<R: BufRead> {
    input: R,
    line: u64,
    buf: Vec<u8>,
    records: u64,
    ended: bool,
    pub header: Header,
}

impl<R: BufRead> Reader<R> {
    pub fn new(mut input: R) -> Result<Self, ArchiveError> {
        let mut buf = Vec::new();
        let first = read_line(&mut input, &mut buf, 1)?
            .ok_or_else(|| ArchiveError::at(1, "the file is empty"))?;
        let header = match serde_json::from_slice::<Record>(first) {
            Ok(Record::Header(h)) => h,
            _ => {
                return Err(ArchiveError::at(
                    1,
                    format!("not a {FORMAT} file: the first line must be its header"),
                ))
            }
        };
        if header.format != FORMAT {
            return Err(ArchiveError::at(
                1,
                format!("format {:?} is not {FORMAT:?}", header.format),
            ));
        }
        if header.version == 0 || header.version > VERSION {
            return Err(ArchiveError::at(
                1,
                format!(
                    "format version {} is newer than this hearth reads ({VERSION}); use a newer hearth",
                    header.version
                ),
            ));
        }
        Ok(Reader {
            input,
            line: 1,
            buf,
            records: 0,
            ended: false,
            header,
        })
    }

    fn next_record(&mut self) -> Result<Option<(u64, Record)>, ArchiveError> {
        loop {
            self.line += 1;
            let line = self.line;
            let Some(bytes) = read_line(&mut self.input, &mut self.buf, line)? else {
                if self.ended {
                    return Ok(None);
                }
                return Err(ArchiveError::at(
                    line,
                    "the file ends before its end line: it is truncated",
                ));
            };
            if self.ended {
                return Err(ArchiveError::at(line, "a line after the end line"));
            }
            if bytes.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let record: Record = serde_json::from_slice(bytes)
                .map_err(|e| ArchiveError::at(line, format!("not a record of this format: {e}")))?;
            match record {
                Record::Header(_) => return Err(ArchiveError::at(line, "a second header")),
                Record::End(End { records }) => {
                    if records != self.records {
                        return Err(ArchiveError::at(
                            line,
                            format!(
                                "the end line counts {records} records but {} came before it",
                                self.records
                            ),
                        ));
                    }
                    self.ended = true;
                }
                record => {
                    self.records += 1;
                    return Ok(Some((line, record)));
                }
            }
        }
    }
}

impl<R: BufRead> Iterator for Reader<R> {
    type Item = Result<(u64, Record), ArchiveError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_record().transpose()
    }
}

/// One line without its newline; `None` at the end of the input. A last
/// line without a newline is a cut line.
fn read_line<'b, R: BufRead>(
    input: &mut R,
    buf: &'b mut Vec<u8>,
    line: u64,
) -> Result<Option<&'b [u8]>, ArchiveError> {
    buf.clear();
    let n = std::io::Read::take(&mut *input, MAX_LINE as u64 + 1).read_until(b'\n', buf)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() != Some(&b'\n') {
        if buf.len() > MAX_LINE {
            return Err(ArchiveError::at(line, "the line is longer than 16 MiB"));
        }
        return Err(ArchiveError::at(
            line,
            "the line does not end with a newline: the file is truncated",
        ));
    }
    buf.pop();
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok(Some(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            format: FORMAT.into(),
            version: VERSION,
            server_version: "test".into(),
            exported_at: "2026-01-01T00:00:00.000Z".into(),
            rooms: None,
        }
    }

    fn file(records: &[Record]) -> Vec<u8> {
        let mut w = Writer::new(Vec::new(), header()).unwrap();
        for r in records {
            w.write(r).unwrap();
        }
        w.finish().unwrap().0
    }

    fn user() -> Record {
        Record::User(User {
            id: UserId::generate(),
            username: "ann".into(),
            email: String::new(),
            created_at: Millis(1),
            admin: false,
            disabled: false,
            deleted: false,
            bot: false,
            display_name: None,
            about: String::new(),
        })
    }

    fn read_all(bytes: &[u8]) -> Result<Vec<Record>, ArchiveError> {
        Reader::new(bytes)?.map(|r| r.map(|(_, r)| r)).collect()
    }

    #[test]
    fn records_round_trip() {
        let records = vec![user(), user()];
        assert_eq!(read_all(&file(&records)).unwrap(), records);
    }

    #[test]
    fn a_cut_file_names_the_line() {
        let bytes = file(&[user(), user()]);
        let text = String::from_utf8(bytes).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        // cut mid-line
        let cut = format!("{}\n{}\n{}", lines[0], lines[1], &lines[2][..10]);
        let err = read_all(cut.as_bytes()).unwrap_err().to_string();
        assert!(
            err.starts_with("line 3:") && err.contains("truncated"),
            "{err}"
        );
        // cut at a line boundary: the end line is missing
        let cut = format!("{}\n{}\n", lines[0], lines[1]);
        let err = read_all(cut.as_bytes()).unwrap_err().to_string();
        assert!(
            err.starts_with("line 3:") && err.contains("truncated"),
            "{err}"
        );
        // a damaged line
        let bad = format!(
            "{}\n{}\n{{\"type\":\"user\"\n{}\n",
            lines[0], lines[1], lines[3]
        );
        let err = read_all(bad.as_bytes()).unwrap_err().to_string();
        assert!(err.starts_with("line 3:"), "{err}");
    }

    #[test]
    fn a_foreign_or_newer_file_is_refused() {
        let err = read_all(b"{\"hello\":1}\n").unwrap_err().to_string();
        assert!(err.contains("header"), "{err}");
        let mut h = header();
        h.version = VERSION + 1;
        let mut line = serde_json::to_vec(&Record::Header(h)).unwrap();
        line.push(b'\n');
        let err = read_all(&line).unwrap_err().to_string();
        assert!(err.contains("newer"), "{err}");
    }
}
