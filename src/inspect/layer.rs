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

/// Tar bytes for tests: ustar headers written by hand, so that hostile
/// archives (bad paths, lying sizes) can be made too.
#[cfg(test)]
pub(crate) mod testing {
    /// A ustar header.
    pub fn header(name: &[u8], typeflag: u8, size: u64, link: &[u8]) -> [u8; 512] {
        let mut h = [0u8; 512];
        h[..name.len().min(100)].copy_from_slice(&name[..name.len().min(100)]);
        h[100..108].copy_from_slice(b"0000644\0");
        h[108..116].copy_from_slice(b"0000000\0");
        h[116..124].copy_from_slice(b"0000000\0");
        h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
        h[136..148].copy_from_slice(b"00000000000\0");
        h[156] = typeflag;
        h[157..157 + link.len().min(100)].copy_from_slice(&link[..link.len().min(100)]);
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        h
    }

    /// An entry: name, type, contents, link target.
    pub type E<'a> = (&'a str, u8, &'a [u8], &'a str);

    /// A whole tar, end blocks included.
    pub fn tar(entries: &[E<'_>]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, t, data, link) in entries {
            out.extend_from_slice(&header(
                name.as_bytes(),
                *t,
                data.len() as u64,
                link.as_bytes(),
            ));
            out.extend_from_slice(data);
            out.resize(out.len().next_multiple_of(512), 0);
        }
        out.extend_from_slice(&[0u8; 1024]);
        out
    }

    /// A PAX extended header record set for `path`.
    pub fn pax(records: &[(&str, &str)]) -> Vec<u8> {
        let mut data = Vec::new();
        for (k, v) in records {
            let body = format!(" {k}={v}\n");
            let mut len = body.len() + 1;
            while format!("{len}{body}").len() != len {
                len += 1;
            }
            data.extend_from_slice(format!("{len}{body}").as_bytes());
        }
        data
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    fn index(bytes: &[u8]) -> Result<LayerIndex, LayerError> {
        index_layer(bytes, Hashing::All, &Shared::default())
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn entries_whiteouts_and_digests() {
        let t = tar(&[
            ("./", b'5', b"", ""),
            ("app/", b'5', b"", ""),
            ("app/a", b'0', b"hello", ""),
            ("app/l", b'2', b"", "a"),
            ("app/h", b'1', b"", "app/a"),
            ("app/.wh.old", b'0', b"", ""),
            ("etc/.wh..wh..opq", b'0', b"", ""),
            ("x/.wh..wh.plnk/123", b'0', b"zz", ""),
        ]);
        let l = index(&t).unwrap();
        let kinds: Vec<(String, EntryKind, u64)> = l
            .entries
            .iter()
            .map(|e| (l.table.display(e.path), e.kind, e.size))
            .collect();
        use EntryKind::*;
        assert_eq!(
            kinds,
            vec![
                ("/".into(), Dir, 0),
                ("/app".into(), Dir, 0),
                ("/app/a".into(), File, 5),
                ("/app/l".into(), Symlink, 0),
                ("/app/h".into(), Hardlink, 0),
                ("/app/old".into(), Whiteout, 0),
                ("/etc".into(), Opaque, 0),
            ]
        );
        use sha2::{Digest, Sha256};
        let diff: Sha = Sha256::digest(&t).into();
        assert_eq!(l.diff_id, diff);
        assert_eq!(l.size, t.len() as u64);
        assert!(l.compressed.is_none());
        assert_eq!(l.hash_of(2), Some(&Sha256::digest(b"hello").into()));
        assert_eq!(&*l.symlinks[0], b"a");
        // The same layer gzip-compressed: both digests.
        let gz = gzip(&t);
        let l2 = index(&gz).unwrap();
        assert_eq!(l2.diff_id, diff);
        assert_eq!(
            l2.compressed,
            Some((Sha256::digest(&gz).into(), gz.len() as u64))
        );
        assert_eq!(l2.entries.len(), l.entries.len());
    }

    #[test]
    fn hostile_paths_are_refused_with_the_entry_named() {
        for (name, t, want) in [
            ("../etc/passwd", b'0', "`..`"),
            ("a/../../x", b'0', "`..`"),
            ("/etc/passwd", b'0', "absolute"),
            (".wh..wh..opq", b'0', "opaque root"),
            ("./.wh..wh..opq", b'0', "opaque root"),
            ("a/.wh.", b'0', "whiteout of \"\""),
            ("a/.wh...", b'0', "whiteout of \"..\""),
            ("./", b'0', "empty path"),
        ] {
            let e = index(&tar(&[(name, t, b"", "")])).unwrap_err().to_string();
            assert!(e.contains(want), "{name}: {e}");
        }
        let e = index(&tar(&[("a", b'1', b"", "../../etc/shadow")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`..`"), "{e}");
    }

    #[test]
    fn broken_archives_are_clear_errors() {
        let t = tar(&[("a", b'0', &[7u8; 2000], "")]);
        // Cut inside the contents.
        let e = index(&t[..1500]).unwrap_err().to_string();
        assert!(e.contains("truncated") && e.contains("\"a\""), "{e}");
        // A size of 8 GiB that the stream does not hold: no allocation.
        let mut huge = header(b"big", b'0', 0, b"").to_vec();
        huge[124..136].copy_from_slice(b"77777777777\0");
        huge[148..156].copy_from_slice(b"        ");
        let sum: u32 = huge.iter().map(|&b| u32::from(b)).sum();
        huge[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        huge.extend_from_slice(&[1u8; 4096]);
        let e = index(&huge).unwrap_err().to_string();
        assert!(e.contains("truncated"), "{e}");
        // A bad checksum.
        let mut bad = t.clone();
        bad[0] = b'b';
        let e = index(&bad).unwrap_err().to_string();
        assert!(e.contains("checksum"), "{e}");
        // Garbage after a gzip header.
        let e = index(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3])
            .unwrap_err()
            .to_string();
        assert!(!e.is_empty());
        // zstd is named.
        let e = index(&[0x28, 0xb5, 0x2f, 0xfd, 0]).unwrap_err().to_string();
        assert!(e.contains("zstd"), "{e}");
    }

    #[test]
    fn pax_and_gnu_extensions_are_bounded() {
        // A PAX path and size override.
        let p = pax(&[("path", "long/name/from/pax"), ("size", "3")]);
        let mut t = Vec::new();
        t.extend_from_slice(&header(b"pax", b'x', p.len() as u64, b""));
        t.extend_from_slice(&p);
        t.resize(t.len().next_multiple_of(512), 0);
        t.extend_from_slice(&header(b"short", b'0', 3, b""));
        t.extend_from_slice(b"abc");
        t.resize(t.len().next_multiple_of(512), 0);
        t.extend_from_slice(&[0u8; 1024]);
        let l = index(&t).unwrap();
        assert_eq!(l.table.display(l.entries[0].path), "/long/name/from/pax");
        assert_eq!(l.entries[0].size, 3);
        // A PAX header larger than the cap is refused before it is read.
        let mut bomb = header(b"pax", b'x', MAX_PAX_TEST + 1, b"").to_vec();
        bomb.extend_from_slice(&[b'1'; 4096]);
        let e = index(&bomb).unwrap_err().to_string();
        assert!(e.contains("PAX header"), "{e}");
        // Many PAX headers in a row: each replaces the last, memory flat.
        let mut many = Vec::new();
        let p = pax(&[("path", "x")]);
        for _ in 0..10_000 {
            many.extend_from_slice(&header(b"pax", b'x', p.len() as u64, b""));
            many.extend_from_slice(&p);
            many.resize(many.len().next_multiple_of(512), 0);
        }
        many.extend_from_slice(&header(b"f", b'0', 0, b""));
        many.extend_from_slice(&[0u8; 1024]);
        let l = index(&many).unwrap();
        assert_eq!(l.entries.len(), 1);
        // A GNU long name over PATH_MAX.
        let mut long = header(b"././@LongLink", b'L', 5000, b"").to_vec();
        long.extend_from_slice(&[b'a'; 5120]);
        let e = index(&long).unwrap_err().to_string();
        assert!(e.contains("long name"), "{e}");
    }

    const MAX_PAX_TEST: u64 = super::super::tar::MAX_PAX;

    #[test]
    fn the_entry_budget_stops_millions_of_entries() {
        let shared = Shared::default();
        shared.entries.store(MAX_ENTRIES - 1, Ordering::Relaxed);
        let t = tar(&[("a", b'0', b"", ""), ("b", b'0', b"", "")]);
        let e = index_layer(&t[..], Hashing::All, &shared).unwrap_err();
        assert!(matches!(e, LayerError::TooManyEntries), "{e}");
    }

    #[test]
    fn later_hashing_reads_only_the_named_entries() {
        let t = tar(&[("a", b'0', b"one", ""), ("b", b'0', b"two", "")]);
        let mut l = index_layer(&t[..], Hashing::Later, &Shared::default()).unwrap();
        assert!(l.hash_of(0).is_none());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x");
        let mut bytes = vec![9u8; 100];
        bytes.extend_from_slice(&t);
        std::fs::write(&path, &bytes).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        hash_entries(&file, 100, &mut l, &[1]).unwrap();
        use sha2::{Digest, Sha256};
        assert!(l.hash_of(0).is_none());
        assert_eq!(l.hash_of(1), Some(&Sha256::digest(b"two").into()));
    }
}
