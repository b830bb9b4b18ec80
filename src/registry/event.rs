//! Progress of a push, as typed events the caller renders.

use std::time::Duration;

use crate::digest::Digest;

/// Progress of a push, for the caller to report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushEvent {
    /// The registry already has this blob; not uploaded.
    BlobSkipped {
        digest: Digest,
        size: u64,
    },
    BlobUploading {
        digest: Digest,
        size: u64,
    },
    BlobUploaded {
        digest: Digest,
        size: u64,
    },
    /// A manifest or index was stored under `reference` (a tag or digest).
    ManifestPushed {
        digest: Digest,
        reference: String,
    },
    /// A transient failure; retrying after `delay`.
    Retrying {
        what: String,
        attempt: u32,
        delay: Duration,
        reason: String,
    },
}

/// One line per event, for a progress log (`push: …`).
impl std::fmt::Display for PushEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PushEvent::BlobSkipped { digest, size } => {
                write!(f, "blob {digest} ({size} bytes) already in the registry")
            }
            PushEvent::BlobUploading { digest, size } => {
                write!(f, "uploading blob {digest} ({size} bytes)")
            }
            PushEvent::BlobUploaded { digest, .. } => write!(f, "uploaded blob {digest}"),
            PushEvent::ManifestPushed { digest, reference } if *reference == digest.to_string() => {
                write!(f, "pushed manifest {digest}")
            }
            PushEvent::ManifestPushed { digest, reference } => {
                write!(f, "pushed {digest} as `{reference}`")
            }
            PushEvent::Retrying {
                what,
                attempt,
                delay,
                reason,
            } => write!(
                f,
                "{what}: {reason}; retry {attempt} in {:.1}s",
                delay.as_secs_f64()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_read_as_log_lines() {
        let d = Digest::sha256_of(b"x");
        let tagged = PushEvent::ManifestPushed {
            digest: d.clone(),
            reference: "v1".into(),
        };
        assert_eq!(tagged.to_string(), format!("pushed {d} as `v1`"));
        let retry = PushEvent::Retrying {
            what: "upload".into(),
            attempt: 2,
            delay: Duration::from_millis(1500),
            reason: "status 503 Service Unavailable".into(),
        };
        assert_eq!(
            retry.to_string(),
            "upload: status 503 Service Unavailable; retry 2 in 1.5s"
        );
    }
}
