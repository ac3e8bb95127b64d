//! `reggie-build image --all` / `--affected`: the images of
//! reggie-build.toml built in one run by [`reggie_build::ops::images`],
//! printed with the image's name on every line (and in every JSON event).

use reggie_build::affected::Head;
use reggie_build::config::Image;
use reggie_build::ops::images::{self, Selection, TagVars};
use reggie_build::ops::ImageOptions;
use reggie_build::ship::Event;

use crate::image::options;
use crate::interrupt;
use crate::printer::MultiPrinter;
use crate::shared::image_args::ImageArgs;

/// Builds the images `--all` or `--affected` selects, `--jobs` at a
/// time; the exit code is 0 all built, 1 one failed, 130 interrupted.
pub async fn run(args: &ImageArgs) -> anyhow::Result<i32> {
    let (shared, _ssh): (ImageOptions, _) = options(args)?;
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
    let mut failed: Vec<(String, String)> = Vec::new();
    let options = images::options_all(&selected, &shared, &vars, args.jobs as usize);
    for (img, opts) in selected.iter().zip(options) {
        match opts {
            Ok(o) => list.push((img.name.clone(), o)),
            Err(e) => failed.push((img.name.clone(), format!("{e:#}"))),
        }
    }
    let names: Vec<String> = list.iter().map(|(n, _)| n.clone()).collect();
    let printer = MultiPrinter::new(args.json, &names);
    let mut on_event = |name: &str, e: Event| printer.print(name, &e);
    let outcome =
        interrupt::or_interrupt(images::images(&list, args.jobs as usize, &mut on_event)).await;
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
                    let v = serde_json::json!({
                        "event": "result", "image": f.name, "ok": true,
                        "image_id": outcome.image_id,
                    });
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
            Err(e) => failed.push((f.name, format!("{e:#}"))),
        }
    }
    for (name, error) in &failed {
        if args.json {
            let v = serde_json::json!({
                "event": "result", "image": name, "ok": false, "error": error,
            });
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
        let names: Vec<&str> = failed.iter().map(|(n, _)| n.as_str()).collect();
        eprintln!(
            "built {built} of {total} images; failed: {}",
            names.join(", ")
        );
        Ok(1)
    }
}
