//! What every build needs before an engine runs it, whichever engine:
//! the context's survey (its digest, which build files it sends, the
//! stats BuildKit's file sync serves again), the Dockerfile's bytes, the
//! labels (the checkout's OCI source and revision, the context digest, a
//! pinned creation time), the build key that `--skip-if-exists` finds an
//! image by, and the session that serves the files. The daemon's paths
//! (`classic`, `daemon_session`) and the Control API's (`control`) share
//! it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::context::survey::{survey_keeping_stats, Snapshot};
use crate::context::tarball::TarOptions;
use crate::context::{Builder, Context};

use super::daemon::Daemon;
use super::error::ShipError;
use super::event::Event;
use super::spec::BuildSpec;
use super::{filesend, filesync, outputs, session, upload};

/// The label holding the context digest.
pub const CONTEXT_DIGEST_LABEL: &str = "dev.reggie-build.context-digest";
/// The label holding the build key: a sha256 over the context digest,
/// the Dockerfile, the target, the build args and the platform.
pub const BUILD_KEY_LABEL: &str = "dev.reggie-build.build-key";

/// What can be known of a build before the engine answers: the context's
/// survey, the Dockerfile's bytes and the default labels.
#[derive(Debug, Clone)]
pub(crate) struct Surveyed {
    survey: upload::Survey,
    /// The stats the survey read, for BuildKit's file sync.
    snapshot: Arc<Snapshot>,
    dockerfile: Vec<u8>,
    labels: BTreeMap<String, String>,
}

/// A surveyed build keyed for the platform it is built for.
#[derive(Debug, Clone)]
pub(crate) struct Keyed {
    pub survey: upload::Survey,
    /// The stats the survey read, for BuildKit's file sync.
    pub snapshot: Arc<Snapshot>,
    /// The Dockerfile's bytes.
    pub dockerfile: Vec<u8>,
    /// The platform the build is for (`--platform`, or the engine's).
    pub platform: String,
    pub build_key: String,
    /// The default labels, the build key's, then the build's own
    /// (`--label`, which win).
    pub labels: BTreeMap<String, String>,
}

impl Surveyed {
    /// Keys the build for `platform` ([`build_key`]) and adds the labels.
    pub(crate) fn key(self, spec: &BuildSpec, platform: String) -> Keyed {
        let Surveyed {
            survey,
            snapshot,
            dockerfile,
            mut labels,
        } = self;
        let build_key = build_key(
            &survey.digest,
            &dockerfile,
            spec.target.as_deref(),
            &spec.build_args,
            &platform,
        );
        labels.insert(BUILD_KEY_LABEL.into(), build_key.clone());
        labels.extend(spec.labels.clone());
        Keyed {
            survey,
            snapshot,
            dockerfile,
            platform,
            build_key,
            labels,
        }
    }
}

impl Keyed {
    /// The context as surveyed, reported before the build.
    pub(crate) fn context_event(&self, dockerfile: String, compression: &'static str) -> Event {
        Event::Context {
            digest: self.survey.digest.clone(),
            entries: self.survey.entries,
            content_bytes: self.survey.content_bytes,
            dockerfile,
            compression,
        }
    }
}

/// A build keyed for a daemon, with the daemon's plan for outputs and
/// caches.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    pub keyed: Keyed,
    /// How outputs, caches and platforms reach the daemon.
    pub daemon_plan: outputs::DaemonPlan,
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
            let dockerfile = ctx.read_dockerfile().map_err(ShipError::Dockerfile)?;
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

/// The survey done ([`survey`]) and the daemon reached: the engine's plan
/// for outputs and caches, and the build key (which needs the daemon's
/// platform).
pub(crate) fn prepare_surveyed(
    daemon: &Daemon,
    spec: &BuildSpec,
    surveyed: Surveyed,
) -> Result<Prepared, ShipError> {
    let daemon_plan = plan_outputs(daemon, spec)?;
    let platform = spec
        .platform
        .clone()
        .unwrap_or_else(|| format!("linux/{}", daemon.arch.as_deref().unwrap_or("unknown")));
    Ok(Prepared {
        keyed: surveyed.key(spec, platform),
        daemon_plan,
    })
}

/// Checks `--output`, `--cache-from`, `--cache-to` and `--platform`
/// against what the daemon's builder can do, and maps them onto `/build`.
fn plan_outputs(daemon: &Daemon, spec: &BuildSpec) -> Result<outputs::DaemonPlan, ShipError> {
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

/// A warning when the build's platform is not the daemon's architecture.
pub(crate) fn platform_warning(spec: &BuildSpec, daemon: &Daemon) -> Option<Event> {
    let (platform, arch) = (spec.platform.as_ref()?, daemon.arch.as_ref()?);
    let want = outputs::platform_arch(platform)?;
    (want != arch).then(|| Event::Warning {
        message: format!(
            "building for {platform} on a daemon whose architecture is {arch}: RUN steps need binfmt/QEMU emulation there and run slowly, or fail with 'exec format error'"
        ),
    })
}

/// The OCI source (its credentials removed) and revision of the checkout
/// holding the context, when it is a git checkout.
fn git_labels(ctx: &Context) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    // The work tree holding the context (never a bare repository
    // committed inside it), through the hardened runner.
    let Some(repo) = crate::git::Repo::discover(ctx.root()) else {
        return labels;
    };
    let git = |args: &[&str]| repo.line(args);
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
fn rfc3339(secs: i64) -> String {
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

/// The session of a BuildKit build: who it is (its shared key) and what it
/// serves (the `context` and `dockerfile` directories, credentials,
/// secrets, ssh agents), whichever way it reaches the engine.
pub(crate) fn session_parts(
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
        content_stores: HashMap::new(),
    };
    (info, services)
}

/// The Dockerfile's name in its own synced directory.
pub(crate) fn session_dockerfile_name(ctx: &Context) -> String {
    ctx.dockerfile()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "Dockerfile".into())
}

#[cfg(test)]
mod tests {
    use super::*;

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
