//! RPM lead, signature and main header through minibuild's one RPM reader
//! (sizes within rpm's limits and every index entry's bounds checked before
//! the rpm crate sees them), and the header-size parser `plan` sizes its
//! Range reads with: both must agree on where the headers end.
#![no_main]
use libfuzzer_sys::fuzz_target;
use minibuild::package::file::{header_end, HeaderEnd, Headers};

fuzz_target!(|data: &[u8]| {
    let end = header_end(data);
    if let Ok(headers) = Headers::parse(data) {
        let payload_at = headers.payload_offset() as usize;
        match end {
            Ok(HeaderEnd::At(layout)) => assert_eq!(layout.main.end, payload_at),
            other => panic!("read headers ending at {payload_at}, header_end says {other:?}"),
        }
        let _ = headers.nevra();
        let _ = (headers.signature_blob(), headers.main_blob());
    }
});
