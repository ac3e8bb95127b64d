//! Findings: what is wrong with an ignore file or a context, judged by
//! Docker's exact semantics. Each has a rule id, a severity, a file and a
//! line, and says what to do.

use std::collections::{HashMap, HashSet};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::context::ignore::Rule;
use crate::context::walk::WalkSummary;
use crate::context::{Builder, Context, ContextSpec, FileKind, WalkError};
use crate::plan::Plan;

use crate::text::{escape, excerpt, quote, show_bytes};
use crate::units::humanize;

use super::generated::{Evidence, Generated};
use super::{is_root_anchored_name_pattern, os, show, AnalyzeError, RuleSet, Totals};

/// How bad a finding is. Errors make a build fail or leak secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The build breaks or sends a secret; `check` fails on it.
    Error,
    /// Very likely a mistake (a pattern that does not do what it seems).
    Warning,
    /// Worth knowing, nothing to fix.
    Info,
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        })
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Finding {
    /// Stable id, e.g. `ignore/root-anchored`.
    pub rule: String,
    /// How bad it is.
    pub severity: Severity,
    /// The file it is about (ignore file, Dockerfile or context file).
    pub file: String,
    /// 1-based line in `file`, when it has one.
    pub line: Option<usize>,
    /// What is wrong and what to do, in one or two sentences.
    pub message: String,
}

/// What [`collect`] looks at.
pub(crate) struct Inputs<'a> {
    pub ctx: &'a Context,
    pub plan: &'a Plan,
    pub summary: &'a WalkSummary,
    /// Indexes of root-anchored name patterns, and what `**/` versions of
    /// them would have matched deeper down.
    pub anchored: &'a [usize],
    pub anchored_hits: &'a [Totals],
    /// Secret files sent: (path, rule id, description).
    pub secrets: &'a [(String, String, String)],
    /// Files sent by this builder, when the other builder may differ.
    pub sent_files: Option<&'a Vec<Vec<u8>>>,
    /// What names paths a clean checkout lacks.
    pub rules: &'a RuleSet,
}

/// Ignore rules that only match at the root but whose name could appear
/// deeper (`*.pyc`, `__pycache__`, `node_modules`).
pub(crate) fn anchored_candidates(ctx: &Context) -> Vec<usize> {
    ctx.matcher()
        .rules()
        .iter()
        .enumerate()
        .filter(|(_, r)| !r.exception && r.line > 0 && is_root_anchored_name_pattern(&r.pattern))
        .map(|(i, _)| i)
        .take(64)
        .collect()
}

/// Whether BuildKit and the classic builder can send different files for
/// this context (only then is the second walk worth it).
pub(crate) fn builders_may_differ(ctx: &Context) -> bool {
    let Some(ignore) = ctx.ignore_file() else {
        return false;
    };
    let own_file = ignore
        .path
        .file_name()
        .is_some_and(|n| n != ".dockerignore");
    own_file || ctx.matcher().has_exceptions() || {
        let excludes = |p: &[u8]| {
            ctx.matcher()
                .matches_or_parent_matches(p)
                .map(|v| v.excluded())
                .unwrap_or(false)
        };
        excludes(b".dockerignore") || ctx.dockerfile_rel().is_some_and(excludes)
    }
}

pub(crate) fn collect(inp: Inputs<'_>) -> Result<Vec<Finding>, AnalyzeError> {
    let mut out = Vec::new();
    let ctx = inp.ctx;
    let ignore_label = ctx
        .ignore_file()
        .map(|i| i.path.display().to_string())
        .unwrap_or_default();
    let dockerfile_label = ctx.dockerfile().display().to_string();
    let rules = ctx.matcher().rules();

    // Root-anchored patterns that leave matching files deeper.
    for (k, &i) in inp.anchored.iter().enumerate() {
        let hits = inp.anchored_hits[k];
        if hits.files == 0 {
            continue;
        }
        let rule = &rules[i];
        let text = excerpt(&show(rule.pattern.as_bytes()));
        out.push(Finding {
            rule: "ignore/root-anchored".into(),
            severity: Severity::Warning,
            file: ignore_label.clone(),
            line: Some(rule.line),
            message: format!(
                "`{text}` only matches at the context root: {} files ({}) in deeper `{text}` paths are still sent. Write `**/{text}` to exclude them at any depth",
                hits.files,
                humanize(hits.bytes)
            ),
        });
    }

    // Lines that look like they carry a comment.
    for rule in rules.iter().filter(|r| r.line > 0) {
        if let Some(pos) = rule.raw.find(" #").or_else(|| rule.raw.find("\t#")) {
            let meant = quote(rule.raw[..pos].trim());
            out.push(Finding {
                rule: "ignore/inline-comment".into(),
                severity: Severity::Warning,
                file: ignore_label.clone(),
                line: Some(rule.line),
                message: format!(
                    "{} is one literal pattern: Docker has no inline comments, only lines starting with `#`. Move the comment to its own line so {meant} works",
                    quote(rule.raw.trim())
                ),
            });
        }
    }

    // Patterns that match nothing; exceptions that re-include nothing.
    // Lines already explained above are not reported twice.
    let explained: Vec<usize> = out.iter().filter_map(|f| f.line).collect();
    // Read only when a line matches nothing.
    let mut generated = None;
    let mut judged = 0usize;
    for (i, rule) in rules.iter().enumerate().filter(|(_, r)| r.line > 0) {
        // Quoted short and masked: the "ignore file" may be a link to a
        // file of secrets (`.dockerignore -> .git/config`).
        let raw = quote(rule.raw.trim());
        if explained.contains(&rule.line) {
            continue;
        }
        // `bin`, `**/dist`: nothing today, but the next build writes
        // them, and removing the line would send them.
        if !rule.exception && inp.summary.rule_hits.get(i) == Some(&0) {
            judged += 1;
            if judged > MAX_JUDGED {
                // Past any real file: bounded work, and no advice either way.
                out.push(Finding {
                    rule: "ignore/matches-nothing".into(),
                    severity: Severity::Info,
                    file: ignore_label.clone(),
                    line: Some(rule.line),
                    message: format!("{raw} matches nothing in this context; not checked against what the repository's builds write (only the first {MAX_JUDGED} such lines are)"),
                });
                continue;
            }
            let generated = generated.get_or_insert_with(|| Generated::discover(ctx.root()));
            out.push(dead_line(ctx, rule, &ignore_label, inp.rules, generated));
        }
        if rule.exception && inp.summary.rule_reincluded.get(i) == Some(&0) {
            out.push(Finding {
                rule: "ignore/exception-unused".into(),
                severity: Severity::Info,
                file: ignore_label.clone(),
                line: Some(rule.line),
                message: format!(
                    "exception {raw} re-includes nothing: no earlier pattern excludes what it matches, or its directory is never entered. Remove it, or exclude the parent's contents with `dir/*` instead of `dir`"
                ),
            });
        }
    }

    // COPY/ADD sources that are missing or excluded: the build would fail.
    out.extend(copy_source_findings(
        ctx,
        inp.plan,
        &inp.summary.include_hits,
    ));
    for reason in &inp.plan.whole {
        out.push(Finding {
            rule: "plan/whole-context".into(),
            severity: Severity::Info,
            file: dockerfile_label.clone(),
            line: reason.line,
            message: format!("the build may read the whole context: {reason}"),
        });
    }

    // The Dockerfile or the ignore file excluded.
    if ctx.builder() == Builder::BuildKit {
        let excluded = |p: &[u8]| {
            ctx.explain(p)
                .ok()
                .filter(|e| !e.included)
                .and_then(|e| e.rule)
        };
        if let Some(rel) = ctx.dockerfile_rel() {
            if let Some(r) = excluded(rel) {
                out.push(Finding {
                    rule: "context/dockerfile-excluded".into(),
                    severity: Severity::Info,
                    file: ignore_label.clone(),
                    line: Some(rules[r].line),
                    message: format!(
                        "the Dockerfile `{}` is excluded from the context: BuildKit still builds (it reads the Dockerfile separately), but `COPY . .` will not include it and the classic builder sends it anyway",
                        show_bytes(rel)
                    ),
                });
            }
        }
        if let Some(ignore) = ctx.ignore_file() {
            if ignore
                .path
                .file_name()
                .is_some_and(|n| n == ".dockerignore")
            {
                if let Some(r) = excluded(b".dockerignore") {
                    out.push(Finding {
                        rule: "context/ignore-file-excluded".into(),
                        severity: Severity::Info,
                        file: ignore_label.clone(),
                        line: Some(rules[r].line),
                        message: "`.dockerignore` excludes itself: fine for BuildKit; the classic builder sends it anyway".into(),
                    });
                }
            }
        }
    }

    // Secrets.
    for (path, rule, description) in inp.secrets {
        out.push(secret_finding(path, rule, description));
    }

    // BuildKit and classic differ.
    if let Some(sent) = inp.sent_files {
        if let Some(diff) = builder_difference(ctx, sent)? {
            out.push(Finding {
                rule: "ignore/builder-difference".into(),
                severity: Severity::Warning,
                file: ignore_label.clone(),
                line: None,
                message: diff,
            });
        }
    }
    Ok(out)
}

/// How many ignore lines that match nothing are judged against what the
/// repository's builds write (each costs a search of its candidates).
const MAX_JUDGED: usize = 200;

/// The finding for an ignore line that matches nothing: a note when the
/// repository says a build writes what it excludes (never advice to
/// remove it), a warning when it misses an existing path by a typo or by
/// being written from another root, and otherwise the advice to remove
/// it or fix the path.
fn dead_line(
    ctx: &Context,
    rule: &Rule,
    ignore_label: &str,
    rules: &RuleSet,
    generated: &Generated,
) -> Finding {
    // Quoted short and masked, as every line a finding quotes.
    let raw = quote(rule.raw.trim());
    let pattern = rule.pattern.as_bytes();
    let finding = |id: &str, severity: Severity, message: String| Finding {
        rule: id.into(),
        severity,
        file: ignore_label.to_string(),
        line: Some(rule.line),
        message,
    };
    let guards = |why: String, unless: &str| {
        finding(
            "ignore/guards-output",
            Severity::Info,
            format!("{raw} matches nothing now, but it {why}: keep the line, or {unless}"),
        )
    };
    let from_a_working_copy = "a build from a working copy that has it sends it";
    if let Some(guard) = generated.guard(&rule.pattern) {
        let unless = match &guard.evidence {
            Evidence::Tool { tool, .. } => format!("a build after {tool} has run sends it"),
            Evidence::GitIgnored { .. } => from_a_working_copy.to_string(),
        };
        return guards(guard.to_string(), &unless);
    }
    if let Some((name, ecosystem)) = rules.uncommitted_by(pattern) {
        return guards(
            format!(
                "guards `{name}`, which a clean checkout lacks (reggie-build's {ecosystem} rules)"
            ),
            from_a_working_copy,
        );
    }
    let root = ctx.root().display();
    if pattern == b".." || pattern.starts_with(b"../") {
        return finding(
            "ignore/matches-nothing",
            Severity::Info,
            format!("{raw} can never match: patterns are relative to the context root {root} and never reach above it; remove it"),
        );
    }
    if let Some(meant) = near_miss(ctx.root(), pattern) {
        return finding(
            "ignore/near-miss",
            Severity::Warning,
            format!("{raw} matches nothing, {meant}"),
        );
    }
    finding(
        "ignore/matches-nothing",
        Severity::Info,
        format!("{raw} matches nothing in this context (patterns are relative to the context root {root}), and nothing in the repository says a build creates it (no .gitignore line, build file or rule names it); remove it or fix the path"),
    )
}

/// For a literal pattern that matches nothing: the existing path it was
/// most likely meant for, said as the rest of a sentence. Either the
/// pattern starts with the context directory's own name (written from
/// the directory above), or its last component is a typo of a sibling's
/// name.
fn near_miss(root: &Path, pattern: &[u8]) -> Option<String> {
    if pattern
        .iter()
        .any(|b| matches!(b, b'*' | b'?' | b'[' | b'\\'))
    {
        return None;
    }
    let exists = |rel: &[u8]| {
        !rel.is_empty() && crate::input::lstat_no_links(root, Path::new(os(rel))).is_some()
    };
    let name = std::fs::canonicalize(root)
        .ok()
        .and_then(|p| p.file_name().map(|n| n.as_bytes().to_vec()))?;
    if let Some(rest) = pattern
        .strip_prefix(name.as_slice())
        .and_then(|r| r.strip_prefix(b"/"))
    {
        if exists(rest) {
            let rest = show_bytes(rest);
            return Some(format!(
                "but `{rest}` exists: patterns are relative to the context root {}, so this line excludes nothing and `{rest}` is sent. Write `{rest}`",
                root.display()
            ));
        }
    }
    let (dir, last) = match pattern.iter().rposition(|&b| b == b'/') {
        Some(p) => (&pattern[..p], &pattern[p + 1..]),
        None => (&b""[..], pattern),
    };
    if !dir.is_empty() && !exists(dir) {
        return None;
    }
    let sibling = closest_sibling(root, dir, last)?;
    let mut path = dir.to_vec();
    if !path.is_empty() {
        path.push(b'/');
    }
    path.extend_from_slice(&sibling);
    let path = show_bytes(&path);
    Some(format!(
        "but `{path}` exists beside it: if that is what it means, fix the typo (as written, `{path}` is sent)"
    ))
}

/// The name in `root/dir` nearest to `name` (edit distance 1, or 2 for
/// names of 8 bytes or more; case alone counts as 1), if any.
fn closest_sibling(root: &Path, dir: &[u8], name: &[u8]) -> Option<Vec<u8>> {
    let max = if name.len() >= 8 { 2 } else { 1 };
    if name.len() < 3 {
        return None;
    }
    let listing = crate::input::list_dir_no_links(root, Path::new(os(dir)), 10_000)?;
    let mut best: Option<(usize, Vec<u8>)> = None;
    for (sibling, _) in listing {
        if sibling == name {
            continue;
        }
        let d = distance(name, &sibling, max);
        if d <= max && best.as_ref().is_none_or(|(b, n)| (d, &sibling) < (*b, n)) {
            best = Some((d, sibling));
        }
    }
    best.map(|(_, n)| n)
}

/// Edit distance with adjacent transpositions, counting a change of
/// ASCII case as one edit; anything above `max` is `max + 1`.
fn distance(a: &[u8], b: &[u8], max: usize) -> usize {
    if a.len().abs_diff(b.len()) > max {
        return max + 1;
    }
    let mut prev2: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur: Vec<usize> = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(prev2[j - 2] + 1);
            }
            cur[j] = v;
        }
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()].min(max + 1)
}

/// A secret file that is sent.
pub(crate) fn secret_finding(path: &str, rule: &str, description: &str) -> Finding {
    Finding {
        rule: rule.to_string(),
        severity: Severity::Error,
        file: path.to_string(),
        line: None,
        message: format!(
            "{description} is sent to the Docker daemon (and into the image by any `COPY .`); add `{}` to the ignore file and pass secrets with `--secret` or at run time",
            escape(path)
        ),
    }
}

/// COPY/ADD sources that reach no sent file: the build fails. `include_hits`
/// comes from a walk with the plan's include patterns.
pub(crate) fn copy_source_findings(
    ctx: &Context,
    plan: &Plan,
    include_hits: &[u64],
) -> Vec<Finding> {
    let mut out = Vec::new();
    if plan.uses_whole_context() {
        return out;
    }
    let rules = ctx.matcher().rules();
    let ignore_label = ctx
        .ignore_file()
        .map(|i| i.path.display().to_string())
        .unwrap_or_default();
    let dockerfile_label = ctx.dockerfile().display().to_string();
    // The first include of each text, found in one lookup per source.
    let mut include_at: HashMap<&[u8], usize> = HashMap::new();
    for (i, p) in plan.includes.iter().enumerate() {
        include_at.entry(p.as_slice()).or_insert(i);
    }
    for used in &plan.used {
        let source = used.pattern.trim_start_matches('/');
        // A source through a symlinked directory (`link/f`, `link` -> `real`)
        // is read where the link leads (`real/f`), which Docker sends with
        // the link: judge that path, not the one no walk ever meets.
        let mut chain = Vec::new();
        if !used.has_wildcard {
            crate::plan::minimal::follow_links(ctx.root(), source.as_bytes(), &mut chain);
        }
        let through = (chain.len() > 1).then(|| {
            // The first link along the source: a directory above it, or the
            // source itself.
            let link = chain[1..]
                .iter()
                .find(|c| {
                    source.as_bytes().starts_with(c)
                        && source.as_bytes().get(c.len()) == Some(&b'/')
                })
                .unwrap_or(&chain[0]);
            (show_bytes(link), show_bytes(&chain[chain.len() - 1]))
        });
        let judged = match &through {
            Some((_, resolved)) => resolved.clone(),
            None => source.to_string(),
        };
        let pattern = judged.as_str();
        let hit = include_at
            .get(pattern.as_bytes())
            .and_then(|&i| include_hits.get(i))
            .copied()
            .unwrap_or(1);
        if hit > 0 {
            continue;
        }
        let shown_source = match &through {
            Some((link, resolved)) => {
                format!(
                    "{} (through the symlink `{link}`, that is `{resolved}`)",
                    quote(source)
                )
            }
            None => quote(source),
        };
        let on_disk = !used.has_wildcard
            && ctx
                .root()
                .join(super::os(pattern.as_bytes()))
                .symlink_metadata()
                .is_ok();
        let (rule, message) = if on_disk {
            let why = ctx
                .explain(pattern.as_bytes())
                .ok()
                .and_then(|e| e.rule)
                .map(|r| {
                    format!(
                        " by {ignore_label}:{} {}",
                        rules[r].line,
                        quote(rules[r].raw.trim())
                    )
                })
                .unwrap_or_default();
            (
                "copy/source-excluded",
                format!(
                    "{} source {shown_source} is excluded{why}; the build fails with \"not found\". Add `!{}` after that line or remove the pattern",
                    used.instruction,
                    excerpt(pattern)
                ),
            )
        } else {
            (
                "copy/source-missing",
                format!(
                    "{} source {shown_source} matches nothing in the context {}; the build fails with \"not found\". Check the path is relative to the context, not to the Dockerfile",
                    used.instruction,
                    ctx.root().display()
                ),
            )
        };
        out.push(Finding {
            rule: rule.into(),
            severity: Severity::Error,
            file: dockerfile_label.clone(),
            line: Some(used.line),
            message,
        });
    }
    out
}

/// Walks the context with the other builder's rules and describes the
/// difference, if any.
fn builder_difference(ctx: &Context, sent: &[Vec<u8>]) -> Result<Option<String>, AnalyzeError> {
    let other_builder = match ctx.builder() {
        Builder::BuildKit => Builder::Classic,
        Builder::Classic => Builder::BuildKit,
    };
    let other = ContextSpec {
        root: ctx.root().to_path_buf(),
        dockerfile: Some(ctx.dockerfile().to_path_buf()),
        builder: other_builder,
    }
    .resolve()?;
    let mine: HashSet<&[u8]> = sent.iter().map(Vec::as_slice).collect();
    let mut only_other: Vec<Vec<u8>> = Vec::new();
    let mut theirs_count = 0usize;
    let mut common = 0usize;
    other.walk::<WalkError, _>(|e| {
        if e.kind != FileKind::Dir {
            theirs_count += 1;
            if mine.contains(e.rel) {
                common += 1;
            } else if only_other.len() < 3 {
                only_other.push(e.rel.to_vec());
            }
        }
        Ok(())
    })?;
    let only_mine = mine.len() - common;
    let only_theirs = theirs_count - common;
    if only_mine == 0 && only_theirs == 0 {
        return Ok(None);
    }
    let (me, them) = match ctx.builder() {
        Builder::BuildKit => ("BuildKit", "the classic builder"),
        Builder::Classic => ("the classic builder", "BuildKit"),
    };
    let examples = only_other
        .iter()
        .map(|p| format!("`{}`", show_bytes(p)))
        .collect::<Vec<_>>()
        .join(", ");
    let mut msg = format!(
        "{me} and {them} send different files for this ignore file: {only_mine} only with {me}, {only_theirs} only with {them}"
    );
    if !examples.is_empty() {
        msg.push_str(&format!(" (e.g. {examples})"));
    }
    msg.push_str(". Wildcard exceptions (`!**/x`) reopen excluded directories only in BuildKit, and the classic builder always sends the Dockerfile and .dockerignore; prefer plain exceptions under a `dir/*` pattern");
    Ok(Some(msg))
}

/// At most this many findings of one rule in one report; the rest are
/// counted in one closing finding ([`cap_per_rule`]). A hostile repository
/// can make a rule fire once per input line (ignore lines, COPY sources,
/// deploys): the report stays readable, and its size follows the rules,
/// not the input.
pub const MAX_PER_RULE: usize = 50;

/// Keeps the first `max` findings of each rule, in order, and puts right
/// after the last one kept a closing finding of the same rule: "and N more
/// `rule` findings", with the worst severity of those left out (so a check
/// fails as it would have) and their file when they share one.
pub fn cap_per_rule(findings: Vec<Finding>, max: usize) -> Vec<Finding> {
    struct Dropped {
        count: usize,
        severity: Severity,
        file: Option<String>,
    }
    let mut seen: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut dropped: std::collections::HashMap<String, Dropped> = std::collections::HashMap::new();
    for f in &findings {
        let n = seen.entry(f.rule.as_str()).or_default();
        *n += 1;
        if *n <= max {
            continue;
        }
        let d = dropped.entry(f.rule.clone()).or_insert_with(|| Dropped {
            count: 0,
            severity: f.severity,
            file: Some(f.file.clone()),
        });
        d.count += 1;
        d.severity = d.severity.min(f.severity);
        if d.file.as_deref() != Some(f.file.as_str()) {
            d.file = None;
        }
    }
    if dropped.is_empty() {
        return findings;
    }
    let mut kept: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut out = Vec::with_capacity(findings.len().min(max * (seen.len() + 1)));
    for f in findings {
        let n = kept.entry(f.rule.clone()).or_default();
        *n += 1;
        if *n > max {
            continue;
        }
        let closing = (*n == max)
            .then(|| dropped.remove(&f.rule).map(|d| (f.rule.clone(), d)))
            .flatten();
        out.push(f);
        if let Some((rule, d)) = closing {
            out.push(Finding {
                message: format!(
                    "and {} more `{rule}` findings (only the first {max} are listed)",
                    d.count
                ),
                rule,
                severity: d.severity,
                file: d.file.unwrap_or_default(),
                line: None,
            });
        }
    }
    out
}

/// Whether `f` is the closing finding [`cap_per_rule`] adds.
pub(crate) fn is_cap_closing(f: &Finding) -> bool {
    f.line.is_none()
        && f.message
            .strip_prefix("and ")
            .and_then(|m| m.split_once(' '))
            .is_some_and(|(n, rest)| {
                n.bytes().all(|b| b.is_ascii_digit())
                    && rest.starts_with(&format!("more `{}` findings (only the first ", f.rule))
                    && rest.ends_with(" are listed)")
            })
}

#[cfg(test)]
mod cap_tests {
    use super::*;

    fn f(rule: &str, severity: Severity, file: &str, line: usize) -> Finding {
        Finding {
            rule: rule.into(),
            severity,
            file: file.into(),
            line: Some(line),
            message: format!("{rule} at {line}"),
        }
    }

    #[test]
    fn each_rule_keeps_its_first_findings_and_counts_the_rest() {
        let mut all = Vec::new();
        for i in 0..5 {
            all.push(f("a", Severity::Warning, "x", i));
            all.push(f("b", Severity::Info, "y", i));
        }
        all.push(f("a", Severity::Error, "z", 9));
        let capped = cap_per_rule(all.clone(), 2);
        let shown: Vec<(String, Option<usize>)> =
            capped.iter().map(|f| (f.rule.clone(), f.line)).collect();
        assert_eq!(
            shown,
            [
                ("a".into(), Some(0)),
                ("b".into(), Some(0)),
                ("a".into(), Some(1)),
                ("a".into(), None),
                ("b".into(), Some(1)),
                ("b".into(), None),
            ]
        );
        // The worst severity left out, and no file when they differ.
        assert_eq!(capped[3].severity, Severity::Error);
        assert_eq!(capped[3].file, "");
        assert_eq!(
            capped[3].message,
            "and 4 more `a` findings (only the first 2 are listed)"
        );
        assert_eq!(
            (capped[5].severity, capped[5].file.as_str()),
            (Severity::Info, "y")
        );
        assert!(is_cap_closing(&capped[3]) && !is_cap_closing(&capped[2]));
        // Within the cap, nothing changes.
        assert_eq!(cap_per_rule(all.clone(), 6), all);
    }
}
