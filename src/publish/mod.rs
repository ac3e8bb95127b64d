//! Pushing built images: credentials (ECR tokens here; docker config and
//! explicit ones from [`crate::auth`]) and the daemon's
//! `/images/{name}/push`. Builds come from [`crate::ship`]; nothing there
//! depends on this module.

pub(crate) mod ecr;
pub mod registry;
pub(crate) mod reuse;

use std::time::Duration;

use futures_util::StreamExt;

use crate::reference::{split_tag, Reference, ReferenceError};
use crate::ship::{daemon, Daemon, Event};

use crate::auth;
pub use crate::auth::Credentials;
pub use ecr::EcrError;

/// How to push.
#[derive(Debug, Clone, Default)]
pub(crate) struct PushOptions {
    /// Push to this `host:port` instead of the tag's registry, keeping
    /// the tag's identity for credentials (ECR token for the tag's
    /// account and region). For tests against a local registry.
    pub registry_endpoint: Option<String>,
    /// Create missing ECR repositories.
    pub create_repo: bool,
    /// Explicit credentials (`--username`, `--password-stdin`); they win
    /// over every other source.
    pub credentials: Option<Credentials>,
}

impl PushOptions {
    /// Where the image `tag` names (parsed: `reference`) is pushed to and
    /// looked up: its name there and the registry's `host[:port]`. That is
    /// the tag and its registry, or with `registry_endpoint` the same
    /// repository and tag on the endpoint.
    pub(crate) fn location(&self, tag: &str, reference: &Reference) -> (String, String) {
        match &self.registry_endpoint {
            Some(endpoint) => (
                format!(
                    "{endpoint}/{}:{}",
                    reference.repository,
                    reference.tag_or_latest()
                ),
                endpoint.clone(),
            ),
            None => (tag.to_string(), reference.registry.clone()),
        }
    }
}

/// A pushed tag.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// The tag as given (`registry/repository:tag`).
    pub tag: String,
    /// The manifest digest the registry reported, when it reported one.
    pub digest: Option<String>,
}

/// Errors while pushing.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// A tag is not an image reference.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// Getting an ECR token or checking a repository failed.
    #[error(transparent)]
    Ecr(#[from] ecr::EcrError),
    /// Reading the docker config's credentials failed.
    #[error(transparent)]
    Auth(#[from] auth::AuthError),
    /// The daemon reported an error while pushing a tag.
    #[error("pushing {tag} to {registry} failed: {message}{hint}")]
    Push {
        /// The tag being pushed.
        tag: String,
        /// The registry it was pushed to.
        registry: String,
        /// The daemon's message.
        message: String,
        /// What to do, on its own indented line, or empty.
        hint: String,
    },
    /// Tagging the image for its registry before the push failed.
    #[error("{what}: {message}")]
    Api {
        /// The call, in words.
        what: String,
        /// The daemon's message.
        message: String,
    },
}

/// Finds credentials for the reference's registry.
pub(crate) async fn credentials_for(
    reference: &Reference,
    options: &PushOptions,
) -> Result<Option<Credentials>, PublishError> {
    if let Some(c) = &options.credentials {
        return Ok(Some(c.clone()));
    }
    if let Some(host) = ecr::parse_host(&reference.registry) {
        return Ok(Some(ecr::credentials(&host).await?));
    }
    Ok(auth::from_docker_config(&reference.registry)?)
}

/// Credentials for pulling a build's base images, keyed by registry (as
/// [`Reference`] names it: `docker.io`, `host:port`, ...), found the
/// way a push finds them (ECR tokens, docker config). Registries with none
/// configured are left out: public images need none, and the daemon names
/// a pull it is refused. Lookups that fail are returned as messages, to
/// warn about, not to stop the build.
pub(crate) async fn pull_credentials(
    images: &[String],
) -> (std::collections::BTreeMap<String, Credentials>, Vec<String>) {
    let mut found = std::collections::BTreeMap::new();
    let mut problems = Vec::new();
    // A name that is not a reference gets no credentials: the builder
    // refuses it with its own message.
    let mut registries: Vec<String> = images
        .iter()
        .filter_map(|i| Reference::parse(i).ok())
        .map(|r| r.registry)
        .collect();
    registries.sort();
    registries.dedup();
    for registry in registries {
        let looked_up = match ecr::parse_host(&registry) {
            Some(host) => ecr::credentials(&host)
                .await
                .map(Some)
                .map_err(|e| e.to_string()),
            None => auth::from_docker_config(&registry).map_err(|e| e.to_string()),
        };
        match looked_up {
            Ok(Some(c)) => {
                found.insert(registry, c);
            }
            Ok(None) => {}
            Err(e) => problems.push(format!(
                "no credentials for the base images on {registry}: {e}"
            )),
        }
    }
    (found, problems)
}

/// Pushes every tag of the image; returns the digests.
pub(crate) async fn push(
    daemon: &Daemon,
    tags: &[String],
    options: &PushOptions,
    on_event: &mut (dyn FnMut(Event) + Send),
) -> Result<Vec<Pushed>, PublishError> {
    let mut pushed = Vec::new();
    for tag in tags {
        let reference = Reference::parse(tag)?;
        let ecr_host = ecr::parse_host(&reference.registry);
        if let Some(host) = &ecr_host {
            if options.create_repo {
                if ecr::ensure_repository(host, &reference.repository).await? {
                    on_event(Event::Push {
                        tag: tag.clone(),
                        status: format!("created ECR repository {}", reference.repository),
                        digest: None,
                    });
                }
            } else if !ecr::repository_exists(host, &reference.repository).await? {
                return Err(ecr::EcrError::NoRepository {
                    repository: reference.repository.clone(),
                    account: host.account.clone(),
                    region: host.region.clone(),
                }
                .into());
            }
        }
        let creds = credentials_for(&reference, options).await?;
        let (push_name, server) = options.location(tag, &reference);
        // Pushing to --registry-endpoint: a temporary name there, removed
        // after the push.
        let temporary = options.registry_endpoint.is_some();
        if temporary {
            let (repo, t) = split_tag(&push_name);
            daemon
                .quick
                .tag_image(
                    tag,
                    Some(bollard::query_parameters::TagImageOptions {
                        repo: Some(repo.to_string()),
                        tag: Some(t.to_string()),
                    }),
                )
                .await
                .map_err(|e| PublishError::Api {
                    what: format!("tagging {tag} as {push_name}"),
                    message: daemon::describe(&e),
                })?;
        }
        let result = push_with_retries(
            daemon,
            &push_name,
            &server,
            creds,
            tag,
            ecr_host.as_ref().filter(|_| options.credentials.is_none()),
            on_event,
        )
        .await;
        if temporary {
            let _ = daemon
                .quick
                .remove_image(
                    &push_name,
                    Some(bollard::query_parameters::RemoveImageOptions {
                        noprune: true,
                        ..Default::default()
                    }),
                    None,
                )
                .await;
        }
        let digest = result?;
        on_event(Event::Push {
            tag: tag.clone(),
            status: "pushed".into(),
            digest: digest.clone(),
        });
        pushed.push(Pushed {
            tag: tag.clone(),
            digest,
        });
    }
    Ok(pushed)
}

async fn push_one(
    daemon: &Daemon,
    name: &str,
    server: &str,
    creds: Option<&Credentials>,
    shown_tag: &str,
    on_event: &mut (dyn FnMut(Event) + Send),
) -> Result<Option<String>, String> {
    let (repo, tag) = split_tag(name);
    let docker_creds = creds.map(|c| c.docker(server));
    let mut stream = daemon.long.push_image(
        repo,
        Some(bollard::query_parameters::PushImageOptions {
            tag: Some(tag.to_string()),
            ..Default::default()
        }),
        docker_creds,
    );
    let mut digest = None;
    let mut last_status = String::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                let Some(status) = info.status else { continue };
                if let Some(d) = parse_digest(&status) {
                    digest = Some(d);
                }
                // Per-layer byte progress is noise in line output.
                if info.progress_detail.is_some_and(|p| p.total.is_some()) {
                    continue;
                }
                if status != last_status {
                    last_status = status.clone();
                    on_event(Event::Push {
                        tag: shown_tag.to_string(),
                        status,
                        digest: None,
                    });
                }
            }
            Err(e) => {
                let message = match e {
                    bollard::errors::Error::DockerStreamError { error } => error,
                    other => daemon::describe(&other),
                };
                return Err(message.trim().to_string());
            }
        }
    }
    Ok(digest)
}

/// Waits before the retries of a push that failed on the network.
const RETRY_DELAYS: [Duration; 3] = [
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
];

/// What a failed push's message says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FailureKind {
    /// Connection refused/reset, timeouts: worth another try.
    Transient,
    Unauthorized,
    NoRepository,
    ImmutableTag,
    Other,
}

fn classify(message: &str) -> FailureKind {
    let m = message.to_ascii_lowercase();
    let any = |words: &[&str]| words.iter().any(|w| m.contains(w));
    if any(&[
        "connection refused",
        "connection reset",
        "i/o timeout",
        "no route to host",
        "broken pipe",
        "unexpected eof",
        "tls handshake timeout",
        "503 service unavailable",
        "502 bad gateway",
    ]) {
        FailureKind::Transient
    } else if any(&[
        "immutable",
        "imagetagalreadyexists",
        "cannot be overwritten",
        "tag_invalid",
    ]) {
        FailureKind::ImmutableTag
    } else if any(&["name unknown", "name_unknown", "repositorynotfound"])
        || (m.contains("repository") && m.contains("does not exist"))
    {
        FailureKind::NoRepository
    } else if any(&[
        "unauthorized",
        "no basic auth",
        "authentication required",
        "denied",
        "403 forbidden",
    ]) {
        FailureKind::Unauthorized
    } else {
        FailureKind::Other
    }
}

/// Pushes, retrying network failures with backoff, and an ECR push
/// refused for its credentials once with a fresh token.
async fn push_with_retries(
    daemon: &Daemon,
    name: &str,
    server: &str,
    mut creds: Option<Credentials>,
    shown_tag: &str,
    ecr_host: Option<&ecr::EcrHost>,
    on_event: &mut (dyn FnMut(Event) + Send),
) -> Result<Option<String>, PublishError> {
    let mut retries = 0usize;
    let mut refreshed = false;
    loop {
        let message =
            match push_one(daemon, name, server, creds.as_ref(), shown_tag, on_event).await {
                Ok(digest) => return Ok(digest),
                Err(message) => message,
            };
        let kind = classify(&message);
        if kind == FailureKind::Transient && retries < RETRY_DELAYS.len() {
            let delay = RETRY_DELAYS[retries];
            retries += 1;
            tracing::info!(
                "push of {shown_tag} to {server} failed ({message}); retry {retries}/{} in {delay:?}",
                RETRY_DELAYS.len()
            );
            tokio::time::sleep(delay).await;
            continue;
        }
        if let (FailureKind::Unauthorized, Some(host), false) = (kind, ecr_host, refreshed) {
            refreshed = true;
            tracing::info!(
                "{server} refused the ECR token; fetching a fresh one and retrying once"
            );
            creds = Some(ecr::credentials(host).await?);
            continue;
        }
        return Err(push_error(
            shown_tag,
            server,
            &message,
            kind,
            creds.as_ref(),
            retries,
        ));
    }
}

fn push_error(
    tag: &str,
    server: &str,
    message: &str,
    kind: FailureKind,
    creds: Option<&Credentials>,
    retries: usize,
) -> PublishError {
    let hint = match kind {
        FailureKind::Transient => format!(
            "\n  The registry {server} cannot be reached (tried {} times): check that it is up and that the host and port are right",
            retries + 1,
        ),
        FailureKind::Unauthorized => match creds {
            Some(c) => format!(
                "\n  The registry refused the credentials from {} for user {:?}: check them (`docker login {server}`, --username/--password-stdin, or the AWS credentials for ECR).",
                c.source, c.username
            ),
            None => "\n  No credentials were found for this registry: `docker login` it, or pass --username and --password-stdin.".to_string(),
        },
        FailureKind::NoRepository => "\n  The repository does not exist in the registry: create it, or pass --create-repo for ECR.".to_string(),
        FailureKind::ImmutableTag => "\n  The tag already exists and the repository's tags are immutable: push a new tag, or make the tags mutable (`aws ecr put-image-tag-mutability --image-tag-mutability MUTABLE`).".to_string(),
        FailureKind::Other => String::new(),
    };
    PublishError::Push {
        tag: tag.to_string(),
        registry: server.to_string(),
        message: message.to_string(),
        hint,
    }
}

/// `latest: digest: sha256:ab.. size: 527` → `sha256:ab..`.
fn parse_digest(status: &str) -> Option<String> {
    let (_, rest) = status.split_once("digest: ")?;
    let d = rest.split_whitespace().next()?;
    d.starts_with("sha256:").then(|| d.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_with_and_without_an_endpoint() {
        let tag = "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/app";
        let r = Reference::parse(tag).unwrap();
        let mut options = PushOptions::default();
        assert_eq!(
            options.location(tag, &r),
            (
                tag.to_string(),
                "123456789012.dkr.ecr.us-east-1.amazonaws.com".to_string()
            )
        );
        options.registry_endpoint = Some("127.0.0.1:5000".into());
        assert_eq!(
            options.location(tag, &r),
            (
                "127.0.0.1:5000/team/app:latest".to_string(),
                "127.0.0.1:5000".to_string()
            )
        );
    }

    #[test]
    fn failures_classify() {
        use FailureKind::*;
        for (m, k) in [
            ("Get \"http://127.0.0.1:1/v2/\": dial tcp 127.0.0.1:1: connect: connection refused", Transient),
            ("read tcp 1.2.3.4:5->6.7.8.9:443: read: connection reset by peer", Transient),
            ("unauthorized: authentication required", Unauthorized),
            ("denied: Your authorization token has expired. Reauthenticate and try again.", Unauthorized),
            ("name unknown: The repository with name 'x' does not exist in the registry with id '123456789012'", NoRepository),
            ("tag invalid: The image tag 'v1' already exists in the 'x' repository and cannot be overwritten because the repository is immutable.", ImmutableTag),
            ("something else", Other),
        ] {
            assert_eq!(classify(m), k, "{m}");
        }
        let e = push_error("a:1", "r:5000", "connection refused", Transient, None, 3).to_string();
        assert!(e.contains("r:5000") && e.contains("tried 4 times"), "{e}");
        let e = push_error("a:1", "r", "name unknown", NoRepository, None, 0).to_string();
        assert!(e.contains("--create-repo"), "{e}");
        let e = push_error("a:1", "r", "tag invalid", ImmutableTag, None, 0).to_string();
        assert!(e.contains("new tag") && e.contains("MUTABLE"), "{e}");
    }

    #[test]
    fn digests() {
        assert_eq!(
            parse_digest("v1: digest: sha256:abc size: 527").as_deref(),
            Some("sha256:abc")
        );
        assert_eq!(parse_digest("Pushed"), None);
    }
}
