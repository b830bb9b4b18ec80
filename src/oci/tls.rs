//! The HTTP agent for registries: system roots, plus private CAs from
//! `--ca FILE` and `--cert-dir DIR` (`*.crt`, as in containers'
//! `certs.d`), and a client certificate from `DIR/*.cert` + `*.key`.
//! `--insecure` turns certificate verification off.

use std::path::Path;
use std::time::Duration;

use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig};

use super::push::{PushError, PushOptions};

pub fn agent(opts: &PushOptions, registry: &str) -> Result<ureq::Agent, PushError> {
    let mut extra: Vec<Certificate<'static>> = Vec::new();
    let mut client_cert = None;
    if let Some(file) = &opts.ca {
        extra.extend(read_certs(file, registry)?);
    }
    if let Some(dir) = &opts.cert_dir {
        let entries = std::fs::read_dir(dir).map_err(|e| tls_file_error(registry, dir, &e))?;
        let mut names: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        names.sort();
        for path in &names {
            match path.extension().and_then(|e| e.to_str()) {
                Some("crt") => extra.extend(read_certs(path, registry)?),
                Some("cert") => {
                    let key = path.with_extension("key");
                    let chain = read_certs(path, registry)?;
                    let pem =
                        std::fs::read(&key).map_err(|e| tls_file_error(registry, &key, &e))?;
                    let key = PrivateKey::from_pem(&pem).map_err(|e| PushError::Tls {
                        registry: registry.to_string(),
                        reason: format!("{}: {e}", key.display()),
                    })?;
                    client_cert = Some(ClientCert::new_with_certs(&chain, key));
                }
                _ => {}
            }
        }
    }
    let roots = if extra.is_empty() {
        RootCerts::PlatformVerifier
    } else {
        // System roots as well: a private CA adds trust, it does not replace it.
        let mut all = extra;
        let native = rustls_native_certs::load_native_certs();
        all.extend(
            native
                .certs
                .into_iter()
                .map(|c| Certificate::from_der(c.as_ref()).to_owned()),
        );
        RootCerts::new_with_certs(&all)
    };
    let tls = TlsConfig::builder()
        .root_certs(roots)
        .client_cert(client_cert)
        .disable_verification(opts.insecure)
        .build();
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

fn read_certs(path: &Path, registry: &str) -> Result<Vec<Certificate<'static>>, PushError> {
    let pem = std::fs::read(path).map_err(|e| tls_file_error(registry, path, &e))?;
    let certs: Vec<Certificate<'static>> = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect();
    if certs.is_empty() {
        return Err(PushError::Tls {
            registry: registry.to_string(),
            reason: format!("{} holds no PEM certificate", path.display()),
        });
    }
    Ok(certs)
}

fn tls_file_error(registry: &str, path: &Path, e: &std::io::Error) -> PushError {
    PushError::Tls {
        registry: registry.to_string(),
        reason: format!("cannot read {}: {e}", path.display()),
    }
}
