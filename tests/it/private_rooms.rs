//! Private rooms and direct rooms: invisible to everyone outside them,
//! exactly as a room that does not exist; direct rooms keep their people
//! and are the same room for the same set of people, however asked.

use serde_json::{json, Value};

use crate::harness::{TestServer, User};

async fn create(s: &TestServer, user: &User, name: &str, visibility: &str) -> (u16, Value) {
    s.post(
        "/api/v1/rooms",
        Some(&user.token),
        json!({"name": name, "visibility": visibility}),
    )
    .await
}

async fn dm(s: &TestServer, user: &User, with: &[&str]) -> (u16, Value) {
    s.post("/api/v1/dms", Some(&user.token), json!({"users": with}))
        .await
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn a_private_room_is_invisible_to_outsiders_until_its_owner_adds_them() {
    let s = TestServer::spawn().await;
    let admin = s.user("admin").await;
    let ann = s.user("ann").await;
    let bob = s.user("bob").await;
    let mut bob_ws = s.ws(&bob).await;
    bob_ws.hello(None).await;

    let (status, r) = create(&s, &ann, "plans", "private").await;
    assert_eq!(status, 201, "{r}");
    assert_eq!(r["room"]["visibility"], "private");
    let room = r["room"]["id"].as_str().expect("id").to_string();
    s.say(&ann, &room, "the secret plan", None).await;

    // To bob (and to an administrator outside it) the room does not exist.
    let unknown = "6f1c2f0e-8a3b-4c1d-9e2f-0a1b2c3d4e5f";
    for probe in [&room, &unknown.to_string()] {
        for (method, path) in [
            ("GET", format!("/api/v1/rooms/{probe}")),
            ("POST", format!("/api/v1/rooms/{probe}/join")),
            ("GET", format!("/api/v1/rooms/{probe}/members")),
            ("GET", format!("/api/v1/rooms/{probe}/messages")),
            ("GET", format!("/api/v1/rooms/{probe}/events")),
            ("POST", format!("/api/v1/rooms/{probe}/messages")),
        ] {
            for who in [&bob, &admin] {
                let r = s
                    .call(method, &path)
                    .header("Authorization", &format!("Bearer {}", who.token))
                    .json(json!({"body": "hi"}))
                    .send()
                    .await;
                assert_eq!(
                    (r.status, code(&r.body)),
                    (404, "room_not_found"),
                    "{method} {path}"
                );
            }
        }
    }
    let (_, list) = s.get("/api/v1/rooms", Some(&bob.token)).await;
    assert!(
        !list.to_string().contains(&room),
        "listed to an outsider: {list}"
    );
    let heard = bob_ws
        .next_within(std::time::Duration::from_millis(300))
        .await;
    assert!(
        heard.as_ref().is_none_or(|f| f["type"] != "room_added"),
        "an outsider heard of it: {heard:?}"
    );
    let (status, _) = s
        .delete(
            &format!("/api/v1/rooms/{room}"),
            Some(&admin.token),
            json!({}),
        )
        .await;
    assert_eq!(
        status, 404,
        "an administrator's account cannot see into it either"
    );

    // Names are unique among public rooms only: a private name leaks nothing.
    assert_eq!(create(&s, &bob, "plans", "public").await.0, 201);
    assert_eq!(create(&s, &bob, "plans", "private").await.0, 201);

    // Only its owner adds people; then it is theirs to see.
    let carol = s.user("carol").await;
    let (status, r) = s
        .post(
            &format!("/api/v1/rooms/{room}/members"),
            Some(&ann.token),
            json!({"user": bob.id}),
        )
        .await;
    assert_eq!(status, 200, "{r}");
    loop {
        // bob's own new rooms were announced to him too.
        if bob_ws.expect("joined").await["room"]["id"] == room {
            break;
        }
    }
    let (status, r) = s
        .post(
            &format!("/api/v1/rooms/{room}/members"),
            Some(&bob.token),
            json!({"user": carol.id}),
        )
        .await;
    assert_eq!((status, code(&r)), (403, "forbidden"));
    let history = s.history(&bob, &room).await;
    assert_eq!(history[0]["body"], "the secret plan");
}

#[tokio::test]
async fn the_same_people_always_get_the_same_direct_room() {
    let s = TestServer::spawn().await;
    let ann = s.user("ann").await;
    let bob = s.user("bob").await;
    let cat = s.user("cat").await;
    let mut bob_ws = s.ws(&bob).await;
    bob_ws.hello(None).await;

    let (status, r) = dm(&s, &ann, &[&bob.id]).await;
    assert_eq!(status, 200, "{r}");
    let room = r["room"]["id"].as_str().expect("id").to_string();
    assert_eq!(r["room"]["visibility"], "direct");
    let names: Vec<_> = r["room"]["members_preview"]
        .as_array()
        .expect("preview")
        .iter()
        .map(|m| m["username"].as_str().expect("name").to_string())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(sorted, ["ann", "bob"]);
    assert_eq!(bob_ws.expect("joined").await["room"]["id"], room);

    // Whoever asks, in whatever order, even all at once.
    let (_, again) = dm(&s, &bob, &[&ann.id, &bob.id]).await;
    assert_eq!(again["room"]["id"], room);
    let (ann_id, bob_id, cat_id) = (ann.id.as_str(), bob.id.as_str(), cat.id.as_str());
    let server = &s;
    let racing: Vec<_> = (0..10)
        .map(|i| {
            let (who, with) = if i % 2 == 0 {
                (&ann, vec![bob_id, cat_id])
            } else {
                (&cat, vec![ann_id, bob_id])
            };
            async move { dm(server, who, &with).await }
        })
        .collect();
    let answers = futures_util::future::join_all(racing).await;
    let ids: std::collections::BTreeSet<_> = answers
        .iter()
        .map(|(status, r)| {
            assert_eq!(*status, 200, "{r}");
            r["room"]["id"].as_str().expect("id").to_string()
        })
        .collect();
    assert_eq!(ids.len(), 1, "racing requests made two rooms: {ids:?}");
    assert!(
        !ids.contains(&room),
        "a group of three is another room than the pair"
    );

    // A direct room keeps its people.
    let (status, r) = s
        .post(
            &format!("/api/v1/rooms/{room}/leave"),
            Some(&ann.token),
            json!({}),
        )
        .await;
    assert_eq!((status, code(&r)), (409, "direct_room"));
    let (status, r) = s
        .post(
            &format!("/api/v1/rooms/{room}/members"),
            Some(&ann.token),
            json!({"user": cat.id}),
        )
        .await;
    assert_eq!((status, code(&r)), (409, "direct_room"));
    let (status, r) = s
        .post(
            &format!("/api/v1/rooms/{room}/join"),
            Some(&cat.token),
            json!({}),
        )
        .await;
    assert_eq!(
        (status, code(&r)),
        (404, "room_not_found"),
        "an outsider does not see it"
    );

    // Bad sets of people.
    let s = &s;
    let nine: Vec<User> = futures_util::future::join_all(
        (0..9).map(|i| async move { s.user(&format!("person{i}")).await }),
    )
    .await;
    let nine_ids: Vec<&str> = nine.iter().map(|u| u.id.as_str()).collect();
    for (with, what) in [
        (vec![ann.id.as_str()], "only yourself"),
        (vec![], "nobody"),
        (nine_ids, "nine others"),
        (
            vec!["6f1c2f0e-8a3b-4c1d-9e2f-0a1b2c3d4e5f"],
            "someone who does not exist",
        ),
    ] {
        let (status, r) = dm(s, &ann, &with).await;
        assert_eq!((status, code(&r)), (400, "invalid_direct"), "{what}");
    }
}

#[tokio::test]
async fn people_are_found_by_the_start_of_their_name() {
    let s = TestServer::spawn().await;
    let admin = s.user("admin").await;
    s.user("Bobby").await;
    let bob = s.user("bob").await;
    s.user("carol").await;
    let (status, _) = s
        .post(
            &format!("/api/v1/users/{}/disable", bob.id),
            Some(&admin.token),
            json!({}),
        )
        .await;
    assert_eq!(status, 204);
    let (status, r) = s.get("/api/v1/users?q=bO", Some(&admin.token)).await;
    assert_eq!(status, 200, "{r}");
    let names: Vec<_> = r["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|u| u["username"].clone())
        .collect();
    assert_eq!(names, [json!("Bobby")], "bob is disabled");
    assert_eq!(r["users"][0]["online"], false);
    let (status, _) = s.get("/api/v1/users?q=", None).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn deleting_a_private_room_tells_its_members_and_nobody_else() {
    let s = TestServer::spawn().await;
    let admin = s.user("admin").await;
    let ann = s.user("ann").await;
    let (_, r) = create(&s, &admin, "secret", "private").await;
    let room = r["room"]["id"].as_str().expect("id").to_string();
    let mut admin_ws = s.ws(&admin).await;
    admin_ws.hello(None).await;
    let mut ann_ws = s.ws(&ann).await;
    ann_ws.hello(None).await;

    let (status, _) = s
        .delete(
            &format!("/api/v1/rooms/{room}"),
            Some(&admin.token),
            json!({}),
        )
        .await;
    assert_eq!(status, 204, "an administrator who is in it may delete it");
    assert_eq!(admin_ws.expect("left").await["room"], room);
    let heard = ann_ws
        .next_within(std::time::Duration::from_millis(300))
        .await;
    assert!(
        heard
            .as_ref()
            .is_none_or(|f| !f.to_string().contains(&room)),
        "an outsider learned the room existed: {heard:?}"
    );
}
