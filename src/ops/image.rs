//! `reggie-build image`: plan the minimal context, find the base images'
//! credentials, survey the context, skip the build when an image with the
//! same build key exists (`--skip-if-exists`), build through the daemon,
//! then push. Progress goes to `on_event` as [`Event`]s; nothing is
//! printed here.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::context::tarball::{SourceDateEpochError, TarOptions};
use crate::context::{Builder, ContextError, ContextSpec};
use crate::plan::{Plan, PlanError, PlanOptions};
use crate::publish::{self, Credentials, PublishError, PushOptions, Pushed};
use crate::reference::Reference;
use crate::ship::{self, BuildSpec, Compression, DaemonError, Event, SecretValues, ShipError};

/// How to compress the classic builder's upload.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CompressionChoice {
    /// None for a local socket, gzip for a remote daemon.
    #[default]
    Auto,
    /// An uncompressed tar.
    None,
    /// A gzip-compressed tar.
    Gzip,
}

/// What to build and where to push it. The build fields follow the
/// crate-private `ship::BuildSpec`; the rest say how the context is
/// chosen and what happens around the build.
#[derive(Debug, Clone)]
pub struct ImageOptions {
    /// The context and Dockerfile, and the builder that runs the build.
    pub context: ContextSpec,
    /// Upload the whole context (classic builder), not the minimal one.
    pub full: bool,
    /// The tags of the image (`-t`).
    pub tags: Vec<String>,
    /// `--build-arg` values.
    pub build_args: BTreeMap<String, String>,
    /// The stage to build (`--target`).
    pub target: Option<String>,
    /// The platform to build for (`--platform`).
    pub platform: Option<String>,
    /// Labels, on top of those every image gets (OCI source and revision,
    /// the context digest and build key, a pinned creation time).
    pub labels: BTreeMap<String, String>,
    /// Build without the build cache (`--no-cache`).
    pub no_cache: bool,
    /// Pull base images even when present (`--pull`).
    pub pull: bool,
    /// How the classic builder's upload is compressed.
    pub compression: CompressionChoice,
    /// The network of `RUN` steps (`--network`).
    pub network: Option<String>,
    /// Build secrets by id (`--secret`).
    pub secrets: SecretValues,
    /// ssh agent sockets by id (`--ssh`).
    pub ssh: HashMap<String, PathBuf>,
    /// How long the build may make no progress before it fails.
    pub idle_timeout: Duration,
    /// Push every tag after the build.
    pub push: bool,
    /// Where to reach the registry instead of its name (`host:port`).
    pub registry_endpoint: Option<String>,
    /// Create a missing ECR repository before the push.
    pub create_repo: bool,
    /// Explicit registry credentials; they win over every other source.
    pub credentials: Option<Credentials>,
    /// Skip the build when an image with the same build key exists: in
    /// the daemon, or (with `push`) under the first tag in the registry.
    pub skip_if_exists: bool,
    /// `--output`: the result's files instead of an image.
    pub outputs: Vec<ship::outputs::OutputSpec>,
    /// Build caches to import (`--cache-from`).
    pub cache_from: Vec<ship::outputs::CacheSpec>,
    /// Build caches to export (`--cache-to`).
    pub cache_to: Vec<ship::outputs::CacheSpec>,
    /// Build on this BuildKit engine (`--buildkit-addr`) instead of the
    /// daemon.
    pub remote: Option<ship::Remote>,
}

impl ImageOptions {
    /// Options with the defaults of `reggie-build image` for a context.
    pub fn new(context: ContextSpec) -> ImageOptions {
        ImageOptions {
            context,
            full: false,
            tags: Vec::new(),
            build_args: BTreeMap::new(),
            target: None,
            platform: None,
            labels: BTreeMap::new(),
            no_cache: false,
            pull: false,
            compression: CompressionChoice::Auto,
            network: None,
            secrets: SecretValues::default(),
            ssh: HashMap::new(),
            idle_timeout: Duration::from_secs(300),
            push: false,
            registry_endpoint: None,
            create_repo: false,
            credentials: None,
            skip_if_exists: false,
            outputs: Vec::new(),
            cache_from: Vec::new(),
            cache_to: Vec::new(),
            remote: None,
        }
    }
}

/// A built (or reused) and possibly pushed image.
#[derive(Debug, Clone)]
pub struct ImageOutcome {
    /// The image's id (empty when the result went to `--output`).
    pub image_id: String,
    /// The pushed tags and their digests (empty without `push`).
    pub pushed: Vec<Pushed>,
    /// An existing image was reused (`skip_if_exists`).
    pub skipped: bool,
}

/// Why an image was not built or pushed.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("--push needs at least one --tag")]
    /// `--push` without a tag to push.
    PushWithoutTag,
    #[error("--secret and --ssh need BuildKit: drop --builder classic")]
    /// `--secret`/`--ssh` with the classic builder.
    SecretsNeedBuildKit,
    #[error("image `{image}`: {message}")]
    /// A configured image's tag templates did not expand.
    Tags {
        /// The image's name in the config.
        image: String,
        /// Why.
        message: String,
    },
    #[error(transparent)]
    /// The context could not be resolved.
    Context(#[from] ContextError),
    #[error(transparent)]
    /// The Dockerfile could not be planned.
    Plan(#[from] PlanError),
    #[error(transparent)]
    /// `SOURCE_DATE_EPOCH` is not a number of seconds.
    SourceDateEpoch(#[from] SourceDateEpochError),
    #[error(transparent)]
    /// The Docker daemon could not be reached.
    Daemon(#[from] DaemonError),
    #[error(transparent)]
    /// The build failed.
    Build(#[from] ShipError),
    #[error(transparent)]
    /// The push failed.
    Publish(#[from] PublishError),
}

/// Builds the image (unless an identical one exists and
/// `skip_if_exists`), then pushes it when asked.
pub async fn image(
    opts: &ImageOptions,
    on_event: &mut (dyn FnMut(Event) + Send),
) -> Result<ImageOutcome, ImageError> {
    check(opts)?;
    let planned = plan(opts, on_event).await?;
    if let Some(remote) = &opts.remote {
        let (spec, _) = spec(false, opts, planned)?;
        let done = ship::control::build(remote, &spec, opts.push, on_event).await?;
        // The builder pushed every tag itself, under one digest.
        let pushed = match done.pushed {
            true => opts
                .tags
                .iter()
                .map(|tag| Pushed {
                    tag: tag.clone(),
                    digest: done.digest.clone(),
                })
                .collect(),
            false => Vec::new(),
        };
        return Ok(ImageOutcome {
            image_id: done.built.image_id,
            pushed,
            skipped: false,
        });
    }
    let (daemon, surveyed) = tokio::join!(ship::connect(), survey(&planned));
    let surveyed = surveyed?;
    let daemon = daemon?;
    build_surveyed(&daemon, opts, planned, surveyed, on_event).await
}

/// [`image`] on a daemon already connected (several images share one).
pub async fn image_on(
    daemon: &ship::Daemon,
    opts: &ImageOptions,
    on_event: &mut (dyn FnMut(Event) + Send),
) -> Result<ImageOutcome, ImageError> {
    check(opts)?;
    let planned = plan(opts, on_event).await?;
    let surveyed = survey(&planned).await?;
    build_surveyed(daemon, opts, planned, surveyed, on_event).await
}

/// Surveys the planned context: what needs no daemon, so it runs while
/// the daemon is reached.
async fn survey(planned: &Planned) -> Result<ship::Surveyed, ImageError> {
    Ok(ship::survey(&planned.context, &tar_options()?).await?)
}

async fn build_surveyed(
    daemon: &ship::Daemon,
    opts: &ImageOptions,
    planned: Planned,
    surveyed: ship::Surveyed,
    on_event: &mut (dyn FnMut(Event) + Send),
) -> Result<ImageOutcome, ImageError> {
    let (spec, options) = spec(daemon.local, opts, planned)?;
    let prepared = ship::prepare_surveyed(daemon, &spec, surveyed)?;
    if opts.skip_if_exists {
        if let Some(done) = skip_existing(opts, daemon, &prepared, &options, on_event).await? {
            return Ok(done);
        }
    }
    let built = ship::build_prepared(daemon, &spec, prepared, on_event).await?;
    let mut pushed = Vec::new();
    if opts.push {
        pushed = publish::push(daemon, &opts.tags, &options, on_event).await?;
    }
    Ok(ImageOutcome {
        image_id: built.image_id,
        pushed,
        skipped: false,
    })
}

/// The checks that need no file and no daemon.
pub fn check(opts: &ImageOptions) -> Result<(), ImageError> {
    if opts.push && opts.tags.is_empty() {
        return Err(ImageError::PushWithoutTag);
    }
    if opts.context.builder == Builder::Classic
        && (!opts.secrets.0.is_empty() || !opts.ssh.is_empty())
    {
        return Err(ImageError::SecretsNeedBuildKit);
    }
    Ok(())
}

/// The context to send and the credentials for the base images.
struct Planned {
    context: crate::context::Context,
    pull_credentials: BTreeMap<String, Credentials>,
    /// The [`crate::inspect::RECORD_LABEL`] value: which Dockerfile and
    /// stage make the image, for `size` to find its lines.
    record: Option<String>,
}

/// What `size` needs to attribute the image's layers to lines: the
/// Dockerfile's path as given (run `size` from the same directory), its
/// SHA-256 (lines are trusted only while the file is unchanged) and the
/// target stage's index. Recorded in a label rather than a local file so
/// that it travels with the image (registry, CI) and costs nothing to
/// look up; build arguments are left out (they may be secrets).
fn record(ctx: &crate::context::Context, plan: &Plan, target: Option<&str>) -> Option<String> {
    let bytes = crate::input::read_given(ctx.dockerfile(), crate::input::TEXT_LIMIT).ok()?;
    let stages = &plan.dockerfile.stages;
    let stage = match target {
        Some(t) => {
            let t = t.to_ascii_lowercase();
            stages
                .iter()
                .position(|s| s.name.as_deref() == Some(t.as_str()))?
        }
        None => stages.len().checked_sub(1)?,
    };
    let path = recorded_path(ctx.root(), ctx.dockerfile())?;
    Some(crate::inspect::record(&path, &bytes, stage))
}

/// The Dockerfile's path as recorded in the image: relative to the
/// repository holding the context (the nearest directory with a `.git`),
/// else to the context, else its file name. Never absolute: the same
/// build gives the same image however its paths were typed (`image --all`
/// and `image -f /abs/path` agree), and no local directory names end up in
/// a pushed image.
fn recorded_path(context: &Path, dockerfile: &Path) -> Option<String> {
    let context = std::fs::canonicalize(context).ok()?;
    let dockerfile = std::fs::canonicalize(dockerfile).ok()?;
    let repo = context
        .ancestors()
        .find(|d| d.join(".git").symlink_metadata().is_ok());
    let rel = repo
        .and_then(|top| dockerfile.strip_prefix(top).ok())
        .or_else(|| dockerfile.strip_prefix(&context).ok())
        .map(Path::to_path_buf)
        .or_else(|| dockerfile.file_name().map(PathBuf::from))?;
    rel.to_str().map(str::to_string)
}

/// Plans the context (minimal unless `full`) and finds the base images'
/// credentials, before the daemon is reached: a Dockerfile error comes
/// first.
async fn plan(
    opts: &ImageOptions,
    on_event: &mut (dyn FnMut(Event) + Send),
) -> Result<Planned, ImageError> {
    let ctx = opts.context.resolve()?;
    let plan = Plan::new(
        &ctx,
        &PlanOptions {
            target: opts.target.clone(),
            build_args: opts.build_args.clone(),
            platform: opts.platform.clone(),
            ..PlanOptions::default()
        },
    );
    // `full` builds whatever the Dockerfile says, as docker does: a
    // Dockerfile the planner cannot read only costs the base images'
    // credentials there.
    let record = plan
        .as_ref()
        .ok()
        .and_then(|p| record(&ctx, p, opts.target.as_deref()));
    let (uploaded, bases) = match (opts.full, plan) {
        (true, plan) => (
            ctx.clone(),
            plan.map(|p| p.external_bases).unwrap_or_default(),
        ),
        (false, plan) => {
            let plan = plan?;
            (plan.apply(&ctx, true)?, plan.external_bases)
        }
    };
    let mut base_images: Vec<String> = bases.into_iter().map(|b| b.image).collect();
    // Cache imports are pulled with the same credentials.
    base_images.extend(
        opts.cache_from
            .iter()
            .filter_map(|c| c.attr("ref").map(str::to_string)),
    );
    if opts.remote.is_some() && opts.push {
        // A remote builder pushes itself, with the session's credentials.
        base_images.extend(opts.tags.iter().cloned());
    }
    let (mut pull_credentials, problems) = publish::pull_credentials(&base_images).await;
    for message in problems {
        on_event(Event::Warning { message });
    }
    if let (Some(_), Some(c)) = (&opts.remote, &opts.credentials) {
        for reference in opts.tags.iter().filter_map(|t| Reference::parse(t).ok()) {
            pull_credentials.insert(reference.registry, c.clone());
        }
    }
    Ok(Planned {
        context: uploaded,
        pull_credentials,
        record,
    })
}

/// How the context is archived and digested: mtimes clamped to
/// `SOURCE_DATE_EPOCH` when it is set.
fn tar_options() -> Result<TarOptions, ImageError> {
    Ok(TarOptions {
        clamp_mtime: crate::context::tarball::source_date_epoch()?,
        ..TarOptions::default()
    })
}

/// The build spec and the push options.
fn spec(
    local_daemon: bool,
    opts: &ImageOptions,
    planned: Planned,
) -> Result<(BuildSpec, PushOptions), ImageError> {
    let compression = match opts.compression {
        CompressionChoice::None => Compression::None,
        CompressionChoice::Gzip => Compression::Gzip,
        CompressionChoice::Auto if local_daemon => Compression::None,
        CompressionChoice::Auto => Compression::Gzip,
    };
    let tar = tar_options()?;
    let spec = BuildSpec {
        context: planned.context,
        tags: opts.tags.clone(),
        build_args: opts.build_args.clone(),
        target: opts.target.clone(),
        platform: opts.platform.clone(),
        labels: {
            let mut labels = opts.labels.clone();
            if let Some(r) = planned.record {
                labels
                    .entry(crate::inspect::RECORD_LABEL.to_string())
                    .or_insert(r);
            }
            labels
        },
        no_cache: opts.no_cache,
        pull: opts.pull,
        compression,
        tar,
        network: opts.network.clone(),
        pull_credentials: planned.pull_credentials,
        secrets: opts.secrets.clone(),
        ssh: opts.ssh.clone(),
        idle_timeout: opts.idle_timeout,
        outputs: opts.outputs.clone(),
        cache_from: opts.cache_from.clone(),
        cache_to: opts.cache_to.clone(),
    };
    let options = PushOptions {
        registry_endpoint: opts.registry_endpoint.clone(),
        create_repo: opts.create_repo,
        credentials: opts.credentials.clone(),
    };
    Ok((spec, options))
}

/// `skip_if_exists`: an image with the build key in the daemon, else
/// (with `push`) under the first tag in the registry. `None`: build.
async fn skip_existing(
    opts: &ImageOptions,
    daemon: &ship::Daemon,
    prepared: &ship::Prepared,
    options: &PushOptions,
    on_event: &mut (dyn FnMut(Event) + Send),
) -> Result<Option<ImageOutcome>, ImageError> {
    let key = &prepared.keyed.build_key;
    match ship::skip::find_local(daemon, key).await {
        Ok(Some(id)) => {
            for tag in &opts.tags {
                ship::skip::tag(daemon, &id, tag).await?;
            }
            on_event(Event::Skip {
                reason: "an image with this build key is in the daemon".into(),
                image: id.clone(),
            });
            for tag in &opts.tags {
                on_event(Event::Tag { tag: tag.clone() });
            }
            let mut pushed = Vec::new();
            if opts.push {
                pushed = publish::push(daemon, &opts.tags, options, on_event).await?;
            }
            return Ok(Some(ImageOutcome {
                image_id: id,
                pushed,
                skipped: true,
            }));
        }
        Ok(None) => tracing::info!("--skip-if-exists: no image with build key {key} in the daemon"),
        Err(e) => {
            tracing::info!("--skip-if-exists: cannot search the daemon's images ({e}); building")
        }
    }
    if !opts.push {
        return Ok(None);
    }
    let reused = publish::reuse::from_registry(
        daemon,
        &opts.tags,
        options,
        key,
        &prepared.keyed.platform,
        on_event,
    )
    .await;
    let reused = match reused {
        Ok(Some(r)) => r,
        Ok(None) => return Ok(None),
        Err(e) => {
            tracing::info!("--skip-if-exists: registry lookup failed ({e}); building");
            return Ok(None);
        }
    };
    let mut pushed = reused.present;
    if !reused.missing.is_empty() {
        pushed.extend(publish::push(daemon, &reused.missing, options, on_event).await?);
    }
    Ok(Some(ImageOutcome {
        image_id: reused.image_id,
        pushed,
        skipped: true,
    }))
}
