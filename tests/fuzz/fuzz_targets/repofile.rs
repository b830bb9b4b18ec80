//! A dnf .repo file named by `[[repo]] from`, with one variable defined.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let vars = std::collections::BTreeMap::from([("contentdir".to_string(), "pub".to_string())]);
    let _ = minibuild::repofile::parse(&String::from_utf8_lossy(data), &vars);
});
