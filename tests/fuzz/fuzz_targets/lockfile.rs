//! The lockfile (`*.lock`), read back before every locked build.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = minibuild::lock::Lock::from_toml(Path::new("/fuzz/recipe.lock"), text);
    }
});
