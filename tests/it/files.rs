//! Files attached to messages: uploaded into a room, attached over REST or
//! the WebSocket, downloaded by the room's members with headers that keep
//! them from running as hearth's pages; pictures get thumbnails and JPEGs
//! lose their location; limits cut an upload off as it streams; files go
//! when no message holds them; backups, verify and crashes keep them whole.

use std::io::{Cursor, Read, Write};
use std::path::Path;
use std::time::Duration;

use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{Auth, Fetched, Reply, TestServer, User};

/// A `w`×`h` picture in `format`, its colours set by `seed` so pictures
/// differ.
fn picture(format: ImageFormat, w: u32, h: u32, seed: u8) -> Vec<u8> {
    let img = RgbImage::from_fn(w, h, |x, y| {
        Rgb([
            (x as u8).wrapping_add(seed),
            (y as u8).wrapping_mul(3),
            seed,
        ])
    });
    let mut out = Cursor::new(Vec::new());
    DynamicImage::ImageRgb8(img)
        .write_to(&mut out, format)
        .expect("encode a test picture");
    out.into_inner()
}

async fn upload(
    s: &TestServer,
    user: &User,
    room: &str,
    name: &str,
    content_type: &str,
    bytes: Vec<u8>,
) -> Reply {
    s.call(
        "POST",
        &format!("/api/v1/rooms/{room}/uploads?name={}", encode(name)),
    )
    .auth(Auth::Bearer(&user.token))
    .body(content_type, bytes)
    .send()
    .await
}

/// Uploads and returns the file object, checked to be a 201.
async fn uploaded(
    s: &TestServer,
    user: &User,
    room: &str,
    name: &str,
    content_type: &str,
    bytes: Vec<u8>,
) -> Value {
    let r = upload(s, user, room, name, content_type, bytes).await;
    assert_eq!(r.status, 201, "upload {name}: {}", r.body);
    r.body["file"].clone()
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn fetch(s: &TestServer, path: &str, user: &User) -> Fetched {
    s.call("GET", path)
        .auth(Auth::Bearer(&user.token))
        .fetch()
        .await
}

async fn post_files(
    s: &TestServer,
    user: &User,
    room: &str,
    body: &str,
    files: &[&Value],
) -> Reply {
    let ids: Vec<&Value> = files.iter().map(|f| &f["id"]).collect();
    s.request(
        "POST",
        &format!("/api/v1/rooms/{room}/messages"),
        &user.token,
        json!({"body": body, "files": ids}),
    )
    .await
}

fn id(file: &Value) -> &str {
    file["id"].as_str().expect("file id")
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The blob of `bytes` in a data directory.
fn blob(data: &Path, bytes: &[u8]) -> std::path::PathBuf {
    let hex = sha256_hex(bytes);
    data.join("files").join(&hex[..2]).join(hex)
}

/// Every blob stored under a data directory.
fn blobs(data: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(dirs) = std::fs::read_dir(data.join("files")) else {
        return out;
    };
    for d in dirs.flatten() {
        if d.file_name().len() != 2 {
            continue;
        }
        for f in std::fs::read_dir(d.path()).into_iter().flatten().flatten() {
            out.push(f.path());
        }
    }
    out
}

#[tokio::test]
async fn a_file_goes_up_onto_a_message_and_down_to_the_rooms_members() {
    let s = TestServer::spawn().await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let room = s.room(&alice, "general").await;
    s.join(&bob, &room).await;
    let mut watcher = s.ws(&bob).await;
    watcher.hello(None).await;

    let report = b"quarterly numbers\n".repeat(1000);
    let file = uploaded(
        &s,
        &alice,
        &room,
        "report q3.txt",
        "text/plain",
        report.clone(),
    )
    .await;
    assert_eq!(file["name"], "report q3.txt");
    assert_eq!(file["type"], "text/plain");
    assert_eq!(file["size"], report.len());
    assert_eq!(file["thumb"], false);
    assert!(file.get("width").is_none(), "{file}");

    // Attached with no words at all.
    let r = post_files(&s, &alice, &room, "", &[&file]).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let message = &r.body["message"];
    assert_eq!(message["body"], "");
    assert_eq!(message["deleted"], false);
    assert_eq!(message["files"], json!([file]));

    // Bob sees it live, in history, and downloads the very bytes.
    let live = watcher.expect("message").await;
    assert_eq!(live["message"]["files"], json!([file]));
    let history = s.history(&bob, &room).await;
    assert_eq!(history[0]["files"], json!([file]));
    let got = fetch(&s, &format!("/api/v1/files/{}", id(&file)), &bob).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.bytes, report);
    assert_eq!(got.header("content-type"), Some("text/plain"));
    assert_eq!(
        got.header("content-length"),
        Some(report.len().to_string().as_str())
    );

    // Over the WebSocket too, and a resume replays it with its files.
    let second = uploaded(
        &s,
        &alice,
        &room,
        "notes.md",
        "text/markdown",
        b"# notes".to_vec(),
    )
    .await;
    let mut sender = s.ws(&alice).await;
    sender.hello(None).await;
    sender
        .send_json(json!({"type": "send", "room": room, "client_id": "ws-1", "body": "see notes", "files": [id(&second)]}))
        .await;
    let ack = sender.expect("ack").await;
    assert_eq!(ack["client_id"], "ws-1", "{ack}");
    let live = watcher.expect("message").await;
    assert_eq!(live["message"]["files"], json!([second]));
    let mut late = s.ws(&bob).await;
    late.hello(Some(json!({ room.clone(): 0 }))).await;
    let replayed: Vec<Value> = [late.expect("message").await, late.expect("message").await]
        .into_iter()
        .map(|f| f["message"]["files"].clone())
        .collect();
    assert_eq!(replayed, vec![json!([file]), json!([second])]);

    // The raw event log and a search show the files too.
    let (_, events) = s
        .get(&format!("/api/v1/rooms/{room}/events"), Some(&bob.token))
        .await;
    assert_eq!(events["events"][1]["files"], json!([second]), "{events}");
    let mut found = Value::Null;
    for _ in 0..50 {
        let (_, r) = s.get("/api/v1/search?q=notes", Some(&bob.token)).await;
        if let Some(hit) = r["results"].as_array().and_then(|r| r.first()) {
            found = hit.clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(found["message"]["files"], json!([second]), "{found}");
    // A reply quotes a message of only files by their names.
    let r = s
        .request(
            "POST",
            &format!("/api/v1/rooms/{room}/messages"),
            &bob.token,
            json!({"body": "thanks", "reply_to": message["seq"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let quoted = format!("📎 {}", file["name"].as_str().expect("name"));
    assert_eq!(
        r.body["message"]["reply_to"]["excerpt"],
        quoted.as_str(),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn identical_bytes_are_stored_once_however_often_uploaded() {
    let s = TestServer::spawn().await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let room = s.room(&alice, "general").await;
    s.join(&bob, &room).await;
    let bytes = picture(ImageFormat::Png, 64, 48, 7);
    let a = uploaded(&s, &alice, &room, "a.png", "image/png", bytes.clone()).await;
    let b = uploaded(&s, &bob, &room, "b.png", "image/png", bytes.clone()).await;
    assert_ne!(a["id"], b["id"], "two uploads are two files");
    assert_eq!(blobs(&s.data_dir()), vec![blob(&s.data_dir(), &bytes)]);
    let on_disk = std::fs::read(blob(&s.data_dir(), &bytes)).expect("the blob");
    assert_eq!(on_disk, bytes);
}

#[tokio::test]
async fn downloads_are_headed_so_that_nothing_runs_as_hearth() {
    let s = TestServer::spawn().await;
    let alice = s.user("alice").await;
    let room = s.room(&alice, "general").await;
    let page = b"<html><script>alert(document.cookie)</script></html>".to_vec();
    let svg = b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>".to_vec();
    let png = picture(ImageFormat::Png, 20, 20, 1);
    let html = uploaded(&s, &alice, &room, "page.html", "text/html", page).await;
    let svg = uploaded(&s, &alice, &room, "draw ing.svg", "image/svg+xml", svg).await;
    let lying = uploaded(
        &s,
        &alice,
        &room,
        "x.png",
        "image/png",
        b"<script>1</script>".to_vec(),
    )
    .await;
    let png = uploaded(
        &s,
        &alice,
        &room,
        "café ☕.png",
        "application/octet-stream",
        png,
    )
    .await;
    // A picture is known by its bytes, not its label.
    assert_eq!(png["type"], "image/png");
    assert_eq!(lying["type"], "application/octet-stream");

    for (file, inline) in [(&html, false), (&svg, false), (&lying, false), (&png, true)] {
        let got = fetch(&s, &format!("/api/v1/files/{}", id(file)), &alice).await;
        assert_eq!(got.status, 200);
        assert_eq!(got.header("x-content-type-options"), Some("nosniff"));
        let csp = got.header("content-security-policy").unwrap_or_default();
        assert!(csp.split(';').any(|d| d.trim() == "sandbox"), "{csp}");
        let disposition = got.header("content-disposition").unwrap_or_default();
        let want = if inline { "inline;" } else { "attachment;" };
        assert!(disposition.starts_with(want), "{file}: {disposition}");
    }
    let got = fetch(&s, &format!("/api/v1/files/{}", id(&png)), &alice).await;
    assert_eq!(got.header("content-type"), Some("image/png"));
    assert_eq!(
        got.header("content-disposition"),
        Some("inline; filename=\"caf_ _.png\"; filename*=UTF-8''caf%C3%A9%20%E2%98%95.png")
    );
}

#[tokio::test]
async fn a_file_answers_if_none_match_and_byte_ranges() {
    let s = TestServer::spawn().await;
    let alice = s.user("alice").await;
    let room = s.room(&alice, "general").await;
    let audio: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let file = uploaded(&s, &alice, &room, "song.ogg", "audio/ogg", audio.clone()).await;
    let path = format!("/api/v1/files/{}", id(&file));

    let whole = fetch(&s, &path, &alice).await;
    let etag = whole.header("etag").expect("an ETag").to_string();
    assert_eq!(etag, format!("\"{}\"", sha256_hex(&audio)));
    assert_eq!(whole.header("accept-ranges"), Some("bytes"));
    let again = s
        .call("GET", &path)
        .auth(Auth::Bearer(&alice.token))
        .header("if-none-match", &etag)
        .fetch()
        .await;
    assert_eq!(again.status, 304);
    assert!(again.bytes.is_empty());

    let range = |r: &str| {
        s.call("GET", &path)
            .auth(Auth::Bearer(&alice.token))
            .header("range", r)
            .fetch()
    };
    let part = range("bytes=1000-1999").await;
    assert_eq!(part.status, 206);
    assert_eq!(part.bytes, audio[1000..2000]);
    assert_eq!(part.header("content-range"), Some("bytes 1000-1999/100000"));
    let tail = range("bytes=-10").await;
    assert_eq!(tail.status, 206);
    assert_eq!(tail.bytes, audio[99_990..]);
    let open = range("bytes=99000-").await;
    assert_eq!(open.bytes, audio[99_000..]);
    let past = range("bytes=100000-").await;
    assert_eq!(past.status, 416);
    let body: Value = serde_json::from_slice(&past.bytes).expect("a JSON error");
    assert_eq!(body["error"]["code"], "range_not_satisfiable");
}

#[tokio::test]
async fn only_the_rooms_members_and_the_uploader_can_fetch_a_file() {
    let s = TestServer::spawn().await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let eve = s.user("eve").await;
    let room = s.room(&alice, "general").await;
    s.join(&bob, &room).await;
    let file = uploaded(
        &s,
        &alice,
        &room,
        "secret.txt",
        "text/plain",
        b"s3cret".to_vec(),
    )
    .await;
    let path = format!("/api/v1/files/{}", id(&file));
    // Not yet attached: the uploader only.
    assert_eq!(fetch(&s, &path, &alice).await.status, 200);
    let missing = fetch(
        &s,
        "/api/v1/files/0190b5c2-0000-7000-8000-000000000000",
        &bob,
    )
    .await;
    let unseen = fetch(&s, &path, &bob).await;
    assert_eq!((missing.status, unseen.status), (404, 404));
    assert_eq!(missing.bytes, unseen.bytes, "no hint that it exists");
    assert_eq!(
        post_files(&s, &alice, &room, "here", &[&file]).await.status,
        201
    );
    assert_eq!(fetch(&s, &path, &bob).await.status, 200);
    let outsider = fetch(&s, &path, &eve).await;
    assert_eq!(outsider.status, 404);
    assert_eq!(outsider.bytes, missing.bytes);
    let anonymous = s.call("GET", &path).fetch().await;
    assert_eq!(anonymous.status, 401);

    // Someone outside the room cannot upload into it.
    upload(&s, &eve, &room, "x.txt", "text/plain", b"x".to_vec())
        .await
        .assert_error(403, "not_a_member");
}

#[tokio::test]
async fn attachments_must_be_the_senders_own_uploads_and_at_most_ten() {
    let s = TestServer::spawn_with(&[("HEARTH_UPLOADS_PER_MINUTE", "100")]).await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let room = s.room(&alice, "general").await;
    let other = s.room(&alice, "other").await;
    s.join(&bob, &room).await;
    let bobs = uploaded(&s, &bob, &room, "b.txt", "text/plain", b"bob".to_vec()).await;
    let elsewhere = uploaded(&s, &alice, &other, "o.txt", "text/plain", b"o".to_vec()).await;
    post_files(&s, &alice, &room, "", &[&bobs])
        .await
        .assert_error(400, "invalid_file");
    post_files(&s, &alice, &room, "", &[&elsewhere])
        .await
        .assert_error(400, "invalid_file");
    let nonsense = json!({"id": "not-an-id"});
    post_files(&s, &alice, &room, "", &[&nonsense])
        .await
        .assert_error(400, "invalid_file");
    // Over the WebSocket the same.
    let mut ws = s.ws(&alice).await;
    ws.hello(None).await;
    ws.send_json(
        json!({"type": "send", "room": room, "client_id": "c", "body": "", "files": [id(&bobs)]}),
    )
    .await;
    let error = ws.expect("error").await;
    assert_eq!(error["code"], "invalid_file", "{error}");

    let mut mine = Vec::new();
    for i in 0..11 {
        let name = format!("f{i}.txt");
        mine.push(
            uploaded(
                &s,
                &alice,
                &room,
                &name,
                "text/plain",
                name.clone().into_bytes(),
            )
            .await,
        );
    }
    let all: Vec<&Value> = mine.iter().collect();
    post_files(&s, &alice, &room, "", &all)
        .await
        .assert_error(400, "too_many_files");
    let ten = post_files(&s, &alice, &room, "", &all[..10]).await;
    assert_eq!(ten.status, 201, "{}", ten.body);
    assert_eq!(
        ten.body["message"]["files"].as_array().map(Vec::len),
        Some(10)
    );
    // Without files, a message still needs words.
    post_files(&s, &alice, &room, "  ", &[])
        .await
        .assert_error(400, "invalid_body");
}

#[tokio::test]
async fn every_picture_format_gets_a_thumbnail_of_at_most_400_px() {
    let s = TestServer::spawn().await;
    let alice = s.user("alice").await;
    let room = s.room(&alice, "general").await;
    for (i, (format, mime)) in [
        (ImageFormat::Png, "image/png"),
        (ImageFormat::Jpeg, "image/jpeg"),
        (ImageFormat::Gif, "image/gif"),
        (ImageFormat::WebP, "image/webp"),
    ]
    .into_iter()
    .enumerate()
    {
        let bytes = picture(format, 800, 600, i as u8);
        let file = uploaded(&s, &alice, &room, "p", "application/octet-stream", bytes).await;
        assert_eq!(file["type"], mime);
        assert_eq!(
            (&file["width"], &file["height"]),
            (&json!(800), &json!(600))
        );
        assert_eq!(file["thumb"], true, "{file}");
        let thumb = fetch(&s, &format!("/api/v1/files/{}/thumb", id(&file)), &alice).await;
        assert_eq!(thumb.status, 200, "{mime}");
        assert_eq!(thumb.header("content-type"), Some("image/png"));
        assert_eq!(thumb.header("x-content-type-options"), Some("nosniff"));
        assert!(thumb
            .header("content-disposition")
            .is_some_and(|d| d.starts_with("inline;")));
        let img = image::load_from_memory(&thumb.bytes).expect("the thumbnail decodes");
        assert_eq!((img.width(), img.height()), (400, 300), "{mime}");
        let etag = thumb.header("etag").expect("an ETag").to_string();
        let again = s
            .call("GET", &format!("/api/v1/files/{}/thumb", id(&file)))
            .auth(Auth::Bearer(&alice.token))
            .header("if-none-match", &etag)
            .fetch()
            .await;
        assert_eq!(again.status, 304, "{mime}");
    }
    // A file that is not a picture has no thumbnail.
    let text = uploaded(&s, &alice, &room, "t.txt", "text/plain", b"t".to_vec()).await;
    let none = fetch(&s, &format!("/api/v1/files/{}/thumb", id(&text)), &alice).await;
    assert_eq!(none.status, 404);
}

/// A JPEG with an EXIF block holding an orientation (turn 90°) and
/// something that stands for a location.
fn jpeg_with_exif(w: u32, h: u32) -> Vec<u8> {
    use img_parts::jpeg::Jpeg;
    use img_parts::ImageEXIF;
    let plain = picture(ImageFormat::Jpeg, w, h, 3);
    // Big-endian TIFF: one directory of two entries, Orientation = 6 and
    // an ImageDescription pointing at the secret text after it.
    let secret = b"GPS 48.8584 N 2.2945 E\0";
    let mut exif = b"MM\0\x2a".to_vec();
    exif.extend_from_slice(&8u32.to_be_bytes());
    exif.extend_from_slice(&2u16.to_be_bytes());
    exif.extend_from_slice(&0x010eu16.to_be_bytes());
    exif.extend_from_slice(&2u16.to_be_bytes());
    exif.extend_from_slice(&(secret.len() as u32).to_be_bytes());
    exif.extend_from_slice(&(8u32 + 2 + 24 + 4).to_be_bytes());
    exif.extend_from_slice(&0x0112u16.to_be_bytes());
    exif.extend_from_slice(&3u16.to_be_bytes());
    exif.extend_from_slice(&1u32.to_be_bytes());
    exif.extend_from_slice(&[0, 6, 0, 0]);
    exif.extend_from_slice(&0u32.to_be_bytes());
    exif.extend_from_slice(secret);
    let mut jpeg = Jpeg::from_bytes(plain.into()).expect("a JPEG");
    jpeg.set_exif(Some(exif.into()));
    jpeg.encoder().bytes().to_vec()
}

#[tokio::test]
async fn a_jpegs_location_is_stripped_without_touching_its_picture() {
    let s = TestServer::spawn().await;
    let alice = s.user("alice").await;
    let room = s.room(&alice, "general").await;
    let original = jpeg_with_exif(64, 32);
    let secret = b"GPS 48.8584";
    assert!(original.windows(secret.len()).any(|w| w == secret));
    let file = uploaded(
        &s,
        &alice,
        &room,
        "photo.jpg",
        "image/jpeg",
        original.clone(),
    )
    .await;
    let got = fetch(&s, &format!("/api/v1/files/{}", id(&file)), &alice).await;
    assert_eq!(got.status, 200);
    assert!(
        !got.bytes.windows(secret.len()).any(|w| w == secret),
        "the location is gone"
    );
    assert!(got.bytes.len() < original.len());
    // Not re-encoded: the compressed picture data is byte for byte the same.
    let tail = 300.min(original.len());
    assert_eq!(
        got.bytes[got.bytes.len() - tail..],
        original[original.len() - tail..]
    );
    assert_eq!(file["size"], got.bytes.len());
    assert_eq!(
        got.header("etag"),
        Some(format!("\"{}\"", sha256_hex(&got.bytes)).as_str())
    );
    // The turn is kept: the photo still shows upright (32 wide, 64 tall).
    let decoder = image::ImageReader::new(Cursor::new(&got.bytes))
        .with_guessed_format()
        .expect("read")
        .into_decoder()
        .expect("a decoder");
    use image::ImageDecoder;
    let mut decoder = decoder;
    assert_eq!(
        decoder.orientation().expect("an orientation"),
        image::metadata::Orientation::Rotate90
    );
    assert_eq!((&file["width"], &file["height"]), (&json!(32), &json!(64)));
    let thumb = fetch(&s, &format!("/api/v1/files/{}/thumb", id(&file)), &alice).await;
    let img = image::load_from_memory(&thumb.bytes).expect("decodes");
    assert_eq!((img.width(), img.height()), (32, 64));
}

/// A PNG whose header claims `w`×`h` pixels, with one row of data.
fn bomb(w: u32, h: u32) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        out.extend_from_slice(&crc.sum().to_be_bytes());
    }
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(&mut png, b"IHDR", &ihdr);
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(&vec![0u8; 3 * w as usize + 1])
        .expect("compress");
    chunk(&mut png, b"IDAT", &z.finish().expect("compress"));
    chunk(&mut png, b"IEND", &[]);
    png
}

#[tokio::test]
async fn a_decompression_bomb_is_kept_as_a_file_without_a_thumbnail() {
    let s = TestServer::spawn().await;
    let alice = s.user("alice").await;
    let room = s.room(&alice, "general").await;
    // Within the side limit but 192 MB decoded; and past the side limit.
    for (w, h) in [(8000, 8000), (60_000, 60_000)] {
        let file = uploaded(&s, &alice, &room, "bomb.png", "image/png", bomb(w, h)).await;
        assert_eq!(file["thumb"], false, "{file}");
        assert_eq!((&file["width"], &file["height"]), (&json!(w), &json!(h)));
        let thumb = fetch(&s, &format!("/api/v1/files/{}/thumb", id(&file)), &alice).await;
        assert_eq!(thumb.status, 404);
    }
    // Still answering, at once.
    let started = std::time::Instant::now();
    s.say(&alice, &room, "still here", None).await;
    assert!(started.elapsed() < Duration::from_secs(2));
}

/// Sends an upload's head and `body_bytes` of a chunked body, without its
/// end, and returns the status line and body of the answer.
async fn upload_unfinished(
    s: &TestServer,
    user: &User,
    room: &str,
    body_bytes: usize,
) -> (String, String) {
    let mut tcp = tokio::net::TcpStream::connect(&s.addr)
        .await
        .expect("connect");
    let head = format!(
        "POST /api/v1/rooms/{room}/uploads?name=big.bin HTTP/1.1\r\nHost: {}\r\n\
         Authorization: Bearer {}\r\nContent-Type: application/octet-stream\r\n\
         Transfer-Encoding: chunked\r\n\r\n",
        s.addr, user.token
    );
    tcp.write_all(head.as_bytes()).await.expect("head");
    let chunk = vec![b'x'; 10_000];
    let mut sent = 0;
    while sent < body_bytes {
        let n = chunk.len().min(body_bytes - sent);
        tcp.write_all(format!("{n:x}\r\n").as_bytes())
            .await
            .expect("chunk size");
        tcp.write_all(&chunk[..n]).await.expect("chunk");
        tcp.write_all(b"\r\n").await.expect("chunk end");
        sent += n;
    }
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                answer.extend_from_slice(&buf[..n]);
                if answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.ends_with(b"}") {
                    break;
                }
            }
            Err(_) => panic!("no answer while the body is unfinished"),
        }
    }
    let text = String::from_utf8_lossy(&answer).to_string();
    let status = text.lines().next().unwrap_or_default().to_string();
    let body = text
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    (status, body)
}

#[tokio::test]
async fn an_upload_past_the_limit_is_cut_off_as_it_streams() {
    let s = TestServer::spawn_with(&[("HEARTH_MAX_UPLOAD_BYTES", "100000")]).await;
    let alice = s.user("alice").await;
    let room = s.room(&alice, "general").await;
    // Declared too large: refused before a byte is read.
    upload(
        &s,
        &alice,
        &room,
        "big.bin",
        "application/octet-stream",
        vec![0; 100_001],
    )
    .await
    .assert_error(413, "payload_too_large");
    // Streamed without a length: answered as soon as it passes the limit,
    // while the client is still sending.
    let (status, body) = upload_unfinished(&s, &alice, &room, 110_000).await;
    assert!(status.contains(" 413 "), "{status}");
    assert!(body.contains("payload_too_large"), "{body}");
    // Nothing of it is kept.
    assert!(blobs(&s.data_dir()).is_empty());
    let tmp: Vec<_> = std::fs::read_dir(s.data_dir().join("files/tmp"))
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert!(tmp.is_empty(), "{tmp:?}");
    // Exactly the limit is fine.
    uploaded(
        &s,
        &alice,
        &room,
        "ok.bin",
        "application/octet-stream",
        vec![1; 100_000],
    )
    .await;
}

#[tokio::test]
async fn uploads_are_bounded_by_quota_rate_and_how_many_at_once() {
    let s = TestServer::spawn_with(&[
        ("HEARTH_UPLOAD_QUOTA_MB", "1"),
        ("HEARTH_UPLOADS_AT_ONCE", "1"),
        ("HEARTH_UPLOADS_PER_MINUTE", "4"),
    ])
    .await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let room = s.room(&alice, "general").await;
    s.join(&bob, &room).await;
    uploaded(
        &s,
        &alice,
        &room,
        "a.bin",
        "application/octet-stream",
        vec![1; 700_000],
    )
    .await;
    upload(
        &s,
        &alice,
        &room,
        "b.bin",
        "application/octet-stream",
        vec![2; 700_000],
    )
    .await
    .assert_error(413, "quota_exceeded");
    // The quota is the user's own: bob has all of his.
    uploaded(
        &s,
        &bob,
        &room,
        "b.bin",
        "application/octet-stream",
        vec![2; 700_000],
    )
    .await;
    // One upload at a time: a second while one is stalled mid-body waits.
    let stalled = {
        let mut tcp = tokio::net::TcpStream::connect(&s.addr)
            .await
            .expect("connect");
        let head = format!(
            "POST /api/v1/rooms/{room}/uploads?name=slow.bin HTTP/1.1\r\nHost: {}\r\n\
             Authorization: Bearer {}\r\nContent-Length: 1000\r\n\r\nxxxx",
            s.addr, bob.token
        );
        tcp.write_all(head.as_bytes()).await.expect("head");
        tcp
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = upload(&s, &bob, &room, "c.txt", "text/plain", b"c".to_vec()).await;
    r.assert_error(429, "rate_limited");
    drop(stalled);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // And so many a minute.
    for i in 0..3 {
        let r = upload(&s, &bob, &room, "d.txt", "text/plain", vec![i]).await;
        if r.status == 429 {
            return;
        }
    }
    panic!("the upload rate never ran out");
}

#[tokio::test]
async fn deleting_the_last_message_holding_a_file_frees_it() {
    let s = TestServer::spawn().await;
    let alice = s.user("alice").await;
    let room = s.room(&alice, "general").await;
    let kept_bytes = b"kept".to_vec();
    let shared_bytes = b"same bytes in two files".to_vec();
    let kept = uploaded(&s, &alice, &room, "k.txt", "text/plain", kept_bytes.clone()).await;
    let first = uploaded(
        &s,
        &alice,
        &room,
        "1.txt",
        "text/plain",
        shared_bytes.clone(),
    )
    .await;
    let second = uploaded(
        &s,
        &alice,
        &room,
        "2.txt",
        "text/plain",
        shared_bytes.clone(),
    )
    .await;
    let m1 = post_files(&s, &alice, &room, "one", &[&first, &kept])
        .await
        .body["message"]["seq"]
        .clone();
    let m2 = post_files(&s, &alice, &room, "two", &[&second]).await.body["message"]["seq"].clone();
    let m3 = post_files(&s, &alice, &room, "three", &[&kept]).await.body["message"]["seq"].clone();

    let delete = |seq: Value| {
        let path = format!("/api/v1/rooms/{room}/messages/{seq}");
        let token = alice.token.clone();
        let s = &s;
        async move { s.request("DELETE", &path, &token, json!({})).await }
    };
    assert_eq!(delete(m1).await.status, 204);
    // `first` is freed; its bytes stay for `second`; `kept` is still held.
    let path = |f: &Value| format!("/api/v1/files/{}", id(f));
    assert_eq!(fetch(&s, &path(&first), &alice).await.status, 404);
    assert_eq!(fetch(&s, &path(&second), &alice).await.bytes, shared_bytes);
    assert_eq!(fetch(&s, &path(&kept), &alice).await.status, 200);
    let history = s.history(&alice, &room).await;
    assert_eq!(history[0]["deleted"], true);
    assert_eq!(history[0]["files"], json!([]));
    assert!(blob(&s.data_dir(), &shared_bytes).exists());

    assert_eq!(delete(m2).await.status, 204);
    assert_eq!(fetch(&s, &path(&second), &alice).await.status, 404);
    assert!(
        !blob(&s.data_dir(), &shared_bytes).exists(),
        "the bytes went with their last file"
    );
    assert_eq!(delete(m3).await.status, 204);
    assert!(!blob(&s.data_dir(), &kept_bytes).exists());
    // A freed file cannot be attached again.
    post_files(&s, &alice, &room, "", &[&kept])
        .await
        .assert_error(400, "invalid_file");
}

#[tokio::test]
async fn uploads_never_attached_are_swept_after_their_time() {
    let s = TestServer::spawn_with(&[("HEARTH_ORPHAN_UPLOAD_SECS", "2")]).await;
    let alice = s.user("alice").await;
    let room = s.room(&alice, "general").await;
    let orphan_bytes = b"never attached".to_vec();
    let orphan = uploaded(
        &s,
        &alice,
        &room,
        "o.txt",
        "text/plain",
        orphan_bytes.clone(),
    )
    .await;
    let held = uploaded(&s, &alice, &room, "h.txt", "text/plain", b"held".to_vec()).await;
    assert_eq!(
        post_files(&s, &alice, &room, "", &[&held]).await.status,
        201
    );
    let path = |f: &Value| format!("/api/v1/files/{}", id(f));
    let mut gone = false;
    for _ in 0..100 {
        if fetch(&s, &path(&orphan), &alice).await.status == 404 {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "the orphan was swept");
    // The sweep removes the record (and flushes that) before the bytes, so
    // the 404 can come a moment before the blob is gone.
    let mut blob_gone = false;
    for _ in 0..50 {
        if !blob(&s.data_dir(), &orphan_bytes).exists() {
            blob_gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        blob_gone,
        "the orphan's bytes were removed after its record"
    );
    assert_eq!(fetch(&s, &path(&held), &alice).await.status, 200);
}

/// Runs `hearth ARGS --data DIR` to completion.
fn hearth(data: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(args)
        .arg("--data")
        .arg(data)
        .env("HEARTH_LOG_LEVEL", "warn")
        .output()
        .expect("run hearth")
}

fn said(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test]
async fn backup_and_restore_carry_the_files_and_verify_rehashes_them() {
    let mut s = TestServer::spawn().await;
    let alice = s.user("alice").await;
    let room = s.room(&alice, "general").await;
    let png = picture(ImageFormat::Png, 500, 500, 9);
    let text = b"a text file".to_vec();
    let p = uploaded(&s, &alice, &room, "p.png", "image/png", png.clone()).await;
    let t = uploaded(&s, &alice, &room, "t.txt", "text/plain", text.clone()).await;
    assert_eq!(
        post_files(&s, &alice, &room, "both", &[&p, &t])
            .await
            .status,
        201
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let backup = dir.path().join("hearth.backup");
    let out = hearth(&s.data_dir(), &["backup", backup.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", said(&out));
    let out = hearth(&s.data_dir(), &["verify"]);
    assert!(out.status.success(), "{}", said(&out));

    // Restored elsewhere, the files come back whole and served.
    s.kill9();
    let restored = dir.path().join("restored");
    let out = hearth(&restored, &["restore", backup.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", said(&out));
    assert_eq!(std::fs::read(blob(&restored, &png)).expect("png"), png);
    assert_eq!(std::fs::read(blob(&restored, &text)).expect("text"), text);
    let out = hearth(&restored, &["verify"]);
    assert!(out.status.success(), "{}", said(&out));

    // A damaged file is caught by verify, naming it.
    let mut damaged = std::fs::read(blob(&restored, &text)).expect("text");
    damaged[0] ^= 0xff;
    std::fs::write(blob(&restored, &text), damaged).expect("damage");
    let out = hearth(&restored, &["verify"]);
    assert!(!out.status.success(), "{}", said(&out));
    assert!(said(&out).contains(id(&t)), "{}", said(&out));
    // And a missing one.
    std::fs::remove_file(blob(&restored, &png)).expect("remove");
    let out = hearth(&restored, &["verify"]);
    assert!(said(&out).contains(id(&p)), "{}", said(&out));
}

#[tokio::test]
async fn a_crash_mid_upload_leaves_no_half_file_to_refer_to() {
    let mut s = TestServer::spawn().await;
    let alice = s.user("alice").await;
    let room = s.room(&alice, "general").await;
    let whole = uploaded(
        &s,
        &alice,
        &room,
        "whole.bin",
        "application/octet-stream",
        vec![7; 300_000],
    )
    .await;
    // An upload half sent when the server dies.
    let mut tcp = tokio::net::TcpStream::connect(&s.addr)
        .await
        .expect("connect");
    let head = format!(
        "POST /api/v1/rooms/{room}/uploads?name=half.bin HTTP/1.1\r\nHost: {}\r\n\
         Authorization: Bearer {}\r\nContent-Length: 1000000\r\n\r\n",
        s.addr, alice.token
    );
    tcp.write_all(head.as_bytes()).await.expect("head");
    tcp.write_all(&vec![8u8; 400_000])
        .await
        .expect("half the body");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let partial: Vec<_> = std::fs::read_dir(s.data_dir().join("files/tmp"))
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert_eq!(partial.len(), 1, "the upload is being received into tmp/");
    s.kill9();
    drop(tcp);
    s.restart();

    // The half upload is gone; only whole files are stored, each whole.
    let tmp: Vec<_> = std::fs::read_dir(s.data_dir().join("files/tmp"))
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert!(tmp.is_empty(), "{tmp:?}");
    for path in blobs(&s.data_dir()) {
        let mut bytes = Vec::new();
        std::fs::File::open(&path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .expect("read a blob");
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        assert_eq!(sha256_hex(&bytes), name, "a blob is its hash");
    }
    let alice = s.login("alice", "password-alice").await;
    let r = post_files(&s, &alice, &room, "", &[&whole]).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let got = fetch(&s, &format!("/api/v1/files/{}", id(&whole)), &alice).await;
    assert_eq!(got.bytes, vec![7; 300_000]);
}
