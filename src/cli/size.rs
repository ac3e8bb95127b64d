//! `reggie-build size`: what an image weighs, layer by layer, by
//! Dockerfile line, and its waste with the fix. Files and directories
//! (`docker save` archives, OCI layouts) are read here, in the lean build
//! too; an image in the daemon or a registry is read by
//! `reggie-build-image` (the full build), which this hands over to.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::Ordering;

use clap::{Args, ValueEnum};

use reggie_build::inspect::{self, layer::Shared, Inspected, SizeOptions};

use super::output::print_stdout;
use super::plan_args::parse_build_args;

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
    #[default]
    Human,
    Json,
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
    pub file: Option<PathBuf>,
    /// The stage the image is (default: the one whose instructions match
    /// the history best).
    #[arg(long)]
    pub target: Option<String>,
    /// A build argument the image was built with (`KEY=VALUE`).
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    pub build_args: Vec<String>,
    /// The platform to read from an index (`os/arch[/variant]`; default
    /// this machine's).
    #[arg(long, value_name = "OS/ARCH")]
    pub platform: Option<String>,
    /// Which image of an archive holding several (`name:tag`).
    #[arg(long, value_name = "NAME:TAG")]
    pub image: Option<String>,
    /// For an image reference: read it from the daemon or the registry
    /// (default: the daemon when it has it, else the registry).
    #[arg(long, value_enum)]
    pub from: Option<FromArg>,
    /// Reach the registry at this `host:port` instead of the reference's
    /// (credentials stay the reference's).
    #[arg(long, value_name = "HOST:PORT")]
    pub registry_endpoint: Option<String>,
    /// Registry user (with --password-stdin).
    #[arg(long, requires = "password_stdin")]
    pub username: Option<String>,
    /// Read the registry password or token from stdin.
    #[arg(long, requires = "username")]
    pub password_stdin: bool,
    /// List the entries of layer N (1 = the base), or with no N the files
    /// the final image shows, instead of the report.
    #[arg(long, value_name = "LAYER", num_args = 0..=1, default_missing_value = "0")]
    pub tree: Option<usize>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = SizeFormat::Human)]
    pub format: SizeFormat,
    /// Waste items shown in detail (human format).
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub top: usize,
}

/// Runs `size` for an image the daemon or a registry holds.
pub type RemoteSize = fn(SizeArgs) -> anyhow::Result<i32>;

impl SizeArgs {
    /// The source is a file, a directory or stdin (not a reference).
    pub fn is_local(&self) -> bool {
        self.source == "-" || std::path::Path::new(&self.source).exists()
    }

    pub fn options(&self) -> anyhow::Result<SizeOptions> {
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

pub fn run(args: SizeArgs, remote: RemoteSize) -> anyhow::Result<i32> {
    if !args.is_local() {
        return remote(args);
    }
    if args.from.is_some() {
        anyhow::bail!(
            "--from reads an image reference; {} is a file or directory",
            reggie_build::text::excerpt(&args.source)
        );
    }
    let options = args.options()?;
    let path = PathBuf::from(&args.source);
    let total = std::fs::metadata(&path)
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.len());
    let shared = Shared::default();
    let inspected = with_progress(&shared, total, || {
        inspect::inspect_path(&path, &options, &shared)
    })?;
    print(&inspected, &args)
}

/// Prints the report (or the tree) as `args` asks.
pub fn print(inspected: &Inspected, args: &SizeArgs) -> anyhow::Result<i32> {
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
        };
        print_stdout(&text)?;
        return Ok(0);
    }
    let text = match args.format {
        SizeFormat::Json => serde_json::to_string_pretty(&inspected.report)? + "\n",
        SizeFormat::Human => reggie_build::formats::size::human(&inspected.report, args.top),
    };
    print_stdout(&text)?;
    Ok(0)
}

/// Runs `work`, showing on a terminal how much has been read.
pub fn with_progress<T>(shared: &Shared, total: Option<u64>, work: impl FnOnce() -> T) -> T {
    if !std::io::stderr().is_terminal() || super::output::quiet() {
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
                    .map(|t| format!(" of {}", reggie_build::analyze::humanize(t)))
                    .unwrap_or_default();
                eprint!(
                    "\r\x1b[Kreading layers: {}{of}",
                    reggie_build::analyze::humanize(read)
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
