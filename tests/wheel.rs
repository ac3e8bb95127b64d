//! The pip wheel and the hook that installs through it, for real: the wheel
//! maturin built (pyproject.toml: the lean feature set), pip installs it
//! into a fresh venv, and the pre-commit framework runs the wheel-based hook
//! of `pre-commit-hook/` (a `language: python` hook repository, as
//! ruff-pre-commit ships ruff) on a git repository made from the Reggie
//! fixture. Nothing is downloaded: pip sees only the wheel just built and
//! the build backend's wheel that `tests/run.sh` fetched.

mod common;
use common::copy_dir;

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

fn ok(o: Output) -> Output {
    assert!(o.status.success(), "{}", text(&o));
    o
}

fn works(cmd: &str, args: &[&str]) -> bool {
    Command::new(cmd)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The directory of wheels pip may install from besides the one built here
/// (the hook package's build backend, setuptools): `REGGIE_PIP_WHEELS`, as
/// `tests/run.sh` sets it, else its default place.
fn backend_wheels() -> PathBuf {
    std::env::var_os("REGGIE_PIP_WHEELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest().join("target/test-deps/wheels"))
}

/// Every prerequisite, or the failure (or logged skip) that names it.
fn prerequisites(test: &str) -> bool {
    let how = "Run `bash tests/run.sh`, which makes them (`maturin build --profile dev --out \
               target/test-deps/wheel`, `pip install pre-commit`, the setuptools wheel in \
               target/test-deps/wheels).";
    let missing = [
        (
            "the wheel in REGGIE_TEST_WHEELS (target/test-deps/wheel)",
            common::test_wheel().is_some(),
        ),
        ("pre-commit", works("pre-commit", &["--version"])),
        (
            "python3 with venv",
            works("python3", &["-c", "import venv, zipfile"]),
        ),
        (
            "the setuptools wheel in REGGIE_PIP_WHEELS (target/test-deps/wheels)",
            fs::read_dir(backend_wheels()).is_ok_and(|d| {
                d.flatten().any(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    n.starts_with("setuptools-") && n.ends_with(".whl")
                })
            }),
        ),
    ];
    match missing.iter().find(|(_, present)| !present) {
        Some((what, _)) => {
            common::missing_prerequisite(test, &format!("{what} is missing"), how);
            false
        }
        None => true,
    }
}

/// PATH without any directory holding a `reggie-build`, so that the hook
/// can only run the binary its environment installed.
fn path_without_reggie_build() -> String {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::env::split_paths(&path)
        .filter(|d| !d.join("reggie-build").exists())
        .collect();
    std::env::join_paths(dirs)
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn wheel_installs_the_lean_binary_and_the_hook_runs_through_it() {
    let test = "wheel_installs_the_lean_binary_and_the_hook_runs_through_it";
    if !prerequisites(test) {
        return;
    }
    let version = env!("CARGO_PKG_VERSION");
    let tmp = tempfile::tempdir().unwrap();
    let wheel = common::test_wheel().unwrap();
    let wheels = wheel.parent().unwrap().to_path_buf();
    let name = wheel.file_name().unwrap().to_string_lossy().into_owned();
    // A binary wheel for any Python 3 (no extension module).
    assert!(
        name.starts_with(&format!("reggie_build-{version}-py3-none-")),
        "{name}"
    );

    // The lean build: reggie-build alone, without the image binary.
    let listing = text(&ok(Command::new("python3")
        .args(["-m", "zipfile", "-l"])
        .arg(&wheel)
        .output()
        .unwrap()));
    assert!(
        listing.contains(&format!(
            "reggie_build-{version}.data/scripts/reggie-build "
        )),
        "{listing}"
    );
    // (Its man pages name every command, `reggie-build-image.1` too.)
    assert!(
        !listing.contains(&format!(
            "reggie_build-{version}.data/scripts/reggie-build-image"
        )),
        "{listing}"
    );

    // A fresh venv, offline: pip installs the wheel and puts the binary on
    // the venv's PATH.
    let venv = tmp.path().join("venv");
    ok(Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .output()
        .unwrap());
    ok(Command::new(venv.join("bin/pip"))
        .args(["install", "-q", "--no-index", "--disable-pip-version-check"])
        .arg(&wheel)
        .output()
        .unwrap());
    let bin = venv.join("bin/reggie-build");
    // The man pages and completions (packaging/data) land in the venv's
    // share/, where `man` and the shells look under a prefix.
    for page in ["man/man1/reggie-build.1", "man/man1/reggie-build-check.1"] {
        let path = venv.join("share").join(page);
        let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            text.starts_with(".ie"),
            "{}: not a man page",
            path.display()
        );
    }
    assert!(venv
        .join("share/bash-completion/completions/reggie-build")
        .is_file());
    let fixture = manifest().join("fixtures/reggie");
    let analyze = ok(Command::new(&bin)
        .arg("analyze")
        .arg(&fixture)
        .arg("-f")
        .arg(fixture.join("backend/Dockerfile"))
        .output()
        .unwrap());
    let report = text(&analyze);
    assert!(report.contains("Needed            19 files"), "{report}");
    // `image` is not in the lean build, and says which build has it.
    let image = Command::new(&bin)
        .args(["image", ".", "-t", "pkg-lean:x"])
        .current_dir(&fixture)
        .output()
        .unwrap();
    assert_eq!(image.status.code(), Some(2), "{}", text(&image));
    assert!(text(&image).contains("lean build"), "{}", text(&image));

    run_hook_through_the_wheel(tmp.path(), &wheels);
}

/// What git (and the pre-commit hook it runs) sees.
struct HookEnv {
    path: String,
    home: PathBuf,
    find_links: String,
}

impl HookEnv {
    fn git(&self, dir: &Path, args: &[&str]) -> Output {
        Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("PATH", &self.path)
            .env("PRE_COMMIT_HOME", &self.home)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
            .env("NO_COLOR", "1")
            // pip inside pre-commit: the wheel just built and the build
            // backend, nothing from an index.
            .env("PIP_NO_INDEX", "1")
            .env("PIP_FIND_LINKS", &self.find_links)
            .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
            .output()
            .unwrap()
    }
}

/// The hook repository (`pre-commit-hook/`, as it is published) at a
/// commit, used from a fixture repository's `.pre-commit-config.yaml`.
fn run_hook_through_the_wheel(tmp: &Path, wheels: &Path) {
    let env = HookEnv {
        path: path_without_reggie_build(),
        home: tmp.join("pre-commit-home"),
        find_links: format!("{} {}", wheels.display(), backend_wheels().display()),
    };

    // The hook package pins the wheel of this crate's version.
    let pyproject = fs::read_to_string(manifest().join("pre-commit-hook/pyproject.toml")).unwrap();
    let pin = format!("\"reggie-build=={}\"", env!("CARGO_PKG_VERSION"));
    assert!(
        pyproject.contains(&pin),
        "pre-commit-hook/pyproject.toml must pin {pin}"
    );

    let hook_repo = tmp.join("hook");
    copy_dir(&manifest().join("pre-commit-hook"), &hook_repo);
    ok(env.git(&hook_repo, &["init", "-q", "-b", "main"]));
    ok(env.git(&hook_repo, &["add", "-A"]));
    ok(env.git(&hook_repo, &["commit", "-q", "-m", "hook"]));
    let rev = text(&ok(env.git(&hook_repo, &["rev-parse", "HEAD"])))
        .trim()
        .to_string();

    let repo = tmp.join("repo");
    copy_dir(&manifest().join("fixtures/reggie"), &repo);
    fs::write(
        repo.join("reggie-build.toml"),
        "[[image]]\nname = \"api\"\ndockerfile = \"backend/Dockerfile\"\ncontext = \".\"\nbudget = { max_size = \"20 kB\" }\n",
    )
    .unwrap();
    fs::write(
        repo.join(".pre-commit-config.yaml"),
        format!(
            "repos:\n  - repo: {}\n    rev: {rev}\n    hooks:\n      - id: reggie-build-check\n",
            hook_repo.display()
        ),
    )
    .unwrap();
    ok(env.git(&repo, &["init", "-q", "-b", "main"]));
    ok(env.git(&repo, &["add", "-A"]));
    ok(env.git(&repo, &["commit", "-q", "--no-verify", "-m", "init"]));
    let install = Command::new("pre-commit")
        .arg("install")
        .current_dir(&repo)
        .env("PRE_COMMIT_HOME", &env.home)
        .output()
        .unwrap();
    ok(install);

    // A 40 kB module puts the api image over its 20 kB budget: refused.
    fs::write(repo.join("backend/app/big.py"), "x = 1\n".repeat(7000)).unwrap();
    ok(env.git(&repo, &["add", "backend/app/big.py"]));
    let refused = env.git(&repo, &["commit", "-m", "big"]);
    let out = text(&refused);
    assert!(
        !refused.status.success(),
        "the commit must be refused:\n{out}"
    );
    assert!(out.contains("FAIL api"), "{out}");
    assert!(out.contains("over the 20 kB budget"), "{out}");

    // The binary that ran is the wheel's, in the hook's environment.
    let installed: Vec<PathBuf> = fs::read_dir(&env.home)
        .unwrap()
        .flatten()
        .flat_map(|repo_dir| {
            fs::read_dir(repo_dir.path())
                .into_iter()
                .flatten()
                .flatten()
        })
        .map(|e| e.path().join("bin/reggie-build"))
        .filter(|p| p.is_file())
        .collect();
    assert_eq!(
        installed.len(),
        1,
        "pre-commit's environments: {installed:?}"
    );

    // Within budget: a small module commits.
    ok(env.git(&repo, &["rm", "-q", "--cached", "backend/app/big.py"]));
    fs::remove_file(repo.join("backend/app/big.py")).unwrap();
    fs::write(repo.join("backend/app/small.py"), "y = 2\n").unwrap();
    ok(env.git(&repo, &["add", "backend/app/small.py"]));
    let accepted = env.git(&repo, &["commit", "-m", "small"]);
    assert!(accepted.status.success(), "{}", text(&accepted));
}
