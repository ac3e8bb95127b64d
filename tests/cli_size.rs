//! CLI tests of `size`'s budgets and CI formats on `docker save` archives
//! written here (no daemon): a budget exceeded fails naming the
//! Dockerfile line and the fix, from the command line and from
//! reggie-build.toml; growth against a baseline report, step by step; the
//! json, markdown, github, sarif and html outputs; hostile paths and
//! baselines.

use std::path::Path;
use std::process::Output;

use assert_cmd::Command;
use sha2::{Digest, Sha256};

const DOCKERFILE: &str = "\
FROM scratch
COPY big.bin /app/big.bin
RUN rm /app/big.bin
COPY app/ /app/
";

fn hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A layer tar of `(path, bytes)`; an empty path list is an empty layer.
fn layer(files: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_size(data.len() as u64);
        h.set_entry_type(tar::EntryType::Regular);
        // Written raw: the name may hold what a hostile image holds.
        h.as_gnu_mut().unwrap().name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_cksum();
        b.append(&h, &data[..]).unwrap();
    }
    b.into_inner().unwrap()
}

/// Bytes that differ per seed (no two files alike by accident).
fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1] ^ seed)
        .collect()
}

/// Writes `image.tar` (Docker 20.10's `docker save` layout) and the
/// Dockerfile into `dir`: layer 1 adds a 300,000-byte file (at `big`),
/// layer 2 deletes it, layer 3 adds `app_bytes` of application.
fn image(dir: &Path, big: &str, app_bytes: usize) {
    let wh = match big.rsplit_once('/') {
        Some((d, n)) => format!("{d}/.wh.{n}"),
        None => format!(".wh.{big}"),
    };
    let layers = [
        layer(&[(big, bytes(300_000, 1))]),
        layer(&[(&wh, Vec::new())]),
        layer(&[
            ("app/main.py", bytes(app_bytes, 2)),
            ("app/lib.py", bytes(1_000, 3)),
        ]),
    ];
    let diff_ids: Vec<String> = layers
        .iter()
        .map(|l| format!("\"sha256:{}\"", hex(l)))
        .collect();
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{}},"rootfs":{{"type":"layers","diff_ids":[{}]}},"history":[{{"created_by":"COPY big.bin /app/big.bin # buildkit"}},{{"created_by":"RUN /bin/sh -c rm /app/big.bin # buildkit"}},{{"created_by":"COPY app/ /app/ # buildkit"}}]}}"#,
        diff_ids.join(",")
    );
    let config_name = format!("{}.json", hex(config.as_bytes()));
    let names: Vec<String> = (0..3).map(|i| format!("l{i}/layer.tar")).collect();
    let manifest = format!(
        r#"[{{"Config":"{config_name}","RepoTags":["app:1"],"Layers":[{}]}}]"#,
        names
            .iter()
            .map(|n| format!("\"{n}\""))
            .collect::<Vec<_>>()
            .join(",")
    );
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, name, data).unwrap();
    };
    for (n, l) in names.iter().zip(&layers) {
        add(n, l);
    }
    add(&config_name, config.as_bytes());
    add("manifest.json", manifest.as_bytes());
    std::fs::write(dir.join("image.tar"), b.into_inner().unwrap()).unwrap();
    std::fs::write(dir.join("Dockerfile"), DOCKERFILE).unwrap();
}

fn fixture(app_bytes: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    image(dir.path(), "app/big.bin", app_bytes);
    dir
}

fn size(dir: &Path, args: &[&str]) -> Output {
    Command::cargo_bin("reggie-build")
        .unwrap()
        .current_dir(dir)
        .env_remove("GITHUB_STEP_SUMMARY")
        .arg("size")
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_budget_exceeded_fails_naming_the_line_the_figure_and_the_fix() {
    let dir = fixture(50_000);
    let within = size(
        dir.path(),
        &["image.tar", "-f", "Dockerfile", "--max-size", "1MB"],
    );
    assert_eq!(within.status.code(), Some(0), "{}", stderr(&within));
    assert!(stdout(&within).contains("ok   max_size (--max-size)"));

    let out = size(
        dir.path(),
        &[
            "image.tar",
            "-f",
            "Dockerfile",
            "--max-waste",
            "100kB",
            "--max-layer",
            "200kB",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    for want in [
        "FAIL max_waste (--max-waste): waste 300 kB (1 item) is 200 kB over the 100 kB budget",
        "largest contributor: deleted in a later layer: /app/big.bin (300 kB) at Dockerfile:2 COPY big.bin /app/big.bin",
        "FAIL max_layer (--max-layer): largest layer",
        "fix: do not copy it",
        "its files: `reggie-build size image.tar --tree 1`",
    ] {
        assert!(text.contains(want), "{want:?} not in:\n{text}");
    }
    // The suggested command works.
    let tree = size(dir.path(), &["image.tar", "--tree", "1"]);
    assert!(stdout(&tree).contains("/app/big.bin"), "{}", stderr(&tree));
}

#[test]
fn budgets_come_from_the_config_and_the_command_line_wins() {
    let dir = fixture(50_000);
    std::fs::write(
        dir.path().join("reggie-build.toml"),
        "[[image]]\nname = \"app\"\nsize_budget = { max_waste = \"100kB\", max_size = \"10MB\" }\n",
    )
    .unwrap();
    // Matched by its Dockerfile.
    let out = size(dir.path(), &["image.tar", "-f", "Dockerfile"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("FAIL max_waste (reggie-build.toml:3)") && text.contains("Dockerfile:2"),
        "{text}"
    );
    assert!(
        text.contains("ok   max_size (reggie-build.toml:3)"),
        "{text}"
    );
    // By name, which also gives the Dockerfile.
    let out = size(dir.path(), &["image.tar", "--name", "app"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("at Dockerfile:2 COPY big.bin"));
    // The command line overrides a limit.
    let out = size(
        dir.path(),
        &["image.tar", "--name", "app", "--max-waste", "1MB"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("ok   max_waste (--max-waste)"));
    // An unknown name, a bad budget: errors naming them.
    let out = size(dir.path(), &["image.tar", "--name", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no image named `nope`"),
        "{}",
        stderr(&out)
    );
    std::fs::write(
        dir.path().join("reggie-build.toml"),
        "[[image]]\nname = \"app\"\nsize_budget = { max_layer = \"big\" }\n",
    )
    .unwrap();
    let out = size(dir.path(), &["image.tar"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("reggie-build.toml:3") && stderr(&out).contains("max_layer"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn growth_against_a_baseline_is_reported_per_line() {
    let dir = fixture(50_000);
    let base = size(
        dir.path(),
        &["image.tar", "-f", "Dockerfile", "--format", "json"],
    );
    assert!(base.status.success());
    std::fs::write(dir.path().join("base.json"), &base.stdout).unwrap();
    image(dir.path(), "app/big.bin", 250_000);
    let out = size(
        dir.path(),
        &[
            "image.tar",
            "-f",
            "Dockerfile",
            "--baseline",
            "base.json",
            "--max-growth",
            "10%",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("Growth against the baseline: +200.19 kB"),
        "{text}"
    );
    assert!(
        text.contains("+200.19 kB  Dockerfile:4 COPY app/ /app/"),
        "{text}"
    );
    assert!(text.contains("FAIL max_growth (--max-growth)"), "{text}");
    assert!(text.contains("at Dockerfile:4 COPY app/ /app/"), "{text}");
    // In bytes, within.
    let out = size(
        dir.path(),
        &[
            "image.tar",
            "-f",
            "Dockerfile",
            "--baseline",
            "base.json",
            "--max-growth",
            "1MB",
            "--format",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["budgets"]["growth"]["delta"], 200_192);
    assert_eq!(v["budgets"]["growth"]["steps"][0]["line"], 4);
    assert_eq!(v["budgets"]["checks"][0]["passed"], true);
    // A report with budgets reads as a baseline too.
    std::fs::write(dir.path().join("again.json"), &out.stdout).unwrap();
    let out = size(dir.path(), &["image.tar", "--baseline", "again.json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("Growth against the baseline: +0 B"));
}

#[test]
fn a_bad_baseline_is_a_clear_error() {
    let dir = fixture(1_000);
    let cases: &[(&str, &[u8], &str)] = &[
        ("garbage.json", b"\x00\xffnot json\x1b[31m", "not JSON"),
        ("empty.json", b"", "not JSON"),
        ("check.json", br#"{"schema":1,"result":"pass","images":[]}"#, "missing field `size`"),
        ("newer.json", br#"{"schema":99}"#, "schema 99"),
        ("array.json", b"[1,2]", "not a `reggie-build size --format json` report"),
        (
            "liar.json",
            br#"{"schema":1,"size":{"uncompressed":1},"layers":[{"uncompressed":1,"step":7}],"steps":[]}"#,
            "names a step",
        ),
    ];
    for (name, data, want) in cases {
        std::fs::write(dir.path().join(name), data).unwrap();
        let out = size(dir.path(), &["image.tar", "--baseline", name]);
        assert_eq!(out.status.code(), Some(2), "{name}");
        let err = stderr(&out);
        assert!(err.contains(want), "{name}: {want:?} not in {err}");
        assert!(err.contains(name), "{name}: {err}");
        assert!(!err.contains('\x1b'), "{name}: raw escape in {err:?}");
        assert!(out.stdout.is_empty(), "{name}: printed a report");
    }
    let out = size(dir.path(), &["image.tar", "--baseline", "missing.json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cannot read the baseline"),
        "{}",
        stderr(&out)
    );
    let out = size(dir.path(), &["image.tar", "--max-growth", "5%"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--baseline"), "{}", stderr(&out));
}

#[test]
fn ci_formats_point_at_the_dockerfile_line() {
    let dir = fixture(50_000);
    let summary = dir.path().join("summary.md");
    let out = Command::cargo_bin("reggie-build")
        .unwrap()
        .current_dir(dir.path())
        .env("GITHUB_STEP_SUMMARY", &summary)
        .args([
            "size",
            "image.tar",
            "-f",
            "Dockerfile",
            "--max-waste",
            "100kB",
            "--format",
            "github",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.starts_with("::error file=Dockerfile,line=2,title=size/max-waste::waste 300 kB"),
        "{text}"
    );
    assert!(
        text.contains("::warning file=Dockerfile,line=2,title=size/waste/deleted::300 kB wasted"),
        "{text}"
    );
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(
        md.contains("❌ over budget") && md.contains("| `max_waste` |"),
        "{md}"
    );

    let out = size(
        dir.path(),
        &[
            "image.tar",
            "-f",
            "Dockerfile",
            "--max-waste",
            "100kB",
            "--format",
            "sarif",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let sarif: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results[0]["ruleId"], "size/max-waste");
    assert_eq!(results[0]["level"], "error");
    let loc = &results[0]["locations"][0]["physicalLocation"];
    assert_eq!(loc["artifactLocation"]["uri"], "Dockerfile");
    assert_eq!(loc["region"]["startLine"], 2);
    assert_eq!(results[1]["ruleId"], "size/waste/deleted");

    // Without a Dockerfile the budget still fails, annotated on the run.
    let out = size(
        dir.path(),
        &["image.tar", "--max-waste", "100kB", "--format", "github"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).starts_with("::error title=size/max-waste::"),
        "{}",
        stdout(&out)
    );

    let out = size(
        dir.path(),
        &[
            "image.tar",
            "-f",
            "Dockerfile",
            "--max-layer",
            "1MB",
            "--format",
            "html",
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    let html = stdout(&out);
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("<h3 id=\"layers\">Layers</h3>"));
    assert!(
        html.contains("Dockerfile:4 [stage-0] COPY app/ /app/"),
        "{html}"
    );
}

/// A path in an image is hostile input: it cannot end a workflow command
/// or start another, nor break a markdown table.
#[test]
fn hostile_paths_are_escaped_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    image(dir.path(), "app/b\n::error::pwned|x", 1_000);
    for format in ["github", "markdown", "human", "sarif", "html"] {
        let out = size(
            dir.path(),
            &[
                "image.tar",
                "-f",
                "Dockerfile",
                "--max-waste",
                "1kB",
                "--format",
                format,
            ],
        );
        assert_eq!(out.status.code(), Some(1), "{format}: {}", stderr(&out));
        let text = stdout(&out);
        assert!(
            !text.lines().any(|l| l.starts_with("::error::pwned")),
            "{format}: {text}"
        );
        assert!(text.contains("pwned"), "{format}: the path is not shown");
        if format == "markdown" {
            assert!(!text.contains("pwned|x"), "{text}");
        }
    }
}

#[test]
fn json_and_markdown_reports_with_budgets() {
    let dir = fixture(50_000);
    std::fs::write(dir.path().join("base.json"), b"").unwrap();
    let base = size(
        dir.path(),
        &["image.tar", "-f", "Dockerfile", "--format", "json"],
    );
    std::fs::write(dir.path().join("base.json"), &base.stdout).unwrap();
    image(dir.path(), "app/big.bin", 60_000);
    let args = [
        "image.tar",
        "-f",
        "Dockerfile",
        "--baseline",
        "base.json",
        "--max-waste",
        "100kB",
        "--max-size",
        "1MB",
    ];
    let json = size(dir.path(), &[&args[..], &["--format", "json"]].concat());
    assert_eq!(json.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    insta::assert_snapshot!(
        "size_budgets_json",
        serde_json::to_string_pretty(&v["budgets"]).unwrap()
    );
    let md = size(dir.path(), &[&args[..], &["--format", "markdown"]].concat());
    assert_eq!(md.status.code(), Some(1));
    insta::assert_snapshot!("size_budgets_markdown", stdout(&md));
}
