//! Admission: a connection's place under `max_connections` and under its
//! address's cap, held for as long as the connection (or the WebSocket it
//! became) lives.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// A connection's place under `max_connections` and its IP's cap, held
/// until the connection (HTTP, or the WebSocket it became) ends.
pub struct Admission {
    pub(super) _permit: tokio::sync::OwnedSemaphorePermit,
    pub(super) _ip: IpSlot,
}

type Counts = Arc<Mutex<HashMap<IpAddr, usize>>>;

/// Counts open connections per client address.
#[derive(Clone)]
pub(super) struct PerIp {
    counts: Counts,
    max: usize,
}

/// One admitted connection; releases its slot when dropped.
pub(super) struct IpSlot {
    counts: Counts,
    ip: IpAddr,
}

impl PerIp {
    pub(super) fn new(max: usize) -> PerIp {
        PerIp {
            counts: Default::default(),
            max,
        }
    }

    pub(super) fn admit(&self, ip: IpAddr) -> Option<IpSlot> {
        let mut counts = crate::locks::lock(&self.counts);
        let n = counts.entry(ip).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(IpSlot {
            counts: self.counts.clone(),
            ip,
        })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut counts = crate::locks::lock(&self.counts);
        if let Some(n) = counts.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}
