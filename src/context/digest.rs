//! A content digest of a context: stable across checkouts and machines.
//!
//! It covers what the build can observe (paths, kinds, permission bits,
//! link targets, file contents) and nothing it cannot (mtimes, owners,
//! inode numbers), so two clones of the same commit hash the same.
//!
//! Each file's content enters as its own sha256, so a file whose hash is
//! known (see [`HashCache`](super::HashCache)) need not be read again.

use sha2::{Digest as _, Sha256};

use super::tarball::{ArchivedEntry, EntrySink};
use super::walk::FileKind;

/// Hashes entries and contents as the tar writer streams them.
#[derive(Default)]
pub struct DigestSink {
    hasher: Sha256,
    /// The content hash of the file being streamed, if any.
    file: Option<Sha256>,
}

impl DigestSink {
    /// A new, empty digest.
    pub fn new() -> DigestSink {
        DigestSink::default()
    }

    /// The content of the last entry, given as its sha256 instead of its
    /// bytes (exactly what streaming those bytes would have added).
    pub fn content_hash(&mut self, hash: &[u8; 32]) {
        self.file = None;
        self.hasher.update(hash);
    }

    /// The sha256 of the content streamed since the last entry, if any;
    /// the digest itself is updated as [`DigestSink::content_hash`] would.
    pub fn end_file(&mut self) -> Option<[u8; 32]> {
        let hash: [u8; 32] = self.file.take()?.finalize().into();
        self.hasher.update(hash);
        Some(hash)
    }

    /// The digest as `sha256:<hex>`.
    pub fn finish(mut self) -> String {
        self.end_file();
        let bytes = self.hasher.finalize();
        let mut out = String::with_capacity(7 + 64);
        out.push_str("sha256:");
        for b in bytes {
            out.push_str(&format!("{b:02x}"));
        }
        out
    }
}

impl EntrySink for DigestSink {
    fn entry(&mut self, e: &ArchivedEntry<'_>) {
        self.end_file();
        // Length-prefixed fields keep the encoding unambiguous.
        let kind = match e.kind {
            FileKind::File if e.hard_link => b'h',
            FileKind::File => b'f',
            FileKind::Dir => b'd',
            FileKind::Symlink => b'l',
            FileKind::Fifo => b'p',
            FileKind::CharDevice => b'c',
            FileKind::BlockDevice => b'b',
            FileKind::Socket => b's',
        };
        self.hasher.update(b"v2");
        self.hasher.update([kind]);
        self.hasher.update((e.rel.len() as u64).to_be_bytes());
        self.hasher.update(e.rel);
        self.hasher.update(e.mode.to_be_bytes());
        let link = e.link.unwrap_or_default();
        self.hasher.update((link.len() as u64).to_be_bytes());
        self.hasher.update(link);
        self.hasher.update(e.size.to_be_bytes());
    }

    fn content(&mut self, chunk: &[u8]) {
        self.file.get_or_insert_with(Sha256::new).update(chunk);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static STAT: crate::context::Stat = crate::context::Stat {
        mode: 0o100644,
        size: 0,
        mtime: 0,
        mtime_nsec: 0,
        ctime: 0,
        ctime_nsec: 0,
        uid: 0,
        gid: 0,
        dev: 0,
        ino: 0,
        nlink: 1,
        rdev: 0,
    };

    fn entry(rel: &[u8], size: u64) -> ArchivedEntry<'_> {
        ArchivedEntry {
            rel,
            kind: FileKind::File,
            mode: 0o644,
            link: None,
            hard_link: false,
            size,
            stat: &STAT,
        }
    }

    #[test]
    fn digest_same_from_bytes_or_known_hash() {
        let mut streamed = DigestSink::new();
        streamed.entry(&entry(b"a", 5));
        streamed.content(b"he");
        streamed.content(b"llo");
        streamed.entry(&entry(b"b", 0));
        let mut known = DigestSink::new();
        known.entry(&entry(b"a", 5));
        known.content_hash(&Sha256::digest(b"hello").into());
        known.entry(&entry(b"b", 0));
        assert_eq!(streamed.finish(), known.finish());
    }

    #[test]
    fn digest_content_boundaries_count() {
        // The same bytes split differently between two files differ.
        let mut one = DigestSink::new();
        one.entry(&entry(b"a", 2));
        one.content(b"ab");
        one.entry(&entry(b"b", 1));
        one.content(b"c");
        let mut two = DigestSink::new();
        two.entry(&entry(b"a", 2));
        two.content(b"abc");
        two.entry(&entry(b"b", 1));
        assert_ne!(one.finish(), two.finish());
    }
}
