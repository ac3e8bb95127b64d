//! `size` reports as text: the totals, every history entry by Dockerfile
//! line with its layer, the waste by kind and the largest items with
//! their fixes; and `--tree` listings. The JSON form is the
//! [`Report`](crate::inspect::Report) serialized.

use std::fmt::Write as _;

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
