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

fn set_idle_class() -> bool {
    to_idle(0)
}

/// Moves thread `tid` of this process (0: the calling thread) to the idle
/// scheduling class, at niceness 0 (which that class ignores, but a later
/// move back to the normal class finds); false where that is refused.
#[allow(unsafe_code)]
pub fn to_idle(tid: i32) -> bool {
    #[cfg(target_os = "linux")]
    // SAFETY: only changes the scheduling class and niceness of a thread
    // of this process; the param is a plain struct that outlives the call.
    unsafe {
        let param = libc::sched_param { sched_priority: 0 };
        let idle = libc::sched_setscheduler(tid, libc::SCHED_IDLE, &param) == 0;
        if idle {
            libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 0);
        }
        idle
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = tid;
        false
    }
}

/// Moves the calling thread to the batch scheduling class: the same share
/// of the CPU as a normal thread, but its wake-ups do not preempt the thread
/// running on its core. The group committer runs so: woken by each send
/// while the core is busy reading sends, it would otherwise take the core
/// at once and commit groups of one; left to run when that thread yields,
/// it finds the sends gathered. Where refused, the thread stays as it was.
#[allow(unsafe_code)]
pub fn batch() -> bool {
    #[cfg(target_os = "linux")]
    // SAFETY: only changes the calling thread's scheduling class; the param
    // is a plain struct that outlives the call.
    unsafe {
        let param = libc::sched_param { sched_priority: 0 };
        libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) == 0
    }
    #[cfg(not(target_os = "linux"))]
    false
}

/// The calling thread's id, for [`raise_from_idle`] from another thread.
#[allow(unsafe_code)]
pub fn thread_id() -> i32 {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid has no preconditions.
    unsafe {
        libc::gettid()
    }
    #[cfg(not(target_os = "linux"))]
    0
}

/// Moves thread `tid` of this process out of the idle class into the
/// normal one at niceness `nice` (or 19, where `nice` is not allowed).
/// Returns false where neither is allowed: leaving the idle class needs
/// `CAP_SYS_NICE` or a `RLIMIT_NICE` that covers the niceness.
#[allow(unsafe_code)]
pub fn raise_from_idle(tid: i32, nice: i32) -> bool {
    #[cfg(target_os = "linux")]
    // SAFETY: only changes the niceness and class of a thread of this
    // process; the param is a plain struct that outlives the call.
    unsafe {
        let param = libc::sched_param { sched_priority: 0 };
        for n in [nice, LOWEST] {
            libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, n);
            if libc::sched_setscheduler(tid, libc::SCHED_OTHER, &param) == 0 {
                return true;
            }
        }
        false
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (tid, nice);
        false
    }
}

/// This process's CPU time so far (user + system, all threads), seconds.
pub fn process_cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name, which is in parentheses.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let mut fields = rest.split(' ');
    // utime and stime are fields 14 and 15 of the line (11 and 12 here).
    let utime: f64 = fields.nth(11)?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    // USER_HZ is 100 on every Linux ABI.
    Some((utime + stime) / 100.0)
}
