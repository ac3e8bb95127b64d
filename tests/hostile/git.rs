//! git run on a hostile repository: no key of its config that names a
//! command (fsmonitor, filters, diff drivers, the pager, hooks, the fetch
//! of a partial clone) runs, and the answers are still right. Each case
//! points the key at a script that creates a marker file.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{run, stderr, text};

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A committed repository with two images' worth of files, and a script
/// `evil.sh` (outside it) that creates `ran` beside itself and fails.
struct Repo {
    _dir: tempfile::TempDir,
    top: PathBuf,
    marker: PathBuf,
    script: PathBuf,
}

fn repo() -> Repo {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let top = dir.path().join("repo");
    fs::create_dir_all(top.join("api")).unwrap();
    fs::create_dir_all(top.join("web")).unwrap();
    fs::write(top.join("api/Dockerfile"), "FROM scratch\nCOPY . /app\n").unwrap();
    fs::write(top.join("api/main.py"), "print(1)\n").unwrap();
    fs::write(top.join("web/Dockerfile"), "FROM scratch\nCOPY . /web\n").unwrap();
    fs::write(top.join("web/index.js"), "1\n").unwrap();
    fs::write(
        top.join("reggie-build.toml"),
        "[[image]]\nname = \"api\"\ncontext = \"api\"\n\n[[image]]\nname = \"web\"\ncontext = \"web\"\n",
    )
    .unwrap();
    git(&top, &["init", "-q", "-b", "main"]);
    git(&top, &["add", "."]);
    git(&top, &["commit", "-q", "-m", "one"]);
    let marker = dir.path().join("ran");
    let script = dir.path().join("evil.sh");
    fs::write(
        &script,
        format!("#!/bin/sh\ntouch '{}'\ncat\n", marker.display()),
    )
    .unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    Repo {
        _dir: dir,
        top,
        marker,
        script,
    }
}

impl Repo {
    /// Appends to `.git/config` (as someone who prepared the checkout).
    fn config(&self, text: &str) {
        let path = self.top.join(".git/config");
        let mut config = fs::read_to_string(&path).unwrap();
        config.push_str(&text.replace("SCRIPT", &self.script.display().to_string()));
        fs::write(path, config).unwrap();
    }

    /// `affected` in the repository, as JSON: the images affected.
    fn affected(&self, args: &[&str]) -> (Vec<String>, String) {
        let mut all = vec!["affected", "--format", "json"];
        all.extend_from_slice(args);
        let out = run(&self.top, &all);
        let shown = text(&out);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {shown}");
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let names = report["images"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["affected"].as_bool() == Some(true))
            .map(|i| i["name"].as_str().unwrap().to_string())
            .collect();
        (names, shown)
    }

    fn assert_nothing_ran(&self, what: &str) {
        assert!(
            !self.marker.exists(),
            "{what}: the repository's command ran"
        );
    }
}

/// With `--worktree` (where git would hash changed files through the
/// filters and refresh the index) and between commits, the command a key
/// names does not run, and the change is found.
fn no_command_runs(name: &str, config: &str, attributes: &str) {
    let r = repo();
    if !attributes.is_empty() {
        fs::write(r.top.join(".gitattributes"), attributes).unwrap();
        git(&r.top, &["add", ".gitattributes"]);
        git(&r.top, &["commit", "-q", "-m", "attributes"]);
    }
    let hooks = r.top.join(".git/evil-hooks");
    fs::create_dir_all(&hooks).unwrap();
    for hook in [
        "post-index-change",
        "reference-transaction",
        "post-checkout",
    ] {
        fs::copy(&r.script, hooks.join(hook)).unwrap();
    }
    r.config(&config.replace("HOOKS", &hooks.display().to_string()));
    // A change in the work tree, stat data and all (the same length,
    // so only the content tells).
    fs::write(r.top.join("api/main.py"), "print(2)\n").unwrap();
    let (affected, shown) = r.affected(&["--base", "HEAD", "--worktree"]);
    r.assert_nothing_ran(name);
    assert_eq!(affected, ["api"], "{name}: {shown}");
    // Committed (by a git that runs the repository's commands: the
    // marker is removed after), then commit against commit.
    git(
        &r.top,
        &[
            "-c",
            "filter.evil.required=false",
            "commit",
            "-q",
            "-am",
            "two",
        ],
    );
    let _ = fs::remove_file(&r.marker);
    let (affected, shown) = r.affected(&["--base", "HEAD~1", "--head", "HEAD"]);
    r.assert_nothing_ran(name);
    assert_eq!(affected, ["api"], "{name}: {shown}");
    // Nothing changed since: a file rewritten with the same content
    // (its stat data changed) is not a change.
    fs::write(r.top.join("api/main.py"), "print(2)\n").unwrap();
    let (affected, shown) = r.affected(&["--base", "HEAD", "--worktree"]);
    r.assert_nothing_ran(name);
    assert!(affected.is_empty(), "{name}: {shown}");
}

#[test]
fn core_fsmonitor_does_not_run() {
    no_command_runs("fsmonitor", "[core]\n\tfsmonitor = SCRIPT\n", "");
}

#[test]
fn a_clean_filter_does_not_run() {
    no_command_runs(
        "clean filter",
        "[filter \"evil\"]\n\tclean = SCRIPT\n\tsmudge = SCRIPT\n",
        "* filter=evil\n",
    );
}

#[test]
fn a_process_filter_does_not_run() {
    no_command_runs(
        "process filter",
        "[filter \"evil\"]\n\tprocess = SCRIPT\n\trequired = true\n",
        "* filter=evil\n",
    );
}

#[test]
fn external_diff_and_textconv_do_not_run() {
    no_command_runs(
        "external diff and textconv",
        "[diff]\n\texternal = SCRIPT\n[diff \"evil\"]\n\ttextconv = SCRIPT\n\tcommand = SCRIPT\n",
        "* diff=evil\n",
    );
}

#[test]
fn the_pager_does_not_run() {
    no_command_runs(
        "pager",
        "[core]\n\tpager = SCRIPT\n[pager]\n\tdiff = SCRIPT\n",
        "",
    );
}

#[test]
fn hooks_do_not_run() {
    no_command_runs("hooks", "[core]\n\thooksPath = HOOKS\n", "");
}

/// A partial clone missing a blob that `affected` reads: git would fetch
/// it from the promisor remote through `core.sshCommand`. It is not
/// fetched; the error names the missing object and what to do.
#[test]
fn a_partial_clone_never_fetches() {
    let r = repo();
    fs::write(
        r.top.join("api/Dockerfile"),
        "FROM scratch\nCOPY main.py /app/\n",
    )
    .unwrap();
    git(&r.top, &["commit", "-q", "-am", "two"]);
    r.config(
        "[extensions]\n\tpartialClone = origin\n[remote \"origin\"]\n\turl = ssh://git@example.invalid/x.git\n\tpromisor = true\n[core]\n\tsshCommand = SCRIPT\n\trepositoryformatversion = 1\n",
    );
    let config = fs::read_to_string(r.top.join(".git/config")).unwrap();
    fs::write(
        r.top.join(".git/config"),
        config.replacen(
            "repositoryformatversion = 0",
            "repositoryformatversion = 1",
            1,
        ),
    )
    .unwrap();
    // The base's Dockerfile blob, removed from the object store.
    let out = Command::new("git")
        .current_dir(&r.top)
        .args(["rev-parse", "HEAD~1:api/Dockerfile"])
        .output()
        .unwrap();
    let oid = String::from_utf8(out.stdout).unwrap().trim().to_string();
    fs::remove_file(
        r.top
            .join(format!(".git/objects/{}/{}", &oid[..2], &oid[2..])),
    )
    .unwrap();
    let out = run(&r.top, &["affected", "--base", "HEAD~1", "--head", "HEAD"]);
    r.assert_nothing_ran("partial clone");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(err.contains("partial clone"), "{err}");
    assert!(err.contains("api/Dockerfile"), "{err}");
}

/// A bare repository committed inside the work tree (`HEAD`, `objects/`,
/// `refs/`, `config` as ordinary files) is not taken for the repository:
/// `affected` run from inside it compares the real one.
#[test]
fn a_committed_bare_repository_is_not_the_repository() {
    let r = repo();
    git(&r.top, &["init", "-q", "--bare", "api/fake"]);
    fs::write(
        r.top.join("api/fake/config"),
        format!("[core]\n\tbare = true\n\tfsmonitor = {}\n[remote \"origin\"]\n\turl = https://evil.example/spoof\n", r.script.display()),
    )
    .unwrap();
    git(&r.top, &["add", "-f", "api/fake"]);
    git(
        &r.top,
        &["commit", "-q", "-m", "a bare repository as files"],
    );
    fs::write(r.top.join("web/index.js"), "2\n").unwrap();
    let out = run(
        &r.top.join("api/fake"),
        &[
            "affected",
            "--base",
            "HEAD",
            "--worktree",
            "--format",
            "json",
        ],
    );
    r.assert_nothing_ran("bare repository");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let affected: Vec<&str> = report["images"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["affected"].as_bool() == Some(true))
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(affected, ["web"], "{}", text(&out));
}
