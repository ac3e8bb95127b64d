//! `reggie-build image`: build the image through the Docker daemon from the
//! minimal context (or the whole one), then optionally push it. Compiled
//! into the `reggie-build-image` binary only; `reggie-build image` hands
//! over to it.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};

use anyhow::{bail, Context as _};

use reggie_build::context::tarball::TarOptions;
use reggie_build::plan::{Plan, PlanOptions};
use reggie_build::publish::{self, Credentials, PushOptions};
use reggie_build::ship::{self, BuildSpec, Compression, Event};

use crate::cli::image_args::{CompressArg, ImageArgs};
use crate::cli::plan_args::parse_build_args;
use crate::live::{terminal_width, LiveView};

pub fn run(args: ImageArgs) -> anyhow::Result<i32> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let code = runtime.block_on(run_async(args));
    // The upload thread of a cancelled build ends as soon as it sees the
    // body dropped; do not wait for anything else.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    code
}

/// The exit code after SIGINT, as shells report it.
const INTERRUPTED: i32 = 130;

/// Prints events as JSON (stdout), plain lines (stderr), or on a terminal
/// plain lines above a live region ([`LiveView`]).
struct Printer {
    json: bool,
    live: Option<std::sync::Mutex<LiveView>>,
}

impl Printer {
    fn print(&self, event: &Event) {
        if self.json {
            if let Ok(line) = serde_json::to_string(event) {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            }
            return;
        }
        let line = Self::line(event);
        let Some(live) = &self.live else {
            if let Some(line) = line {
                eprintln!("{line}");
            }
            return;
        };
        let mut view = live.lock().unwrap_or_else(|e| e.into_inner());
        let mut permanent = Vec::new();
        let mut force = true;
        match event {
            Event::Context { content_bytes, .. } => {
                view.expect_upload(*content_bytes);
                permanent.extend(line);
            }
            Event::Upload { bytes, done } => {
                view.uploaded(*bytes, *done);
                permanent.extend(line);
            }
            Event::Step { .. }
            | Event::Vertex {
                status: "started", ..
            } => {
                if let Some(l) = &line {
                    view.step(l.clone());
                }
                permanent.extend(line);
            }
            Event::Log { line } => {
                view.log(line);
                force = false;
            }
            Event::Push { digest: None, .. } => {
                if let Some(l) = line {
                    view.step(l);
                }
            }
            _ => permanent.extend(line),
        }
        if let Some(text) = view.render(&permanent, force) {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(text.as_bytes());
            let _ = err.flush();
        }
    }

    /// Clears the live region, so that final messages follow the log.
    fn finish(&self) {
        if let Some(live) = &self.live {
            let text = live.lock().unwrap_or_else(|e| e.into_inner()).clear();
            eprint!("{text}");
        }
    }

    /// The event as one plain line, if it makes one.
    fn line(event: &Event) -> Option<String> {
        let line = match event {
            Event::Context {
                digest,
                entries,
                content_bytes,
                dockerfile,
                compression,
            } => format!(
                "context: {entries} entries, {} ({digest}), dockerfile {dockerfile}, compression {compression}",
                size(*content_bytes)
            ),
            Event::Upload { bytes, done } => {
                if *done {
                    format!("upload: {} sent", size(*bytes))
                } else {
                    return None;
                }
            }
            Event::Step {
                number,
                total,
                instruction,
                stage,
            } => match stage {
                Some(stage) => format!("step {number}/{total} ({stage}): {instruction}"),
                None => format!("step {number}/{total}: {instruction}"),
            },
            Event::Vertex {
                index,
                name,
                status,
                seconds,
            } => match (*status, seconds) {
                ("started", _) => format!("#{index} {name}"),
                ("cached", _) => format!("#{index} CACHED"),
                (status, Some(s)) => format!("#{index} {} {s:.1}s", status.to_uppercase()),
                (status, None) => format!("#{index} {}", status.to_uppercase()),
            },
            Event::Log { line } => format!("  | {line}"),
            Event::Warning { message } => format!("warning: {message}"),
            Event::ImageId { id } => format!("image: {id}"),
            Event::Tag { tag } => format!("tagged: {tag}"),
            Event::Skip { reason, image } => {
                format!("skipped build: image {image} already built from this context ({reason})")
            }
            Event::Push {
                tag,
                status,
                digest,
            } => match digest {
                Some(d) => format!("pushed: {tag}@{d}"),
                None => format!("push {tag}: {status}"),
            },
            Event::Result { .. } => return None,
        };
        Some(line)
    }
}

fn size(bytes: u64) -> String {
    reggie_build::analyze::humanize(bytes)
}

async fn run_async(args: ImageArgs) -> anyhow::Result<i32> {
    let printer = Printer {
        json: args.json,
        live: (!args.json && std::io::stderr().is_terminal())
            .then(|| std::sync::Mutex::new(LiveView::new(terminal_width()))),
    };
    let mut on_event = |e: Event| printer.print(&e);
    // Ctrl-C drops the build (or push) request: the daemon sees the
    // connection close, cancels the build, and kills and removes the
    // container of the running step. Nothing else is removed.
    let interrupt = tokio::signal::ctrl_c();
    let outcome = {
        let work = build_and_push(&args, &mut on_event);
        tokio::pin!(work);
        tokio::select! {
            r = &mut work => Some(r),
            _ = interrupt => None,
        }
    };
    printer.finish();
    let Some(result) = outcome else {
        if args.json {
            printer.print(&Event::Result {
                ok: false,
                image_id: None,
                error: Some("interrupted".into()),
            });
        }
        eprintln!("interrupted: build cancelled");
        return Ok(INTERRUPTED);
    };
    match result {
        Ok((image_id, pushed)) => {
            if args.json {
                printer.print(&Event::Result {
                    ok: true,
                    image_id: (!image_id.is_empty()).then_some(image_id),
                    error: None,
                });
            } else {
                // A build to --output makes no image (and stdout may be its tar).
                if !image_id.is_empty() {
                    println!("{image_id}");
                }
                for p in pushed {
                    if let Some(d) = p.digest {
                        println!("{}@{d}", p.tag);
                    }
                }
            }
            Ok(0)
        }
        Err(e) => {
            if args.json {
                printer.print(&Event::Result {
                    ok: false,
                    image_id: None,
                    error: Some(format!("{e:#}")),
                });
            }
            eprintln!("error: {e:#}");
            Ok(1)
        }
    }
}

fn parse_labels(raw: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for l in raw {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        if k.is_empty() {
            bail!("--label {l:?}: the key is empty");
        }
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

async fn build_and_push(
    args: &ImageArgs,
    on_event: &mut (dyn FnMut(Event) + Send),
) -> anyhow::Result<(String, Vec<publish::Pushed>)> {
    if args.push && args.tags.is_empty() {
        bail!("--push needs at least one --tag");
    }
    if args.password_stdin && args.username.is_none() {
        bail!("--password-stdin needs --username");
    }
    let credentials = match (&args.username, args.password_stdin) {
        (Some(user), true) => {
            let mut password = String::new();
            std::io::stdin()
                .read_to_string(&mut password)
                .context("reading the password from stdin")?;
            let password = password.trim_end_matches(['\n', '\r']).to_string();
            if password.is_empty() {
                bail!("--password-stdin: stdin was empty");
            }
            Some(Credentials {
                username: user.clone(),
                secret: password,
                source: "--password-stdin".into(),
            })
        }
        (Some(_), false) => bail!("--username needs --password-stdin"),
        _ => None,
    };

    let build_args = parse_build_args(&args.build_args)?;
    let (outputs, cache_from, cache_to) = args.outputs()?;
    let secrets = ship::secrets::parse_secrets(&args.secrets)?;
    let ssh = ship::secrets::parse_ssh(&args.ssh)?;
    if matches!(args.context.builder, crate::cli::BuilderArg::Classic)
        && (!secrets.0.is_empty() || !ssh.is_empty())
    {
        bail!("--secret and --ssh need BuildKit: drop --builder classic");
    }
    let remote = remote_builder(args)?;
    let ctx = args.context.spec().resolve()?;
    let plan = Plan::new(
        &ctx,
        &PlanOptions {
            target: args.target.clone(),
            build_args: build_args.clone(),
            platform: args.platform.clone(),
            ..PlanOptions::default()
        },
    );
    // `--full` builds whatever the Dockerfile says, as docker does: a
    // Dockerfile the planner cannot read only costs the base images'
    // credentials there.
    let (uploaded, bases) = match (args.full, plan) {
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
        cache_from
            .iter()
            .filter_map(|c| c.attr("ref").map(str::to_string)),
    );
    if remote.is_some() && args.push {
        // A remote builder pushes itself, with the session's credentials.
        base_images.extend(args.tags.iter().cloned());
    }
    let (mut pull_credentials, problems) = publish::pull_credentials(&base_images).await;
    for message in problems {
        on_event(Event::Warning { message });
    }
    if let (Some(_), Some(c)) = (&remote, &credentials) {
        for tag in &args.tags {
            pull_credentials.insert(publish::parse_reference(tag).registry, c.clone());
        }
    }

    let tar = TarOptions {
        clamp_mtime: reggie_build::context::tarball::source_date_epoch()?,
        ..TarOptions::default()
    };
    let mut spec = BuildSpec {
        context: uploaded,
        tags: args.tags.clone(),
        build_args,
        target: args.target.clone(),
        platform: args.platform.clone(),
        labels: parse_labels(&args.labels)?,
        no_cache: args.no_cache,
        pull: args.pull,
        tar,
        network: args.network.clone(),
        pull_credentials,
        secrets,
        ssh,
        idle_timeout: std::time::Duration::from_secs(args.idle_timeout),
        outputs,
        cache_from,
        cache_to,
        compression: Compression::None,
    };
    if let Some(remote) = &remote {
        let done = ship::control::build(remote, &spec, args.push, on_event).await?;
        let pushed = match done.pushed {
            true => args
                .tags
                .iter()
                .map(|tag| publish::Pushed {
                    tag: tag.clone(),
                    digest: done.digest.clone(),
                })
                .collect(),
            false => Vec::new(),
        };
        return Ok((done.built.image_id, pushed));
    }
    let daemon = ship::connect().await?;
    spec.compression = match args.compress {
        CompressArg::None => Compression::None,
        CompressArg::Gzip => Compression::Gzip,
        CompressArg::Auto if daemon.local => Compression::None,
        CompressArg::Auto => Compression::Gzip,
    };
    let endpoint = args.registry_endpoint.clone().or_else(|| {
        std::env::var("REGGIE_REGISTRY_ENDPOINT")
            .ok()
            .filter(|s| !s.is_empty())
    });
    let options = PushOptions {
        registry_endpoint: endpoint,
        create_repo: args.create_repo,
        credentials,
    };
    let prepared = ship::prepare(&daemon, &spec).await?;
    if args.skip_if_exists {
        if let Some(done) = skip_existing(args, &daemon, &prepared, &options, on_event).await? {
            return Ok(done);
        }
    }
    let built = ship::build_prepared(&daemon, &spec, prepared, on_event).await?;
    let mut pushed = Vec::new();
    if args.push {
        pushed = publish::push(&daemon, &args.tags, &options, on_event).await?;
    }
    Ok((built.image_id, pushed))
}

/// `--buildkit-addr` (or BUILDKIT_HOST): the builder to solve on instead
/// of the daemon, and what it cannot be combined with.
fn remote_builder(args: &ImageArgs) -> anyhow::Result<Option<ship::control::Remote>> {
    let Some(addr) = args.buildkit_addr.as_deref().filter(|a| !a.is_empty()) else {
        return Ok(None);
    };
    let refuse = |what: &str| -> anyhow::Result<()> {
        bail!("{what} is not available with --buildkit-addr {addr} (BUILDKIT_HOST): it needs the Docker daemon")
    };
    if matches!(args.context.builder, crate::cli::BuilderArg::Classic) {
        refuse("--builder classic")?;
    }
    if args.skip_if_exists {
        refuse("--skip-if-exists")?;
    }
    if args.registry_endpoint.is_some() || args.create_repo {
        refuse("--registry-endpoint/--create-repo")?;
    }
    let tls = ship::grpc_io::TlsOptions {
        ca: args.buildkit_ca.clone(),
        cert: args.buildkit_cert.clone(),
        key: args.buildkit_key.clone(),
        server_name: args.buildkit_server_name.clone(),
    };
    Ok(Some(ship::control::Remote::new(addr, tls)?))
}

/// `--skip-if-exists`: an image with the build key in the daemon, else
/// (with --push) under the first tag in the registry. `None`: build.
async fn skip_existing(
    args: &ImageArgs,
    daemon: &ship::Daemon,
    prepared: &ship::Prepared,
    options: &PushOptions,
    on_event: &mut (dyn FnMut(Event) + Send),
) -> anyhow::Result<Option<(String, Vec<publish::Pushed>)>> {
    let key = &prepared.build_key;
    match ship::skip::find_local(daemon, key).await {
        Ok(Some(id)) => {
            for tag in &args.tags {
                ship::skip::tag(daemon, &id, tag).await?;
            }
            on_event(Event::Skip {
                reason: "an image with this build key is in the daemon".into(),
                image: id.clone(),
            });
            for tag in &args.tags {
                on_event(Event::Tag { tag: tag.clone() });
            }
            let mut pushed = Vec::new();
            if args.push {
                pushed = publish::push(daemon, &args.tags, options, on_event).await?;
            }
            return Ok(Some((id, pushed)));
        }
        Ok(None) => tracing::info!("--skip-if-exists: no image with build key {key} in the daemon"),
        Err(e) => {
            tracing::info!("--skip-if-exists: cannot search the daemon's images ({e}); building")
        }
    }
    if !args.push {
        return Ok(None);
    }
    let reused = publish::reuse::from_registry(
        daemon,
        &args.tags,
        options,
        key,
        &prepared.platform,
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
    Ok(Some((reused.image_id, pushed)))
}
