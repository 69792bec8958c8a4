//! The operator's tools: invite codes, the registration mode, counts and
//! live figures, the store's check and online backup. Reached from the
//! admin socket (and the CLI on a stopped server) and the admin API; every
//! one needs an administrator.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Actor;
use crate::auth::invites;
use crate::config::Registration;
use crate::error::ApiError;
use crate::ids::Millis;
use crate::search::{Counts, SearchError};
use crate::state::AppState;
use crate::storage::backup::Summary;
use crate::storage::verify::Report;
use crate::storage::InviteRecord;

#[derive(Debug, Serialize, Deserialize)]
pub struct InviteInfo {
    /// The hex of the code's hash: names the invite without revealing it.
    pub id: String,
    pub note: String,
    pub uses_left: u32,
    pub created_at: String,
    pub expires_at: Option<String>,
    /// Used up or past its expiry.
    pub spent: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Stats {
    pub users: usize,
    pub admins: usize,
    pub disabled_users: usize,
    pub rooms: usize,
    pub messages: u64,
    /// Open WebSocket connections (0 when the server is not running).
    pub connections: usize,
    pub disk_bytes: u64,
}

/// Makes an invite code good for `uses` sign-ups; returns the code (shown
/// once: only its hash is kept).
pub async fn invite_create(
    state: &AppState,
    actor: Actor,
    uses: u32,
    valid_for: Option<Duration>,
    note: String,
) -> Result<(String, InviteRecord), ApiError> {
    actor.require_admin(state)?;
    if uses == 0 {
        return Err(ApiError::InvalidRequest("--uses must be at least 1".into()));
    }
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || invites::create(&store, uses, valid_for, note))
        .await
        .map_err(|_| ApiError::Internal)?
        .map_err(ApiError::from)
}

pub fn invite_list(state: &AppState, actor: Actor) -> Result<Vec<InviteInfo>, ApiError> {
    actor.require_admin(state)?;
    let now = Millis::now();
    let mut out = Vec::new();
    for item in state.store.invites() {
        let (id, i) = item?;
        out.push(InviteInfo {
            id,
            spent: i.uses_left == 0 || i.expires_at.is_some_and(|t| t <= now),
            note: i.note,
            uses_left: i.uses_left,
            created_at: i.created_at.to_rfc3339(),
            expires_at: i.expires_at.map(Millis::to_rfc3339),
        });
    }
    out.sort_by(|a, b| a.created_at.cmp(&b.created_at));
    Ok(out)
}

/// Revokes the one invite whose id starts with `prefix`; returns its id.
pub async fn invite_revoke(
    state: &AppState,
    actor: Actor,
    prefix: &str,
) -> Result<String, ApiError> {
    actor.require_admin(state)?;
    let prefix = prefix.to_ascii_lowercase();
    if prefix.len() < 6 {
        return Err(ApiError::InvalidRequest(
            "give at least 6 characters of the invite's id".into(),
        ));
    }
    let mut matches = Vec::new();
    for item in state.store.invites() {
        let (id, _) = item?;
        if id.starts_with(&prefix) {
            matches.push(id);
        }
    }
    let [id] = matches.as_slice() else {
        return Err(ApiError::InvalidRequest(format!(
            "{} invites have an id starting with {prefix:?}; give exactly one",
            matches.len()
        )));
    };
    let hash: Vec<u8> = (0..id.len() / 2)
        .filter_map(|i| u8::from_str_radix(id.get(2 * i..2 * i + 2)?, 16).ok())
        .collect();
    state.store.remove_invite(&hash)?;
    state.store.flush_async().await?;
    Ok(id.clone())
}

pub fn stats(state: &AppState, actor: Actor) -> Result<Stats, ApiError> {
    actor.require_admin(state)?;
    let (mut users, mut admins, mut disabled) = (0, 0, 0);
    for u in state.store.users() {
        let u = u?;
        if u.deleted {
            continue;
        }
        users += 1;
        admins += usize::from(u.admin);
        disabled += usize::from(u.disabled);
    }
    let rooms = state.rooms.all();
    Ok(Stats {
        users,
        admins,
        disabled_users: disabled,
        rooms: rooms.len(),
        messages: rooms.iter().map(|r| r.head().0).sum(),
        connections: state.hub.connection_count(),
        disk_bytes: state.store.size_on_disk()?,
    })
}

/// Checks every invariant of the store (safe while the server runs), and
/// that the search index holds one document per live message.
pub async fn verify(state: &AppState, actor: Actor) -> Result<Report, ApiError> {
    actor.require_admin(state)?;
    let store = state.store.clone();
    let mut report = tokio::task::spawn_blocking(move || {
        let mut report = store.verify()?;
        report
            .problems
            .extend(crate::unread::check_snapshots(&store)?);
        Ok::<_, crate::storage::StorageError>(report)
    })
    .await
    .map_err(|_| ApiError::Internal)?
    .map_err(ApiError::from)?;
    match state.search.check().await {
        Ok(c) if c.documents == c.live_messages => {}
        // Indexing is off: there is nothing to compare.
        Err(SearchError::Off) => {}
        Ok(c) => report.problems.push(format!(
            "search index: {} documents, but the log has {} live messages; \
             run `hearth index rebuild`",
            c.documents, c.live_messages
        )),
        Err(e) => report.problems.push(format!(
            "search index: cannot be checked ({e}); run `hearth index rebuild`"
        )),
    }
    Ok(report)
}

/// Empties the search index and indexes every message again (the index
/// is derived from the log); returns how many documents it holds after.
pub async fn index_rebuild(state: &AppState, actor: Actor) -> Result<Counts, ApiError> {
    actor.require_admin(state)?;
    let started = std::time::Instant::now();
    let counts = state.search.rebuild().await.map_err(|e| match e {
        SearchError::Off => ApiError::SearchDisabled,
        e => {
            tracing::error!(error = %e, "The search index rebuild failed.");
            ApiError::Internal
        }
    })?;
    tracing::info!(
        documents = counts.documents,
        took_ms = started.elapsed().as_millis() as u64,
        "Search index rebuilt."
    );
    Ok(counts)
}

/// Why a backup was not written.
#[derive(Debug, thiserror::Error)]
pub enum BackupFailed {
    #[error("the backup path {0} must be absolute")]
    RelativePath(PathBuf),
    #[error(transparent)]
    Backup(#[from] crate::storage::backup::BackupError),
    #[error(transparent)]
    Refused(#[from] ApiError),
}

/// Writes a consistent backup to a new file, while the server takes writes.
pub async fn backup(state: &AppState, actor: Actor, path: &Path) -> Result<Summary, BackupFailed> {
    actor.require_admin(state)?;
    if !path.is_absolute() {
        return Err(BackupFailed::RelativePath(path.to_path_buf()));
    }
    let store = state.store.clone();
    let target = path.to_path_buf();
    let summary = tokio::task::spawn_blocking(move || store.backup_to(&target))
        .await
        .map_err(|_| ApiError::Internal)??;
    tracing::info!(path = %path.display(), events = summary.events, "Backup written.");
    Ok(summary)
}

/// The registration mode in force: an administrator's choice kept in the
/// store wins over the `registration` key of the config, which is the
/// default until someone chooses (and again after `set_registration(None)`).
pub fn registration(state: &AppState) -> Result<Registration, ApiError> {
    Ok(registration_setting(state)?.mode)
}

/// The mode in force, and where it comes from.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct RegistrationSetting {
    #[serde(with = "registration_name")]
    pub mode: Registration,
    /// `admin` when chosen at runtime, `config` when the config's applies.
    pub source: RegistrationSource,
    /// The config's value, which applies when no choice is kept.
    #[serde(with = "registration_name")]
    pub config: Registration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationSource {
    Admin,
    Config,
}

fn registration_setting(state: &AppState) -> Result<RegistrationSetting, ApiError> {
    let config = state.config.registration;
    // A name this binary does not know (written by hand) counts as none:
    // `verify` reports it.
    let chosen = state
        .store
        .registration_setting()?
        .and_then(|m| Registration::parse(&m));
    Ok(RegistrationSetting {
        mode: chosen.unwrap_or(config),
        source: match chosen {
            Some(_) => RegistrationSource::Admin,
            None => RegistrationSource::Config,
        },
        config,
    })
}

/// Who may sign up, for an administrator.
pub fn registration_for(state: &AppState, actor: Actor) -> Result<RegistrationSetting, ApiError> {
    actor.require_admin(state)?;
    registration_setting(state)
}

/// Changes who may sign up, at once and across restarts; `None` goes back
/// to the config's value.
pub async fn set_registration(
    state: &AppState,
    actor: Actor,
    mode: Option<Registration>,
) -> Result<RegistrationSetting, ApiError> {
    actor.require_admin(state)?;
    state
        .store
        .set_registration_setting(mode.map(Registration::as_str))?;
    state.store.flush_async().await?;
    let setting = registration_setting(state)?;
    tracing::info!(
        mode = setting.mode.as_str(),
        ?actor,
        "Registration mode set."
    );
    Ok(setting)
}

mod registration_name {
    use crate::config::Registration;

    pub fn serialize<S: serde::Serializer>(r: &Registration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(r.as_str())
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Registration, D::Error> {
        let name = <String as serde::Deserialize>::deserialize(d)?;
        Registration::parse(&name).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{name:?} is not \"open\", \"invite\" or \"closed\""
            ))
        })
    }
}

/// The server's figures as they are now, for the admin panel's charts:
/// gauges, and counters since start that the panel turns into rates.
#[derive(Debug, Serialize)]
pub struct Live {
    /// When these were read (milliseconds since the epoch), so rates use
    /// the server's clock.
    pub at: u64,
    /// Seconds since the server started.
    pub uptime_secs: u64,
    pub websockets: usize,
    pub http_connections: i64,
    pub sessions: usize,
    pub users: usize,
    pub rooms: usize,
    /// Counters since start.
    pub messages_stored: u64,
    pub deliveries: u64,
    pub commit_groups: u64,
    /// Time from a send reaching the server to its ack, since start: the
    /// panel takes a percentile of the difference between two readings.
    pub ack_latency: crate::metrics::HistogramReading,
    pub disk_bytes: u64,
    /// Whether the store takes writes (as `/readyz` reports).
    pub storage_ok: bool,
}

/// Reads the server's live figures (from the metrics registry and the
/// counts the server keeps), for an administrator.
pub fn live(state: &AppState, actor: Actor) -> Result<Live, ApiError> {
    use std::sync::atomic::Ordering::Relaxed;
    actor.require_admin(state)?;
    let stats = &state.committer.stats;
    Ok(Live {
        at: Millis::now().0,
        uptime_secs: state.started.elapsed().as_secs(),
        websockets: state.hub.connection_count(),
        http_connections: state.metrics.open_connections.get(),
        sessions: state.store.session_count()?,
        users: state.directory.count(),
        rooms: state.rooms.count(),
        messages_stored: stats.messages.load(Relaxed),
        deliveries: state.hub.deliveries.load(Relaxed),
        commit_groups: stats.groups.load(Relaxed),
        ack_latency: state.metrics.ack_latency(),
        disk_bytes: state.store.size_on_disk()?,
        storage_ok: !stats.failing.load(Relaxed),
    })
}
