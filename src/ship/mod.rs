//! Building an image through the Docker daemon.
//!
//! BuildKit (the default) builds through a session, as `DOCKER_BUILDKIT=1
//! docker build` does: `session` opens `POST /session` (upgraded to
//! h2c, the daemon calling back into gRPC services served here) and
//! `/build` runs with `remote=client-session`. BuildKit then pulls the
//! named directories `context` (the context root) and `dockerfile` (the
//! Dockerfile's own directory, so a Dockerfile outside the context never
//! rides inside it) over `filesync`, asking only for the paths the
//! Dockerfile reads (its followpaths), excluding what the ignore file its
//! frontend read excludes, and requesting only the files that changed
//! since its copy of the last transfer under the docker CLI's shared key.
//! The same session answers registry credentials (private base images)
//! and `--secret`/`--ssh` (`secrets`, `ssh`). With `--output` the result is
//! not stored as an image: BuildKit sends its files back through the
//! session's `FileSend` (`filesend`); [`outputs`] maps `--output`,
//! `--cache-from`/`--cache-to` and `--platform` onto what the daemon's
//! BuildKit can do, and names what it cannot.
//!
//! With `--buildkit-addr` the same session reaches a BuildKit engine
//! through its Control API instead (`control` over `grpc_io`): a
//! standalone buildkitd, or a daemon's embedded BuildKit.
//!
//! The classic builder (`version=1`) gets the context (minimal or whole)
//! streamed as the body of `/build` (`upload`); it applies the root
//! `.dockerignore` it finds in the upload again, which
//! `upload::place_dockerfile` accounts for.
//!
//! Progress arrives as events (BuildKit's decoded by `buildkit`); an
//! error inside the 200 response stream ends the build with the failing
//! step. No label changes with the clock (`default_labels`), so a
//! rebuild of unchanged inputs is fully cached and gives the same image.

pub(crate) mod buildkit;
pub(crate) mod control;
pub(crate) mod daemon;
pub(crate) mod endpoint;
pub(crate) mod filesend;
pub(crate) mod filesync;
pub(crate) mod grpc_io;
pub mod outputs;
pub(crate) mod secrets;
pub(crate) mod session;
pub(crate) mod skip;
pub(crate) mod ssh;
pub(crate) mod upload;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use serde::Serialize;

use crate::context::survey::{survey_keeping_stats, Snapshot};
use crate::context::tarball::TarOptions;
use crate::context::{Builder, Context};

pub use control::Remote;
pub use daemon::{connect, Daemon, DaemonError};
pub use endpoint::context_dir_name;
pub use grpc_io::TlsOptions;
pub use secrets::parse_secrets;
pub use session::SecretValues;
pub use ssh::{parse_ssh, SshAgents, SshError};
pub(crate) use upload::Compression;

/// What to build.
#[derive(Debug, Clone)]
pub(crate) struct BuildSpec {
    /// The context to upload (already restricted, or whole).
    pub context: Context,
    pub tags: Vec<String>,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub platform: Option<String>,
    /// Labels, on top of [`default_labels`].
    pub labels: BTreeMap<String, String>,
    pub no_cache: bool,
    pub pull: bool,
    pub compression: Compression,
    pub tar: TarOptions,
    /// The network of RUN steps (`default`, `host`, `none`, or a network
    /// name for the classic builder).
    pub network: Option<String>,
    /// Credentials the daemon may use to pull base images, by registry
    /// (`docker.io`, `host:port`).
    pub pull_credentials: BTreeMap<String, crate::auth::Credentials>,
    /// Build secrets by id (`--secret`), served to BuildKit's session.
    pub secrets: session::SecretValues,
    /// ssh agent sockets by id (`--ssh`), forwarded through the session.
    pub ssh: HashMap<String, std::path::PathBuf>,
    /// How long the upload may make no progress before the build fails
    /// (`--idle-timeout`): a daemon that stops reading must not hang it.
    pub idle_timeout: Duration,
    /// `--output`s; none: the image into the daemon.
    pub outputs: Vec<outputs::OutputSpec>,
    /// `--cache-from`.
    pub cache_from: Vec<outputs::CacheSpec>,
    /// `--cache-to`.
    pub cache_to: Vec<outputs::CacheSpec>,
    /// Attestations as frontend attributes (`attest:provenance` ->
    /// `mode=max`), from [`outputs::parse_attestation`].
    pub attests: BTreeMap<String, String>,
}

/// The credentials map in the form each builder looks registries up:
/// BuildKit asks its session for a host (Docker Hub's is
/// `registry-1.docker.io`), the classic builder reads `X-Registry-Config`
/// keyed like docker's config (Docker Hub's is its v1 index URL).
fn registry_config(
    creds: &BTreeMap<String, crate::auth::Credentials>,
    builder: Builder,
) -> Option<HashMap<String, bollard::auth::DockerCredentials>> {
    if creds.is_empty() {
        return None;
    }
    let map = creds
        .iter()
        .map(|(registry, c)| {
            let key = match (registry.as_str(), builder) {
                ("docker.io", Builder::BuildKit) => "registry-1.docker.io",
                ("docker.io", Builder::Classic) => "https://index.docker.io/v1/",
                (other, _) => other,
            };
            (key.to_string(), c.docker(key))
        })
        .collect();
    Some(map)
}

/// Something that happened, for progress output (`--json` prints these).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The context as surveyed before the upload.
    Context {
        /// The context digest (`sha256:...`).
        digest: String,
        /// Entries the upload holds (directories included).
        entries: u64,
        /// Bytes of file contents.
        content_bytes: u64,
        /// The Dockerfile, as shown to the user.
        dockerfile: String,
        /// `none` or `gzip`.
        compression: &'static str,
    },
    /// Bytes of the request body sent so far.
    Upload {
        /// Bytes sent.
        bytes: u64,
        /// Whether this is the last report of the upload.
        done: bool,
    },
    /// A Dockerfile step began (`Step 2/5 : COPY ...`, BuildKit's
    /// `[stage 2/5] COPY ...`).
    Step {
        /// 1-based step number.
        number: u32,
        /// Steps in the build (or stage, for BuildKit).
        total: u32,
        /// The instruction as the builder prints it.
        instruction: String,
        /// The stage, when BuildKit names it.
        #[serde(skip_serializing_if = "Option::is_none")]
        stage: Option<String>,
    },
    /// A BuildKit operation changed state (`started` for those that are
    /// not Dockerfile steps, then `done`, `cached` or `error`), numbered
    /// as `docker buildx build --progress=plain` numbers them.
    Vertex {
        /// The operation's number, in order of first appearance.
        index: u32,
        /// BuildKit's name for it.
        name: String,
        /// `started`, `done`, `cached` or `error`.
        status: &'static str,
        /// How long it took, once finished.
        #[serde(skip_serializing_if = "Option::is_none")]
        seconds: Option<f64>,
    },
    /// A line of build output.
    Log {
        /// The line, without its newline.
        line: String,
    },
    /// A warning from the builder or about the build.
    Warning {
        /// The warning.
        message: String,
    },
    /// The built image's id.
    ImageId {
        /// `sha256:...`.
        id: String,
    },
    /// A tag was applied to the built image.
    Tag {
        /// The tag.
        tag: String,
    },
    /// The build was skipped: an image built from the same inputs exists.
    Skip {
        /// Why it counts as the same build.
        reason: String,
        /// The existing image (id or reference).
        image: String,
    },
    /// Progress of a push.
    Push {
        /// The tag being pushed.
        tag: String,
        /// The daemon's status line (`Pushed`, `Layer already exists`...).
        status: String,
        /// The manifest digest, once the registry reports it.
        #[serde(skip_serializing_if = "Option::is_none")]
        digest: Option<String>,
    },
    /// The BuildKit builder this build runs on, when there are several
    /// (`--buildkit-addr` repeated, `[[builder]]`), and why that one.
    Builder {
        /// Its address.
        addr: String,
        /// `preferred` (the image's own builder, the same from run to
        /// run), or why another one: `busy` or `down`, with that builder.
        reason: String,
    },
    /// The end of the command, for `--json` readers.
    Result {
        /// Whether it succeeded.
        ok: bool,
        /// The image built or reused.
        #[serde(skip_serializing_if = "Option::is_none")]
        image_id: Option<String>,
        /// Why it failed.
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
}

/// A finished build.
#[derive(Debug, Clone)]
pub struct Built {
    /// The image's id (`sha256:...`; empty when an `--output` replaced it).
    pub image_id: String,
    /// The digest of the context as sent.
    pub context_digest: String,
    /// Bytes of the upload (the classic builder's body, or the file sync's).
    pub uploaded_bytes: u64,
    /// Dockerfile steps the builder reported.
    pub steps: u32,
}

/// Errors of a build.
#[derive(Debug, thiserror::Error)]
pub enum ShipError {
    /// The daemon could not be reached.
    #[error(transparent)]
    Daemon(#[from] DaemonError),
    /// The BuildKit engine behind `--buildkit-addr` failed or refused.
    #[error(transparent)]
    Control(#[from] control::ControlError),
    /// The context could not be read while surveyed or sent.
    #[error("cannot read the build context: {0}")]
    Context(#[from] crate::context::tarball::TarError),
    /// The Dockerfile could not be read.
    #[error("cannot read the Dockerfile: {0}")]
    Dockerfile(std::io::Error),
    /// The classic builder's upload failed.
    #[error("uploading the build context failed: {0}")]
    Upload(#[from] upload::UploadError),
    /// A Dockerfile step failed.
    #[error("{}", step_failure(.step, .message, .log_tail))]
    Step {
        /// The failing step, when the builder named it.
        step: Option<String>,
        /// The builder's error.
        message: String,
        /// The step's last output lines.
        log_tail: Vec<String>,
    },
    /// The context's digest during the upload differs from the survey's.
    #[error("the build context changed while it was uploaded (digest {before} before, {after} during); run again")]
    Changed {
        /// Digest from the survey.
        before: String,
        /// Digest of what was sent.
        after: String,
    },
    /// The build stream ended with neither an error nor an image id.
    #[error("the daemon ended the build without an image id")]
    NoImage,
    /// The classic builder's daemon stopped reading the upload.
    #[error("the upload stalled: the daemon read nothing of the build context for {secs} s, after {bytes} bytes; the build is abandoned. Check the daemon (disk space, load) and the connection to it, or allow longer with --idle-timeout (REGGIE_IDLE_TIMEOUT)")]
    Stalled {
        /// Bytes sent before the stall.
        bytes: u64,
        /// The idle timeout that ran out, in seconds.
        secs: u64,
    },
    /// A BuildKit session went idle (no progress, no file requests).
    #[error("the BuildKit session stalled: {what} for {secs} s (file sync: {stats} entries listed, {files} files and {bytes} bytes sent); the build is abandoned. Check the builder (a daemon: `docker info`; its disk space and load) and the connection to it, or allow longer with --idle-timeout (REGGIE_IDLE_TIMEOUT)")]
    SessionStalled {
        /// What the builder stopped doing, in words.
        what: &'static str,
        /// The idle timeout that ran out, in seconds.
        secs: u64,
        /// Entries the file sync listed.
        stats: u64,
        /// Files the file sync sent.
        files: u64,
        /// Bytes the file sync sent.
        bytes: u64,
    },
    /// A daemon or engine API call failed.
    #[error("{what}: {message}")]
    Api {
        /// The call, in words.
        what: String,
        /// Its error.
        message: String,
    },
    /// `--output`, `--cache-*` or `--platform` ask for what the builder cannot do.
    #[error(transparent)]
    Outputs(#[from] outputs::OutputError),
    /// Receiving or writing an `--output` failed.
    #[error("--output: {0}")]
    Export(String),
}

/// Adds what to do to daemon messages whose cause is known.
fn with_hint(message: &str) -> String {
    if message.contains("network bridge not found") {
        return format!(
            "{message} (the daemon has no bridge network, e.g. dockerd --bridge=none: pass --network host or --network none)"
        );
    }
    if message.contains("no basic auth credentials") || message.contains("401 Unauthorized") {
        return format!(
            "{message} (a base image needs credentials: `docker login` its registry, or configure a credential helper in docker's config; ECR registries use your AWS credentials)"
        );
    }
    message.to_string()
}

fn step_failure(step: &Option<String>, message: &str, tail: &[String]) -> String {
    let mut out = match step {
        Some(step) => format!("build failed at {step}: {message}"),
        None => format!("build failed: {message}"),
    };
    if !tail.is_empty() {
        out.push_str("\n  last output:");
        for l in tail {
            out.push_str("\n    ");
            out.push_str(l);
        }
    }
    out
}

/// The OCI source (its credentials removed) and revision of the checkout
/// holding the context, when it is a git checkout.
fn git_labels(ctx: &Context) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let git = |args: &[&str]| -> Option<String> {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(ctx.root())
            .args(args)
            .stderr(std::process::Stdio::null())
            .output()
            .ok()?;
        let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
        (out.status.success() && !s.is_empty()).then_some(s)
    };
    if let Some(url) = git(&["config", "--get", "remote.origin.url"]) {
        labels.insert(
            "org.opencontainers.image.source".into(),
            strip_credentials(&url),
        );
    }
    if let Some(rev) = git(&["rev-parse", "HEAD"]) {
        labels.insert("org.opencontainers.image.revision".into(), rev);
    }
    labels
}

/// The labels every image gets: the checkout's OCI source and revision
/// (`git`, from [`git_labels`]), the context digest, and the creation
/// time when `SOURCE_DATE_EPOCH` pins it (the clock's time would change
/// the image on every rebuild).
fn default_labels(
    mut labels: BTreeMap<String, String>,
    context_digest: &str,
) -> BTreeMap<String, String> {
    // The build time would make every rebuild a new image (and the classic
    // builder's label step a cache miss): only a pinned time is a label.
    // `image` has already refused a value that is not a number.
    if let Ok(Some(epoch)) = crate::context::tarball::source_date_epoch() {
        labels.insert("org.opencontainers.image.created".into(), rfc3339(epoch));
    }
    labels.insert(CONTEXT_DIGEST_LABEL.into(), context_digest.to_string());
    labels
}

/// `https://user:token@host/x` → `https://host/x`.
fn strip_credentials(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        if let Some((auth, host)) = rest.split_once('@') {
            if !auth.contains('/') {
                return format!("{scheme}://{host}");
            }
        }
    }
    url.to_string()
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`.
pub(crate) fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The architecture part of a platform (`linux/arm64/v8` → `arm64`).
pub(crate) fn platform_arch(platform: &str) -> Option<&str> {
    platform.split('/').nth(1).filter(|a| !a.is_empty())
}

/// Splits `name[:tag]` into repository and tag (a `:` before the last `/`
/// is a registry port).
pub(crate) fn split_tag(reference: &str) -> (&str, &str) {
    let last_slash = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[last_slash..].rfind(':') {
        Some(i) => (
            &reference[..last_slash + i],
            &reference[last_slash + i + 1..],
        ),
        None => (reference, "latest"),
    }
}

/// The label holding the context digest.
pub const CONTEXT_DIGEST_LABEL: &str = "dev.reggie-build.context-digest";
/// The label holding the build key: a sha256 over the context digest,
/// the Dockerfile, the target, the build args and the platform.
pub const BUILD_KEY_LABEL: &str = "dev.reggie-build.build-key";

/// What the survey before an upload found: the context digest, the build
/// key, the labels, and how the Dockerfile travels.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    pub survey: upload::Survey,
    /// The stats the survey read, for BuildKit's file sync.
    pub snapshot: Arc<Snapshot>,
    pub placement: upload::DockerfilePlacement,
    /// The platform the build is for (`--platform`, or the daemon's).
    pub platform: String,
    pub build_key: String,
    /// [`default_labels`] and the build key.
    pub labels: BTreeMap<String, String>,
    /// How outputs, caches and platforms reach the daemon.
    pub daemon_plan: outputs::DaemonPlan,
}

/// What can be known of a build before the daemon answers: the context's
/// survey, the Dockerfile's bytes and the [`default_labels`].
#[derive(Debug, Clone)]
pub(crate) struct Surveyed {
    survey: upload::Survey,
    /// The stats the survey read, for BuildKit's file sync.
    snapshot: Arc<Snapshot>,
    dockerfile: Vec<u8>,
    labels: BTreeMap<String, String>,
}

/// sha256 over everything that decides the image: the context digest,
/// the Dockerfile's bytes, the target, the build args (sorted) and the
/// platform. Each field is length-prefixed, so no two inputs collide.
pub(crate) fn build_key(
    context_digest: &str,
    dockerfile: &[u8],
    target: Option<&str>,
    build_args: &BTreeMap<String, String>,
    platform: &str,
) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let mut field = |tag: &[u8], bytes: &[u8]| {
        h.update(tag);
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    field(b"reggie-build-key-v1", b"");
    field(b"context", context_digest.as_bytes());
    field(b"dockerfile", dockerfile);
    field(b"target", target.unwrap_or_default().as_bytes());
    for (k, v) in build_args {
        field(b"arg-key", k.as_bytes());
        field(b"arg-value", v.as_bytes());
    }
    field(b"platform", platform.as_bytes());
    let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// Surveys the context (its digest, which build files it sends) and reads
/// the Dockerfile and the checkout's labels, without the daemon: it runs
/// while the daemon is being reached.
pub(crate) async fn survey(ctx: &Context, tar: &TarOptions) -> Result<Surveyed, ShipError> {
    let ctx = ctx.clone();
    let tar = tar.clone();
    tokio::task::spawn_blocking(move || {
        // The two git processes run while the walk does: neither needs
        // the other's result.
        std::thread::scope(|scope| {
            let git = scope.spawn(|| git_labels(&ctx));
            // Only BuildKit's file sync serves the survey's stats again.
            let surveyed = match ctx.builder() {
                Builder::BuildKit => survey_keeping_stats(&ctx, &tar),
                Builder::Classic => upload::survey(&ctx, &tar).map(|s| (s, Snapshot::default())),
            };
            let git = git.join().unwrap_or_default();
            let (survey, snapshot) = surveyed?;
            let dockerfile = crate::context::walk::read_input_file(ctx.dockerfile())
                .map_err(ShipError::Dockerfile)?;
            let labels = default_labels(git, &survey.digest);
            Ok(Surveyed {
                survey,
                snapshot: Arc::new(snapshot),
                dockerfile,
                labels,
            })
        })
    })
    .await
    .map_err(|e| ShipError::Api {
        what: "surveying the context".into(),
        message: e.to_string(),
    })?
}

/// The survey done ([`survey`]): the build key (which needs the
/// daemon's platform) and the engine's plan for outputs and caches.
pub(crate) fn prepare_surveyed(
    daemon: &Daemon,
    spec: &BuildSpec,
    surveyed: Surveyed,
) -> Result<Prepared, ShipError> {
    let daemon_plan = plan_outputs(daemon, spec)?;
    let Surveyed {
        survey,
        snapshot,
        dockerfile,
        mut labels,
    } = surveyed;
    let placement =
        upload::place_dockerfile(&spec.context, &survey, &dockerfile, spec.context.builder())
            .map_err(ShipError::Dockerfile)?;
    let platform = spec
        .platform
        .clone()
        .unwrap_or_else(|| format!("linux/{}", daemon.arch.as_deref().unwrap_or("unknown")));
    let build_key = build_key(
        &survey.digest,
        &dockerfile,
        spec.target.as_deref(),
        &spec.build_args,
        &platform,
    );
    labels.insert(BUILD_KEY_LABEL.into(), build_key.clone());
    Ok(Prepared {
        survey,
        snapshot,
        placement,
        platform,
        build_key,
        labels,
        daemon_plan,
    })
}

/// Checks `--output`, `--cache-from`, `--cache-to` and `--platform`
/// against what the daemon's builder can do, and maps them onto `/build`.
pub(crate) fn plan_outputs(
    daemon: &Daemon,
    spec: &BuildSpec,
) -> Result<outputs::DaemonPlan, ShipError> {
    let platforms = outputs::parse_platforms(spec.platform.as_slice())?;
    let extras =
        !spec.outputs.is_empty() || !spec.cache_from.is_empty() || !spec.cache_to.is_empty();
    if spec.context.builder() == Builder::Classic && (extras || platforms.len() > 1) {
        return Err(outputs::OutputError::Conflict(
            "--output, --cache-from, --cache-to and several platforms need BuildKit: drop --builder classic".into(),
        )
        .into());
    }
    let engine = match &daemon.version {
        Some(v) => format!("Docker {v}"),
        None => "this Docker daemon".to_string(),
    };
    Ok(outputs::plan_daemon(
        &outputs::Request {
            outputs: &spec.outputs,
            cache_from: &spec.cache_from,
            cache_to: &spec.cache_to,
            platforms: &platforms,
        },
        &engine,
    )?)
}

/// Uploads the context [`survey`] surveyed and runs the build.
pub(crate) async fn build_prepared(
    daemon: &Daemon,
    spec: &BuildSpec,
    prepared: Prepared,
    on_event: &mut (dyn FnMut(Event) + Send),
) -> Result<Built, ShipError> {
    let ctx = spec.context.clone();
    let tar = spec.tar.clone();
    let Prepared {
        survey,
        snapshot,
        placement,
        mut labels,
        daemon_plan,
        ..
    } = prepared;
    on_event(Event::Context {
        digest: survey.digest.clone(),
        entries: survey.entries,
        content_bytes: survey.content_bytes,
        dockerfile: match spec.context.builder() {
            Builder::BuildKit => session_dockerfile_name(&ctx),
            Builder::Classic => placement.dockerfile_param.clone(),
        },
        compression: match (spec.context.builder(), spec.compression) {
            (Builder::BuildKit, _) | (_, Compression::None) => "none",
            (_, Compression::Gzip) => "gzip",
        },
    });

    if let (Some(platform), Some(arch)) = (&spec.platform, &daemon.arch) {
        if let Some(want) = platform_arch(platform) {
            if want != arch {
                on_event(Event::Warning {
                    message: format!(
                        "building for {platform} on a daemon whose architecture is {arch}: RUN steps need binfmt/QEMU emulation there and run slowly, or fail with 'exec format error'"
                    ),
                });
            }
        }
    }

    labels.extend(spec.labels.clone());
    if spec.context.builder() == Builder::BuildKit {
        return build_session(
            daemon,
            spec,
            &daemon_plan,
            survey,
            snapshot,
            labels,
            on_event,
        )
        .await;
    }
    let options = bollard::query_parameters::BuildImageOptions {
        dockerfile: placement.dockerfile_param.clone(),
        t: spec.tags.first().cloned(),
        nocache: spec.no_cache,
        pull: spec.pull.then(|| "1".to_string()),
        rm: true,
        forcerm: true,
        buildargs: Some(
            spec.build_args
                .clone()
                .into_iter()
                .collect::<HashMap<_, _>>(),
        ),
        labels: Some(labels.into_iter().collect::<HashMap<_, _>>()),
        platform: spec.platform.clone().unwrap_or_default(),
        target: spec.target.clone().unwrap_or_default(),
        networkmode: spec.network.clone(),
        version: bollard::query_parameters::BuilderVersion::BuilderV1,
        ..Default::default()
    };

    let up = upload::start(ctx.clone(), tar, placement.extra, spec.compression);
    let sent = up.sent.clone();
    let body_done = up.finished.clone();
    let mut stream = daemon.long.build_image(
        options,
        registry_config(&spec.pull_credentials, spec.context.builder()),
        Some(bollard::body_try_stream(up.body)),
    );
    let mut ticker = tokio::time::interval(Duration::from_millis(500));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last_reported = 0u64;
    let mut upload_done = false;
    let mut state = StreamState::default();
    let mut failure: Option<ShipError> = None;
    // Stall detection: the last time the daemon took bytes, and whether
    // the stall was reported (once, before giving up).
    let mut last_progress = tokio::time::Instant::now();
    let mut stall_reported = false;
    let report_stall_after = (spec.idle_timeout / 3).min(Duration::from_secs(30));

    loop {
        tokio::select! {
            item = stream.next() => {
                let Some(item) = item else { break };
                if !upload_done {
                    upload_done = true;
                    let bytes = sent.load(Ordering::Relaxed);
                    on_event(Event::Upload { bytes, done: true });
                    last_reported = bytes;
                }
                match item {
                    Ok(info) => state.handle(info, on_event),
                    Err(bollard::errors::Error::DockerStreamError { error }) => {
                        let (step, log_tail) = state.failure();
                        failure = Some(ShipError::Step {
                            step,
                            message: with_hint(error.trim()),
                            log_tail,
                        });
                        break;
                    }
                    Err(e) => {
                        failure = Some(ShipError::Api {
                            what: format!("the build request to {} failed", daemon.host),
                            message: daemon::describe(&e),
                        });
                        break;
                    }
                }
            }
            _ = ticker.tick(), if !upload_done => {
                let bytes = sent.load(Ordering::Relaxed);
                if bytes != last_reported {
                    last_reported = bytes;
                    last_progress = tokio::time::Instant::now();
                    stall_reported = false;
                    on_event(Event::Upload { bytes, done: false });
                } else if !body_done.load(Ordering::Relaxed) {
                    let idle = last_progress.elapsed();
                    if idle >= spec.idle_timeout {
                        failure = Some(ShipError::Stalled { bytes, secs: idle.as_secs() });
                        break;
                    }
                    if idle >= report_stall_after && !stall_reported {
                        stall_reported = true;
                        on_event(Event::Warning {
                            message: format!(
                                "the upload is stalled: the daemon has read nothing for {} s ({bytes} bytes sent); giving up after {} s",
                                idle.as_secs(),
                                spec.idle_timeout.as_secs()
                            ),
                        });
                    }
                }
            }
        }
    }
    drop(stream);
    // The connection may still hold the body, unread: stop the writer.
    let _ = up.cancel.send(true);
    let upload_result = up.writer.await;
    // An upload error explains a failed request better than the request.
    let stats = match upload_result {
        Ok(Ok(stats)) => Some(stats),
        Ok(Err(upload::UploadError::Closed)) => None,
        Ok(Err(e)) => return Err(e.into()),
        Err(e) => {
            return Err(ShipError::Api {
                what: "the upload thread".into(),
                message: e.to_string(),
            })
        }
    };
    if let Some(f) = failure {
        return Err(f);
    }
    if let Some(stats) = &stats {
        if stats.digest != survey.digest {
            return Err(ShipError::Changed {
                before: survey.digest,
                after: stats.digest.clone(),
            });
        }
    }
    let image_id = match state.image_id {
        Some(id) => id,
        None => return Err(ShipError::NoImage),
    };
    tag_rest(daemon, spec, &image_id).await?;
    for tag in &spec.tags {
        on_event(Event::Tag { tag: tag.clone() });
    }
    Ok(Built {
        image_id,
        context_digest: survey.digest,
        uploaded_bytes: sent.load(Ordering::Relaxed),
        steps: state.steps + state.buildkit.steps,
    })
}

/// Builds with BuildKit through a session: BuildKit pulls the context and
/// the Dockerfile's directory over file sync (only what it asks for, and
/// only files changed since its last transfer under the same shared key).
async fn build_session(
    daemon: &Daemon,
    spec: &BuildSpec,
    plan: &outputs::DaemonPlan,
    survey: upload::Survey,
    snapshot: Arc<Snapshot>,
    labels: BTreeMap<String, String>,
    on_event: &mut (dyn FnMut(Event) + Send),
) -> Result<Built, ShipError> {
    let ctx = &spec.context;
    let dockerfile_name = session_dockerfile_name(ctx);
    let export_state = std::sync::Arc::new(filesend::ExportState::default());
    if plan.export.is_some() && !spec.tags.is_empty() {
        // As docker: the tags of a build that exports files go nowhere.
        on_event(Event::Warning {
            message: format!(
                "--tag {} is not applied: this build writes its result to --output, not to an image",
                spec.tags.join(", --tag ")
            ),
        });
    }
    let mut build_args = spec.build_args.clone();
    if plan.inline_cache {
        build_args.insert("BUILDKIT_INLINE_CACHE".into(), "1".into());
    }
    let (info, services) = session_parts(
        spec,
        session::session_credentials(&spec.pull_credentials),
        plan.export.clone(),
        export_state.clone(),
        snapshot,
    );
    let counters = services.counters.clone();
    let api = daemon.api_prefix();
    let session_err = |e: session::SessionError| ShipError::Api {
        what: "the BuildKit session".into(),
        message: e.to_string(),
    };
    let stalled = |what: &'static str| ShipError::SessionStalled {
        what,
        secs: spec.idle_timeout.as_secs(),
        stats: 0,
        files: 0,
        bytes: 0,
    };
    let options = bollard::query_parameters::BuildImageOptions {
        dockerfile: dockerfile_name,
        t: if plan.makes_image() {
            spec.tags.first().cloned()
        } else {
            None
        },
        cachefrom: (!plan.cache_from.is_empty()).then(|| plan.cache_from.clone()),
        remote: Some("client-session".into()),
        session: Some(info.id.clone()),
        nocache: spec.no_cache,
        pull: spec.pull.then(|| "1".to_string()),
        rm: true,
        forcerm: true,
        buildargs: Some(build_args.into_iter().collect()),
        labels: Some(labels.into_iter().collect()),
        platform: plan.platform.clone().unwrap_or_default(),
        target: spec.target.clone().unwrap_or_default(),
        networkmode: spec.network.clone(),
        version: bollard::query_parameters::BuilderVersion::BuilderBuildKit,
        ..Default::default()
    };
    let mut query = serde_urlencoded::to_string(&options).map_err(|e| ShipError::Api {
        what: "encoding the build options".into(),
        message: e.to_string(),
    })?;
    if let Some(json) = &plan.outputs_json {
        query.push('&');
        query.push_str(&serde_urlencoded::to_string([("outputs", json)]).unwrap_or_default());
    }
    // The session and the build request go out together, as the docker CLI
    // sends them: BuildKit waits for the session the build names.
    let session = async {
        tokio::time::timeout(
            spec.idle_timeout,
            session::start(&daemon.endpoint, &api, &info, services),
        )
        .await
        .map_err(|_| stalled("the daemon did not answer the session request (POST /session)"))?
        // The session task must not outlive the build, whatever way it ends.
        .map(session::AbortOnDrop)
        .map_err(session_err)
    };
    let build = async {
        tokio::time::timeout(
            spec.idle_timeout,
            session::build_request(&daemon.endpoint, &api, &query),
        )
        .await
        .map_err(|_| stalled("the daemon did not answer the build request (POST /build)"))?
        .map_err(session_err)
    };
    // Either failing ends both (a build waits for its session).
    let (_served, mut body) = tokio::try_join!(session, build)?;

    let mut ticker = tokio::time::interval(Duration::from_millis(500));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last_reported = 0u64;
    let mut state = StreamState::default();
    let mut lines = session::JsonLines::default();
    let mut failure: Option<ShipError> = None;
    // Stall detection: the last time the daemon sent progress or asked
    // the session for files, and what the file sync had done then.
    let sync_progress = || {
        (
            counters.stats.load(Ordering::Relaxed),
            counters.files.load(Ordering::Relaxed),
            counters.data_bytes.load(Ordering::Relaxed)
                + export_state.messages.load(Ordering::Relaxed),
        )
    };
    let mut last_activity = tokio::time::Instant::now();
    let mut last_sync = sync_progress();
    let mut stall_reported = false;
    let report_stall_after = (spec.idle_timeout / 3).min(Duration::from_secs(30));
    'read: loop {
        tokio::select! {
            frame = http_body_util::BodyExt::frame(&mut body) => {
                last_activity = tokio::time::Instant::now();
                stall_reported = false;
                let chunk = match frame {
                    None => break,
                    Some(Ok(frame)) => match frame.into_data() {
                        Ok(data) => data,
                        Err(_) => continue,
                    },
                    Some(Err(e)) => {
                        failure = Some(ShipError::Api {
                            what: format!("the build request to {} failed", daemon.host),
                            message: daemon::describe(&e),
                        });
                        break;
                    }
                };
                let infos = match lines.push(&chunk) {
                    Ok(infos) => infos,
                    Err(message) => {
                        failure = Some(ShipError::Api {
                            what: format!("reading the build progress from {}", daemon.host),
                            message,
                        });
                        break;
                    }
                };
                for info in infos {
                    let error = info.error_detail.as_ref().and_then(|d| d.message.clone());
                    if let Some(error) = error {
                        let (step, log_tail) = state.failure();
                        failure = Some(ShipError::Step {
                            step,
                            message: with_hint(error.trim()),
                            log_tail,
                        });
                        break 'read;
                    }
                    state.handle(info, on_event);
                }
            }
            _ = ticker.tick() => {
                let bytes = counters.data_bytes.load(Ordering::Relaxed);
                if bytes != last_reported {
                    last_reported = bytes;
                    on_event(Event::Upload { bytes, done: false });
                }
                let sync = sync_progress();
                if sync != last_sync || state.buildkit.run_step_running() {
                    last_sync = sync;
                    last_activity = tokio::time::Instant::now();
                    stall_reported = false;
                    continue;
                }
                let idle = last_activity.elapsed();
                if idle >= spec.idle_timeout {
                    let (stats, files, bytes) = sync;
                    failure = Some(ShipError::SessionStalled {
                        what: "the daemon sent no build progress and asked for no files",
                        secs: idle.as_secs(),
                        stats,
                        files,
                        bytes,
                    });
                    break;
                }
                if idle >= report_stall_after && !stall_reported {
                    stall_reported = true;
                    on_event(Event::Warning {
                        message: format!(
                            "the build is stalled: the daemon has sent no progress and asked for no files for {} s; giving up after {} s",
                            idle.as_secs(),
                            spec.idle_timeout.as_secs()
                        ),
                    });
                }
            }
        }
    }
    let sent = counters.data_bytes.load(Ordering::Relaxed);
    on_event(Event::Upload {
        bytes: sent,
        done: true,
    });
    tracing::debug!(
        stats = counters.stats.load(Ordering::Relaxed),
        files = counters.files.load(Ordering::Relaxed),
        bytes = sent,
        "file sync totals"
    );
    if let Some(f) = failure {
        return Err(f);
    }
    if plan.export.is_some() {
        wait_for_export(&export_state, spec.idle_timeout, "the daemon").await?;
        return Ok(Built {
            image_id: String::new(),
            context_digest: survey.digest,
            uploaded_bytes: sent,
            steps: state.steps + state.buildkit.steps,
        });
    }
    let image_id = state.image_id.ok_or(ShipError::NoImage)?;
    tag_rest(daemon, spec, &image_id).await?;
    for tag in &spec.tags {
        on_event(Event::Tag { tag: tag.clone() });
    }
    Ok(Built {
        image_id,
        context_digest: survey.digest,
        uploaded_bytes: sent,
        steps: state.steps + state.buildkit.steps,
    })
}

/// Waits for the `--output` transfer to land once `builder` (for the
/// message) answered the build: its last writes may still be in flight.
async fn wait_for_export(
    state: &filesend::ExportState,
    idle_timeout: Duration,
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

/// The session of a BuildKit build: who it is (its shared key) and what it
/// serves (the `context` and `dockerfile` directories, credentials,
/// secrets, ssh agents), whichever way it reaches the engine.
fn session_parts(
    spec: &BuildSpec,
    credentials: HashMap<String, (String, String)>,
    export: Option<outputs::Export>,
    export_state: std::sync::Arc<filesend::ExportState>,
    surveyed: Arc<Snapshot>,
) -> (session::SessionInfo, session::Services) {
    let ctx = &spec.context;
    let dockerfile_dir = match ctx.dockerfile().parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let dirs = [
        (
            "context".to_string(),
            filesync::SyncDir {
                root: ctx.root().to_path_buf(),
                reset_owner: true,
                surveyed: Some(surveyed),
            },
        ),
        (
            "dockerfile".to_string(),
            filesync::SyncDir {
                root: dockerfile_dir,
                reset_owner: false,
                surveyed: None,
            },
        ),
    ]
    .into();
    let info = session::SessionInfo {
        id: format!("reggie-build-{}", upload::random_hex(20)),
        name: ctx
            .root()
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "context".into()),
        shared_key: session::shared_key(ctx.root()),
    };
    let services = session::Services {
        dirs,
        credentials,
        secrets: spec.secrets.clone(),
        ssh: spec.ssh.clone(),
        counters: std::sync::Arc::new(filesync::Counters::default()),
        export,
        export_state,
    };
    (info, services)
}

/// The Dockerfile's name in its own synced directory.
fn session_dockerfile_name(ctx: &Context) -> String {
    ctx.dockerfile()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "Dockerfile".into())
}

/// Tags the image with every tag but the first (the build applied it).
async fn tag_rest(daemon: &Daemon, spec: &BuildSpec, image_id: &str) -> Result<(), ShipError> {
    for tag in spec.tags.iter().skip(1) {
        let (repo, t) = split_tag(tag);
        daemon
            .quick
            .tag_image(
                image_id,
                Some(bollard::query_parameters::TagImageOptions {
                    repo: Some(repo.to_string()),
                    tag: Some(t.to_string()),
                }),
            )
            .await
            .map_err(|e| ShipError::Api {
                what: format!("tagging {image_id} as {tag}"),
                message: daemon::describe(&e),
            })?;
    }
    Ok(())
}

#[derive(Default)]
struct StreamState {
    current_step: Option<String>,
    steps: u32,
    tail: std::collections::VecDeque<String>,
    partial: String,
    image_id: Option<String>,
    buildkit: buildkit::Progress,
}

const TAIL: usize = 10;

impl StreamState {
    fn handle(
        &mut self,
        info: bollard::models::BuildInfo,
        on_event: &mut (dyn FnMut(Event) + Send),
    ) {
        match info.aux {
            Some(bollard::models::BuildInfoAux::Default(bollard::models::ImageId {
                id: Some(id),
            })) => {
                self.image_id = Some(id.clone());
                on_event(Event::ImageId { id });
            }
            Some(bollard::models::BuildInfoAux::BuildKit(status)) => {
                self.buildkit.handle(&status, on_event);
            }
            _ => {}
        }
        if let Some(text) = info.stream {
            self.partial.push_str(&text);
            while let Some(pos) = self.partial.find('\n') {
                let line: String = self.partial.drain(..=pos).collect();
                self.line(line.trim_end_matches(['\n', '\r']), on_event);
            }
        }
        if let Some(status) = info.status {
            // Pull progress of FROM images.
            let line = match info.id {
                Some(id) => format!("{id}: {status}"),
                None => status,
            };
            if info.progress_detail.is_none_or(|p| p.total.is_none()) {
                self.line(&line, on_event);
            }
        }
    }

    /// The step that failed and its last lines of output.
    fn failure(&self) -> (Option<String>, Vec<String>) {
        // Only one of the two builders' progress is ever filled in.
        match self.buildkit.failure() {
            (Some(step), tail) => (Some(step), tail),
            (None, _) => (
                self.current_step.clone(),
                self.tail.iter().cloned().collect(),
            ),
        }
    }

    fn line(&mut self, line: &str, on_event: &mut (dyn FnMut(Event) + Send)) {
        if line.trim().is_empty() {
            return;
        }
        if let Some(step) = parse_step(line) {
            self.current_step = Some(line.trim().to_string());
            self.steps += 1;
            self.tail.clear();
            on_event(step);
            return;
        }
        if self.tail.len() == TAIL {
            self.tail.pop_front();
        }
        self.tail.push_back(line.to_string());
        on_event(Event::Log {
            line: line.to_string(),
        });
    }
}

/// `Step 2/5 : COPY a b` → a step event.
fn parse_step(line: &str) -> Option<Event> {
    let rest = line.strip_prefix("Step ")?;
    let (nums, instruction) = rest.split_once(" : ")?;
    let (n, total) = nums.split_once('/')?;
    Some(Event::Step {
        number: n.trim().parse().ok()?,
        total: total.trim().parse().ok()?,
        instruction: instruction.trim().to_string(),
        stage: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_parse() {
        match parse_step("Step 2/5 : COPY a /b") {
            Some(Event::Step {
                number,
                total,
                instruction,
                stage: None,
            }) => assert_eq!((number, total, instruction.as_str()), (2, 5, "COPY a /b")),
            other => panic!("{other:?}"),
        }
        assert!(parse_step(" ---> Running in abc").is_none());
    }

    #[test]
    fn tags_split() {
        assert_eq!(split_tag("a/b:1"), ("a/b", "1"));
        assert_eq!(
            split_tag("localhost:5000/a"),
            ("localhost:5000/a", "latest")
        );
        assert_eq!(split_tag("localhost:5000/a:v2"), ("localhost:5000/a", "v2"));
    }

    #[test]
    fn ship_build_key_covers_every_input() {
        let args: BTreeMap<String, String> = [("A".to_string(), "1".to_string())].into();
        let base = build_key("sha256:c", b"FROM x", Some("t"), &args, "linux/amd64");
        assert!(base.starts_with("sha256:") && base.len() == 71, "{base}");
        assert_eq!(
            base,
            build_key("sha256:c", b"FROM x", Some("t"), &args, "linux/amd64")
        );
        let other_args: BTreeMap<String, String> = [("A".to_string(), "2".to_string())].into();
        for other in [
            build_key("sha256:d", b"FROM x", Some("t"), &args, "linux/amd64"),
            build_key("sha256:c", b"FROM y", Some("t"), &args, "linux/amd64"),
            build_key("sha256:c", b"FROM x", None, &args, "linux/amd64"),
            build_key("sha256:c", b"FROM x", Some("t"), &other_args, "linux/amd64"),
            build_key(
                "sha256:c",
                b"FROM x",
                Some("t"),
                &BTreeMap::new(),
                "linux/amd64",
            ),
            build_key("sha256:c", b"FROM x", Some("t"), &args, "linux/arm64"),
        ] {
            assert_ne!(base, other);
        }
    }

    #[test]
    fn registry_config_keys_per_builder() {
        let creds: BTreeMap<String, crate::auth::Credentials> = ["docker.io", "127.0.0.1:5000"]
            .into_iter()
            .map(|r| {
                (
                    r.to_string(),
                    crate::auth::Credentials {
                        username: "u".into(),
                        secret: "p".into(),
                        source: "test".into(),
                    },
                )
            })
            .collect();
        assert!(registry_config(&BTreeMap::new(), Builder::BuildKit).is_none());
        for (builder, hub) in [
            (Builder::BuildKit, "registry-1.docker.io"),
            (Builder::Classic, "https://index.docker.io/v1/"),
        ] {
            let map = registry_config(&creds, builder).unwrap_or_default();
            let mut keys: Vec<&str> = map.keys().map(String::as_str).collect();
            keys.sort();
            let mut want = vec![hub, "127.0.0.1:5000"];
            want.sort();
            assert_eq!(keys, want);
            assert_eq!(map[hub].serveraddress.as_deref(), Some(hub));
            assert_eq!(map[hub].password.as_deref(), Some("p"));
        }
    }

    #[test]
    fn known_failures_say_what_to_do() {
        assert!(with_hint("network bridge not found").contains("--network host"));
        assert!(with_hint("x: no basic auth credentials").contains("docker login"));
        assert_eq!(with_hint("exit code: 3"), "exit code: 3");
    }

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn credentials_stripped_from_source() {
        assert_eq!(
            strip_credentials("https://x:tok@github.com/a/b.git"),
            "https://github.com/a/b.git"
        );
        assert_eq!(
            strip_credentials("git@github.com:a/b.git"),
            "git@github.com:a/b.git"
        );
    }
}
