//! A content digest of a context: stable across checkouts and machines.
//!
//! It covers what the build can observe (paths, kinds, permission bits,
//! link targets, file contents) and nothing it cannot (mtimes, owners,
//! inode numbers), so two clones of the same commit hash the same.

use sha2::{Digest as _, Sha256};

use super::tarball::{ArchivedEntry, EntrySink};
use super::walk::FileKind;

/// Hashes entries and contents as the tar writer streams them.
#[derive(Default)]
pub struct DigestSink {
    hasher: Sha256,
}

impl DigestSink {
    /// A new, empty digest.
    pub fn new() -> DigestSink {
        DigestSink::default()
    }

    /// The digest as `sha256:<hex>`.
    pub fn finish(self) -> String {
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
        self.hasher.update(chunk);
    }
}
