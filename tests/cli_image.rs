//! `reggie-build image` without a daemon: the hand-over from
//! `reggie-build` to the `reggie-build-image` binary beside it (the builds
//! themselves are in `e2e_image.rs`, against a real daemon).
// The image builder is the default feature `image`.
#![cfg(feature = "image")]

use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;

fn backend() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/reggie/backend")
}

#[test]
fn image_help_comes_from_reggie_build_itself() {
    Command::cargo_bin("reggie-build")
        .unwrap()
        .args(["image", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("--push"))
        .stdout(predicate::str::contains("--skip-if-exists"))
        .stdout(predicate::str::contains("ssh://"));
}

#[test]
fn image_runs_in_the_image_binary_with_the_same_arguments() {
    // The daemon error and its exit code are the image binary's; bad
    // arguments are refused before any hand-over.
    Command::cargo_bin("reggie-build")
        .unwrap()
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .arg("image")
        .arg(backend())
        .args(["-t", "reggie-cli:x"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "cannot reach the Docker daemon at unix:///nonexistent/docker.sock",
        ))
        .stderr(predicate::str::contains("cannot run").not());
    Command::cargo_bin("reggie-build")
        .unwrap()
        .args(["image", "--compress", "zstd"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("invalid value 'zstd'"));
}

#[test]
fn image_without_the_image_binary_says_what_to_install() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let alone = dir.path().join("reggie-build");
    let built = assert_cmd::cargo::cargo_bin("reggie-build");
    if std::fs::hard_link(&built, &alone).is_err() {
        std::fs::copy(&built, &alone).unwrap();
    }
    Command::new(&alone)
        .arg("image")
        .arg(backend())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("reggie-build-image"))
        .stderr(predicate::str::contains("install both"));
    // Every other command works without it.
    Command::new(&alone)
        .arg("ls")
        .arg(backend())
        .assert()
        .success()
        .stdout(predicate::str::contains("app/main.py"));
}

#[test]
fn secret_and_ssh_arguments_are_checked_before_the_daemon() {
    let cases: [(&[&str], &str); 4] = [
        (
            &["--secret", "src=/etc/hostname"],
            "--secret \"src=/etc/hostname\": no id",
        ),
        (
            &["--secret", "id=x,src=/nonexistent/reggie-secret"],
            "--secret id=x: /nonexistent/reggie-secret does not exist",
        ),
        (
            &["--secret", "id=x,env=REGGIE_CLI_UNSET_VAR"],
            "the environment variable REGGIE_CLI_UNSET_VAR is not set",
        ),
        (
            &["--builder", "classic", "--secret", "id=x,src=/etc/hostname"],
            "--secret and --ssh need BuildKit",
        ),
    ];
    for (args, message) in cases {
        Command::cargo_bin("reggie-build")
            .unwrap()
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
            .env_remove("REGGIE_CLI_UNSET_VAR")
            .arg("image")
            .arg(backend())
            .args(["-t", "reggie-cli:x"])
            .args(args)
            .assert()
            .failure()
            .stderr(predicate::str::contains(message))
            .stderr(predicate::str::contains("cannot reach the Docker daemon").not());
    }
}

#[test]
fn output_and_cache_arguments_are_checked_before_the_daemon() {
    let cases: [(&[&str], &str); 5] = [
        (
            &["-o", "type=local"],
            "--output \"type=local\": type=local needs dest=PATH",
        ),
        (
            &["-o", "type=local,\"dest=a\"b"],
            "text after a closing quote",
        ),
        (
            &["--cache-from", "type=registry"],
            "type=registry needs ref=IMAGE",
        ),
        (
            &["-o", "out", "--push"],
            "--push and --output type=local cannot be used together",
        ),
        (&["-o", "-", "--json"], "--json writes its events"),
    ];
    for (args, message) in cases {
        Command::cargo_bin("reggie-build")
            .unwrap()
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
            .arg("image")
            .arg(backend())
            .args(["-t", "reggie-cli:x"])
            .args(args)
            .assert()
            .failure()
            .stderr(predicate::str::contains(message))
            .stderr(predicate::str::contains("cannot reach the Docker daemon").not());
    }
}

#[test]
fn image_all_takes_its_images_and_tags_from_the_config() {
    // Tags and Dockerfiles come from reggie-build.toml: -t and -f are
    // refused with --all; without a config it says how to make one.
    for extra in [["-t", "x:1"], ["-f", "Dockerfile"]] {
        Command::cargo_bin("reggie-build")
            .unwrap()
            .args(["image", "--all"])
            .args(extra)
            .assert()
            .code(2)
            .stderr(predicate::str::contains("cannot be used with"));
    }
    Command::cargo_bin("reggie-build")
        .unwrap()
        .args(["image", "--base", "main"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--affected"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(".git")).unwrap();
    Command::cargo_bin("reggie-build")
        .unwrap()
        .current_dir(dir.path())
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .args(["image", "--all"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("reggie-build discover --write"));
}

#[test]
fn every_image_help_example_is_accepted() {
    // Each example of `image --help` must get past argument parsing: run
    // where no daemon or builder answers, it may fail for that, never
    // with a usage error.
    let help = Command::cargo_bin("reggie-build")
        .unwrap()
        .args(["image", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("backend")).unwrap();
    std::fs::write(
        dir.path().join("backend/Dockerfile"),
        "FROM scratch\nCOPY . /\n",
    )
    .unwrap();
    let mut tried = 0;
    for line in help.lines() {
        let Some(example) = line.trim().strip_prefix("reggie-build image ") else {
            continue;
        };
        // Pipelines are shell; the flags before the pipe are what counts.
        let example = example.split(['|', '#']).next().unwrap();
        let args: Vec<String> = example
            .split_whitespace()
            .map(|a| a.replace("$HOME", "/nonexistent"))
            .collect();
        let out = Command::cargo_bin("reggie-build")
            .unwrap()
            .current_dir(dir.path())
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
            .env_remove("BUILDKIT_HOST")
            .env("HOME", dir.path())
            .env("DOCKER_CONFIG", dir.path())
            .arg("image")
            .args(&args)
            .write_stdin("")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains("Usage:"),
            "`reggie-build image {example}` is refused as a usage error:\n{stderr}"
        );
        tried += 1;
    }
    assert!(tried >= 3, "only {tried} examples in:\n{help}");
}
