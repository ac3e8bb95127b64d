//! Measure and report: what a build sends today, what it needs, what is
//! wasted and why, and how to fix it.
//!
//! One walk of the context as Docker sends it, with the Dockerfile's paths
//! as include patterns in annotate mode, gives every number: each sent
//! entry is either needed (the build can read it) or waste, and waste is
//! named by the [`rules`]. `findings` judges the ignore file and the
//! context; `suggest` finds the narrowest context and an ignore file
//! checked file by file to send what today's build sends under every path
//! the Dockerfile reads.

pub(crate) mod findings;
mod generated;

/// The fuzz target's body for build files and `.gitignore` files
/// (`crate::fuzzing::build_files`).
pub(crate) use generated::fuzz as fuzz_build_files;
pub mod report;
pub mod rules;
mod suggest;
pub(crate) mod tree;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use crate::context::fold::Spread;
use crate::context::ignore::{MatchKind, Pattern};
use crate::context::{Builder, Context, ContextError, FileKind, WalkError};
use crate::plan::{Plan, PlanError, PlanOptions};

pub use findings::{Finding, Severity};
pub use rules::RuleSet;
pub use suggest::{ContextSuggestion, Dropped, IgnoreSuggestion, Rewrite};
pub use tree::{Class, Detail, LineReads, Node};

/// Errors that stop an analysis.
#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    /// The Dockerfile could not be read or planned.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// Walking the context failed.
    #[error(transparent)]
    Walk(#[from] WalkError),
    /// The context (root, Dockerfile, ignore file) could not be resolved.
    #[error(transparent)]
    Context(#[from] ContextError),
    /// The Dockerfile's paths did not compile as include patterns.
    #[error(transparent)]
    Include(#[from] crate::context::ignore::CompileError),
    /// A suggested pattern did not parse (a bug: suggestions are built to parse).
    #[error(transparent)]
    Pattern(#[from] crate::context::ignore::PatternError),
}

/// Options of an analysis.
#[derive(Debug, Clone)]
pub struct AnalyzeOptions {
    /// How the Dockerfile is read (build args, target stage).
    pub plan: PlanOptions,
    /// How many entries the "top" lists keep.
    pub top: usize,
    /// Also build [`Analysis::detail`] (the HTML report's treemap and
    /// Dockerfile annotations).
    pub detail: bool,
}

impl Default for AnalyzeOptions {
    fn default() -> Self {
        AnalyzeOptions {
            plan: PlanOptions::default(),
            top: 10,
            detail: false,
        }
    }
}

/// Files and bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Totals {
    /// Regular files and symlinks (directories are not counted).
    pub files: u64,
    /// Their content bytes.
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
    /// Content bytes inside.
    pub bytes: u64,
    /// Files inside (1 for a file).
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
    /// The kind, extension or directory the group gathers.
    pub name: String,
    /// Content bytes in the group.
    pub bytes: u64,
    /// Files in the group.
    pub files: u64,
}

/// A path the Dockerfile reads.
#[derive(Debug, Clone, serde::Serialize)]
pub struct UsedPath {
    /// The source as written, relative to the context.
    pub path: String,
    /// Dockerfile line (1-based) of the instruction.
    pub line: usize,
    /// `COPY`, `ADD` or `RUN --mount`.
    pub instruction: String,
}

/// The result of an analysis.
#[derive(Debug, Clone)]
pub struct Analysis {
    /// The context root.
    pub context: PathBuf,
    /// The Dockerfile analysed.
    pub dockerfile: PathBuf,
    /// The builder whose rules decided what is sent.
    pub builder: Builder,
    /// The ignore file that builder reads, if there is one.
    pub ignore_file: Option<PathBuf>,
    /// What Docker sends today.
    pub before: Totals,
    /// What the build can read of it.
    pub minimal: Totals,
    /// Paths the Dockerfile reads.
    pub used: Vec<UsedPath>,
    /// Why the whole context counts as used, if it does.
    pub whole_context_reasons: Vec<String>,
    /// The largest unused entries, directories folded where wholly unused.
    pub top_unused: Vec<Unused>,
    /// Unused bytes by what a rule recognises them as.
    pub unused_by_kind: Vec<Group>,
    /// Unused bytes by file extension.
    pub unused_by_extension: Vec<Group>,
    /// The largest unused single files.
    pub largest_unused_files: Vec<Unused>,
    /// Directories (up to three levels deep) holding the most needed bytes.
    pub contributors: Vec<Group>,
    /// A narrower context directory, when one holds every used path.
    pub suggestion: Option<ContextSuggestion>,
    /// An ignore file that keeps what the build reads, when one was found.
    pub suggested_ignore: Option<IgnoreSuggestion>,
    /// Problems found in the ignore file and the context.
    pub findings: Vec<Finding>,
    /// The treemap and per-line reads, with [`AnalyzeOptions::detail`].
    pub detail: Option<tree::Detail>,
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
    analyze_spread(ctx, rules, opts, Spread::from_env())
}

/// [`analyze`] with the walk spread over the given threads.
fn analyze_spread(
    ctx: &Context,
    rules: &RuleSet,
    opts: &AnalyzeOptions,
    spread: Spread,
) -> Result<Analysis, AnalyzeError> {
    let plan = Plan::new(ctx, &opts.plan)?;
    let annotated = plan.apply(ctx, false)?.with_sizes();

    // Ignore rules written without `**/` that could match deeper down.
    let anchored = findings::anchored_candidates(ctx);
    let anchored_patterns: Vec<&Pattern> = anchored
        .iter()
        .map(|&i| &ctx.matcher().rules()[i].pattern)
        .collect();
    let shared = Shared {
        rules,
        anchored_patterns,
        collect_sent: findings::builders_may_differ(ctx),
        keep_needed: opts.detail,
    };
    let (tally, summary) =
        annotated.walk_fold_spread(Tally::new(&shared, Vec::new(), 0), spread)?;
    let Tally {
        before,
        minimal,
        closed,
        mut pending_children,
        unused_files,
        by_ext,
        secrets,
        sent_files,
        anchored_hits,
        needed_files,
        ..
    } = tally.finish();
    let collect_sent = shared.collect_sent;
    let root_children = pending_children.pop().unwrap_or_default();
    let mut by_kind: BTreeMap<String, Totals> = BTreeMap::new();

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
        rules,
    })?;
    findings.sort_by(|a, b| {
        a.severity
            .cmp(&b.severity)
            .then(a.file.cmp(&b.file))
            .then(a.line.cmp(&b.line))
    });
    let findings = findings::cap_per_rule(findings, findings::MAX_PER_RULE);

    let detail = if opts.detail {
        let dirs: Vec<tree::DirInfo<'_>> = closed
            .iter()
            .map(|d| tree::DirInfo {
                rel: &d.rel,
                kind: d
                    .rule
                    .map(|(e, r)| rules.ecosystems[e].rules[r].kind.clone())
                    .or_else(|| {
                        d.dominant.map(|((e, r), _)| {
                            format!("mostly {}", rules.ecosystems[e].rules[r].kind)
                        })
                    }),
            })
            .collect();
        let unused: Vec<tree::Leaf<'_>> = unused_files
            .iter()
            .map(|f| tree::Leaf {
                rel: &f.rel,
                bytes: f.bytes,
                kind: Some(
                    f.rule
                        .map_or("file", |(e, r)| rules.ecosystems[e].rules[r].kind.as_str()),
                ),
            })
            .collect();
        let needed: Vec<tree::Leaf<'_>> = needed_files
            .iter()
            .map(|(rel, bytes)| tree::Leaf {
                rel,
                bytes: *bytes,
                kind: None,
            })
            .collect();
        let forced: Vec<&str> = top_unused.iter().map(|u| u.path.as_str()).collect();
        Some(tree::Detail::build(tree::Inputs {
            ctx,
            plan: &plan,
            dirs: &dirs,
            unused: &unused,
            needed: &needed,
            forced: &forced,
        })?)
    } else {
        None
    };

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
        detail,
    })
}

/// What [`analyze`] needs from the rules while it walks.
struct Shared<'a> {
    rules: &'a RuleSet,
    /// Root-anchored ignore patterns worth a `**/` (at most 64 count).
    anchored_patterns: Vec<&'a Pattern>,
    /// Whether to list every sent file (to compare builders).
    collect_sent: bool,
    /// Whether to keep every needed file (for [`tree::Detail`]).
    keep_needed: bool,
}

/// The analysis of the walk so far: of the whole context, or of one
/// subtree (then its bottom frame stands for the subtree's parent
/// directory, which collects what the subtree adds to it).
struct Tally<'a> {
    shared: &'a Shared<'a>,
    before: Totals,
    minimal: Totals,
    /// The directories the walk is inside, outermost first.
    open: Vec<OpenDir>,
    /// Finished directories, in the order they closed.
    closed: Vec<ClosedDir>,
    /// Per open directory: its children's indexes in `closed` (a child's
    /// parent index is not known until the parent closes).
    pending_children: Vec<Vec<usize>>,
    unused_files: Vec<UnusedFile>,
    by_ext: HashMap<Vec<u8>, Totals>,
    secrets: Vec<(String, String, String)>,
    sent_files: Vec<Vec<u8>>,
    /// Needed files and their sizes, with [`Shared::keep_needed`].
    needed_files: Vec<(Box<[u8]>, u64)>,
    /// Per root-anchored pattern: files sent below a directory it would
    /// match with `**/`.
    anchored_hits: Vec<Totals>,
    /// For a subtree: its directory, which it visits first.
    subtree: Option<Vec<u8>>,
}

impl<'a> Tally<'a> {
    /// A tally whose bottom frame is the directory `rel`, with the
    /// anchored-pattern mask it has.
    fn new(shared: &'a Shared<'a>, rel: Vec<u8>, anchored_mask: u64) -> Tally<'a> {
        Tally {
            shared,
            before: Totals::default(),
            minimal: Totals::default(),
            open: vec![OpenDir {
                rel,
                needed: Totals::default(),
                unused: Totals::default(),
                rule: None,
                rule_bytes: Vec::new(),
                anchored_mask,
            }],
            closed: Vec::new(),
            pending_children: vec![Vec::new()],
            unused_files: Vec::new(),
            by_ext: HashMap::new(),
            secrets: Vec::new(),
            sent_files: Vec::new(),
            needed_files: Vec::new(),
            anchored_hits: vec![Totals::default(); shared.anchored_patterns.len()],
            subtree: None,
        }
    }

    /// The anchored patterns (as bits) matching `name` at `depth`: a
    /// pattern with `**/` matches from depth 2 on.
    fn anchored_bits(&self, name: &[u8], depth: usize) -> u64 {
        let mut mask = 0;
        if depth >= 2 {
            for (bit, p) in self.shared.anchored_patterns.iter().enumerate().take(64) {
                if p.matches(name).unwrap_or(false) {
                    mask |= 1 << bit;
                }
            }
        }
        mask
    }

    /// Closes the open directories that `rel` does not lie inside.
    fn leave_to(&mut self, rel: &[u8]) {
        while self.open.len() > 1 {
            let top = &self.open[self.open.len() - 1].rel;
            let inside = rel.len() > top.len() && rel.starts_with(top) && rel[top.len()] == b'/';
            if inside {
                break;
            }
            self.close_top();
        }
    }

    /// Closes the innermost open directory, handing its tallies to its
    /// parent.
    fn close_top(&mut self) {
        let Some(dir) = self.open.pop() else {
            return;
        };
        let children = self.pending_children.pop().unwrap_or_default();
        let closed = &mut self.closed;
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
        if let Some(parent) = self.open.last_mut() {
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
        if let Some(siblings) = self.pending_children.last_mut() {
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
    }

    /// Closes every directory but the bottom frame.
    fn finish(mut self) -> Self {
        while self.open.len() > 1 {
            self.close_top();
        }
        self
    }
}

impl crate::context::fold::Fold for Tally<'_> {
    type Error = AnalyzeError;

    fn fork(&self, root: &crate::context::Entry<'_>) -> Self {
        let parent: &[u8] = match root.rel.iter().rposition(|&b| b == b'/') {
            Some(p) => &root.rel[..p],
            None => b"",
        };
        let mut mask = 0;
        if !parent.is_empty() {
            for (i, name) in parent.split(|&b| b == b'/').enumerate() {
                mask |= self.anchored_bits(name, i + 1);
            }
        }
        let mut tally = Tally::new(self.shared, parent.to_vec(), mask);
        tally.subtree = Some(root.rel.to_vec());
        tally
    }

    fn visit(&mut self, entry: &crate::context::Entry<'_>) -> Result<(), AnalyzeError> {
        self.leave_to(entry.rel);
        let rules = self.shared.rules;
        let depth = entry.rel.iter().filter(|&&b| b == b'/').count() + 1;
        let name = match entry.rel.iter().rposition(|&b| b == b'/') {
            Some(p) => &entry.rel[p + 1..],
            None => entry.rel,
        };
        let parent_mask = self.open.last().map_or(0, |d| d.anchored_mask);
        let mask = parent_mask | self.anchored_bits(name, depth);
        let path = entry.path;
        // Neither follows a link out of the context nor blocks on a FIFO.
        let has_child = |child: &str| path.join(child).symlink_metadata().is_ok();
        let read = || entry.read_head(rules::CONTENT_LIMIT);
        if entry.kind == FileKind::Dir {
            let rule = rules
                .classify(entry.rel, true, &has_child, &|| None)
                .map(|m| m.index);
            self.open.push(OpenDir {
                rel: entry.rel.to_vec(),
                needed: Totals::default(),
                unused: Totals::default(),
                rule,
                rule_bytes: Vec::new(),
                anchored_mask: mask,
            });
            self.pending_children.push(Vec::new());
            return Ok(());
        }
        let size = entry.size;
        self.before.add(size);
        if self.shared.collect_sent {
            self.sent_files.push(entry.rel.to_vec());
        }
        for (bit, hits) in self.anchored_hits.iter_mut().enumerate().take(64) {
            if mask & (1 << bit) != 0 {
                hits.add(size);
            }
        }
        let file_rule = rules.classify(entry.rel, false, &has_child, &read);
        if let Some(m) = file_rule {
            if m.rule.secret {
                self.secrets.push((
                    String::from_utf8_lossy(entry.rel).into_owned(),
                    m.rule.id.clone(),
                    m.rule.description.clone(),
                ));
            }
        }
        let Some(dir) = self.open.last_mut() else {
            return Ok(());
        };
        if entry.needed {
            self.minimal.add(size);
            dir.needed.add(size);
            if self.shared.keep_needed {
                self.needed_files.push((entry.rel.into(), size));
            }
            return Ok(());
        }
        dir.unused.add(size);
        if let Some(m) = file_rule {
            add_rule_bytes(&mut dir.rule_bytes, m.index, size);
        }
        let ext = extension(name);
        match self.by_ext.get_mut(ext) {
            Some(t) => t.add(size),
            None => {
                let mut t = Totals::default();
                t.add(size);
                self.by_ext.insert(ext.to_vec(), t);
            }
        }
        self.unused_files.push(UnusedFile {
            rel: entry.rel.into(),
            bytes: size,
            rule: file_rule.map(|m| m.index),
        });
        Ok(())
    }

    /// Equal to visiting the subtree's entries here: its directories
    /// close as they would have, and its bottom frame's tallies are what
    /// those directories handed to their parent.
    fn join(&mut self, sub: Self) -> Result<(), AnalyzeError> {
        if let Some(rel) = &sub.subtree {
            self.leave_to(rel);
        }
        let mut sub = sub.finish();
        let offset = self.closed.len();
        self.closed.extend(sub.closed.into_iter().map(|mut d| {
            d.parent = d.parent.map(|p| p + offset);
            d
        }));
        let sub_children = sub.pending_children.pop().unwrap_or_default();
        if let Some(siblings) = self.pending_children.last_mut() {
            siblings.extend(sub_children.into_iter().map(|c| c + offset));
        }
        if let (Some(parent), Some(bottom)) = (self.open.last_mut(), sub.open.pop()) {
            parent.needed.files += bottom.needed.files;
            parent.needed.bytes += bottom.needed.bytes;
            parent.unused.files += bottom.unused.files;
            parent.unused.bytes += bottom.unused.bytes;
            for (rule, bytes) in bottom.rule_bytes {
                add_rule_bytes(&mut parent.rule_bytes, rule, bytes);
            }
        }
        self.before.files += sub.before.files;
        self.before.bytes += sub.before.bytes;
        self.minimal.files += sub.minimal.files;
        self.minimal.bytes += sub.minimal.bytes;
        self.unused_files.extend(sub.unused_files);
        for (ext, t) in sub.by_ext {
            let total = self.by_ext.entry(ext).or_default();
            total.files += t.files;
            total.bytes += t.bytes;
        }
        self.secrets.extend(sub.secrets);
        self.sent_files.extend(sub.sent_files);
        self.needed_files.extend(sub.needed_files);
        for (total, t) in self.anchored_hits.iter_mut().zip(sub.anchored_hits) {
            total.files += t.files;
            total.bytes += t.bytes;
        }
        Ok(())
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::ContextSpec;

    /// The analysis folded on several threads, cut at any depth, equals
    /// the one-thread analysis: same totals, lists, kinds and findings.
    #[test]
    fn the_split_walk_gives_the_same_analysis() {
        let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        let cases = [
            ("reggie", "reggie/backend/Dockerfile"),
            ("reggie/backend", "reggie/backend/Dockerfile"),
            ("node-multistage", "node-multistage/Dockerfile"),
            ("mounts-wildcards", "mounts-wildcards/Dockerfile"),
            (
                "compose-monorepo",
                "compose-monorepo/services/api/Dockerfile",
            ),
        ];
        // And a tree whose ignore file reopens excluded directories.
        let tmp = tempfile::tempdir().unwrap();
        for (path, body) in [
            ("node_modules/a/README.md", "a"),
            ("node_modules/a/index.js", "index"),
            ("node_modules/b/c/d/x.pyc", "pyc"),
            ("app/pkg/__pycache__/m.pyc", "pyc pyc"),
            ("app/pkg/m.py", "import os"),
            ("app/.env", "SECRET=1"),
            ("docs/guide.md", "guide"),
            ("tools/a/node_modules/p/index.js", "module.exports = 1"),
            ("tools/a/node_modules/p/lib/util.js", "module.exports = 2"),
            ("tools/b/__pycache__/x.cpython-311.pyc", "pyc"),
            ("tools/b/notes.txt", "n"),
            ("tools/c/big.pyc", &"p".repeat(5000)),
            ("Dockerfile", "FROM scratch\nCOPY app /app\n"),
            (
                ".dockerignore",
                "node_modules\n!**/*.md\n*.pyc\n__pycache__\ndocs/*\n!docs/g*\n",
            ),
        ] {
            let p = tmp.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, body).unwrap();
        }
        let tmp_dockerfile = tmp.path().join("Dockerfile");
        let mut cases: Vec<(std::path::PathBuf, std::path::PathBuf)> = cases
            .iter()
            .map(|(d, f)| (fixtures.join(d), fixtures.join(f)))
            .collect();
        cases.push((tmp.path().to_path_buf(), tmp_dockerfile));
        let rules = RuleSet::builtin();
        for (dir, dockerfile) in cases {
            for builder in [Builder::BuildKit, Builder::Classic] {
                let ctx = ContextSpec {
                    root: dir.clone(),
                    dockerfile: Some(dockerfile.clone()),
                    builder,
                }
                .resolve()
                .unwrap();
                let opts = AnalyzeOptions::default();
                let one = Spread {
                    threads: 1,
                    depth: 1,
                };
                let want = format!("{:?}", analyze_spread(&ctx, &rules, &opts, one).unwrap());
                for threads in [2, 3] {
                    for depth in [1, 2, 3, 4] {
                        let spread = Spread { threads, depth };
                        let got = analyze_spread(&ctx, &rules, &opts, spread).unwrap();
                        assert_eq!(
                            format!("{got:?}"),
                            want,
                            "{} {builder:?} {spread:?}",
                            dir.display()
                        );
                    }
                }
            }
        }
    }
}
