//! BuildKit's file sync, the sending side: the `moby.filesync.v1.FileSync`
//! session service through which BuildKit pulls a build's local
//! directories (`context`, `dockerfile`) from the client.
//!
//! The protocol is tonistiigi/fsutil's packet stream (`DiffCopy`):
//!
//! 1. the sender streams one `STAT` packet per entry of the directory, in
//!    the order of fsutil's walk (depth first, names in byte order, a
//!    directory before its contents), then an empty `STAT`;
//! 2. the receiver compares them with its copy of the previous transfer
//!    (found by the session's shared key) and sends a `REQ` with the index
//!    of each regular file whose contents it lacks; the sender answers with
//!    `DATA` packets carrying that index and a last empty `DATA`;
//! 3. the receiver sends `FIN`, the sender answers `FIN`. `ERR` carries an
//!    error message either way.
//!
//! The walk is our own ([`Context::walk`]) with the patterns BuildKit sends
//! as gRPC metadata (`exclude-patterns`, `include-patterns`, `followpaths`,
//! each `*-encoded: true` when URL-escaped): the frontend has already read
//! the ignore file, so the excludes are exactly its rules. Only requested
//! files are opened: relative to the directory, never through a symlink,
//! non-blocking, regular files only (anything else is sent empty, as
//! fsutil sends a file it cannot open). Extended attributes go with each
//! stat as fsutil sends them (`com.apple.*` left out).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bollard_buildkit_proto::fsutil::types::packet::PacketType;
use bollard_buildkit_proto::fsutil::types::{Packet, Stat as WireStat};
use bollard_buildkit_proto::moby::filesync::v1::file_sync_server::FileSync;
use futures_util::{Stream, StreamExt};
use rustix::fs::{Mode, OFlags, ResolveFlags};
use tokio::sync::mpsc;

use crate::context::survey::Snapshot;
use crate::context::walk::{Entry, FileKind, Stat, WalkError};
use crate::context::{Context, ContextError};

/// Bytes of file contents per `DATA` packet.
pub const DATA_CHUNK: usize = 64 * 1024;
/// Batches of packets buffered between the reading threads and the gRPC
/// stream.
const BATCHES_IN_FLIGHT: usize = 4;
/// A batch goes out once it holds this many packets...
const BATCH_PACKETS: usize = 256;
/// ...or this many bytes of file contents.
const BATCH_BYTES: usize = 2 * DATA_CHUNK;

/// Packets collected on a blocking thread and handed to the gRPC stream
/// together.
struct Batch<'a> {
    tx: &'a mpsc::Sender<Vec<Packet>>,
    packets: Vec<Packet>,
    bytes: usize,
}

impl<'a> Batch<'a> {
    fn new(tx: &'a mpsc::Sender<Vec<Packet>>) -> Self {
        Batch {
            tx,
            packets: Vec::new(),
            bytes: 0,
        }
    }

    /// Adds a packet; false when the stream is gone.
    fn push(&mut self, p: Packet) -> bool {
        self.bytes += p.data.capacity();
        self.packets.push(p);
        if self.packets.len() >= BATCH_PACKETS || self.bytes >= BATCH_BYTES {
            return self.flush();
        }
        true
    }

    /// Sends what is collected; false when the stream is gone.
    fn flush(&mut self) -> bool {
        if self.packets.is_empty() {
            return true;
        }
        self.bytes = 0;
        self.tx
            .blocking_send(std::mem::take(&mut self.packets))
            .is_ok()
    }
}

/// Go's `os.FileMode` bits, the form fsutil's `Stat.mode` takes.
pub mod go_mode {
    pub const DIR: u32 = 1 << 31;
    pub const SYMLINK: u32 = 1 << 27;
    pub const DEVICE: u32 = 1 << 26;
    pub const NAMED_PIPE: u32 = 1 << 25;
    pub const SOCKET: u32 = 1 << 24;
    pub const SETUID: u32 = 1 << 23;
    pub const SETGID: u32 = 1 << 22;
    pub const CHAR_DEVICE: u32 = 1 << 21;
    pub const STICKY: u32 = 1 << 20;
    /// Every type bit: a mode without them is a regular file.
    pub const TYPE: u32 = DIR | SYMLINK | NAMED_PIPE | SOCKET | DEVICE | CHAR_DEVICE | (1 << 19);
}

/// `st_mode` as Go's `os.FileMode` (what `fi.Mode()` gives fsutil).
pub fn go_file_mode(st_mode: u32) -> u32 {
    let mut m = st_mode & 0o777;
    m |= match st_mode & libc::S_IFMT {
        libc::S_IFDIR => go_mode::DIR,
        libc::S_IFLNK => go_mode::SYMLINK,
        libc::S_IFIFO => go_mode::NAMED_PIPE,
        libc::S_IFSOCK => go_mode::SOCKET,
        libc::S_IFBLK => go_mode::DEVICE,
        libc::S_IFCHR => go_mode::DEVICE | go_mode::CHAR_DEVICE,
        _ => 0,
    };
    if st_mode & libc::S_ISUID != 0 {
        m |= go_mode::SETUID;
    }
    if st_mode & libc::S_ISGID != 0 {
        m |= go_mode::SETGID;
    }
    if st_mode & libc::S_ISVTX != 0 {
        m |= go_mode::STICKY;
    }
    m
}

/// Go's (and so fsutil's) split of a device number.
fn dev_major_minor(rdev: u64) -> (i64, i64) {
    let major = (rdev >> 8) & 0xfff;
    let minor = (rdev & 0xff) | ((rdev >> 12) & 0xfff00);
    (major as i64, minor as i64)
}

/// Bytes of one extended attribute list or value at most (Linux's own
/// limit for both is 64 KiB).
const XATTR_MAX: usize = 64 * 1024;

/// An entry's extended attributes, read with the `l*` calls (a symlink's
/// own), `com.apple.*` skipped as fsutil skips them; none when the file
/// system has none or they cannot be read.
///
/// Most entries have none: whether they do is asked relative to the walk's
/// open directory (`listxattrat`, Linux 6.13) where the kernel has it, one
/// name lookup instead of the whole path's; the values are read by path.
fn xattrs(e: &Entry<'_>) -> HashMap<String, Vec<u8>> {
    if e.xattr_list_len() == Some(0) {
        return HashMap::new();
    }
    xattrs_by_path(e.path)
}

fn xattrs_by_path(path: &std::path::Path) -> HashMap<String, Vec<u8>> {
    let mut out = HashMap::new();
    let len = match rustix::fs::llistxattr_query(path) {
        Ok(0) | Err(_) => return out,
        Ok(n) => n.min(XATTR_MAX),
    };
    let mut list = vec![0u8; len];
    let Ok(len) = rustix::fs::llistxattr(path, &mut list[..]) else {
        return out;
    };
    for name in list[..len.min(list.len())]
        .split(|&b| b == 0)
        .filter(|n| !n.is_empty() && !n.starts_with(b"com.apple."))
    {
        let name_os = OsStr::from_bytes(name);
        let Ok(size) = rustix::fs::lgetxattr_query(path, name_os) else {
            continue;
        };
        let mut value = vec![0u8; size.min(XATTR_MAX)];
        if let Ok(n) = rustix::fs::lgetxattr(path, name_os, &mut value[..]) {
            value.truncate(n);
            out.insert(String::from_utf8_lossy(name).into_owned(), value);
        }
    }
    out
}

/// A regular file whose stat went out: what the receiver may ask for.
struct SentFile {
    rel: Box<[u8]>,
    /// What identifies the contents the stat described.
    id: FileId,
}

/// A regular file's identity and version: device, inode, size, mtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId(u64, u64, u64, i64);

impl FileId {
    fn size(&self) -> u64 {
        self.2
    }

    fn of(st: &Stat) -> FileId {
        FileId(
            st.dev,
            st.ino,
            st.size,
            st.mtime * 1_000_000_000 + i64::from(st.mtime_nsec),
        )
    }
}

/// The walk's kind of an `st_mode`, to check a surveyed stat still
/// describes what the directory lists.
fn kind_of(mode: u32) -> Option<FileKind> {
    Some(match mode & libc::S_IFMT {
        libc::S_IFREG => FileKind::File,
        libc::S_IFDIR => FileKind::Dir,
        libc::S_IFLNK => FileKind::Symlink,
        libc::S_IFIFO => FileKind::Fifo,
        libc::S_IFCHR => FileKind::CharDevice,
        libc::S_IFBLK => FileKind::BlockDevice,
        libc::S_IFSOCK => FileKind::Socket,
        _ => return None,
    })
}

/// A directory the session offers under a name.
#[derive(Debug, Clone)]
pub struct SyncDir {
    pub root: PathBuf,
    /// Send uid and gid 0 (the docker CLI does for the context, so that
    /// COPY results do not depend on who checked the files out).
    pub reset_owner: bool,
    /// The stats the survey before the build read below `root`: served
    /// instead of a second `lstat` of each entry.
    pub surveyed: Option<Arc<Snapshot>>,
}

/// What the sender sent, over every transfer of a session.
#[derive(Debug, Default)]
pub struct Counters {
    pub stats: AtomicU64,
    pub files: AtomicU64,
    /// File contents sent (`DATA` payloads).
    pub data_bytes: AtomicU64,
}

/// The options of one `DiffCopy` call, from its gRPC metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncRequest {
    pub dir_name: String,
    pub includes: Vec<Vec<u8>>,
    pub excludes: Vec<Vec<u8>>,
    pub follow_paths: Vec<Vec<u8>>,
}

impl SyncRequest {
    /// Reads the metadata: `get(key)` gives every value of a key.
    pub fn from_metadata<'a>(get: impl Fn(&str) -> Vec<&'a [u8]>) -> SyncRequest {
        let values = |key: &str| -> Vec<Vec<u8>> {
            let encoded = get(&format!("{key}-encoded"))
                .first()
                .is_some_and(|v| parse_go_bool(v));
            get(key)
                .into_iter()
                .map(|v| {
                    if encoded {
                        query_unescape(v)
                    } else {
                        v.to_vec()
                    }
                })
                .collect()
        };
        SyncRequest {
            dir_name: values("dir-name")
                .into_iter()
                .next()
                .map(|v| String::from_utf8_lossy(&v).into_owned())
                .unwrap_or_default(),
            includes: values("include-patterns"),
            excludes: values("exclude-patterns"),
            follow_paths: values("followpaths"),
        }
    }
}

/// Go's `strconv.ParseBool`, true side.
fn parse_go_bool(v: &[u8]) -> bool {
    matches!(v, b"1" | b"t" | b"T" | b"true" | b"TRUE" | b"True")
}

/// Go's `url.QueryUnescape` (`+` is a space); a malformed escape is kept
/// as written.
fn query_unescape(v: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        match v[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < v.len() => match (hex(v[i + 1]), hex(v[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// Errors of a transfer.
#[derive(Debug, thiserror::Error)]
pub enum FileSyncError {
    #[error("BuildKit asked for directory {0:?}, which this build does not offer (it offers `context` and `dockerfile`)")]
    UnknownDir(String),
    #[error("BuildKit's patterns for {dir:?}: {source}")]
    Patterns { dir: String, source: ContextError },
    #[error(transparent)]
    Walk(#[from] WalkError),
    #[error("cannot open {path}: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("reading {path} for BuildKit failed: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("BuildKit asked for file number {0}, which is not a regular file of this transfer or was sent already")]
    UnknownId(u32),
    #[error("BuildKit stopped the file transfer")]
    Closed,
    #[error("{} changed during the build, after its stat was sent (and its hash went into the context digest); run the build again", crate::text::show_path(path))]
    Changed { path: PathBuf },
}

/// One `DiffCopy` transfer of a directory: the stat walk, then the files
/// the receiver asks for.
pub struct Transfer {
    ctx: Context,
    root: PathBuf,
    root_fd: OwnedFd,
    reset_owner: bool,
    surveyed: Option<Arc<Snapshot>>,
    /// By index, the regular files the receiver may ask for (`None` for
    /// the other entries and for files sent already).
    files: Mutex<Vec<Option<SentFile>>>,
    counters: Arc<Counters>,
}

impl Transfer {
    /// Prepares a transfer of `dir` with the request's patterns.
    pub fn new(
        dir: &SyncDir,
        req: &SyncRequest,
        counters: Arc<Counters>,
    ) -> Result<Transfer, FileSyncError> {
        let patterns = |source| FileSyncError::Patterns {
            dir: req.dir_name.clone(),
            source,
        };
        let mut ctx = Context::for_sync(dir.root.clone(), &req.excludes).map_err(patterns)?;
        let mut includes = req.includes.clone();
        for p in &req.follow_paths {
            crate::plan::minimal::follow_links(&dir.root, p, &mut includes);
        }
        if !req.includes.is_empty() || !req.follow_paths.is_empty() {
            includes.sort();
            includes.dedup();
            ctx = ctx
                .with_includes(&includes, true)
                .map_err(|e| patterns(e.into()))?;
        }
        let root_fd = rustix::fs::open(
            &dir.root,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| FileSyncError::Open {
            path: dir.root.clone(),
            source: e.into(),
        })?;
        Ok(Transfer {
            ctx,
            root: dir.root.clone(),
            root_fd,
            reset_owner: dir.reset_owner,
            surveyed: dir.surveyed.clone(),
            files: Mutex::new(Vec::new()),
            counters,
        })
    }

    /// Sends a `STAT` per entry, then the empty `STAT` that ends the list.
    /// `send` returns false when the receiver is gone.
    pub fn send_stats(&self, send: &mut dyn FnMut(Packet) -> bool) -> Result<(), FileSyncError> {
        // (dev, inode) → the first path sent: later links name it.
        let mut links: HashMap<(u64, u64), String> = HashMap::new();
        self.ctx.walk(|e| -> Result<(), FileSyncError> {
            let surveyed = self
                .surveyed
                .as_ref()
                .and_then(|s| s.get(e.rel))
                .filter(|st| kind_of(st.mode) == Some(e.kind));
            let fresh = match surveyed {
                Some(st) => Ok(*st),
                None => e.lstat(),
            };
            let st = match fresh {
                Ok(st) => st,
                // Gone since the directory was listed: fsutil skips it too.
                Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(source) => {
                    return Err(WalkError::Stat {
                        path: e.path.to_path_buf(),
                        source,
                    }
                    .into())
                }
            };
            let path = match std::str::from_utf8(e.rel) {
                Ok(p) => p.to_string(),
                Err(_) => {
                    // The wire type is a protobuf string: the name cannot
                    // travel as its bytes (the docker CLI's Go sends them).
                    let shown = String::from_utf8_lossy(e.rel).into_owned();
                    tracing::warn!(
                        "{shown:?} is not valid UTF-8: it is sent to BuildKit with U+FFFD in place of the bad bytes; rename it, exclude it, or use --builder classic"
                    );
                    shown
                }
            };
            let mode = go_file_mode(st.mode);
            let mut stat = WireStat {
                path: path.clone(),
                mode,
                uid: if self.reset_owner { 0 } else { st.uid },
                gid: if self.reset_owner { 0 } else { st.gid },
                size: 0,
                mod_time: st.mtime * 1_000_000_000 + i64::from(st.mtime_nsec),
                xattrs: xattrs(e),
                ..Default::default()
            };
            if e.kind != FileKind::Dir {
                stat.size = st.size as i64;
                (stat.devmajor, stat.devminor) = dev_major_minor(st.rdev);
                if e.kind == FileKind::Symlink {
                    let target = e.read_link().map_err(|source| WalkError::Stat {
                        path: e.path.to_path_buf(),
                        source,
                    })?;
                    stat.linkname = String::from_utf8_lossy(&target).into_owned();
                } else if st.nlink > 1 {
                    match links.get(&(st.dev, st.ino)) {
                        Some(first) => {
                            stat.linkname = first.clone();
                            stat.size = 0;
                        }
                        None => {
                            links.insert((st.dev, st.ino), path.clone());
                        }
                    }
                }
            }
            // Known before the stat leaves: the request may come at once.
            let file = (mode & go_mode::TYPE == 0).then(|| SentFile {
                rel: e.rel.into(),
                id: FileId::of(&st),
            });
            self.files
                .lock()
                .map_err(|_| FileSyncError::Closed)?
                .push(file);
            self.counters.stats.fetch_add(1, Ordering::Relaxed);
            let packet = Packet {
                r#type: PacketType::PacketStat as i32,
                stat: Some(stat),
                ..Default::default()
            };
            if send(packet) {
                Ok(())
            } else {
                Err(FileSyncError::Closed)
            }
        })?;
        let end = Packet {
            r#type: PacketType::PacketStat as i32,
            ..Default::default()
        };
        if send(end) {
            Ok(())
        } else {
            Err(FileSyncError::Closed)
        }
    }

    /// Sends the contents of file `id` as `DATA` packets and the empty
    /// `DATA` that ends it.
    pub fn send_file(
        &self,
        id: u32,
        send: &mut dyn FnMut(Packet) -> bool,
    ) -> Result<(), FileSyncError> {
        let SentFile { rel, id: sent } = self
            .files
            .lock()
            .map_err(|_| FileSyncError::Closed)?
            .get_mut(id as usize)
            .and_then(Option::take)
            .ok_or(FileSyncError::UnknownId(id))?;
        self.counters.files.fetch_add(1, Ordering::Relaxed);
        if let Some((mut file, now)) = self.open_regular(&rel) {
            let path = self.root.join(OsStr::from_bytes(&rel));
            // The contents must be those of the file whose stat went out
            // (and whose hash is in the context digest).
            if FileId::of(&now) != sent {
                return Err(FileSyncError::Changed { path });
            }
            // Each packet owns exactly its bytes: packets wait in batches,
            // so a small file must not hold a whole chunk's allocation.
            let mut scratch = vec![0u8; DATA_CHUNK.min(sent.size() as usize + 1)];
            loop {
                let n = match file.read(&mut scratch) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(source) => return Err(FileSyncError::Read { path, source }),
                };
                let buf = scratch[..n].to_vec();
                self.counters
                    .data_bytes
                    .fetch_add(n as u64, Ordering::Relaxed);
                let packet = Packet {
                    r#type: PacketType::PacketData as i32,
                    id,
                    data: buf,
                    ..Default::default()
                };
                if !send(packet) {
                    return Err(FileSyncError::Closed);
                }
            }
        }
        let end = Packet {
            r#type: PacketType::PacketData as i32,
            id,
            ..Default::default()
        };
        if send(end) {
            Ok(())
        } else {
            Err(FileSyncError::Closed)
        }
    }

    /// Opens `rel` below the directory without following any symlink on
    /// the way, without blocking on a FIFO swapped in; `None` unless it is
    /// (still) a regular file.
    fn open_regular(&self, rel: &[u8]) -> Option<(std::fs::File, Stat)> {
        let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NONBLOCK;
        let rel = OsStr::from_bytes(rel);
        let fd = match rustix::fs::openat2(
            &self.root_fd,
            rel,
            flags,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
        ) {
            Ok(fd) => fd,
            // Kernels before 5.6: the last component is still not followed.
            Err(rustix::io::Errno::NOSYS) => {
                rustix::fs::openat(&self.root_fd, rel, flags, Mode::empty()).ok()?
            }
            Err(_) => return None,
        };
        let st = Stat::fstat(&fd).ok()?;
        (rustix::fs::FileType::from_raw_mode(st.mode) == rustix::fs::FileType::RegularFile)
            .then(|| (std::fs::File::from(fd), st))
    }
}

/// The `FileSync` service of a session: the directories it offers.
pub struct FileSyncService {
    dirs: HashMap<String, SyncDir>,
    counters: Arc<Counters>,
}

impl FileSyncService {
    pub fn new(dirs: HashMap<String, SyncDir>, counters: Arc<Counters>) -> FileSyncService {
        FileSyncService { dirs, counters }
    }
}

type PacketStream = Pin<Box<dyn Stream<Item = Result<Packet, tonic::Status>> + Send>>;

/// What the file-reading thread does next.
enum Job {
    File(u32),
    Fin,
}

fn err_packet(e: &FileSyncError) -> Packet {
    Packet {
        r#type: PacketType::PacketErr as i32,
        data: e.to_string().into_bytes(),
        ..Default::default()
    }
}

#[tonic::async_trait]
impl FileSync for FileSyncService {
    type DiffCopyStream = PacketStream;
    type TarStreamStream = PacketStream;

    async fn diff_copy(
        &self,
        request: tonic::Request<tonic::Streaming<Packet>>,
    ) -> Result<tonic::Response<PacketStream>, tonic::Status> {
        let md = request.metadata();
        let req = SyncRequest::from_metadata(|key| {
            md.get_all(key)
                .iter()
                .map(|v| v.as_bytes())
                .collect::<Vec<&[u8]>>()
        });
        tracing::debug!(dir = %req.dir_name, includes = req.includes.len(), excludes = req.excludes.len(), follow = req.follow_paths.len(), "BuildKit syncs a directory");
        let Some(dir) = self.dirs.get(&req.dir_name).cloned() else {
            return Err(tonic::Status::not_found(
                FileSyncError::UnknownDir(req.dir_name).to_string(),
            ));
        };
        let counters = self.counters.clone();
        let transfer = tokio::task::spawn_blocking(move || Transfer::new(&dir, &req, counters))
            .await
            .map_err(|e| tonic::Status::internal(e.to_string()))?
            .map_err(|e| tonic::Status::invalid_argument(e.to_string()))?;
        let transfer = Arc::new(transfer);
        // Packets travel in batches: one wake-up of the runtime per batch,
        // not per stat or per small file.
        let (tx, rx) = mpsc::channel::<Vec<Packet>>(BATCHES_IN_FLIGHT);

        let stats_tx = tx.clone();
        let walker = transfer.clone();
        tokio::task::spawn_blocking(move || {
            let mut batch = Batch::new(&stats_tx);
            let result = walker.send_stats(&mut |p| batch.push(p));
            if let Err(e) = result {
                tracing::debug!(error = %e, "the stat walk stopped");
                batch.push(err_packet(&e));
            }
            batch.flush();
        });

        let (jobs_tx, jobs_rx) = std::sync::mpsc::channel::<Job>();
        let files_tx = tx;
        let reader = transfer;
        tokio::task::spawn_blocking(move || {
            let mut batch = Batch::new(&files_tx);
            loop {
                // What is ready goes out before waiting for more requests.
                let job = match jobs_rx.try_recv() {
                    Ok(job) => job,
                    Err(std::sync::mpsc::TryRecvError::Empty) => {
                        if !batch.flush() {
                            return;
                        }
                        match jobs_rx.recv() {
                            Ok(job) => job,
                            Err(_) => return,
                        }
                    }
                    Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                        batch.flush();
                        return;
                    }
                };
                match job {
                    Job::File(id) => {
                        if let Err(e) = reader.send_file(id, &mut |p| batch.push(p)) {
                            batch.push(err_packet(&e));
                            batch.flush();
                            return;
                        }
                    }
                    Job::Fin => {
                        batch.push(Packet {
                            r#type: PacketType::PacketFin as i32,
                            ..Default::default()
                        });
                        batch.flush();
                        return;
                    }
                }
            }
        });

        let mut incoming = request.into_inner();
        tokio::spawn(async move {
            loop {
                let packet = match incoming.message().await {
                    Ok(Some(p)) => p,
                    Ok(None) => return,
                    Err(e) => {
                        tracing::debug!(error = %e, "the file sync stream ended");
                        return;
                    }
                };
                match PacketType::try_from(packet.r#type) {
                    Ok(PacketType::PacketReq) if jobs_tx.send(Job::File(packet.id)).is_err() => {
                        return
                    }
                    Ok(PacketType::PacketFin) => {
                        let _ = jobs_tx.send(Job::Fin);
                        return;
                    }
                    Ok(PacketType::PacketErr) => {
                        tracing::warn!(
                            "BuildKit ended the file transfer: {}",
                            String::from_utf8_lossy(&packet.data)
                        );
                        return;
                    }
                    _ => {}
                }
            }
        });

        let out = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|batch| (batch, rx))
        })
        .flat_map(|batch| futures_util::stream::iter(batch.into_iter().map(Ok)));
        Ok(tonic::Response::new(Box::pin(out)))
    }

    async fn tar_stream(
        &self,
        _request: tonic::Request<tonic::Streaming<Packet>>,
    ) -> Result<tonic::Response<PacketStream>, tonic::Status> {
        Err(tonic::Status::unimplemented(
            "reggie-build serves directories with DiffCopy only",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn tree() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        std::fs::create_dir_all(r.join("a/b")).unwrap();
        std::fs::create_dir_all(r.join("node_modules/x")).unwrap();
        std::fs::write(r.join("a/b/c.txt"), b"ccc").unwrap();
        // Where the file system takes user attributes (tmpfs, ext4, xfs).
        rustix::fs::setxattr(
            r.join("a/b/c.txt"),
            "user.reggie",
            b"v1",
            rustix::fs::XattrFlags::empty(),
        )
        .expect("the test directory's file system takes user xattrs");
        std::fs::write(r.join("a.txt"), b"hello").unwrap();
        std::fs::write(r.join("run.sh"), b"#!/bin/sh\n").unwrap();
        std::fs::set_permissions(r.join("run.sh"), std::fs::Permissions::from_mode(0o4755))
            .unwrap();
        std::fs::write(r.join("node_modules/x/big"), vec![7u8; 200_000]).unwrap();
        std::fs::hard_link(r.join("a.txt"), r.join("z-link.txt")).unwrap();
        symlink("a/b", r.join("ln")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            r.join("fifo"),
            rustix::fs::FileType::Fifo,
            Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        t
    }

    fn stats(t: &Transfer) -> Vec<Packet> {
        let mut out = Vec::new();
        t.send_stats(&mut |p| {
            out.push(p);
            true
        })
        .unwrap();
        out
    }

    /// The paths of the stats a transfer of `root` sends, in order.
    fn sent_paths(root: &std::path::Path, req: SyncRequest) -> Vec<String> {
        let (tr, _) = transfer(root, req);
        stats(&tr)
            .into_iter()
            .filter_map(|p| p.stat.map(|s| s.path))
            .collect()
    }

    fn transfer(root: &std::path::Path, req: SyncRequest) -> (Transfer, Arc<Counters>) {
        let counters = Arc::new(Counters::default());
        let dir = SyncDir {
            root: root.to_path_buf(),
            reset_owner: true,
            surveyed: None,
        };
        (
            Transfer::new(&dir, &req, counters.clone()).unwrap(),
            counters,
        )
    }

    /// The stat sent for `path`, and the index to ask for it by.
    fn sent(packets: &[Packet], path: &str) -> (WireStat, u32) {
        let i = packets
            .iter()
            .position(|x| x.stat.as_ref().is_some_and(|s| s.path == path))
            .unwrap();
        (packets[i].stat.clone().unwrap(), i as u32)
    }

    fn fetch(t: &Transfer, id: u32) -> Vec<u8> {
        let mut data = Vec::new();
        let mut ended = false;
        t.send_file(id, &mut |p| {
            assert_eq!(p.r#type, PacketType::PacketData as i32);
            assert_eq!(p.id, id);
            assert!(!ended, "data after the end");
            if p.data.is_empty() {
                ended = true;
            }
            data.extend_from_slice(&p.data);
            true
        })
        .unwrap();
        assert!(ended);
        data
    }

    #[test]
    fn modes_are_go_file_modes() {
        let table = [
            (libc::S_IFREG | 0o644, 0o644),
            (libc::S_IFDIR | 0o755, go_mode::DIR | 0o755),
            (libc::S_IFLNK | 0o777, go_mode::SYMLINK | 0o777),
            (libc::S_IFIFO | 0o600, go_mode::NAMED_PIPE | 0o600),
            (
                libc::S_IFCHR | 0o666,
                go_mode::DEVICE | go_mode::CHAR_DEVICE | 0o666,
            ),
            (libc::S_IFBLK | 0o660, go_mode::DEVICE | 0o660),
            (libc::S_IFREG | 0o4755, go_mode::SETUID | 0o755),
            (
                libc::S_IFDIR | 0o2775,
                go_mode::DIR | go_mode::SETGID | 0o775,
            ),
            (
                libc::S_IFDIR | 0o1777,
                go_mode::DIR | go_mode::STICKY | 0o777,
            ),
        ];
        for (st, go) in table {
            assert_eq!(go_file_mode(st), go, "{st:o}");
        }
        // /dev/null is 1:3; a large device number splits as Go splits it.
        assert_eq!(dev_major_minor(0x103), (1, 3));
        assert_eq!(
            dev_major_minor((259 << 8) | 0x12 | (0x345 << 20)),
            (259, 0x34512)
        );
    }

    #[test]
    fn stats_in_fsutil_order_with_links_and_modes() {
        let t = tree();
        let (tr, counters) = transfer(t.path(), SyncRequest::default());
        let packets = stats(&tr);
        let last = packets.last().unwrap();
        assert_eq!(last.r#type, PacketType::PacketStat as i32);
        assert!(last.stat.is_none(), "the list ends with an empty STAT");
        let stats: Vec<&WireStat> = packets.iter().filter_map(|p| p.stat.as_ref()).collect();
        let paths: Vec<&str> = stats.iter().map(|s| s.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "a",
                "a/b",
                "a/b/c.txt",
                "a.txt",
                "fifo",
                "ln",
                "node_modules",
                "node_modules/x",
                "node_modules/x/big",
                "run.sh",
                "z-link.txt"
            ]
        );
        let by = |p: &str| *stats.iter().find(|s| s.path == p).unwrap();
        assert_eq!(by("a").mode, go_mode::DIR | 0o755);
        assert_eq!(by("a").size, 0);
        assert_eq!(by("a.txt").mode & go_mode::TYPE, 0);
        assert_eq!(by("a.txt").size, 5);
        assert_eq!(by("run.sh").mode, go_mode::SETUID | 0o755);
        assert_eq!(by("ln").mode, go_mode::SYMLINK | 0o777);
        assert_eq!((by("ln").linkname.as_str(), by("ln").size), ("a/b", 3));
        assert_eq!(by("fifo").mode & go_mode::TYPE, go_mode::NAMED_PIPE);
        assert_eq!(
            by("z-link.txt").linkname,
            "a.txt",
            "a hard link names the first path"
        );
        assert_eq!(by("z-link.txt").size, 0);
        assert!(stats.iter().all(|s| s.uid == 0 && s.gid == 0));
        assert_eq!(
            by("a/b/c.txt").xattrs.get("user.reggie").map(Vec::as_slice),
            Some(&b"v1"[..])
        );
        assert!(by("a.txt").xattrs.is_empty());
        let meta = std::fs::metadata(t.path().join("a.txt")).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            by("a.txt").mod_time,
            meta.mtime() * 1_000_000_000 + meta.mtime_nsec()
        );
        assert_eq!(counters.stats.load(Ordering::Relaxed), 11);
    }

    #[test]
    fn only_requested_files_are_read() {
        let t = tree();
        let (tr, counters) = transfer(t.path(), SyncRequest::default());
        let packets = stats(&tr);
        let id = |p: &str| {
            packets
                .iter()
                .filter(|x| x.stat.is_some())
                .position(|x| x.stat.as_ref().unwrap().path == p)
                .unwrap() as u32
        };
        assert_eq!(fetch(&tr, id("a/b/c.txt")), b"ccc");
        let big = fetch(&tr, id("node_modules/x/big"));
        assert_eq!(big, vec![7u8; 200_000]);
        assert_eq!(counters.files.load(Ordering::Relaxed), 2);
        assert_eq!(counters.data_bytes.load(Ordering::Relaxed), 200_003);
        // Directories, symlinks and FIFOs cannot be asked for, nor a file twice.
        for p in ["a", "ln", "fifo", "a/b/c.txt"] {
            assert!(matches!(
                tr.send_file(id(p), &mut |_| true),
                Err(FileSyncError::UnknownId(_))
            ));
        }
    }

    #[test]
    fn a_file_rewritten_after_its_stat_went_out_is_refused() {
        let t = tree();
        let (tr, _) = transfer(t.path(), SyncRequest::default());
        let packets = stats(&tr);
        let (_, id) = sent(&packets, "a/b/c.txt");
        std::fs::write(t.path().join("a/b/c.txt"), b"longer now").unwrap();
        let err = tr.send_file(id, &mut |_| true).unwrap_err();
        assert!(matches!(err, FileSyncError::Changed { .. }), "{err}");
        assert!(err.to_string().contains("run the build again"), "{err}");
    }

    #[test]
    fn the_surveys_stats_are_sent_and_a_change_since_is_refused() {
        use crate::context::tarball::TarOptions;
        let t = tree();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        let mut spec = crate::context::ContextSpec::new(t.path());
        spec.dockerfile = Some(outside.path().join("Dockerfile"));
        let ctx = spec.resolve().unwrap();
        let (_, snapshot) =
            crate::context::survey::survey_keeping_stats(&ctx, &TarOptions::default()).unwrap();
        assert!(snapshot.get(b"a/b/c.txt").is_some());
        // Changed after the survey, before BuildKit asks: the stat sent is
        // the surveyed one (what the digest describes), and the contents,
        // no longer those, are refused rather than sent under it.
        std::fs::write(t.path().join("a.txt"), b"hello, changed").unwrap();
        let dir = SyncDir {
            root: t.path().to_path_buf(),
            reset_owner: true,
            surveyed: Some(Arc::new(snapshot)),
        };
        let tr = Transfer::new(&dir, &SyncRequest::default(), Arc::default()).unwrap();
        let packets = stats(&tr);
        let (a, id) = sent(&packets, "a.txt");
        assert_eq!(a.size, 5, "the surveyed size");
        assert!(matches!(
            tr.send_file(id, &mut |_| true),
            Err(FileSyncError::Changed { .. })
        ));
        // Unchanged files go out as surveyed.
        let (_, id) = sent(&packets, "a/b/c.txt");
        assert_eq!(fetch(&tr, id), b"ccc");
        // The same stats as a fresh walk's, but for the changed file.
        let (fresh, _) = transfer(t.path(), SyncRequest::default());
        let fresh = stats(&fresh);
        assert_eq!(fresh.len(), packets.len());
        for (p, f) in packets.iter().zip(&fresh) {
            let (p, f) = (p.stat.as_ref(), f.stat.as_ref());
            if p.is_some_and(|s| s.path == "a.txt" || s.path == "z-link.txt") {
                continue;
            }
            assert_eq!(p, f);
        }
    }

    #[test]
    fn a_file_swapped_for_a_symlink_or_fifo_is_sent_empty() {
        let t = tree();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"do not send").unwrap();
        let (tr, _) = transfer(t.path(), SyncRequest::default());
        let packets = stats(&tr);
        let id = |p: &str| {
            packets
                .iter()
                .filter(|x| x.stat.is_some())
                .position(|x| x.stat.as_ref().unwrap().path == p)
                .unwrap() as u32
        };
        std::fs::remove_file(t.path().join("a.txt")).unwrap();
        symlink(outside.path().join("secret"), t.path().join("a.txt")).unwrap();
        assert_eq!(fetch(&tr, id("a.txt")), b"");
        // A parent directory swapped for a symlink is not followed either.
        std::fs::rename(t.path().join("a"), t.path().join("a-moved")).unwrap();
        std::fs::create_dir_all(outside.path().join("b")).unwrap();
        std::fs::write(outside.path().join("b/c.txt"), b"outside").unwrap();
        symlink(outside.path(), t.path().join("a")).unwrap();
        assert_eq!(fetch(&tr, id("a/b/c.txt")), b"");
        std::fs::remove_file(t.path().join("run.sh")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            t.path().join("run.sh"),
            rustix::fs::FileType::Fifo,
            Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        assert_eq!(
            fetch(&tr, id("run.sh")),
            b"",
            "a FIFO neither blocks nor sends"
        );
    }

    #[test]
    fn patterns_filter_like_fsutil() {
        let t = tree();
        let req = SyncRequest {
            excludes: vec![b"node_modules".to_vec(), b"**/*.sh".to_vec()],
            ..Default::default()
        };
        let paths = sent_paths(t.path(), req);
        assert_eq!(
            paths,
            ["a", "a/b", "a/b/c.txt", "a.txt", "fifo", "ln", "z-link.txt"]
        );

        // followpaths resolve symlinks: `ln/c.txt` brings `ln` and `a/b/c.txt`
        // (and its parents, sent before it).
        let req = SyncRequest {
            follow_paths: vec![b"ln/c.txt".to_vec()],
            ..Default::default()
        };
        let paths = sent_paths(t.path(), req);
        assert_eq!(paths, ["a", "a/b", "a/b/c.txt", "ln"]);

        // Includes with an exception in the excludes re-opening a directory.
        let req = SyncRequest {
            includes: vec![b"node_modules".to_vec(), b"a.txt".to_vec()],
            excludes: vec![b"node_modules".to_vec(), b"!node_modules/x/big".to_vec()],
            ..Default::default()
        };
        let paths = sent_paths(t.path(), req);
        assert_eq!(
            paths,
            [
                "a.txt",
                "node_modules",
                "node_modules/x",
                "node_modules/x/big"
            ]
        );
    }

    #[test]
    fn a_name_that_is_not_utf8_is_sent_replaced() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join(OsStr::from_bytes(b"bad\xff.txt")), b"x").unwrap();
        let (tr, _) = transfer(t.path(), SyncRequest::default());
        let paths: Vec<String> = stats(&tr)
            .into_iter()
            .filter_map(|p| p.stat.map(|s| s.path))
            .collect();
        assert_eq!(paths, ["bad\u{fffd}.txt"]);
        // Its contents still travel: the request names the raw path.
        assert_eq!(fetch(&tr, 0), b"x");
    }

    #[test]
    fn metadata_decodes_like_buildkit() {
        let md: Vec<(&str, &[u8])> = vec![
            ("dir-name", b"context"),
            ("exclude-patterns", b"node_modules"),
            ("exclude-patterns", b"caf%C3%A9+x%zz"),
            ("exclude-patterns-encoded", b"true"),
            ("followpaths", b"a%20b"),
            ("include-patterns", b"src"),
        ];
        let req = SyncRequest::from_metadata(|k| {
            md.iter()
                .filter(|(key, _)| *key == k)
                .map(|(_, v)| *v)
                .collect()
        });
        assert_eq!(req.dir_name, "context");
        assert_eq!(
            req.excludes,
            [b"node_modules".to_vec(), "café x%zz".as_bytes().to_vec()]
        );
        assert_eq!(req.follow_paths, [b"a%20b".to_vec()], "not encoded: kept");
        assert_eq!(req.includes, [b"src".to_vec()]);
    }
}
