//! `hearth verify`: checks every invariant the store relies on and reports
//! each broken one precisely (tree, key, what was expected).
//!
//! It may run while the server writes. Each room's head is read before its
//! events, and nothing past that head is judged, so appends racing the scan
//! are never reported; cross-references are point lookups made at the time.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::error::{Result, StorageError};
use super::log;
use super::records::{
    self, EventKind, EventRecord, PushSubRecord, RoomRecord, SessionRecord, UserRecord,
};
use super::store::{hex, Store, SCHEMA_VERSION};
use crate::ids::{AvatarVersion, RoomId, Seq, UserId};

/// What `verify` found.
#[derive(Debug, Default, Serialize, serde::Deserialize)]
pub struct Report {
    pub users: u64,
    pub rooms: u64,
    pub events: u64,
    pub memberships: u64,
    pub sessions: u64,
    pub invites: u64,
    #[serde(default)]
    pub avatars: u64,
    /// Uploaded files, each re-hashed.
    #[serde(default)]
    pub files: u64,
    /// Every broken invariant, one sentence each naming the tree and key.
    pub problems: Vec<String>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Stop listing after this many problems: a badly damaged store would
/// otherwise print millions of lines.
const MAX_PROBLEMS: usize = 1000;

impl Store {
    /// Checks the whole store; never fails on bad data, only on I/O.
    pub fn verify(&self) -> Result<Report> {
        let mut v = Verifier {
            store: self,
            report: Report::default(),
        };
        v.meta()?;
        v.users()?;
        v.sessions()?;
        v.rooms()?;
        v.memberships()?;
        v.room_log()?;
        v.message_states()?;
        v.read_cursors()?;
        v.invites()?;
        v.resets()?;
        v.avatars()?;
        v.files()?;
        v.push_subscriptions()?;
        if v.report.problems.len() >= MAX_PROBLEMS {
            v.report
                .problems
                .push(format!("... stopped after {MAX_PROBLEMS} problems"));
        }
        Ok(v.report)
    }
}

struct Verifier<'a> {
    store: &'a Store,
    report: Report,
}

impl Verifier<'_> {
    fn problem(&mut self, text: String) {
        if self.report.problems.len() < MAX_PROBLEMS {
            self.report.problems.push(text);
        }
    }

    fn meta(&mut self) -> Result<()> {
        match self.store.inner()?.meta.get(b"schema_version")? {
            Some(v) if v.as_ref() == SCHEMA_VERSION.to_be_bytes() => {}
            Some(v) => self.problem(format!(
                "meta/schema_version: is {}, expected {SCHEMA_VERSION} as 4 bytes",
                hex(&v)
            )),
            None => self.problem("meta/schema_version: missing".into()),
        }
        match self.store.registration_setting() {
            Ok(None) => {}
            Ok(Some(m)) if crate::config::Registration::parse(&m).is_some() => {}
            Ok(Some(m)) => self.problem(format!(
                "meta/registration: is {m:?}, expected \"open\", \"invite\" or \"closed\""
            )),
            Err(e) => self.problem(e.to_string()),
        }
        Ok(())
    }

    fn user(&self, id: UserId) -> Result<Option<UserRecord>> {
        match self.store.user(id) {
            Err(StorageError::Corrupt { .. }) => Ok(None),
            other => other,
        }
    }

    fn users(&mut self) -> Result<()> {
        let i = &self.store.inner()?;
        for kv in i.userid_user.iter() {
            let (k, v) = kv?;
            self.report.users += 1;
            let user: UserRecord = match records::decode("userid_user", &hex(&k), &v) {
                Ok(u) => u,
                Err(e) => {
                    self.problem(e.to_string());
                    continue;
                }
            };
            if k.as_ref() != user.id.to_bytes() {
                self.problem(format!(
                    "userid_user/{}: record says id {}",
                    hex(&k),
                    user.id
                ));
            }
            if user.deleted {
                continue;
            }
            for (tree, index, name) in [
                ("username_userid", &i.username_userid, &user.username),
                ("email_userid", &i.email_userid, &user.email),
            ] {
                // A bot has no email to index.
                if tree == "email_userid" && user.email.is_empty() && user.bot {
                    continue;
                }
                let key = name.to_lowercase();
                match index.get(key.as_bytes())? {
                    Some(id) if id.as_ref() == user.id.to_bytes() => {}
                    Some(id) => self.problem(format!(
                        "{tree}/{key}: points at {}, but user {} has that name",
                        hex(&id),
                        user.id
                    )),
                    None => self.problem(format!(
                        "{tree}/{key}: missing for user {} (the name would not log in)",
                        user.id
                    )),
                }
            }
        }
        for (tree, index, email) in [
            ("username_userid", &i.username_userid, false),
            ("email_userid", &i.email_userid, true),
        ] {
            for kv in index.iter() {
                let (k, v) = kv?;
                let key = String::from_utf8_lossy(&k).into_owned();
                let target = UserId::from_slice(&v);
                let user = match target {
                    Some(id) => self.user(id)?,
                    None => None,
                };
                match user {
                    None => self.problem(format!(
                        "{tree}/{key}: points at {}, which is no user",
                        hex(&v)
                    )),
                    Some(u) if u.deleted => {
                        self.problem(format!("{tree}/{key}: points at deleted user {}", u.id))
                    }
                    Some(u) => {
                        let name = if email { &u.email } else { &u.username };
                        if name.to_lowercase() != key {
                            self.problem(format!(
                                "{tree}/{key}: points at user {} whose name is {name:?}",
                                u.id
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn sessions(&mut self) -> Result<()> {
        let i = &self.store.inner()?;
        for kv in i.tokenhash_session.iter() {
            let (k, v) = kv?;
            self.report.sessions += 1;
            let session: SessionRecord = match records::decode("tokenhash_session", &hex(&k), &v) {
                Ok(s) => s,
                Err(e) => {
                    self.problem(e.to_string());
                    continue;
                }
            };
            let mut index_key = session.user.to_bytes().to_vec();
            index_key.extend_from_slice(&k);
            if !i.userid_tokenhash.contains_key(&index_key)? {
                self.problem(format!(
                    "userid_tokenhash/{}: missing for session {}",
                    hex(&index_key),
                    hex(&k)
                ));
            }
            match self.user(session.user)? {
                None => self.problem(format!(
                    "tokenhash_session/{}: belongs to user {}, which does not exist",
                    hex(&k),
                    session.user
                )),
                Some(u) if u.deleted => self.problem(format!(
                    "tokenhash_session/{}: belongs to deleted user {}",
                    hex(&k),
                    u.id
                )),
                Some(_) => {}
            }
        }
        for kv in i.userid_tokenhash.iter() {
            let (k, _) = kv?;
            if k.len() != 48 {
                self.problem(format!(
                    "userid_tokenhash/{}: key is not user id ‖ token hash",
                    hex(&k)
                ));
            } else if !i.tokenhash_session.contains_key(&k[16..])? {
                self.problem(format!(
                    "userid_tokenhash/{}: no session {} behind it",
                    hex(&k),
                    hex(&k[16..])
                ));
            }
        }
        Ok(())
    }

    fn rooms(&mut self) -> Result<()> {
        let i = &self.store.inner()?;
        for kv in i.roomid_room.iter() {
            let (k, v) = kv?;
            self.report.rooms += 1;
            let room: RoomRecord = match records::decode("roomid_room", &hex(&k), &v) {
                Ok(r) => r,
                Err(e) => {
                    self.problem(e.to_string());
                    continue;
                }
            };
            if k.as_ref() != room.id.to_bytes() {
                self.problem(format!(
                    "roomid_room/{}: record says id {}",
                    hex(&k),
                    room.id
                ));
            }
            let Some(index) = room.index_key() else {
                continue;
            };
            let key = String::from_utf8_lossy(&index).into_owned();
            match i.roomname_roomid.get(&index)? {
                Some(id) if id.as_ref() == room.id.to_bytes() => {}
                Some(id) => self.problem(format!(
                    "roomname_roomid/{key}: points at {}, but room {} has that name",
                    hex(&id),
                    room.id
                )),
                None => self.problem(format!(
                    "roomname_roomid/{key}: missing for room {}",
                    room.id
                )),
            }
        }
        for kv in i.roomname_roomid.iter() {
            let (k, v) = kv?;
            let key = String::from_utf8_lossy(&k).into_owned();
            let room = match RoomId::from_slice(&v) {
                Some(id) => self.store.room(id).ok().flatten(),
                None => None,
            };
            match room {
                None => self.problem(format!(
                    "roomname_roomid/{key}: points at {}, which is no room",
                    hex(&v)
                )),
                Some(r) if r.index_key().as_deref() != Some(k.as_ref()) => self.problem(format!(
                    "roomname_roomid/{key}: points at room {} whose name is {:?}",
                    r.id, r.name
                )),
                Some(_) => {}
            }
        }
        Ok(())
    }

    fn memberships(&mut self) -> Result<()> {
        let i = &self.store.inner()?;
        for (tree, forward, reverse, room_first) in [
            ("roomid_userid", &i.roomid_userid, &i.userid_roomid, true),
            ("userid_roomid", &i.userid_roomid, &i.roomid_userid, false),
        ] {
            for kv in forward.iter() {
                let (k, _) = kv?;
                if room_first {
                    self.report.memberships += 1;
                }
                if k.len() != 32 {
                    self.problem(format!("{tree}/{}: key is not two ids", hex(&k)));
                    continue;
                }
                let (a, b) = k.split_at(16);
                let (room, user) = if room_first { (a, b) } else { (b, a) };
                let mut twin = b.to_vec();
                twin.extend_from_slice(a);
                if !reverse.contains_key(&twin)? {
                    let other = if room_first {
                        "userid_roomid"
                    } else {
                        "roomid_userid"
                    };
                    self.problem(format!(
                        "{other}/{}: missing, though {tree}/{} exists",
                        hex(&twin),
                        hex(&k)
                    ));
                }
                if !room_first {
                    continue;
                }
                if !i.roomid_room.contains_key(room)? {
                    self.problem(format!(
                        "roomid_userid/{}: room {} does not exist",
                        hex(&k),
                        hex(room)
                    ));
                }
                let uid = UserId::from_slice(user);
                match uid.map(|u| self.user(u)).transpose()?.flatten() {
                    None => self.problem(format!(
                        "roomid_userid/{}: user {} does not exist",
                        hex(&k),
                        hex(user)
                    )),
                    Some(u) if u.deleted => self.problem(format!(
                        "roomid_userid/{}: user {} is deleted but still a member",
                        hex(&k),
                        u.id
                    )),
                    Some(_) => {}
                }
            }
        }
        Ok(())
    }

    /// Each cursor is well formed and points no further than its room's
    /// log. (A cursor of someone who just left may outlive the membership
    /// by up to a second, so that is not judged.)
    fn read_cursors(&mut self) -> Result<()> {
        let log = self.store.log()?;
        let cursors: Vec<_> = self.store.read_cursors().collect();
        for c in cursors {
            match c {
                Ok(((user, room), seq)) => {
                    let head = log.head(room)?;
                    if seq > head {
                        self.problem(format!(
                            "userid_roomid_readseq/{user}/{room}: seq {seq} is past the room's head {head}"
                        ));
                    }
                }
                Err(e) => self.problem(e.to_string()),
            }
        }
        Ok(())
    }

    fn room_log(&mut self) -> Result<()> {
        let tree = &self.store.inner()?.roomlog;
        for k in tree.scan_prefix([log::HEAD]).keys() {
            self.problem(format!(
                "roomlog/{}: a head key, which schema 2 no longer keeps (its migration removes them)",
                hex(&k?)
            ));
        }
        // Heads (each room's last event) first: everything up to them is
        // judged, anything after is a racing append and is not.
        let heads: HashMap<RoomId, Seq> = self.store.log()?.heads().collect::<Result<_>>()?;
        // Per room: the seqs seen (up to its head) and the authors and
        // client ids of those events, for the dedup check below.
        let mut seen: BTreeMap<RoomId, Vec<Seq>> = BTreeMap::new();
        let mut events: HashMap<(RoomId, Seq), (UserId, Option<String>)> = HashMap::new();
        for kv in tree.scan_prefix([log::EVENT]) {
            let (k, v) = kv?;
            let Some(room) = RoomId::from_slice(&k[1..k.len().min(17)]).filter(|_| k.len() == 25)
            else {
                self.problem(format!(
                    "roomlog/{}: an event key must be 0x00 ‖ room id ‖ seq",
                    hex(&k)
                ));
                continue;
            };
            let seq = log::seq_value(&k[17..]);
            let head = heads.get(&room).copied().unwrap_or(Seq::ZERO);
            if seq > head {
                continue;
            }
            self.report.events += 1;
            let event: EventRecord = match records::decode("roomlog", &format!("{room}/{seq}"), &v)
            {
                Ok(e) => e,
                Err(e) => {
                    self.problem(e.to_string());
                    continue;
                }
            };
            if !self
                .store
                .inner()?
                .roomid_room
                .contains_key(room.to_bytes())?
            {
                self.problem(format!(
                    "roomlog/{room}/{seq}: event of a room that does not exist"
                ));
            }
            seen.entry(room).or_default().push(seq);
            let who = (
                event.kind.actor(),
                event.kind.client_id().map(str::to_string),
            );
            events.insert((room, seq), who);
        }
        for (room, head) in &heads {
            let seqs = seen.get(room).map(Vec::as_slice).unwrap_or_default();
            self.contiguous(*room, *head, seqs);
        }
        for kv in tree.scan_prefix([log::DEDUP]) {
            let (k, v) = kv?;
            if k.len() < 34 || v.len() != 8 {
                self.problem(format!(
                    "roomlog/{}: a dedup key must be 0x01 ‖ room ‖ author ‖ client_id with an 8-byte seq",
                    hex(&k)
                ));
                continue;
            }
            let (Some(room), Some(author)) = (
                RoomId::from_slice(&k[1..17]),
                UserId::from_slice(&k[17..33]),
            ) else {
                continue;
            };
            let client_id = String::from_utf8_lossy(&k[33..]).into_owned();
            let seq = log::seq_value(&v);
            if seq > heads.get(&room).copied().unwrap_or(Seq::ZERO) {
                continue;
            }
            match events.get(&(room, seq)) {
                None => self.problem(format!(
                    "roomlog/dedup/{room}/{author}/{client_id:?}: points at seq {seq}, which does not exist"
                )),
                Some((a, c)) if *a != author || c.as_deref() != Some(client_id.as_str()) => {
                    self.problem(format!(
                        "roomlog/dedup/{room}/{author}/{client_id:?}: points at seq {seq}, which is by {a} with client_id {c:?}"
                    ))
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// What the log says of each message (edits, deletion, reactions) must
    /// be what is stored beside it, and a deleted message must leave no
    /// text behind, in itself or in any of its edits. Changes that race the
    /// scan can differ for a moment: only a second look that still differs
    /// is damage.
    fn message_states(&mut self) -> Result<()> {
        let log = self.store.log()?;
        let mut differ = differing(&log)?;
        if !differ.is_empty() {
            differ = differing(&log)?;
        }
        for (room, seq) in differ {
            self.problem(format!(
                "roomlog/{room}/state/{seq}: the stored state is not what the log's events make of the message"
            ));
        }
        for ((room, seq), state) in log.stored_states()? {
            if !state.deleted {
                continue;
            }
            let texts = std::iter::once(seq).chain(state.edits.iter().copied());
            for at in texts {
                let left = match log.event(room, at)?.map(|e| e.kind) {
                    Some(EventKind::Message { body, .. } | EventKind::Edit { body, .. }) => body,
                    _ => String::new(),
                };
                if !left.is_empty() {
                    self.problem(format!(
                        "roomlog/{room}/{at}: message {seq} is deleted but this event still holds its text"
                    ));
                }
            }
        }
        Ok(())
    }

    /// Seqs must be exactly 1..=head, in order (keys sort by seq).
    fn contiguous(&mut self, room: RoomId, head: Seq, seqs: &[Seq]) {
        let mut expected = 1u64;
        for seq in seqs {
            if seq.0 != expected {
                let last_missing = seq.0 - 1;
                if last_missing == expected {
                    self.problem(format!(
                        "roomlog/{room}: seq {expected} is missing (head {head})"
                    ));
                } else {
                    self.problem(format!(
                        "roomlog/{room}: seqs {expected}..={last_missing} are missing (head {head})"
                    ));
                }
            }
            expected = seq.0 + 1;
        }
        if expected <= head.0 {
            if expected == head.0 {
                self.problem(format!(
                    "roomlog/{room}: head is {head} but event {head} does not exist"
                ));
            } else {
                self.problem(format!(
                    "roomlog/{room}: head is {head} but the log ends at seq {}",
                    expected - 1
                ));
            }
        }
    }

    fn invites(&mut self) -> Result<()> {
        for kv in self.store.inner()?.invitecode_invite.iter() {
            let (k, v) = kv?;
            self.report.invites += 1;
            if k.len() != 32 {
                self.problem(format!(
                    "invitecode_invite/{}: key is not a 32-byte hash",
                    hex(&k)
                ));
            }
            if let Err(e) =
                records::decode::<records::InviteRecord>("invitecode_invite", &hex(&k), &v)
            {
                self.problem(e.to_string());
            }
        }
        Ok(())
    }

    /// Each reset code is a 32-byte hash naming an account that exists.
    fn resets(&mut self) -> Result<()> {
        for kv in self.store.inner()?.resetcode_reset.iter() {
            let (k, v) = kv?;
            if k.len() != 32 {
                self.problem(format!(
                    "resetcode_reset/{}: key is not a 32-byte hash",
                    hex(&k)
                ));
            }
            match records::decode::<records::ResetRecord>("resetcode_reset", &hex(&k), &v) {
                Err(e) => self.problem(e.to_string()),
                Ok(r) if self.user(r.user)?.is_none() => self.problem(format!(
                    "resetcode_reset/{}: names user {}, who does not exist",
                    hex(&k),
                    r.user
                )),
                Ok(_) => {}
            }
        }
        Ok(())
    }
}

impl Verifier<'_> {
    /// Every stored avatar belongs to a live user whose record names its
    /// version, and every record that names a version has that picture.
    /// Each pair is read in one transaction, so a change racing the scan
    /// is never reported.
    fn avatars(&mut self) -> Result<()> {
        let i = &self.store.inner()?;
        for kv in i.userid_avatar.iter() {
            let (k, _) = kv?;
            self.report.avatars += 1;
            let Some(user) = UserId::from_slice(&k) else {
                self.problem(format!("userid_avatar/{}: key is not a user id", hex(&k)));
                continue;
            };
            let Some((record, png)) = self.store.user_with_avatar(user)? else {
                self.problem(format!("userid_avatar/{user}: no such user"));
                continue;
            };
            let Some(png) = png else { continue };
            // A record that does not decode is reported by `users`.
            let Ok(record) = records::decode::<UserRecord>("userid_user", &hex(&k), &record) else {
                continue;
            };
            let found = AvatarVersion::of(&png);
            match record.avatar {
                _ if record.deleted => self.problem(format!(
                    "userid_avatar/{user}: belongs to a deleted account"
                )),
                None => self.problem(format!(
                    "userid_avatar/{user}: the user's record names no avatar"
                )),
                Some(named) if named != found => self.problem(format!(
                    "userid_avatar/{user}: holds version {found}, but the user's record names {named}"
                )),
                Some(_) => {}
            }
        }
        for kv in i.userid_user.iter() {
            let (k, v) = kv?;
            let Ok(user) = records::decode::<UserRecord>("userid_user", &hex(&k), &v) else {
                continue;
            };
            if user.avatar.is_none() {
                continue;
            }
            let Some((record, png)) = self.store.user_with_avatar(user.id)? else {
                continue;
            };
            let Ok(record) = records::decode::<UserRecord>("userid_user", &hex(&k), &record) else {
                continue;
            };
            if let (Some(named), None) = (record.avatar, png) {
                self.problem(format!(
                    "userid_user/{}: names avatar {named}, but userid_avatar has none",
                    record.id
                ));
            }
        }
        Ok(())
    }

    /// Each push subscription is keyed by its user and its endpoint's hash,
    /// has keys of the right sizes, and belongs to a live session of its
    /// user (ending a session removes its subscriptions).
    fn push_subscriptions(&mut self) -> Result<()> {
        use sha2::Digest;
        let i = &self.store.inner()?;
        for kv in i.userid_endpointhash_pushsub.iter() {
            let (k, v) = kv?;
            let key = hex(&k);
            let Some(user) = k
                .get(..16)
                .and_then(UserId::from_slice)
                .filter(|_| k.len() == 48)
            else {
                self.problem(format!(
                    "userid_endpointhash_pushsub/{key}: key is not user id ‖ endpoint hash"
                ));
                continue;
            };
            let sub: PushSubRecord = match records::decode("userid_endpointhash_pushsub", &key, &v)
            {
                Ok(s) => s,
                Err(e) => {
                    self.problem(e.to_string());
                    continue;
                }
            };
            if sha2::Sha256::digest(sub.endpoint.as_bytes()).as_slice() != &k[16..] {
                self.problem(format!(
                    "userid_endpointhash_pushsub/{key}: the key does not hash its endpoint"
                ));
            }
            if sub.p256dh.len() != 65 || sub.auth.len() != 16 {
                self.problem(format!(
                    "userid_endpointhash_pushsub/{key}: keys of {} and {} bytes, expected 65 and 16",
                    sub.p256dh.len(),
                    sub.auth.len()
                ));
            }
            let session = i.tokenhash_session.get(sub.session)?;
            let owner = session
                .and_then(|s| records::decode::<SessionRecord>("tokenhash_session", &key, &s).ok())
                .map(|s| s.user);
            if owner != Some(user) {
                self.problem(format!(
                    "userid_endpointhash_pushsub/{key}: its session {} is not one of user {user}",
                    hex(&sub.session)
                ));
            }
        }
        Ok(())
    }
}

impl Verifier<'_> {
    /// Every file's blob is on disk and hashes to its name (and its size),
    /// a file with a thumbnail has it, its index entries exist, and the
    /// room log's file holds are exactly those its messages make, each
    /// naming a file that exists. Holds past a room's head (appends racing
    /// the scan) are not judged.
    fn files(&mut self) -> Result<()> {
        use sha2::{Digest, Sha256};
        let log = self.store.log()?;
        let heads: HashMap<RoomId, Seq> = log.heads().collect::<Result<_>>()?;
        let settled = |room: &RoomId, seq: &Seq| heads.get(room).is_some_and(|h| seq <= h);
        let stored = log.stored_file_refs()?;
        let derived = log.derived_file_refs()?;
        for (file, room, seq) in stored.symmetric_difference(&derived) {
            if !settled(room, seq) {
                continue;
            }
            if stored.contains(&(*file, *room, *seq)) {
                self.problem(format!(
                    "roomlog/{room}/{seq}: holds file {file}, but the message does not carry it"
                ));
            } else {
                self.problem(format!(
                    "roomlog/{room}/{seq}: the message carries file {file}, but no hold records it"
                ));
            }
        }
        let i = self.store.inner()?;
        let mut held_missing = Vec::new();
        for (file, room, seq) in &derived {
            if settled(room, seq) && !i.fileid_file.contains_key(file.to_bytes())? {
                held_missing.push(format!(
                    "roomlog/{room}/{seq}: carries file {file}, which has no record (fileid_file)"
                ));
            }
        }
        for p in held_missing {
            self.problem(p);
        }
        for record in self.store.all_files() {
            let record = match record {
                Ok(r) => r,
                Err(e) => {
                    self.problem(e.to_string());
                    continue;
                }
            };
            self.report.files += 1;
            let f = &record.file;
            let path = self.store.blob_path(&f.hash);
            match std::fs::File::open(&path) {
                Err(e) => self.problem(format!(
                    "fileid_file/{}: its bytes {} cannot be read: {e}",
                    f.id,
                    path.display()
                )),
                Ok(mut blob) => {
                    let mut hasher = Sha256::new();
                    match std::io::copy(&mut blob, &mut hasher) {
                        Err(e) => self.problem(format!(
                            "fileid_file/{}: its bytes {} cannot be read: {e}",
                            f.id,
                            path.display()
                        )),
                        Ok(n) => {
                            let found = hex(&hasher.finalize());
                            if found != f.hash.to_string() || n != f.size {
                                self.problem(format!(
                                    "fileid_file/{}: its bytes {} are damaged (SHA-256 {found}, {n} bytes; expected {}, {} bytes)",
                                    f.id,
                                    path.display(),
                                    f.hash,
                                    f.size
                                ));
                            }
                        }
                    }
                }
            }
            if f.thumb && !self.store.thumb_path(&f.hash).exists() {
                self.problem(format!("fileid_file/{}: its thumbnail is missing", f.id));
            }
            let mut blob_key = f.hash.0.to_vec();
            blob_key.extend_from_slice(&f.id.to_bytes());
            let mut user_key = record.uploader.to_bytes().to_vec();
            user_key.extend_from_slice(&f.id.to_bytes());
            if !i.hash_fileid.contains_key(blob_key)? {
                self.problem(format!("hash_fileid: no entry for file {}", f.id));
            }
            if !i.userid_fileid.contains_key(user_key)? {
                self.problem(format!("userid_fileid: no entry for file {}", f.id));
            }
        }
        Ok(())
    }
}

/// The messages whose stored state differs from the one derived from the
/// log.
fn differing(log: &log::RoomLog) -> Result<Vec<(RoomId, Seq)>> {
    let derived = log.derived_states()?;
    let stored = log.stored_states()?;
    let mut keys: Vec<_> = derived.keys().chain(stored.keys()).copied().collect();
    keys.sort();
    keys.dedup();
    Ok(keys
        .into_iter()
        .filter(|k| derived.get(k) != stored.get(k))
        .collect())
}
