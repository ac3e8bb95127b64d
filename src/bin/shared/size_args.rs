//! The arguments of `reggie-build size`, and how its report is printed:
//! `reggie-build` reads files and directories (the lean build too) and
//! hands an image reference over to `reggie-build-image`, which reads the
//! daemon or the registry; both print here.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::Ordering;

use clap::{Args, ValueEnum};

use reggie_build::formats::size;
use reggie_build::inspect::{self, layer::Shared, Inspected, SizeOptions};

pub use super::size_budget::Budgeted;

fn print_stdout(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

use super::{heading, parse_build_args};

/// The `--help` heading of which image is read, and from where.
const SOURCE: &str = "Image";

/// Where to read an image reference from.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum FromArg {
    /// The Docker daemon's image store (streamed from its export).
    Daemon,
    /// The registry, without pulling (manifest, config and blobs).
    Registry,
}

/// `size` output formats.
#[derive(Debug, Clone, Copy, ValueEnum, Default, PartialEq, Eq)]
pub enum SizeFormat {
    /// The report for a terminal.
    #[default]
    Human,
    /// One JSON object.
    Json,
    /// For a pull request comment.
    Markdown,
    /// GitHub workflow commands at the Dockerfile lines (and a step
    /// summary when GITHUB_STEP_SUMMARY is set).
    Github,
    /// SARIF 2.1.0, results at the Dockerfile lines.
    Sarif,
    /// One self-contained HTML page.
    Html,
}

#[derive(Debug, Args)]
pub struct SizeArgs {
    /// The image: a `docker save` archive or an OCI layout (directory or
    /// tar), `-` for a `docker save` stream on stdin, or an image
    /// reference (the daemon's image, else the registry's).
    #[arg(value_name = "IMAGE|DIR|FILE")]
    pub source: String,
    /// The Dockerfile the image was built from, to attribute layers to
    /// its lines (default: the one `reggie-build image` recorded, if any).
    #[arg(short = 'f', long = "file", value_name = "DOCKERFILE")]
    #[arg(help_heading = heading::BUILD)]
    pub file: Option<PathBuf>,
    /// The stage the image is (default: the one whose instructions match
    /// the history best).
    #[arg(long)]
    #[arg(help_heading = heading::BUILD)]
    pub target: Option<String>,
    /// A build argument the image was built with (`KEY=VALUE`).
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    #[arg(help_heading = heading::BUILD)]
    pub build_args: Vec<String>,
    /// The platform to read from an index (`os/arch[/variant]`; default
    /// this machine's).
    #[arg(long, value_name = "OS/ARCH")]
    #[arg(help_heading = SOURCE)]
    pub platform: Option<String>,
    /// Which image of an archive holding several (`name:tag`).
    #[arg(long, value_name = "NAME:TAG")]
    #[arg(help_heading = SOURCE)]
    pub image: Option<String>,
    /// For an image reference: read it from the daemon or the registry
    /// (default: the daemon when it has it, else the registry).
    #[arg(long, value_enum)]
    #[arg(help_heading = SOURCE)]
    pub from: Option<FromArg>,
    /// Reach the registry at this `host:port` instead of the reference's
    /// (credentials stay the reference's).
    #[arg(long, value_name = "HOST:PORT")]
    #[arg(help_heading = heading::REGISTRY)]
    pub registry_endpoint: Option<String>,
    /// Registry user (with --password-stdin).
    #[arg(long, requires = "password_stdin")]
    #[arg(help_heading = heading::REGISTRY)]
    pub username: Option<String>,
    /// Read the registry password or token from stdin.
    #[arg(long, requires = "username")]
    #[arg(help_heading = heading::REGISTRY)]
    pub password_stdin: bool,
    /// List the entries of layer N (1 = the base), or with no N the files
    /// the final image shows, instead of the report.
    #[arg(long, value_name = "LAYER", num_args = 0..=1, default_missing_value = "0")]
    #[arg(help_heading = heading::OUTPUT)]
    pub tree: Option<usize>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = SizeFormat::Human)]
    #[arg(help_heading = heading::OUTPUT)]
    pub format: SizeFormat,
    /// Waste items shown in detail (human and markdown) or annotated
    /// (github, sarif); with --prove, the largest items whose fixes are
    /// tried.
    #[arg(long, default_value_t = 10, value_name = "N")]
    #[arg(help_heading = heading::OUTPUT)]
    pub top: usize,
    #[command(flatten)]
    pub budget: super::size_budget::BudgetArgs,
    /// Prove the fixes: apply those of the largest waste items that have
    /// a mechanical Dockerfile fix to a private copy of the Dockerfile,
    /// build it through the Docker daemon as `image` does, and report
    /// the measured size before and after each fix, and whether every
    /// path that is not waste came out unchanged (full build; -f and
    /// --context, else what `reggie-build image` recorded on IMAGE).
    #[arg(long, conflicts_with_all = ["tree", "from"])]
    #[arg(help_heading = heading::BUILD)]
    pub prove: bool,
    /// The build context for --prove (default: the one `reggie-build
    /// image` recorded on the image).
    #[arg(long, value_name = "DIR", requires = "prove")]
    #[arg(help_heading = heading::BUILD)]
    pub context: Option<PathBuf>,
    /// The network of `RUN` steps in the --prove builds (`default`,
    /// `none`, `host`), as `image --network`.
    #[arg(long, value_name = "MODE", requires = "prove")]
    #[arg(help_heading = heading::BUILD)]
    pub network: Option<String>,
}

impl SizeArgs {
    pub fn options(&self) -> anyhow::Result<SizeOptions> {
        let mut options = self.cli_options()?;
        self.budget.configured_defaults(&mut options)?;
        Ok(options)
    }

    /// The budgets and baseline, read before the image is.
    pub fn budgets(&self, quiet: bool) -> anyhow::Result<Budgeted> {
        self.budget
            .resolve(self.file.as_deref(), self.target.as_deref(), quiet)
    }

    fn cli_options(&self) -> anyhow::Result<SizeOptions> {
        Ok(SizeOptions {
            load: inspect::LoadOptions {
                platform: self.platform.clone(),
                image: self.image.clone(),
                threads: 0,
            },
            dockerfile: self.file.clone(),
            plan: reggie_build::plan::PlanOptions {
                target: self.target.clone(),
                build_args: parse_build_args(&self.build_args)?,
                platform: self.platform.clone(),
                ..Default::default()
            },
        })
    }
}

/// Prints the report (or the tree) as `args` asks, with the budgets'
/// verdict: exit 1 when a budget is exceeded.
pub fn print(inspected: &Inspected, args: &SizeArgs, budgets: &Budgeted) -> anyhow::Result<i32> {
    if let Some(n) = args.tree {
        let layer = (n > 0).then_some(n);
        let Some(rows) = inspected.tree(layer) else {
            anyhow::bail!(
                "--tree {n}: the image has {} layers (1 is the base)",
                inspected.report.layers.len()
            );
        };
        let text = match args.format {
            SizeFormat::Json => serde_json::to_string_pretty(&rows)? + "\n",
            SizeFormat::Human => reggie_build::formats::size::tree(&rows),
            other => anyhow::bail!(
                "--tree prints as human or json, not {}",
                other
                    .to_possible_value()
                    .map_or(String::new(), |v| v.get_name().to_owned())
            ),
        };
        print_stdout(&text)?;
        return Ok(0);
    }
    let report = &inspected.report;
    let verdict = budgets.evaluate(report, &args.source);
    let verdict = verdict.as_ref();
    let text = match args.format {
        SizeFormat::Json => size::json(report, verdict)?,
        SizeFormat::Human => {
            size::human(report, args.top) + &verdict.map(size::budgets_human).unwrap_or_default()
        }
        SizeFormat::Markdown => size::markdown(report, verdict, args.top),
        SizeFormat::Github => {
            let findings = size::findings(report, verdict, args.top);
            super::append_step_summary(&size::markdown(report, verdict, args.top))?;
            reggie_build::formats::github_annotations(&findings)
        }
        SizeFormat::Sarif => {
            reggie_build::formats::sarif(&size::findings(report, verdict, args.top)) + "\n"
        }
        SizeFormat::Html => reggie_build::formats::html::size_page(report, verdict),
    };
    print_stdout(&text)?;
    Ok(if verdict.is_none_or(|v| v.passed) {
        0
    } else {
        1
    })
}

/// Runs `work`, showing on a terminal how much has been read.
pub fn with_progress<T>(
    shared: &Shared,
    total: Option<u64>,
    quiet: bool,
    work: impl FnOnce() -> T,
) -> T {
    if !std::io::stderr().is_terminal() || quiet {
        return work();
    }
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut shown = false;
            let mut waited = 0;
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(std::time::Duration::from_millis(100));
                waited += 1;
                // Quick reads show nothing.
                if waited < 5 {
                    continue;
                }
                let read = shared.bytes_read.load(Ordering::Relaxed);
                let of = total
                    .map(|t| format!(" of {}", reggie_build::units::humanize(t)))
                    .unwrap_or_default();
                eprint!(
                    "\r\x1b[Kreading layers: {}{of}",
                    reggie_build::units::humanize(read)
                );
                shown = true;
            }
            if shown {
                eprint!("\r\x1b[K");
            }
        });
        let out = work();
        done.store(true, Ordering::Relaxed);
        out
    })
}
