//! `reggie-build image --all` / `--affected` against the test daemon
//! (`tests/services.sh`): every configured image built once, each equal
//! to its single `image` build, a failing image not stopping the others,
//! and `--affected` building only what a commit affects.
#![cfg(feature = "image")]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

mod common;

use common::context::Ctx;
use common::docker::text;
use common::images::Images;

fn reggie(env: &BTreeMap<String, String>, cwd: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_reggie-build"));
    cmd.current_dir(cwd).arg("image").args(args);
    for var in [
        "DOCKER_HOST",
        "DOCKER_CONTEXT",
        "DOCKER_TLS_VERIFY",
        "DOCKER_CERT_PATH",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let home = tempfile::tempdir().unwrap();
    cmd.env("HOME", home.path())
        .env("DOCKER_CONFIG", home.path().join(".docker"))
        .env_remove("GITHUB_REF_NAME")
        .env_remove("GITHUB_HEAD_REF");
    cmd.output().expect("run reggie-build")
}

fn inspect(env: &BTreeMap<String, String>, image: &str) -> serde_json::Value {
    let mut cmd = Command::new("docker");
    cmd.args(["image", "inspect", image]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let home = tempfile::tempdir().unwrap();
    cmd.env("DOCKER_CONFIG", home.path());
    let out = cmd.output().expect("run docker");
    assert!(
        out.status.success(),
        "docker inspect {image}:\n{}",
        text(&out)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v[0].clone()
}

/// Path → (type, mode, uid, gid, link, content) of an image's filesystem;
/// mtimes left out, as a build from scratch dates the directories it
/// creates.
type Fs = BTreeMap<String, (u8, u32, u64, u64, String, Vec<u8>)>;

fn image_fs(env: &BTreeMap<String, String>, image: &str) -> Fs {
    common::docker::image_fs(env, image)
        .into_iter()
        .map(|(path, e)| (path, (e.kind, e.mode, e.uid, e.gid, e.link, e.content)))
        .collect()
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.email=ops@test", "-c", "user.name=ops"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}:\n{}", text(&out));
}

/// A monorepo of three images (two share `shared/`), committed; image
/// repositories are `<prefix>-<name>`.
fn monorepo(prefix: &str) -> Ctx {
    let dir = Ctx::new().files([
        ("shared/lib.txt", "shared\n"),
        ("api/main.txt", "api\n"),
        (
            "api/Dockerfile",
            "FROM scratch\nCOPY shared/ /shared/\nCOPY api/main.txt /app/\n",
        ),
        ("web/index.txt", "web\n"),
        ("web/Dockerfile", "FROM scratch\nCOPY web/index.txt /app/\n"),
        ("worker/w.txt", "worker\n"),
        (
            "worker/Dockerfile",
            "FROM scratch\nCOPY shared/ /shared/\nCOPY worker/w.txt /app/\n",
        ),
        ("broken/Dockerfile", "FROM scratch\nCOPY missing/ /app/\n"),
    ]);
    let image = |name: &str| {
        format!(
            "[[image]]\nname = \"{name}\"\ndockerfile = \"{name}/Dockerfile\"\nrepository = \"{prefix}-{name}\"\ntags = [\"{{git_short_sha}}\", \"latest\"]\n\n"
        )
    };
    let config: String = ["api", "web", "worker"].iter().map(|n| image(n)).collect();
    let broken = format!("{config}{}", image("broken"));
    let dir = dir
        .file("reggie-build.toml", &config)
        .file("with-broken.toml", broken);
    let root = dir.path();
    git(root, &["init", "-q"]);
    git(root, &["add", "-A"]);
    git(root, &["commit", "-qm", "init"]);
    dir
}

/// The `result` lines of `--json`, by image.
fn results(out: &Output) -> BTreeMap<String, serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "result")
        .map(|v| (v["image"].as_str().unwrap_or_default().to_string(), v))
        .collect()
}

fn events_of(out: &Output, image: &str, event: &str) -> usize {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == event && v["image"] == image)
        .count()
}

#[test]
fn image_all_builds_each_once_and_equals_single_builds() {
    let Some(env) = common::services() else {
        return;
    };
    let images = Images::new(&env, "all");
    let prefix = images.repository();
    let repo = monorepo(prefix);
    let out = reggie(&env, repo.path(), &["--all", "--json", "--jobs", "3"]);
    assert!(out.status.success(), "{}", text(&out));
    let results = results(&out);
    assert_eq!(
        results.keys().map(String::as_str).collect::<Vec<_>>(),
        ["api", "web", "worker"]
    );
    for name in ["api", "web", "worker"] {
        assert_eq!(results[name]["ok"], true, "{}", text(&out));
        assert_eq!(events_of(&out, name, "context"), 1, "{name} built once");
        assert_eq!(events_of(&out, name, "image_id"), 1, "{name} built once");
        // Tags from the config's templates.
        let tagged = inspect(&env, &format!("{prefix}-{name}:latest"));
        let sha = String::from_utf8(
            Command::new("git")
                .current_dir(repo.path())
                .args(["rev-parse", "--short=7", "HEAD"])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        let by_sha = inspect(&env, &format!("{prefix}-{name}:{}", sha.trim()));
        assert_eq!(tagged["Id"], by_sha["Id"]);
        assert_eq!(tagged["Id"], results[name]["image_id"]);
        // The single build, from scratch, gives the same filesystem and
        // configuration.
        let single = format!("{prefix}-single-{name}:1");
        let one = reggie(
            &env,
            repo.path(),
            &[
                ".",
                "-f",
                &format!("{name}/Dockerfile"),
                "-t",
                &single,
                "--no-cache",
            ],
        );
        assert!(one.status.success(), "{}", text(&one));
        assert!(
            image_fs(&env, &single) == image_fs(&env, &format!("{prefix}-{name}:latest")),
            "{name}: the filesystems differ"
        );
        let single = inspect(&env, &single);
        assert_eq!(single["Config"], tagged["Config"], "{name}: config differs");
        assert_eq!(
            single["RootFS"]["Layers"].as_array().map(Vec::len),
            tagged["RootFS"]["Layers"].as_array().map(Vec::len)
        );
    }
}

#[test]
fn image_all_failing_image_does_not_stop_the_others() {
    let Some(env) = common::services() else {
        return;
    };
    let images = Images::new(&env, "all");
    let prefix = images.repository();
    let repo = monorepo(prefix);
    let out = reggie(
        &env,
        repo.path(),
        &["--all", "--config", "with-broken.toml", "--jobs", "1"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for name in ["api", "web", "worker"] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with("sha256:") && l.ends_with(&format!("  {name}"))),
            "{name} missing:\n{}",
            text(&out)
        );
        inspect(&env, &format!("{prefix}-{name}:latest"));
    }
    assert!(
        stderr.contains("error: image `broken`: build failed"),
        "{}",
        text(&out)
    );
    assert!(
        stderr.contains("built 3 of 4 images; failed: broken"),
        "{}",
        text(&out)
    );
}

#[test]
fn image_affected_builds_only_the_affected_images() {
    let Some(env) = common::services() else {
        return;
    };
    let images = Images::new(&env, "all");
    let prefix = images.repository();
    let repo = monorepo(prefix);
    // shared/ reaches api and worker, not web.
    repo.write("shared/lib.txt", "shared v2\n");
    git(repo.path(), &["commit", "-qam", "shared"]);
    let out = reggie(&env, repo.path(), &["--affected", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let results = results(&out);
    assert_eq!(
        results.keys().map(String::as_str).collect::<Vec<_>>(),
        ["api", "worker"],
        "{}",
        text(&out)
    );
    assert_eq!(events_of(&out, "web", "context"), 0);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("affected: 2 of 3 images"), "{}", text(&out));
    // Nothing changed since HEAD: nothing to build.
    let out = reggie(
        &env,
        repo.path(),
        &["--affected", "--base", "HEAD", "--worktree"],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nothing to build"),
        "{}",
        text(&out)
    );
    assert!(out.stdout.is_empty(), "{}", text(&out));
}
