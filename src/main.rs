//! The `hearth` binary: parse the command line, run it, map the result to
//! an exit code. Everything else lives in the library.

use clap::Parser;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    pin_mmap_threshold();
    let cli = hearth::cli::Cli::parse();
    match hearth::cli::execute(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// glibc raises its mmap threshold each time a large mmapped block is freed,
/// after which argon2's 19 MiB blocks come from the heap and stay resident:
/// the server measured 620 MB RSS after a hundred logins, before any socket
/// opened. A fixed threshold keeps large blocks mmapped and returned on free
/// (the same server: under 10 MB). Only with the system allocator.
#[allow(unsafe_code)]
fn pin_mmap_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu", not(feature = "mimalloc")))]
    // SAFETY: mallopt only changes allocator tuning; it is called first thing
    // in main, before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}
