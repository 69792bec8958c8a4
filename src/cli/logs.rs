//! The server's log stream: stderr, written in batches.
//!
//! Every HTTP request logs a line at `info`. Written one by one, each line
//! is a `write` call of its own on the thread that answered the request.
//! Here a line at `info` or below joins a buffer that a thread writes out
//! every [`EVERY`] (or at once when it passes [`FULL`]); a warning or an
//! error writes the buffer and then itself at once, so lines never change
//! order and trouble is never late. A panic writes the buffer before its
//! message, and the server writes it once more as it stops.

use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Duration;

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// The longest a line at `info` waits to be written.
const EVERY: Duration = Duration::from_millis(100);

/// Buffered bytes that are written at once, without waiting for the timer.
const FULL: usize = 64 * 1024;

/// stderr, batched; see the module documentation.
pub struct Batched {
    buffer: Arc<Mutex<Vec<u8>>>,
}

/// The buffer, once the thread that writes it out runs: a panic and the
/// end of `serve` write what it holds. Unset, every line goes out at once.
static BUFFER: OnceLock<Weak<Mutex<Vec<u8>>>> = OnceLock::new();

impl Batched {
    /// The log's writer, and the thread that writes it out every
    /// [`EVERY`]; the thread ends with the process.
    pub fn start() -> Batched {
        let buffer = Arc::new(Mutex::new(Vec::with_capacity(FULL)));
        let weak = Arc::downgrade(&buffer);
        let spawned = std::thread::Builder::new()
            .name("hearth-log".into())
            .spawn(move || {
                while let Some(buffer) = weak.upgrade() {
                    write_out(crate::locks::lock(&buffer));
                    drop(buffer);
                    std::thread::sleep(EVERY);
                }
            });
        if spawned.is_ok() && BUFFER.set(Arc::downgrade(&buffer)).is_ok() {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                // Not a lock that could wait: the panic may be this
                // thread's own, while it held the buffer.
                if let Some(buffer) = BUFFER.get().and_then(Weak::upgrade) {
                    if let Ok(held) = buffer.try_lock() {
                        write_out(held);
                    }
                }
                previous(info);
            }));
        }
        Batched { buffer }
    }
}

/// Writes whatever the log holds now.
pub fn flush() {
    if let Some(buffer) = BUFFER.get().and_then(Weak::upgrade) {
        write_out(crate::locks::lock(&buffer));
    }
}

/// Writes the held lines to stderr and forgets them.
fn write_out(mut held: MutexGuard<'_, Vec<u8>>) {
    // Nowhere to report a failed write of the log itself.
    let _ = write_held(&held);
    held.clear();
}

fn write_held(held: &[u8]) -> std::io::Result<()> {
    if held.is_empty() {
        return Ok(());
    }
    std::io::stderr().lock().write_all(held)
}

/// One event's writer: its line joins the buffer, or (`urgent`) goes out
/// at once with everything before it.
pub struct Line<'a> {
    buffer: &'a Mutex<Vec<u8>>,
    urgent: bool,
}

impl Write for Line<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut held = crate::locks::lock(self.buffer);
        held.extend_from_slice(bytes);
        if self.urgent || held.len() >= FULL || BUFFER.get().is_none() {
            let written = write_held(&held);
            held.clear();
            written?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Batched {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Line<'a> {
        Line {
            buffer: &self.buffer,
            urgent: true,
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Line<'a> {
        Line {
            buffer: &self.buffer,
            urgent: *meta.level() <= Level::WARN,
        }
    }
}
