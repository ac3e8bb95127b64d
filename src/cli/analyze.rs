//! `reggie-build analyze`: before and after, what is wasted, how to fix it.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::{Args, ValueEnum};

use reggie_build::analyze::{self, report, AnalyzeOptions, RuleSet};

use super::output::print_stdout;
use super::plan_args::PlanArgs;
use super::ContextArgs;

/// When to use colour.
#[derive(Debug, Clone, Copy, ValueEnum, Default)]
pub enum ColorChoice {
    #[default]
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    /// Colour on a TTY unless `NO_COLOR` is set, or as forced.
    pub fn enabled(self) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && std::io::stdout().is_terminal()
            }
        }
    }
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    #[command(flatten)]
    pub context: ContextArgs,
    #[command(flatten)]
    pub plan: PlanArgs,
    /// How many entries each "top" list shows.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// Print one JSON object (`"schema": 1`) instead of the report.
    #[arg(long)]
    pub json: bool,
    /// Write the suggested ignore file (`<Dockerfile>.dockerignore`, or
    /// `.dockerignore` with `--builder classic`).
    #[arg(long)]
    pub write_ignore: bool,
    /// Overwrite an existing ignore file with `--write-ignore`.
    #[arg(long, requires = "write_ignore")]
    pub force: bool,
    /// Extra rule files (`*.toml`, same format as reggie-build's `rules/`).
    #[arg(long, value_name = "DIR", env = "REGGIE_BUILD_RULES")]
    pub rules: Option<PathBuf>,
    /// Colour: auto (on a terminal, unless NO_COLOR), always, never.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

pub fn run(args: AnalyzeArgs) -> anyhow::Result<i32> {
    let ctx = args.context.spec().resolve()?;
    let rules = match &args.rules {
        Some(dir) => RuleSet::with_user_dir(dir)?,
        None => RuleSet::builtin(),
    };
    let opts = AnalyzeOptions {
        plan: args.plan.options()?,
        top: args.top,
    };
    let spinner = Spinner::start(!args.json);
    let result = analyze::analyze(&ctx, &rules, &opts);
    spinner.stop();
    let analysis = result?;
    if args.json {
        let mut text = report::json(&analysis);
        text.push('\n');
        print_stdout(&text)?;
    } else {
        let style = report::Style {
            color: args.color.enabled(),
        };
        print_stdout(&report::human(&analysis, style))?;
    }
    if args.write_ignore {
        let Some(ig) = &analysis.suggested_ignore else {
            bail!("no ignore file can be suggested: the build reads the whole context");
        };
        if !ig.verified {
            bail!(
                "the suggested ignore file would lose a path the Dockerfile reads; not writing {}",
                ig.path.display()
            );
        }
        if ig.path.exists() && !args.force {
            bail!(
                "{} already exists; pass --force to overwrite it",
                ig.path.display()
            );
        }
        std::fs::write(&ig.path, &ig.text)
            .with_context(|| format!("cannot write {}", ig.path.display()))?;
        eprintln!("wrote {}", ig.path.display());
    }
    Ok(0)
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
