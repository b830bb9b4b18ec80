//! A Berkeley DB `Packages` file (rpm < 4.16: RHEL/UBI 8, CentOS 7/8), as a
//! base image `base = "REGISTRY/REPO:TAG"` holds it: whoever built the base
//! wrote it. Its header blobs go on to the installed-set reader.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(records) = minibuild::base_image::rpmdb::bdb_blobs(data) {
        let blobs: Vec<Vec<u8>> = records.into_iter().map(|(_, blob)| blob).collect();
        let _ = minibuild::base_image::rpmdb::packages(&blobs, "var/lib/rpm/Packages");
    }
});
