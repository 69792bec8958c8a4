//! Web Push subscriptions: a browser of a signed-in user subscribes, to be
//! told of messages while its user is away, and unsubscribes. A
//! subscription belongs to the session that made it and ends with it.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::auth::Identity;
use crate::error::ApiError;
use crate::ids::Millis;
use crate::push::crypto;
use crate::state::AppState;
use crate::storage::PushSubRecord;

/// The longest endpoint URL accepted, in bytes (push services use ~200-500).
pub const MAX_ENDPOINT_BYTES: usize = 1024;

/// The longest key text accepted (a p256dh key is 87 characters in base64url).
const MAX_KEY_CHARS: usize = 128;

/// A subscription as the browser's `PushSubscription.toJSON()` gives it.
pub struct Subscription<'a> {
    pub endpoint: &'a str,
    pub p256dh: &'a str,
    pub auth: &'a str,
}

/// Keeps the subscription (replacing one at the same endpoint, which
/// another session of the same user may have made); answers whether it is
/// new.
pub async fn subscribe(
    state: &AppState,
    me: &Identity,
    sub: Subscription<'_>,
) -> Result<bool, ApiError> {
    if sub.endpoint.len() > MAX_ENDPOINT_BYTES
        || sub.p256dh.len() > MAX_KEY_CHARS
        || sub.auth.len() > MAX_KEY_CHARS
    {
        return Err(ApiError::PushSubscriptionTooLarge);
    }
    check_endpoint(sub.endpoint, state.config.push.allow_insecure_loopback)?;
    let p256dh = base64url(sub.p256dh).ok_or(ApiError::InvalidPushKeys)?;
    let auth = base64url(sub.auth).ok_or(ApiError::InvalidPushKeys)?;
    if auth.len() != crypto::AUTH_LEN || !crypto::valid_public_key(&p256dh) {
        return Err(ApiError::InvalidPushKeys);
    }
    let existing = state.store.push_subs_of(me.user)?;
    let new = !existing.iter().any(|s| s.endpoint == sub.endpoint);
    if new && existing.len() >= state.config.push.max_subscriptions {
        return Err(ApiError::TooManyPushSubscriptions);
    }
    let record = PushSubRecord {
        endpoint: sub.endpoint.to_string(),
        p256dh,
        auth,
        session: *me.session.as_bytes(),
        created_at: Millis::now(),
    };
    state.store.put_push_sub(me.user, &record)?;
    state.store.flush_async().await?;
    state.push.subscribed(me.user);
    Ok(new)
}

/// Forgets the user's subscription at `endpoint`, if there is one.
pub async fn unsubscribe(state: &AppState, me: &Identity, endpoint: &str) -> Result<(), ApiError> {
    if state.store.remove_push_sub(me.user, endpoint)? {
        state.store.flush_async().await?;
    }
    Ok(())
}

/// An endpoint is an https URL with a host and no user part; `http` only
/// to a loopback host, and only when the operator allows it (tests).
fn check_endpoint(endpoint: &str, allow_loopback: bool) -> Result<(), ApiError> {
    let uri: hyper::Uri = endpoint
        .parse()
        .map_err(|_| ApiError::InvalidPushEndpoint)?;
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        return Err(ApiError::InvalidPushEndpoint);
    };
    if authority.as_str().contains('@') || authority.host().is_empty() {
        return Err(ApiError::InvalidPushEndpoint);
    }
    match scheme {
        "https" => Ok(()),
        "http" if allow_loopback && is_loopback(authority.host()) => Ok(()),
        _ => Err(ApiError::InvalidPushEndpoint),
    }
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Base64url, with or without padding (browsers send it without).
fn base64url(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_must_be_https_or_allowed_loopback() {
        assert!(check_endpoint("https://push.example.net/send/abc", false).is_ok());
        for bad in [
            "http://push.example.net/x",
            "http://127.0.0.1:9/x",
            "ftp://push.example.net/x",
            "https://user@push.example.net/x",
            "/relative",
            "not a url",
        ] {
            assert!(check_endpoint(bad, false).is_err(), "{bad}");
        }
        assert!(check_endpoint("http://127.0.0.1:9/x", true).is_ok());
        assert!(check_endpoint("http://[::1]:9/x", true).is_ok());
        assert!(check_endpoint("http://localhost:9/x", true).is_ok());
        assert!(check_endpoint("http://10.0.0.1:9/x", true).is_err());
    }
}
