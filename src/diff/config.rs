//! Config changes between two images: platform, user, entrypoint, cmd,
//! env and labels (per key), exposed ports and volumes (per entry),
//! working dir, stop signal and creation time.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::image::local::RunConfig;

/// One setting that differs; `old`/`new` is `None` where it is unset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigChange {
    /// `user`, `entrypoint`, `cmd`, `env`, `labels`, `exposed_ports`,
    /// `volumes`, `working_dir`, `stop_signal`, `platform` or `created`.
    pub field: &'static str,
    /// The env name, label, port or volume, for the per-key fields.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub old: Option<String>,
    pub new: Option<String>,
}

fn scalar(
    out: &mut Vec<ConfigChange>,
    field: &'static str,
    old: Option<String>,
    new: Option<String>,
) {
    if old != new {
        out.push(ConfigChange {
            field,
            key: None,
            old,
            new,
        });
    }
}

fn keyed(
    out: &mut Vec<ConfigChange>,
    field: &'static str,
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
) {
    let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for k in keys {
        let (o, n) = (old.get(k), new.get(k));
        if o != n {
            out.push(ConfigChange {
                field,
                key: Some(k.clone()),
                old: o.cloned(),
                new: n.cloned(),
            });
        }
    }
}

/// `["a","b"]`, as JSON, so that an argument with a space stays readable.
fn argv(v: &Option<Vec<String>>) -> Option<String> {
    v.as_ref()
        .map(|v| serde_json::to_string(v).unwrap_or_default())
}

/// `KEY=VALUE` lines by key; a line without `=` is a key with no value.
fn env(c: &RunConfig) -> BTreeMap<String, String> {
    let lines = c
        .config
        .as_ref()
        .and_then(|s| s.env.clone())
        .unwrap_or_default();
    lines
        .into_iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (l, String::new()),
        })
        .collect()
}

/// The keys of a set-as-object (`ExposedPorts`, `Volumes`), each present.
fn set(m: Option<&BTreeMap<String, serde_json::Value>>) -> BTreeMap<String, String> {
    m.map(|m| {
        m.keys()
            .map(|k| (k.clone(), "present".to_string()))
            .collect()
    })
    .unwrap_or_default()
}

fn platform(c: &RunConfig) -> Option<String> {
    if c.os.is_none() && c.architecture.is_none() {
        return None;
    }
    Some(format!(
        "{}/{}",
        c.os.as_deref().unwrap_or("?"),
        c.architecture.as_deref().unwrap_or("?")
    ))
}

pub fn compare(old: &RunConfig, new: &RunConfig) -> Vec<ConfigChange> {
    let mut out = Vec::new();
    let (a, b) = (
        old.config.clone().unwrap_or_default(),
        new.config.clone().unwrap_or_default(),
    );
    scalar(&mut out, "platform", platform(old), platform(new));
    scalar(&mut out, "user", a.user.clone(), b.user.clone());
    scalar(
        &mut out,
        "entrypoint",
        argv(&a.entrypoint),
        argv(&b.entrypoint),
    );
    scalar(&mut out, "cmd", argv(&a.cmd), argv(&b.cmd));
    scalar(
        &mut out,
        "working_dir",
        a.working_dir.clone(),
        b.working_dir.clone(),
    );
    keyed(&mut out, "env", &env(old), &env(new));
    keyed(
        &mut out,
        "exposed_ports",
        &set(a.exposed_ports.as_ref()),
        &set(b.exposed_ports.as_ref()),
    );
    keyed(
        &mut out,
        "volumes",
        &set(a.volumes.as_ref()),
        &set(b.volumes.as_ref()),
    );
    keyed(
        &mut out,
        "labels",
        &a.labels.clone().unwrap_or_default(),
        &b.labels.clone().unwrap_or_default(),
    );
    scalar(
        &mut out,
        "stop_signal",
        a.stop_signal.clone(),
        b.stop_signal.clone(),
    );
    scalar(
        &mut out,
        "created",
        old.created.clone(),
        new.created.clone(),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> RunConfig {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn per_key_and_scalar_changes() {
        let a = parse(
            r#"{"os":"linux","architecture":"amd64","config":{"User":"0","Env":["PATH=/bin","A=1"],
            "Entrypoint":["/bin/sh"],"ExposedPorts":{"80/tcp":{}},"Labels":{"x":"1"}}}"#,
        );
        let b = parse(
            r#"{"os":"linux","architecture":"amd64","config":{"User":"app","Env":["PATH=/bin","B=2"],
            "Entrypoint":["/bin/sh"],"Cmd":["-c","echo hi"],"ExposedPorts":{"8080/tcp":{}},"Labels":{"x":"2"}}}"#,
        );
        let changes = compare(&a, &b);
        type Row<'a> = (&'a str, Option<&'a str>, Option<&'a str>, Option<&'a str>);
        let got: Vec<Row> = changes
            .iter()
            .map(|c| {
                (
                    c.field,
                    c.key.as_deref(),
                    c.old.as_deref(),
                    c.new.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("user", None, Some("0"), Some("app")),
                ("cmd", None, None, Some(r#"["-c","echo hi"]"#)),
                ("env", Some("A"), Some("1"), None),
                ("env", Some("B"), None, Some("2")),
                ("exposed_ports", Some("80/tcp"), Some("present"), None),
                ("exposed_ports", Some("8080/tcp"), None, Some("present")),
                ("labels", Some("x"), Some("1"), Some("2")),
            ]
        );
        assert!(compare(&a, &a).is_empty());
        assert!(compare(&parse("{}"), &parse(r#"{"config":{}}"#)).is_empty());
    }
}
