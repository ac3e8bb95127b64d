//! Measure and report: what a build sends today, what it needs, what is
//! wasted and why, and how to fix it.
//!
//! One walk of the context as Docker sends it, with the Dockerfile's paths
//! as include patterns in annotate mode, gives every number: each sent
//! entry is either needed (the build can read it) or waste, and waste is
//! named by the [`rules`]. [`findings`] judges the ignore file and the
//! context; [`suggest`] finds the narrowest context and an ignore file
//! that provably keeps every used path.

pub mod findings;
pub mod report;
pub mod rules;
pub mod suggest;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use crate::context::ignore::{MatchKind, Pattern};
use crate::context::{Builder, Context, ContextError, FileKind, WalkError};
use crate::plan::{Plan, PlanError, PlanOptions};

pub use findings::{Finding, Severity};
pub use rules::RuleSet;

/// Errors that stop an analysis.
#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Walk(#[from] WalkError),
    #[error(transparent)]
    Context(#[from] ContextError),
    #[error(transparent)]
    Include(#[from] crate::context::ignore::CompileError),
}

/// Options of an analysis.
#[derive(Debug, Clone)]
pub struct AnalyzeOptions {
    pub plan: PlanOptions,
    /// How many entries the "top" lists keep.
    pub top: usize,
}

impl Default for AnalyzeOptions {
    fn default() -> Self {
        AnalyzeOptions {
            plan: PlanOptions::default(),
            top: 10,
        }
    }
}

/// Files and bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Totals {
    pub files: u64,
    pub bytes: u64,
}

impl Totals {
    fn add(&mut self, bytes: u64) {
        self.files += 1;
        self.bytes += bytes;
    }
}

/// Something sent that the build never reads.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Unused {
    /// Context-relative path; directories end in `/`.
    pub path: String,
    pub bytes: u64,
    pub files: u64,
    /// What it is (`node_modules`, `Python venv`, ...), or `directory` /
    /// `file` when no rule knows it.
    pub kind: String,
    /// The rule that recognised it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Why it does not belong in a context.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

/// Waste grouped by kind or extension.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Group {
    pub name: String,
    pub bytes: u64,
    pub files: u64,
}

/// A path the Dockerfile reads.
#[derive(Debug, Clone, serde::Serialize)]
pub struct UsedPath {
    pub path: String,
    pub line: usize,
    pub instruction: String,
}

/// The result of an analysis.
#[derive(Debug, Clone)]
pub struct Analysis {
    pub context: PathBuf,
    pub dockerfile: PathBuf,
    pub builder: Builder,
    pub ignore_file: Option<PathBuf>,
    /// What Docker sends today.
    pub before: Totals,
    /// What the build can read of it.
    pub minimal: Totals,
    /// Paths the Dockerfile reads.
    pub used: Vec<UsedPath>,
    /// Why the whole context counts as used, if it does.
    pub whole_context_reasons: Vec<String>,
    pub top_unused: Vec<Unused>,
    pub unused_by_kind: Vec<Group>,
    pub unused_by_extension: Vec<Group>,
    pub largest_unused_files: Vec<Unused>,
    /// Directories (up to three levels deep) holding the most needed bytes.
    pub contributors: Vec<Group>,
    pub suggestion: Option<suggest::ContextSuggestion>,
    pub suggested_ignore: Option<suggest::IgnoreSuggestion>,
    pub findings: Vec<Finding>,
}

/// Per-directory tallies kept while the walk is inside it.
struct OpenDir {
    rel: Vec<u8>,
    needed: Totals,
    unused: Totals,
    /// The rule recognising this directory, if any.
    rule: Option<(usize, usize)>,
    /// Unused bytes below, per rule (file rules and closed recognised
    /// subdirectories), to name an unrecognised directory by its content.
    rule_bytes: Vec<((usize, usize), u64)>,
    /// Root-anchored ignore rules this directory (or an ancestor below the
    /// root) would match if written with `**/`.
    anchored_mask: u64,
}

/// A finished directory.
struct ClosedDir {
    rel: Vec<u8>,
    parent: Option<usize>,
    needed: Totals,
    unused: Totals,
    rule: Option<(usize, usize)>,
    /// The rule that accounts for most unused bytes inside.
    dominant: Option<((usize, usize), u64)>,
    /// Unused bytes inside recognised, fully unused subdirectories.
    recognized_bytes: u64,
}

/// Runs the analysis of `ctx`.
pub fn analyze(
    ctx: &Context,
    rules: &RuleSet,
    opts: &AnalyzeOptions,
) -> Result<Analysis, AnalyzeError> {
    let plan = Plan::new(ctx, &opts.plan)?;
    let annotated = plan.apply(ctx, false)?.with_sizes();

    // Ignore rules written without `**/` that could match deeper down.
    let anchored = findings::anchored_candidates(ctx);
    let anchored_patterns: Vec<&Pattern> = anchored
        .iter()
        .map(|&i| &ctx.matcher().rules()[i].pattern)
        .collect();
    let mut anchored_hits: Vec<Totals> = vec![Totals::default(); anchored.len()];

    let mut before = Totals::default();
    let mut minimal = Totals::default();
    let mut open: Vec<OpenDir> = vec![OpenDir {
        rel: Vec::new(),
        needed: Totals::default(),
        unused: Totals::default(),
        rule: None,
        rule_bytes: Vec::new(),
        anchored_mask: 0,
    }];
    let mut closed: Vec<ClosedDir> = Vec::new();
    // Index in `closed` each open directory will get is not known until it
    // closes; children record their parent by position in `open` instead,
    // resolved when the parent closes.
    let mut pending_children: Vec<Vec<usize>> = vec![Vec::new()];
    let mut unused_files: Vec<UnusedFile> = Vec::new();
    let mut by_ext: HashMap<Vec<u8>, Totals> = HashMap::new();
    let mut by_kind: BTreeMap<String, Totals> = BTreeMap::new();
    let mut secrets: Vec<(String, String, String)> = Vec::new();
    let mut sent_files: Vec<Vec<u8>> = Vec::new();
    let collect_sent = findings::builders_may_differ(ctx);

    let close = |open: &mut Vec<OpenDir>,
                 pending_children: &mut Vec<Vec<usize>>,
                 closed: &mut Vec<ClosedDir>| {
        let dir = open.pop().expect("the root frame is never closed here");
        let children = pending_children.pop().unwrap_or_default();
        let dominant = dir.rule_bytes.iter().copied().max_by_key(|(_, b)| *b);
        let fully_unused = dir.needed.files == 0;
        let recognized_bytes: u64 = children
            .iter()
            .filter_map(|&c| closed.get(c))
            .map(|c| {
                if c.rule.is_some() && c.needed.files == 0 {
                    c.unused.bytes
                } else {
                    c.recognized_bytes
                }
            })
            .sum();
        let index = closed.len();
        for &c in &children {
            if let Some(child) = closed.get_mut(c) {
                child.parent = Some(index);
            }
        }
        if let Some(parent) = open.last_mut() {
            parent.needed.files += dir.needed.files;
            parent.needed.bytes += dir.needed.bytes;
            parent.unused.files += dir.unused.files;
            parent.unused.bytes += dir.unused.bytes;
            if let (Some(rule), true) = (dir.rule, fully_unused) {
                add_rule_bytes(&mut parent.rule_bytes, rule, dir.unused.bytes);
            } else {
                for (rule, bytes) in &dir.rule_bytes {
                    add_rule_bytes(&mut parent.rule_bytes, *rule, *bytes);
                }
            }
        }
        if let Some(siblings) = pending_children.last_mut() {
            siblings.push(index);
        }
        closed.push(ClosedDir {
            rel: dir.rel,
            parent: None,
            needed: dir.needed,
            unused: dir.unused,
            rule: dir.rule,
            dominant,
            recognized_bytes,
        });
    };

    let summary = annotated.walk_pipelined::<AnalyzeError, _>(|entry| {
        // Leave the directories this entry is not inside.
        while open.len() > 1 {
            let top = &open[open.len() - 1].rel;
            let inside = entry.rel.len() > top.len()
                && entry.rel.starts_with(top)
                && entry.rel[top.len()] == b'/';
            if inside {
                break;
            }
            close(&mut open, &mut pending_children, &mut closed);
        }
        let depth = entry.rel.iter().filter(|&&b| b == b'/').count() + 1;
        let name = match entry.rel.iter().rposition(|&b| b == b'/') {
            Some(p) => &entry.rel[p + 1..],
            None => entry.rel,
        };
        let parent_mask = open.last().map_or(0, |d| d.anchored_mask);
        let mut mask = parent_mask;
        if depth >= 2 {
            for (bit, p) in anchored_patterns.iter().enumerate().take(64) {
                if p.matches(name).unwrap_or(false) {
                    mask |= 1 << bit;
                }
            }
        }
        let path = entry.path;
        let has_child = |child: &str| path.join(child).exists();
        let read = || std::fs::read(path).ok();
        if entry.kind == FileKind::Dir {
            let rule = rules
                .classify(entry.rel, true, &has_child, &|| None)
                .map(|m| m.index);
            open.push(OpenDir {
                rel: entry.rel.to_vec(),
                needed: Totals::default(),
                unused: Totals::default(),
                rule,
                rule_bytes: Vec::new(),
                anchored_mask: mask,
            });
            pending_children.push(Vec::new());
            return Ok(());
        }
        let size = entry.size;
        before.add(size);
        if collect_sent {
            sent_files.push(entry.rel.to_vec());
        }
        for (bit, hits) in anchored_hits.iter_mut().enumerate().take(64) {
            if mask & (1 << bit) != 0 {
                hits.add(size);
            }
        }
        let file_rule = rules.classify(entry.rel, false, &has_child, &read);
        if let Some(m) = file_rule {
            if m.rule.secret {
                secrets.push((
                    String::from_utf8_lossy(entry.rel).into_owned(),
                    m.rule.id.clone(),
                    m.rule.description.clone(),
                ));
            }
        }
        let dir = open.last_mut().expect("root frame");
        if entry.needed {
            minimal.add(size);
            dir.needed.add(size);
            return Ok(());
        }
        dir.unused.add(size);
        if let Some(m) = file_rule {
            add_rule_bytes(&mut dir.rule_bytes, m.index, size);
        }
        let ext = extension(name);
        match by_ext.get_mut(ext) {
            Some(t) => t.add(size),
            None => {
                let mut t = Totals::default();
                t.add(size);
                by_ext.insert(ext.to_vec(), t);
            }
        }
        unused_files.push(UnusedFile {
            rel: entry.rel.into(),
            bytes: size,
            rule: file_rule.map(|m| m.index),
        });
        Ok(())
    })?;
    while open.len() > 1 {
        close(&mut open, &mut pending_children, &mut closed);
    }
    let root = open.pop().expect("root frame");
    let root_children = pending_children.pop().unwrap_or_default();

    // Kinds: recognised fully unused directories (outermost) and files.
    for d in &closed {
        if let (Some(rule), true) = (d.rule, d.needed.files == 0) {
            let inside_recognized =
                ancestors(&closed, d).any(|a| a.rule.is_some() && a.needed.files == 0);
            if !inside_recognized {
                let kind = &rules.ecosystems[rule.0].rules[rule.1].kind;
                let t = by_kind.entry(kind.clone()).or_default();
                t.files += d.unused.files;
                t.bytes += d.unused.bytes;
            }
        }
    }
    let recognized: HashSet<&[u8]> = closed
        .iter()
        .filter(|d| d.rule.is_some() && d.needed.files == 0)
        .map(|d| d.rel.as_slice())
        .collect();
    for f in &unused_files {
        if let Some((e, r)) = f.rule {
            let inside_recognized = f
                .rel
                .iter()
                .enumerate()
                .filter(|(_, &b)| b == b'/')
                .any(|(i, _)| recognized.contains(&f.rel[..i]));
            if !inside_recognized {
                let kind = &rules.ecosystems[e].rules[r].kind;
                by_kind.entry(kind.clone()).or_default().add(f.bytes);
            }
        }
    }

    let top_unused = top_unused(rules, &closed, &root_children, &unused_files, opts.top);
    // The largest few, without sorting (or copying) them all.
    let mut order: Vec<usize> = (0..unused_files.len()).collect();
    let by_size = |a: &usize, b: &usize| {
        let (x, y) = (&unused_files[*a], &unused_files[*b]);
        y.bytes.cmp(&x.bytes).then_with(|| x.rel.cmp(&y.rel))
    };
    if order.len() > opts.top && opts.top > 0 {
        order.select_nth_unstable_by(opts.top - 1, by_size);
    }
    order.truncate(opts.top);
    order.sort_by(by_size);
    let largest_unused_files: Vec<Unused> = order
        .iter()
        .map(|&i| unused_files[i].describe(rules))
        .collect();
    let contributors = contributors(
        closed
            .iter()
            .map(|d| (d.rel.as_slice(), d.needed))
            .filter(|(_, t)| t.files > 0),
    );
    let unused_by_kind = sorted_groups(by_kind.into_iter().collect(), opts.top);
    let unused_by_extension = sorted_groups(
        by_ext
            .into_iter()
            .map(|(k, v)| (String::from_utf8_lossy(&k).into_owned(), v))
            .collect(),
        opts.top,
    );
    let _ = root;

    let used: Vec<UsedPath> = plan
        .used
        .iter()
        .map(|u| UsedPath {
            path: u.pattern.clone(),
            line: u.line,
            instruction: u.instruction.clone(),
        })
        .collect();

    let suggestion = suggest::narrowest_context(ctx, &plan);
    let suggested_ignore = suggest::ignore_file(ctx, &plan, rules, suggestion.as_ref())?;

    let mut findings = findings::collect(findings::Inputs {
        ctx,
        plan: &plan,
        summary: &summary,
        anchored: &anchored,
        anchored_hits: &anchored_hits,
        secrets: &secrets,
        sent_files: collect_sent.then_some(&sent_files),
    })?;
    findings.sort_by(|a, b| {
        a.severity
            .cmp(&b.severity)
            .then(a.file.cmp(&b.file))
            .then(a.line.cmp(&b.line))
    });

    Ok(Analysis {
        context: ctx.root().to_path_buf(),
        dockerfile: ctx.dockerfile().to_path_buf(),
        builder: ctx.builder(),
        ignore_file: ctx.ignore_file().map(|i| i.path.clone()),
        before,
        minimal,
        used,
        whole_context_reasons: plan.whole.iter().map(|w| w.to_string()).collect(),
        top_unused,
        unused_by_kind,
        unused_by_extension,
        largest_unused_files,
        contributors,
        suggestion,
        suggested_ignore,
        findings,
    })
}

/// The directories (at most three levels deep) with the most bytes, for
/// budget reports and baseline comparisons.
pub fn contributors<'a>(dirs: impl Iterator<Item = (&'a [u8], Totals)>) -> Vec<Group> {
    let mut list: Vec<Group> = dirs
        .filter(|(rel, _)| rel.iter().filter(|&&b| b == b'/').count() < 3)
        .map(|(rel, t)| Group {
            name: format!("{}/", show(rel)),
            bytes: t.bytes,
            files: t.files,
        })
        .collect();
    list.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.name.cmp(&b.name)));
    list.truncate(20);
    list
}

fn add_rule_bytes(list: &mut Vec<((usize, usize), u64)>, rule: (usize, usize), bytes: u64) {
    match list.iter_mut().find(|(r, _)| *r == rule) {
        Some((_, b)) => *b += bytes,
        None => list.push((rule, bytes)),
    }
}

fn ancestors<'a>(closed: &'a [ClosedDir], d: &ClosedDir) -> impl Iterator<Item = &'a ClosedDir> {
    let mut next = d.parent;
    std::iter::from_fn(move || {
        let i = next?;
        let a = closed.get(i)?;
        next = a.parent;
        Some(a)
    })
}

fn extension(name: &[u8]) -> &[u8] {
    match name.iter().rposition(|&b| b == b'.') {
        Some(0) | None => b"(none)",
        Some(i) => &name[i..],
    }
}

/// An unused file, kept small: the walk may find hundreds of thousands.
struct UnusedFile {
    rel: Box<[u8]>,
    bytes: u64,
    rule: Option<(usize, usize)>,
}

impl UnusedFile {
    fn describe(&self, rules: &RuleSet) -> Unused {
        let rule = self.rule.map(|(e, r)| &rules.ecosystems[e].rules[r]);
        Unused {
            path: show(&self.rel),
            bytes: self.bytes,
            files: 1,
            kind: rule.map_or_else(|| "file".to_string(), |r| r.kind.clone()),
            rule: rule.map(|r| r.id.clone()),
            why: rule.map(|r| r.description.clone()),
        }
    }

    fn parent(&self) -> &[u8] {
        match self.rel.iter().rposition(|&b| b == b'/') {
            Some(p) => &self.rel[..p],
            None => b"",
        }
    }
}

fn sorted_groups(mut groups: Vec<(String, Totals)>, top: usize) -> Vec<Group> {
    groups.sort_by(|a, b| b.1.bytes.cmp(&a.1.bytes).then(a.0.cmp(&b.0)));
    groups
        .into_iter()
        .take(top)
        .map(|(name, t)| Group {
            name,
            bytes: t.bytes,
            files: t.files,
        })
        .collect()
}

/// The places to exclude, largest first: recognised directories that are
/// entirely unused, the outermost entirely unused directories (split into
/// their recognised parts when those are most of it), and unused files in
/// directories the build reads from.
fn top_unused(
    rules: &RuleSet,
    closed: &[ClosedDir],
    root_children: &[usize],
    unused_files: &[UnusedFile],
    top: usize,
) -> Vec<Unused> {
    let mut files_in: HashMap<&[u8], Vec<usize>> = HashMap::new();
    for (i, f) in unused_files.iter().enumerate() {
        files_in.entry(f.parent()).or_default().push(i);
    }
    let mut reported: HashSet<usize> = HashSet::new();
    let mut out = Vec::new();
    let describe = |d: &ClosedDir| -> Unused {
        let (kind, rule, why) = match d.rule.or(d.dominant.map(|(r, _)| r)) {
            Some((e, r)) => {
                let rule = &rules.ecosystems[e].rules[r];
                let prefix = if d.rule.is_some() { "" } else { "mostly " };
                (
                    format!("{prefix}{}", rule.kind),
                    Some(rule.id.clone()),
                    Some(rule.description.clone()),
                )
            }
            None => ("directory".to_string(), None, None),
        };
        Unused {
            path: format!("{}/", String::from_utf8_lossy(&d.rel)),
            bytes: d.unused.bytes,
            files: d.unused.files,
            kind,
            rule,
            why,
        }
    };
    // Depth-first from the root's children.
    let mut children_of: HashMap<usize, Vec<usize>> = HashMap::new();
    for (i, d) in closed.iter().enumerate() {
        if let Some(p) = d.parent {
            children_of.entry(p).or_default().push(i);
        }
    }
    let mut stack: Vec<usize> = root_children.to_vec();
    while let Some(i) = stack.pop() {
        let d = &closed[i];
        let fully_unused = d.needed.files == 0;
        if !fully_unused {
            stack.extend(children_of.get(&i).into_iter().flatten());
            continue;
        }
        if d.unused.files == 0 && d.unused.bytes == 0 {
            continue;
        }
        if d.rule.is_none() && d.recognized_bytes * 2 >= d.unused.bytes && d.recognized_bytes > 0 {
            // Mostly recognisable parts: report those instead.
            stack.extend(children_of.get(&i).into_iter().flatten());
            for &f in files_in.get(d.rel.as_slice()).into_iter().flatten() {
                if reported.insert(f) {
                    out.push(unused_files[f].describe(rules));
                }
            }
            continue;
        }
        out.push(describe(d));
    }
    // Unused files directly in directories the build reads from.
    let fully_unused_dirs: HashSet<&[u8]> = closed
        .iter()
        .filter(|d| d.needed.files == 0)
        .map(|d| d.rel.as_slice())
        .collect();
    // Only the largest can make the list: no need to describe the rest.
    let mut loose: Vec<usize> = (0..unused_files.len())
        .filter(|&i| {
            !fully_unused_dirs.contains(unused_files[i].parent()) && !reported.contains(&i)
        })
        .collect();
    loose.sort_by(|a, b| unused_files[*b].bytes.cmp(&unused_files[*a].bytes));
    for &i in loose.iter().take(top) {
        out.push(unused_files[i].describe(rules));
    }
    out.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.path.cmp(&b.path)));
    out.truncate(top);
    out
}

/// Path bytes for display and JSON.
pub(crate) fn show(p: &[u8]) -> String {
    String::from_utf8_lossy(p).into_owned()
}

/// Whether a matcher rule's pattern is anchored at the root and could be
/// meant to apply at any depth (no `/`, not already `**`).
pub(crate) fn is_root_anchored_name_pattern(p: &Pattern) -> bool {
    let text = p.as_bytes();
    !text.contains(&b'/') && p.kind() != MatchKind::Suffix && text != b"." && text != b"*"
}

pub(crate) fn os(p: &[u8]) -> &std::ffi::OsStr {
    std::ffi::OsStr::from_bytes(p)
}

/// Bytes for people, in decimal units as Docker prints them: `1.4 GB`.
pub fn humanize(bytes: u64) -> String {
    humansize::format_size(bytes, humansize::DECIMAL)
}
