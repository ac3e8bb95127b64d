//! The context engine: which files Docker would send for a build, and the
//! tar stream that carries them.
//!
//! ```text
//! ContextSpec ──resolve──▶ Context ──walk──▶ entries ──tarball──▶ tar stream
//!  (dir, -f, builder)      (ignore rules)     (lexical order)
//! ```
//!
//! * [`ContextSpec::resolve`] finds the Dockerfile and the ignore file that
//!   applies (BuildKit's `<Dockerfile>.dockerignore` first, or the classic
//!   builder's root `.dockerignore` only) and compiles it.
//! * [`Context::walk`] visits what would be sent, in Docker's order;
//!   [`Context::walk_fold`] does the same on every core for accumulators
//!   that can be split by subtree ([`fold::Fold`], as `analyze` uses).
//! * [`tarball`] writes that as a tar stream; [`digest`] hashes it.

pub mod digest;
pub mod fold;
pub(crate) mod hash_cache;
pub mod ignore;
pub mod survey;
// Reworked by the tar-writer dedup of issue 15; not documented yet.
pub mod tarball;
pub(crate) mod walk;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::input::InputError;

pub use hash_cache::HashCache;
pub use ignore::{Decision, Matcher};
pub use walk::{Entry, FileKind, Stat, WalkError, WalkSummary};

/// Which Docker builder's rules to reproduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Builder {
    /// BuildKit (the default of `docker build` since Docker 23):
    /// `<Dockerfile>.dockerignore` beside the Dockerfile replaces the root
    /// `.dockerignore`; the Dockerfile and ignore file are excluded like any
    /// other file; wildcard exceptions reopen excluded directories.
    #[default]
    BuildKit,
    /// The classic builder (`DOCKER_BUILDKIT=0`): root `.dockerignore`
    /// only; the Dockerfile and `.dockerignore` are always sent; only plain
    /// prefix exceptions reopen an excluded directory.
    Classic,
}

/// What the user asked for: a context directory, a Dockerfile and a builder.
#[derive(Debug, Clone)]
pub struct ContextSpec {
    /// The context directory (`PATH`).
    pub root: PathBuf,
    /// The Dockerfile (`-f`); `None` means `PATH/Dockerfile`.
    pub dockerfile: Option<PathBuf>,
    /// Whose rules decide what is sent: BuildKit's or the classic builder's.
    pub builder: Builder,
}

/// Errors while setting a context up.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("context directory {path} does not exist or is not a directory: pass an existing directory as PATH")]
    /// The context directory does not exist or is not a directory.
    MissingRoot {
        /// The directory given.
        path: PathBuf,
    },
    #[error("cannot read context directory {path}: {source}")]
    /// The context directory cannot be read.
    UnreadableRoot {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    #[error("Dockerfile {path} not found: pass its path with -f/--file")]
    /// The Dockerfile does not exist.
    MissingDockerfile {
        /// The Dockerfile looked for.
        path: PathBuf,
    },
    #[error("cannot read the ignore file: {0}")]
    /// The ignore file exists but cannot be read.
    UnreadableIgnore(InputError),
    #[error(transparent)]
    /// The ignore file cannot be parsed (a line too long).
    IgnoreRead(#[from] ignore::ReadError),
    #[error(transparent)]
    /// A pattern of the ignore file is refused.
    IgnoreCompile(#[from] ignore::CompileError),
}

/// The ignore file that applies to a build, if any.
#[derive(Debug, Clone)]
pub struct IgnoreSource {
    /// Where it was read from.
    pub path: PathBuf,
    /// Its lines as Docker normalises them.
    pub lines: Vec<ignore::IgnoreLine>,
}

/// A resolved build context, ready to walk.
#[derive(Debug, Clone)]
pub struct Context {
    root: PathBuf,
    dockerfile: PathBuf,
    /// The Dockerfile's path relative to the root, when inside it.
    dockerfile_rel: Option<Vec<u8>>,
    builder: Builder,
    ignore: Option<IgnoreSource>,
    matcher: Matcher,
    descend: walk::DescendRule,
    include: Option<walk::Include>,
    /// Whether the walk reads file sizes ([`Entry::size`]).
    sizes: bool,
}

impl ContextSpec {
    /// A spec for `root` with the default Dockerfile and BuildKit rules.
    pub fn new(root: impl Into<PathBuf>) -> ContextSpec {
        ContextSpec {
            root: root.into(),
            dockerfile: None,
            builder: Builder::BuildKit,
        }
    }

    /// Finds the Dockerfile and ignore file and compiles the rules.
    pub fn resolve(&self) -> Result<Context, ContextError> {
        let root = self.root.clone();
        match std::fs::metadata(&root) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(ContextError::MissingRoot { path: root }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ContextError::MissingRoot { path: root })
            }
            Err(source) => return Err(ContextError::UnreadableRoot { path: root, source }),
        }
        let dockerfile = match &self.dockerfile {
            Some(path) => path.clone(),
            None => {
                // docker/cli falls back to a lowercase `dockerfile`.
                let upper = root.join("Dockerfile");
                let lower = root.join("dockerfile");
                if !upper.exists() && lower.exists() {
                    lower
                } else {
                    upper
                }
            }
        };
        if !dockerfile.is_file() {
            return Err(ContextError::MissingDockerfile { path: dockerfile });
        }
        let dockerfile_rel = relative_to(&root, &dockerfile);

        let ignore = self.find_ignore_file(&root, &dockerfile)?;
        let (matcher, descend) = compile_rules(
            &root,
            ignore.as_ref(),
            dockerfile_rel.as_deref(),
            self.builder,
        )?;
        Ok(Context {
            root,
            dockerfile,
            dockerfile_rel,
            builder: self.builder,
            ignore,
            matcher,
            descend,
            include: None,
            sizes: false,
        })
    }

    fn find_ignore_file(
        &self,
        root: &Path,
        dockerfile: &Path,
    ) -> Result<Option<IgnoreSource>, ContextError> {
        // Each is read only inside the directory it belongs to: the
        // context, or the directory of a Dockerfile named outside it.
        let mut candidates: Vec<(PathBuf, PathBuf)> = Vec::new();
        if self.builder == Builder::BuildKit {
            let (scope, mut rel) = dockerfile_scope(root, dockerfile);
            rel.push(".dockerignore");
            candidates.push((scope, PathBuf::from(rel)));
        }
        candidates.push((root.to_path_buf(), PathBuf::from(".dockerignore")));
        for (scope, rel) in candidates {
            match crate::input::read(&scope, &rel, crate::input::TEXT_LIMIT) {
                Ok(bytes) => {
                    let path = scope.join(&rel);
                    let lines = ignore::read_patterns(&path, &bytes)?;
                    return Ok(Some(IgnoreSource { path, lines }));
                }
                Err(e) if e.is_not_found() || matches!(e, InputError::Directory { .. }) => {}
                Err(e) => return Err(ContextError::UnreadableIgnore(e)),
            }
        }
        Ok(None)
    }
}

impl Context {
    /// A directory as BuildKit syncs it from a client session: excluded by
    /// the patterns it sends (already read from the ignore file by its
    /// frontend), with BuildKit's rules. There is no Dockerfile in it.
    pub fn for_sync(root: PathBuf, excludes: &[Vec<u8>]) -> Result<Context, ContextError> {
        let label = Path::new("(exclude patterns BuildKit sent)");
        let mut matcher = Matcher::default();
        for (i, p) in excludes.iter().enumerate() {
            matcher.push(label, i + 1, p, String::from_utf8_lossy(p).into_owned())?;
        }
        let descend = walk::DescendRule::new(&matcher, Builder::BuildKit);
        Ok(Context {
            dockerfile: root.clone(),
            root,
            dockerfile_rel: None,
            builder: Builder::BuildKit,
            ignore: None,
            matcher,
            descend,
            include: None,
            sizes: false,
        })
    }

    /// The context directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The Dockerfile.
    pub fn dockerfile(&self) -> &Path {
        &self.dockerfile
    }

    /// The Dockerfile relative to the context root, if it lies inside it.
    pub fn dockerfile_rel(&self) -> Option<&[u8]> {
        self.dockerfile_rel.as_deref()
    }

    /// Reads the Dockerfile through [`crate::input`], a regular file of at
    /// most [`crate::input::TEXT_LIMIT`] bytes: one inside the context is
    /// resolved inside it (as BuildKit does: a link out of the context is
    /// refused); one named outside it (`-f`, or a config path, which the
    /// config keeps inside the repository) is the user's choice and read
    /// where it is.
    pub fn read_dockerfile(&self) -> Result<Vec<u8>, InputError> {
        match &self.dockerfile_rel {
            Some(rel) => {
                use std::os::unix::ffi::OsStrExt;
                let rel = Path::new(std::ffi::OsStr::from_bytes(rel));
                crate::input::read(&self.root, rel, crate::input::TEXT_LIMIT)
            }
            None => crate::input::read_named(&self.dockerfile, crate::input::TEXT_LIMIT),
        }
    }

    /// The builder whose rules apply.
    pub fn builder(&self) -> Builder {
        self.builder
    }

    /// The ignore file that applies, if any.
    pub fn ignore_file(&self) -> Option<&IgnoreSource> {
        self.ignore.as_ref()
    }

    /// The compiled rules (including those the classic CLI appends).
    pub fn matcher(&self) -> &Matcher {
        &self.matcher
    }

    /// The same context restricted to what `patterns` reach (context-root
    /// relative, Docker pattern syntax; a directory covers everything
    /// below it), as BuildKit restricts it to the paths a Dockerfile reads.
    /// With `filter` false, every sent entry is still visited and
    /// [`Entry::needed`] marks the reached ones.
    pub fn with_includes(
        &self,
        patterns: &[Vec<u8>],
        filter: bool,
    ) -> Result<Context, ignore::CompileError> {
        let mut matcher = Matcher::default();
        let label = Path::new("(Dockerfile paths)");
        for p in patterns {
            matcher.push_include(label, p)?;
        }
        let mut ctx = self.clone();
        ctx.include = Some(walk::Include::new(matcher, filter));
        Ok(ctx)
    }

    /// Whether the include patterns (if any) reach `rel`, a context-root
    /// relative path: what a build restricted by [`Context::with_includes`]
    /// can read there. Without includes, everything is reachable.
    pub fn reaches(&self, rel: &[u8]) -> bool {
        match &self.include {
            None => true,
            Some(inc) => inc
                .matcher
                .matches_or_parent_matches(rel)
                .is_ok_and(|v| v.reached()),
        }
    }

    /// The same context, with the walk reading each regular file's size
    /// into [`Entry::size`].
    pub fn with_sizes(mut self) -> Context {
        self.sizes = true;
        self
    }

    /// The same context with another ignore file's contents (`label` names
    /// it in messages), e.g. to check a suggested ignore file.
    pub fn with_ignore_text(&self, label: &Path, text: &[u8]) -> Result<Context, ContextError> {
        let lines = ignore::read_patterns(label, text)?;
        let source = IgnoreSource {
            path: label.to_path_buf(),
            lines,
        };
        let (matcher, descend) = compile_rules(
            &self.root,
            Some(&source),
            self.dockerfile_rel.as_deref(),
            self.builder,
        )?;
        let mut ctx = self.clone();
        ctx.ignore = Some(source);
        ctx.matcher = matcher;
        ctx.descend = descend;
        Ok(ctx)
    }

    /// Why a path is in or out of the context; see [`Explanation`].
    pub fn explain(&self, rel: &[u8]) -> Result<Explanation, ignore::PatternError> {
        walk::explain(self, rel)
    }
}

/// Compiles the ignore rules; the classic CLI re-includes the Dockerfile and
/// `.dockerignore` when they are excluded (docker/cli's
/// `TrimBuildFilesFromExcludes`).
fn compile_rules(
    root: &Path,
    ignore: Option<&IgnoreSource>,
    dockerfile_rel: Option<&[u8]>,
    builder: Builder,
) -> Result<(Matcher, walk::DescendRule), ContextError> {
    let mut matcher = match ignore {
        Some(src) => Matcher::new(&src.path, &src.lines)?,
        None => Matcher::default(),
    };
    if builder == Builder::Classic {
        let label = ignore
            .map(|i| i.path.clone())
            .unwrap_or_else(|| root.join(".dockerignore"));
        if matcher.legacy_matches(b".dockerignore") {
            matcher.push(&label, 0, b"!.dockerignore", "!.dockerignore".into())?;
        }
        if let Some(rel) = dockerfile_rel {
            if matcher.legacy_matches(rel) {
                let mut p = b"!".to_vec();
                p.extend_from_slice(rel);
                let raw = String::from_utf8_lossy(&p).into_owned();
                matcher.push(&label, 0, &p, raw)?;
            }
        }
    }
    let descend = walk::DescendRule::new(&matcher, builder);
    Ok((matcher, descend))
}

/// The decision for one path, as `explain` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// Whether the path is sent.
    pub included: bool,
    /// The rule that decided (index into [`Matcher::rules`]), if any.
    pub rule: Option<usize>,
    /// When an excluded ancestor directory is never entered, its path.
    pub via_directory: Option<Vec<u8>>,
}

/// `path` relative to `root` as `/`-separated bytes, when it lies inside.
/// Where a Dockerfile is read from: the context and its path there when
/// it lies inside, else its own directory and its name.
fn dockerfile_scope(root: &Path, dockerfile: &Path) -> (PathBuf, OsString) {
    use std::os::unix::ffi::OsStringExt;
    if let Some(rel) = relative_to(root, dockerfile) {
        return (root.to_path_buf(), OsString::from_vec(rel));
    }
    let dir = match dockerfile.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = dockerfile
        .file_name()
        .map_or_else(|| OsString::from("."), |n| n.to_os_string());
    (dir, name)
}

fn relative_to(root: &Path, path: &Path) -> Option<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    let root = std::fs::canonicalize(root).ok()?;
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    let dir = std::fs::canonicalize(parent.unwrap_or(Path::new("."))).ok()?;
    let rel_dir = dir.strip_prefix(&root).ok()?;
    let name = path.file_name()?;
    let mut rel = rel_dir.as_os_str().as_bytes().to_vec();
    if !rel.is_empty() {
        rel.push(b'/');
    }
    rel.extend_from_slice(name.as_bytes());
    Some(rel)
}
