//! `reggie-build image --all` / `--affected`: the images of
//! reggie-build.toml built in one run by [`reggie_build::ops::images`],
//! printed with the image's name on every line (and in every JSON event).

use reggie_build::affected::Head;
use reggie_build::config::{Config, Image};
use reggie_build::ops::images::{self, Selection, TagVars};
use reggie_build::ops::pool::Pool;
use reggie_build::ops::ImageOptions;
use reggie_build::ship::Event;

use crate::image::options;
use crate::interrupt;
use crate::printer::MultiPrinter;
use crate::shared::image_args::ImageArgs;

/// The `[[builder]]`s of the config, as `--buildkit-addr` would give them.
fn config_builders(config: &Config) -> anyhow::Result<Vec<reggie_build::ship::Remote>> {
    use anyhow::Context as _;
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

/// Builds the images `--all` or `--affected` selects, `--jobs` at a
/// time; the exit code is 0 all built, 1 one failed, 130 interrupted.
pub async fn run(args: &ImageArgs) -> anyhow::Result<i32> {
    let (shared, _ssh, mut builders): (ImageOptions, _, _) = options(args)?;
    let selection = if args.affected {
        Selection::Affected {
            base: args.base.clone().unwrap_or_else(|| "HEAD~1".into()),
            head: if args.worktree {
                Head::Worktree
            } else {
                Head::Rev(args.head.clone().unwrap_or_else(|| "HEAD".into()))
            },
        }
    } else {
        Selection::All
    };
    let chosen = images::select(args.config.as_deref(), &selection)?;
    if builders.is_empty() {
        builders = config_builders(&chosen.config)?;
    }
    if !shared.attests.is_empty() && builders.is_empty() {
        return Err(reggie_build::ops::ImageError::AttestationsNeedBuildKit.into());
    }
    if let Some(report) = &chosen.affected {
        let names: Vec<&str> = chosen.images.iter().map(|i| i.name.as_str()).collect();
        eprintln!(
            "affected: {} of {} images ({}..{}){}{}",
            names.len(),
            report.images.len(),
            report.base.rev,
            report.head.rev,
            if names.is_empty() { "" } else { ": " },
            names.join(", ")
        );
    }
    if chosen.images.is_empty() {
        eprintln!("nothing to build");
        return Ok(0);
    }
    let selected: Vec<&Image> = chosen.images.iter().collect();
    let vars = TagVars::read_for(&chosen.config.root, &selected);
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
    let printer = MultiPrinter::new(args.json, &names);
    let mut on_event = |name: &str, e: Event| printer.print(name, &e);
    let pool = (!builders.is_empty()).then(|| Pool::new(builders, args.jobs as usize));
    let work = images::images(&list, args.jobs as usize, pool.as_ref(), &mut on_event);
    let outcome = interrupt::or_interrupt(work).await;
    let Some(finished) = outcome else {
        printer.finish();
        eprintln!("interrupted: builds cancelled");
        return Ok(interrupt::EXIT_CODE);
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
                    stdout.push_str(&format!("{}\n", reggie_build::text::json_line(&v)?));
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
            stdout.push_str(&format!("{}\n", reggie_build::text::json_line(&v)?));
        }
        eprintln!("error: image `{name}`: {error}");
    }
    crate::shared::print_stdout_bytes(stdout.as_bytes())?;
    crate::printer::stdout_result()?;
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
