//! primary.xml (decompressed), the package list every resolve reads.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = minibuild::repo::primary::parse(data, 0);
});
