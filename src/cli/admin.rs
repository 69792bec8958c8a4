//! The admin subcommands. Each builds an [`admin::Request`], has it run by
//! the server on the data directory (over its admin socket) or, when none
//! runs, by this process on the directory itself, and prints the
//! [`admin::Reply`] the same way in both cases.

use std::io::BufRead;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use tokio_util::sync::CancellationToken;

use super::instance::InstanceArgs;
use crate::admin::socket::{self, Answer, Sent};
use crate::admin::{self, Reply, Request};
use crate::config::{Config, Overrides};

/// Options every admin command shares.
#[derive(Debug, Args)]
pub struct Common {
    #[command(flatten)]
    pub instance: InstanceArgs,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct UserArgs {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: UserCommand,
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create an account. The first account is always an administrator.
    ///
    /// Without --password-stdin a random password is made and printed once.
    Add {
        username: String,
        #[arg(long)]
        email: String,
        /// Make the account an administrator.
        #[arg(long)]
        admin: bool,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List accounts (deleted ones are left out).
    List,
    /// Show one account: standing, sessions, rooms.
    Show {
        /// Username, email or user id.
        user: String,
    },
    /// Set a new password and end the account's sessions.
    ///
    /// Without --password-stdin a random password is made and printed once.
    Passwd {
        user: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Disable an account: it cannot log in, and its sessions and open
    /// connections end at once.
    Disable { user: String },
    /// Let a disabled account log in again.
    Enable { user: String },
    /// Delete an account: name and email are released, sessions end,
    /// messages stay (shown as from a deleted user).
    Delete { user: String },
    /// End every session of an account (every device logs out).
    RevokeSessions { user: String },
    /// Remove an account's avatar (a picture that should not be shown);
    /// everyone connected sees it go at once.
    RemoveAvatar { user: String },
    /// Make an account an administrator, or with --off no longer one.
    Admin {
        user: String,
        #[arg(long)]
        off: bool,
    },
    /// Make a one-time link that lets the account's owner set a password
    /// (an imported account has none). Printed once; it works once.
    ResetLink {
        user: String,
        /// How long the link is valid, e.g. 24h or 7d.
        #[arg(long, value_parser = humantime::parse_duration, default_value = "24h")]
        expires: Duration,
        /// The server's public address, for the link (e.g.
        /// https://chat.example.com); `listen` by default.
        #[arg(long)]
        url: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct RegistrationArgs {
    #[command(flatten)]
    common: Common,
    /// open, invite or closed; `default` goes back to the config's
    /// `registration`. Without it, shows the mode in force and its source.
    mode: Option<String>,
}

#[derive(Debug, Args)]
pub struct BotArgs {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: BotCommand,
}

#[derive(Debug, Subcommand)]
enum BotCommand {
    /// Make a bot account and print its token (shown once). Room owners
    /// then add the bot to rooms like anyone else.
    Create { username: String },
    /// List bot accounts.
    List,
    /// Replace a bot's token: the old one stops working at once. Prints
    /// the new one (shown once).
    Token {
        /// The bot's username or id.
        bot: String,
    },
    /// Show a bot, its callback and whether its deliveries are parked.
    Show { bot: String },
    /// Set where the bot's messages are POSTed (an outgoing webhook):
    /// those that mention it, or with --all every message in its rooms.
    /// The URL must be under a `webhook_allow` prefix. Prints the signing
    /// secret (shown once). Setting it again resumes parked deliveries.
    Callback {
        bot: String,
        /// The receiver's URL.
        #[arg(required_unless_present = "off")]
        url: Option<String>,
        /// Every message in the bot's rooms, not only mentions.
        #[arg(long)]
        all: bool,
        /// Remove the callback: deliveries stop.
        #[arg(long, conflicts_with = "url")]
        off: bool,
    },
}

#[derive(Debug, Args)]
pub struct RoomArgs {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: RoomCommand,
}

#[derive(Debug, Subcommand)]
enum RoomCommand {
    /// List rooms with their member and message counts.
    List,
    /// Show one room and its members.
    Show {
        /// Room name or id.
        room: String,
    },
    /// Rename a room.
    Rename { room: String, new_name: String },
    /// Delete a room with all its messages; its members are told they left.
    Delete { room: String },
    /// Delete one message (it stays in the log as a tombstone, so no
    /// client's resume is disturbed).
    DeleteMessage { room: String, seq: u64 },
}

#[derive(Debug, Args)]
pub struct InviteArgs {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: InviteCommand,
}

#[derive(Debug, Subcommand)]
enum InviteCommand {
    /// Make a code; people sign up with it as the `invite` field. The code
    /// is printed once and cannot be shown again.
    Create {
        /// How many signups the code allows.
        #[arg(long, default_value_t = 1)]
        uses: u32,
        /// How long it is valid, e.g. 7d or 12h; forever without it.
        #[arg(long, value_parser = humantime::parse_duration)]
        expires: Option<Duration>,
        /// A note to tell codes apart (who it was for).
        #[arg(long, default_value = "")]
        note: String,
    },
    /// List invites: id, uses left, expiry, note (never the codes).
    List,
    /// Revoke an invite by (the start of) its id from `invite list`.
    Revoke { id: String },
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Args)]
pub struct IndexArgs {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: IndexCommand,
}

#[derive(Debug, Subcommand)]
enum IndexCommand {
    /// Empty the search index and index every message again from the
    /// room logs (searches meanwhile see a partial index).
    Rebuild,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    #[command(flatten)]
    common: Common,
    /// The backup file to create (it must not exist yet).
    file: PathBuf,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    common: Common,
    /// A file written by `hearth backup`.
    file: PathBuf,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    common: Common,
    /// The export file to create (JSON Lines; it must not exist yet).
    file: PathBuf,
    /// Export only this room (a name or an id); repeat for several. Only
    /// the accounts these rooms name are exported with them.
    #[arg(long = "room", value_name = "ROOM")]
    rooms: Vec<String>,
    /// Also write the files messages carry into DIR, one per content hash.
    #[arg(long, value_name = "DIR")]
    with_files: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    common: Common,
    /// A file written by `hearth export` (or, with --slack, Slack's
    /// workspace export, a zip).
    file: PathBuf,
    /// The file is a Slack workspace export (users.json, channels.json and
    /// a folder of daily JSON files per channel, zipped).
    #[arg(long)]
    slack: bool,
    /// The directory the export wrote its files to (`hearth export
    /// --with-files DIR`): messages get their files back. Without it, files
    /// are counted as skipped.
    #[arg(long, value_name = "DIR")]
    files: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum CertCommand {
    /// Write a self-signed certificate and key (cert.pem, key.pem) for
    /// local use and tests; browsers will warn about it.
    SelfSigned {
        /// Host name (or IP) the certificate is for; repeat for several.
        #[arg(long = "host", required = true)]
        hosts: Vec<String>,
        /// Directory to write cert.pem and key.pem into.
        #[arg(long)]
        out: PathBuf,
    },
}

pub fn user(args: UserArgs) -> anyhow::Result<()> {
    let request = match args.command {
        UserCommand::Add {
            username,
            email,
            admin,
            password_stdin,
        } => {
            let (password, made) = password(password_stdin)?;
            let reply = run(
                &args.common,
                false,
                Request::UserAdd {
                    username,
                    email,
                    password,
                    admin,
                },
            )?;
            print(&reply, args.common.json);
            if let Some(p) = made {
                eprintln!("Password (shown once): {p}");
            }
            return Ok(());
        }
        UserCommand::Passwd {
            user,
            password_stdin,
        } => {
            let (password, made) = password(password_stdin)?;
            let reply = run(&args.common, true, Request::UserPasswd { user, password })?;
            print(&reply, args.common.json);
            if let Some(p) = made {
                eprintln!("Password (shown once): {p}");
            }
            return Ok(());
        }
        UserCommand::List => Request::UserList,
        UserCommand::Show { user } => Request::UserShow { user },
        UserCommand::Disable { user } => Request::UserDisable { user },
        UserCommand::Enable { user } => Request::UserEnable { user },
        UserCommand::Delete { user } => Request::UserDelete { user },
        UserCommand::RevokeSessions { user } => Request::UserRevokeSessions { user },
        UserCommand::RemoveAvatar { user } => Request::UserRemoveAvatar { user },
        UserCommand::Admin { user, off } => Request::UserAdmin { user, admin: !off },
        UserCommand::ResetLink { user, expires, url } => {
            let base = match url {
                Some(u) => u.trim_end_matches('/').to_string(),
                None => format!("http://{}", load(&args.common.instance)?.listen),
            };
            let request = Request::UserResetLink {
                user,
                valid_for_secs: expires.as_secs(),
            };
            let reply = run(&args.common, true, request)?;
            let Reply::ResetCode {
                user,
                code,
                expires_at,
            } = reply
            else {
                print(&reply, args.common.json);
                return Ok(());
            };
            // The code rides in the fragment: browsers never send it to
            // the server, so no access log holds it.
            let link = format!("{base}/#reset={code}");
            if args.common.json {
                println!(
                    "{}",
                    serde_json::json!({"user": user, "code": code, "link": link, "expires_at": expires_at})
                );
            } else {
                println!(
                    "Password-reset link for {} (works once, until {expires_at}):",
                    user.username
                );
                println!("{link}");
                println!("Or: POST /api/v1/password-reset {{\"code\": \"{code}\", \"password\": \"...\"}}");
            }
            return Ok(());
        }
    };
    print(&run(&args.common, true, request)?, args.common.json);
    Ok(())
}

pub fn room(args: RoomArgs) -> anyhow::Result<()> {
    let request = match args.command {
        RoomCommand::List => Request::RoomList,
        RoomCommand::Show { room } => Request::RoomShow { room },
        RoomCommand::Rename { room, new_name } => Request::RoomRename {
            room,
            name: new_name,
        },
        RoomCommand::Delete { room } => Request::RoomDelete { room },
        RoomCommand::DeleteMessage { room, seq } => Request::MessageDelete { room, seq },
    };
    print(&run(&args.common, true, request)?, args.common.json);
    Ok(())
}

pub fn invite(args: InviteArgs) -> anyhow::Result<()> {
    let (request, existing) = match args.command {
        InviteCommand::Create {
            uses,
            expires,
            note,
        } => {
            let valid_for_secs = expires.map(|d| d.as_secs().max(1));
            let create = Request::InviteCreate {
                uses,
                valid_for_secs,
                note,
            };
            // Invites may be made before the first start, to let the
            // first person in.
            (create, false)
        }
        InviteCommand::List => (Request::InviteList, true),
        InviteCommand::Revoke { id } => (Request::InviteRevoke { id }, true),
    };
    print(&run(&args.common, existing, request)?, args.common.json);
    Ok(())
}

pub fn bot(args: BotArgs) -> anyhow::Result<()> {
    let request = match args.command {
        BotCommand::Create { username } => Request::BotCreate { username },
        BotCommand::List => Request::BotList,
        BotCommand::Token { bot } => Request::BotToken { bot },
        BotCommand::Show { bot } => Request::BotShow { bot },
        BotCommand::Callback { bot, url, all, off } => Request::BotCallback {
            bot,
            url: if off { None } else { url },
            all,
        },
    };
    print(&run(&args.common, true, request)?, args.common.json);
    Ok(())
}

pub fn registration(args: RegistrationArgs) -> anyhow::Result<()> {
    let request = match args.mode {
        None => Request::Registration,
        Some(m) if m == "default" => Request::RegistrationSet { mode: None },
        Some(m) => Request::RegistrationSet { mode: Some(m) },
    };
    let reply = run(&args.common, true, request)?;
    print(&reply, args.common.json);
    Ok(())
}

pub fn stats(args: StatsArgs) -> anyhow::Result<()> {
    print(&run(&args.common, true, Request::Stats)?, args.common.json);
    Ok(())
}

pub fn verify(args: VerifyArgs) -> anyhow::Result<()> {
    let reply = run(&args.common, true, Request::Verify)?;
    print(&reply, args.common.json);
    match reply {
        Reply::Verify { report } if !report.ok() => {
            bail!("the store is damaged: {} problem(s)", report.problems.len())
        }
        _ => Ok(()),
    }
}

pub fn index(args: IndexArgs) -> anyhow::Result<()> {
    let request = match args.command {
        IndexCommand::Rebuild => Request::IndexRebuild,
    };
    print(&run(&args.common, true, request)?, args.common.json);
    Ok(())
}

pub fn backup(args: BackupArgs) -> anyhow::Result<()> {
    let path = std::path::absolute(&args.file)
        .with_context(|| format!("cannot resolve {}", args.file.display()))?;
    print(
        &run(&args.common, true, Request::Backup { path })?,
        args.common.json,
    );
    Ok(())
}

pub fn export(args: ExportArgs) -> anyhow::Result<()> {
    let absolute = |p: &PathBuf| {
        std::path::absolute(p).with_context(|| format!("cannot resolve {}", p.display()))
    };
    let request = Request::Export {
        path: absolute(&args.file)?,
        rooms: args.rooms,
        with_files: args.with_files.as_ref().map(absolute).transpose()?,
    };
    print(&run(&args.common, true, request)?, args.common.json);
    Ok(())
}

pub fn import(args: ImportArgs) -> anyhow::Result<()> {
    let path = std::path::absolute(&args.file)
        .with_context(|| format!("cannot resolve {}", args.file.display()))?;
    let files = args
        .files
        .as_ref()
        .map(|d| std::path::absolute(d).with_context(|| format!("cannot resolve {}", d.display())))
        .transpose()?;
    let request = Request::Import {
        path,
        slack: args.slack,
        files,
    };
    print(&run(&args.common, false, request)?, args.common.json);
    Ok(())
}

pub fn restore(args: RestoreArgs) -> anyhow::Result<()> {
    let Some(data) = args.common.instance.data.clone() else {
        bail!("give the new data directory with --data DIR");
    };
    let config = load(&args.common.instance)?;
    let (store, summary) =
        crate::storage::Store::restore_from(&args.file, &data, config.storage.cache_bytes)?;
    let report = store.verify()?;
    if args.common.json {
        println!(
            "{}",
            serde_json::json!({"restored": summary, "verify": report})
        );
    } else {
        println!(
            "Restored {} users, {} rooms, {} messages, {} avatars, {} files into {}.",
            summary.users,
            summary.rooms,
            summary.events,
            summary.avatars,
            summary.files,
            data.display()
        );
        print_report(&report);
    }
    if !report.ok() {
        bail!("the restored store does not verify");
    }
    Ok(())
}

pub fn cert(command: CertCommand) -> anyhow::Result<()> {
    let CertCommand::SelfSigned { hosts, out } = command;
    let (cert, key) = crate::tls::self_signed(hosts, &out)?;
    println!("Wrote {} and {}.", cert.display(), key.display());
    println!(
        "Serve with: HEARTH_CERT={} HEARTH_KEY={} hearth serve",
        cert.display(),
        key.display()
    );
    Ok(())
}

fn load(instance: &InstanceArgs) -> anyhow::Result<Config> {
    Ok(Config::load(&Overrides {
        config_file: instance.config.clone(),
        data: instance.data.clone(),
        ..Overrides::default()
    })?)
}

/// Runs `request` on the running server, or on the data directory when no
/// server runs. `existing` refuses to create a data directory that is not
/// there (a typo in --data should not look like an empty instance).
fn run(common: &Common, existing: bool, request: Request) -> anyhow::Result<Reply> {
    let config = load(&common.instance)?;
    if existing && !config.data.join("db").exists() {
        bail!(
            "{} holds no hearth data; check --data (or `data` in the config)",
            config.data.display()
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let sent = socket::send(&config.data, &request)
            .await
            .with_context(|| {
                format!(
                    "cannot talk to the server through {}",
                    socket::path(&config.data).display()
                )
            })?;
        match sent {
            Sent::Answered(Answer::Ok(reply)) => Ok(reply),
            Sent::Answered(Answer::Err(e)) => bail!("{e}"),
            Sent::NoServer => {
                let data = config.data.clone();
                let app = crate::open(config, CancellationToken::new()).with_context(|| {
                    format!(
                        "no server answers on {}, and the data directory cannot be opened",
                        socket::path(&data).display()
                    )
                })?;
                let result = admin::execute(&app.state, request).await;
                app.close().await?;
                Ok(result?)
            }
        }
    })
}

/// The password from stdin, or a new random one (returned twice, to print).
fn password(from_stdin: bool) -> anyhow::Result<(String, Option<String>)> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        let p = line.trim_end_matches(['\r', '\n']).to_string();
        return Ok((p, None));
    }
    let p = crate::auth::Token::generate().0[..20].to_string();
    Ok((p.clone(), Some(p)))
}

fn print(reply: &Reply, json: bool) {
    if json {
        let value = match reply {
            Reply::Users { users } => serde_json::to_value(users),
            Reply::User { user } => serde_json::to_value(user),
            Reply::Rooms { rooms } => serde_json::to_value(rooms),
            Reply::Room { room } => serde_json::to_value(room),
            Reply::Stats { stats } => serde_json::to_value(stats),
            Reply::Registration { setting } => serde_json::to_value(setting),
            Reply::Invites { invites } => serde_json::to_value(invites),
            Reply::Verify { report } => serde_json::to_value(report),
            Reply::IndexRebuilt { counts } => serde_json::to_value(counts),
            other => serde_json::to_value(other),
        };
        println!("{}", value.unwrap_or_default());
        return;
    }
    match reply {
        Reply::Users { users } => {
            println!("{:<36}  {:<24}  {:<32}  FLAGS", "ID", "USERNAME", "EMAIL");
            for u in users {
                println!(
                    "{:<36}  {:<24}  {:<32}  {}",
                    u.id.to_string(),
                    u.username,
                    u.email,
                    flags(u.admin, u.disabled)
                );
            }
        }
        Reply::User { user: u } => {
            println!("id:         {}", u.id);
            println!("username:   {}", u.username);
            println!("email:      {}", u.email);
            println!("created:    {}", u.created_at);
            println!("admin:      {}", u.admin);
            println!("disabled:   {}", u.disabled);
            if let Some(n) = u.sessions {
                println!("sessions:   {n}");
            }
            if let Some(rooms) = &u.rooms {
                println!("rooms:      {}", rooms.join(", "));
            }
        }
        Reply::Rooms { rooms } => {
            println!(
                "{:<36}  {:<32}  {:>7}  {:>9}",
                "ID", "NAME", "MEMBERS", "MESSAGES"
            );
            for r in rooms {
                println!(
                    "{:<36}  {:<32}  {:>7}  {:>9}",
                    r.id.to_string(),
                    r.name,
                    r.members,
                    r.last_seq.0
                );
            }
        }
        Reply::Room { room: r } => {
            println!("id:         {}", r.id);
            println!("name:       {}", r.name);
            println!("topic:      {}", r.topic);
            println!("created:    {} by {}", r.created_at, r.created_by);
            println!("messages:   {}", r.last_seq.0);
            println!("members:    {}", r.members);
            if let Some(names) = &r.member_names {
                println!("            {}", names.join(", "));
            }
        }
        Reply::Done { message } => println!("{message}"),
        Reply::Registration { setting: s } => {
            let source = match s.source {
                crate::actions::operator::RegistrationSource::Admin => "set by an administrator",
                crate::actions::operator::RegistrationSource::Config => "from the config",
            };
            println!("registration: {} ({source})", s.mode.as_str());
            println!("config:       {}", s.config.as_str());
        }
        Reply::Bot { user, callback } => {
            println!("bot:        {} ({})", user.username, user.id);
            match callback {
                None => println!("callback:   none"),
                Some(c) => {
                    let what = if c.all { "every message" } else { "mentions" };
                    println!("callback:   {} ({what})", c.url);
                    match &c.parked {
                        Some(why) => println!("state:      parked: {why}"),
                        None => println!("state:      delivering"),
                    }
                    if !c.secret.is_empty() {
                        println!("secret:     {}", c.secret);
                        println!("It is shown only now; check X-Hearth-Signature with it.");
                    }
                }
            }
        }
        Reply::BotToken { user, token } => {
            println!("bot:        {} ({})", user.username, user.id);
            println!("token:      {token}");
            println!("It is shown only now; use it as `Authorization: Bearer TOKEN`.");
        }
        Reply::Invite {
            code,
            uses,
            expires_at,
        } => {
            println!("{code}");
            eprintln!(
                "Invite code for {uses} signup(s), {}. It is shown only now.",
                expires_at
                    .as_deref()
                    .map_or("never expires".to_string(), |t| format!("valid until {t}"))
            );
        }
        Reply::Invites { invites } => {
            println!(
                "{:<12}  {:>4}  {:<24}  {:<24}  NOTE",
                "ID", "USES", "CREATED", "EXPIRES"
            );
            for i in invites {
                let uses = if i.spent {
                    "0".to_string()
                } else {
                    i.uses_left.to_string()
                };
                println!(
                    "{:<12}  {:>4}  {:<24}  {:<24}  {}",
                    &i.id[..12.min(i.id.len())],
                    uses,
                    i.created_at,
                    i.expires_at.as_deref().unwrap_or("never"),
                    i.note
                );
            }
        }
        Reply::Stats { stats: s } => {
            println!(
                "users:        {} ({} admin, {} disabled)",
                s.users, s.admins, s.disabled_users
            );
            println!("rooms:        {}", s.rooms);
            println!("messages:     {}", s.messages);
            println!("connections:  {}", s.connections);
            println!("disk:         {}", human_bytes(s.disk_bytes));
        }
        Reply::Verify { report } => print_report(report),
        Reply::IndexRebuilt { counts } => println!(
            "Search index rebuilt: {} documents for {} live messages.",
            counts.documents, counts.live_messages
        ),
        Reply::ResetCode {
            user,
            code,
            expires_at,
        } => println!(
            "Password-reset code for {} (works once, until {expires_at}): {code}",
            user.username
        ),
        Reply::Exported { path, summary } => println!(
            "Exported {} users, {} rooms, {} messages and {} edits, deletions and reactions to {}.",
            summary.users,
            summary.rooms,
            summary.messages,
            summary.changes,
            path.display()
        ),
        Reply::Imported { summary } => {
            println!(
                "Imported {} users, {} rooms, {} memberships and {} events ({} were already here).",
                summary.users_added,
                summary.rooms_added,
                summary.members_added,
                summary.events_added,
                summary.events_present
            );
            if summary.files_added > 0 {
                println!("{} attached files were stored again.", summary.files_added);
            }
            if summary.files_skipped > 0 {
                println!(
                    "{} attached files were not imported: they are not beside the export (give its --with-files directory with --files DIR).",
                    summary.files_skipped
                );
            }
            if summary.users_added > 0 {
                println!(
                    "Imported accounts have no password: give each a link from `hearth user reset-link USER`."
                );
            }
        }
        Reply::Backup { path, summary } => println!(
            "Backed up {} users, {} rooms, {} messages, {} avatars, {} files to {}.",
            summary.users,
            summary.rooms,
            summary.events,
            summary.avatars,
            summary.files,
            path.display()
        ),
    }
}

fn print_report(report: &crate::storage::verify::Report) {
    println!(
        "Checked {} users, {} sessions, {} rooms, {} memberships, {} messages, {} invites, {} avatars, {} files.",
        report.users,
        report.sessions,
        report.rooms,
        report.memberships,
        report.events,
        report.invites,
        report.avatars,
        report.files
    );
    if report.ok() {
        println!("OK: every invariant holds.");
    } else {
        println!("{} problem(s):", report.problems.len());
        for p in &report.problems {
            println!("  {p}");
        }
    }
}

fn flags(admin: bool, disabled: bool) -> String {
    let mut f = Vec::new();
    if admin {
        f.push("admin");
    }
    if disabled {
        f.push("disabled");
    }
    f.join(",")
}

fn human_bytes(n: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    if n as f64 >= MIB {
        format!("{:.1} MiB", n as f64 / MIB)
    } else {
        format!("{:.1} KiB", n as f64 / 1024.0)
    }
}
