//! sled alone under the shape of `hearth bench rooms`: 300 rooms, each
//! group commit a batch of `GROUP` events spread over them at random (each
//! the room's next seq under `0x00 room seq`, 190 bytes, as hearth's log
//! keys are), plus each touched room's head key (`0x02 room`), applied and
//! flushed as the committer does. Prints the process's CPU time per event.
//! Usage: sled-micro DIR [EVENTS [GROUP]]; with `tunables.patch` applied to
//! the sled it builds against, SLED_LEAF (keys a leaf holds before it
//! splits, 16), SLED_INDEX (children an index node holds before it splits,
//! 32 as vendored, 256 in stock sled; it merges below a quarter of that)
//! and SLED_APPEND=1 (a leaf split for an append keeps all but 4 keys on
//! the left) change sled's shape; NOHEAD=1 leaves out the head keys.
fn cpu_secs() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap();
    let f: Vec<&str> = s.rsplit(')').next().unwrap().split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    ticks / 100.0
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args.next().expect("a directory for the database");
    let total: u64 = args.next().map_or(351_000, |a| a.parse().unwrap());
    let group: u64 = args.next().map_or(200, |a| a.parse().unwrap());
    let heads = std::env::var_os("NOHEAD").is_none();
    let db = sled::Config::new()
        .path(&dir)
        .cache_capacity(256 << 20)
        .flush_every_ms(Some(500))
        .sync_writes(false)
        .open()
        .unwrap();
    let tree = db.open_tree("roomlog").unwrap();
    let rooms: Vec<[u8; 16]> = (0..300u64)
        .map(|i| {
            let x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let mut r = [0u8; 16];
            r[..8].copy_from_slice(&x.to_be_bytes());
            r[8..].copy_from_slice(&(x ^ 0xdead_beef).to_le_bytes());
            r
        })
        .collect();
    let mut seqs = vec![0u64; rooms.len()];
    let mut rng: u64 = 12345;
    let started = cpu_secs();
    let mut n = 0;
    while n < total {
        let mut batch = sled::Batch::default();
        for _ in 0..group {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let r = (rng % rooms.len() as u64) as usize;
            seqs[r] += 1;
            let mut key = [0u8; 25];
            key[1..17].copy_from_slice(&rooms[r]);
            key[17..].copy_from_slice(&seqs[r].to_be_bytes());
            let mut value = vec![0x5a; 190];
            value[..8].copy_from_slice(&seqs[r].to_be_bytes());
            batch.insert(&key[..], value);
            if heads {
                let mut head = [2u8; 17];
                head[1..].copy_from_slice(&rooms[r]);
                batch.insert(&head[..], &seqs[r].to_be_bytes());
            }
            n += 1;
        }
        tree.apply_batch(batch).unwrap();
        db.flush().unwrap();
    }
    let cpu = cpu_secs() - started;
    let env = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.into());
    println!(
        "leaf={} index={} append={} heads={heads} events={total} group={group} cpu_s={cpu:.2} us_per_event={:.2}",
        env("SLED_LEAF", "16"),
        env("SLED_INDEX", "32"),
        env("SLED_APPEND", "0"),
        cpu * 1e6 / total as f64
    );
}
