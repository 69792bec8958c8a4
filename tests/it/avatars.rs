//! Avatars: a picture uploaded as PNG, JPEG or WebP becomes a 128 px
//! square PNG that everyone signed in sees, cached by version; what is
//! not such a picture, or is too large to decode safely, is refused and
//! the server carries on; the picture lasts through a restart, a backup
//! and an account's deletion as it should.

use std::io::{Cursor, Write};
use std::path::Path;
use std::process::{Command, Output};

use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use serde_json::{json, Value};

use crate::harness::{Auth, Fetched, TestServer, User};

/// A `w`×`h` picture in `format`: its centred square green, the rest red,
/// so a thumbnail shows whether it was cut from the centre. Its size sets
/// the shade of green, so pictures of different sizes differ.
fn picture(format: ImageFormat, w: u32, h: u32) -> Vec<u8> {
    let green = 160 + ((w + h) % 90) as u8;
    let side = w.min(h);
    let (x0, y0) = ((w - side) / 2, (h - side) / 2);
    let img = RgbImage::from_fn(w, h, |x, y| {
        let inside = (x0..x0 + side).contains(&x) && (y0..y0 + side).contains(&y);
        if inside {
            Rgb([0, green, 0])
        } else {
            Rgb([220, 0, 0])
        }
    });
    let mut out = Cursor::new(Vec::new());
    DynamicImage::ImageRgb8(img)
        .write_to(&mut out, format)
        .expect("encode a test picture");
    out.into_inner()
}

/// A PNG chunk: length, type, data, CRC over type and data.
fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc = flate2::Crc::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(&crc.sum().to_be_bytes());
}

/// A well-formed PNG of `w`×`h` black RGB pixels, of which `rows` are
/// written: they compress about a thousandfold, so a small file decodes to
/// something enormous.
fn bomb(w: u32, h: u32, rows: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB, no interlace
    chunk(&mut png, b"IHDR", &ihdr);
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    let row = vec![0u8; 3 * w as usize + 1]; // filter byte, then the pixels
    for _ in 0..rows {
        z.write_all(&row).expect("compress a row");
    }
    chunk(&mut png, b"IDAT", &z.finish().expect("compress"));
    chunk(&mut png, b"IEND", &[]);
    png
}

async fn upload(s: &TestServer, user: &User, content_type: &str, bytes: Vec<u8>) -> (u16, Value) {
    let r = s
        .call("PUT", "/api/v1/me/avatar")
        .auth(Auth::Bearer(&user.token))
        .body(content_type, bytes)
        .send()
        .await;
    (r.status, r.body)
}

async fn fetch(s: &TestServer, path: &str, auth: Auth<'_>) -> Fetched {
    s.call("GET", path).auth(auth).fetch().await
}

/// The avatar URL in a user object, checked to be the versioned one.
fn avatar_url(user: &Value, id: &str) -> String {
    let url = user["avatar"]
        .as_str()
        .unwrap_or_else(|| panic!("an avatar URL: {user}"));
    let version = url
        .strip_prefix(&format!("/api/v1/users/{id}/avatar?v="))
        .unwrap_or_else(|| panic!("a versioned avatar URL: {url}"));
    assert!(
        version.len() == 16 && version.bytes().all(|b| b.is_ascii_hexdigit()),
        "{url}"
    );
    url.to_string()
}

/// Decodes a served avatar: a 128×128 PNG.
fn served(reply: &Fetched) -> image::RgbaImage {
    assert_eq!(
        reply.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&reply.bytes)
    );
    assert_eq!(reply.header("content-type"), Some("image/png"));
    assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(
        image::guess_format(&reply.bytes).expect("a known format"),
        ImageFormat::Png
    );
    let img = image::load_from_memory(&reply.bytes)
        .expect("decodes")
        .to_rgba8();
    assert_eq!(img.dimensions(), (128, 128));
    img
}

fn is_green(p: &image::Rgba<u8>) -> bool {
    p[1] > 140 && p[0] < 60
}

#[tokio::test]
async fn png_jpeg_and_webp_become_a_128_px_png_that_everyone_sees_at_once() {
    let s = TestServer::spawn().await;
    let ann = s.user("ann").await;
    let bob = s.user("bob").await;
    let room = s.room(&ann, "general").await;
    s.join(&bob, &room).await;
    let mut bob_ws = s.ws(&bob).await;
    bob_ws.hello(None).await;

    let (_, me) = s.get("/api/v1/me", Some(&ann.token)).await;
    assert_eq!(me["user"]["avatar"], json!(null), "no avatar at first");

    let mut versions: Vec<String> = Vec::new();
    // Wide, tall and square; the content type claimed does not matter.
    for (format, w, h, claimed) in [
        (ImageFormat::Png, 600, 300, "image/png"),
        (ImageFormat::Jpeg, 200, 500, "application/octet-stream"),
        (ImageFormat::WebP, 96, 96, "image/webp"),
    ] {
        let (status, body) = upload(&s, &ann, claimed, picture(format, w, h)).await;
        assert_eq!(status, 200, "{format:?}: {body}");
        let url = avatar_url(&body["user"], &ann.id);
        assert_eq!(body["user"]["username"], "ann");

        let seen = bob_ws.expect("user_updated").await;
        assert_eq!(
            (&seen["user"]["id"], &seen["user"]["avatar"]),
            (&json!(ann.id), &json!(url)),
            "a roommate's socket hears of it"
        );
        let (_, me) = s.get("/api/v1/me", Some(&ann.token)).await;
        assert_eq!(me["user"]["avatar"], json!(url));
        let (_, members) = s
            .get(&format!("/api/v1/rooms/{room}/members"), Some(&bob.token))
            .await;
        let listed: Vec<_> = members["members"]
            .as_array()
            .expect("members")
            .iter()
            .map(|m| (m["username"].clone(), m["avatar"].clone()))
            .collect();
        assert_eq!(
            listed,
            [(json!("ann"), json!(url)), (json!("bob"), json!(null))]
        );

        // Anyone signed in sees it, by token or (as an <img> does) by cookie.
        let got = fetch(&s, &url, Auth::Bearer(&bob.token)).await;
        let img = served(&got);
        // A few pixels in from the edges: JPEG blurs a sharp edge.
        for (x, y) in [(3, 3), (124, 3), (3, 124), (124, 124), (64, 64)] {
            assert!(
                is_green(img.get_pixel(x, y)),
                "{format:?} {w}×{h}: ({x},{y}) is {:?}: cut from the centre",
                img.get_pixel(x, y)
            );
        }
        let version = url.rsplit('=').next().expect("version");
        assert_eq!(got.header("etag"), Some(format!("\"{version}\"").as_str()));
        assert_eq!(
            got.header("cache-control"),
            Some("private, max-age=31536000, immutable"),
            "a versioned URL is one picture for ever"
        );
        let by_cookie = fetch(&s, &url, Auth::Cookie(&bob.token)).await;
        assert_eq!(by_cookie.bytes, got.bytes);

        let again = s
            .call("GET", &url)
            .auth(Auth::Bearer(&bob.token))
            .header("if-none-match", &format!("\"{version}\""))
            .fetch()
            .await;
        assert_eq!(again.status, 304);
        assert!(again.bytes.is_empty());
        assert_eq!(again.header("etag"), got.header("etag"));
        versions.push(version.to_string());
    }
    let first_version = versions[0].clone();
    versions.sort();
    versions.dedup();
    assert_eq!(versions.len(), 3, "each picture is a new version");

    // Without the version the URL still works, but must be checked again.
    let plain = fetch(
        &s,
        &format!("/api/v1/users/{}/avatar", ann.id),
        Auth::Bearer(&bob.token),
    )
    .await;
    served(&plain);
    assert_eq!(plain.header("cache-control"), Some("private, no-cache"));
    let stale = s
        .call("GET", &format!("/api/v1/users/{}/avatar", ann.id))
        .auth(Auth::Bearer(&bob.token))
        .header("if-none-match", &format!("\"{}\"", first_version))
        .fetch()
        .await;
    assert_eq!(stale.status, 200, "an old ETag gets the new picture");
}

#[tokio::test]
async fn removing_an_avatar_makes_it_null_everywhere_and_again_is_harmless() {
    let s = TestServer::spawn().await;
    let ann = s.user("ann").await;
    let bob = s.user("bob").await;
    let (status, body) = upload(&s, &ann, "image/png", picture(ImageFormat::Png, 64, 64)).await;
    assert_eq!(status, 200, "{body}");
    let url = avatar_url(&body["user"], &ann.id);
    let mut ann_ws = s.ws(&ann).await;
    let ready = ann_ws.hello(None).await;
    assert_eq!(ready["user"]["avatar"], json!(url), "ready carries it too");
    let mut bob_ws = s.ws(&bob).await;
    bob_ws.hello(None).await;

    let r = s
        .call("DELETE", "/api/v1/me/avatar")
        .auth(Auth::Bearer(&ann.token))
        .send()
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let seen = bob_ws.expect("user_updated").await;
    assert_eq!(
        (&seen["user"]["id"], &seen["user"]["avatar"]),
        (&json!(ann.id), &json!(null))
    );
    let (_, me) = s.get("/api/v1/me", Some(&ann.token)).await;
    assert_eq!(me["user"]["avatar"], json!(null));
    let gone = s
        .call("GET", &url)
        .auth(Auth::Bearer(&bob.token))
        .send()
        .await;
    gone.assert_error(404, "avatar_not_found");

    let r = s
        .call("DELETE", "/api/v1/me/avatar")
        .auth(Auth::Bearer(&ann.token))
        .send()
        .await;
    assert_eq!(r.status, 204, "removing none is no error");
    assert!(
        bob_ws
            .next_within(std::time::Duration::from_millis(300))
            .await
            .is_none_or(|f| f["type"] != "user_updated"),
        "and no news"
    );
}

#[tokio::test]
async fn what_is_not_a_png_jpeg_or_webp_is_refused_whatever_it_claims() {
    let s = TestServer::spawn().await;
    let ann = s.user("ann").await;
    let png = picture(ImageFormat::Png, 40, 40);
    let gif = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;".to_vec();
    let svg = br#"<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert(1)</script></svg>"#.to_vec();
    for (what, claimed, bytes) in [
        (
            "garbage",
            "image/png",
            b"this is not a picture at all".to_vec(),
        ),
        ("a GIF", "image/gif", gif),
        ("an SVG", "image/svg+xml", svg),
        ("a cut-off PNG", "image/png", png[..png.len() / 2].to_vec()),
        ("nothing", "image/png", Vec::new()),
    ] {
        let r = s
            .call("PUT", "/api/v1/me/avatar")
            .auth(Auth::Bearer(&ann.token))
            .body(claimed, bytes)
            .send()
            .await;
        r.assert_error(400, "invalid_image");
        let message = r.body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("avatar"), "{what}: {message}");
    }
    let (_, me) = s.get("/api/v1/me", Some(&ann.token)).await;
    assert_eq!(me["user"]["avatar"], json!(null), "nothing was stored");
}

#[tokio::test]
async fn a_decompression_bomb_is_refused_and_the_server_carries_on() {
    let s = TestServer::spawn().await;
    let ann = s.user("ann").await;
    // A header claiming 60000×60000 (10 GB of pixels) in a few hundred
    // bytes, and a real 8000×8000 picture (192 MB) in about 200 KB.
    let claims = bomb(60_000, 60_000, 4);
    let real = bomb(8_000, 8_000, 8_000);
    assert!(real.len() < 400 * 1024, "{} bytes", real.len());
    for bytes in [claims, real] {
        let r = s
            .call("PUT", "/api/v1/me/avatar")
            .auth(Auth::Bearer(&ann.token))
            .body("image/png", bytes)
            .send()
            .await;
        r.assert_error(400, "invalid_image");
        let message = r.body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("8192"),
            "says what the limit is: {message}"
        );
    }
    let (status, _) = s.get("/api/v1/me", Some(&ann.token)).await;
    assert_eq!(status, 200, "the server still answers");
    let (status, body) = upload(&s, &ann, "image/png", picture(ImageFormat::Png, 300, 300)).await;
    assert_eq!(status, 200, "and still makes avatars: {body}");
}

#[tokio::test]
async fn an_upload_over_2_mib_is_refused() {
    let s = TestServer::spawn().await;
    let ann = s.user("ann").await;
    // A picture that would decode fine, padded past the limit: the size
    // alone refuses it.
    let mut big = picture(ImageFormat::Png, 64, 64);
    big.resize(2 * 1024 * 1024 + 1, 0);
    let r = s
        .call("PUT", "/api/v1/me/avatar")
        .auth(Auth::Bearer(&ann.token))
        .body("image/png", big)
        .send()
        .await;
    r.assert_error(413, "payload_too_large");
    // Exactly 2 MiB is read (and then judged as a picture).
    let mut at_limit = picture(ImageFormat::Png, 64, 64);
    at_limit.resize(2 * 1024 * 1024, 0);
    let (status, body) = upload(&s, &ann, "image/png", at_limit).await;
    assert_eq!(status, 200, "trailing bytes after IEND are ignored: {body}");
}

#[tokio::test]
async fn avatars_need_a_session_and_name_what_is_missing() {
    let s = TestServer::spawn().await;
    let ann = s.user("ann").await;
    let bob = s.user("bob").await;
    let (status, body) = upload(&s, &ann, "image/png", picture(ImageFormat::Png, 64, 64)).await;
    assert_eq!(status, 200, "{body}");
    let url = avatar_url(&body["user"], &ann.id);

    let r = s.call("GET", &url).send().await;
    r.assert_error(401, "unauthenticated");
    let r = s
        .call("PUT", "/api/v1/me/avatar")
        .body("image/png", picture(ImageFormat::Png, 8, 8))
        .send()
        .await;
    r.assert_error(401, "unauthenticated");
    let r = s.call("DELETE", "/api/v1/me/avatar").send().await;
    r.assert_error(401, "unauthenticated");
    let r = s
        .call("PUT", "/api/v1/me/avatar")
        .auth(Auth::Cookie(&ann.token))
        .header("origin", "http://evil.example")
        .body("image/png", picture(ImageFormat::Png, 8, 8))
        .send()
        .await;
    r.assert_error(403, "bad_origin");

    let r = s
        .call("GET", &format!("/api/v1/users/{}/avatar", bob.id))
        .auth(Auth::Bearer(&ann.token))
        .send()
        .await;
    r.assert_error(404, "avatar_not_found");
    for nobody in ["6f1c2f0e-8a3b-4c1d-9e2f-0a1b2c3d4e5f", "not-an-id"] {
        let r = s
            .call("GET", &format!("/api/v1/users/{nobody}/avatar"))
            .auth(Auth::Bearer(&ann.token))
            .send()
            .await;
        r.assert_error(404, "user_not_found");
    }
    let r = s
        .call("POST", "/api/v1/me/avatar")
        .auth(Auth::Bearer(&ann.token))
        .send()
        .await;
    r.assert_error(405, "method_not_allowed");
}

#[tokio::test]
async fn uploads_are_rate_limited_per_user() {
    let s = TestServer::spawn().await;
    let ann = s.user("ann").await;
    let bob = s.user("bob").await;
    let tiny = picture(ImageFormat::Png, 8, 8);
    let mut refused = None;
    for i in 0..11 {
        let r = s
            .call("PUT", "/api/v1/me/avatar")
            .auth(Auth::Bearer(&ann.token))
            .body("image/png", tiny.clone())
            .send()
            .await;
        if r.status != 200 {
            refused = Some((i, r));
            break;
        }
    }
    let (i, r) = refused.expect("the 11th upload in a minute is refused");
    assert_eq!(i, 10, "ten go through");
    r.assert_error(429, "rate_limited");
    assert!(r.header("retry-after").is_some());
    let (status, _) = upload(&s, &bob, "image/png", tiny).await;
    assert_eq!(status, 200, "others are not held back");
}

fn hearth(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(args)
        .arg("--data")
        .arg(data)
        .env_remove("HEARTH_CONFIG")
        .output()
        .expect("run hearth")
}

#[track_caller]
fn succeeded(out: &Output) -> String {
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    said
}

#[tokio::test]
async fn an_avatar_survives_a_restart_and_a_backup_and_goes_with_its_account() {
    let mut s = TestServer::spawn().await;
    let ann = s.user("ann").await;
    let bob = s.user("bob").await;
    let (status, body) = upload(&s, &ann, "image/jpeg", picture(ImageFormat::Jpeg, 300, 200)).await;
    assert_eq!(status, 200, "{body}");
    let url = avatar_url(&body["user"], &ann.id);
    let before = fetch(&s, &url, Auth::Bearer(&bob.token)).await;
    served(&before);

    let (status, _) = s.terminate();
    assert!(status.success());
    s.restart();
    let bob = s.login("bob", "password-bob").await;
    let after = fetch(&s, &url, Auth::Bearer(&bob.token)).await;
    assert_eq!(
        after.bytes, before.bytes,
        "the same picture after a restart"
    );
    let (_, me) = s.get("/api/v1/me", Some(&bob.token)).await;
    assert_eq!(me["user"]["avatar"], json!(null));

    // A backup taken from the running server carries the picture.
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("hearth.backup");
    let said = succeeded(&hearth(
        &s.data_dir(),
        &["backup", file.to_str().expect("utf-8 path")],
    ));
    assert!(said.contains("1 avatars"), "{said}");
    let said = succeeded(&hearth(&s.data_dir(), &["verify"]));
    assert!(said.contains("OK: every invariant holds"), "{said}");
    let restored = dir.path().join("restored");
    let said = succeeded(&hearth(
        &restored,
        &["restore", file.to_str().expect("utf-8 path")],
    ));
    assert!(said.contains("OK: every invariant holds"), "{said}");
    {
        let config = hearth::config::Config::defaults();
        let store = hearth::storage::Store::open(
            &restored,
            config.storage.cache_bytes,
            config.storage.durability,
        )
        .expect("open the restored store");
        let id: hearth::ids::UserId = ann.id.parse().expect("a user id");
        let (version, png) = store
            .avatar(id)
            .expect("read")
            .expect("the restored store has the avatar");
        assert_eq!(png, before.bytes);
        assert!(url.ends_with(&version.to_string()));
    }

    // Deleting the account takes its picture with it.
    let ann = s.login("ann", "password-ann").await;
    let (status, body) = s
        .delete(
            "/api/v1/me",
            Some(&ann.token),
            json!({"password": "password-ann"}),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let r = s
        .call("GET", &url)
        .auth(Auth::Bearer(&bob.token))
        .send()
        .await;
    r.assert_error(404, "user_not_found");
    let said = succeeded(&hearth(&s.data_dir(), &["verify"]));
    assert!(said.contains("0 avatars"), "{said}");
}

/// `hearth verify` names a picture that does not match its user's record.
#[tokio::test]
async fn verify_reports_an_avatar_that_does_not_match_its_record() {
    let mut s = TestServer::spawn().await;
    let ann = s.user("ann").await;
    let (status, body) = upload(&s, &ann, "image/png", picture(ImageFormat::Png, 32, 32)).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = s.terminate();
    assert!(status.success());
    {
        let db = sled::open(s.data_dir().join("db")).expect("open the stopped server's database");
        let tree = db.open_tree("userid_avatar").expect("avatar tree");
        let id: hearth::ids::UserId = ann.id.parse().expect("a user id");
        tree.insert(id.to_bytes(), &b"not the picture the record names"[..])
            .expect("damage the picture");
        let orphan = [7u8; 16];
        tree.insert(orphan, &b"nobody's"[..]).expect("an orphan");
        db.flush().expect("flush");
    }
    let out = hearth(&s.data_dir(), &["verify"]);
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains(&format!("userid_avatar/{}: holds version", ann.id)),
        "{said}"
    );
    assert!(said.contains("no such user"), "{said}");
}

/// A settings page may save the name and the picture at once: neither
/// change may undo the other.
#[tokio::test]
async fn a_profile_change_and_an_avatar_at_the_same_moment_both_hold() {
    let s = TestServer::spawn().await;
    let ann = s.user("ann").await;
    for round in 0..5u32 {
        let name = format!("Ann {round}");
        let patch = s.request(
            "PATCH",
            "/api/v1/me",
            &ann.token,
            json!({"display_name": name}),
        );
        let put = upload(
            &s,
            &ann,
            "image/png",
            picture(ImageFormat::Png, 40 + round, 40),
        );
        let (patched, (status, body)) = tokio::join!(patch, put);
        assert_eq!((patched.status, status), (200, 200), "{body}");
        let url = avatar_url(&body["user"], &ann.id);
        let (_, me) = s.get("/api/v1/me", Some(&ann.token)).await;
        assert_eq!(
            (&me["user"]["display_name"], &me["user"]["avatar"]),
            (&json!(name), &json!(url)),
            "round {round}"
        );
    }
    let said = succeeded(&hearth(&s.data_dir(), &["verify"]));
    assert!(said.contains("OK: every invariant holds"), "{said}");
}

/// Bodies of uploads held in memory are bounded server-wide: with eight
/// uploads still arriving, a ninth is refused before its body is read.
#[tokio::test]
async fn uploads_beyond_those_in_flight_are_refused_busy() {
    use tokio::io::AsyncWriteExt;
    let s = TestServer::spawn().await;
    // Everyone signs up first: on a loaded machine the password hashes can
    // take longer than the server waits for a stalled body (408), which
    // would free the first uploads' places before the last one starts.
    let mut users = Vec::new();
    for i in 0..8 {
        users.push(s.user(&format!("slow{i}")).await);
    }
    let ann = s.user("ann").await;
    let mut slow = Vec::new();
    for user in &users {
        let mut tcp = tokio::net::TcpStream::connect(&s.addr)
            .await
            .expect("connect");
        let head = format!(
            "PUT /api/v1/me/avatar HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
             Content-Type: image/png\r\nContent-Length: 100000\r\n\r\n",
            s.addr, user.token
        );
        tcp.write_all(head.as_bytes()).await.expect("write");
        slow.push(tcp);
    }
    // Their heads arrive on their own connections: wait until all eight
    // are being read. A refusal spends none of the rate, but each upload
    // that gets through spends one of Ann's ten a minute, so tries are
    // spaced out.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let r = loop {
        let r = s
            .call("PUT", "/api/v1/me/avatar")
            .auth(Auth::Bearer(&ann.token))
            .body("image/png", picture(ImageFormat::Png, 16, 16))
            .send()
            .await;
        if r.status != 200 || std::time::Instant::now() > deadline {
            break r;
        }
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    };
    r.assert_error(503, "busy");
    assert!(r.header("retry-after").is_some());
    drop(slow);
    // Their places come back as those bodies end.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (status, body) = upload(&s, &ann, "image/png", picture(ImageFormat::Png, 16, 16)).await;
        if status == 200 {
            break;
        }
        assert_eq!(status, 503, "{body}");
        assert!(
            std::time::Instant::now() < deadline,
            "places never came back"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// A picture that should not be shown: an administrator, or the operator
/// from the command line, removes it, and everyone sees it go; nobody
/// else may.
#[tokio::test]
async fn an_administrator_or_the_operator_removes_someones_avatar() {
    let s = TestServer::spawn().await;
    let admin = s.user("admin").await; // the first account administers
    let ann = s.user("ann").await;
    let bob = s.user("bob").await;
    let mut bob_ws = s.ws(&bob).await;
    bob_ws.hello(None).await;
    let path = format!("/api/v1/users/{}/avatar", ann.id);

    let (status, body) = upload(&s, &ann, "image/png", picture(ImageFormat::Png, 50, 50)).await;
    assert_eq!(status, 200, "{body}");
    bob_ws.expect("user_updated").await;
    let r = s
        .call("DELETE", &path)
        .auth(Auth::Bearer(&bob.token))
        .send()
        .await;
    r.assert_error(403, "not_an_admin");
    let r = s
        .call("DELETE", &path)
        .auth(Auth::Bearer(&admin.token))
        .send()
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let seen = bob_ws.expect("user_updated").await;
    assert_eq!(
        (&seen["user"]["id"], &seen["user"]["avatar"]),
        (&json!(ann.id), &json!(null))
    );
    let r = s
        .call(
            "DELETE",
            "/api/v1/users/6f1c2f0e-8a3b-4c1d-9e2f-0a1b2c3d4e5f/avatar",
        )
        .auth(Auth::Bearer(&admin.token))
        .send()
        .await;
    r.assert_error(404, "user_not_found");

    let (status, body) = upload(&s, &ann, "image/png", picture(ImageFormat::Png, 51, 50)).await;
    assert_eq!(status, 200, "{body}");
    bob_ws.expect("user_updated").await;
    let said = succeeded(&hearth(&s.data_dir(), &["user", "remove-avatar", "ann"]));
    assert!(said.contains("ann has no avatar now"), "{said}");
    let seen = bob_ws.expect("user_updated").await;
    assert_eq!(
        seen["user"]["avatar"],
        json!(null),
        "at once, from the CLI too"
    );
    let (_, me) = s.get("/api/v1/me", Some(&ann.token)).await;
    assert_eq!(me["user"]["avatar"], json!(null));
}

/// A phone stores a portrait photo sideways with an EXIF note to turn it;
/// the avatar is turned as the note says.
#[tokio::test]
async fn a_jpeg_is_turned_as_its_exif_orientation_says() {
    let s = TestServer::spawn().await;
    let ann = s.user("ann").await;
    // Left half green, right half red, stored with orientation 6 ("turn
    // 90° clockwise to view"): upright, the green half is on top.
    let img = RgbImage::from_fn(200, 200, |x, _| {
        if x < 100 {
            Rgb([0, 200, 0])
        } else {
            Rgb([220, 0, 0])
        }
    });
    let mut jpeg = Cursor::new(Vec::new());
    DynamicImage::ImageRgb8(img)
        .write_to(&mut jpeg, ImageFormat::Jpeg)
        .expect("encode");
    let jpeg = jpeg.into_inner();
    let tiff: &[u8] = b"MM\x00\x2a\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03\x00\x00\x00\x01\x00\x06\x00\x00\x00\x00\x00\x00";
    let mut app1 = b"Exif\x00\x00".to_vec();
    app1.extend_from_slice(tiff);
    let mut turned = jpeg[..2].to_vec(); // SOI
    turned.extend_from_slice(&[0xff, 0xe1]);
    turned.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    turned.extend_from_slice(&app1);
    turned.extend_from_slice(&jpeg[2..]);

    let (status, body) = upload(&s, &ann, "image/jpeg", turned).await;
    assert_eq!(status, 200, "{body}");
    let url = avatar_url(&body["user"], &ann.id);
    let img = served(&fetch(&s, &url, Auth::Bearer(&ann.token)).await);
    assert!(
        is_green(img.get_pixel(64, 10)),
        "{:?}",
        img.get_pixel(64, 10)
    );
    assert!(
        !is_green(img.get_pixel(64, 117)),
        "{:?}",
        img.get_pixel(64, 117)
    );
}
