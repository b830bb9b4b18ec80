//! The image's config: the recipe's `[image]`, and annotations that say
//! what it was built from.

use std::collections::BTreeMap;

use super::Resolved;
use crate::digest::Digest;
use crate::image::{self, ImageConfig};
use crate::recipe::Recipe;

/// Manifest annotation: the recipe's digest (`sha256:…`).
pub const ANNOTATION_RECIPE: &str = "dev.minibuild.recipe.digest";

/// Manifest annotation: the lock's digest, when the plan came from one.
pub const ANNOTATION_LOCK: &str = "dev.minibuild.lock.digest";

/// Manifest annotation, with `[image] base`: the core recipe's digest.
pub const ANNOTATION_CORE_RECIPE: &str = "dev.minibuild.core.recipe.digest";

/// Manifest annotation, with `[image] base`: the core's layer (the first),
/// the same blob in every image on this core and in the core's own image.
pub const ANNOTATION_CORE_LAYER: &str = "dev.minibuild.core.layer.digest";

/// Manifest annotation prefix, one per repo:
/// `revision=R gpgcheck=on|off repo_gpgcheck=on|off`. Only what decides the
/// content: the URL (which mirror, which path) goes to the provenance, so
/// the same packages from any mirror give the same digest.
pub const ANNOTATION_REPO_PREFIX: &str = "dev.minibuild.repo.";

/// The manifest's (and a multi-arch index's) `org.opencontainers.image.*`
/// annotations: the recipe's own `annotations` win; then `version`,
/// `source`, `revision` from the recipe's fields or the same-named labels;
/// then `title` (the name), `version` (the tag, unless `latest`) and
/// `created` (SOURCE_DATE_EPOCH).
fn provenance_annotations(recipe: &Recipe, epoch: u64) -> BTreeMap<String, String> {
    let img = &recipe.image;
    let mut a = img.annotations.clone();
    let label = |key: &str| {
        img.labels
            .get(&format!("org.opencontainers.image.{key}"))
            .cloned()
    };
    let tag_version = (img.tag != "latest").then(|| img.tag.clone());
    let derived = [
        ("title", Some(img.name.clone())),
        ("created", Some(image::config::rfc3339(epoch))),
        (
            "version",
            img.version
                .clone()
                .or_else(|| label("version"))
                .or(tag_version),
        ),
        ("source", img.source.clone().or_else(|| label("source"))),
        (
            "revision",
            img.revision.clone().or_else(|| label("revision")),
        ),
    ];
    for (key, value) in derived {
        if let Some(value) = value {
            a.entry(format!("org.opencontainers.image.{key}"))
                .or_insert(value);
        }
    }
    a
}

pub(super) fn image_config(
    recipe: &Recipe,
    res: &Resolved,
    epoch: u64,
    lock: Option<&(String, Digest)>,
) -> ImageConfig {
    let img = &recipe.image;
    let mut c = ImageConfig::new(res.arch, epoch);
    c.entrypoint = img.entrypoint.clone().unwrap_or_default();
    c.cmd = img.cmd.clone().unwrap_or_default();
    c.env.extend(img.env.clone());
    c.working_dir = img.workdir.clone();
    c.user = img.user.clone();
    c.exposed_ports = img.ports.iter().cloned().collect();
    c.volumes = img.volumes.iter().cloned().collect();
    c.labels = img.labels.clone();
    c.stop_signal = img.stop_signal.clone();
    c.healthcheck = img.healthcheck.clone();
    c.annotations = provenance_annotations(recipe, epoch);
    // Provenance in the image itself: what it was built from.
    c.annotations
        .insert(ANNOTATION_RECIPE.into(), recipe.digest.to_string());
    if let Some((_, d)) = lock {
        c.annotations.insert(ANNOTATION_LOCK.into(), d.to_string());
    }
    let on_off = |on: bool| if on { "on" } else { "off" };
    for (r, spec) in res.repos.iter().zip(&recipe.repos) {
        c.annotations.insert(
            format!("{ANNOTATION_REPO_PREFIX}{}", r.name),
            format!(
                "revision={} gpgcheck={} repo_gpgcheck={}",
                r.revision,
                on_off(spec.gpgcheck),
                on_off(spec.repo_gpgcheck)
            ),
        );
    }
    let nevras: Vec<String> = res.plan.nevras().map(ToString::to_string).collect();
    c.history.push(image::HistoryEntry {
        created_by: format!(
            "minibuild {}: install {}",
            env!("CARGO_PKG_VERSION"),
            nevras.join(" ")
        ),
        comment: Some(format!("recipe {}", recipe.digest)),
        empty_layer: false,
    });
    c
}

/// An image over a core: the core's layer gets a history line of its own
/// (first), the app's line names only the app's packages, and annotations
/// name the core recipe and its layer.
pub(super) fn over_core(
    c: &mut ImageConfig,
    recipe: &Recipe,
    res: &Resolved,
    core_layer: &image::LayerInfo,
) {
    let (Some(core_recipe), Some(core)) = (recipe.core.as_deref(), res.core.as_deref()) else {
        return;
    };
    let in_core = super::core::core_set(res);
    let line = |what: &str, nevras: Vec<String>| {
        format!(
            "minibuild {}: {what}install {}",
            env!("CARGO_PKG_VERSION"),
            nevras.join(" ")
        )
    };
    let app: Vec<String> = res
        .plan
        .nevras()
        .filter(|n| !in_core.contains(*n))
        .map(ToString::to_string)
        .collect();
    if let Some(last) = c.history.last_mut() {
        last.created_by = line("", app);
    }
    // The file name only: where the checkout lives must not change the digest.
    let name = core_recipe
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    c.history.insert(
        0,
        image::HistoryEntry {
            created_by: line(
                &format!("core {name}: "),
                core.plan.nevras().map(ToString::to_string).collect(),
            ),
            comment: Some(format!("recipe {}", core_recipe.digest)),
            empty_layer: false,
        },
    );
    c.annotations.insert(
        ANNOTATION_CORE_RECIPE.to_string(),
        core_recipe.digest.to_string(),
    );
    c.annotations.insert(
        ANNOTATION_CORE_LAYER.to_string(),
        core_layer.digest.to_string(),
    );
}

/// Manifest annotation (OCI's own), with a published base: the reference
/// the recipe names.
pub const ANNOTATION_BASE_NAME: &str = "org.opencontainers.image.base.name";

/// Manifest annotation (OCI's own), with a published base: its manifest's
/// digest for this platform.
pub const ANNOTATION_BASE_DIGEST: &str = "org.opencontainers.image.base.digest";

/// An image over a published base: the base's config is the start (Env,
/// User, WorkingDir, Entrypoint, Cmd, Labels, ports, volumes, stop signal)
/// and the recipe's settings go on top; the history is the base's, then
/// the new layer's line; annotations name the base.
pub(super) fn over_base(c: &mut ImageConfig, recipe: &Recipe, base: &crate::base_image::BaseImage) {
    let img = &recipe.image;
    let cfg = &base.pulled.config["config"];
    let strings = |key: &str| -> Option<Vec<String>> {
        cfg[key].as_array().map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
    };
    let text = |key: &str| {
        cfg[key]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let keys = |key: &str| -> Vec<String> {
        cfg[key]
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    };
    if img.entrypoint.is_none() {
        c.entrypoint = strings("Entrypoint").unwrap_or_default();
        // A new entrypoint drops the base's Cmd (as a Dockerfile does); else it is kept.
        if img.cmd.is_none() {
            c.cmd = strings("Cmd").unwrap_or_default();
        }
    }
    let mut env: BTreeMap<String, String> = c
        .env
        .iter()
        .filter(|(k, _)| k.as_str() == "PATH")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for kv in strings("Env").unwrap_or_default() {
        if let Some((k, v)) = kv.split_once('=') {
            env.insert(k.to_string(), v.to_string());
        }
    }
    env.extend(img.env.clone());
    c.env = env;
    if img.workdir.is_none() {
        c.working_dir = text("WorkingDir");
    }
    if c.user.is_none() {
        c.user = text("User");
    }
    let mut labels: BTreeMap<String, String> = cfg["Labels"]
        .as_object()
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    labels.extend(img.labels.clone());
    c.labels = labels;
    c.exposed_ports.extend(keys("ExposedPorts"));
    c.volumes.extend(keys("Volumes"));
    if c.stop_signal.is_none() {
        c.stop_signal = text("StopSignal");
    }
    if c.healthcheck.is_none() {
        c.healthcheck = crate::healthcheck::Healthcheck::from_json(&cfg["Healthcheck"]);
    }
    // The base's history, made to have one line per layer (docker
    // rejects a mismatch), then ours.
    let mut history: Vec<image::HistoryEntry> = base.pulled.config["history"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|h| image::HistoryEntry {
                    created_by: h["created_by"].as_str().unwrap_or_default().to_string(),
                    comment: h["comment"].as_str().map(str::to_string),
                    empty_layer: h["empty_layer"].as_bool().unwrap_or(false),
                })
                .collect()
        })
        .unwrap_or_default();
    if history.iter().filter(|h| !h.empty_layer).count() != base.layers().len() {
        history = (1..=base.layers().len())
            .map(|n| image::HistoryEntry {
                created_by: format!("base image {} layer {n}", base.reference),
                comment: None,
                empty_layer: false,
            })
            .collect();
    }
    history.append(&mut c.history);
    c.history = history;
    c.annotations
        .insert(ANNOTATION_BASE_NAME.to_string(), base.reference.to_string());
    c.annotations.insert(
        ANNOTATION_BASE_DIGEST.to_string(),
        base.pulled.manifest_digest.to_string(),
    );
}
