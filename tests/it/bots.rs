//! Bots and incoming webhooks: accounts programs use, made by
//! administrators; secret URLs that post into a room, idempotently.

use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::{TestServer, User};

/// `hearth ARGS --data DIR --json` against the running server's directory.
fn cli(s: &TestServer, args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(args)
        .arg("--data")
        .arg(s.data_dir())
        .arg("--json")
        .env_remove("HEARTH_CONFIG")
        .output()
        .expect("run hearth");
    assert!(
        out.status.success(),
        "hearth {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or_default()
}

fn as_user(id: &Value, name: &str, token: &str) -> User {
    User {
        id: id.as_str().expect("id").to_string(),
        name: name.to_string(),
        token: token.to_string(),
    }
}

#[tokio::test]
async fn a_bot_made_from_the_cli_posts_where_it_is_added_and_its_token_does_not_idle_out() {
    // Sessions idle out after 2 s here; a bot's token must not.
    let s = TestServer::spawn_with(&[("HEARTH_IDLE_SECS", "2")]).await;
    let ann = s.user("ann").await;
    let room = s.room(&ann, "deploys").await;

    let made = cli(&s, &["bot", "create", "deploybot"]);
    let token = made["token"].as_str().expect("token").to_string();
    let bot = as_user(&made["user"]["id"], "deploybot", &token);
    let (status, me) = s.get("/api/v1/me", Some(&token)).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["user"]["bot"], true);
    assert_eq!(me["user"]["username"], "deploybot");

    // No password logs a bot in.
    for password in ["", "deploybot", "a long password"] {
        let (status, body) = s
            .post(
                "/api/v1/login",
                None,
                json!({"login": "deploybot", "password": password}),
            )
            .await;
        assert_eq!(
            (status, code(&body)),
            (401, "invalid_credentials"),
            "{body}"
        );
    }

    // Not a member yet; the owner adds it like anyone.
    let (status, body) = s
        .post(
            &format!("/api/v1/rooms/{room}/messages"),
            Some(&token),
            json!({"body": "hi"}),
        )
        .await;
    assert_eq!((status, code(&body)), (403, "not_a_member"));
    let r = s
        .request(
            "POST",
            &format!("/api/v1/rooms/{room}/members"),
            &ann.token,
            json!({"user": bot.id}),
        )
        .await;
    assert!(r.status == 200 || r.status == 204, "{}", r.body);
    let (_, members) = s
        .get(&format!("/api/v1/rooms/{room}/members"), Some(&ann.token))
        .await;
    let listed = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["username"] == "deploybot")
        .cloned()
        .expect("bot listed");
    assert_eq!(listed["bot"], true);

    let mut ann_ws = s.ws(&ann).await;
    ann_ws.hello(None).await;
    let mut bot_ws = s.ws(&bot).await;
    bot_ws.hello(None).await;
    // Past the idle lifetime of a person's session.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    s.say(&bot, &room, "build 41 passed", None).await;
    let f = ann_ws.expect("message").await;
    assert_eq!(f["message"]["body"], "build 41 passed");
    assert_eq!(f["message"]["author"]["username"], "deploybot");
    let (status, _) = s.get("/api/v1/me", Some(&ann.token)).await;
    assert_eq!(status, 401, "a person's session idled out meanwhile");

    // A new token replaces the old at once, and closes its sockets.
    let renewed = cli(&s, &["bot", "token", "deploybot"]);
    let new_token = renewed["token"].as_str().unwrap().to_string();
    assert_ne!(new_token, token);
    assert_eq!(bot_ws.close_code().await, Some(4001));
    let (status, _) = s.get("/api/v1/me", Some(&token)).await;
    assert_eq!(status, 401);
    let (status, _) = s.get("/api/v1/me", Some(&new_token)).await;
    assert_eq!(status, 200);

    let listed = cli(&s, &["bot", "list"]);
    let names: Vec<_> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["deploybot"]);
}

#[tokio::test]
async fn only_administrators_make_bots_over_the_api() {
    let s = TestServer::spawn().await;
    let admin = s.user("admin").await; // the first account administers
    let ann = s.user("ann").await;
    for (who, want) in [(&ann, 403), (&admin, 201)] {
        let (status, body) = s
            .post(
                "/api/v1/bots",
                Some(&who.token),
                json!({"username": "ci-bot"}),
            )
            .await;
        assert_eq!(status, want, "{body}");
        if want == 201 {
            assert_eq!(body["user"]["bot"], true);
            assert!(body["token"].as_str().is_some_and(|t| t.len() >= 40));
        } else {
            assert_eq!(code(&body), "not_an_admin");
        }
    }
    let (status, body) = s
        .post(
            "/api/v1/bots",
            Some(&admin.token),
            json!({"username": "ci-bot"}),
        )
        .await;
    assert_eq!((status, code(&body)), (409, "username_taken"));
    let (status, body) = s
        .post(
            "/api/v1/bots",
            Some(&admin.token),
            json!({"username": "no spaces"}),
        )
        .await;
    assert_eq!((status, code(&body)), (400, "invalid_username"));
    let (status, body) = s.get("/api/v1/bots", Some(&admin.token)).await;
    assert_eq!(status, 200);
    let bot_id = body["bots"][0]["id"].as_str().unwrap().to_string();
    let (status, _) = s.get("/api/v1/bots", Some(&ann.token)).await;
    assert_eq!(status, 403);
    // A person's account gets no bot token.
    let (status, body) = s
        .post(
            &format!("/api/v1/bots/{}/token", ann.id),
            Some(&admin.token),
            json!({}),
        )
        .await;
    assert_eq!((status, code(&body)), (404, "user_not_found"));
    let (status, body) = s
        .post(
            &format!("/api/v1/bots/{bot_id}/token"),
            Some(&admin.token),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // Bots need no email, and two of them do not collide on it.
    let (status, body) = s
        .post(
            "/api/v1/bots",
            Some(&admin.token),
            json!({"username": "ci-2"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn a_webhook_posts_into_its_room_once_per_client_id_until_revoked() {
    let s = TestServer::spawn().await;
    let ann = s.user("ann").await;
    let bob = s.user("bob").await;
    let room = s.room(&ann, "alerts").await;
    s.join(&bob, &room).await;
    let mut bob_ws = s.ws(&bob).await;
    bob_ws.hello(None).await;

    // Members who do not moderate cannot make or see hooks.
    let (status, body) = s
        .post(
            &format!("/api/v1/rooms/{room}/hooks"),
            Some(&bob.token),
            json!({"name": "Grafana"}),
        )
        .await;
    assert_eq!((status, code(&body)), (403, "forbidden"));
    let (status, made) = s
        .post(
            &format!("/api/v1/rooms/{room}/hooks"),
            Some(&ann.token),
            json!({"name": "Grafana"}),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    let url = made["url"].as_str().expect("url").to_string();
    assert!(url.starts_with("/api/v1/hooks/"), "{url}");
    let hook_id = made["hook"]["id"].as_str().unwrap().to_string();
    // The hook's bot joined the room.
    let joined = bob_ws.expect("member_joined").await;
    assert_eq!(joined["user"]["id"], made["hook"]["user"]["id"]);

    // No session needed: the secret is the credential. Slack's `text` works.
    let (status, posted) = s
        .post(
            &url,
            None,
            json!({"text": "CPU high on db-1", "client_id": "alert-7"}),
        )
        .await;
    assert_eq!(status, 201, "{posted}");
    let f = bob_ws.expect("message").await;
    assert_eq!(f["message"]["body"], "CPU high on db-1");
    assert_eq!(f["message"]["author"]["id"], made["hook"]["user"]["id"]);
    // A retry is the same message, stored once.
    let (status, again) = s
        .post(
            &url,
            None,
            json!({"body": "CPU high on db-1", "client_id": "alert-7"}),
        )
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["message"]["seq"], posted["message"]["seq"]);
    let history = s.history(&ann, &room).await;
    assert_eq!(
        history
            .iter()
            .filter(|m| m["body"] == "CPU high on db-1")
            .count(),
        1
    );
    // Bad bodies are refused like any send.
    let (status, body) = s.post(&url, None, json!({"body": ""})).await;
    assert_eq!((status, code(&body)), (400, "invalid_body"));
    let (status, body) = s.post(&url, None, json!({"nothing": 1})).await;
    assert_eq!((status, code(&body)), (400, "invalid_request"));
    // A wrong secret is not found, whatever its shape.
    let long = format!("/api/v1/hooks/{}", "a".repeat(300));
    for bad in ["/api/v1/hooks/nope", &long, &format!("{url}x")] {
        let (status, body) = s.post(bad, None, json!({"body": "x"})).await;
        assert_eq!((status, code(&body)), (404, "hook_not_found"), "{bad}");
    }

    // Listing shows the hook, never its secret.
    let (status, list) = s
        .get(&format!("/api/v1/rooms/{room}/hooks"), Some(&ann.token))
        .await;
    assert_eq!(status, 200);
    assert_eq!(list["hooks"].as_array().unwrap().len(), 1);
    assert_eq!(list["hooks"][0]["name"], "Grafana");
    let secret = url.trim_start_matches("/api/v1/hooks/");
    assert!(!list.to_string().contains(secret));
    let (status, _) = s
        .get(&format!("/api/v1/rooms/{room}/hooks"), Some(&bob.token))
        .await;
    assert_eq!(status, 403);

    // Revoked: the URL stops working; the message stays.
    let r = s
        .request(
            "DELETE",
            &format!("/api/v1/rooms/{room}/hooks/{hook_id}"),
            &ann.token,
            json!({}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    let (status, body) = s.post(&url, None, json!({"body": "after"})).await;
    assert_eq!((status, code(&body)), (404, "hook_not_found"));
    let r = s
        .request(
            "DELETE",
            &format!("/api/v1/rooms/{room}/hooks/{hook_id}"),
            &ann.token,
            json!({}),
        )
        .await;
    assert_eq!((r.status, code(&r.body)), (404, "hook_not_found"));
    assert_eq!(s.history(&bob, &room).await.len(), history.len());
}

#[tokio::test]
async fn hooks_spend_the_send_budget_and_survive_a_restart() {
    let mut s =
        TestServer::spawn_with(&[("HEARTH_SEND_PER_SEC", "1"), ("HEARTH_SEND_BURST", "3")]).await;
    let ann = s.user("ann").await;
    let (status, body) = s
        .post(
            "/api/v1/rooms",
            Some(&ann.token),
            json!({"name": "ops", "visibility": "private"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let room = body["room"]["id"].as_str().unwrap().to_string();
    let (status, made) = s
        .post(
            &format!("/api/v1/rooms/{room}/hooks"),
            Some(&ann.token),
            json!({"name": "Backups"}),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    let url = made["url"].as_str().unwrap().to_string();
    let mut statuses = Vec::new();
    for i in 0..6 {
        let (status, _) = s
            .post(&url, None, json!({"body": format!("job {i}")}))
            .await;
        statuses.push(status);
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    assert_eq!(statuses[0], 201);

    s.terminate();
    s.restart();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, body) = s.post(&url, None, json!({"body": "after restart"})).await;
    assert_eq!(status, 201, "{body}");
    // A private room's hook list is not found by outsiders.
    let eve = s.user("eve").await;
    let (status, body) = s
        .get(&format!("/api/v1/rooms/{room}/hooks"), Some(&eve.token))
        .await;
    assert_eq!((status, code(&body)), (404, "room_not_found"));
}
