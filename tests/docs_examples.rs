//! Every example of README.md and docs/*.md runs: the fenced blocks whose
//! info string is `console` are executed with the built binary in a temp
//! copy of `fixtures/`, and what they print on stdout is compared with the
//! block, trycmd-style:
//!
//! * `$ COMMAND` is a command line, run by `sh -c` (pipes work; `cd DIR`
//!   alone changes the directory of the commands after it);
//! * the lines after it, up to the next `$ `, are its stdout: `[..]` in a
//!   line stands for any text (sizes, digests, times), a line `...` for
//!   any number of lines;
//! * `? N` ends them when the command exits N (default 0).
//!
//! README.md's blocks start in the directory that holds `fixtures/` (so
//! they `cd fixtures/reggie` as a reader would); docs/*.md's start in
//! `fixtures/reggie`, as the guide says. A block marked `console,daemon`
//! needs the Docker daemon and registry of tests/services.sh: the test
//! fails without them, as the other end-to-end tests do (`REGGIE_ALLOW_SKIP`
//! turns that into a counted skip). Other blocks (`sh`, `yaml`, `ts`) are
//! illustrations and not run; docs/reference is generated and checked by
//! tests/docs_generated.rs.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn manifest() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// One command of an example, and what it must print and exit with.
#[derive(Debug)]
struct Step {
    command: String,
    stdout: Vec<String>,
    code: i32,
}

/// A `console` block: where it is, whether it needs the daemon, its steps.
#[derive(Debug)]
struct Example {
    file: String,
    line: usize,
    daemon: bool,
    steps: Vec<Step>,
}

/// The documents whose examples run: README.md and docs/*.md.
fn documents() -> Vec<PathBuf> {
    let mut docs = vec![manifest().join("README.md")];
    let mut more: Vec<PathBuf> = fs::read_dir(manifest().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    more.sort();
    docs.extend(more);
    docs
}

fn examples(path: &Path) -> Vec<Example> {
    let text = fs::read_to_string(path).unwrap();
    let file = path.strip_prefix(manifest()).unwrap().display().to_string();
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((n, line)) = lines.next() {
        let Some(info) = line.strip_prefix("```") else {
            continue;
        };
        let mut words = info.split(',').map(str::trim);
        let runnable = words.next() == Some("console");
        let daemon = words.any(|w| w == "daemon");
        let mut body = Vec::new();
        for (_, l) in lines.by_ref() {
            if l.starts_with("```") {
                break;
            }
            body.push(l.to_string());
        }
        if !runnable {
            continue;
        }
        let mut steps: Vec<Step> = Vec::new();
        for l in body {
            if let Some(command) = l.strip_prefix("$ ") {
                steps.push(Step {
                    command: command.to_string(),
                    stdout: Vec::new(),
                    code: 0,
                });
            } else if let Some(step) = steps.last_mut() {
                match l.strip_prefix("? ") {
                    Some(code) => step.code = code.trim().parse().expect("? N: an exit code"),
                    None => step.stdout.push(l),
                }
            } else {
                panic!("{file}:{}: a console block starts with `$ `", n + 1);
            }
        }
        out.push(Example {
            file: file.clone(),
            line: n + 1,
            daemon,
            steps,
        });
    }
    out
}

/// One expected line against one actual line: `[..]` is any text.
fn line_matches(expected: &str, actual: &str) -> bool {
    let parts: Vec<&str> = expected.split("[..]").collect();
    if parts.len() == 1 {
        return expected == actual;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !actual.starts_with(first) || actual.len() < first.len() + last.len() {
        return false;
    }
    if !actual.ends_with(last) {
        return false;
    }
    let mut rest = &actual[first.len()..actual.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

/// The expected lines against the actual ones: `...` is any number of
/// lines (tried shortest first, with backtracking).
fn lines_match(expected: &[String], actual: &[&str]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((e, rest)) if e == "..." => {
            (0..=actual.len()).any(|skip| lines_match(rest, &actual[skip..]))
        }
        Some((e, rest)) => {
            !actual.is_empty() && line_matches(e, actual[0]) && lines_match(rest, &actual[1..])
        }
    }
}

/// A registry login the daemon examples push with, as `docker login`
/// leaves it.
fn docker_config(dir: &Path, env: &BTreeMap<String, String>) -> PathBuf {
    let config = dir.join("docker-config");
    fs::create_dir_all(&config).unwrap();
    let registry = &env["REGGIE_TEST_REGISTRY"];
    let auth = base64(
        format!(
            "{}:{}",
            env["REGGIE_TEST_REGISTRY_USER"], env["REGGIE_TEST_REGISTRY_PASSWORD"]
        )
        .as_bytes(),
    );
    fs::write(
        config.join("config.json"),
        format!(r#"{{"auths":{{"{registry}":{{"auth":"{auth}"}}}}}}"#),
    )
    .unwrap();
    config
}

/// Standard base64 with padding (the lean build's tests have no base64
/// crate).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, b| n << 8 | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Removes the images the daemon examples tagged (`-t TAG`), whatever
/// happened.
struct Tags {
    docker_host: String,
    tags: Vec<String>,
}

impl Drop for Tags {
    fn drop(&mut self) {
        for tag in &self.tags {
            let _ = Command::new("docker")
                .env("DOCKER_HOST", &self.docker_host)
                .args(["image", "rm", "-f", tag])
                .output();
        }
    }
}

/// Runs one example in a fresh copy of fixtures/; the failures, described.
fn run(example: &Example, services: Option<&BTreeMap<String, String>>) -> Vec<String> {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("repo");
    common::copy_dir(&manifest().join("fixtures"), &root.join("fixtures"));
    let mut cwd = if example.file == "README.md" {
        root.clone()
    } else {
        root.join("fixtures/reggie")
    };
    let bin = assert_cmd::cargo::cargo_bin("reggie-build");
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    env.insert("PATH".into(), path);
    env.insert("NO_COLOR".into(), "1".into());
    env.insert("HOME".into(), tmp.path().display().to_string());
    env.insert(
        "XDG_CACHE_HOME".into(),
        tmp.path().join("cache").display().to_string(),
    );
    let mut tags = Tags {
        docker_host: String::new(),
        tags: Vec::new(),
    };
    if let Some(services) = services {
        env.extend(services.clone());
        env.insert("REGISTRY".into(), services["REGGIE_TEST_REGISTRY"].clone());
        env.insert(
            "DOCKER_CONFIG".into(),
            docker_config(tmp.path(), services).display().to_string(),
        );
        tags.docker_host = services["DOCKER_HOST"].clone();
    }
    let mut failures = Vec::new();
    for step in &example.steps {
        let where_ = format!("{}:{}: `$ {}`", example.file, example.line, step.command);
        if let Some(dir) = step.command.strip_prefix("cd ") {
            cwd = cwd.join(dir.trim());
            assert!(cwd.is_dir(), "{where_}: no such directory");
            continue;
        }
        if services.is_some() {
            let words: Vec<&str> = step.command.split_whitespace().collect();
            for pair in words.windows(2) {
                if pair[0] == "-t" || pair[0] == "--tag" {
                    tags.tags
                        .push(pair[1].replace("$REGISTRY", &env["REGISTRY"]));
                }
            }
        }
        let out = Command::new("sh")
            .arg("-c")
            .arg(&step.command)
            .current_dir(&cwd)
            .env_clear()
            .envs(&env)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let actual: Vec<&str> = stdout.lines().collect();
        let code = out.status.code().unwrap_or(-1);
        if code != step.code || !lines_match(&step.stdout, &actual) {
            failures.push(format!(
                "{where_}\n  exit {code} (expected {})\n  --- expected stdout\n{}\n  --- actual stdout\n{}\n  --- stderr\n{}",
                step.code,
                step.stdout.join("\n"),
                stdout.trim_end(),
                String::from_utf8_lossy(&out.stderr).trim_end(),
            ));
        }
    }
    failures
}

fn all_examples() -> Vec<Example> {
    documents().iter().flat_map(|d| examples(d)).collect()
}

#[test]
fn the_examples_without_docker_print_what_the_docs_say() {
    let examples: Vec<_> = all_examples().into_iter().filter(|e| !e.daemon).collect();
    let commands: usize = examples.iter().map(|e| e.steps.len()).sum();
    // The README's story and the guide's tasks are there.
    assert!(examples.len() >= 6, "{examples:#?}");
    let failures: Vec<String> = examples.iter().flat_map(|e| run(e, None)).collect();
    assert!(
        failures.is_empty(),
        "{} of {commands} documented commands do not print what the docs say:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// `image` is in the full build only.
#[cfg(feature = "image")]
#[test]
fn the_examples_with_docker_print_what_the_docs_say() {
    let examples: Vec<_> = all_examples().into_iter().filter(|e| e.daemon).collect();
    assert!(!examples.is_empty(), "the README's `image --push` example");
    let Some(services) = common::services() else {
        return;
    };
    let failures: Vec<String> = examples
        .iter()
        .flat_map(|e| run(e, Some(&services)))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The `Examples:` lines of `reggie-build COMMAND --help`.
fn help_examples(command: &str) -> Vec<String> {
    let out = Command::new(assert_cmd::cargo::cargo_bin("reggie-build"))
        .args([command, "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    help.split("Examples:\n")
        .nth(1)
        .unwrap_or_else(|| panic!("`{command} --help` has no examples"))
        .lines()
        .map_while(|l| l.strip_prefix("  "))
        .map(str::to_string)
        .collect()
}

/// The examples of `--help` of the commands that need no daemon, git
/// history or system paths run in a copy of fixtures/reggie, where a
/// reader of the help would try them (with the config `discover --write`
/// writes and a saved report for `--baseline`), and succeed.
#[test]
fn the_help_examples_run_on_the_fixture() {
    let bin = assert_cmd::cargo::cargo_bin("reggie-build");
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut tried = 0;
    let mut failures = Vec::new();
    for command in [
        "ls", "explain", "analyze", "check", "context", "digest", "discover",
    ] {
        let examples = help_examples(command);
        assert!(
            (2..=4).contains(&examples.len()),
            "`{command} --help`: two or three examples, not {examples:?}"
        );
        for example in examples {
            let tmp = tempfile::tempdir().unwrap();
            let repo = tmp.path().join("reggie");
            common::copy_dir(&manifest().join("fixtures/reggie"), &repo);
            // jq is not among the test prerequisites: what counts is the
            // command before it.
            let example = example.split(" | jq").next().unwrap().to_string();
            let setup = if command == "discover" {
                ""
            } else {
                "reggie-build discover . --write >/dev/null 2>&1 && reggie-build analyze . -f backend/Dockerfile --json > main-report.json && "
            };
            let out = Command::new("bash")
                .args(["-o", "pipefail", "-c"])
                .arg(format!("{setup}{example}"))
                .current_dir(&repo)
                .env("PATH", &path)
                .env("NO_COLOR", "1")
                .env("XDG_CACHE_HOME", tmp.path().join("cache"))
                .output()
                .unwrap();
            if !out.status.success() {
                failures.push(format!(
                    "`{example}` (from `{command} --help`) exits {:?}:\n{}",
                    out.status.code(),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            tried += 1;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(tried >= 14, "{tried}");
}

#[test]
fn the_matcher_reads_placeholders() {
    assert!(line_matches("sha256:[..]", "sha256:abc"));
    assert!(line_matches("a [..] b [..] c", "a 1 b 2 c"));
    assert!(!line_matches("a [..] b", "a 1 c"));
    assert!(!line_matches("exact", "exact!"));
    let e = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(lines_match(&e(&["a", "...", "z"]), &["a", "b", "c", "z"]));
    assert!(lines_match(&e(&["a", "...", "z"]), &["a", "z"]));
    assert!(!lines_match(&e(&["a", "...", "z"]), &["a", "b"]));
    assert!(!lines_match(&e(&["a"]), &["a", "b"]));
    assert_eq!(base64(b"me:pw"), "bWU6cHc=");
    assert_eq!(base64(b"ab"), "YWI=");
}
