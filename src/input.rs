//! The one way to open untrusted input: a file of the repository (a
//! Dockerfile, an ignore file, the config, a compose file...) or a file
//! the user named on the command line (`--secret src=`, `--baseline`).
//!
//! Every read here
//!
//! * opens the file **without blocking** and reads it only when `fstat`
//!   says it is a regular file: a FIFO would hang, a device (`/dev/zero`)
//!   never end, a socket is nothing to read;
//! * reads at most a **cap** given by the caller ([`TEXT_LIMIT`] for
//!   text inputs, smaller ones where they serve, such as [`SECRET_LIMIT`]),
//!   and fails past it rather than truncating;
//! * for a repository file, resolves its path **beneath a root**: `..`
//!   and symbolic links are followed only while they stay inside it
//!   (`openat2` with `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS` where the
//!   kernel has it, Linux 5.6; otherwise a walk one component at a time
//!   with `O_NOFOLLOW`, resolving each link itself), so a link to
//!   `/etc/passwd`, `~/.docker/config.json` or `/proc/self/environ` is an
//!   error, never read. The root itself is trusted: the caller found it
//!   (a context directory, the repository's top).
//!
//! The errors ([`InputError`]) name the file and say what to do.
//!
//! # Example
//!
//! ```
//! use reggie_build::input::{self, InputError, TEXT_LIMIT};
//!
//! let repo = tempfile::tempdir()?;
//! std::fs::write(repo.path().join("Dockerfile"), "FROM scratch\n")?;
//! std::os::unix::fs::symlink("/etc/hostname", repo.path().join("leak"))?;
//!
//! let text = input::read_text(repo.path(), "Dockerfile".as_ref(), TEXT_LIMIT)?;
//! assert_eq!(text, "FROM scratch\n");
//! // A link out of the root is refused, and so is `..` leaving it.
//! let err = input::read(repo.path(), "leak".as_ref(), TEXT_LIMIT).unwrap_err();
//! assert!(matches!(err, InputError::Escapes { .. }), "{err}");
//! let err = input::read(repo.path(), "../x".as_ref(), TEXT_LIMIT).unwrap_err();
//! assert!(matches!(err, InputError::Escapes { .. }), "{err}");
//! // A file the user named is read where it is, but never a device.
//! let err = input::read_named("/dev/zero".as_ref(), 1024).unwrap_err();
//! assert!(matches!(err, InputError::NotRegular { .. }), "{err}");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};

/// The most a text input (Dockerfile, ignore file, config, compose or SST
/// file) is read to: far above any real one, far below what exhausts
/// memory.
pub const TEXT_LIMIT: u64 = 32 << 20;

/// The most a build secret (`--secret src=FILE`) is read to: BuildKit's
/// own limit (`MaxSecretSize`, 500 KiB, in its session's secrets
/// provider), which refuses a larger one anyway.
pub const SECRET_LIMIT: u64 = 500 * 1024;

/// Errors opening or reading an input file. Each names the file (as the
/// caller gave it: the root joined with the relative path) and says what
/// to do.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The file does not exist (or a directory on its way does not).
    #[error("{} does not exist", show(.path))]
    NotFound {
        /// The file.
        path: PathBuf,
    },
    /// The path leads out of its root, through `..` or a symbolic link.
    #[error("{} leads out of {} (a symbolic link or `..`): files there are read only inside it, so point it at a file inside {}", show(.path), show(.root), show(.root))]
    Escapes {
        /// The file.
        path: PathBuf,
        /// The directory it must stay in.
        root: PathBuf,
    },
    /// A symbolic link where none may be (a path read as git stores it).
    #[error("{} is reached through a symbolic link, which is not followed here", show(.path))]
    Link {
        /// The file.
        path: PathBuf,
    },
    /// A directory, not a file.
    #[error("{} is a directory, not a file: name the file inside it", show(.path))]
    Directory {
        /// The path.
        path: PathBuf,
    },
    /// A FIFO, device or socket: never read (it could block forever or
    /// never end).
    #[error("{} is {kind}, not a regular file: it is never read (it could block or never end); point it at a regular file", show(.path))]
    NotRegular {
        /// The file.
        path: PathBuf,
        /// What it is (`a FIFO`, `a character device`...).
        kind: &'static str,
    },
    /// Larger than the cap.
    #[error("{} is larger than {}: too large for what it is read as; check that it is the right file", show(.path), size(*.limit))]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The cap, in bytes.
        limit: u64,
    },
    /// Not UTF-8 where text is expected.
    #[error("{} is not valid UTF-8 text: save it as UTF-8", show(.path))]
    NotUtf8 {
        /// The file.
        path: PathBuf,
    },
    /// Any other failure (permissions, I/O).
    #[error("cannot read {}: {source}", show(.path))]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

impl InputError {
    /// Whether the file is simply not there (callers that look for an
    /// optional file treat that as "none").
    pub fn is_not_found(&self) -> bool {
        matches!(self, InputError::NotFound { .. })
    }

    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            InputError::NotFound { path }
            | InputError::Escapes { path, .. }
            | InputError::Link { path }
            | InputError::Directory { path }
            | InputError::NotRegular { path, .. }
            | InputError::TooLarge { path, .. }
            | InputError::NotUtf8 { path }
            | InputError::Io { path, .. } => path,
        }
    }
}

fn show(path: &Path) -> String {
    crate::text::show_path(path)
}

fn size(bytes: u64) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1 << 10 && bytes.is_multiple_of(1 << 10) {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} bytes")
    }
}

/// How links on the way to a file are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Links {
    /// Followed while they stay beneath the root (as Docker resolves
    /// links inside a context).
    Beneath,
    /// Never followed: a link anywhere on the path is an error (a path
    /// as git stores it, where a link is a file of its own).
    Never,
}

/// The regular file at `rel` beneath `root`, at most `limit` bytes.
/// Links and `..` are followed only while they stay inside `root`; an
/// absolute `rel` is refused.
pub fn read(root: &Path, rel: &Path, limit: u64) -> Result<Vec<u8>, InputError> {
    let path = root.join(rel);
    let fd = open_beneath(root, rel, Links::Beneath).map_err(|e| e.at(&path, root))?;
    read_fd(fd, &path, limit)
}

/// [`read`] as UTF-8 text.
pub fn read_text(root: &Path, rel: &Path, limit: u64) -> Result<String, InputError> {
    let path = root.join(rel);
    String::from_utf8(read(root, rel, limit)?).map_err(|_| InputError::NotUtf8 { path })
}

/// [`read`] with no link followed at all: a path as git stores it (a
/// link is a file of its own there, and a path below one does not exist).
pub fn read_no_links(root: &Path, rel: &Path, limit: u64) -> Result<Vec<u8>, InputError> {
    let path = root.join(rel);
    let fd = open_beneath(root, rel, Links::Never).map_err(|e| e.at(&path, root))?;
    read_fd(fd, &path, limit)
}

/// The first `limit` bytes of the regular file at `rel` beneath `root`,
/// no link followed (content rules look at an entry itself, as Docker
/// sends it); `None` for anything else or an error.
pub fn read_head(root: &Path, rel: &Path, limit: u64) -> Option<Vec<u8>> {
    let fd = open_beneath(root, rel, Links::Never).ok()?;
    let (file, len) = regular(fd, &root.join(rel)).ok()?;
    let mut data = Vec::with_capacity(len.min(limit) as usize);
    file.take(limit).read_to_end(&mut data).ok()?;
    Some(data)
}

/// A file the user named (`--secret src=`, `--baseline`), read where it
/// is: links are followed (the path is the user's explicit choice, as
/// Docker follows it), but only a regular file is read, without blocking,
/// and at most `limit` bytes.
pub fn read_named(path: &Path, limit: u64) -> Result<Vec<u8>, InputError> {
    let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY;
    let fd = rustix::fs::open(path, flags, Mode::empty())
        .map_err(|e| Failure::Os(e.into()).at(path, path))?;
    read_fd(fd, path, limit)
}

/// A file the user named on the command line, read as [`read_named`]
/// does, except when it lies inside the repository the command runs in
/// (the nearest directory above the current one with `.git`): then it is
/// a file of that repository, read as [`read`] reads one beneath it, so a
/// committed link (`secrets/token -> /proc/self/environ`) is refused, not
/// followed. Whether it lies inside is decided on the path as written
/// (made absolute, `.` and `..` applied), before any link.
pub fn read_given(path: &Path, limit: u64) -> Result<Vec<u8>, InputError> {
    if let Some((root, rel)) = inside_repository(path) {
        return read(&root, &rel, limit).map_err(|e| match e {
            // Named as the user wrote it.
            InputError::Escapes { root, .. } => InputError::Escapes {
                path: path.to_path_buf(),
                root,
            },
            other => other,
        });
    }
    read_named(path, limit)
}

/// The repository holding the current directory and `path` relative to
/// it, when `path` (as written) lies inside it.
fn inside_repository(path: &Path) -> Option<(PathBuf, PathBuf)> {
    let cwd = std::env::current_dir().ok()?;
    let repo = cwd
        .ancestors()
        .find(|d| d.join(".git").symlink_metadata().is_ok())?
        .to_path_buf();
    let mut lexical = PathBuf::new();
    for c in cwd.join(path).components() {
        match c {
            Component::ParentDir => {
                lexical.pop();
            }
            Component::CurDir => {}
            other => lexical.push(other),
        }
    }
    let rel = lexical.strip_prefix(&repo).ok()?.to_path_buf();
    Some((repo, rel))
}

/// The repository that holds `dir` (the nearest directory at or above it
/// with a `.git` entry), else `dir` itself, canonical when it exists: the
/// root that a repository's own paths (a config's) stay in.
pub fn repository_root(dir: &Path) -> PathBuf {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    dir.ancestors()
        .find(|d| d.join(".git").symlink_metadata().is_ok())
        .unwrap_or(&dir)
        .to_path_buf()
}

/// [`read_named`] as UTF-8 text.
pub fn read_named_text(path: &Path, limit: u64) -> Result<String, InputError> {
    String::from_utf8(read_named(path, limit)?).map_err(|_| InputError::NotUtf8 {
        path: path.to_path_buf(),
    })
}

/// What `lstat` says of `rel` beneath `root`, no link followed on the way
/// or at the end: `None` when it is not there (or below a link).
pub fn lstat_no_links(root: &Path, rel: &Path) -> Option<rustix::fs::Stat> {
    let parent = rel.parent().filter(|p| !p.as_os_str().is_empty());
    let name = rel.file_name()?;
    let dir = match parent {
        Some(p) => open_beneath(root, p, Links::Never).ok()?,
        None => open_dir(root).ok()?,
    };
    rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW).ok()
}

/// The entries of the directory `rel` beneath `root` (`""`: the root
/// itself), no link followed on the way or at the end: each name with
/// whether it is a directory (a link or a special file is not), sorted by
/// name, at most `limit` of them. `None` when `rel` is not a directory
/// there (or lies below a link).
///
/// ```
/// let repo = tempfile::tempdir()?;
/// std::fs::create_dir(repo.path().join("src"))?;
/// std::fs::write(repo.path().join("Makefile"), "")?;
/// std::os::unix::fs::symlink("/etc", repo.path().join("etc"))?;
/// let names = reggie_build::input::list_dir_no_links(repo.path(), "".as_ref(), 100).unwrap();
/// let names: Vec<(&[u8], bool)> = names.iter().map(|(n, d)| (n.as_slice(), *d)).collect();
/// assert_eq!(names, [(&b"Makefile"[..], false), (b"etc", false), (b"src", true)]);
/// assert!(reggie_build::input::list_dir_no_links(repo.path(), "etc".as_ref(), 100).is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn list_dir_no_links(root: &Path, rel: &Path, limit: usize) -> Option<Vec<(Vec<u8>, bool)>> {
    let flags =
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::DIRECTORY | OFlags::NONBLOCK | OFlags::NOFOLLOW;
    let fd = open_with(root, rel, Links::Never, flags).ok()?;
    let dir = rustix::fs::Dir::read_from(&fd).ok()?;
    let mut out: Vec<(Vec<u8>, bool)> = dir
        .filter_map(Result::ok)
        .filter(|e| !matches!(e.file_name().to_bytes(), b"." | b".."))
        .take(limit)
        .map(|e| {
            let name = e.file_name().to_bytes().to_vec();
            // Some file systems leave the type unknown: ask, never following.
            let is_dir = match e.file_type() {
                FileType::Unknown => {
                    rustix::fs::statat(&fd, e.file_name(), AtFlags::SYMLINK_NOFOLLOW)
                        .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory)
                }
                t => t == FileType::Directory,
            };
            (name, is_dir)
        })
        .collect();
    out.sort();
    Some(out)
}

/// The target of the symbolic link at `rel` beneath `root` (no link
/// followed on the way), at most `limit` bytes.
pub fn read_link_no_links(root: &Path, rel: &Path, limit: usize) -> Option<Vec<u8>> {
    let parent = rel.parent().filter(|p| !p.as_os_str().is_empty());
    let name = rel.file_name()?;
    let dir = match parent {
        Some(p) => open_beneath(root, p, Links::Never).ok()?,
        None => open_dir(root).ok()?,
    };
    let target = rustix::fs::readlinkat(&dir, name, Vec::new()).ok()?;
    let target = target.into_bytes();
    (target.len() <= limit).then_some(target)
}

/// Checks that `rel` resolves beneath `root` (links followed while they
/// stay inside), whatever it is: `Ok(false)` when it does not exist.
pub fn check_beneath(root: &Path, rel: &Path) -> Result<bool, InputError> {
    let path = root.join(rel);
    match open_path_beneath(root, rel) {
        Ok(_) => Ok(true),
        Err(Failure::Os(e)) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e.at(&path, root)),
    }
}

/// Why an open failed, before the path is attached.
#[derive(Debug)]
enum Failure {
    Escapes,
    Link,
    Os(io::Error),
}

impl Failure {
    fn at(self, path: &Path, root: &Path) -> InputError {
        let path = path.to_path_buf();
        match self {
            Failure::Escapes => InputError::Escapes {
                path,
                root: root.to_path_buf(),
            },
            Failure::Link => InputError::Link { path },
            Failure::Os(e) => match e.kind() {
                io::ErrorKind::NotFound => InputError::NotFound { path },
                io::ErrorKind::IsADirectory => InputError::Directory { path },
                _ if e.raw_os_error() == Some(libc::ENOTDIR) => InputError::NotFound { path },
                _ => InputError::Io { path, source: e },
            },
        }
    }
}

impl From<rustix::io::Errno> for Failure {
    fn from(e: rustix::io::Errno) -> Failure {
        Failure::Os(e.into())
    }
}

/// Reads a descriptor opened non-blocking: only a regular file, at most
/// `limit` bytes.
fn read_fd(fd: OwnedFd, path: &Path, limit: u64) -> Result<Vec<u8>, InputError> {
    let (file, len) = regular(fd, path)?;
    let mut data = Vec::with_capacity(len.min(limit) as usize);
    file.take(limit.saturating_add(1))
        .read_to_end(&mut data)
        .map_err(|source| InputError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    if data.len() as u64 > limit {
        return Err(InputError::TooLarge {
            path: path.to_path_buf(),
            limit,
        });
    }
    Ok(data)
}

/// The descriptor as a file, with its size, when `fstat` says it is a
/// regular file.
fn regular(fd: OwnedFd, path: &Path) -> Result<(File, u64), InputError> {
    let st = rustix::fs::fstat(&fd).map_err(|e| InputError::Io {
        path: path.to_path_buf(),
        source: e.into(),
    })?;
    let kind = match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => return Ok((File::from(fd), st.st_size as u64)),
        FileType::Directory => {
            return Err(InputError::Directory {
                path: path.to_path_buf(),
            })
        }
        FileType::Fifo => "a FIFO",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Socket => "a socket",
        FileType::Symlink | FileType::Unknown => "not a file",
    };
    Err(InputError::NotRegular {
        path: path.to_path_buf(),
        kind,
    })
}

const READ_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::CLOEXEC)
    .union(OFlags::NONBLOCK)
    .union(OFlags::NOCTTY);

fn open_dir(root: &Path) -> io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::DIRECTORY;
    Ok(rustix::fs::open(root, flags, Mode::empty())?)
}

/// Whether `openat2` works here: 0 not tried yet, 1 yes, 2 no (an old
/// kernel, or a seccomp filter that refuses it).
static OPENAT2: AtomicU8 = AtomicU8::new(0);

/// Opens `rel` beneath `root` for reading (non-blocking).
fn open_beneath(root: &Path, rel: &Path, links: Links) -> Result<OwnedFd, Failure> {
    open_with(root, rel, links, READ_FLAGS)
}

/// Opens `rel` beneath `root` as a path only (no read, whatever it is).
fn open_path_beneath(root: &Path, rel: &Path) -> Result<OwnedFd, Failure> {
    open_with(root, rel, Links::Beneath, OFlags::PATH | OFlags::CLOEXEC)
}

fn open_with(root: &Path, rel: &Path, links: Links, flags: OFlags) -> Result<OwnedFd, Failure> {
    if rel.is_absolute() {
        return Err(Failure::Escapes);
    }
    let dir = open_dir(root).map_err(Failure::Os)?;
    if OPENAT2.load(Ordering::Relaxed) != 2 {
        let mut resolve = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
        if links == Links::Never {
            resolve |= ResolveFlags::NO_SYMLINKS;
        }
        let rel_or_dot = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        };
        match rustix::fs::openat2(&dir, rel_or_dot, flags, Mode::empty(), resolve) {
            Ok(fd) => {
                OPENAT2.store(1, Ordering::Relaxed);
                return Ok(fd);
            }
            Err(rustix::io::Errno::XDEV) => return Err(Failure::Escapes),
            Err(rustix::io::Errno::LOOP) if links == Links::Never => return Err(Failure::Link),
            // A rename raced the lookup: the walk below retries it.
            Err(rustix::io::Errno::AGAIN) => {}
            // ENOSYS: an old kernel; EPERM: a seccomp filter (older
            // container runtimes); the walk below does the same.
            Err(rustix::io::Errno::NOSYS | rustix::io::Errno::PERM)
                if OPENAT2.load(Ordering::Relaxed) == 0 =>
            {
                OPENAT2.store(2, Ordering::Relaxed);
            }
            Err(e) => return Err(e.into()),
        }
    }
    walk_beneath(dir, rel, links, flags)
}

/// How many links one resolution follows at most (Linux's own limit).
const MAX_LINKS: usize = 40;

/// `openat2(RESOLVE_BENEATH)` done by hand: one component at a time with
/// `O_NOFOLLOW`, keeping the directories passed so that `..` goes back up
/// the way it came and never above `root`; a link's target is resolved
/// the same way (an absolute one leaves the root).
fn walk_beneath(
    root: OwnedFd,
    rel: &Path,
    links: Links,
    flags: OFlags,
) -> Result<OwnedFd, Failure> {
    let mut dirs: Vec<OwnedFd> = vec![root];
    // Components still to resolve, the next one last.
    let mut todo: Vec<Vec<u8>> = Vec::new();
    push_components(&mut todo, rel.as_os_str().as_bytes())?;
    let mut followed = 0;
    let dir_flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::DIRECTORY | OFlags::NOFOLLOW;
    loop {
        let Some(name) = todo.pop() else {
            // `rel` was empty or ended at a directory: that directory.
            let here = dirs.last().ok_or(Failure::Escapes)?;
            return Ok(rustix::fs::openat(here, ".", flags, Mode::empty())?);
        };
        if name == b".." {
            if dirs.len() == 1 {
                return Err(Failure::Escapes);
            }
            dirs.pop();
            continue;
        }
        let here = dirs.last().ok_or(Failure::Escapes)?.as_fd();
        let st = rustix::fs::statat(here, name.as_slice(), AtFlags::SYMLINK_NOFOLLOW)?;
        if FileType::from_raw_mode(st.st_mode) == FileType::Symlink {
            if links == Links::Never {
                return Err(Failure::Link);
            }
            followed += 1;
            if followed > MAX_LINKS {
                return Err(Failure::Os(io::Error::from_raw_os_error(libc::ELOOP)));
            }
            let target = rustix::fs::readlinkat(here, name.as_slice(), Vec::new())?;
            let target = target.as_bytes();
            if target.first() == Some(&b'/') {
                return Err(Failure::Escapes);
            }
            push_components(&mut todo, target)?;
            continue;
        }
        if todo.is_empty() {
            // The last component: never followed (a link was resolved above).
            return Ok(rustix::fs::openat(
                here,
                name.as_slice(),
                flags | OFlags::NOFOLLOW,
                Mode::empty(),
            )?);
        }
        let next = rustix::fs::openat(here, name.as_slice(), dir_flags, Mode::empty())?;
        dirs.push(next);
    }
}

/// Pushes the components of `path` onto `todo` so that its first is
/// popped first; `.` and empty ones are dropped.
fn push_components(todo: &mut Vec<Vec<u8>>, path: &[u8]) -> Result<(), Failure> {
    let start = todo.len();
    for c in Path::new(std::ffi::OsStr::from_bytes(path)).components() {
        match c {
            Component::Normal(n) => todo.push(n.as_bytes().to_vec()),
            Component::ParentDir => todo.push(b"..".to_vec()),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return Err(Failure::Escapes),
        }
    }
    // Bounded: a link's target is at most PATH_MAX bytes, and at most
    // MAX_LINKS of them are followed.
    todo[start..].reverse();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A root with a file, a subdirectory, links inside and out, and an
    /// outside file beside it.
    fn tree() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("sub/deep")).unwrap();
        std::fs::write(root.join("a.txt"), "a").unwrap();
        std::fs::write(root.join("sub/deep/b.txt"), "b").unwrap();
        std::fs::write(dir.path().join("outside.txt"), "CANARY").unwrap();
        symlink("a.txt", root.join("to-a")).unwrap();
        symlink("../a.txt", root.join("sub/up-a")).unwrap();
        symlink("sub/deep", root.join("to-deep")).unwrap();
        symlink("../outside.txt", root.join("out")).unwrap();
        symlink(dir.path().join("outside.txt"), root.join("abs-out")).unwrap();
        symlink("..", root.join("parent")).unwrap();
        symlink("loop", root.join("loop")).unwrap();
        symlink("/dev/zero", root.join("zero")).unwrap();
        (dir, root)
    }

    /// What reading `p` through `open` gives: the content, or the
    /// error's kind.
    fn outcome(root: &Path, p: &str, open: impl Fn(&Path) -> Result<OwnedFd, Failure>) -> String {
        let got = open(Path::new(p))
            .map_err(|e| e.at(&root.join(p), root))
            .and_then(|fd| read_fd(fd, &root.join(p), 100));
        match got {
            Ok(b) => String::from_utf8(b).unwrap(),
            Err(e) => format!("{e:?}")
                .split([' ', '{', '('])
                .next()
                .unwrap()
                .into(),
        }
    }

    fn expected(links: Links) -> Vec<(&'static str, String)> {
        let beneath = links == Links::Beneath;
        let link = |ok: &str| -> String {
            if beneath {
                ok.into()
            } else {
                "Link".into()
            }
        };
        vec![
            ("a.txt", "a".into()),
            ("sub/deep/b.txt", "b".into()),
            ("sub/../a.txt", "a".into()),
            ("to-a", link("a")),
            ("sub/up-a", link("a")),
            ("to-deep/b.txt", link("b")),
            ("out", link("Escapes")),
            ("abs-out", link("Escapes")),
            ("parent/outside.txt", link("Escapes")),
            ("../outside.txt", "Escapes".into()),
            ("sub/../../outside.txt", "Escapes".into()),
            ("loop", if beneath { "Io" } else { "Link" }.into()),
            ("zero", link("Escapes")),
            ("sub", "Directory".into()),
            ("missing", "NotFound".into()),
            ("a.txt/x", "NotFound".into()),
            ("/etc/hostname", "Escapes".into()),
        ]
    }

    #[test]
    fn openat2_and_the_walk_agree_on_every_path() {
        let (_dir, root) = tree();
        for links in [Links::Beneath, Links::Never] {
            let want = expected(links);
            // The kernel's resolution (where it has openat2) ...
            let kernel: Vec<(&str, String)> = want
                .iter()
                .map(|(p, _)| {
                    (
                        *p,
                        outcome(&root, p, |rel| open_with(&root, rel, links, READ_FLAGS)),
                    )
                })
                .collect();
            assert_eq!(kernel, want, "{links:?}");
            // ... and the walk, forced.
            let walk = |rel: &Path| {
                if rel.is_absolute() {
                    return Err(Failure::Escapes);
                }
                walk_beneath(
                    open_dir(&root).map_err(Failure::Os)?,
                    rel,
                    links,
                    READ_FLAGS,
                )
            };
            let walked: Vec<(&str, String)> = want
                .iter()
                .map(|(p, _)| (*p, outcome(&root, p, walk)))
                .collect();
            assert_eq!(walked, want, "walk, {links:?}");
        }
    }

    #[test]
    fn special_files_are_never_read_and_sizes_are_capped() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // Non-blocking: an open FIFO with no writer returns at once.
        let err = read(dir.path(), Path::new("fifo"), 10).unwrap_err();
        assert!(
            matches!(err, InputError::NotRegular { kind: "a FIFO", .. }),
            "{err}"
        );
        assert!(err.to_string().contains("never read"), "{err}");
        let err = read_named(&fifo, 10).unwrap_err();
        assert!(matches!(err, InputError::NotRegular { .. }), "{err}");
        let err = read_named(Path::new("/dev/zero"), 10).unwrap_err();
        assert!(
            matches!(
                err,
                InputError::NotRegular {
                    kind: "a character device",
                    ..
                }
            ),
            "{err}"
        );
        std::fs::write(dir.path().join("big"), [b'x'; 11]).unwrap();
        let err = read(dir.path(), Path::new("big"), 10).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}/big is larger than 10 bytes: too large for what it is read as; check that it is the right file",
                dir.path().display()
            )
        );
        assert_eq!(read(dir.path(), Path::new("big"), 11).unwrap().len(), 11);
        assert_eq!(read_head(dir.path(), Path::new("big"), 4).unwrap(), b"xxxx");
        assert_eq!(read_head(dir.path(), Path::new("fifo"), 4), None);
        assert_eq!(size(SECRET_LIMIT), "500 KiB");
        assert_eq!(size(TEXT_LIMIT), "32 MiB");
    }

    #[test]
    fn checks_and_stats_without_links() {
        let (_dir, root) = tree();
        assert!(check_beneath(&root, Path::new("to-deep")).unwrap());
        assert!(!check_beneath(&root, Path::new("nope")).unwrap());
        assert!(matches!(
            check_beneath(&root, Path::new("out")),
            Err(InputError::Escapes { .. })
        ));
        assert!(lstat_no_links(&root, Path::new("to-deep")).is_some());
        assert!(lstat_no_links(&root, Path::new("to-deep/b.txt")).is_none());
        assert_eq!(
            read_link_no_links(&root, Path::new("out"), 100).as_deref(),
            Some(&b"../outside.txt"[..])
        );
        let err = read_text(&root, Path::new("out"), 100).unwrap_err();
        assert!(err.to_string().contains("leads out of"), "{err}");
    }
}
