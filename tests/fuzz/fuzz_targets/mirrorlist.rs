//! A mirrorlist document, read as text the way the loader reads it.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = minibuild::repo::mirrorlist::parse(&String::from_utf8_lossy(data));
});
