//! Helpers of the end-to-end build tests (`e2e_session.rs`,
//! `e2e_buildkit_remote.rs`): running `reggie-build image` and the docker
//! CLI against the services, and comparing the filesystems of images.
//! Included with `#[path = "common/build.rs"] mod build;`.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};

pub use crate::common::docker::{text, Fs};
use crate::common::docker::{Cli, Compare};

/// Runs `reggie-build image ARGS` with the services' daemon and
/// `docker_config` as DOCKER_CONFIG (where the node id of the shared key
/// lives).
pub fn reggie(
    env: &BTreeMap<String, String>,
    cwd: &Path,
    docker_config: &Path,
    args: &[&str],
    extra_env: &[(&str, &str)],
) -> Output {
    reggie_cmd(env, cwd, docker_config, args, extra_env)
        .output()
        .expect("run reggie-build")
}

/// The command [`reggie`] runs (for tests that signal it): only the
/// services' daemon settings, and `docker_config` as HOME too (no ambient
/// credentials), its output piped.
pub fn reggie_cmd(
    env: &BTreeMap<String, String>,
    cwd: &Path,
    docker_config: &Path,
    args: &[&str],
    extra_env: &[(&str, &str)],
) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_reggie-build"));
    cmd.current_dir(cwd).arg("image").args(args);
    for var in [
        "DOCKER_HOST",
        "DOCKER_CONTEXT",
        "DOCKER_TLS_VERIFY",
        "DOCKER_CERT_PATH",
        "SOURCE_DATE_EPOCH",
        "RUST_LOG",
        "BUILDKIT_HOST",
        "REGGIE_REGISTRY_ENDPOINT",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(env)
        .env("HOME", docker_config)
        .env("DOCKER_CONFIG", docker_config)
        .envs(extra_env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// The docker CLI: `buildkit` runs the 20.10 CLI with DOCKER_BUILDKIT=1.
pub fn docker(env: &BTreeMap<String, String>, cwd: &Path, buildkit: bool, args: &[&str]) -> Output {
    let cli = if buildkit {
        Cli::BuildKit
    } else {
        Cli::Classic
    };
    crate::common::docker::docker(env, cli, cwd, args)
}

pub fn ok(out: &Output) {
    assert!(out.status.success(), "reggie-build failed:\n{}", text(out));
}

/// An image's filesystem, without the container's own mount points.
pub fn image_fs(env: &BTreeMap<String, String>, image: &str) -> Fs {
    crate::common::docker::without_container_paths(crate::common::docker::image_fs(env, image))
}

/// Same paths, types, modes, owners, links, devices, mtimes (of files)
/// and contents.
pub fn assert_same_fs(case: &str, ours: &Fs, theirs: &Fs) {
    let how = Compare {
        devices_and_mtimes: true,
        ..Compare::default()
    };
    crate::common::docker::assert_same_fs(case, ours, theirs, how);
}

/// The bytes of file contents the build sent (its last `upload` event).
pub fn bytes_sent(out: &Output) -> u64 {
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "upload" && v["done"] == true)
        .filter_map(|v| v["bytes"].as_u64())
        .next_back()
        .unwrap_or_else(|| panic!("no upload event:\n{}", text(out)))
}

/// A tree with what file sync must carry exactly: modes, empty and
/// nested directories, symlinks (relative, absolute, dangling), hard
/// links, a FIFO and a character device, odd names, and a .dockerignore
/// with an exception.
pub fn odd_tree(root: &Path) {
    use std::os::unix::fs::{symlink, PermissionsExt};
    let w = |p: &str, data: &[u8], mode: u32| {
        let path = root.join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, data).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    w("a.txt", b"alpha\n", 0o644);
    w("bin/run.sh", b"#!/bin/sh\necho hi\n", 0o755);
    w("bin/suid", b"x", 0o4755);
    w("deep/er/still/file with spaces.txt", b"spaces", 0o600);
    w("deep/er/caf\u{e9}.md", "é".as_bytes(), 0o644);
    w("node_modules/pkg/index.js", b"module.exports = 1\n", 0o644);
    w("node_modules/keep/README.md", b"kept\n", 0o644);
    w("big.bin", &vec![0x5a; 300_000], 0o644);
    std::fs::create_dir_all(root.join("empty/dir")).unwrap();
    std::fs::set_permissions(root.join("empty"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    symlink("a.txt", root.join("link-rel")).unwrap();
    symlink("/etc/passwd", root.join("link-abs")).unwrap();
    symlink("nowhere", root.join("deep/dangling")).unwrap();
    std::fs::hard_link(root.join("a.txt"), root.join("deep/hard.txt")).unwrap();
    rustix_mknod(&root.join("fifo"), libc::S_IFIFO | 0o644, 0);
    rustix_mknod(
        &root.join("null"),
        libc::S_IFCHR | 0o666,
        libc::makedev(1, 3),
    );
    std::fs::write(
        root.join(".dockerignore"),
        "node_modules\n!node_modules/keep\n*.log\n",
    )
    .unwrap();
    w("x.log", b"ignored", 0o644);
}

pub fn rustix_mknod(path: &Path, mode: u32, dev: u64) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path; mknod reads nothing else.
    let rc = unsafe { libc::mknod(c.as_ptr(), mode, dev as libc::dev_t) };
    assert_eq!(rc, 0, "mknod {}", path.display());
}

/// A relay of one daemon's BuildKit on a unix socket; stopped on drop.
pub struct Relay {
    /// `unix://PATH`, for `--buildkit-addr`.
    pub addr: String,
    child: std::process::Child,
}

impl Relay {
    pub fn start(daemon_host: &str, sock: &Path) -> Relay {
        let daemon = daemon_host
            .strip_prefix("unix://")
            .expect("the services' daemons are on unix sockets");
        let script = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/relay.py");
        let child = Command::new("python3")
            .arg(&script)
            .arg("buildkit")
            .arg(format!("unix:{}", sock.display()))
            .arg(daemon)
            .spawn()
            .expect("run python3 tests/relay.py");
        for _ in 0..200 {
            if sock.exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        assert!(
            sock.exists(),
            "the relay made no socket at {}",
            sock.display()
        );
        Relay {
            addr: format!("unix://{}", sock.display()),
            child,
        }
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop();
    }
}
