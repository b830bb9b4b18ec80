//! sysusers.d files shipped by packages.
#![no_main]
use libfuzzer_sys::fuzz_target;
use minibuild::rootfs::accounts::{parse_sysusers, Request};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let mut req = Request::new("fuzz", (100, 999), false);
        let _ = parse_sysusers(text, "/usr/lib/sysusers.d/fuzz.conf", &mut req);
    }
});
