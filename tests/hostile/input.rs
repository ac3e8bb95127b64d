//! Untrusted input read through `src/input.rs`: a committed
//! `reggie-build.toml` names nothing outside the repository, is itself no
//! link out or special file, and the files the user names (`--secret
//! src=`, `--baseline`) are never a FIFO, a device or an unbounded read.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use super::{mkfifo, run, stderr, text};

const CANARY: &str = "environ-canary-5678";

/// Runs with a canary in the environment (so that reading
/// `/proc/self/environ` would show).
fn run_canary(dir: &Path, args: &[&str]) -> std::process::Output {
    let bin = std::env::var_os("REGGIE_TEST_BIN")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_reggie-build").into());
    std::process::Command::new(bin)
        .current_dir(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .env("ZZZZ_TOKEN", CANARY)
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

/// A repository with `app/Dockerfile` and a config holding `image`.
fn config_repo(image: &str) -> tempfile::TempDir {
    let top = tempfile::tempdir().unwrap();
    let repo = top.path().join("repo");
    fs::create_dir_all(repo.join(".git")).unwrap();
    fs::create_dir_all(repo.join("app")).unwrap();
    fs::write(repo.join("app/Dockerfile"), "FROM scratch\nCOPY . /\n").unwrap();
    fs::create_dir_all(top.path().join("outside")).unwrap();
    fs::write(
        top.path().join("outside/Dockerfile"),
        format!("FROM scratch\nRUN {CANARY}\n"),
    )
    .unwrap();
    fs::write(
        repo.join("reggie-build.toml"),
        format!("# images\n\n[[image]]\nname = \"api\"\n{image}\n"),
    )
    .unwrap();
    top
}

/// An absolute path, a `..` out of the repository and a link out of it:
/// each is an error naming the key and the config's line, and nothing of
/// what it points at is read or printed.
#[test]
fn config_paths_stay_in_the_repository() {
    let cases = [
        (
            "dockerfile = \"/proc/self/environ\"",
            "dockerfile",
            "absolute path",
        ),
        ("context = \"/etc\"", "context", "absolute path"),
        (
            "dockerfile = \"app/../../outside/Dockerfile\"",
            "dockerfile",
            "with `..`",
        ),
        ("context = \"../outside\"", "context", "with `..`"),
        (
            "dockerfile = \"linked/Dockerfile\"",
            "dockerfile",
            "through a symbolic link",
        ),
        ("context = \"linked\"", "context", "through a symbolic link"),
    ];
    for (line, key, why) in cases {
        let image = if key == "context" {
            line.to_string()
        } else {
            format!("context = \"app\"\n{line}")
        };
        let top = config_repo(&image);
        let repo = top.path().join("repo");
        symlink("../outside", repo.join("linked")).unwrap();
        let toml = fs::read_to_string(repo.join("reggie-build.toml")).unwrap();
        let at = toml.lines().position(|l| l == line).unwrap() + 1;
        for args in [&["check"][..], &["analyze"], &["digest"]] {
            let out = run_canary(&repo, args);
            let err = stderr(&out);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{line} {args:?}: {}",
                text(&out)
            );
            assert!(
                !text(&out).contains(CANARY),
                "{line} {args:?}: {}",
                text(&out)
            );
            assert!(
                err.contains(&format!("reggie-build.toml:{at}:")),
                "{line}: {err}"
            );
            assert!(err.contains(&format!("`{key}")), "{line}: {err}");
            assert!(err.contains(why), "{line}: {err}");
            assert!(err.contains("inside"), "{line}: {err}");
        }
    }
}

/// A `reggie-build.toml` that is a link out of the repository, or a
/// special file, is an error (never read, never skipped for a parent's).
#[test]
fn a_config_that_is_a_link_out_or_a_device_is_refused() {
    for (target, why) in [
        ("/dev/zero", "leads out of"),
        ("../outside/reggie-build.toml", "leads out of"),
    ] {
        let top = config_repo("context = \"app\"");
        let repo = top.path().join("repo");
        fs::write(
            top.path().join("outside/reggie-build.toml"),
            format!("[[image]]\nname = \"{CANARY}\"\n"),
        )
        .unwrap();
        fs::remove_file(repo.join("reggie-build.toml")).unwrap();
        symlink(target, repo.join("reggie-build.toml")).unwrap();
        let out = run_canary(&repo, &["check"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{target}: {}", text(&out));
        assert!(err.contains("reggie-build.toml"), "{target}: {err}");
        assert!(err.contains(why), "{target}: {err}");
        assert!(!text(&out).contains(CANARY), "{target}: {}", text(&out));
    }
    // A FIFO in its place: refused at once, not waited on.
    let top = config_repo("context = \"app\"");
    let repo = top.path().join("repo");
    fs::remove_file(repo.join("reggie-build.toml")).unwrap();
    mkfifo(&repo.join("reggie-build.toml"));
    let out = run(&repo, &["check"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(stderr(&out).contains("a FIFO"), "{}", stderr(&out));
    // A link to another file inside the repository is followed (paths
    // stay relative to the link's directory).
    let top = config_repo("context = \"app\"");
    let repo = top.path().join("repo");
    fs::rename(repo.join("reggie-build.toml"), repo.join("app/real.toml")).unwrap();
    fs::write(
        repo.join("app/real.toml"),
        "[[image]]\nname = \"api\"\ncontext = \"app\"\n",
    )
    .unwrap();
    symlink("app/real.toml", repo.join("reggie-build.toml")).unwrap();
    let out = run(&repo, &["check"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

/// `--secret src=`: a FIFO, a device and a file over BuildKit's 500 KiB
/// limit are refused before any build, promptly; a committed link out of
/// the repository is not followed; a file outside the repository that
/// the user names is still read (the error is the daemon's, later).
#[test]
fn secret_sources_are_bounded_regular_files() {
    let top = config_repo("context = \"app\"");
    let repo = top.path().join("repo");
    mkfifo(&repo.join("fifo"));
    fs::write(repo.join("big"), vec![b'x'; 500 * 1024 + 1]).unwrap();
    symlink("/proc/self/environ", repo.join("app/token")).unwrap();
    let cases = [
        ("fifo", "a FIFO"),
        ("/dev/zero", "a character device"),
        ("big", "larger than 500 KiB"),
        ("app/token", "leads out of"),
    ];
    for (src, why) in cases {
        let secret = format!("id=tok,src={src}");
        let out = run(&repo, &["image", "app", "--secret", &secret]);
        let err = stderr(&out);
        assert_ne!(out.status.code(), Some(0), "{src}: {}", text(&out));
        assert!(err.contains("--secret id=tok"), "{src}: {err}");
        assert!(err.contains(why), "{src}: {err}");
    }
}

/// `check --baseline` reads a report: never a device or FIFO, bounded.
#[test]
fn baseline_is_a_bounded_regular_file() {
    let top = config_repo("context = \"app\"");
    let repo = top.path().join("repo");
    mkfifo(&repo.join("fifo.json"));
    for (file, why) in [("/dev/zero", "a character device"), ("fifo.json", "a FIFO")] {
        let out = run(&repo, &["check", "--baseline", file]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{file}: {}", text(&out));
        assert!(err.contains("baseline"), "{file}: {err}");
        assert!(err.contains(why), "{file}: {err}");
    }
}
