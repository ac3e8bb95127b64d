//! `check`: budgets, exit codes, config images, baselines and CI formats.

mod common;
use common::copy_dir;

use std::fs;
use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;

fn bin(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("reggie-build").unwrap();
    cmd.current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("GITHUB_STEP_SUMMARY");
    cmd
}

/// A copy of the Reggie fixture with a config file.
fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/reggie"),
        dir.path(),
    );
    fs::write(
        dir.path().join("reggie-build.toml"),
        r#"[[image]]
name = "api"
dockerfile = "backend/Dockerfile"
context = "."
budget = { max_size = "20 kB", max_files = 100 }

[[image]]
name = "web"
dockerfile = "apps/web/Dockerfile"
context = "apps/web"
budget = { max_size = "1 MB" }
"#,
    )
    .unwrap();
    fs::write(
        dir.path().join("apps/web/Dockerfile"),
        "FROM node:20\nCOPY package.json .\nCOPY src/ ./src/\n",
    )
    .unwrap();
    dir
}

#[test]
fn every_configured_image_within_budget_exits_0() {
    let r = repo();
    bin(r.path())
        .arg("check")
        .assert()
        .code(0)
        .stdout(predicate::str::contains("ok   api").and(predicate::str::contains("ok   web")));
}

#[test]
fn over_budget_exits_1_naming_image_amount_contributors_and_fix() {
    let r = repo();
    bin(r.path())
        .args(["check", "--image", "api", "--max-size", "5kB"])
        .assert()
        .code(1)
        .stdout(
            predicate::str::contains("FAIL api")
                .and(predicate::str::contains("over the 5 kB budget"))
                .and(predicate::str::contains("backend/app/"))
                .and(predicate::str::contains("fix: use the ignore file")),
        );
    // --full measures what docker build sends: node_modules and all.
    bin(r.path())
        .args(["check", "--image", "api", "--full", "--max-size", "100kB"])
        .assert()
        .code(1)
        .stdout(
            predicate::str::contains("full context")
                .and(predicate::str::contains("narrow the context to `backend`")),
        );
}

#[test]
fn build_breaking_findings_fail_and_usage_errors_exit_2() {
    let r = repo();
    // Exclude a COPY source: the build would fail, so check fails.
    fs::write(r.path().join(".dockerignore"), "backend/scripts\n").unwrap();
    bin(r.path())
        .args(["check", "--image", "api"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("copy/source-excluded"));
    bin(r.path())
        .args(["check", "--image", "nope"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("api, web"));
    fs::write(
        r.path().join("reggie-build.toml"),
        "[[image]]\nname = \"a\"\nbudgt = 1\n",
    )
    .unwrap();
    bin(r.path()).arg("check").assert().code(2).stderr(
        predicate::str::contains("reggie-build.toml:3").and(predicate::str::contains("budgt")),
    );
}

#[test]
fn secrets_in_the_uploaded_context_fail() {
    let r = repo();
    // COPY . . makes the .env part of what is uploaded.
    fs::write(
        r.path().join("backend/Dockerfile"),
        "FROM python:3.11\nCOPY backend/ /app/\n",
    )
    .unwrap();
    fs::remove_file(r.path().join("backend/.dockerignore")).unwrap();
    bin(r.path())
        .args(["check", "--image", "api", "--max-size", "10MB"])
        .assert()
        .code(1)
        .stdout(
            predicate::str::contains("secrets/dotenv")
                .and(predicate::str::contains("backend/.env")),
        )
        .stdout(predicate::str::contains("fixture-password-not-real").not());
}

#[test]
fn baseline_names_what_grew() {
    let r = repo();
    let report = bin(r.path())
        .args(["analyze", "--image", "api", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    fs::write(r.path().join("baseline.json"), report).unwrap();
    fs::write(r.path().join("backend/app/big.py"), "x = 1\n".repeat(5000)).unwrap();
    bin(r.path())
        .args(["check", "--image", "api", "--baseline", "baseline.json"])
        .assert()
        .stdout(
            predicate::str::contains("grew: +30 kB backend/app")
                .or(predicate::str::contains("grew: +30.00 kB backend/app")),
        );
}

#[test]
fn github_format_writes_annotations_and_step_summary() {
    let r = repo();
    let summary = r.path().join("summary.md");
    bin(r.path())
        .env("GITHUB_STEP_SUMMARY", &summary)
        .args([
            "check",
            "--image",
            "api",
            "--max-size",
            "1kB",
            "--format",
            "github",
        ])
        .assert()
        .code(1)
        .stdout(predicate::str::starts_with(
            "::error title=reggie-build%3A api over budget::",
        ));
    let md = fs::read_to_string(&summary).unwrap();
    assert!(md.contains("| api |") && md.contains("fail"), "{md}");
}

#[test]
fn json_format_has_schema_and_verdicts() {
    let r = repo();
    let out = bin(r.path())
        .args(["check", "--format", "json", "--max-files", "15"])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["schema"], 1);
    assert_eq!(v["result"], "fail");
    let api = &v["images"][0];
    assert_eq!(api["name"], "api");
    assert_eq!(api["passed"], false);
    assert_eq!(api["over_files"], 4);
    assert_eq!(v["images"][1]["passed"], true);
}

/// The SARIF output validates against the SARIF 2.1.0 schema. The test
/// command fetches the schema (npm `@microsoft/jest-sarif`) and Python's
/// `jsonschema`, and sets REGGIE_SARIF_SCHEMA.
#[test]
fn sarif_validates_against_the_schema() {
    let Some(schema) = std::env::var_os("REGGIE_SARIF_SCHEMA") else {
        common::missing_prerequisite(
            "sarif_validates_against_the_schema",
            "REGGIE_SARIF_SCHEMA is not set",
            "Run the suite with `bash tests/run.sh`, which fetches the schema.",
        );
        return;
    };
    let r = repo();
    fs::write(
        r.path().join(".dockerignore"),
        "__pycache__\n*.pyc # bytecode\n",
    )
    .unwrap();
    for cmd in [
        vec!["analyze", "--image", "api", "--format", "sarif"],
        vec!["check", "--image", "api", "--strict", "--format", "sarif"],
    ] {
        let out = bin(r.path())
            .args(&cmd)
            .assert()
            .get_output()
            .stdout
            .clone();
        let log = r.path().join("out.sarif");
        fs::write(&log, &out).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert!(
            !v["runs"][0]["results"].as_array().unwrap().is_empty(),
            "{cmd:?} produced no results"
        );
        let status = std::process::Command::new("python3")
            .arg("-c")
            .arg("import json,sys,jsonschema; jsonschema.validate(json.load(open(sys.argv[2])), json.load(open(sys.argv[1])))")
            .arg(&schema)
            .arg(&log)
            .status()
            .unwrap();
        assert!(status.success(), "{cmd:?}: SARIF output does not validate");
    }
}

/// A fresh clone of a typical app: committed `.env` templates and an
/// ignore file listing what installs and builds create. `check` passes,
/// and only the pattern that is really dead is reported.
#[test]
fn a_stock_checkout_has_no_false_findings() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::create_dir_all(d.join("src")).unwrap();
    fs::write(d.join("src/index.js"), "x\n").unwrap();
    fs::write(d.join("package.json"), "{}\n").unwrap();
    for f in [
        ".env.example",
        ".env.dev.example",
        ".env.prod.example",
        ".env.sample",
        ".env.template",
    ] {
        fs::write(d.join(f), "API_KEY=\n").unwrap();
    }
    fs::write(
        d.join("Dockerfile"),
        "FROM node:20\nCOPY package.json .\nCOPY src/ ./src/\n",
    )
    .unwrap();
    fs::write(
        d.join(".dockerignore"),
        "node_modules\n**/dist\n.next\n.turbo\ncoverage\n*.log\n**/__pycache__\n.venv\n.env\nno-such-dir\n",
    )
    .unwrap();
    let out = bin(d)
        .args(["check", ".", "--strict", "--format", "json"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    assert!(!out.contains("secrets/dotenv"), "{out}");
    let out = bin(d)
        .args(["analyze", ".", "--format", "json"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let findings: Vec<(String, String)> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        !findings.iter().any(|(r, _)| r == "secrets/dotenv"),
        "{findings:?}"
    );
    let dead: Vec<&String> = findings
        .iter()
        .filter(|(r, _)| r == "ignore/matches-nothing")
        .map(|(_, m)| m)
        .collect();
    assert_eq!(dead.len(), 1, "{findings:?}");
    assert!(dead[0].contains("no-such-dir"), "{findings:?}");
}

/// The deploy runs on another architecture than the image is built for:
/// a warning (failing `--strict`) naming the declaration and the
/// `--platform` to pass; none once the config builds for the deploy.
#[test]
fn a_deploy_on_another_architecture_is_a_finding() {
    let r = repo();
    // The architecture this machine does not build: SST says x86_64 or arm64.
    let (sst_arch, deploy) = if std::env::consts::ARCH == "aarch64" {
        ("x86_64", "linux/amd64")
    } else {
        ("arm64", "linux/arm64")
    };
    let sst = r.path().join("sst.config.ts");
    let text = fs::read_to_string(&sst).unwrap().replace(
        "      cluster,\n",
        &format!("      cluster,\n      architecture: \"{sst_arch}\",\n"),
    );
    assert!(text.contains("architecture"), "the fixture changed");
    fs::write(&sst, text).unwrap();
    let finding = format!(
        "warning deploy/architecture sst.config.ts:9: `ReggieApi` is deployed on {deploy}, but this machine builds"
    );
    let fix =
        format!("build with --platform {deploy} (in reggie-build.toml `platform = \"{deploy}\"`");
    bin(r.path())
        .arg("check")
        .assert()
        .code(0)
        .stdout(predicate::str::contains(&finding).and(predicate::str::contains(&fix)));
    bin(r.path())
        .args(["check", "--image", "api", "--strict"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("FAIL api").and(predicate::str::contains(&finding)));
    // The other image is not that deploy's.
    let out = bin(r.path())
        .args(["check", "--image", "web"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("deploy/architecture"));
    let json = bin(r.path())
        .args(["check", "--image", "api", "--format", "json"])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let f = &json["images"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "deploy/architecture")
        .cloned()
        .expect("the finding in --format json");
    assert_eq!(f["file"], "sst.config.ts");
    assert_eq!(f["line"], 9);
    assert_eq!(f["severity"], "warning");

    // Built for the deploy's platform (the config, or --platform): fine.
    let config = r.path().join("reggie-build.toml");
    let toml = fs::read_to_string(&config).unwrap().replacen(
        "context = \".\"\n",
        &format!("context = \".\"\nplatform = \"{deploy}\"\n"),
        1,
    );
    fs::write(&config, &toml).unwrap();
    let out = bin(r.path())
        .args(["check", "--image", "api"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("deploy/architecture"), "{stdout}");
    // Built for another one than the deploy's: named as such.
    let other = if deploy == "linux/amd64" {
        "linux/arm64"
    } else {
        "linux/amd64"
    };
    bin(r.path())
        .args(["check", "--image", "api", "--platform", other])
        .assert()
        .code(0)
        .stdout(predicate::str::contains(format!(
            "`ReggieApi` is deployed on {deploy}, but it is built for {other}"
        )));
}

/// An ECS task definition's `runtimePlatform` is a deploy too: the
/// finding points at its `cpuArchitecture` line.
#[test]
fn an_ecs_task_definition_on_another_architecture_is_a_finding() {
    let r = repo();
    let (cpu, deploy) = if std::env::consts::ARCH == "aarch64" {
        ("X86_64", "linux/amd64")
    } else {
        ("ARM64", "linux/arm64")
    };
    fs::create_dir_all(r.path().join(".aws")).unwrap();
    fs::write(
        r.path().join(".aws/task-definition.json"),
        format!(
            "{{\n  \"family\": \"web\",\n  \"requiresCompatibilities\": [\"FARGATE\"],\n  \"runtimePlatform\": {{\"cpuArchitecture\": \"{cpu}\"}},\n  \"containerDefinitions\": [\n    {{\"name\": \"app\", \"image\": \"123456789012.dkr.ecr.us-east-1.amazonaws.com/web:latest\"}}\n  ]\n}}\n"
        ),
    )
    .unwrap();
    let json = bin(r.path())
        .args(["check", "--image", "web", "--format", "json"])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let f = json["images"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "deploy/architecture")
        .cloned()
        .unwrap_or_else(|| panic!("no deploy/architecture finding: {json}"));
    assert_eq!(f["file"], ".aws/task-definition.json");
    assert_eq!(f["line"], 4);
    let message = f["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!(
            "`apps/web` is deployed on {deploy}, but this machine builds"
        )),
        "{message}"
    );
    // Built for the task definition's platform: no finding.
    let out = bin(r.path())
        .args(["check", "--image", "web", "--platform", deploy])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("deploy/architecture"));
}
