//! Recipe TOML: parse and validate (paths, URLs, tags, accounts, options).
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = minibuild::recipe::parse(Path::new("/fuzz/recipe.toml"), text);
    }
});
