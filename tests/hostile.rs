//! Hostile repositories: links out of the context, special files, odd
//! names. Nothing outside the context is read or printed, nothing blocks,
//! nothing panics.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

// The second round of hostile repositories (issue 23), one module per
// surface.
#[path = "hostile/cache.rs"]
mod cache;
#[path = "hostile/git.rs"]
mod git;
#[path = "hostile/input.rs"]
mod input;

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
    if unsafe { libc::geteuid() } == 0 {
        // A device node in the context itself, with /dev/zero's numbers.
        let c =
            std::ffi::CString::new(ctx.join("sub/.npmrc").into_os_string().into_encoded_bytes())
                .unwrap();
        assert_eq!(
            unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o644, libc::makedev(1, 5)) },
            0
        );
    }
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

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts a failed run's message is short, escaped and quotes none of
/// `secret`.
fn short_error(out: &Output, secret: &str) -> String {
    let err = stderr(out);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{err}\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(err.len() < 1500, "{} bytes: {err}", err.len());
    assert!(!err.contains(secret), "{err}");
    assert!(
        !err.contains(|c: char| c.is_control() && c != '\n'),
        "{err:?}"
    );
    err
}

/// Parse errors quote a short escaped excerpt, never a whole line: a
/// Dockerfile linked to /proc/self/environ does not print the environment.
#[test]
fn parse_errors_quote_short_escaped_excerpts() {
    let dir = repo();
    let ctx = dir.path().join("ctx");
    fs::remove_file(ctx.join("Dockerfile")).unwrap();
    symlink("/proc/self/environ", ctx.join("Dockerfile")).unwrap();
    symlink("/proc/self/environ", dir.path().join("env-link")).unwrap();
    // The environment is sorted by name: the canary comes after the padding.
    let environ_run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_reggie-build"))
            .current_dir(dir.path())
            .args(args)
            .env("AAAA_PAD", "p".repeat(300))
            .env("ZZZZ_TOKEN", "environ-canary-1234")
            .output()
            .unwrap()
    };
    // Inside the context, a link out of it is not followed (Docker
    // resolves it inside the context)...
    let err = short_error(&environ_run(&["analyze", "ctx"]), "environ-canary-1234");
    assert!(
        err.contains("cannot read the Dockerfile: ctx/Dockerfile leads out of ctx"),
        "{err}"
    );
    // ... and one named with -f is read but quoted only in a short excerpt.
    let out = environ_run(&["analyze", "ctx", "-f", "env-link"]);
    let err = short_error(&out, "environ-canary-1234");
    assert!(err.contains("env-link:1"), "{err}");

    let secret = "SECRET-CANARY";
    let cases: Vec<(&str, Vec<u8>)> = vec![
        // A long first word, control characters in it.
        (
            "Dockerfile",
            format!("\x1b]0;x\x07\x1b[31m{}{secret}\n", "A".repeat(200_000)).into_bytes(),
        ),
        (
            "Dockerfile",
            format!("FROM a AS @{}{secret}\n", "b".repeat(100_000)).into_bytes(),
        ),
        (
            "Dockerfile",
            format!("FROM a\nENV {}{secret}\n", "k".repeat(100_000)).into_bytes(),
        ),
        (
            "Dockerfile",
            format!("FROM a\nCOPY ${{X:?{}{secret}}} /\n", "m".repeat(100_000)).into_bytes(),
        ),
        (
            "Dockerfile",
            format!("FROM ${{{}{secret}\n", "v".repeat(100_000)).into_bytes(),
        ),
        (
            ".dockerignore",
            format!("[{}\x1b[2J{secret}\n", "z".repeat(60_000)).into_bytes(),
        ),
    ];
    for (name, body) in cases {
        let dir = repo();
        let ctx = dir.path().join("ctx");
        fs::write(ctx.join(name), body).unwrap();
        let out = run(dir.path(), &["analyze", "ctx"]);
        let err = short_error(&out, secret);
        assert!(err.contains(&format!("ctx/{name}:")), "{err}");
    }

    // The config file.
    for body in [
        format!(
            "[[image]]\nname = \"a\"\nbudget = {{ max_size = \"1 {}{secret}\" }}\n",
            "x".repeat(100_000)
        ),
        format!(
            "[[image]]\nname = \"a\"\ntags = [\"{{{}{secret}}}\"]\n",
            "t".repeat(100_000)
        ),
        format!("[[image]]\nname = 5{}{secret}\n", "n".repeat(100_000)),
        format!(
            "[[image]]\nname = \"\x1b[31m{}{secret}\"\n[[image]]\nname = \"\x1b[31m{}{secret}\"\n",
            "d".repeat(100_000),
            "d".repeat(100_000)
        ),
    ] {
        let dir = repo();
        fs::write(dir.path().join("reggie-build.toml"), body).unwrap();
        let out = run(dir.path(), &["check"]);
        let err = short_error(&out, secret);
        assert!(err.contains("reggie-build.toml:"), "{err}");
    }
}

/// A cause already in the message is not printed again.
#[test]
fn error_causes_are_not_repeated() {
    let dir = repo();
    let out = run(dir.path(), &["check", "--config", "missing.toml"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.matches("does not exist").count(), 1, "{err}");
}

/// `reggie-build.toml` is looked for up to the repository root only: a
/// file planted in a shared parent directory is never taken, and a file
/// from a parent directory is named on stderr.
#[test]
fn config_discovery_stops_at_the_repository_root() {
    let top = tempfile::tempdir().unwrap();
    fs::write(
        top.path().join("reggie-build.toml"),
        "[[image]]\nname = \"planted\"\ncontext = \"/etc\"\ndockerfile = \"/etc/hostname\"\n",
    )
    .unwrap();
    let repo = top.path().join("repo");
    fs::create_dir_all(repo.join(".git")).unwrap();
    fs::create_dir_all(repo.join("sub")).unwrap();
    fs::write(repo.join("sub/Dockerfile"), "FROM scratch\n").unwrap();
    for dir in [repo.clone(), repo.join("sub")] {
        let out = run(&dir, &["check"]);
        let all = text(&out);
        assert!(!all.contains("planted"), "{all}");
        assert!(!all.contains("/etc"), "{all}");
    }
    // Outside a repository, only the current directory.
    fs::remove_dir(repo.join(".git")).unwrap();
    let out = run(&repo.join("sub"), &["check"]);
    assert!(!text(&out).contains("planted"), "{}", text(&out));
    // The repository's own file, found from a subdirectory, is named.
    fs::create_dir(repo.join(".git")).unwrap();
    fs::write(
        repo.join("reggie-build.toml"),
        "[[image]]\nname = \"own\"\ncontext = \"sub\"\n",
    )
    .unwrap();
    let out = run(&repo.join("sub"), &["check"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("own"), "{}", text(&out));
    let canonical = fs::canonicalize(repo.join("reggie-build.toml")).unwrap();
    assert!(
        err.contains(&format!("note: using config {}", canonical.display())),
        "{err}"
    );
    // From the directory holding it: no note.
    let out = run(&repo, &["check"]);
    assert!(!stderr(&out).contains("note:"), "{}", stderr(&out));
}

/// Whether `s` holds a character that would act on a terminal or a log.
fn has_raw_control(s: &str) -> bool {
    s.contains(|c: char| {
        (c.is_control() && c != '\n')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    })
}

/// Names with escape sequences and newlines are escaped in every human,
/// markdown and github output: nothing reaches the terminal as it is, and
/// no line of a name starts a workflow command.
#[test]
fn names_are_escaped_in_reports() {
    let dir = repo();
    let ctx = dir.path().join("ctx");
    let evil_dir = ctx.join("d\n::error::pwned-dir");
    fs::create_dir(&evil_dir).unwrap();
    fs::write(
        evil_dir.join("Dockerfile"),
        "FROM scratch\nCOPY missing\x1b[2J\x1b]0;title\x07 /x\nCOPY nowhere /y\n",
    )
    .unwrap();
    for name in [
        "evil\x1b[31m.red\x1b[0m",
        "line\n::error file=x::pwned-name.txt",
        "bidi\u{202e}txt.exe",
        "cr\rhidden.txt",
    ] {
        fs::write(ctx.join(name), vec![b'x'; 50_000]).unwrap();
    }
    fs::write(
        ctx.join(".npmrc\n::error::pwned-secret"),
        "//registry/:_authToken=x",
    )
    .unwrap();
    let df = "ctx/d\n::error::pwned-dir/Dockerfile";
    let runs: Vec<Vec<&str>> = vec![
        vec!["analyze", "ctx", "-f", df],
        vec!["analyze", "ctx", "-f", df, "--format", "markdown"],
        vec!["analyze", "ctx", "-f", df, "--format", "github"],
        vec!["check", "ctx", "-f", df, "--full"],
        vec!["check", "ctx", "-f", df, "--full", "--format", "markdown"],
        vec!["check", "ctx", "-f", df, "--full", "--format", "github"],
        vec![
            "explain",
            "ctx",
            "evil\x1b[31m.red\x1b[0m",
            "line\n::error::x",
        ],
        vec!["discover", "."],
    ];
    for args in runs {
        let out = run(dir.path(), &args);
        assert!(
            matches!(out.status.code(), Some(0..=1)),
            "{args:?}: {}",
            text(&out)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let all = text(&out);
        assert!(!has_raw_control(&all), "{args:?}: {all:?}");
        for line in all.lines() {
            let line = line.trim_start();
            assert!(!line.starts_with("::error::pwned"), "{args:?}: {line:?}");
            assert!(!line.starts_with("::error file=x"), "{args:?}: {line:?}");
        }
        if args.contains(&"github") {
            for line in stdout.lines() {
                assert!(
                    line.starts_with("::error ")
                        || line.starts_with("::warning ")
                        || line.starts_with("::notice "),
                    "{args:?}: {line:?}"
                );
            }
        }
    }
}

/// A context of `mb` MB of incompressible bytes.
fn big_context(mb: usize) -> tempfile::TempDir {
    let dir = repo();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let data: Vec<u8> = (0..mb * 1_000_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    fs::write(dir.path().join("ctx/data.bin"), data).unwrap();
    dir
}

/// Every write error surfaces with a message and a non-zero exit, gzip's
/// included (it used to pass for a closed stdout and exit 0).
#[test]
fn context_write_errors_fail() {
    let dir = big_context(5);
    let full = || {
        fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap()
    };
    for (args, stdout_full) in [
        (&["context", "ctx", "-o", "/dev/full"][..], false),
        (
            &["context", "ctx", "-o", "/dev/full", "--compress", "gzip"],
            false,
        ),
        (&["context", "ctx", "-o", "-"], true),
        (&["context", "ctx", "-o", "-", "--compress", "gzip"], true),
    ] {
        let mut cmd = std::process::Command::new(
            std::env::var_os("REGGIE_TEST_BIN")
                .unwrap_or_else(|| env!("CARGO_BIN_EXE_reggie-build").into()),
        );
        cmd.current_dir(dir.path()).args(args);
        if stdout_full {
            cmd.stdout(full());
        }
        let out = cmd.output().unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("No space left on device"), "{args:?}: {err}");
    }
    // A closed stdout cut the archive: exit 141 (SIGPIPE's code), silently.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_reggie-build"))
        .current_dir(dir.path())
        .args(["context", "ctx", "-o", "-", "--compress", "gzip"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(141), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
}

fn bin_path() -> std::ffi::OsString {
    std::env::var_os("REGGIE_TEST_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_reggie-build").into())
}

/// Issue 23 item 12: `context -o - --digest | head -c 10` cut the archive:
/// the run fails (141, as a process SIGPIPE killed) and prints no digest
/// of what was cut. Other commands cut by their reader fail the same way.
#[test]
fn a_cut_stdout_is_a_failure() {
    use std::io::Read;
    let dir = big_context(2);
    for args in [
        &["context", "ctx", "-o", "-", "--digest"][..],
        &[
            "context",
            "ctx",
            "-o",
            "-",
            "--compress",
            "gzip",
            "--digest",
        ],
        &["completions", "bash"],
    ] {
        let mut child = std::process::Command::new(bin_path())
            .current_dir(dir.path())
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let mut head = [0u8; 10];
        stdout.read_exact(&mut head).unwrap();
        drop(stdout);
        let out = child.wait_with_output().unwrap();
        let err = stderr(&out);
        // The completion script is smaller than a pipe's buffer: written
        // whole before the reader left, it is no failure anyone can see.
        if args[0] == "completions" {
            assert!(
                matches!(out.status.code(), Some(0 | 141)),
                "{args:?}: {err}"
            );
            continue;
        }
        assert_eq!(out.status.code(), Some(141), "{args:?}: {err}");
        assert!(!err.contains("sha256:"), "{args:?}: {err}");
    }
}

/// Issue 23 item 12: a full stdout is an error with a message and exit 2,
/// never a panic (exit 101), in every command that prints to stdout.
#[test]
fn a_full_stdout_never_panics() {
    let dir = repo();
    fs::write(dir.path().join("ctx/a.txt"), "a\n").unwrap();
    for args in [
        &["completions", "bash"][..],
        &["completions", "zsh"],
        &["ls", "ctx"],
        &["explain", "ctx", "a.txt"],
        &["analyze", "ctx"],
        &["analyze", "ctx", "--format", "json"],
        &["check", "ctx"],
        &["digest", "ctx"],
        &["discover", "."],
        &["context", "ctx", "-o", "-", "--digest"],
        &["--help"],
        &["analyze", "--help"],
        &["--version"],
    ] {
        let full = fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let out = std::process::Command::new(bin_path())
            .current_dir(dir.path())
            .args(args)
            .stdout(full)
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(err.contains("No space left on device"), "{args:?}: {err}");
    }
}

/// Issue 23 item 12: a COPY source longer than an ignore file's longest
/// line (64 KiB) made `check` and `analyze` fail on the suggested
/// `Dockerfile.dockerignore`, a file that does not exist. The source is
/// reported as missing instead.
#[test]
fn a_copy_source_longer_than_an_ignore_line_is_just_missing() {
    let dir = repo();
    let ctx = dir.path().join("ctx");
    fs::create_dir(ctx.join("app")).unwrap();
    fs::write(ctx.join("app/a"), "a\n").unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM scratch\nCOPY app /app\nCOPY {} /x\n",
            "a".repeat(70_000)
        ),
    )
    .unwrap();
    for args in [&["check", "ctx"][..], &["analyze", "ctx"]] {
        let out = run(dir.path(), args);
        let all = text(&out);
        assert!(!all.contains("dockerignore:"), "{args:?}: {all}");
        assert!(all.contains("copy/source-missing"), "{args:?}: {all}");
        let code = if args[0] == "check" { 1 } else { 0 };
        assert_eq!(out.status.code(), Some(code), "{args:?}: {all}");
    }
}

/// `context -o FILE` inside the context archives neither the output nor
/// its temporary file: the same digest and listing on every run.
#[test]
fn context_output_inside_the_context_is_not_archived() {
    let dir = big_context(1);
    let mut digests = Vec::new();
    for _ in 0..3 {
        let out = run(
            dir.path(),
            &["context", "ctx", "-o", "ctx/out.tar", "--digest"],
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        digests.push(String::from_utf8_lossy(&out.stdout).into_owned());
        let mut archive =
            tar::Archive::new(fs::File::open(dir.path().join("ctx/out.tar")).unwrap());
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["Dockerfile", "data.bin"], "{names:?}");
    }
    assert!(digests.iter().all(|d| *d == digests[0]), "{digests:?}");
    // Nothing left beside it.
    let left: Vec<_> = fs::read_dir(dir.path().join("ctx"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 3, "{left:?}");
}

/// SIGINT or SIGTERM while `context -o FILE` writes removes the temporary
/// file and exits 130 or 143.
#[test]
fn context_interrupted_removes_its_temporary_file() {
    let dir = repo();
    // Sparse: gzip of 4 GB of zeros takes a while in a debug build.
    fs::File::create(dir.path().join("ctx/zeros"))
        .unwrap()
        .set_len(4 << 30)
        .unwrap();
    for (sig, code) in [(libc::SIGTERM, 143), (libc::SIGINT, 130)] {
        let child = std::process::Command::new(
            std::env::var_os("REGGIE_TEST_BIN")
                .unwrap_or_else(|| env!("CARGO_BIN_EXE_reggie-build").into()),
        )
        .current_dir(dir.path())
        .args(["context", "ctx", "-o", "out.tar.gz", "--compress", "gzip"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
        let temps = || -> Vec<String> {
            fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(".out.tar.gz.tmp"))
                .collect()
        };
        // Wait until it writes.
        let start = Instant::now();
        while temps().is_empty()
            || fs::metadata(dir.path().join(&temps()[0])).map_or(0, |m| m.len()) == 0
        {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "no temporary file"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        unsafe { libc::kill(child.id() as libc::pid_t, sig) };
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(code),
            "signal {sig}: {:?}",
            out.status
        );
        assert_eq!(temps(), Vec::<String>::new(), "signal {sig}");
        assert!(!dir.path().join("out.tar.gz").exists());
    }
}

/// A context for which analyze suggests an ignore file.
fn ignore_repo() -> tempfile::TempDir {
    let dir = repo();
    let ctx = dir.path().join("ctx");
    fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nCOPY app /app\nCOPY lib /lib\n",
    )
    .unwrap();
    for d in ["app", "lib", "junk"] {
        fs::create_dir(ctx.join(d)).unwrap();
        fs::write(ctx.join(d).join("f"), vec![b'x'; 10_000]).unwrap();
    }
    dir
}

/// `--write-ignore --force` never writes through a link (even a dangling
/// one), keeps the old file's mode, and replaces it whole.
#[test]
fn write_ignore_refuses_links_and_keeps_the_mode() {
    use std::os::unix::fs::PermissionsExt;
    let dir = ignore_repo();
    let ignore = dir.path().join("ctx/Dockerfile.dockerignore");
    let outside = dir.path().join("outside.txt");
    fs::write(&outside, "precious\n").unwrap();
    let inside = dir.path().join("ctx/app/f");
    // Links inside the context are written relative: an absolute one is
    // resolved by BuildKit inside the context, and refused here.
    for (target, why) in [
        (outside.clone(), "leads out of"),
        ("app/f".into(), "is a symbolic link; not writing through it"),
        (
            std::path::PathBuf::from("dangling"),
            "is a symbolic link; not writing through it",
        ),
    ] {
        let _ = fs::remove_file(&ignore);
        symlink(&target, &ignore).unwrap();
        let out = run(dir.path(), &["analyze", "ctx", "--write-ignore", "--force"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(why), "{err}");
        assert!(fs::symlink_metadata(&ignore)
            .unwrap()
            .file_type()
            .is_symlink());
    }
    assert_eq!(fs::read_to_string(&outside).unwrap(), "precious\n");
    assert_eq!(fs::read(&inside).unwrap(), vec![b'x'; 10_000]);
    assert!(!dir.path().join("ctx/dangling").exists());

    fs::remove_file(&ignore).unwrap();
    fs::write(&ignore, "old\n").unwrap();
    fs::set_permissions(&ignore, fs::Permissions::from_mode(0o640)).unwrap();
    let out = run(dir.path(), &["analyze", "ctx", "--write-ignore"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(stderr(&out).contains("pass --force"), "{}", text(&out));
    let out = run(dir.path(), &["analyze", "ctx", "--write-ignore", "--force"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let written = fs::read_to_string(&ignore).unwrap();
    assert!(written.contains("!app"), "{written}");
    let mode = fs::metadata(&ignore).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
    let names: Vec<_> = fs::read_dir(dir.path().join("ctx"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(names.is_empty(), "{names:?}");
}

/// `ls -0` separates names with NUL bytes, so names with newlines stay
/// whole; without it each name is one line, raw for pipes except a name
/// that would break its line (escaped, as on a terminal).
#[test]
fn ls_null_separates_names_with_newlines() {
    let dir = repo();
    let ctx = dir.path().join("ctx");
    fs::write(ctx.join("a\nb"), "x").unwrap();
    fs::write(ctx.join("c"), "x").unwrap();
    for flag in ["-0", "--null"] {
        let out = run(dir.path(), &["ls", flag, "ctx"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert_eq!(out.stdout, b"Dockerfile\0a\nb\0c\0");
    }
    let out = run(dir.path(), &["ls", "ctx"]);
    assert_eq!(out.stdout, b"Dockerfile\na\\nb\nc\n");
    let out = run(dir.path(), &["ls", "--help"]);
    assert!(text(&out).contains("-0, --null"), "{}", text(&out));
}

/// A COPY through a symlinked directory is judged where the link leads:
/// nothing excludes it, so it is no "excluded, add `!path`" error; when
/// the target is excluded, the finding names it.
#[test]
fn copy_through_a_symlinked_directory() {
    let dir = repo();
    let ctx = dir.path().join("ctx");
    fs::create_dir(ctx.join("real")).unwrap();
    fs::write(ctx.join("real/f"), "hi").unwrap();
    symlink("real", ctx.join("link")).unwrap();
    fs::write(ctx.join("Dockerfile"), "FROM scratch\nCOPY link/f /f\n").unwrap();
    for builder in ["buildkit", "classic"] {
        let out = run(dir.path(), &["check", "ctx", "--builder", builder]);
        assert_eq!(out.status.code(), Some(0), "{builder}: {}", text(&out));
        assert!(!text(&out).contains("source-excluded"), "{}", text(&out));
    }
    fs::write(ctx.join(".dockerignore"), "real\n").unwrap();
    let out = run(dir.path(), &["check", "ctx"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains("`link/f` (through the symlink `link`, that is `real/f`) is excluded by ctx/.dockerignore:1 `real`"),
        "{all}"
    );
    assert!(all.contains("Add `!real/f`"), "{all}");
}

/// `--write-ignore` on `COPY app /app` says the fix is the narrower
/// context, not that the build reads the whole context.
#[test]
fn write_ignore_for_a_whole_subdirectory_names_the_context() {
    let dir = repo();
    let ctx = dir.path().join("ctx");
    fs::write(ctx.join("Dockerfile"), "FROM scratch\nCOPY app /app\n").unwrap();
    fs::create_dir(ctx.join("app")).unwrap();
    fs::write(ctx.join("app/f"), "x").unwrap();
    fs::create_dir(ctx.join("junk")).unwrap();
    fs::write(ctx.join("junk/f"), vec![b'x'; 10_000]).unwrap();
    let out = run(dir.path(), &["analyze", "ctx", "--write-ignore"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(!err.contains("reads the whole context"), "{err}");
    assert!(
        err.contains("reads all of the narrowest context, `app`; use it as the context instead: docker build -f ctx/Dockerfile ctx/app"),
        "{err}"
    );
}

/// xorshift64*: a small deterministic generator, seeded per case.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Names a hostile tree uses: plain, dotted, rule-triggering, and odd
/// (newline, escape sequences, invalid UTF-8, spaces, globs).
fn random_name(rng: &mut Rng) -> Vec<u8> {
    let names: &[&[u8]] = &[
        b"a",
        b"src",
        b"node_modules",
        b".npmrc",
        b".netrc",
        b".env",
        b"app.py",
        b"x.pyc",
        b"__pycache__",
        b".dockerignore",
        b"line\nbreak",
        b"\x1b[31mred\x1b[0m",
        b"caf\xe9",
        b"sp ace",
        b"*glob?",
        b"::error::x",
        b"  ::add-mask::x",
        b"##[error]x",
        b"bidi\xe2\x80\xae",
        b"%0A",
        b"-dash",
    ];
    let mut name = rng.pick(names).to_vec();
    if rng.chance(50) {
        name.extend_from_slice(format!("{}", rng.below(100)).as_bytes());
    }
    name
}

fn os_path(base: &Path, rel: &[u8]) -> std::path::PathBuf {
    use std::os::unix::ffi::OsStrExt;
    base.join(std::ffi::OsStr::from_bytes(rel))
}

/// Builds a random hostile tree in `ctx`; returns the paths made (for
/// COPY lines and `explain`).
fn hostile_tree(rng: &mut Rng, ctx: &Path, outside: &Path) -> Vec<Vec<u8>> {
    let mut dirs: Vec<Vec<u8>> = vec![Vec::new()];
    let mut made: Vec<Vec<u8>> = Vec::new();
    let link_targets: Vec<std::path::PathBuf> = vec![
        outside.join("fifo"),
        outside.join("canary.txt"),
        outside.to_path_buf(),
        "/dev/zero".into(),
        "/dev/urandom".into(),
        "/proc/self/environ".into(),
        "../../../../../../..".into(),
        "..".into(),
        "dangling".into(),
        "self".into(),
    ];
    for _ in 0..rng.below(40) + 5 {
        let parent = rng.pick(&dirs).clone();
        let mut rel = parent.clone();
        if !rel.is_empty() {
            rel.push(b'/');
        }
        rel.extend_from_slice(&random_name(rng));
        let path = os_path(ctx, &rel);
        if fs::symlink_metadata(&path).is_ok() {
            continue;
        }
        let made_ok = match rng.below(10) {
            0..=2 => {
                let len = rng.below(3000);
                fs::write(&path, vec![b'x'; len]).is_ok()
            }
            3 | 4 => {
                let ok = fs::create_dir(&path).is_ok();
                if ok {
                    dirs.push(rel.clone());
                }
                ok
            }
            5..=7 => {
                let target = rng.pick(&link_targets).clone();
                symlink(&target, &path).is_ok()
            }
            8 => {
                let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
                unsafe { libc::mkfifo(c.as_ptr(), 0o644) == 0 }
            }
            // A character device (/dev/zero's numbers) where allowed.
            _ if rng.chance(50) && unsafe { libc::geteuid() } == 0 => {
                let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
                unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o644, libc::makedev(1, 5)) == 0 }
            }
            _ => std::os::unix::net::UnixListener::bind(&path).is_ok(),
        };
        if made_ok {
            made.push(rel);
        }
    }
    // Sometimes a chain deeper than the walk keeps directories open.
    if rng.chance(20) {
        let mut rel = b"deep".to_vec();
        for i in 0..70 {
            rel.extend_from_slice(format!("/d{i}").as_bytes());
        }
        fs::create_dir_all(os_path(ctx, &rel)).unwrap();
        symlink(outside.join("fifo"), os_path(ctx, &rel).join(".npmrc")).unwrap();
        made.push(rel);
    }
    made
}

/// A real git repository at `repo` with one commit, then configured as a
/// hostile checkout would be: a token in `.git/config` (what a CI checkout
/// leaves), an fsmonitor, hooks, a clean/smudge filter, a diff driver with
/// textconv and a pager, all naming a script that creates the returned
/// path when run.
fn hostile_git_repo(repo: &Path, outside: &Path) -> std::path::PathBuf {
    let ran = outside.join("RAN");
    let script = outside.join("run.sh");
    fs::write(
        &script,
        format!("#!/bin/sh\ntouch '{}'\ncat\n", ran.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .current_dir(repo)
            .args(args)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", repo)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {}", text(&out));
    };
    git(&["init", "-q", "-b", "main"]);
    fs::write(repo.join("README"), "r\n").unwrap();
    fs::write(repo.join(".gitattributes"), "* filter=evil diff=evil\n").unwrap();
    git(&["add", "-A"]);
    git(&[
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@example.com",
        "commit",
        "-q",
        "-m",
        "base",
    ]);
    let s = script.display();
    let mut config = fs::read_to_string(repo.join(".git/config")).unwrap();
    config.push_str(&format!(
        "[http \"https://github.com/\"]\n\textraheader = AUTHORIZATION: basic {TOKEN}\n\
         [core]\n\tfsmonitor = {s}\n\thooksPath = {o}\n\tpager = {s}\n\tsshCommand = {s}\n\
         [filter \"evil\"]\n\tclean = {s}\n\tsmudge = {s}\n\tprocess = {s}\n\trequired = true\n\
         [diff \"evil\"]\n\tcommand = {s}\n\ttextconv = {s}\n\
         [remote \"origin\"]\n\turl = https://example.com/the-real-repository.git\n\tpromisor = true\n\tpartialclonefilter = blob:none\n",
        o = outside.display()
    ));
    fs::write(repo.join(".git/config"), config).unwrap();
    for hook in [
        "post-checkout",
        "pre-commit",
        "post-index-change",
        "reference-transaction",
    ] {
        fs::copy(&script, outside.join(hook)).unwrap();
    }
    ran
}

/// Every command on random hostile trees (links in and out of the
/// context, to /dev/zero and a FIFO, FIFOs, sockets, devices when root,
/// odd names, deep directories): exit 0, 1 or 2 (no panic, no signal), within a time
/// limit (a read of the FIFO outside, which every outward link can reach,
/// would hang), and nothing from outside the context in the output.
#[test]
fn every_command_on_random_hostile_trees() {
    let cases = 30;
    for case in 0..cases {
        let mut rng = Rng::new(case);
        let top = tempfile::tempdir().unwrap();
        let outside = top.path().join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(
            outside.join("canary.txt"),
            "//registry/:_authToken=OUTSIDE-CANARY\n",
        )
        .unwrap();
        mkfifo(&outside.join("fifo"));
        // Planted above the repository: never used.
        fs::write(
            top.path().join("reggie-build.toml"),
            "[[image]]\nname = \"PLANTED-CANARY\"\ncontext = \"outside\"\n",
        )
        .unwrap();
        let repo = top.path().join("repo");
        fs::create_dir_all(&repo).unwrap();
        let ran = hostile_git_repo(&repo, &outside);
        let ctx = repo.join("ctx");
        fs::create_dir(&ctx).unwrap();
        let made = hostile_tree(&mut rng, &ctx, &outside);
        // A bare repository committed in the context, naming a planted
        // remote: never taken for the repository.
        if rng.chance(30) {
            let fake = ctx.join("fake");
            fs::create_dir_all(fake.join("objects")).unwrap();
            fs::create_dir_all(fake.join("refs/heads")).unwrap();
            fs::write(fake.join("HEAD"), "ref: refs/heads/main\n").unwrap();
            fs::write(
                fake.join("config"),
                format!("[core]\n\tbare = true\n\tfsmonitor = {}\n[remote \"origin\"]\n\turl = https://fake-bare.example/x\n", ran.display()),
            )
            .unwrap();
        }
        // An output destination committed as a link out of the repository.
        symlink(&outside, repo.join("out")).unwrap();

        let mut dockerfile = String::from("FROM scratch\n");
        for _ in 0..rng.below(5) {
            let copyable: Vec<&Vec<u8>> = made
                .iter()
                .filter(|p| !p.iter().any(|b| b.is_ascii_whitespace() || *b < 0x20))
                .collect();
            if copyable.is_empty() || rng.chance(15) {
                dockerfile.push_str("COPY . /app\n");
            } else {
                let p: &Vec<u8> = copyable[rng.below(copyable.len())];
                let p = String::from_utf8_lossy(p).into_owned();
                dockerfile.push_str(&format!("COPY {p} /app/\n"));
            }
        }
        let df_path = ctx.join("Dockerfile");
        let _ = fs::remove_file(&df_path);
        match rng.below(8) {
            0 => symlink(outside.join("fifo"), &df_path).unwrap(),
            1 => symlink(outside.join("canary.txt"), &df_path).unwrap(),
            _ => fs::write(&df_path, &dockerfile).unwrap(),
        }
        let ignore = ctx.join(".dockerignore");
        if fs::symlink_metadata(&ignore).is_err() && rng.chance(50) {
            match rng.below(6) {
                0 => symlink(outside.join("fifo"), &ignore).unwrap(),
                1 => mkfifo(&ignore),
                // Into `.git` (the repository is the context's parent: the
                // walk refuses the link; `../.git` as the context below).
                2 => symlink("../.git/config", &ignore).unwrap(),
                3 => {
                    fs::write(&ignore, "  ::error::ignore\n##[error]x\nnode_modules #c\n").unwrap()
                }
                // Many patterns that each need the regex engine: refused
                // past the compiled-size budget, not tens of GB.
                4 => {
                    let many: String = (0..20_000).map(|i| format!("**/[a-z]x{i}\n")).collect();
                    fs::write(&ignore, many).unwrap()
                }
                _ => fs::write(&ignore, "node_modules\n**/*.pyc\n!src\n*glob?\n").unwrap(),
            }
        }

        let explained: Vec<String> = (0..3)
            .filter_map(|_| made.get(rng.below(made.len())))
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect();
        let mut explain = vec!["explain", "ctx"];
        explain.extend(explained.iter().map(String::as_str));
        if explain.len() == 2 {
            explain.push("Dockerfile");
        }
        let commands: Vec<Vec<&str>> = vec![
            vec!["ls", "ctx"],
            vec!["ls", "-0", "ctx", "--minimal"],
            vec!["ls", "ctx", "--builder", "classic"],
            vec!["analyze", "ctx"],
            vec!["analyze", "ctx", "--format", "json"],
            vec!["analyze", "ctx", "--format", "github"],
            vec!["check", "ctx"],
            vec!["check", "ctx", "--full", "--format", "markdown"],
            vec!["check"],
            explain,
            vec!["context", "ctx", "-o", "-"],
            vec!["context", "ctx", "-o", "/dev/null", "--digest"],
            vec!["discover", "."],
            // Git, on a repository whose config and attributes name
            // commands, with the hostile tree untracked (FIFOs included).
            vec!["affected", "--base", "HEAD", "--worktree"],
            vec!["affected", "--base", "HEAD", "--format", "json"],
            vec!["digest", "ctx"],
            // Destinations through the committed `out -> outside` link.
            vec!["context", "ctx", "-o", "out/ctx.tar"],
            vec![
                "analyze",
                "ctx",
                "--format",
                "html",
                "-o",
                "out/report.html",
            ],
            vec!["check", "ctx", "--write-ignore", "out/.dockerignore"],
        ];
        for args in &commands {
            let (out, took) = run_limited(&repo, args, Duration::from_secs(20));
            let all = text(&out);
            assert!(
                matches!(out.status.code(), Some(0..=2)),
                "case {case} {args:?}: {:?} after {took:?}\n{all}",
                out.status
            );
            assert!(!all.contains("panicked"), "case {case} {args:?}: {all}");
            assert!(
                !all.contains("OUTSIDE-CANARY"),
                "case {case} {args:?}: {all}"
            );
            assert!(
                !all.contains("PLANTED-CANARY"),
                "case {case} {args:?}: {all}"
            );
            assert!(!all.contains(TOKEN), "case {case} {args:?}: {all}");
            assert!(
                !ran.exists(),
                "case {case} {args:?}: a command named by the repository's git configuration ran\n{all}"
            );
            for written in ["ctx.tar", "report.html", ".dockerignore"] {
                assert!(
                    !outside.join(written).exists(),
                    "case {case} {args:?}: wrote {written} through the committed link\n{all}"
                );
            }
            // Raw by design: `ls -0` and the archive on stdout.
            let raw = args.contains(&"-0") || args.contains(&"-");
            if !raw {
                for line in all.lines() {
                    let ours = ["::error ", "::warning ", "::notice "]
                        .iter()
                        .any(|p| line.starts_with(p) && args.contains(&"github"));
                    assert!(
                        ours && !line.contains("##[") || !runs_a_workflow_command(line),
                        "case {case} {args:?}: {line:?}"
                    );
                }
            }
        }
    }
}

/// A fake Docker daemon on a unix socket: answers the version handshake,
/// accepts `POST /build` and then never reads the upload.
#[cfg(feature = "image")]
fn stalling_daemon(sock: std::path::PathBuf) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = {
        let std_listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        std_listener.set_nonblocking(true).unwrap();
        std_listener
    };
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::UnixListener::from_std(listener).unwrap();
            loop {
                let Ok((mut conn, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    loop {
                        let mut head = Vec::new();
                        let mut byte = [0u8; 1];
                        while !head.ends_with(b"\r\n\r\n") {
                            match conn.read(&mut byte).await {
                                Ok(1) => head.push(byte[0]),
                                _ => return,
                            }
                        }
                        let head = String::from_utf8_lossy(&head).into_owned();
                        let line = head.lines().next().unwrap_or_default().to_string();
                        if line.starts_with("POST") && line.contains("/build") {
                            // Takes the request, then stops reading.
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                            return;
                        }
                        let (status, body) = if line.contains("/_ping") {
                            ("200 OK", "OK".to_string())
                        } else if line.contains("/version") {
                            (
                                "200 OK",
                                r#"{"ApiVersion":"1.41","MinAPIVersion":"1.12","Version":"20.10.0","Os":"linux","Arch":"amd64"}"#
                                    .to_string(),
                            )
                        } else {
                            ("404 Not Found", r#"{"message":"not found"}"#.to_string())
                        };
                        let response = format!(
                            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nApi-Version: 1.41\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if conn.write_all(response.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
    });
}

/// `image` against a daemon that stops reading mid-upload reports the
/// stall and fails after --idle-timeout, instead of hanging.
#[cfg(feature = "image")]
#[test]
fn image_upload_stall_fails_after_the_idle_timeout() {
    let dir = big_context(12);
    let sock = dir.path().join("fake-docker.sock");
    stalling_daemon(sock.clone());
    let bin = env!("CARGO_BIN_EXE_reggie-build-image");
    let mut cmd = std::process::Command::new(bin);
    cmd.current_dir(dir.path())
        .args([
            "image",
            "ctx",
            "-t",
            "stall:test",
            "--builder",
            "classic",
            "--compress",
            "none",
            "--json",
            "--idle-timeout",
            "2",
        ])
        .env("DOCKER_HOST", format!("unix://{}", sock.display()))
        .env("DOCKER_CONFIG", dir.path())
        .env("HOME", dir.path())
        .env_remove("DOCKER_CONTEXT")
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CERT_PATH")
        .env_remove("REGGIE_IDLE_TIMEOUT")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let start = Instant::now();
    let child = cmd.spawn().unwrap();
    let pid = child.id();
    let watchdog = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(60));
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    });
    let out = child.wait_with_output().unwrap();
    drop(watchdog);
    let took = start.elapsed();
    let all = text(&out);
    assert!(
        out.status.code().is_some(),
        "killed after {took:?} (hung)\n{all}"
    );
    assert_ne!(out.status.code(), Some(0), "{all}");
    assert!(took < Duration::from_secs(30), "{took:?}\n{all}");
    assert!(
        all.contains("the upload stalled: the daemon read nothing"),
        "{all}"
    );
    assert!(all.contains("--idle-timeout"), "{all}");
    // The stall was reported before giving up.
    assert!(all.contains("\"event\":\"warning\""), "{all}");
    assert!(all.contains("the upload is stalled"), "{all}");
}

/// `discover --write --force` does not write through a symlinked
/// `reggie-build.toml` either.
#[test]
fn discover_write_refuses_links() {
    let dir = repo();
    let outside = dir.path().join("outside.toml");
    fs::write(&outside, "precious\n").unwrap();
    let ctx = dir.path().join("ctx");
    symlink(&outside, ctx.join("reggie-build.toml")).unwrap();
    let out = run(&ctx, &["discover", ".", "--write", "--force"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("is a symbolic link; not writing through it"),
        "{err}"
    );
    assert_eq!(fs::read_to_string(&outside).unwrap(), "precious\n");
    fs::remove_file(ctx.join("reggie-build.toml")).unwrap();
    let out = run(&ctx, &["discover", ".", "--write"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(fs::read_to_string(ctx.join("reggie-build.toml"))
        .unwrap()
        .contains("[[image]]"));
}

/// `context -o - > FILE` with FILE inside the context leaves FILE out too.
#[test]
fn context_stdout_file_inside_the_context_is_not_archived() {
    let dir = repo();
    fs::write(dir.path().join("ctx/data"), "x").unwrap();
    let out_path = dir.path().join("ctx/out.tar");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_reggie-build"))
        .current_dir(dir.path())
        .args(["context", "ctx", "-o", "-"])
        .stdout(fs::File::create(&out_path).unwrap())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut archive = tar::Archive::new(fs::File::open(&out_path).unwrap());
    let names: Vec<String> = archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert_eq!(names, ["Dockerfile", "data"]);
}

/// The token a CI checkout leaves in `.git/config`, base64 as GitHub's
/// `http.extraheader` carries it, and a second one in a remote's URL.
const TOKEN: &str = "eC1hY2Nlc3MtdG9rZW46Z2hzX0NBTkFSWTEyMzQ1Njc4OQ";
const URL_TOKEN: &str = "ghs_URLCANARY0123456789abcdefghij";

/// A repository, also the context, whose `.dockerignore` is a link to
/// `.git/config` holding a CI token, with a budget the context exceeds
/// (so `check` reports).
fn token_repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    fs::create_dir(r.join(".git")).unwrap();
    fs::write(
        r.join(".git/config"),
        format!(
            "[core]\n\tbare = false\n[remote \"origin\"]\n\turl = https://x-access-token:{URL_TOKEN}@github.com/o/r.git\n\
             [http \"https://github.com/\"]\n\textraheader = AUTHORIZATION: basic {TOKEN}\n\
             \textraheader = AUTHORIZATION: basic {TOKEN} # an inline comment\n"
        ),
    )
    .unwrap();
    symlink(".git/config", r.join(".dockerignore")).unwrap();
    fs::write(r.join("Dockerfile"), "FROM scratch\nCOPY app /app\n").unwrap();
    fs::create_dir(r.join("app")).unwrap();
    fs::write(r.join("app/main.py"), "print(1)\n").unwrap();
    fs::write(r.join("big.bin"), vec![b'x'; 100_000]).unwrap();
    fs::write(
        r.join("reggie-build.toml"),
        "[[image]]\nname = \"web\"\ncontext = \".\"\nbudget = { max_size = \"1 kB\" }\n",
    )
    .unwrap();
    dir
}

/// Issue 23 item 3: `.dockerignore -> .git/config` must not print the CI
/// token in any output of `analyze` or `check`, nor copy it into the
/// suggested ignore file; the lines are still reported, masked.
#[test]
fn credential_lines_are_never_quoted() {
    let dir = token_repo();
    let r = dir.path();
    let mut runs: Vec<Vec<&str>> = vec![
        vec!["explain", ".", "extraheader = AUTHORIZATION: basic x"],
        vec!["ls", "."],
    ];
    for format in ["human", "json", "sarif", "markdown", "github", "html"] {
        runs.push(vec!["analyze", ".", "--format", format]);
        runs.push(vec!["check", "--full", "--strict", "--format", format]);
    }
    for args in &runs {
        let out = run(r, args);
        let all = text(&out);
        assert!(matches!(out.status.code(), Some(0..=1)), "{args:?}: {all}");
        assert!(!all.contains(TOKEN), "{args:?}: {all}");
        assert!(!all.contains(URL_TOKEN), "{args:?}: {all}");
    }
    // The masked lines are still findings, by line number.
    let out = run(r, &["analyze", "."]);
    let all = text(&out);
    assert!(all.contains(".dockerignore:6"), "{all}");
    assert!(all.contains("looks like a credential"), "{all}");
    // check names the masked inline-comment warning with --strict.
    let out = run(r, &["check", "--strict"]);
    assert!(
        text(&out).contains("looks like a credential"),
        "{}",
        text(&out)
    );

    let out = run(r, &["analyze", ".", "--write-ignore"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let written = fs::read_to_string(r.join("app/.dockerignore")).unwrap();
    assert!(!written.contains(TOKEN), "{written}");
    assert!(!written.contains(URL_TOKEN), "{written}");
    assert!(
        written.contains("# Left out: line 6 of the ignore file looks like a credential"),
        "{written}"
    );
}

/// Whether a line of output would run a workflow command in a GitHub
/// Actions log: `::` after leading whitespace, or `##[` anywhere.
fn runs_a_workflow_command(line: &str) -> bool {
    line.trim_start().starts_with("::") || line.contains("##[")
}

/// Issue 23 item 10: workflow commands in file names, ignore lines and
/// Dockerfile text are neutralised in every command's output (`::` after
/// leading whitespace, `##[` anywhere in a line); JSON and SARIF escape
/// bidi controls and line separators.
#[test]
fn workflow_commands_and_bidi_are_neutralised() {
    let dir = repo();
    let r = dir.path();
    let ctx = r.join("ctx");
    for name in [
        "##[error]name.txt",
        "  ::error::pwned.txt",
        "\t::add-mask::x",
        "bidi\u{202e}txt",
        "ls\u{2028}x",
    ] {
        fs::write(ctx.join(name), vec![b'x'; 10_000]).unwrap();
    }
    fs::write(
        ctx.join(".dockerignore"),
        "  ::error::ignore-line\n##[error]ignored\nnel\u{85}x\nbidi\u{2066}y\n",
    )
    .unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nCOPY ##[error]missing /a\nCOPY \u{202e}missing2 /b\nCOPY \"  ::error::missing3\" /c\n",
    )
    .unwrap();
    fs::write(
        r.join("reggie-build.toml"),
        "[[image]]\nname = \"web\"\ncontext = \"ctx\"\nbudget = { max_size = \"1 kB\" }\n",
    )
    .unwrap();
    let mut runs: Vec<Vec<&str>> = vec![
        vec!["ls", "ctx"],
        vec!["ls", "ctx", "--builder", "classic"],
        vec![
            "explain",
            "ctx",
            "##[error]name.txt",
            "  ::error::pwned.txt",
            "ls\u{2028}x",
        ],
        vec!["discover", "."],
        vec!["digest", "ctx", "--json"],
    ];
    for format in ["human", "json", "sarif", "markdown", "github", "html"] {
        runs.push(vec!["analyze", "ctx", "--format", format]);
        runs.push(vec!["check", "--full", "--strict", "--format", format]);
    }
    for args in &runs {
        let out = run(r, args);
        let all = text(&out);
        assert!(matches!(out.status.code(), Some(0..=2)), "{args:?}: {all}");
        for line in all.lines() {
            let ours = ["::error ", "::warning ", "::notice "]
                .iter()
                .any(|p| line.starts_with(p) && args.contains(&"github"));
            if ours {
                // Our own annotations: the hostile text only in their data.
                assert!(!line.contains("##["), "{args:?}: {line:?}");
                continue;
            }
            assert!(!runs_a_workflow_command(line), "{args:?}: {line:?}");
        }
        let machine = args.contains(&"json") || args.contains(&"sarif") || args.contains(&"--json");
        if machine {
            for c in ['\u{202e}', '\u{2066}', '\u{2028}', '\u{85}'] {
                assert!(!all.contains(c), "{args:?}: {c:?} raw in {all}");
            }
        }
    }
    // `ls --null` still gives every name as it is.
    let out = run(r, &["ls", "-0", "ctx"]);
    assert!(out
        .stdout
        .split(|&b| b == 0)
        .any(|n| n == b"  ::error::pwned.txt"));
}

/// Issue 23 item 4: reports, archives and suggested ignore files are never
/// written through a link the repository holds (`reports -> ~`), from the
/// repository's root or below it; a link above the repository (a user's
/// own: `/tmp -> /private/tmp`, a linked home) is followed.
#[test]
fn outputs_never_go_through_a_committed_link() {
    let top = tempfile::tempdir().unwrap();
    let top = fs::canonicalize(top.path()).unwrap();
    let repo = top.join("repo");
    let outside = top.join("outside");
    fs::create_dir_all(repo.join(".git")).unwrap();
    fs::create_dir_all(repo.join("app")).unwrap();
    fs::create_dir_all(&outside).unwrap();
    fs::write(repo.join("Dockerfile"), "FROM scratch\nCOPY app /app\n").unwrap();
    fs::write(repo.join("app/a"), "a\n").unwrap();
    fs::write(repo.join("big.bin"), vec![b'x'; 10_000]).unwrap();
    fs::write(outside.join("precious"), "precious\n").unwrap();
    fs::write(outside.join("Dockerfile"), "FROM scratch\nCOPY app /app\n").unwrap();
    symlink(&outside, repo.join("reports")).unwrap();
    symlink(&outside, repo.join("app/linked")).unwrap();
    symlink(outside.join("precious"), repo.join("out.tar")).unwrap();
    let before = |d: &Path| {
        let mut v: Vec<_> = fs::read_dir(d)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        v.sort();
        v
    };
    let untouched = before(&outside);
    let app = repo.join("app");
    let cases: Vec<(&Path, Vec<&str>, &str)> = vec![
        (
            &repo,
            vec!["analyze", ".", "-o", "reports/r.html", "--format", "html"],
            "symbolic link inside",
        ),
        (
            &repo,
            vec![
                "analyze",
                ".",
                "-o",
                "reports/sub/r.md",
                "--format",
                "markdown",
            ],
            "symbolic link inside",
        ),
        (
            &repo,
            vec!["check", ".", "-o", "reports/r.json", "--format", "json"],
            "symbolic link inside",
        ),
        (
            &repo,
            vec!["context", ".", "-o", "reports/ctx.tar"],
            "symbolic link inside",
        ),
        (
            &repo,
            vec!["context", ".", "-o", "app/linked/ctx.tar"],
            "symbolic link inside",
        ),
        (
            &repo,
            vec!["context", ".", "-o", "out.tar"],
            "is a symbolic link",
        ),
        (
            &repo,
            vec!["analyze", ".", "-o", "out.tar"],
            "is a symbolic link",
        ),
        // From below the root, and with the path given absolute.
        (
            &app,
            vec!["analyze", "..", "-o", "../reports/r.txt"],
            "symbolic link inside",
        ),
        (
            &app,
            vec!["analyze", "..", "-o", "linked/r.txt"],
            "symbolic link inside",
        ),
    ];
    let absolute = repo.join("reports/abs.txt");
    let absolute = absolute.to_str().unwrap();
    let mut cases = cases;
    cases.push((
        &repo,
        vec!["analyze", ".", "-o", absolute],
        "symbolic link inside",
    ));
    for (cwd, args, says) in &cases {
        let out = run(cwd, args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert_eq!(
            before(&outside),
            untouched,
            "{args:?}: written through the link"
        );
        assert_eq!(
            fs::read_to_string(outside.join("precious")).unwrap(),
            "precious\n"
        );
    }
    // The suggested ignore file beside a Dockerfile reached through a link.
    let out = run(
        &repo,
        &["analyze", ".", "-f", "reports/Dockerfile", "--write-ignore"],
    );
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(before(&outside), untouched, "{}", text(&out));

    // A link above the repository, the user's own: followed.
    let home = top.join("home");
    fs::create_dir(top.join("real-home")).unwrap();
    symlink(top.join("real-home"), &home).unwrap();
    let report = home.join("reports/r.txt");
    let out = run(&repo, &["analyze", ".", "-o", report.to_str().unwrap()]);
    assert!(stderr(&out).contains("No such file"), "{}", text(&out));
    let written = top.join("real-home/reports/r.txt");
    fs::create_dir(top.join("real-home/reports")).unwrap();
    let out = run(&repo, &["analyze", ".", "-o", report.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(fs::read_to_string(&written).unwrap().contains("Sent today"));
    let out = run(
        &repo,
        &["context", ".", "-o", home.join("ctx.tar").to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(top.join("real-home/ctx.tar").is_file());
}
