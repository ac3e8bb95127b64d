//! `reggie-build image`: build the image through the Docker daemon from the
//! minimal context (or the whole one), then optionally push it. Compiled
//! into the `reggie-build-image` binary only; `reggie-build image` hands
//! over to it.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};

use anyhow::{bail, Context as _};

use reggie_build::ops::{CompressionChoice, ImageOptions};
use reggie_build::publish::{self, Credentials};
use reggie_build::ship::{self, Event};

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
pub(crate) const INTERRUPTED: i32 = 130;

/// Prints events as JSON (stdout), plain lines (stderr), or on a terminal
/// plain lines above a live region ([`LiveView`]).
pub(crate) struct Printer {
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
    pub(crate) fn line(event: &Event) -> Option<String> {
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
            Event::Builder { addr, reason } => format!("builder: {addr} ({reason})"),
            Event::Result { .. } => return None,
        };
        Some(line)
    }
}

fn size(bytes: u64) -> String {
    reggie_build::analyze::humanize(bytes)
}

async fn run_async(args: ImageArgs) -> anyhow::Result<i32> {
    if args.all || args.affected {
        return crate::many::run(&args).await;
    }
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
                // An --output build makes no image: nothing to print.
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

/// The library's options from the arguments, and the BuildKit builders
/// of `--buildkit-addr` (none: the daemon); reads the password from stdin
/// last, after every other argument is known to be good. The `--ssh`
/// agents must outlive the build: the private ones started for key files
/// stop when they drop (also on error or Ctrl-C).
pub(crate) fn options(
    args: &ImageArgs,
) -> anyhow::Result<(ImageOptions, ship::SshAgents, Vec<ship::Remote>)> {
    let many = args.all || args.affected;
    if args.push && args.tags.is_empty() && !many {
        bail!("--push needs at least one --tag");
    }
    if args.password_stdin && args.username.is_none() {
        bail!("--password-stdin needs --username");
    }
    if args.username.is_some() && !args.password_stdin {
        bail!("--username needs --password-stdin");
    }
    let mut opts = ImageOptions::new(args.context.spec());
    opts.build_args = parse_build_args(&args.build_args)?;
    opts.secrets = ship::parse_secrets(&args.secrets)?;
    let ssh = ship::parse_ssh(&args.ssh)?;
    opts.ssh = ssh.sockets().clone();
    opts.full = args.full;
    opts.tags = args.tags.clone();
    opts.target = args.target.clone();
    opts.platform = args.platform.clone();
    opts.labels = parse_labels(&args.labels)?;
    opts.no_cache = args.no_cache;
    opts.pull = args.pull;
    opts.compression = match args.compress {
        CompressArg::Auto => CompressionChoice::Auto,
        CompressArg::None => CompressionChoice::None,
        CompressArg::Gzip => CompressionChoice::Gzip,
    };
    opts.network = args.network.clone();
    opts.idle_timeout = std::time::Duration::from_secs(args.idle_timeout);
    opts.push = args.push;
    opts.registry_endpoint = args.registry_endpoint.clone().or_else(|| {
        std::env::var("REGGIE_REGISTRY_ENDPOINT")
            .ok()
            .filter(|s| !s.is_empty())
    });
    opts.create_repo = args.create_repo;
    opts.skip_if_exists = args.skip_if_exists;
    (opts.outputs, opts.cache_from, opts.cache_to) = args.outputs()?;
    let builders = remote_builders(args)?;
    for (flag, value) in [("--provenance", &args.provenance), ("--sbom", &args.sbom)] {
        if let Some(v) = value {
            opts.attests
                .extend(ship::outputs::parse_attestation(flag, v)?);
        }
    }
    // With --all, [[builder]] in the config may give the builders.
    if !opts.attests.is_empty() && builders.is_empty() && !many {
        return Err(reggie_build::ops::ImageError::AttestationsNeedBuildKit.into());
    }
    let placeholder = reggie_build::ops::images::CACHE_PLACEHOLDER;
    if !many
        && (opts.cache_from.iter())
            .chain(&opts.cache_to)
            .any(|c| c.attrs.values().any(|v| v.contains(placeholder)))
    {
        bail!("{placeholder} in --cache-from/--cache-to stands for each image's name with --all or --affected; for one image, write its cache reference out");
    }
    if !many {
        reggie_build::ops::image::check(&opts)?;
    }
    if let Some(user) = &args.username {
        let mut password = String::new();
        std::io::stdin()
            .read_to_string(&mut password)
            .context("reading the password from stdin")?;
        let password = password.trim_end_matches(['\n', '\r']).to_string();
        if password.is_empty() {
            bail!("--password-stdin: stdin was empty");
        }
        opts.credentials = Some(Credentials {
            username: user.clone(),
            secret: password,
            source: "--password-stdin".into(),
        });
    }
    Ok((opts, ssh, builders))
}

/// `--buildkit-addr` (or BUILDKIT_HOST), once or more: the builders to
/// solve on instead of the daemon, and what they cannot be combined with.
fn remote_builders(args: &ImageArgs) -> anyhow::Result<Vec<ship::Remote>> {
    let addrs: Vec<&str> = args
        .buildkit_addr
        .iter()
        .map(String::as_str)
        .filter(|a| !a.is_empty())
        .collect();
    let Some(first) = addrs.first() else {
        return Ok(Vec::new());
    };
    let refuse = |what: &str| -> anyhow::Result<()> {
        bail!("{what} is not available with --buildkit-addr {first} (BUILDKIT_HOST): it needs the Docker daemon")
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
    let tls = ship::TlsOptions {
        ca: args.buildkit_ca.clone(),
        cert: args.buildkit_cert.clone(),
        key: args.buildkit_key.clone(),
        server_name: args.buildkit_server_name.clone(),
    };
    let mut out: Vec<ship::Remote> = Vec::new();
    for addr in addrs {
        let remote = ship::Remote::new(addr, tls.clone())?;
        let own_transport = ["ssh://", "docker-context://"]
            .iter()
            .any(|p| remote.addr.to_string().starts_with(p));
        if own_transport && tls.enabled() {
            bail!("--buildkit-ca/--buildkit-cert/--buildkit-key apply to tcp:// and unix:// builders: {addr} is secured by ssh or by the Docker context's own TLS files");
        }
        if out.iter().any(|r| r.addr == remote.addr) {
            bail!("--buildkit-addr {addr} is given twice");
        }
        out.push(remote);
    }
    Ok(out)
}

async fn build_and_push(
    args: &ImageArgs,
    on_event: &mut (dyn FnMut(Event) + Send),
) -> anyhow::Result<(String, Vec<publish::Pushed>)> {
    let (mut opts, _ssh, builders) = options(args)?;
    let outcome = if builders.len() > 1 {
        // Several builders: the image's own, unless it is down.
        let pool = reggie_build::ops::pool::Pool::new(builders, 1);
        let key =
            reggie_build::ops::pool::key(&opts, &args.context.spec().root.display().to_string());
        reggie_build::ops::pool::build(&pool, &key, &opts, on_event)
            .await
            .result?
    } else {
        opts.remote = builders.into_iter().next();
        reggie_build::ops::image(&opts, on_event).await?
    };
    Ok((outcome.image_id, outcome.pushed))
}
