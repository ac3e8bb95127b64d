//! reggie-build's own image (docker/Dockerfile), built by `reggie-build
//! image` itself against the daemon of `tests/services.sh`, then run on a
//! fixture mounted into it. No base image can be pulled there, so the
//! build uses the Dockerfile's `prebuilt` target: this build's binary laid
//! out by docker/rootfs.sh, FROM scratch. The default target (compiled
//! from the sources in a Rust image) is checked for what it reads.
// The image builder is the default feature `image`.
#![cfg(feature = "image")]

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
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

fn reggie(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_reggie-build"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn docker(env: &BTreeMap<String, String>, args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .envs(env)
        .output()
        .unwrap()
}

#[test]
fn the_source_build_reads_the_crate_sources_not_target() {
    let out = reggie(
        manifest(),
        &["ls", ".", "-f", "docker/Dockerfile", "--minimal"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let listed = String::from_utf8(out.stdout).unwrap();
    let paths: Vec<&str> = listed.lines().collect();
    assert!(paths.contains(&"Cargo.toml"), "{listed}");
    assert!(paths.contains(&"Cargo.lock"), "{listed}");
    assert!(paths.contains(&"src/bin/reggie-build/main.rs"), "{listed}");
    assert!(paths.contains(&"src/lib.rs"), "{listed}");
    let allowed = |p: &&str| {
        p.starts_with("src/")
            || [
                "Cargo.toml",
                "Cargo.lock",
                "benches/engine.rs",
                "examples/gen-monorepo.rs",
                "docker/rootfs.sh",
            ]
            .contains(p)
    };
    let other: Vec<&&str> = paths.iter().filter(|p| !allowed(p)).collect();
    assert!(
        other.is_empty(),
        "the image build reads more than the sources: {other:?}"
    );

    // The ignore file beside the Dockerfile sends exactly that (docker
    // build too, not only BuildKit), target/ never.
    let sent = reggie(manifest(), &["ls", ".", "-f", "docker/Dockerfile"]);
    assert!(sent.status.success(), "{}", text(&sent));
    let sent = String::from_utf8(sent.stdout).unwrap();
    assert!(!sent.lines().any(|p| p.starts_with("target/")), "{sent}");
    let mut sent: Vec<&str> = sent.lines().collect();
    sent.sort_unstable();
    let mut needed = paths.clone();
    needed.sort_unstable();
    assert_eq!(sent, needed);
}

#[test]
fn the_image_builds_with_reggie_build_and_analyzes_a_mounted_fixture() {
    let Some(env) = common::services() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let ctx = tmp.path().join("ctx");
    fs::create_dir_all(ctx.join("docker")).unwrap();
    for f in ["Dockerfile", "Dockerfile.dockerignore", "rootfs.sh"] {
        fs::copy(
            manifest().join("docker").join(f),
            ctx.join("docker").join(f),
        )
        .unwrap();
    }
    // This build's binary, stripped when `strip` is there (a smaller upload).
    let bin = tmp.path().join("reggie-build");
    fs::copy(env!("CARGO_BIN_EXE_reggie-build"), &bin).unwrap();
    let _ = Command::new("strip").arg(&bin).status();
    let rootfs = Command::new("sh")
        .arg(ctx.join("docker/rootfs.sh"))
        .arg(&bin)
        .arg(ctx.join("docker/rootfs"))
        .output()
        .unwrap();
    assert!(rootfs.status.success(), "{}", text(&rootfs));

    let tag = "pkg-reggie-build:test";
    let built = Command::new(env!("CARGO_BIN_EXE_reggie-build"))
        .args([
            "image",
            ".",
            "-f",
            "docker/Dockerfile",
            "--target",
            "prebuilt",
            "-t",
            tag,
        ])
        .current_dir(&ctx)
        .envs(&env)
        .output()
        .unwrap();
    assert!(built.status.success(), "{}", text(&built));

    // The Reggie fixture, read-only at /src: the image analyzes it as the
    // host binary does.
    let fixture = manifest().join("fixtures/reggie");
    let volume = format!("{}:/src:ro", fixture.display());
    let run = docker(
        &env,
        &[
            "run",
            "--rm",
            "-v",
            &volume,
            tag,
            "analyze",
            "/src",
            "-f",
            "/src/backend/Dockerfile",
        ],
    );
    assert!(run.status.success(), "{}", text(&run));
    let report = text(&run);
    let host = text(&reggie(
        &fixture,
        &["analyze", ".", "-f", "backend/Dockerfile"],
    ));
    assert!(report.contains("Needed            19 files"), "{report}");
    let summary = |r: &str| -> Vec<String> {
        r.lines()
            .filter(|l| {
                l.trim_start().starts_with("Needed") || l.trim_start().starts_with("Sent today")
            })
            .map(str::to_string)
            .collect()
    };
    assert_eq!(summary(&report), summary(&host));

    // No shell: only the binary and the libraries it links.
    let shell = docker(
        &env,
        &["run", "--rm", "--entrypoint", "/bin/sh", tag, "-c", "true"],
    );
    assert!(!shell.status.success(), "the image must have no shell");
    let size = docker(&env, &["image", "inspect", "-f", "{{.Size}}", tag]);
    assert!(size.status.success(), "{}", text(&size));
    let bytes: u64 = String::from_utf8_lossy(&size.stdout)
        .trim()
        .parse()
        .unwrap();
    let binary = fs::metadata(&bin).unwrap().len();
    // The binary plus the C library and loader (a few MB), nothing else.
    assert!(
        bytes < binary + 8_000_000,
        "image {bytes} bytes for a {binary}-byte binary"
    );
    let _ = docker(&env, &["rmi", "-f", tag]);
}
