//! `reggie-build affected`: which images a git change affects, and the
//! first Dockerfile step whose build cache it busts.
//!
//! Both revisions are read from git (the Dockerfile, the ignore file, the
//! config), modelled as BuildKit's numbered steps (`steps`), and compared
//! step by step: a step is rebuilt when its instruction or what it sees
//! (`ARG`/`ENV` above it, build args, platform) changed, when a changed
//! file reaches a path it reads (after the ignore file), when an ignore
//! file change adds or removes a file it reads, when the step before it or
//! the stage it copies from is rebuilt. Everything else stays cached.

pub(crate) mod git;
mod reach;
pub mod render;
pub(crate) mod steps;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::{self, Config, ConfigError};
use crate::context::ignore::{self, gopath::clean, Matcher};
use crate::plan::dockerfile::{self, DockerfileError, PlanOptions};

use git::{Change, Git, Status};
use reach::{under, IgnoreRules, Reader};
use steps::Model;

/// The report's schema version (like `analyze`'s).
pub const SCHEMA: u32 = 1;

/// Errors of `affected`.
#[derive(Debug, thiserror::Error)]
pub enum AffectedError {
    #[error(transparent)]
    /// `git` cannot be run.
    GitMissing(#[from] crate::git::GitError),
    #[error("{what} is not in this clone: it is a partial clone, whose objects git fetches on demand, and reggie-build never lets git fetch (a repository's config could run a command then). Fetch the history you compare first, or clone without --filter")]
    /// An object a partial clone lacks.
    MissingObject {
        /// The object, as `REV:PATH`.
        what: String,
    },
    #[error("`git {args}` failed: {stderr}")]
    /// A git command failed.
    Git {
        /// Its arguments.
        args: String,
        /// What it said.
        stderr: String,
    },
    #[error("{} is not in a git repository: run `reggie-build affected` inside a clone", path.display())]
    /// The directory is not in a git repository.
    NotARepo {
        /// The directory.
        path: PathBuf,
    },
    #[error("`{rev}` is not a usable revision name: pass a branch, tag or commit, e.g. --base origin/main")]
    /// A revision name git could misread: empty, starting with `-`, or
    /// holding a newline or NUL.
    BadRevision {
        /// The name given.
        rev: String,
    },
    #[error("the base revision `{rev}` is not in this clone, which is shallow (it has only the last commits): fetch more history with `git fetch --deepen=50` (or `git fetch origin {rev}` for a branch), or check out with `fetch-depth: 0` in actions/checkout")]
    /// The base revision is missing from a shallow clone.
    ShallowBase {
        /// The base revision.
        rev: String,
    },
    #[error("the {side} revision `{rev}` was not found: check its name, or fetch it with `git fetch origin {rev}`")]
    /// A revision does not exist.
    MissingRevision {
        /// `base` or `head`.
        side: &'static str,
        /// The revision.
        rev: String,
    },
    #[error("the config {path} is not in the head revision {rev}: commit it, pass --worktree, or name another with --config")]
    /// The config file is not in the head revision.
    MissingConfig {
        /// The config, repository-relative.
        path: String,
        /// The head revision.
        rev: String,
    },
    #[error("{path} is larger than 16 MiB: it cannot be a Dockerfile, ignore file or config")]
    /// A file read from a revision is too large to be an input.
    TooLarge {
        /// The file, repository-relative.
        path: String,
    },
    #[error(transparent)]
    /// The config is not valid.
    Config(#[from] ConfigError),
    #[error("{} is outside the repository {}: affected compares revisions of files inside it", path.display(), top.display())]
    /// A path given is outside the repository.
    OutsideRepo {
        /// The path.
        path: PathBuf,
        /// The repository's top directory.
        top: PathBuf,
    },
    #[error("image `{image}`: {} is outside the repository: affected compares revisions of files inside it", path.display())]
    /// A path of the config is outside the repository.
    ConfigPathOutside {
        /// The image that names it.
        image: String,
        /// The path.
        path: PathBuf,
    },
    #[error("image `{image}`: Dockerfile {path} does not exist in {rev} (or is a symlink): fix `dockerfile` in the config")]
    /// An image's Dockerfile is not in a revision.
    MissingDockerfile {
        /// The image.
        image: String,
        /// Its Dockerfile, repository-relative.
        path: String,
        /// The revision.
        rev: String,
    },
    #[error("image `{image}`: {source}")]
    /// An image's Dockerfile cannot be planned.
    Dockerfile {
        /// The image.
        image: String,
        /// Why.
        source: DockerfileError,
    },
    #[error("image `{image}`: {source}")]
    /// An image's ignore file is refused.
    Ignore {
        /// The image.
        image: String,
        /// Why.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{0}")]
    /// Finding the images (without a config) failed.
    Discover(String),
    #[error("no image to check: {0}")]
    /// There is no image to compare.
    NoImages(String),
}

/// The head side of the comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Head {
    /// A revision (default `HEAD`).
    Rev(String),
    /// The work tree as it is, untracked files included.
    Worktree,
}

/// What to compare.
#[derive(Debug, Clone)]
pub struct Options {
    /// The base revision (`--base`).
    pub base: String,
    /// The head side (`--head`, or `--worktree`).
    pub head: Head,
    /// The config file on disk (default: `reggie-build.toml` here or above).
    pub config: Option<PathBuf>,
    /// Where to start looking for the repository and config.
    pub dir: PathBuf,
    /// Only these images (empty: all).
    pub images: Vec<String>,
}

/// An image's build inputs, repository-relative.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageDef {
    /// Its name.
    pub name: String,
    /// Its build context.
    pub context: String,
    /// Its Dockerfile.
    pub dockerfile: String,
    /// The stage built.
    pub target: Option<String>,
    /// The platform built for.
    pub platform: Option<String>,
    /// Build arguments.
    pub build_args: BTreeMap<String, String>,
}

impl ImageDef {
    fn plan(&self) -> PlanOptions {
        PlanOptions {
            target: self.target.clone(),
            build_args: self.build_args.clone(),
            platform: self.platform.clone(),
            // Cache busts are predicted for BuildKit, which builds only
            // the stages the target depends on.
            every_stage_to_target: false,
        }
    }
    /// The two ignore files BuildKit looks for, in order.
    fn ignore_candidates(&self) -> [String; 2] {
        [
            format!("{}.dockerignore", self.dockerfile),
            join(&self.context, ".dockerignore"),
        ]
    }
}

/// A revision as given and as resolved.
#[derive(Debug, Clone, Serialize)]
pub struct Revision {
    /// The name given (`HEAD`, a branch, `worktree`...).
    pub rev: String,
    /// The commit; `None` for the work tree.
    pub commit: Option<String>,
}

/// The whole answer.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Version of this JSON schema.
    pub schema: u32,
    /// The base revision.
    pub base: Revision,
    /// The head revision.
    pub head: Revision,
    /// Changed paths (renames count twice).
    pub changed_files: usize,
    /// One verdict per image, in config order.
    pub images: Vec<ImageReport>,
}

/// One image's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct ImageReport {
    /// The image's name.
    pub name: String,
    /// Its build context, repository-relative.
    pub context: String,
    /// Its Dockerfile, repository-relative.
    pub dockerfile: String,
    /// Whether the change rebuilds any of its steps.
    pub affected: bool,
    /// Why, one sentence each (empty when unaffected).
    pub reasons: Vec<String>,
    /// The first rebuilt step of each stage that has one, in build order.
    pub first_busted: Vec<StepReport>,
    /// Every step of the stages built, in Dockerfile order.
    pub steps: Vec<StepReport>,
}

/// One step's prediction.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    /// BuildKit's label, as in `[runtime 3/7]`.
    pub label: String,
    /// Its line in the Dockerfile.
    pub line: usize,
    /// The instruction, shortened.
    pub instruction: String,
    /// Whether BuildKit will find it in its cache.
    pub cached: bool,
    /// Why it is rebuilt (empty when cached).
    pub causes: Vec<String>,
    /// Changed files that reach it (shared by the reports of images
    /// built the same way: a large rename lists thousands).
    pub files: std::sync::Arc<[String]>,
    /// Steps of the same stage before it (all cached when this is the
    /// first rebuilt one).
    pub position: usize,
}

/// Repository-relative `a/b`, cleaned (`.` for the top).
fn join(dir: &str, name: &str) -> String {
    let joined = if dir.is_empty() || dir == "." {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    };
    rel_clean(&joined)
}

fn rel_clean(p: &str) -> String {
    let c = clean(p.as_bytes());
    String::from_utf8_lossy(&c).into_owned()
}

fn show(p: &[u8]) -> String {
    String::from_utf8_lossy(p).into_owned()
}

/// Images from a config text at one revision.
fn config_images(
    label: &Path,
    top: &Path,
    cfg_dir: &str,
    text: &[u8],
) -> Result<Vec<ImageDef>, AffectedError> {
    let text = String::from_utf8_lossy(text);
    let parsed = Config::parse(label, &text)?;
    let mut out = Vec::new();
    for img in parsed.images {
        // Paths come out joined to the label's directory; re-root them at
        // the config's directory in the repository.
        let rel = |p: &Path| -> Result<String, AffectedError> {
            let outside = || AffectedError::ConfigPathOutside {
                image: img.name.clone(),
                path: p.to_path_buf(),
            };
            let base = label.parent().unwrap_or(Path::new(""));
            let inner = p.strip_prefix(base).unwrap_or(p);
            // An absolute path: inside the repository or not at all.
            let (cfg_dir, inner) = if inner.is_absolute() {
                ("", inner.strip_prefix(top).map_err(|_| outside())?)
            } else {
                (cfg_dir, inner)
            };
            let joined = rel_clean(&format!("/{}/{}", cfg_dir, inner.to_string_lossy()));
            // Cleaning clamps `..` at the root: catch paths that leave it.
            let raw = format!("{}/{}", cfg_dir, inner.to_string_lossy());
            if crate::config::climbs_out(&raw, 0) {
                return Err(outside());
            }
            let r = joined.trim_start_matches('/').to_string();
            Ok(if r.is_empty() { ".".into() } else { r })
        };
        out.push(ImageDef {
            name: img.name.clone(),
            context: rel(&img.context)?,
            dockerfile: rel(&img.dockerfile)?,
            target: img.target,
            platform: img.platform,
            build_args: img.build_args,
        });
    }
    Ok(out)
}

/// Runs the comparison.
pub fn affected(opts: &Options) -> Result<Report, AffectedError> {
    let git = Git::discover(&opts.dir)?;
    let top = std::fs::canonicalize(&git.top).unwrap_or_else(|_| git.top.clone());
    // GitHub gives an all-zero `before` for a push that creates a branch:
    // nothing to compare with, so the empty tree (everything is new).
    let null_base = !opts.base.is_empty() && opts.base.bytes().all(|b| b == b'0');
    let base_commit = match git.commit(&opts.base)? {
        _ if null_base => git.empty_tree()?,
        Some(c) => c,
        None if git.is_shallow()? => {
            return Err(AffectedError::ShallowBase {
                rev: opts.base.clone(),
            })
        }
        None => {
            return Err(AffectedError::MissingRevision {
                side: "base",
                rev: opts.base.clone(),
            })
        }
    };
    let head_commit = match &opts.head {
        Head::Worktree => None,
        Head::Rev(r) => Some(
            git.commit(r)?
                .ok_or_else(|| AffectedError::MissingRevision {
                    side: "head",
                    rev: r.clone(),
                })?,
        ),
    };
    let checked_out = git.commit("HEAD")?;
    // Symlinks along COPY sources are followed on disk, which is the head
    // only when it is what is checked out.
    let head_on_disk = head_commit.is_none() || head_commit == checked_out;

    // The config, at both revisions.
    let config_path = match &opts.config {
        Some(p) => Some(p.clone()),
        None => config::find(&opts.dir),
    };
    let (head_defs, base_defs) = match &config_path {
        Some(path) => {
            let abs = std::fs::canonicalize(path).map_err(|source| {
                ConfigError::Read(crate::input::InputError::Io {
                    path: path.clone(),
                    source,
                })
            })?;
            let rel = abs
                .strip_prefix(&top)
                .map_err(|_| AffectedError::OutsideRepo {
                    path: path.clone(),
                    top: top.clone(),
                })?
                .to_string_lossy()
                .into_owned();
            let cfg_dir = Path::new(&rel)
                .parent()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            let head_text = match &head_commit {
                None => crate::input::read(&top, Path::new(&rel), crate::input::TEXT_LIMIT)
                    .map_err(ConfigError::Read)?,
                Some(c) => git
                    .read(Some(c), std::slice::from_ref(&rel))?
                    .pop()
                    .flatten()
                    .ok_or_else(|| AffectedError::MissingConfig {
                        path: rel.clone(),
                        rev: short(c),
                    })?,
            };
            let head = config_images(path, &top, &cfg_dir, &head_text)?;
            let base_text = git
                .read(Some(&base_commit), std::slice::from_ref(&rel))?
                .pop()
                .flatten();
            // A config that does not parse at the base (or is not there)
            // tells nothing: the head's definitions stand for both.
            let base = base_text
                .and_then(|t| config_images(path, &top, &cfg_dir, &t).ok())
                .unwrap_or_default();
            (head, base)
        }
        None => {
            let found = crate::discover::discover(&top)
                .map_err(|e| AffectedError::Discover(e.to_string()))?;
            let defs: Vec<ImageDef> = found
                .into_iter()
                .map(|b| ImageDef {
                    name: b.name,
                    context: rel_clean(&b.context.to_string_lossy()),
                    dockerfile: rel_clean(&b.dockerfile.to_string_lossy()),
                    target: b.target,
                    platform: None,
                    build_args: BTreeMap::new(),
                })
                .collect();
            (defs, Vec::new())
        }
    };
    let mut selected: Vec<ImageDef> = head_defs;
    if !opts.images.is_empty() {
        for n in &opts.images {
            if !selected.iter().any(|d| &d.name == n) {
                return Err(AffectedError::NoImages(format!(
                    "no image named `{n}`; images: {}",
                    selected
                        .iter()
                        .map(|d| d.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        selected.retain(|d| opts.images.contains(&d.name));
    }
    if selected.is_empty() {
        return Err(AffectedError::NoImages(
            "no reggie-build.toml and no Dockerfile found; run `reggie-build discover --write`"
                .into(),
        ));
    }
    // The first base image of each name.
    let mut base_by_name: HashMap<&str, &ImageDef> = HashMap::new();
    for b in &base_defs {
        base_by_name.entry(b.name.as_str()).or_insert(b);
    }
    let pairs: Vec<(ImageDef, ImageDef)> = selected
        .into_iter()
        .map(|h| {
            let b = base_by_name
                .get(h.name.as_str())
                .map(|b| (*b).clone())
                .unwrap_or_else(|| h.clone());
            (h, b)
        })
        .collect();

    let changes = git.diff(&base_commit, head_commit.as_deref())?;

    // Read every Dockerfile and ignore file once per side.
    let wanted = |defs: &mut dyn Iterator<Item = &ImageDef>| -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
        for d in defs {
            for p in std::iter::once(d.dockerfile.clone()).chain(d.ignore_candidates()) {
                if seen.insert(p.clone()) {
                    v.push(p);
                }
            }
        }
        v
    };
    let head_paths = wanted(&mut pairs.iter().map(|p| &p.0));
    let base_paths = wanted(&mut pairs.iter().map(|p| &p.1));
    let head_files: HashMap<String, Option<Vec<u8>>> = head_paths
        .iter()
        .cloned()
        .zip(git.read(head_commit.as_deref(), &head_paths)?)
        .collect();
    let base_files: HashMap<String, Option<Vec<u8>>> = base_paths
        .iter()
        .cloned()
        .zip(git.read(Some(&base_commit), &base_paths)?)
        .collect();

    let head_rev = Revision {
        rev: match &opts.head {
            Head::Worktree => "worktree".into(),
            Head::Rev(r) => r.clone(),
        },
        commit: head_commit.clone(),
    };
    let base_rev = Revision {
        rev: opts.base.clone(),
        commit: Some(base_commit.clone()),
    };
    let mut images: Vec<ImageReport> = Vec::new();
    let mut flips = Flips::new();
    let mut reach = reach::Reach::new(&changes);
    // Images that differ only by name (one build pushed under several
    // names) share the verdict: evaluated once, by the first of them.
    let mut verdicts: HashMap<(ImageDef, ImageDef), usize> = HashMap::new();
    for (h, b) in &pairs {
        let unnamed = |d: &ImageDef| ImageDef {
            name: String::new(),
            ..d.clone()
        };
        let key = (unnamed(h), unnamed(b));
        if let Some(&first) = verdicts.get(&key) {
            let same = renamed(&images[first], &h.name);
            images.push(same);
            continue;
        }
        verdicts.insert(key, images.len());
        let side_head = Side {
            def: h,
            files: &head_files,
            rev_label: head_rev.rev.clone(),
            disk: head_on_disk.then(|| top.join(&h.context)),
        };
        let side_base = Side {
            def: b,
            files: &base_files,
            rev_label: if null_base {
                "the null base revision (a new branch)".into()
            } else {
                short(&base_commit)
            },
            disk: None,
        };
        images.push(evaluate(
            &git,
            head_commit.as_deref(),
            &side_head,
            &side_base,
            &changes,
            &mut flips,
            &mut reach,
        )?);
    }
    Ok(Report {
        schema: SCHEMA,
        base: base_rev,
        head: head_rev,
        changed_files: changes.len(),
        images,
    })
}

/// The verdict of another image built from the same inputs, under `name`
/// (the sentences naming the image say this one).
fn renamed(report: &ImageReport, name: &str) -> ImageReport {
    let mut r = report.clone();
    for (reason, step) in r.reasons.iter_mut().zip(&report.first_busted) {
        if *reason == render::bust_sentence(&report.name, step) {
            *reason = render::bust_sentence(name, step);
        }
    }
    r.name = name.to_string();
    r
}

fn short(commit: &str) -> String {
    commit.chars().take(12).collect()
}

/// One side of the comparison for one image.
struct Side<'a> {
    def: &'a ImageDef,
    files: &'a HashMap<String, Option<Vec<u8>>>,
    rev_label: String,
    /// The context directory on disk, when it is this side's.
    disk: Option<PathBuf>,
}

impl Side<'_> {
    fn file(&self, p: &str) -> Option<&Vec<u8>> {
        self.files.get(p).and_then(|f| f.as_ref())
    }

    fn ignore(&self) -> Result<IgnoreRules, AffectedError> {
        let wrap = |e: Box<dyn std::error::Error + Send + Sync>| AffectedError::Ignore {
            image: self.def.name.clone(),
            source: e,
        };
        for cand in self.def.ignore_candidates() {
            if let Some(bytes) = self.file(&cand) {
                let label = PathBuf::from(&cand);
                let lines = ignore::read_patterns(&label, bytes).map_err(|e| wrap(Box::new(e)))?;
                let matcher = Matcher::new(&label, &lines).map_err(|e| wrap(Box::new(e)))?;
                return Ok(IgnoreRules {
                    path: Some(cand),
                    matcher,
                });
            }
        }
        Ok(IgnoreRules {
            path: None,
            matcher: Matcher::default(),
        })
    }

    /// The step model; `Ok(None)` when there is no Dockerfile.
    fn model(&self, strict: bool) -> Result<Option<Model>, AffectedError> {
        let Some(bytes) = self.file(&self.def.dockerfile) else {
            if strict {
                return Err(AffectedError::MissingDockerfile {
                    image: self.def.name.clone(),
                    path: self.def.dockerfile.clone(),
                    rev: self.rev_label.clone(),
                });
            }
            return Ok(None);
        };
        let label = if strict {
            self.def.dockerfile.clone()
        } else {
            format!("{} (at {})", self.def.dockerfile, self.rev_label)
        };
        let parsed = dockerfile::parse(&label, bytes).and_then(|df| {
            let a = dockerfile::analyze(&df, &self.def.plan())?;
            Ok((df, a))
        });
        let (df, analysis) = match parsed {
            Ok(x) => x,
            // The base's Dockerfile not parsing only means nothing of it
            // can be reused.
            Err(_) if !strict => return Ok(None),
            Err(source) => {
                return Err(AffectedError::Dockerfile {
                    image: self.def.name.clone(),
                    source,
                })
            }
        };
        let disk = self.disk.clone();
        let follow = move |pattern: &str| -> Vec<String> {
            match &disk {
                Some(root) => {
                    let mut out = Vec::new();
                    crate::plan::minimal::follow_links(root, pattern.as_bytes(), &mut out);
                    out.iter().map(|p| show(p)).collect()
                }
                None => vec![pattern.to_string()],
            }
        };
        Ok(Some(Model::new(&df, &analysis, &self.def.plan(), &follow)))
    }
}

/// Why a step's key differs.
fn key_difference(
    head: &steps::Key,
    base: &steps::Key,
    line: usize,
    hdef: &ImageDef,
    bdef: &ImageDef,
) -> Option<String> {
    if head == base {
        return None;
    }
    if head.platform != base.platform {
        return Some(format!(
            "platform changed ({} → {})",
            or_default(&base.platform),
            or_default(&head.platform)
        ));
    }
    if head.text != base.text {
        // A FROM step's text is its expanded image: a build arg can move it.
        if let (Some(h), Some(b)) = (
            head.text.strip_prefix("FROM "),
            base.text.strip_prefix("FROM "),
        ) {
            return Some(format!(
                "the base image changed ({} → {})",
                b.trim(),
                h.trim()
            ));
        }
        return Some(format!("Dockerfile line {line} changed"));
    }
    let changed_args: Vec<&String> = head
        .args
        .iter()
        .filter(|(k, v)| base.args.get(*k) != Some(v))
        .map(|(k, _)| k)
        .chain(base.args.keys().filter(|k| !head.args.contains_key(*k)))
        .collect();
    if head.scope == base.scope && !changed_args.is_empty() {
        let in_config = changed_args
            .iter()
            .any(|k| hdef.build_args.get(*k) != bdef.build_args.get(*k));
        let names: Vec<String> = changed_args.iter().map(|k| k.to_string()).collect();
        return Some(format!(
            "build arg {} changed{}",
            names.join(", "),
            if in_config { " in the config" } else { "" }
        ));
    }
    Some("an ARG, ENV, USER or SHELL line above it changed".into())
}

fn or_default(p: &str) -> &str {
    if p.is_empty() {
        "default"
    } else {
        p
    }
}

fn list_files(files: &[String]) -> String {
    let shown: Vec<&str> = files.iter().take(3).map(String::as_str).collect();
    let mut s = shown.join(", ");
    if files.len() > 3 {
        s.push_str(&format!(" and {} more", files.len() - 3));
    }
    s
}

/// Files whose inclusion an ignore-file change flips (`true`: now sent),
/// per (context, head ignore file, base ignore file).
type Flips = HashMap<(String, Option<String>, Option<String>), Vec<(Vec<u8>, bool)>>;

fn evaluate(
    git: &Git,
    head_commit: Option<&str>,
    head: &Side<'_>,
    base: &Side<'_>,
    changes: &[Change],
    flips: &mut Flips,
    reach: &mut reach::Reach<'_>,
) -> Result<ImageReport, AffectedError> {
    let hdef = head.def;
    let bdef = base.def;
    let Some(model) = head.model(true)? else {
        return Err(AffectedError::MissingDockerfile {
            image: hdef.name.clone(),
            path: hdef.dockerfile.clone(),
            rev: head.rev_label.clone(),
        });
    };
    let base_model = base.model(false)?;
    let head_ignore = head.ignore()?;
    let base_ignore = base.ignore()?;

    // Per step: changed files that reach it, and other causes.
    let mut hits: BTreeMap<(usize, usize), Vec<String>> = BTreeMap::new();
    let mut extra: BTreeMap<(usize, usize), Vec<String>> = BTreeMap::new();
    let readers: BTreeMap<(usize, usize), Reader> = model
        .reachable
        .iter()
        .filter_map(|&s| model.stages.get(s))
        .flat_map(|st| {
            st.steps
                .iter()
                .map(move |step| ((st.index, step.pos), Reader::new(step)))
        })
        .collect();
    let touched = reach.touched(&hdef.context, &head_ignore, &base_ignore);
    for (k, r) in &readers {
        for &i in reach.reached(&touched, r).iter() {
            let c = &changes[i];
            hits.entry(*k).or_default().push(match c.status {
                Status::Modified => show(&c.path),
                s => format!("{} ({})", show(&c.path), s.word()),
            });
        }
    }
    // An ignore file change: the files whose inclusion it changes.
    let changed: BTreeSet<&[u8]> = changes.iter().map(|c| c.path.as_slice()).collect();
    let ignore_changed = hdef
        .ignore_candidates()
        .iter()
        .chain(bdef.ignore_candidates().iter())
        .any(|p| changed.contains(p.as_bytes()));
    if ignore_changed {
        let label = head_ignore
            .path
            .clone()
            .or(base_ignore.path.clone())
            .unwrap_or_else(|| ".dockerignore".into());
        // Images sharing a context and ignore files share the answer: the
        // listing and matching are the slow part.
        let memo_key = (
            hdef.context.clone(),
            head_ignore.path.clone(),
            base_ignore.path.clone(),
        );
        if !flips.contains_key(&memo_key) {
            let files = git.files(head_commit, &hdef.context)?;
            let mut found: Vec<(Vec<u8>, bool)> = Vec::new();
            for f in &files {
                let Some(rel) = under(&hdef.context, f) else {
                    continue;
                };
                let now = !head_ignore.excluded(rel);
                let before = !base_ignore.excluded(rel);
                if now != before {
                    found.push((rel.to_vec(), now));
                }
            }
            flips.insert(memo_key.clone(), found);
        }
        let flipped = flips.get(&memo_key).map(Vec::as_slice).unwrap_or_default();
        for (k, r) in &readers {
            let mine: Vec<String> = flipped
                .iter()
                .filter(|(rel, _)| r.reaches(rel))
                .map(|(rel, now)| {
                    format!(
                        "{} now {}",
                        show(rel),
                        if *now { "sent" } else { "ignored" }
                    )
                })
                .collect();
            if !mine.is_empty() {
                extra
                    .entry(*k)
                    .or_default()
                    .push(format!("{label} changed: {}", list_files(&mine)));
            }
        }
    }
    if hdef.context != bdef.context {
        for (k, r) in &readers {
            if r.reads_context() {
                extra.entry(*k).or_default().push(format!(
                    "the context changed in the config ({} → {})",
                    bdef.context, hdef.context
                ));
            }
        }
    }

    // Propagate, to a fixed point: stage results feed FROM and --from.
    let n = model.stages.len();
    let mut stage_busted = vec![false; n];
    let mut verdicts: BTreeMap<(usize, usize), (bool, Vec<String>)> = BTreeMap::new();
    for _ in 0..=n {
        let mut changed_any = false;
        for &s in &model.reachable {
            let Some(stage) = model.stages.get(s) else {
                continue;
            };
            let base_stage = base_model.as_ref().and_then(|b| model.matching(b, stage));
            let stage_name = |i: usize| -> String {
                model
                    .stages
                    .get(i)
                    .and_then(|s| s.name.clone())
                    .unwrap_or_else(|| format!("stage-{i}"))
            };
            let mut prev = stage.parent.is_some_and(|p| stage_busted[p]);
            let mut chain_cause = stage
                .parent
                .filter(|_| prev)
                .map(|p| format!("its base stage `{}` is rebuilt", stage_name(p)));
            // `FROM $STAGE` moved by a build arg: another base altogether.
            if let (Some(b), Some(bs)) = (base_model.as_ref(), base_stage) {
                let head_parent = stage.parent.map(stage_name);
                let base_parent = bs.parent.map(|i| {
                    b.stages
                        .get(i)
                        .and_then(|s| s.name.clone())
                        .unwrap_or_else(|| format!("stage-{i}"))
                });
                if head_parent != base_parent {
                    prev = true;
                    chain_cause = Some(match head_parent {
                        Some(p) => format!("its base is now stage `{p}`"),
                        None => "its base is no longer a stage".into(),
                    });
                }
            }
            for step in &stage.steps {
                let mut causes: Vec<String> = Vec::new();
                if let Some(c) = chain_cause.take() {
                    causes.push(c);
                } else if prev {
                    causes.push("a step before it is rebuilt".into());
                }
                match (base_model.as_ref(), base_stage) {
                    (None, _) => causes.push(match base.file(&bdef.dockerfile) {
                        None => format!("no Dockerfile {} at {}", bdef.dockerfile, base.rev_label),
                        Some(_) => format!("the Dockerfile at {} does not parse", base.rev_label),
                    }),
                    (Some(_), None) => causes.push("new stage".into()),
                    (Some(_), Some(bs)) => match bs.steps.get(step.pos) {
                        None => causes.push(format!("new Dockerfile line {}", step.line)),
                        Some(bstep) => {
                            if let Some(d) =
                                key_difference(&step.key, &bstep.key, step.line, hdef, bdef)
                            {
                                causes.push(d);
                            }
                        }
                    },
                }
                if let Some(files) = hits.get(&(s, step.pos)) {
                    causes.push(list_files(files));
                }
                if let Some(more) = extra.get(&(s, step.pos)) {
                    causes.extend(more.iter().cloned());
                }
                for f in &step.from_stages {
                    if stage_busted.get(*f).copied().unwrap_or(false) {
                        causes.push(format!(
                            "stage `{}` it copies from is rebuilt",
                            stage_name(*f)
                        ));
                    }
                }
                prev = !causes.is_empty();
                verdicts.insert((s, step.pos), (prev, causes));
            }
            let end = if stage.steps.is_empty() {
                prev
            } else {
                verdicts
                    .get(&(s, stage.steps.len() - 1))
                    .is_some_and(|v| v.0)
            };
            if end && !stage_busted[s] {
                stage_busted[s] = true;
                changed_any = true;
            }
        }
        if !changed_any {
            break;
        }
    }

    let mut steps_out = Vec::new();
    let mut first_busted = Vec::new();
    let mut reasons = Vec::new();
    for &s in &model.reachable {
        let Some(stage) = model.stages.get(s) else {
            continue;
        };
        let mut first_seen = false;
        for step in &stage.steps {
            let (busted, causes) = verdicts.get(&(s, step.pos)).cloned().unwrap_or_default();
            let report = StepReport {
                label: step.label.clone(),
                line: step.line,
                instruction: step.text.clone(),
                cached: !busted,
                causes: causes.clone(),
                files: hits
                    .get(&(s, step.pos))
                    .map(|f| f.as_slice().into())
                    .unwrap_or_default(),
                position: step.pos,
            };
            if busted && !first_seen {
                first_seen = true;
                first_busted.push(report.clone());
            }
            steps_out.push(report);
        }
    }
    if base_model.is_none() {
        reasons.push(match base.file(&bdef.dockerfile) {
            None => format!(
                "new image: no Dockerfile {} at {}; no step is cached",
                bdef.dockerfile, base.rev_label
            ),
            Some(_) => format!(
                "the Dockerfile {} at {} does not parse; no step can be reused",
                bdef.dockerfile, base.rev_label
            ),
        });
    } else {
        for f in &first_busted {
            reasons.push(render::bust_sentence(&hdef.name, f));
        }
    }
    // Nothing rebuilt, but the image may still differ: its config, or
    // steps removed from the end of a stage it is built from.
    if first_busted.is_empty() {
        // Only a multi-stage Dockerfile names its stages.
        let in_stage = |st: &steps::Stage| -> String {
            if n > 1 {
                format!(" of stage `{}`", stage_label(st))
            } else {
                String::new()
            }
        };
        let mut s = Some(model.target);
        let mut guard = 0;
        while let Some(i) = s {
            guard += 1;
            if guard > n {
                break;
            }
            let Some(stage) = model.stages.get(i) else {
                break;
            };
            match base_model.as_ref().and_then(|b| model.matching(b, stage)) {
                None => reasons.push(format!("stage `{}` is new", stage_label(stage))),

                Some(bs) => {
                    if bs.config != stage.config || bs.scope != stage.scope {
                        reasons.push(format!(
                            "the image config{} changed (LABEL, CMD, ENV...); every step stays cached",
                            in_stage(stage)
                        ));
                    }
                    if bs.steps.len() > stage.steps.len() {
                        reasons.push(format!(
                            "steps were removed from the end{}; the others stay cached",
                            in_stage(stage)
                        ));
                    }
                }
            }
            s = stage.parent;
        }
    }
    Ok(ImageReport {
        name: hdef.name.clone(),
        context: hdef.context.clone(),
        dockerfile: hdef.dockerfile.clone(),
        affected: !reasons.is_empty(),
        reasons,
        first_busted,
        steps: steps_out,
    })
}

fn stage_label(s: &steps::Stage) -> String {
    s.name
        .clone()
        .unwrap_or_else(|| format!("stage-{}", s.index))
}
