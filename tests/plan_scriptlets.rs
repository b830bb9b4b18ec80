//! `plan` classifies every scriptlet of real shapes by interpreter and body,
//! lua and triggers included, and says for each effect whether minibuild
//! does it: a snapshot of the table's scriptlet section and of `--json`,
//! for packages built here whose scriptlets are copied from real specs
//! (tests/common/scriptlet_specs.rs).

mod common;

use common::scriptlet_specs::*;
use common::*;

#[test]
fn plan_names_each_scriptlet_effect_and_whether_it_is_done() {
    require_tool("rpmbuild");
    require_tool("createrepo_c");
    let tmp = tempfile::tempdir().unwrap();
    let specs = vec![
        cracklib(),
        azure_filesystem_debug(),
        suse_var_run(),
        crypto_policies(),
        p11_kit_trust("bash"),
        ldconfig_user(),
        glibc_file_trigger(),
    ];
    let repo = build_repo(tmp.path(), &specs);
    let names: Vec<String> = specs.iter().map(|s| format!("\"{}\"", s.name)).collect();
    let recipe = tmp.path().join("recipe.toml");
    std::fs::write(
        &recipe,
        format!(
            "[image]\nname = \"plan\"\n\n[[repo]]\nname = \"fedora\"\nbaseurl = \"{}\"\ngpgcheck = false\n\n\
             [[repo]]\nname = \"effects\"\nbaseurl = \"file://{}/\"\ngpgcheck = false\n\n\
             [packages]\ninstall = [{}]\nprefer = [\"glibc-minimal-langpack\", \"coreutils-single\"]\n\n[options]\nreleasever = \"40\"\n",
            fixture_file_url(),
            repo.display(),
            names.join(", ")
        ),
    )
    .unwrap();
    let plan = |json: bool| {
        let mut cmd = minibuild();
        cmd.arg("plan")
            .arg(&recipe)
            .arg("--cache-dir")
            .arg(tmp.path().join("cache"));
        if json {
            cmd.arg("--json");
        }
        run_ok(&mut cmd)
    };
    let table = plan(false);
    let text = String::from_utf8_lossy(&table.stdout);
    let ours: Vec<String> = specs.iter().map(|s| s.name.to_string()).collect();
    let section: Vec<String> = text
        .lines()
        .skip_while(|l| !l.starts_with("Scriptlets not run"))
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| ours.iter().any(|n| l.starts_with(&format!("{n} "))))
        .collect();
    let expected = [
        "azl-debug-dirs %post (symlinks/directories, emulated)",
        "cracklib %post (symlinks/directories, emulated; linker cache, written natively), \
         %trigger (symlinks/directories, not done)",
        "crypto-policies %post (crypto-policy links, emulated)",
        "glibc-trigger %transfiletrigger (linker cache, written natively)",
        "libfixture %post (linker cache, written natively), %postun (linker cache, written natively)",
        "p11-kit-trust %post (alternatives, emulated)",
        "suse-var-run %pretrans (symlinks/directories, emulated)",
    ];
    assert_eq!(section, expected, "{text}");

    // --json carries the same, with the interpreter.
    let out = plan(true);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let pkg = |name: &str| {
        v[0]["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {v}"))["scriptlets"]
            .clone()
    };
    assert_eq!(
        pkg("libfixture")[0],
        serde_json::json!({"kind": "%post", "interpreter": ["/usr/sbin/ldconfig"], "effects": ["linker cache, written natively"]})
    );
    assert_eq!(
        pkg("crypto-policies")[0]["interpreter"],
        serde_json::json!(["<lua>"])
    );
    assert_eq!(pkg("glibc-trigger")[0]["kind"], "%transfiletrigger");
    // Headers only: nothing downloaded.
    let rpms = tmp.path().join("cache/v1/rpms");
    assert!(!rpms.exists() || std::fs::read_dir(&rpms).unwrap().next().is_none());
}
