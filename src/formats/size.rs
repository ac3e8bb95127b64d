//! `size` reports as text: the totals, every history entry by Dockerfile
//! line with its layer, the waste by kind and the largest items with
//! their fixes; and `--tree` listings. The JSON form is the
//! [`Report`](crate::inspect::Report) serialized, with the budgets'
//! verdict; markdown for a pull request or the step summary; findings at
//! Dockerfile lines for GitHub workflow commands and SARIF.

use std::fmt::Write as _;

use crate::analyze::{Finding, Severity};
use crate::inspect::budget::{signed, Verdict};
use crate::inspect::report::{LayerRef, Origin, Report};
use crate::inspect::TreeRow;
use crate::units::humanize;

fn origin_text(o: &Origin, dockerfile: &str) -> String {
    match o {
        Origin::Base {
            image: Some(i),
            line: Some(l),
        } => format!("base image {i} ({dockerfile}:{l})"),
        Origin::Base { image, .. } => match image {
            Some(i) => format!("base image {i}"),
            None => "base image".into(),
        },
        Origin::Instruction {
            line, text, stage, ..
        } => {
            format!("{dockerfile}:{line} [{stage}] {text}")
        }
        Origin::Unknown => "unknown step".into(),
    }
}

fn at(r: &LayerRef, dockerfile: &str) -> String {
    match &r.origin {
        Origin::Instruction { line, text, .. } => {
            format!("{dockerfile}:{line} (layer {}: {text})", r.layer)
        }
        o => format!("layer {} ({})", r.layer, origin_text(o, dockerfile)),
    }
}

/// The report for a terminal; `top` items of waste in detail.
pub fn human(report: &Report, top: usize) -> String {
    let mut out = String::new();
    let df = report.dockerfile.as_deref().unwrap_or("Dockerfile");
    let name = report.image.as_deref().unwrap_or("image");
    let _ = writeln!(out, "{name}  ({}, {})", report.source, report.platform);
    let compressed = match report.size.compressed {
        Some(c) => format!(", {} compressed (as pushed)", humanize(c)),
        None => String::new(),
    };
    let _ = writeln!(
        out,
        "size: {} uncompressed{compressed} in {} layers; the final image shows {} of files",
        humanize(report.size.uncompressed),
        report.layers.len(),
        humanize(report.size.files)
    );
    let share = match report.size.uncompressed {
        0 => 0.0,
        n => report.waste_bytes as f64 * 100.0 / n as f64,
    };
    let _ = writeln!(
        out,
        "waste: {} ({share:.1}% of the layers) in {} items",
        humanize(report.waste_bytes),
        report.waste.len()
    );
    let _ = writeln!(out, "\nSteps (layers by Dockerfile line):");
    let _ = writeln!(
        out,
        "  {:>5}  {:>9}  {:>9}  {:>9}  {:<12}  step",
        "layer", "size", "files", "hidden", "matched"
    );
    for s in &report.steps {
        let method = serde_json::to_value(s.method)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let what = match &s.origin {
            Origin::Unknown => format!("unknown: {}", s.created_by),
            o => origin_text(o, df),
        };
        match s.layer.and_then(|l| report.layers.get(l - 1)) {
            Some(l) => {
                let hidden = match l.hidden {
                    0 => "-".to_string(),
                    h => humanize(h),
                };
                let _ = writeln!(
                    out,
                    "  {:>5}  {:>9}  {:>9}  {:>9}  {:<12}  {what}",
                    l.number,
                    humanize(l.uncompressed),
                    humanize(l.files),
                    hidden,
                    method
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "  {:>5}  {:>9}  {:>9}  {:>9}  {:<12}  {what}",
                    "-", "no layer", "", "", method
                );
            }
        }
    }
    // Layers no history entry describes.
    for l in report.layers.iter().filter(|l| l.step.is_none()) {
        let _ = writeln!(
            out,
            "  {:>5}  {:>9}  {:>9}  {:>9}  {:<12}  {}",
            l.number,
            humanize(l.uncompressed),
            humanize(l.files),
            humanize(l.hidden),
            "unmatched",
            &l.diff_id[..19]
        );
    }
    if !report.waste_by_kind.is_empty() {
        let _ = writeln!(out, "\nWaste by kind:");
        for k in &report.waste_by_kind {
            let _ = writeln!(
                out,
                "  {:>9}  {} ({} item{})",
                humanize(k.bytes),
                k.label,
                k.items,
                if k.items == 1 { "" } else { "s" }
            );
        }
        let shown = report.waste.len().min(top);
        let _ = writeln!(
            out,
            "\nLargest waste ({shown} of {}{}):",
            report.waste.len(),
            if shown < report.waste.len() {
                "; --top N for more, --format json for all"
            } else {
                ""
            }
        );
        for w in report.waste.iter().take(top) {
            let files = match w.files {
                1 => String::new(),
                n => format!(" ({n} files)"),
            };
            let _ = writeln!(
                out,
                "  {:>9}  {}: {}{files}",
                humanize(w.bytes),
                w.what,
                w.path
            );
            let _ = writeln!(out, "             added by {}", at(&w.added_by, df));
            if let Some(h) = &w.hidden_by {
                let verb = match w.kind {
                    crate::inspect::waste::Kind::Duplicate => "first copy by",
                    _ => "hidden by",
                };
                let _ = writeln!(out, "             {verb} {}", at(h, df));
            }
            let _ = writeln!(out, "             fix: {}", w.fix);
        }
    } else {
        let _ = writeln!(out, "\nNo waste found.");
    }
    for n in &report.notes {
        let _ = writeln!(out, "\nnote: {n}");
    }
    out
}

/// `--tree`: one entry per line, `ls -l`-like.
pub fn tree(rows: &[TreeRow]) -> String {
    let mut out = String::new();
    for r in rows {
        let target = match &r.target {
            Some(t) if r.kind == "hardlink" => format!(" => {t}"),
            Some(t) => format!(" -> {t}"),
            None => String::new(),
        };
        let _ = writeln!(
            out,
            "{:<8} {} {:>9} {:>11} L{:<3} {}{target}",
            r.kind,
            r.mode,
            humanize(r.size),
            r.owner,
            r.layer,
            r.path
        );
    }
    out
}

/// The budgets' verdict for a terminal: one line per budget, and for a
/// failure the largest contributor's line and the fix.
pub fn budgets_human(verdict: &Verdict) -> String {
    let mut out = String::new();
    if let Some(g) = &verdict.growth {
        let _ = writeln!(
            out,
            "\nGrowth against the baseline: {} ({} → {})",
            signed(g.delta),
            humanize(g.before),
            humanize(g.after)
        );
        for s in g.steps.iter().take(GROWTH_SHOWN) {
            let _ = writeln!(
                out,
                "  {:>10}  {} ({} → {})",
                signed(s.delta),
                s.step,
                humanize(s.before),
                humanize(s.after)
            );
        }
        if g.steps.len() > GROWTH_SHOWN {
            let _ = writeln!(
                out,
                "  ... {} more steps changed (--format json for all)",
                g.steps.len() - GROWTH_SHOWN
            );
        }
    }
    if verdict.checks.is_empty() {
        return out;
    }
    let _ = writeln!(out, "\nBudgets:");
    for c in &verdict.checks {
        let mark = if c.passed { "ok  " } else { "FAIL" };
        let _ = writeln!(
            out,
            "  {mark} {} ({}): {}",
            c.budget,
            crate::text::escape(&c.declared),
            c.message
        );
        if c.passed {
            continue;
        }
        if let Some(w) = &c.culprit {
            let _ = writeln!(
                out,
                "       largest contributor: {} ({}) at {}",
                w.what,
                humanize(w.bytes),
                w.at
            );
        }
        if let Some(fix) = &c.fix {
            let _ = writeln!(out, "       fix: {fix}");
        }
    }
    out
}

/// Steps of the growth shown in text formats.
const GROWTH_SHOWN: usize = 10;

/// The report and the budgets' verdict as one JSON document: the
/// [`Report`]'s fields, plus `budgets` when any were checked (a report
/// with budgets still reads as a baseline).
pub fn json(report: &Report, verdict: Option<&Verdict>) -> serde_json::Result<String> {
    #[derive(serde::Serialize)]
    struct WithBudgets<'a> {
        #[serde(flatten)]
        report: &'a Report,
        #[serde(skip_serializing_if = "Option::is_none")]
        budgets: Option<&'a Verdict>,
    }
    crate::text::json(&WithBudgets {
        report,
        budgets: verdict,
    })
    .map(|s| s + "\n")
}

/// A markdown table cell: control characters escaped, `|` kept from
/// ending the cell, backticks from ending a code span.
fn cell(s: &str) -> String {
    prose(s).replace('`', "'")
}

/// Text of ours with code spans in it (the fixes): backticks kept.
fn prose(s: &str) -> String {
    crate::text::escape(s).replace('|', "\\|")
}

/// The report as markdown (a pull request comment, the step summary):
/// the totals, the budgets, the growth, the layers by line and the
/// largest waste items with their fixes.
pub fn markdown(report: &Report, verdict: Option<&Verdict>, top: usize) -> String {
    let mut o = String::new();
    let df = report.dockerfile.as_deref().unwrap_or("Dockerfile");
    let name = report.image.as_deref().unwrap_or("image");
    let result = match verdict {
        Some(v) if !v.checks.is_empty() => {
            if v.passed {
                " ✅ within budget"
            } else {
                " ❌ over budget"
            }
        }
        _ => "",
    };
    let _ = writeln!(o, "### reggie-build size: `{}`{result}\n", cell(name));
    let _ = writeln!(o, "| | size |\n|---|---:|");
    let _ = writeln!(
        o,
        "| Layers (uncompressed) | {} |",
        humanize(report.size.uncompressed)
    );
    if let Some(c) = report.size.compressed {
        let _ = writeln!(o, "| As pushed (compressed) | {} |", humanize(c));
    }
    let _ = writeln!(
        o,
        "| Files the image shows | {} |",
        humanize(report.size.files)
    );
    let _ = writeln!(
        o,
        "| Waste ({} item{}) | {} |",
        report.waste.len(),
        if report.waste.len() == 1 { "" } else { "s" },
        humanize(report.waste_bytes)
    );
    if let Some(v) = verdict {
        if !v.checks.is_empty() {
            let _ = writeln!(
                o,
                "\n| budget | limit | measured | result | largest contributor |\n|---|---:|---:|---|---|"
            );
            for c in &v.checks {
                let culprit = c.culprit.as_ref().map_or(String::new(), |w| {
                    format!(
                        "{} ({}) `{}`",
                        cell(&w.what),
                        humanize(w.bytes),
                        cell(&w.at)
                    )
                });
                let _ = writeln!(
                    o,
                    "| `{}` | {} | {} | {} | {culprit} |",
                    c.budget,
                    cell(&c.limit_text),
                    humanize(c.measured),
                    if c.passed { "✅ ok" } else { "❌ over" }
                );
            }
            for c in v.checks.iter().filter(|c| !c.passed) {
                if let Some(fix) = &c.fix {
                    let _ = writeln!(
                        o,
                        "\n**{}**: {}  \nfix: {}",
                        c.budget,
                        cell(&c.message),
                        prose(fix)
                    );
                }
            }
        }
        if let Some(g) = &v.growth {
            let _ = writeln!(
                o,
                "\n**Against the baseline:** {} ({} → {})\n",
                signed(g.delta),
                humanize(g.before),
                humanize(g.after)
            );
            if !g.steps.is_empty() {
                let _ = writeln!(
                    o,
                    "| step | before | after | change |\n|---|---:|---:|---:|"
                );
                for s in g.steps.iter().take(GROWTH_SHOWN) {
                    let _ = writeln!(
                        o,
                        "| `{}` | {} | {} | {} |",
                        cell(&s.step),
                        humanize(s.before),
                        humanize(s.after),
                        signed(s.delta)
                    );
                }
            }
        }
    }
    let _ = writeln!(
        o,
        "\n<details><summary>Layers by Dockerfile line ({})</summary>\n\n| layer | size | hidden later | step |\n|---:|---:|---:|---|",
        report.layers.len()
    );
    for l in &report.layers {
        let step = match report.layer_origin(l.number) {
            Origin::Unknown => l
                .step
                .and_then(|s| report.steps.get(s))
                .map_or("unmatched".to_string(), |s| {
                    format!("unknown: {}", s.created_by)
                }),
            o => origin_text(&o, df),
        };
        let _ = writeln!(
            o,
            "| {} | {} | {} | `{}` |",
            l.number,
            humanize(l.uncompressed),
            humanize(l.hidden),
            cell(&step)
        );
    }
    o.push_str("\n</details>\n");
    if !report.waste.is_empty() {
        let _ = writeln!(
            o,
            "\n**Largest waste** ({} of {})\n\n| size | what | path | added by | fix |\n|---:|---|---|---|---|",
            report.waste.len().min(top),
            report.waste.len()
        );
        for w in report.waste.iter().take(top) {
            let _ = writeln!(
                o,
                "| {} | {} | `{}` | `{}` | {} |",
                humanize(w.bytes),
                cell(&w.what),
                cell(&w.path),
                cell(&at(&w.added_by, df)),
                prose(&w.fix)
            );
        }
    }
    for n in &report.notes {
        let _ = writeln!(o, "\n> note: {}", cell(n));
    }
    o
}

/// The report as findings at Dockerfile lines, for GitHub workflow
/// commands and SARIF: an error per budget exceeded (at the line of its
/// largest contributor), a warning per waste item among the `top`
/// largest (at the line that added it). A finding with no Dockerfile line
/// known has an empty `file`.
pub fn findings(report: &Report, verdict: Option<&Verdict>, top: usize) -> Vec<Finding> {
    let df = report.dockerfile.as_deref().unwrap_or("Dockerfile");
    let mut out = Vec::new();
    for c in verdict
        .iter()
        .flat_map(|v| v.checks.iter())
        .filter(|c| !c.passed)
    {
        let mut message = format!("{} ({})", c.message, c.declared);
        let (mut file, mut line) = (String::new(), None);
        if let Some(w) = &c.culprit {
            let _ = write!(
                message,
                "; largest contributor: {} ({}) at {}",
                w.what,
                humanize(w.bytes),
                w.at
            );
            if let (Some(f), Some(l)) = (&w.file, w.line) {
                file = f.clone();
                line = Some(l);
            }
        }
        if let Some(fix) = &c.fix {
            let _ = write!(message, "; fix: {fix}");
        }
        out.push(Finding {
            rule: format!("size/{}", c.budget.replace('_', "-")),
            severity: Severity::Error,
            file,
            line,
            message,
        });
    }
    for w in report.waste.iter().take(top) {
        let line = match &w.added_by.origin {
            Origin::Instruction { line, .. } => Some(*line),
            Origin::Base { line, .. } => *line,
            Origin::Unknown => None,
        };
        let mut message = format!("{} wasted: {}: {}", humanize(w.bytes), w.what, w.path);
        if w.files > 1 {
            let _ = write!(message, " ({} files)", w.files);
        }
        let _ = write!(message, "; added by {}", at(&w.added_by, df));
        if let Some(h) = &w.hidden_by {
            let verb = match w.kind {
                crate::inspect::waste::Kind::Duplicate => "first copy by",
                _ => "hidden by",
            };
            let _ = write!(message, ", {verb} {}", at(h, df));
        }
        let _ = write!(message, "; fix: {}", w.fix);
        let kind = serde_json::to_value(w.kind)
            .ok()
            .and_then(|v| v.as_str().map(|s| s.replace('_', "-")))
            .unwrap_or_default();
        out.push(Finding {
            rule: format!("size/waste/{kind}"),
            severity: Severity::Warning,
            file: if line.is_some() {
                df.to_string()
            } else {
                String::new()
            },
            line,
            message,
        });
    }
    out
}
