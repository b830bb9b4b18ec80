//! Resolver behaviour on hand-written package universes.

use super::*;
use crate::digest::Digest;
use crate::package::{Cmp, Dep, Evr};

/// A package builder: `P::new("bash-5.2-1.x86_64")`.
struct P(Package);

fn dep(s: &str) -> Dep {
    match rich::parse(s) {
        Ok(rich::Rich::Simple(d)) => d,
        // Rich deps travel whole in `name`, as in primary.xml.
        _ => Dep::any(s),
    }
}

impl P {
    fn new(nevra: &str) -> P {
        let (rest, arch) = nevra.rsplit_once('.').unwrap();
        let (rest, rel) = rest.rsplit_once('-').unwrap();
        let (name, ver) = rest.rsplit_once('-').unwrap();
        let evr = Evr::parse(&format!("{ver}-{rel}"));
        P(Package {
            download_size: 1,
            installed_size: 1,
            provides: vec![Dep::versioned(name, Cmp::Eq, evr.clone())],
            ..Package::new(
                Nevra::new(name, evr.clone(), arch),
                0,
                format!("Packages/{nevra}.rpm"),
                Digest::sha256_of(nevra.as_bytes()),
            )
        })
    }
    fn req(mut self, d: &str) -> P {
        self.0.requires.push(dep(d));
        self
    }
    fn prov(mut self, d: &str) -> P {
        self.0.provides.push(dep(d));
        self
    }
    fn file(mut self, f: &str) -> P {
        self.0.files.push(f.to_string());
        self
    }
    fn conflicts(mut self, d: &str) -> P {
        self.0.conflicts.push(dep(d));
        self
    }
    fn obsoletes(mut self, d: &str) -> P {
        self.0.obsoletes.push(dep(d));
        self
    }
    fn recommends(mut self, d: &str) -> P {
        self.0.recommends.push(dep(d));
        self
    }
    fn suggests(mut self, d: &str) -> P {
        self.0.suggests.push(dep(d));
        self
    }
    fn supplements(mut self, d: &str) -> P {
        self.0.supplements.push(dep(d));
        self
    }
    fn repo(mut self, r: usize) -> P {
        self.0.repo = r;
        self
    }
}

fn universe(ps: Vec<P>) -> Vec<Package> {
    ps.into_iter().map(|p| p.0).collect()
}

fn request(install: &[&str]) -> Request {
    Request {
        install: install.iter().map(|s| s.to_string()).collect(),
        arch: Some(Arch::X86_64),
        ..Request::default()
    }
}

fn solve(pkgs: &[Package], req: &Request) -> Result<Plan, ResolveError> {
    ResolvoSolver.solve(pkgs, req)
}

/// The plan as sorted NEVRA strings.
fn nevras(plan: &Plan) -> Vec<String> {
    plan.nevras().map(|n| n.to_string()).collect()
}

fn install(pkgs: &[Package], what: &[&str]) -> Vec<String> {
    nevras(&solve(pkgs, &request(what)).unwrap())
}

#[test]
fn simple_chain_with_reasons() {
    let pkgs = universe(vec![
        P::new("nginx-1.24-1.x86_64").req("openssl-libs >= 3"),
        P::new("openssl-libs-3.0-1.x86_64").req("glibc"),
        P::new("glibc-2.39-1.x86_64").req("rpmlib(PayloadIsZstd) <= 5.4.18-1"),
        P::new("unrelated-1-1.x86_64"),
    ]);
    let plan = solve(&pkgs, &request(&["nginx"])).unwrap();
    assert_eq!(
        nevras(&plan),
        [
            "glibc-2.39-1.x86_64",
            "nginx-1.24-1.x86_64",
            "openssl-libs-3.0-1.x86_64"
        ]
    );
    let reasons: Vec<&Reason> = plan.packages.iter().map(|p| &p.reason).collect();
    assert_eq!(
        reasons[1],
        &Reason::Requested {
            request: "nginx".into()
        }
    );
    assert_eq!(
        reasons[2],
        &Reason::Required {
            by: 1,
            dep: "openssl-libs >= 3".into()
        }
    );
    assert_eq!(
        reasons[0],
        &Reason::Required {
            by: 2,
            dep: "glibc".into()
        }
    );
    // The reasons form the chain `minibuild why` shows (see explain::why).
    let chain = crate::explain::why(&plan, "glibc");
    assert_eq!(chain.len(), 1);
    assert_eq!(chain[0].first().map(String::as_str), Some("nginx"));
    assert_eq!(chain[0].last().map(String::as_str), Some("glibc"));
    assert!(crate::explain::why(&plan, "unrelated").is_empty());
}

#[test]
fn versioned_provides_pick_the_matching_provider_and_version() {
    let pkgs = universe(vec![
        P::new("app-1-1.x86_64").req("libfoo(api) >= 2"),
        P::new("foo-old-1-1.x86_64").prov("libfoo(api) = 1"),
        P::new("foo-new-2-1.x86_64").prov("libfoo(api) = 2.1"),
        P::new("bar-1-1.x86_64").req("baz < 2"),
        P::new("baz-1.5-1.x86_64"),
        P::new("baz-2.0-1.x86_64"),
    ]);
    assert_eq!(
        install(&pkgs, &["app"]),
        ["app-1-1.x86_64", "foo-new-2-1.x86_64"]
    );
    assert_eq!(
        install(&pkgs, &["bar"]),
        ["bar-1-1.x86_64", "baz-1.5-1.x86_64"]
    );
    // Requests may carry versions too.
    assert_eq!(install(&pkgs, &["baz <= 1.9"]), ["baz-1.5-1.x86_64"]);
}

#[test]
fn newest_version_wins_then_repo_order() {
    let pkgs = universe(vec![
        P::new("bash-5.1-1.x86_64"),
        P::new("bash-5.2-1.x86_64").repo(1),
        P::new("bash-5.2-1.x86_64").repo(0),
        P::new("bash-5.2~rc1-1.x86_64"),
    ]);
    let plan = solve(&pkgs, &request(&["bash"])).unwrap();
    assert_eq!(nevras(&plan), ["bash-5.2-1.x86_64"]);
    assert_eq!(plan.packages[0].package.repo, 0);
}

#[test]
fn file_dependencies_by_file_list_and_by_provide() {
    let pkgs = universe(vec![
        P::new("script-1-1.noarch")
            .req("/bin/sh")
            .req("/usr/bin/python3"),
        P::new("bash-5.2-1.x86_64")
            .file("/bin/sh")
            .file("/usr/bin/bash"),
        P::new("python3-3.12-1.x86_64").prov("/usr/bin/python3"),
    ]);
    assert_eq!(
        install(&pkgs, &["script"]),
        [
            "bash-5.2-1.x86_64",
            "python3-3.12-1.x86_64",
            "script-1-1.noarch"
        ]
    );
    assert_eq!(install(&pkgs, &["/usr/bin/bash"]), ["bash-5.2-1.x86_64"]);
}

fn langpacks() -> Vec<Package> {
    universe(vec![
        P::new("glibc-2.39-1.x86_64").req("glibc-langpack"),
        P::new("glibc-all-langpacks-2.39-1.x86_64").prov("glibc-langpack"),
        P::new("glibc-minimal-langpack-2.39-1.x86_64").prov("glibc-langpack"),
    ])
}

#[test]
fn prefer_chooses_between_providers() {
    let pkgs = langpacks();
    let mut req = request(&["glibc"]);
    req.prefer = vec!["glibc-minimal-langpack".into()];
    assert!(nevras(&solve(&pkgs, &req).unwrap())
        .contains(&"glibc-minimal-langpack-2.39-1.x86_64".to_string()));
    req.prefer = vec!["glibc-all-*".into()];
    assert!(nevras(&solve(&pkgs, &req).unwrap())
        .contains(&"glibc-all-langpacks-2.39-1.x86_64".to_string()));
    // Without a preference: shortest name among equals, deterministically.
    req.prefer.clear();
    assert_eq!(
        nevras(&solve(&pkgs, &req).unwrap()),
        ["glibc-2.39-1.x86_64", "glibc-all-langpacks-2.39-1.x86_64"]
    );
}

#[test]
fn provider_named_like_the_capability_then_repo_order() {
    let pkgs = universe(vec![
        P::new("app-1-1.x86_64").req("awk"),
        P::new("gawk-5-1.x86_64").prov("awk"),
        P::new("awk-1-1.x86_64").repo(1),
        P::new("zz-impl-1-1.x86_64").prov("thing"),
        P::new("aa-impl-1-1.x86_64").prov("thing").repo(2),
        P::new("user-1-1.x86_64").req("thing"),
    ]);
    assert!(install(&pkgs, &["app"]).contains(&"awk-1-1.x86_64".to_string()));
    assert!(install(&pkgs, &["user"]).contains(&"zz-impl-1-1.x86_64".to_string()));
}

fn coreutils() -> Vec<Package> {
    universe(vec![
        P::new("bash-5.2-1.x86_64").req("coreutils"),
        P::new("coreutils-9.4-1.x86_64")
            .req("coreutils-common")
            .conflicts("coreutils-single"),
        P::new("coreutils-common-9.4-1.x86_64"),
        P::new("coreutils-single-9.4-1.x86_64")
            .prov("coreutils = 9.4-1")
            .conflicts("coreutils"),
    ])
}

/// bash with the full coreutils from [`coreutils`].
const FULL_COREUTILS: [&str; 3] = [
    "bash-5.2-1.x86_64",
    "coreutils-9.4-1.x86_64",
    "coreutils-common-9.4-1.x86_64",
];

#[test]
fn conflicts_coreutils_versus_coreutils_single() {
    let pkgs = coreutils();
    // Default: the package named like the capability.
    assert_eq!(install(&pkgs, &["bash"]), FULL_COREUTILS);
    // Asking for coreutils-single makes coreutils impossible.
    assert_eq!(
        install(&pkgs, &["bash", "coreutils-single"]),
        ["bash-5.2-1.x86_64", "coreutils-single-9.4-1.x86_64"]
    );
    let mut req = request(&["bash"]);
    req.prefer = vec!["coreutils-single".into()];
    assert_eq!(
        nevras(&solve(&pkgs, &req).unwrap()),
        ["bash-5.2-1.x86_64", "coreutils-single-9.4-1.x86_64"]
    );
    // Both at once is impossible, and the explanation says why.
    let err = solve(&pkgs, &request(&["coreutils", "coreutils-single"])).unwrap_err();
    let ResolveError::Unsolvable { explanation, .. } = &err else {
        panic!("{err}")
    };
    assert!(explanation.contains("coreutils-single"), "{explanation}");
}

/// openSUSE's shape (coreutils.spec, busybox-links.spec): a script needs
/// `/usr/bin/ls`, which coreutils, coreutils-single and busybox-coreutils
/// all ship. The built-in list takes coreutils-single, never the busybox
/// applets, whose name sorts first.
#[test]
fn opensuse_minimal_provider_is_coreutils_single_not_busybox_applets() {
    let pkgs = universe(vec![
        P::new("app-1-1.x86_64").req("/usr/bin/ls"),
        P::new("coreutils-9.4-1.x86_64")
            .file("/usr/bin/ls")
            .conflicts("coreutils-single"),
        P::new("coreutils-single-9.4-1.x86_64")
            .file("/usr/bin/ls")
            .prov("coreutils = 9.4-1")
            .conflicts("coreutils"),
        P::new("busybox-1.36-1.x86_64"),
        P::new("busybox-coreutils-1.36-1.noarch")
            .file("/usr/bin/ls")
            .req("busybox = 1.36")
            .conflicts("coreutils"),
    ]);
    let mut req = request(&["app"]);
    req.minimal_by_default = true;
    let plan = solve(&pkgs, &req).unwrap();
    assert_eq!(
        nevras(&plan),
        ["app-1-1.x86_64", "coreutils-single-9.4-1.x86_64"]
    );
    assert!(
        plan.choices
            .values()
            .any(|c| c.to_string().ends_with(": minimal provider")),
        "{:?}",
        plan.choices
    );
}

#[test]
fn minimal_providers_by_default_and_the_recipe_overrides_them() {
    let pkgs = coreutils();
    let mut req = request(&["bash"]);
    req.minimal_by_default = true;
    let plan = solve(&pkgs, &req).unwrap();
    assert_eq!(
        nevras(&plan),
        ["bash-5.2-1.x86_64", "coreutils-single-9.4-1.x86_64"]
    );
    let choice = &plan.choices[&1];
    assert_eq!(
        choice.to_string(),
        "chosen over coreutils: minimal provider"
    );
    assert_eq!(plan.choices.len(), 1, "bash was requested, not chosen");

    // The recipe's prefer comes first, and says so.
    req.prefer = vec!["coreutils".into()];
    let plan = solve(&pkgs, &req).unwrap();
    assert_eq!(nevras(&plan), FULL_COREUTILS);
    assert_eq!(
        plan.choices[&1].to_string(),
        "chosen over coreutils-single: the recipe's prefer"
    );
    // exclude removes the minimal one outright; no choice is left to show.
    req.prefer.clear();
    req.exclude = vec!["coreutils-single".into()];
    let plan = solve(&pkgs, &req).unwrap();
    assert!(nevras(&plan).contains(&"coreutils-9.4-1.x86_64".to_string()));
    assert!(plan.choices.is_empty(), "{:?}", plan.choices);
}

#[test]
fn avoid_overrides_the_minimal_list_and_says_so() {
    let pkgs = coreutils();
    let mut req = request(&["bash"]);
    req.minimal_by_default = true;
    req.avoid = vec!["coreutils-single".into()];
    let plan = solve(&pkgs, &req).unwrap();
    assert_eq!(nevras(&plan), FULL_COREUTILS);
    assert_eq!(
        plan.choices[&1].to_string(),
        "chosen over coreutils-single: the recipe's avoid"
    );
    assert_eq!(plan.choices.len(), 1, "{:?}", plan.choices);
    // Without the minimal list the same: avoid alone moves the choice.
    req.minimal_by_default = false;
    req.avoid = vec!["coreutils".into()];
    let plan = solve(&pkgs, &req).unwrap();
    assert_eq!(
        nevras(&plan),
        ["bash-5.2-1.x86_64", "coreutils-single-9.4-1.x86_64"]
    );
    assert_eq!(
        plan.choices[&1].to_string(),
        "chosen over coreutils: the recipe's avoid"
    );
}

#[test]
fn avoid_is_weaker_than_exclude() {
    let pkgs = coreutils();
    // Requested by name: installed although avoided, and no choice shown.
    let mut req = request(&["bash", "coreutils-single"]);
    req.avoid = vec!["coreutils-single".into()];
    let plan = solve(&pkgs, &req).unwrap();
    assert_eq!(
        nevras(&plan),
        ["bash-5.2-1.x86_64", "coreutils-single-9.4-1.x86_64"]
    );
    assert!(plan.choices.is_empty(), "{:?}", plan.choices);
    // The only provider left: installed although avoided.
    let mut req = request(&["bash"]);
    req.exclude = vec!["coreutils".into()];
    req.avoid = vec!["coreutils-single".into()];
    assert_eq!(
        nevras(&solve(&pkgs, &req).unwrap()),
        ["bash-5.2-1.x86_64", "coreutils-single-9.4-1.x86_64"]
    );
    // Globs, and every provider avoided: the usual order decides.
    let mut req = request(&["glibc"]);
    req.avoid = vec!["glibc-*".into()];
    let plan = solve(&langpacks(), &req).unwrap();
    assert_eq!(plan.packages.len(), 2, "{:?}", nevras(&plan));
    assert!(plan.choices.is_empty(), "{:?}", plan.choices);
    // An avoided name is passed over even where a prefer glob matches it.
    req.avoid = vec!["glibc-minimal-langpack".into()];
    req.prefer = vec!["glibc-*".into()];
    let plan = solve(&langpacks(), &req).unwrap();
    assert_eq!(
        nevras(&plan),
        ["glibc-2.39-1.x86_64", "glibc-all-langpacks-2.39-1.x86_64"]
    );
    assert_eq!(
        plan.choices[&1].to_string(),
        "chosen over glibc-minimal-langpack: the recipe's prefer"
    );
}

#[test]
fn minimal_langpack_and_curl_by_default() {
    let mut pkgs = langpacks();
    pkgs.extend(universe(vec![
        P::new("app-1-1.x86_64").req("libcurl.so.4()(64bit)"),
        P::new("libcurl-8.6-1.x86_64").prov("libcurl.so.4()(64bit)"),
        P::new("libcurl-minimal-8.6-1.x86_64").prov("libcurl.so.4()(64bit)"),
    ]));
    let mut req = request(&["glibc", "app"]);
    req.minimal_by_default = true;
    let plan = solve(&pkgs, &req).unwrap();
    assert_eq!(
        nevras(&plan),
        [
            "app-1-1.x86_64",
            "glibc-2.39-1.x86_64",
            "glibc-minimal-langpack-2.39-1.x86_64",
            "libcurl-minimal-8.6-1.x86_64"
        ]
    );
    let shown: Vec<String> = plan.choices.values().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "chosen over glibc-all-langpacks: minimal provider",
            "chosen over libcurl: minimal provider"
        ]
    );
    // Off (langs other than C): the name rules as before.
    req.minimal_by_default = false;
    let plan = solve(&pkgs, &req).unwrap();
    assert!(nevras(&plan).contains(&"glibc-all-langpacks-2.39-1.x86_64".to_string()));
    assert!(nevras(&plan).contains(&"libcurl-8.6-1.x86_64".to_string()));
    assert!(plan.choices.is_empty());
}

#[test]
fn obsoletes_keep_the_obsoleted_package_out() {
    let pkgs = universe(vec![
        P::new("new-tools-2-1.x86_64")
            .obsoletes("old-tools < 2")
            .obsoletes("new-tools < 1"),
        P::new("old-tools-1-1.x86_64"),
        P::new("old-tools-3-1.x86_64"),
        P::new("wants-old-1-1.x86_64").req("old-tools"),
        P::new("wants-v1-1-1.x86_64").req("old-tools < 2"),
    ]);
    // Version 3 is not obsoleted: both can be installed.
    assert_eq!(
        install(&pkgs, &["new-tools", "wants-old"]),
        [
            "new-tools-2-1.x86_64",
            "old-tools-3-1.x86_64",
            "wants-old-1-1.x86_64"
        ]
    );
    // (A request `old-tools < 2` would take new-tools instead, as dnf does.)
    let err = solve(&pkgs, &request(&["new-tools", "wants-v1"])).unwrap_err();
    assert!(
        matches!(err, ResolveError::Unsolvable { ref explanation, .. } if explanation.contains("old-tools")),
        "{err}"
    );
}

#[test]
fn rich_or_and_with_versions() {
    let pkgs = universe(vec![
        P::new("a-1-1.x86_64").req("(foo >= 1.2 or bar)"),
        P::new("foo-1.0-1.x86_64"),
        P::new("bar-1-1.x86_64"),
        P::new("b-1-1.x86_64").req("(foo and bar)"),
        P::new("c-1-1.x86_64").req("(foo < 1 or (bar and foo))"),
    ]);
    // foo 1.0 is too old: bar is the only way.
    assert_eq!(install(&pkgs, &["a"]), ["a-1-1.x86_64", "bar-1-1.x86_64"]);
    assert_eq!(
        install(&pkgs, &["b"]),
        ["b-1-1.x86_64", "bar-1-1.x86_64", "foo-1.0-1.x86_64"]
    );
    assert_eq!(
        install(&pkgs, &["c"]),
        ["bar-1-1.x86_64", "c-1-1.x86_64", "foo-1.0-1.x86_64"]
    );
}

#[test]
fn rich_if_else() {
    let pkgs = universe(vec![
        P::new("plugin-1-1.x86_64").req("(gui-support if desktop else cli-support)"),
        P::new("gui-support-1-1.x86_64"),
        P::new("cli-support-1-1.x86_64"),
        P::new("desktop-1-1.x86_64"),
    ]);
    assert_eq!(
        install(&pkgs, &["plugin"]),
        ["cli-support-1-1.x86_64", "plugin-1-1.x86_64"]
    );
    assert_eq!(
        install(&pkgs, &["plugin", "desktop"]),
        [
            "desktop-1-1.x86_64",
            "gui-support-1-1.x86_64",
            "plugin-1-1.x86_64"
        ]
    );
    // Plain `if`: nothing when the condition does not hold.
    let pkgs = universe(vec![
        P::new("p-1-1.x86_64").req("(extra if desktop)"),
        P::new("extra-1-1.x86_64"),
        P::new("desktop-1-1.x86_64"),
    ]);
    assert_eq!(install(&pkgs, &["p"]), ["p-1-1.x86_64"]);
    assert_eq!(
        install(&pkgs, &["p", "desktop"]),
        ["desktop-1-1.x86_64", "extra-1-1.x86_64", "p-1-1.x86_64"]
    );
}

/// `unless` as rpm accepts it (Conflicts, Supplements) and libsolv reads
/// it: `(a unless b)` = `a ∧ ¬b` (dnf agrees, tests/parity.rs).
#[test]
fn rich_unless_in_conflicts_and_supplements() {
    let pkgs = universe(vec![
        P::new("p-1-1.x86_64").conflicts("(driver unless platform)"),
        P::new("driver-1-1.x86_64"),
        P::new("platform-1-1.x86_64"),
        P::new("helper-1-1.x86_64").supplements("(p unless driver)"),
    ]);
    assert_eq!(install(&pkgs, &["p"]), ["p-1-1.x86_64"]);
    // The conflict holds only without `platform`: the solver brings it in.
    assert_eq!(
        install(&pkgs, &["p", "driver"]),
        ["driver-1-1.x86_64", "p-1-1.x86_64", "platform-1-1.x86_64"]
    );
    let mut req = request(&["p"]);
    req.weak_deps = true;
    assert_eq!(
        nevras(&solve(&pkgs, &req).unwrap()),
        ["helper-1-1.x86_64", "p-1-1.x86_64"]
    );
    let mut req = request(&["p", "driver"]);
    req.weak_deps = true;
    assert!(!nevras(&solve(&pkgs, &req).unwrap()).contains(&"helper-1-1.x86_64".to_string()));
}

#[test]
fn rich_with_and_without_need_one_package() {
    let pkgs = universe(vec![
        P::new("p-1-1.x86_64").req("(python3dist(x) with python3.12dist(x))"),
        P::new("q-1-1.x86_64").req("(python3dist(x) without python3.12dist(x))"),
        P::new("x-old-1-1.noarch")
            .prov("python3dist(x)")
            .prov("python3.11dist(x)"),
        P::new("x-new-2-1.noarch")
            .prov("python3dist(x)")
            .prov("python3.12dist(x)"),
    ]);
    assert_eq!(install(&pkgs, &["p"]), ["p-1-1.x86_64", "x-new-2-1.noarch"]);
    assert_eq!(install(&pkgs, &["q"]), ["q-1-1.x86_64", "x-old-1-1.noarch"]);
}

#[test]
fn rpmlib_inside_rich_deps_is_provided_by_rpm() {
    let pkgs = universe(vec![
        P::new("p-1-1.x86_64")
            .req("(rpmlib(RichDependencies) or never-there)")
            .req("(helper if rpmlib(CompressedFileNames))"),
        P::new("helper-1-1.x86_64"),
    ]);
    assert_eq!(
        install(&pkgs, &["p"]),
        ["helper-1-1.x86_64", "p-1-1.x86_64"]
    );
}

#[test]
fn rich_conflicts() {
    let pkgs = universe(vec![
        P::new("p-1-1.x86_64").conflicts("(bad >= 2)"),
        P::new("bad-1-1.x86_64"),
        P::new("bad-2-1.x86_64"),
    ]);
    assert_eq!(
        install(&pkgs, &["p", "bad"]),
        ["bad-1-1.x86_64", "p-1-1.x86_64"]
    );
}

#[test]
fn broken_rich_dep_names_the_package_and_text() {
    let pkgs = universe(vec![
        P::new("p-1-1.x86_64").req("(a and b or c)"),
        P::new("a-1-1.x86_64"),
    ]);
    let err = solve(&pkgs, &request(&["p"])).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("p-1-1.x86_64"), "{msg}");
    assert!(msg.contains("(a and b or c)"), "{msg}");
    let err = solve(&pkgs, &request(&["(a or"])).unwrap_err();
    assert!(matches!(err, ResolveError::BadRequest { .. }), "{err}");
}

fn weak_universe() -> Vec<Package> {
    universe(vec![
        P::new("vim-9-1.x86_64")
            .recommends("vim-data")
            .suggests("vim-docs")
            .recommends("missing-thing"),
        P::new("vim-data-9-1.noarch"),
        P::new("vim-docs-9-1.noarch"),
        P::new("langpacks-en-1-1.noarch"),
        P::new("vim-lang-en-9-1.noarch").supplements("(vim and langpacks-en)"),
        P::new("vim-conflicting-1-1.noarch")
            .supplements("vim")
            .conflicts("vim-data"),
    ])
}

#[test]
fn weak_deps_off_by_default() {
    assert_eq!(install(&weak_universe(), &["vim"]), ["vim-9-1.x86_64"]);
}

#[test]
fn weak_deps_on_install_recommends_and_supplements_but_never_suggests() {
    let pkgs = weak_universe();
    let mut req = request(&["vim", "langpacks-en"]);
    req.weak_deps = true;
    let plan = solve(&pkgs, &req).unwrap();
    assert_eq!(
        nevras(&plan),
        [
            "langpacks-en-1-1.noarch",
            "vim-9-1.x86_64",
            "vim-data-9-1.noarch",
            "vim-lang-en-9-1.noarch"
        ]
    );
    assert_eq!(
        plan.packages[2].reason,
        Reason::Recommended {
            by: 1,
            dep: "vim-data".into()
        }
    );
    assert!(matches!(
        plan.packages[3].reason,
        Reason::Recommended { .. }
    ));
}

#[test]
fn arch_filtering_never_multilib() {
    let pkgs = universe(vec![
        P::new("app-1-1.x86_64").req("libz.so.1"),
        P::new("zlib-1-1.i686").prov("libz.so.1"),
        P::new("zlib-1-1.x86_64").prov("libz.so.1"),
        P::new("zlib-2-1.aarch64").prov("libz.so.1"),
        P::new("zlib-1-1.src"),
        P::new("only32-1-1.i686"),
    ]);
    assert_eq!(
        install(&pkgs, &["app"]),
        ["app-1-1.x86_64", "zlib-1-1.x86_64"]
    );
    let err = solve(&pkgs, &request(&["only32"])).unwrap_err();
    assert!(matches!(err, ResolveError::NothingProvides { .. }), "{err}");
}

#[test]
fn exclude_removes_candidates() {
    let pkgs = langpacks();
    let mut req = request(&["glibc"]);
    req.exclude = vec!["glibc-all-*".into()];
    assert_eq!(
        nevras(&solve(&pkgs, &req).unwrap()),
        [
            "glibc-2.39-1.x86_64",
            "glibc-minimal-langpack-2.39-1.x86_64"
        ]
    );
    req.exclude = vec!["glibc-*-langpack*".into()];
    let err = solve(&pkgs, &req).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, ResolveError::Unsolvable { .. }), "{msg}");
    assert!(msg.contains("excluded"), "{msg}");
    req.install = vec!["glibc-all-langpacks".into()];
    assert!(matches!(
        solve(&pkgs, &req).unwrap_err(),
        ResolveError::Excluded { .. }
    ));
}

#[test]
fn nothing_provides_suggests_close_names() {
    let err = solve(&langpacks(), &request(&["glbc"])).unwrap_err();
    let ResolveError::NothingProvides {
        request: asked,
        hint,
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!(asked, "glbc");
    assert_eq!(hint.as_deref(), Some("did you mean `glibc`?"));
    assert!(err.to_string().contains("did you mean `glibc`"), "{err}");
    // The name exists, the version does not: list the versions.
    let err = solve(&langpacks(), &request(&["glibc >= 2.40"])).unwrap_err();
    assert!(
        matches!(&err, ResolveError::NothingProvides { hint: Some(h), .. }
            if h == "available: glibc-2.39-1.x86_64"),
        "{err}"
    );
}

#[test]
fn a_request_naming_an_excluded_package_is_excluded_even_if_others_provide_it() {
    let pkgs = universe(vec![
        P::new("sh-1-1.x86_64"),
        P::new("bash-5-1.x86_64").prov("sh"),
    ]);
    let mut req = request(&["sh"]);
    req.exclude = vec!["sh".into()];
    let err = solve(&pkgs, &req).unwrap_err();
    assert!(matches!(err, ResolveError::Excluded { .. }), "{err}");
}

#[test]
fn unsatisfiable_explains_package_and_dependency() {
    let pkgs = universe(vec![
        P::new("nginx-1.24-1.x86_64").req("libpcre2-8.so.0 >= 10.42"),
        P::new("pcre2-10.40-1.x86_64").prov("libpcre2-8.so.0 = 10.40"),
    ]);
    let err = solve(&pkgs, &request(&["nginx"])).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, ResolveError::Unsolvable { .. }), "{msg}");
    assert!(msg.contains("nginx-1.24-1.x86_64"), "{msg}");
    assert!(msg.contains("libpcre2-8.so.0 >= 10.42"), "{msg}");
    // Why the only candidate was rejected.
    assert!(
        msg.contains("pcre2-10.40-1.x86_64 provides `libpcre2-8.so.0 = 10.40`"),
        "{msg}"
    );
}

#[test]
fn self_conflicts_and_self_obsoletes_are_ignored() {
    let pkgs = universe(vec![
        P::new("foo-2-1.x86_64")
            .prov("foo-compat = 2")
            .conflicts("foo-compat")
            .obsoletes("foo < 2"),
        P::new("bar-1-1.x86_64").req("foo-compat"),
    ]);
    assert_eq!(
        install(&pkgs, &["bar"]),
        ["bar-1-1.x86_64", "foo-2-1.x86_64"]
    );
}

/// ~75,000 packages shaped like a distribution (a shared base most packages
/// link against, sonames, file deps, rich deps, conflicts, older versions,
/// i686 multilib): resolve time is printed.
/// `cargo test --release --lib resolve::tests::large -- --ignored --nocapture`
#[test]
#[ignore]
fn large_synthetic_universe() {
    let mut ps = Vec::new();
    let n = 75_000;
    let base = 300;
    for i in 0..n {
        let mut p = P::new(&format!("pkg{i}-1.{}-1.x86_64", i % 7))
            .prov(&format!("libpkg{i}.so.1()(64bit)"))
            .prov(&format!("pkg{i}-abi = 1"))
            .prov(&format!("config(pkg{i}) = 1.{}-1", i % 7))
            .prov(&format!("python3dist(pkg{i}) = 1.{}", i % 7));
        for f in 0..4 {
            p = p
                .file(&format!("/usr/bin/pkg{i}-{f}"))
                .file(&format!("/etc/pkg{i}/{f}.conf"));
        }
        if i > 10 {
            let pseudo = (i * 2654435761usize) >> 7;
            p = p
                .req(&format!("libpkg{}.so.1()(64bit)", i % base))
                .req(&format!("/usr/bin/pkg{}-0", (i * 7) % base))
                .req("rpmlib(CompressedFileNames) <= 3.0.4-1")
                .recommends(&format!("pkg{}", pseudo % i));
            if i % 2 == 0 {
                p = p.req(&format!("pkg{} >= 1.0", pseudo % i));
            }
            if i % 13 == 0 {
                let (a, b) = (pseudo % i, (pseudo >> 3) % i);
                p = p.req(&format!("(pkg{a}-abi or python3dist(pkg{b}) >= 1)"));
            }
            if i % 17 == 0 {
                p = p.conflicts(&format!("pkg{} < 1.0", i + 1));
            }
        }
        ps.push(p);
        if i % 10 == 0 {
            ps.push(P::new(&format!("pkg{i}-0.9-1.x86_64")));
            ps.push(P::new(&format!("pkg{i}-1.0-1.i686")));
        }
    }
    let pkgs = universe(ps);
    let req = request(&["pkg74999", "pkg60000", "pkg12345"]);
    // Best of three: the machine may be shared.
    let mut took = std::time::Duration::MAX;
    let mut plan = Plan::default();
    for _ in 0..3 {
        let start = std::time::Instant::now();
        plan = solve(&pkgs, &req).unwrap();
        took = took.min(start.elapsed());
    }
    eprintln!(
        "{} packages in the universe, {} chosen, resolved in {took:?}",
        pkgs.len(),
        plan.packages.len()
    );
    assert!(plan.packages.len() > 100);
    assert!(plan
        .packages
        .iter()
        .all(|p| p.package.nevra.arch == "x86_64"));
    let weak = Request {
        weak_deps: true,
        ..req
    };
    let start = std::time::Instant::now();
    let with_weak = solve(&pkgs, &weak).unwrap();
    eprintln!(
        "with weak deps: {} chosen in {:?}",
        with_weak.packages.len(),
        start.elapsed()
    );
    assert!(with_weak.packages.len() > plan.packages.len());
}

/// `install oldname` takes the package that obsoletes it, as dnf does; a
/// successor obsoleting only older versions does not replace a newer one.
#[test]
fn a_request_for_an_obsoleted_name_takes_the_successor() {
    let pkgs = universe(vec![
        P::new("oldname-1.0-1.noarch"),
        P::new("newname-2.0-1.noarch")
            .obsoletes("oldname < 2.0")
            .prov("oldname = 2.0"),
        P::new("kept-3.0-1.noarch"),
        P::new("partial-1-1.noarch").obsoletes("kept < 3.0"),
    ]);
    assert_eq!(install(&pkgs, &["oldname"]), ["newname-2.0-1.noarch"]);
    assert_eq!(install(&pkgs, &["kept"]), ["kept-3.0-1.noarch"]);
}

/// Fedora-shaped: basesystem recommends dnf, which brings rpm, rpm-libs and
/// python3; `app` needs librpm; `yum` is provided by dnf and by tdnf.
fn package_manager_universe() -> Vec<Package> {
    universe(vec![
        P::new("basesystem-11-1.noarch").recommends("dnf"),
        P::new("dnf-4.19-1.noarch").req("rpm").req("python3"),
        P::new("python3-3.12-1.x86_64"),
        P::new("rpm-4.19-1.x86_64").req("rpm-libs"),
        P::new("rpm-libs-4.19-1.x86_64").prov("librpm.so.9()(64bit)"),
        P::new("app-1-1.x86_64").req("librpm.so.9()(64bit)"),
        P::new("bash-5.2-1.x86_64"),
    ])
}

fn without_package_manager(pkgs: &[Package], req: &Request) -> Plan {
    let full = solve(pkgs, req).unwrap();
    leave_out::leave_out_package_manager(full, req, |r| solve(pkgs, r))
}

#[test]
fn package_manager_left_out_where_nothing_requested_needs_it() {
    let pkgs = package_manager_universe();
    let mut req = request(&["basesystem", "bash"]);
    req.weak_deps = true;
    assert_eq!(solve(&pkgs, &req).unwrap().packages.len(), 6);
    let plan = without_package_manager(&pkgs, &req);
    assert_eq!(
        nevras(&plan),
        ["basesystem-11-1.noarch", "bash-5.2-1.x86_64"]
    );
    let left: Vec<(&str, &str)> = plan
        .left_out
        .iter()
        .map(|l| (l.name.as_str(), l.why.as_str()))
        .collect();
    assert_eq!(
        left,
        [
            (
                "dnf",
                "package manager, recommended by basesystem (dnf); nothing requested needs it"
            ),
            (
                "python3",
                "required by dnf (python3); not needed once the package manager is left out"
            ),
            (
                "rpm",
                "package manager, required by dnf (rpm); nothing requested needs it"
            ),
            (
                "rpm-libs",
                "package manager, required by rpm (rpm-libs); nothing requested needs it"
            ),
        ]
    );
}

#[test]
fn package_manager_needed_by_a_request_stays_and_the_rest_goes() {
    let pkgs = package_manager_universe();
    // app needs rpm-libs: rpm-libs stays, dnf and rpm still go.
    let mut req = request(&["basesystem", "app"]);
    req.weak_deps = true;
    let plan = without_package_manager(&pkgs, &req);
    assert_eq!(
        nevras(&plan),
        [
            "app-1-1.x86_64",
            "basesystem-11-1.noarch",
            "rpm-libs-4.19-1.x86_64"
        ]
    );
    let left: Vec<&str> = plan.left_out.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(left, ["dnf", "python3", "rpm"]);

    // Requested by name: kept (hardening removes it after unpacking).
    let req = request(&["rpm"]);
    let plan = without_package_manager(&pkgs, &req);
    assert_eq!(
        nevras(&plan),
        ["rpm-4.19-1.x86_64", "rpm-libs-4.19-1.x86_64"]
    );
    assert!(plan.left_out.is_empty());
}

#[test]
fn package_manager_provider_passed_over_for_another() {
    let pkgs = universe(vec![
        P::new("tool-1-1.noarch").req("installer"),
        P::new("dnf-4.19-1.noarch").prov("installer"),
        P::new("zinstaller-1-1.noarch").prov("installer"),
    ]);
    let req = request(&["tool"]);
    assert_eq!(
        nevras(&solve(&pkgs, &req).unwrap()),
        ["dnf-4.19-1.noarch", "tool-1-1.noarch"]
    );
    let plan = without_package_manager(&pkgs, &req);
    assert_eq!(nevras(&plan), ["tool-1-1.noarch", "zinstaller-1-1.noarch"]);
    assert_eq!(plan.left_out[0].name, "dnf");
}

/// The shape from the synthetic repo (issue 17): `pkg-19000` requires
/// `(pkg-00262 or pkg-00040)` and, through `libfoo`, `pkg-00262` anyway.
/// The or-dep alone would pick `pkg-00040` (the name rules); since `pkg-00262`
/// is in the transaction regardless, `pkg-00040` (and what only it needs)
/// must not be installed.
#[test]
fn an_alternative_already_installed_meets_an_or_dependency() {
    let pkgs = universe(vec![
        P::new("pkg-19000-1-1.x86_64")
            .req("(pkg-00262 or pkg-00040)")
            .req("libfoo.so.1()(64bit)"),
        P::new("pkg-00262-1-1.x86_64").prov("lib00262.so.1()(64bit)"),
        P::new("pkg-00040-1-1.x86_64").req("pkg-00007"),
        P::new("pkg-00007-1-1.x86_64"),
        P::new("pkg-01000-1-1.x86_64")
            .prov("libfoo.so.1()(64bit)")
            .req("lib00262.so.1()(64bit)"),
    ]);
    assert_eq!(
        install(&pkgs, &["pkg-19000"]),
        [
            "pkg-00262-1-1.x86_64",
            "pkg-01000-1-1.x86_64",
            "pkg-19000-1-1.x86_64"
        ]
    );
}

/// libsolv (and so dnf) chooses, among providers, one the requiring package
/// Recommends or Suggests, weak deps on or off: glibc `Requires:
/// glibc-langpack` and `Suggests: glibc-minimal-langpack` gives the minimal
/// langpack, not the first by name (CentOS Stream 9 repodata in the corpus).
#[test]
fn a_provider_the_requiring_package_suggests_comes_first() {
    let pkgs = universe(vec![
        P::new("glibc-2.34-21.x86_64")
            .req("glibc-langpack = 2.34-21")
            .suggests("glibc-minimal-langpack = 2.34-21"),
        P::new("glibc-langpack-aa-2.34-21.x86_64").prov("glibc-langpack = 2.34-21"),
        P::new("glibc-minimal-langpack-2.34-21.x86_64").prov("glibc-langpack = 2.34-21"),
        P::new("app-1-1.x86_64").req("glibc-langpack"),
    ]);
    assert_eq!(
        install(&pkgs, &["glibc"]),
        [
            "glibc-2.34-21.x86_64",
            "glibc-minimal-langpack-2.34-21.x86_64"
        ]
    );
    // Without the hint, the name rules decide (shorter name first).
    assert_eq!(
        install(&pkgs, &["app"]),
        ["app-1-1.x86_64", "glibc-langpack-aa-2.34-21.x86_64"]
    );
}

fn nevra(s: &str) -> Nevra {
    P::new(s).0.nevra
}

#[test]
fn installed_packages_are_not_upgraded() {
    let pkgs = universe(vec![
        P::new("app-1-1.x86_64").req("libfoo"),
        P::new("libfoo-1-1.x86_64"),
        P::new("libfoo-2-1.x86_64"),
    ]);
    let req = Request {
        installed: vec![nevra("libfoo-1-1.x86_64")],
        ..request(&["app"])
    };
    let got = nevras(&solve(&pkgs, &req).unwrap());
    assert_eq!(got, ["app-1-1.x86_64", "libfoo-1-1.x86_64"]);
    // Without the installed set the newest is chosen.
    assert_eq!(
        install(&pkgs, &["app"]),
        ["app-1-1.x86_64", "libfoo-2-1.x86_64"]
    );
}

#[test]
fn installed_provider_is_chosen_over_another() {
    // Both provide /bin/sh; `bash` sorts first by name, the core has `dash`.
    let pkgs = universe(vec![
        P::new("app-1-1.x86_64").req("/bin/sh"),
        P::new("bash-5-1.x86_64").file("/bin/sh"),
        P::new("dash-1-1.x86_64").file("/bin/sh"),
    ]);
    let req = Request {
        installed: vec![nevra("dash-1-1.x86_64")],
        ..request(&["app"])
    };
    let got = nevras(&solve(&pkgs, &req).unwrap());
    assert_eq!(got, ["app-1-1.x86_64", "dash-1-1.x86_64"]);
}

#[test]
fn needing_another_version_of_an_installed_package_names_it() {
    let pkgs = universe(vec![
        P::new("app-1-1.x86_64").req("libfoo >= 2"),
        P::new("libfoo-1-1.x86_64"),
        P::new("libfoo-2-1.x86_64"),
    ]);
    let installed = vec![nevra("libfoo-1-1.x86_64")];
    let req = Request {
        installed: installed.clone(),
        ..request(&["app"])
    };
    assert!(solve(&pkgs, &req).is_err());
    let free = solve(&pkgs, &request(&["app"])).unwrap();
    let err = replaces_installed(&free, &installed).unwrap().to_string();
    assert!(
        err.contains("libfoo-2-1.x86_64") && err.contains("libfoo-1-1.x86_64"),
        "{err}"
    );
    let ok = solve(&pkgs, &request(&["libfoo = 1"])).unwrap();
    assert!(replaces_installed(&ok, &installed).is_none());
}
