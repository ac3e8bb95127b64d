//! `reggie-build image --all` / `--affected`: the images of
//! reggie-build.toml built in one run by [`reggie_build::ops::images`],
//! printed with the image's name on every line (and in every JSON event).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use reggie_build::affected::{self, Head};
use reggie_build::config::{self, Config};
use reggie_build::ops::images::{self, TagVars};
use reggie_build::ops::pool::Pool;
use reggie_build::ops::ImageOptions;
use reggie_build::ship::Event;

use crate::cli::image_args::ImageArgs;
use crate::image::{options, Printer, INTERRUPTED};
use crate::live::{terminal_width, MultiView};

/// Prints events of several images.
struct Many {
    json: bool,
    live: Option<std::sync::Mutex<MultiView>>,
}

impl Many {
    fn print(&self, name: &str, event: &Event) {
        if self.json {
            if let Ok(mut v) = serde_json::to_value(event) {
                v["image"] = serde_json::json!(name);
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{v}");
                let _ = out.flush();
            }
            return;
        }
        let line = Printer::line(event).map(|l| format!("[{name}] {l}"));
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
            Event::Log { .. } => force = false,
            Event::Upload { bytes, done: false } => {
                view.status(
                    name,
                    format!("upload: {} sent", reggie_build::analyze::humanize(*bytes)),
                );
                force = false;
            }
            Event::Push {
                digest: None,
                status,
                ..
            } => {
                view.status(name, format!("push: {status}"));
                force = false;
            }
            _ => {
                if let Some(l) = Printer::line(event) {
                    view.status(name, l);
                }
                permanent.extend(line);
            }
        }
        if let Some(text) = view.render(&permanent, force) {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(text.as_bytes());
            let _ = err.flush();
        }
    }

    fn status(&self, name: &str, status: String) {
        if let Some(live) = &self.live {
            let mut view = live.lock().unwrap_or_else(|e| e.into_inner());
            view.status(name, status);
            if let Some(text) = view.render(&[], true) {
                eprint!("{text}");
            }
        }
    }

    fn finish(&self) {
        if let Some(live) = &self.live {
            let text = live.lock().unwrap_or_else(|e| e.into_inner()).clear();
            eprint!("{text}");
        }
    }
}

fn load_config(path: Option<&Path>) -> anyhow::Result<Config> {
    let path = match path {
        Some(p) => p.to_path_buf(),
        None => config::find(Path::new(".")).with_context(|| {
            format!(
                "image --all and --affected build the images of a {} (none found here or above, up to the repository root); run `reggie-build discover --write` to create one",
                config::FILE_NAME
            )
        })?,
    };
    Ok(Config::load(&path)?)
}

/// The `[[builder]]`s of the config, as `--buildkit-addr` would give them.
fn config_builders(config: &Config) -> anyhow::Result<Vec<reggie_build::ship::Remote>> {
    config
        .builders
        .iter()
        .map(|b| {
            let tls = reggie_build::ship::TlsOptions {
                ca: b.ca.clone(),
                cert: b.cert.clone(),
                key: b.key.clone(),
                server_name: b.server_name.clone(),
            };
            reggie_build::ship::Remote::new(&b.addr, tls)
                .with_context(|| format!("{}:{}: [[builder]]", config.path.display(), b.line))
        })
        .collect()
}

pub async fn run(args: &ImageArgs) -> anyhow::Result<i32> {
    let (shared, _ssh, mut builders): (ImageOptions, _, _) = options(args)?;
    let config = load_config(args.config.as_deref())?;
    if builders.is_empty() {
        builders = config_builders(&config)?;
    }
    if !shared.attests.is_empty() && builders.is_empty() {
        return Err(reggie_build::ops::ImageError::AttestationsNeedBuildKit.into());
    }
    let selected: Vec<&config::Image> = if args.affected {
        let report = affected::affected(&affected::Options {
            base: args.base.clone().unwrap_or_else(|| "HEAD~1".into()),
            head: if args.worktree {
                Head::Worktree
            } else {
                Head::Rev(args.head.clone().unwrap_or_else(|| "HEAD".into()))
            },
            config: Some(config.path.clone()),
            dir: PathBuf::from("."),
            images: Vec::new(),
        })?;
        let names: Vec<&str> = report
            .images
            .iter()
            .filter(|i| i.affected)
            .map(|i| i.name.as_str())
            .collect();
        eprintln!(
            "affected: {} of {} images ({}..{}){}{}",
            names.len(),
            report.images.len(),
            report.base.rev,
            report.head.rev,
            if names.is_empty() { "" } else { ": " },
            names.join(", ")
        );
        config
            .images
            .iter()
            .filter(|i| names.contains(&i.name.as_str()))
            .collect()
    } else {
        config.images.iter().collect()
    };
    if selected.is_empty() {
        if args.all {
            anyhow::bail!("{} configures no images", config.path.display());
        }
        eprintln!("nothing to build");
        return Ok(0);
    }
    let vars = TagVars::read_for(&config.root, &selected);
    let mut list = Vec::new();
    let mut failed: Vec<(String, String, Option<String>)> = Vec::new();
    let options = images::options_all(&selected, &shared, &vars, args.jobs as usize);
    for (img, opts) in selected.iter().zip(options) {
        match opts {
            Ok(o) => list.push((img.name.clone(), o)),
            Err(e) => failed.push((img.name.clone(), format!("{e:#}"), None)),
        }
    }
    let names: Vec<String> = list.iter().map(|(n, _)| n.clone()).collect();
    let printer = Many {
        json: args.json,
        live: (!args.json && std::io::stderr().is_terminal())
            .then(|| std::sync::Mutex::new(MultiView::new(terminal_width(), &names))),
    };
    let mut on_event = |name: &str, e: Event| printer.print(name, &e);
    let interrupt = tokio::signal::ctrl_c();
    let pool = (!builders.is_empty()).then(|| Pool::new(builders, args.jobs as usize));
    let outcome = {
        let work = images::images(&list, args.jobs as usize, pool.as_ref(), &mut on_event);
        tokio::pin!(work);
        tokio::select! {
            r = &mut work => Some(r),
            _ = interrupt => None,
        }
    };
    let Some(finished) = outcome else {
        printer.finish();
        eprintln!("interrupted: builds cancelled");
        return Ok(INTERRUPTED);
    };
    let finished = match finished {
        Ok(f) => f,
        Err(e) => {
            printer.finish();
            anyhow::bail!(e)
        }
    };
    for f in &finished {
        let status = match &f.result {
            Ok(o) if o.skipped => "skipped: already built".to_string(),
            Ok(_) => "done".to_string(),
            Err(_) => "failed".to_string(),
        };
        printer.status(&f.name, status);
    }
    printer.finish();
    let mut built = 0usize;
    let mut stdout = String::new();
    for f in finished {
        match f.result {
            Ok(outcome) => {
                built += 1;
                if args.json {
                    let mut v = serde_json::json!({
                        "event": "result", "image": f.name, "ok": true,
                        "image_id": outcome.image_id,
                    });
                    if let Some(b) = &f.builder {
                        v["builder"] = serde_json::json!(b);
                    }
                    stdout.push_str(&format!("{v}\n"));
                } else {
                    stdout.push_str(&format!("{}  {}\n", outcome.image_id, f.name));
                    for p in outcome.pushed {
                        if let Some(d) = p.digest {
                            stdout.push_str(&format!("{}@{d}  {}\n", p.tag, f.name));
                        }
                    }
                }
            }
            Err(e) => failed.push((f.name, format!("{e:#}"), f.builder)),
        }
    }
    for (name, error, builder) in &failed {
        if args.json {
            let mut v = serde_json::json!({
                "event": "result", "image": name, "ok": false, "error": error,
            });
            if let Some(b) = builder {
                v["builder"] = serde_json::json!(b);
            }
            stdout.push_str(&format!("{v}\n"));
        }
        eprintln!("error: image `{name}`: {error}");
    }
    print!("{stdout}");
    let total = built + failed.len();
    if failed.is_empty() {
        eprintln!("built {built} of {total} images");
        Ok(0)
    } else {
        let names: Vec<&str> = failed.iter().map(|(n, _, _)| n.as_str()).collect();
        eprintln!(
            "built {built} of {total} images; failed: {}",
            names.join(", ")
        );
        Ok(1)
    }
}
