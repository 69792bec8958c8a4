//! A config file is checked the way `hearth serve` and `hearth config check`
//! would: any text must load or be refused with a message, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // One file per fuzzing process, rewritten for every input.
    let path = std::env::temp_dir().join(format!("hearth-fuzz-{}.toml", std::process::id()));
    if std::fs::write(&path, text).is_ok() {
        let _ = hearth::config::check_file(&path);
    }
});
