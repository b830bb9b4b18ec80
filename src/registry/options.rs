//! How a push reaches and authenticates to a registry.

use std::path::PathBuf;
use std::time::Duration;

use super::auth::{AuthEnv, CredSource, Credentials};

/// How to reach and authenticate to the registry.
#[derive(Debug, Clone)]
pub struct PushOptions {
    /// `--creds`, `--creds-file` or `--password-stdin`; wins over auth files.
    pub creds: Option<(Credentials, CredSource)>,
    /// Where auth files and credential helpers are looked up.
    pub auth_env: AuthEnv,
    /// Allow plain HTTP and skip certificate verification (`--insecure`).
    pub insecure: bool,
    /// `--cert-dir DIR`: `*.crt` CAs, `*.cert`/`*.key` client certificate.
    pub cert_dir: Option<PathBuf>,
    /// `--ca FILE`: a PEM CA bundle trusted besides the system roots.
    pub ca: Option<PathBuf>,
    /// Retries after a transient failure (connect error, timeout, 5xx, 429).
    pub retries: u32,
    /// First retry delay; doubled each retry (capped at 30 s).
    pub backoff: Duration,
    /// Upload blobs in `PATCH` chunks of this size; None: one `PUT`.
    pub chunk_size: Option<u64>,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            creds: None,
            auth_env: AuthEnv::from_env(),
            insecure: false,
            cert_dir: None,
            ca: None,
            retries: 4,
            backoff: Duration::from_millis(500),
            chunk_size: None,
        }
    }
}
