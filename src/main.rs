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

/// mimalloc commits its 1 GiB arena up front on Linux and then keeps what
/// it touched resident: an idle server held ~60 MB. Committed on demand,
/// the same server held ~18 MB, less than with the system allocator (~21),
/// at the same CPU per delivery (BENCHMARKS.md, "mimalloc by default").
/// The option must be set before the arena is reserved, which happens at
/// the first allocation, before `main`: so this runs as a constructor of
/// priority 100, before mimalloc's own (101) and before the Rust runtime
/// allocates anything.
#[cfg(all(feature = "mimalloc", target_os = "linux"))]
#[allow(unsafe_code)]
#[used]
#[link_section = ".init_array.00100"]
static LAZY_ARENA_COMMIT: extern "C" fn() = lazy_arena_commit;

#[cfg(all(feature = "mimalloc", target_os = "linux"))]
#[allow(unsafe_code)]
extern "C" fn lazy_arena_commit() {
    // `mi_option_arena_eager_commit` in the mimalloc v3 that
    // libmimalloc-sys 0.1.49 builds (its Rust bindings name no constant
    // for it); a newer libmimalloc-sys needs this checked.
    const MI_OPTION_ARENA_EAGER_COMMIT: std::ffi::c_int = 4;
    extern "C" {
        fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
    }
    // SAFETY: stores one value in mimalloc's static option table; nothing
    // else runs this early, and mimalloc reads the table when it starts.
    unsafe { mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0) };
}
