//! Building on a BuildKit engine through its Control API
//! (`moby.buildkit.v1.Control`), as buildctl and buildx's remote driver
//! do: `--buildkit-addr tcp://HOST:PORT|unix://PATH` (or `BUILDKIT_HOST`),
//! optionally with mutual TLS ([`super::grpc_io`]).
//!
//! 1. `ListWorkers` tells the engine apart: the Docker daemon's embedded
//!    BuildKit labels its workers `org.mobyproject.buildkit.worker.moby.*`
//!    (or executor `moby`), a standalone buildkitd does not. That decides
//!    the exporter: `moby` (the image lands in that daemon, named by the
//!    tags) or `image` (`name=TAGS,push=true` pushes from the engine).
//! 2. `Control.Session` carries the same session the daemon path opens
//!    with `POST /session` ([`super::session::serve`]): file sync of the
//!    `context` and `dockerfile` directories under the docker CLI's shared
//!    key, registry credentials (pulls and the push), secrets, ssh.
//! 3. `Solve` with frontend `dockerfile.v0` and the attributes the docker
//!    CLI and buildx send (`filename`, `target`, `build-arg:K`,
//!    `label:K`, `platform`, `no-cache`, `image-resolve-mode`,
//!    `force-network-mode`), while `Status` streams progress into
//!    [`super::buildkit::Progress`]. The exporter's response names the
//!    image: `containerimage.digest` (the manifest, what a push wrote) and
//!    `containerimage.config.digest` (the image id).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::time::Duration;

use bollard_buildkit_proto::moby::buildkit::v1::control_client::ControlClient;
use bollard_buildkit_proto::moby::buildkit::v1::types::WorkerRecord;
use bollard_buildkit_proto::moby::buildkit::v1::{
    CacheOptions, CacheOptionsEntry, ListWorkersRequest, SolveRequest, SolveResponse, StatusRequest,
};

use super::error::{with_hint, ControlError, ShipError};
use super::event::Event;
use super::filesend::{self, ExportState};
use super::filesync::Counters;
use super::grpc_io::{self, Addr, TlsOptions};
use super::prepare::{self, session_dockerfile_name, session_parts};
use super::spec::{BuildSpec, Built};
use super::{buildkit, daemon, outputs, session, upload};

/// A BuildKit engine to build on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    /// Where the engine listens (`tcp://`, `unix://`...).
    pub addr: Addr,
    /// TLS to it, for `tcp://`.
    pub tls: TlsOptions,
}

/// What kind of engine answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// A Docker daemon's embedded BuildKit.
    Daemon,
    /// buildkitd.
    Standalone,
}

impl Engine {
    fn describe(self) -> &'static str {
        match self {
            Engine::Daemon => "a Docker daemon's embedded BuildKit",
            Engine::Standalone => "a standalone buildkitd",
        }
    }
}

impl Remote {
    /// From `--buildkit-addr` (or BUILDKIT_HOST) and the TLS options.
    pub fn new(addr: &str, tls: TlsOptions) -> Result<Remote, ControlError> {
        let parsed = Addr::parse(addr).map_err(|reason| ControlError::Address {
            addr: addr.to_string(),
            reason,
        })?;
        Ok(Remote { addr: parsed, tls })
    }

    fn tls_error(&self, reason: String) -> ControlError {
        let ca = match &self.tls.ca {
            Some(ca) => format!("that {} is the CA that signed the builder's certificate and that the certificate names the host you connect to (else pass --buildkit-server-name)", ca.display()),
            None => "--buildkit-ca (the CA that signed the builder's certificate)".into(),
        };
        let client = match (&self.tls.cert, &self.tls.key) {
            (Some(cert), Some(key)) => format!(
                "that {} and {} are a client certificate and key signed by a CA the builder trusts (buildkitd --tlscacert)",
                cert.display(),
                key.display()
            ),
            _ => "the client certificate: a builder that requires one (buildkitd --tlscacert) refuses a connection without it; pass --buildkit-cert and --buildkit-key".into(),
        };
        ControlError::Tls {
            addr: self.addr.to_string(),
            reason,
            check: format!("Check {ca}, and {client}"),
        }
    }

    /// A failed connection or call, with what to check: TLS when TLS is on
    /// and the failure looks like one, else reachability.
    fn connection_error(&self, reason: String) -> ControlError {
        // A server that refuses the client certificate closes the
        // connection after a TLS 1.3 handshake the client saw succeed.
        let closed = ["reset", "closed", "broken pipe", "eof"]
            .iter()
            .any(|w| reason.to_ascii_lowercase().contains(w));
        if self.tls.enabled() && (looks_like_tls(&reason) || closed) {
            return self.tls_error(reason);
        }
        let addr = self.addr.to_string();
        let mut hint = format!("Check that buildkitd listens there (`buildkitd --addr {addr}`), that this machine can reach it (firewall, port-forward), or fix --buildkit-addr / BUILDKIT_HOST");
        if !self.tls.enabled() && closed {
            hint.push_str("; a builder that serves TLS closes plain connections: pass --buildkit-ca (and --buildkit-cert/--buildkit-key for mutual TLS)");
        }
        ControlError::Unreachable { addr, reason, hint }
    }

    fn call_error(&self, what: &'static str, status: tonic::Status) -> ControlError {
        let message = status_message(&status);
        match status.code() {
            // Errors of the connection carry their cause; the engine's
            // own answers (a failed pull naming a "connection") do not.
            tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
                if std::error::Error::source(&status).is_some() =>
            {
                self.connection_error(message)
            }
            _ => ControlError::Call {
                addr: self.addr.to_string(),
                what,
                message,
            },
        }
    }
}

/// A status's message and its causes.
fn status_message(status: &tonic::Status) -> String {
    crate::error_chain::join_after(
        status.message().to_string(),
        std::error::Error::source(status),
    )
}

fn looks_like_tls(reason: &str) -> bool {
    let r = reason.to_ascii_lowercase();
    ["certificate", "tls", "handshake", "alert", "unknownissuer"]
        .iter()
        .any(|w| r.contains(w))
}

/// The engine behind the workers `ListWorkers` returned. buildkitd labels
/// every worker with its executor (`oci`, `containerd`); the Docker
/// daemon's workers carry `moby` labels (newer daemons) or none at all
/// (20.10).
pub fn engine_of(workers: &[WorkerRecord]) -> Engine {
    const EXECUTOR: &str = "org.mobyproject.buildkit.worker.executor";
    let moby = workers.iter().any(|w| {
        w.labels
            .keys()
            .any(|k| k.starts_with("org.mobyproject.buildkit.worker.moby."))
            || w.labels.get(EXECUTOR).is_some_and(|v| v == "moby")
    });
    let standalone = workers.iter().any(|w| w.labels.contains_key(EXECUTOR));
    if moby || !standalone && !workers.is_empty() {
        Engine::Daemon
    } else {
        Engine::Standalone
    }
}

/// The exporter of a build: its type and attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExporterChoice {
    pub kind: String,
    pub attrs: BTreeMap<String, String>,
}

/// Which exporter builds `tags` (and pushes them, with `push`) on `engine`.
pub fn choose_exporter(
    engine: Engine,
    addr: &Addr,
    tags: &[String],
    push: bool,
) -> Result<ExporterChoice, ControlError> {
    let mut attrs = BTreeMap::new();
    if !tags.is_empty() {
        attrs.insert("name".to_string(), tags.join(","));
    }
    match engine {
        Engine::Daemon if push => Err(ControlError::Unsupported {
            addr: addr.to_string(),
            engine: engine.describe(),
            what: "--push cannot push from it".into(),
            supported: "only its `moby` exporter, which stores the image in that daemon",
            instead: "build without --push and push from that daemon (`docker push`, or `reggie-build image --push` without --buildkit-addr against it), or point --buildkit-addr at a standalone buildkitd",
        }),
        Engine::Daemon => Ok(ExporterChoice {
            kind: "moby".into(),
            attrs,
        }),
        Engine::Standalone => {
            if push && tags.is_empty() {
                return Err(ControlError::Unsupported {
                    addr: addr.to_string(),
                    engine: engine.describe(),
                    what: "--push needs a name to push to".into(),
                    supported: "the `image` exporter with name=REPOSITORY:TAG,push=true",
                    instead: "pass --tag",
                });
            }
            if push {
                attrs.insert("push".to_string(), "true".to_string());
            }
            Ok(ExporterChoice {
                kind: "image".into(),
                attrs,
            })
        }
    }
}

/// A cache import or export as the Control API takes it.
fn cache_entry(c: &outputs::CacheSpec) -> CacheOptionsEntry {
    CacheOptionsEntry {
        r#type: c.kind.clone(),
        attrs: c.attrs.clone().into_iter().collect(),
    }
}

/// A build on a remote engine.
#[derive(Debug, Clone)]
pub struct RemoteBuilt {
    pub built: Built,
    /// The manifest digest (`containerimage.digest`), when the exporter
    /// reported one.
    pub digest: Option<String>,
    /// Whether the engine pushed the tags.
    pub pushed: bool,
}

/// The frontend attributes of a Dockerfile build, as the docker CLI and
/// buildx send them.
pub fn frontend_attrs(
    spec: &BuildSpec,
    dockerfile_name: &str,
    labels: &BTreeMap<String, String>,
) -> HashMap<String, String> {
    let mut attrs = HashMap::new();
    attrs.insert("filename".to_string(), dockerfile_name.to_string());
    if let Some(target) = &spec.target {
        attrs.insert("target".into(), target.clone());
    }
    if let Some(platform) = &spec.platform {
        attrs.insert("platform".into(), platform.clone());
    }
    for (k, v) in &spec.build_args {
        attrs.insert(format!("build-arg:{k}"), v.clone());
    }
    for (k, v) in labels {
        attrs.insert(format!("label:{k}"), v.clone());
    }
    if spec.no_cache {
        attrs.insert("no-cache".into(), String::new());
    }
    if spec.pull {
        attrs.insert("image-resolve-mode".into(), "pull".into());
    }
    if let Some(network) = spec.network.as_deref().filter(|n| *n != "default") {
        attrs.insert("force-network-mode".into(), network.to_string());
    }
    attrs
}

/// Builds `spec` on `remote`: the engine pulls the context over the
/// session, and its exporter stores the image (in the daemon behind it) or
/// pushes it (`push`, a standalone buildkitd).
pub async fn build(
    remote: &Remote,
    spec: &BuildSpec,
    push: bool,
    on_event: &mut (dyn FnMut(Event) + Send),
) -> Result<RemoteBuilt, ShipError> {
    let (mut client, workers) = connect(remote, spec).await?;
    let engine = engine_of(&workers);
    tracing::info!(addr = %remote.addr, ?engine, workers = workers.len(), "BuildKit builder");
    tracing::debug!(workers = ?workers.iter().map(|w| (&w.id, &w.labels, &w.platforms)).collect::<Vec<_>>(), "workers");
    let outputs_plan = outputs::plan_remote(
        &outputs::Request {
            outputs: &spec.outputs,
            cache_from: &spec.cache_from,
            cache_to: &spec.cache_to,
            platforms: &[],
        },
        engine == Engine::Daemon,
        &format!("{} at {}", engine.describe(), remote.addr),
    )?;
    let exporter = exporter_for(remote, spec, engine, push, &outputs_plan, on_event)?;
    let exports_files = outputs_plan.export.is_some();

    // The context is surveyed once the builder answered: an unreachable
    // one fails before a walk of the whole context.
    let surveyed = prepare::survey(&spec.context, &spec.tar).await?;
    let dockerfile_name = session_dockerfile_name(&spec.context);
    let keyed = surveyed.key(spec, build_platform(spec, &workers));
    on_event(keyed.context_event(dockerfile_name.clone(), "none"));
    if let Some(warning) = platform_warning(remote, spec, &workers) {
        on_event(warning);
    }

    if let Some(export) = &outputs_plan.export {
        super::filesend::check_destination(export, spec.context.root())
            .map_err(|e| ShipError::Export(e.to_string()))?;
    }
    let export_state = std::sync::Arc::new(ExportState::default());
    let (info, services) = session_parts(
        spec,
        session::session_credentials(&spec.pull_credentials),
        outputs_plan.export.clone(),
        export_state.clone(),
        keyed.snapshot.clone(),
    );
    let counters = services.counters.clone();
    let headers = info.headers(exports_files);
    let _session = open_session(remote, &mut client, spec, &headers, services).await?;

    let build_ref = format!("reggie-build-{}", upload::random_hex(20));
    let request = SolveRequest {
        r#ref: build_ref.clone(),
        session: info.id.clone(),
        frontend: "dockerfile.v0".into(),
        frontend_attrs: frontend_attrs(spec, &dockerfile_name, &keyed.labels),
        // The fields every BuildKit reads (newer ones turn them into
        // `exporters`); an engine older than `exporters` ignores that.
        exporter_deprecated: exporter.kind.to_string(),
        exporter_attrs_deprecated: exporter.attrs.into_iter().collect(),
        cache: Some(CacheOptions {
            imports: outputs_plan.cache_imports.iter().map(cache_entry).collect(),
            exports: outputs_plan.cache_exports.iter().map(cache_entry).collect(),
            ..Default::default()
        }),
        entitlements: entitlements(spec),
        ..Default::default()
    };
    let (progress, solved) = solve(&client, spec, request, &counters, on_event).await?;
    let sent = counters.data_bytes.load(Ordering::Relaxed);
    on_event(Event::Upload {
        bytes: sent,
        done: true,
    });
    let response = match answer(remote, &progress, solved) {
        Ok(r) => r,
        Err(failure) => {
            return Err(super::filesend::export_failure_first(
                &export_state,
                exports_files,
                failure,
            )
            .await)
        }
    };
    let built = Built {
        image_id: String::new(),
        context_digest: keyed.survey.digest,
        uploaded_bytes: sent,
        steps: progress.steps,
    };
    if exports_files {
        // BuildKit answered; the last writes may still be landing.
        filesend::wait_for_export(
            &export_state,
            spec.idle_timeout,
            &format!("the builder at {}", remote.addr),
        )
        .await?;
        return Ok(RemoteBuilt {
            built,
            digest: None,
            pushed: false,
        });
    }
    exported(
        built,
        &response.exporter_response,
        &spec.tags,
        push,
        on_event,
    )
}

/// Connects to the engine and lists its workers (which tell what engine
/// it is, and its platforms); an engine that does not answer in time is
/// unreachable.
async fn connect(
    remote: &Remote,
    spec: &BuildSpec,
) -> Result<(ControlClient<tonic::transport::Channel>, Vec<WorkerRecord>), ShipError> {
    let channel = grpc_io::channel(&remote.addr, &remote.tls)
        .await
        .map_err(|e| remote.connection_error(daemon::describe(&e)))?;
    let mut client = ControlClient::new(channel)
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20);
    let wait = spec.idle_timeout.min(grpc_io::CONNECT_TIMEOUT);
    let workers = tokio::time::timeout(wait, client.list_workers(ListWorkersRequest::default()))
        .await
        .map_err(|_| {
            remote.connection_error(format!(
                "no answer to ListWorkers within {} s",
                wait.as_secs()
            ))
        })?
        .map_err(|s| remote.call_error("listing the workers (ListWorkers)", s))?
        .into_inner()
        .record;
    Ok((client, workers))
}

/// The exporter: the one `--output` asks for, else the engine's image
/// exporter ([`choose_exporter`]); warns about tags that go nowhere and
/// an image left in a standalone engine's cache.
fn exporter_for(
    remote: &Remote,
    spec: &BuildSpec,
    engine: Engine,
    push: bool,
    plan: &outputs::RemotePlan,
    on_event: &mut (dyn FnMut(Event) + Send),
) -> Result<ExporterChoice, ControlError> {
    let exporter = match &plan.exporter {
        Some((kind, attrs)) => {
            if !spec.tags.is_empty() {
                // As docker: the tags of a build that exports files go nowhere.
                on_event(Event::Warning {
                    message: format!(
                        "--tag {} is not applied: this build writes its result to --output, not to an image",
                        spec.tags.join(", --tag ")
                    ),
                });
            }
            ExporterChoice {
                kind: kind.clone(),
                attrs: attrs.clone(),
            }
        }
        None => choose_exporter(engine, &remote.addr, &spec.tags, push)?,
    };
    if engine == Engine::Standalone && !push && plan.export.is_none() {
        on_event(Event::Warning {
            message: format!(
                "the image stays in the build cache of the builder at {}: pass --push to push it (a standalone buildkitd has no image store to load it into)",
                remote.addr
            ),
        });
    }
    Ok(exporter)
}

/// The platform of the build key: `--platform`, or the engine's first.
fn build_platform(spec: &BuildSpec, workers: &[WorkerRecord]) -> String {
    spec.platform.clone().unwrap_or_else(|| {
        workers
            .first()
            .and_then(|w| w.platforms.first())
            .map(|p| format!("{}/{}", p.os, p.architecture))
            .unwrap_or_else(|| "unknown".into())
    })
}

/// A warning when `--platform` is not among the workers' platforms.
fn platform_warning(remote: &Remote, spec: &BuildSpec, workers: &[WorkerRecord]) -> Option<Event> {
    let want = spec.platform.as_ref()?;
    let offered: Vec<String> = workers
        .iter()
        .flat_map(|w| &w.platforms)
        .map(|p| format!("{}/{}", p.os, p.architecture))
        .collect();
    let arch = outputs::platform_arch(want).unwrap_or_default();
    (!offered.is_empty() && !offered.iter().any(|p| p.ends_with(&format!("/{arch}")))).then(|| {
        Event::Warning {
            message: format!(
                "the builder at {} does not list {want} among its platforms ({}): RUN steps need binfmt/QEMU emulation there, or fail with 'exec format error'",
                remote.addr,
                offered.join(", ")
            ),
        }
    })
}

/// Opens `Control.Session` and serves the session's services over it;
/// the guards stop both tasks when dropped, whatever way the build ends.
async fn open_session(
    remote: &Remote,
    client: &mut ControlClient<tonic::transport::Channel>,
    spec: &BuildSpec,
    headers: &[(&'static str, String)],
    services: session::Services,
) -> Result<[session::AbortOnDrop; 2], ShipError> {
    let (io, pump) =
        tokio::time::timeout(spec.idle_timeout, grpc_io::session_stream(client, headers))
            .await
            .map_err(|_| ShipError::SessionStalled {
                what: "the builder did not answer the session request (Control.Session)",
                secs: spec.idle_timeout.as_secs(),
                stats: 0,
                files: 0,
                bytes: 0,
            })?
            .map_err(|s| remote.call_error("opening the session (Control.Session)", s))?;
    let pump = session::AbortOnDrop(pump);
    // Dropped in order: the services first, then the stream's pump.
    Ok([session::AbortOnDrop(session::serve(io, services)), pump])
}

/// `Solve`'s answer, or the build's failure: the failed step and its last
/// lines when the progress named one, else the call's error.
fn answer(
    remote: &Remote,
    progress: &buildkit::Progress,
    solved: Solved,
) -> Result<SolveResponse, ShipError> {
    match solved {
        Some(Ok(r)) => Ok(r.into_inner()),
        Some(Err(status)) => {
            let (step, log_tail) = progress.failure();
            Err(match step {
                Some(step) => ShipError::Step {
                    step: Some(step),
                    message: with_hint(status.message().trim()),
                    log_tail,
                },
                None => remote.call_error("the build (Solve)", status).into(),
            })
        }
        None => Err(ShipError::Api {
            what: format!("the build on {}", remote.addr),
            message: "ended without an answer".into(),
        }),
    }
}

/// What the build may do beyond the default (`--network host`).
fn entitlements(spec: &BuildSpec) -> Vec<String> {
    let mut entitlements = Vec::new();
    if spec.network.as_deref() == Some("host") {
        entitlements.push("network.host".to_string());
    }
    entitlements
}

/// The answer of `Solve`, or `None` when the build ended without one.
type Solved = Option<Result<tonic::Response<SolveResponse>, tonic::Status>>;

/// Runs `Solve` while following `Status`: progress as events, the bytes
/// the file sync sent every half second, and silence (no progress, no
/// file requests, no RUN step running) failed after the idle timeout.
/// The progress that follows the answer (a failed step's log) is read
/// until the stream ends, or for five seconds at most.
async fn solve(
    client: &ControlClient<tonic::transport::Channel>,
    spec: &BuildSpec,
    request: SolveRequest,
    counters: &Counters,
    on_event: &mut (dyn FnMut(Event) + Send),
) -> Result<(buildkit::Progress, Solved), ShipError> {
    let mut status_client = client.clone();
    let status_ref = request.r#ref.clone();
    let mut status = Box::pin(async move {
        status_client
            .status(StatusRequest { r#ref: status_ref })
            .await
            .map(|r| r.into_inner())
    });
    let mut solve_client = client.clone();
    let solve = solve_client.solve(request);
    tokio::pin!(solve);

    let mut progress = buildkit::Progress::default();
    let mut stream: Option<tonic::Streaming<_>> = None;
    let mut status_done = false;
    let mut solved = None;
    let mut ticker = tokio::time::interval(Duration::from_millis(500));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last_reported = 0u64;
    let mut drain_ticks = 0u32;
    let sync_progress = || {
        (
            counters.stats.load(Ordering::Relaxed),
            counters.files.load(Ordering::Relaxed),
            counters.data_bytes.load(Ordering::Relaxed),
        )
    };
    let mut last_sync = sync_progress();
    let mut last_activity = tokio::time::Instant::now();
    loop {
        tokio::select! {
            opened = &mut status, if stream.is_none() && !status_done => match opened {
                Ok(s) => stream = Some(s),
                Err(e) => {
                    tracing::debug!(error = %e, "no build progress (Status)");
                    status_done = true;
                }
            },
            item = async {
                match stream.as_mut() {
                    Some(s) => s.message().await,
                    None => std::future::pending().await,
                }
            }, if stream.is_some() && !status_done => match item {
                Ok(Some(update)) => {
                    last_activity = tokio::time::Instant::now();
                    progress.handle(&update, on_event);
                }
                Ok(None) | Err(_) => {
                    status_done = true;
                    if solved.is_some() {
                        break;
                    }
                }
            },
            result = &mut solve, if solved.is_none() => {
                let failed = result.is_err();
                solved = Some(result);
                // The rest of the progress (the failed step's log) follows
                // the answer; the stream ends with the build.
                if status_done || failed && stream.is_none() {
                    break;
                }
            },
            _ = ticker.tick() => {
                // A stream that outlives its build must not hang it.
                if solved.is_some() {
                    drain_ticks += 1;
                    if drain_ticks > 10 {
                        break;
                    }
                }
                let bytes = counters.data_bytes.load(Ordering::Relaxed);
                if bytes != last_reported {
                    last_reported = bytes;
                    on_event(Event::Upload { bytes, done: false });
                }
                // As on the daemon path: silence is a stall unless the
                // file sync moves or a RUN step runs.
                let sync = sync_progress();
                if sync != last_sync || progress.run_step_running() {
                    last_sync = sync;
                    last_activity = tokio::time::Instant::now();
                } else if solved.is_none() && last_activity.elapsed() >= spec.idle_timeout {
                    let (stats, files, bytes) = sync;
                    return Err(ShipError::SessionStalled {
                        what: "the builder sent no build progress and asked for no files",
                        secs: last_activity.elapsed().as_secs(),
                        stats,
                        files,
                        bytes,
                    });
                }
            }
        }
    }
    Ok((progress, solved))
}

/// The image the exporter reports: `containerimage.config.digest` (the
/// image id) and `containerimage.digest` (the manifest, what a push
/// wrote), with the tags applied or pushed.
fn exported(
    mut built: Built,
    response: &HashMap<String, String>,
    tags: &[String],
    push: bool,
    on_event: &mut (dyn FnMut(Event) + Send),
) -> Result<RemoteBuilt, ShipError> {
    tracing::debug!(?response, "exporter response");
    let digest = response.get("containerimage.digest").cloned();
    built.image_id = response
        .get("containerimage.config.digest")
        .or(digest.as_ref())
        .cloned()
        .ok_or(ShipError::NoImage)?;
    on_event(Event::ImageId {
        id: built.image_id.clone(),
    });
    for tag in tags {
        if push {
            on_event(Event::Push {
                tag: tag.clone(),
                status: "pushed".into(),
                digest: digest.clone(),
            });
        } else {
            on_event(Event::Tag { tag: tag.clone() });
        }
    }
    Ok(RemoteBuilt {
        built,
        digest,
        pushed: push,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(labels: &[(&str, &str)]) -> WorkerRecord {
        WorkerRecord {
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn engines_told_apart_by_worker_labels() {
        assert_eq!(
            engine_of(&[worker(&[
                ("org.mobyproject.buildkit.worker.executor", "oci"),
                ("org.mobyproject.buildkit.worker.snapshotter", "overlayfs"),
            ])]),
            Engine::Standalone
        );
        assert_eq!(engine_of(&[]), Engine::Standalone);
        assert_eq!(engine_of(&[worker(&[])]), Engine::Daemon);
        assert_eq!(
            engine_of(&[worker(&[(
                "org.mobyproject.buildkit.worker.moby.host-gateway-ip",
                "172.17.0.1"
            )])]),
            Engine::Daemon
        );
        assert_eq!(
            engine_of(&[worker(&[(
                "org.mobyproject.buildkit.worker.executor",
                "moby"
            )])]),
            Engine::Daemon
        );
    }

    #[test]
    fn exporters_per_engine() {
        let addr = Addr::parse("tcp://b:1234").unwrap_or(Addr::Unix("/x".into()));
        let tags = vec!["r/a:1".to_string(), "r/a:2".to_string()];
        let moby = choose_exporter(Engine::Daemon, &addr, &tags, false).ok();
        assert_eq!(moby.as_ref().map(|e| e.kind.as_str()), Some("moby"));
        assert_eq!(
            moby.and_then(|e| e.attrs.get("name").cloned()).as_deref(),
            Some("r/a:1,r/a:2")
        );
        let err = choose_exporter(Engine::Daemon, &addr, &tags, true)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("tcp://b:1234") && err.contains("moby") && err.contains("standalone"),
            "{err}"
        );
        let image = choose_exporter(Engine::Standalone, &addr, &tags, true).ok();
        assert_eq!(image.as_ref().map(|e| e.kind.as_str()), Some("image"));
        assert_eq!(
            image.and_then(|e| e.attrs.get("push").cloned()).as_deref(),
            Some("true")
        );
        assert!(choose_exporter(Engine::Standalone, &addr, &[], true).is_err());
    }
}
