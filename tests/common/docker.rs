//! The docker CLI on the test daemon, and the filesystem of an image:
//! the one `docker build` runner and the one image export the end-to-end
//! tests compare against.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The variables of `tests/services.sh` ([`super::services`]).
pub type Env = BTreeMap<String, String>;

/// Which builder a docker CLI run drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cli {
    /// `docker` on PATH (docker 28) with `DOCKER_BUILDKIT=0`.
    Classic,
    /// `$REGGIE_TEST_DOCKER_BUILDKIT` (default `/usr/bin/docker`, the
    /// 20.10 CLI, when it exists, else `docker`) with `DOCKER_BUILDKIT=1`.
    BuildKit,
}

impl Cli {
    /// The program run for this builder.
    pub fn program(self) -> String {
        match self {
            Cli::Classic => "docker".to_string(),
            Cli::BuildKit => std::env::var("REGGIE_TEST_DOCKER_BUILDKIT").unwrap_or_else(|_| {
                if Path::new("/usr/bin/docker").exists() {
                    "/usr/bin/docker".into()
                } else {
                    "docker".into()
                }
            }),
        }
    }
}

/// An empty docker config directory, so that the user's config (contexts,
/// credential helpers, plugins) never takes part.
fn empty_config() -> PathBuf {
    let dir = std::env::temp_dir().join("reggie-test-docker-config");
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// The docker CLI for `cli` in `cwd`, on the test daemon, without user
/// config.
pub fn docker_cmd(env: &Env, cli: Cli, cwd: &Path) -> Command {
    let mut cmd = Command::new(cli.program());
    cmd.current_dir(cwd).env(
        "DOCKER_BUILDKIT",
        if cli == Cli::Classic { "0" } else { "1" },
    );
    for var in ["DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"] {
        cmd.env_remove(var);
    }
    cmd.envs(env).env("DOCKER_CONFIG", empty_config());
    cmd
}

/// Runs `docker ARGS`; the caller checks the status. Each run has a
/// config directory of its own: the 20.10 CLI keeps its BuildKit node id
/// there, which decides what the daemon's caches share between builds.
pub fn docker_may_fail(env: &Env, cli: Cli, cwd: &Path, args: &[&str]) -> Output {
    let config = tempfile::tempdir().unwrap();
    docker_cmd(env, cli, cwd)
        .env("DOCKER_CONFIG", config.path())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run docker")
}

/// Runs `docker ARGS` and fails the test if it fails.
pub fn docker(env: &Env, cli: Cli, cwd: &Path, args: &[&str]) -> Output {
    let out = docker_may_fail(env, cli, cwd, args);
    assert!(
        out.status.success(),
        "docker {args:?} ({cli:?}) failed:\n{}",
        text(&out)
    );
    out
}

/// `docker build ARGS` as the user runs it (`args` end with the context),
/// failing the test if the build fails.
pub fn docker_build(env: &Env, cli: Cli, cwd: &Path, args: &[&str]) -> Output {
    let mut all = vec!["build"];
    all.extend_from_slice(args);
    docker(env, cli, cwd, &all)
}

/// A command's stdout and stderr, for failure messages.
pub fn text(out: &Output) -> String {
    format!(
        "--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// One path of an image's filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsEntry {
    /// The tar entry type (`b'0'` file, `b'5'` directory, ...).
    pub kind: u8,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub link: String,
    /// Device major and minor (0 for anything but a device).
    pub device: (u32, u32),
    pub mtime: u64,
    pub content: Vec<u8>,
}

/// Path (no trailing `/`) → entry.
pub type Fs = BTreeMap<String, FsEntry>;

/// An image's filesystem, from `docker create` + `docker export`.
pub fn image_fs(env: &Env, image: &str) -> Fs {
    let root = Path::new("/");
    let out = docker(env, Cli::Classic, root, &["create", image, "/nonexistent"]);
    let id = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let mut child = docker_cmd(env, Cli::Classic, root)
        .args(["export", &id])
        .stdout(Stdio::piped())
        .spawn()
        .expect("run docker export");
    let fs = tar_fs(child.stdout.take().unwrap());
    assert!(child.wait().unwrap().success(), "docker export {image}");
    docker(env, Cli::Classic, root, &["rm", &id]);
    fs
}

/// The entries of a tar stream (an export, an `--output type=tar`).
pub fn tar_fs(reader: impl Read) -> Fs {
    let mut fs = Fs::new();
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let h = entry.header().clone();
        let link = entry
            .link_name()
            .unwrap()
            .map(|l| l.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut content = Vec::new();
        entry.read_to_end(&mut content).unwrap();
        fs.insert(
            path.trim_end_matches('/').to_string(),
            FsEntry {
                kind: h.entry_type().as_byte(),
                mode: h.mode().unwrap(),
                uid: h.uid().unwrap(),
                gid: h.gid().unwrap(),
                link,
                device: (
                    h.device_major().ok().flatten().unwrap_or(0),
                    h.device_minor().ok().flatten().unwrap_or(0),
                ),
                mtime: h.mtime().unwrap(),
                content,
            },
        );
    }
    fs
}

/// Every entry below `root` on disk (an `--output type=local`
/// directory), described as a tar of it would: the tar type (hard links
/// are files here), permission bits, owner, link target, device, mtime
/// and contents. Links are not followed.
pub fn dir_fs(root: &Path) -> Fs {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut fs = Fs::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for e in std::fs::read_dir(root.join(&rel)).unwrap() {
            let e = e.unwrap();
            let rel = rel.join(e.file_name());
            let md = std::fs::symlink_metadata(e.path()).unwrap();
            let ft = md.file_type();
            let mut link = String::new();
            let mut content = Vec::new();
            let kind = if ft.is_dir() {
                stack.push(rel.clone());
                b'5'
            } else if ft.is_symlink() {
                link = std::fs::read_link(e.path())
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                b'2'
            } else if ft.is_char_device() {
                b'3'
            } else if ft.is_block_device() {
                b'4'
            } else if ft.is_fifo() {
                b'6'
            } else {
                content = std::fs::read(e.path()).unwrap();
                b'0'
            };
            let rdev = md.rdev();
            fs.insert(
                rel.to_string_lossy().into_owned(),
                FsEntry {
                    kind,
                    mode: md.mode() & 0o7777,
                    uid: u64::from(md.uid()),
                    gid: u64::from(md.gid()),
                    link,
                    device: (libc::major(rdev), libc::minor(rdev)),
                    mtime: md.mtime() as u64,
                    content,
                },
            );
        }
    }
    fs
}

/// The same filesystem without what `docker create` adds to every
/// container (its mount points and marker), which is not the image's.
pub fn without_container_paths(mut fs: Fs) -> Fs {
    fs.retain(|path, _| {
        ![".dockerenv", "dev", "etc", "proc", "sys"]
            .iter()
            .any(|p| path == *p || path.starts_with(&format!("{p}/")))
    });
    fs
}

/// What [`assert_same_fs`] compares beyond paths, type, mode, owner, link
/// target and content.
#[derive(Clone, Copy)]
pub struct Compare {
    /// Device numbers, and mtimes of everything but directories (which
    /// get the time of the build).
    pub devices_and_mtimes: bool,
    /// Applied to both contents before comparing them.
    pub content: fn(&[u8]) -> Vec<u8>,
}

impl Default for Compare {
    fn default() -> Compare {
        Compare {
            devices_and_mtimes: false,
            content: <[u8]>::to_vec,
        }
    }
}

/// The two images hold the same paths with the same type, mode, owner,
/// link target and content (and what `how` adds).
pub fn assert_same_fs(what: &str, ours: &Fs, theirs: &Fs, how: Compare) {
    let a: Vec<&String> = ours.keys().collect();
    let b: Vec<&String> = theirs.keys().collect();
    assert_eq!(a, b, "{what}: the images hold different paths");
    for (path, e) in ours {
        let o = &theirs[path];
        assert_eq!(
            (e.kind, e.mode, e.uid, e.gid, &e.link),
            (o.kind, o.mode, o.uid, o.gid, &o.link),
            "{what}: {path}: type/mode/owner/link differ"
        );
        if how.devices_and_mtimes {
            assert_eq!(e.device, o.device, "{what}: {path}: device differs");
            if e.kind != b'5' {
                assert_eq!(e.mtime, o.mtime, "{what}: {path}: mtime differs");
            }
        }
        let (x, y) = ((how.content)(&e.content), (how.content)(&o.content));
        assert!(
            x == y,
            "{what}: {path}: contents differ:\n{:?}\n{:?}",
            String::from_utf8_lossy(&x),
            String::from_utf8_lossy(&y)
        );
    }
}

/// `reggie-build ARGS` in `cwd` against the services' daemon, with no
/// ambient Docker settings or credentials (a private `HOME` and docker
/// config); `stdin` is written to its standard input when given.
pub fn reggie_isolated(env: &Env, cwd: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write as _;
    let home = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_reggie-build"));
    cmd.current_dir(cwd).args(args);
    for var in [
        "DOCKER_HOST",
        "DOCKER_CONTEXT",
        "DOCKER_TLS_VERIFY",
        "DOCKER_CERT_PATH",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(env)
        .env("HOME", home.path())
        .env("DOCKER_CONFIG", home.path().join(".docker"))
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run reggie-build");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(input.as_bytes()).unwrap();
    }
    child.wait_with_output().unwrap()
}
