//! Streaming a context as a tar archive, the way `docker build` uploads it.
//!
//! Headers follow moby/go-archive: ustar with PAX extended records where a
//! field does not fit (long or non-ASCII names and link targets, files of
//! 8 GiB and more), uid/gid 0, empty user and group names, mtime truncated
//! to seconds, hard links stored as links to the first name sent. Contents
//! are copied through a fixed buffer, so memory stays flat whatever the
//! context size; a file that changes size while being read is an error,
//! never a corrupt archive.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::walk::{Entry, FileKind, Stat, WalkError};
use super::Context;

const BLOCK: usize = 512;
/// Largest size the 11-digit octal ustar field holds.
const MAX_OCTAL_SIZE: u64 = 0o77777777777;

/// Options for [`write_context`].
#[derive(Debug, Clone, Default)]
pub struct TarOptions {
    /// Clamp every mtime to at most this (Unix seconds), for reproducible
    /// archives (`--reproducible`, `SOURCE_DATE_EPOCH`).
    pub clamp_mtime: Option<i64>,
    /// Files never archived, by base name and `(device, inode)`: the
    /// archive being written and its temporary file when they lie inside
    /// the context (as GNU tar skips its own archive), so a run never
    /// archives itself. Only entries of that name are `lstat`ed.
    pub skip_files: Vec<SkipFile>,
}

/// A file [`write_context`] leaves out; see [`TarOptions::skip_files`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkipFile {
    /// Base name, the only thing compared before the `lstat`.
    pub name: Vec<u8>,
    /// Device of the file, from its `stat`.
    pub dev: u64,
    /// Inode of the file, from its `stat`.
    pub ino: u64,
}

/// `SOURCE_DATE_EPOCH` (reproducible-builds.org): the one reading of it for
/// every command, so the archive's clamped mtimes and the image's
/// `created` label agree. Unset or empty is `None`; anything but a number
/// of seconds is an error, not silently a clock time.
pub fn source_date_epoch() -> Result<Option<i64>, SourceDateEpochError> {
    parse_source_date_epoch(std::env::var("SOURCE_DATE_EPOCH").ok().as_deref())
}

fn parse_source_date_epoch(value: Option<&str>) -> Result<Option<i64>, SourceDateEpochError> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| SourceDateEpochError {
            value: crate::text::excerpt(v),
        }),
    }
}

/// `SOURCE_DATE_EPOCH` is set to something other than a number of seconds.
#[derive(Debug, thiserror::Error)]
#[error("SOURCE_DATE_EPOCH={value} is not a number of seconds since 1970; set it to one (e.g. `$(git log -1 --format=%ct)`) or unset it")]
pub struct SourceDateEpochError {
    value: String,
}

/// Errors while writing a context archive.
#[derive(Debug, thiserror::Error)]
pub enum TarError {
    /// Walking the context failed.
    #[error(transparent)]
    Walk(#[from] WalkError),
    /// A file the walk listed could not be opened or read.
    #[error("cannot read {}: {source}. Docker would fail on it too: make it readable or exclude it in the ignore file", crate::text::show_path(.path))]
    Read {
        /// The file, as on disk.
        path: PathBuf,
        /// Why it could not be read.
        source: io::Error,
    },
    /// A file's size differs from its `stat` once read to the end.
    #[error("{} changed size while it was being archived (expected {expected} bytes, {found}); stop whatever is writing it and run again", crate::text::show_path(.path))]
    Changed {
        /// The file, as on disk.
        path: PathBuf,
        /// Size from the walk's `stat`.
        expected: u64,
        /// What reading found instead, in words ("it grew"...).
        found: String,
    },
    /// The output refused a write.
    #[error("writing the archive failed: {0}")]
    Write(#[source] io::Error),
}

/// Totals of a written archive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TarStats {
    /// Entries written (directories included).
    pub entries: u64,
    /// Bytes of file contents.
    pub content_bytes: u64,
    /// Bytes of the archive (before compression).
    pub archive_bytes: u64,
}

/// Receives every entry as it is archived, with its content; used to hash
/// the context in the same pass.
pub trait EntrySink {
    /// Called once per entry before its content.
    fn entry(&mut self, entry: &ArchivedEntry<'_>);
    /// Called with each chunk of a regular file's content, in order.
    fn content(&mut self, chunk: &[u8]);
    /// In [`survey_context`] only, before a regular file's content is
    /// read: true when the sink knows that content already (from `stat`),
    /// and the file is then not read.
    fn known_content(&mut self, _stat: &Stat) -> bool {
        false
    }
}

/// What a sink sees of an entry.
#[derive(Debug)]
pub struct ArchivedEntry<'a> {
    /// Path relative to the context root, `/`-separated, as in the archive.
    pub rel: &'a [u8],
    /// File, directory or symlink.
    pub kind: FileKind,
    /// Permission bits with setuid/setgid/sticky.
    pub mode: u32,
    /// Symlink target, or the first name of a hard link.
    pub link: Option<&'a [u8]>,
    /// Whether this is a hard link to an earlier entry.
    pub hard_link: bool,
    /// Content bytes (0 for anything but a regular file's first name).
    pub size: u64,
    /// The entry's `lstat` (or `fstat` of the file opened) as archived.
    pub stat: &'a Stat,
}

impl EntrySink for () {
    fn entry(&mut self, _: &ArchivedEntry<'_>) {}
    fn content(&mut self, _: &[u8]) {}
}

/// Writes the context as a tar stream to `out` and returns totals.
///
/// The archive goes out in writes of [`OUT_BUFFER`] bytes (the last one
/// shorter), so `out` needs no buffering of its own.
pub fn write_context<W: Write>(
    ctx: &Context,
    out: W,
    options: &TarOptions,
    sink: &mut dyn EntrySink,
) -> Result<TarStats, TarError> {
    write_context_with_extra(ctx, out, options, sink, &[])
}

/// A file appended after the context's own entries (the Dockerfile and
/// `.dockerignore` the classic builder's upload adds), owned by root.
#[derive(Debug, Clone)]
pub struct ExtraEntry {
    /// Name in the archive, relative to its root.
    pub name: String,
    /// Permission bits.
    pub mode: u32,
    /// The file's whole content.
    pub content: Vec<u8>,
}

/// [`write_context`], then `extra` before the end of the archive, with the
/// same header writer. Appended entries carry the current time (clamped
/// as the context's mtimes are), as the docker CLI's do; `sink` sees only
/// the context's entries, so the context digest does not change.
pub fn write_context_with_extra<W: Write>(
    ctx: &Context,
    out: W,
    options: &TarOptions,
    sink: &mut dyn EntrySink,
    extra: &[ExtraEntry],
) -> Result<TarStats, TarError> {
    let mut writer = TarWriter::new(out);
    let mut links: HashMap<(u64, u64), Vec<u8>> = HashMap::new();
    ctx.walk::<TarError, _>(|entry| {
        if entry.kind == FileKind::File && is_skipped(entry, &options.skip_files) {
            tracing::debug!(
                "not archiving {}: it is the output",
                crate::text::show_bytes(entry.rel)
            );
            return Ok(());
        }
        writer.append(entry, options, &mut links, sink)
    })?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let mtime = options.clamp_mtime.map_or(now, |c| now.min(c.max(0)));
    for e in extra {
        writer.write_header(&HeaderFields {
            name: e.name.as_bytes().to_vec(),
            mode: e.mode,
            size: e.content.len() as u64,
            mtime,
            typeflag: b'0',
            link: Vec::new(),
            dev: None,
        })?;
        writer.write(&e.content)?;
        let pad = (BLOCK - e.content.len() % BLOCK) % BLOCK;
        writer.write(&[0u8; BLOCK][..pad])?;
        writer.stats.entries += 1;
        writer.stats.content_bytes += e.content.len() as u64;
    }
    writer.finish()
}

/// Gzip on a second thread: the walk and file reads run on the caller's
/// while the other compresses, as `tar | gzip` does with two processes.
/// The one gzip path, for `context -o` and the classic builder's upload.
pub struct Gzip {
    tx: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    buf: Vec<u8>,
    worker: Option<std::thread::JoinHandle<io::Result<()>>>,
}

const GZIP_CHUNK: usize = 256 * 1024;

impl Gzip {
    /// Compresses into `out` at `level` (1 fastest .. 9 smallest).
    pub fn new<W: Write + Send + 'static>(out: W, level: u32) -> Gzip {
        // A few chunks in flight keep both threads busy; memory stays flat.
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
        let worker = std::thread::spawn(move || -> io::Result<()> {
            let mut gz = flate2::write::GzEncoder::new(out, flate2::Compression::new(level));
            for chunk in rx {
                gz.write_all(&chunk)?;
            }
            gz.finish()?.flush()
        });
        Gzip {
            tx: Some(tx),
            buf: Vec::with_capacity(GZIP_CHUNK),
            worker: Some(worker),
        }
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(GZIP_CHUNK));
        let sent = self.tx.as_ref().map(|tx| tx.send(chunk));
        match sent {
            Some(Ok(())) => Ok(()),
            // The compressor stopped: its own error is reported by finish.
            // Not a broken pipe, which would pass for a closed output.
            _ => Err(io::Error::other("the compressor stopped")),
        }
    }

    /// Flushes, waits for the compressor and returns its error (the
    /// output's, such as a closed pipe) first, if any.
    pub fn finish(mut self) -> io::Result<()> {
        let sent = self.send();
        self.tx = None;
        let worker = self.worker.take();
        let joined = match worker {
            Some(w) => w
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the compressor panicked"))),
            None => Ok(()),
        };
        joined.and(sent)
    }
}

impl Write for Gzip {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= GZIP_CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        // Chunks go out as they fill; finish sends the rest.
        Ok(())
    }
}

/// Walks the context as [`write_context`] does, writing no archive, and
/// reads no file whose content `sink` knows ([`EntrySink::known_content`]).
pub fn survey_context(
    ctx: &Context,
    options: &TarOptions,
    sink: &mut dyn EntrySink,
) -> Result<TarStats, TarError> {
    let mut writer = TarWriter::new(io::sink());
    writer.survey = true;
    let mut links: HashMap<(u64, u64), Vec<u8>> = HashMap::new();
    ctx.walk::<TarError, _>(|entry| {
        if entry.kind == FileKind::File && is_skipped(entry, &options.skip_files) {
            return Ok(());
        }
        writer.append(entry, options, &mut links, sink)
    })?;
    writer.finish()
}

/// Opens a file the survey `lstat`ed, never through a link or a special
/// file swapped in since, and only if it is still the file stat'ed.
fn read_surveyed(entry: &Entry<'_>, meta: &Stat) -> Result<std::fs::File, TarError> {
    let changed = || TarError::Changed {
        path: entry.path.to_path_buf(),
        expected: meta.size,
        found: "another file took its place".into(),
    };
    let Some((file, now)) = entry.open_regular() else {
        // Still the same regular file, but unreadable: the error says why
        // (as when archiving); anything else took its place.
        let same = entry.lstat().is_ok_and(|st| {
            (st.dev, st.ino) == (meta.dev, meta.ino) && st.mode & 0o170000 == 0o100000
        });
        if !same {
            return Err(changed());
        }
        return entry.open().map_err(|source| TarError::Read {
            path: entry.path.to_path_buf(),
            source,
        });
    };
    if (now.dev, now.ino, now.size) != (meta.dev, meta.ino, meta.size) {
        return Err(changed());
    }
    Ok(file)
}

/// Whether `entry` is one of `skip` (its name first: a stat only then).
fn is_skipped(entry: &Entry<'_>, skip: &[SkipFile]) -> bool {
    let name = match entry.rel.iter().rposition(|&b| b == b'/') {
        Some(p) => &entry.rel[p + 1..],
        None => entry.rel,
    };
    skip.iter().any(|s| {
        s.name == name
            && entry
                .lstat()
                .is_ok_and(|st| st.dev == s.dev && st.ino == s.ino)
    })
}

/// Size of the archive buffer. Headers are built and file contents read
/// straight into it, so each byte is copied once on its way out; small
/// enough to stay in cache (with 256 KiB the kernel's copy into the buffer
/// was half the time of a whole-monorepo archive).
pub const OUT_BUFFER: usize = 64 * 1024;

struct TarWriter<W: Write> {
    out: W,
    buf: Box<[u8]>,
    /// Bytes of `buf` filled.
    len: usize,
    stats: TarStats,
    /// The archive is discarded ([`survey_context`]): known contents are
    /// not read.
    survey: bool,
}

impl<W: Write> TarWriter<W> {
    fn new(out: W) -> Self {
        TarWriter::with_buffer(out, OUT_BUFFER)
    }

    fn with_buffer(out: W, size: usize) -> Self {
        TarWriter {
            out,
            buf: vec![0u8; size.max(BLOCK)].into_boxed_slice(),
            len: 0,
            stats: TarStats::default(),
            survey: false,
        }
    }

    fn flush_buf(&mut self) -> Result<(), TarError> {
        if self.len > 0 {
            self.out
                .write_all(&self.buf[..self.len])
                .map_err(TarError::Write)?;
            self.len = 0;
        }
        Ok(())
    }

    fn write(&mut self, mut data: &[u8]) -> Result<(), TarError> {
        self.stats.archive_bytes += data.len() as u64;
        while !data.is_empty() {
            if self.len == self.buf.len() {
                self.flush_buf()?;
            }
            let n = data.len().min(self.buf.len() - self.len);
            self.buf[self.len..self.len + n].copy_from_slice(&data[..n]);
            self.len += n;
            data = &data[n..];
        }
        Ok(())
    }

    fn append(
        &mut self,
        entry: &Entry<'_>,
        options: &TarOptions,
        links: &mut HashMap<(u64, u64), Vec<u8>>,
        sink: &mut dyn EntrySink,
    ) -> Result<(), TarError> {
        let read_err = |source| TarError::Read {
            path: entry.path.to_path_buf(),
            source,
        };
        // A regular file is opened first and `fstat`ed (one name lookup, not
        // two); anything else, or a file that will not open, is `lstat`ed.
        let mut opened = None;
        let meta = match (entry.kind, entry.metadata) {
            // A survey opens only the files it reads (one `lstat` each,
            // not open, `fstat`, close); see `read_surveyed`.
            (FileKind::File, None) if self.survey => entry.lstat().map_err(read_err)?,
            (FileKind::File, None) => match entry.open_regular() {
                Some((file, stat)) => {
                    opened = Some(file);
                    stat
                }
                None => entry.lstat().map_err(read_err)?,
            },
            _ => entry.lstat().map_err(read_err)?,
        };
        let mut header = HeaderFields {
            name: entry.rel.to_vec(),
            mode: meta.mode & 0o7777,
            size: 0,
            mtime: meta.mtime,
            typeflag: b'0',
            link: Vec::new(),
            dev: None,
        };
        if let Some(clamp) = options.clamp_mtime {
            header.mtime = header.mtime.min(clamp);
        }
        let mut hard_link = false;
        match entry.kind {
            FileKind::Dir => {
                header.typeflag = b'5';
                header.name.push(b'/');
            }
            FileKind::Symlink => {
                header.typeflag = b'2';
                header.link = entry.read_link().map_err(read_err)?;
            }
            FileKind::Fifo => header.typeflag = b'6',
            FileKind::CharDevice | FileKind::BlockDevice => {
                header.typeflag = if entry.kind == FileKind::CharDevice {
                    b'3'
                } else {
                    b'4'
                };
                header.dev = Some((libc::major(meta.rdev) as u64, libc::minor(meta.rdev) as u64));
            }
            // The walk never hands sockets over; Docker skips them.
            FileKind::Socket => return Ok(()),
            FileKind::File => {
                let key = (meta.dev, meta.ino);
                match links.get(&key) {
                    Some(first) if meta.nlink > 1 => {
                        header.typeflag = b'1';
                        header.link = first.clone();
                        hard_link = true;
                    }
                    _ => {
                        if meta.nlink > 1 {
                            links.insert(key, entry.rel.to_vec());
                        }
                        header.size = meta.size;
                    }
                }
            }
        }
        sink.entry(&ArchivedEntry {
            rel: entry.rel,
            kind: entry.kind,
            mode: header.mode,
            link: (!header.link.is_empty()).then_some(header.link.as_slice()),
            hard_link,
            size: header.size,
            stat: &meta,
        });
        if header.typeflag == b'0' && header.size > 0 && self.survey && sink.known_content(&meta) {
            self.stats.content_bytes += header.size;
            self.stats.entries += 1;
            return Ok(());
        }
        if header.typeflag == b'0' && header.size > 0 {
            // Docker opens a file only when it has contents (moby/go-archive
            // checks the size; BuildKit's sender sends nothing for a file it
            // cannot open), so an unreadable empty file is archived, not an
            // error. The others are opened before the header is written, so
            // an unreadable file fails cleanly without leaving a half entry.
            let file = match opened {
                Some(file) => file,
                None if self.survey => read_surveyed(entry, &meta)?,
                None => entry.open().map_err(read_err)?,
            };
            self.write_header(&header)?;
            self.copy_contents(file, entry.path, header.size, sink)?;
        } else {
            self.write_header(&header)?;
        }
        self.stats.entries += 1;
        Ok(())
    }

    fn copy_contents(
        &mut self,
        mut file: impl Read,
        path: &Path,
        size: u64,
        sink: &mut dyn EntrySink,
    ) -> Result<(), TarError> {
        // Each read asks for one byte more than is left: a file that grew
        // shows it in the same call, and a short read that ends exactly at
        // the size is the end of the file (regular files read short only
        // there), so a small file takes one `read`, not a second one that
        // returns 0. A tail that arrives later than that is not sent, as
        // Docker sends exactly the size it stat'ed.
        let mut remaining = size;
        let mut at_end = false;
        let whole = usize::try_from(size.saturating_add(1)).unwrap_or(usize::MAX);
        if whole > self.buf.len() - self.len {
            // Start at the front of the buffer: fewer, larger reads.
            self.flush_buf()?;
        }
        while remaining > 0 {
            if self.len == self.buf.len() {
                self.flush_buf()?;
            }
            let want = (self.buf.len() - self.len)
                .min(usize::try_from(remaining.saturating_add(1)).unwrap_or(usize::MAX));
            let space = &mut self.buf[self.len..self.len + want];
            let n = match file.read(space) {
                Ok(0) => {
                    return Err(TarError::Changed {
                        path: path.to_path_buf(),
                        expected: size,
                        found: format!("only {} could be read", size - remaining),
                    })
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(TarError::Read {
                        path: path.to_path_buf(),
                        source,
                    })
                }
            };
            if n as u64 > remaining {
                return Err(TarError::Changed {
                    path: path.to_path_buf(),
                    expected: size,
                    found: "it grew".into(),
                });
            }
            sink.content(&self.buf[self.len..self.len + n]);
            self.len += n;
            self.stats.archive_bytes += n as u64;
            remaining -= n as u64;
            at_end = remaining == 0 && n < want;
        }
        if !at_end {
            expect_end(&mut file, path, size)?;
        }
        self.stats.content_bytes += size;
        let pad = (BLOCK - (size % BLOCK as u64) as usize) % BLOCK;
        self.write(&[0u8; BLOCK][..pad])
    }

    fn write_header(&mut self, h: &HeaderFields) -> Result<(), TarError> {
        let mut pax: Vec<(&str, Vec<u8>)> = Vec::new();
        let (prefix, name) = match split_ustar_name(&h.name) {
            Some(split) => split,
            None => {
                pax.push(("path", h.name.clone()));
                (&[][..], truncated(&h.name, 100))
            }
        };
        let link: &[u8] = if h.link.len() > 100 || !h.link.is_ascii() {
            pax.push(("linkpath", h.link.clone()));
            truncated(&h.link, 100)
        } else {
            &h.link
        };
        if h.size > MAX_OCTAL_SIZE {
            pax.push(("size", h.size.to_string().into_bytes()));
        }
        if h.mtime < 0 || h.mtime > MAX_OCTAL_SIZE as i64 {
            pax.push(("mtime", h.mtime.to_string().into_bytes()));
        }
        if !pax.is_empty() {
            let records = pax_records(&pax);
            let mut pax_name = b"PaxHeaders.0/".to_vec();
            pax_name.extend_from_slice(truncated(name, 80));
            let block = ustar_block(
                &[],
                &pax_name,
                0o644,
                records.len() as u64,
                h.mtime.clamp(0, MAX_OCTAL_SIZE as i64),
                b'x',
                &[],
                None,
            );
            self.write(&block)?;
            self.write(&records)?;
            let pad = (BLOCK - records.len() % BLOCK) % BLOCK;
            self.write(&[0u8; BLOCK][..pad])?;
        }
        let block = ustar_block(
            prefix,
            name,
            h.mode,
            h.size,
            h.mtime.clamp(0, MAX_OCTAL_SIZE as i64),
            h.typeflag,
            link,
            h.dev,
        );
        self.write(&block)
    }

    fn finish(mut self) -> Result<TarStats, TarError> {
        self.write(&[0u8; BLOCK * 2])?;
        self.flush_buf()?;
        self.out.flush().map_err(TarError::Write)?;
        Ok(self.stats)
    }
}

struct HeaderFields {
    name: Vec<u8>,
    mode: u32,
    size: u64,
    mtime: i64,
    typeflag: u8,
    link: Vec<u8>,
    dev: Option<(u64, u64)>,
}

fn truncated(s: &[u8], max: usize) -> &[u8] {
    &s[..s.len().min(max)]
}

/// Splits an ASCII name into ustar's prefix (≤155) and name (≤100) fields,
/// or `None` when it needs a PAX `path` record.
fn split_ustar_name(name: &[u8]) -> Option<(&[u8], &[u8])> {
    if !name.is_ascii() || name.contains(&0) {
        return None;
    }
    if name.len() <= 100 {
        return Some((&[], name));
    }
    // The prefix ends at a `/` that is not the last byte of the name.
    let limit = name.len().min(156);
    let pos = name[..limit].iter().rposition(|&b| b == b'/')?;
    let (prefix, rest) = (&name[..pos], &name[pos + 1..]);
    (prefix.len() <= 155 && !rest.is_empty() && rest.len() <= 100).then_some((prefix, rest))
}

/// PAX records: `"%d %s=%s\n"` where the length counts itself.
fn pax_records(records: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (key, value) in records {
        let body = key.len() + value.len() + 3; // space, '=', '\n'
        let mut len = body + 1;
        while len != body + len.to_string().len() {
            len = body + len.to_string().len();
        }
        out.extend_from_slice(len.to_string().as_bytes());
        out.push(b' ');
        out.extend_from_slice(key.as_bytes());
        out.push(b'=');
        out.extend_from_slice(value);
        out.push(b'\n');
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn ustar_block(
    prefix: &[u8],
    name: &[u8],
    mode: u32,
    size: u64,
    mtime: i64,
    typeflag: u8,
    link: &[u8],
    dev: Option<(u64, u64)>,
) -> [u8; BLOCK] {
    let mut b = [0u8; BLOCK];
    b[..name.len()].copy_from_slice(name);
    octal(&mut b[100..108], u64::from(mode));
    octal(&mut b[108..116], 0); // uid
    octal(&mut b[116..124], 0); // gid
    if size > MAX_OCTAL_SIZE {
        // GNU base-256 for readers that ignore the PAX size record.
        let field = &mut b[124..136];
        field[0] = 0x80;
        for (i, byte) in size.to_be_bytes().iter().enumerate() {
            field[4 + i] = *byte;
        }
    } else {
        octal(&mut b[124..136], size);
    }
    octal(&mut b[136..148], mtime as u64);
    b[156] = typeflag;
    b[157..157 + link.len()].copy_from_slice(link);
    b[257..263].copy_from_slice(b"ustar\0");
    b[263..265].copy_from_slice(b"00");
    if let Some((major, minor)) = dev {
        octal(&mut b[329..337], major);
        octal(&mut b[337..345], minor);
    }
    b[345..345 + prefix.len()].copy_from_slice(prefix);
    // Checksum: sum of all bytes with the checksum field as spaces.
    b[148..156].copy_from_slice(b"        ");
    let sum: u32 = b.iter().map(|&x| u32::from(x)).sum();
    octal(&mut b[148..155], u64::from(sum));
    b[155] = b' ';
    b
}

/// Writes `value` as zero-padded octal with a trailing NUL (keeping the
/// low digits if it does not fit, as callers check the range first).
fn octal(field: &mut [u8], mut value: u64) {
    let digits = field.len() - 1;
    for slot in field[..digits].iter_mut().rev() {
        *slot = b'0' + (value & 7) as u8;
        value >>= 3;
    }
    field[digits] = 0;
}

/// Reads once more after a file's last expected byte: a file that grew
/// would silently lose its tail, so anything but the end is an error.
fn expect_end(file: &mut impl Read, path: &Path, size: u64) -> Result<(), TarError> {
    let mut probe = [0u8; 1];
    loop {
        match file.read(&mut probe) {
            Ok(0) => return Ok(()),
            Ok(_) => {
                return Err(TarError::Changed {
                    path: path.to_path_buf(),
                    expected: size,
                    found: "it grew".into(),
                })
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => {
                return Err(TarError::Read {
                    path: path.to_path_buf(),
                    source,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn source_date_epoch_is_seconds_or_an_error() {
        assert_eq!(super::parse_source_date_epoch(None).unwrap(), None);
        assert_eq!(super::parse_source_date_epoch(Some(" ")).unwrap(), None);
        assert_eq!(
            super::parse_source_date_epoch(Some("1700000000\n")).unwrap(),
            Some(1_700_000_000)
        );
        let err = super::parse_source_date_epoch(Some("yesterday"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("SOURCE_DATE_EPOCH=yesterday is not a number"),
            "{err}"
        );
    }

    use super::*;

    #[test]
    fn pax_record_length_counts_itself() {
        let r = pax_records(&[("path", b"a".to_vec())]);
        assert_eq!(r, b"9 path=a\n");
        let long = vec![b'x'; 95];
        let r = pax_records(&[("path", long)]);
        assert_eq!(&r[..4], b"105 ");
        assert_eq!(r.len(), 105);
    }

    #[test]
    fn ustar_split() {
        assert_eq!(split_ustar_name(b"short"), Some((&b""[..], &b"short"[..])));
        let mut long = vec![b'd'; 120];
        long.extend_from_slice(b"/file");
        let (p, n) = split_ustar_name(&long).unwrap();
        assert_eq!((p.len(), n), (120, &b"file"[..]));
        assert_eq!(split_ustar_name(&[b'a'; 101]), None);
        assert_eq!(split_ustar_name("é".as_bytes()), None);
    }

    /// A reader that yields `n` bytes of `b'x'` regardless of what the
    /// header said: a file that changed size after it was stat'ed.
    struct Sized(usize);
    impl Read for Sized {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(self.0);
            buf[..n].fill(b'x');
            self.0 -= n;
            Ok(n)
        }
    }

    #[test]
    fn a_file_that_changes_size_is_an_error_not_a_corrupt_archive() {
        // A one-block buffer, partly filled or not, so reads end at its
        // edge, at the file's size and one byte past it.
        for filled in [0, 100, 500] {
            for (actual, expected, word) in [
                (10, 20, "only 10"),
                (30, 20, "grew"),
                (21, 20, "grew"),
                (11, 10, "grew"),
                (513, 512, "grew"),
                (1025, 1024, "grew"),
                (1100, 1024, "grew"),
                (511, 512, "only 511"),
                (600, 1024, "only 600"),
            ] {
                let mut w = TarWriter::with_buffer(Vec::new(), BLOCK);
                w.write(&vec![b'h'; filled]).unwrap();
                let err = w
                    .copy_contents(Sized(actual), Path::new("f"), expected, &mut ())
                    .unwrap_err();
                let msg = err.to_string();
                assert!(
                    msg.contains("changed size") && msg.contains(word),
                    "{filled} {actual} {expected}: {msg}"
                );
            }
            for size in [1, 15, 511, 512, 513, 1024, 1500] {
                let mut w = TarWriter::with_buffer(Vec::new(), BLOCK);
                w.write(&vec![b'h'; filled]).unwrap();
                w.copy_contents(Sized(size), Path::new("f"), size as u64, &mut ())
                    .unwrap();
                w.flush_buf().unwrap();
                let padded = size.div_ceil(BLOCK) * BLOCK;
                assert_eq!(w.out.len(), filled + padded, "content padded to a block");
                assert_eq!(w.stats.archive_bytes, w.out.len() as u64);
                assert_eq!(w.out.iter().filter(|&&b| b == b'x').count(), size);
                assert!(w.out[..filled].iter().all(|&b| b == b'h'));
                assert!(w.out[filled + size..].iter().all(|&b| b == 0));
            }
        }
    }

    /// Below [`super::super::walk`]'s open-descriptor depth the walk
    /// reaches entries by path instead; the archive must not change.
    #[test]
    fn deep_trees_archive_every_level() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        let mut expected = vec!["Dockerfile".to_string()];
        let mut rel = String::new();
        for level in 0..150 {
            if level > 0 {
                rel.push('/');
            }
            rel.push('d');
            expected.push(format!("{rel}/"));
            let d = dir.path().join(&rel);
            std::fs::create_dir(&d).unwrap();
            if level % 7 == 0 {
                std::fs::write(d.join("f"), format!("level {level}")).unwrap();
                std::os::unix::fs::symlink("f", d.join("l")).unwrap();
            }
        }
        let ctx = super::super::ContextSpec {
            root: dir.path().to_path_buf(),
            dockerfile: None,
            builder: super::super::Builder::BuildKit,
        }
        .resolve()
        .unwrap();
        for ctx in [ctx.clone(), ctx.with_sizes()] {
            let mut out = Vec::new();
            let stats = write_context(&ctx, &mut out, &TarOptions::default(), &mut ()).unwrap();
            let mut archive = tar::Archive::new(&out[..]);
            let mut names = Vec::new();
            for entry in archive.entries().unwrap() {
                let mut entry = entry.unwrap();
                let name = String::from_utf8(entry.path_bytes().to_vec()).unwrap();
                if name.ends_with("/f") {
                    let mut body = String::new();
                    entry.read_to_string(&mut body).unwrap();
                    let level = name.matches('d').count() - 1;
                    assert_eq!(body, format!("level {level}"), "{name}");
                }
                if name.ends_with("/l") {
                    let target = entry.link_name_bytes().unwrap();
                    assert_eq!(target.as_ref(), std::ffi::OsStr::new("f").as_bytes());
                }
                names.push(name);
            }
            let dirs: Vec<&String> = names
                .iter()
                .filter(|n| !n.ends_with("/f") && !n.ends_with("/l"))
                .collect();
            assert_eq!(dirs, expected.iter().collect::<Vec<_>>());
            assert_eq!(names.len(), 1 + 150 + 2 * 150usize.div_ceil(7));
            assert_eq!(stats.entries, names.len() as u64);
        }
    }

    #[test]
    fn header_checksum_is_valid() {
        let b = ustar_block(b"", b"a.txt", 0o644, 5, 1_700_000_000, b'0', b"", None);
        let header = tar::Header::from_byte_slice(&b);
        assert_eq!(header.cksum().unwrap(), {
            let mut copy = b;
            copy[148..156].copy_from_slice(b"        ");
            copy.iter().map(|&x| u32::from(x)).sum::<u32>()
        });
        assert_eq!(header.size().unwrap(), 5);
        assert_eq!(header.mode().unwrap(), 0o644);
        assert_eq!(header.mtime().unwrap(), 1_700_000_000);
    }
}
