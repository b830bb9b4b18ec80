//! A registry's `WWW-Authenticate` header.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(header) = std::str::from_utf8(data) {
        let _ = minibuild::registry::auth::Challenge::parse(header);
    }
});
