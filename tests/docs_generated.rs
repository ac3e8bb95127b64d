//! The generated documents (`docs/reference/`, and the man pages and
//! completions in `packaging/data/share/` that the release archives and the
//! wheel ship) are what `reggie-build __generate all` writes today: a flag
//! or help text changed without regenerating them fails here. The
//! generator is in the full build only (the documents describe it).
#![cfg(feature = "image")]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use assert_cmd::Command;

fn manifest() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every file below `dir`, by its path relative to `dir`.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let path = e.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir).unwrap().to_path_buf();
                out.insert(rel, fs::read(&path).unwrap());
            }
        }
    }
    out
}

fn generate(dir: &Path) {
    Command::cargo_bin("reggie-build")
        .unwrap()
        .args(["__generate", "all"])
        .arg(dir)
        .assert()
        .success();
}

#[test]
fn committed_documents_are_what_the_generator_writes() {
    let tmp = tempfile::tempdir().unwrap();
    generate(tmp.path());
    for sub in ["docs/reference", "packaging/data/share"] {
        let fresh = files(&tmp.path().join(sub));
        let committed = files(&manifest().join(sub));
        assert!(!fresh.is_empty(), "nothing generated in {sub}");
        let stale: std::collections::BTreeSet<_> = fresh
            .keys()
            .chain(committed.keys())
            .filter(|k| fresh.get(*k) != committed.get(*k))
            .map(|k| format!("{sub}/{}", k.display()))
            .collect();
        assert!(
            stale.is_empty(),
            "these generated files differ from the command definitions: {stale:?}\n\
             regenerate them with `cargo build --bins && cargo run -- __generate all .` and commit"
        );
    }
}

/// The commands `reggie-build --help` lists.
fn commands() -> Vec<String> {
    let out = Command::cargo_bin("reggie-build")
        .unwrap()
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    let list = help
        .split("Commands:\n")
        .nth(1)
        .expect("a Commands: section")
        .split("\n\n")
        .next()
        .unwrap();
    // A command's line is indented two spaces; a wrapped description more.
    list.lines()
        .filter_map(|l| l.strip_prefix("  "))
        .filter(|l| !l.starts_with(' '))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect()
}

#[test]
fn every_command_has_a_man_page_and_a_reference_page() {
    let tmp = tempfile::tempdir().unwrap();
    generate(tmp.path());
    let commands = commands();
    assert!(commands.len() >= 10, "{commands:?}");
    let man = tmp.path().join("packaging/data/share/man/man1");
    let top = fs::read_to_string(man.join("reggie-build.1")).unwrap();
    assert!(top.contains(".TH reggie-build 1"), "{top}");
    for c in &commands {
        let page = fs::read_to_string(man.join(format!("reggie-build-{c}.1")))
            .unwrap_or_else(|e| panic!("no man page for `{c}`: {e}"));
        assert!(page.contains(&format!(".TH reggie-build-{c} 1")), "{page}");
        assert!(page.contains(".SH SYNOPSIS"), "{page}");
        // The page carries the command's own help, not a stub.
        let about = fs::read_to_string(
            tmp.path()
                .join(format!("docs/reference/reggie-build-{c}.md")),
        )
        .unwrap_or_else(|e| panic!("no reference page for `{c}`: {e}"));
        assert!(about.contains("```text\nUsage: reggie-build "), "{about}");
        assert!(
            top.contains(&format!("reggie\\-build\\-{}", c.replace('-', "\\-"))),
            "{c} not in reggie-build.1"
        );
    }
    // No page for the generator itself: it is not a command.
    assert!(!man.join("reggie-build-__generate.1").exists());
    let bash = fs::read_to_string(
        tmp.path()
            .join("packaging/data/share/bash-completion/completions/reggie-build"),
    )
    .unwrap();
    assert!(!bash.contains("__generate"));
    for c in &commands {
        assert!(bash.contains(c.as_str()), "{c} not completed by bash");
    }
}
