//! The JSON API of Web Push (see [`crate::actions::push`]): the server's
//! public key, and a browser's subscription.

use hyper::StatusCode;
use serde::Deserialize;
use serde_json::json;

use super::api::Handled;
use super::request::{empty_response, json_response, Ctx};
use crate::actions::push::{self, Subscription};

#[derive(Deserialize)]
struct SubscribeBody {
    endpoint: String,
    keys: Keys,
}

#[derive(Deserialize)]
struct Keys {
    p256dh: String,
    auth: String,
}

#[derive(Deserialize)]
struct UnsubscribeBody {
    endpoint: String,
}

/// `GET /api/v1/push/key`: the VAPID public key browsers subscribe with.
pub async fn key(ctx: Ctx) -> Handled {
    Ok(json_response(
        StatusCode::OK,
        &json!({ "key": ctx.state.push.public_key() }),
    ))
}

/// `POST /api/v1/push/subscriptions`: 201 whether new or already known.
pub async fn subscribe(mut ctx: Ctx) -> Handled {
    let me = ctx.identity()?;
    let body: SubscribeBody = ctx.json().await?;
    let sub = Subscription {
        endpoint: &body.endpoint,
        p256dh: &body.keys.p256dh,
        auth: &body.keys.auth,
    };
    push::subscribe(&ctx.state, &me, sub).await?;
    Ok(json_response(
        StatusCode::CREATED,
        &json!({ "endpoint": body.endpoint }),
    ))
}

/// `DELETE /api/v1/push/subscriptions`: 204, known or not.
pub async fn unsubscribe(mut ctx: Ctx) -> Handled {
    let me = ctx.identity()?;
    let body: UnsubscribeBody = ctx.json().await?;
    push::unsubscribe(&ctx.state, &me, &body.endpoint).await?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}
