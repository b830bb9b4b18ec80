//! Every TOML example in README.md is a test input: a reader who copies one
//! must get a valid recipe (or policy), not an error. Recipe fragments (a
//! lone `[options]` table) are checked inside a minimal recipe.

use std::path::Path;

/// The ```toml blocks of README.md, with the line each starts on.
fn toml_blocks(readme: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (n, line) in readme.lines().enumerate() {
        let fence = line.trim_start();
        match &mut current {
            None if fence.starts_with("```toml") => current = Some((n + 2, String::new())),
            Some(_) if fence.starts_with("```") => blocks.push(current.take().unwrap()),
            Some((_, text)) => {
                // Blocks inside list items are indented; TOML does not mind.
                text.push_str(line);
                text.push('\n');
            }
            None => {}
        }
    }
    assert!(
        current.is_none(),
        "README.md: a ```toml block is never closed"
    );
    blocks
}

/// What a fragment needs around it to be a whole recipe.
const MINIMAL: &str = "[[repo]]\nname = \"r\"\nbaseurl = \"file:///nonexistent/\"\ngpgcheck = false\n\n[packages]\ninstall = [\"busybox\"]\n\n";

#[test]
fn every_toml_example_in_the_readme_is_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).expect("read README.md");
    let blocks = toml_blocks(&readme);
    assert!(
        blocks.len() >= 4,
        "README.md has {} toml examples; the test is not finding them",
        blocks.len()
    );
    let mut failures = Vec::new();
    for (line, text) in &blocks {
        let name = root.join(format!("README.md:{line}"));
        let result = if text.contains("allow_repos") || text.contains("signing_keys") {
            minibuild::policy::Policy::parse(&name, text)
                .map(|_| ())
                .map_err(anyhow::Error::from)
        } else if text.contains("[packages]") {
            minibuild::recipe::parse(&name, text)
                .map(|_| ())
                .map_err(anyhow::Error::from)
        } else {
            minibuild::recipe::parse(&name, &format!("{MINIMAL}{text}"))
                .map(|_| ())
                .map_err(anyhow::Error::from)
        };
        if let Err(e) = result {
            failures.push(format!("README.md block at line {line}: {e:#}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn the_block_finder_sees_indented_blocks_and_line_numbers() {
    let text = "intro\n```toml\na = 1\n```\n- item\n  ```toml\n  b = 2\n  ```\n```sh\nc\n```\n";
    let blocks = toml_blocks(text);
    assert_eq!(
        blocks,
        vec![(3, "a = 1\n".to_string()), (7, "  b = 2\n".to_string())]
    );
}
