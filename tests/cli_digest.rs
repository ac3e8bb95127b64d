//! `digest`: the same after a touch and in a fresh clone, different after
//! a change to a file the build reads or to a build input, the same after
//! a change to a file it does not read.

use std::fs;
use std::path::Path;
use std::process::Command as Std;

use assert_cmd::Command;

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

fn git(dir: &Path, args: &[&str]) {
    let out = Std::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn repo() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    write(
        p,
        "backend/Dockerfile",
        "FROM python:3.12-slim AS base\nARG EXTRA=\nCOPY backend/requirements.txt /r.txt\nCOPY backend/app /app\nFROM base AS test\nCOPY backend/tests /tests\nFROM base\n",
    );
    write(p, "backend/requirements.txt", "fastapi\n");
    write(p, "backend/app/main.py", "print(1)\n");
    write(p, "backend/tests/test_main.py", "def test(): pass\n");
    write(p, "frontend/index.js", "x\n");
    write(p, ".dockerignore", "**/__pycache__\n");
    write(
        p,
        "reggie-build.toml",
        "[[image]]\nname = \"api\"\ndockerfile = \"backend/Dockerfile\"\ncontext = \".\"\n",
    );
    d
}

fn digest(dir: &Path, args: &[&str]) -> String {
    let out = Command::cargo_bin("reggie-build")
        .unwrap()
        .current_dir(dir)
        .arg("digest")
        .args(args)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let d = text.trim().to_string();
    assert!(d.starts_with("sha256:") && d.len() == 71, "{d}");
    d
}

#[test]
fn stable_for_what_is_not_read_and_changed_by_what_is() {
    let r = repo();
    let p = r.path();
    let first = digest(p, &["--image", "api"]);
    // The same build given as PATH -f.
    assert_eq!(digest(p, &[".", "-f", "backend/Dockerfile"]), first);

    // A touch changes mtimes only.
    let f = fs::File::options()
        .write(true)
        .open(p.join("backend/app/main.py"))
        .unwrap();
    f.set_modified(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1))
        .unwrap();
    assert_eq!(digest(p, &["--image", "api"]), first, "touch");

    // Files the build does not read: another app, an ignored cache, the
    // test stage's files when the target is the last stage.
    write(p, "frontend/index.js", "y\n");
    write(p, "backend/app/__pycache__/main.pyc", "pyc\n");
    write(p, "backend/tests/test_main.py", "def test(): assert 1\n");
    assert_eq!(digest(p, &["--image", "api"]), first, "unread files");

    // Build inputs.
    let arg = digest(p, &["--image", "api", "--build-arg", "EXTRA=1"]);
    assert_ne!(arg, first, "build arg");
    let target = digest(p, &["--image", "api", "--target", "test"]);
    assert_ne!(target, first, "target");
    let platform = digest(p, &["--image", "api", "--platform", "linux/arm64"]);
    assert_ne!(platform, first, "platform");
    assert_eq!(
        [&arg, &target, &platform]
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        3
    );

    // A file the build reads, and the Dockerfile.
    write(p, "backend/app/main.py", "print(2)\n");
    let changed = digest(p, &["--image", "api"]);
    assert_ne!(changed, first, "read file");
    let df = fs::read_to_string(p.join("backend/Dockerfile")).unwrap();
    write(p, "backend/Dockerfile", &format!("{df}LABEL x=y\n"));
    assert_ne!(digest(p, &["--image", "api"]), changed, "Dockerfile");
}

#[test]
fn a_fresh_clone_has_the_same_digest() {
    let r = repo();
    let p = r.path();
    git(p, &["init", "-q", "-b", "main"]);
    git(p, &["add", "-A"]);
    git(p, &["commit", "-q", "-m", "x"]);
    let here = digest(p, &["--image", "api"]);
    let other = tempfile::tempdir().unwrap();
    let url = format!("file://{}", p.display());
    git(other.path(), &["clone", "-q", &url, "clone"]);
    let clone = other.path().join("clone");
    assert_eq!(digest(&clone, &["--image", "api"]), here);
    // Without --image, every configured image (here one: the digest alone).
    let out = Command::cargo_bin("reggie-build")
        .unwrap()
        .current_dir(&clone)
        .arg("digest")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), format!("{here}\n"));
}

/// `digest` with its hash cache in `cache` (or none).
fn digest_cached(dir: &Path, cache: Option<&Path>) -> String {
    let mut cmd = Command::cargo_bin("reggie-build").unwrap();
    cmd.current_dir(dir).args(["digest", "--image", "api"]);
    match cache {
        Some(c) => cmd.env("XDG_CACHE_HOME", c).env_remove("REGGIE_HASH_CACHE"),
        None => cmd.env("REGGIE_HASH_CACHE", "0"),
    };
    let out = cmd.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The one cache file under `cache`: its inode, mtime and bytes.
fn cache_file(cache: &Path) -> (u64, i64, i64, Vec<u8>) {
    use std::os::unix::fs::MetadataExt;
    let dir = cache.join("reggie-build/hashes");
    let files: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let m = fs::symlink_metadata(&files[0]).unwrap();
    (
        m.ino(),
        m.mtime(),
        m.mtime_nsec(),
        fs::read(&files[0]).unwrap(),
    )
}

#[test]
fn a_second_run_leaves_the_cache_alone_and_a_change_is_read_and_stored() {
    let r = repo();
    let p = r.path();
    let cache = tempfile::tempdir().unwrap();
    // Files changed in the last 2 seconds (whole seconds) are not cached:
    // a write in the same timestamp tick could go unseen. Let them age.
    let settle = || std::thread::sleep(std::time::Duration::from_millis(3100));
    settle();
    let first = digest_cached(p, Some(cache.path()));
    assert_eq!(first, digest_cached(p, None));
    let stored = cache_file(cache.path());
    assert_eq!(digest_cached(p, Some(cache.path())), first);
    assert_eq!(cache_file(cache.path()), stored, "rewritten with no change");

    // Same size: the cache must not answer for the old content.
    write(p, "backend/app/main.py", "print(3)\n");
    let changed = digest_cached(p, Some(cache.path()));
    assert_ne!(changed, first);
    assert_eq!(changed, digest_cached(p, None));
    settle();
    assert_eq!(digest_cached(p, Some(cache.path())), changed);
    let rewritten = cache_file(cache.path());
    assert_ne!(rewritten.3, stored.3, "the changed file's hash is stored");
    assert_eq!(digest_cached(p, Some(cache.path())), changed);
    assert_eq!(cache_file(cache.path()), rewritten);
}
