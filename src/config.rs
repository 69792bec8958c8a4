//! Configuration: the committed `config.toml` is the default, layered with a
//! user file, `HEARTH_*` environment variables and command-line flags.
//!
//! Parsing happens in two steps ("parse, don't validate"): the layers are
//! merged into a [`RawConfig`] that mirrors the file, then turned into a
//! [`Config`] whose values are checked and typed. Nothing else in the program
//! sees an unchecked setting.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// The documented defaults, embedded so the binary needs no file to start.
pub const DEFAULT_CONFIG_TOML: &str = include_str!("../config.toml");

/// A configuration problem, naming the key and how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {message}")]
    Syntax { path: String, message: String },
    #[error("in {origin}: {message}")]
    Invalid { origin: String, message: String },
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
    #[error("`{key}`: {message}")]
    Value { key: &'static str, message: String },
    #[error("{} problems:{}", .0.len(), .0.iter().map(|e| format!("\n  - {e}")).collect::<String>())]
    Several(Vec<ConfigError>),
}

/// Values given on the command line; they override every other layer.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub listen: Option<String>,
    pub data: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: String,
    data: PathBuf,
    allowed_origins: Vec<String>,
    webhook_allow: Vec<String>,
    webhook_retry_max_secs: u64,
    push_excerpt: bool,
    push_away_secs: u64,
    push_contact: String,
    push_max_subscriptions: u32,
    push_queue: u32,
    push_timeout_secs: u64,
    push_allow_insecure_loopback: bool,
    log_level: String,
    log_format: String,
    registration: String,
    metrics_listen: String,
    workers: u32,
    http: RawHttp,
    tls: RawTls,
    websocket: RawWebsocket,
    limits: RawLimits,
    sessions: RawSessions,
    storage: RawStorage,
    files: RawFiles,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    max_connections: u32,
    max_connections_per_ip: u32,
    max_body_bytes: u64,
    header_read_timeout_secs: u64,
    body_read_timeout_secs: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: PathBuf,
    key: PathBuf,
    handshake_timeout_secs: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebsocket {
    max_message_bytes: u64,
    hello_timeout_secs: u64,
    ping_interval_secs: u64,
    idle_timeout_secs: u64,
    write_timeout_secs: u64,
    coalesce_ms: u64,
    send_buffer_kb: u64,
    max_frames_per_sec: u32,
    outbound_queue_frames: u32,
    presence_max_members: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    send_per_sec: u32,
    send_burst: u32,
    signup_burst: u32,
    signup_refill_secs: u64,
    login_per_minute: u32,
    login_failures_per_hour: u32,
    hash_concurrency: u32,
    hash_on_idle_cpu: bool,
    search_per_sec: u32,
    search_burst: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSessions {
    idle_secs: u64,
    absolute_secs: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStorage {
    cache_mb: u64,
    durability: String,
    group_commit_max: u32,
    search_index: bool,
    history_window: u32,
    dedup_window: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFiles {
    max_upload_bytes: u64,
    upload_quota_mb: u64,
    uploads_per_minute: u32,
    uploads_at_once: u32,
    orphan_upload_secs: u64,
}

/// A checked configuration. Every field is valid by construction.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data: PathBuf,
    /// Origins (as `scheme://host[:port]`, lower-case) trusted besides the server's own.
    pub allowed_origins: Vec<String>,
    /// URL prefixes bots' callbacks may point at (outgoing webhooks); none
    /// when empty.
    pub webhook_allow: Vec<String>,
    /// The longest wait between two tries of a failing webhook delivery.
    pub webhook_retry_max: Duration,
    pub push: PushConfig,
    pub log_level: String,
    pub log_format: LogFormat,
    /// Who may sign up.
    pub registration: Registration,
    /// A separate listener for `/metrics`; `None` serves it on `listen`.
    pub metrics_listen: Option<SocketAddr>,
    /// Threads of the async runtime, as set; `None`: one per CPU (see
    /// [`Config::runtime_workers`]).
    pub workers: Option<usize>,
    pub http: HttpConfig,
    /// Certificate and key to serve HTTPS with; `None` serves plain HTTP.
    pub tls: Option<TlsConfig>,
    pub tls_handshake_timeout: Duration,
    pub websocket: WebsocketConfig,
    pub limits: LimitsConfig,
    pub sessions: SessionsConfig,
    pub storage: StorageConfig,
    pub files: FilesConfig,
}

/// Web Push settings.
#[derive(Debug, Clone)]
pub struct PushConfig {
    /// Whether a notification carries the start of the message.
    pub excerpt: bool,
    /// How long a socket stays active after its user last did something.
    pub away_after: Duration,
    /// The VAPID `sub` claim.
    pub contact: String,
    pub max_subscriptions: usize,
    /// Notifications waiting per user before they collapse per room.
    pub queue: usize,
    /// The deadline of one request to a push service.
    pub timeout: Duration,
    /// Whether `http://` endpoints on loopback hosts are accepted (tests).
    pub allow_insecure_loopback: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Who may create an account over the API. The `registration` key is
/// the default; an administrator's choice kept in the store wins over it
/// (see `actions::operator::registration`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    Open,
    /// Only with an unused code from `hearth invite create`.
    Invite,
    /// Only operators, with `hearth user add`.
    Closed,
}

impl Registration {
    /// The mode named as in `config.toml`: "open", "invite" or "closed".
    pub fn parse(name: &str) -> Option<Registration> {
        match name {
            "open" => Some(Registration::Open),
            "invite" => Some(Registration::Invite),
            "closed" => Some(Registration::Closed),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Registration::Open => "open",
            Registration::Invite => "invite",
            Registration::Closed => "closed",
        }
    }
}

#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    pub max_body_bytes: usize,
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct WebsocketConfig {
    pub max_message_bytes: usize,
    pub hello_timeout: Duration,
    pub ping_interval: Duration,
    pub idle_timeout: Duration,
    pub write_timeout: Duration,
    pub coalesce: Duration,
    /// The kernel send buffer of each connection, in bytes; 0 leaves it to
    /// the kernel's autotuning.
    pub send_buffer_bytes: usize,
    pub max_frames_per_sec: u32,
    pub outbound_queue_frames: usize,
    /// Rooms larger than this share no presence.
    pub presence_max_members: usize,
}

#[derive(Debug, Clone)]
pub struct LimitsConfig {
    pub send_per_sec: u32,
    pub send_burst: u32,
    pub signup_burst: u32,
    pub signup_refill: Duration,
    pub login_per_minute: u32,
    pub login_failures_per_hour: u32,
    pub hash_concurrency: usize,
    /// Hash only on CPU time nothing else wants (Linux `SCHED_IDLE`);
    /// otherwise at the lowest niceness.
    pub hash_on_idle_cpu: bool,
    /// Message searches per user and second, sustained, and in a burst.
    pub search_per_sec: u32,
    pub search_burst: u32,
}

#[derive(Debug, Clone)]
pub struct SessionsConfig {
    pub idle: Duration,
    pub absolute: Duration,
}

/// File uploads (attachments).
#[derive(Debug, Clone)]
pub struct FilesConfig {
    /// The largest file accepted, in bytes.
    pub max_upload_bytes: u64,
    /// Bytes one user's uploads may hold at once.
    pub upload_quota_bytes: u64,
    /// Uploads per user and minute.
    pub uploads_per_minute: u32,
    /// Uploads one user may have in progress at once.
    pub uploads_at_once: usize,
    /// How long an upload no message holds is kept before it is freed.
    pub orphan_upload_age: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Written to the OS before the ack: survives a process crash.
    Flush,
    /// Also fsynced before the ack: survives power loss.
    Strict,
}

#[derive(Debug, Clone)]
pub struct StorageConfig {
    pub cache_bytes: u64,
    pub durability: Durability,
    pub group_commit_max: usize,
    /// Whether messages are indexed for search (`DATA/index`).
    pub search_index: bool,
    /// Newest events each room being read keeps decoded in memory for
    /// history and resume (0: none, storage answers every read).
    pub history_window: usize,
    /// Newest events of a room whose `client_id`s a retry is matched
    /// against.
    pub dedup_window: usize,
}

impl Config {
    /// Loads the configuration from every layer, the environment taken from
    /// the process.
    pub fn load(overrides: &Overrides) -> Result<Config, ConfigError> {
        Self::load_with_env(overrides, |name| std::env::var(name).ok())
    }

    /// The defaults alone, for tests and tools.
    pub fn defaults() -> Config {
        Self::load_with_env(&Overrides::default(), |_| None)
            .expect("the embedded config.toml is valid; a unit test checks it")
    }

    /// Loads with an explicit environment, so tests need not touch the process's.
    pub fn load_with_env(
        overrides: &Overrides,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut merged = parse_table(DEFAULT_CONFIG_TOML, "the built-in defaults")?;
        let mut origin = "the built-in defaults".to_string();
        if let Some(path) = &overrides.config_file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?;
            let file = parse_table(&text, &path.display().to_string())?;
            check_keys(&merged, &file, "").map_err(|message| ConfigError::Invalid {
                origin: path.display().to_string(),
                message,
            })?;
            merge(&mut merged, file);
            origin = path.display().to_string();
        }
        apply_env(&mut merged, &env)?;
        if let Some(listen) = &overrides.listen {
            merged.insert("listen".into(), toml::Value::String(listen.clone()));
        }
        if let Some(data) = &overrides.data {
            merged.insert(
                "data".into(),
                toml::Value::String(data.display().to_string()),
            );
        }
        let raw: RawConfig =
            toml::Value::Table(merged)
                .try_into()
                .map_err(|e: toml::de::Error| ConfigError::Invalid {
                    origin,
                    message: e.message().to_string(),
                })?;
        raw.validate()
    }
}

/// Checks a whole config file the way `serve` would, for `hearth config check`.
pub fn check_file(path: &Path) -> Result<Config, ConfigError> {
    Config::load_with_env(
        &Overrides {
            config_file: Some(path.to_path_buf()),
            ..Overrides::default()
        },
        |_| None,
    )
}

fn parse_table(text: &str, origin: &str) -> Result<toml::Table, ConfigError> {
    text.parse::<toml::Table>()
        .map_err(|e| ConfigError::Syntax {
            path: origin.to_string(),
            message: e.message().to_string(),
        })
}

/// Names the first key in `file` that the defaults do not have, with its
/// section, so a typo is reported before it is silently ignored.
fn check_keys(defaults: &toml::Table, file: &toml::Table, prefix: &str) -> Result<(), String> {
    let mut problems = Vec::new();
    unknown_keys(defaults, file, prefix, &mut problems);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// Every key of `file` missing from `defaults`, each with the keys it
/// could have meant.
fn unknown_keys(defaults: &toml::Table, file: &toml::Table, prefix: &str, out: &mut Vec<String>) {
    for (key, value) in file {
        let full = format!("{prefix}{key}");
        match (defaults.get(key), value) {
            (None, _) => {
                let known: Vec<&str> = defaults.keys().map(String::as_str).collect();
                out.push(format!(
                    "unknown key `{full}`; known keys here are: {}",
                    known.join(", ")
                ));
            }
            (Some(toml::Value::Table(d)), toml::Value::Table(f)) => {
                unknown_keys(d, f, &format!("{full}."), out);
            }
            (Some(toml::Value::Table(_)), _) => out.push(format!("`{full}` must be a [section]")),
            _ => {}
        }
    }
}

fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// Every key has an environment variable `HEARTH_<KEY>` (keys are unique
/// across sections). Its value is read as the type the default has.
fn apply_env(
    merged: &mut toml::Table,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    for (key, value) in merged.iter_mut() {
        if let toml::Value::Table(section) = value {
            apply_env(section, env)?;
            continue;
        }
        let var = env_var_name(key);
        let Some(text) = env(&var) else { continue };
        *value = env_value(value, &text).map_err(|message| ConfigError::Env {
            var: var.clone(),
            message,
        })?;
    }
    Ok(())
}

/// The environment variable that sets `key`.
pub fn env_var_name(key: &str) -> String {
    format!("HEARTH_{}", key.to_ascii_uppercase())
}

fn env_value(default: &toml::Value, text: &str) -> Result<toml::Value, String> {
    let text = text.trim();
    Ok(match default {
        toml::Value::String(_) => toml::Value::String(text.to_string()),
        toml::Value::Integer(_) => toml::Value::Integer(
            text.parse()
                .map_err(|_| format!("expected a whole number, got {text:?}"))?,
        ),
        toml::Value::Boolean(_) => toml::Value::Boolean(
            text.parse()
                .map_err(|_| format!("expected true or false, got {text:?}"))?,
        ),
        toml::Value::Array(_) => toml::Value::Array(
            text.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.to_string()))
                .collect(),
        ),
        other => return Err(format!("cannot be set from the environment ({other:?})")),
    })
}

impl RawConfig {
    /// Checks every value, collecting every problem (not only the first)
    /// so `hearth config check` can name them all at once. Each section
    /// has its own validator; this one checks the top-level keys.
    fn validate(self) -> Result<Config, ConfigError> {
        let mut problems = Vec::new();
        let p = &mut problems;
        let listen = self.listen.parse::<SocketAddr>().unwrap_or_else(|_| {
            p.push(ConfigError::Value {
                key: "listen",
                message: format!(
                    "{:?} is not an address and port; try \"127.0.0.1:8080\" or \"0.0.0.0:8080\"",
                    self.listen
                ),
            });
            SocketAddr::from(([127, 0, 0, 1], 0))
        });
        if self.data.as_os_str().is_empty() {
            p.push(ConfigError::Value {
                key: "data",
                message: "must name a directory".into(),
            });
        }
        let mut allowed_origins = Vec::new();
        for origin in &self.allowed_origins {
            match normalize_origin(origin) {
                Ok(o) => allowed_origins.push(o),
                Err(e) => p.push(e),
            }
        }
        let mut webhook_allow = Vec::new();
        for prefix in &self.webhook_allow {
            match normalize_webhook_prefix(prefix) {
                Ok(w) => webhook_allow.push(w),
                Err(e) => p.push(e),
            }
        }
        if self.webhook_retry_max_secs == 0 || self.webhook_retry_max_secs > 3600 {
            p.push(ConfigError::Value {
                key: "webhook_retry_max_secs",
                message: "must be from 1 to 3600".into(),
            });
        }
        positive(p, "push_away_secs", self.push_away_secs);
        positive(
            p,
            "push_max_subscriptions",
            self.push_max_subscriptions.into(),
        );
        positive(p, "push_queue", self.push_queue.into());
        positive(p, "push_timeout_secs", self.push_timeout_secs);
        at_most(p, "push_away_secs", self.push_away_secs, 86_400);
        at_most(p, "push_queue", self.push_queue.into(), 10_000);
        at_most(p, "push_timeout_secs", self.push_timeout_secs, 600);
        if !(self.push_contact.starts_with("mailto:") || self.push_contact.starts_with("https://"))
        {
            p.push(ConfigError::Value {
                key: "push_contact",
                message: format!(
                    "{:?} must start with \"mailto:\" or \"https://\"",
                    self.push_contact
                ),
            });
        }
        let push = PushConfig {
            excerpt: self.push_excerpt,
            away_after: Duration::from_secs(self.push_away_secs),
            contact: self.push_contact,
            max_subscriptions: self.push_max_subscriptions as usize,
            queue: self.push_queue as usize,
            timeout: Duration::from_secs(self.push_timeout_secs),
            allow_insecure_loopback: self.push_allow_insecure_loopback,
        };
        let log_format = match self.log_format.as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                p.push(ConfigError::Value {
                    key: "log_format",
                    message: format!("{other:?} is not \"text\" or \"json\""),
                });
                LogFormat::Text
            }
        };
        let registration = match Registration::parse(&self.registration) {
            Some(mode) => mode,
            None => {
                p.push(ConfigError::Value {
                    key: "registration",
                    message: format!(
                        "{:?} is not \"open\", \"invite\" or \"closed\"",
                        self.registration
                    ),
                });
                Registration::Closed
            }
        };
        let metrics_listen = match self.metrics_listen.trim() {
            "" => None,
            text => text
                .parse::<SocketAddr>()
                .map_err(|_| {
                    p.push(ConfigError::Value {
                        key: "metrics_listen",
                        message: format!(
                            "{text:?} is not an address and port; try \"127.0.0.1:9090\", or \"\" to serve /metrics on `listen`"
                        ),
                    })
                })
                .ok(),
        };
        at_most(p, "workers", self.workers.into(), 1024);
        let workers = (self.workers > 0).then_some(self.workers as usize);
        let (tls, tls_handshake_timeout) = self.tls.validate(p);
        let http = self.http.validate(p);
        let websocket = self.websocket.validate(p);
        let limits = self.limits.validate(p);
        let sessions = self.sessions.validate(p);
        let storage = self.storage.validate(p);
        let files = self.files.validate(p);
        match problems.len() {
            0 => {}
            1 => return Err(problems.remove(0)),
            _ => return Err(ConfigError::Several(problems)),
        }
        Ok(Config {
            listen,
            data: self.data,
            allowed_origins,
            webhook_allow,
            webhook_retry_max: Duration::from_secs(self.webhook_retry_max_secs.clamp(1, 3600)),
            push,
            log_level: self.log_level,
            log_format,
            registration,
            metrics_listen,
            workers,
            tls,
            tls_handshake_timeout,
            http,
            websocket,
            limits,
            sessions,
            storage,
            files,
        })
    }
}

impl RawTls {
    fn validate(self, p: &mut Vec<ConfigError>) -> (Option<TlsConfig>, Duration) {
        let tls = match (
            self.cert.as_os_str().is_empty(),
            self.key.as_os_str().is_empty(),
        ) {
            (true, true) => None,
            (false, false) => Some(TlsConfig {
                cert: self.cert,
                key: self.key,
            }),
            (cert_missing, _) => {
                p.push(ConfigError::Value {
                    key: if cert_missing { "tls.cert" } else { "tls.key" },
                    message: "set both tls.cert and tls.key to serve HTTPS, or neither".into(),
                });
                None
            }
        };
        positive(p, "tls.handshake_timeout_secs", self.handshake_timeout_secs);
        (tls, Duration::from_secs(self.handshake_timeout_secs))
    }
}

impl RawHttp {
    fn validate(self, p: &mut Vec<ConfigError>) -> HttpConfig {
        positive(p, "http.max_connections", self.max_connections.into());
        positive(
            p,
            "http.max_connections_per_ip",
            self.max_connections_per_ip.into(),
        );
        positive(p, "http.max_body_bytes", self.max_body_bytes);
        positive(
            p,
            "http.header_read_timeout_secs",
            self.header_read_timeout_secs,
        );
        positive(
            p,
            "http.body_read_timeout_secs",
            self.body_read_timeout_secs,
        );
        HttpConfig {
            max_connections: self.max_connections as usize,
            max_connections_per_ip: self.max_connections_per_ip as usize,
            max_body_bytes: self.max_body_bytes as usize,
            header_read_timeout: Duration::from_secs(self.header_read_timeout_secs),
            body_read_timeout: Duration::from_secs(self.body_read_timeout_secs),
        }
    }
}

impl RawWebsocket {
    fn validate(self, p: &mut Vec<ConfigError>) -> WebsocketConfig {
        positive(p, "websocket.max_message_bytes", self.max_message_bytes);
        positive(p, "websocket.hello_timeout_secs", self.hello_timeout_secs);
        positive(p, "websocket.ping_interval_secs", self.ping_interval_secs);
        positive(p, "websocket.write_timeout_secs", self.write_timeout_secs);
        positive(
            p,
            "websocket.max_frames_per_sec",
            self.max_frames_per_sec.into(),
        );
        positive(
            p,
            "websocket.outbound_queue_frames",
            self.outbound_queue_frames.into(),
        );
        // 1 GiB: far past any kernel's maximum, which caps it anyway.
        at_most(p, "websocket.send_buffer_kb", self.send_buffer_kb, 1 << 20);
        if self.idle_timeout_secs <= self.ping_interval_secs {
            p.push(ConfigError::Value {
                key: "websocket.idle_timeout_secs",
                message: "must be longer than ping_interval_secs, or live clients are dropped"
                    .into(),
            });
        }
        WebsocketConfig {
            max_message_bytes: self.max_message_bytes as usize,
            hello_timeout: Duration::from_secs(self.hello_timeout_secs),
            ping_interval: Duration::from_secs(self.ping_interval_secs),
            idle_timeout: Duration::from_secs(self.idle_timeout_secs),
            write_timeout: Duration::from_secs(self.write_timeout_secs),
            coalesce: Duration::from_millis(self.coalesce_ms),
            // Saturating: with a problem reported the value is never used.
            send_buffer_bytes: (self.send_buffer_kb as usize).saturating_mul(1024),
            max_frames_per_sec: self.max_frames_per_sec,
            outbound_queue_frames: self.outbound_queue_frames as usize,
            presence_max_members: self.presence_max_members as usize,
        }
    }
}

impl RawLimits {
    fn validate(self, p: &mut Vec<ConfigError>) -> LimitsConfig {
        positive(p, "limits.send_per_sec", self.send_per_sec.into());
        positive(p, "limits.send_burst", self.send_burst.into());
        positive(p, "limits.signup_burst", self.signup_burst.into());
        positive(p, "limits.signup_refill_secs", self.signup_refill_secs);
        positive(p, "limits.login_per_minute", self.login_per_minute.into());
        positive(
            p,
            "limits.login_failures_per_hour",
            self.login_failures_per_hour.into(),
        );
        positive(p, "limits.hash_concurrency", self.hash_concurrency.into());
        positive(p, "limits.search_per_sec", self.search_per_sec.into());
        positive(p, "limits.search_burst", self.search_burst.into());
        LimitsConfig {
            send_per_sec: self.send_per_sec,
            send_burst: self.send_burst,
            signup_burst: self.signup_burst,
            signup_refill: Duration::from_secs(self.signup_refill_secs),
            login_per_minute: self.login_per_minute,
            login_failures_per_hour: self.login_failures_per_hour,
            hash_concurrency: self.hash_concurrency as usize,
            hash_on_idle_cpu: self.hash_on_idle_cpu,
            search_per_sec: self.search_per_sec,
            search_burst: self.search_burst,
        }
    }
}

impl RawSessions {
    fn validate(self, p: &mut Vec<ConfigError>) -> SessionsConfig {
        // A hundred years.
        const MAX_SECS: u64 = 36_500 * 86_400;
        at_most(p, "sessions.idle_secs", self.idle_secs, MAX_SECS);
        at_most(p, "sessions.absolute_secs", self.absolute_secs, MAX_SECS);
        positive(p, "sessions.idle_secs", self.idle_secs);
        positive(p, "sessions.absolute_secs", self.absolute_secs);
        SessionsConfig {
            idle: Duration::from_secs(self.idle_secs),
            absolute: Duration::from_secs(self.absolute_secs),
        }
    }
}

/// The largest recent window: a room's window is walked on a history miss
/// and on a deletion, so it stays small.
const MAX_HISTORY_WINDOW: u64 = 4096;

/// The largest dedup window: about 40 bytes per event in a room sent to
/// lately, so 40 MiB for such a room at this size.
const MAX_DEDUP_WINDOW: u64 = 1 << 20;

impl RawStorage {
    fn validate(self, p: &mut Vec<ConfigError>) -> StorageConfig {
        let durability = match self.durability.as_str() {
            "flush" => Durability::Flush,
            "strict" => Durability::Strict,
            other => {
                p.push(ConfigError::Value {
                    key: "storage.durability",
                    message: format!("{other:?} is not \"flush\" or \"strict\""),
                });
                Durability::Strict
            }
        };
        // 1 TiB: past that the byte count would not fit, and no machine has it.
        at_most(p, "storage.cache_mb", self.cache_mb, 1 << 20);
        positive(p, "storage.cache_mb", self.cache_mb);
        positive(p, "storage.group_commit_max", self.group_commit_max.into());
        at_most(
            p,
            "storage.history_window",
            self.history_window.into(),
            MAX_HISTORY_WINDOW,
        );
        positive(p, "storage.dedup_window", self.dedup_window.into());
        at_most(
            p,
            "storage.dedup_window",
            self.dedup_window.into(),
            MAX_DEDUP_WINDOW,
        );
        StorageConfig {
            cache_bytes: self.cache_mb.saturating_mul(1024 * 1024),
            durability,
            group_commit_max: self.group_commit_max as usize,
            search_index: self.search_index,
            history_window: self.history_window as usize,
            dedup_window: self.dedup_window as usize,
        }
    }
}

impl RawFiles {
    fn validate(self, p: &mut Vec<ConfigError>) -> FilesConfig {
        positive(p, "files.max_upload_bytes", self.max_upload_bytes);
        // 1 TiB, as for the cache: past any disk a quota could mean.
        at_most(p, "files.upload_quota_mb", self.upload_quota_mb, 1 << 20);
        positive(p, "files.upload_quota_mb", self.upload_quota_mb);
        positive(
            p,
            "files.uploads_per_minute",
            self.uploads_per_minute.into(),
        );
        positive(p, "files.uploads_at_once", self.uploads_at_once.into());
        positive(p, "files.orphan_upload_secs", self.orphan_upload_secs);
        FilesConfig {
            max_upload_bytes: self.max_upload_bytes,
            upload_quota_bytes: self.upload_quota_mb.saturating_mul(1024 * 1024),
            uploads_per_minute: self.uploads_per_minute,
            uploads_at_once: self.uploads_at_once as usize,
            orphan_upload_age: Duration::from_secs(self.orphan_upload_secs),
        }
    }
}

impl Config {
    /// How many threads the async runtime gets: `workers` if set, else one
    /// per CPU this process may run on.
    pub fn runtime_workers(&self) -> usize {
        self.workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
    }
}

fn at_most(problems: &mut Vec<ConfigError>, key: &'static str, value: u64, max: u64) {
    if value > max {
        problems.push(ConfigError::Value {
            key,
            message: format!("{value} is more than the largest allowed, {max}"),
        });
    }
}

fn positive(problems: &mut Vec<ConfigError>, key: &'static str, value: u64) {
    if value == 0 {
        problems.push(ConfigError::Value {
            key,
            message: "must be greater than 0".into(),
        });
    }
}

/// A webhook prefix: `http://` or `https://`, a host, and ending at a `/`
/// or a `:` (so `https://ci.example.com` cannot be stretched to
/// `https://ci.example.com.evil.net`). Scheme and host are lower-cased.
fn normalize_webhook_prefix(prefix: &str) -> Result<String, ConfigError> {
    let bad = || {
        ConfigError::Value {
        key: "webhook_allow",
        message: format!(
            "{prefix:?} is not a URL prefix like \"https://ci.example.com/hooks/\" or \"http://127.0.0.1:\""
        ),
    }
    };
    let p = prefix.trim();
    let (scheme, rest) = p.split_once("://").ok_or_else(bad)?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(bad());
    }
    let host_end = rest.find(['/', ':']).unwrap_or(rest.len());
    let (host, tail) = rest.split_at(host_end);
    if host.is_empty() || host.contains('@') {
        return Err(bad());
    }
    let tail = if tail.is_empty() { "/" } else { tail };
    Ok(format!("{scheme}://{}{tail}", host.to_ascii_lowercase()))
}

fn normalize_origin(origin: &str) -> Result<String, ConfigError> {
    let lower = origin.trim().trim_end_matches('/').to_ascii_lowercase();
    let ok = (lower.starts_with("http://") || lower.starts_with("https://"))
        && !lower["https://".len() - 1..]
            .trim_start_matches('/')
            .contains('/');
    if !ok {
        return Err(ConfigError::Value {
            key: "allowed_origins",
            message: format!("{origin:?} is not an origin like \"https://chat.example.com\""),
        });
    }
    Ok(lower)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_defaults_are_valid() {
        let c = Config::defaults();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.data, PathBuf::from("./data"));
        assert_eq!(c.storage.durability, Durability::Flush);
    }

    #[test]
    fn runtime_threads_are_one_per_cpu_unless_set() {
        let mut c = Config::defaults();
        assert_eq!(c.workers, None);
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        assert_eq!(c.runtime_workers(), cpus);
        c.workers = Some(3);
        assert_eq!(c.runtime_workers(), 3);
    }

    #[test]
    fn precedence_is_flag_then_env_then_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:1\"\n[limits]\nsend_burst = 7\nsignup_burst = 3\n",
        )
        .unwrap();
        let env = |k: &str| match k {
            "HEARTH_LISTEN" => Some("127.0.0.1:2".to_string()),
            "HEARTH_SIGNUP_BURST" => Some("9".to_string()),
            _ => None,
        };
        let mut o = Overrides {
            config_file: Some(file),
            ..Overrides::default()
        };
        let c = Config::load_with_env(&o, env).unwrap();
        assert_eq!(c.listen.port(), 2, "env beats file");
        assert_eq!(c.limits.send_burst, 7, "file beats default");
        assert_eq!(c.limits.signup_burst, 9, "env beats file");
        o.listen = Some("127.0.0.1:3".into());
        let c = Config::load_with_env(&o, env).unwrap();
        assert_eq!(c.listen.port(), 3, "flag beats env");
    }

    #[test]
    fn unknown_key_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "[limits]\nsend_brust = 7\n").unwrap();
        let err = check_file(&file).unwrap_err().to_string();
        assert!(err.contains("limits.send_brust"), "{err}");
    }

    /// Every key in the committed file names its environment variable, and
    /// that name is the one `apply_env` reads.
    #[test]
    fn every_key_documents_its_env_var() {
        fn keys(table: &toml::Table, out: &mut Vec<String>) {
            for (k, v) in table {
                match v {
                    toml::Value::Table(t) => keys(t, out),
                    _ => out.push(k.clone()),
                }
            }
        }
        let mut all = Vec::new();
        keys(&DEFAULT_CONFIG_TOML.parse().unwrap(), &mut all);
        let mut seen = std::collections::HashSet::new();
        for key in all {
            assert!(
                seen.insert(key.clone()),
                "key `{key}` is not unique across sections"
            );
            let var = env_var_name(&key);
            assert!(
                DEFAULT_CONFIG_TOML.contains(&var),
                "config.toml does not name {var} for `{key}`"
            );
        }
    }

    #[test]
    fn tls_needs_both_files() {
        let err = Config::load_with_env(&Overrides::default(), |k| {
            (k == "HEARTH_CERT").then(|| "/etc/cert.pem".to_string())
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("tls.key"), "{err}");
    }

    #[test]
    fn every_problem_is_named_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "[limits]\nsend_brust = 7\nsignup_brust = 1\n").unwrap();
        let err = check_file(&file).unwrap_err().to_string();
        assert!(
            err.contains("limits.send_brust") && err.contains("limits.signup_brust"),
            "{err}"
        );
        std::fs::write(&file, "log_format = \"xml\"\n[storage]\ncache_mb = 0\n").unwrap();
        let err = check_file(&file).unwrap_err().to_string();
        assert!(err.starts_with("2 problems"), "{err}");
        assert!(
            err.contains("log_format") && err.contains("storage.cache_mb"),
            "{err}"
        );
    }

    #[test]
    fn bad_env_value_is_named() {
        let err = Config::load_with_env(&Overrides::default(), |k| {
            (k == "HEARTH_SEND_BURST").then(|| "lots".to_string())
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("HEARTH_SEND_BURST"), "{err}");
    }
}

#[cfg(test)]
mod proptests {
    //! Configuration comes from people and their tools: any file text and
    //! any environment value must give a checked `Config` or an error that
    //! names the problem, never a panic, and an accepted one is valid.

    use proptest::prelude::*;

    use super::*;

    /// Every key of the defaults with its section (`None` for top level).
    fn known_keys() -> Vec<(Option<String>, String)> {
        let defaults = parse_table(DEFAULT_CONFIG_TOML, "defaults").expect("defaults parse");
        let mut out = Vec::new();
        for (k, v) in &defaults {
            match v {
                toml::Value::Table(t) => {
                    out.extend(t.keys().map(|sub| (Some(k.clone()), sub.clone())));
                }
                _ => out.push((None, k.clone())),
            }
        }
        out
    }

    /// A TOML value of any type, some of them plausible for any key.
    fn any_value() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            (0u64..100_000).prop_map(|n| n.to_string()),
            Just("0".to_string()),
            any::<bool>().prop_map(|b| b.to_string()),
            any::<f64>().prop_map(|f| format!("{f:?}")),
            "[a-z0-9.:/ \"]{0,24}".prop_map(|s| format!("{s:?}")),
            Just("\"127.0.0.1:0\"".to_string()),
            Just("\"strict\"".to_string()),
            Just("[\"http://a.example\", 1]".to_string()),
            Just("{ x = 1 }".to_string()),
            "[^\n]{0,16}",
        ]
    }

    /// Lines of TOML-ish text: real sections and keys mostly, some made up.
    fn tomlish() -> impl Strategy<Value = String> {
        let keys = known_keys();
        let line = (
            any::<prop::sample::Index>(),
            any_value(),
            "[a-z_\\[\\]]{0,12}",
            0u8..10,
        )
            .prop_map(move |(i, value, junk, kind)| {
                let (section, key) = &keys[i.index(keys.len())];
                match kind {
                    0 => format!("[{}]", section.as_deref().unwrap_or("http")),
                    1 => format!("[{junk}]"),
                    2 => format!("{junk} = {value}"),
                    3 => junk,
                    _ => match section {
                        Some(s) if kind % 2 == 0 => format!("[{s}]\n{key} = {value}"),
                        Some(s) => format!("{s}.{key} = {value}"),
                        None => format!("{key} = {value}"),
                    },
                }
            });
        prop::collection::vec(line, 0..12).prop_map(|lines| lines.join("\n"))
    }

    /// Loads `text` as a config file with `env`, the way `serve` would.
    fn load(text: &str, env: &[(String, String)]) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("hearth.toml");
        std::fs::write(&file, text).expect("write");
        let overrides = Overrides {
            config_file: Some(file),
            ..Overrides::default()
        };
        Config::load_with_env(&overrides, |name| {
            env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
    }

    fn check_invariants(c: &Config) -> Result<(), TestCaseError> {
        prop_assert!(c.websocket.idle_timeout > c.websocket.ping_interval);
        prop_assert!(c.http.max_connections > 0 && c.http.max_connections_per_ip > 0);
        prop_assert!(c.http.max_body_bytes > 0 && c.websocket.max_message_bytes > 0);
        prop_assert!(!c.http.header_read_timeout.is_zero());
        prop_assert!(!c.http.body_read_timeout.is_zero());
        prop_assert!(c.limits.send_per_sec > 0 && c.limits.hash_concurrency > 0);
        prop_assert!(c.storage.group_commit_max > 0 && c.storage.cache_bytes > 0);
        Ok(())
    }

    proptest! {
        #[test]
        fn any_text_loads_or_names_the_problem(text in "(?s).{0,300}") {
            match load(&text, &[]) {
                Ok(c) => check_invariants(&c)?,
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
        }

        #[test]
        fn tomlish_files_load_or_name_the_problem(text in tomlish()) {
            match load(&text, &[]) {
                Ok(c) => check_invariants(&c)?,
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
        }

        #[test]
        fn any_environment_values_load_or_name_the_variable(
            values in prop::collection::vec((any::<prop::sample::Index>(), "[^\u{0}]{0,20}"), 1..6),
        ) {
            let keys = known_keys();
            let env: Vec<(String, String)> = values
                .into_iter()
                .map(|(i, v)| (env_var_name(&keys[i.index(keys.len())].1), v))
                .collect();
            match load("", &env) {
                Ok(c) => check_invariants(&c)?,
                Err(e) => {
                    let text = e.to_string();
                    prop_assert!(!text.is_empty());
                    if let ConfigError::Env { var, .. } = &e {
                        prop_assert!(env.iter().any(|(k, _)| k == var), "{text}");
                    }
                }
            }
        }
    }

    /// Every whole-number setting at the largest value TOML can hold: an
    /// error naming the key is fine, a panic is not.
    #[test]
    fn huge_numbers_in_every_setting_are_refused_not_panicking() {
        let defaults = parse_table(DEFAULT_CONFIG_TOML, "defaults").expect("defaults parse");
        let mut integer_keys = Vec::new();
        for (k, v) in &defaults {
            match v {
                toml::Value::Table(t) => integer_keys.extend(
                    t.iter()
                        .filter(|(_, v)| v.is_integer())
                        .map(|(k, _)| k.clone()),
                ),
                toml::Value::Integer(_) => integer_keys.push(k.clone()),
                _ => {}
            }
        }
        let mut panicked = Vec::new();
        for key in integer_keys {
            let var = env_var_name(&key);
            let outcome = std::panic::catch_unwind(|| {
                Config::load_with_env(&Overrides::default(), |name| {
                    (name == var).then(|| i64::MAX.to_string())
                })
                .map(|_| ())
            });
            if outcome.is_err() {
                panicked.push(var);
            }
        }
        assert!(panicked.is_empty(), "loading panicked for {panicked:?}");
    }
}
