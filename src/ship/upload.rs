//! The build context as a streamed request body.
//!
//! The tar writer runs on a blocking thread and writes into a bounded
//! channel of 256 KiB chunks (8 in flight at most), which is the body of
//! the `/build` request: memory stays flat whatever the context size, and
//! the writer waits whenever the daemon reads slower than disks produce.
//!
//! The Dockerfile always travels in the upload. When the context sent does
//! not already hold it (excluded by the ignore file, left out of the
//! minimal context, or outside the context), it is appended:
//!
//! * under its own name, when it lies inside the context and the context
//!   sends a root `.dockerignore`: the classic builder deletes it again
//!   when that file excludes it, exactly as for `docker build`;
//! * otherwise under a unique `.dockerfile.<random>` name, as the docker
//!   CLI does, with a `.dockerignore` entry naming it so that the daemon
//!   deletes it before any `COPY` runs. When the context sends no
//!   `.dockerignore`, the appended one also names itself and disappears
//!   too; when it does, the appended one is the original plus that line
//!   (what the docker CLI sends for a Dockerfile outside the context).
//!
//! BuildKit builds from an uploaded archive exactly as sent (it applies
//! ignore files only to contexts it syncs itself), so for it the Dockerfile
//! is appended under a `.dockerfile.<random>` name alone: only a COPY of
//! the context root can see it, and the build warns when one can.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;

use crate::context::digest::DigestSink;
pub use crate::context::survey::{survey, Survey};
pub use crate::context::tarball::ExtraEntry;
use crate::context::tarball::{write_context_with_extra, Gzip, TarError, TarOptions};
use crate::context::Context;

/// Size of one body chunk.
pub const CHUNK: usize = 256 * 1024;
/// Chunks buffered between the tar writer and the HTTP body.
pub const CHUNKS_IN_FLIGHT: usize = 8;

/// Compression of the uploaded context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
}

/// How the Dockerfile travels: the `dockerfile` parameter of the request
/// and the entries to append.
#[derive(Debug, Clone)]
pub struct DockerfilePlacement {
    pub dockerfile_param: String,
    pub extra: Vec<ExtraEntry>,
}

/// Decides how the Dockerfile (whose bytes are `dockerfile`) travels (see
/// the module docs).
pub fn place_dockerfile(
    ctx: &Context,
    survey: &Survey,
    dockerfile: &[u8],
    builder: crate::context::Builder,
) -> Result<DockerfilePlacement, crate::input::InputError> {
    let rel = ctx
        .dockerfile_rel()
        .and_then(|r| std::str::from_utf8(r).ok())
        .map(str::to_owned);
    if let (Some(rel), true) = (&rel, survey.has_dockerfile) {
        return Ok(DockerfilePlacement {
            dockerfile_param: rel.clone(),
            extra: Vec::new(),
        });
    }
    let content = dockerfile.to_vec();
    if builder == crate::context::Builder::BuildKit {
        // BuildKit deletes nothing from an uploaded archive: the Dockerfile
        // goes under a name no COPY source but the context root reaches.
        let name = format!(".dockerfile.{}", random_hex(20));
        return Ok(DockerfilePlacement {
            dockerfile_param: name.clone(),
            extra: vec![ExtraEntry {
                name,
                mode: 0o600,
                content,
            }],
        });
    }
    let root_ignore = ctx.root().join(".dockerignore");
    let ignore_is_root = ctx.ignore_file().is_some_and(|i| i.path == root_ignore);
    if let Some(rel) = rel.filter(|r| r.is_ascii() && r.len() < 100) {
        if survey.has_dockerignore && ignore_is_root {
            // Where the docker CLI sends the file itself, with its mode.
            return Ok(DockerfilePlacement {
                dockerfile_param: rel.clone(),
                extra: vec![ExtraEntry {
                    name: rel,
                    mode: file_mode(ctx.dockerfile()),
                    content,
                }],
            });
        }
    }
    let name = format!(".dockerfile.{}", random_hex(20));
    let ignore_content = if survey.has_dockerignore {
        let mut original = crate::input::read(
            ctx.root(),
            std::path::Path::new(".dockerignore"),
            crate::input::TEXT_LIMIT,
        )?;
        original.extend_from_slice(format!("\n{name}\n").as_bytes());
        original
    } else {
        format!(".dockerignore\n{name}\n").into_bytes()
    };
    Ok(DockerfilePlacement {
        dockerfile_param: name.clone(),
        extra: vec![
            ExtraEntry {
                name,
                mode: 0o600,
                content,
            },
            ExtraEntry {
                name: ".dockerignore".into(),
                // The docker CLI rewrites the sent file's content and keeps
                // its header: a `COPY .` sees the original mode.
                mode: if survey.has_dockerignore {
                    file_mode(&root_ignore)
                } else {
                    0o600
                },
                content: ignore_content,
            },
        ],
    })
}

/// The permission bits of a regular file (not followed if a link), or
/// 0600, the docker CLI's mode for what it adds.
fn file_mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(path)
        .ok()
        .filter(|m| m.is_file())
        .map_or(0o600, |m| m.permissions().mode() & 0o7777)
}

pub(crate) fn random_hex(len: usize) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    h.update(now.as_nanos().to_le_bytes());
    h.update(std::process::id().to_le_bytes());
    let local = 0u8;
    h.update((&local as *const u8 as usize).to_le_bytes());
    let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    hex[..len].to_string()
}

/// Chunks of the archive, as the request body.
pub type BodyStream =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<Bytes, io::Error>> + Send>>;

/// The body stream and the handle of the thread writing it.
pub struct Upload {
    /// The request body: pass to `bollard::body_try_stream`.
    pub body: BodyStream,
    pub sent: Arc<AtomicU64>,
    /// Set when the body has given its last chunk: no more progress is
    /// expected from the upload.
    pub finished: Arc<AtomicBool>,
    /// `send(true)` stops the writer even while it waits for room in the
    /// body (the HTTP connection may keep the body alive, unread, after
    /// the request is given up).
    pub cancel: tokio::sync::watch::Sender<bool>,
    pub writer: tokio::task::JoinHandle<Result<UploadStats, UploadError>>,
}

/// Totals of an upload.
#[derive(Debug, Clone)]
pub struct UploadStats {
    pub digest: String,
    // Only the tests read these two totals (against the archive).
    #[cfg_attr(not(test), allow(dead_code))]
    pub entries: u64,
    #[cfg_attr(not(test), allow(dead_code))]
    pub archive_bytes: u64,
}

/// Errors while producing the upload.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error(transparent)]
    Tar(#[from] TarError),
    #[error("the daemon stopped reading the build context")]
    Closed,
    #[error("writing the build context failed: {0}")]
    Io(#[from] io::Error),
}

/// Starts streaming `ctx` plus `extra` (tar, optionally gzipped).
pub fn start(
    ctx: Context,
    options: TarOptions,
    extra: Vec<ExtraEntry>,
    compression: Compression,
) -> Upload {
    let (tx, mut rx) = mpsc::channel::<Result<Bytes, io::Error>>(CHUNKS_IN_FLIGHT);
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    let finished = Arc::new(AtomicBool::new(false));
    let ended = finished.clone();
    let body_stream = futures_util::stream::poll_fn(move |cx| {
        rx.poll_recv(cx).map(|item| {
            match &item {
                Some(Ok(bytes)) => {
                    counter.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                }
                Some(Err(_)) | None => ended.store(true, Ordering::Relaxed),
            }
            item
        })
    });
    let body: BodyStream = Box::pin(body_stream);
    let (cancel, cancelled) = tokio::sync::watch::channel(false);
    let writer = tokio::task::spawn_blocking(move || {
        let err_tx = tx.clone();
        let mut err_cancelled = cancelled.clone();
        let runtime = tokio::runtime::Handle::current();
        let out = ChannelWriter::new(tx, cancelled, runtime.clone());
        let result = write_all(&ctx, &options, &extra, compression, out);
        if let Err(e) = &result {
            // Make the request fail rather than end as a truncated archive
            // (unless the request was given up: nobody reads any more).
            let _ = send_unless_cancelled(
                &runtime,
                &err_tx,
                Err(io::Error::other(e.to_string())),
                &mut err_cancelled,
            );
        }
        result
    });
    Upload {
        body,
        sent,
        finished,
        cancel,
        writer,
    }
}

fn write_all(
    ctx: &Context,
    options: &TarOptions,
    extra: &[ExtraEntry],
    compression: Compression,
    out: ChannelWriter,
) -> Result<UploadStats, UploadError> {
    match compression {
        Compression::None => {
            let mut out = out;
            let stats = write_body(ctx, options, extra, &mut out)?;
            out.flush().map_err(map_closed)?;
            Ok(stats)
        }
        Compression::Gzip => {
            // Fastest: the link, not the CPU, is what gzip saves on.
            let mut gz = Gzip::new(out, 1);
            let written = write_body(ctx, options, extra, &mut gz);
            // The channel's own error (the daemon stopped reading) comes
            // first: the archive writer only saw the compressor stop.
            let finished = gz.finish();
            match (written, finished) {
                (_, Err(e)) if e.kind() == io::ErrorKind::BrokenPipe => Err(UploadError::Closed),
                (Err(e), _) => Err(e),
                (Ok(_), Err(e)) => Err(UploadError::Io(e)),
                (Ok(stats), Ok(())) => Ok(stats),
            }
        }
    }
}

fn map_closed(e: io::Error) -> UploadError {
    if e.kind() == io::ErrorKind::BrokenPipe {
        UploadError::Closed
    } else {
        UploadError::Io(e)
    }
}

/// The context's archive with `extra` appended, and its digest (of the
/// context's entries only).
fn write_body<W: Write>(
    ctx: &Context,
    options: &TarOptions,
    extra: &[ExtraEntry],
    out: &mut W,
) -> Result<UploadStats, UploadError> {
    let mut digest = DigestSink::new();
    let stats =
        write_context_with_extra(ctx, out, options, &mut digest, extra).map_err(|e| match e {
            TarError::Write(io) if io.kind() == io::ErrorKind::BrokenPipe => UploadError::Closed,
            other => UploadError::Tar(other),
        })?;
    Ok(UploadStats {
        digest: digest.finish(),
        entries: stats.entries,
        archive_bytes: stats.archive_bytes,
    })
}

/// Cuts the stream into chunks and sends them down the bounded channel,
/// blocking while it is full.
struct ChannelWriter {
    tx: mpsc::Sender<Result<Bytes, io::Error>>,
    buf: BytesMut,
    cancelled: tokio::sync::watch::Receiver<bool>,
    /// The gzip thread writes too, outside the runtime: it waits through
    /// this handle.
    runtime: tokio::runtime::Handle,
}

impl ChannelWriter {
    fn new(
        tx: mpsc::Sender<Result<Bytes, io::Error>>,
        cancelled: tokio::sync::watch::Receiver<bool>,
        runtime: tokio::runtime::Handle,
    ) -> Self {
        ChannelWriter {
            tx,
            buf: BytesMut::with_capacity(CHUNK),
            cancelled,
            runtime,
        }
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = self.buf.split().freeze();
        self.buf.reserve(CHUNK);
        let closed = || {
            io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the daemon stopped reading the build context",
            )
        };
        if send_unless_cancelled(&self.runtime, &self.tx, Ok(chunk), &mut self.cancelled) {
            Ok(())
        } else {
            Err(closed())
        }
    }
}

/// Sends `item`, waiting for room, unless the upload is cancelled first;
/// `false` when it was not sent. Runs on the blocking pool or the gzip
/// thread, where waiting on the runtime is allowed.
fn send_unless_cancelled(
    runtime: &tokio::runtime::Handle,
    tx: &mpsc::Sender<Result<Bytes, io::Error>>,
    item: Result<Bytes, io::Error>,
    cancelled: &mut tokio::sync::watch::Receiver<bool>,
) -> bool {
    runtime.block_on(async move {
        tokio::select! {
            sent = tx.send(item) => sent.is_ok(),
            _ = cancelled.wait_for(|c| *c) => false,
        }
    })
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = CHUNK - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_names_differ() {
        let a = random_hex(20);
        std::thread::sleep(std::time::Duration::from_millis(1));
        assert_ne!(a, random_hex(20));
        assert_eq!(a.len(), 20);
    }
}
#[cfg(test)]
mod appended {
    use super::*;

    /// The upload is the context's archive (byte for byte, the same
    /// digest) with the appended files before the end, readable by `tar`.
    #[test]
    fn upload_is_the_context_archive_plus_the_appended_files() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/reggie");
        let mut spec = crate::context::ContextSpec::new(&root);
        spec.dockerfile = Some(root.join("backend/Dockerfile"));
        let ctx = spec.resolve().unwrap();
        let opts = TarOptions {
            clamp_mtime: Some(1_700_000_000),
            ..Default::default()
        };
        let extra = vec![
            ExtraEntry {
                name: ".dockerfile.0123456789abcdef0123".into(),
                mode: 0o600,
                content: b"FROM scratch\nCOPY . /\n".to_vec(),
            },
            ExtraEntry {
                name: ".dockerignore".into(),
                mode: 0o644,
                content: b".dockerignore\nx\n".to_vec(),
            },
        ];
        let mut upload = Vec::new();
        let stats = write_body(&ctx, &opts, &extra, &mut upload).unwrap();
        let mut plain = Vec::new();
        let mut digest = DigestSink::new();
        let ctx_stats =
            crate::context::tarball::write_context(&ctx, &mut plain, &opts, &mut digest).unwrap();
        assert_eq!(stats.digest, digest.finish());
        assert_eq!(stats.entries, ctx_stats.entries + 2);
        assert_eq!(stats.archive_bytes, upload.len() as u64);
        // Everything but the end-of-archive blocks comes first, unchanged.
        let body = plain.len() - 1024;
        assert_eq!(upload[..body], plain[..body]);
        let mut archive = tar::Archive::new(&upload[..]);
        let mut last = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().to_string_lossy().into_owned();
            let mode = entry.header().mode().unwrap();
            let mtime = entry.header().mtime().unwrap();
            let mut content = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut content).unwrap();
            last.push((name, mode, mtime, content));
        }
        let tail: Vec<_> = last[last.len() - 2..]
            .iter()
            .map(|(n, m, t, c)| (n.as_str(), *m, *t, c.as_slice()))
            .collect();
        assert_eq!(
            tail,
            [
                (
                    ".dockerfile.0123456789abcdef0123",
                    0o600,
                    1_700_000_000,
                    &b"FROM scratch\nCOPY . /\n"[..]
                ),
                (
                    ".dockerignore",
                    0o644,
                    1_700_000_000,
                    &b".dockerignore\nx\n"[..]
                ),
            ]
        );
    }
}
