//! The one way to run git on a repository that is not trusted.
//!
//! A repository's own configuration (`.git/config`, `.gitattributes`,
//! `.git/info/attributes`) can name commands that git runs on its own:
//! `core.fsmonitor`, hooks, clean/smudge/process filters, diff drivers
//! and textconv, `core.pager`, and, in a partial clone, the fetch of a
//! missing object (`core.sshCommand`, a remote helper). reggie-build only
//! reads from git (revisions, trees, blobs, the index), so every command
//! runs with all of that off:
//!
//! | what | how |
//! | --- | --- |
//! | fsmonitor | `-c core.fsmonitor=false` |
//! | hooks | `-c core.hooksPath=/dev/null` |
//! | filters, diff drivers | attributes from an empty source: `-c core.attributesFile=/dev/null`, `GIT_ATTR_SOURCE` = the empty tree (git 2.40+, ignored before), and no command here reads work-tree content through git (see `affected`'s work-tree comparison) |
//! | external diff, textconv | `GIT_EXTERNAL_DIFF` cleared; `--no-ext-diff --no-textconv` on diffs |
//! | fetching | `GIT_NO_LAZY_FETCH=1`, `GIT_ALLOW_PROTOCOL=` (none), `-c protocol.allow=never`, `GIT_TERMINAL_PROMPT=0` |
//! | pager | `--no-pager`, `GIT_PAGER=cat` |
//! | writes | `--no-optional-locks` (no index refresh written) |
//! | which repository | `GIT_DIR`/`GIT_WORK_TREE` from the work tree found once ([`Repo::discover`]), `-c safe.bareRepository=explicit` |
//! | replaced objects | `GIT_NO_REPLACE_OBJECTS=1` (a `refs/replace/` ref cannot swap a commit) |
//!
//! The user's own configuration (global and system) is trusted and still
//! read; the `-c` options above win over every file. Environment
//! variables that point git elsewhere (`GIT_INDEX_FILE`,
//! `GIT_OBJECT_DIRECTORY`, `GIT_SSH_COMMAND`...) are cleared.
//!
//! A bare repository committed inside the work tree (`HEAD`, `objects/`,
//! `refs/` as ordinary files) is never taken for the repository: the work
//! tree is the nearest directory with a `.git` entry, and git is told so.
//! The one exception is the user's own choice: `GIT_DIR` (with
//! `GIT_WORK_TREE`, else the current directory, as git reads them) set in
//! reggie-build's environment names the repository for every directory
//! inside that work tree. The environment is the user's, not the
//! repository's, so it is trusted like their global configuration.
//!
//! Both gits on a Debian machine accept every flag here (2.39 and 2.47).
//!
//! # Example
//!
//! ```no_run
//! let repo = reggie_build::git::Repo::discover(std::path::Path::new("."))
//!     .expect("a git work tree");
//! let head = repo.run(&["rev-parse", "--verify", "HEAD"])?;
//! println!("{}", String::from_utf8_lossy(&head.unwrap_or_default()));
//! # Ok::<(), reggie_build::git::GitError>(())
//! ```

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Errors running git.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// git could not be started.
    #[error("cannot run git: {0}. Install git (it must be on PATH)")]
    Missing(#[source] std::io::Error),
}

/// The configuration every git command gets on its command line, which
/// wins over the repository's files.
const CONFIG: &[&str] = &[
    "core.fsmonitor=false",
    "core.hooksPath=/dev/null",
    "core.attributesFile=/dev/null",
    "protocol.allow=never",
    "safe.bareRepository=explicit",
    "core.pager=cat",
    "gc.auto=0",
    "maintenance.auto=false",
    "submodule.recurse=false",
    "log.showSignature=false",
];

/// Environment variables that would point git at other files or
/// programs: the repository's own are what is asked for.
const CLEARED: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_CEILING_DIRECTORIES",
    "GIT_DISCOVERY_ACROSS_FILESYSTEM",
    "GIT_EXTERNAL_DIFF",
    "GIT_DIFF_OPTS",
    "GIT_SSH",
    "GIT_SSH_COMMAND",
    "GIT_PROXY_COMMAND",
    "GIT_ASKPASS",
    "SSH_ASKPASS",
    "GIT_EDITOR",
    "GIT_SEQUENCE_EDITOR",
    "GIT_REPLACE_REF_BASE",
    "GIT_ATTR_SOURCE",
];

/// The empty tree of a SHA-1 repository.
const EMPTY_TREE_SHA1: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
/// The empty tree of a SHA-256 repository.
const EMPTY_TREE_SHA256: &str = "6ef19b41225c5369f1c104d45d8d85efa9b057b53b14b4b9b939dd74decc5321";

/// A git work tree, found once.
#[derive(Debug, Clone)]
pub struct Repo {
    top: PathBuf,
    git_dir: PathBuf,
    sha256: bool,
}

impl Repo {
    /// The work tree holding `dir`: the nearest directory at or above it
    /// with a `.git` entry (a directory, or a file naming one, as in a
    /// linked work tree or submodule), when git accepts it. `None` outside
    /// a work tree. A bare repository is never taken, even when `dir` is
    /// one (committed files that look like a repository).
    pub fn discover(dir: &Path) -> Option<Repo> {
        let dir = std::fs::canonicalize(dir).ok()?;
        let (top, git_dir) = match Self::from_environment() {
            Some((top, git_dir)) if dir.starts_with(&top) => (top, git_dir),
            _ => {
                let top = dir
                    .ancestors()
                    .find(|d| d.join(".git").symlink_metadata().is_ok())?
                    .to_path_buf();
                let git_dir = top.join(".git");
                (top, git_dir)
            }
        };
        let mut repo = Repo {
            git_dir,
            top,
            sha256: false,
        };
        let format = repo.run(&["rev-parse", "--show-object-format"]).ok()??;
        repo.sha256 = format.starts_with(b"sha256");
        Some(repo)
    }

    /// The repository the user named in this process's environment:
    /// `GIT_DIR`, and `GIT_WORK_TREE` or else the current directory (git's
    /// own reading of the pair), both made absolute.
    fn from_environment() -> Option<(PathBuf, PathBuf)> {
        let git_dir = std::fs::canonicalize(std::env::var_os("GIT_DIR")?).ok()?;
        let top = match std::env::var_os("GIT_WORK_TREE") {
            Some(t) => std::fs::canonicalize(t).ok()?,
            None => std::env::current_dir().ok()?,
        };
        Some((top, git_dir))
    }

    /// The work tree's top directory.
    pub fn top(&self) -> &Path {
        &self.top
    }

    /// The empty tree's id, in the repository's object format.
    pub fn empty_tree(&self) -> &'static str {
        if self.sha256 {
            EMPTY_TREE_SHA256
        } else {
            EMPTY_TREE_SHA1
        }
    }

    /// Whether objects are named with SHA-256 (else SHA-1).
    pub fn is_sha256(&self) -> bool {
        self.sha256
    }

    /// A hardened `git` command for this repository (see the module
    /// docs), run in its top directory, stdin closed: add the
    /// subcommand and its arguments.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new("git");
        for var in CLEARED {
            cmd.env_remove(var);
        }
        cmd.current_dir(&self.top)
            .env("GIT_DIR", &self.git_dir)
            .env("GIT_WORK_TREE", &self.top)
            .env("GIT_NO_LAZY_FETCH", "1")
            .env("GIT_ALLOW_PROTOCOL", "")
            .env("GIT_PROTOCOL_FROM_USER", "0")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_PAGER", "cat")
            .env("PAGER", "cat")
            .env("GIT_OPTIONAL_LOCKS", "0")
            .env("GIT_NO_REPLACE_OBJECTS", "1")
            // Attributes from the empty tree, not the work tree: git
            // 2.40+ honours it, older ones ignore it.
            .env("GIT_ATTR_SOURCE", self.empty_tree())
            .args(["--no-pager", "--no-optional-locks"]);
        for c in CONFIG {
            cmd.args(["-c", c]);
        }
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Runs `git ARGS` and returns its stdout; `None` when it exits
    /// non-zero (its stderr goes to the `-v` log).
    pub fn run(&self, args: &[&str]) -> Result<Option<Vec<u8>>, GitError> {
        let out = self
            .command()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .map_err(GitError::Missing)?;
        if !out.status.success() {
            tracing::debug!(
                "git {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return Ok(None);
        }
        Ok(Some(out.stdout))
    }

    /// The one-line output of `git ARGS` (trimmed), when it succeeds and
    /// prints something.
    pub fn line(&self, args: &[&str]) -> Option<String> {
        let out = self.run(args).ok()??;
        let s = String::from_utf8(out).ok()?.trim().to_string();
        (!s.is_empty()).then_some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::git;

    #[test]
    fn a_committed_bare_repository_is_not_the_repository() {
        let dir = tempfile::tempdir().unwrap();
        let top = dir.path();
        git(top, &["init", "-q", "-b", "main"]);
        git(top, &["commit", "-q", "--allow-empty", "-m", "real"]);
        // A bare repository's files, committed in a subdirectory.
        let fake = top.join("ctx");
        git(top, &["init", "-q", "--bare", "ctx"]);
        std::fs::write(
            fake.join("config"),
            "[remote \"origin\"]\n\turl = https://evil.example/x\n",
        )
        .unwrap();
        let repo = Repo::discover(&fake).unwrap();
        assert_eq!(repo.top(), std::fs::canonicalize(top).unwrap());
        assert_eq!(repo.line(&["config", "--get", "remote.origin.url"]), None);
        let head = repo.line(&["rev-parse", "HEAD"]).unwrap();
        assert_eq!(head.len(), 40);
        assert_eq!(repo.empty_tree(), EMPTY_TREE_SHA1);
        // Outside any work tree: none, even in a bare repository.
        let bare = tempfile::tempdir().unwrap();
        git(bare.path(), &["init", "-q", "--bare", "."]);
        assert!(Repo::discover(bare.path()).is_none());
    }

    #[test]
    fn an_empty_dot_git_is_no_repository() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(".git")).unwrap();
        assert!(Repo::discover(dir.path()).is_none());
    }
}
