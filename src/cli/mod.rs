//! Argument parsing and dispatch. Each command is a thin function over the
//! library in its own module.

mod analyze;
mod check;
mod context_cmd;
mod explain;
mod image;
mod ls;
mod output;
mod plan_args;
mod targets;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use reggie_build::context::{Builder, ContextSpec};

/// Docker build context optimizer and image builder for monorepos.
#[derive(Debug, Parser)]
#[command(name = "reggie-build", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List every file Docker would send as the build context.
    #[command(
        after_help = "Examples:\n  reggie-build ls .\n  reggie-build ls . -f backend/Dockerfile\n  reggie-build ls backend --builder classic | wc -l"
    )]
    Ls(ls::LsArgs),
    /// Say whether files are sent, and which ignore-file line decided.
    #[command(
        after_help = "Examples:\n  reggie-build explain . node_modules/react/index.js\n  reggie-build explain backend app/__pycache__/main.cpython-311.pyc"
    )]
    Explain(explain::ExplainArgs),
    /// Before and after: what the build sends, what it needs, what is
    /// wasted and why, and how to fix it.
    #[command(
        after_help = "Examples:\n  reggie-build analyze . -f backend/Dockerfile\n  reggie-build analyze backend --json | jq .minimal\n  reggie-build analyze . -f backend/Dockerfile --write-ignore"
    )]
    Analyze(analyze::AnalyzeArgs),
    /// Fail when an image's context is over budget or would break the build
    /// (exit 0 all fit, 1 one does not, 2 usage or analysis error).
    #[command(
        after_help = "Examples:\n  reggie-build check                        # every image in reggie-build.toml\n  reggie-build check . -f backend/Dockerfile --max-size 20MB\n  reggie-build check --format github --baseline main-report.json\n\nExit codes: 0 every image fits, 1 one does not, 2 usage or analysis error."
    )]
    Check(check::CheckArgs),
    /// Write the build context as a tar stream.
    #[command(
        after_help = "Examples:\n  reggie-build context backend -o context.tar\n  reggie-build context . -f backend/Dockerfile -o - --compress gzip | wc -c\n  reggie-build context backend -o /dev/null --digest"
    )]
    Context(context_cmd::ContextCmdArgs),
    /// Build the image through the Docker daemon from the minimal context,
    /// and optionally push it.
    #[command(
        after_help = "Examples:\n  reggie-build image . -f backend/Dockerfile -t app:dev\n  reggie-build image . -f backend/Dockerfile -t 123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:v1 --push --create-repo\n  reggie-build image backend -t app --json | jq -c 'select(.event==\"step\")'"
    )]
    Image(image::ImageArgs),
}

/// Report formats of `analyze` and `check`.
#[derive(Debug, Clone, Copy, ValueEnum, Default, PartialEq, Eq)]
pub enum FormatArg {
    #[default]
    Human,
    Json,
    Markdown,
    Github,
    Sarif,
}

/// The builder whose rules to reproduce.
#[derive(Debug, Clone, Copy, ValueEnum, Default)]
pub enum BuilderArg {
    #[default]
    Buildkit,
    Classic,
}

/// Where the context is and how Docker would read it.
#[derive(Debug, Args)]
pub struct ContextArgs {
    /// The build context directory.
    #[arg(value_name = "PATH", default_value = ".")]
    pub path: PathBuf,
    /// The Dockerfile (default: PATH/Dockerfile).
    #[arg(short = 'f', long = "file", value_name = "DOCKERFILE")]
    pub file: Option<PathBuf>,
    /// Reproduce BuildKit's rules (default) or the classic builder's.
    #[arg(long, value_enum, default_value_t = BuilderArg::Buildkit)]
    pub builder: BuilderArg,
}

impl ContextArgs {
    pub fn spec(&self) -> ContextSpec {
        ContextSpec {
            root: self.path.clone(),
            dockerfile: self.file.clone(),
            builder: match self.builder {
                BuilderArg::Buildkit => Builder::BuildKit,
                BuilderArg::Classic => Builder::Classic,
            },
        }
    }
}

/// Parses arguments, runs the command, and returns the exit code.
pub fn run() -> i32 {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Ls(args) => ls::run(args),
        Command::Explain(args) => explain::run(args),
        Command::Context(args) => context_cmd::run(args),
        Command::Image(args) => image::run(args),
        Command::Analyze(args) => analyze::run(args),
        Command::Check(args) => check::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            if output::is_broken_pipe(&err) {
                return 0;
            }
            eprintln!("error: {err:#}");
            2
        }
    }
}
