//! Machine formats for CI: GitHub workflow commands, SARIF 2.1.0 and
//! markdown, shared by `analyze` and `check`; [`html`] is the page.

pub mod html;
#[cfg(feature = "image")]
pub mod prove;
pub mod size;

use std::fmt::Write as _;

use crate::analyze::{report, Analysis, Finding, Severity};
use crate::check::Verdict;
use crate::units::humanize;

/// Output formats of `analyze` and `check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Text for a terminal.
    Human,
    /// The JSON report (its schema is versioned).
    Json,
    /// Markdown, e.g. for a pull request comment.
    Markdown,
    /// GitHub Actions workflow commands (annotations).
    Github,
    /// SARIF 2.1.0, for code scanning.
    Sarif,
}

/// GitHub Actions workflow commands, one per finding, so findings land on
/// the lines of a pull request.
pub fn github_annotations(findings: &[Finding]) -> String {
    let mut out = String::new();
    for f in findings {
        let level = match f.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "notice",
        };
        // A finding with no file (a budget whose line is not known) is
        // annotated on the run, not on a file.
        let mut props = String::new();
        if !f.file.is_empty() {
            let _ = write!(props, "file={},", escape_property(&relative(&f.file)));
            if let Some(line) = f.line {
                let _ = write!(props, "line={line},");
            }
        }
        let _ = write!(props, "title={}", escape_property(&f.rule));
        let _ = writeln!(out, "::{level} {props}::{}", escape_data(&f.message));
    }
    out
}

/// A budget failure as a workflow command (no file to point at).
pub fn github_error(title: &str, message: &str) -> String {
    format!(
        "::error title={}::{}\n",
        escape_property(title),
        escape_data(message)
    )
}

/// A workflow command's message: GitHub's own escapes (`%`, CR, LF), so
/// nothing in it ends the command or starts another; other control
/// characters escaped as text, so they do not reach the log as they are,
/// and the legacy `##[` command form, which the runner matches anywhere in
/// a line, neutralised as [`crate::text::escape`] does.
fn escape_data(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '%' => out.push_str("%25"),
            '\r' => out.push_str("%0D"),
            '\n' => out.push_str("%0A"),
            c => out.push_str(&crate::text::escape(c.encode_utf8(&mut [0; 4]))),
        }
    }
    if out.contains("##[") {
        out = out.replace("##[", "#\\x23[");
    }
    out
}

/// A workflow command's property value: also `:` and `,`, which end it.
fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// Text for a markdown table cell: control characters escaped, `|` kept
/// from ending the cell.
fn md(s: &str) -> String {
    crate::text::escape(s).replace('|', "\\|")
}

/// [`md`] for inside a code span: a backtick would end the span.
fn code(s: &str) -> String {
    md(s).replace('`', "'")
}

/// Paths in reports are as given; `./x` reads better as `x`.
fn relative(path: &str) -> String {
    path.strip_prefix("./").unwrap_or(path).to_string()
}

/// A SARIF 2.1.0 log with one result per finding.
pub fn sarif(findings: &[Finding]) -> String {
    let mut rule_ids: Vec<&str> = findings.iter().map(|f| f.rule.as_str()).collect();
    rule_ids.sort_unstable();
    rule_ids.dedup();
    let rules: Vec<serde_json::Value> = rule_ids
        .iter()
        .map(|id| {
            let level = findings
                .iter()
                .find(|f| f.rule == *id)
                .map_or("warning", |f| sarif_level(f.severity));
            serde_json::json!({
                "id": id,
                "name": id.replace(['/', '-'], "_"),
                "shortDescription": { "text": rule_description(id) },
                "defaultConfiguration": { "level": level },
            })
        })
        .collect();
    let results: Vec<serde_json::Value> = findings
        .iter()
        .map(|f| {
            let mut location = serde_json::json!({
                "physicalLocation": {
                    "artifactLocation": { "uri": relative(&f.file) },
                }
            });
            if let Some(line) = f.line.filter(|&l| l > 0) {
                location["physicalLocation"]["region"] = serde_json::json!({ "startLine": line });
            }
            // A result with no file known has no location (SARIF allows
            // none; an empty URI would not resolve).
            let locations = if f.file.is_empty() {
                Vec::new()
            } else {
                vec![location]
            };
            serde_json::json!({
                "ruleId": f.rule,
                "ruleIndex": rule_ids.iter().position(|r| *r == f.rule).unwrap_or(0),
                "level": sarif_level(f.severity),
                "message": { "text": f.message },
                "locations": locations,
            })
        })
        .collect();
    let log = serde_json::json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "reggie-build",
                    "version": env!("CARGO_PKG_VERSION"),
                    "rules": rules,
                }
            },
            "results": results,
        }]
    });
    crate::text::json(&log).unwrap_or_default()
}

fn sarif_level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "note",
    }
}

/// One line about each finding rule, for SARIF's rule metadata.
fn rule_description(id: &str) -> &'static str {
    match id {
        "ignore/root-anchored" => "An ignore pattern only matches at the context root",
        "ignore/inline-comment" => "A `#` after a pattern is part of the pattern",
        "ignore/matches-nothing" => "An ignore pattern matches nothing",
        "ignore/guards-output" => "An ignore pattern guards what a build or a test run writes",
        "ignore/near-miss" => "An ignore pattern misses an existing path by a typo or its root",
        "ignore/exception-unused" => "An exception re-includes nothing",
        "ignore/builder-difference" => "BuildKit and the classic builder send different files",
        "copy/source-excluded" => "A COPY/ADD source is excluded by the ignore file",
        "copy/source-missing" => "A COPY/ADD source is not in the context",
        "context/dockerfile-excluded" => "The Dockerfile is excluded from the context",
        "context/ignore-file-excluded" => "The ignore file excludes itself",
        "plan/whole-context" => "The build may read the whole context",
        "budget/exceeded" => "The context is over its size budget",
        "deploy/architecture" => "The image is built for another architecture than its deploy runs",
        id if id.starts_with("secrets/") => "A secret is sent in the build context",
        "size/max-size" => "The image is over its size budget",
        "size/max-layer" => "A layer of the image is over the layer budget",
        "size/max-waste" => "The image's waste is over its budget",
        "size/max-growth" => "The image grew more than its budget allows against the baseline",
        "size/waste/deleted" => "Bytes a later layer deletes stay in the image",
        "size/waste/overwritten" => "Bytes a later layer overwrites stay in the image",
        "size/waste/metadata-only" => {
            "A later layer copies whole files to change permissions or owner"
        }
        "size/waste/rewritten" => "A later layer writes the same files again",
        "size/waste/duplicate" => "The same content is at several paths of the image",
        "size/waste/package-cache" => "A package manager's cache or lists are left in a layer",
        "size/waste/toolchain" => "A build toolchain or headers are in the final image",
        "size/waste/vcs" => "A version-control directory is in the final image",
        "size/waste/context" => "A file analyze names as context waste is in the image",
        _ => "reggie-build finding",
    }
}

/// The markdown report of one analysis.
pub fn analysis_markdown(a: &Analysis) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "### reggie-build: `{}` (Dockerfile `{}`)\n",
        code(&crate::text::show_path(&a.context)),
        code(&crate::text::show_path(&a.dockerfile))
    );
    let _ = writeln!(o, "| | files | size |\n|---|---:|---:|");
    let _ = writeln!(
        o,
        "| Sent today | {} | {} |",
        a.before.files,
        humanize(a.before.bytes)
    );
    let _ = writeln!(
        o,
        "| Needed | {} | {} |",
        a.minimal.files,
        humanize(a.minimal.bytes)
    );
    if let Some(f) = report::factor(a.before, a.minimal) {
        let _ = writeln!(o, "\nThe build needs **{f:.1}x** less than it sends.");
    }
    if !a.top_unused.is_empty() {
        let _ = writeln!(
            o,
            "\n**Sent but never used**\n\n| path | size | files | what |\n|---|---:|---:|---|"
        );
        for u in &a.top_unused {
            let _ = writeln!(
                o,
                "| `{}` | {} | {} | {} |",
                code(&u.path),
                humanize(u.bytes),
                u.files,
                md(&u.kind)
            );
        }
    }
    if let Some(s) = &a.suggestion {
        let _ = writeln!(
            o,
            "\n**Narrowest context:** `{}` — SST: `{}`",
            code(&s.dir),
            code(&s.sst)
        );
    }
    findings_markdown(&mut o, &a.findings);
    o
}

/// The markdown report of a check.
pub fn check_markdown(verdicts: &[Verdict], growth: &[(String, Vec<String>)]) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "### reggie-build check\n");
    let _ = writeln!(
        o,
        "| image | uploaded | files | budget | result |\n|---|---:|---:|---:|---|"
    );
    for v in verdicts {
        let budget = match (v.max_bytes, v.max_files) {
            (Some(b), Some(f)) => format!("{} / {f} files", humanize(b)),
            (Some(b), None) => humanize(b),
            (None, Some(f)) => format!("{f} files"),
            (None, None) => "—".into(),
        };
        let result = if v.passed { "✅ pass" } else { "❌ fail" };
        let _ = writeln!(
            o,
            "| {} | {} | {} | {budget} | {result} |",
            md(&v.name),
            humanize(v.uploaded.bytes),
            v.uploaded.files
        );
    }
    for v in verdicts.iter().filter(|v| !v.passed) {
        let _ = writeln!(o, "\n**{}**: {}", md(&v.name), md(&failure_summary(v)));
        for fix in &v.fixes {
            let _ = writeln!(o, "- fix: {}", md(fix));
        }
    }
    for (name, lines) in growth.iter().filter(|(_, l)| !l.is_empty()) {
        let _ = writeln!(o, "\n**{}** grew against the baseline:", md(name));
        for l in lines {
            let _ = writeln!(o, "- {}", md(l));
        }
    }
    let all: Vec<Finding> = verdicts.iter().flat_map(|v| v.findings.clone()).collect();
    findings_markdown(&mut o, &all);
    o
}

fn findings_markdown(o: &mut String, findings: &[Finding]) {
    if findings.is_empty() {
        return;
    }
    let _ = writeln!(
        o,
        "\n**Findings**\n\n| severity | rule | where | message |\n|---|---|---|---|"
    );
    for f in findings {
        let loc = match f.line {
            Some(l) => format!("{}:{l}", f.file),
            None => f.file.clone(),
        };
        let _ = writeln!(
            o,
            "| {} | `{}` | `{}` | {} |",
            f.severity,
            code(&f.rule),
            code(&loc),
            md(&f.message)
        );
    }
}

/// Why a verdict failed, in one line.
pub fn failure_summary(v: &Verdict) -> String {
    let mut parts = Vec::new();
    if v.over_bytes > 0 {
        parts.push(format!(
            "{} over the {} budget ({} uploaded)",
            humanize(v.over_bytes),
            humanize(v.max_bytes.unwrap_or(0)),
            humanize(v.uploaded.bytes)
        ));
    }
    if v.over_files > 0 {
        parts.push(format!(
            "{} files over the {}-file budget",
            v.over_files,
            v.max_files.unwrap_or(0)
        ));
    }
    let errors = v
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    if errors > 0 {
        parts.push(format!("{errors} error finding(s)"));
    }
    let warnings = v
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Warning)
        .count();
    if parts.is_empty() && warnings > 0 {
        parts.push(format!("{warnings} warning(s) with --strict"));
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding() -> Finding {
        Finding {
            rule: "ignore/root-anchored".into(),
            severity: Severity::Warning,
            file: "./backend/.dockerignore".into(),
            line: Some(3),
            message: "50% of it, a: b, c\nnext".into(),
        }
    }

    #[test]
    fn github_commands_are_escaped() {
        let out = github_annotations(&[finding()]);
        assert_eq!(
            out,
            "::warning file=backend/.dockerignore,line=3,title=ignore/root-anchored::50%25 of it, a: b, c%0Anext\n"
        );
    }

    /// A name cannot end a workflow command or start another: CR, LF and
    /// `%` as GitHub escapes them, `:` and `,` in properties, other
    /// control characters as text.
    #[test]
    fn github_escapes_hostile_names() {
        let mut f = finding();
        f.file = "a\n::error::x\r,b:c%\x1b[31m".into();
        f.message = "m\n::error::pwned\x07%".into();
        assert_eq!(
            github_annotations(&[f]),
            "::warning file=a%0A%3A%3Aerror%3A%3Ax%0D%2Cb%3Ac%25\\x1b[31m,line=3,title=ignore/root-anchored::m%0A::error::pwned\\x07%25\n"
        );
    }

    #[test]
    fn sarif_has_results_with_locations() {
        let v: serde_json::Value = serde_json::from_str(&sarif(&[finding()])).unwrap();
        assert_eq!(v["version"], "2.1.0");
        let r = &v["runs"][0]["results"][0];
        assert_eq!(r["ruleId"], "ignore/root-anchored");
        assert_eq!(r["level"], "warning");
        assert_eq!(
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            "backend/.dockerignore"
        );
        assert_eq!(
            r["locations"][0]["physicalLocation"]["region"]["startLine"],
            3
        );
    }
}
