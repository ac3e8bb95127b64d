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
