//! The container healthcheck: recipe vocabulary and image config field at
//! once, kept apart from both so neither the recipe nor the image module
//! depends on the other for it.

use serde_json::{json, Map, Value};

/// How the runtime checks that a container is healthy: Docker's
/// `HEALTHCHECK`, written as `config.Healthcheck` the way Docker and Podman
/// read it (durations in nanoseconds, zero fields left out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Healthcheck {
    /// `["CMD", prog, args…]`, `["CMD-SHELL", "command line"]` or `["NONE"]`.
    pub test: Vec<String>,
    /// Time between checks, in nanoseconds (None: the runtime's 30 s).
    pub interval_ns: Option<u64>,
    /// How long one check may take, in nanoseconds (None: 30 s).
    pub timeout_ns: Option<u64>,
    /// Grace period after start whose failures do not count (None: 0).
    pub start_period_ns: Option<u64>,
    /// Consecutive failures that make the container unhealthy (None: 3).
    pub retries: Option<u32>,
}

/// Docker rejects non-zero healthcheck durations under 1 ms.
const MIN_HEALTHCHECK_NS: u64 = 1_000_000;

impl Healthcheck {
    /// Check the shape Docker enforces; the error says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        match self.test.first().map(String::as_str) {
            None => return Err("test is empty; e.g. [\"CMD\", \"/usr/bin/check\"]".into()),
            Some("NONE") if self.test.len() != 1 => {
                return Err("[\"NONE\"] takes no arguments".into())
            }
            Some("CMD") if self.test.len() < 2 => {
                return Err("[\"CMD\", …] needs the program to run".into())
            }
            Some("CMD-SHELL") if self.test.len() != 2 => {
                return Err("[\"CMD-SHELL\", …] takes exactly one command line".into())
            }
            Some("NONE" | "CMD" | "CMD-SHELL") => {}
            Some(other) => {
                return Err(format!(
                    "test starts with `{other}`; it must start with CMD, CMD-SHELL or NONE"
                ))
            }
        }
        for (name, value) in [
            ("interval", self.interval_ns),
            ("timeout", self.timeout_ns),
            ("start_period", self.start_period_ns),
        ] {
            if value.is_some_and(|ns| ns < MIN_HEALTHCHECK_NS) {
                return Err(format!("{name} must be at least 1ms"));
            }
        }
        Ok(())
    }

    /// `config.Healthcheck` as Docker and Podman read it.
    pub fn to_json(&self) -> Value {
        let mut h = Map::new();
        h.insert("Test".into(), json!(self.test));
        for (key, value) in [
            ("Interval", self.interval_ns),
            ("Timeout", self.timeout_ns),
            ("StartPeriod", self.start_period_ns),
        ] {
            if let Some(ns) = value {
                h.insert(key.into(), json!(ns));
            }
        }
        if let Some(retries) = self.retries {
            h.insert("Retries".into(), json!(retries));
        }
        Value::Object(h)
    }

    /// A `config.Healthcheck` read back (a base image's): `None` when it is
    /// absent or is not one Docker would accept. Zero durations and retries
    /// mean "the runtime's default", as `None` does here.
    pub fn from_json(v: &Value) -> Option<Healthcheck> {
        let test = v["Test"]
            .as_array()?
            .iter()
            .map(|t| t.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()?;
        let ns = |key: &str| v[key].as_u64().filter(|&n| n > 0);
        let check = Healthcheck {
            test,
            interval_ns: ns("Interval"),
            timeout_ns: ns("Timeout"),
            start_period_ns: ns("StartPeriod"),
            retries: ns("Retries").and_then(|r| u32::try_from(r).ok()),
        };
        check.validate().ok().map(|()| check)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_healthcheck_reads_back_and_a_bad_one_does_not() {
        let check = Healthcheck {
            test: vec!["CMD".into(), "/usr/bin/check".into()],
            interval_ns: Some(30_000_000_000),
            timeout_ns: None,
            start_period_ns: Some(5_000_000_000),
            retries: Some(3),
        };
        assert_eq!(Healthcheck::from_json(&check.to_json()), Some(check));
        for bad in [
            json!(null),
            json!({"Test": []}),
            json!({"Test": ["CMD", 1]}),
            json!({"Test": ["CMD", "/x"], "Interval": 5}),
        ] {
            assert_eq!(Healthcheck::from_json(&bad), None, "{bad}");
        }
    }

    #[test]
    fn healthcheck_shapes_docker_rejects_are_errors() {
        let check = |test: &[&str], interval: Option<u64>| Healthcheck {
            test: test.iter().map(|s| s.to_string()).collect(),
            interval_ns: interval,
            timeout_ns: None,
            start_period_ns: None,
            retries: None,
        };
        assert!(check(&["CMD-SHELL", "curl -f localhost"], None)
            .validate()
            .is_ok());
        for bad in [
            check(&[], None),
            check(&["CMD"], None),
            check(&["CMD-SHELL", "a", "b"], None),
            check(&["NONE", "x"], None),
            check(&["curl", "-f"], None),
            check(&["CMD", "x"], Some(999_999)),
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
