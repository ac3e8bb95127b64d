//! Walking a context the way Docker's senders do.
//!
//! Both BuildKit (tonistiigi/fsutil's filtered walk) and the classic CLI
//! (moby/go-archive's `TarWithOptions`) visit a directory's entries in
//! byte order of their names, depth first, match each path with its parent
//! directory's results carried down, and never follow symlinks. They differ
//! in one place, what happens at an excluded directory:
//!
//! * no exception patterns at all: the directory is skipped;
//! * only plain exceptions (`!dir/keep.txt`): it is entered when an
//!   exception, as text, lies below it (BuildKit first trims a trailing
//!   `/**` or `/*` from the exception);
//! * BuildKit with a wildcard exception (`!**/*.md`): every excluded
//!   directory is entered, since anything inside might be re-included.
//!
//! An excluded directory that is entered is not sent itself; BuildKit sends
//! it lazily, just before the first entry inside it that is sent.

use std::ffi::OsString;
use std::fs::FileType;
use std::os::unix::ffi::OsStrExt;
#[cfg(test)]
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use super::ignore::{MatchInfo, Matcher, PatternError};
use super::{Builder, Context, Explanation};

/// The kind of a directory entry, from `readdir` (no `stat` needed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileKind {
    File,
    Dir,
    Symlink,
    Fifo,
    CharDevice,
    BlockDevice,
    Socket,
}

impl FileKind {
    fn from_file_type(t: FileType) -> FileKind {
        if t.is_dir() {
            FileKind::Dir
        } else if t.is_symlink() {
            FileKind::Symlink
        } else if t.is_fifo() {
            FileKind::Fifo
        } else if t.is_char_device() {
            FileKind::CharDevice
        } else if t.is_block_device() {
            FileKind::BlockDevice
        } else if t.is_socket() {
            FileKind::Socket
        } else {
            FileKind::File
        }
    }
}

/// One entry the build would receive.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// Context-relative, `/`-separated path (raw bytes).
    pub rel: &'a [u8],
    /// The path on disk.
    pub path: &'a Path,
    pub kind: FileKind,
    /// Whether the include patterns reach it (always `true` without
    /// include patterns; `false` for a directory sent only as the parent of
    /// something needed).
    pub needed: bool,
    /// A regular file's size, when the context was set to read sizes
    /// ([`Context::with_sizes`]); 0 otherwise and for other kinds.
    pub size: u64,
    /// The entry's `lstat`, read relative to its open directory, when the
    /// context was set to read sizes (not for lazily sent parents).
    pub metadata: Option<&'a std::fs::Metadata>,
}

/// Metadata read with the directory listing, when asked for.
type Meta = Option<std::fs::Metadata>;

/// Errors while walking.
#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    #[error("cannot read directory {path}: {source}. Docker fails on it too: make it readable, or exclude it in the ignore file")]
    ReadDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("ignore file {ignore}, line {line}: {source}")]
    Pattern {
        ignore: PathBuf,
        line: usize,
        source: PatternError,
    },
}

/// What the walk noticed but did not send.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WalkSummary {
    /// Sockets are never sent (Docker skips them too).
    pub skipped_sockets: Vec<Vec<u8>>,
    /// Per ignore rule: entries it matched itself (not through a parent).
    pub rule_hits: Vec<u64>,
    /// Per ignore rule: entries it decided to keep (exceptions only).
    pub rule_reincluded: Vec<u64>,
    /// Per include pattern: sent entries it reached, itself or through a
    /// parent.
    pub include_hits: Vec<u64>,
}

impl WalkSummary {
    /// Adds the counts of a walk of a later part of the tree (its sockets
    /// after these).
    pub(crate) fn absorb(&mut self, later: WalkSummary) {
        self.skipped_sockets.extend(later.skipped_sockets);
        let add = |a: &mut Vec<u64>, b: Vec<u64>| {
            for (x, y) in a.iter_mut().zip(b) {
                *x += y;
            }
        };
        add(&mut self.rule_hits, later.rule_hits);
        add(&mut self.rule_reincluded, later.rule_reincluded);
        add(&mut self.include_hits, later.include_hits);
    }
}

/// Whether an excluded directory is entered; see the module docs.
#[derive(Debug, Clone)]
pub(crate) enum DescendRule {
    Never,
    /// Enter when one of these (each ending in `/`) starts with `dir/`.
    Prefixes(Vec<Vec<u8>>),
    Always,
}

impl DescendRule {
    pub(crate) fn new(matcher: &Matcher, builder: Builder) -> DescendRule {
        if !matcher.has_exceptions() {
            return DescendRule::Never;
        }
        let mut prefixes = Vec::new();
        for rule in matcher.rules().iter().filter(|r| r.exception) {
            let text = rule.pattern.as_bytes();
            let mut prefix = match builder {
                Builder::BuildKit => {
                    let trimmed = without_trailing_glob(text);
                    if trimmed
                        .iter()
                        .any(|b| matches!(b, b'*' | b'[' | b']' | b'?' | b'^' | b'\\'))
                    {
                        return DescendRule::Always;
                    }
                    trimmed.to_vec()
                }
                Builder::Classic => text.to_vec(),
            };
            prefix.push(b'/');
            prefixes.push(prefix);
        }
        DescendRule::Prefixes(prefixes)
    }

    /// Whether the excluded directory `dir` must be entered.
    pub(crate) fn enters(&self, dir: &[u8]) -> bool {
        match self {
            DescendRule::Never => false,
            DescendRule::Always => true,
            DescendRule::Prefixes(prefixes) => prefixes
                .iter()
                .any(|p| p.len() > dir.len() && p.starts_with(dir) && p[dir.len()] == b'/'),
        }
    }
}

/// fsutil's `patternWithoutTrailingGlob`.
fn without_trailing_glob(p: &[u8]) -> &[u8] {
    let p = p.strip_suffix(b"/**").unwrap_or(p);
    p.strip_suffix(b"/*").unwrap_or(p)
}

/// What [`Context::walk_split`] hands each split-off directory to.
pub(crate) type SplitFn<'a, E> = dyn FnMut(Subtree) -> Result<(), E> + 'a;

/// Where a walk starts: the context root, or a split-off directory.
struct Start {
    path: PathBuf,
    rel: Vec<u8>,
    info: MatchInfo,
    include_info: MatchInfo,
}

impl Start {
    fn root(ctx: &Context) -> Start {
        Start {
            path: ctx.root.clone(),
            rel: Vec::new(),
            info: MatchInfo::default(),
            include_info: MatchInfo::default(),
        }
    }
}

/// A directory that [`Context::walk_split`] handed off instead of
/// entering: everything needed to visit it and walk below it later, on
/// any thread, with [`Context::walk_subtree`].
#[derive(Debug)]
pub(crate) struct Subtree {
    path: PathBuf,
    rel: Vec<u8>,
    needed: bool,
    metadata: Meta,
    info: MatchInfo,
    include_info: MatchInfo,
    /// Sockets the walk had skipped before it (they are reported in walk
    /// order).
    pub(crate) sockets_before: usize,
}

impl Subtree {
    /// The directory itself, as the walk would have visited it.
    pub(crate) fn entry(&self) -> Entry<'_> {
        Entry {
            rel: &self.rel,
            path: &self.path,
            kind: FileKind::Dir,
            needed: self.needed,
            size: 0,
            metadata: self.metadata.as_ref(),
        }
    }
}

struct Frame {
    /// Entries of the directory, sorted by name bytes.
    entries: std::vec::IntoIter<(OsString, FileKind, Meta)>,
    /// Length of the directory's relative path in the shared buffer.
    rel_len: usize,
    /// The directory's exclude-pattern results, for its children.
    info: MatchInfo,
    /// The directory's include-pattern results, for its children.
    include_info: MatchInfo,
    /// Not yet sent (entered only because something inside may be sent).
    pending: bool,
}

/// Include patterns: the paths a Dockerfile reads (BuildKit's
/// followpaths), matched like fsutil's `IncludePatterns`.
#[derive(Debug, Clone)]
pub(crate) struct Include {
    pub(crate) matcher: Matcher,
    /// When no include pattern has a wildcard, a directory no pattern lies
    /// under is skipped outright.
    pub(crate) descend: DescendRule,
    /// Whether includes filter the walk (`true`) or only mark entries as
    /// needed (`false`, for analysis).
    pub(crate) filter: bool,
}

impl Include {
    pub(crate) fn new(matcher: Matcher, filter: bool) -> Include {
        let mut prefixes = Vec::new();
        let mut wildcard = false;
        for rule in matcher.rules().iter().filter(|r| !r.exception) {
            let trimmed = without_trailing_glob(rule.pattern.as_bytes());
            if trimmed
                .iter()
                .any(|b| matches!(b, b'*' | b'[' | b']' | b'?' | b'^' | b'\\'))
            {
                wildcard = true;
            }
            let mut p = trimmed.to_vec();
            p.push(b'/');
            prefixes.push(p);
        }
        let descend = if wildcard {
            DescendRule::Always
        } else {
            DescendRule::Prefixes(prefixes)
        };
        Include {
            matcher,
            descend,
            filter,
        }
    }
}

impl Context {
    /// Visits every entry the build would receive, in Docker's order:
    /// directories before their contents, names in byte order. `visit`
    /// errors stop the walk and are returned.
    ///
    /// With include patterns set ([`Context::with_includes`]), only what
    /// they reach is visited (or, in annotate mode, everything is visited
    /// and [`Entry::needed`] tells what they reach).
    pub fn walk<E, F>(&self, mut visit: F) -> Result<WalkSummary, E>
    where
        F: FnMut(&Entry<'_>) -> Result<(), E>,
        E: From<WalkError>,
    {
        self.walk_from(Start::root(self), None, &mut visit)
    }

    /// Walks like [`Context::walk`], but hands each directory at `depth`
    /// (1: the root's children) that would be sent to `split` as a
    /// [`Subtree`] instead of visiting and entering it; see
    /// [`Context::walk_subtree`]. Directories entered only because an
    /// exception may reach inside them are never split off (whether they
    /// are sent depends on what follows).
    pub(crate) fn walk_split<E, F>(
        &self,
        depth: usize,
        split: &mut SplitFn<'_, E>,
        mut visit: F,
    ) -> Result<WalkSummary, E>
    where
        F: FnMut(&Entry<'_>) -> Result<(), E>,
        E: From<WalkError>,
    {
        self.walk_from(Start::root(self), Some((depth, split)), &mut visit)
    }

    /// Visits a split-off directory and everything below it that would be
    /// sent, exactly as [`Context::walk`] would have at that point.
    pub(crate) fn walk_subtree<E, F>(
        &self,
        subtree: Subtree,
        mut visit: F,
    ) -> Result<WalkSummary, E>
    where
        F: FnMut(&Entry<'_>) -> Result<(), E>,
        E: From<WalkError>,
    {
        visit(&subtree.entry())?;
        let start = Start {
            path: subtree.path,
            rel: subtree.rel,
            info: subtree.info,
            include_info: subtree.include_info,
        };
        self.walk_from(start, None, &mut visit)
    }

    fn walk_from<E, F>(
        &self,
        start: Start,
        mut split: Option<(usize, &mut SplitFn<'_, E>)>,
        visit: &mut F,
    ) -> Result<WalkSummary, E>
    where
        F: FnMut(&Entry<'_>) -> Result<(), E>,
        E: From<WalkError>,
    {
        let mut summary = WalkSummary {
            rule_hits: vec![0; self.matcher.rules().len()],
            rule_reincluded: vec![0; self.matcher.rules().len()],
            include_hits: vec![0; self.include.as_ref().map_or(0, |i| i.matcher.rules().len())],
            ..WalkSummary::default()
        };
        let mut rel: Vec<u8> = start.rel;
        rel.reserve(256);
        let mut path = start.path;
        let root_entries = read_sorted(&path, self.sizes).map_err(|source| WalkError::ReadDir {
            path: path.clone(),
            source,
        })?;
        let mut stack = vec![Frame {
            entries: root_entries.into_iter(),
            rel_len: rel.len(),
            info: start.info,
            include_info: start.include_info,
            pending: false,
        }];
        let lazy_parents = self.builder == Builder::BuildKit || self.include.is_some();

        while let Some(frame) = stack.last_mut() {
            let Some((name, kind, meta)) = frame.entries.next() else {
                stack.pop();
                path.pop();
                continue;
            };
            let parent_len = frame.rel_len;
            rel.truncate(parent_len);
            if parent_len > 0 {
                rel.push(b'/');
            }
            rel.extend_from_slice(name.as_bytes());
            let is_dir = kind == FileKind::Dir;

            // Include patterns first, as fsutil does.
            let mut hidden = false;
            let mut needed = true;
            let mut include_info = MatchInfo::default();
            let mut include_rule = None;
            if let Some(include) = &self.include {
                let (verdict, info) = include
                    .matcher
                    .matches_with_parent(&rel, &frame.include_info)
                    .map_err(|source| self.pattern_error(&rel, source))?;
                include_info = info;
                needed = verdict.excluded;
                include_rule = verdict.decided_by;
                if !needed && include.filter {
                    if is_dir && !include.descend.enters(&rel) {
                        continue;
                    }
                    hidden = true;
                }
            }

            let (verdict, info) = self
                .matcher
                .matches_with_parent(&rel, &frame.info)
                .map_err(|source| self.pattern_error(&rel, source))?;
            for (i, hits) in summary.rule_hits.iter_mut().enumerate() {
                if info.matched(i) && !frame.info.matched(i) {
                    *hits += 1;
                }
            }
            if let (false, Some(i)) = (verdict.excluded, verdict.decided_by) {
                summary.rule_reincluded[i] += 1;
            }
            if verdict.excluded {
                if !(is_dir && self.descend.enters(&rel)) {
                    continue;
                }
                hidden = true;
            }

            path.push(&name);
            if kind == FileKind::Socket {
                if !hidden {
                    summary.skipped_sockets.push(rel.clone());
                }
                path.pop();
                continue;
            }
            if !hidden {
                // Send the directories this entry lives in first.
                if lazy_parents && stack.iter().any(|f| f.pending) {
                    let mut parent_path = path.clone();
                    let depth = stack.len();
                    for i in 0..depth {
                        if !stack[i].pending {
                            continue;
                        }
                        parent_path.clone_from(&path);
                        for _ in 0..(depth - i) {
                            parent_path.pop();
                        }
                        visit(&Entry {
                            rel: &rel[..stack[i].rel_len],
                            path: &parent_path,
                            kind: FileKind::Dir,
                            needed: false,
                            size: 0,
                            metadata: None,
                        })?;
                        stack[i].pending = false;
                    }
                }
                if let (true, Some(i)) = (needed, include_rule) {
                    summary.include_hits[i] += 1;
                }
                if let Some((depth, split)) = split.as_mut() {
                    if is_dir && stack.len() == *depth {
                        split(Subtree {
                            path: path.clone(),
                            rel: rel.clone(),
                            needed,
                            metadata: meta,
                            info,
                            include_info,
                            sockets_before: summary.skipped_sockets.len(),
                        })?;
                        path.pop();
                        continue;
                    }
                }
                let size = match (&meta, kind) {
                    (Some(m), FileKind::File) => m.len(),
                    _ => 0,
                };
                visit(&Entry {
                    rel: &rel,
                    path: &path,
                    kind,
                    needed,
                    size,
                    metadata: meta.as_ref(),
                })?;
            }
            if is_dir {
                match read_sorted(&path, self.sizes) {
                    Ok(entries) => stack.push(Frame {
                        entries: entries.into_iter(),
                        rel_len: rel.len(),
                        info,
                        include_info,
                        pending: hidden && lazy_parents,
                    }),
                    Err(e) if hidden && e.kind() == std::io::ErrorKind::PermissionDenied => {
                        path.pop();
                    }
                    Err(source) => {
                        return Err(WalkError::ReadDir {
                            path: path.clone(),
                            source,
                        }
                        .into())
                    }
                }
            } else {
                path.pop();
            }
        }
        Ok(summary)
    }

    fn pattern_error(&self, _rel: &[u8], source: PatternError) -> WalkError {
        let (ignore, line) = match &self.ignore {
            Some(src) => {
                // Report the first rule whose regex failed.
                let line = self
                    .matcher
                    .rules()
                    .iter()
                    .find(|r| r.pattern.matches(b"").is_err())
                    .map(|r| r.line)
                    .unwrap_or(0);
                (src.path.clone(), line)
            }
            None => (self.root.join(".dockerignore"), 0),
        };
        WalkError::Pattern {
            ignore,
            line,
            source,
        }
    }
}

/// Reads a directory's entries sorted by name bytes, with their kinds from
/// `readdir` (falling back to `lstat` where the filesystem gives none).
///
/// With `sizes`, regular files are also `stat`ed, relative to the open
/// directory (cheaper than resolving each full path again).
fn read_sorted(dir: &Path, sizes: bool) -> std::io::Result<Vec<(OsString, FileKind, Meta)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = FileKind::from_file_type(entry.file_type()?);
        let meta = if sizes {
            match entry.metadata() {
                Ok(m) => Some(m),
                // Deleted since readdir: Docker skips vanished files too.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            }
        } else {
            None
        };
        out.push((entry.file_name(), kind, meta));
    }
    out.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    Ok(out)
}

/// Decides one path the way the walk would reach it: each ancestor is
/// matched with its parent's results, and an excluded ancestor that the
/// walk would not enter decides for everything below it.
pub(crate) fn explain(ctx: &Context, rel: &[u8]) -> Result<Explanation, PatternError> {
    let rel = normalize_rel(rel);
    if rel.is_empty() {
        // The root is never excluded.
        return Ok(Explanation {
            included: true,
            rule: None,
            via_directory: None,
        });
    }
    let mut info = MatchInfo::default();
    let components: Vec<&[u8]> = rel.split(|&b| b == b'/').collect();
    let mut prefix: Vec<u8> = Vec::with_capacity(rel.len());
    for (i, component) in components.iter().enumerate() {
        if i > 0 {
            prefix.push(b'/');
        }
        prefix.extend_from_slice(component);
        let (verdict, child) = ctx.matcher.matches_with_parent(&prefix, &info)?;
        let last = i + 1 == components.len();
        if last {
            return Ok(Explanation {
                included: !verdict.excluded,
                rule: verdict.decided_by,
                via_directory: None,
            });
        }
        if verdict.excluded && !ctx.descend.enters(&prefix) {
            return Ok(Explanation {
                included: false,
                rule: verdict.decided_by,
                via_directory: Some(prefix),
            });
        }
        info = child;
    }
    unreachable!("the loop returns at the last component")
}

/// A user-given path as a clean context-relative path: `./a//b/` → `a/b`.
pub(crate) fn normalize_rel(rel: &[u8]) -> Vec<u8> {
    let cleaned = super::ignore::gopath::clean(rel);
    let trimmed: &[u8] = cleaned.strip_prefix(b"/").unwrap_or(&cleaned);
    if trimmed == b"." {
        Vec::new()
    } else {
        trimmed.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::super::ContextSpec;
    use super::*;
    use std::fs;

    fn os_string(bytes: &[u8]) -> OsString {
        OsString::from_vec(bytes.to_vec())
    }

    /// Builds a tree from `(path, kind)` where kind is "f", "d" or "l:TARGET".
    fn tree(spec: &[(&str, &str)], ignore: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (p, kind) in spec {
            let path = dir.path().join(p);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            match *kind {
                "d" => fs::create_dir_all(&path).unwrap(),
                "f" => fs::write(&path, p.as_bytes()).unwrap(),
                l => std::os::unix::fs::symlink(l.trim_start_matches("l:"), &path).unwrap(),
            }
        }
        fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        fs::write(dir.path().join(".dockerignore"), ignore).unwrap();
        dir
    }

    fn listing(dir: &Path, builder: Builder) -> Vec<String> {
        let ctx = ContextSpec {
            root: dir.to_path_buf(),
            dockerfile: None,
            builder,
        }
        .resolve()
        .unwrap();
        let mut out = Vec::new();
        ctx.walk::<WalkError, _>(|e| {
            let mut s = String::from_utf8_lossy(e.rel).into_owned();
            if e.kind == FileKind::Dir {
                s.push('/');
            }
            out.push(s);
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn walk_order_is_per_directory_byte_order() {
        let d = tree(&[("a/b", "f"), ("a.txt", "f"), ("B", "f"), ("a-", "d")], "");
        assert_eq!(
            listing(d.path(), Builder::BuildKit),
            [
                ".dockerignore",
                "B",
                "Dockerfile",
                "a/",
                "a/b",
                "a-/",
                "a.txt"
            ]
        );
    }

    #[test]
    fn excluded_directory_is_skipped_or_entered() {
        let spec = [
            ("node_modules/x/keep.md", "f"),
            ("node_modules/y.js", "f"),
            ("src/a.md", "f"),
        ];
        // No exceptions: skipped.
        let d = tree(&spec, "node_modules\n");
        assert_eq!(
            listing(d.path(), Builder::BuildKit),
            [".dockerignore", "Dockerfile", "src/", "src/a.md"]
        );
        // A wildcard exception reopens it in BuildKit, lazily.
        let d = tree(&spec, "node_modules\n!**/*.md\n");
        assert_eq!(
            listing(d.path(), Builder::BuildKit),
            [
                ".dockerignore",
                "Dockerfile",
                "node_modules/",
                "node_modules/x/",
                "node_modules/x/keep.md",
                "src/",
                "src/a.md"
            ]
        );
        // ... but never in the classic builder.
        assert_eq!(
            listing(d.path(), Builder::Classic),
            [".dockerignore", "Dockerfile", "src/", "src/a.md"]
        );
        // A plain prefix exception reopens it in both; classic never sends
        // the excluded directory entries themselves.
        let d = tree(&spec, "node_modules\n!node_modules/x/keep.md\n");
        assert_eq!(
            listing(d.path(), Builder::Classic),
            [
                ".dockerignore",
                "Dockerfile",
                "node_modules/x/keep.md",
                "src/",
                "src/a.md"
            ]
        );
        assert_eq!(
            listing(d.path(), Builder::BuildKit),
            [
                ".dockerignore",
                "Dockerfile",
                "node_modules/",
                "node_modules/x/",
                "node_modules/x/keep.md",
                "src/",
                "src/a.md"
            ]
        );
    }

    #[test]
    fn classic_always_sends_dockerfile_and_ignore_file() {
        let d = tree(&[("a", "f")], "*\n");
        assert_eq!(listing(d.path(), Builder::BuildKit), Vec::<String>::new());
        assert_eq!(
            listing(d.path(), Builder::Classic),
            [".dockerignore", "Dockerfile"]
        );
    }

    #[test]
    fn symlinks_are_entries_not_followed() {
        let d = tree(&[("real/f", "f"), ("link", "l:real")], "real\n");
        assert_eq!(
            listing(d.path(), Builder::BuildKit),
            [".dockerignore", "Dockerfile", "link"]
        );
    }

    #[test]
    fn explain_names_the_deciding_rule() {
        let d = tree(&[("app/__pycache__/x.pyc", "f")], "__pycache__\n*.pyc\n");
        let ctx = ContextSpec::new(d.path()).resolve().unwrap();
        let e = ctx.explain(b"app/__pycache__/x.pyc").unwrap();
        assert!(e.included, "root-anchored patterns miss nested files");
        assert_eq!(e.rule, None);
        let d = tree(&[("node_modules/a/b.js", "f")], "# deps\nnode_modules\n");
        let ctx = ContextSpec::new(d.path()).resolve().unwrap();
        let e = ctx.explain(b"./node_modules/a/b.js").unwrap();
        assert!(!e.included);
        assert_eq!(ctx.matcher().rules()[e.rule.unwrap()].line, 2);
        assert_eq!(e.via_directory.as_deref(), Some(&b"node_modules"[..]));
    }

    #[test]
    fn non_utf8_names_are_kept_byte_exact() {
        let d = tree(&[], "");
        let name = os_string(b"caf\xe9");
        fs::write(d.path().join(&name), b"x").unwrap();
        let ctx = ContextSpec::new(d.path()).resolve().unwrap();
        let mut names = Vec::new();
        ctx.walk::<WalkError, _>(|e| {
            names.push(e.rel.to_vec());
            Ok(())
        })
        .unwrap();
        assert!(names.contains(&b"caf\xe9".to_vec()));
    }
}
