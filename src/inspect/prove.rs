//! `size --prove`, the part that needs no daemon: which waste items have
//! a mechanical Dockerfile fix ([`plan`]), the fixed Dockerfile's text
//! ([`apply`]), and whether the paths that are not waste came out the
//! same ([`compare`]). `ops::prove` builds and measures.
//!
//! A fix is planned only where it cannot change what the image runs,
//! given that the check passes: a cleanup moved into the `RUN` that
//! created the files, `--no-cache-dir`, a `COPY --chmod`/`--chown`
//! replacing a `RUN` that only changes permissions, a file not copied
//! instead of deleted later. Everything else (a smaller base, a runtime
//! stage, duplicate content) is a design change and is listed with the
//! reason it is not applied. Lines keep their numbers in the fixed text
//! (a dropped instruction becomes a comment and blank lines), so every
//! fix refers to the original's lines whatever else was applied.
//!
//! # Example
//!
//! ```
//! use reggie_build::inspect::prove::{apply, Change, Fix};
//!
//! let df = "FROM base\nCOPY app /app\nRUN chmod 755 /app\n";
//! let fix = Fix {
//!     item: 0,
//!     title: "COPY --chmod".into(),
//!     changes: vec![
//!         Change::Flag { line: 2, flag: "--chmod=755".into() },
//!         Change::Drop { line: 3 },
//!     ],
//!     removes: vec![],
//! };
//! let fixed = apply(df, &[&fix]);
//! assert!(fixed.starts_with("FROM base\nCOPY --chmod=755 app /app\n# "));
//! ```

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::inspected::{Inspected, TreeRow};
use super::report::Report;
use super::report::{Origin, WasteRow};
use super::waste::Kind;

/// A path the final image shows, with its content hash.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Shown {
    /// Path, kind, size, mode, owner, layer, link target.
    #[serde(flatten)]
    pub row: TreeRow,
    /// `sha256:...` of a regular file's content, when taken.
    pub sha256: Option<String>,
}

/// One edit of the Dockerfile, at the line an instruction starts on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    /// Run `command` at the end of a shell-form `RUN` (`&& command`).
    Append {
        /// The `RUN`'s first line.
        line: usize,
        /// The command.
        command: String,
    },
    /// `pip install --no-cache-dir` in a `RUN`.
    PipNoCache {
        /// The `RUN`'s first line.
        line: usize,
    },
    /// A flag on a `COPY`/`ADD` (`--chmod=755`).
    Flag {
        /// The instruction's first line.
        line: usize,
        /// The flag.
        flag: String,
    },
    /// The instruction is removed (a comment keeps its place).
    Drop {
        /// Its first line.
        line: usize,
    },
    /// One source of a `COPY`/`ADD` is removed.
    DropSource {
        /// The instruction's first line.
        line: usize,
        /// The source, as written.
        source: String,
    },
}

impl Change {
    /// The line the change is at.
    pub fn line(&self) -> usize {
        match self {
            Change::Append { line, .. }
            | Change::PipNoCache { line }
            | Change::Flag { line, .. }
            | Change::Drop { line }
            | Change::DropSource { line, .. } => *line,
        }
    }

    /// The change in words, for reports.
    pub fn describe(&self) -> String {
        match self {
            Change::Append { line, command } => format!("line {line}: append `&& {command}`"),
            Change::PipNoCache { line } => format!("line {line}: `pip install --no-cache-dir`"),
            Change::Flag { line, flag } => format!("line {line}: add `{flag}`"),
            Change::Drop { line } => format!("line {line}: remove the instruction"),
            Change::DropSource { line, source } => {
                format!("line {line}: do not copy `{source}`")
            }
        }
    }
}

/// A fix for one waste item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fix {
    /// The item's index in the report's waste.
    pub item: usize,
    /// The fix in a few words.
    pub title: String,
    /// The edits.
    pub changes: Vec<Change>,
    /// The paths (and everything below them) the fix takes out of the
    /// final image; every other path must come out unchanged.
    pub removes: Vec<String>,
}

/// A waste item with no mechanical fix, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NoFix {
    /// The item's index in the report's waste.
    pub item: usize,
    /// Why no fix is applied.
    pub reason: String,
}

/// An instruction as written: its lines joined.
#[derive(Debug)]
struct Instruction {
    line: usize,
    keyword: String,
    flags: Vec<String>,
    /// What follows the keyword and flags.
    rest: String,
}

/// The instruction starting at `line` (1-based) through `end`.
fn instruction(lines: &[&str], line: usize, end: usize) -> Option<Instruction> {
    let mut joined = String::new();
    for (i, raw) in lines
        .get(line.checked_sub(1)?..end.min(lines.len()))?
        .iter()
        .enumerate()
    {
        let t = raw.trim();
        if i > 0 && (t.starts_with('#') || t.is_empty()) {
            continue;
        }
        joined.push_str(t.strip_suffix('\\').unwrap_or(t));
        joined.push(' ');
    }
    let mut words = joined.split_whitespace();
    let keyword = words.next()?.to_ascii_uppercase();
    let mut flags = Vec::new();
    let mut rest: Vec<&str> = Vec::new();
    for w in words {
        if rest.is_empty() && w.starts_with("--") {
            flags.push(w.to_string());
        } else {
            rest.push(w);
        }
    }
    Some(Instruction {
        line,
        keyword,
        flags,
        rest: rest.join(" "),
    })
}

/// The commands of a shell `RUN` made only of simple commands joined by
/// `&&` or `;` (no quotes, expansions, pipes or redirections), as words.
fn simple_commands(rest: &str) -> Option<Vec<Vec<String>>> {
    if rest.starts_with('[')
        || rest.contains("<<")
        || rest.contains("||")
        || rest
            .chars()
            .any(|c| "'\"`$|<>(){}\\".contains(c) || c == '&' && !rest.contains("&&"))
    {
        return None;
    }
    let mut out = Vec::new();
    for part in rest.split("&&").flat_map(|p| p.split(';')) {
        let words: Vec<String> = part.split_whitespace().map(str::to_string).collect();
        if words.iter().any(|w| w == "&") {
            return None;
        }
        if !words.is_empty() {
            out.push(words);
        }
    }
    (!out.is_empty()).then_some(out)
}

/// A path safe to put in a shell command unquoted.
fn plain_path(p: &str) -> bool {
    p.starts_with('/')
        && p.len() > 1
        && p.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+@%,=:".contains(&b))
}

fn last_name(p: &str) -> &str {
    p.trim_end_matches('/').rsplit('/').next().unwrap_or(p)
}

fn lines_of(origin: &Origin) -> Option<(usize, usize)> {
    match origin {
        Origin::Instruction { line, end_line, .. } => Some((*line, *end_line)),
        _ => None,
    }
}

/// The roots of the waste items of the final image that are waste as a
/// whole (caches, toolchains, VCS and context directories): what
/// [`compare`] does not hold to being unchanged.
pub fn waste_roots(report: &Report) -> Vec<String> {
    report
        .waste
        .iter()
        .filter(|w| {
            matches!(
                w.kind,
                Kind::PackageCache | Kind::Toolchain | Kind::Vcs | Kind::Context
            )
        })
        .map(|w| w.path.clone())
        .collect()
}

/// Plans the fixes of the `top` largest waste items of `inspected`,
/// whose Dockerfile text is `dockerfile` (the one its report's lines
/// refer to).
pub fn plan(inspected: &Inspected, dockerfile: &str, top: usize) -> (Vec<Fix>, Vec<NoFix>) {
    let lines: Vec<&str> = dockerfile.lines().collect();
    let escape_directive = lines
        .iter()
        .take_while(|l| l.trim_start().starts_with('#'))
        .any(|l| {
            l.to_ascii_lowercase()
                .replace(' ', "")
                .starts_with("#escape=")
        });
    let mut fixes = Vec::new();
    let mut none = Vec::new();
    for (i, w) in inspected.report.waste.iter().enumerate().take(top) {
        let planned = if escape_directive {
            Err("the Dockerfile sets an escape directive: not rewritten".to_string())
        } else {
            plan_one(inspected, &lines, i, w)
        };
        match planned {
            Ok(fix) => fixes.push(fix),
            Err(reason) => none.push(NoFix { item: i, reason }),
        }
    }
    (fixes, none)
}

fn plan_one(
    inspected: &Inspected,
    lines: &[&str],
    item: usize,
    w: &WasteRow,
) -> Result<Fix, String> {
    let (line, end) = match &w.added_by.origin {
        Origin::Instruction { line, end_line, .. } => (*line, *end_line),
        Origin::Base { .. } => {
            return Err("the base image brings these bytes: a smaller base or a runtime stage is a design change, not applied".into())
        }
        Origin::Unknown => {
            return Err("the layer that added it is not attributed to a Dockerfile line".into())
        }
    };
    let adder = instruction(lines, line, end)
        .ok_or_else(|| format!("line {line} is not in the Dockerfile"))?;
    let hider = w
        .hidden_by
        .as_ref()
        .and_then(|h| lines_of(&h.origin))
        .and_then(|(l, e)| instruction(lines, l, e));
    let fix = |title: String, changes: Vec<Change>, removes: Vec<String>| Fix {
        item,
        title,
        changes,
        removes,
    };
    match w.kind {
        Kind::MetadataOnly => {
            let hider = hider.ok_or("the step that rewrote it is not attributed to a line")?;
            if !matches!(adder.keyword.as_str(), "COPY" | "ADD") {
                return Err(format!(
                    "line {line} is a {}: change permissions in the step that writes the file",
                    adder.keyword
                ));
            }
            if adder
                .flags
                .iter()
                .any(|f| f.starts_with("--chmod") || f.starts_with("--chown"))
            {
                return Err(format!("line {line} sets --chmod/--chown already"));
            }
            let only_perms = hider.keyword == "RUN"
                && simple_commands(&hider.rest).is_some_and(|cmds| {
                    cmds.iter()
                        .all(|c| matches!(c[0].as_str(), "chmod" | "chown" | "chgrp"))
                });
            if !only_perms {
                return Err(format!(
                    "line {} does more than chmod/chown: not rewritten",
                    hider.line
                ));
            }
            let flags = perm_flags(inspected, w)?;
            let mut changes: Vec<Change> = flags
                .into_iter()
                .map(|flag| Change::Flag { line, flag })
                .collect();
            changes.push(Change::Drop { line: hider.line });
            let title = format!(
                "{} {} instead of the RUN at line {}",
                adder.keyword,
                changes
                    .iter()
                    .filter_map(|c| match c {
                        Change::Flag { flag, .. } => Some(flag.as_str()),
                        _ => None,
                    })
                    .collect::<Vec<_>>()
                    .join(" "),
                hider.line
            );
            Ok(fix(title, changes, vec![]))
        }
        Kind::Deleted => {
            let hider = hider.ok_or("the step that deleted it is not attributed to a line")?;
            let rms = (hider.keyword == "RUN")
                .then(|| simple_commands(&hider.rest))
                .flatten()
                .filter(|cmds| cmds.iter().all(|c| c[0] == "rm"))
                .ok_or_else(|| format!("line {} does more than rm: not rewritten", hider.line))?;
            match adder.keyword.as_str() {
                "RUN" if simple_or_shell(&adder.rest) => {
                    let command = rms
                        .iter()
                        .map(|c| c.join(" "))
                        .collect::<Vec<_>>()
                        .join(" && ");
                    Ok(fix(
                        format!("delete in the RUN at line {line} that creates it",),
                        vec![
                            Change::Append { line, command },
                            Change::Drop { line: hider.line },
                        ],
                        vec![],
                    ))
                }
                "COPY" | "ADD" if !adder.flags.iter().any(|f| f.starts_with("--from")) => {
                    let targets: Vec<&String> = rms
                        .iter()
                        .flat_map(|c| c[1..].iter())
                        .filter(|a| !a.starts_with('-'))
                        .collect();
                    let name = last_name(&w.path);
                    if targets.len() != 1 || last_name(targets[0]) != name {
                        return Err(format!(
                            "line {} deletes more than {}: not rewritten",
                            hider.line, w.path
                        ));
                    }
                    let words: Vec<&str> = adder.rest.split_whitespace().collect();
                    if adder.rest.starts_with('[') || words.len() < 2 {
                        return Err(format!("line {line}: the sources are not plain words"));
                    }
                    let sources = &words[..words.len() - 1];
                    let Some(source) = sources
                        .iter()
                        .find(|s| last_name(s) == name && !s.contains(['*', '?', '[']))
                    else {
                        return Err(format!(
                            "line {line} copies a directory holding it: add it to the ignore file (not applied)"
                        ));
                    };
                    let mut changes = vec![match sources.len() {
                        1 => Change::Drop { line },
                        _ => Change::DropSource {
                            line,
                            source: source.to_string(),
                        },
                    }];
                    changes.push(Change::Drop { line: hider.line });
                    Ok(fix(
                        format!("do not copy {source} that line {} deletes", hider.line),
                        changes,
                        vec![],
                    ))
                }
                k => Err(format!("line {line} is a {k}: not rewritten")),
            }
        }
        Kind::PackageCache | Kind::Vcs => {
            if adder.keyword != "RUN" || !simple_or_shell(&adder.rest) {
                return Err(format!(
                    "line {line} is not a shell RUN: {}",
                    crate::text::excerpt(&w.fix)
                ));
            }
            let pip = w.what == "pip cache"
                && (adder.rest.contains("pip install") || adder.rest.contains("pip3 install"));
            if pip && !adder.rest.contains("--no-cache-dir") {
                return Ok(fix(
                    format!("pip install --no-cache-dir at line {line}"),
                    vec![Change::PipNoCache { line }],
                    vec![w.path.clone()],
                ));
            }
            if !plain_path(&w.path) {
                return Err(format!(
                    "{} is not a plain path to delete",
                    crate::text::excerpt(&w.path)
                ));
            }
            // Keep the directory apt expects; empty it.
            let target = if w.path == "/var/lib/apt/lists" {
                "/var/lib/apt/lists/*".to_string()
            } else {
                w.path.clone()
            };
            Ok(fix(
                format!("delete {target} in the RUN at line {line} that creates it"),
                vec![Change::Append {
                    line,
                    command: format!("rm -rf {target}"),
                }],
                vec![w.path.clone()],
            ))
        }
        Kind::Toolchain => Err("a runtime stage is a design change: not applied".into()),
        Kind::Context => {
            Err("an ignore-file line changes the context: not applied automatically".into())
        }
        Kind::Duplicate => Err("which copy to keep is a design choice: not applied".into()),
        Kind::Overwritten | Kind::Rewritten => {
            Err("writing the file once is a design change: not applied".into())
        }
    }
}

/// A shell-form `RUN` with nothing that `&& cmd` at its end could change
/// the meaning of (a trailing `&`, a heredoc, the exec form).
fn simple_or_shell(rest: &str) -> bool {
    let t = rest.trim_end();
    !t.is_empty()
        && !t.starts_with('[')
        && !t.contains("<<")
        && !t.ends_with('&')
        && !t.ends_with(';')
}

/// The `--chmod`/`--chown` flags that give a COPY's files what the later
/// RUN gave them: one mode and one owner for every file the RUN wrote.
fn perm_flags(inspected: &Inspected, w: &WasteRow) -> Result<Vec<String>, String> {
    let hider = w.hidden_by.as_ref().ok_or("no later layer")?;
    let rows = inspected
        .tree(Some(hider.layer))
        .ok_or("the later layer is not in the image")?;
    let files: Vec<&TreeRow> = rows.iter().filter(|r| r.kind == "file").collect();
    let modes: BTreeSet<&str> = files.iter().map(|r| r.mode.as_str()).collect();
    let owners: BTreeSet<&str> = files.iter().map(|r| r.owner.as_str()).collect();
    let (Some(mode), Some(owner), 1, 1) =
        (modes.first(), owners.first(), modes.len(), owners.len())
    else {
        return Err(format!(
            "the RUN at layer {} leaves files with several modes or owners: one --chmod cannot say it",
            hider.layer
        ));
    };
    let before = inspected.tree(Some(w.added_by.layer)).unwrap_or_default();
    let old = before.iter().find(|r| r.path == files[0].path);
    let mut flags = Vec::new();
    if old.is_none_or(|o| o.mode != *mode) {
        let m = u32::from_str_radix(mode, 8).map_err(|e| e.to_string())?;
        flags.push(format!("--chmod={m:o}"));
    }
    if old.is_none_or(|o| o.owner != *owner) {
        flags.push(format!("--chown={owner}"));
    }
    if flags.is_empty() {
        return Err("the later RUN changes neither mode nor owner".into());
    }
    Ok(flags)
}

/// The Dockerfile with `fixes` applied. Line numbers are kept: a dropped
/// instruction's first line becomes a comment and the rest blank lines.
pub fn apply(dockerfile: &str, fixes: &[&Fix]) -> String {
    let mut lines: Vec<String> = dockerfile.lines().map(str::to_string).collect();
    let mut by_line: BTreeMap<usize, Vec<&Change>> = BTreeMap::new();
    for c in fixes.iter().flat_map(|f| &f.changes) {
        by_line.entry(c.line()).or_default().push(c);
    }
    for (&line, changes) in &by_line {
        let Some(first) = line.checked_sub(1).filter(|&i| i < lines.len()) else {
            continue;
        };
        // The instruction's last line: the first that does not continue.
        let mut last = first;
        while last + 1 < lines.len() && lines[last].trim_end().ends_with('\\') {
            last += 1;
        }
        if changes.iter().any(|c| matches!(c, Change::Drop { .. })) {
            lines[first] = format!(
                "# removed by reggie-build size --prove: {}",
                lines[first].trim()
            );
            for l in &mut lines[first + 1..=last] {
                l.clear();
            }
            continue;
        }
        for c in changes {
            match c {
                Change::Append { command, .. } => {
                    let t = lines[last].trim_end().to_string();
                    lines[last] = format!("{t} && {command}");
                }
                Change::PipNoCache { .. } => {
                    for l in &mut lines[first..=last] {
                        for pip in ["pip install", "pip3 install"] {
                            if l.contains(pip) {
                                *l = l.replace(pip, &format!("{pip} --no-cache-dir"));
                                break;
                            }
                        }
                    }
                }
                Change::Flag { flag, .. } => {
                    let l = &lines[first];
                    let indent = l.len() - l.trim_start().len();
                    let kw_end = l[indent..]
                        .find(char::is_whitespace)
                        .map_or(l.len(), |i| indent + i);
                    lines[first] = format!("{} {flag}{}", &l[..kw_end], &l[kw_end..]);
                }
                Change::DropSource { source, .. } => {
                    for l in &mut lines[first..=last] {
                        let words: Vec<&str> = l.split(' ').collect();
                        if let Some(i) = words.iter().position(|w| w == source) {
                            let mut w = words.clone();
                            w.remove(i);
                            *l = w.join(" ");
                            break;
                        }
                    }
                }
                Change::Drop { .. } => {}
            }
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// How the paths that are not waste compare before and after a fix.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Comparison {
    /// Paths the same in both: kind, size, mode, owner, link target and
    /// content hash.
    pub unchanged: usize,
    /// Paths below what the fix removes, gone as intended.
    pub removed: usize,
    /// Paths of other waste (caches, toolchains, VCS and context
    /// directories the report names) that differ: waste, not checked.
    pub waste_changed: usize,
    /// Every other difference (the first [`SHOWN`]).
    pub differences: Vec<Difference>,
    /// How many differences there are in all.
    pub differences_total: usize,
}

impl Comparison {
    /// Whether every path that is not waste came out the same.
    pub fn verified(&self) -> bool {
        self.differences_total == 0
    }
}

/// Differences listed in a [`Comparison`].
pub const SHOWN: usize = 20;

/// One path that differs.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Difference {
    /// The path.
    pub path: String,
    /// How it differs.
    pub what: String,
}

fn under(path: &str, roots: &[String]) -> bool {
    roots.iter().any(|r| {
        path == r
            || path
                .strip_prefix(r.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
    })
}

/// Compares the final images' paths: every path of `before` must be in
/// `after` with the same kind, size, mode, owner, link target and content
/// hash, except those below `removes`, which may be gone, and those below
/// `waste` (the report's other waste directories), which are counted
/// apart; `after` may hold no path `before` does not.
pub fn compare(
    before: &[Shown],
    after: &[Shown],
    removes: &[String],
    waste: &[String],
) -> Comparison {
    let after_by: BTreeMap<&str, &Shown> = after.iter().map(|s| (s.row.path.as_str(), s)).collect();
    let before_paths: BTreeSet<&str> = before.iter().map(|s| s.row.path.as_str()).collect();
    let mut c = Comparison::default();
    let diff = |c: &mut Comparison, path: &str, what: String| {
        c.differences_total += 1;
        if c.differences.len() < SHOWN {
            c.differences.push(Difference {
                path: path.to_string(),
                what,
            });
        }
    };
    for b in before {
        let path = b.row.path.as_str();
        let Some(a) = after_by.get(path) else {
            if under(path, removes) {
                c.removed += 1;
            } else if under(path, waste) {
                c.waste_changed += 1;
            } else {
                diff(&mut c, path, "missing after the fix".into());
            }
            continue;
        };
        let (x, y) = (&b.row, &a.row);
        let what = if x.kind != y.kind {
            Some(format!("{} before, {} after", x.kind, y.kind))
        } else if x.size != y.size {
            Some(format!("{} bytes before, {} after", x.size, y.size))
        } else if x.mode != y.mode {
            Some(format!("mode {} before, {} after", x.mode, y.mode))
        } else if x.owner != y.owner {
            Some(format!("owner {} before, {} after", x.owner, y.owner))
        } else if x.target != y.target {
            Some("link target differs".into())
        } else if x.kind == "file" && x.size > 0 && (b.sha256.is_none() || a.sha256.is_none()) {
            Some("content not hashed: not compared".into())
        } else if b.sha256 != a.sha256 {
            Some("content differs (same size)".into())
        } else {
            None
        };
        match what {
            Some(_) if under(path, waste) => c.waste_changed += 1,
            Some(w) => diff(&mut c, path, w),
            None => c.unchanged += 1,
        }
    }
    for a in after {
        if !before_paths.contains(a.row.path.as_str()) && !under(&a.row.path, waste) {
            diff(&mut c, &a.row.path, "new after the fix".into());
        }
    }
    c
}

/// An image's measured size.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Measured {
    /// Bytes of its layers, uncompressed (the tars as stored).
    pub uncompressed: u64,
    /// Bytes of the regular files in all its layers.
    pub file_bytes: u64,
    /// Its layers.
    pub layers: usize,
    /// The waste `size` finds in it.
    pub waste_bytes: u64,
}

impl Measured {
    /// The figures of a report.
    pub fn of(report: &Report) -> Measured {
        Measured {
            uncompressed: report.size.uncompressed,
            file_bytes: report.layers.iter().map(|l| l.files).sum(),
            layers: report.layers.len(),
            waste_bytes: report.waste_bytes,
        }
    }
}

/// One fix, tried.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// The fix and its edits.
    pub fix: Fix,
    /// The waste item: its kind and what, in words.
    pub what: String,
    /// Where (the item's path).
    pub path: String,
    /// The bytes `size` counted for the item.
    pub predicted: u64,
    /// What happened.
    pub outcome: Outcome,
}

/// What a fix did.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Outcome {
    /// Built and measured.
    Built {
        /// The image with this fix and the ones before it that passed.
        size: Measured,
        /// Layer bytes saved against the previous image (negative: grew).
        saved: i64,
        /// File bytes saved against the previous image.
        saved_file_bytes: i64,
        /// The paths that are not waste, compared.
        check: Comparison,
        /// The check passed: every path not removed is unchanged.
        verified: bool,
    },
    /// The fixed Dockerfile did not build.
    Failed {
        /// The build's error.
        error: String,
    },
}

/// The proof.
#[derive(Debug, Clone, Serialize)]
pub struct Proof {
    /// The Dockerfile proved.
    pub dockerfile: String,
    /// The context it was built with.
    pub context: String,
    /// Where the Dockerfile and context came from (`-f`, recorded).
    pub found: String,
    /// The original, rebuilt.
    pub before: Measured,
    /// The fixes tried, in order (largest item first).
    pub steps: Vec<Step>,
    /// The items with no mechanical fix, and why.
    pub not_applied: Vec<NotApplied>,
    /// The image with every verified fix.
    pub after: Measured,
    /// Layer bytes saved by the verified fixes.
    pub saved: i64,
    /// File bytes saved by the verified fixes.
    pub saved_file_bytes: i64,
    /// The fixed Dockerfile (verified fixes only).
    pub fixed_dockerfile: String,
}

/// A waste item left as it is.
#[derive(Debug, Clone, Serialize)]
pub struct NotApplied {
    /// The item, in words.
    pub what: String,
    /// Its path.
    pub path: String,
    /// Its bytes.
    pub bytes: u64,
    /// Why no fix was applied.
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(path: &str, size: u64, mode: &str, sha: &str) -> Shown {
        Shown {
            row: TreeRow {
                path: path.into(),
                kind: if size > 0 { "file" } else { "dir" },
                size,
                mode: mode.into(),
                owner: "0:0".into(),
                layer: 1,
                target: None,
            },
            sha256: (size > 0).then(|| sha.to_string()),
        }
    }

    #[test]
    fn commands_are_simple_or_refused() {
        assert_eq!(
            simple_commands("chmod 755 /a && chown 1:1 /b; rm -f /c").unwrap(),
            vec![
                vec!["chmod", "755", "/a"],
                vec!["chown", "1:1", "/b"],
                vec!["rm", "-f", "/c"]
            ]
        );
        for bad in [
            "rm $X",
            "rm \"a b\"",
            "rm a || true",
            "rm a > log",
            "[\"rm\", \"/a\"]",
            "rm a &",
            "cat <<EOF",
        ] {
            assert!(simple_commands(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn fixes_apply_and_keep_line_numbers() {
        let df = "FROM b\nCOPY a junk /app/\nRUN make \\\n  && install\nRUN rm /app/junk\nRUN pip install x\n";
        let fixes = [
            Fix {
                item: 0,
                title: String::new(),
                changes: vec![
                    Change::DropSource {
                        line: 2,
                        source: "junk".into(),
                    },
                    Change::Drop { line: 5 },
                ],
                removes: vec![],
            },
            Fix {
                item: 1,
                title: String::new(),
                changes: vec![
                    Change::Append {
                        line: 3,
                        command: "rm -rf /root/.cache".into(),
                    },
                    Change::PipNoCache { line: 6 },
                    Change::Flag {
                        line: 2,
                        flag: "--chmod=755".into(),
                    },
                ],
                removes: vec![],
            },
        ];
        let fixed = apply(df, &fixes.iter().collect::<Vec<_>>());
        assert_eq!(
            fixed,
            "FROM b\nCOPY --chmod=755 a /app/\nRUN make \\\n  && install && rm -rf /root/.cache\n# removed by reggie-build size --prove: RUN rm /app/junk\nRUN pip install --no-cache-dir x\n"
        );
        assert_eq!(fixed.lines().count(), df.lines().count());
        let dropped = apply(
            "FROM b\nRUN a \\\n b\nRUN c\n",
            &[&Fix {
                item: 0,
                title: String::new(),
                changes: vec![Change::Drop { line: 2 }],
                removes: vec![],
            }],
        );
        assert_eq!(
            dropped,
            "FROM b\n# removed by reggie-build size --prove: RUN a \\\n\nRUN c\n"
        );
    }

    #[test]
    fn comparison_names_every_difference() {
        let before = vec![
            shown("/app", 0, "0755", ""),
            shown("/app/a", 3, "0644", "sha256:a"),
            shown("/app/b", 3, "0644", "sha256:b"),
            shown("/root/.cache/pip", 0, "0755", ""),
            shown("/root/.cache/pip/w", 9, "0644", "sha256:w"),
        ];
        let mut after = before.clone();
        after.retain(|s| !s.row.path.starts_with("/root/.cache/pip"));
        let c = compare(&before, &after, &["/root/.cache/pip".to_string()], &[]);
        assert_eq!((c.unchanged, c.removed, c.differences_total), (3, 2, 0));
        assert!(c.verified());
        // Other waste may change (a cache rebuilt with other bytes).
        let mut cache = before.clone();
        cache[4].sha256 = Some("sha256:other".into());
        let c = compare(&before, &cache, &[], &["/root/.cache".to_string()]);
        assert_eq!(
            (c.unchanged, c.waste_changed, c.differences_total),
            (4, 1, 0)
        );
        after[1].sha256 = Some("sha256:x".into());
        after[2].row.mode = "0755".into();
        after.push(shown("/new", 1, "0644", "sha256:n"));
        let c = compare(&before, &after, &[], &[]);
        assert!(!c.verified());
        let got: Vec<(&str, &str)> = c
            .differences
            .iter()
            .map(|d| (d.path.as_str(), d.what.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("/app/a", "content differs (same size)"),
                ("/app/b", "mode 0644 before, 0755 after"),
                ("/root/.cache/pip", "missing after the fix"),
                ("/root/.cache/pip/w", "missing after the fix"),
                ("/new", "new after the fix"),
            ]
        );
    }
}
