//! Announcing presence: each tick, the changes gathered by
//! [`crate::presence::Presence`] go to the sockets of the people who share
//! a room (of at most `presence_max_members`) with whoever changed, one
//! `presence` frame per socket, encoded once per person who hears it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::hub::Outbox;
use crate::ids::UserId;
use crate::protocol::{MemberView, PresenceChange, ServerFrame};
use crate::state::AppState;
use crate::wire::Encoded;

pub fn announce(state: &AppState) {
    let _quiet = state.presence.hold();
    let changes = state.presence.take_changes();
    if changes.is_empty() {
        return;
    }
    let max = state.config.websocket.presence_max_members;
    // Per person who hears of it, the changes they hear of (each once).
    let mut heard: HashMap<UserId, BTreeMap<UserId, bool>> = HashMap::new();
    for (user, online) in &changes {
        for room in state.rooms.of_user(*user) {
            let Some(room) = state.rooms.get(room) else {
                continue;
            };
            if room.member_count() > max {
                continue;
            }
            for member in room.members() {
                if member != *user {
                    heard.entry(member).or_default().insert(*user, *online);
                }
            }
        }
    }
    let names: HashMap<UserId, String> = changes
        .iter()
        .filter_map(|(u, _)| Some((*u, state.directory.get(*u)?.username.clone())))
        .collect();
    // One frame per person, encoded once for all their greeted sockets:
    // a hundred people on ten thousand sockets coming online at once cost
    // a hundred encodings, not ten thousand.
    for (member, heard) in heard {
        let sockets: Vec<Arc<Outbox>> = state
            .hub
            .connections_of(member)
            .into_iter()
            .filter(|c| c.is_greeted())
            .collect();
        if sockets.is_empty() {
            continue;
        }
        let changes = heard
            .iter()
            .filter_map(|(user, online)| {
                Some(PresenceChange {
                    user: MemberView {
                        id: *user,
                        username: names.get(user)?,
                    },
                    online: *online,
                })
            })
            .collect();
        let frame = ServerFrame::Presence { changes };
        let encoded = Encoded::new(&frame);
        for socket in sockets {
            socket.push(encoded.for_format(socket.format));
        }
    }
}

/// Who is online among the people `user` shares a room with (rooms over
/// `presence_max_members` left out), for the `ready` frame.
pub fn online_around(state: &AppState, user: UserId) -> Vec<UserId> {
    let max = state.config.websocket.presence_max_members;
    let mut online: Vec<UserId> = Vec::new();
    for room in state.rooms.of_user(user) {
        let Some(room) = state.rooms.get(room) else {
            continue;
        };
        if room.member_count() > max {
            continue;
        }
        online.extend(
            room.members()
                .into_iter()
                .filter(|m| state.presence.is_online(*m)),
        );
    }
    online.sort();
    online.dedup();
    online
}
