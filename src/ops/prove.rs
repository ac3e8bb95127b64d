//! `reggie-build size --prove`: the fixes `size` suggests, applied to a
//! copy of the Dockerfile, built with reggie-build's own builder (the
//! daemon, as `image` builds), measured, and checked.
//!
//! The original Dockerfile is built first (unchanged, in the same way)
//! so that before and after come from one builder and one cache. Then
//! each fix is added to the ones that passed, the copy rebuilt and read
//! again: the bytes saved are measured, not predicted, and every path of
//! the final image that the fix does not remove must come out with the
//! same kind, size, mode, owner and content hash. A fix whose build
//! fails, or whose check finds a difference, is reported as such and
//! left out of the next steps. The copy lives in a private temporary
//! directory (0700), never in the repository; the images built are
//! removed at the end.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::context::{Builder, ContextSpec};
use crate::inspect::layer::Shared;
use crate::inspect::prove::{self, Fix, NoFix};
pub use crate::inspect::prove::{Measured, NotApplied, Outcome, Proof, Step};
use crate::inspect::{self, Inspected, SizeOptions};
use crate::ops::size::{RemoteOptions, SizeError, Where};
use crate::ops::{ImageError, ImageOptions};
use crate::ship::{self, DaemonError, Event};

/// What to prove.
#[derive(Debug, Clone, Default)]
pub struct ProveOptions {
    /// An image in the daemon whose labels name the Dockerfile and the
    /// context it was built from (`reggie-build image` records them).
    pub image: Option<String>,
    /// The Dockerfile (default: the recorded one).
    pub dockerfile: Option<PathBuf>,
    /// The build context (default: the recorded one).
    pub context: Option<PathBuf>,
    /// The stage to build.
    pub target: Option<String>,
    /// Build arguments.
    pub build_args: BTreeMap<String, String>,
    /// How many of the largest waste items to try.
    pub top: usize,
    /// The network of `RUN` steps (`--network`).
    pub network: Option<String>,
}

/// Why a proof could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ProveError {
    /// No Dockerfile to rewrite.
    #[error("size --prove needs the Dockerfile the image was built from: {0}")]
    NoDockerfile(String),
    /// No context to build with.
    #[error("size --prove needs the build context: {0}")]
    NoContext(String),
    /// The Dockerfile cannot be read.
    #[error("cannot read the Dockerfile {}: {source}", crate::text::show_path(.path))]
    Read {
        /// Its path.
        path: PathBuf,
        /// Why.
        source: crate::input::InputError,
    },
    /// The private copy cannot be written.
    #[error("cannot write the Dockerfile's copy in {}: {source}", crate::text::show_path(.path))]
    Write {
        /// Where.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The daemon cannot be reached.
    #[error(transparent)]
    Daemon(#[from] DaemonError),
    /// The unchanged Dockerfile did not build.
    #[error("building the unchanged Dockerfile failed: {0}")]
    Before(#[source] Box<ImageError>),
    /// An image built could not be read.
    #[error(transparent)]
    Size(#[from] SizeError),
}

/// The copy's directory, removed when dropped.
struct Private(PathBuf);

impl Drop for Private {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Builds the Dockerfile, then each fix, and measures and checks them.
/// `progress` hears one line per step.
pub async fn prove(
    options: &ProveOptions,
    progress: &mut (dyn FnMut(String) + Send),
) -> Result<Proof, ProveError> {
    let daemon = ship::connect().await?;
    let (dockerfile, context, found) = locate(&daemon, options).await?;
    let text =
        crate::input::read_given(&dockerfile, crate::input::TEXT_LIMIT).map_err(|source| {
            ProveError::Read {
                path: dockerfile.clone(),
                source,
            }
        })?;
    let text = String::from_utf8_lossy(&text).into_owned();
    let dir = Private(
        crate::ship::ssh::private_dir("reggie-prove").map_err(|source| ProveError::Write {
            path: std::env::temp_dir(),
            source,
        })?,
    );
    let copy = dir.0.join("Dockerfile");
    // BuildKit reads `<Dockerfile>.dockerignore` beside the Dockerfile
    // before the context's `.dockerignore`: the copy keeps it.
    let mut ignore = dockerfile.clone().into_os_string();
    ignore.push(".dockerignore");
    if let Ok(bytes) = crate::input::read_given(Path::new(&ignore), crate::input::TEXT_LIMIT) {
        write(&dir.0.join("Dockerfile.dockerignore"), &bytes)?;
    }
    let tag = |n: usize| format!("reggie-build-prove:{}-{n}", std::process::id());
    let mut built: Vec<String> = Vec::new();
    let result = run(options, &context, &copy, &text, &tag, &mut built, progress).await;
    for t in &built {
        let _ = daemon
            .quick
            .remove_image(
                t,
                None::<bollard::query_parameters::RemoveImageOptions>,
                None,
            )
            .await;
    }
    let mut proof = result?;
    proof.dockerfile = crate::text::show_path(&dockerfile);
    proof.context = crate::text::show_path(&context);
    proof.found = found;
    Ok(proof)
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), ProveError> {
    std::fs::write(path, bytes).map_err(|source| ProveError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// The Dockerfile and context: given, else recorded on the image.
async fn locate(
    daemon: &ship::Daemon,
    options: &ProveOptions,
) -> Result<(PathBuf, PathBuf, String), ProveError> {
    let labels = match &options.image {
        Some(image) => daemon
            .quick
            .inspect_image(image)
            .await
            .ok()
            .and_then(|i| i.config)
            .and_then(|c| c.labels)
            .unwrap_or_default(),
        None => Default::default(),
    };
    let recorded = labels
        .get(inspect::RECORD_LABEL)
        .and_then(|v| inspect::parse_record(v));
    // Recorded paths are relative to the repository the image was built
    // in: both are looked up from the same base, the first that has the
    // Dockerfile.
    let bases = inspect::recorded_bases();
    let recorded_context = labels
        .get(inspect::RECORD_CONTEXT_LABEL)
        .and_then(|c| inspect::relative(c));
    let (dockerfile, df_how, base) = match (&options.dockerfile, &recorded) {
        (Some(p), _) => {
            // With -f, the context is recorded relative to the repository
            // top above the current directory.
            let base = bases.last().cloned().unwrap_or_default();
            (p.clone(), "-f", base)
        }
        (None, Some(r)) => {
            let rel = inspect::relative(&r.path).ok_or_else(|| {
                ProveError::NoDockerfile(format!(
                    "the recorded path {} is not relative: pass -f",
                    crate::text::escape(&r.path)
                ))
            })?;
            let Some(base) = bases.iter().find(|b| b.join(rel).is_file()) else {
                return Err(ProveError::NoDockerfile(format!(
                    "{} (recorded by reggie-build image, relative to its repository) is not here: run inside that repository, or pass -f",
                    crate::text::escape(&r.path)
                )));
            };
            (base.join(rel), "recorded by reggie-build image", base.clone())
        }
        (None, None) => {
            return Err(ProveError::NoDockerfile(
                "pass -f DOCKERFILE (the image has no dev.reggie-build.dockerfile label: it was not built by reggie-build image, or is not in the daemon)".into(),
            ))
        }
    };
    if !dockerfile.is_file() {
        return Err(ProveError::NoDockerfile(format!(
            "{} ({df_how}) is not a file: pass -f DOCKERFILE",
            crate::text::show_path(&dockerfile)
        )));
    }
    let (context, cx_how) = match (&options.context, recorded_context) {
        (Some(c), _) => (c.clone(), "--context"),
        (None, Some(c)) => (base.join(c), "recorded by reggie-build image"),
        (None, None) => {
            return Err(ProveError::NoContext(
                "pass --context DIR (the directory the image was built from; reggie-build image records it only for a context inside a git repository)".into(),
            ))
        }
    };
    if !context.is_dir() {
        return Err(ProveError::NoContext(format!(
            "{} ({cx_how}) is not a directory here: pass --context DIR",
            crate::text::show_path(&context)
        )));
    }
    Ok((
        dockerfile,
        context,
        format!("Dockerfile: {df_how}; context: {cx_how}"),
    ))
}

/// Builds `text` as the copy and reads the image.
async fn build_and_size(
    options: &ProveOptions,
    context: &Path,
    copy: &Path,
    text: &str,
    tag: &str,
    built: &mut Vec<String>,
) -> Result<Result<Inspected, ImageError>, ProveError> {
    write(copy, text.as_bytes())?;
    let mut image = ImageOptions::new(ContextSpec {
        root: context.to_path_buf(),
        dockerfile: Some(copy.to_path_buf()),
        builder: Builder::BuildKit,
    });
    image.tags = vec![tag.to_string()];
    image.target = options.target.clone();
    image.build_args = options.build_args.clone();
    image.network = options.network.clone();
    let mut quiet = |_: Event| {};
    if let Err(e) = crate::ops::image(&image, &mut quiet).await {
        return Ok(Err(e));
    }
    built.push(tag.to_string());
    let remote = RemoteOptions {
        reference: tag.to_string(),
        from: Where::Daemon,
        registry_endpoint: None,
        credentials: None,
    };
    let size = SizeOptions {
        dockerfile: Some(copy.to_path_buf()),
        plan: crate::plan::PlanOptions {
            target: options.target.clone(),
            build_args: options.build_args.clone(),
            ..Default::default()
        },
        ..Default::default()
    };
    let shared = Arc::new(Shared::default());
    Ok(Ok(crate::ops::size::size(&remote, &size, &shared).await?))
}

#[allow(clippy::too_many_arguments)]
async fn run(
    options: &ProveOptions,
    context: &Path,
    copy: &Path,
    text: &str,
    tag: &dyn Fn(usize) -> String,
    built: &mut Vec<String>,
    progress: &mut (dyn FnMut(String) + Send),
) -> Result<Proof, ProveError> {
    progress("building the Dockerfile unchanged".into());
    let before = build_and_size(options, context, copy, text, &tag(0), built)
        .await?
        .map_err(|e| ProveError::Before(Box::new(e)))?;
    let (fixes, none) = prove::plan(&before, text, options.top.max(1));
    let waste = &before.report.waste;
    let not_applied = none
        .iter()
        .map(|NoFix { item, reason }| NotApplied {
            what: waste[*item].what.clone(),
            path: waste[*item].path.clone(),
            bytes: waste[*item].bytes,
            reason: reason.clone(),
        })
        .collect();
    let measured_before = Measured::of(&before.report);
    let waste_roots = prove::waste_roots(&before.report);
    let mut previous = (measured_before, before.shown());
    let mut passed: Vec<Fix> = Vec::new();
    let mut steps = Vec::new();
    for (n, fix) in fixes.into_iter().enumerate() {
        let item = &waste[fix.item];
        progress(format!(
            "fix {} of the {} ({}): {}",
            n + 1,
            crate::units::humanize(item.bytes),
            item.what,
            fix.title
        ));
        let mut trial: Vec<&Fix> = passed.iter().collect();
        trial.push(&fix);
        let fixed = prove::apply(text, &trial);
        let outcome =
            match build_and_size(options, context, copy, &fixed, &tag(n + 1), built).await? {
                Err(e) => Outcome::Failed {
                    error: crate::error_chain::join(&e),
                },
                Ok(after) => {
                    let size = Measured::of(&after.report);
                    let shown = after.shown();
                    let check = prove::compare(&previous.1, &shown, &fix.removes, &waste_roots);
                    let verified = check.verified();
                    let outcome = Outcome::Built {
                        size,
                        saved: previous.0.uncompressed as i64 - size.uncompressed as i64,
                        saved_file_bytes: previous.0.file_bytes as i64 - size.file_bytes as i64,
                        check,
                        verified,
                    };
                    if verified {
                        previous = (size, shown);
                    }
                    outcome
                }
            };
        let verified = matches!(outcome, Outcome::Built { verified: true, .. });
        steps.push(Step {
            what: item.what.clone(),
            path: item.path.clone(),
            predicted: item.bytes,
            fix: fix.clone(),
            outcome,
        });
        if verified {
            passed.push(fix);
        }
    }
    let after = previous.0;
    Ok(Proof {
        dockerfile: String::new(),
        context: String::new(),
        found: String::new(),
        before: measured_before,
        steps,
        not_applied,
        after,
        saved: measured_before.uncompressed as i64 - after.uncompressed as i64,
        saved_file_bytes: measured_before.file_bytes as i64 - after.file_bytes as i64,
        fixed_dockerfile: prove::apply(text, &passed.iter().collect::<Vec<_>>()),
    })
}
