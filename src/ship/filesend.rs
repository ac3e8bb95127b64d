//! BuildKit's file send, the receiving side: the
//! `moby.filesync.v1.FileSend/DiffCopy` session service through which
//! BuildKit hands a `local` or `tar` export back to the client (the docker
//! CLI's `-o type=local|tar`).
//!
//! For `tar` the stream is raw `BytesMessage`s, the tar file's bytes in
//! order. For `local` it is tonistiigi/fsutil's packet protocol with
//! BuildKit as the sender (the messages are `fsutil.types.Packet`s even
//! though the method declares `BytesMessage`, hence the raw codec here):
//! BuildKit sends one `STAT` per entry in walk order and an empty `STAT`;
//! the receiver sends a `REQ` with the index of each regular file (hard
//! links excepted) and gets `DATA` packets for it ending with an empty
//! one; when it has everything it sends `FIN`, and the sender answers
//! `FIN`.
//!
//! Everything the stream says is untrusted: paths must be relative,
//! without `.`/`..` components; every directory on the way is opened
//! below the destination without following a symlink (`openat2`
//! `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`), so a symlink the stream
//! created earlier cannot lead out; modes keep the permission and sticky
//! bits only (no setuid/setgid); devices are not created. The destination
//! itself is opened by [`crate::output`]'s rule (never a link, nor through
//! one inside the repository or the current directory). A transfer lands
//! in a temporary directory beside the destination, renamed to it when
//! complete (merged into it when it already exists, as the docker CLI
//! does); a transfer that ends early (error, Ctrl-C, a broken connection)
//! removes that directory, leaving nothing partial. Memory is bounded by
//! one message (16 MiB) and one small record per file waiting for its
//! data.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use bollard_buildkit_proto::fsutil::types::packet::PacketType;
use bollard_buildkit_proto::fsutil::types::{Packet, Stat as WireStat};
use prost::Message;
use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags, Timespec, Timestamps};
use tokio::sync::{mpsc, Notify};

use super::error::ShipError;
use super::filesync::go_mode;
use super::outputs::Export;
use crate::output::{Destination, Existing};
use crate::text::excerpt;

/// Largest message accepted from the daemon.
pub const MAX_MESSAGE: usize = 16 << 20;
/// Files waiting for their data at most (each a path and a few numbers).
const MAX_PENDING: usize = 1 << 20;

/// Errors of receiving an export.
#[derive(Debug, thiserror::Error)]
pub enum FileSendError {
    #[error("BuildKit sent a path this client refuses to write: {path:?} ({reason})")]
    BadPath { path: String, reason: &'static str },
    #[error("writing the build output {path} failed: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} already exists as a directory, and the build output has a file there: remove it or pick another dest")]
    DirInTheWay { path: PathBuf },
    #[error("BuildKit's file stream is broken: {0}")]
    Protocol(String),
    #[error("BuildKit ended the export: {0}")]
    Sender(String),
    #[error(transparent)]
    Destination(#[from] crate::output::OutputError),
    #[error("the export stream ended before the transfer was complete")]
    Truncated,
}

fn io_err(path: &Path) -> impl Fn(rustix::io::Errno) -> FileSendError + '_ {
    move |e| FileSendError::Io {
        path: path.to_path_buf(),
        source: e.into(),
    }
}

/// Checks a path from the stream: relative, no empty, `.` or `..`
/// component, no NUL.
fn check_path(path: &str) -> Result<(), FileSendError> {
    let bad = |reason| FileSendError::BadPath {
        path: excerpt(path),
        reason,
    };
    if path.is_empty() {
        return Err(bad("empty"));
    }
    if path.starts_with('/') {
        return Err(bad("absolute"));
    }
    if path.contains('\0') {
        return Err(bad("a NUL byte"));
    }
    for c in path.split('/') {
        match c {
            "" => return Err(bad("an empty component")),
            "." | ".." => return Err(bad("a `.` or `..` component")),
            _ => {}
        }
    }
    Ok(())
}

/// The permission bits written: rwx for all and sticky, never
/// setuid/setgid (a build output is not a place for them).
fn unix_perm(go: u32) -> u32 {
    let mut m = go & 0o777;
    if go & go_mode::STICKY != 0 {
        m |= 0o1000;
    }
    m
}

fn timestamps(nanos: i64) -> Timestamps {
    let t = Timespec {
        tv_sec: nanos.div_euclid(1_000_000_000),
        tv_nsec: nanos.rem_euclid(1_000_000_000) as _,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

fn random_suffix() -> String {
    super::upload::random_hex(8)
}

/// A regular file waiting for its data.
struct Pending {
    path: String,
    mode: u32,
    mtime: i64,
    /// Its temporary name and open handle, from the first `DATA` on.
    open: Option<(String, std::fs::File)>,
}

/// What a `local` transfer received.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    pub entries: u64,
    pub bytes: u64,
}

/// The receiver of a `local` export (fsutil's protocol), writing below a
/// temporary directory beside `dest`; synchronous, fed one packet at a
/// time.
pub struct LocalReceiver {
    dest: PathBuf,
    /// The destination, its parent directory open.
    target: Destination,
    /// The temporary directory's name beside it, until it is placed.
    staging: Option<OsString>,
    /// Whether `dest` existed (as a directory): merged into, not replaced.
    merge: bool,
    /// The temporary directory.
    root: OwnedFd,
    next_id: u32,
    pending: HashMap<u32, Pending>,
    /// Hard links (path, target), made once every file is complete.
    links: Vec<(String, String)>,
    /// Directories' (path, mode, mtime), set last, deepest first: a
    /// read-only directory must not stop its own contents.
    dirs: Vec<(String, u32, i64)>,
    stats_done: bool,
    fin_sent: bool,
    received: Received,
}

/// The parent directory and last component of a checked path.
fn split(path: &str) -> (&str, &str) {
    match path.rsplit_once('/') {
        Some((parent, name)) => (parent, name),
        None => ("", path),
    }
}

impl LocalReceiver {
    /// Prepares to receive into `dest` (its parents created when missing;
    /// an existing directory is merged into, as the docker CLI does).
    pub fn new(dest: &Path) -> Result<LocalReceiver, FileSendError> {
        let target = Destination::open(dest, &[], true)?;
        let merge = match target.existing()? {
            Existing::Nothing => false,
            Existing::Dir => true,
            Existing::File(_) | Existing::Special => {
                return Err(FileSendError::Io {
                    path: dest.to_path_buf(),
                    source: std::io::Error::other(
                        "it exists and is not a directory: remove it or pick another dest",
                    ),
                })
            }
        };
        let staging = target.create_temp_dir(0o777)?;
        let root = target.open_dir(&staging)?;
        Ok(LocalReceiver {
            dest: dest.to_path_buf(),
            target,
            staging: Some(staging),
            merge,
            root,
            next_id: 0,
            pending: HashMap::new(),
            links: Vec::new(),
            dirs: Vec::new(),
            stats_done: false,
            fin_sent: false,
            received: Received::default(),
        })
    }

    pub fn received(&self) -> Received {
        self.received
    }

    fn shown(&self, rel: &str) -> PathBuf {
        self.dest.join(rel)
    }

    /// Opens a directory below `dest`, never through a symlink.
    fn open_dir(&self, rel: &str) -> Result<OwnedFd, FileSendError> {
        if rel.is_empty() {
            return rustix::io::dup(&self.root).map_err(io_err(&self.dest));
        }
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let how = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
        match rustix::fs::openat2(&self.root, rel, flags, Mode::empty(), how) {
            Ok(fd) => Ok(fd),
            Err(rustix::io::Errno::XDEV) | Err(rustix::io::Errno::LOOP) => {
                Err(FileSendError::BadPath {
                    path: excerpt(rel),
                    reason: "a directory on the way is a symlink",
                })
            }
            Err(e) => Err(io_err(&self.shown(rel))(e)),
        }
    }

    /// Handles one packet; `send` takes the packets to answer with.
    /// Returns true when the transfer is complete.
    pub fn packet(
        &mut self,
        p: Packet,
        send: &mut dyn FnMut(Packet),
    ) -> Result<bool, FileSendError> {
        match PacketType::try_from(p.r#type) {
            Ok(PacketType::PacketStat) => {
                if self.stats_done {
                    return Err(FileSendError::Protocol(
                        "a STAT after the list ended".into(),
                    ));
                }
                match p.stat {
                    None => {
                        self.stats_done = true;
                        self.maybe_finish(send)?;
                    }
                    Some(stat) => {
                        let id = self.next_id;
                        self.next_id = self.next_id.checked_add(1).ok_or_else(|| {
                            FileSendError::Protocol("more than 2^32 entries".into())
                        })?;
                        self.received.entries += 1;
                        if self.stat(id, stat)? {
                            send(Packet {
                                r#type: PacketType::PacketReq as i32,
                                id,
                                ..Default::default()
                            });
                        }
                    }
                }
                Ok(false)
            }
            Ok(PacketType::PacketData) => {
                self.data(p.id, &p.data)?;
                self.maybe_finish(send)?;
                Ok(false)
            }
            Ok(PacketType::PacketFin) => {
                if self.fin_sent {
                    Ok(true)
                } else {
                    Err(FileSendError::Truncated)
                }
            }
            Ok(PacketType::PacketErr) => Err(FileSendError::Sender(excerpt(
                &String::from_utf8_lossy(&p.data),
            ))),
            _ => Err(FileSendError::Protocol(format!(
                "unexpected packet type {}",
                p.r#type
            ))),
        }
    }

    /// Whether the transfer has written everything (FIN sent).
    pub fn complete(&self) -> bool {
        self.fin_sent
    }

    fn maybe_finish(&mut self, send: &mut dyn FnMut(Packet)) -> Result<(), FileSendError> {
        if !self.stats_done || !self.pending.is_empty() || self.fin_sent {
            return Ok(());
        }
        for (path, target) in std::mem::take(&mut self.links) {
            let (tp, tn) = split(&target);
            let (pp, pn) = split(&path);
            let from = self.open_dir(tp)?;
            let to = self.open_dir(pp)?;
            let tmp = format!(".tmp.reggie-{}", random_suffix());
            rustix::fs::linkat(&from, tn, &to, tmp.as_str(), AtFlags::empty())
                .map_err(io_err(&self.shown(&path)))?;
            self.place(&to, pp, &tmp, pn)?;
        }
        // Everything in place first (a merge moves entries out of
        // directories that may end read-only), then the directories' modes
        // and times where they ended, deepest first, so a parent's mtime
        // is set after its children.
        let placed = self.place_output()?;
        let mut dirs = std::mem::take(&mut self.dirs);
        dirs.sort_by(|a, b| b.0.cmp(&a.0));
        for (path, mode, mtime) in dirs {
            let fd = open_below(&placed, &path).map_err(|e| match e {
                FileSendError::Io { source, .. } => FileSendError::Io {
                    path: self.shown(&path),
                    source,
                },
                e => e,
            })?;
            let dir = rustix::fs::openat(
                &fd,
                ".",
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(io_err(&self.shown(&path)))?;
            rustix::fs::fchmod(&dir, Mode::from_raw_mode(unix_perm(mode)))
                .map_err(io_err(&self.shown(&path)))?;
            rustix::fs::futimens(&dir, &timestamps(mtime)).map_err(io_err(&self.shown(&path)))?;
        }
        self.fin_sent = true;
        send(Packet {
            r#type: PacketType::PacketFin as i32,
            ..Default::default()
        });
        Ok(())
    }

    /// Renames `tmp` to `name` in `parent` (replacing a file, never a
    /// directory).
    fn place(
        &mut self,
        parent: &OwnedFd,
        parent_rel: &str,
        tmp: &str,
        name: &str,
    ) -> Result<(), FileSendError> {
        let rel = if parent_rel.is_empty() {
            name.to_string()
        } else {
            format!("{parent_rel}/{name}")
        };
        if let Ok(st) = rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
            if rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory {
                let _ = rustix::fs::unlinkat(parent, tmp, AtFlags::empty());
                return Err(FileSendError::DirInTheWay {
                    path: self.shown(&rel),
                });
            }
        }
        rustix::fs::renameat(parent, tmp, parent, name).map_err(io_err(&self.shown(&rel)))?;
        Ok(())
    }

    /// Moves the complete transfer to the destination: the temporary
    /// directory renamed to it, or its entries merged into the existing
    /// one. Returns the destination, open.
    fn place_output(&mut self) -> Result<OwnedFd, FileSendError> {
        let Some(staging) = self.staging.clone() else {
            return self.target.open_dir(self.target.name()).map_err(Into::into);
        };
        if !self.merge {
            self.target.commit(&staging)?;
            self.staging = None;
            return self.target.open_dir(self.target.name()).map_err(Into::into);
        }
        let into = self.target.open_dir(self.target.name())?;
        merge_into(&self.root, &into, &self.dest)?;
        // Only emptied directories are left.
        remove_tree(self.target.parent(), &staging);
        self.staging = None;
        Ok(into)
    }

    /// Creates what a `STAT` describes; true when its data is to be
    /// requested.
    fn stat(&mut self, id: u32, st: WireStat) -> Result<bool, FileSendError> {
        check_path(&st.path)?;
        let (parent_rel, name) = split(&st.path);
        let parent = self.open_dir(parent_rel)?;
        let path = self.shown(&st.path);
        let mode = st.mode;
        if mode & go_mode::DIR != 0 {
            match rustix::fs::mkdirat(&parent, name, Mode::from_raw_mode(0o700)) {
                Ok(()) => {}
                Err(rustix::io::Errno::EXIST) => {
                    let existing = rustix::fs::statat(&parent, name, AtFlags::SYMLINK_NOFOLLOW)
                        .map_err(io_err(&path))?;
                    if rustix::fs::FileType::from_raw_mode(existing.st_mode)
                        != rustix::fs::FileType::Directory
                    {
                        rustix::fs::unlinkat(&parent, name, AtFlags::empty())
                            .map_err(io_err(&path))?;
                        rustix::fs::mkdirat(&parent, name, Mode::from_raw_mode(0o700))
                            .map_err(io_err(&path))?;
                    } else {
                        // Writable for the rest of the transfer; its own
                        // mode is set at the end.
                        let fd = self.open_dir(&st.path)?;
                        let dir = rustix::fs::openat(
                            &fd,
                            ".",
                            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                            Mode::empty(),
                        )
                        .map_err(io_err(&path))?;
                        rustix::fs::fchmod(&dir, Mode::from_raw_mode(0o700))
                            .map_err(io_err(&path))?;
                    }
                }
                Err(e) => return Err(io_err(&path)(e)),
            }
            self.dirs.push((st.path, mode, st.mod_time));
            return Ok(false);
        }
        let tmp = format!(".tmp.reggie-{}", random_suffix());
        if mode & go_mode::SYMLINK != 0 {
            // The target is only text here: nothing below follows it.
            rustix::fs::symlinkat(st.linkname.as_str(), &parent, tmp.as_str())
                .map_err(io_err(&path))?;
            let _ = rustix::fs::utimensat(
                &parent,
                tmp.as_str(),
                &timestamps(st.mod_time),
                AtFlags::SYMLINK_NOFOLLOW,
            );
            self.place(&parent, parent_rel, &tmp, name)?;
            return Ok(false);
        }
        if mode & go_mode::NAMED_PIPE != 0 {
            rustix::fs::mknodat(
                &parent,
                tmp.as_str(),
                rustix::fs::FileType::Fifo,
                Mode::from_raw_mode(unix_perm(mode)),
                0,
            )
            .map_err(io_err(&path))?;
            self.place(&parent, parent_rel, &tmp, name)?;
            return Ok(false);
        }
        if mode & go_mode::TYPE != 0 {
            tracing::warn!(
                "the build output has a device or socket at {}: not created",
                excerpt(&st.path)
            );
            return Ok(false);
        }
        if !st.linkname.is_empty() {
            check_path(&st.linkname)?;
            self.links.push((st.path, st.linkname));
            return Ok(false);
        }
        if self.pending.len() >= MAX_PENDING {
            return Err(FileSendError::Protocol(format!(
                "more than {MAX_PENDING} files waiting for their data"
            )));
        }
        self.pending.insert(
            id,
            Pending {
                path: st.path,
                mode,
                mtime: st.mod_time,
                open: None,
            },
        );
        Ok(true)
    }

    /// Writes a `DATA` packet; an empty one completes the file.
    fn data(&mut self, id: u32, data: &[u8]) -> Result<(), FileSendError> {
        let Some(mut p) = self.pending.remove(&id) else {
            return Err(FileSendError::Protocol(format!(
                "data for file number {id}, which was not requested"
            )));
        };
        let (parent_rel, name) = split(&p.path);
        let (parent_rel, name) = (parent_rel.to_string(), name.to_string());
        let path = self.shown(&p.path);
        if p.open.is_none() {
            let parent = self.open_dir(&parent_rel)?;
            let tmp = format!(".tmp.reggie-{}", random_suffix());
            let fd = rustix::fs::openat(
                &parent,
                tmp.as_str(),
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                Mode::from_raw_mode(0o600),
            )
            .map_err(io_err(&path))?;
            p.open = Some((tmp, std::fs::File::from(fd)));
        }
        if !data.is_empty() {
            if let Some((_, f)) = p.open.as_mut() {
                f.write_all(data).map_err(|source| FileSendError::Io {
                    path: path.clone(),
                    source,
                })?;
            }
            self.received.bytes += data.len() as u64;
            self.pending.insert(id, p);
            return Ok(());
        }
        let Some((tmp, file)) = p.open.take() else {
            return Ok(());
        };
        rustix::fs::fchmod(file.as_fd(), Mode::from_raw_mode(unix_perm(p.mode)))
            .map_err(io_err(&path))?;
        rustix::fs::futimens(file.as_fd(), &timestamps(p.mtime)).map_err(io_err(&path))?;
        drop(file);
        let parent = self.open_dir(&parent_rel)?;
        self.place(&parent, &parent_rel, &tmp, &name)
    }
}

impl Drop for LocalReceiver {
    /// A transfer that did not complete leaves nothing: its temporary
    /// directory goes, with whatever arrived.
    fn drop(&mut self) {
        if let Some(staging) = self.staging.take() {
            remove_tree(self.target.parent(), &staging);
        }
    }
}

/// Opens the directory `rel` below `root`, never through a symlink.
fn open_below(root: &OwnedFd, rel: &str) -> Result<OwnedFd, FileSendError> {
    let how = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
    let rel = if rel.is_empty() { "." } else { rel };
    rustix::fs::openat2(
        root,
        rel,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        how,
    )
    .map_err(io_err(Path::new(rel)))
}

/// The names in the directory `dir`, with whether each is a directory
/// (not following links).
fn list(dir: &OwnedFd) -> rustix::io::Result<Vec<(OsString, bool)>> {
    use std::os::unix::ffi::OsStrExt;
    let fd = rustix::fs::openat(
        dir,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut out = Vec::new();
    for entry in rustix::fs::Dir::read_from(&fd)? {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        let name = OsStr::from_bytes(name).to_os_string();
        let is_dir = rustix::fs::statat(&fd, name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW)
            .is_ok_and(|st| {
                rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory
            });
        out.push((name, is_dir));
    }
    Ok(out)
}

/// Moves every entry of `from` into `to` (directories that exist in both
/// merged, level by level, without recursion): what the docker CLI's
/// receiver does to an existing destination. `shown` is `to`'s path for
/// messages.
fn merge_into(from: &OwnedFd, to: &OwnedFd, shown: &Path) -> Result<(), FileSendError> {
    let mut work: Vec<String> = vec![String::new()];
    while let Some(rel) = work.pop() {
        let src = open_below(from, &rel)?;
        let dst = open_below(to, &rel)?;
        let here = shown.join(&rel);
        if !rel.is_empty() {
            // Writable while entries move in (an earlier export may have
            // left it read-only); its own mode is set at the end.
            let d = rustix::fs::openat(
                &dst,
                ".",
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(io_err(&here))?;
            rustix::fs::fchmod(&d, Mode::from_raw_mode(0o700)).map_err(io_err(&here))?;
        }
        for (name, is_dir) in list(&src).map_err(io_err(&here))? {
            let child = if rel.is_empty() {
                name.to_string_lossy().into_owned()
            } else {
                format!("{rel}/{}", name.to_string_lossy())
            };
            let existing =
                match rustix::fs::statat(&dst, name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st) => Some(rustix::fs::FileType::from_raw_mode(st.st_mode)),
                    Err(rustix::io::Errno::NOENT) => None,
                    Err(e) => return Err(io_err(&shown.join(&child))(e)),
                };
            match existing {
                Some(rustix::fs::FileType::Directory) if is_dir => {
                    work.push(child);
                    continue;
                }
                Some(rustix::fs::FileType::Directory) => {
                    return Err(FileSendError::DirInTheWay {
                        path: shown.join(&child),
                    })
                }
                Some(_) if is_dir => {
                    rustix::fs::unlinkat(&dst, name.as_os_str(), AtFlags::empty())
                        .map_err(io_err(&shown.join(&child)))?;
                }
                _ => {}
            }
            rustix::fs::renameat(&src, name.as_os_str(), &dst, name.as_os_str())
                .map_err(io_err(&shown.join(&child)))?;
        }
    }
    Ok(())
}

/// Removes the directory `name` in `parent` and everything below it,
/// without following links and without recursion (a directory list of
/// relative paths). Failures are ignored: it was a temporary.
fn remove_tree(parent: &OwnedFd, name: &OsStr) {
    let Ok(root) = rustix::fs::openat(
        parent,
        name,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return;
    };
    let mut dirs: Vec<String> = Vec::new();
    let mut work: Vec<String> = vec![String::new()];
    while let Some(rel) = work.pop() {
        let Ok(dir) = open_below(&root, &rel) else {
            continue;
        };
        // Writable, so its entries can go (a build may make it 0555).
        if let Ok(d) = rustix::fs::openat(
            &dir,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            let _ = rustix::fs::fchmod(&d, Mode::from_raw_mode(0o700));
        }
        for (entry, is_dir) in list(&dir).unwrap_or_default() {
            let child = if rel.is_empty() {
                entry.to_string_lossy().into_owned()
            } else {
                format!("{rel}/{}", entry.to_string_lossy())
            };
            if is_dir {
                work.push(child);
            } else {
                let _ = rustix::fs::unlinkat(&dir, entry.as_os_str(), AtFlags::empty());
            }
        }
        dirs.push(rel);
    }
    // Deepest last in the list: removed first.
    for rel in dirs.iter().rev().filter(|r| !r.is_empty()) {
        let (p, n) = split(rel);
        if let Ok(fd) = open_below(&root, p) {
            let _ = rustix::fs::unlinkat(&fd, n, AtFlags::REMOVEDIR);
        }
    }
    let _ = rustix::fs::unlinkat(parent, name, AtFlags::REMOVEDIR);
}

/// The receiver of a `tar` export: into a temporary file renamed to
/// `dest` when complete (removed otherwise), or onto stdout.
pub struct TarReceiver {
    out: TarOut,
    pub bytes: u64,
}

enum TarOut {
    File {
        tmp: OsString,
        dest: Destination,
        file: Option<std::fs::File>,
    },
    Stdout,
}

impl TarReceiver {
    pub fn new(export: &Export) -> Result<TarReceiver, FileSendError> {
        let out = match export {
            Export::File(dest) => {
                let target = Destination::open(dest, &[], true)?;
                if matches!(target.existing()?, Existing::Dir) {
                    return Err(FileSendError::DirInTheWay { path: dest.clone() });
                }
                let (file, tmp) = target.create_temp()?;
                TarOut::File {
                    tmp,
                    dest: target,
                    file: Some(file),
                }
            }
            _ => TarOut::Stdout,
        };
        Ok(TarReceiver { out, bytes: 0 })
    }

    pub fn write(&mut self, data: &[u8]) -> Result<(), FileSendError> {
        self.bytes += data.len() as u64;
        match &mut self.out {
            TarOut::File {
                file: Some(f),
                dest,
                ..
            } => f.write_all(data).map_err(|source| FileSendError::Io {
                path: dest.path().to_path_buf(),
                source,
            }),
            TarOut::File { dest, .. } => Err(FileSendError::Io {
                path: dest.path().to_path_buf(),
                source: std::io::Error::other("written after the end"),
            }),
            TarOut::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(data)
                    .and_then(|_| out.flush())
                    .map_err(|source| FileSendError::Io {
                        path: PathBuf::from("stdout"),
                        source,
                    })
            }
        }
    }

    /// The stream ended: the file takes its name.
    pub fn finish(&mut self) -> Result<(), FileSendError> {
        if let TarOut::File { tmp, dest, file } = &mut self.out {
            if let Some(f) = file.take() {
                f.sync_all().map_err(|source| FileSendError::Io {
                    path: dest.path().to_path_buf(),
                    source,
                })?;
                drop(f);
                if let Err(e) = dest.commit(tmp) {
                    dest.remove_temp(tmp);
                    return Err(e.into());
                }
            }
        }
        Ok(())
    }
}

impl Drop for TarReceiver {
    fn drop(&mut self) {
        if let TarOut::File {
            tmp,
            dest,
            file: Some(_),
        } = &self.out
        {
            dest.remove_temp(tmp);
        }
    }
}

/// How an export ended, for the build to wait on.
#[derive(Default)]
pub struct ExportState {
    result: Mutex<Option<Result<Received, String>>>,
    /// Why the session's connection failed, when this side ended it.
    connection: Mutex<Option<String>>,
    done: Notify,
    /// Messages received so far: a long export is progress, not a stall.
    pub messages: std::sync::atomic::AtomicU64,
}

impl ExportState {
    fn set(&self, r: Result<Received, String>) {
        if let Ok(mut slot) = self.result.lock() {
            slot.get_or_insert(r);
        }
        self.done.notify_waiters();
        self.done.notify_one();
    }

    /// The outcome, if the transfer ended; a failure names the broken
    /// connection first when that is what ended it.
    pub fn result(&self) -> Option<Result<Received, String>> {
        let r = self.result.lock().ok().and_then(|s| s.clone())?;
        Some(r.map_err(|e| self.with_connection(e)))
    }

    /// Records why the session's connection failed (the first reason).
    pub fn connection_failed(&self, why: String) {
        if let Ok(mut slot) = self.connection.lock() {
            slot.get_or_insert(why);
        }
    }

    fn with_connection(&self, e: String) -> String {
        match self.connection.lock().ok().and_then(|c| c.clone()) {
            Some(c) => format!("{c}; the transfer then failed: {e}"),
            None => e,
        }
    }

    /// The outcome, once the transfer ended.
    pub async fn wait(&self) -> Result<Received, String> {
        loop {
            let notified = self.done.notified();
            if let Some(r) = self.result() {
                return r;
            }
            notified.await;
        }
    }
}

/// gRPC messages as their bytes: `FileSend/DiffCopy` carries fsutil
/// packets or raw bytes under one declared type.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

struct RawEncoder;
struct RawDecoder;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;
    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }
    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

impl tonic::codec::Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        bytes::BufMut::put_slice(dst, &item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawDecoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Vec<u8>>, tonic::Status> {
        let n = bytes::Buf::remaining(src);
        let mut v = vec![0u8; n];
        bytes::Buf::copy_to_slice(src, &mut v);
        Ok(Some(v))
    }
}

/// Checks before a build that `export`'s destination can be written by
/// [`crate::output`]'s rule, with `anchor` (the context) as one more
/// directory where no link is followed: a build is not run for an output
/// that would be refused at its end.
pub fn check_destination(export: &Export, anchor: &Path) -> Result<(), FileSendError> {
    let dest = match export {
        Export::Dir(d) | Export::File(d) => d,
        Export::Stdout => return Ok(()),
    };
    let target = Destination::open(dest, &[anchor], false).map_err(|e| match e {
        // Parents are created at the end: a missing one is no refusal.
        crate::output::OutputError::Io { source, .. }
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            None
        }
        e => Some(e),
    });
    match target {
        Ok(t) => match (export, t.existing()?) {
            (Export::Dir(_), Existing::File(_) | Existing::Special) => Err(FileSendError::Io {
                path: dest.clone(),
                source: std::io::Error::other(
                    "it exists and is not a directory: remove it or pick another dest",
                ),
            }),
            (Export::File(_), Existing::Dir) => {
                Err(FileSendError::DirInTheWay { path: dest.clone() })
            }
            _ => Ok(()),
        },
        Err(None) => Ok(()),
        Err(Some(e)) => Err(e.into()),
    }
}

/// The `FileSend` service of a session.
#[derive(Clone)]
pub struct FileSendService {
    export: Option<Export>,
    state: Arc<ExportState>,
}

impl FileSendService {
    pub fn new(export: Option<Export>, state: Arc<ExportState>) -> FileSendService {
        FileSendService { export, state }
    }
}

type OutStream =
    Pin<Box<dyn futures_util::Stream<Item = Result<Vec<u8>, tonic::Status>> + Send + 'static>>;

struct DiffCopy(FileSendService);

impl tonic::server::StreamingService<Vec<u8>> for DiffCopy {
    type Response = Vec<u8>;
    type ResponseStream = OutStream;
    type Future = tonic::codegen::BoxFuture<tonic::Response<OutStream>, tonic::Status>;

    fn call(&mut self, request: tonic::Request<tonic::Streaming<Vec<u8>>>) -> Self::Future {
        let svc = self.0.clone();
        Box::pin(async move {
            let Some(export) = svc.export.clone() else {
                return Err(tonic::Status::failed_precondition(
                    "this build asked for no --output",
                ));
            };
            // Unbounded: the receiving loop must never wait on its own
            // answers. BuildKit reads REQs only as its four file senders
            // take them, and they wait for this side to read: a bounded
            // queue here closes that circle and both sides stop (seen on
            // a 100k-file output). What waits is bounded anyway: one REQ
            // per file waiting for its data (`MAX_PENDING`).
            let (tx, rx) = mpsc::unbounded_channel::<Result<Vec<u8>, tonic::Status>>();
            let incoming = request.into_inner();
            let state = svc.state.clone();
            tokio::spawn(async move {
                let result = match &export {
                    Export::Dir(dir) => receive_local(dir, incoming, &tx, &state).await,
                    _ => receive_tar(&export, incoming, &state).await,
                };
                if let Err(e) = &result {
                    let err = Packet {
                        r#type: PacketType::PacketErr as i32,
                        data: e.to_string().into_bytes(),
                        ..Default::default()
                    };
                    if matches!(export, Export::Dir(_)) {
                        let _ = tx.send(Ok(err.encode_to_vec()));
                    }
                }
                state.set(result.map_err(|e| e.to_string()));
            });
            let out = futures_util::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|item| (item, rx))
            });
            Ok(tonic::Response::new(Box::pin(out) as OutStream))
        })
    }
}

async fn receive_local(
    dir: &Path,
    mut incoming: tonic::Streaming<Vec<u8>>,
    tx: &mpsc::UnboundedSender<Result<Vec<u8>, tonic::Status>>,
    state: &ExportState,
) -> Result<Received, FileSendError> {
    let mut rx = LocalReceiver::new(dir)?;
    loop {
        let msg = match incoming.message().await {
            Ok(Some(m)) => {
                state
                    .messages
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                m
            }
            Ok(None) if rx.complete() => return Ok(rx.received()),
            Ok(None) => return Err(FileSendError::Truncated),
            Err(e) if rx.complete() => {
                tracing::debug!(error = %e, "the export stream ended after FIN");
                return Ok(rx.received());
            }
            Err(e) => return Err(FileSendError::Protocol(e.message().to_string())),
        };
        let packet =
            Packet::decode(&msg[..]).map_err(|e| FileSendError::Protocol(e.to_string()))?;
        let mut answers = Vec::new();
        let done = rx.packet(packet, &mut |p| answers.push(p))?;
        for a in answers {
            if tx.send(Ok(a.encode_to_vec())).is_err() {
                return Err(FileSendError::Truncated);
            }
        }
        if done {
            return Ok(rx.received());
        }
    }
}

async fn receive_tar(
    export: &Export,
    mut incoming: tonic::Streaming<Vec<u8>>,
    state: &ExportState,
) -> Result<Received, FileSendError> {
    use bollard_buildkit_proto::moby::filesync::v1::BytesMessage;
    let mut rx = TarReceiver::new(export)?;
    loop {
        match incoming.message().await {
            Ok(Some(m)) => {
                state
                    .messages
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let msg = BytesMessage::decode(&m[..])
                    .map_err(|e| FileSendError::Protocol(e.to_string()))?;
                rx.write(&msg.data)?;
            }
            Ok(None) => {
                rx.finish()?;
                return Ok(Received {
                    entries: 0,
                    bytes: rx.bytes,
                });
            }
            Err(e) => return Err(FileSendError::Protocol(e.message().to_string())),
        }
    }
}

/// The tonic service for the session router.
#[derive(Clone)]
pub struct FileSendServer(pub FileSendService);

impl tonic::server::NamedService for FileSendServer {
    const NAME: &'static str = "moby.filesync.v1.FileSend";
}

impl<B> tonic::codegen::Service<http::Request<B>> for FileSendServer
where
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = tonic::codegen::BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() == "/moby.filesync.v1.FileSend/DiffCopy" {
            let svc = DiffCopy(self.0.clone());
            return Box::pin(async move {
                let mut grpc = tonic::server::Grpc::new(RawCodec)
                    .apply_max_message_size_config(Some(MAX_MESSAGE), Some(MAX_MESSAGE));
                Ok(grpc.streaming(svc, req).await)
            });
        }
        Box::pin(async move {
            let mut response = http::Response::new(tonic::body::Body::default());
            let headers = response.headers_mut();
            headers.insert(
                tonic::Status::GRPC_STATUS,
                (tonic::Code::Unimplemented as i32).into(),
            );
            headers.insert(
                http::header::CONTENT_TYPE,
                tonic::metadata::GRPC_CONTENT_TYPE,
            );
            Ok(response)
        })
    }
}

/// The build's failure as the daemon reported it, unless the session's own
/// `--output` transfer failed: then that is the cause (a broken session
/// connection, a full disk), and the daemon only saw its side end
/// ("transport is closing" at the exporting step).
pub(crate) async fn export_failure_first(
    state: &ExportState,
    exporting: bool,
    failure: ShipError,
) -> ShipError {
    // Only the daemon's report of a failed step can hide a local cause;
    // a stall or a local error already is one.
    if !exporting || !matches!(failure, ShipError::Step { .. }) {
        return failure;
    }
    let mut local = state.result();
    if local.is_none() {
        // The session notices a broken connection as the daemon does;
        // give its side a moment to say why.
        local = tokio::time::timeout(std::time::Duration::from_secs(2), state.wait())
            .await
            .ok();
    }
    match local {
        Some(Err(cause)) => {
            ShipError::Export(format!("{cause} (the daemon then reported: {failure})"))
        }
        _ => failure,
    }
}

/// Waits for the `--output` transfer to land once `builder` (for the
/// message) answered the build: its last writes may still be in flight.
pub(crate) async fn wait_for_export(
    state: &ExportState,
    idle_timeout: std::time::Duration,
    builder: &str,
) -> Result<(), ShipError> {
    let received = tokio::time::timeout(idle_timeout, state.wait())
        .await
        .map_err(|_| {
            ShipError::Export(format!(
                "{builder} finished the build, but the output transfer never completed"
            ))
        })?
        .map_err(ShipError::Export)?;
    tracing::debug!(
        entries = received.entries,
        bytes = received.bytes,
        "output received"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn stat(path: &str, mode: u32) -> Packet {
        Packet {
            r#type: PacketType::PacketStat as i32,
            stat: Some(WireStat {
                path: path.into(),
                mode,
                mod_time: 1_700_000_000_000_000_000,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn link(path: &str, mode: u32, target: &str) -> Packet {
        let mut p = stat(path, mode);
        if let Some(s) = p.stat.as_mut() {
            s.linkname = target.into();
        }
        p
    }

    fn end() -> Packet {
        Packet {
            r#type: PacketType::PacketStat as i32,
            ..Default::default()
        }
    }

    fn data(id: u32, bytes: &[u8]) -> Packet {
        Packet {
            r#type: PacketType::PacketData as i32,
            id,
            data: bytes.to_vec(),
            ..Default::default()
        }
    }

    /// Feeds packets; returns the types of the answers.
    fn feed(
        rx: &mut LocalReceiver,
        packets: Vec<Packet>,
    ) -> Result<Vec<(i32, u32)>, FileSendError> {
        let mut answers = Vec::new();
        for p in packets {
            rx.packet(p, &mut |a| answers.push((a.r#type, a.id)))?;
        }
        Ok(answers)
    }

    fn leftovers(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.contains(".tmp.reggie-") {
                    out.push(name.clone());
                }
                if e.file_type().unwrap().is_dir() {
                    stack.push(e.path());
                }
            }
        }
        out
    }

    #[test]
    fn a_tree_arrives_with_modes_links_and_data() {
        let t = tempfile::tempdir().unwrap();
        let dest = t.path().join("out/deeper");
        let mut rx = LocalReceiver::new(&dest).unwrap();
        let req = PacketType::PacketReq as i32;
        let answers = feed(
            &mut rx,
            vec![
                stat("a", go_mode::DIR | 0o555),
                stat("a/f.txt", 0o644),
                stat("a/run", go_mode::SETUID | 0o755),
                link("ln", go_mode::SYMLINK | 0o777, "a/f.txt"),
                link("z", 0o644, "a/f.txt"),
                end(),
                data(1, b"hello "),
                data(2, b"#!"),
                data(1, b"world"),
                data(2, b""),
                data(1, b""),
            ],
        )
        .unwrap();
        assert_eq!(
            answers,
            [(req, 1), (req, 2), (PacketType::PacketFin as i32, 0)]
        );
        assert!(rx.complete());
        assert_eq!(
            rx.received(),
            Received {
                entries: 5,
                bytes: 13
            }
        );
        assert_eq!(std::fs::read(dest.join("a/f.txt")).unwrap(), b"hello world");
        assert_eq!(std::fs::read(dest.join("z")).unwrap(), b"hello world");
        assert_eq!(
            std::fs::metadata(dest.join("z")).unwrap().ino(),
            std::fs::metadata(dest.join("a/f.txt")).unwrap().ino()
        );
        assert_eq!(
            std::fs::read_link(dest.join("ln")).unwrap(),
            Path::new("a/f.txt")
        );
        let mode = |p: &str| {
            std::fs::symlink_metadata(dest.join(p))
                .unwrap()
                .permissions()
                .mode()
                & 0o7777
        };
        assert_eq!(mode("a"), 0o555);
        assert_eq!(mode("a/f.txt"), 0o644);
        assert_eq!(mode("a/run"), 0o755, "setuid is dropped");
        assert_eq!(
            std::fs::metadata(dest.join("a/f.txt")).unwrap().mtime(),
            1_700_000_000
        );
        assert!(leftovers(&dest).is_empty());
        let beside: Vec<_> = std::fs::read_dir(t.path().join("out"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(
            beside,
            ["deeper"],
            "the temporary directory became the destination"
        );
        std::fs::set_permissions(dest.join("a"), std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// Issue 23 items 4 and 11: the destination is never a link (nor
    /// reached through one below the current directory); an existing
    /// directory is merged into, read-only directories included.
    #[test]
    fn destinations_are_not_links_and_existing_ones_are_merged() {
        let t = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), t.path().join("link")).unwrap();
        assert!(matches!(
            LocalReceiver::new(&t.path().join("link")),
            Err(FileSendError::Destination(
                crate::output::OutputError::DestinationIsLink(_)
            ))
        ));
        assert!(matches!(
            TarReceiver::new(&Export::File(t.path().join("link"))),
            Err(FileSendError::Destination(
                crate::output::OutputError::DestinationIsLink(_)
            ))
        ));
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);

        let dest = t.path().join("out");
        std::fs::create_dir_all(dest.join("a")).unwrap();
        std::fs::write(dest.join("a/old"), "kept").unwrap();
        std::fs::write(dest.join("a/f.txt"), "replaced").unwrap();
        std::fs::set_permissions(dest.join("a"), std::fs::Permissions::from_mode(0o555)).unwrap();
        let mut rx = LocalReceiver::new(&dest).unwrap();
        feed(
            &mut rx,
            vec![
                stat("a", go_mode::DIR | 0o750),
                stat("a/f.txt", 0o644),
                stat("b", go_mode::DIR | 0o755),
                stat("b/g", 0o644),
                end(),
                data(1, b"new"),
                data(1, b""),
                data(3, b""),
            ],
        )
        .unwrap();
        assert!(rx.complete());
        drop(rx);
        assert_eq!(std::fs::read(dest.join("a/f.txt")).unwrap(), b"new");
        assert_eq!(std::fs::read(dest.join("a/old")).unwrap(), b"kept");
        assert_eq!(std::fs::read(dest.join("b/g")).unwrap(), b"");
        let mode = std::fs::metadata(dest.join("a"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o750);
        let names: Vec<_> = std::fs::read_dir(t.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}: no temporary directory left");
    }

    #[test]
    fn escaping_paths_are_refused() {
        let t = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        for bad in [
            vec![stat("../evil", 0o644)],
            vec![stat("/etc/evil", 0o644)],
            vec![stat("a/../../evil", 0o644)],
            vec![stat("./x", 0o644)],
            vec![stat("a//b", 0o644)],
            vec![stat("", 0o644)],
            vec![link("h", 0o644, "../outside")],
            // A symlink the stream made, then a path through it.
            vec![
                link(
                    "out",
                    go_mode::SYMLINK | 0o777,
                    outside.path().to_str().unwrap(),
                ),
                stat("out/evil", 0o644),
            ],
            vec![
                link(
                    "d",
                    go_mode::SYMLINK | 0o777,
                    outside.path().to_str().unwrap(),
                ),
                stat("d/sub", go_mode::DIR | 0o755),
            ],
        ] {
            let mut rx = LocalReceiver::new(t.path()).unwrap();
            let err = feed(&mut rx, bad.clone()).unwrap_err();
            assert!(
                matches!(err, FileSendError::BadPath { .. }),
                "{bad:?}: {err}"
            );
        }
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
        assert!(!t.path().parent().unwrap().join("evil").exists());
    }

    #[test]
    fn an_unfinished_transfer_leaves_no_temporary_files() {
        let t = tempfile::tempdir().unwrap();
        {
            let mut rx = LocalReceiver::new(t.path()).unwrap();
            feed(
                &mut rx,
                vec![
                    stat("d", go_mode::DIR | 0o751),
                    stat("d/big", 0o644),
                    end(),
                    data(1, &[7u8; 1000]),
                ],
            )
            .unwrap();
            assert!(!rx.complete());
            // Staged beside the destination, not in it.
            assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 0);
        }
        // Nothing of it: no temporary, no directory, no partial file.
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 0);
        // Into a new destination: not even the destination.
        {
            let mut rx = LocalReceiver::new(&t.path().join("new")).unwrap();
            feed(
                &mut rx,
                vec![
                    stat("d", go_mode::DIR | 0o555),
                    stat("d/f", 0o644),
                    end(),
                    data(1, b"x"),
                ],
            )
            .unwrap();
        }
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 0);
        // Data for a file never requested is a protocol error.
        let mut rx = LocalReceiver::new(t.path()).unwrap();
        assert!(matches!(
            feed(&mut rx, vec![data(3, b"x")]),
            Err(FileSendError::Protocol(_))
        ));
    }

    #[test]
    fn a_tar_lands_only_when_complete() {
        let t = tempfile::tempdir().unwrap();
        let dest = t.path().join("sub/out.tar");
        {
            let mut rx = TarReceiver::new(&Export::File(dest.clone())).unwrap();
            rx.write(b"partial").unwrap();
        }
        assert!(!dest.exists());
        assert_eq!(
            std::fs::read_dir(t.path().join("sub")).unwrap().count(),
            0,
            "the temporary file is removed"
        );
        let mut rx = TarReceiver::new(&Export::File(dest.clone())).unwrap();
        rx.write(b"ab").unwrap();
        rx.write(b"cd").unwrap();
        rx.finish().unwrap();
        drop(rx);
        assert_eq!(std::fs::read(&dest).unwrap(), b"abcd");
    }
}
