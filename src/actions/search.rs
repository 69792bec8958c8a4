//! Searching messages: the caller's rooms now (a room they left or were
//! never in is never searched), the query's filters, then the index, then
//! each hit read from the log as it is now.

use crate::actions::member_room;
use crate::error::ApiError;
use crate::ids::{RoomId, UserId};
use crate::search::highlight;
use crate::search::{Cursor, Order, Query, Scope, SearchError};
use crate::state::AppState;
use crate::storage::records::EventKind;
use crate::views::Current;
use std::sync::Arc;

/// Most results in one page, and how many when the client does not say.
pub const PAGE_MAX: usize = 50;
pub const PAGE_DEFAULT: usize = 20;

/// A search as the client asked it.
pub struct Ask<'a> {
    pub q: &'a str,
    /// Only this room (a room id), which the caller must be in.
    pub room: Option<&'a str>,
    pub order: Order,
    /// `next` from the previous page.
    pub cursor: Option<&'a str>,
    pub limit: usize,
}

/// A message that matched, as it reads now, with where it matched.
pub struct Hit {
    pub room: RoomId,
    pub current: Current,
    /// Character ranges in the current body (see [`highlight`]).
    pub highlights: Vec<[usize; 2]>,
}

pub struct Results {
    pub hits: Vec<Hit>,
    /// Give it back as `cursor` for the next page; `None` on the last.
    pub next: Option<String>,
}

/// How long a search waits for its turn before `503 busy`.
const SEARCH_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// One page of the caller's messages matching `ask.q`. Rate-limited per
/// caller; a message the index has not caught up with yet (an edit within
/// the last second, a deletion) is shown as it is now or left out.
pub async fn messages(state: &AppState, me: UserId, ask: Ask<'_>) -> Result<Results, ApiError> {
    if !state.search.is_on() {
        return Err(ApiError::SearchDisabled);
    }
    state.limits.message_search.check(&me)?;
    let query = Query::parse(ask.q).map_err(|e| ApiError::InvalidQuery(e.to_string()))?;
    let after = ask
        .cursor
        .map(|c| Cursor::decode(c, ask.order))
        .transpose()
        .map_err(|_| ApiError::InvalidCursor)?;
    let scope = scope(state, me, ask.room, &query)?;
    let search = state.search.clone();
    let (order, limit) = (ask.order, ask.limit);
    let compiled = query.clone();
    // One search per CPU at a time; the others wait here, briefly.
    let turn = tokio::time::timeout(SEARCH_WAIT, state.search.turn())
        .await
        .ok()
        .flatten()
        .ok_or(ApiError::Busy)?;
    let found = tokio::task::spawn_blocking(move || {
        let found = search.find(&compiled, &scope, order, after, limit);
        drop(turn);
        found
    })
    .await
    .map_err(|_| ApiError::Internal)?
    .map_err(|e| match e {
        SearchError::Off => ApiError::SearchDisabled,
        e => {
            tracing::error!(error = %e, "Search failed.");
            ApiError::Internal
        }
    })?;
    let log = state.store.log()?;
    let mut hits = Vec::with_capacity(found.hits.len());
    for (room, seq) in found.hits {
        let Some(event) = log.event(room, seq)? else {
            continue;
        };
        let EventKind::Message { body, .. } = &event.kind else {
            continue;
        };
        let message_state = log.state(room, seq)?;
        if message_state.deleted {
            continue;
        }
        let body = message_state.body.as_deref().unwrap_or(body);
        let highlights = highlight::ranges(body, &query);
        hits.push(Hit {
            room,
            current: Current {
                seq,
                event: Arc::new(event),
                state: message_state,
                json: None,
            },
            highlights,
        });
    }
    Ok(Results {
        hits,
        next: found.next.map(|c| c.encode()),
    })
}

/// The rooms and author to search: the caller's rooms (or the one asked
/// for, which they must be in), narrowed by `in:` and `from:`. An `in:` or
/// `from:` that names nothing leaves nothing to search.
fn scope(
    state: &AppState,
    me: UserId,
    room: Option<&str>,
    query: &Query,
) -> Result<Scope, ApiError> {
    let mut rooms = match room {
        Some(id) => vec![member_room(state, id, me)?.record.id],
        None => state.rooms.of_user(me),
    };
    if let Some(name) = &query.room_name {
        let name = name.to_lowercase();
        rooms.retain(|id| {
            state
                .rooms
                .get(*id)
                .is_some_and(|r| r.record.name.to_lowercase() == name)
        });
    }
    let author = match &query.from {
        None => None,
        Some(name) => match state.store.user_by_login(name)? {
            Some(u) if u.username.to_lowercase() == name.to_lowercase() => Some(u.id),
            _ => {
                rooms.clear();
                None
            }
        },
    };
    Ok(Scope { rooms, author })
}
