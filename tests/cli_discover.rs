//! `discover` on the fixtures and on a temporary compose monorepo, as users
//! run it.

use std::fs;
use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

fn bin() -> Command {
    let mut cmd = Command::cargo_bin("reggie-build").unwrap();
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    cmd.env("NO_COLOR", "1");
    cmd
}

fn json(args: &[&str]) -> Vec<Value> {
    let out = bin()
        .arg("discover")
        .args(args)
        .arg("--json")
        .assert()
        .success();
    serde_json::from_slice::<Value>(&out.get_output().stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn write_tree(root: &Path, files: &[(&str, &[u8])]) {
    for (path, bytes) in files {
        let p = root.join(path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, bytes).unwrap();
    }
}

#[test]
fn finds_the_reggie_sst_service_and_its_root_context() {
    let builds = json(&["fixtures/reggie"]);
    assert_eq!(builds.len(), 1, "{builds:#?}");
    let api = &builds[0];
    assert_eq!(api["name"], "ReggieApi");
    assert_eq!(api["context"], ".");
    assert_eq!(api["dockerfile"], "backend/Dockerfile");
    assert_eq!(api["source"], "sst:sst.config.ts:9");
    assert_eq!(
        api["warnings"],
        serde_json::json!([
            "context is the repository root for a Dockerfile in backend/: narrow it to ./backend"
        ])
    );
    assert!(api["minimal_bytes"].as_u64().unwrap() > 0);

    bin()
        .args(["discover", "fixtures/reggie"])
        .assert()
        .success()
        .stdout(predicate::str::contains("ReggieApi"))
        .stdout(predicate::str::contains("sst:sst.config.ts:9"))
        .stdout(predicate::str::contains(
            "! context is the repository root for a Dockerfile in backend/: narrow it to ./backend",
        ));
}

#[test]
fn finds_compose_builds_and_unreferenced_dockerfiles() {
    let builds = json(&["fixtures/compose-monorepo"]);
    let rows: Vec<(String, String, String, String, Value)> = builds
        .iter()
        .map(|b| {
            (
                b["name"].as_str().unwrap().to_string(),
                b["source"].as_str().unwrap().to_string(),
                b["context"].as_str().unwrap().to_string(),
                b["dockerfile"].as_str().unwrap().to_string(),
                b["target"].clone(),
            )
        })
        .collect();
    let s = |x: &str| x.to_string();
    assert_eq!(
        rows,
        vec![
            (
                s("web"),
                s("compose:docker-compose.yml:2"),
                s("web"),
                s("web/Dockerfile"),
                Value::Null
            ),
            (
                s("api"),
                s("compose:docker-compose.yml:6"),
                s("."),
                s("services/api/Dockerfile"),
                Value::from("runtime")
            ),
            (
                s("tools/migrate"),
                s("dockerfile"),
                s("tools/migrate"),
                s("tools/migrate/Dockerfile"),
                Value::Null
            ),
        ]
    );
    assert_eq!(
        builds[1]["warnings"],
        serde_json::json!([
            "context is the repository root for a Dockerfile in services/api/: narrow it to ./services/api"
        ])
    );
    // The `runtime` stage copies main.py and, through `base`,
    // requirements.txt.
    assert_eq!(builds[1]["minimal_bytes"], 26);
}

#[test]
fn write_creates_the_config_and_refuses_to_overwrite_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let big = vec![b'x'; 9_000_000];
    write_tree(
        root,
        &[
            (
                "docker-compose.yml",
                b"services:\n  api:\n    build:\n      context: .\n      dockerfile: api/Dockerfile\n      target: app\n  web:\n    build: web\n",
            ),
            (
                "api/Dockerfile",
                b"FROM alpine AS app\nCOPY api/data.bin /data.bin\n",
            ),
            ("api/data.bin", &big),
            ("web/Dockerfile", b"FROM nginx\nCOPY index.html /\n"),
            ("web/index.html", b"<p>hi</p>\n"),
            ("node_modules/pkg/Dockerfile", b"FROM scratch\n"),
        ],
    );
    let config = root.join("reggie-build.toml");

    bin()
        .arg("discover")
        .arg(root)
        .arg("--write")
        .assert()
        .success()
        .stdout(predicate::str::contains("compose:docker-compose.yml:2"))
        .stderr(predicate::str::contains("wrote"));
    let text = fs::read_to_string(&config).unwrap();
    assert_eq!(
        text,
        "# Written by `reggie-build discover --write`. One [[image]] table per image.\n\
         [[image]]\n\
         name = \"api\"\n\
         dockerfile = \"api/Dockerfile\"\n\
         context = \".\"\n\
         target = \"app\"\n\
         budget = { max_size = \"11 MB\" }\n\
         \n\
         [[image]]\n\
         name = \"web\"\n\
         dockerfile = \"web/Dockerfile\"\n\
         context = \"web\"\n\
         budget = { max_size = \"1 KB\" }\n"
    );
    // The config reader accepts what discover writes.
    let loaded = reggie_build::config::Config::load(&config).unwrap();
    assert_eq!(loaded.images.len(), 2);
    assert_eq!(loaded.images[0].budget.max_bytes, Some(11_000_000));

    fs::write(&config, "# mine\n").unwrap();
    bin()
        .arg("discover")
        .arg(root)
        .arg("--write")
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "already exists; pass --force to overwrite it",
        ));
    assert_eq!(fs::read_to_string(&config).unwrap(), "# mine\n");

    bin()
        .arg("discover")
        .arg(root)
        .args(["--write", "--force", "--json"])
        .assert()
        .success();
    assert_eq!(fs::read_to_string(&config).unwrap(), text);
}

#[test]
fn force_needs_write() {
    bin()
        .args(["discover", "fixtures/reggie", "--force"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--write"));
}

#[test]
fn an_empty_tree_finds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let builds = json(&[dir.path().to_str().unwrap()]);
    assert!(builds.is_empty());
    bin()
        .arg("discover")
        .arg(dir.path())
        .assert()
        .success()
        .stdout("")
        .stderr(predicate::str::contains("no Dockerfile"));
}
