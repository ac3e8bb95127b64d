//! The GitHub Action's install script (`action/install.sh`, run by
//! `action.yml`), offline: a release directory laid out as cargo-dist
//! publishes it (`reggie-build-<target>.tar.gz` holding
//! `reggie-build-<target>/reggie-build`, and its `.sha256`), reached through
//! a file:// URL or a plain path, and the pip wheel as the fallback.

mod common;

use sha2::{Digest, Sha256};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn manifest() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The release target of this machine, as cargo-dist names its archives.
fn target() -> String {
    let os = match std::env::consts::OS {
        "linux" => "unknown-linux-gnu",
        "macos" => "apple-darwin",
        other => panic!("no release archive for {other}"),
    };
    format!("{}-{os}", std::env::consts::ARCH)
}

/// A release directory holding this build's `reggie-build` (stripped when
/// `strip` is there, to keep the archive small).
fn release_dir(root: &Path) -> PathBuf {
    let target = target();
    let stage = root.join("stage").join(format!("reggie-build-{target}"));
    fs::create_dir_all(&stage).unwrap();
    fs::copy(
        env!("CARGO_BIN_EXE_reggie-build"),
        stage.join("reggie-build"),
    )
    .unwrap();
    let _ = Command::new("strip")
        .arg(stage.join("reggie-build"))
        .status();
    let release = root.join("release");
    fs::create_dir_all(&release).unwrap();
    let name = format!("reggie-build-{target}.tar.gz");
    let tar = Command::new("tar")
        .arg("-czf")
        .arg(release.join(&name))
        .arg("-C")
        .arg(root.join("stage"))
        .arg(format!("reggie-build-{target}"))
        .output()
        .unwrap();
    assert!(tar.status.success(), "{}", text(&tar));
    let digest = Sha256::digest(fs::read(release.join(&name)).unwrap());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    fs::write(
        release.join(format!("{name}.sha256")),
        format!("{hex} *{name}\n"),
    )
    .unwrap();
    release
}

fn install(dir: &Path, release_url: &str, extra: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new("bash");
    cmd.arg(manifest().join("action/install.sh"))
        .env("REGGIE_VERSION", env!("CARGO_PKG_VERSION"))
        .env("REGGIE_INSTALL_DIR", dir)
        .env("REGGIE_RELEASE_URL", release_url)
        .env_remove("REGGIE_REPOSITORY")
        .env_remove("REGGIE_PIP_ARGS")
        .env_remove("REGGIE_NO_WHEEL");
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn last_line(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string()
}

fn analyze_fixture(bin: &Path) -> String {
    let fixture = manifest().join("fixtures/reggie");
    let out = Command::new(bin.join("reggie-build"))
        .arg("analyze")
        .arg(&fixture)
        .arg("-f")
        .arg(fixture.join("backend/Dockerfile"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    text(&out)
}

#[test]
fn installs_the_release_archive_from_a_url_and_keeps_it_cached() {
    let tmp = tempfile::tempdir().unwrap();
    let release = release_dir(tmp.path());
    let dir = tmp.path().join("tools");
    let url = format!("file://{}", release.display());
    let first = install(&dir, &url, &[("REGGIE_NO_WHEEL", "1")]);
    assert!(first.status.success(), "{}", text(&first));
    let bin = PathBuf::from(last_line(&first));
    assert_eq!(bin, dir.join("bin"));
    assert!(
        analyze_fixture(&bin).contains("Needed            19 files"),
        "the installed binary analyzes the fixture"
    );

    // The action's cache: a second run finds it and fetches nothing (the
    // release is gone).
    fs::remove_dir_all(&release).unwrap();
    let again = install(&dir, &url, &[("REGGIE_NO_WHEEL", "1")]);
    assert!(again.status.success(), "{}", text(&again));
    assert!(text(&again).contains("already in"), "{}", text(&again));
    assert_eq!(PathBuf::from(last_line(&again)), bin);
}

#[test]
fn installs_from_a_plain_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let release = release_dir(tmp.path());
    let dir = tmp.path().join("tools");
    let out = install(&dir, release.to_str().unwrap(), &[("REGGIE_NO_WHEEL", "1")]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(dir.join("bin/reggie-build").is_file());
}

#[test]
fn a_checksum_mismatch_installs_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let release = release_dir(tmp.path());
    let sums = release.join(format!("reggie-build-{}.tar.gz.sha256", target()));
    let line = fs::read_to_string(&sums).unwrap();
    fs::write(&sums, format!("{}{}", "0".repeat(64), &line[64..])).unwrap();
    let dir = tmp.path().join("tools");
    // Not even the wheel: a substituted archive is an error.
    let out = install(&dir, release.to_str().unwrap(), &[]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("sha256"), "{}", text(&out));
    assert!(!dir.join("bin/reggie-build").exists());
}

#[test]
fn without_an_archive_it_installs_the_wheel() {
    let test = "without_an_archive_it_installs_the_wheel";
    let Some(wheel) = common::test_wheel() else {
        common::missing_prerequisite(
            test,
            "the wheel is missing from REGGIE_TEST_WHEELS (target/test-deps/wheel)",
            "Build it with `maturin build --profile dev --out target/test-deps/wheel`, or run `bash tests/run.sh`.",
        );
        return;
    };
    let wheels = wheel.parent().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty-release");
    fs::create_dir_all(&empty).unwrap();
    let dir = tmp.path().join("tools");
    let pip_args = format!("--no-index --find-links {}", wheels.display());
    let out = install(
        &dir,
        empty.to_str().unwrap(),
        &[("REGGIE_PIP_ARGS", &pip_args)],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("no archive"), "{}", text(&out));
    let bin = PathBuf::from(last_line(&out));
    assert!(analyze_fixture(&bin).contains("Needed            19 files"));
    // The wheel is the lean build: `image` says so instead of running.
    let image = Command::new(bin.join("reggie-build"))
        .args(["image", ".", "-t", "pkg-action:x"])
        .current_dir(manifest().join("fixtures/reggie"))
        .output()
        .unwrap();
    assert_eq!(image.status.code(), Some(2), "{}", text(&image));
    assert!(text(&image).contains("lean build"), "{}", text(&image));
}

#[test]
fn the_action_installs_this_version_with_the_script() {
    let action = fs::read_to_string(manifest().join("action.yml")).unwrap();
    assert!(action.contains("using: composite"), "{action}");
    assert!(
        action.contains("$GITHUB_ACTION_PATH/action/install.sh"),
        "{action}"
    );
    let default = format!("default: \"{}\"", env!("CARGO_PKG_VERSION"));
    assert!(
        action.contains(&default),
        "action.yml's version input must default to this crate's version ({default})"
    );
}
