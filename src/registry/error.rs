//! What can go wrong in a push, each error naming the registry or file and
//! saying what to try.

use std::path::PathBuf;

use crate::digest::Digest;
use crate::image::ImageError;

use super::auth::AuthError;
use super::origin::Refusal;

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The local image cannot be read, or cannot be pushed as it is.
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("cannot read blob {digest} from `{}`", path.display())]
    ReadBlob {
        path: PathBuf,
        digest: Digest,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("unknown registry host `{registry}`: it does not resolve; check the name in the image reference")]
    UnknownHost {
        registry: String,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS with registry `{registry}` failed: {reason}; for a private CA pass --ca FILE or --cert-dir DIR (or --insecure for a test registry)")]
    Tls { registry: String, reason: String },
    #[error("registry `{registry}` answered in plain HTTP at {url}, where TLS was expected: if it really has no TLS and you trust the network to it, pass --insecure; otherwise check the host and port")]
    PlainHttp { registry: String, url: String },
    #[error(
        "registry `{registry}` named {what} `{url}`, and minibuild sent nothing there: {rule}"
    )]
    Refused {
        registry: String,
        /// "the token realm", "the upload location", "a redirect to".
        what: &'static str,
        url: String,
        rule: Refusal,
    },
    #[error("registry `{registry}` does not speak HTTP as expected: {reason}")]
    Protocol { registry: String, reason: String },
    #[error("registry `{registry}` stopped responding: {what} failed after {attempts} attempt(s): {reason}; is the registry running and reachable?")]
    Unreachable {
        registry: String,
        what: String,
        attempts: u32,
        reason: String,
    },
    #[error("{}", unauthorized_message(registry, repository, *status, looked, *had_credentials))]
    Unauthorized {
        registry: String,
        repository: String,
        status: u16,
        /// Where credentials came from, or where they were looked for.
        looked: String,
        had_credentials: bool,
    },
    #[error("registry `{registry}`: {what}")]
    Registry { registry: String, what: String },
    #[error("cannot attach the SBOM `{}`: {reason}", path.display())]
    Sbom { path: PathBuf, reason: String },
    #[error("the image is {actual}, but the reference pins {expected}")]
    DigestMismatch { expected: Digest, actual: Digest },
}

fn unauthorized_message(
    registry: &str,
    repository: &str,
    status: u16,
    looked: &str,
    had_credentials: bool,
) -> String {
    match (status, had_credentials) {
        (403, _) => format!(
            "registry `{registry}` denied push access to `{repository}` (HTTP 403; {looked}): the account may lack push rights to this repository"
        ),
        (_, true) => format!(
            "registry `{registry}` rejected the user name or password (HTTP {status}; {looked}): check them, or log in again with `skopeo login {registry}`"
        ),
        (_, false) => format!(
            "registry `{registry}` requires authentication ({looked}): pass --creds-file FILE (a USER:PASSWORD line) or --username USER --password-stdin, or log in with `skopeo login {registry}`"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unauthorized_messages_say_where_credentials_came_from() {
        let e = PushError::Unauthorized {
            registry: "r.example:5000".into(),
            repository: "app".into(),
            status: 401,
            looked: "credentials from --creds".into(),
            had_credentials: true,
        };
        let s = e.to_string();
        assert!(
            s.contains("r.example:5000") && s.contains("--creds") && s.contains("password"),
            "{s}"
        );
        let e = PushError::Unauthorized {
            registry: "r.example".into(),
            repository: "app".into(),
            status: 401,
            looked: "no credentials found in /h/.docker/config.json".into(),
            had_credentials: false,
        };
        assert!(e.to_string().contains("/h/.docker/config.json"), "{e}");
    }
}
