//! The image configuration (`application/vnd.oci.image.config.v1+json`):
//! a plain struct the pipeline fills, turned into canonical JSON together
//! with the layers' diff_ids.
//!
//! Every map-valued field is a BTreeMap/BTreeSet, so `Env`, `Labels`,
//! `ExposedPorts` and `Volumes` come out in the same order whatever order
//! the recipe listed them in.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value};

use crate::package::Arch;

pub use crate::healthcheck::Healthcheck;

use super::error::ImageError;
use super::layer::LayerInfo;

pub const MEDIA_TYPE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// The `PATH` an image gets unless the recipe sets one: what docker and
/// podman assume for images without one.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// One line of the image's history (`docker history`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// What made this step, e.g. `minibuild: install bash-5.2.26-3.fc40.x86_64 …`.
    pub created_by: String,
    pub comment: Option<String>,
    /// True for steps that only changed the config (no layer).
    pub empty_layer: bool,
}

/// Everything about an image except its layers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageConfig {
    pub arch: Arch,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// Environment by name; written as `KEY=VALUE` sorted by key.
    pub env: BTreeMap<String, String>,
    pub working_dir: Option<String>,
    /// `name`, `uid`, `name:group` or `uid:gid`, as the runtime resolves it.
    pub user: Option<String>,
    /// `port/proto` (`8080/tcp`); a bare port means tcp.
    pub exposed_ports: BTreeSet<String>,
    pub volumes: BTreeSet<String>,
    pub labels: BTreeMap<String, String>,
    pub stop_signal: Option<String>,
    pub healthcheck: Option<Healthcheck>,
    /// SOURCE_DATE_EPOCH: the config's and history's `created`.
    pub created: u64,
    /// One entry per layer (plus any `empty_layer` ones), oldest first.
    pub history: Vec<HistoryEntry>,
    /// Manifest annotations (`org.opencontainers.image.*`).
    pub annotations: BTreeMap<String, String>,
}

impl ImageConfig {
    /// An empty config for `arch` created at `created`, with the default
    /// `PATH` in its environment.
    pub fn new(arch: Arch, created: u64) -> Self {
        ImageConfig {
            arch,
            entrypoint: Vec::new(),
            cmd: Vec::new(),
            env: BTreeMap::from([("PATH".to_string(), DEFAULT_PATH.to_string())]),
            working_dir: None,
            user: None,
            exposed_ports: BTreeSet::new(),
            volumes: BTreeSet::new(),
            labels: BTreeMap::new(),
            stop_signal: None,
            healthcheck: None,
            created,
            history: Vec::new(),
            annotations: BTreeMap::new(),
        }
    }

    /// The config JSON for an image made of `layers` (bottom first).
    pub fn to_json(&self, layers: &[LayerInfo]) -> Result<Value, ImageError> {
        let created = rfc3339(self.created);
        let mut config = Map::new();
        if !self.entrypoint.is_empty() {
            config.insert("Entrypoint".into(), json!(self.entrypoint));
        }
        if !self.cmd.is_empty() {
            config.insert("Cmd".into(), json!(self.cmd));
        }
        let mut env = Vec::with_capacity(self.env.len());
        for (key, value) in &self.env {
            if key.is_empty() || key.contains('=') || key.contains('\0') {
                return Err(invalid("env", format!("`{key}` is not a variable name")));
            }
            env.push(format!("{key}={value}"));
        }
        if !env.is_empty() {
            config.insert("Env".into(), json!(env));
        }
        if let Some(dir) = &self.working_dir {
            if !dir.starts_with('/') {
                return Err(invalid(
                    "workdir",
                    format!("`{dir}` must be an absolute path"),
                ));
            }
            config.insert("WorkingDir".into(), json!(dir));
        }
        if let Some(user) = &self.user {
            config.insert("User".into(), json!(user));
        }
        if !self.exposed_ports.is_empty() {
            let mut ports = Map::new();
            for port in &self.exposed_ports {
                ports.insert(normalize_port(port)?, json!({}));
            }
            config.insert("ExposedPorts".into(), Value::Object(ports));
        }
        if !self.volumes.is_empty() {
            let volumes: Map<String, Value> = self
                .volumes
                .iter()
                .map(|v| (v.clone(), json!({})))
                .collect();
            config.insert("Volumes".into(), Value::Object(volumes));
        }
        if !self.labels.is_empty() {
            config.insert("Labels".into(), json!(self.labels));
        }
        if let Some(signal) = &self.stop_signal {
            config.insert("StopSignal".into(), json!(signal));
        }
        if let Some(check) = &self.healthcheck {
            check.validate().map_err(|r| invalid("healthcheck", r))?;
            config.insert("Healthcheck".into(), check.to_json());
        }

        let with_layer = self.history.iter().filter(|h| !h.empty_layer).count();
        if !self.history.is_empty() && with_layer != layers.len() {
            return Err(invalid(
                "history",
                format!(
                    "{with_layer} entries with a layer for {} layers (docker rejects the mismatch)",
                    layers.len()
                ),
            ));
        }
        let history: Vec<Value> = self
            .history
            .iter()
            .map(|h| {
                let mut entry = Map::new();
                entry.insert("created".into(), json!(created));
                entry.insert("created_by".into(), json!(h.created_by));
                if let Some(comment) = &h.comment {
                    entry.insert("comment".into(), json!(comment));
                }
                if h.empty_layer {
                    entry.insert("empty_layer".into(), json!(true));
                }
                Value::Object(entry)
            })
            .collect();

        let diff_ids: Vec<String> = layers.iter().map(|l| l.diff_id.to_string()).collect();
        let mut root = Map::new();
        root.insert("architecture".into(), json!(self.arch.oci_name()));
        if let Some(variant) = variant(self.arch) {
            root.insert("variant".into(), json!(variant));
        }
        root.insert("os".into(), json!("linux"));
        root.insert("created".into(), json!(created));
        root.insert("config".into(), Value::Object(config));
        root.insert(
            "rootfs".into(),
            json!({"type": "layers", "diff_ids": diff_ids}),
        );
        if !history.is_empty() {
            root.insert("history".into(), Value::Array(history));
        }
        Ok(Value::Object(root))
    }
}

/// The platform variant OCI expects for `arch`, if any (arm64 is `v8`).
pub fn variant(arch: Arch) -> Option<&'static str> {
    match arch {
        Arch::Aarch64 => Some("v8"),
        _ => None,
    }
}

fn invalid(field: &'static str, reason: String) -> ImageError {
    ImageError::InvalidConfig { field, reason }
}

/// `8080` → `8080/tcp`; `53/udp` stays; anything else is an error.
fn normalize_port(port: &str) -> Result<String, ImageError> {
    let (number, proto) = port.split_once('/').unwrap_or((port, "tcp"));
    let ok_number = number.parse::<u16>().is_ok_and(|n| n != 0);
    let ok_proto = matches!(proto, "tcp" | "udp" | "sctp");
    if ok_number && ok_proto {
        Ok(format!("{number}/{proto}"))
    } else {
        Err(invalid(
            "ports",
            format!("`{port}` is not `PORT` or `PORT/tcp|udp|sctp` with PORT in 1..65535"),
        ))
    }
}

/// Seconds since the epoch as RFC 3339 UTC (`2023-11-14T22:13:20Z`).
pub fn rfc3339(epoch: u64) -> String {
    let days = (epoch / 86_400) as i64;
    let secs = epoch % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3_600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;
    use crate::duration::parse_duration;
    use crate::image::json::to_canonical_vec;

    fn layer() -> LayerInfo {
        LayerInfo {
            digest: Digest::sha256_of(b"gz"),
            diff_id: Digest::sha256_of(b"tar"),
            size: 2,
            uncompressed_size: 3,
            media_type: crate::image::layer::MEDIA_TYPE_TAR_GZIP,
            path_of_blob: "unused".into(),
        }
    }

    #[test]
    fn rfc3339_known_values() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn env_order_does_not_depend_on_insertion_order() {
        let mut a = ImageConfig::new(Arch::X86_64, 0);
        a.env.insert("ZED".into(), "1".into());
        a.env.insert("LANG".into(), "C.UTF-8".into());
        let mut b = ImageConfig::new(Arch::X86_64, 0);
        b.env.insert("LANG".into(), "C.UTF-8".into());
        b.env.insert("ZED".into(), "1".into());
        let ja = a.to_json(&[layer()]).unwrap();
        assert_eq!(
            to_canonical_vec(&ja),
            to_canonical_vec(&b.to_json(&[layer()]).unwrap())
        );
        assert_eq!(
            ja["config"]["Env"],
            json!(["LANG=C.UTF-8", format!("PATH={DEFAULT_PATH}"), "ZED=1"])
        );
    }

    #[test]
    fn full_config_parses_as_oci_and_keeps_every_field() {
        let mut c = ImageConfig::new(Arch::Aarch64, 1_700_000_000);
        c.entrypoint = vec!["/usr/sbin/nginx".into()];
        c.cmd = vec!["-g".into(), "daemon off;".into()];
        c.working_dir = Some("/srv".into());
        c.user = Some("998:997".into());
        c.exposed_ports = ["8080".into(), "53/udp".into()].into();
        c.volumes = ["/data".into()].into();
        c.labels.insert("a".into(), "b".into());
        c.stop_signal = Some("SIGQUIT".into());
        c.history.push(HistoryEntry {
            created_by: "minibuild: install nginx".into(),
            comment: None,
            empty_layer: false,
        });
        let v = c.to_json(&[layer()]).unwrap();
        let bytes = to_canonical_vec(&v);
        let parsed: oci_spec::image::ImageConfiguration = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(parsed.architecture().to_string(), "arm64");
        assert_eq!(parsed.variant().as_deref(), Some("v8"));
        assert_eq!(parsed.created().as_deref(), Some("2023-11-14T22:13:20Z"));
        let cfg = parsed.config().as_ref().unwrap();
        assert_eq!(cfg.working_dir().as_deref(), Some("/srv"));
        assert_eq!(cfg.stop_signal().as_deref(), Some("SIGQUIT"));
        // oci-spec reads the map through a HashMap: compare as a set, and
        // check the order in our own bytes.
        let mut ports = cfg.exposed_ports().clone().unwrap();
        ports.sort();
        assert_eq!(ports, ["53/udp", "8080/tcp"]);
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.contains(r#""ExposedPorts":{"53/udp":{},"8080/tcp":{}}"#),
            "{text}"
        );
        assert_eq!(
            parsed.rootfs().diff_ids(),
            &vec![Digest::sha256_of(b"tar").to_string()]
        );
        assert_eq!(parsed.history().as_ref().unwrap().len(), 1);
    }

    #[test]
    fn healthcheck_is_written_as_docker_reads_it() {
        let mut c = ImageConfig::new(Arch::X86_64, 0);
        c.healthcheck = Some(Healthcheck {
            test: vec!["CMD".into(), "/usr/bin/check".into(), "--quick".into()],
            interval_ns: Some(parse_duration("30s").unwrap()),
            timeout_ns: Some(parse_duration("5s").unwrap()),
            start_period_ns: Some(parse_duration("1m30s").unwrap()),
            retries: Some(3),
        });
        let bytes = to_canonical_vec(&c.to_json(&[layer()]).unwrap());
        let text = String::from_utf8(bytes).unwrap();
        assert!(
            text.contains(
                r#""Healthcheck":{"Interval":30000000000,"Retries":3,"StartPeriod":90000000000,"Test":["CMD","/usr/bin/check","--quick"],"Timeout":5000000000}"#
            ),
            "{text}"
        );
        // Left-out fields stay out (Docker's omitempty), so the runtime defaults apply.
        c.healthcheck = Some(Healthcheck {
            test: vec!["NONE".into()],
            interval_ns: None,
            timeout_ns: None,
            start_period_ns: None,
            retries: None,
        });
        let v = c.to_json(&[layer()]).unwrap();
        assert_eq!(v["config"]["Healthcheck"], json!({"Test": ["NONE"]}));
    }

    #[test]
    fn invalid_healthcheck_is_a_config_error() {
        let mut c = ImageConfig::new(Arch::X86_64, 0);
        c.healthcheck = Some(Healthcheck {
            test: vec!["RUN".into(), "x".into()],
            interval_ns: None,
            timeout_ns: None,
            start_period_ns: None,
            retries: None,
        });
        assert!(matches!(
            c.to_json(&[layer()]),
            Err(ImageError::InvalidConfig {
                field: "healthcheck",
                ..
            })
        ));
    }

    #[test]
    fn bad_values_are_rejected_with_the_field() {
        let mut c = ImageConfig::new(Arch::X86_64, 0);
        c.exposed_ports.insert("http".into());
        assert!(matches!(
            c.to_json(&[layer()]),
            Err(ImageError::InvalidConfig { field: "ports", .. })
        ));
        let mut c = ImageConfig::new(Arch::X86_64, 0);
        c.working_dir = Some("srv".into());
        assert!(matches!(
            c.to_json(&[layer()]),
            Err(ImageError::InvalidConfig {
                field: "workdir",
                ..
            })
        ));
        let mut c = ImageConfig::new(Arch::X86_64, 0);
        c.history.push(HistoryEntry {
            created_by: "x".into(),
            comment: None,
            empty_layer: false,
        });
        assert!(matches!(
            c.to_json(&[]),
            Err(ImageError::InvalidConfig {
                field: "history",
                ..
            })
        ));
    }
}
