//! `reggie-build image` for one image: the library's options from the
//! arguments ([`options`], which `--all`/`--affected` share), then
//! [`reggie_build::ops::image`]: build through the Docker daemon (or a
//! BuildKit builder) from the minimal context, and push when asked.

use std::collections::BTreeMap;
use std::io::Read;

use anyhow::{bail, Context as _};

use reggie_build::ops::{CompressionChoice, ImageOptions};
use reggie_build::publish::{self, Credentials};
use reggie_build::ship::outputs::{self, CacheSpec, OutputError, OutputSpec};
use reggie_build::ship::{self, Event};

use crate::interrupt;
use crate::printer::Printer;
use crate::shared::image_args::{CompressArg, ImageArgs};
use crate::shared::{parse_build_args, BuilderArg};

/// Builds one image (and pushes it), printing its events; the exit code
/// is 0 built, 1 failed, 130 interrupted.
pub async fn run(args: &ImageArgs) -> anyhow::Result<i32> {
    let printer = Printer::new(args.json);
    let mut on_event = |e: Event| printer.print(&e);
    let outcome = interrupt::or_interrupt(build_and_push(args, &mut on_event)).await;
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
        return Ok(interrupt::EXIT_CODE);
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
                let mut text = String::new();
                if !image_id.is_empty() {
                    text.push_str(&format!("{image_id}\n"));
                }
                for p in pushed {
                    if let Some(d) = p.digest {
                        text.push_str(&format!("{}@{d}\n", p.tag));
                    }
                }
                crate::shared::print_stdout_bytes(text.as_bytes())?;
            }
            crate::printer::stdout_result()?;
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
            crate::printer::stdout_result()?;
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

/// The library's options from the arguments; reads the password from
/// stdin last, after every other argument is known to be good. The
/// `--ssh` agents must outlive the build: the private ones started for key
/// files stop when they drop (also on error or Ctrl-C).
pub fn options(args: &ImageArgs) -> anyhow::Result<(ImageOptions, ship::SshAgents)> {
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
    (opts.outputs, opts.cache_from, opts.cache_to) = parse_outputs(args)?;
    opts.remote = remote_builder(args)?;
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
    Ok((opts, ssh))
}

/// `--output`, `--cache-from` and `--cache-to`, parsed.
type ParsedOutputs = (Vec<OutputSpec>, Vec<CacheSpec>, Vec<CacheSpec>);

/// Parses `--output`, `--cache-from` and `--cache-to`, and refuses the
/// combinations docker refuses (`--push` with files as output).
fn parse_outputs(args: &ImageArgs) -> Result<ParsedOutputs, OutputError> {
    let outs = args
        .outputs
        .iter()
        .map(|s| OutputSpec::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    let from = args
        .cache_from
        .iter()
        .map(|s| CacheSpec::parse_from(s))
        .collect::<Result<Vec<_>, _>>()?;
    let to = args
        .cache_to
        .iter()
        .map(|s| CacheSpec::parse_to(s))
        .collect::<Result<Vec<_>, _>>()?;
    outputs::check_conflicts(&outs, args.push, args.skip_if_exists, args.json)?;
    // As docker: a tar is not for the terminal.
    if outs.iter().any(|o| o.dest() == Some("-"))
        && std::io::IsTerminal::is_terminal(&std::io::stdout())
    {
        return Err(OutputError::Conflict(
            "--output -: stdout is a terminal; redirect it (`-o - > out.tar`) or give type=tar,dest=FILE".into(),
        ));
    }
    Ok((outs, from, to))
}

/// `--buildkit-addr` (or BUILDKIT_HOST): the builder to solve on instead
/// of the daemon, and what it cannot be combined with.
fn remote_builder(args: &ImageArgs) -> anyhow::Result<Option<ship::Remote>> {
    let Some(addr) = args.buildkit_addr.as_deref().filter(|a| !a.is_empty()) else {
        return Ok(None);
    };
    let refuse = |what: &str| -> anyhow::Result<()> {
        bail!("{what} is not available with --buildkit-addr {addr} (BUILDKIT_HOST): it needs the Docker daemon")
    };
    if matches!(args.context.builder, BuilderArg::Classic) {
        refuse("--builder classic")?;
    }
    if args.skip_if_exists {
        refuse("--skip-if-exists")?;
    }
    if args.registry_endpoint.is_some() || args.create_repo {
        refuse("--registry-endpoint/--create-repo")?;
    }
    if args.all || args.affected {
        refuse("--all/--affected")?;
    }
    let tls = ship::TlsOptions {
        ca: args.buildkit_ca.clone(),
        cert: args.buildkit_cert.clone(),
        key: args.buildkit_key.clone(),
        server_name: args.buildkit_server_name.clone(),
    };
    Ok(Some(ship::Remote::new(addr, tls)?))
}

async fn build_and_push(
    args: &ImageArgs,
    on_event: &mut (dyn FnMut(Event) + Send),
) -> anyhow::Result<(String, Vec<publish::Pushed>)> {
    let (opts, _ssh) = options(args)?;
    let outcome = reggie_build::ops::image(&opts, on_event).await?;
    Ok((outcome.image_id, outcome.pushed))
}
