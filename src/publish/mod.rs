//! Pushing built images: credentials (ECR, docker config, explicit) and
//! the daemon's `/images/{name}/push`.

pub mod auth;
pub mod ecr;

use futures_util::StreamExt;

use crate::ship::{daemon, split_tag, Daemon, Event};

pub use auth::Credentials;

/// How to push.
#[derive(Debug, Clone, Default)]
pub struct PushOptions {
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

/// A pushed tag.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub tag: String,
    pub digest: Option<String>,
}

/// Errors while pushing.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Ecr(#[from] ecr::EcrError),
    #[error(transparent)]
    Auth(#[from] auth::AuthError),
    #[error("pushing {tag} to {registry} failed: {message}{hint}")]
    Push {
        tag: String,
        registry: String,
        message: String,
        hint: String,
    },
    #[error("{what}: {message}")]
    Api { what: String, message: String },
}

/// A reference split into registry host, repository and tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub registry: String,
    pub repository: String,
    pub tag: String,
}

/// Parses `[registry/]repository[:tag]` as docker does: the first
/// component is a registry when it has a `.` or `:` or is `localhost`.
pub fn parse_reference(reference: &str) -> Reference {
    let (name, tag) = split_tag(reference);
    match name.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            Reference {
                registry: first.to_string(),
                repository: rest.to_string(),
                tag: tag.to_string(),
            }
        }
        _ => Reference {
            registry: "docker.io".into(),
            repository: if name.contains('/') {
                name.to_string()
            } else {
                format!("library/{name}")
            },
            tag: tag.to_string(),
        },
    }
}

/// Finds credentials for the reference's registry.
pub async fn credentials_for(
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

/// Pushes every tag of the image; returns the digests.
pub async fn push(
    daemon: &Daemon,
    tags: &[String],
    options: &PushOptions,
    on_event: &mut (dyn FnMut(Event) + Send),
) -> Result<Vec<Pushed>, PublishError> {
    let mut pushed = Vec::new();
    for tag in tags {
        let reference = parse_reference(tag);
        if options.create_repo {
            if let Some(host) = ecr::parse_host(&reference.registry) {
                if ecr::ensure_repository(&host, &reference.repository).await? {
                    on_event(Event::Push {
                        tag: tag.clone(),
                        status: format!("created ECR repository {}", reference.repository),
                        digest: None,
                    });
                }
            }
        }
        let creds = credentials_for(&reference, options).await?;
        let (push_name, server, temporary) = match &options.registry_endpoint {
            Some(endpoint) => {
                let name = format!("{endpoint}/{}:{}", reference.repository, reference.tag);
                let (repo, t) = split_tag(&name);
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
                        what: format!("tagging {tag} as {name}"),
                        message: daemon::describe(&e),
                    })?;
                (name, endpoint.clone(), true)
            }
            None => (tag.clone(), reference.registry.clone(), false),
        };
        let result = push_one(daemon, &push_name, &server, creds.as_ref(), tag, on_event).await;
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
) -> Result<Option<String>, PublishError> {
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
                let lower = message.to_ascii_lowercase();
                let hint = if lower.contains("unauthorized")
                    || lower.contains("no basic auth")
                    || lower.contains("authentication required")
                    || lower.contains("denied")
                {
                    match creds {
                        Some(c) => format!(
                            "\n  The registry refused the credentials from {} for user {:?}.",
                            c.source, c.username
                        ),
                        None => "\n  No credentials were found for this registry: `docker login` it, or pass --username and --password-stdin.".to_string(),
                    }
                } else {
                    String::new()
                };
                return Err(PublishError::Push {
                    tag: shown_tag.to_string(),
                    registry: server.to_string(),
                    message: message.trim().to_string(),
                    hint,
                });
            }
        }
    }
    Ok(digest)
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
    fn references() {
        let r = parse_reference("123456789012.dkr.ecr.us-east-1.amazonaws.com/team/app:v1");
        assert_eq!(r.registry, "123456789012.dkr.ecr.us-east-1.amazonaws.com");
        assert_eq!(r.repository, "team/app");
        assert_eq!(r.tag, "v1");
        let r = parse_reference("127.0.0.1:5000/app");
        assert_eq!(
            (r.registry.as_str(), r.tag.as_str()),
            ("127.0.0.1:5000", "latest")
        );
        let r = parse_reference("app:1");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            ("docker.io", "library/app")
        );
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
