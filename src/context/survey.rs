//! The survey before a build: one walk of the context, without writing
//! an archive, for its digest (the image's context label, the build key,
//! `digest`) and which build files it sends. Files unchanged since the
//! last survey of the same context are not read: their content hashes
//! come from the [`HashCache`], keyed on (dev, inode, size, mtime, ctime).

use std::collections::HashMap;

use super::digest::DigestSink;
use super::hash_cache::HashCache;
use super::tarball::{survey_context, ArchivedEntry, EntrySink, TarError, TarOptions};
use super::walk::Stat;
use super::Context;

/// What a first pass over the context found: its digest and whether the
/// Dockerfile and a root `.dockerignore` are among the entries sent.
#[derive(Debug, Clone)]
pub struct Survey {
    /// The content digest of what would be sent (`sha256:...`).
    pub digest: String,
    /// Entries sent (files, directories, links...).
    pub entries: u64,
    /// Bytes of file contents sent.
    pub content_bytes: u64,
    /// The context sends its root `Dockerfile`.
    pub has_dockerfile: bool,
    /// The context sends its root `.dockerignore`.
    pub has_dockerignore: bool,
    /// Files whose content hash came from the cache, unread.
    pub cache_hits: u64,
}

/// The `lstat` of each entry a survey visited, by context-relative path.
///
/// BuildKit's file sync sends a stat of every entry it syncs right after
/// the survey read them all: serving the survey's stats spares a second
/// `lstat` of each, and the stats sent are those the context digest was
/// computed from (a file changed in between is refused when BuildKit asks
/// for its contents, not sent under a digest that does not describe it).
/// It holds at most [`Snapshot::MAX_ENTRIES`] entries, so its memory is
/// bounded whatever the context size; entries past that are `lstat`ed
/// again.
#[derive(Debug, Default)]
pub struct Snapshot {
    stats: HashMap<Box<[u8]>, Stat>,
}

impl Snapshot {
    /// The most entries kept: about 8 MiB (a map entry and a path, some
    /// 150 bytes each); the memory of a build stays under 64 MiB.
    pub const MAX_ENTRIES: usize = 50_000;

    /// The stat the survey read for `rel`, if it kept one.
    pub fn get(&self, rel: &[u8]) -> Option<&Stat> {
        self.stats.get(rel)
    }

    fn keep(&mut self, rel: &[u8], stat: &Stat) {
        if self.stats.len() < Self::MAX_ENTRIES {
            self.stats.insert(rel.into(), *stat);
        }
    }
}

/// Walks the context without sending anything, to know its digest (a
/// label of the image, so needed before the upload starts) and which of
/// the build files it sends. Only files changed since the last survey of
/// this context are read ([`HashCache`]).
pub fn survey(ctx: &Context, options: &TarOptions) -> Result<Survey, TarError> {
    survey_with(ctx, options, HashCache::open(ctx.root(), ctx.dockerfile()))
}

/// [`survey`], keeping the stats it read for the file sync that follows.
pub fn survey_keeping_stats(
    ctx: &Context,
    options: &TarOptions,
) -> Result<(Survey, Snapshot), TarError> {
    let cache = HashCache::open(ctx.root(), ctx.dockerfile());
    let mut snapshot = Snapshot::default();
    let survey = survey_into(ctx, options, cache, Some(&mut snapshot))?;
    Ok((survey, snapshot))
}

/// [`survey`] with a given hash cache, saved afterwards.
pub fn survey_with(
    ctx: &Context,
    options: &TarOptions,
    cache: HashCache,
) -> Result<Survey, TarError> {
    survey_into(ctx, options, cache, None)
}

fn survey_into(
    ctx: &Context,
    options: &TarOptions,
    cache: HashCache,
    snapshot: Option<&mut Snapshot>,
) -> Result<Survey, TarError> {
    let mut sink = Observe {
        digest: DigestSink::new(),
        dockerfile: ctx.dockerfile_rel().map(<[u8]>::to_vec),
        has_dockerfile: false,
        has_dockerignore: false,
        cache,
        reading: None,
        snapshot,
    };
    let stats = survey_context(ctx, options, &mut sink)?;
    sink.end_file();
    tracing::debug!(
        hits = sink.cache.hits,
        entries = stats.entries,
        "context survey"
    );
    let cache_hits = sink.cache.hits;
    let Observe {
        digest,
        has_dockerfile,
        has_dockerignore,
        cache,
        ..
    } = sink;
    cache.save();
    Ok(Survey {
        digest: digest.finish(),
        entries: stats.entries,
        content_bytes: stats.content_bytes,
        has_dockerfile,
        has_dockerignore,
        cache_hits,
    })
}

struct Observe<'s> {
    digest: DigestSink,
    snapshot: Option<&'s mut Snapshot>,
    dockerfile: Option<Vec<u8>>,
    has_dockerfile: bool,
    has_dockerignore: bool,
    cache: HashCache,
    /// The file whose content is being read, to cache its hash.
    reading: Option<Stat>,
}

impl Observe<'_> {
    fn end_file(&mut self) {
        if let Some(st) = self.reading.take() {
            if let Some(hash) = self.digest.end_file() {
                self.cache.put(&st, hash);
            }
        }
    }
}

impl EntrySink for Observe<'_> {
    fn entry(&mut self, e: &ArchivedEntry<'_>) {
        self.end_file();
        if self.dockerfile.as_deref() == Some(e.rel) {
            self.has_dockerfile = true;
        }
        if e.rel == b".dockerignore" {
            self.has_dockerignore = true;
        }
        if let Some(snapshot) = self.snapshot.as_deref_mut() {
            snapshot.keep(e.rel, e.stat);
        }
        self.digest.entry(e);
    }
    fn content(&mut self, chunk: &[u8]) {
        self.digest.content(chunk);
    }
    fn known_content(&mut self, stat: &Stat) -> bool {
        match self.cache.get(stat) {
            Some(hash) => {
                self.digest.content_hash(&hash);
                true
            }
            None => {
                self.reading = Some(*stat);
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survey_reads_only_changed_files_and_digest_stays_exact() {
        use std::time::{Duration, SystemTime};
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("ctx");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join("Dockerfile"), "FROM scratch\nCOPY . /\n").unwrap();
        std::fs::write(root.join("a.txt"), "aaaa").unwrap();
        std::fs::write(root.join("b.txt"), "bbbb").unwrap();
        // Older than the racy window, so they are cached.
        let old = SystemTime::now() - Duration::from_secs(60);
        let age = |name: &str| {
            let f = std::fs::File::options()
                .write(true)
                .open(root.join(name))
                .unwrap();
            f.set_modified(old).unwrap();
        };
        for name in ["Dockerfile", "a.txt", "b.txt"] {
            age(name);
        }
        let ctx = crate::context::ContextSpec::new(&root).resolve().unwrap();
        let opts = TarOptions::default();
        let cache = || {
            // ctime is now: a cache "now" in the future makes it old.
            let now = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap();
            HashCache::at(dir.path().join("cache"), now.as_secs() as i64 + 10)
        };
        let streamed = || {
            let mut d = DigestSink::new();
            crate::context::tarball::write_context(&ctx, std::io::sink(), &opts, &mut d).unwrap();
            d.finish()
        };
        let first = survey_with(&ctx, &opts, cache()).unwrap();
        assert_eq!(first.cache_hits, 0);
        assert_eq!(first.digest, streamed());
        let second = survey_with(&ctx, &opts, cache()).unwrap();
        assert_eq!(second.cache_hits, 3);
        assert_eq!(second.digest, first.digest);
        // Same size, same mtime, other content: ctime tells.
        std::fs::write(root.join("a.txt"), "AAAA").unwrap();
        age("a.txt");
        let third = survey_with(&ctx, &opts, cache()).unwrap();
        assert_eq!(third.cache_hits, 2);
        assert_ne!(third.digest, first.digest);
        assert_eq!(third.digest, streamed());
    }
}
