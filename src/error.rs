//! The one client-facing error type. Every error a client can see, over
//! HTTP, as a WebSocket `error` frame or from the admin socket, is a variant
//! here with a stable snake_case `code()`. Nothing here knows a transport:
//! HTTP picks its status (`http::request::status`), the WebSocket its frame.

use std::time::Duration;

use crate::storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("The username must be 3 to 32 characters of letters, digits, '_', '.' or '-'.")]
    InvalidUsername,
    #[error("That does not look like an email address.")]
    InvalidEmail,
    #[error("The password must be 8 to 1024 characters long.")]
    InvalidPassword,
    #[error("That username is taken; try another.")]
    UsernameTaken,
    #[error("An account with that email already exists; log in instead.")]
    EmailTaken,
    #[error("Wrong username, email or password.")]
    InvalidCredentials,
    #[error("Log in first: this needs a session token or cookie.")]
    Unauthenticated,
    #[error("Requests with cookies must come from this server's own pages (the Origin header is not allowed).")]
    BadOrigin,
    #[error("This account is disabled; ask an administrator.")]
    AccountDisabled,
    #[error("New accounts are not being accepted here.")]
    RegistrationClosed,
    #[error("Signing up here needs an invite code; the one given is missing, unknown, used up or expired. Ask an administrator for one.")]
    InvalidInvite,
    #[error("Only an administrator may do that.")]
    NotAnAdmin,
    #[error("This password reset link is unknown, already used or expired; ask an administrator for a new one.")]
    InvalidResetLink,
    #[error("No such message.")]
    MessageNotFound,
    #[error("Only the author may edit a message.")]
    NotTheAuthor,
    #[error("That message was deleted.")]
    MessageDeleted,
    #[error("You may not do that here.")]
    Forbidden,
    #[error("A reaction is one emoji of at most 32 bytes.")]
    InvalidEmoji,
    #[error("A message can carry at most 20 different reactions.")]
    TooManyReactions,
    #[error("reply_to must be the seq of a message in the same room.")]
    InvalidReply,
    #[error("No such room.")]
    RoomNotFound,
    #[error("No such user.")]
    UserNotFound,
    #[error("No such session of yours.")]
    SessionNotFound,
    #[error("No such webhook: the URL is wrong, or the hook was revoked.")]
    HookNotFound,
    #[error("A room can have at most 20 webhooks; revoke one first.")]
    TooManyHooks,
    #[error("The callback URL must be under one of the server's webhook_allow prefixes (set by the operator).")]
    InvalidCallback,
    #[error("A push endpoint must be an https URL (the push service's, as the browser gave it).")]
    InvalidPushEndpoint,
    #[error(
        "keys.p256dh must be a P-256 public key (65 bytes) and keys.auth 16 bytes, both base64url."
    )]
    InvalidPushKeys,
    #[error("A push subscription's endpoint is at most 1024 bytes, and its keys at most 128 characters each.")]
    PushSubscriptionTooLarge,
    #[error("You have too many push subscriptions; remove one (or log out elsewhere) first.")]
    TooManyPushSubscriptions,
    #[error("A direct room keeps the people it was started with: it cannot be joined, left or added to.")]
    DirectRoom,
    #[error("A direct room is with 1 to 8 other active accounts.")]
    InvalidDirect,
    #[error("You are banned from that room.")]
    Banned,
    #[error(
        "A display name is 1 to 64 characters; about is at most 256, without control characters."
    )]
    InvalidProfile,
    #[error("That image cannot be an avatar: {0}.")]
    InvalidImage(&'static str),
    #[error("This user has no avatar.")]
    AvatarNotFound,
    #[error("An attachment must be a file you uploaded to this room that still exists (its id from POST …/uploads).")]
    InvalidFile,
    #[error("A message can carry at most {0} files.")]
    TooManyFiles(usize),
    #[error("Your uploads use up your quota of {0} MiB; delete messages with files to make room.")]
    QuotaExceeded(u64),
    #[error("No such file.")]
    FileNotFound,
    #[error("The requested range is not within the file.")]
    RangeNotSatisfiable,
    #[error("Room names must be 1 to 64 characters.")]
    InvalidRoomName,
    #[error("Room topics may be at most 256 characters.")]
    InvalidTopic,
    #[error("A room with that name already exists.")]
    RoomNameTaken,
    #[error("Join the room first.")]
    NotAMember,
    #[error("A message must be 1 to 4000 characters.")]
    InvalidBody,
    #[error("client_id must be 1 to 64 characters.")]
    InvalidClientId,
    #[error("{0}")]
    InvalidRequest(String),
    /// A search query that is empty, too long, malformed or too big.
    #[error("{0}")]
    InvalidQuery(String),
    #[error("The cursor is not one this search returned; start again without it.")]
    InvalidCursor,
    #[error("The request body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("The request body is larger than {0} bytes.")]
    PayloadTooLarge(usize),
    #[error("The request body took too long to arrive.")]
    RequestTimeout,
    #[error("Too many requests; wait {} s and try again.", whole_seconds_up(*.retry_after))]
    RateLimited { retry_after: Duration },
    #[error("The server is busy; try again shortly.")]
    Busy,
    #[error("Search is turned off on this server.")]
    SearchDisabled,
    #[error("No such endpoint.")]
    NotFound,
    #[error("This endpoint does not accept that method.")]
    MethodNotAllowed,
    #[error("The message could not be stored; it was not sent. Try again.")]
    StorageFailed,
    /// A storage error behind an operation: the client sees
    /// `storage_failed`; the cause is logged where the error is answered.
    #[error("The server could not store that; nothing was changed. Try again.")]
    Storage(#[source] StorageError),
    #[error("The frame was not understood: {0}.")]
    InvalidFrame(String),
    #[error("Unknown frame type {0:?}; see docs/protocol.md for the frames a client may send.")]
    UnknownType(String),
    #[error("Send a hello before anything else.")]
    HelloFirst,
    #[error("This connection already said hello.")]
    AlreadyGreeted,
    #[error("The server is shutting down; reconnect shortly.")]
    ShuttingDown,
    #[error("Something went wrong on the server.")]
    Internal,
}

impl ApiError {
    /// The stable machine-readable code clients match on.
    pub fn code(&self) -> &'static str {
        use ApiError::*;
        match self {
            InvalidUsername => "invalid_username",
            InvalidEmail => "invalid_email",
            InvalidPassword => "invalid_password",
            UsernameTaken => "username_taken",
            EmailTaken => "email_taken",
            InvalidCredentials => "invalid_credentials",
            Unauthenticated => "unauthenticated",
            BadOrigin => "bad_origin",
            AccountDisabled => "account_disabled",
            RegistrationClosed => "registration_closed",
            InvalidInvite => "invalid_invite",
            NotAnAdmin => "not_an_admin",
            InvalidResetLink => "invalid_reset_link",
            MessageNotFound => "message_not_found",
            NotTheAuthor => "not_the_author",
            MessageDeleted => "message_deleted",
            Forbidden => "forbidden",
            InvalidEmoji => "invalid_emoji",
            TooManyReactions => "too_many_reactions",
            InvalidReply => "invalid_reply",
            RoomNotFound => "room_not_found",
            UserNotFound => "user_not_found",
            HookNotFound => "hook_not_found",
            TooManyHooks => "too_many_hooks",
            InvalidCallback => "invalid_callback",
            SessionNotFound => "session_not_found",
            InvalidPushEndpoint => "invalid_push_endpoint",
            InvalidPushKeys => "invalid_push_keys",
            PushSubscriptionTooLarge => "push_subscription_too_large",
            TooManyPushSubscriptions => "too_many_push_subscriptions",
            DirectRoom => "direct_room",
            InvalidDirect => "invalid_direct",
            Banned => "banned",
            InvalidProfile => "invalid_profile",
            InvalidImage(_) => "invalid_image",
            AvatarNotFound => "avatar_not_found",
            InvalidFile => "invalid_file",
            TooManyFiles(_) => "too_many_files",
            QuotaExceeded(_) => "quota_exceeded",
            FileNotFound => "file_not_found",
            RangeNotSatisfiable => "range_not_satisfiable",
            InvalidRoomName => "invalid_room_name",
            InvalidTopic => "invalid_topic",
            RoomNameTaken => "room_name_taken",
            NotAMember => "not_a_member",
            InvalidBody => "invalid_body",
            InvalidClientId => "invalid_client_id",
            InvalidRequest(_) => "invalid_request",
            InvalidQuery(_) => "invalid_query",
            InvalidCursor => "invalid_cursor",
            InvalidJson(_) => "invalid_json",
            PayloadTooLarge(_) => "payload_too_large",
            RequestTimeout => "request_timeout",
            RateLimited { .. } => "rate_limited",
            Busy => "busy",
            SearchDisabled => "search_disabled",
            NotFound => "not_found",
            MethodNotAllowed => "method_not_allowed",
            StorageFailed | Storage(_) => "storage_failed",
            InvalidFrame(_) => "invalid_frame",
            UnknownType(_) => "unknown_type",
            HelloFirst => "hello_first",
            AlreadyGreeted => "already_greeted",
            ShuttingDown => "shutting_down",
            Internal => "internal",
        }
    }

    /// Seconds to put in `Retry-After`, where the client should wait.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::RateLimited { retry_after } => Some(whole_seconds_up(*retry_after)),
            ApiError::Busy
            | ApiError::ShuttingDown
            | ApiError::StorageFailed
            | ApiError::Storage(_) => Some(1),
            _ => None,
        }
    }

    /// `{"error":{"code","message"}}`, the body of every HTTP error.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({"error": {"code": self.code(), "message": self.to_string()}})
    }

    /// Logs an error that is the server's fault, not the client's; each
    /// transport calls this once, where it answers the client.
    pub fn log_if_ours(&self) {
        match self {
            ApiError::Storage(e) => tracing::error!(error = %e, "Storage failed."),
            ApiError::Internal => tracing::error!("Internal error answered."),
            _ => {}
        }
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        ApiError::Storage(e)
    }
}

/// A wait in whole seconds, rounded up (and at least 1), so a client that
/// waits exactly `Retry-After` is never refused again.
fn whole_seconds_up(d: Duration) -> u64 {
    (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
}
