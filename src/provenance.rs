//! Build provenance: an in-toto v1 statement with a SLSA provenance v1
//! predicate saying what went into the image — the recipe (by sha256), the
//! lock when one was used, every repository with its repomd revision and
//! whether signatures were checked, and every RPM with its sha256 and URL.
//!
//! Pure: plain facts in, a JSON value out. Nothing here reads a clock; the
//! only time is the build's `SOURCE_DATE_EPOCH`, so two builds of the same
//! inputs write byte-identical provenance (serialized through sorted maps).
//! See <https://slsa.dev/spec/v1.0/provenance> and
//! <https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md>.

use serde_json::{json, Value};

use crate::digest::Digest;

/// The `buildType` URI: what a verifier must understand to re-run the build.
pub const BUILD_TYPE: &str = "https://minibuild.dev/build/v1";

/// A repository as one architecture's build used it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoUse {
    pub name: String,
    pub arch: String,
    /// Substituted base URL (the mirror used).
    pub baseurl: String,
    /// The metalink or mirrorlist the mirror was picked from.
    pub via: Option<String>,
    /// `<revision>` of repomd.xml (from the lock when built from one).
    pub revision: String,
    /// sha256 of repomd.xml, when it was read in this build.
    pub repomd_digest: Option<Digest>,
    pub gpgcheck: bool,
    pub repo_gpgcheck: bool,
    /// Fingerprints of the keys checked against.
    pub keys: Vec<String>,
}

/// One installed RPM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rpm {
    pub nevra: String,
    pub arch: String,
    pub url: String,
    pub digest: Digest,
    /// The key that signed it, when signatures were checked.
    pub signed_by: Option<String>,
}

/// The core an image is layered on (`[image] base`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreUse {
    pub recipe_uri: String,
    pub recipe_digest: Digest,
    /// Per arch: the core's layer digest (the image's first layer).
    pub layers: Vec<(String, Digest)>,
}

/// A published base image an image is built on (`[image] base =
/// "REGISTRY/REPO:TAG"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUse {
    /// `REGISTRY/REPO:TAG` as the recipe writes it.
    pub reference: String,
    /// What it resolved to (pinned in the lock).
    pub digest: Digest,
    /// Per arch: the base's manifest digest.
    pub manifests: Vec<(String, Digest)>,
}

/// Everything the statement records.
#[derive(Debug, Clone)]
pub struct Facts {
    /// `name:tag`.
    pub image: String,
    /// What the tag points to (manifest, or index for several arches).
    pub image_digest: Digest,
    pub recipe_uri: String,
    pub recipe_digest: Digest,
    /// `(uri, sha256)` of the lock the plan came from.
    pub lock: Option<(String, Digest)>,
    pub source_date_epoch: u64,
    pub repos: Vec<RepoUse>,
    pub rpms: Vec<Rpm>,
    /// The recipe's `legacy_signatures`: SHA-1/MD5 and v3 signatures accepted.
    pub legacy_signatures: bool,
    /// `--allow-downgrade`: an older signed repomd.xml than seen before was accepted.
    pub allow_downgrade: bool,
    pub core: Option<CoreUse>,
    pub base: Option<BaseUse>,
}

fn digest_set(d: &Digest) -> Value {
    json!({ d.algo().name(): d.hex() })
}

/// The in-toto statement for `facts`.
pub fn statement(f: &Facts) -> Value {
    let mut deps = vec![json!({
        "name": "recipe",
        "uri": f.recipe_uri,
        "digest": digest_set(&f.recipe_digest),
    })];
    if let Some((uri, d)) = &f.lock {
        deps.push(json!({ "name": "lock", "uri": uri, "digest": digest_set(d) }));
    }
    if let Some(core) = &f.core {
        let layers: serde_json::Map<String, Value> = core
            .layers
            .iter()
            .map(|(arch, d)| (format!("layer:{arch}"), json!(d.to_string())))
            .collect();
        deps.push(json!({
            "name": "core",
            "uri": core.recipe_uri,
            "digest": digest_set(&core.recipe_digest),
            "annotations": layers,
        }));
    }
    if let Some(base) = &f.base {
        let manifests: serde_json::Map<String, Value> = base
            .manifests
            .iter()
            .map(|(arch, d)| (format!("manifest:{arch}"), json!(d.to_string())))
            .collect();
        deps.push(json!({
            "name": "base",
            "uri": format!("oci://{}", base.reference),
            "digest": digest_set(&base.digest),
            "annotations": manifests,
        }));
    }
    for r in &f.repos {
        let mut dep = json!({
            "name": format!("repo:{}:{}", r.name, r.arch),
            // The local RPMs' synthetic repo has no metadata: its directory.
            "uri": match r.name == crate::recipe::LOCAL_REPO {
                true => r.baseurl.clone(),
                false => format!("{}repodata/repomd.xml", r.baseurl),
            },
            "annotations": {
                "revision": r.revision,
                "gpgcheck": r.gpgcheck,
                "repo_gpgcheck": r.repo_gpgcheck,
                "keys": r.keys,
            },
        });
        if let Some(d) = &r.repomd_digest {
            dep["digest"] = digest_set(d);
        }
        if let Some(via) = &r.via {
            dep["annotations"]["mirrorSource"] = json!(via);
        }
        deps.push(dep);
    }
    for p in &f.rpms {
        let mut dep = json!({
            "name": p.nevra,
            "uri": p.url,
            "digest": digest_set(&p.digest),
            "annotations": { "target": p.arch },
        });
        if let Some(k) = &p.signed_by {
            dep["annotations"]["signedBy"] = json!(k);
        }
        deps.push(dep);
    }
    let unchecked: Vec<&str> = f
        .repos
        .iter()
        .filter(|r| !r.gpgcheck)
        .map(|r| r.name.as_str())
        .collect();
    let mut unchecked = unchecked;
    unchecked.sort_unstable();
    unchecked.dedup();
    json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{ "name": f.image, "digest": digest_set(&f.image_digest) }],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "recipe": { "uri": f.recipe_uri, "digest": digest_set(&f.recipe_digest) },
                    "lock": f.lock.as_ref().map(|(uri, d)| json!({ "uri": uri, "digest": digest_set(d) })),
                },
                "internalParameters": {
                    "sourceDateEpoch": f.source_date_epoch,
                    "signatureChecksOff": unchecked,
                    "legacySignaturesAccepted": f.legacy_signatures,
                    "repomdDowngradeAllowed": f.allow_downgrade,
                },
                "resolvedDependencies": deps,
            },
            "runDetails": {
                "builder": {
                    "id": format!("https://minibuild.dev/minibuild@{}", env!("CARGO_PKG_VERSION")),
                },
                "metadata": {},
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_core_is_a_dependency_with_its_layer() {
        let f = Facts {
            core: Some(CoreUse {
                recipe_uri: "file:///r/core.toml".into(),
                recipe_digest: Digest::sha256_of(b"core"),
                layers: vec![("x86_64".into(), Digest::sha256_of(b"layer"))],
            }),
            ..facts()
        };
        let s = statement(&f);
        let deps = s["predicate"]["buildDefinition"]["resolvedDependencies"]
            .as_array()
            .unwrap();
        let core = deps.iter().find(|d| d["name"] == "core").unwrap();
        assert_eq!(core["uri"], "file:///r/core.toml");
        assert_eq!(
            core["annotations"]["layer:x86_64"],
            Digest::sha256_of(b"layer").to_string()
        );
        assert!(
            !statement(&facts())["predicate"]["buildDefinition"]["resolvedDependencies"]
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d["name"] == "core")
        );
    }

    fn facts() -> Facts {
        Facts {
            image: "app:1".into(),
            image_digest: Digest::sha256_of(b"manifest"),
            recipe_uri: "file:///r/app.toml".into(),
            recipe_digest: Digest::sha256_of(b"recipe"),
            lock: Some(("file:///r/app.toml.lock".into(), Digest::sha256_of(b"lock"))),
            source_date_epoch: 1_700_000_000,
            repos: vec![RepoUse {
                name: "fedora".into(),
                arch: "x86_64".into(),
                baseurl: "https://m/f/".into(),
                via: None,
                revision: "1712".into(),
                repomd_digest: None,
                gpgcheck: false,
                repo_gpgcheck: false,
                keys: vec![],
            }],
            rpms: vec![Rpm {
                nevra: "busybox-1:1.35.0-4.fc40.x86_64".into(),
                arch: "x86_64".into(),
                url: "https://m/f/Packages/b/busybox.rpm".into(),
                digest: Digest::sha256_of(b"rpm"),
                signed_by: Some("ABCD".into()),
            }],
            legacy_signatures: true,
            allow_downgrade: false,
            core: None,
            base: None,
        }
    }

    #[test]
    fn statement_records_subject_inputs_and_unchecked_repos() {
        let f = facts();
        let s = statement(&f);
        assert_eq!(s["_type"], "https://in-toto.io/Statement/v1");
        assert_eq!(s["predicateType"], "https://slsa.dev/provenance/v1");
        assert_eq!(s["subject"][0]["name"], "app:1");
        assert_eq!(s["subject"][0]["digest"]["sha256"], f.image_digest.hex());
        let deps = s["predicate"]["buildDefinition"]["resolvedDependencies"]
            .as_array()
            .unwrap();
        let names: Vec<&str> = deps.iter().map(|d| d["name"].as_str().unwrap()).collect();
        assert_eq!(
            names,
            [
                "recipe",
                "lock",
                "repo:fedora:x86_64",
                "busybox-1:1.35.0-4.fc40.x86_64"
            ]
        );
        assert_eq!(deps[0]["digest"]["sha256"], f.recipe_digest.hex());
        assert_eq!(deps[2]["uri"], "https://m/f/repodata/repomd.xml");
        assert_eq!(deps[2]["annotations"]["revision"], "1712");
        assert_eq!(deps[3]["digest"]["sha256"], Digest::sha256_of(b"rpm").hex());
        assert_eq!(deps[3]["annotations"]["signedBy"], "ABCD");
        assert_eq!(
            s["predicate"]["buildDefinition"]["internalParameters"]["signatureChecksOff"],
            json!(["fedora"])
        );
        let internal = &s["predicate"]["buildDefinition"]["internalParameters"];
        assert_eq!(internal["legacySignaturesAccepted"], true);
        assert_eq!(internal["repomdDowngradeAllowed"], false);
        assert!(!s.to_string().contains("startedOn"), "no wall-clock times");
    }

    #[test]
    fn statement_is_deterministic_and_omits_an_absent_lock() {
        let mut f = facts();
        assert_eq!(statement(&f).to_string(), statement(&f).to_string());
        f.lock = None;
        let s = statement(&f);
        let deps = s["predicate"]["buildDefinition"]["resolvedDependencies"]
            .as_array()
            .unwrap();
        assert!(deps.iter().all(|d| d["name"] != "lock"));
        assert!(s["predicate"]["buildDefinition"]["externalParameters"]["lock"].is_null());
    }
}
