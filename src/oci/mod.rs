//! OCI image: deterministic layer, config, manifest, index, and their writers.
