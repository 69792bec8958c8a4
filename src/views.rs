//! Stored events as clients see them: authors resolved through the
//! directory, and what later events made of a message (its state, the
//! message a reply quotes) read from the log. One place, so a message looks
//! the same live, replayed, in history and in the events feed.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use crate::directory::{author_view, Directory, UserSummary};
use crate::ids::{RoomId, Seq, UserId};
use crate::protocol::{
    write_json, AuthorView, EventView, MessageJson, MessageView, ReactionView, ReplyAuthor,
    ReplyView, EXCERPT_CHARS,
};
use crate::storage::log::RoomLog;
use crate::storage::records::{EventKind, EventRecord, MessageState};
use crate::storage::Result;

/// A stored message with what later events made of it.
pub struct Current {
    pub seq: Seq,
    /// Shared with the room's recent window when read from it.
    pub event: Arc<EventRecord>,
    pub state: MessageState,
    /// The message's JSON but for its author, reactions and quote, kept by
    /// the recent window (`None` when read from storage).
    pub json: Option<Arc<MessageJson>>,
}

/// The names of the people a set of events is by, looked up once.
pub struct Authors(HashMap<UserId, Author>);

struct Author {
    summary: Option<Arc<UserSummary>>,
    /// Its [`AuthorView`] as JSON, encoded the first time a page needs it.
    json: OnceLock<Vec<u8>>,
}

impl Authors {
    pub fn of(directory: &Directory, ids: impl IntoIterator<Item = UserId>) -> Authors {
        let mut map = HashMap::new();
        let mut last = None;
        for id in ids {
            // A page is often a run of messages by one person: one lookup
            // per run.
            if last.replace(id) == Some(id) {
                continue;
            }
            map.entry(id).or_insert_with(|| Author {
                summary: directory.get(id),
                json: OnceLock::new(),
            });
        }
        Authors(map)
    }

    pub fn view(&self, id: UserId) -> AuthorView<'_> {
        author_view(id, self.0.get(&id).and_then(|a| a.summary.as_deref()))
    }

    /// [`Authors::view`] as JSON.
    fn json(&self, id: UserId) -> Cow<'_, [u8]> {
        let encode = || {
            let mut out = Vec::new();
            write_json(&mut out, &self.view(id));
            out
        };
        match self.0.get(&id) {
            Some(a) => Cow::Borrowed(a.json.get_or_init(encode)),
            None => Cow::Owned(encode()),
        }
    }
}

/// Messages as they are now, for `viewer`: latest body, edits, deletion,
/// reactions (with the viewer's own), and the message each replies to.
pub fn current_messages<'a>(
    log: &RoomLog,
    directory: &Directory,
    authors: &'a Authors,
    room: RoomId,
    page: &'a [Current],
    viewer: UserId,
) -> Vec<MessageView<'a>> {
    page.iter()
        .filter_map(|c| {
            let view = MessageView::of(room, c.seq, &c.event, authors.view(c.event.kind.actor()))?;
            let reply = quote(log, directory, room, c);
            Some(view.with_state(&c.state, viewer).with_reply(reply))
        })
        .collect()
}

/// A page of messages as the API's `{"messages":[…]}`: what
/// [`current_messages`] gives, serialized, with each message the window
/// kept JSON for copied from it rather than encoded again.
pub fn messages_json(
    log: &RoomLog,
    directory: &Directory,
    authors: &Authors,
    room: RoomId,
    page: &[Current],
    viewer: UserId,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + page.len() * 512);
    out.extend_from_slice(b"{\"messages\":[");
    let mut first = true;
    // The author of the message before, as JSON: runs by one person look
    // their author up once.
    let mut last: Option<(UserId, Cow<'_, [u8]>)> = None;
    for c in page {
        let Some(json) = &c.json else {
            for view in current_messages(
                log,
                directory,
                authors,
                room,
                std::slice::from_ref(c),
                viewer,
            ) {
                if !std::mem::take(&mut first) {
                    out.push(b',');
                }
                write_json(&mut out, &view);
            }
            continue;
        };
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
        let reply = quote(log, directory, room, c);
        let id = c.event.kind.actor();
        let author = match last.take() {
            Some((was, json)) if was == id => json,
            _ => authors.json(id),
        };
        json.write(
            &mut out,
            &author,
            &ReactionView::all(&c.state, viewer),
            reply.as_ref(),
        );
        last = Some((id, author));
    }
    out.extend_from_slice(b"]}");
    out
}

/// What message `c` quotes now, if it is a reply still standing.
fn quote(log: &RoomLog, directory: &Directory, room: RoomId, c: &Current) -> Option<ReplyView> {
    match &c.event.kind {
        EventKind::Message {
            reply_to: Some(to), ..
        } if !c.state.deleted => reply(log, directory, room, *to).ok().flatten(),
        _ => None,
    }
}

/// Events as they happened (the events feed, and replay on resume): a
/// message as it was sent, with its reply quote, and anything else as is.
pub fn logged_event<'a>(
    log: &RoomLog,
    directory: &Directory,
    authors: &'a Authors,
    room: RoomId,
    seq: Seq,
    event: &'a EventRecord,
) -> Option<EventView<'a>> {
    let by = authors.view(event.kind.actor());
    match MessageView::of(room, seq, event, by) {
        Some(message) => {
            let reply = match &event.kind {
                EventKind::Message {
                    reply_to: Some(to), ..
                } => reply(log, directory, room, *to).ok().flatten(),
                _ => None,
            };
            Some(EventView::Message(message.with_reply(reply)))
        }
        None => EventView::of(room, seq, event, authors.view(event.kind.actor())),
    }
}

/// What a reply to message `seq` quotes of it now: its author and the start
/// of its current body (empty once deleted; the files' names after a 📎 for
/// a message that is only files). `None` if there is no such message.
pub fn reply(
    log: &RoomLog,
    directory: &Directory,
    room: RoomId,
    seq: Seq,
) -> Result<Option<ReplyView>> {
    let Some(event) = log.event(room, seq)? else {
        return Ok(None);
    };
    let EventKind::Message {
        author,
        body,
        files,
        ..
    } = &event.kind
    else {
        return Ok(None);
    };
    let state = log.state(room, seq)?;
    let text = state.body.as_deref().unwrap_or(body);
    let named;
    let current = if state.deleted {
        ""
    } else if text.trim().is_empty() && !files.is_empty() {
        // Only files: the quote names them.
        let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
        named = format!("📎 {}", names.join(", "));
        &named
    } else {
        text
    };
    let summary = directory.get(*author);
    let who = author_view(*author, summary.as_deref());
    Ok(Some(ReplyView {
        seq,
        author: ReplyAuthor {
            id: who.id,
            username: who.username.to_string(),
            deleted: who.deleted,
        },
        excerpt: current.chars().take(EXCERPT_CHARS).collect(),
    }))
}
