//! Hostile repositories: links out of the context, special files, odd
//! names. Nothing outside the context is read or printed, nothing blocks,
//! nothing panics.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

/// Runs reggie-build in `dir`, killed after `limit` (a hang is a failure,
/// not a stuck test run).
fn run_limited(dir: &Path, args: &[&str], limit: Duration) -> (Output, Duration) {
    // REGGIE_TEST_BIN runs the tests against another build (to reproduce
    // a defect with an older binary).
    let bin = std::env::var_os("REGGIE_TEST_BIN")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_reggie-build").into());
    let mut cmd = std::process::Command::new(bin);
    cmd.current_dir(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let start = Instant::now();
    let child = cmd.spawn().unwrap();
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if rx.recv_timeout(limit).is_err() {
            // Timed out (or the sender is gone): kill the process we started.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        }
    });
    let out = child.wait_with_output().unwrap();
    let _ = tx.send(());
    let _ = watchdog.join();
    (out, start.elapsed())
}

fn run(dir: &Path, args: &[&str]) -> Output {
    let (out, took) = run_limited(dir, args, Duration::from_secs(20));
    assert!(
        out.status.code().is_some(),
        "{args:?} was killed after {took:?} (hung?)\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "{path:?}");
}

/// A repository (with `.git`) whose context `ctx` sends everything.
fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join(".git")).unwrap();
    fs::create_dir_all(dir.path().join("ctx")).unwrap();
    fs::write(
        dir.path().join("ctx/Dockerfile"),
        "FROM scratch\nCOPY . /app\n",
    )
    .unwrap();
    dir
}

/// Content rules (`.npmrc` holding a token) look at the entry itself: a
/// link to a token outside the context is not followed (Docker sends only
/// the link), and a link to /dev/zero or a FIFO under such a name neither
/// hangs nor grows memory.
#[test]
fn content_rules_read_only_regular_files_in_the_context() {
    let dir = repo();
    let outside = dir.path().join("outside.npmrc");
    fs::write(
        &outside,
        "//registry.npmjs.org/:_authToken=OUTSIDE-CANARY\n",
    )
    .unwrap();
    let ctx = dir.path().join("ctx");
    symlink(&outside, ctx.join(".npmrc")).unwrap();
    symlink("/dev/zero", ctx.join(".netrc")).unwrap();
    mkfifo(&ctx.join(".pypirc"));
    fs::create_dir(ctx.join("sub")).unwrap();
    mkfifo(&ctx.join("sub/.yarnrc.yml"));
    for args in [
        &["check", "ctx"][..],
        &["check", "ctx", "--full"],
        &["analyze", "ctx", "--format", "json"],
    ] {
        let out = run(dir.path(), args);
        let all = text(&out);
        assert!(!all.contains("secrets/npmrc"), "{args:?}: {all}");
        assert!(!all.contains("CANARY"), "{args:?}: {all}");
        assert!(
            matches!(out.status.code(), Some(0)),
            "{args:?}: {:?}\n{all}",
            out.status
        );
    }
    // A regular file with a token is still found, even past other text.
    fs::remove_file(ctx.join(".npmrc")).unwrap();
    fs::write(
        ctx.join(".npmrc"),
        format!("{}\n//registry.npmjs.org/:_authToken=x\n", "#".repeat(1000)),
    )
    .unwrap();
    let out = run(dir.path(), &["check", "ctx"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("secrets/npmrc"), "{}", text(&out));
}
