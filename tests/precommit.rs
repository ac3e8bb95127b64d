//! The pre-commit hook, for real: the `pre-commit` framework (installed by
//! the test command) runs this repository's `.pre-commit-hooks.yaml` in a
//! git repository made from the Reggie fixture.

mod common;
use common::copy_dir;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn pre_commit_available() -> bool {
    Command::new("pre-commit")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn run(dir: &Path, env_path: &str, cmd: &str, args: &[&str]) -> Output {
    let out = Command::new(cmd)
        .args(args)
        .current_dir(dir)
        .env("PATH", env_path)
        .env("PRE_COMMIT_HOME", dir.join(".pre-commit-home"))
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    out
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn hook_refuses_a_commit_over_budget_and_accepts_one_within() {
    if !pre_commit_available() {
        common::missing_prerequisite(
            "hook_refuses_a_commit_over_budget_and_accepts_one_within",
            "`pre-commit` is not on PATH",
            "Install it with `pip install pre-commit`, or run `bash tests/run.sh`.",
        );
        return;
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    // The hooks come from this repository at its current commit.
    let head = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(manifest)
        .output()
        .unwrap();
    let rev = String::from_utf8(head.stdout).unwrap().trim().to_string();
    assert!(!rev.is_empty(), "the crate must be in a git repository");

    // Both hooks of the manifest are valid for the framework.
    let validate = Command::new("pre-commit")
        .arg("validate-manifest")
        .arg(manifest.join(".pre-commit-hooks.yaml"))
        .output()
        .unwrap();
    assert!(validate.status.success(), "{}", text(&validate));

    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    copy_dir(&manifest.join("fixtures/reggie"), &repo);
    fs::write(
        repo.join("reggie-build.toml"),
        "[[image]]\nname = \"api\"\ndockerfile = \"backend/Dockerfile\"\ncontext = \".\"\nbudget = { max_size = \"20 kB\" }\n",
    )
    .unwrap();
    fs::write(
        repo.join(".pre-commit-config.yaml"),
        format!(
            "repos:\n  - repo: {}\n    rev: {rev}\n    hooks:\n      - id: reggie-build-check-system\n",
            manifest.display()
        ),
    )
    .unwrap();
    let bin_dir: PathBuf = Path::new(env!("CARGO_BIN_EXE_reggie-build"))
        .parent()
        .unwrap()
        .to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let ok = |o: &Output| assert!(o.status.success(), "{}", text(o));
    ok(&run(&repo, &path, "git", &["init", "-q", "-b", "main"]));
    ok(&run(&repo, &path, "git", &["add", "-A"]));
    ok(&run(
        &repo,
        &path,
        "git",
        &["commit", "-q", "--no-verify", "-m", "init"],
    ));
    ok(&run(&repo, &path, "pre-commit", &["install"]));

    // A 40 kB module in backend/app puts the api image over 20 kB.
    fs::write(repo.join("backend/app/big.py"), "x = 1\n".repeat(7000)).unwrap();
    ok(&run(&repo, &path, "git", &["add", "backend/app/big.py"]));
    let refused = run(&repo, &path, "git", &["commit", "-m", "big"]);
    let out = text(&refused);
    assert!(
        !refused.status.success(),
        "the commit must be refused:\n{out}"
    );
    assert!(out.contains("FAIL api"), "{out}");
    assert!(out.contains("over the 20 kB budget"), "{out}");

    // Within budget: a small module commits.
    ok(&run(
        &repo,
        &path,
        "git",
        &["rm", "-q", "--cached", "backend/app/big.py"],
    ));
    fs::remove_file(repo.join("backend/app/big.py")).unwrap();
    fs::write(repo.join("backend/app/small.py"), "y = 2\n").unwrap();
    ok(&run(&repo, &path, "git", &["add", "backend/app/small.py"]));
    let accepted = run(&repo, &path, "git", &["commit", "-m", "small"]);
    assert!(accepted.status.success(), "{}", text(&accepted));

    // A file no image reads does not even run the check's walk, and passes.
    fs::write(repo.join("apps/web/notes.md"), "x".repeat(100_000)).unwrap();
    ok(&run(&repo, &path, "git", &["add", "apps/web/notes.md"]));
    let unrelated = run(&repo, &path, "git", &["commit", "-m", "notes"]);
    assert!(unrelated.status.success(), "{}", text(&unrelated));
}
