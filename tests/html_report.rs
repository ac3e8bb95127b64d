//! `analyze --format html` and `check --format html`, opened in headless
//! Chromium (Debian's `chromium`, installed by tests/run.sh) through
//! tests/html_report.py: the page's figures are the JSON report's, every
//! top unused entry has a treemap cell, nothing logs an error or makes a
//! request, and hostile file names stay text. Screenshots are kept in
//! target/html-report/.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn artifacts() -> PathBuf {
    let dir = Path::new(ROOT).join("target/html-report");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Chromium (`$CHROMIUM`, else `chromium` on PATH) and python3, or the
/// test fails (skips only with REGGIE_ALLOW_SKIP=1).
fn chromium(test: &str) -> Option<String> {
    let bin = std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let works = |cmd: &str, arg: &str| {
        Command::new(cmd)
            .arg(arg)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !works(&bin, "--version") {
        common::missing_prerequisite(
            test,
            &format!("no Chromium (`{bin} --version` failed)"),
            "Install it with `apt-get install -y chromium` (tests/run.sh does), or set CHROMIUM to its path.",
        );
        return None;
    }
    if !works("python3", "--version") {
        common::missing_prerequisite(test, "no python3 to drive Chromium", "Install python3.");
        return None;
    }
    Some(bin)
}

fn reggie(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_reggie-build"))
        .current_dir(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn json_of(dir: &Path, args: &[&str]) -> Value {
    let out = reggie(dir, args);
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&out.stderr)))
}

/// Opens `page` and returns what the driver saw; the screenshot goes
/// next to it.
fn render(chromium: &str, page: &Path, dark: bool) -> Value {
    let shot = page.with_extension(if dark { "dark.png" } else { "png" });
    let mut cmd = Command::new("python3");
    cmd.arg(Path::new(ROOT).join("tests/html_report.py"))
        .arg(chromium)
        .arg(page)
        .arg(&shot);
    if dark {
        cmd.arg("--dark");
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "html_report.py failed on {}: {}",
        page.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(shot.is_file(), "no screenshot {}", shot.display());
    serde_json::from_slice(&out.stdout).unwrap()
}

/// No console error, no exception, no request but the page itself.
fn assert_quiet(seen: &Value, page: &Path) {
    assert_eq!(seen["errors"], serde_json::json!([]), "{}", page.display());
    let url = seen["url"].as_str().unwrap();
    let requests: Vec<&str> = seen["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(requests, vec![url], "{}", page.display());
}

fn figure<'a>(dom: &'a Value, id: &str) -> Option<&'a Value> {
    dom["figures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == id)
}

fn assert_figure(dom: &Value, id: &str, want: &Value, what: &str) {
    let f = figure(dom, id).unwrap_or_else(|| panic!("{what}: no {id} figure"));
    assert_eq!(f["files"], want["files"], "{what}: {id} files");
    assert_eq!(f["bytes"], want["bytes"], "{what}: {id} bytes");
}

#[test]
fn fixture_reports_show_the_json_figures_and_every_top_unused_entry() {
    let Some(chromium) = chromium("fixture_reports_show_the_json_figures") else {
        return;
    };
    let fixtures = Path::new(ROOT).join("fixtures");
    let cases: &[(&str, &str, &[&str])] = &[
        ("reggie", "reggie", &[".", "-f", "backend/Dockerfile"]),
        ("reggie-backend", "reggie/backend", &["."]),
        ("node-multistage", "node-multistage", &["."]),
        ("mounts-wildcards", "mounts-wildcards", &["."]),
        (
            "compose-monorepo",
            "compose-monorepo",
            &[".", "-f", "services/api/Dockerfile"],
        ),
    ];
    for (name, dir, args) in cases {
        let dir = fixtures.join(dir);
        let mut json_args = vec!["analyze"];
        json_args.extend_from_slice(args);
        json_args.extend(["--format", "json"]);
        let json = json_of(&dir, &json_args);
        let page = artifacts().join(format!("{name}.html"));
        let page_arg = page.to_str().unwrap();
        let mut html_args = vec!["analyze"];
        html_args.extend_from_slice(args);
        html_args.extend(["--format", "html", "-o", page_arg]);
        let out = reggie(&dir, &html_args);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stdout.is_empty(), "{name}: -o writes nothing to stdout");

        let seen = render(&chromium, &page, false);
        assert_quiet(&seen, &page);
        let dom = &seen["dom"];
        assert_figure(dom, "before", &json["before"], name);
        assert_figure(dom, "minimal", &json["minimal"], name);
        match &json["suggested_ignore"] {
            Value::Object(ig) if ig["verified"] == true => {
                assert_figure(dom, "best", &json["suggested_ignore"], name)
            }
            _ => assert!(
                figure(dom, "best").is_none(),
                "{name}: best without a verified ignore file"
            ),
        }
        // Every top unused entry is a cell of the treemap.
        let cells: Vec<&str> = dom["cells"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let top = json["top_unused"].as_array().unwrap();
        assert!(!top.is_empty(), "{name}: the fixture has waste");
        for u in top {
            let path = u["path"].as_str().unwrap();
            assert!(
                cells.contains(&path),
                "{name}: no cell for {path} in {cells:?}"
            );
        }
        assert_eq!(
            dom["top_unused"].as_array().unwrap().len(),
            top.len(),
            "{name}: top unused rows"
        );
        assert_eq!(
            dom["findings"].as_array().unwrap().len(),
            json["findings"].as_array().unwrap().len(),
            "{name}: findings"
        );
        // Each line that reads the context is annotated, and together
        // they read at least what is needed (lines may overlap).
        let reads = dom["reads"].as_array().unwrap();
        let mut lines: Vec<u64> = json["used_paths"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["line"].as_u64().unwrap())
            .collect();
        lines.dedup();
        let annotated: Vec<u64> = reads.iter().map(|r| r["line"].as_u64().unwrap()).collect();
        assert_eq!(annotated, lines, "{name}: annotated lines");
        if json["whole_context_reasons"].as_array().unwrap().is_empty() {
            let files: u64 = reads.iter().map(|r| r["files"].as_u64().unwrap()).sum();
            assert!(
                files >= json["minimal"]["files"].as_u64().unwrap(),
                "{name}: the lines read {files} files"
            );
        }
        // The view is keyboard reachable and zooms.
        assert!(dom["focusable_cells"].as_u64().unwrap() > 0, "{name}");
        if let Some(crumbs) = dom["zoomed_crumbs"].as_str() {
            assert!(
                crumbs.starts_with("context/"),
                "{name}: breadcrumb {crumbs}"
            );
        }
        if json["suggested_ignore"].is_object() || json["suggestion"].is_object() {
            assert!(dom["copy_buttons_shown"].as_u64().unwrap() > 0, "{name}");
        }
    }
    // Dark mode renders as cleanly.
    let page = artifacts().join("reggie.html");
    assert_quiet(&render(&chromium, &page, true), &page);
}

/// The page's numbers and findings are static HTML: readable without
/// the script.
#[test]
fn numbers_and_findings_do_not_need_javascript() {
    let dir = Path::new(ROOT).join("fixtures/reggie");
    let out = reggie(
        &dir,
        &[
            "analyze",
            ".",
            "-f",
            "backend/Dockerfile",
            "--format",
            "html",
        ],
    );
    assert!(out.status.success());
    let html = String::from_utf8(out.stdout).unwrap();
    let json = json_of(
        &dir,
        &[
            "analyze",
            ".",
            "-f",
            "backend/Dockerfile",
            "--format",
            "json",
        ],
    );
    let before = format!(
        "data-figure=\"before\" data-files=\"{}\" data-bytes=\"{}\"",
        json["before"]["files"], json["before"]["bytes"]
    );
    assert!(html.contains(&before), "{before}");
    assert!(html.contains("<tr class=\"finding\""));
    // One file, nothing fetched: no src/href to anywhere.
    assert!(!html.contains(" src=") && !html.contains(" href="));
    assert!(html.contains("Content-Security-Policy"));
}

#[test]
fn check_report_shows_the_budget() {
    let Some(chromium) = chromium("check_report_shows_the_budget") else {
        return;
    };
    let dir = Path::new(ROOT).join("fixtures/reggie");
    let args = [
        "check",
        ".",
        "-f",
        "backend/Dockerfile",
        "--max-size",
        "1 kB",
        "--format",
    ];
    let mut json_args = args.to_vec();
    json_args.push("json");
    let json = json_of(&dir, &json_args);
    let page = artifacts().join("check-reggie.html");
    let mut html_args = args.to_vec();
    html_args.extend(["html", "-o", page.to_str().unwrap()]);
    let out = reggie(&dir, &html_args);
    assert_eq!(out.status.code(), Some(1), "over budget fails");
    let seen = render(&chromium, &page, false);
    assert_quiet(&seen, &page);
    let dom = &seen["dom"];
    assert_figure(dom, "uploaded", &json["images"][0]["uploaded"], "check");
    let budget = figure(dom, "budget").expect("a budget row");
    assert_eq!(budget["bytes"], json["images"][0]["max_bytes"]);
    assert!(dom["body_text"].as_str().unwrap().contains("fail"));
}

#[test]
fn hostile_names_are_shown_escaped_and_never_run() {
    let Some(chromium) = chromium("hostile_names_are_shown_escaped_and_never_run") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let names = [
        "<img src=x onerror=window.__pwned=1>",
        "<svg onload=window.__pwned=2>",
        "\"quoted' & <b>",
        "new\nline",
        "bidi\u{202e}txt.js",
        "sep\u{2028}par\u{2029}",
        "<!--",
    ];
    std::fs::create_dir(tmp.path().join("app")).unwrap();
    std::fs::write(tmp.path().join("app/main.py"), "print(1)\n").unwrap();
    for (i, n) in names.iter().enumerate() {
        std::fs::write(tmp.path().join(n), "x".repeat(1000 * (i + 1))).unwrap();
    }
    std::fs::create_dir(tmp.path().join("<script>")).unwrap();
    std::fs::write(tmp.path().join("<script>/x.js"), "y".repeat(9000)).unwrap();
    std::fs::write(
        tmp.path().join("Dockerfile"),
        "FROM scratch\n# </script><script>window.__pwned=3</script><!--\nCOPY app /app\n",
    )
    .unwrap();
    let page = artifacts().join("hostile.html");
    let out = reggie(
        tmp.path(),
        &[
            "analyze",
            ".",
            "--format",
            "html",
            "-o",
            page.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen = render(&chromium, &page, false);
    assert_quiet(&seen, &page);
    let dom = &seen["dom"];
    assert_eq!(dom["pwned"], Value::Null, "a name ran as script");
    assert_eq!(dom["scripts"], 2, "only the model and the page's script");
    assert_eq!(dom["imgs"], 0, "a name became an element");
    // Cells carry the names as they are (attributes, not markup).
    let cells: Vec<&str> = dom["cells"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for n in names {
        assert!(cells.contains(&n), "no cell for {n:?} in {cells:?}");
    }
    assert!(cells.contains(&"<script>/"));
    // What is shown: markup as text, control and bidi characters visible.
    let text = dom["body_text"].as_str().unwrap();
    for shown in [
        "<img src=x onerror=window.__pwned=1>",
        "\"quoted' & <b>",
        "new\\nline",
        "bidi\\u{202e}txt.js",
        "sep\\u{2028}par\\u{2029}",
        "# </script><script>window.__pwned=3</script><!--",
    ] {
        assert!(text.contains(shown), "{shown:?} not shown in {text}");
    }
    for raw in ['\u{202e}', '\u{2028}', '\u{2029}'] {
        assert!(!text.contains(raw), "{raw:?} shown raw");
    }
    let labels = dom["labels"].to_string();
    assert!(!labels.contains('\u{202e}'), "{labels}");
}
