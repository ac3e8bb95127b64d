//! A bounded, streaming reader of the tar archives image layers are:
//! ustar and GNU headers, PAX extended headers, GNU long names.
//!
//! The `tar` crate is not used here: its reader allocates what a PAX or
//! GNU long-name header says it holds, and its entry paths are joined for
//! extraction. A layer is untrusted input read once from a stream: every
//! allocation here is capped ([`MAX_PATH`], [`MAX_PAX`]), nothing is kept
//! but the headers, and a lie in a header (a size past the end, a bad
//! checksum, a `..` in a path) is an error that names the entry.
//!
//! All bytes read go through [`Input`], which digests them (SHA-256, the
//! layer's diff id) as they arrive; the contents of entries are skipped
//! through the same buffer, optionally into a second hasher per file.

use std::io::{self, Read};

use sha2::{Digest, Sha256};

/// The longest path a header may name (Linux's `PATH_MAX`).
pub const MAX_PATH: usize = 4096;
/// The largest PAX extended header read (xattrs included).
pub const MAX_PAX: u64 = 1 << 20;
/// The read buffer: large reads keep system calls and hasher calls few.
const BUFFER: usize = 1 << 20;

/// What a header describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A regular file (`0`, NUL, `7`).
    File,
    /// A directory (`5`, GNU `D`).
    Dir,
    /// A symbolic link (`2`).
    Symlink,
    /// A hard link to an earlier entry (`1`).
    Hardlink,
    /// A character or block device, or a FIFO.
    Special,
}

/// One entry's header, its extensions applied.
#[derive(Debug, Clone)]
pub struct Header {
    /// The path as stored (before cleaning).
    pub path: Vec<u8>,
    /// What it is.
    pub kind: Kind,
    /// Permission and set-id bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Bytes of content that follow the header.
    pub size: u64,
    /// A link's target (symbolic or hard).
    pub link: Vec<u8>,
    /// Offset of the content in the (uncompressed) archive.
    pub offset: u64,
}

/// Why a tar stream cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum TarError {
    /// Reading the underlying stream failed (it may be a gzip error).
    #[error("reading failed at byte {offset}: {source}")]
    Io {
        /// Bytes of the archive read before the failure.
        offset: u64,
        /// The error.
        source: io::Error,
    },
    /// The stream ends inside a header or an entry's contents.
    #[error("the archive is truncated: it ends at byte {offset}, inside {what}")]
    Truncated {
        /// Where it ends.
        offset: u64,
        /// What was being read.
        what: String,
    },
    /// A header is not a tar header or holds an impossible value.
    #[error("bad tar header at byte {offset}: {message}")]
    Header {
        /// The header's offset.
        offset: u64,
        /// What is wrong.
        message: String,
    },
}

impl TarError {
    fn header(offset: u64, message: impl Into<String>) -> TarError {
        TarError::Header {
            offset,
            message: message.into(),
        }
    }
}

/// A stream a tar is read from; one in a file skips contents by seeking.
pub trait TarRead: Read {
    /// Moves `n` bytes ahead without reading them; `false` when this
    /// reader cannot (then they are read).
    fn skip_ahead(&mut self, _n: u64) -> io::Result<bool> {
        Ok(false)
    }
}

/// Any reader, read through.
pub struct Stream<R>(pub R);

impl<R: Read> Read for Stream<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl<R: Read> TarRead for Stream<R> {}

/// A file, whose entries' contents are skipped by seeking.
pub struct Seeking(pub std::fs::File);

impl Read for Seeking {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl TarRead for Seeking {
    fn skip_ahead(&mut self, n: u64) -> io::Result<bool> {
        use std::io::Seek;
        let n = i64::try_from(n).map_err(|_| io::Error::other("offset out of range"))?;
        self.0.seek(io::SeekFrom::Current(n))?;
        Ok(true)
    }
}

/// The bytes of an archive, read in large blocks and digested as they
/// arrive.
pub struct Input<R> {
    inner: R,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// Bytes read from `inner` so far.
    read: u64,
    /// Bytes consumed by the parser so far.
    pos: u64,
    /// `None` for an archive whose own digest does not matter (the outer
    /// archive of `docker save`, whose layers are digested one by one).
    digest: Option<Sha256>,
    eof: bool,
}

impl<R: TarRead> Input<R> {
    /// Reads `inner`, digesting everything when `digest`.
    pub fn new(inner: R, digest: bool) -> Input<R> {
        Input {
            inner,
            buf: vec![0; BUFFER].into_boxed_slice(),
            start: 0,
            end: 0,
            read: 0,
            pos: 0,
            digest: digest.then(Sha256::new),
            eof: false,
        }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    fn fill(&mut self) -> Result<bool, TarError> {
        if self.start < self.end {
            return Ok(true);
        }
        if self.eof {
            return Ok(false);
        }
        self.start = 0;
        self.end = 0;
        loop {
            match self.inner.read(&mut self.buf) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    if let Some(d) = &mut self.digest {
                        d.update(&self.buf[..n]);
                    }
                    self.read += n as u64;
                    self.end = n;
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(TarError::Io {
                        offset: self.read,
                        source,
                    })
                }
            }
        }
    }

    /// Fills `out` entirely; `false` when the stream ended before its
    /// first byte, an error when it ends inside.
    fn exact(&mut self, out: &mut [u8], what: &dyn Fn() -> String) -> Result<bool, TarError> {
        let mut done = 0;
        while done < out.len() {
            if !self.fill()? {
                if done == 0 {
                    return Ok(false);
                }
                return Err(TarError::Truncated {
                    offset: self.pos,
                    what: what(),
                });
            }
            let n = (self.end - self.start).min(out.len() - done);
            out[done..done + n].copy_from_slice(&self.buf[self.start..self.start + n]);
            self.start += n;
            self.pos += n as u64;
            done += n;
        }
        Ok(true)
    }

    /// Skips `n` bytes, feeding them to `hasher` when given.
    fn skip(
        &mut self,
        mut n: u64,
        mut hasher: Option<&mut Sha256>,
        what: &dyn Fn() -> String,
    ) -> Result<(), TarError> {
        if hasher.is_none() && self.digest.is_none() && n > (self.end - self.start) as u64 {
            let buffered = (self.end - self.start) as u64;
            let ahead = n - buffered;
            let skipped = self
                .inner
                .skip_ahead(ahead)
                .map_err(|source| TarError::Io {
                    offset: self.read,
                    source,
                })?;
            if skipped {
                self.start = self.end;
                self.pos += n;
                self.read += ahead;
                return Ok(());
            }
        }
        while n > 0 {
            if !self.fill()? {
                return Err(TarError::Truncated {
                    offset: self.pos,
                    what: what(),
                });
            }
            let take = ((self.end - self.start) as u64).min(n) as usize;
            if let Some(h) = hasher.as_deref_mut() {
                h.update(&self.buf[self.start..self.start + take]);
            }
            self.start += take;
            self.pos += take as u64;
            n -= take as u64;
        }
        Ok(())
    }

    /// Reads what is left (padding after the end-of-archive blocks) so
    /// that the digest covers the whole stream; returns the digest, the
    /// stream's length and the reader.
    pub fn finish(mut self) -> Result<([u8; 32], u64, R), TarError> {
        while self.fill()? {
            self.pos += (self.end - self.start) as u64;
            self.start = self.end;
        }
        let digest = self.digest.map(|d| d.finalize().into()).unwrap_or_default();
        Ok((digest, self.read, self.inner))
    }
}

/// Parses an octal or base-256 numeric field.
fn number(field: &[u8], offset: u64, name: &str) -> Result<u64, TarError> {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        // GNU base-256: big-endian, the first byte's top bit a marker;
        // 0xff (negative) is refused.
        if field[0] == 0xff {
            return Err(TarError::header(offset, format!("negative {name}")));
        }
        let mut v: u64 = u64::from(field[0] & 0x7f);
        for &b in &field[1..] {
            v = v
                .checked_mul(256)
                .and_then(|v| v.checked_add(u64::from(b)))
                .ok_or_else(|| TarError::header(offset, format!("{name} overflows")))?;
        }
        return Ok(v);
    }
    let text = field
        .iter()
        .copied()
        .skip_while(|b| *b == b' ' || *b == 0)
        .take_while(|b| *b != b' ' && *b != 0)
        .collect::<Vec<u8>>();
    let mut v: u64 = 0;
    for b in &text {
        if !(b'0'..=b'7').contains(b) {
            return Err(TarError::header(
                offset,
                format!(
                    "{name} is not an octal number: \"{}\"",
                    crate::text::excerpt_bytes(field)
                ),
            ));
        }
        v = v
            .checked_mul(8)
            .and_then(|v| v.checked_add(u64::from(b - b'0')))
            .ok_or_else(|| TarError::header(offset, format!("{name} overflows")))?;
    }
    Ok(v)
}

fn cstr(field: &[u8]) -> &[u8] {
    match field.iter().position(|&b| b == 0) {
        Some(i) => &field[..i],
        None => field,
    }
}

fn checksum_ok(block: &[u8; 512], offset: u64) -> Result<bool, TarError> {
    let stored = number(&block[148..156], offset, "checksum")?;
    let mut unsigned: u64 = 0;
    let mut signed: i64 = 0;
    for (i, &b) in block.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += u64::from(b);
        signed += i64::from(b as i8);
    }
    Ok(stored == unsigned || i64::try_from(stored).is_ok_and(|s| s == signed))
}

/// The fields a PAX header may override.
#[derive(Default)]
struct Pax {
    path: Option<Vec<u8>>,
    link: Option<Vec<u8>>,
    size: Option<u64>,
    uid: Option<u32>,
    gid: Option<u32>,
}

fn parse_pax(data: &[u8], offset: u64) -> Result<Pax, TarError> {
    let mut pax = Pax::default();
    let mut rest = data;
    while !rest.is_empty() {
        if rest.iter().all(|&b| b == 0) {
            break;
        }
        let space = rest
            .iter()
            .position(|&b| b == b' ')
            .ok_or_else(|| TarError::header(offset, "PAX record without a length"))?;
        let len: usize = std::str::from_utf8(&rest[..space])
            .ok()
            .and_then(|s| s.parse().ok())
            .filter(|&n: &usize| n > space + 1 && n <= rest.len())
            .ok_or_else(|| TarError::header(offset, "PAX record with a bad length"))?;
        let record = &rest[space + 1..len];
        rest = &rest[len..];
        let record = record
            .strip_suffix(b"\n")
            .ok_or_else(|| TarError::header(offset, "PAX record without a newline"))?;
        let eq = record
            .iter()
            .position(|&b| b == b'=')
            .ok_or_else(|| TarError::header(offset, "PAX record without `=`"))?;
        let (key, value) = (&record[..eq], &record[eq + 1..]);
        let decimal = |what: &str| -> Result<u64, TarError> {
            std::str::from_utf8(value)
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(|| TarError::header(offset, format!("PAX {what} is not a number")))
        };
        match key {
            b"path" => pax.path = Some(value.to_vec()),
            b"linkpath" => pax.link = Some(value.to_vec()),
            b"size" => pax.size = Some(decimal("size")?),
            b"uid" => {
                pax.uid = Some(
                    u32::try_from(decimal("uid")?)
                        .map_err(|_| TarError::header(offset, "PAX uid out of range"))?,
                )
            }
            b"gid" => {
                pax.gid = Some(
                    u32::try_from(decimal("gid")?)
                        .map_err(|_| TarError::header(offset, "PAX gid out of range"))?,
                )
            }
            _ => {}
        }
    }
    Ok(pax)
}

/// A reader of headers over an [`Input`].
pub struct Archive<R> {
    input: Input<R>,
    /// The extension data buffer (PAX, GNU long names), reused.
    scratch: Vec<u8>,
    done: bool,
}

impl<R: TarRead> Archive<R> {
    /// An archive read from `inner`, digested when `digest`.
    pub fn new(inner: R, digest: bool) -> Archive<R> {
        Archive {
            input: Input::new(inner, digest),
            scratch: Vec::new(),
            done: false,
        }
    }

    /// Bytes of the archive consumed so far.
    pub fn position(&self) -> u64 {
        self.input.position()
    }

    /// The next entry's header; `None` at the end of the archive. The
    /// entry's contents must be consumed with [`Archive::skip_data`]
    /// before the next call.
    pub fn next_header(&mut self) -> Result<Option<Header>, TarError> {
        if self.done {
            return Ok(None);
        }
        let mut pax = Pax::default();
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        let mut block = [0u8; 512];
        loop {
            let offset = self.input.position();
            if !self
                .input
                .exact(&mut block, &|| format!("the header at byte {offset}"))?
            {
                // A stream that ends on a header boundary without the
                // end-of-archive blocks is read as Go's archive/tar does.
                self.done = true;
                return Ok(None);
            }
            if block.iter().all(|&b| b == 0) {
                self.done = true;
                return Ok(None);
            }
            if !checksum_ok(&block, offset)? {
                return Err(TarError::header(
                    offset,
                    "the checksum does not match (not a tar archive, or a corrupt one)",
                ));
            }
            let magic = &block[257..263];
            // GNU headers ("ustar ") keep access times where ustar has
            // its name prefix.
            let ustar = magic == b"ustar\0";
            let size = number(&block[124..136], offset, "size")?;
            let typeflag = block[156];
            let what = |kind: &'static str| move || format!("the {kind} header at byte {offset}");
            match typeflag {
                b'x' | b'g' => {
                    if size > MAX_PAX {
                        return Err(TarError::header(
                            offset,
                            format!("a PAX header of {size} bytes (at most {MAX_PAX} are read)"),
                        ));
                    }
                    self.read_extension(size, &what("PAX"))?;
                    if typeflag == b'x' {
                        pax = parse_pax(&self.scratch, offset)?;
                    }
                    continue;
                }
                b'L' | b'K' => {
                    if size > MAX_PATH as u64 + 1 {
                        return Err(TarError::header(
                            offset,
                            format!(
                                "a GNU long name of {size} bytes (paths are at most {MAX_PATH})"
                            ),
                        ));
                    }
                    self.read_extension(size, &what("GNU long name"))?;
                    let name = cstr(&self.scratch).to_vec();
                    if typeflag == b'L' {
                        long_name = Some(name);
                    } else {
                        long_link = Some(name);
                    }
                    continue;
                }
                _ => {}
            }
            let kind = match typeflag {
                b'0' | 0 | b'7' => Kind::File,
                b'5' | b'D' => Kind::Dir,
                b'2' => Kind::Symlink,
                b'1' => Kind::Hardlink,
                b'3' | b'4' | b'6' => Kind::Special,
                b'S' => {
                    return Err(TarError::header(
                        offset,
                        "GNU sparse entries are not supported (no image builder writes them)",
                    ))
                }
                other => {
                    return Err(TarError::header(
                        offset,
                        format!("unknown entry type {}", crate::text::show_bytes(&[other])),
                    ))
                }
            };
            let mut path = match (pax.path.take(), long_name.take()) {
                (Some(p), _) | (None, Some(p)) => p,
                (None, None) => {
                    let name = cstr(&block[0..100]);
                    let prefix = if ustar { cstr(&block[345..500]) } else { &[] };
                    let mut p = Vec::with_capacity(prefix.len() + 1 + name.len());
                    if !prefix.is_empty() {
                        p.extend_from_slice(prefix);
                        p.push(b'/');
                    }
                    p.extend_from_slice(name);
                    p
                }
            };
            if path.len() > MAX_PATH {
                return Err(TarError::header(
                    offset,
                    format!("a path of {} bytes (at most {MAX_PATH})", path.len()),
                ));
            }
            let link = match (pax.link.take(), long_link.take()) {
                (Some(l), _) | (None, Some(l)) => l,
                (None, None) => cstr(&block[157..257]).to_vec(),
            };
            if link.len() > MAX_PATH {
                return Err(TarError::header(
                    offset,
                    format!("a link target of {} bytes (at most {MAX_PATH})", link.len()),
                ));
            }
            let uid = match pax.uid {
                Some(u) => u,
                None => u32::try_from(number(&block[108..116], offset, "uid")?)
                    .map_err(|_| TarError::header(offset, "uid out of range"))?,
            };
            let gid = match pax.gid {
                Some(g) => g,
                None => u32::try_from(number(&block[116..124], offset, "gid")?)
                    .map_err(|_| TarError::header(offset, "gid out of range"))?,
            };
            let mode = (number(&block[100..108], offset, "mode")? & 0o7777) as u32;
            let size = pax.size.unwrap_or(size);
            // Links, directories and devices carry no contents whatever
            // their size field says (as Go's archive/tar reads them).
            let size = match kind {
                Kind::File => size,
                _ => 0,
            };
            if kind == Kind::Dir && path.last() == Some(&b'/') {
                path.pop();
            }
            return Ok(Some(Header {
                path,
                kind,
                mode,
                uid,
                gid,
                size,
                link,
                offset: self.input.position(),
            }));
        }
    }

    fn read_extension(&mut self, size: u64, what: &dyn Fn() -> String) -> Result<(), TarError> {
        let padded = size.div_ceil(512) * 512;
        self.scratch.clear();
        self.scratch.resize(padded as usize, 0);
        let mut buf = std::mem::take(&mut self.scratch);
        let ok = self.input.exact(&mut buf, what);
        buf.truncate(size as usize);
        self.scratch = buf;
        match ok? {
            true => Ok(()),
            false => Err(TarError::Truncated {
                offset: self.input.position(),
                what: what(),
            }),
        }
    }

    /// Consumes the contents of the entry `header` describes (and the
    /// padding after them), feeding them to `hasher` when given.
    pub fn skip_data(
        &mut self,
        header: &Header,
        hasher: Option<&mut Sha256>,
    ) -> Result<(), TarError> {
        let what = || {
            format!(
                "the {} bytes of \"{}\"",
                header.size,
                crate::text::excerpt_bytes(&header.path)
            )
        };
        self.input.skip(header.size, hasher, &what)?;
        let pad = header.size.next_multiple_of(512) - header.size;
        self.input.skip(pad, None, &what)
    }

    /// Reads the rest of the stream: the digest and length of all of it,
    /// and the reader.
    pub fn finish(self) -> Result<([u8; 32], u64, R), TarError> {
        self.input.finish()
    }
}

/// The contents of one entry, read through: the blobs inside a `docker
/// save` stream.
pub struct Contents<'a, R> {
    archive: &'a mut Archive<R>,
    left: u64,
    pad: u64,
}

impl<R: TarRead> Archive<R> {
    /// A reader of `header`'s contents; call [`Contents::finish`] after.
    pub fn contents(&mut self, header: &Header) -> Contents<'_, R> {
        Contents {
            archive: self,
            left: header.size,
            pad: header.size.next_multiple_of(512) - header.size,
        }
    }
}

impl<R: TarRead> Read for Contents<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let input = &mut self.archive.input;
        if !input.fill().map_err(io::Error::other)? {
            // Ends early: the reader above reports the truncation.
            return Ok(0);
        }
        let n = ((input.end - input.start) as u64)
            .min(self.left)
            .min(buf.len() as u64) as usize;
        buf[..n].copy_from_slice(&input.buf[input.start..input.start + n]);
        input.start += n;
        input.pos += n as u64;
        self.left -= n as u64;
        Ok(n)
    }
}

impl<R: TarRead> TarRead for Contents<'_, R> {}

impl<R: TarRead> Contents<'_, R> {
    /// Skips what was not read, and the padding.
    pub fn finish(self) -> Result<(), TarError> {
        let what = || "an entry's contents".to_string();
        self.archive.input.skip(self.left + self.pad, None, &what)
    }
}

/// Reads `header`'s contents, at most `limit` bytes (for small JSON files
/// of an image archive).
pub fn read_small<R: TarRead>(
    archive: &mut Archive<R>,
    header: &Header,
    limit: u64,
) -> Result<Option<Vec<u8>>, TarError> {
    if header.size > limit {
        archive.skip_data(header, None)?;
        return Ok(None);
    }
    let mut data = vec![0u8; header.size as usize];
    let what = || format!("\"{}\"", crate::text::excerpt_bytes(&header.path));
    if !archive.input.exact(&mut data, &what)? && !data.is_empty() {
        return Err(TarError::Truncated {
            offset: archive.position(),
            what: what(),
        });
    }
    let pad = header.size.next_multiple_of(512) - header.size;
    archive.input.skip(pad, None, &what)?;
    Ok(Some(data))
}

/// Why a path in a layer is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path starts with `/`.
    #[error("an absolute path")]
    Absolute,
    /// A `..` component.
    #[error("a `..` component")]
    Parent,
    /// Nothing left after cleaning, where a name is needed.
    #[error("an empty path")]
    Empty,
    /// A NUL byte (only possible through a PAX record).
    #[error("a NUL byte")]
    Nul,
}

/// A layer path made canonical: `./` and `.` components, repeated and
/// trailing slashes removed. Absolute paths and `..` are refused: an
/// image builder never writes them, and Docker refuses a `..` that leaves
/// the root. An empty result is the root itself.
pub fn clean_path(raw: &[u8]) -> Result<Vec<u8>, PathError> {
    if raw.first() == Some(&b'/') {
        return Err(PathError::Absolute);
    }
    if raw.contains(&0) {
        return Err(PathError::Nul);
    }
    let mut out = Vec::with_capacity(raw.len());
    for part in raw.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return Err(PathError::Parent),
            p => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(p);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_clean() {
        assert_eq!(clean_path(b"./usr//bin/").unwrap(), b"usr/bin");
        assert_eq!(clean_path(b"a/./b").unwrap(), b"a/b");
        assert_eq!(clean_path(b"./").unwrap(), b"");
        assert_eq!(clean_path(b"/etc/passwd"), Err(PathError::Absolute));
        assert_eq!(clean_path(b"a/../../b"), Err(PathError::Parent));
        assert_eq!(clean_path(b"a/\0b"), Err(PathError::Nul));
    }

    #[test]
    fn numbers_parse() {
        assert_eq!(number(b"0000644\0", 0, "mode").unwrap(), 0o644);
        assert_eq!(number(b"  17 \0", 0, "x").unwrap(), 0o17);
        assert_eq!(number(&[0x80, 0, 0, 1, 0], 0, "x").unwrap(), 256);
        assert!(number(&[0xff, 0xff], 0, "x").is_err());
        assert!(number(b"9", 0, "x").is_err());
        assert!(number(
            &[0x80, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            0,
            "x"
        )
        .is_err());
    }

    #[test]
    fn pax_records_parse() {
        let p = parse_pax(b"12 path=a/b\n11 size=42\n", 0).unwrap();
        assert_eq!(p.path.as_deref(), Some(&b"a/b"[..]));
        assert_eq!(p.size, Some(42));
        assert!(parse_pax(b"99 path=a\n", 0).is_err());
        assert!(parse_pax(b"x path=a\n", 0).is_err());
        assert!(parse_pax(b"8 size=\n", 0).is_err());
    }
}
