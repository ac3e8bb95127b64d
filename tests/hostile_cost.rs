//! Hostile repositories, bounded cost: a few hundred kilobytes of input
//! that multiply into pairs (config images x compose services), patterns
//! x files (a long ignore file), images x changed files (`affected` on a
//! large rename) or copies of a large Dockerfile. Each command runs under
//! a memory limit (`ulimit -v`, several times what these commands need on
//! an ordinary repository) and ends with a clear result or error. The time
//! limit only catches a hang: speed is measured in BENCHMARKS.md, not
//! asserted here.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// The address space each run may use: the commands below need under
/// 64 MiB on an ordinary repository (checked by `ordinary_runs_fit`).
const MEMORY_KIB: u64 = 256 << 10;

/// Only a hang detector: a run is killed after this.
const HANG: Duration = Duration::from_secs(120);

/// Runs reggie-build in `dir` under `ulimit -v MEMORY_KIB`, killed after
/// [`HANG`].
fn run(dir: &Path, args: &[&str]) -> Output {
    run_within(dir, args, MEMORY_KIB)
}

/// [`run`] with another memory limit (KiB).
fn run_within(dir: &Path, args: &[&str], memory_kib: u64) -> Output {
    let bin = std::env::var_os("REGGIE_TEST_BIN")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_reggie-build").into());
    let child = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {memory_kib} && exec \"$0\" \"$@\""))
        .arg(bin)
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("GITHUB_OUTPUT")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if rx.recv_timeout(HANG).is_err() {
            // The process we started (sh exec'd into reggie-build).
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        }
    });
    let out = child.wait_with_output().unwrap();
    let _ = tx.send(());
    let _ = watchdog.join();
    out
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Asserts the run ended on its own (not killed for memory or time) with
/// one of `codes`, and no panic or allocation failure.
fn ended(out: &Output, args: &[&str], codes: &[i32]) {
    let all = text(out);
    let tail: String = all
        .chars()
        .rev()
        .take(2000)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    assert!(
        out.status.code().is_some_and(|c| codes.contains(&c)),
        "{args:?}: {:?} (killed after {HANG:?}, or out of memory under ulimit -v {MEMORY_KIB} KiB?)\n...{tail}",
        out.status
    );
    assert!(!all.contains("panicked"), "{args:?}: {tail}");
    assert!(!all.contains("memory allocation"), "{args:?}: {tail}");
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(["-c", "user.email=t@t", "-c", "user.name=t"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git");
    assert!(out.status.success(), "git {args:?}: {}", text(&out));
}

/// `n` config images, all of one build.
fn config_images(n: usize, dir: &str) -> String {
    let mut toml = String::new();
    for i in 0..n {
        writeln!(toml, "[[image]]\nname = \"img{i}\"\ncontext = \"{dir}\"").unwrap();
    }
    toml
}

/// The commands of these tests fit in a fraction of the limit on an
/// ordinary repository: the limit is generous, not tuned.
#[test]
fn ordinary_runs_fit() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join(".git")).unwrap();
    fs::create_dir_all(dir.path().join("app")).unwrap();
    fs::write(
        dir.path().join("app/Dockerfile"),
        "FROM scratch\nCOPY . /app\n",
    )
    .unwrap();
    fs::write(
        dir.path().join("reggie-build.toml"),
        config_images(2, "app"),
    )
    .unwrap();
    for args in [&["check"][..], &["analyze", "app"], &["ls", "app"]] {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "ulimit -v {} && exec \"$0\" \"$@\"",
                MEMORY_KIB / 4
            ))
            .arg(env!("CARGO_BIN_EXE_reggie-build"))
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out));
    }
}

/// 1,000 config images of one build, deployed by 1,000 compose services
/// on another architecture (96 KB of input): one warning per image and
/// deploy file, naming the first service and counting the others, in
/// every format; not a million.
#[test]
fn config_images_times_compose_services() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::create_dir_all(root.join(".git")).unwrap();
    fs::create_dir_all(root.join("app")).unwrap();
    fs::write(root.join("app/Dockerfile"), "FROM scratch\nCOPY . /app\n").unwrap();
    fs::write(root.join("app/main.py"), "x\n").unwrap();
    fs::write(root.join("reggie-build.toml"), config_images(1000, "app")).unwrap();
    // Not this machine's architecture, whichever it is.
    let other = if std::env::consts::ARCH == "aarch64" {
        "linux/amd64"
    } else {
        "linux/arm64"
    };
    let mut compose = String::from("services:\n");
    for i in 0..1000 {
        writeln!(compose, "  s{i}:\n    build: ./app\n    platform: {other}").unwrap();
    }
    fs::write(root.join("compose.yml"), compose).unwrap();

    let args = ["check", "--format", "json"];
    let out = run(root, &args);
    ended(&out, &args, &[0]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let images = report["images"].as_array().unwrap();
    assert_eq!(images.len(), 1000);
    for image in images {
        let findings: Vec<&serde_json::Value> = image["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["rule"] == "deploy/architecture")
            .collect();
        assert_eq!(findings.len(), 1, "{image}");
        let message = findings[0]["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!(
                "`s0` and 999 more in this file are deployed on {other}"
            )),
            "{message}"
        );
        assert_eq!(findings[0]["file"], "compose.yml");
        assert_eq!(findings[0]["line"], 2);
    }
    for format in ["human", "sarif", "github", "markdown"] {
        let args = ["check", "--format", format];
        let out = run(root, &args);
        ended(&out, &args, &[0]);
        let all = text(&out);
        assert_eq!(
            all.matches("999 more in this file").count(),
            1000,
            "{format}"
        );
    }
}

/// One deploy file per service, each on its own platform string: past 50
/// findings of one rule, one closing "and N more" finding.
#[test]
fn findings_of_one_rule_are_capped() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::create_dir_all(root.join(".git")).unwrap();
    fs::create_dir_all(root.join("app")).unwrap();
    fs::write(root.join("app/Dockerfile"), "FROM scratch\nCOPY . /app\n").unwrap();
    fs::write(root.join("reggie-build.toml"), config_images(1, "app")).unwrap();
    let mut compose = String::from("services:\n");
    for i in 0..300 {
        writeln!(
            compose,
            "  s{i}:\n    build: ./app\n    platform: linux/s390x/v{i}"
        )
        .unwrap();
    }
    fs::write(root.join("compose.yml"), compose).unwrap();
    for format in ["json", "human", "sarif", "github"] {
        let args = ["check", "--format", format];
        let out = run(root, &args);
        ended(&out, &args, &[0]);
        let all = text(&out);
        assert!(
            all.contains(
                "and 250 more `deploy/architecture` findings (only the first 50 are listed)"
            ),
            "{format}: {all}"
        );
        assert!(!all.contains("`s50`"), "{format}");
    }
}

/// Ignore files of many patterns: 50,000 `**/` globs (1 MB) cost their
/// text, not a compiled regex each, and 20,000 patterns that do need the
/// regex engine are refused at the line past the budget, with what to do.
#[test]
fn ignore_files_of_many_patterns() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::create_dir_all(root.join(".git")).unwrap();
    let ctx = root.join("ctx");
    fs::create_dir_all(ctx.join("src/dir7")).unwrap();
    fs::write(ctx.join("Dockerfile"), "FROM scratch\nCOPY . /app\n").unwrap();
    for i in 0..300 {
        fs::write(ctx.join(format!("src/f{i}.tmp")), "x").unwrap();
    }
    fs::write(ctx.join("src/dir7/a.tmp"), "x").unwrap();
    fs::write(ctx.join("src/dir7/b.txt"), "x").unwrap();
    let mut ignore = String::new();
    for i in 0..50_000 {
        writeln!(ignore, "**/dir{i}/*.tmp").unwrap();
    }
    ignore.push_str("!**/dir7/a.tmp\n");
    fs::write(ctx.join(".dockerignore"), &ignore).unwrap();
    let args = ["ls", "ctx"];
    let out = run(root, &args);
    ended(&out, &args, &[0]);
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(listed.lines().any(|l| l == "src/dir7/a.tmp"), "{listed}");
    assert!(listed.lines().any(|l| l == "src/f299.tmp"));
    let args = ["analyze", "ctx", "--format", "json"];
    ended(&run(root, &args), &args, &[0]);

    // Every pattern a class: each needs a regex.
    let mut ignore = String::new();
    for i in 0..20_000 {
        writeln!(ignore, "**/[a-z]x{i}").unwrap();
    }
    fs::write(ctx.join(".dockerignore"), &ignore).unwrap();
    for args in [&["ls", "ctx"][..], &["analyze", "ctx"], &["check", "ctx"]] {
        let out = run(root, args);
        ended(&out, args, &[2]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("ctx/.dockerignore:"), "{err}");
        assert!(
            err.contains("MiB of compiled regular expressions") && err.contains("Merge them"),
            "{err}"
        );
        assert!(err.len() < 1000, "{err}");
    }
}

/// `affected` with 300 config images of one build (distinct build args:
/// no image is a copy of another) over a commit that renames 2,000 files.
#[test]
fn affected_many_images_times_a_large_rename() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    git(root, &["init", "-q", "-b", "main"]);
    fs::create_dir_all(root.join("app/src")).unwrap();
    fs::write(
        root.join("app/Dockerfile"),
        "FROM scratch\nARG N\nCOPY src/*.py /app/\nCOPY src/**/*.txt /app/\nCOPY src /src\nCOPY . /all\n",
    )
    .unwrap();
    for i in 0..2000 {
        fs::write(root.join(format!("app/src/f{i}.txt")), format!("{i}\n")).unwrap();
    }
    let mut toml = String::new();
    for i in 0..300 {
        writeln!(
            toml,
            "[[image]]\nname = \"img{i}\"\ncontext = \"app\"\nbuild_args = {{ N = \"{}\" }}",
            i % 150
        )
        .unwrap();
    }
    fs::write(root.join("reggie-build.toml"), toml).unwrap();
    git(root, &["add", "-A"]);
    git(root, &["commit", "-qm", "base"]);
    fs::rename(root.join("app/src"), root.join("app/moved")).unwrap();
    fs::create_dir_all(root.join("app/src")).unwrap();
    fs::rename(root.join("app/moved"), root.join("app/src/moved")).unwrap();
    git(root, &["add", "-A"]);
    git(root, &["commit", "-qm", "rename"]);

    let args = ["affected"];
    let out = run(root, &args);
    ended(&out, &args, &[0]);
    let human = String::from_utf8_lossy(&out.stdout);
    assert!(human.starts_with("4000 changed files"), "{human}");
    assert!(human.contains("300 of 300 images affected"), "{human}");
    assert!(
        human.contains("and 3997 more busts step 2/4 COPY src/**/*.txt /app/ (img299)"),
        "{human}"
    );
}

/// Large Dockerfiles: a 30 MB `RUN` line is parsed without a copy of
/// each word; 50,000 `COPY` lines (1.7 MB) are planned and checked
/// without comparing every source with every other. Memory stays
/// proportional to the Dockerfile (the limit here is 512 MiB: every
/// source is still held a few times over, in the plan, the matchers and
/// the findings).
#[test]
fn large_dockerfiles() {
    const LIMIT: u64 = 512 << 10;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::create_dir_all(root.join(".git")).unwrap();
    let ctx = root.join("ctx");
    fs::create_dir_all(ctx.join("src")).unwrap();
    for i in 0..50 {
        fs::write(ctx.join(format!("src/f{i}.txt")), "x").unwrap();
    }
    let df = format!("FROM scratch\nRUN {}\n", "a ".repeat(15_000_000));
    fs::write(ctx.join("Dockerfile"), &df).unwrap();
    for args in [&["check", "ctx"][..], &["analyze", "ctx"]] {
        ended(&run_within(root, args, LIMIT), args, &[0]);
    }
    let mut df = String::from("FROM scratch\n");
    for i in 0..50_000 {
        // Half of the sources are missing: one finding each, capped.
        writeln!(df, "COPY src/f{}.txt /app/f{i}.txt", i % 100).unwrap();
    }
    fs::write(ctx.join("Dockerfile"), &df).unwrap();
    let args = ["check", "ctx", "--format", "json"];
    let out = run_within(root, &args, LIMIT);
    ended(&out, &args, &[1]);
    let all = text(&out);
    assert!(
        all.contains(
            "and 24950 more `copy/source-missing` findings (only the first 50 are listed)"
        ),
        "{}",
        &all[..all.len().min(3000)]
    );
    let args = ["ls", "ctx", "--minimal"];
    ended(&run_within(root, &args, LIMIT), &args, &[0]);
}
