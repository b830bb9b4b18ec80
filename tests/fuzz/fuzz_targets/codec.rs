//! The parsed-metadata cache's package decoder: a damaged cache file
//! (disk error, another version, tampering) must decode or be refused, and
//! a package the load-time skim accepts must decode (the resolver decodes
//! it later, from the mapped file, and has no way to refuse it then).
#![no_main]
use libfuzzer_sys::fuzz_target;
use minibuild::repo::codec::{decode, View};

fuzz_target!(|data: &[u8]| {
    // The count comes from the cache file's header: let the input pick it.
    let Some((&count, body)) = data.split_first() else {
        return;
    };
    let _ = decode(body, usize::from(count), 0, |_| {});
    let Some(view) = View::new(body) else {
        return;
    };
    let mut at = view.body;
    for _ in 0..count {
        let Some((_, next)) = view.skim_at(at) else {
            return;
        };
        let decoded = view.package_at(at, 0).map(|(_, end)| end);
        assert_eq!(decoded, Some(next), "skimmed at {at} but does not decode");
        at = next;
    }
});
