//! `analyze` and `ls --minimal` on the fixtures, as users run them.

mod common;
use common::copy_dir;

use std::fs;
use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;

fn bin() -> Command {
    let mut cmd = Command::cargo_bin("reggie-build").unwrap();
    // Relative paths keep reports free of machine-specific directories.
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    cmd.env("NO_COLOR", "1");
    cmd
}

fn stdout(cmd: &mut Command) -> String {
    String::from_utf8(cmd.assert().success().get_output().stdout.clone()).unwrap()
}

#[test]
fn minimal_set_of_each_fixture() {
    let cases: &[(&[&str], &[&str])] = &[
        (
            &[
                "fixtures/reggie",
                "-f",
                "fixtures/reggie/backend/Dockerfile",
            ],
            &[
                "backend/alembic.ini",
                "backend/alembic/env.py",
                "backend/alembic/versions/2026_02_24_consolidate.py",
                "backend/alembic/versions/__pycache__/2026_02_24_consolidate.cpython-311.pyc",
                "backend/app/__init__.py",
                "backend/app/__pycache__/__init__.cpython-311.pyc",
                "backend/app/__pycache__/config.cpython-311.pyc",
                "backend/app/__pycache__/main.cpython-311.pyc",
                "backend/app/__pycache__/plate.cpython-311.pyc",
                "backend/app/config.py",
                "backend/app/main.py",
                "backend/app/models/__init__.py",
                "backend/app/models/__pycache__/__init__.cpython-311.pyc",
                "backend/app/models/__pycache__/config.cpython-311.pyc",
                "backend/app/models/__pycache__/main.cpython-311.pyc",
                "backend/app/models/__pycache__/plate.cpython-311.pyc",
                "backend/app/models/plate.py",
                "backend/requirements.txt",
                "backend/scripts/bootstrap_schema.py",
            ],
        ),
        // The default target is the last stage: deps and build are reached
        // through FROM and COPY --from; the test stage is not.
        (
            &["fixtures/node-multistage"],
            &[
                "package-lock.json",
                "package.json",
                "src/index.ts",
                "tsconfig.json",
            ],
        ),
        (
            &["fixtures/node-multistage", "--target", "test"],
            &["package-lock.json", "package.json", "tests/run.js"],
        ),
        // Wildcards, --parents, bind mounts, a build argument's default and
        // a heredoc whose body looks like an instruction.
        (
            &["fixtures/mounts-wildcards"],
            &[
                "config/app.toml",
                "config/extra.toml",
                "docs/guide/intro.md",
                "scripts/setup.sh",
            ],
        ),
        (
            &[
                "fixtures/mounts-wildcards",
                "--build-arg",
                "CONFIG_DIR=docs",
            ],
            &["docs/guide/intro.md", "scripts/setup.sh"],
        ),
    ];
    for (args, want) in cases {
        let out = stdout(bin().arg("ls").arg("--minimal").args(*args));
        let got: Vec<&str> = out.lines().collect();
        assert_eq!(got, *want, "ls --minimal {args:?}");
    }
}

#[test]
fn analyze_reggie_root_context_report() {
    let out = stdout(bin().args([
        "analyze",
        "fixtures/reggie",
        "-f",
        "fixtures/reggie/backend/Dockerfile",
    ]));
    insta::assert_snapshot!("analyze_reggie_root", out);
}

#[test]
fn analyze_reggie_backend_context_report() {
    // The backend's own .dockerignore has the root-anchored mistake.
    let dir = tempfile::tempdir().unwrap();
    copy_dir(
        Path::new("fixtures/reggie/backend"),
        &dir.path().join("backend"),
    );
    let df = dir.path().join("backend/Dockerfile");
    let text = fs::read_to_string(&df)
        .unwrap()
        .replace("COPY backend/", "COPY ");
    fs::write(&df, text).unwrap();
    let out = stdout(
        bin()
            .current_dir(dir.path())
            .args(["analyze", "backend", "--color", "never"]),
    );
    insta::assert_snapshot!("analyze_reggie_backend", out);
}

#[test]
fn analyze_json_has_the_documented_schema() {
    let out = stdout(bin().args([
        "analyze",
        "fixtures/reggie",
        "-f",
        "fixtures/reggie/backend/Dockerfile",
        "--json",
    ]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["schema"], 1);
    assert_eq!(v["context"], "fixtures/reggie");
    assert_eq!(v["dockerfile"], "fixtures/reggie/backend/Dockerfile");
    assert_eq!(v["suggested_context"], "backend");
    for key in ["before", "minimal"] {
        assert!(v[key]["files"].as_u64().unwrap() > 0);
        assert!(v[key]["bytes"].as_u64().unwrap() > 0);
    }
    assert!(v["before"]["bytes"].as_u64() > v["minimal"]["bytes"].as_u64());
    let top = v["top_unused"].as_array().unwrap();
    assert!(top.iter().all(|u| u["path"].is_string()
        && u["bytes"].is_u64()
        && u["files"].is_u64()
        && u["kind"].is_string()));
    assert!(top.iter().any(|u| u["kind"] == "node_modules"));
    let findings = v["findings"].as_array().unwrap();
    let secret = findings
        .iter()
        .find(|f| f["rule"] == "secrets/dotenv")
        .expect("the .env is sent with context .");
    assert_eq!(secret["severity"], "error");
    assert_eq!(secret["file"], "backend/.env");
    // The file is named, its content never shown.
    assert!(!out.contains("fixture-password-not-real"));
    assert!(!out.contains("fixture-secret-not-real"));
}

#[test]
fn write_ignore_writes_a_verified_file_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(Path::new("fixtures/reggie"), dir.path());
    let run = |extra: &[&str]| {
        let mut cmd = bin();
        cmd.current_dir(dir.path())
            .args(["analyze", ".", "-f", "backend/Dockerfile", "--write-ignore"])
            .args(extra);
        cmd.assert()
    };
    run(&[]).success();
    let written = dir.path().join("backend/Dockerfile.dockerignore");
    let text = fs::read_to_string(&written).unwrap();
    assert!(text.contains("\n*\n") && text.contains("!app\n") && text.contains("**/__pycache__"));
    run(&[]).failure().stderr(
        predicate::str::contains("already exists").and(predicate::str::contains("--force")),
    );
    // Written for context backend, the file beside the Dockerfile now
    // applies to the root context too, whose build no longer sends what it
    // reads: nothing there is verified, so nothing is overwritten.
    run(&["--force"]).failure().stderr(
        predicate::str::contains("not verified").and(predicate::str::contains("nothing of")),
    );
    assert_eq!(fs::read_to_string(&written).unwrap(), text);

    // The file works: with context backend and the COPY lines rewritten,
    // `ls` sends the app without bytecode, venv, tests, models or .env.
    let df = dir.path().join("backend/Dockerfile");
    let rewritten = fs::read_to_string(&df)
        .unwrap()
        .replace("COPY backend/", "COPY ");
    fs::write(&df, rewritten).unwrap();
    let out = stdout(bin().current_dir(dir.path()).args(["ls", "backend"]));
    let files: Vec<&str> = out.lines().collect();
    assert!(files.contains(&"app/main.py"));
    assert!(files.contains(&"requirements.txt"));
    assert!(!files.iter().any(|f| f.contains("__pycache__")
        || f.starts_with("venv/")
        || f.starts_with("tests/")
        || f.ends_with(".joblib")
        || *f == ".env"));
}

#[test]
fn analyze_errors_carry_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\nCOPY \"a b .\n",
    )
    .unwrap();
    fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\nARG X\nCOPY ${X:?set X} /\n",
    )
    .unwrap();
    bin()
        .current_dir(dir.path())
        .args(["analyze", "."])
        .assert()
        .failure()
        .stderr(predicate::str::contains("Dockerfile:3"));
    bin()
        .current_dir(dir.path())
        .args(["analyze", ".", "--target", "nope"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("nope"));
}

/// The fixtures shaped like the repositories of issue 27, each with the
/// Dockerfile at its root.
const BUILD_OUTPUT_FIXTURES: [&str; 5] = [
    "go-make",
    "cargo-workspace",
    "node-playwright",
    "python-package",
    "generated-dist",
];

/// A fresh copy of a fixture, outside any repository (its `.gitignore`
/// files are the only ones that apply).
fn fixture_copy(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&Path::new("fixtures").join(name), dir.path());
    dir
}

/// The findings about the ignore file, as (rule, line, message).
fn ignore_findings(dir: &Path) -> Vec<(String, u64, String)> {
    let out = stdout(bin().current_dir(dir).args(["analyze", ".", "--json"]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["file"] == "./.dockerignore")
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["line"].as_u64().unwrap(),
                f["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Issue 27 item 1: a line that matches nothing because what it excludes
/// appears only after a build or test run is a note naming what writes it,
/// never advice to remove it; "remove it" is kept for lines that can never
/// match, and a typo names the sibling it misses.
/// One expected finding: rule, line, message.
type Expected = (&'static str, u64, &'static str);

#[test]
fn lines_guarding_build_output_are_notes_with_their_evidence() {
    let cases: &[(&str, &[Expected])] = &[
        (
            "go-make",
            &[
                ("ignore/near-miss", 8, "`cmd/servr` matches nothing, but `cmd/server` exists beside it: if that is what it means, fix the typo (as written, `cmd/server` is sent)"),
                ("ignore/guards-output", 2, "`bin` matches nothing now, but it guards build output bin/, written by make (Makefile:7): keep the line, or a build after make has run sends it"),
                ("ignore/guards-output", 3, "`coverage.out` matches nothing now, but it guards build output coverage.out, written by make (Makefile:10): keep the line, or a build after make has run sends it"),
                ("ignore/guards-output", 4, "`tmp/` matches nothing now, but it guards a path .gitignore ignores (.gitignore:3 `tmp/`): keep the line, or a build from a working copy that has it sends it"),
                ("ignore/guards-output", 5, "`*.test` matches nothing now, but it guards a path .gitignore ignores (.gitignore:2 `*.test`): keep the line, or a build from a working copy that has it sends it"),
                ("ignore/guards-output", 6, "`.env` matches nothing now, but it guards a path .gitignore ignores (.gitignore:4 `.env`): keep the line, or a build from a working copy that has it sends it"),
                ("ignore/matches-nothing", 7, "`docs/drafts` matches nothing in this context (patterns are relative to the context root .), and nothing in the repository says a build creates it (no .gitignore line, build file or rule names it); remove it or fix the path"),
                ("ignore/matches-nothing", 9, "`../shared` can never match: patterns are relative to the context root . and never reach above it; remove it"),
            ],
        ),
        (
            "cargo-workspace",
            &[
                ("ignore/guards-output", 1, "`target` matches nothing now, but it guards build output target/, written by cargo (Cargo.toml:1): keep the line, or a build after cargo has run sends it"),
                ("ignore/guards-output", 2, "`**/target` matches nothing now, but it guards build output target/, written by cargo (Cargo.toml:1): keep the line, or a build after cargo has run sends it"),
                ("ignore/guards-output", 3, "`**/*.rs.bk` matches nothing now, but it guards a path .gitignore ignores (.gitignore:2 `**/*.rs.bk`): keep the line, or a build from a working copy that has it sends it"),
                ("ignore/guards-output", 4, "`.idea` matches nothing now, but it guards `.idea`, which a clean checkout lacks (reggie-build's Development files rules): keep the line, or a build from a working copy that has it sends it"),
                ("ignore/matches-nothing", 5, "`benches/data` matches nothing in this context (patterns are relative to the context root .), and nothing in the repository says a build creates it (no .gitignore line, build file or rule names it); remove it or fix the path"),
            ],
        ),
        (
            "node-playwright",
            &[
                ("ignore/guards-output", 1, "`node_modules` matches nothing now, but it guards `node_modules`, which a clean checkout lacks (reggie-build's Node.js rules): keep the line, or a build from a working copy that has it sends it"),
                ("ignore/guards-output", 2, "`dist` matches nothing now, but it guards build output dist/, written by vite build (package.json:7): keep the line, or a build after vite build has run sends it"),
                ("ignore/guards-output", 3, "`test-results/` matches nothing now, but it guards build output test-results/, written by playwright test (package.json:9): keep the line, or a build after playwright test has run sends it"),
                ("ignore/guards-output", 4, "`playwright-report/` matches nothing now, but it guards build output playwright-report/, written by playwright test (package.json:9): keep the line, or a build after playwright test has run sends it"),
                ("ignore/guards-output", 5, "`coverage` matches nothing now, but it guards build output coverage/, written by vitest (package.json:8): keep the line, or a build after vitest has run sends it"),
                ("ignore/guards-output", 6, "`.env.local` matches nothing now, but it guards `.env.*`, which a clean checkout lacks (reggie-build's Secrets rules): keep the line, or a build from a working copy that has it sends it"),
            ],
        ),
        (
            "python-package",
            &[
                ("ignore/guards-output", 1, "`__pycache__` matches nothing now, but it guards build output __pycache__/, written by python (pyproject.toml:1): keep the line, or a build after python has run sends it"),
                ("ignore/guards-output", 2, "`*.py[cod]` matches nothing now, but it guards build output *.py[cod], written by python (pyproject.toml:1): keep the line, or a build after python has run sends it"),
                ("ignore/guards-output", 3, "`build/` matches nothing now, but it guards build output build/, written by python -m build (pyproject.toml:1): keep the line, or a build after python -m build has run sends it"),
                ("ignore/guards-output", 4, "`dist/` matches nothing now, but it guards build output dist/, written by python -m build (pyproject.toml:1): keep the line, or a build after python -m build has run sends it"),
                ("ignore/guards-output", 5, "`*.egg-info` matches nothing now, but it guards build output *.egg-info/, written by python -m build (pyproject.toml:1): keep the line, or a build after python -m build has run sends it"),
                ("ignore/guards-output", 6, "`.pytest_cache` matches nothing now, but it guards build output .pytest_cache/, written by pytest (pyproject.toml:9): keep the line, or a build after pytest has run sends it"),
                ("ignore/guards-output", 7, "`.venv` matches nothing now, but it guards `.venv`, which a clean checkout lacks (reggie-build's Python rules): keep the line, or a build from a working copy that has it sends it"),
            ],
        ),
    ];
    for (fixture, want) in cases {
        let dir = fixture_copy(fixture);
        let got = ignore_findings(dir.path());
        let want: Vec<(String, u64, String)> = want
            .iter()
            .map(|(rule, line, message)| (rule.to_string(), *line, message.to_string()))
            .collect();
        assert_eq!(got, want, "{fixture}");
    }
}

/// The paths and bytes `ls` lists.
fn ls(dir: &Path, args: &[&str]) -> (Vec<String>, u64) {
    let out = stdout(bin().current_dir(dir).arg("ls").args(args));
    let paths: Vec<String> = out.lines().map(str::to_string).collect();
    let bytes = paths
        .iter()
        .map(|p| {
            let m = fs::symlink_metadata(dir.join(args[0]).join(p)).unwrap();
            if m.is_file() {
                m.len()
            } else {
                0
            }
        })
        .sum();
    (paths, bytes)
}

/// Issue 27 items 2 and 3: the suggested ignore file is verified (a path
/// the Dockerfile reads that neither build sends is agreement), and what
/// `analyze` prints it sends (the report, the JSON, `--write-ignore`'s
/// summary) is what `ls` lists once it is written, with either builder:
/// the classic client sends the `.dockerignore` it never leaves out.
#[test]
fn following_the_advice_sends_what_was_printed() {
    for fixture in BUILD_OUTPUT_FIXTURES {
        for builder in ["buildkit", "classic"] {
            let what = format!("{fixture} ({builder})");
            let dir = fixture_copy(fixture);
            let d = dir.path();
            let args = ["analyze", ".", "--builder", builder];
            let v: serde_json::Value =
                serde_json::from_str(&stdout(bin().current_dir(d).args(args).arg("--json")))
                    .unwrap();
            let ig = &v["suggested_ignore"];
            assert_eq!(ig["verified"], true, "{what}: {ig}");
            assert!(v["suggestion"].is_null(), "{what}: the context stays");
            let (files, bytes) = (ig["files"].as_u64().unwrap(), ig["bytes"].as_u64().unwrap());
            let human = stdout(bin().current_dir(d).args(args));
            assert!(
                human.contains(&format!(
                    "sends what today's build sends; sends {files} files)"
                )),
                "{what}: {human}"
            );
            let page = stdout(bin().current_dir(d).args(args).args(["--format", "html"]));
            let size = reggie_build::units::humanize(bytes);
            assert!(
                page.contains(&format!("; sends {files} files ({size})")),
                "{what}: the HTML report's figure"
            );
            let minimal_before = ls(d, &[".", "--builder", builder, "--minimal"]);

            let out = bin()
                .current_dir(d)
                .args(args)
                .args(["--write-ignore", "--force"])
                .assert()
                .success()
                .get_output()
                .clone();
            let name = if builder == "classic" {
                ".dockerignore"
            } else {
                "Dockerfile.dockerignore"
            };
            assert_eq!(
                String::from_utf8(out.stderr).unwrap(),
                format!(
                    "wrote ./{name}: a build of context . with it sends {files} files ({size})\n"
                ),
                "{what}"
            );
            let (paths, sent_bytes) = ls(d, &[".", "--builder", builder]);
            assert_eq!(
                (paths.len() as u64, sent_bytes),
                (files, bytes),
                "{what}: {paths:?}"
            );
            if builder == "classic" {
                assert!(paths.iter().any(|p| p == ".dockerignore"), "{what}");
            }
            assert_eq!(
                ls(d, &[".", "--builder", builder, "--minimal"]),
                minimal_before,
                "{what}: the build reads what it read"
            );
        }
    }
}

/// Issue 27 item 2: once the build step and the deploy have created what
/// the Dockerfile reads (`dist/`, `.env`), a build with the ignore file
/// suggested on the clean checkout reads exactly what one without it
/// reads.
#[test]
fn the_suggestion_from_a_clean_checkout_keeps_generated_inputs() {
    for builder in ["buildkit", "classic"] {
        let plain = fixture_copy("generated-dist");
        let advised = fixture_copy("generated-dist");
        bin()
            .current_dir(advised.path())
            .args(["analyze", ".", "--builder", builder, "--write-ignore"])
            .assert()
            .success();
        for d in [plain.path(), advised.path()] {
            fs::create_dir_all(d.join("dist/lib")).unwrap();
            fs::write(d.join("dist/index.js"), "console.log(1)\n").unwrap();
            fs::write(d.join("dist/lib/util.js"), "module.exports = 1\n").unwrap();
            fs::write(d.join(".env"), "API_URL=http://127.0.0.1\n").unwrap();
        }
        let reads = |d: &Path| ls(d, &[".", "--builder", builder, "--minimal"]).0;
        let want = reads(plain.path());
        assert_eq!(reads(advised.path()), want, "{builder}");
        for p in ["dist/index.js", "dist/lib/util.js", ".env", "package.json"] {
            assert!(want.iter().any(|w| w == p), "{builder}: {p} in {want:?}");
        }
    }
}
