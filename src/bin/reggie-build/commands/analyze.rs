//! `reggie-build analyze`: before and after, what is wasted, how to fix it.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::Args;

use reggie_build::analyze::{self, report, AnalyzeOptions, RuleSet};

use reggie_build::formats;

use crate::output::{self, FormatArg};
use crate::shared::heading;
use crate::targets::TargetArgs;

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    #[command(flatten)]
    pub targets: TargetArgs,
    /// How many entries each "top" list shows.
    #[arg(long, default_value_t = 10)]
    #[arg(help_heading = heading::OUTPUT)]
    pub top: usize,
    /// Output format.
    #[arg(long, value_enum, default_value_t = FormatArg::Human)]
    #[arg(help_heading = heading::OUTPUT)]
    pub format: FormatArg,
    /// Same as `--format json`: one JSON object (`"schema": 1`).
    #[arg(long, conflicts_with = "format")]
    #[arg(help_heading = heading::OUTPUT)]
    pub json: bool,
    /// Write the suggested ignore file (`<Dockerfile>.dockerignore`, or
    /// `.dockerignore` with `--builder classic`).
    #[arg(long)]
    #[arg(help_heading = heading::OUTPUT)]
    pub write_ignore: bool,
    /// Overwrite an existing ignore file with `--write-ignore`.
    #[arg(long, requires = "write_ignore")]
    #[arg(help_heading = heading::OUTPUT)]
    pub force: bool,
    /// Extra rule files (`*.toml`, same format as reggie-build's `rules/`).
    #[arg(long, value_name = "DIR", env = "REGGIE_BUILD_RULES")]
    #[arg(help_heading = heading::OUTPUT)]
    pub rules: Option<PathBuf>,
    /// Write the report to FILE instead of stdout (e.g. `--format html -o
    /// report.html`).
    #[arg(short = 'o', long, value_name = "FILE")]
    #[arg(help_heading = heading::OUTPUT)]
    pub output: Option<PathBuf>,
}

pub fn run(args: AnalyzeArgs) -> anyhow::Result<i32> {
    let format = if args.json {
        FormatArg::Json
    } else {
        args.format
    };
    let rules = match &args.rules {
        Some(dir) => RuleSet::with_user_dir(dir)?,
        None => RuleSet::builtin(),
    };
    let targets = args.targets.targets()?;
    let mut analyses = Vec::new();
    for target in &targets {
        let ctx = target.spec.resolve()?;
        let opts = AnalyzeOptions {
            plan: target.plan.clone(),
            top: args.top,
            detail: format == FormatArg::Html,
        };
        let spinner = Spinner::start(format == FormatArg::Human);
        let result = analyze::analyze(&ctx, &rules, &opts);
        spinner.stop();
        analyses.push(result.with_context(|| format!("analyzing image `{}`", target.name))?);
    }
    let text = match format {
        FormatArg::Human => {
            let style = report::Style {
                color: output::color_enabled(),
            };
            analyses
                .iter()
                .map(|a| report::human(a, style))
                .collect::<Vec<_>>()
                .join("\n")
        }
        FormatArg::Json => {
            if analyses.len() == 1 {
                format!("{}\n", report::json(&analyses[0]))
            } else {
                let images: Vec<serde_json::Value> = analyses
                    .iter()
                    .map(|a| serde_json::from_str(&report::json(a)).unwrap_or_default())
                    .collect();
                format!(
                    "{}\n",
                    reggie_build::text::json(&serde_json::json!({
                        "schema": report::SCHEMA,
                        "images": images,
                    }))?
                )
            }
        }
        FormatArg::Markdown => analyses
            .iter()
            .map(formats::analysis_markdown)
            .collect::<Vec<_>>()
            .join("\n"),
        FormatArg::Github => {
            let summary: String = analyses.iter().map(formats::analysis_markdown).collect();
            output::append_step_summary(&summary)?;
            analyses
                .iter()
                .map(|a| formats::github_annotations(&a.findings))
                .collect()
        }
        FormatArg::Sarif => {
            let all: Vec<_> = analyses.iter().flat_map(|a| a.findings.clone()).collect();
            format!("{}\n", formats::sarif(&all))
        }
        FormatArg::Html => formats::html::analysis_page(&analyses),
    };
    output::write_report(args.output.as_deref(), &text)?;
    if args.write_ignore {
        for analysis in &analyses {
            write_ignore(analysis, args.force)?;
        }
    }
    Ok(0)
}

fn write_ignore(analysis: &analyze::Analysis, force: bool) -> anyhow::Result<()> {
    let Some(ig) = &analysis.suggested_ignore else {
        let dockerfile = reggie_build::text::show_path(&analysis.dockerfile);
        if let (true, Some(s)) = (
            analysis.whole_context_reasons.is_empty(),
            &analysis.suggestion,
        ) {
            // `COPY app /app`: the narrowest context is read whole, so the
            // fix is the context, not an ignore file.
            bail!(
                "no ignore file is needed for {dockerfile}: the build reads all of the narrowest context, `{}`; use it as the context instead: {}",
                reggie_build::text::escape(&s.dir),
                reggie_build::text::escape(&s.docker_build.1)
            );
        }
        bail!(
            "no ignore file can be suggested for {dockerfile}: the build reads the whole context"
        );
    };
    let shown = reggie_build::text::show_path(&ig.path);
    if !ig.verified {
        // Without --force nothing would be written anyway: say that first.
        if !force && std::fs::symlink_metadata(&ig.path).is_ok() {
            bail!("{shown} already exists; pass --force to overwrite it");
        }
        bail!(
            "the suggested ignore file was not verified to send what today's build sends under the paths the Dockerfile reads ({}); not writing {shown}",
            reggie_build::text::escape(&ig.differences.join(", "))
        );
    }
    output::replace_file(&ig.path, ig.text.as_bytes(), force)?;
    if !output::quiet() {
        // The figures `ls` prints for that context from now on.
        eprintln!(
            "wrote {shown}: a build of context {} with it sends {} files ({})",
            reggie_build::text::show_path(&ig.context),
            ig.files,
            reggie_build::units::humanize(ig.bytes)
        );
    }
    Ok(())
}

/// A spinner on stderr that appears only when the walk takes over a second
/// and stderr is a terminal.
struct Spinner {
    done: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Spinner {
    fn start(enabled: bool) -> Spinner {
        let done = Arc::new(AtomicBool::new(false));
        if !enabled || !std::io::stderr().is_terminal() {
            return Spinner { done, handle: None };
        }
        let flag = done.clone();
        let handle = std::thread::spawn(move || {
            let frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
            let start = std::time::Instant::now();
            let mut shown = false;
            let mut i = 0;
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                if start.elapsed() >= Duration::from_secs(1) {
                    eprint!(
                        "\r{} walking the context… {:.0}s",
                        frames[i % frames.len()],
                        start.elapsed().as_secs_f64()
                    );
                    shown = true;
                    i += 1;
                }
            }
            if shown {
                eprint!("\r\x1b[2K");
            }
        });
        Spinner {
            done,
            handle: Some(handle),
        }
    }

    fn stop(self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle {
            let _ = h.join();
        }
    }
}
