//! Roles in a room: its creator owns it and names moderators; owners and
//! moderators add, remove and ban people, delete messages and edit the
//! room; members do none of that.

use serde_json::{json, Value};

use crate::harness::{TestServer, User};

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

async fn role(s: &TestServer, by: &User, room: &str, user: &User, role: &str) -> (u16, Value) {
    let r = s
        .request(
            "PUT",
            &format!("/api/v1/rooms/{room}/members/{}/role", user.id),
            &by.token,
            json!({"role": role}),
        )
        .await;
    (r.status, r.body)
}

async fn kick(s: &TestServer, by: &User, room: &str, user: &User) -> (u16, Value) {
    s.delete(
        &format!("/api/v1/rooms/{room}/members/{}", user.id),
        Some(&by.token),
        json!({}),
    )
    .await
}

#[tokio::test]
async fn owners_name_moderators_and_moderators_manage_members() {
    let s = TestServer::spawn().await;
    let _admin = s.user("admin").await;
    let ann = s.user("ann").await;
    let bob = s.user("bob").await;
    let cat = s.user("cat").await;
    let dan = s.user("dan").await;
    let room = s.room(&ann, "team").await;
    s.join(&bob, &room).await;
    s.join(&cat, &room).await;

    // A member may not name moderators; the owner may.
    assert_eq!(
        code(&role(&s, &bob, &room, &cat, "moderator").await.1),
        "forbidden"
    );
    let mut cat_ws = s.ws(&cat).await;
    cat_ws.hello(None).await;
    assert_eq!(role(&s, &ann, &room, &bob, "moderator").await.0, 204);
    // Everyone in the room hears of it at once.
    let changed = cat_ws.expect("role_changed").await;
    assert_eq!(
        (
            changed["room"].as_str(),
            changed["user"]["username"].as_str(),
            changed["role"].as_str()
        ),
        (Some(room.as_str()), Some("bob"), Some("moderator"))
    );
    let (_, members) = s
        .get(&format!("/api/v1/rooms/{room}/members"), Some(&cat.token))
        .await;
    let roles: Vec<_> = members["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| {
            (
                m["username"].as_str().unwrap_or_default().to_string(),
                m["role"].clone(),
            )
        })
        .collect();
    assert_eq!(
        roles,
        [
            ("ann".to_string(), json!("owner")),
            ("bob".to_string(), json!("moderator")),
            ("cat".to_string(), json!("member"))
        ]
    );

    // A moderator adds and removes members, but not the owner.
    let (status, _) = s
        .post(
            &format!("/api/v1/rooms/{room}/members"),
            Some(&bob.token),
            json!({"user": dan.id}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, r) = s
        .post(
            &format!("/api/v1/rooms/{room}/members"),
            Some(&cat.token),
            json!({"user": dan.id}),
        )
        .await;
    assert_eq!(
        (status, code(&r)),
        (403, "forbidden"),
        "a member cannot add"
    );
    let mut dan_ws = s.ws(&dan).await;
    dan_ws.hello(None).await;
    let mut ann_ws = s.ws(&ann).await;
    ann_ws.hello(None).await;
    assert_eq!(kick(&s, &bob, &room, &dan).await.0, 204);
    let left = dan_ws.expect("left").await;
    assert_eq!(
        (left["room"].as_str(), left["reason"].as_str()),
        (Some(room.as_str()), Some("removed"))
    );
    assert_eq!(
        ann_ws.expect("member_left").await["user"]["username"],
        "dan"
    );
    assert_eq!(
        code(&kick(&s, &bob, &room, &ann).await.1),
        "forbidden",
        "nobody removes the owner"
    );
    assert_eq!(
        code(&kick(&s, &cat, &room, &bob).await.1),
        "forbidden",
        "a member removes nobody"
    );
    assert_eq!(kick(&s, &cat, &room, &cat).await.0, 204, "but may leave");

    // A moderator deletes others' messages and may say @room.
    s.join(&cat, &room).await;
    let seq = s.say(&cat, &room, "off topic", None).await["seq"]
        .as_u64()
        .expect("seq");
    let (status, _) = s
        .delete(
            &format!("/api/v1/rooms/{room}/messages/{seq}"),
            Some(&bob.token),
            json!({}),
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(
        s.say(&bob, &room, "@room standup", None).await["mentions_room"],
        true
    );
    assert_eq!(
        s.say(&cat, &room, "@room me too", None).await["mentions_room"],
        false
    );

    // The owner demotes; the owner's own role is not for changing.
    assert_eq!(role(&s, &ann, &room, &bob, "member").await.0, 204);
    assert_eq!(code(&kick(&s, &bob, &room, &cat).await.1), "forbidden");
    assert_eq!(role(&s, &ann, &room, &ann, "member").await.0, 400);
}

#[tokio::test]
async fn a_banned_user_is_removed_and_cannot_come_back_until_unbanned() {
    let s = TestServer::spawn().await;
    let ann = s.user("ann").await;
    let bob = s.user("bob").await;
    let room = s.room(&ann, "team").await;
    s.join(&bob, &room).await;
    let mut bob_ws = s.ws(&bob).await;
    bob_ws.hello(None).await;

    let (status, _) = s
        .post(
            &format!("/api/v1/rooms/{room}/bans"),
            Some(&ann.token),
            json!({"user": bob.id}),
        )
        .await;
    assert_eq!(status, 204);
    let left = bob_ws.expect("left").await;
    assert_eq!(
        (left["room"].as_str(), left["reason"].as_str()),
        (Some(room.as_str()), Some("banned"))
    );
    let (status, r) = s
        .post(
            &format!("/api/v1/rooms/{room}/join"),
            Some(&bob.token),
            json!({}),
        )
        .await;
    assert_eq!((status, code(&r)), (403, "banned"));
    let (status, r) = s
        .post(
            &format!("/api/v1/rooms/{room}/members"),
            Some(&ann.token),
            json!({"user": bob.id}),
        )
        .await;
    assert_eq!((status, code(&r)), (403, "banned"));
    let (_, bans) = s
        .get(&format!("/api/v1/rooms/{room}/bans"), Some(&ann.token))
        .await;
    assert_eq!(bans["bans"], json!([{"id": bob.id, "username": "bob"}]));
    let (status, _) = s
        .get(&format!("/api/v1/rooms/{room}/bans"), Some(&bob.token))
        .await;
    assert_eq!(status, 403);

    let (status, _) = s
        .delete(
            &format!("/api/v1/rooms/{room}/bans/{}", bob.id),
            Some(&ann.token),
            json!({}),
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = s
        .post(
            &format!("/api/v1/rooms/{room}/join"),
            Some(&bob.token),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn the_owner_and_moderators_edit_the_room_and_members_see_it_live() {
    let s = TestServer::spawn().await;
    let ann = s.user("ann").await;
    let bob = s.user("bob").await;
    let room = s.room(&ann, "team").await;
    s.room(&bob, "taken").await;
    s.join(&bob, &room).await;
    let mut bob_ws = s.ws(&bob).await;
    bob_ws.hello(None).await;

    let r = s
        .request(
            "PATCH",
            &format!("/api/v1/rooms/{room}"),
            &bob.token,
            json!({"topic": "mine now"}),
        )
        .await;
    assert_eq!((r.status, code(&r.body)), (403, "forbidden"));
    let r = s
        .request(
            "PATCH",
            &format!("/api/v1/rooms/{room}"),
            &ann.token,
            json!({"name": "Team", "topic": "weekly plans"}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let updated = bob_ws.expect("room_updated").await;
    assert_eq!(
        (
            &updated["room"]["name"],
            &updated["room"]["topic"],
            &updated["room"]["joined"]
        ),
        (&json!("Team"), &json!("weekly plans"), &json!(true))
    );
    let r = s
        .request(
            "PATCH",
            &format!("/api/v1/rooms/{room}"),
            &ann.token,
            json!({"name": "TAKEN"}),
        )
        .await;
    assert_eq!((r.status, code(&r.body)), (409, "room_name_taken"));
}
