//! The context commands (`ls`, `explain`, `context`) run as a user runs
//! them, on fixtures and on trees made by the test.

use std::fs;
use std::io::Read;
use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;

fn bin() -> Command {
    Command::cargo_bin("reggie-build").unwrap()
}

fn fixture(rel: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(rel)
}

fn stdout_lines(cmd: &mut Command) -> Vec<String> {
    let out = cmd.assert().success().get_output().stdout.clone();
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn ls_backend_shows_the_root_anchored_mistake() {
    let lines = stdout_lines(bin().arg("ls").arg(fixture("reggie/backend")));
    // `__pycache__` and `*.pyc` only match at the context root, so nested
    // bytecode is still sent...
    assert!(lines.contains(&"app/__pycache__/main.cpython-311.pyc".to_string()));
    // ...while directory patterns at the root work.
    assert!(!lines.iter().any(|l| l.starts_with("venv/")));
    assert!(!lines.iter().any(|l| l.starts_with("tests/")));
    assert!(!lines.contains(&".env".to_string()));
    assert!(!lines.iter().any(|l| l.ends_with(".joblib")));
    assert!(lines.contains(&"app/main.py".to_string()));
    // Sorted by bytes, files only.
    let mut sorted = lines.clone();
    sorted.sort();
    assert_eq!(lines, sorted);
    assert!(!lines.iter().any(|l| l.ends_with('/')));
}

#[test]
fn ls_repo_root_sends_everything() {
    let root = fixture("reggie");
    let lines = stdout_lines(
        bin()
            .arg("ls")
            .arg(&root)
            .arg("-f")
            .arg(root.join("backend/Dockerfile")),
    );
    // No root .dockerignore: node_modules, .next and the venv all go.
    assert!(lines
        .iter()
        .any(|l| l.starts_with("apps/web/node_modules/")));
    assert!(lines.iter().any(|l| l.starts_with("apps/admin/.next/")));
    assert!(lines.iter().any(|l| l.starts_with("backend/venv/")));
    let files = walkdir_count(&root);
    assert_eq!(lines.len(), files);
}

fn walkdir_count(dir: &Path) -> usize {
    let mut n = 0;
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            n += walkdir_count(&e.path());
        } else {
            n += 1;
        }
    }
    n
}

#[test]
fn buildkit_prefers_dockerfile_specific_ignore_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::create_dir_all(d.join("backend")).unwrap();
    fs::write(d.join("backend/Dockerfile"), "FROM scratch\n").unwrap();
    fs::write(d.join("backend/Dockerfile.dockerignore"), "*\n!backend\n").unwrap();
    fs::write(d.join(".dockerignore"), "backend\n").unwrap();
    fs::write(d.join("backend/app.py"), "").unwrap();
    fs::write(d.join("web.js"), "").unwrap();
    let lines = stdout_lines(
        bin()
            .current_dir(d)
            .args(["ls", ".", "-f", "backend/Dockerfile"]),
    );
    assert_eq!(
        lines,
        [
            "backend/Dockerfile",
            "backend/Dockerfile.dockerignore",
            "backend/app.py"
        ]
    );
    // The classic builder reads only the root file, and always sends the
    // Dockerfile and .dockerignore.
    let lines = stdout_lines(bin().current_dir(d).args([
        "ls",
        ".",
        "-f",
        "backend/Dockerfile",
        "--builder",
        "classic",
    ]));
    assert_eq!(lines, [".dockerignore", "backend/Dockerfile", "web.js"]);
}

#[test]
fn errors_are_clear_and_send_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("Dockerfile"), "FROM scratch\n").unwrap();
    fs::write(d.join(".dockerignore"), "ok\n\nsrc/[a-\n").unwrap();
    bin().arg("ls").arg(d).assert().failure().stdout("").stderr(
        predicate::str::contains(".dockerignore:3:").and(predicate::str::contains("src/[a-")),
    );
    fs::write(d.join(".dockerignore"), "!\n").unwrap();
    bin()
        .arg("ls")
        .arg(d)
        .assert()
        .failure()
        .stderr(predicate::str::contains(".dockerignore:1:"));
    bin()
        .args(["ls", "/definitely/not/here"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("/definitely/not/here"));
    bin()
        .arg("ls")
        .arg(d)
        .args(["-f", "nope/Dockerfile"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("nope/Dockerfile"));
}

#[test]
fn explain_reports_file_line_and_pattern() {
    let out = bin()
        .arg("explain")
        .arg(fixture("reggie/backend"))
        .args([
            "venv/pyvenv.cfg",
            "app/__pycache__/main.cpython-311.pyc",
            ".env",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("venv/pyvenv.cfg: excluded by "),
        "{out}"
    );
    assert!(lines[0].contains(".dockerignore:5: venv/"), "{out}");
    assert!(
        lines[1].contains("included") && lines[1].contains("no pattern"),
        "{out}"
    );
    assert!(lines[2].contains(".dockerignore:6: .env"), "{out}");
}

#[test]
fn context_tar_has_docker_headers_and_walk_order() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ctx.tar");
    bin()
        .arg("context")
        .arg(fixture("reggie/backend"))
        .arg("-o")
        .arg(&out)
        .assert()
        .success();
    let mut archive = tar::Archive::new(fs::File::open(&out).unwrap());
    let mut names = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let h = entry.header().clone();
        assert_eq!(h.uid().unwrap(), 0);
        assert_eq!(h.gid().unwrap(), 0);
        assert_eq!(h.username().unwrap(), Some(""));
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        if h.entry_type().is_file() {
            let mut body = Vec::new();
            entry.read_to_end(&mut body).unwrap();
            let on_disk = fs::read(fixture("reggie/backend").join(&name)).unwrap();
            assert_eq!(body, on_disk, "{name}");
        }
        names.push((name, h.entry_type().is_dir()));
    }
    // Directories come before their contents, and files equal `ls`.
    assert!(
        names.iter().any(|(n, d)| n == "app/" && *d) || names.iter().any(|(n, d)| n == "app" && *d)
    );
    let files: Vec<String> = names
        .iter()
        .filter(|(_, d)| !d)
        .map(|(n, _)| n.clone())
        .collect();
    let mut sorted_files = files.clone();
    sorted_files.sort();
    let ls = stdout_lines(bin().arg("ls").arg(fixture("reggie/backend")));
    assert_eq!(sorted_files, ls);
}

#[test]
fn context_digest_ignores_mtimes_but_not_contents() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("Dockerfile"), "FROM scratch\n").unwrap();
    fs::write(d.join("a.txt"), "hello").unwrap();
    let digest = |d: &Path| {
        let out = bin()
            .arg("context")
            .arg(d)
            .args(["-o", "/dev/null", "--digest"])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        String::from_utf8(out).unwrap().trim().to_string()
    };
    let first = digest(d);
    assert!(first.starts_with("sha256:") && first.len() == 71, "{first}");
    let f = fs::File::options()
        .write(true)
        .open(d.join("a.txt"))
        .unwrap();
    f.set_modified(std::time::SystemTime::UNIX_EPOCH).unwrap();
    assert_eq!(digest(d), first);
    fs::write(d.join("a.txt"), "hellp").unwrap();
    assert_ne!(digest(d), first);
}

#[test]
fn context_reproducible_is_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("Dockerfile"), "FROM scratch\n").unwrap();
    fs::create_dir(d.join("sub")).unwrap();
    fs::write(d.join("sub/b"), vec![7u8; 10_000]).unwrap();
    let run = || {
        bin()
            .arg("context")
            .arg(d)
            .args(["-o", "-", "--reproducible", "--compress", "gzip"])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone()
    };
    let a = run();
    fs::File::options()
        .write(true)
        .open(d.join("sub/b"))
        .unwrap()
        .set_modified(std::time::SystemTime::now())
        .unwrap();
    assert_eq!(a, run());
    let mut gz = flate2::read::GzDecoder::new(&a[..]);
    let mut raw = Vec::new();
    gz.read_to_end(&mut raw).unwrap();
    let mut archive = tar::Archive::new(&raw[..]);
    for e in archive.entries().unwrap() {
        assert_eq!(e.unwrap().header().mtime().unwrap(), 0);
    }
}

#[test]
fn long_and_non_utf8_names_round_trip() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("Dockerfile"), "FROM scratch\n").unwrap();
    let deep = d.join("x".repeat(120)).join("y".repeat(120));
    fs::create_dir_all(&deep).unwrap();
    fs::write(deep.join("z".repeat(150)), "deep").unwrap();
    let odd = std::ffi::OsStr::from_bytes(b"caf\xe9.txt");
    fs::write(d.join(odd), "odd").unwrap();
    std::os::unix::fs::symlink("y".repeat(200), d.join("longlink")).unwrap();
    fs::hard_link(d.join("Dockerfile"), d.join("hard")).unwrap();
    let tarball = bin()
        .arg("context")
        .arg(d)
        .args(["-o", "-"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let mut archive = tar::Archive::new(&tarball[..]);
    let mut seen = Vec::new();
    for e in archive.entries().unwrap() {
        let e = e.unwrap();
        let path = e.path_bytes().into_owned();
        let kind = e.header().entry_type();
        let link = e.link_name_bytes().map(|l| l.into_owned());
        seen.push((path, kind, link));
    }
    let long = format!(
        "{}/{}/{}",
        "x".repeat(120),
        "y".repeat(120),
        "z".repeat(150)
    );
    assert!(seen.iter().any(|(p, _, _)| p == long.as_bytes()));
    assert!(seen.iter().any(|(p, _, _)| p == b"caf\xe9.txt"));
    assert!(seen.iter().any(|(p, k, l)| p == b"longlink"
        && k.is_symlink()
        && l.as_deref() == Some("y".repeat(200).as_bytes())));
    // The second name of a hard link is a link to the first one sent.
    let (first, second) = (b"Dockerfile".to_vec(), b"hard".to_vec());
    assert!(seen
        .iter()
        .any(|(p, k, l)| *p == second && k.is_hard_link() && l.as_deref() == Some(&first[..])));
}

#[test]
fn ls_skips_sockets_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("Dockerfile"), "FROM scratch\n").unwrap();
    let _sock = std::os::unix::net::UnixListener::bind(d.join("agent.sock")).unwrap();
    bin()
        .arg("ls")
        .arg(d)
        .assert()
        .success()
        .stdout("Dockerfile\n")
        .stderr(predicate::str::contains("agent.sock"));
}

#[test]
fn symlink_loops_fifos_and_devices_are_entries_like_docker() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("Dockerfile"), "FROM scratch\n").unwrap();
    // Never followed, so a loop is just an entry.
    std::os::unix::fs::symlink("loop", d.join("loop")).unwrap();
    std::os::unix::fs::symlink("b", d.join("a")).unwrap();
    std::os::unix::fs::symlink("a", d.join("b")).unwrap();
    let fifo = std::ffi::CString::new(d.join("pipe").to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    bin()
        .arg("ls")
        .arg(d)
        .assert()
        .success()
        .stdout("Dockerfile\na\nb\nloop\npipe\n");
    // The archive holds the FIFO as a FIFO (never opened, never blocks).
    let tarball = bin()
        .arg("context")
        .arg(d)
        .args(["-o", "-"])
        .timeout(std::time::Duration::from_secs(20))
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let mut archive = tar::Archive::new(&tarball[..]);
    let kinds: Vec<(String, tar::EntryType)> = archive
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.path().unwrap().to_string_lossy().into_owned(),
                e.header().entry_type(),
            )
        })
        .collect();
    assert!(
        kinds.contains(&("pipe".into(), tar::EntryType::Fifo)),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("loop".into(), tar::EntryType::Symlink)),
        "{kinds:?}"
    );
}

/// A writer that keeps the first bytes and then refuses, so a test can
/// look at the headers of a huge entry without streaming it.
struct Head(Vec<u8>);

impl std::io::Write for Head {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.0.len() >= 8192 {
            return Err(std::io::Error::other("enough"));
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn files_over_8_gib_get_a_pax_size_record() {
    use reggie_build::context::tarball::{write_context, TarOptions};
    use reggie_build::context::ContextSpec;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("Dockerfile"), "FROM scratch\n").unwrap();
    // Sparse: no disk space is used.
    let size = 8 * 1024 * 1024 * 1024 + 1;
    fs::File::create(d.join("huge.bin"))
        .unwrap()
        .set_len(size)
        .unwrap();
    let ctx = ContextSpec::new(d).resolve().unwrap();
    let mut head = Head(Vec::new());
    let err = write_context(&ctx, &mut head, &TarOptions::default(), &mut ()).unwrap_err();
    assert!(err.to_string().contains("enough"), "{err}");
    let text = String::from_utf8_lossy(&head.0);
    assert!(
        text.contains(&format!("size={size}\n")),
        "no PAX size record"
    );
    // The tar crate reads the size back from the PAX record.
    let mut archive = tar::Archive::new(&head.0[..]);
    let mut entries = archive.entries().unwrap();
    let first = entries.next().unwrap().unwrap();
    assert_eq!(first.path().unwrap().to_str(), Some("Dockerfile"));
    drop(first);
    let huge = entries.next().unwrap().unwrap();
    assert_eq!(huge.path().unwrap().to_str(), Some("huge.bin"));
    assert_eq!(huge.size(), size);
}
