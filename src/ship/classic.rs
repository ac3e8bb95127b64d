//! The classic builder through the daemon (`/build`, `version=1`): the
//! context (minimal or whole) streamed as the request body by `upload`,
//! the Dockerfile placed where the daemon finds it, and a daemon that
//! stops reading reported, then abandoned, after `--idle-timeout`.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures_util::{Stream, StreamExt};

use crate::context::Builder;
use crate::reference;

use super::daemon::{self, Daemon};
use super::error::{with_hint, ShipError};
use super::event::Event;
use super::prepare::{self, Keyed, Prepared};
use super::spec::{BuildSpec, Built};
use super::stream::StreamState;
use super::upload::{self, Compression};

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
                (reference::DOCKER_HUB, Builder::BuildKit) => reference::DOCKER_HUB_API,
                (reference::DOCKER_HUB, Builder::Classic) => reference::DOCKER_HUB_INDEX,
                (other, _) => other,
            };
            (key.to_string(), c.docker(key))
        })
        .collect();
    Some(map)
}

/// Uploads the context and runs the build.
pub(crate) async fn build(
    daemon: &Daemon,
    spec: &BuildSpec,
    prepared: Prepared,
    on_event: &mut (dyn FnMut(Event) + Send),
) -> Result<Built, ShipError> {
    let keyed = prepared.keyed;
    let placement = upload::place_dockerfile(
        &spec.context,
        &keyed.survey,
        &keyed.dockerfile,
        Builder::Classic,
    )
    .map_err(ShipError::Dockerfile)?;
    let compression = match spec.compression {
        Compression::None => "none",
        Compression::Gzip => "gzip",
    };
    on_event(keyed.context_event(placement.dockerfile_param.clone(), compression));
    if let Some(warning) = prepare::platform_warning(spec, daemon) {
        on_event(warning);
    }
    let Keyed { survey, labels, .. } = keyed;
    let options = request_options(spec, &placement.dockerfile_param, labels);
    let up = upload::start(
        spec.context.clone(),
        spec.tar.clone(),
        placement.extra,
        spec.compression,
    );
    let sent = up.sent.clone();
    let stream = daemon.long.build_image(
        options,
        registry_config(&spec.pull_credentials, spec.context.builder()),
        Some(bollard::body_try_stream(up.body)),
    );
    let (state, failure) = follow(daemon, spec, stream, &up.sent, &up.finished, on_event).await;
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
    let image_id = state.image_id().ok_or(ShipError::NoImage)?.to_string();
    super::skip::tag_built(daemon, &spec.tags, &image_id, on_event).await?;
    Ok(Built {
        image_id,
        context_digest: survey.digest,
        uploaded_bytes: sent.load(Ordering::Relaxed),
        steps: state.steps(),
    })
}

/// The `/build` query of a classic build.
fn request_options(
    spec: &BuildSpec,
    dockerfile_param: &str,
    labels: BTreeMap<String, String>,
) -> bollard::query_parameters::BuildImageOptions {
    bollard::query_parameters::BuildImageOptions {
        dockerfile: dockerfile_param.to_string(),
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
    }
}

/// Follows the build's response while the upload runs: the bytes sent
/// every half second, the stream's messages as events, and a daemon that
/// reads nothing warned about, then given up on after the idle timeout.
/// Returns what the stream said and why the build failed, if it did.
async fn follow(
    daemon: &Daemon,
    spec: &BuildSpec,
    mut stream: impl Stream<Item = Result<bollard::models::BuildInfo, bollard::errors::Error>> + Unpin,
    sent: &AtomicU64,
    body_done: &AtomicBool,
    on_event: &mut (dyn FnMut(Event) + Send),
) -> (StreamState, Option<ShipError>) {
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
    (state, failure)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
