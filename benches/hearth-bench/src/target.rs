//! The process under test: a `hearth serve` child (or the ceiling writer)
//! on an ephemeral port, or on a data directory and address kept across a
//! restart; how it stops; and what `/proc` says about its CPU and memory.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// Settings for the server the bench starts: setup must not be throttled
/// (signups, logins, sends and connections are limited per IP and per
/// user, and every bench client comes from loopback), and per-request info
/// logs would measure the terminal rather than the server. A server given
/// with `--url` needs the same settings.
pub const SERVER_ENV: &[(&str, &str)] = &[
    ("HEARTH_SIGNUP_BURST", "1000000"),
    ("HEARTH_LOGIN_PER_MINUTE", "1000000"),
    ("HEARTH_SEND_PER_SEC", "1000000"),
    ("HEARTH_SEND_BURST", "1000000"),
    ("HEARTH_MAX_FRAMES_PER_SEC", "1000000"),
    ("HEARTH_HASH_CONCURRENCY", "2"),
    ("HEARTH_MAX_CONNECTIONS", "19900"),
    // Every bench client comes from loopback, and WebSockets count per IP.
    ("HEARTH_MAX_CONNECTIONS_PER_IP", "19900"),
    ("HEARTH_LOG_LEVEL", "warn"),
];

/// A child process that prints `listening on http://ADDR` (or
/// `listening on ADDR`) on its first line.
pub struct Process {
    child: Child,
    /// The ceiling writer starts writing when it reads a line here.
    go: Option<std::process::ChildStdin>,
    pub addr: SocketAddr,
    /// The scratch directory holding the data directory, removed when the
    /// bench ends (none when the caller keeps the data directory).
    dir: Option<tempfile::TempDir>,
}

impl Process {
    /// Starts `hearth serve` on 127.0.0.1:0 with a fresh data directory.
    pub fn serve(cpus: Option<&str>, extra_env: &[(String, String)]) -> anyhow::Result<Process> {
        let dir = tempfile::Builder::new()
            .prefix("hearth-bench-")
            .tempdir()
            .context("cannot create a temporary data directory")?;
        let mut server = Self::serve_on(cpus, &dir.path().join("data"), "127.0.0.1:0", extra_env)?;
        server.dir = Some(dir);
        Ok(server)
    }

    /// Starts `hearth serve` on the data directory `data`, which the caller
    /// keeps (a restart opens it again), listening on `listen`.
    pub fn serve_on(
        cpus: Option<&str>,
        data: &Path,
        listen: &str,
        extra_env: &[(String, String)],
    ) -> anyhow::Result<Process> {
        let mut cmd = command(cpus)?;
        cmd.arg("serve")
            .arg("--listen")
            .arg(listen)
            .arg("--data")
            .arg(data);
        for (k, v) in SERVER_ENV {
            cmd.env(k, v);
        }
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        Self::spawn(cmd, None)
    }

    /// Starts the raw ceiling writer with these arguments.
    pub fn ceiling(cpus: Option<&str>, args: &[String]) -> anyhow::Result<Process> {
        let mut cmd = command(cpus)?;
        cmd.arg("bench").arg("ceiling").args(args);
        Self::spawn(cmd, None)
    }

    /// Starts the raw HTTP ceiling answering `status` with the body in `body`.
    pub fn http_ceiling(cpus: Option<&str>, status: u16, body: &Path) -> anyhow::Result<Process> {
        let mut cmd = command(cpus)?;
        cmd.args([
            "bench",
            "http-ceiling",
            "--status",
            &status.to_string(),
            "--body",
        ])
        .arg(body);
        Self::spawn(cmd, None)
    }

    fn spawn(mut cmd: Command, dir: Option<tempfile::TempDir>) -> anyhow::Result<Process> {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().context("cannot start the server process")?;
        let stdout = child.stdout.take().context("no stdout pipe")?;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .context("cannot read the server's first line")?;
        let text = line.trim();
        let addr = text
            .strip_prefix("listening on ")
            .map(|a| a.trim_start_matches("http://"))
            .and_then(|a| a.parse().ok());
        let Some(addr) = addr else {
            let _ = child.kill();
            let _ = child.wait();
            bail!("the server did not start (first line: {text:?})");
        };
        let go = child.stdin.take();
        Ok(Process {
            child,
            go,
            addr,
            dir,
        })
    }

    /// Tells the ceiling writer to start (a line on its stdin).
    pub fn go(&mut self) -> anyhow::Result<()> {
        use std::io::Write;
        if let Some(stdin) = self.go.as_mut() {
            stdin.write_all(b"go\n")?;
            stdin.flush()?;
        }
        Ok(())
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The data directory of a server this bench started.
    pub fn data_dir(&self) -> Option<std::path::PathBuf> {
        self.dir.as_ref().map(|d| d.path().join("data"))
    }

    /// Stops the process (SIGKILL: its data directory is thrown away).
    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops the server as an operator would, with SIGTERM (it saves its
    /// state and flushes), and waits up to `limit` for it to exit cleanly.
    /// Returns how long that took. The `kill` command sends the signal:
    /// the bench has no unsafe code.
    pub fn terminate(mut self, limit: Duration) -> anyhow::Result<Duration> {
        let began = Instant::now();
        let sent = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .context("cannot run kill")?;
        if !sent.success() {
            bail!("kill -TERM {} failed: {sent}", self.child.id());
        }
        while began.elapsed() < limit {
            if let Some(status) = self.child.try_wait()? {
                if !status.success() {
                    bail!("the server exited with {status} after SIGTERM");
                }
                return Ok(began.elapsed());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        bail!("the server did not exit within {limit:?} of SIGTERM")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// This binary, under `taskset -c CPUS` when asked.
fn command(cpus: Option<&str>) -> anyhow::Result<Command> {
    let exe = std::env::current_exe().context("cannot find the hearth binary")?;
    Ok(match cpus {
        Some(c) => {
            let mut cmd = Command::new("taskset");
            cmd.arg("-c").arg(c).arg(exe);
            cmd
        }
        None => Command::new(exe),
    })
}

/// CPU time and memory of a process at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    /// User + system CPU seconds since the process started.
    pub cpu_secs: f64,
    /// Resident set size, bytes.
    pub rss_bytes: u64,
    /// Seconds its live threads spent runnable but waiting for a CPU
    /// (`/proc/PID/task/*/schedstat`): on a shared machine, how much the
    /// rest of the machine held it back.
    pub runqueue_wait_secs: f64,
    /// The same for its threads at normal priority only. The server runs
    /// its background work at the lowest priority (search indexing at
    /// nice 19, password hashing in the idle class), starved by design
    /// while the rest is busy:
    /// their waits fill the figure above, these are the ones that delay
    /// deliveries.
    pub runqueue_wait_normal_secs: f64,
}

/// Linux reports CPU times in USER_HZ ticks, fixed at 100 by its ABI.
const TICKS_PER_SEC: f64 = 100.0;

/// Reads `/proc/PID/stat` (utime + stime) and `/proc/PID/status` (VmRSS).
pub fn sample(pid: u32) -> anyhow::Result<Sample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("process {pid} is gone"))?;
    // The command name is in parentheses and may hold spaces: count fields
    // after the last ')'. utime and stime are fields 14 and 15.
    let after = stat.rsplit_once(')').map(|(_, a)| a).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| -> f64 {
        fields
            .get(i - 3)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0) as f64
    };
    let cpu_secs = (ticks(14) + ticks(15)) / TICKS_PER_SEC;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    let (runqueue_wait_secs, runqueue_wait_normal_secs) = runqueue_wait(pid);
    Ok(Sample {
        cpu_secs,
        rss_bytes: rss_kib * 1024,
        runqueue_wait_secs,
        runqueue_wait_normal_secs,
    })
}

/// The run-queue wait of every live thread of `pid`, and of those at
/// normal priority (nice 0 or below, and neither in the batch nor in the
/// idle scheduling class), in seconds.
fn runqueue_wait(pid: u32) -> (f64, f64) {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return (0.0, 0.0);
    };
    let (mut all, mut normal) = (0u64, 0u64);
    for task in tasks.filter_map(Result::ok) {
        let Some(wait) = std::fs::read_to_string(task.path().join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        else {
            continue;
        };
        all += wait;
        if thread_priority(&task.path()).is_some_and(|(nice, policy)| {
            nice <= 0 && policy != SCHED_BATCH && policy != SCHED_IDLE
        }) {
            normal += wait;
        }
    }
    (all as f64 / 1e9, normal as f64 / 1e9)
}

/// Scheduling policies of background threads (`sched(7)`).
const SCHED_BATCH: u32 = 3;
const SCHED_IDLE: u32 = 5;

/// A thread's nice value and scheduling policy: fields 19 and 41 of its
/// `stat`.
fn thread_priority(task: &std::path::Path) -> Option<(i64, u32)> {
    let stat = std::fs::read_to_string(task.join("stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).copied();
    Some((field(19)?.parse().ok()?, field(41)?.parse().ok()?))
}

/// Samples once RSS has stopped moving (two samples 250 ms apart within
/// 64 KiB), or after `limit`: freed memory (password hashes hold 19 MiB
/// each) goes back to the OS with a delay and would be counted against
/// whatever is measured next.
pub fn sample_settled(pid: u32, limit: Duration) -> anyhow::Result<Sample> {
    let until = Instant::now() + limit;
    let mut last = sample(pid)?;
    while Instant::now() < until {
        std::thread::sleep(Duration::from_millis(250));
        let now = sample(pid)?;
        if now.rss_bytes.abs_diff(last.rss_bytes) < 64 * 1024 {
            return Ok(now);
        }
        last = now;
    }
    Ok(last)
}

/// Raises this process's open-file soft limit to its hard limit (children
/// inherit it) and returns the limit now in force.
pub fn raise_fd_limit() -> anyhow::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX).context("cannot raise the open-file limit")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_at_the_lowest_priority_are_told_apart() {
        let pid = std::process::id();
        let me = std::path::PathBuf::from("/proc/thread-self");
        assert_eq!(thread_priority(&me), Some((0, 0)), "nice 0, SCHED_OTHER");
        // Threads lowered the two ways the server lowers its background
        // work, spinning while they are looked at.
        let lowered = |how: &'static [&'static str]| {
            let (tx, rx) = std::sync::mpsc::channel();
            let thread = std::thread::spawn(move || {
                // This thread only: Linux keeps a nice value and a policy
                // per thread.
                let tid = std::fs::read_link("/proc/thread-self")
                    .ok()
                    .and_then(|p| p.file_name()?.to_str()?.parse::<u32>().ok())
                    .expect("thread id");
                let mut args: Vec<String> = how.iter().map(|a| a.to_string()).collect();
                args.push(tid.to_string());
                let done = std::process::Command::new(args.remove(0))
                    .args(&args)
                    .output()
                    .expect("lowered");
                assert!(done.status.success(), "{done:?}");
                tx.send(tid).expect("sent");
                let until = std::time::Instant::now() + std::time::Duration::from_millis(200);
                while std::time::Instant::now() < until {
                    std::hint::spin_loop();
                }
            });
            let tid = rx.recv().expect("started");
            let task = std::path::PathBuf::from(format!("/proc/{pid}/task/{tid}"));
            let priority = thread_priority(&task);
            thread.join().expect("joined");
            priority
        };
        assert_eq!(lowered(&["renice", "-n", "19", "-p"]), Some((19, 0)));
        assert_eq!(
            lowered(&["chrt", "--idle", "-p", "0"]).map(|(_, policy)| policy),
            Some(SCHED_IDLE)
        );
        let (all, normal) = runqueue_wait(pid);
        assert!(normal <= all, "{normal} of {all}");
    }
}
