//! repomd.xml, the first file fetched from a (possibly hostile) mirror.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = minibuild::repo::repomd::parse(data);
});
