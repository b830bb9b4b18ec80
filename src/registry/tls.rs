//! The HTTP agent for registries: system roots, plus private CAs from
//! `--ca FILE` and `--cert-dir DIR` (`*.crt`, as in containers'
//! `certs.d`), and a client certificate from `DIR/*.cert` + `*.key`, read
//! by the same [`crate::http::tls_config`] as for mirrors.
//! `--insecure` turns certificate verification off.

use std::time::Duration;

use super::error::PushError;
use super::options::PushOptions;
use crate::http::{tls_config, TlsTrust};

pub fn agent(opts: &PushOptions, registry: &str) -> Result<ureq::Agent, PushError> {
    let trust = TlsTrust {
        ca: opts.ca.clone(),
        cert_dir: opts.cert_dir.clone(),
    };
    let tls = tls_config(&trust, opts.insecure).map_err(|e| PushError::Tls {
        registry: registry.to_string(),
        reason: format!("{}: {}", e.path.display(), e.reason),
    })?;
    Ok(ureq::Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(tls)
        // Redirects are followed by the registry client, under its
        // credential rules; none here (and never an Authorization header).
        .max_redirects(0)
        .redirect_auth_headers(ureq::config::RedirectAuthHeaders::Never)
        .timeout_connect(Some(Duration::from_secs(15)))
        .timeout_recv_response(Some(Duration::from_secs(300)))
        .build()
        .new_agent())
}
