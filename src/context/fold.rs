//! A walk folded on every core.
//!
//! [`Context::walk`] is one thread of system calls (`getdents64` and, with
//! sizes, an `lstat` per entry) plus whatever its visitor does. A visitor
//! that only accumulates (totals, per-directory tallies, lists), as
//! `analyze` does, can be written as a [`Fold`]; [`Context::walk_fold`]
//! then splits the tree: the calling thread walks the top levels, and each
//! directory [`SPLIT_DEPTH`] levels down that would be sent becomes a
//! subtree, folded by whichever thread is free into an accumulator forked
//! from the root one. At the end the root accumulator takes the top-level
//! entries and the finished subtrees in walk order, so the result is the
//! one a single [`Context::walk`] gives, as long as [`Fold::join`] of a
//! subtree's accumulator equals visiting its entries at that point.
//!
//! Subtrees are handed out in walk order from one queue, so an error is
//! reported exactly where the plain walk would have stopped: the first
//! error in walk order wins, and no subtree after a failed one is started.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Condvar, Mutex};

use super::walk::{Entry, FileKind, Stat, Subtree, WalkError, WalkSummary};
use super::Context;

/// How many levels below the root a directory is handed off as a subtree.
/// Two levels give a Reggie-shaped monorepo a few hundred subtrees
/// (`apps/web`, `node_modules/<package>`, ...): enough to keep every core
/// busy to the end, few enough that handing them out costs nothing.
pub const SPLIT_DEPTH: usize = 2;

/// Most threads a fold uses: directory reads stop scaling well before.
const MAX_THREADS: usize = 8;

/// An accumulator over a walk that can be split by subtree.
pub trait Fold: Sized + Send + Sync {
    /// What visiting an entry can fail with.
    type Error: From<WalkError> + Send;

    /// A fresh accumulator for the subtree of the directory `root`, which
    /// it visits first.
    fn fork(&self, root: &Entry<'_>) -> Self;

    /// Takes in one entry, in walk order.
    fn visit(&mut self, entry: &Entry<'_>) -> Result<(), Self::Error>;

    /// Takes in a forked accumulator that visited a whole subtree, at the
    /// point in the walk where that subtree lies.
    fn join(&mut self, subtree: Self) -> Result<(), Self::Error>;
}

/// How a fold is spread: how many threads, and where the tree is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spread {
    /// Threads that walk subtrees (1: the walk is not split).
    pub threads: usize,
    /// The depth of the directories whose subtrees are split off.
    pub depth: usize,
}

impl Spread {
    /// One thread per core (at most 8), cut at [`SPLIT_DEPTH`];
    /// `REGGIE_WALK_THREADS=N` overrides the thread count (1: the plain
    /// walk).
    pub fn from_env() -> Spread {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = std::env::var("REGGIE_WALK_THREADS")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(cores)
            .clamp(1, MAX_THREADS);
        Spread {
            threads,
            depth: SPLIT_DEPTH,
        }
    }
}

/// A top-level entry, kept until the subtrees around it are done.
struct OwnedEntry {
    rel: Vec<u8>,
    path: PathBuf,
    kind: FileKind,
    needed: bool,
    size: u64,
    metadata: Option<Stat>,
}

impl OwnedEntry {
    fn new(e: &Entry<'_>) -> OwnedEntry {
        OwnedEntry {
            rel: e.rel.to_vec(),
            path: e.path.to_path_buf(),
            kind: e.kind,
            needed: e.needed,
            size: e.size,
            metadata: e.metadata.copied(),
        }
    }

    fn entry(&self) -> Entry<'_> {
        Entry {
            rel: &self.rel,
            path: &self.path,
            kind: self.kind,
            needed: self.needed,
            size: self.size,
            metadata: self.metadata.as_ref(),
            at: None,
        }
    }
}

/// The top-level walk as it happened: entries, and where subtrees go.
enum Piece {
    Entry(Box<OwnedEntry>),
    /// Subtree number `index`; `sockets_before` top-level sockets precede
    /// it.
    Subtree {
        index: usize,
        sockets_before: usize,
    },
}

/// Subtrees waiting for a thread.
struct Queue<F> {
    waiting: VecDeque<(usize, Subtree, F)>,
    /// The top-level walk is over: nothing more will be queued.
    closed: bool,
    /// The first subtree that failed: later ones are not started.
    failed: Option<usize>,
}

type Folded<F> = Result<(F, WalkSummary), <F as Fold>::Error>;

impl Context {
    /// Folds every entry [`Context::walk`] would visit into `fold`, on
    /// every core; see the module docs. Returns the fold and the walk's
    /// summary, both as the plain walk would leave them.
    pub fn walk_fold<F: Fold>(&self, fold: F) -> Result<(F, WalkSummary), F::Error> {
        self.walk_fold_spread(fold, Spread::from_env())
    }

    /// [`Context::walk_fold`] with an explicit spread.
    pub fn walk_fold_spread<F: Fold>(
        &self,
        mut fold: F,
        spread: Spread,
    ) -> Result<(F, WalkSummary), F::Error> {
        if spread.threads <= 1 {
            let summary = self.walk(|e| fold.visit(e))?;
            return Ok((fold, summary));
        }
        let queue = Mutex::new(Queue {
            waiting: VecDeque::new(),
            closed: false,
            failed: None,
        });
        let wake = Condvar::new();
        let results: Mutex<Vec<Option<Folded<F>>>> = Mutex::new(Vec::new());
        let mut pieces: Vec<Piece> = Vec::new();

        let walked = std::thread::scope(|scope| {
            let work = || self.fold_subtrees(&queue, &wake, &results);
            for _ in 1..spread.threads {
                // A thread that cannot start leaves its share to the others.
                let _ = std::thread::Builder::new()
                    .name("reggie-walk".into())
                    .spawn_scoped(scope, work);
            }
            let mut subtrees = 0;
            let pieces_cell = std::cell::RefCell::new(&mut pieces);
            let walked = self.walk_split::<F::Error, _>(
                spread.depth,
                &mut |subtree| {
                    let forked = fold.fork(&subtree.entry());
                    pieces_cell.borrow_mut().push(Piece::Subtree {
                        index: subtrees,
                        sockets_before: subtree.sockets_before,
                    });
                    lock(&queue).waiting.push_back((subtrees, subtree, forked));
                    wake.notify_one();
                    subtrees += 1;
                    Ok(())
                },
                |e| {
                    pieces_cell
                        .borrow_mut()
                        .push(Piece::Entry(Box::new(OwnedEntry::new(e))));
                    Ok(())
                },
            );
            lock(&queue).closed = true;
            wake.notify_all();
            // This thread folds subtrees too until none are left.
            work();
            walked
        });

        let mut results = results.into_inner().unwrap_or_else(|p| p.into_inner());
        let mut subtree_summaries = Vec::new();
        for piece in pieces {
            match piece {
                Piece::Entry(e) => fold.visit(&e.entry())?,
                Piece::Subtree {
                    index,
                    sockets_before,
                } => {
                    let folded = results.get_mut(index).and_then(Option::take);
                    // Every subtree before the first failure has a result.
                    let (sub, summary) =
                        folded.expect("subtrees before a failure are always folded")?;
                    fold.join(sub)?;
                    subtree_summaries.push((sockets_before, summary));
                }
            }
        }
        let mut top = walked?;
        // The top-level sockets, each put back before the subtrees it
        // preceded.
        let top_sockets = std::mem::take(&mut top.skipped_sockets);
        let mut top_sockets = top_sockets.into_iter();
        let mut summary = top;
        let mut taken = 0;
        for (sockets_before, sub) in subtree_summaries {
            summary
                .skipped_sockets
                .extend(top_sockets.by_ref().take(sockets_before - taken));
            taken = sockets_before;
            summary.absorb(sub);
        }
        summary.skipped_sockets.extend(top_sockets);
        Ok((fold, summary))
    }

    /// One thread's share: folds queued subtrees until the queue is closed
    /// and empty.
    fn fold_subtrees<F: Fold>(
        &self,
        queue: &Mutex<Queue<F>>,
        wake: &Condvar,
        results: &Mutex<Vec<Option<Folded<F>>>>,
    ) {
        loop {
            let job = {
                let mut q = lock(queue);
                loop {
                    if let Some(job) = q.waiting.pop_front() {
                        if q.failed.is_some_and(|f| job.0 > f) {
                            continue;
                        }
                        break Some(job);
                    }
                    if q.closed {
                        break None;
                    }
                    q = wake.wait(q).unwrap_or_else(|p| p.into_inner());
                }
            };
            let Some((index, subtree, mut fold)) = job else {
                return;
            };
            let folded = self
                .walk_subtree(subtree, |e| fold.visit(e))
                .map(|summary| (fold, summary));
            if folded.is_err() {
                let mut q = lock(queue);
                q.failed = Some(q.failed.map_or(index, |f| f.min(index)));
            }
            let mut r = lock(results);
            if r.len() <= index {
                r.resize_with(index + 1, || None);
            }
            r[index] = Some(folded);
        }
    }
}

/// A lock that a panicked holder does not poison for the others (the
/// scope re-raises the panic anyway).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::{Builder, ContextSpec};

    type Record = (Vec<u8>, PathBuf, FileKind, bool, u64, Option<u64>);

    /// Records every entry; a subtree's records are appended on join.
    struct Recorder {
        records: Vec<Record>,
        forks: usize,
        /// Fail on visiting this path.
        fail_at: Option<Vec<u8>>,
    }

    #[derive(Debug)]
    enum TestError {
        Walk(String),
        Visit(Vec<u8>),
    }

    impl From<WalkError> for TestError {
        fn from(e: WalkError) -> TestError {
            TestError::Walk(e.to_string())
        }
    }

    impl Fold for Recorder {
        type Error = TestError;
        fn fork(&self, _root: &Entry<'_>) -> Recorder {
            Recorder {
                records: Vec::new(),
                forks: 0,
                fail_at: self.fail_at.clone(),
            }
        }
        fn visit(&mut self, e: &Entry<'_>) -> Result<(), TestError> {
            if self.fail_at.as_deref() == Some(e.rel) {
                return Err(TestError::Visit(e.rel.to_vec()));
            }
            self.records.push((
                e.rel.to_vec(),
                e.path.to_path_buf(),
                e.kind,
                e.needed,
                e.size,
                e.metadata.map(|m| m.size),
            ));
            Ok(())
        }
        fn join(&mut self, sub: Recorder) -> Result<(), TestError> {
            self.records.extend(sub.records);
            self.forks += 1 + sub.forks;
            Ok(())
        }
    }

    fn recorder() -> Recorder {
        Recorder {
            records: Vec::new(),
            forks: 0,
            fail_at: None,
        }
    }

    /// 40 directories of 30 files, a socket at two depths, rules with a
    /// wildcard exception so that excluded directories are entered and
    /// their parents sent lazily.
    fn tree(ignore: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for d in 0..40 {
            let sub = root.join(format!("d{d:02}/inner/deeper"));
            std::fs::create_dir_all(&sub).unwrap();
            for f in 0..30 {
                std::fs::write(sub.join(format!("f{f}.txt")), vec![b'x'; f]).unwrap();
                std::fs::write(root.join(format!("d{d:02}/g{f}.md")), b"g").unwrap();
            }
        }
        std::fs::write(root.join("top.txt"), b"top").unwrap();
        let _a = std::os::unix::net::UnixListener::bind(root.join("a.sock")).unwrap();
        let _b = std::os::unix::net::UnixListener::bind(root.join("d03/b.sock")).unwrap();
        let _c = std::os::unix::net::UnixListener::bind(root.join("d07/inner/c.sock")).unwrap();
        std::fs::write(root.join("Dockerfile"), "FROM scratch\nCOPY d01 /\n").unwrap();
        std::fs::write(root.join(".dockerignore"), ignore).unwrap();
        dir
    }

    fn plain(ctx: &Context) -> (Vec<Record>, WalkSummary) {
        let mut r = recorder();
        let summary = ctx.walk(|e| r.visit(e)).unwrap();
        (r.records, summary)
    }

    #[test]
    fn same_entries_and_summary_as_the_walk_at_any_spread() {
        let ignores = [
            "",
            "d0*\n!d05/inner/deeper/f1*\n",
            "d1*\n!**/*.md\n*.txt\n",
            "**/inner\n!d2*/inner/deeper\n",
        ];
        for ignore in ignores {
            let dir = tree(ignore);
            for builder in [Builder::BuildKit, Builder::Classic] {
                let base = ContextSpec {
                    root: dir.path().to_path_buf(),
                    dockerfile: None,
                    builder,
                }
                .resolve()
                .unwrap()
                .with_sizes();
                let annotated = base.with_includes(&[b"d01".to_vec()], false).unwrap();
                let filtered = base.with_includes(&[b"d1*".to_vec()], true).unwrap();
                for ctx in [base, annotated, filtered] {
                    let (want, want_summary) = plain(&ctx);
                    for threads in [1, 2, 3] {
                        for depth in [1, 2, 3] {
                            let spread = Spread { threads, depth };
                            let (got, summary) = ctx.walk_fold_spread(recorder(), spread).unwrap();
                            let case = format!("{ignore:?} {builder:?} {spread:?}");
                            assert_eq!(got.records, want, "{case}");
                            assert_eq!(summary.rule_hits, want_summary.rule_hits, "{case}");
                            assert_eq!(
                                summary.rule_reincluded, want_summary.rule_reincluded,
                                "{case}"
                            );
                            assert_eq!(summary.include_hits, want_summary.include_hits, "{case}");
                            assert_eq!(
                                summary.skipped_sockets, want_summary.skipped_sockets,
                                "{case}"
                            );
                            if threads > 1 && ignore.is_empty() {
                                assert!(got.forks > 0, "{case}: the tree was split");
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn the_first_error_in_walk_order_wins() {
        let dir = tree("");
        let ctx = ContextSpec::new(dir.path()).resolve().unwrap();
        for fail_at in ["d02/inner/deeper/f3.txt", "d02/g1.md", "top.txt", "d39"] {
            for threads in [1, 2] {
                let mut fold = recorder();
                fold.fail_at = Some(fail_at.as_bytes().to_vec());
                let spread = Spread { threads, depth: 2 };
                match ctx.walk_fold_spread(fold, spread) {
                    Err(TestError::Visit(at)) => assert_eq!(at, fail_at.as_bytes()),
                    other => panic!(
                        "{fail_at} {threads}: {:?}",
                        other.map(|f| f.0.records.len())
                    ),
                }
            }
        }
    }

    #[test]
    fn a_subtree_that_cannot_be_read_fails_like_the_walk() {
        // A directory deeper than PATH_MAX cannot be opened by its path,
        // even by root: the walk fails there, and so must the fold.
        let dir = tree("");
        let long = std::ffi::CString::new("n".repeat(250)).unwrap();
        let start =
            std::ffi::CString::new(dir.path().join("d04/inner").as_os_str().as_encoded_bytes())
                .unwrap();
        // SAFETY: plain system calls on NUL-terminated strings; every
        // descriptor opened here is closed here.
        unsafe {
            let mut fd = libc::open(start.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY);
            assert!(fd >= 0);
            for _ in 0..20 {
                assert_eq!(libc::mkdirat(fd, long.as_ptr(), 0o755), 0);
                let next = libc::openat(fd, long.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY);
                libc::close(fd);
                assert!(next >= 0);
                fd = next;
            }
            libc::close(fd);
        }
        let ctx = ContextSpec::new(dir.path()).resolve().unwrap();
        let Err(TestError::Walk(plain)) = ctx.walk::<TestError, _>(|_| Ok(())) else {
            panic!("the walk should fail on the long path");
        };
        assert!(plain.contains("d04/inner/nnn"), "{plain}");
        for threads in [2, 3] {
            let folded = ctx
                .walk_fold_spread(recorder(), Spread { threads, depth: 2 })
                .map(|f| f.0.records.len());
            match folded {
                Err(TestError::Walk(e)) => assert_eq!(e, plain),
                other => panic!("{threads} threads: {other:?}"),
            }
        }
    }
}
