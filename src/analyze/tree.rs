//! What the HTML report draws beyond the JSON report: the context as a
//! tree of directories and files (what is needed, unused and by what kind,
//! excluded by the ignore file and by which line, as `explain` says),
//! folded to a bounded number of cells, and what each Dockerfile line
//! reads.
//!
//! The tree is flat (each node names its parent's index), so neither this
//! module nor the page recurses over it.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use super::{AnalyzeError, Totals};
use crate::context::Context;
use crate::plan::Plan;

/// The model version of [`Detail`] (the HTML page reads it).
pub const MODEL: u32 = 1;

/// Entries below this share of the context's bytes fold into their
/// directory's "N small files" cell; with the children cap and the node
/// cap below it bounds the report (the 120,000-file monorepo stays well
/// under 2 MB).
const SMALL_SHARE: u64 = 4000;
/// At most this many cells per directory (the rest fold).
const MAX_CHILDREN: usize = 200;
/// At most about this many cells in all: beyond it directories are drawn
/// as single cells, not opened.
const MAX_NODES: usize = 12_000;

/// What a node is, for its colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    /// The build can read it.
    Needed,
    /// Sent, never read.
    Unused,
    /// Not sent: the ignore file excludes it.
    Excluded,
    /// A directory holding more than one of those.
    Mixed,
}

/// One cell of the treemap.
#[derive(Debug, Clone, Serialize)]
pub struct Node {
    /// Index of the parent node; the root (index 0) has none.
    pub parent: Option<usize>,
    /// The last path component (empty for the root and for folded cells).
    pub name: String,
    /// Content bytes in the cell (its subtree for a directory).
    pub bytes: u64,
    /// Files in the cell.
    pub files: u64,
    /// What the cell is, which colours it.
    pub class: Class,
    /// What it is (`node_modules`, `file`...), for unused entries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The ignore-file decision, as `explain` words it: an index into
    /// [`Detail::decisions`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided: Option<usize>,
    /// A directory (its children follow it in the list).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub dir: bool,
    /// The small entries of a directory folded into one cell.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub folded: bool,
}

/// What one Dockerfile line reads from the context.
#[derive(Debug, Clone, Serialize)]
pub struct LineReads {
    /// 1-based Dockerfile line.
    pub line: usize,
    /// The instruction's keyword.
    pub instruction: String,
    /// The context paths it names.
    pub paths: Vec<String>,
    /// Files the build reads under those paths.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// The HTML report's extra model.
#[derive(Debug, Clone, Serialize)]
pub struct Detail {
    /// Version of this model, for the page's script.
    pub model: u32,
    /// Parents before children; node 0 is the context root.
    pub nodes: Vec<Node>,
    /// The distinct ignore-file decisions the nodes name.
    pub decisions: Vec<String>,
    /// Bytes and files the ignore file keeps out.
    pub excluded: Totals,
    /// The Dockerfile's lines.
    pub dockerfile_lines: Vec<String>,
    /// What each reading line reads, in line order.
    pub reads: Vec<LineReads>,
}

/// A directory of the walk and what it is, if known.
pub struct DirInfo<'a> {
    pub rel: &'a [u8],
    pub kind: Option<String>,
}

/// A sent file.
pub struct Leaf<'a> {
    pub rel: &'a [u8],
    pub bytes: u64,
    /// Its kind when unused.
    pub kind: Option<&'a str>,
}

/// What [`Detail::build`] reads.
pub struct Inputs<'a> {
    pub ctx: &'a Context,
    pub plan: &'a Plan,
    pub dirs: &'a [DirInfo<'a>],
    pub unused: &'a [Leaf<'a>],
    pub needed: &'a [Leaf<'a>],
    /// Paths that must keep a cell of their own (the top unused entries;
    /// directories end in `/`).
    pub forced: &'a [&'a str],
}

/// The full tree before folding.
struct Full<'a> {
    name: &'a [u8],
    parent: usize,
    children: Vec<usize>,
    needed: Totals,
    unused: Totals,
    excluded: Totals,
    dir: bool,
    kind: Option<&'a str>,
}

impl Full<'_> {
    fn bytes(&self) -> u64 {
        self.needed.bytes + self.unused.bytes + self.excluded.bytes
    }
    fn files(&self) -> u64 {
        self.needed.files + self.unused.files + self.excluded.files
    }
    fn class(&self) -> Class {
        let parts = [
            (self.needed.files > 0, Class::Needed),
            (self.unused.files > 0, Class::Unused),
            (self.excluded.files > 0, Class::Excluded),
        ];
        let mut present = parts.iter().filter(|(p, _)| *p);
        match (present.next(), present.next()) {
            (Some((_, c)), None) => *c,
            (None, _) => Class::Unused,
            _ => Class::Mixed,
        }
    }
}

struct Builder<'a> {
    nodes: Vec<Full<'a>>,
    dirs: HashMap<Vec<u8>, usize>,
    /// The last leaf's directory: the walk lists a directory's files
    /// together, so most leaves skip the lookup.
    last_dir: (&'a [u8], usize),
}

impl<'a> Builder<'a> {
    /// The node of directory `rel`, created with its ancestors.
    fn dir(&mut self, rel: &'a [u8]) -> usize {
        if let Some(&i) = self.dirs.get(rel) {
            return i;
        }
        // Create the missing ancestors top down, without recursion.
        let mut missing = vec![rel];
        let mut parent_index = 0;
        let mut cur = rel;
        while let Some(p) = cur.iter().rposition(|&b| b == b'/') {
            cur = &cur[..p];
            match self.dirs.get(cur) {
                Some(&i) => {
                    parent_index = i;
                    break;
                }
                None => missing.push(cur),
            }
        }
        let mut index = parent_index;
        for d in missing.into_iter().rev() {
            index = self.push(d, parent_index, true);
            self.dirs.insert(d.to_vec(), index);
            parent_index = index;
        }
        index
    }

    fn push(&mut self, rel: &'a [u8], parent: usize, dir: bool) -> usize {
        let name = match rel.iter().rposition(|&b| b == b'/') {
            Some(p) => &rel[p + 1..],
            None => rel,
        };
        let i = self.nodes.len();
        self.nodes.push(Full {
            name,
            parent,
            children: Vec::new(),
            needed: Totals::default(),
            unused: Totals::default(),
            excluded: Totals::default(),
            dir,
            kind: None,
        });
        self.nodes[parent].children.push(i);
        i
    }

    fn leaf(&mut self, rel: &'a [u8], class: Class, t: Totals) -> usize {
        let parent = match rel.iter().rposition(|&b| b == b'/') {
            Some(p) if self.last_dir.0 == &rel[..p] => self.last_dir.1,
            Some(p) => {
                let d = self.dir(&rel[..p]);
                self.last_dir = (&rel[..p], d);
                d
            }
            None => 0,
        };
        let i = self.push(rel, parent, false);
        let n = &mut self.nodes[i];
        match class {
            Class::Needed => n.needed = t,
            Class::Excluded => n.excluded = t,
            _ => n.unused = t,
        }
        i
    }
}

impl Detail {
    /// Builds the tree from the analysis walk, walks what the ignore file
    /// excludes (nothing to walk without one), folds small entries and
    /// measures what each Dockerfile line reads.
    pub fn build(i: Inputs<'_>) -> Result<Detail, AnalyzeError> {
        let ctx = i.ctx;
        let mut b = Builder {
            nodes: vec![Full {
                name: b"",
                parent: 0,
                children: Vec::new(),
                needed: Totals::default(),
                unused: Totals::default(),
                excluded: Totals::default(),
                dir: true,
                kind: None,
            }],
            dirs: HashMap::new(),
            last_dir: (b"", 0),
        };
        b.dirs.insert(Vec::new(), 0);
        for d in i.dirs {
            let n = b.dir(d.rel);
            b.nodes[n].kind = d.kind.as_deref();
        }
        for f in i.unused {
            let n = b.leaf(f.rel, Class::Unused, one(f.bytes));
            b.nodes[n].kind = f.kind;
        }
        for f in i.needed {
            b.leaf(f.rel, Class::Needed, one(f.bytes));
        }
        let excluded = excluded(ctx, i.unused, i.needed)?;
        let mut excluded_total = Totals::default();
        for (rel, bytes) in &excluded {
            excluded_total.add(*bytes);
            b.leaf(rel, Class::Excluded, one(*bytes));
        }
        // What is inside a recognised directory (a venv's `lib/`, a
        // package's files) is of its kind; parents come first.
        let mut recognised: Vec<Option<usize>> = vec![None; b.nodes.len()];
        for n in 1..b.nodes.len() {
            let own = b.nodes[n].dir && b.nodes[n].kind.is_some_and(|k| !k.starts_with("mostly "));
            recognised[n] = if own {
                Some(n)
            } else {
                recognised[b.nodes[n].parent]
            };
            let generic = match b.nodes[n].kind {
                None => b.nodes[n].dir,
                Some(k) => k == "file" || k.starts_with("mostly "),
            };
            if let (Some(r), true, false) = (recognised[n], generic, own) {
                b.nodes[n].kind = b.nodes[r].kind;
            }
        }
        // Sums, children before parents (every child has a larger index).
        for n in (1..b.nodes.len()).rev() {
            let (needed, unused, excl, parent) = {
                let c = &b.nodes[n];
                (c.needed, c.unused, c.excluded, c.parent)
            };
            let p = &mut b.nodes[parent];
            for (t, add) in [
                (&mut p.needed, needed),
                (&mut p.unused, unused),
                (&mut p.excluded, excl),
            ] {
                t.files += add.files;
                t.bytes += add.bytes;
            }
        }
        let forced = forced_nodes(&b, i.forced);
        let (nodes, decisions) = fold(ctx, &b.nodes, &forced)?;
        let dockerfile_lines = i.plan.source.lines().map(str::to_string).collect();
        let reads = reads(ctx, i.plan, i.needed)?;
        Ok(Detail {
            model: MODEL,
            nodes,
            decisions,
            excluded: excluded_total,
            dockerfile_lines,
            reads,
        })
    }
}

fn one(bytes: u64) -> Totals {
    Totals { files: 1, bytes }
}

/// The files the ignore file keeps out: a walk of the context without the
/// ignore file, minus what is sent. Which line decided is asked only for
/// the cells drawn ([`Decider`]), not for every excluded file.
fn excluded(
    ctx: &Context,
    unused: &[Leaf<'_>],
    needed: &[Leaf<'_>],
) -> Result<Vec<(Vec<u8>, u64)>, AnalyzeError> {
    let Some(ignore) = ctx.ignore_file() else {
        return Ok(Vec::new());
    };
    let sent: HashSet<&[u8]> = unused.iter().chain(needed).map(|f| f.rel).collect();
    let all = ctx.with_ignore_text(&ignore.path, b"")?.with_sizes();
    let mut out = Vec::new();
    all.walk(|e| -> Result<(), AnalyzeError> {
        if e.kind != crate::context::FileKind::Dir && !sent.contains(e.rel) {
            out.push((e.rel.to_vec(), e.size));
        }
        Ok(())
    })?;
    Ok(out)
}

/// A node's context-relative path (only drawn nodes need one, so it is
/// not kept for every file).
fn rel_of(nodes: &[Full<'_>], mut i: usize) -> Vec<u8> {
    let mut parts = Vec::new();
    while i != 0 {
        parts.push(nodes[i].name);
        i = nodes[i].parent;
    }
    parts.reverse();
    parts.join(&b'/')
}

/// The nodes of the forced paths and of their ancestors.
fn forced_nodes(b: &Builder<'_>, forced: &[&str]) -> HashSet<usize> {
    let mut out = HashSet::new();
    for p in forced {
        let found = match p.strip_suffix('/') {
            Some(d) => b.dirs.get(d.as_bytes()).copied(),
            None => {
                let (dir, name) = match p.rfind('/') {
                    Some(i) => (&p[..i], &p[i + 1..]),
                    None => ("", *p),
                };
                b.dirs.get(dir.as_bytes()).and_then(|&d| {
                    b.nodes[d]
                        .children
                        .iter()
                        .copied()
                        .find(|&c| !b.nodes[c].dir && b.nodes[c].name == name.as_bytes())
                })
            }
        };
        let mut next = found;
        while let Some(n) = next {
            if n == 0 || !out.insert(n) {
                break;
            }
            next = Some(b.nodes[n].parent);
        }
    }
    out
}

/// The nodes to draw: from the root down, each opened directory's
/// children largest first, small ones folded per class.
fn fold(
    ctx: &Context,
    full: &[Full<'_>],
    forced: &HashSet<usize>,
) -> Result<(Vec<Node>, Vec<String>), AnalyzeError> {
    let total = full[0].bytes();
    let small = total / SMALL_SHARE;
    let decider = Decider::new(ctx);
    let mut decisions: Vec<String> = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut decided = |rel: &[u8]| -> Result<Option<usize>, AnalyzeError> {
        let Some(text) = decider.say(rel)? else {
            return Ok(None);
        };
        let next = decisions.len();
        let i = *seen.entry(text).or_insert_with_key(|t| {
            decisions.push(t.clone());
            next
        });
        Ok(Some(i))
    };
    let mut out: Vec<Node> = Vec::new();
    let mut node =
        |index: usize, parent: Option<usize>, open: bool| -> Result<Node, AnalyzeError> {
            let f = &full[index];
            Ok(Node {
                parent,
                name: String::from_utf8_lossy(f.name).into_owned(),
                bytes: f.bytes(),
                files: f.files(),
                class: f.class(),
                kind: f.kind.map(str::to_string),
                decided: decided(&rel_of(full, index))?,
                dir: f.dir && open,
                folded: false,
            })
        };
    out.push(node(0, None, true)?);
    // (index in `full`, index in `out`) of directories to open.
    let mut queue = std::collections::VecDeque::from([(0usize, 0usize)]);
    while let Some((fi, oi)) = queue.pop_front() {
        let mut children: Vec<usize> = full[fi].children.clone();
        children.sort_by(|&a, &b| {
            full[b]
                .bytes()
                .cmp(&full[a].bytes())
                .then_with(|| full[a].name.cmp(full[b].name))
        });
        let mut folded = [Totals::default(); 3];
        for (rank, &c) in children.iter().enumerate() {
            let f = &full[c];
            let keep = forced.contains(&c)
                || (f.bytes() >= small.max(1)
                    && rank < MAX_CHILDREN
                    && f.files() > 0
                    && out.len() < MAX_NODES);
            if !keep {
                for (slot, t) in folded.iter_mut().zip([f.needed, f.unused, f.excluded]) {
                    slot.files += t.files;
                    slot.bytes += t.bytes;
                }
                continue;
            }
            let open = f.dir && (out.len() < MAX_NODES || forced.contains(&c));
            let index = out.len();
            out.push(node(c, Some(oi), open)?);
            if open {
                queue.push_back((c, index));
            }
        }
        for (t, class) in folded
            .iter()
            .zip([Class::Needed, Class::Unused, Class::Excluded])
        {
            if t.files > 0 {
                out.push(Node {
                    parent: Some(oi),
                    name: String::new(),
                    bytes: t.bytes,
                    files: t.files,
                    class,
                    kind: None,
                    decided: None,
                    dir: false,
                    folded: true,
                });
            }
        }
    }
    Ok((out, decisions))
}

/// The ignore-file decision for a path, in `explain`'s words.
struct Decider<'a> {
    ctx: &'a Context,
    label: String,
}

impl<'a> Decider<'a> {
    fn new(ctx: &'a Context) -> Decider<'a> {
        let label = ctx
            .ignore_file()
            .map(|i| crate::text::show_path(&i.path))
            .unwrap_or_else(|| "(no ignore file)".into());
        Decider { ctx, label }
    }

    fn say(&self, rel: &[u8]) -> Result<Option<String>, AnalyzeError> {
        if rel.is_empty() {
            return Ok(None);
        }
        let e = self.ctx.explain(rel)?;
        let verdict = if e.included { "included" } else { "excluded" };
        let via = e
            .via_directory
            .as_ref()
            .map(|d| format!(", through directory {}/", String::from_utf8_lossy(d)))
            .unwrap_or_default();
        Ok(Some(
            match e.rule.and_then(|r| self.ctx.matcher().rules().get(r)) {
                Some(r) if r.line == 0 => format!(
                    "{verdict}: the classic docker CLI always sends `{}`{via}",
                    r.raw.trim_start_matches('!')
                ),
                Some(r) => format!("{verdict} by {}:{}: {}{via}", self.label, r.line, r.raw),
                None => format!("{verdict}: no pattern in {} matches", self.label),
            },
        ))
    }
}

/// What each COPY/ADD/bind-mount line reads of what is sent: the needed
/// files its sources reach.
fn reads(ctx: &Context, plan: &Plan, needed: &[Leaf<'_>]) -> Result<Vec<LineReads>, AnalyzeError> {
    let mut lines: Vec<LineReads> = Vec::new();
    let mut patterns: Vec<Vec<Vec<u8>>> = Vec::new();
    for u in &plan.used {
        match lines
            .iter()
            .position(|l| l.line == u.line && l.instruction == u.instruction)
        {
            Some(i) => {
                lines[i].paths.push(u.pattern.clone());
                patterns[i].push(u.pattern.as_bytes().to_vec());
            }
            None => {
                lines.push(LineReads {
                    line: u.line,
                    instruction: u.instruction.clone(),
                    paths: vec![u.pattern.clone()],
                    files: 0,
                    bytes: 0,
                });
                patterns.push(vec![u.pattern.as_bytes().to_vec()]);
            }
        }
    }
    for (l, p) in lines.iter_mut().zip(&patterns) {
        let reach = ctx.with_includes(p, false)?;
        for f in needed {
            if reach.reaches(f.rel) {
                l.files += 1;
                l.bytes += f.bytes;
            }
        }
    }
    Ok(lines)
}
