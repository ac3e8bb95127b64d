//! BuildKit through the Docker daemon, as `DOCKER_BUILDKIT=1 docker build`
//! does: `POST /session` (upgraded to h2c, the daemon calling back into
//! the services `session` serves) and `POST /build` with
//! `remote=client-session` go out together; BuildKit pulls the context
//! and the Dockerfile's directory over file sync (only what it asks for,
//! and only files changed since its last transfer under the same shared
//! key), and its progress comes back in the build's response.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::daemon::{self, Daemon};
use super::error::{with_hint, ShipError};
use super::event::Event;
use super::filesend::{self, ExportState};
use super::filesync::Counters;
use super::prepare::{self, Prepared};
use super::spec::{BuildSpec, Built};
use super::stream::StreamState;
use super::{outputs, session};

/// Builds with BuildKit through a session on the daemon.
pub(crate) async fn build(
    daemon: &Daemon,
    spec: &BuildSpec,
    prepared: Prepared,
    on_event: &mut (dyn FnMut(Event) + Send),
) -> Result<Built, ShipError> {
    let Prepared { keyed, daemon_plan } = prepared;
    let dockerfile_name = prepare::session_dockerfile_name(&spec.context);
    on_event(keyed.context_event(dockerfile_name.clone(), "none"));
    if let Some(warning) = prepare::platform_warning(spec, daemon) {
        on_event(warning);
    }
    if daemon_plan.export.is_some() && !spec.tags.is_empty() {
        // As docker: the tags of a build that exports files go nowhere.
        on_event(Event::Warning {
            message: format!(
                "--tag {} is not applied: this build writes its result to --output, not to an image",
                spec.tags.join(", --tag ")
            ),
        });
    }
    if let Some(export) = &daemon_plan.export {
        filesend::check_destination(export, spec.context.root())
            .map_err(|e| ShipError::Export(e.to_string()))?;
    }
    let export_state = Arc::new(ExportState::default());
    let (info, services) = prepare::session_parts(
        spec,
        session::session_credentials(&spec.pull_credentials),
        daemon_plan.export.clone(),
        export_state.clone(),
        keyed.snapshot,
    );
    let counters = services.counters.clone();
    let query = build_query(spec, &daemon_plan, &dockerfile_name, &info.id, keyed.labels)?;
    let (_served, body) = open(daemon, spec, &info, services, &query).await?;
    let (state, failure) = follow(daemon, spec, body, &counters, &export_state, on_event).await;
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
        let exporting = daemon_plan.export.is_some();
        return Err(filesend::export_failure_first(&export_state, exporting, f).await);
    }
    let image_id = if daemon_plan.export.is_some() {
        filesend::wait_for_export(&export_state, spec.idle_timeout, "the daemon").await?;
        String::new()
    } else {
        let image_id = state.image_id().ok_or(ShipError::NoImage)?.to_string();
        super::skip::tag_built(daemon, &spec.tags, &image_id, on_event).await?;
        image_id
    };
    Ok(Built {
        image_id,
        context_digest: keyed.survey.digest,
        uploaded_bytes: sent,
        steps: state.steps(),
    })
}

/// The `/build` query of a session build: the docker CLI's, with the
/// session named and the outputs as the daemon's BuildKit takes them.
fn build_query(
    spec: &BuildSpec,
    plan: &outputs::DaemonPlan,
    dockerfile_name: &str,
    session_id: &str,
    labels: BTreeMap<String, String>,
) -> Result<String, ShipError> {
    let mut build_args = spec.build_args.clone();
    if plan.inline_cache {
        build_args.insert("BUILDKIT_INLINE_CACHE".into(), "1".into());
    }
    let options = bollard::query_parameters::BuildImageOptions {
        dockerfile: dockerfile_name.to_string(),
        t: if plan.makes_image() {
            spec.tags.first().cloned()
        } else {
            None
        },
        cachefrom: (!plan.cache_from.is_empty()).then(|| plan.cache_from.clone()),
        remote: Some("client-session".into()),
        session: Some(session_id.to_string()),
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
    Ok(query)
}

/// Opens the session and sends the build request together, as the docker
/// CLI does (BuildKit waits for the session the build names); either
/// failing ends both. The session task stops when the guard drops.
async fn open(
    daemon: &Daemon,
    spec: &BuildSpec,
    info: &session::SessionInfo,
    services: session::Services,
    query: &str,
) -> Result<(session::AbortOnDrop, session::BuildBody), ShipError> {
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
    let session = async {
        tokio::time::timeout(
            spec.idle_timeout,
            session::start(&daemon.endpoint, &api, info, services),
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
            session::build_request(&daemon.endpoint, &api, query),
        )
        .await
        .map_err(|_| stalled("the daemon did not answer the build request (POST /build)"))?
        .map_err(session_err)
    };
    tokio::try_join!(session, build)
}

/// Follows the build's response: its progress as events, the bytes the
/// file sync sent every half second, and silence (no progress, no file
/// requests, no RUN step running) warned about, then given up on after
/// the idle timeout. Returns what the stream said and why the build
/// failed, if it did.
async fn follow(
    daemon: &Daemon,
    spec: &BuildSpec,
    mut body: session::BuildBody,
    counters: &Counters,
    export_state: &ExportState,
    on_event: &mut (dyn FnMut(Event) + Send),
) -> (StreamState, Option<ShipError>) {
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
                if sync != last_sync || state.run_step_running() {
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
    (state, failure)
}
