//! Slack's workspace export turned into hearth's export format, which is
//! then imported like any other (so the same checks and the same
//! idempotence apply).
//!
//! Slack's layout: `users.json`, `channels.json` (public channels) and,
//! when the export holds them, `groups.json` (private channels),
//! `mpims.json` (group DMs) and `dms.json`; then one folder per
//! conversation (a channel's name, a DM's id) of daily `YYYY-MM-DD.json`
//! files, each an array of messages in time order.
//!
//! Every id made here is derived from Slack's own (a user's id, a
//! conversation's id and a message's `ts`), so converting the same export
//! again gives the same file and importing it again changes nothing.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{BufWriter, Read};
use std::path::Path;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{ArchiveError, FileRef, Header, Record, Writer};
use crate::ids::{EventId, Millis, RoomId, Seq, UserId};
use crate::storage::records::Visibility;

/// Most different emoji on one message (the committer's limit: a 21st
/// would be refused).
const MAX_EMOJI: usize = 20;

/// Largest JSON file read from the zip (a day of a busy channel).
const MAX_ENTRY: u64 = 256 << 20;

#[derive(Deserialize, Default)]
struct SlackUser {
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    real_name: String,
    #[serde(default)]
    deleted: bool,
    #[serde(default)]
    is_bot: bool,
    #[serde(default)]
    is_admin: bool,
    #[serde(default)]
    profile: Profile,
}

#[derive(Deserialize, Default)]
struct Profile {
    #[serde(default)]
    email: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    real_name: String,
    #[serde(default)]
    title: String,
}

#[derive(Deserialize)]
struct Channel {
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    created: u64,
    #[serde(default)]
    creator: String,
    #[serde(default)]
    is_archived: bool,
    #[serde(default)]
    members: Vec<String>,
    #[serde(default)]
    topic: Text,
    #[serde(default)]
    purpose: Text,
    /// A DM's other person (dms.json).
    #[serde(default)]
    user: String,
}

#[derive(Deserialize, Default)]
struct Text {
    #[serde(default)]
    value: String,
}

#[derive(Deserialize)]
struct SlackMessage {
    #[serde(default)]
    subtype: Option<String>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    bot_id: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    text: String,
    ts: String,
    #[serde(default)]
    thread_ts: Option<String>,
    #[serde(default)]
    edited: Option<Edited>,
    #[serde(default)]
    reactions: Vec<SlackReaction>,
    #[serde(default)]
    files: Vec<SlackFile>,
}

#[derive(Deserialize)]
struct Edited {
    #[serde(default)]
    ts: String,
}

#[derive(Deserialize)]
struct SlackReaction {
    name: String,
    #[serde(default)]
    users: Vec<String>,
}

#[derive(Deserialize)]
struct SlackFile {
    #[serde(default)]
    name: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    mimetype: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    url_private: Option<String>,
}

/// Message subtypes that are not conversation: joins, leaves, topic and
/// name changes (the room carries the result), pins.
const SKIPPED: &[&str] = &[
    "channel_join",
    "channel_leave",
    "group_join",
    "group_leave",
    "channel_topic",
    "channel_purpose",
    "channel_name",
    "group_topic",
    "group_purpose",
    "group_name",
    "channel_archive",
    "channel_unarchive",
    "group_archive",
    "group_unarchive",
    "pinned_item",
    "unpinned_item",
];

/// Converts the Slack export `zip` into an export file at `out`.
pub fn convert(zip: &Path, out: &Path) -> Result<(), ArchiveError> {
    let file = File::open(zip)?;
    let mut archive = zip::ZipArchive::new(file)
        .map_err(|e| ArchiveError::Slack(format!("not a zip file: {e}")))?;
    let names: Vec<String> = archive.file_names().map(str::to_string).collect();
    // Slack's zips sometimes put everything under one top folder.
    let root = if names.iter().any(|n| n == "users.json") {
        String::new()
    } else {
        names
            .iter()
            .find_map(|n| n.strip_suffix("users.json").map(str::to_string))
            .ok_or_else(|| {
                ArchiveError::Slack("users.json is missing: not a Slack export".into())
            })?
    };
    let users: Vec<SlackUser> = read_json(&mut archive, &format!("{root}users.json"))?
        .ok_or_else(|| ArchiveError::Slack("users.json is missing: not a Slack export".into()))?;
    let mut conversations: Vec<(Channel, Visibility, String)> = Vec::new();
    for (list, visibility) in [
        ("channels.json", Visibility::Public),
        ("groups.json", Visibility::Private),
        ("mpims.json", Visibility::Direct),
        ("dms.json", Visibility::Direct),
    ] {
        let found: Option<Vec<Channel>> = read_json(&mut archive, &format!("{root}{list}"))?;
        for c in found.unwrap_or_default() {
            // A DM's folder is its id; the others', their name.
            let folder = if list == "dms.json" || c.name.is_empty() {
                c.id.clone()
            } else {
                c.name.clone()
            };
            conversations.push((c, visibility, folder));
        }
    }

    let mut people = People::new(&users);
    let mut days: HashMap<String, Vec<String>> = HashMap::new();
    for n in &names {
        let Some(rest) = n.strip_prefix(&root) else {
            continue;
        };
        if let Some((folder, day)) = rest.split_once('/') {
            if day.ends_with(".json") && !day.contains('/') {
                days.entry(folder.to_string()).or_default().push(n.clone());
            }
        }
    }
    for list in days.values_mut() {
        list.sort();
    }

    // Bots that post without a user account (`bot_message` with a
    // `bot_id`) need one: a first pass finds them.
    for (_, _, folder) in &conversations {
        for day in days.get(folder).into_iter().flatten() {
            let messages: Vec<SlackMessage> = read_json(&mut archive, day)?.unwrap_or_default();
            for m in messages {
                if m.user.is_none() {
                    if let Some(bot) = &m.bot_id {
                        people.bot(bot, m.username.as_deref().unwrap_or(bot));
                    }
                }
            }
        }
    }

    let header = Header {
        format: super::FORMAT.into(),
        version: super::VERSION,
        server_version: format!("slack-import {}", env!("CARGO_PKG_VERSION")),
        exported_at: Millis::now().to_rfc3339(),
        rooms: None,
    };
    let mut w = Writer::new(BufWriter::new(File::create(out)?), header)?;
    for u in people.records.values() {
        w.write(&Record::User(u.clone()))?;
    }
    let fallback_owner = people.records.keys().next().copied();
    let mut rooms = Vec::new();
    for (c, visibility, folder) in &conversations {
        let mut members: Vec<UserId> = c
            .members
            .iter()
            .chain(std::iter::once(&c.user).filter(|u| !u.is_empty()))
            .filter_map(|m| people.id(m))
            .collect();
        members.sort();
        members.dedup();
        let created_by = people
            .id(&c.creator)
            .or_else(|| members.first().copied())
            .or(fallback_owner);
        let Some(created_by) = created_by else {
            continue;
        };
        let id = RoomId(derived(&["room", &c.id]));
        let topic = if c.topic.value.is_empty() {
            c.purpose.value.clone()
        } else {
            c.topic.value.clone()
        };
        let room = super::Room {
            id,
            name: if *visibility == Visibility::Direct {
                String::new()
            } else {
                c.name.clone()
            },
            topic: decode_text(&topic, &people).0,
            created_by,
            created_at: Millis(c.created.saturating_mul(1000)),
            visibility: *visibility,
            direct: if *visibility == Visibility::Direct {
                members.clone()
            } else {
                Vec::new()
            },
            moderators: Vec::new(),
            banned: Vec::new(),
            members,
            archived: c.is_archived,
        };
        w.write(&Record::Room(room))?;
        rooms.push((id, c.id.clone(), folder.clone()));
    }
    for (room, slack_id, folder) in rooms {
        let mut seqs: HashMap<String, Seq> = HashMap::new();
        let mut seq = Seq::ZERO;
        for day in days.get(&folder).into_iter().flatten() {
            let mut messages: Vec<SlackMessage> = read_json(&mut archive, day)?.unwrap_or_default();
            messages.sort_by_key(|m| ts_millis(&m.ts));
            for m in messages {
                if m.subtype.as_deref().is_some_and(|s| SKIPPED.contains(&s)) {
                    continue;
                }
                let author = match (&m.user, &m.bot_id) {
                    (Some(u), _) => people.id(u),
                    (None, Some(b)) => people.id(&format!("bot:{b}")),
                    (None, None) => None,
                };
                let Some(author) = author else { continue };
                let (body, mentions, mentions_room) = decode_text(&m.text, &people);
                let at = ts_millis(&m.ts);
                seq = seq.next();
                let message_seq = seq;
                seqs.insert(m.ts.clone(), seq);
                let reply_to = m
                    .thread_ts
                    .as_ref()
                    .filter(|t| **t != m.ts)
                    .and_then(|t| seqs.get(t).copied());
                let files = m
                    .files
                    .iter()
                    .map(|f| FileRef {
                        sha256: None,
                        name: if f.name.is_empty() {
                            f.title.clone()
                        } else {
                            f.name.clone()
                        },
                        size: f.size,
                        content_type: f.mimetype.clone(),
                        source_url: f.url_private.clone(),
                    })
                    .collect();
                w.write(&Record::Message(super::Message {
                    room,
                    seq,
                    id: EventId(derived(&["message", &slack_id, &m.ts])),
                    at,
                    author,
                    client_id: Some(format!("slack-{}", m.ts)),
                    body: body.clone(),
                    sent_body: None,
                    reply_to,
                    mentions,
                    mentions_room,
                    edited_at: None,
                    deleted: false,
                    reactions: Vec::new(),
                    files,
                }))?;
                // Slack keeps only the latest text and when it changed:
                // an edit to the same text marks the message edited.
                if let Some(edited) = &m.edited {
                    seq = seq.next();
                    let when = ts_millis(&edited.ts).max(at);
                    w.write(&Record::Edit(super::Edit {
                        room,
                        seq,
                        id: EventId(derived(&["edit", &slack_id, &m.ts])),
                        at: when,
                        target: message_seq,
                        by: author,
                        body,
                        client_id: Some(format!("slack-edit-{}", m.ts)),
                    }))?;
                }
                let mut seen = HashSet::new();
                for r in &m.reactions {
                    let Some(emoji) = emoji(&r.name) else {
                        continue;
                    };
                    // A message carries at most 20 different emoji.
                    if !seen.contains(&emoji) {
                        if seen.len() == MAX_EMOJI {
                            continue;
                        }
                        seen.insert(emoji.clone());
                    }
                    for u in &r.users {
                        let Some(by) = people.id(u) else { continue };
                        seq = seq.next();
                        w.write(&Record::Reaction(super::Reaction {
                            room,
                            seq,
                            id: EventId(derived(&["reaction", &slack_id, &m.ts, &r.name, u])),
                            at,
                            target: message_seq,
                            by,
                            emoji: emoji.clone(),
                            on: true,
                            client_id: None,
                        }))?;
                    }
                }
            }
        }
    }
    let (out, _) = w.finish()?;
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(())
}

/// Slack's people as hearth accounts, by Slack id.
struct People {
    ids: HashMap<String, UserId>,
    names: HashMap<UserId, String>,
    taken: HashSet<String>,
    records: BTreeMap<UserId, super::User>,
}

impl People {
    fn new(users: &[SlackUser]) -> People {
        let mut p = People {
            ids: HashMap::new(),
            names: HashMap::new(),
            taken: HashSet::new(),
            records: BTreeMap::new(),
        };
        for u in users {
            let display = [&u.profile.display_name, &u.profile.real_name, &u.real_name]
                .into_iter()
                .find(|n| !n.trim().is_empty())
                .map(|n| n.chars().take(64).collect::<String>());
            p.add(
                &u.id,
                &u.name,
                super::User {
                    id: UserId(derived(&["user", &u.id])),
                    username: String::new(),
                    email: u.profile.email.clone(),
                    created_at: Millis(0),
                    admin: u.is_admin,
                    disabled: false,
                    deleted: u.deleted,
                    bot: u.is_bot,
                    display_name: display,
                    about: u.profile.title.chars().take(256).collect(),
                },
            );
        }
        p
    }

    /// An account for a bot that posts without one.
    fn bot(&mut self, bot_id: &str, name: &str) {
        let key = format!("bot:{bot_id}");
        if self.ids.contains_key(&key) {
            return;
        }
        self.add(
            &key,
            name,
            super::User {
                id: UserId(derived(&["bot", bot_id])),
                username: String::new(),
                email: String::new(),
                created_at: Millis(0),
                admin: false,
                disabled: false,
                deleted: false,
                bot: true,
                display_name: Some(name.chars().take(64).collect()),
                about: String::new(),
            },
        );
    }

    fn add(&mut self, slack_id: &str, name: &str, mut user: super::User) {
        let base = username(name, slack_id);
        let mut candidate = base.clone();
        let mut n = 2;
        while !self.taken.insert(candidate.to_lowercase()) {
            candidate = format!("{}-{n}", &base[..base.len().min(28)]);
            n += 1;
        }
        user.username = candidate.clone();
        self.ids.insert(slack_id.to_string(), user.id);
        self.names.insert(user.id, candidate);
        self.records.insert(user.id, user);
    }

    fn id(&self, slack_id: &str) -> Option<UserId> {
        self.ids.get(slack_id).copied()
    }

    fn name(&self, slack_id: &str) -> Option<&str> {
        self.id(slack_id)
            .and_then(|id| self.names.get(&id))
            .map(String::as_str)
    }
}

/// A hearth username (3 to 32 of `a-z A-Z 0-9 _ . -`) from Slack's handle.
fn username(name: &str, slack_id: &str) -> String {
    let mut u: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(32)
        .collect();
    if u.is_empty() {
        u = slack_id
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(26)
            .collect();
    }
    if u.len() < 3 {
        u.push_str("-slack");
    }
    u
}

/// Slack's markup as plain text: `<@U1>` → `@name`, `<#C1|x>` → `#x`,
/// `<url|label>` → `label (url)`, `<!channel>` → `@room`, and the three
/// escaped characters. Also the people mentioned and whether the whole
/// room was.
fn decode_text(text: &str, people: &People) -> (String, Vec<UserId>, bool) {
    let mut out = String::with_capacity(text.len());
    let mut mentions = Vec::new();
    let mut room = false;
    let mut rest = text;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('>') else {
            out.push_str(&rest[open..]);
            rest = "";
            break;
        };
        let inner = &after[..close];
        rest = &after[close + 1..];
        let (target, label) = match inner.split_once('|') {
            Some((t, l)) => (t, Some(l)),
            None => (inner, None),
        };
        if let Some(user) = target.strip_prefix('@') {
            match people.name(user) {
                Some(name) => {
                    out.push('@');
                    out.push_str(name);
                    if let Some(id) = people.id(user) {
                        if !mentions.contains(&id) {
                            mentions.push(id);
                        }
                    }
                }
                None => {
                    out.push('@');
                    out.push_str(label.unwrap_or(user));
                }
            }
        } else if let Some(channel) = target.strip_prefix('#') {
            out.push('#');
            out.push_str(label.unwrap_or(channel));
        } else if let Some(special) = target.strip_prefix('!') {
            match special {
                "channel" | "here" | "everyone" => {
                    out.push_str("@room");
                    room = true;
                }
                _ => out.push_str(label.unwrap_or(special)),
            }
        } else {
            let url = target.strip_prefix("mailto:").unwrap_or(target);
            match label {
                Some(l) if l != url => {
                    out.push_str(l);
                    out.push_str(" (");
                    out.push_str(url);
                    out.push(')');
                }
                _ => out.push_str(url),
            }
        }
    }
    out.push_str(rest);
    let out = out
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    (out, mentions, room)
}

/// Slack's reaction name as an emoji (`+1::skin-tone-2` too); `None` for a
/// custom emoji of the workspace, which has no character.
fn emoji(name: &str) -> Option<String> {
    let (base, tone) = match name.split_once("::skin-tone-") {
        Some((b, t)) => (b, t.parse::<usize>().ok()),
        None => (name, None),
    };
    let e = emojis::get_by_shortcode(base)?;
    let toned = tone
        .filter(|t| (2..=6).contains(t))
        .and_then(|t| e.skin_tones().and_then(|mut tones| tones.nth(t - 1)));
    Some(toned.unwrap_or(e).as_str().to_string())
}

/// Slack's `ts` ("1600000002.000200": seconds and microseconds) in
/// milliseconds.
fn ts_millis(ts: &str) -> Millis {
    let (secs, frac) = ts.split_once('.').unwrap_or((ts, "0"));
    let secs: u64 = secs.parse().unwrap_or(0);
    let frac: String = frac.chars().chain(std::iter::repeat('0')).take(3).collect();
    // A number too big for a time is clamped, not wrapped (nor a panic).
    Millis(
        secs.saturating_mul(1000)
            .saturating_add(frac.parse::<u64>().unwrap_or(0)),
    )
}

/// A stable id from Slack's names for a thing.
fn derived(parts: &[&str]) -> uuid::Uuid {
    let mut h = Sha256::new();
    h.update(b"hearth slack import");
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p.as_bytes());
    }
    let digest = h.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

fn read_json<T: serde::de::DeserializeOwned>(
    archive: &mut zip::ZipArchive<File>,
    name: &str,
) -> Result<Option<T>, ArchiveError> {
    let entry = match archive.by_name(name) {
        Ok(e) => e,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(e) => return Err(ArchiveError::Slack(format!("{name}: {e}"))),
    };
    let mut bytes = Vec::new();
    entry.take(MAX_ENTRY).read_to_end(&mut bytes)?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| ArchiveError::Slack(format!("{name}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn people() -> People {
        People::new(&[SlackUser {
            id: "U1".into(),
            name: "ann".into(),
            ..SlackUser::default()
        }])
    }

    #[test]
    fn markup_becomes_text() {
        let p = people();
        let (text, mentions, room) = decode_text(
            "hi <@U1>, <@U9|zed> see <https://x.org/a?b=1&amp;c=2|docs> and <https://y.org> in <#C1|dev> <!here> &lt;3 &amp;&amp;",
            &p,
        );
        assert_eq!(
            text,
            "hi @ann, @zed see docs (https://x.org/a?b=1&c=2) and https://y.org in #dev @room <3 &&"
        );
        assert_eq!(mentions, vec![p.id("U1").unwrap()]);
        assert!(room);
        assert_eq!(decode_text("a < b", &p).0, "a < b");
        assert_eq!(decode_text("<mailto:a@b.c|a@b.c>", &p).0, "a@b.c");
    }

    #[test]
    fn reactions_times_and_names() {
        assert_eq!(emoji("+1").as_deref(), Some("👍"));
        assert_eq!(emoji("tada").as_deref(), Some("🎉"));
        assert_eq!(emoji("+1::skin-tone-3").as_deref(), Some("👍🏼"));
        assert_eq!(emoji("our-custom-parrot"), None);
        assert_eq!(ts_millis("1600000002.000200"), Millis(1_600_000_002_000));
        assert_eq!(ts_millis("1600000002.5"), Millis(1_600_000_002_500));
        // Seconds past what milliseconds hold are clamped, not wrapped;
        // seconds that are not a u64 at all read as 0, like any bad `ts`.
        assert_eq!(ts_millis("18446744073709551615.5"), Millis(u64::MAX));
        assert_eq!(ts_millis("99999999999999999999.5"), Millis(500));
        assert_eq!(username("ben b!", "U2"), "ben_b_");
        assert_eq!(username("CI", "B1"), "CI-slack");
        assert_eq!(derived(&["a", "bc"]), derived(&["a", "bc"]));
        assert_ne!(derived(&["a", "bc"]), derived(&["ab", "c"]));
        assert_eq!(MAX_EMOJI, crate::commit::MAX_REACTIONS);
    }
}
