//! ELF reading (dynamic section, program headers) of files from packages.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::io::Cursor;

fuzz_target!(|data: &[u8]| {
    let _ = minibuild::elf::read(Cursor::new(data));
    let _ = minibuild::elf::load_segments(Cursor::new(data));
});
