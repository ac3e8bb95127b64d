//! Rendering an [`Analysis`]: a human report and a versioned JSON object.

use std::fmt::Write as _;

use serde::Serialize;

use crate::units::humanize;

use super::{Analysis, Finding, Group, Totals, Unused, UsedPath};
use crate::context::Builder;
use crate::text::{escape as esc, show_path};

/// The JSON schema version of `analyze --json`.
pub const SCHEMA: u32 = 1;

/// Styling for the human report.
#[derive(Debug, Clone, Copy, Default)]
pub struct Style {
    /// ANSI colours on.
    pub color: bool,
}

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
    fn bold(&self, t: &str) -> String {
        self.paint("1", t)
    }
    fn dim(&self, t: &str) -> String {
        self.paint("2", t)
    }
    fn severity(&self, f: &Finding) -> String {
        let text = format!("{:<7}", f.severity.to_string());
        match f.severity {
            super::Severity::Error => self.paint("1;31", &text),
            super::Severity::Warning => self.paint("33", &text),
            super::Severity::Info => self.paint("36", &text),
        }
    }
}

/// The savings factor, `before / minimal`.
pub fn factor(before: Totals, minimal: Totals) -> Option<f64> {
    (minimal.bytes > 0).then(|| before.bytes as f64 / minimal.bytes as f64)
}

/// The human report.
pub fn human(a: &Analysis, style: Style) -> String {
    let mut o = String::new();
    let builder = match a.builder {
        Builder::BuildKit => "BuildKit",
        Builder::Classic => "classic builder",
    };
    let _ = writeln!(
        o,
        "{} {}  (Dockerfile {}, {builder})",
        style.bold("Context"),
        show_path(&a.context),
        show_path(&a.dockerfile)
    );
    match &a.ignore_file {
        Some(p) => {
            let _ = writeln!(o, "Ignore file {}", show_path(p));
        }
        None => {
            let _ = writeln!(o, "Ignore file {}", style.dim("none"));
        }
    }
    let _ = writeln!(o);
    let line = |label: &str, t: Totals| {
        format!(
            "  {label:<10} {:>9} files  {:>10}",
            t.files,
            humanize(t.bytes)
        )
    };
    let _ = writeln!(o, "{}", line("Sent today", a.before));
    let _ = writeln!(o, "{}", line("Needed", a.minimal));
    let saved = Totals {
        files: a.before.files - a.minimal.files.min(a.before.files),
        bytes: a.before.bytes - a.minimal.bytes.min(a.before.bytes),
    };
    let factor_text = match factor(a.before, a.minimal) {
        Some(f) => format!("{f:.1}x smaller"),
        None if a.before.bytes > 0 => "nothing is needed".to_string(),
        None => "empty context".to_string(),
    };
    let _ = writeln!(o, "{}  ({factor_text})", line("Saving", saved));
    if let Some(ig) = a.suggested_ignore.as_ref().filter(|ig| ig.verified) {
        let t = Totals {
            files: ig.files,
            bytes: ig.bytes,
        };
        let _ = writeln!(
            o,
            "{}  (with the suggested context and ignore file)",
            line("Best", t)
        );
    }
    if !a.whole_context_reasons.is_empty() {
        let _ = writeln!(o, "\n  The build may read the whole context:");
        for r in &a.whole_context_reasons {
            let _ = writeln!(o, "    - {}", esc(r));
        }
    } else if !a.used.is_empty() {
        let _ = writeln!(o, "\n{}", style.bold("Paths the Dockerfile reads"));
        for u in &a.used {
            let _ = writeln!(
                o,
                "  line {:<4} {:<8} {}",
                u.line,
                esc(&u.instruction),
                esc(&u.path)
            );
        }
    }

    if !a.top_unused.is_empty() {
        let _ = writeln!(o, "\n{}", style.bold("Sent but never used"));
        for u in &a.top_unused {
            let _ = writeln!(
                o,
                "  {:>10}  {:>7} files  {:<40}  {}",
                humanize(u.bytes),
                u.files,
                esc(&u.path),
                style.dim(&esc(&u.kind))
            );
        }
    }
    groups(&mut o, style, "Unused by kind", &a.unused_by_kind);
    groups(&mut o, style, "Unused by extension", &a.unused_by_extension);

    if let Some(s) = &a.suggestion {
        let _ = writeln!(o, "\n{} {}", style.bold("Narrowest context:"), esc(&s.dir));
        if !s.rewrites.is_empty() {
            let _ = writeln!(o, "  Dockerfile lines for context {}:", esc(&s.dir));
            for r in &s.rewrites {
                let _ = writeln!(o, "    line {}: {}", r.line, esc(first_line(&r.before)));
                let _ = writeln!(o, "         → {}", esc(first_line(&r.after)));
            }
        }
        let _ = writeln!(
            o,
            "  docker build:  {}   (paths relative to the current directory)",
            esc(&s.docker_build.0)
        );
        let _ = writeln!(o, "              →  {}", esc(&s.docker_build.1));
        let _ = writeln!(
            o,
            "  compose:       {}   (context relative to {}, dockerfile to the new context)",
            esc(&s.compose),
            show_path(&a.context)
        );
        let _ = writeln!(o, "  SST:           {}", esc(&s.sst));
    }
    if let Some(ig) = &a.suggested_ignore {
        let status = match (ig.verified, ig.dropped.is_empty()) {
            (true, true) => format!(
                "verified file by file: under every path the Dockerfile reads it sends what today's build sends; sends {} files",
                ig.files
            ),
            (true, false) => format!(
                "verified file by file: under every path the Dockerfile reads it sends what today's build sends, except what it drops below; sends {} files",
                ig.files
            ),
            (false, _) => format!(
                "NOT verified: under the paths the Dockerfile reads it would not send what today's build sends ({}); review before use",
                esc(&ig.differences.join(", "))
            ),
        };
        let _ = writeln!(
            o,
            "\n{} {}  ({status})",
            style.bold("Suggested ignore file"),
            show_path(&ig.path)
        );
        for l in ig.text.lines() {
            let _ = writeln!(o, "  | {}", esc(l));
        }
        if !ig.dropped.is_empty() {
            let _ = writeln!(
                o,
                "  It leaves out of the image, on purpose, what a COPY takes today:"
            );
            for d in &ig.dropped {
                let _ = writeln!(o, "    {}  ({} files: {})", esc(&d.path), d.files, d.why);
            }
        }
    }
    if !a.findings.is_empty() {
        let _ = writeln!(o, "\n{}", style.bold("Findings"));
        for f in &a.findings {
            let loc = match f.line {
                Some(l) => format!("{}:{l}", f.file),
                None => f.file.clone(),
            };
            let _ = writeln!(
                o,
                "  {} {}  {}\n          {}",
                style.severity(f),
                esc(&f.rule),
                esc(&loc),
                esc(&f.message)
            );
        }
    }
    o
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

fn groups(o: &mut String, style: Style, title: &str, groups: &[Group]) {
    if groups.is_empty() {
        return;
    }
    let _ = writeln!(o, "\n{}", style.bold(title));
    for g in groups {
        let _ = writeln!(
            o,
            "  {:>10}  {:>7} files  {}",
            humanize(g.bytes),
            g.files,
            esc(&g.name)
        );
    }
}

#[derive(Serialize)]
struct JsonReport<'a> {
    schema: u32,
    context: String,
    dockerfile: String,
    builder: &'static str,
    ignore_file: Option<String>,
    before: Totals,
    minimal: Totals,
    saving_factor: Option<f64>,
    whole_context_reasons: &'a [String],
    used_paths: &'a [UsedPath],
    suggested_context: Option<String>,
    suggestion: Option<&'a super::suggest::ContextSuggestion>,
    suggested_ignore: Option<&'a super::suggest::IgnoreSuggestion>,
    top_unused: &'a [Unused],
    unused_by_kind: &'a [Group],
    unused_by_extension: &'a [Group],
    largest_unused_files: &'a [Unused],
    contributors: &'a [Group],
    findings: &'a [Finding],
}

/// The JSON report (`"schema": 1`), pretty-printed.
pub fn json(a: &Analysis) -> String {
    crate::text::json(&json_report(a)).unwrap_or_else(|_| "null".to_string())
}

/// The JSON report as a value (the HTML page's model extends it).
pub fn json_value(a: &Analysis) -> serde_json::Value {
    serde_json::to_value(json_report(a)).unwrap_or_default()
}

fn json_report(a: &Analysis) -> JsonReport<'_> {
    JsonReport {
        schema: SCHEMA,
        context: a.context.display().to_string(),
        dockerfile: a.dockerfile.display().to_string(),
        builder: match a.builder {
            Builder::BuildKit => "buildkit",
            Builder::Classic => "classic",
        },
        ignore_file: a.ignore_file.as_ref().map(|p| p.display().to_string()),
        before: a.before,
        minimal: a.minimal,
        saving_factor: factor(a.before, a.minimal).map(|f| (f * 100.0).round() / 100.0),
        whole_context_reasons: &a.whole_context_reasons,
        used_paths: &a.used,
        suggested_context: a.suggestion.as_ref().map(|s| s.dir.clone()),
        suggestion: a.suggestion.as_ref(),
        suggested_ignore: a.suggested_ignore.as_ref(),
        top_unused: &a.top_unused,
        unused_by_kind: &a.unused_by_kind,
        unused_by_extension: &a.unused_by_extension,
        largest_unused_files: &a.largest_unused_files,
        contributors: &a.contributors,
        findings: &a.findings,
    }
}
