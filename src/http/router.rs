//! Paths to handlers. A known path with a wrong method is 405, an unknown
//! API path 404; everything outside `/api/` is the web UI.

use std::net::SocketAddr;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request, Response};

use super::request::{error_response, Body, Ctx};
use super::{admin, api, assets, bots, files, ops, push, upgrade};
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Signup,
    Login,
    PasswordReset,
    Logout,
    Me,
    MyAvatar,
    Password,
    Sessions,
    Session,
    Email,
    Member,
    MemberRole,
    Bans,
    Ban,
    Dms,
    Users,
    Rooms,
    Room,
    Join,
    Leave,
    Members,
    Messages,
    Message,
    Edits,
    Reaction,
    Events,
    Read,
    Notifications,
    Hooks,
    Hook,
    HookPost,
    Bots,
    BotToken,
    BotCallback,
    Search,
    Uploads,
    File,
    FileThumb,
    PushKey,
    PushSubscriptions,
    UserDisable,
    UserEnable,
    Avatar,
    AdminUsers,
    AdminUser,
    AdminUserAdmin,
    AdminUserSessions,
    AdminResetLink,
    AdminInvites,
    AdminInvite,
    AdminRegistration,
    AdminRooms,
    AdminStats,
    Ws,
    Healthz,
    Readyz,
    Metrics,
}

/// Every path, with the route name logged for it.
const ROUTES: [(&str, Route); 57] = [
    ("/api/v1/signup", Route::Signup),
    ("/api/v1/login", Route::Login),
    ("/api/v1/password-reset", Route::PasswordReset),
    ("/api/v1/logout", Route::Logout),
    ("/api/v1/me", Route::Me),
    ("/api/v1/me/password", Route::Password),
    ("/api/v1/me/avatar", Route::MyAvatar),
    ("/api/v1/me/sessions", Route::Sessions),
    ("/api/v1/me/email", Route::Email),
    ("/api/v1/me/sessions/{id}", Route::Session),
    ("/api/v1/rooms", Route::Rooms),
    ("/api/v1/rooms/{id}", Route::Room),
    ("/api/v1/rooms/{id}/join", Route::Join),
    ("/api/v1/rooms/{id}/leave", Route::Leave),
    ("/api/v1/rooms/{id}/members", Route::Members),
    ("/api/v1/rooms/{id}/members/{user}", Route::Member),
    ("/api/v1/rooms/{id}/members/{user}/role", Route::MemberRole),
    ("/api/v1/rooms/{id}/bans", Route::Bans),
    ("/api/v1/rooms/{id}/bans/{user}", Route::Ban),
    ("/api/v1/dms", Route::Dms),
    ("/api/v1/users", Route::Users),
    ("/api/v1/rooms/{id}/messages", Route::Messages),
    ("/api/v1/rooms/{id}/messages/{seq}", Route::Message),
    ("/api/v1/rooms/{id}/messages/{seq}/edits", Route::Edits),
    (
        "/api/v1/rooms/{id}/messages/{seq}/reactions/{emoji}",
        Route::Reaction,
    ),
    ("/api/v1/rooms/{id}/events", Route::Events),
    ("/api/v1/rooms/{id}/read", Route::Read),
    ("/api/v1/rooms/{id}/notifications", Route::Notifications),
    ("/api/v1/rooms/{id}/hooks", Route::Hooks),
    ("/api/v1/rooms/{id}/hooks/{hook}", Route::Hook),
    ("/api/v1/hooks/{secret}", Route::HookPost),
    ("/api/v1/bots", Route::Bots),
    ("/api/v1/bots/{id}/token", Route::BotToken),
    ("/api/v1/bots/{id}/callback", Route::BotCallback),
    ("/api/v1/search", Route::Search),
    ("/api/v1/rooms/{id}/uploads", Route::Uploads),
    ("/api/v1/files/{id}", Route::File),
    ("/api/v1/files/{id}/thumb", Route::FileThumb),
    ("/api/v1/push/key", Route::PushKey),
    ("/api/v1/push/subscriptions", Route::PushSubscriptions),
    ("/api/v1/users/{id}/disable", Route::UserDisable),
    ("/api/v1/users/{id}/enable", Route::UserEnable),
    ("/api/v1/users/{id}/avatar", Route::Avatar),
    ("/api/v1/admin/users", Route::AdminUsers),
    ("/api/v1/admin/users/{id}", Route::AdminUser),
    ("/api/v1/admin/users/{id}/admin", Route::AdminUserAdmin),
    (
        "/api/v1/admin/users/{id}/sessions",
        Route::AdminUserSessions,
    ),
    ("/api/v1/admin/users/{id}/reset-link", Route::AdminResetLink),
    ("/api/v1/admin/invites", Route::AdminInvites),
    ("/api/v1/admin/invites/{id}", Route::AdminInvite),
    ("/api/v1/admin/registration", Route::AdminRegistration),
    ("/api/v1/admin/rooms", Route::AdminRooms),
    ("/api/v1/admin/stats", Route::AdminStats),
    ("/api/v1/ws", Route::Ws),
    ("/healthz", Route::Healthz),
    ("/readyz", Route::Readyz),
    ("/metrics", Route::Metrics),
];

/// What a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// The API, the WebSocket gateway and the web UI (and the operator
    /// endpoints, unless `metrics_listen` gives them a listener of their own).
    Public,
    /// Only `/healthz`, `/readyz` and `/metrics`: the `metrics_listen` listener.
    Operator,
}

pub struct Router {
    inner: matchit::Router<Route>,
    surface: Surface,
}

impl Router {
    pub fn new(surface: Surface) -> Router {
        let mut r = matchit::Router::new();
        for (path, route) in ROUTES {
            r.insert(path, route)
                .expect("the route table has no conflicting paths");
        }
        Router { inner: r, surface }
    }

    /// Runs the handler for `req`; returns the route's name for the log.
    pub async fn dispatch(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
        state: &Arc<AppState>,
    ) -> (&'static str, Response<Body>) {
        let path = req.uri().path().to_string();
        #[cfg(debug_assertions)]
        if path == "/api/v1/test/echo" {
            let ctx = Ctx::new(req, peer, state.clone());
            let resp = upgrade::echo(ctx).await;
            return (
                "/api/v1/test/echo",
                resp.unwrap_or_else(|e| error_response(&e)),
            );
        }
        let found = self.inner.at(&path).ok().filter(|f| {
            self.surface == Surface::Public
                || matches!(*f.value, Route::Healthz | Route::Readyz | Route::Metrics)
        });
        let Some(found) = found else {
            if path.starts_with("/api/") || self.surface == Surface::Operator {
                return ("unknown", error_response(&ApiError::NotFound));
            }
            return ("static", assets::serve(&req, state));
        };
        let route = *found.value;
        let id = found.params.get("id").map(str::to_string);
        let seq = found.params.get("seq").map(str::to_string);
        let emoji = found.params.get("emoji").map(str::to_string);
        let user = found.params.get("user").map(str::to_string);
        let hook = found.params.get("hook").map(str::to_string);
        let secret = found.params.get("secret").map(str::to_string);
        let ctx = Ctx::new(req, peer, state.clone());
        let method = ctx.method().clone();
        let result = match (route, method) {
            (Route::Signup, Method::POST) => api::signup(ctx).await,
            (Route::Login, Method::POST) => api::login(ctx).await,
            (Route::Logout, Method::POST) => api::logout(ctx).await,
            (Route::Me, Method::GET) => api::me(ctx).await,
            (Route::Me, Method::DELETE) => api::delete_me(ctx).await,
            (Route::Password, Method::POST) => api::change_password(ctx).await,
            (Route::Sessions, Method::GET) => api::list_sessions(ctx).await,
            (Route::Me, Method::PATCH) => api::update_me(ctx).await,
            (Route::Email, Method::POST) => api::change_email(ctx).await,
            (Route::MyAvatar, Method::PUT) => api::put_avatar(ctx).await,
            (Route::MyAvatar, Method::DELETE) => api::delete_avatar(ctx, None).await,
            (Route::Session, Method::DELETE) => api::end_session(ctx, id_of(&id)).await,
            (Route::Rooms, Method::GET) => api::list_rooms(ctx).await,
            (Route::Rooms, Method::POST) => api::create_room(ctx).await,
            (Route::Room, Method::GET) => api::get_room(ctx, id_of(&id)).await,
            (Route::Room, Method::DELETE) => api::delete_room(ctx, id_of(&id)).await,
            (Route::Join, Method::POST) => api::join_room(ctx, id_of(&id)).await,
            (Route::Leave, Method::POST) => api::leave_room(ctx, id_of(&id)).await,
            (Route::Members, Method::GET) => api::members(ctx, id_of(&id)).await,
            (Route::Members, Method::POST) => api::add_member(ctx, id_of(&id)).await,
            (Route::Member, Method::DELETE) => {
                api::remove_member(ctx, id_of(&id), id_of(&user)).await
            }
            (Route::MemberRole, Method::PUT) => api::set_role(ctx, id_of(&id), id_of(&user)).await,
            (Route::Bans, Method::GET) => api::list_bans(ctx, id_of(&id)).await,
            (Route::Bans, Method::POST) => api::ban(ctx, id_of(&id)).await,
            (Route::Ban, Method::DELETE) => api::unban(ctx, id_of(&id), id_of(&user)).await,
            (Route::Room, Method::PATCH) => api::update_room(ctx, id_of(&id)).await,
            (Route::Dms, Method::POST) => api::direct(ctx).await,
            (Route::Users, Method::GET) => api::search_users(ctx).await,
            (Route::Messages, Method::GET) => api::list_messages(ctx, id_of(&id)).await,
            (Route::Messages, Method::POST) => api::post_message(ctx, id_of(&id)).await,
            (Route::Message, Method::DELETE) => {
                api::delete_message(ctx, id_of(&id), id_of(&seq)).await
            }
            (Route::Message, Method::PATCH) => {
                api::edit_message(ctx, id_of(&id), id_of(&seq)).await
            }
            (Route::Edits, Method::GET) => api::list_edits(ctx, id_of(&id), id_of(&seq)).await,
            (Route::Reaction, Method::PUT) => {
                api::react(ctx, id_of(&id), id_of(&seq), id_of(&emoji), true).await
            }
            (Route::Reaction, Method::DELETE) => {
                api::react(ctx, id_of(&id), id_of(&seq), id_of(&emoji), false).await
            }
            (Route::Events, Method::GET) => api::list_events(ctx, id_of(&id)).await,
            (Route::Read, Method::POST) => api::mark_read(ctx, id_of(&id)).await,
            (Route::Notifications, Method::PUT) => api::set_notifications(ctx, id_of(&id)).await,
            (Route::Hooks, Method::POST) => bots::create_hook(ctx, id_of(&id)).await,
            (Route::Hooks, Method::GET) => bots::hooks(ctx, id_of(&id)).await,
            (Route::Hook, Method::DELETE) => bots::revoke_hook(ctx, id_of(&id), id_of(&hook)).await,
            (Route::HookPost, Method::POST) => bots::post(ctx, id_of(&secret)).await,
            (Route::Bots, Method::POST) => bots::create(ctx).await,
            (Route::Bots, Method::GET) => bots::list(ctx).await,
            (Route::BotToken, Method::POST) => bots::new_token(ctx, id_of(&id)).await,
            (Route::BotCallback, Method::PUT) => bots::set_callback(ctx, id_of(&id)).await,
            (Route::BotCallback, Method::GET) => bots::get_callback(ctx, id_of(&id)).await,
            (Route::BotCallback, Method::DELETE) => bots::clear_callback(ctx, id_of(&id)).await,
            (Route::Search, Method::GET) => api::search_messages(ctx).await,
            (Route::Uploads, Method::POST) => files::upload(ctx, id_of(&id)).await,
            (Route::File, Method::GET) => files::download(ctx, id_of(&id)).await,
            (Route::FileThumb, Method::GET) => files::thumb(ctx, id_of(&id)).await,
            (Route::PushKey, Method::GET) => push::key(ctx).await,
            (Route::PushSubscriptions, Method::POST) => push::subscribe(ctx).await,
            (Route::PushSubscriptions, Method::DELETE) => push::unsubscribe(ctx).await,
            (Route::UserDisable, Method::POST) => api::set_disabled(ctx, id_of(&id), true).await,
            (Route::UserEnable, Method::POST) => api::set_disabled(ctx, id_of(&id), false).await,
            (Route::Avatar, Method::GET) => api::get_avatar(ctx, id_of(&id)).await,
            (Route::Avatar, Method::DELETE) => api::delete_avatar(ctx, Some(id_of(&id))).await,
            (Route::AdminUsers, Method::GET) => admin::users(ctx).await,
            (Route::AdminUser, Method::DELETE) => admin::delete_user(ctx, id_of(&id)).await,
            (Route::AdminUserAdmin, Method::PUT) => admin::set_admin(ctx, id_of(&id)).await,
            (Route::AdminUserSessions, Method::DELETE) => {
                admin::revoke_sessions(ctx, id_of(&id)).await
            }
            (Route::AdminResetLink, Method::POST) => admin::reset_link(ctx, id_of(&id)).await,
            (Route::PasswordReset, Method::POST) => admin::redeem_reset_link(ctx).await,
            (Route::AdminInvites, Method::GET) => admin::invites(ctx).await,
            (Route::AdminInvites, Method::POST) => admin::create_invite(ctx).await,
            (Route::AdminInvite, Method::DELETE) => admin::revoke_invite(ctx, id_of(&id)).await,
            (Route::AdminRegistration, Method::GET) => admin::registration(ctx).await,
            (Route::AdminRegistration, Method::PUT) => admin::set_registration(ctx).await,
            (Route::AdminRooms, Method::GET) => admin::rooms(ctx).await,
            (Route::AdminStats, Method::GET) => admin::stats(ctx).await,
            (Route::Ws, Method::GET) => upgrade::chat(ctx).await,
            (Route::Healthz, Method::GET) => Ok(ops::healthz()),
            (Route::Readyz, Method::GET) => Ok(ops::readyz(state)),
            // With `metrics_listen` set, metrics are only served there.
            (Route::Metrics, Method::GET)
                if self.surface == Surface::Operator || state.config.metrics_listen.is_none() =>
            {
                Ok(ops::metrics(state))
            }
            (Route::Metrics, _) => Err(ApiError::NotFound),
            _ => Err(ApiError::MethodNotAllowed),
        };
        let name = route_name(route);
        (name, result.unwrap_or_else(|e| error_response(&e)))
    }
}

fn id_of(id: &Option<String>) -> &str {
    id.as_deref().unwrap_or_default()
}

fn route_name(route: Route) -> &'static str {
    ROUTES
        .iter()
        .find(|(_, r)| *r == route)
        .map_or("unknown", |(path, _)| path)
}
