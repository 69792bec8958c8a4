//! Giving the heap back after bursts of new connections.
//!
//! A WebSocket's handshake needs far more memory for a moment (hyper's
//! buffers, the request, the `ready` frame) than the connection keeps
//! (its two tasks and its outbox). glibc hands the small long-lived pieces
//! out of the holes the handshakes left, so after a burst the heap is
//! spread over pages that are mostly free but each still touched: with
//! 5,000 idle sockets, 3.4 KiB each was in use and 6 to 11 KiB each was
//! resident. `malloc_trim` returns the free pages inside the heap, not only
//! at its top; run once a burst has settled it brought the resident size
//! back to about what is in use (see `docs/bench/rss/NOTES.md`).

use std::sync::Arc;
use std::time::Duration;

use crate::state::AppState;

/// How often the connection count is looked at.
const EVERY: Duration = Duration::from_secs(1);

/// Connections opened since the last trim that trigger one even while the
/// burst goes on, so a long one does not grow the heap unchecked.
const BURST: u64 = 2_000;

/// Trims the heap once connections stop opening (a second without a new
/// one), or every [`BURST`] new ones. Quiet servers never trim.
pub async fn trim_after_bursts(state: Arc<AppState>) {
    let mut every = tokio::time::interval(EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut trimmed_at = state.hub.opened();
    let mut seen = trimmed_at;
    loop {
        every.tick().await;
        let opened = state.hub.opened();
        let settled = opened == seen && opened != trimmed_at;
        seen = opened;
        if settled || opened.saturating_sub(trimmed_at) >= BURST {
            trimmed_at = opened;
            // Off the async workers: it walks every free chunk of the heap.
            let _ = tokio::task::spawn_blocking(trim).await;
        }
    }
}

/// Returns the free pages of every malloc arena to the OS.
#[allow(unsafe_code)]
fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu", not(feature = "mimalloc")))]
    // SAFETY: malloc_trim only releases memory glibc holds as free; it
    // takes each arena's lock and is safe to call from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}
