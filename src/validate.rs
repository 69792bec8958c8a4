//! Input rules shared by the HTTP API and the WebSocket gateway.

use crate::error::ApiError;
use crate::ids::ClientId;

pub const PASSWORD_MIN: usize = 8;
pub const PASSWORD_MAX: usize = 1024;
pub const BODY_MAX: usize = 4000;
pub const ROOM_NAME_MAX: usize = 64;
pub const TOPIC_MAX: usize = 256;
pub const CLIENT_ID_MAX: usize = 64;

pub fn username(name: &str) -> Result<(), ApiError> {
    let ok = (3..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    ok.then_some(()).ok_or(ApiError::InvalidUsername)
}

/// Loose on purpose: one `@`, something on each side, a dot in the domain,
/// no spaces or controls. Deliverability is not ours to judge.
pub fn email(email: &str) -> Result<(), ApiError> {
    let ok = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && match email.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            }
            None => false,
        };
    ok.then_some(()).ok_or(ApiError::InvalidEmail)
}

pub fn password(password: &str) -> Result<(), ApiError> {
    let n = password.chars().count();
    (PASSWORD_MIN..=PASSWORD_MAX)
        .contains(&n)
        .then_some(())
        .ok_or(ApiError::InvalidPassword)
}

/// Trims the name; it must then be 1 to 64 characters with no control codes.
pub fn room_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    let n = name.chars().count();
    if n == 0 || n > ROOM_NAME_MAX || name.chars().any(char::is_control) {
        return Err(ApiError::InvalidRoomName);
    }
    Ok(name.to_string())
}

pub fn topic(topic: &str) -> Result<String, ApiError> {
    let topic = topic.trim();
    if topic.chars().count() > TOPIC_MAX || topic.chars().any(|c| c.is_control() && c != '\n') {
        return Err(ApiError::InvalidTopic);
    }
    Ok(topic.to_string())
}

/// 1 to 4000 characters, not only white space.
pub fn body(body: &str) -> Result<(), ApiError> {
    let ok = body.chars().count() <= BODY_MAX && !body.trim().is_empty();
    ok.then_some(()).ok_or(ApiError::InvalidBody)
}

/// 1 to 64 characters after trimming, no control codes.
pub fn display_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    let n = name.chars().count();
    if n == 0 || n > DISPLAY_NAME_MAX || name.chars().any(char::is_control) {
        return Err(ApiError::InvalidProfile);
    }
    Ok(name.to_string())
}

/// At most 256 characters, no control codes but newlines.
pub fn about(about: &str) -> Result<String, ApiError> {
    let ok =
        about.chars().count() <= ABOUT_MAX && !about.chars().any(|c| c.is_control() && c != '\n');
    ok.then(|| about.trim().to_string())
        .ok_or(ApiError::InvalidProfile)
}

pub const DISPLAY_NAME_MAX: usize = 64;
pub const ABOUT_MAX: usize = 256;

/// The most bytes a reaction may take.
pub const EMOJI_MAX_BYTES: usize = 32;

/// One emoji (with its skin tone or other variation), at most 32 bytes.
pub fn emoji(emoji: &str) -> Result<(), ApiError> {
    let ok = emoji.len() <= EMOJI_MAX_BYTES && emojis::get(emoji).is_some();
    ok.then_some(()).ok_or(ApiError::InvalidEmoji)
}

/// 1 to 64 characters, no control codes: the only way to make a [`ClientId`].
pub fn client_id(id: String) -> Result<ClientId, ApiError> {
    let ok = (1..=CLIENT_ID_MAX).contains(&id.chars().count()) && !id.chars().any(char::is_control);
    ok.then(|| ClientId::checked(id))
        .ok_or(ApiError::InvalidClientId)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert!(username("ab").is_err());
        assert!(username("abc").is_ok());
        assert!(username(&"a".repeat(32)).is_ok());
        assert!(username(&"a".repeat(33)).is_err());
        assert!(username("a b").is_err());
        assert!(username("élan").is_err());
        assert!(username("a_b.c-d").is_ok());
    }

    #[test]
    fn emails() {
        assert!(email("a@b.co").is_ok());
        assert!(email("a@b").is_err());
        assert!(email("@b.co").is_err());
        assert!(email("a b@c.de").is_err());
        assert!(email("a@@b.de").is_err());
    }

    #[test]
    fn bodies_count_characters_not_bytes() {
        assert!(body(&"é".repeat(4000)).is_ok());
        assert!(body(&"é".repeat(4001)).is_err());
        assert!(body("  \n ").is_err());
    }
}
