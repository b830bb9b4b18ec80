//! The cpio payload reader (newc and stripped members), behind the same
//! size bound the unpacker puts on a decompressed payload.
#![no_main]
use libfuzzer_sys::fuzz_target;
use minibuild::rootfs::cpio::{Bounded, CpioReader, Member};

fuzz_target!(|data: &[u8]| {
    let mut cpio = CpioReader::new(Bounded::new(data, data.len() as u64));
    // A member count bound: every member consumes at least a header.
    for _ in 0..=data.len() {
        match cpio.next_member() {
            Ok(Some(Member::Indexed { index })) => {
                // Stripped members take their size from the RPM header:
                // any size must be handled, including ones past the end.
                cpio.set_size(u64::from(index) & 0xffff);
            }
            Ok(Some(Member::Named { .. })) => {}
            Ok(None) | Err(_) => return,
        }
        if cpio.copy_data(&mut std::io::sink()).is_err() {
            return;
        }
    }
});
