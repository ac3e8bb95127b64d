//! The walk on one core, its consumer on the other.
//!
//! [`Context::walk`] calls its visitor between system calls, so a visitor
//! that does real work per entry (classifying, totalling, as `analyze`
//! does) adds its time to the kernel's. [`Context::walk_pipelined`] runs
//! the same walk on a second thread and hands the entries over in batches
//! (one arena of path bytes per batch, a bounded channel of a few
//! batches): the visitor sees exactly the entries, in exactly the order,
//! that `walk` gives, while the next directories are being read.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::mpsc;

use super::walk::{Entry, FileKind, WalkError, WalkSummary};
use super::Context;

/// Entries per batch: few enough hand-offs, small enough to stay in cache.
const BATCH: usize = 512;
/// Batches in flight: bounds memory whatever the tree.
const IN_FLIGHT: usize = 4;

/// One entry of a batch; its paths are ranges of the batch's arena.
struct Owned {
    rel: (usize, usize),
    path: (usize, usize),
    kind: FileKind,
    needed: bool,
    size: u64,
    metadata: Option<std::fs::Metadata>,
}

#[derive(Default)]
struct Batch {
    bytes: Vec<u8>,
    entries: Vec<Owned>,
}

impl Batch {
    fn push(&mut self, e: &Entry<'_>) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(e.rel);
        let mid = self.bytes.len();
        self.bytes.extend_from_slice(e.path.as_os_str().as_bytes());
        self.entries.push(Owned {
            rel: (start, mid),
            path: (mid, self.bytes.len()),
            kind: e.kind,
            needed: e.needed,
            size: e.size,
            metadata: e.metadata.cloned(),
        });
    }
}

enum Message {
    Entries(Batch),
    Done(Result<WalkSummary, WalkError>),
}

impl Context {
    /// [`Context::walk`] with the walk on a second thread, for visitors
    /// that do real work per entry. Same entries, same order, same
    /// summary; falls back to [`Context::walk`] on a single core or when
    /// no thread can be started (`REGGIE_WALK_THREADS=1` forces that).
    pub fn walk_pipelined<E, F>(&self, mut visit: F) -> Result<WalkSummary, E>
    where
        F: FnMut(&Entry<'_>) -> Result<(), E>,
        E: From<WalkError>,
    {
        let parallel = std::thread::available_parallelism().is_ok_and(|n| n.get() > 1)
            && std::env::var_os("REGGIE_WALK_THREADS").is_none_or(|v| v != "1");
        if !parallel {
            return self.walk(visit);
        }
        let (tx, rx) = mpsc::sync_channel::<Message>(IN_FLIGHT);
        std::thread::scope(|scope| {
            // Owned here, so that an early return drops it before the scope
            // joins the walking thread (which then fails its next send).
            let rx = rx;
            let walker = std::thread::Builder::new()
                .name("reggie-walk".into())
                .spawn_scoped(scope, move || {
                    let mut batch = Batch::default();
                    let walked = self.walk::<WalkErrorOrGone, _>(|e| {
                        batch.push(e);
                        if batch.entries.len() == BATCH {
                            let full = std::mem::take(&mut batch);
                            tx.send(Message::Entries(full))
                                .map_err(|_| WalkErrorOrGone::Gone)?;
                        }
                        Ok(())
                    });
                    let result = match walked {
                        Ok(summary) => {
                            if !batch.entries.is_empty()
                                && tx.send(Message::Entries(batch)).is_err()
                            {
                                return;
                            }
                            Ok(summary)
                        }
                        Err(WalkErrorOrGone::Walk(e)) => Err(e),
                        Err(WalkErrorOrGone::Gone) => return,
                    };
                    let _ = tx.send(Message::Done(result));
                });
            if walker.is_err() {
                return self.walk(&mut visit);
            }
            // The receiving end: replay each batch to the visitor. Dropping
            // `rx` on an early return stops the walking thread at its next
            // send.
            for message in rx.iter() {
                match message {
                    Message::Entries(batch) => {
                        for o in &batch.entries {
                            let path =
                                Path::new(OsStr::from_bytes(&batch.bytes[o.path.0..o.path.1]));
                            visit(&Entry {
                                rel: &batch.bytes[o.rel.0..o.rel.1],
                                path,
                                kind: o.kind,
                                needed: o.needed,
                                size: o.size,
                                metadata: o.metadata.as_ref(),
                            })?;
                        }
                    }
                    Message::Done(result) => return result.map_err(E::from),
                }
            }
            // The walking thread ended without a result: it panicked.
            self.walk(&mut visit)
        })
    }
}

enum WalkErrorOrGone {
    Walk(WalkError),
    Gone,
}

impl From<WalkError> for WalkErrorOrGone {
    fn from(e: WalkError) -> WalkErrorOrGone {
        WalkErrorOrGone::Walk(e)
    }
}

#[cfg(test)]
mod tests {
    use crate::context::walk::{Entry, FileKind};
    use crate::context::{Builder, ContextSpec};

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for d in 0..40 {
            let sub = root.join(format!("d{d:02}/inner"));
            std::fs::create_dir_all(&sub).unwrap();
            for f in 0..30 {
                std::fs::write(sub.join(format!("f{f}.txt")), vec![b'x'; f]).unwrap();
            }
        }
        std::fs::write(root.join("Dockerfile"), "FROM scratch\nCOPY d01 /\n").unwrap();
        std::fs::write(root.join(".dockerignore"), "d0*\n!d05/inner/f1*\n").unwrap();
        dir
    }

    type Record = (Vec<u8>, std::path::PathBuf, FileKind, bool, u64);

    fn record(e: &Entry<'_>) -> Record {
        (
            e.rel.to_vec(),
            e.path.to_path_buf(),
            e.kind,
            e.needed,
            e.size,
        )
    }

    #[test]
    fn same_entries_and_summary_as_the_walk() {
        let dir = tree();
        let ctx = ContextSpec {
            root: dir.path().to_path_buf(),
            dockerfile: None,
            builder: Builder::BuildKit,
        }
        .resolve()
        .unwrap()
        .with_sizes();
        let mut plain = Vec::new();
        let s1 = ctx
            .walk::<crate::context::walk::WalkError, _>(|e| {
                plain.push(record(e));
                Ok(())
            })
            .unwrap();
        let mut piped = Vec::new();
        let s2 = ctx
            .walk_pipelined::<crate::context::walk::WalkError, _>(|e| {
                if e.kind == FileKind::File {
                    assert_eq!(e.metadata.map(|m| m.len()), Some(e.size));
                }
                piped.push(record(e));
                Ok(())
            })
            .unwrap();
        assert!(plain.len() > super::BATCH, "{}", plain.len());
        assert_eq!(plain, piped);
        assert_eq!(s1.rule_hits, s2.rule_hits);
        assert_eq!(s1.rule_reincluded, s2.rule_reincluded);
    }

    #[derive(Debug)]
    enum Stop {
        Walk,
        Enough,
    }

    impl From<crate::context::walk::WalkError> for Stop {
        fn from(_: crate::context::walk::WalkError) -> Stop {
            Stop::Walk
        }
    }

    #[test]
    fn a_visitor_error_stops_both_sides() {
        let dir = tree();
        let ctx = ContextSpec {
            root: dir.path().to_path_buf(),
            dockerfile: None,
            builder: Builder::Classic,
        }
        .resolve()
        .unwrap();
        let mut seen = 0;
        let r = ctx.walk_pipelined::<Stop, _>(|_| {
            seen += 1;
            if seen == 700 {
                return Err(Stop::Enough);
            }
            Ok(())
        });
        assert!(matches!(r, Err(Stop::Enough)), "{r:?}");
        assert_eq!(seen, 700);
    }
}
