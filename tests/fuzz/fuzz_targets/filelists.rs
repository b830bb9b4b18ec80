//! filelists.xml (decompressed), read when a file dependency is not in primary.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = minibuild::repo::filelists::parse(data, |_pkgid, _files| {});
});
