//! `minibuild check IMAGE` on a foreign oci-archive: the tar, index.json,
//! manifests, configs and layer tars all come from whoever made the file.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("minibuild-fuzz-oci-{}.tar", std::process::id()));
    std::fs::write(&path, data).unwrap();
    let _ = minibuild::image::load::load(&path);
});
