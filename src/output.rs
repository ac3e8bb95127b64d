//! Where outputs are written: never through a symbolic link a repository
//! could have committed.
//!
//! A destination (`-o FILE`, `--write-ignore`, `discover --write`, an
//! image's `-o type=local,dest=DIR` or `type=tar,dest=FILE`) is opened one
//! component at a time, each relative to the directory descriptor before
//! it, so nothing can swap a directory for a link between a check and a
//! use. The rule:
//!
//! * the destination itself (its last component) is never a link;
//! * a directory on the way is never a link once the walk is at or below
//!   an *anchor*: the current directory, the repository holding it (the
//!   nearest directory above it with a `.git`) and any directory the
//!   caller adds (an image's context). Such a link may have come with the
//!   repository (`dist -> ~`);
//! * above the anchors, links are followed as the system does: the user's
//!   own (`/tmp -> /private/tmp` on macOS, a linked home), which no
//!   repository controls.
//!
//! ```no_run
//! use std::path::Path;
//! let dest = reggie_build::output::Destination::open(Path::new("reports/r.html"), &[], false)?;
//! let (file, tmp) = dest.create_temp()?;
//! // ... write `file`, then:
//! dest.commit(&tmp)?;
//! # Ok::<(), reggie_build::output::OutputError>(())
//! ```

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::text::show_path;

/// Why a destination cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// A directory on the way, inside the repository or the current
    /// directory, is a symbolic link.
    #[error("{} is a symbolic link inside {}: not writing {} through it (a repository may commit a link to anywhere). Give the path the link points to, or replace the link with a directory", show_path(.link), show_path(.anchor), show_path(.dest))]
    LinkOnTheWay {
        /// The link.
        link: PathBuf,
        /// The anchor it is under (current directory, repository, context).
        anchor: PathBuf,
        /// The destination asked for.
        dest: PathBuf,
    },
    /// The destination itself is a symbolic link.
    #[error("{} is a symbolic link; not writing through it. Remove the link (or give the path it points to) and run again", show_path(.0))]
    DestinationIsLink(PathBuf),
    /// A directory on the way is not a directory.
    #[error("{} is not a directory", show_path(.0))]
    NotADirectory(PathBuf),
    /// The destination has no last component (`/`, `..`).
    #[error("{} names no file", show_path(.0))]
    NoName(PathBuf),
    /// A system call failed.
    #[error("cannot write {}: {source}", show_path(.path))]
    Io {
        /// The path it was about.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl Fn(Errno) -> OutputError + '_ {
    move |e| OutputError::Io {
        path: path.to_path_buf(),
        source: e.into(),
    }
}

/// What is at a destination now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Nothing.
    Nothing,
    /// A regular file, with its permission bits.
    File(u32),
    /// A directory.
    Dir,
    /// Something else (a device, a FIFO: `/dev/null`).
    Special,
}

/// A destination whose parent directory is open: everything below is done
/// relative to that descriptor.
#[derive(Debug)]
pub struct Destination {
    parent: OwnedFd,
    name: OsString,
    path: PathBuf,
    /// Whether the parent is at or below an anchor.
    inside: bool,
}

impl Destination {
    /// Opens the directory that will hold `path` by the rule of this
    /// module; `anchors` are directories added to the current directory and
    /// its repository. With `create`, missing directories on the way are
    /// created (never through a link). The last component is not looked
    /// at here: see [`Destination::existing`].
    pub fn open(path: &Path, anchors: &[&Path], create: bool) -> Result<Destination, OutputError> {
        let cwd = std::env::current_dir().map_err(|source| OutputError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Destination::open_in(&cwd, path, anchors, create)
    }

    /// [`Destination::open`] with `cwd` (a real path) as the current
    /// directory.
    fn open_in(
        cwd: &Path,
        path: &Path,
        anchors: &[&Path],
        create: bool,
    ) -> Result<Destination, OutputError> {
        let cwd = cwd.to_path_buf();
        let mut roots: Vec<PathBuf> = vec![cwd.clone()];
        if let Some(repo) = cwd
            .ancestors()
            .find(|d| d.join(".git").symlink_metadata().is_ok())
        {
            roots.push(repo.to_path_buf());
        }
        for a in anchors {
            let a = if a.is_absolute() {
                a.to_path_buf()
            } else {
                cwd.join(a)
            };
            // Anchors are compared as real paths, as the walk tracks them.
            roots.push(std::fs::canonicalize(&a).unwrap_or(a));
        }
        let name = match path.components().next_back() {
            Some(Component::Normal(n)) => n.to_os_string(),
            _ => return Err(OutputError::NoName(path.to_path_buf())),
        };
        let parent_path = path.parent().unwrap_or(Path::new(""));
        let (mut fd, mut cur) = if path.is_absolute() {
            let fd = rustix::fs::open("/", dir_flags(), Mode::empty()).map_err(io(path))?;
            (fd, PathBuf::from("/"))
        } else {
            let fd = rustix::fs::open(&cwd, dir_flags(), Mode::empty()).map_err(io(path))?;
            (fd, cwd)
        };
        let mut shown = PathBuf::new();
        for c in parent_path.components() {
            match c {
                Component::RootDir | Component::CurDir | Component::Prefix(_) => {
                    if c == Component::RootDir {
                        shown.push("/");
                    }
                }
                Component::ParentDir => {
                    shown.push("..");
                    fd = rustix::fs::openat(&fd, "..", dir_flags(), Mode::empty())
                        .map_err(io(&shown))?;
                    cur.pop();
                }
                Component::Normal(n) => {
                    shown.push(n);
                    let anchor = roots.iter().find(|r| cur.starts_with(r));
                    let (next, real) = step(&fd, n, &cur, anchor, create, &shown, path)?;
                    fd = next;
                    cur = real;
                }
            }
        }
        Ok(Destination {
            parent: fd,
            name,
            path: path.to_path_buf(),
            inside: roots.iter().any(|r| cur.starts_with(r)),
        })
    }

    /// Whether the destination's directory is inside the current
    /// directory, its repository or an anchor given (where a link at the
    /// destination may have come with the repository).
    pub fn inside(&self) -> bool {
        self.inside
    }

    /// The destination as given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open directory that holds the destination.
    pub fn parent(&self) -> &OwnedFd {
        &self.parent
    }

    /// The destination's name in [`Destination::parent`].
    pub fn name(&self) -> &OsStr {
        &self.name
    }

    /// What is at the destination; a symbolic link is an error.
    pub fn existing(&self) -> Result<Existing, OutputError> {
        match rustix::fs::statat(
            &self.parent,
            self.name.as_os_str(),
            AtFlags::SYMLINK_NOFOLLOW,
        ) {
            Ok(st) => Ok(match FileType::from_raw_mode(st.st_mode) {
                FileType::Symlink => return Err(OutputError::DestinationIsLink(self.path.clone())),
                FileType::RegularFile => Existing::File(st.st_mode & 0o7777),
                FileType::Directory => Existing::Dir,
                _ => Existing::Special,
            }),
            Err(Errno::NOENT) => Ok(Existing::Nothing),
            Err(e) => Err(io(&self.path)(e)),
        }
    }

    /// Creates a new temporary file beside the destination (same
    /// directory, so a rename replaces it atomically): an unpredictable
    /// name, created exclusively and not through a link. Returns the file
    /// and its name.
    pub fn create_temp(&self) -> Result<(std::fs::File, OsString), OutputError> {
        let mut attempt = 0;
        loop {
            let tmp = self.temp_name();
            let opened = rustix::fs::openat(
                &self.parent,
                tmp.as_os_str(),
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o666),
            );
            match opened {
                Ok(fd) => return Ok((std::fs::File::from(fd), tmp)),
                Err(Errno::EXIST) if attempt < 16 => attempt += 1,
                Err(e) => return Err(io(&self.path)(e)),
            }
        }
    }

    /// Creates a new temporary directory beside the destination with
    /// `mode` (less the umask); returns its name.
    pub fn create_temp_dir(&self, mode: u32) -> Result<OsString, OutputError> {
        let mut attempt = 0;
        loop {
            let tmp = self.temp_name();
            match rustix::fs::mkdirat(&self.parent, tmp.as_os_str(), Mode::from_raw_mode(mode)) {
                Ok(()) => return Ok(tmp),
                Err(Errno::EXIST) if attempt < 16 => attempt += 1,
                Err(e) => return Err(io(&self.path)(e)),
            }
        }
    }

    /// Opens `name` in the parent directory as a directory, not through a
    /// link.
    pub fn open_dir(&self, name: &OsStr) -> Result<OwnedFd, OutputError> {
        rustix::fs::openat(
            &self.parent,
            name,
            dir_flags() | OFlags::NOFOLLOW,
            Mode::empty(),
        )
        .map_err(|e| match e {
            Errno::LOOP => OutputError::DestinationIsLink(self.path.clone()),
            e => io(&self.path)(e),
        })
    }

    /// Renames the temporary `tmp` to the destination's name.
    pub fn commit(&self, tmp: &OsStr) -> Result<(), OutputError> {
        rustix::fs::renameat(&self.parent, tmp, &self.parent, self.name.as_os_str())
            .map_err(io(&self.path))
    }

    /// Removes the temporary file `tmp` (a failure is not reported: it was
    /// a temporary).
    pub fn remove_temp(&self, tmp: &OsStr) {
        let _ = rustix::fs::unlinkat(&self.parent, tmp, AtFlags::empty());
    }

    fn temp_name(&self) -> OsString {
        let mut tmp = OsString::from(".");
        tmp.push(&self.name);
        tmp.push(format!(".tmp-{:016x}", random_u64()));
        tmp
    }
}

fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC
}

/// Opens the directory `name` below `fd` (whose real path is `cur`):
/// never through a link under `anchor`; a link above every anchor is
/// followed. Returns the descriptor and its real path.
fn step(
    fd: &OwnedFd,
    name: &OsStr,
    cur: &Path,
    anchor: Option<&PathBuf>,
    create: bool,
    shown: &Path,
    dest: &Path,
) -> Result<(OwnedFd, PathBuf), OutputError> {
    let nofollow = dir_flags() | OFlags::NOFOLLOW;
    let mut created = false;
    loop {
        match rustix::fs::openat(fd, name, nofollow, Mode::empty()) {
            Ok(next) => return Ok((next, cur.join(name))),
            Err(Errno::NOENT) if create && !created => {
                match rustix::fs::mkdirat(fd, name, Mode::from_raw_mode(0o777)) {
                    Ok(()) | Err(Errno::EXIST) => created = true,
                    Err(e) => return Err(io(shown)(e)),
                }
            }
            // O_NOFOLLOW on a link: ELOOP (Linux, macOS); ENOTDIR when it
            // is something else that is no directory.
            Err(Errno::LOOP) | Err(Errno::NOTDIR) => {
                let is_link = rustix::fs::statat(fd, name, AtFlags::SYMLINK_NOFOLLOW)
                    .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Symlink);
                if !is_link {
                    return Err(OutputError::NotADirectory(shown.to_path_buf()));
                }
                if let Some(anchor) = anchor {
                    return Err(OutputError::LinkOnTheWay {
                        link: shown.to_path_buf(),
                        anchor: anchor.clone(),
                        dest: dest.to_path_buf(),
                    });
                }
                let next =
                    rustix::fs::openat(fd, name, dir_flags(), Mode::empty()).map_err(io(shown))?;
                let real = real_path(&next).unwrap_or_else(|| {
                    std::fs::canonicalize(cur.join(name)).unwrap_or_else(|_| cur.join(name))
                });
                return Ok((next, real));
            }
            Err(e) => return Err(io(shown)(e)),
        }
    }
}

/// The real path of an open directory, where the system says it.
fn real_path(fd: &OwnedFd) -> Option<PathBuf> {
    let link = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).ok()?;
    (link.is_absolute() && !link.as_os_str().as_bytes().ends_with(b" (deleted)")).then_some(link)
}

/// A random number for temporary names (not for secrets).
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn links_inside_are_refused_links_above_are_followed() {
        let t = tempfile::tempdir().unwrap();
        let top = std::fs::canonicalize(t.path()).unwrap();
        let repo = top.join("repo");
        let elsewhere = top.join("elsewhere");
        std::fs::create_dir_all(repo.join(".git")).unwrap();
        std::fs::create_dir_all(repo.join("real")).unwrap();
        std::fs::create_dir_all(&elsewhere).unwrap();
        symlink(&elsewhere, repo.join("dist")).unwrap();
        symlink(&elsewhere, repo.join("real/sub")).unwrap();
        symlink("repo", top.join("link-to-repo")).unwrap();
        symlink(&elsewhere, repo.join("out.tar")).unwrap();
        {
            let open = |p: &Path, create| Destination::open_in(&repo, p, &[], create);
            for dest in ["dist/x", "real/sub/x", "./dist/y/z"] {
                let e = open(Path::new(dest), true).unwrap_err();
                assert!(matches!(e, OutputError::LinkOnTheWay { .. }), "{dest}: {e}");
                assert!(e.to_string().contains("symbolic link inside"), "{e}");
            }
            // Absolute, through the repository's own link.
            let e = open(&repo.join("dist/x"), false).unwrap_err();
            assert!(matches!(e, OutputError::LinkOnTheWay { .. }), "{e}");
            // Reached through a link above it: still the repository.
            let e = open(&top.join("link-to-repo/dist/x"), false).unwrap_err();
            assert!(matches!(e, OutputError::LinkOnTheWay { .. }), "{e}");
            // The last component is looked at by the caller.
            let d = open(Path::new("out.tar"), false).unwrap();
            assert!(matches!(
                d.existing(),
                Err(OutputError::DestinationIsLink(_))
            ));
            // A real directory inside, created on the way.
            let d = open(Path::new("real/new/deeper/x"), true).unwrap();
            assert_eq!(d.existing().unwrap(), Existing::Nothing);
            assert!(repo.join("real/new/deeper").is_dir());
            // A link above the repository (a user's own): followed.
            let d = open(&top.join("link-to-repo/real/x"), false);
            assert!(d.is_ok(), "{d:?}");
        }
        // From elsewhere, a link in the repository is outside every anchor
        // but the one given.
        let p = repo.join("dist/x");
        assert!(Destination::open_in(&elsewhere, &p, &[], false).is_ok());
        let e = Destination::open_in(&elsewhere, &p, &[repo.as_path()], false).unwrap_err();
        assert!(matches!(e, OutputError::LinkOnTheWay { .. }), "{e}");
    }

    #[test]
    fn temporaries_are_created_beside_and_renamed() {
        let t = tempfile::tempdir().unwrap();
        let d = Destination::open(&t.path().join("f.txt"), &[], false).unwrap();
        let (mut f, tmp) = d.create_temp().unwrap();
        std::io::Write::write_all(&mut f, b"hi").unwrap();
        d.commit(&tmp).unwrap();
        assert_eq!(std::fs::read(t.path().join("f.txt")).unwrap(), b"hi");
        assert!(matches!(d.existing().unwrap(), Existing::File(_)));
        assert!(Destination::open(Path::new("/"), &[], false).is_err());
    }
}
