//! A metalink document, fetched from a URL the recipe names (or a mirror of it).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = minibuild::repo::metalink::parse(data) {
        let _ = m.accepts(data);
    }
});
