//! `--skip-if-exists` on the registry's side: when the first tag already
//! names an image built from the same inputs (its build-key label), pull it
//! instead of building, and tag it.
//!
//! Every failure here is an answer of "build it": callers log the reason
//! and build.

use futures_util::StreamExt;

use super::registry::Registry;
use super::{credentials_for, PushOptions, Pushed};
use crate::reference::{split_tag, Reference};
use crate::ship::{daemon, skip, Daemon, Event, BUILD_KEY_LABEL};

/// An image reused from the registry.
#[derive(Debug, Clone)]
pub struct Reused {
    pub image_id: String,
    /// Tags the registry already has, with their digests.
    pub present: Vec<Pushed>,
    /// Tags still to push.
    pub missing: Vec<String>,
}

/// Looks the first tag up in its registry; when its image carries
/// `build_key`, pulls it, tags it with every tag and reports which tags the
/// registry still lacks. `Ok(None)`: not there, or built from other inputs.
pub async fn from_registry(
    daemon: &Daemon,
    tags: &[String],
    options: &PushOptions,
    build_key: &str,
    platform: &str,
    on_event: &mut (dyn FnMut(Event) + Send),
) -> Result<Option<Reused>, String> {
    let Some(first) = tags.first() else {
        return Ok(None);
    };
    let reference = Reference::parse(first).map_err(|e| e.to_string())?;
    let (pull_name, server) = options.location(first, &reference);
    let creds = credentials_for(&reference, options)
        .await
        .map_err(|e| e.to_string())?;
    let mut registry = Registry::new(&server, creds.clone())?;
    let Some(remote) = registry
        .image(&reference.repository, reference.tag_or_latest(), platform)
        .await?
    else {
        tracing::info!("--skip-if-exists: {first} is not in the registry {server}; building");
        return Ok(None);
    };
    match remote.labels.get(BUILD_KEY_LABEL) {
        Some(k) if k == build_key => {}
        Some(_) => {
            tracing::info!(
                "--skip-if-exists: {first} in {server} was built from other inputs; building"
            );
            return Ok(None);
        }
        None => {
            tracing::info!(
                "--skip-if-exists: {first} in {server} has no {BUILD_KEY_LABEL} label; building"
            );
            return Ok(None);
        }
    }

    // Pull through the daemon, under the name the registry knows it by.
    let (repo, tag) = split_tag(&pull_name);
    let mut stream = daemon.long.create_image(
        Some(bollard::query_parameters::CreateImageOptions {
            from_image: Some(repo.to_string()),
            tag: Some(tag.to_string()),
            ..Default::default()
        }),
        None,
        creds.as_ref().map(|c| c.docker(&server)),
    );
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(status) = info.status {
                    if info.progress_detail.is_none_or(|p| p.total.is_none()) {
                        tracing::debug!("pull {pull_name}: {status}");
                    }
                }
            }
            Err(e) => {
                let message = match e {
                    bollard::errors::Error::DockerStreamError { error } => error,
                    other => daemon::describe(&other),
                };
                return Err(format!("pulling {pull_name}: {}", message.trim()));
            }
        }
    }
    drop(stream);
    let image_id = skip::image_id(daemon, &pull_name)
        .await
        .ok_or_else(|| format!("{pull_name} is not in the daemon after the pull"))?;
    if pull_name != *first {
        skip::tag(daemon, &image_id, first)
            .await
            .map_err(|e| e.to_string())?;
        let _ = daemon
            .quick
            .remove_image(
                &pull_name,
                Some(bollard::query_parameters::RemoveImageOptions {
                    noprune: true,
                    ..Default::default()
                }),
                None,
            )
            .await;
    }
    for t in &tags[1..] {
        skip::tag(daemon, &image_id, t)
            .await
            .map_err(|e| e.to_string())?;
    }
    on_event(Event::Skip {
        reason: format!("{first} in {server} was built from this context"),
        image: image_id.clone(),
    });
    for t in tags {
        on_event(Event::Tag { tag: t.clone() });
    }

    let mut present = vec![Pushed {
        tag: first.clone(),
        digest: remote.digest,
    }];
    let mut missing = Vec::new();
    for t in &tags[1..] {
        match tag_digest(t, options).await {
            Ok(Some(digest)) => present.push(Pushed {
                tag: t.clone(),
                digest: Some(digest),
            }),
            Ok(None) => missing.push(t.clone()),
            Err(e) => {
                tracing::info!("--skip-if-exists: cannot look {t} up ({e}); pushing it");
                missing.push(t.clone());
            }
        }
    }
    for p in &present {
        on_event(Event::Push {
            tag: p.tag.clone(),
            status: "already in the registry".into(),
            digest: None,
        });
    }
    Ok(Some(Reused {
        image_id,
        present,
        missing,
    }))
}

/// The digest of a tag in its registry, `None` when it is not there.
async fn tag_digest(tag: &str, options: &PushOptions) -> Result<Option<String>, String> {
    let reference = Reference::parse(tag).map_err(|e| e.to_string())?;
    let (_, server) = options.location(tag, &reference);
    let creds = credentials_for(&reference, options)
        .await
        .map_err(|e| e.to_string())?;
    let mut registry = Registry::new(&server, creds)?;
    Ok(registry
        .manifest(&reference.repository, reference.tag_or_latest())
        .await?
        .and_then(|(digest, _)| digest))
}
