//! A header blob from a base image's rpmdb (`Packages.blob`, stored without
//! lead or signature), as `base = "REGISTRY/REPO:TAG"` turns it into a
//! package of the resolver's installed set: whoever built the base image
//! wrote it.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = minibuild::base_image::rpmdb::packages(&[data.to_vec()], "var/lib/rpm/rpmdb.sqlite");
});
