//! One layer, read once: its tar stream (plain or gzip) becomes a
//! compact index of entries (path, kind, size, mode, owner, link target,
//! whiteouts), never file contents, while its digests are computed.
//!
//! Content hashes, which only matter for files whose size another file
//! shares, are taken in this same pass when the layer is compressed or
//! comes from a stream (inflating or downloading it again costs several
//! times what SHA-256 over its files does, about 2 GB/s with SHA-NI);
//! for a plain layer in a file the index keeps each file's offset, and
//! [`hash_entries`] reads just the files whose sizes collide afterwards.

use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use sha2::{Digest, Sha256};

use super::paths::{PathId, PathTable, TableFull};
use super::tar::{clean_path, Archive, Kind, PathError, Stream, TarError};

/// The most entries (files, directories, links, whiteouts) all the layers
/// of one image may hold: the index stays a few tens of MB whatever
/// the archive holds.
pub const MAX_ENTRIES: usize = 1_000_000;

/// A SHA-256 digest.
pub type Sha = [u8; 32];

/// `sha256:<hex>`.
pub fn sha_string(d: &Sha) -> String {
    let mut s = String::with_capacity(71);
    s.push_str("sha256:");
    for b in d {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// `sha256:<hex>` → bytes.
pub fn parse_sha(s: &str) -> Option<Sha> {
    let hex = s.strip_prefix("sha256:")?;
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// What an entry of a layer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// A hard link to another path of the same layer.
    Hardlink,
    /// A device or FIFO.
    Special,
    /// A whiteout (`.wh.NAME`): the path is deleted from the layers below.
    Whiteout,
    /// An opaque directory (`.wh..wh..opq`): the directory's contents in
    /// the layers below are hidden.
    Opaque,
}

/// No link / no hash.
pub const NONE: u32 = u32::MAX;

/// One entry of a layer, 40 bytes.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// Its path (for a whiteout, the path deleted; for an opaque marker,
    /// the directory).
    pub path: PathId,
    /// What it is.
    pub kind: EntryKind,
    /// Permission and set-id bits.
    pub mode: u16,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Content bytes (regular files only).
    pub size: u64,
    /// A hard link's target path, or the index of a symlink's target in
    /// [`LayerIndex::symlinks`]; [`NONE`] otherwise.
    pub link: u32,
    /// Offset of the contents in the uncompressed layer.
    pub offset: u64,
    /// Index of the content hash in [`LayerIndex::hashes`], or [`NONE`].
    pub hash: u32,
}

/// A layer's index.
#[derive(Debug, Clone, Default)]
pub struct LayerIndex {
    /// The layer's paths (its own table until merged into the image's).
    pub table: PathTable,
    /// Entries in archive order.
    pub entries: Vec<Entry>,
    /// Symlink targets.
    pub symlinks: Vec<Box<[u8]>>,
    /// Content hashes taken.
    pub hashes: Vec<Sha>,
    /// SHA-256 of the uncompressed tar (the diff id).
    pub diff_id: Sha,
    /// Length of the uncompressed tar.
    pub size: u64,
    /// Digest and length of the blob as stored, when it is compressed.
    pub compressed: Option<(Sha, u64)>,
}

impl LayerIndex {
    /// The content hash of entry `i`, when taken.
    pub fn hash_of(&self, i: usize) -> Option<&Sha> {
        let h = self.entries.get(i)?.hash;
        (h != NONE).then(|| &self.hashes[h as usize])
    }

    /// Sum of the sizes of its regular files.
    pub fn file_bytes(&self) -> u64 {
        self.entries
            .iter()
            .filter(|e| e.kind == EntryKind::File)
            .map(|e| e.size)
            .sum()
    }
}

/// Why a layer cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// The tar stream is malformed or truncated.
    #[error(transparent)]
    Tar(#[from] TarError),
    /// An entry's path is refused.
    #[error("entry \"{path}\" at byte {offset} has {reason}: a layer never holds one (a hostile or corrupt archive)")]
    Path {
        /// The path, as a short excerpt.
        path: String,
        /// The header's offset.
        offset: u64,
        /// What is wrong.
        reason: PathError,
    },
    /// A whiteout deletes the root, or names nothing.
    #[error("entry \"{path}\" at byte {offset} is a whiteout of {what}: no image builder writes one (a hostile or corrupt archive)")]
    Whiteout {
        /// The path, as a short excerpt.
        path: String,
        /// The header's offset.
        offset: u64,
        /// `/` or the name.
        what: String,
    },
    /// More entries than the index holds.
    #[error("the image has more than {MAX_ENTRIES} entries or too many distinct paths; it is not read further")]
    TooManyEntries,
    /// The layer is compressed in a way this reader does not read.
    #[error("{0}")]
    Compression(String),
    /// The blob's digest is not the one its manifest or config names.
    #[error("its {what} is {actual}, not {expected}: the archive or registry gave other bytes than the manifest describes")]
    Digest {
        /// Which digest (`digest`, `diff id`).
        what: &'static str,
        /// What the manifest or config says.
        expected: String,
        /// What the bytes hash to.
        actual: String,
    },
}

impl From<TableFull> for LayerError {
    fn from(_: TableFull) -> LayerError {
        LayerError::TooManyEntries
    }
}

/// Counters shared by the readers of one image: progress and the entry
/// budget.
#[derive(Debug, Default)]
pub struct Shared {
    /// Bytes of blobs read so far (compressed where they are).
    pub bytes_read: AtomicU64,
    /// Entries indexed so far, against [`MAX_ENTRIES`].
    pub entries: AtomicUsize,
}

/// Counts the bytes read through it into [`Shared::bytes_read`] and,
/// optionally, digests them.
struct Counted<'a, R> {
    inner: R,
    shared: &'a Shared,
    digest: Option<Sha256>,
    len: u64,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(d) = &mut self.digest {
            d.update(&buf[..n]);
        }
        self.len += n as u64;
        self.shared
            .bytes_read
            .fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// How a layer's contents are hashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hashing {
    /// Every non-empty regular file, in this pass.
    All,
    /// None now: offsets are kept for [`hash_entries`].
    Later,
}

/// Reads one layer blob (a tar, plain or gzip-compressed) into an index.
/// `hashing` applies to a plain layer; a compressed one is always hashed
/// in this pass.
pub fn index_layer<R: Read>(
    blob: R,
    hashing: Hashing,
    shared: &Shared,
) -> Result<LayerIndex, LayerError> {
    let mut counted = Counted {
        inner: blob,
        shared,
        digest: None,
        len: 0,
    };
    let mut head = [0u8; 4];
    let mut got = 0;
    while got < head.len() {
        match counted.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(TarError::Io {
                    offset: got as u64,
                    source,
                }
                .into())
            }
        }
    }
    let head = &head[..got];
    if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Err(LayerError::Compression(
            "the layer is zstd-compressed, which this version does not read yet; save or push the image with gzip layers".into(),
        ));
    }
    if head.starts_with(&[0x1f, 0x8b]) {
        // The compressed stream's digest is taken below the decoder: the
        // head read so far, then every byte `counted` passes on.
        let mut compressed = Sha256::new();
        compressed.update(head);
        counted.digest = Some(compressed);
        let decoder =
            flate2::read::MultiGzDecoder::new(io::Cursor::new(head.to_vec()).chain(counted));
        let (mut index, Stream(decoder)) = read_tar(Stream(decoder), Hashing::All, shared)?;
        let (_, mut rest) = decoder.into_inner().into_inner();
        // Whatever follows the gzip members belongs to the blob too.
        io::copy(&mut rest, &mut io::sink()).map_err(|source| TarError::Io {
            offset: rest.len,
            source,
        })?;
        let digest = rest.digest.take().map(|d| d.finalize().into());
        index.compressed = digest.map(|d| (d, rest.len));
        Ok(index)
    } else {
        let stream = io::Cursor::new(head.to_vec()).chain(counted);
        Ok(read_tar(Stream(stream), hashing, shared)?.0)
    }
}

/// Where a whiteout points.
enum Marker {
    None,
    /// `.wh..wh..opq`: the parent directory is opaque.
    Opaque,
    /// `.wh.NAME`: NAME is deleted.
    Whiteout(usize),
    /// Other `.wh..wh.` names: aufs bookkeeping, not part of the tree.
    Meta,
}

fn marker(path: &[u8]) -> Marker {
    let start = path.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1);
    let name = &path[start..];
    if name == b".wh..wh..opq" {
        Marker::Opaque
    } else if name.starts_with(b".wh..wh.") {
        Marker::Meta
    } else if name.starts_with(b".wh.") {
        Marker::Whiteout(start)
    } else if path.windows(8).any(|w| w == b".wh..wh.") {
        // Inside an aufs bookkeeping directory (`.wh..wh.plnk/...`).
        Marker::Meta
    } else {
        Marker::None
    }
}

fn read_tar<R: super::tar::TarRead>(
    reader: R,
    hashing: Hashing,
    shared: &Shared,
) -> Result<(LayerIndex, R), LayerError> {
    let mut archive = Archive::new(reader, true);
    let mut index = LayerIndex::default();
    let excerpt = |p: &[u8]| crate::text::excerpt_bytes(p);
    while let Some(header) = archive.next_header()? {
        let offset = header.offset;
        let path = clean_path(&header.path).map_err(|reason| LayerError::Path {
            path: excerpt(&header.path),
            offset,
            reason,
        })?;
        let kind = match marker(&path) {
            Marker::Meta => {
                archive.skip_data(&header, None)?;
                continue;
            }
            Marker::Opaque => {
                if !path.contains(&b'/') {
                    return Err(LayerError::Whiteout {
                        path: excerpt(&header.path),
                        offset,
                        what: "/ (an opaque root)".into(),
                    });
                }
                EntryKind::Opaque
            }
            Marker::Whiteout(start) => {
                let name = &path[start + 4..];
                if name.is_empty() || name == b"." || name == b".." {
                    return Err(LayerError::Whiteout {
                        path: excerpt(&header.path),
                        offset,
                        what: format!("\"{}\"", excerpt(name)),
                    });
                }
                EntryKind::Whiteout
            }
            Marker::None => match header.kind {
                Kind::File => EntryKind::File,
                Kind::Dir => EntryKind::Dir,
                Kind::Symlink => EntryKind::Symlink,
                Kind::Hardlink => EntryKind::Hardlink,
                Kind::Special => EntryKind::Special,
            },
        };
        let node_path: &[u8] = match kind {
            EntryKind::Opaque => &path[..path.iter().rposition(|&b| b == b'/').unwrap_or(0)],
            EntryKind::Whiteout => {
                // parent/.wh.NAME → parent/NAME
                let start = path.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1);
                let mut p = path[..start].to_vec();
                p.extend_from_slice(&path[start + 4..]);
                let id = index.table.intern(&p)?;
                push(&mut index, shared, entry(id, kind, &header))?;
                archive.skip_data(&header, None)?;
                continue;
            }
            _ => &path,
        };
        if node_path.is_empty() && kind != EntryKind::Dir {
            // `./` as a file, or an entry named like the root.
            return Err(LayerError::Path {
                path: excerpt(&header.path),
                offset,
                reason: PathError::Empty,
            });
        }
        let id = index.table.intern(node_path)?;
        let mut e = entry(id, kind, &header);
        match kind {
            EntryKind::Hardlink => {
                let target = clean_path(&header.link).map_err(|reason| LayerError::Path {
                    path: format!("{} -> {}", excerpt(&header.path), excerpt(&header.link)),
                    offset,
                    reason,
                })?;
                if target.is_empty() {
                    return Err(LayerError::Path {
                        path: format!("{} -> {}", excerpt(&header.path), excerpt(&header.link)),
                        offset,
                        reason: PathError::Empty,
                    });
                }
                e.link = index.table.intern(&target)?;
            }
            EntryKind::Symlink => {
                e.link = index.symlinks.len() as u32;
                index.symlinks.push(header.link.clone().into_boxed_slice());
            }
            _ => {}
        }
        if kind == EntryKind::File && header.size > 0 && hashing == Hashing::All {
            let mut h = Sha256::new();
            archive.skip_data(&header, Some(&mut h))?;
            e.hash = index.hashes.len() as u32;
            index.hashes.push(h.finalize().into());
        } else {
            archive.skip_data(&header, None)?;
        }
        push(&mut index, shared, e)?;
    }
    let (diff_id, size, reader) = archive.finish()?;
    index.diff_id = diff_id;
    index.size = size;
    Ok((index, reader))
}

fn entry(path: PathId, kind: EntryKind, h: &super::tar::Header) -> Entry {
    Entry {
        path,
        kind,
        mode: h.mode as u16,
        uid: h.uid,
        gid: h.gid,
        size: if kind == EntryKind::File { h.size } else { 0 },
        link: NONE,
        offset: h.offset,
        hash: NONE,
    }
}

fn push(index: &mut LayerIndex, shared: &Shared, e: Entry) -> Result<(), LayerError> {
    if shared.entries.fetch_add(1, Ordering::Relaxed) >= MAX_ENTRIES {
        return Err(LayerError::TooManyEntries);
    }
    index.entries.push(e);
    Ok(())
}

/// Hashes the contents of `entries` (indices into `layer.entries`) of a
/// plain layer whose tar starts at `base` in `file`, reading only those
/// files' bytes.
pub fn hash_entries(
    file: &std::fs::File,
    base: u64,
    layer: &mut LayerIndex,
    entries: &[usize],
) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; 1 << 20];
    for &i in entries {
        let e = layer.entries[i];
        if e.hash != NONE || e.kind != EntryKind::File || e.size == 0 {
            continue;
        }
        let mut h = Sha256::new();
        let mut pos = base + e.offset;
        let mut left = e.size;
        while left > 0 {
            let want = (buf.len() as u64).min(left) as usize;
            let n = file.read_at(&mut buf[..want], pos)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the file is shorter than when it was indexed",
                ));
            }
            h.update(&buf[..n]);
            pos += n as u64;
            left -= n as u64;
        }
        layer.entries[i].hash = layer.hashes.len() as u32;
        layer.hashes.push(h.finalize().into());
    }
    Ok(())
}
