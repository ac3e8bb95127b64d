//! The HTML report: one self-contained page (inline CSS and script, no
//! network: its Content-Security-Policy forbids any request).
//!
//! The numbers, tables, Dockerfile and findings are written here as static
//! HTML, so they read without JavaScript; the treemap is drawn by
//! `report.js` from the JSON model embedded in the page (the `--format
//! json` report of each image plus [`crate::analyze::Detail`]).
//! Everything from the repository (paths, Dockerfile lines, messages) is
//! escaped here, and the script only ever sets it as text.

use std::fmt::Write as _;

use crate::analyze::{report, tree, Analysis, Finding, Totals};
use crate::check::Verdict;
use crate::units::humanize;

const CSS: &str = include_str!("report.css");
const JS: &str = include_str!("report.js");

/// The page's version, in the model as `html_model`.
pub const MODEL: u32 = tree::MODEL;

/// Text for HTML (element content and quoted attribute values): control
/// and bidi characters made visible as in every other report (and the
/// Unicode line and paragraph separators, which would break a line),
/// then the five HTML metacharacters as entities.
pub fn h(s: &str) -> String {
    let visible = crate::text::escape(s);
    let mut out = String::with_capacity(visible.len());
    for c in visible.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\u{2028}' => out.push_str("\\u{2028}"),
            '\u{2029}' => out.push_str("\\u{2029}"),
            c => out.push(c),
        }
    }
    out
}

/// JSON for inside `<script type="application/json">`: `<`, `>` and `&`
/// as `\u` escapes (so neither `</script>` nor `<!--` can occur), and
/// U+2028/U+2029 too (line terminators to older JavaScript). They occur
/// only inside strings, where the escapes mean the same characters.
pub fn embed_json(v: &serde_json::Value) -> String {
    let text = crate::text::json_line(v).unwrap_or_else(|_| "null".into());
    let mut out = String::with_capacity(text.len() + 64);
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

fn page(title: &str, body: &str, model: &serde_json::Value) -> String {
    let mut o = String::with_capacity(body.len() + CSS.len() + JS.len() + 4096);
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"reggie-build {}\">\n\
         <title>{}</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n{body}\
         <script type=\"application/json\" id=\"model\">{}</script>\n\
         <script>\n{JS}</script>\n</body>\n</html>\n",
        env!("CARGO_PKG_VERSION"),
        h(title),
        embed_json(model)
    );
    o
}

/// The `analyze --format html` page of one or more images.
pub fn analysis_page(analyses: &[Analysis]) -> String {
    let images: Vec<serde_json::Value> = analyses
        .iter()
        .map(|a| {
            let mut v = report::json_value(a);
            v["detail"] = serde_json::to_value(&a.detail).unwrap_or_default();
            v
        })
        .collect();
    let model = serde_json::json!({
        "schema": report::SCHEMA,
        "html_model": MODEL,
        "view": "analyze",
        "images": images,
    });
    let mut body = String::new();
    let _ = writeln!(
        body,
        "<header><h1>reggie-build analyze</h1></header>\n<main>"
    );
    for (i, a) in analyses.iter().enumerate() {
        image_section(&mut body, i, a);
    }
    body.push_str("</main>\n");
    let title = match analyses {
        [a] => format!(
            "reggie-build analyze: {}",
            crate::text::show_path(&a.context)
        ),
        _ => "reggie-build analyze".into(),
    };
    page(&title, &body, &model)
}

fn figure_row(o: &mut String, id: &str, label: &str, t: Totals, of: u64, note: &str) {
    let pct = if of == 0 {
        0.0
    } else {
        (t.bytes as f64 / of as f64 * 100.0).min(100.0)
    };
    let _ = writeln!(
        o,
        "<tr class=\"figure\" data-figure=\"{id}\" data-files=\"{}\" data-bytes=\"{}\">\
         <th scope=\"row\">{label}</th>\
         <td class=\"bar\"><span class=\"fill {id}\" style=\"width:{pct:.2}%\"></span></td>\
         <td class=\"num\">{}</td><td class=\"num\">{} files</td><td>{}</td></tr>",
        t.files,
        t.bytes,
        humanize(t.bytes),
        t.files,
        h(note)
    );
}

fn image_section(o: &mut String, i: usize, a: &Analysis) {
    let builder = match a.builder {
        crate::context::Builder::BuildKit => "BuildKit",
        crate::context::Builder::Classic => "classic builder",
    };
    let _ = writeln!(o, "<section class=\"image\" id=\"image-{i}\">");
    let _ = writeln!(
        o,
        "<h2>Context <code>{}</code></h2>\n<p class=\"meta\">Dockerfile <code>{}</code> · {builder} · ignore file {}</p>",
        h(&crate::text::show_path(&a.context)),
        h(&crate::text::show_path(&a.dockerfile)),
        match &a.ignore_file {
            Some(p) => format!("<code>{}</code>", h(&crate::text::show_path(p))),
            None => "none".into(),
        }
    );

    // Figures.
    let _ = writeln!(
        o,
        "<table class=\"figures\"><caption>What the build sends and needs</caption>"
    );
    let factor = match report::factor(a.before, a.minimal) {
        Some(f) => format!("{f:.1}x smaller"),
        None if a.before.bytes > 0 => "nothing is needed".into(),
        None => "empty context".into(),
    };
    figure_row(o, "before", "Sent today", a.before, a.before.bytes, "");
    figure_row(o, "minimal", "Needed", a.minimal, a.before.bytes, &factor);
    if let Some(ig) = a.suggested_ignore.as_ref().filter(|ig| ig.verified) {
        let t = Totals {
            files: ig.files,
            bytes: ig.bytes,
        };
        figure_row(
            o,
            "best",
            "Best",
            t,
            a.before.bytes,
            "with the suggested context and ignore file",
        );
    }
    if let Some(d) = a.detail.as_ref().filter(|d| d.excluded.files > 0) {
        figure_row(
            o,
            "excluded",
            "Excluded",
            d.excluded,
            a.before.bytes.max(d.excluded.bytes),
            "kept out by the ignore file today",
        );
    }
    o.push_str("</table>\n");
    if !a.whole_context_reasons.is_empty() {
        o.push_str("<p>The build may read the whole context:</p><ul>");
        for r in &a.whole_context_reasons {
            let _ = write!(o, "<li>{}</li>", h(r));
        }
        o.push_str("</ul>\n");
    }

    // Treemap (drawn by the script).
    let _ = writeln!(
        o,
        "<h3>The context</h3>\n<div class=\"treemap-box\">\
         <nav class=\"crumbs\" aria-label=\"Treemap location\" data-crumbs=\"{i}\"></nav>\
         <div class=\"treemap\" data-treemap=\"{i}\" role=\"group\" aria-label=\"Treemap of the context: area is bytes\"></div>\
         <p class=\"info\" data-info=\"{i}\" aria-live=\"polite\"></p>\
         <ul class=\"legend\" data-legend=\"{i}\"></ul>\
         <noscript><p>The treemap needs JavaScript; the tables have the numbers.</p></noscript></div>"
    );

    // Unused.
    if !a.top_unused.is_empty() {
        let _ = writeln!(o, "<h3>Sent but never used</h3>\n<table class=\"list\" data-list=\"top-unused\"><thead><tr><th>path</th><th class=\"num\">size</th><th class=\"num\">files</th><th>what</th></tr></thead><tbody>");
        for u in &a.top_unused {
            let _ = writeln!(
                o,
                "<tr><td><code>{}</code></td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
                h(&u.path),
                humanize(u.bytes),
                u.files,
                h(&u.kind)
            );
        }
        o.push_str("</tbody></table>\n");
    }
    if !a.unused_by_kind.is_empty() {
        let _ = writeln!(o, "<h3>Unused by kind</h3>\n<table class=\"list\"><thead><tr><th>kind</th><th class=\"num\">size</th><th class=\"num\">files</th></tr></thead><tbody>");
        for g in &a.unused_by_kind {
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                h(&g.name),
                humanize(g.bytes),
                g.files
            );
        }
        o.push_str("</tbody></table>\n");
    }

    // The Dockerfile, annotated.
    if let Some(d) = &a.detail {
        let _ = writeln!(
            o,
            "<h3>The Dockerfile</h3>\n<div class=\"dockerfile\" role=\"list\">"
        );
        for (n, text) in d.dockerfile_lines.iter().enumerate() {
            let line = n + 1;
            let reads: Vec<String> = d
                .reads
                .iter()
                .filter(|r| r.line == line)
                .map(|r| {
                    format!(
                        "<span class=\"reads\" data-line=\"{line}\" data-files=\"{}\" data-bytes=\"{}\">{} reads {} files, {}</span>",
                        r.files,
                        r.bytes,
                        h(&r.instruction),
                        r.files,
                        humanize(r.bytes)
                    )
                })
                .collect();
            let class = if reads.is_empty() { "dl" } else { "dl read" };
            let _ = writeln!(
                o,
                "<div class=\"{class}\" role=\"listitem\"><span class=\"ln\">{line}</span><code>{}</code>{}</div>",
                h(text),
                reads.join("")
            );
        }
        o.push_str("</div>\n");
    }

    // The fix.
    if let Some(s) = &a.suggestion {
        let _ = writeln!(o, "<h3>Narrowest context: <code>{}</code></h3>", h(&s.dir));
        if !s.rewrites.is_empty() {
            o.push_str("<p>Dockerfile lines for that context:</p><ul>");
            for r in &s.rewrites {
                let _ = write!(
                    o,
                    "<li>line {}: <code>{}</code> → <code>{}</code></li>",
                    r.line,
                    h(first_line(&r.before)),
                    h(first_line(&r.after))
                );
            }
            o.push_str("</ul>\n");
        }
        let _ = writeln!(
            o,
            "<dl class=\"commands\"><dt>docker build</dt><dd>{}</dd><dt>compose</dt><dd>{}</dd><dt>SST</dt><dd>{}</dd></dl>",
            copyable(&format!("build-{i}"), &s.docker_build.1),
            copyable(&format!("compose-{i}"), &s.compose),
            copyable(&format!("sst-{i}"), &s.sst)
        );
    }
    if let Some(ig) = &a.suggested_ignore {
        let status = if ig.verified {
            format!(
                "verified file by file: under every path the Dockerfile reads it sends what today's build sends; sends {} files ({})",
                ig.files,
                humanize(ig.bytes)
            )
        } else {
            format!(
                "NOT verified: under the paths the Dockerfile reads it would not send what today's build sends ({}); review before use",
                ig.differences.join(", ")
            )
        };
        let _ = writeln!(
            o,
            "<h3>Suggested ignore file <code>{}</code></h3>\n<p>{}</p>{}",
            h(&crate::text::show_path(&ig.path)),
            h(&status),
            copyable_block(&format!("ignore-{i}"), &ig.text)
        );
        if !ig.dropped.is_empty() {
            o.push_str(
                "<p>It leaves out of the image, on purpose, what a COPY takes today:</p><ul>",
            );
            for d in &ig.dropped {
                let _ = write!(
                    o,
                    "<li><code>{}</code> ({} files: {})</li>",
                    h(&d.path),
                    d.files,
                    h(&d.why)
                );
            }
            o.push_str("</ul>\n");
        }
    }
    findings(o, &a.findings);
    o.push_str("</section>\n");
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

/// A one-line command with a copy button (the script shows the button).
fn copyable(id: &str, text: &str) -> String {
    format!(
        "<code id=\"{id}\">{}</code> <button type=\"button\" class=\"copy\" data-copy=\"{id}\" hidden>Copy</button>",
        h(text)
    )
}

/// A block (the ignore file) with a copy button. Its lines are escaped
/// one by one so that the newlines stay.
fn copyable_block(id: &str, text: &str) -> String {
    let lines: Vec<String> = text.lines().map(h).collect();
    format!(
        "<pre id=\"{id}\">{}</pre><button type=\"button\" class=\"copy\" data-copy=\"{id}\" hidden>Copy</button>",
        lines.join("\n")
    )
}

fn findings(o: &mut String, findings: &[Finding]) {
    if findings.is_empty() {
        return;
    }
    let _ = writeln!(o, "<h3>Findings</h3>\n<table class=\"list findings\"><thead><tr><th>severity</th><th>rule</th><th>where</th><th>message</th></tr></thead><tbody>");
    for f in findings {
        let loc = match f.line {
            Some(l) => format!("{}:{l}", f.file),
            None => f.file.clone(),
        };
        let sev = f.severity.to_string();
        let _ = writeln!(
            o,
            "<tr class=\"finding\" data-severity=\"{}\"><td><span class=\"sev {}\">{}</span></td><td><code>{}</code></td><td><code>{}</code></td><td>{}</td></tr>",
            h(&sev),
            h(&sev),
            h(&sev),
            h(&f.rule),
            h(&loc),
            h(&f.message)
        );
    }
    o.push_str("</tbody></table>\n");
}

/// The `check --format html` page: each image against its budget.
pub fn check_page(verdicts: &[Verdict], growth: &[(String, Vec<String>)], passed: bool) -> String {
    let images: Vec<serde_json::Value> = verdicts
        .iter()
        .map(|v| {
            let mut j = serde_json::to_value(v).unwrap_or_default();
            j["grew"] = serde_json::json!(growth
                .iter()
                .find(|(n, _)| *n == v.name)
                .map(|(_, g)| g.clone())
                .unwrap_or_default());
            j
        })
        .collect();
    let model = serde_json::json!({
        "schema": report::SCHEMA,
        "html_model": MODEL,
        "view": "check",
        "result": if passed { "pass" } else { "fail" },
        "images": images,
    });
    let mut o = String::new();
    let _ = writeln!(
        o,
        "<header><h1>reggie-build check: <span class=\"result {}\">{}</span></h1></header>\n<main>",
        if passed { "pass" } else { "fail" },
        if passed { "pass" } else { "fail" }
    );
    for (i, v) in verdicts.iter().enumerate() {
        let _ = writeln!(
            o,
            "<section class=\"image\" id=\"image-{i}\"><h2>{} <span class=\"result {}\">{}</span></h2>\n<p class=\"meta\">context <code>{}</code> · Dockerfile <code>{}</code> · {} context measured</p>",
            h(&v.name),
            if v.passed { "pass" } else { "fail" },
            if v.passed { "pass" } else { "fail" },
            h(&v.context),
            h(&v.dockerfile),
            h(v.measured)
        );
        let _ = writeln!(
            o,
            "<table class=\"figures\"><caption>Uploaded against the budget</caption>"
        );
        let scale = v.uploaded.bytes.max(v.max_bytes.unwrap_or(0));
        figure_row(&mut o, "uploaded", "Uploaded", v.uploaded, scale, "");
        if v.max_bytes.is_some() || v.max_files.is_some() {
            let budget = Totals {
                files: v.max_files.unwrap_or(0),
                bytes: v.max_bytes.unwrap_or(0),
            };
            let note = match (v.max_bytes, v.max_files) {
                (Some(_), Some(_)) => "",
                (Some(_), None) => "no file budget",
                _ => "no size budget",
            };
            figure_row(&mut o, "budget", "Budget", budget, scale, note);
        }
        o.push_str("</table>\n");
        if !v.passed {
            let _ = writeln!(o, "<p class=\"why\">{}</p>", h(&super::failure_summary(v)));
        }
        if !v.fixes.is_empty() {
            o.push_str("<h3>Fixes</h3><ul>");
            for fix in &v.fixes {
                let _ = write!(o, "<li>{}</li>", h(fix));
            }
            o.push_str("</ul>\n");
        }
        if !v.contributors.is_empty() {
            let _ = writeln!(o, "<h3>Largest contributors</h3>\n<table class=\"list\"><thead><tr><th>directory</th><th class=\"num\">size</th><th class=\"num\">files</th></tr></thead><tbody>");
            for c in &v.contributors {
                let _ = writeln!(
                    o,
                    "<tr><td><code>{}</code></td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                    h(&c.name),
                    humanize(c.bytes),
                    c.files
                );
            }
            o.push_str("</tbody></table>\n");
        }
        if let Some((_, lines)) = growth.iter().find(|(n, l)| *n == v.name && !l.is_empty()) {
            o.push_str("<h3>Grew against the baseline</h3><ul>");
            for l in lines {
                let _ = write!(o, "<li>{}</li>", h(l));
            }
            o.push_str("</ul>\n");
        }
        findings(&mut o, &v.findings);
        o.push_str("</section>\n");
    }
    o.push_str("</main>\n");
    page("reggie-build check", &o, &model)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_json_cannot_end_the_script() {
        let v = serde_json::json!({ "p": "</script><!--<script>\u{2028}\u{2029}&" });
        let e = embed_json(&v);
        for bad in ["</", "<!--", "\u{2028}", "\u{2029}", "&", ">"] {
            assert!(!e.contains(bad), "{bad:?} in {e}");
        }
        let back: serde_json::Value = serde_json::from_str(&e).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn text_is_escaped_for_html() {
        assert_eq!(
            h("<img src=x onerror='a'>\"&\n\u{202e}\u{2028}"),
            "&lt;img src=x onerror=&#39;a&#39;&gt;&quot;&amp;\\n\\u{202e}\\u{2028}"
        );
    }
}
