//! Micro-benchmarks of the hot paths a message takes: framing it once,
//! fanning it out to every connection's outbox, the writer's coalesced
//! write, the group-committed append, and the history scan behind resume
//! and scroll-back. `cargo bench --bench hot_paths`; results and how to
//! read them are in BENCHMARKS.md.

use std::collections::HashMap;
use std::io::{IoSlice, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

use bytes::Bytes;
use divan::{black_box, Bencher};
use hearth::config::Durability;
use hearth::hub::{Hub, Outbox, Piece};
use hearth::ids::{EventId, Millis, RoomId, Seq, TokenHash, UserId};
use hearth::protocol::{AuthorView, Format, MessageView, ServerFrame};
use hearth::storage::log::AppendBatch;
use hearth::storage::records::{EventKind, EventRecord};
use hearth::storage::Store;
use hearth::wire::{self, Encoded};

fn main() {
    divan::main();
}

/// A message as the committer stores and publishes it.
fn event(body_len: usize) -> EventRecord {
    EventRecord {
        id: EventId::generate(),
        at: Millis::now(),
        kind: EventKind::Message {
            author: UserId::generate(),
            body: "b 1763900000000000 ".to_string() + &"x".repeat(body_len),
            client_id: Some("m123".into()),
            reply_to: None,
            mentions: Vec::new(),
            mentions_room: false,
            files: Vec::new(),
        },
    }
}

/// The `message` frame of an event, as the committer publishes it.
fn message_frame(room: RoomId, seq: u64, e: &EventRecord) -> ServerFrame<'_> {
    let author = AuthorView {
        id: e.kind.actor(),
        username: "b1a2b3cu17",
        deleted: false,
    };
    let message = MessageView::of(room, Seq(seq), e, author).expect("a message event");
    ServerFrame::Message { message }
}

/// Serializing and framing one event, as the committer does once per
/// message: JSON alone, and both formats (what `Encoded` does when the
/// room has clients of both).
mod encode {
    use super::*;

    #[divan::bench]
    fn json_frame(b: Bencher) {
        let room = RoomId::generate();
        let e = event(0);
        b.bench_local(|| wire::encode(black_box(&message_frame(room, 42, &e)), Format::Json));
    }

    #[divan::bench]
    fn json_and_msgpack(b: Bencher) {
        let room = RoomId::generate();
        let e = event(0);
        b.bench_local(|| {
            let frame = message_frame(black_box(room), 42, &e);
            let encoded = Encoded::new(&frame);
            (
                encoded.for_format(Format::Json),
                encoded.for_format(Format::Msgpack),
            )
        });
    }
}

/// `Hub::publish` of one event to N live outboxes, then each outbox
/// drained as its writer would (so queues never fill). Divide by N for
/// the cost per delivery.
#[divan::bench(args = [100, 1_000, 10_000, 15_000])]
fn fanout_publish_and_drain(b: Bencher, n: usize) {
    let hub = Hub::new();
    let room = RoomId::generate();
    let user = UserId::generate();
    let outboxes: Vec<Arc<Outbox>> = (0..n)
        .map(|_| {
            let o = Outbox::new(
                hub.next_conn_id(),
                user,
                TokenHash([0; 32]),
                Format::Json,
                4096,
            );
            hub.connect(&o, &[room]);
            o.release(&HashMap::new());
            o
        })
        .collect();
    let e = event(0);
    let frame = message_frame(room, 1, &e);
    let mut scratch: Vec<Piece> = Vec::with_capacity(64);
    b.counter(divan::counter::ItemsCount::new(n))
        .bench_local(|| {
            hub.publish(room, Seq(1), &Encoded::new(&frame));
            for o in &outboxes {
                o.drain(&mut scratch, true);
                scratch.clear();
            }
        });
}

/// K frames to a loopback TCP socket: one vectored write (the writer's
/// coalescing) against K separate writes. A thread on the other end
/// drains the socket.
mod coalescing {
    use super::*;

    struct Pair {
        tx: TcpStream,
        _rx: std::thread::JoinHandle<()>,
    }

    fn pair() -> Pair {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let tx = TcpStream::connect(l.local_addr().expect("addr")).expect("connect");
        tx.set_nodelay(true).expect("nodelay");
        let (mut rx, _) = l.accept().expect("accept");
        let handle = std::thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 16];
            while matches!(rx.read(&mut buf), Ok(n) if n > 0) {}
        });
        Pair { tx, _rx: handle }
    }

    fn frames(k: usize) -> Vec<Bytes> {
        let e = event(0);
        let f = wire::encode(&message_frame(RoomId::generate(), 1, &e), Format::Json);
        vec![f; k]
    }

    #[divan::bench(args = [1, 4, 16, 64])]
    fn one_writev(b: Bencher, k: usize) {
        let mut p = pair();
        let frames = frames(k);
        b.counter(divan::counter::ItemsCount::new(k))
            .bench_local(|| {
                let mut slices: Vec<IoSlice<'_>> = frames.iter().map(|f| IoSlice::new(f)).collect();
                let mut bufs = &mut slices[..];
                while !bufs.is_empty() {
                    let n = p.tx.write_vectored(bufs).expect("writev");
                    IoSlice::advance_slices(&mut bufs, n);
                }
            });
    }

    #[divan::bench(args = [1, 4, 16, 64])]
    fn k_writes(b: Bencher, k: usize) {
        let mut p = pair();
        let frames = frames(k);
        b.counter(divan::counter::ItemsCount::new(k))
            .bench_local(|| {
                for f in &frames {
                    p.tx.write_all(f).expect("write");
                }
            });
    }
}

/// The committer's append: G events in one atomic batch, then one flush
/// (the durability point every ack waits for).
#[divan::bench(args = [1, 16, 128, 1024], sample_count = 30, sample_size = 1)]
fn append_group_commit(b: Bencher, group: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), 64 << 20, Durability::Flush).expect("open store");
    let room = RoomId::generate();
    let events: Vec<EventRecord> = (0..group).map(|_| event(40)).collect();
    let mut seq = 0u64;
    b.counter(divan::counter::ItemsCount::new(group))
        .bench_local(|| {
            let mut batch = AppendBatch::default();
            for e in &events {
                seq += 1;
                batch.push(room, Seq(seq), e);
            }
            store.log().expect("room log").apply(batch).expect("apply");
            store.flush().expect("flush");
        });
}

/// A page of history: 50 events after a seq (resume, `after=`) and the
/// newest 50 (opening a room), from a room of 20,000 messages.
mod history {
    use super::*;

    const STORED: u64 = 20_000;

    fn filled() -> (tempfile::TempDir, Store, RoomId) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), 64 << 20, Durability::Flush).expect("open store");
        let room = RoomId::generate();
        let mut seq = 0;
        while seq < STORED {
            let mut batch = AppendBatch::default();
            for _ in 0..1000 {
                seq += 1;
                batch.push(room, Seq(seq), &event(40));
            }
            store.log().expect("room log").apply(batch).expect("apply");
        }
        store.flush().expect("flush");
        (dir, store, room)
    }

    #[divan::bench]
    fn page_of_50_after(b: Bencher) {
        let (_dir, store, room) = filled();
        let mut from = 1;
        b.bench_local(|| {
            from = (from + 7919) % (STORED - 60) + 1;
            store
                .log()
                .expect("room log")
                .range(room, Seq(from), Seq(STORED), 50)
                .expect("range")
        });
    }

    /// The same page read forwards from `head - 49`: seqs are dense
    /// (1..=head), so no reverse iteration is needed to find it.
    #[divan::bench]
    fn newest_page_of_50_forward(b: Bencher) {
        let (_dir, store, room) = filled();
        b.bench_local(|| {
            store
                .log()
                .expect("room log")
                .range(room, Seq(STORED - 49), Seq(STORED), 50)
                .expect("range")
        });
    }

    /// The dedup window of the default size built from the room's tail:
    /// what the first send to a room pays after a start or ten idle
    /// minutes (16,384 events read, decoded and hashed).
    #[divan::bench(sample_count = 20, sample_size = 1)]
    fn dedup_window_of_16384(b: Bencher) {
        let (_dir, store, room) = filled();
        let log = store.log().expect("room log");
        b.bench_local(|| {
            hearth::dedup::Window::build(&log, room, Seq(STORED), 16_384).expect("build")
        });
    }

    #[divan::bench]
    fn newest_page_of_50(b: Bencher) {
        let (_dir, store, room) = filled();
        b.bench_local(|| {
            store
                .log()
                .expect("room log")
                .range_newest(room, Seq(1), Seq(STORED), 50)
                .expect("range")
        });
    }
}
