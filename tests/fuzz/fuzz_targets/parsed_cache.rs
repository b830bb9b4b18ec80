//! A whole parsed-metadata cache file (magic, sizes, CRC-32 chunks, then the
//! codec): damaged bytes must be refused as `Unusable`, never decoded wrong
//! or panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("minibuild-fuzz-parsed-{}", std::process::id()));
    std::fs::write(&path, data).unwrap();
    let _ = minibuild::repo::parsed::read(&path, 0);
});
