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
//!
//! The walk keeps each directory it is in open and reaches entries through
//! that descriptor ([`Entry::lstat`], [`Entry::open`], [`Entry::read_link`]):
//! the kernel resolves one name per call instead of the whole path. Paths
//! of `PATH_MAX` bytes or more, and directories more than
//! 64 levels down (`MAX_OPEN_DEPTH`), are reached by path, so the errors are
//! the ones Docker gets and descriptors do not run out.

use std::cell::Cell;
#[cfg(test)]
use std::ffi::OsString;
use std::ffi::{CStr, OsStr};
use std::fs::File;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType as RawFileType, Mode, OFlags, RawDir, CWD};

use super::ignore::{MatchInfo, Matcher, PatternError};
use super::{Builder, Context, Explanation};

/// The kind of a directory entry, from `readdir` (no `stat` needed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link (never followed).
    Symlink,
    /// A named pipe (sent as an entry, never read).
    Fifo,
    /// A character device.
    CharDevice,
    /// A block device.
    BlockDevice,
    /// A socket (Docker skips it).
    Socket,
}

impl FileKind {
    /// `None` for a type `readdir` did not give.
    fn from_raw(t: RawFileType) -> Option<FileKind> {
        Some(match t {
            RawFileType::RegularFile => FileKind::File,
            RawFileType::Directory => FileKind::Dir,
            RawFileType::Symlink => FileKind::Symlink,
            RawFileType::Fifo => FileKind::Fifo,
            RawFileType::CharacterDevice => FileKind::CharDevice,
            RawFileType::BlockDevice => FileKind::BlockDevice,
            RawFileType::Socket => FileKind::Socket,
            RawFileType::Unknown => return None,
        })
    }
}

/// The `lstat` fields the engine uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// File type and permission bits (`st_mode`).
    pub mode: u32,
    /// Size in bytes (`st_size`).
    pub size: u64,
    /// Modification time in whole seconds since the epoch.
    pub mtime: i64,
    /// The nanoseconds of the modification time (BuildKit's file sync
    /// compares times to the nanosecond).
    pub mtime_nsec: u32,
    /// The status change time (seconds, nanoseconds): with the inode,
    /// size and mtime it tells whether a file's content may have changed.
    pub ctime: i64,
    /// The nanoseconds of the status change time.
    pub ctime_nsec: u32,
    /// Owner (`st_uid`).
    pub uid: u32,
    /// Group (`st_gid`).
    pub gid: u32,
    /// The device holding it (`st_dev`).
    pub dev: u64,
    /// Its inode (`st_ino`): with `dev`, what tells hard links apart.
    pub ino: u64,
    /// How many names it has (`st_nlink`).
    pub nlink: u64,
    /// The device a character or block device stands for.
    pub rdev: u64,
}

impl Stat {
    // The field types of `struct stat` differ between architectures.
    #[allow(clippy::unnecessary_cast)]
    fn from_raw(st: &rustix::fs::Stat) -> Stat {
        Stat {
            mode: st.st_mode as u32,
            size: st.st_size as u64,
            mtime: st.st_mtime as i64,
            mtime_nsec: st.st_mtime_nsec as u32,
            ctime: st.st_ctime as i64,
            ctime_nsec: st.st_ctime_nsec as u32,
            uid: st.st_uid as u32,
            gid: st.st_gid as u32,
            dev: st.st_dev as u64,
            ino: st.st_ino as u64,
            nlink: st.st_nlink as u64,
            rdev: st.st_rdev as u64,
        }
    }

    /// The `fstat` of an open file.
    #[cfg(feature = "image")]
    pub(crate) fn fstat(fd: impl AsFd) -> io::Result<Stat> {
        Ok(Stat::from_raw(&rustix::fs::fstat(fd)?))
    }

    fn lstat_at(dir: BorrowedFd<'_>, name: impl rustix::path::Arg) -> io::Result<Stat> {
        Ok(Stat::from_raw(&rustix::fs::statat(
            dir,
            name,
            AtFlags::SYMLINK_NOFOLLOW,
        )?))
    }
}

/// An entry's open directory and its name there: what `openat`-style calls
/// need to reach it without the kernel resolving the whole path again.
#[derive(Debug, Clone, Copy)]
pub(crate) struct At<'a> {
    dir: BorrowedFd<'a>,
    name: &'a CStr,
}

/// One entry the build would receive.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// Context-relative, `/`-separated path (raw bytes).
    pub rel: &'a [u8],
    /// The path on disk.
    pub path: &'a Path,
    /// What it is, from `readdir`.
    pub kind: FileKind,
    /// Whether the include patterns reach it (always `true` without
    /// include patterns; `false` for a directory sent only as the parent of
    /// something needed).
    pub needed: bool,
    /// A regular file's size, when the context was set to read sizes
    /// ([`Context::with_sizes`]); 0 otherwise and for other kinds.
    pub size: u64,
    /// The entry's `lstat`, when the context was set to read sizes (not for
    /// lazily sent parents).
    pub metadata: Option<&'a Stat>,
    /// Where the walk has the entry's directory open (`None` for lazily
    /// sent parents, replayed entries and very deep or long paths).
    pub(crate) at: Option<At<'a>>,
}

impl Entry<'_> {
    /// The entry's `lstat`: the one the walk read, or a fresh one.
    pub fn lstat(&self) -> io::Result<Stat> {
        match self.metadata {
            Some(stat) => Ok(*stat),
            None => lstat_via(self.at, self.path),
        }
    }

    /// Opens the entry for reading (relative to its open directory when the
    /// walk has one).
    pub fn open(&self) -> io::Result<File> {
        let flags = OFlags::RDONLY | OFlags::CLOEXEC;
        let fd = match self.at {
            Some(at) => rustix::fs::openat(at.dir, at.name, flags, Mode::empty())?,
            None => rustix::fs::open(self.path, flags, Mode::empty())?,
        };
        Ok(File::from(fd))
    }

    /// Opens a regular file and `fstat`s it: one lookup of its name where
    /// [`Entry::lstat`] then [`Entry::open`] make two. `None` when it is
    /// not (or no longer) a regular file or cannot be opened; the caller
    /// then takes the `lstat` path, which reports what is wrong.
    pub fn open_regular(&self) -> Option<(File, Stat)> {
        // Non-blocking and not following links: a FIFO or symlink swapped in
        // since `readdir` neither blocks the walk nor is followed.
        let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NONBLOCK;
        let fd = match self.at {
            Some(at) => rustix::fs::openat(at.dir, at.name, flags, Mode::empty()),
            None => rustix::fs::open(self.path, flags, Mode::empty()),
        }
        .ok()?;
        let stat = Stat::from_raw(&rustix::fs::fstat(&fd).ok()?);
        (RawFileType::from_raw_mode(stat.mode) == RawFileType::RegularFile)
            .then(|| (File::from(fd), stat))
    }

    /// The size of the entry's list of extended attribute names (a
    /// symlink's own), asked relative to its open directory: one name
    /// lookup, not the whole path's. `None` when the walk has no directory
    /// open for it, the kernel lacks `listxattrat` (Linux 6.13) or the
    /// call fails; the caller then asks by path.
    #[cfg(feature = "image")]
    pub(crate) fn xattr_list_len(&self) -> Option<usize> {
        let at = self.at?;
        list_xattrs_at(at.dir, at.name)
    }

    /// The first `limit` bytes of a regular file, for rules that look at
    /// contents. `None` for anything else (a symlink is not followed, a
    /// FIFO or device is not read) and when it cannot be read.
    pub fn read_head(&self, limit: usize) -> Option<Vec<u8>> {
        use std::io::Read;
        let (file, stat) = self.open_regular()?;
        let want = usize::try_from(stat.size).unwrap_or(usize::MAX).min(limit);
        let mut data = Vec::with_capacity(want);
        // `take` bounds the read even if the file grows meanwhile.
        file.take(limit as u64).read_to_end(&mut data).ok()?;
        Some(data)
    }

    /// A symlink's raw target.
    pub fn read_link(&self) -> io::Result<Vec<u8>> {
        let target = match self.at {
            Some(at) => rustix::fs::readlinkat(at.dir, at.name, Vec::new())?,
            None => rustix::fs::readlinkat(CWD, self.path, Vec::new())?,
        };
        Ok(target.into_bytes())
    }
}

/// Metadata read during the walk, when asked for.
type Meta = Option<Stat>;

/// Directories deeper than this are listed and closed at once, and what is
/// below them is reached by path: the walk keeps one descriptor per level
/// (per thread) and must not run out of them on absurdly deep trees.
const MAX_OPEN_DEPTH: usize = 64;

/// Linux's `PATH_MAX`, the terminating NUL included. A path this long
/// fails with `ENAMETOOLONG` when Docker opens it, so the walk does not
/// reach it through a directory descriptor either.
const PATH_MAX: usize = 4096;

/// Errors while walking.
#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    #[error("cannot read directory {}: {source}. Docker fails on it too: make it readable, or exclude it in the ignore file", crate::text::show_path(.path))]
    /// A directory cannot be listed.
    ReadDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    #[error("cannot read {}: {source}. Docker fails on it too: make it readable, or exclude it in the ignore file", crate::text::show_path(.path))]
    /// An entry cannot be examined.
    Stat {
        /// The entry.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    #[error("ignore file {ignore}, line {line}: {source}")]
    /// A pattern's regex fails to compile when first matched (as in Docker).
    Pattern {
        /// The ignore file.
        ignore: PathBuf,
        /// The line of the pattern (1-based).
        line: usize,
        /// What the regex compiler said.
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
            at: None,
        }
    }
}

struct Frame {
    /// The directory, open while its entries are visited (`None` below
    /// [`MAX_OPEN_DEPTH`]).
    dir: Option<OwnedFd>,
    listing: Listing,
    /// Index of the next entry in `listing`.
    next: usize,
    /// Length of the directory's relative path in the shared buffer.
    rel_len: usize,
    /// Length of the directory's path on disk in the shared buffer.
    path_len: usize,
    /// The directory's exclude-pattern results, for its children.
    info: MatchInfo,
    /// The directory's include-pattern results, for its children.
    include_info: MatchInfo,
    /// Not yet sent (entered only because something inside may be sent).
    /// A `Cell`, so sending it needs no mutable borrow of the stack while
    /// an entry of the innermost directory is borrowed from it.
    pending: Cell<bool>,
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
        // The path on disk as bytes: truncating and appending is all the
        // walk does to it.
        let mut path: Vec<u8> = start.path.into_os_string().into_vec();
        path.reserve(256);
        let mut dirents = vec![MaybeUninit::<u8>::uninit(); 32 * 1024];
        let (dir, listing) =
            open_listing(None, &path, true, &mut dirents).map_err(|source| WalkError::ReadDir {
                path: bytes_path(&path).to_path_buf(),
                source,
            })?;
        let mut stack = vec![Frame {
            dir,
            listing,
            next: 0,
            rel_len: rel.len(),
            path_len: path.len(),
            info: start.info,
            include_info: start.include_info,
            pending: Cell::new(false),
        }];
        let lazy_parents = self.builder == Builder::BuildKit || self.include.is_some();

        while let Some(frame) = stack.last_mut() {
            let Some(&item) = frame.listing.items.get(frame.next) else {
                stack.pop();
                continue;
            };
            frame.next += 1;
            let name = frame.listing.name(item);
            rel.truncate(frame.rel_len);
            if frame.rel_len > 0 {
                rel.push(b'/');
            }
            rel.extend_from_slice(name);
            path.truncate(frame.path_len);
            if !path.is_empty() && !path.ends_with(b"/") {
                path.push(b'/');
            }
            path.extend_from_slice(name);
            let kind = item.kind;
            let is_dir = kind == FileKind::Dir;
            let frame = &stack[stack.len() - 1];

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
                needed = verdict.reached();
                include_rule = verdict.rule();
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
            if let super::Decision::Exception(i) = verdict {
                summary.rule_reincluded[i] += 1;
            }
            if verdict.excluded() {
                if !(is_dir && self.descend.enters(&rel)) {
                    continue;
                }
                hidden = true;
            }

            if kind == FileKind::Socket {
                if !hidden {
                    summary.skipped_sockets.push(rel.clone());
                }
                continue;
            }
            let at = entry_at(&stack, item, &path);
            let meta = if !hidden && self.sizes {
                match lstat_via(at, bytes_path(&path)) {
                    Ok(stat) => Some(stat),
                    // Deleted since readdir: Docker skips vanished files too
                    // (and its parents stay unsent if nothing else is).
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(source) => {
                        return Err(WalkError::Stat {
                            path: bytes_path(&path).to_path_buf(),
                            source,
                        }
                        .into())
                    }
                }
            } else {
                None
            };
            // Send the directories this entry lives in first.
            if !hidden && lazy_parents {
                for parent in stack.iter().filter(|f| f.pending.replace(false)) {
                    visit(&Entry {
                        rel: &rel[..parent.rel_len],
                        path: bytes_path(&path[..parent.path_len]),
                        kind: FileKind::Dir,
                        needed: false,
                        size: 0,
                        metadata: None,
                        at: None,
                    })?;
                }
            }
            if !hidden {
                if let (true, Some(i)) = (needed, include_rule) {
                    summary.include_hits[i] += 1;
                }
                if let Some((depth, split)) = split.as_mut() {
                    if is_dir && stack.len() == *depth {
                        split(Subtree {
                            path: bytes_path(&path).to_path_buf(),
                            rel: rel.clone(),
                            needed,
                            metadata: meta,
                            info,
                            include_info,
                            sockets_before: summary.skipped_sockets.len(),
                        })?;
                        continue;
                    }
                }
                let size = match (&meta, kind) {
                    (Some(m), FileKind::File) => m.size,
                    _ => 0,
                };
                visit(&Entry {
                    rel: &rel,
                    path: bytes_path(&path),
                    kind,
                    needed,
                    size,
                    metadata: meta.as_ref(),
                    at,
                })?;
            }
            if is_dir {
                let keep_open = stack.len() < MAX_OPEN_DEPTH;
                match open_listing(at, &path, keep_open, &mut dirents) {
                    Ok((dir, listing)) => stack.push(Frame {
                        dir,
                        listing,
                        next: 0,
                        rel_len: rel.len(),
                        path_len: path.len(),
                        info,
                        include_info,
                        pending: Cell::new(hidden && lazy_parents),
                    }),
                    Err(e) if hidden && e.kind() == io::ErrorKind::PermissionDenied => {}
                    Err(source) => {
                        return Err(WalkError::ReadDir {
                            path: bytes_path(&path).to_path_buf(),
                            source,
                        }
                        .into())
                    }
                }
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

/// The path a byte buffer of the walk names.
fn bytes_path(bytes: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(bytes))
}

/// `lstat`s an entry through its directory when that is open, by `path`
/// otherwise.
#[cfg(all(
    feature = "image",
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
fn list_xattrs_at(dir: BorrowedFd<'_>, name: &CStr) -> Option<usize> {
    use std::os::fd::AsRawFd;
    // The same number on both architectures (the unified syscall table).
    const SYS_LISTXATTRAT: libc::c_long = 465;
    // SAFETY: a valid descriptor, a NUL-terminated name, and a null list
    // of size 0, which only asks for the size.
    let n = unsafe {
        libc::syscall(
            SYS_LISTXATTRAT,
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW as libc::c_uint,
            std::ptr::null_mut::<libc::c_char>(),
            0usize,
        )
    };
    usize::try_from(n).ok()
}

#[cfg(all(
    feature = "image",
    not(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    ))
))]
fn list_xattrs_at(_dir: BorrowedFd<'_>, _name: &CStr) -> Option<usize> {
    None
}

fn lstat_via(at: Option<At<'_>>, path: &Path) -> io::Result<Stat> {
    match at {
        Some(at) => Stat::lstat_at(at.dir, at.name),
        None => Stat::lstat_at(CWD, path),
    }
}

/// Where the entry `item` of the innermost directory can be reached through
/// that directory's descriptor: not when the directory was closed, nor
/// when its full `path` is too long for Docker to open.
fn entry_at<'a>(stack: &'a [Frame], item: Item, path: &[u8]) -> Option<At<'a>> {
    let frame = stack.last()?;
    let dir = frame.dir.as_ref()?;
    (path.len() < PATH_MAX).then_some(At {
        dir: dir.as_fd(),
        name: frame.listing.c_name(item)?,
    })
}

/// A directory's entries sorted by name bytes. The names sit in one buffer,
/// each followed by a NUL, so `openat` takes them as they are.
#[derive(Debug, Default)]
struct Listing {
    names: Vec<u8>,
    items: Vec<Item>,
}

#[derive(Debug, Clone, Copy)]
struct Item {
    start: usize,
    len: usize,
    kind: FileKind,
}

impl Listing {
    fn name(&self, item: Item) -> &[u8] {
        &self.names[item.start..item.start + item.len]
    }

    fn c_name(&self, item: Item) -> Option<&CStr> {
        CStr::from_bytes_with_nul(&self.names[item.start..=item.start + item.len]).ok()
    }
}

/// Opens and lists a directory: through its parent's descriptor when the
/// walk has it (`at`), by path otherwise. Kinds come from `readdir`, with
/// an `lstat` where the filesystem gives none; an entry deleted in between
/// is left out, as Docker does. The directory stays open when `keep_open`.
fn open_listing(
    at: Option<At<'_>>,
    path: &[u8],
    keep_open: bool,
    dirents: &mut [MaybeUninit<u8>],
) -> io::Result<(Option<OwnedFd>, Listing)> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let dir = match at {
        Some(at) => rustix::fs::openat(at.dir, at.name, flags, Mode::empty())?,
        None => rustix::fs::open(bytes_path(path), flags, Mode::empty())?,
    };
    let mut listing = Listing::default();
    let mut raw = RawDir::new(dir.as_fd(), dirents);
    while let Some(entry) = raw.next() {
        let entry = entry?;
        let name = entry.file_name();
        let bytes = name.to_bytes();
        if bytes == b"." || bytes == b".." {
            continue;
        }
        let kind = match FileKind::from_raw(entry.file_type()) {
            Some(kind) => kind,
            None => match Stat::lstat_at(dir.as_fd(), name) {
                Ok(stat) => FileKind::from_raw(RawFileType::from_raw_mode(stat.mode))
                    .unwrap_or(FileKind::File),
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            },
        };
        listing.items.push(Item {
            start: listing.names.len(),
            len: bytes.len(),
            kind,
        });
        listing.names.extend_from_slice(name.to_bytes_with_nul());
    }
    let names = &listing.names;
    listing.items.sort_unstable_by(|a, b| {
        names[a.start..a.start + a.len].cmp(&names[b.start..b.start + b.len])
    });
    Ok((keep_open.then_some(dir), listing))
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
                included: !verdict.excluded(),
                rule: verdict.rule(),
                via_directory: None,
            });
        }
        if verdict.excluded() && !ctx.descend.enters(&prefix) {
            return Ok(Explanation {
                included: false,
                rule: verdict.rule(),
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

    /// `open_regular` opens regular files only, never blocks on a FIFO
    /// and never follows a symlink, through the directory or by path.
    #[test]
    fn open_regular_takes_only_regular_files() {
        let dir = tree(&[("f", "f"), ("d", "d"), ("l", "l:f")], "");
        rustix::fs::mknodat(
            CWD,
            dir.path().join("p"),
            RawFileType::Fifo,
            Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        let ctx = ContextSpec {
            root: dir.path().to_path_buf(),
            dockerfile: None,
            builder: Builder::BuildKit,
        }
        .resolve()
        .unwrap();
        let mut seen = Vec::new();
        ctx.walk::<WalkError, _>(|e| {
            let name = String::from_utf8_lossy(e.rel).into_owned();
            let by_dir = e.open_regular().map(|(_, stat)| stat);
            let by_path = Entry { at: None, ..*e }
                .open_regular()
                .map(|(_, stat)| stat);
            assert_eq!(by_dir, by_path, "{name}");
            if let Some(stat) = by_dir {
                assert_eq!(stat, e.lstat().unwrap(), "{name}");
            }
            seen.push((name, by_dir.is_some()));
            Ok(())
        })
        .unwrap();
        let opened: Vec<&str> = seen.iter().filter(|s| s.1).map(|s| s.0.as_str()).collect();
        assert_eq!(opened, [".dockerignore", "Dockerfile", "f"]);
        assert_eq!(seen.len(), 6, "{seen:?}");
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
