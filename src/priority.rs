//! Lowering a background thread's priority, so work nobody waits on
//! (password hashes, the search indexer) never takes a core from message
//! delivery. On Linux both the scheduling class and the niceness belong to
//! one thread, and threads it starts afterwards inherit them.

/// The lowest niceness of the normal class (0 is normal).
const LOWEST: i32 = 19;

/// Moves the calling thread to the idle scheduling class, which runs only
/// on CPU time nothing else wants; where that is refused, to [`lowest`].
pub fn idle_or_lowest() {
    if !set_idle_class() {
        lowest();
    }
}

/// Gives the calling thread the lowest niceness: it still runs on a busy
/// core, but every normal thread goes first.
#[allow(unsafe_code)]
pub fn lowest() {
    #[cfg(target_os = "linux")]
    // SAFETY: only changes this thread's niceness; a failure (e.g. no
    // permission) leaves the thread as it was.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, LOWEST);
    }
}

#[allow(unsafe_code)]
fn set_idle_class() -> bool {
    #[cfg(target_os = "linux")]
    // SAFETY: only changes this thread's scheduling class; the param is a
    // plain struct that outlives the call.
    unsafe {
        let param = libc::sched_param { sched_priority: 0 };
        libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) == 0
    }
    #[cfg(not(target_os = "linux"))]
    false
}
