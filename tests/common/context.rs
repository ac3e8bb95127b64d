//! "A context with these files and this Dockerfile": the one way the
//! integration tests write a build context to disk.
//!
//! ```ignore
//! let ctx = Ctx::new()
//!     .file("a.txt", "x")
//!     .dockerfile("FROM reggie-busybox:latest\nCOPY a.txt /\n");
//! reggie(&env, ctx.path(), &["-t", &images.tag("a"), "."]);
//! ```
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A build context in a temporary directory, removed on drop. The context
/// is the directory itself, or a subdirectory of it ([`Ctx::in_subdir`])
/// when a test also needs files beside the context ([`Ctx::outside`]).
pub struct Ctx {
    dir: tempfile::TempDir,
    root: PathBuf,
}

impl Default for Ctx {
    fn default() -> Ctx {
        Ctx::new()
    }
}

impl Ctx {
    /// An empty context.
    pub fn new() -> Ctx {
        let dir = tempfile::tempdir().expect("create a temporary context");
        let root = dir.path().to_path_buf();
        Ctx { dir, root }
    }

    /// An empty context in `sub` of a fresh temporary directory, so that
    /// [`Ctx::outside`] can put files next to it.
    pub fn in_subdir(sub: &str) -> Ctx {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let root = dir.path().join(sub);
        std::fs::create_dir_all(&root).unwrap();
        Ctx { dir, root }
    }

    /// Writes `rel` (parents created) with `contents`.
    pub fn file(self, rel: &str, contents: impl AsRef<[u8]>) -> Ctx {
        write(&self.root.join(rel), contents.as_ref());
        self
    }

    /// Writes `rel` with `contents` and permission bits `mode`.
    pub fn file_mode(self, rel: &str, contents: impl AsRef<[u8]>, mode: u32) -> Ctx {
        let path = self.root.join(rel);
        write(&path, contents.as_ref());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        self
    }

    /// Writes each `(path, contents)`.
    pub fn files<C: AsRef<[u8]>>(
        self,
        files: impl IntoIterator<Item = (impl AsRef<str>, C)>,
    ) -> Ctx {
        files.into_iter().fold(self, |ctx, (rel, contents)| {
            ctx.file(rel.as_ref(), contents)
        })
    }

    /// Copies the tree at `from` (files and directories, as fixtures
    /// hold) into the context.
    pub fn copy_of(self, from: &Path) -> Ctx {
        super::copy_dir(from, &self.root);
        self
    }

    /// Creates the directory `rel` (and its parents).
    pub fn dir(self, rel: &str) -> Ctx {
        std::fs::create_dir_all(self.root.join(rel)).unwrap();
        self
    }

    /// A symbolic link `rel` → `target` (not resolved).
    pub fn symlink(self, rel: &str, target: &str) -> Ctx {
        let path = self.root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(target, path).unwrap();
        self
    }

    /// The context's `Dockerfile`.
    pub fn dockerfile(self, text: &str) -> Ctx {
        self.file("Dockerfile", text)
    }

    /// The context's `.dockerignore`.
    pub fn dockerignore(self, text: &str) -> Ctx {
        self.file(".dockerignore", text)
    }

    /// Writes `rel` relative to the temporary directory, beside a context
    /// made with [`Ctx::in_subdir`] (an outside Dockerfile, an ignore file).
    pub fn outside(self, rel: &str, contents: impl AsRef<[u8]>) -> Ctx {
        write(&self.dir.path().join(rel), contents.as_ref());
        self
    }

    /// The context directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// The temporary directory holding the context (the context itself
    /// unless made with [`Ctx::in_subdir`]).
    pub fn temp(&self) -> &Path {
        self.dir.path()
    }

    /// Rewrites `rel` in place (for rebuild tests), parents created.
    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) {
        write(&self.root.join(rel), contents.as_ref());
    }
}

impl AsRef<Path> for Ctx {
    fn as_ref(&self) -> &Path {
        &self.root
    }
}

/// A context is its directory: `&ctx` goes where a `&Path` does, and
/// `ctx.join("a.txt")` is a path in it.
impl std::ops::Deref for Ctx {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.root
    }
}

fn write(path: &Path, contents: &[u8]) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}
