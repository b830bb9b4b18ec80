//! The parsed-metadata cache's package decoder: a damaged cache file
//! (disk error, another version, tampering) must decode or be refused.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The count comes from the cache file's header: let the input pick it.
    let Some((&count, body)) = data.split_first() else {
        return;
    };
    let _ = minibuild::repo::codec::decode(body, usize::from(count), 0, |_| {});
});
