//! RPM lead, signature and main header through minibuild's checked reader
//! (bounds of every index entry are checked before the rpm crate sees them).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = minibuild::rpm::metadata::read_metadata(&mut &data[..]);
});
