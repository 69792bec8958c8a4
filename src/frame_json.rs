//! The JSON of the two frames every message costs the committer, `message`
//! (to the room) and `ack` (to the sender), written straight into the
//! frame's buffer.
//!
//! They are the bytes serde_json writes for the same frames: field order
//! and names as `protocol`'s `Serialize` derives, strings escaped as
//! serde_json escapes them (`"`, `\` and control characters; nothing
//! else), ids as lowercase hyphenated UUIDs, times as RFC 3339. A test
//! compares the two over generated frames, strings of any characters
//! included, so a field added to a view and not here fails it.
//!
//! Why: through serde_json each key is run through the string escaper and
//! each id through `fmt`; in many rooms that was a fifth of the committer's
//! time. Every other frame is written by serde_json.

use uuid::Uuid;

use crate::ids::{Seq, SerdeRfc3339, UserId};
use crate::protocol::{FileView, MessageView, ReactionView, ReplyView, ServerFrame};

/// Writes `frame` as JSON if it is a `message` or an `ack`; false (nothing
/// written) for any other.
pub fn write(frame: &ServerFrame<'_>, out: &mut Vec<u8>) -> bool {
    match frame {
        ServerFrame::Message { message } => {
            out.extend_from_slice(br#"{"type":"message","message":"#);
            message_view(message, out);
            out.push(b'}');
        }
        ServerFrame::Ack {
            client_id,
            room,
            seq,
            id,
        } => {
            out.extend_from_slice(br#"{"type":"ack","client_id":"#);
            string(client_id, out);
            out.extend_from_slice(br#","room":"#);
            uuid(room.0, out);
            out.extend_from_slice(br#","seq":"#);
            option(seq.as_ref(), out, |s, out| seq_number(*s, out));
            out.extend_from_slice(br#","id":"#);
            option(id.as_ref(), out, |id, out| uuid(id.0, out));
            out.push(b'}');
        }
        _ => return false,
    }
    true
}

fn message_view(m: &MessageView<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(br#"{"id":"#);
    uuid(m.id.0, out);
    out.extend_from_slice(br#","room":"#);
    uuid(m.room.0, out);
    out.extend_from_slice(br#","seq":"#);
    seq_number(m.seq, out);
    out.extend_from_slice(br#","author":"#);
    author(m.author.id, m.author.username, m.author.deleted, out);
    out.extend_from_slice(br#","body":"#);
    string(m.body, out);
    out.extend_from_slice(br#","client_id":"#);
    option(m.client_id, out, string);
    out.extend_from_slice(br#","created_at":"#);
    time(&m.created_at, out);
    out.extend_from_slice(br#","edited_at":"#);
    option(m.edited_at.as_ref(), out, time);
    out.extend_from_slice(br#","deleted":"#);
    boolean(m.deleted, out);
    out.extend_from_slice(br#","reactions":"#);
    array(&m.reactions, out, reaction);
    out.extend_from_slice(br#","reply_to":"#);
    option(m.reply_to.as_ref(), out, reply);
    out.extend_from_slice(br#","mentions":"#);
    array(m.mentions, out, |u, out| uuid(u.0, out));
    out.extend_from_slice(br#","mentions_room":"#);
    boolean(m.mentions_room, out);
    out.extend_from_slice(br#","files":"#);
    array(&m.files, out, file);
    out.push(b'}');
}

/// An `AuthorView`, or a reply's `ReplyAuthor`: the same fields.
fn author(id: UserId, username: &str, deleted: bool, out: &mut Vec<u8>) {
    out.extend_from_slice(br#"{"id":"#);
    uuid(id.0, out);
    out.extend_from_slice(br#","username":"#);
    string(username, out);
    if deleted {
        out.extend_from_slice(br#","deleted":true"#);
    }
    out.push(b'}');
}

fn reaction(r: &ReactionView<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(br#"{"emoji":"#);
    string(r.emoji, out);
    out.extend_from_slice(br#","count":"#);
    number(r.count as u64, out);
    out.extend_from_slice(br#","me":"#);
    boolean(r.me, out);
    out.push(b'}');
}

fn reply(r: &ReplyView, out: &mut Vec<u8>) {
    out.extend_from_slice(br#"{"seq":"#);
    seq_number(r.seq, out);
    out.extend_from_slice(br#","author":"#);
    author(r.author.id, &r.author.username, r.author.deleted, out);
    out.extend_from_slice(br#","excerpt":"#);
    string(&r.excerpt, out);
    out.push(b'}');
}

fn file(f: &FileView<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(br#"{"id":"#);
    uuid(f.id.0, out);
    out.extend_from_slice(br#","name":"#);
    string(f.name, out);
    out.extend_from_slice(br#","type":"#);
    string(f.mime, out);
    out.extend_from_slice(br#","size":"#);
    number(f.size, out);
    if let Some(w) = f.width {
        out.extend_from_slice(br#","width":"#);
        number(w.into(), out);
    }
    if let Some(h) = f.height {
        out.extend_from_slice(br#","height":"#);
        number(h.into(), out);
    }
    out.extend_from_slice(br#","thumb":"#);
    boolean(f.thumb, out);
    out.push(b'}');
}

fn option<T>(value: Option<T>, out: &mut Vec<u8>, write: impl FnOnce(T, &mut Vec<u8>)) {
    match value {
        Some(v) => write(v, out),
        None => out.extend_from_slice(b"null"),
    }
}

fn array<T>(items: &[T], out: &mut Vec<u8>, write: impl Fn(&T, &mut Vec<u8>)) {
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write(item, out);
    }
    out.push(b']');
}

fn boolean(b: bool, out: &mut Vec<u8>) {
    out.extend_from_slice(if b { b"true" } else { b"false" });
}

fn number(n: u64, out: &mut Vec<u8>) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

fn seq_number(s: Seq, out: &mut Vec<u8>) {
    number(s.0, out);
}

fn uuid(id: Uuid, out: &mut Vec<u8>) {
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    out.push(b'"');
    out.extend_from_slice(id.hyphenated().encode_lower(&mut buf).as_bytes());
    out.push(b'"');
}

fn time(t: &SerdeRfc3339, out: &mut Vec<u8>) {
    // RFC 3339 has nothing to escape.
    out.push(b'"');
    out.extend_from_slice(&t.0.rfc3339_bytes());
    out.push(b'"');
}

/// A JSON string, escaped as serde_json escapes: `"` and `\` with a
/// backslash, the control characters below U+0020 as `\b \t \n \f \r` or
/// `\u00XX` (lowercase hex); everything else as it is.
fn string(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short = match b {
            b'"' => b'"',
            b'\\' => b'\\',
            0x08 => b'b',
            0x09 => b't',
            0x0A => b'n',
            0x0C => b'f',
            0x0D => b'r',
            0x00..=0x1F => b'u',
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        start = i + 1;
        if short == b'u' {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xF)]);
        } else {
            out.push(b'\\');
            out.push(short);
        }
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::ids::{EventId, FileId, Millis, RoomId};
    use crate::protocol::{AuthorView, ReplyAuthor};

    fn text() -> impl Strategy<Value = String> {
        prop::collection::vec(any::<char>(), 0..24).prop_map(String::from_iter)
    }

    fn uuid_any() -> impl Strategy<Value = Uuid> {
        any::<u128>().prop_map(Uuid::from_u128)
    }

    fn millis() -> impl Strategy<Value = Millis> {
        // Up to the year 9999, which RFC 3339 can write.
        (0u64..253_402_300_799_000).prop_map(Millis)
    }

    /// id, name, type, size, width, height, thumb
    type FileSample = (Uuid, String, String, u64, Option<u32>, Option<u32>, bool);

    #[derive(Debug, Clone)]
    struct Sample {
        ids: [Uuid; 3],
        seq: u64,
        username: String,
        author_deleted: bool,
        body: String,
        client_id: Option<String>,
        created: Millis,
        edited: Option<Millis>,
        deleted: bool,
        reactions: Vec<(String, usize, bool)>,
        reply: Option<(u64, Uuid, String, bool, String)>,
        mentions: Vec<Uuid>,
        mentions_room: bool,
        files: Vec<FileSample>,
    }

    fn sample() -> impl Strategy<Value = Sample> {
        let head = (
            [uuid_any(), uuid_any(), uuid_any()],
            any::<u64>(),
            text(),
            any::<bool>(),
            text(),
            prop::option::of(text()),
            millis(),
            prop::option::of(millis()),
            any::<bool>(),
        );
        let tail = (
            prop::collection::vec((text(), any::<usize>(), any::<bool>()), 0..3),
            prop::option::of((any::<u64>(), uuid_any(), text(), any::<bool>(), text())),
            prop::collection::vec(uuid_any(), 0..3),
            any::<bool>(),
            prop::collection::vec(
                (
                    uuid_any(),
                    text(),
                    text(),
                    any::<u64>(),
                    prop::option::of(any::<u32>()),
                    prop::option::of(any::<u32>()),
                    any::<bool>(),
                ),
                0..3,
            ),
        );
        (head, tail).prop_map(|(h, t)| Sample {
            ids: h.0,
            seq: h.1,
            username: h.2,
            author_deleted: h.3,
            body: h.4,
            client_id: h.5,
            created: h.6,
            edited: h.7,
            deleted: h.8,
            reactions: t.0,
            reply: t.1,
            mentions: t.2,
            mentions_room: t.3,
            files: t.4,
        })
    }

    fn compare(frame: &ServerFrame<'_>) {
        let mut ours = Vec::new();
        assert!(write(frame, &mut ours));
        let serde = serde_json::to_vec(frame).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(&serde)
        );
        assert_eq!(ours, serde);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn messages_are_written_as_serde_json_writes_them(s in sample()) {
            let mentions: Vec<UserId> = s.mentions.iter().copied().map(UserId).collect();
            let message = MessageView {
                id: EventId(s.ids[0]),
                room: RoomId(s.ids[1]),
                seq: Seq(s.seq),
                author: AuthorView {
                    id: UserId(s.ids[2]),
                    username: &s.username,
                    deleted: s.author_deleted,
                },
                body: &s.body,
                client_id: s.client_id.as_deref(),
                created_at: SerdeRfc3339(s.created),
                edited_at: s.edited.map(SerdeRfc3339),
                deleted: s.deleted,
                reactions: s
                    .reactions
                    .iter()
                    .map(|(emoji, count, me)| ReactionView { emoji, count: *count, me: *me })
                    .collect(),
                reply_to: s.reply.clone().map(|(seq, id, username, deleted, excerpt)| ReplyView {
                    seq: Seq(seq),
                    author: ReplyAuthor { id: UserId(id), username, deleted },
                    excerpt,
                }),
                mentions: &mentions,
                mentions_room: s.mentions_room,
                files: s
                    .files
                    .iter()
                    .map(|(id, name, mime, size, width, height, thumb)| FileView {
                        id: FileId(*id),
                        name,
                        mime,
                        size: *size,
                        width: *width,
                        height: *height,
                        thumb: *thumb,
                    })
                    .collect(),
            };
            compare(&ServerFrame::Message { message });
        }

        #[test]
        fn acks_are_written_as_serde_json_writes_them(
            client_id in text(),
            room in uuid_any(),
            seq in prop::option::of(any::<u64>()),
            id in prop::option::of(uuid_any()),
        ) {
            compare(&ServerFrame::Ack {
                client_id: &client_id,
                room: RoomId(room),
                seq: seq.map(Seq),
                id: id.map(EventId),
            });
        }
    }

    /// Every character below U+0020, the two that are escaped above it, and
    /// some that are not (DEL, `/`, non-ASCII) in one string.
    #[test]
    fn every_escape_is_serde_jsons() {
        let mut all: String = (0u8..0x20).map(char::from).collect();
        all.push_str("\"\\/\u{7f}é\u{2028}😀");
        compare(&ServerFrame::Ack {
            client_id: &all,
            room: RoomId(Uuid::nil()),
            seq: None,
            id: None,
        });
    }

    #[test]
    fn other_frames_are_left_to_serde_json() {
        let mut out = Vec::new();
        assert!(!write(&ServerFrame::Pong, &mut out));
        assert!(out.is_empty());
    }
}
