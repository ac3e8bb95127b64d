//! Argument parsing and dispatch. Each command is a thin function over the
//! library in its own module.
//!
//! Two binaries share this module: `reggie-build` runs every command but
//! `image`, which it hands to `reggie-build-image` beside it (the Docker,
//! BuildKit and AWS stacks are most of the code and of the start-up's
//! relocations, and `ls`, `context` and `check` run in a few
//! milliseconds); `reggie-build-image` runs everything.

mod affected;
mod analyze;
mod check;
mod context_cmd;
mod digest;
mod discover;
mod explain;
pub mod image_args;
mod ls;
pub mod output;
pub mod plan_args;
mod targets;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use reggie_build::context::{Builder, ContextSpec};

/// `image --help`'s examples and daemon notes (both builds show them).
macro_rules! image_help {
    () => {
        "Examples:\n  reggie-build image . -f backend/Dockerfile -t app:dev\n  reggie-build image . -f backend/Dockerfile -t 123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:v1 --push --create-repo\n  reggie-build image backend -t app --json | jq -c 'select(.event==\"step\")'\n  DOCKER_HOST=ssh://me@build-host reggie-build image . -f backend/Dockerfile -t app\n  reggie-build image . -f backend/Dockerfile -t app --secret id=npm,src=$HOME/.npmrc\n  reggie-build image . -f backend/Dockerfile -t app --ssh default=$HOME/.ssh/id_ed25519\n  reggie-build image . -f backend/Dockerfile -o type=local,dest=out\n  reggie-build image . -f backend/Dockerfile -t registry.example/app:v1 --push --cache-to type=inline --cache-from registry.example/app:v1\n  reggie-build image . -f backend/Dockerfile -t registry.example/app:v1 --push --buildkit-addr tcp://buildkitd:1234\n  reggie-build image . -f backend/Dockerfile -t registry.example/app:v1 --push --buildkit-addr ssh://me@build-host --provenance=mode=max\n  reggie-build image . -f backend/Dockerfile -t app --buildkit-addr docker-context://build-box\n  reggie-build image --all --jobs 2                 # every image of reggie-build.toml\n  reggie-build image --affected --base origin/main --push\n  reggie-build image --all --push --jobs 4 --buildkit-addr tcp://bk-0:1234 --buildkit-addr tcp://bk-1:1234   # a pool of builders\n\nDaemon: DOCKER_HOST (unix://, tcp:// with DOCKER_TLS_VERIFY/DOCKER_CERT_PATH, ssh://[USER@]HOST[:PORT] through `ssh HOST docker system dial-stdio`; REGGIE_SSH_COMMAND replaces `ssh`, e.g. \"ssh -F ./ssh_config\"), else DOCKER_CONTEXT or the docker config's current context."
    };
}

/// What the lean build (`--no-default-features`: the pip wheel, the
/// container image) says about `image`, in its help and its error: how to
/// get the full build, which has it. The URL is the package's
/// `repository`, the installer the one `dist` publishes with each release.
#[cfg(not(feature = "image"))]
macro_rules! full_build {
    () => {
        concat!(
            "This is the lean build (the pip wheel, the container image, or `cargo build --no-default-features`): it has the analysis commands, not the image builder. The full build installs reggie-build and reggie-build-image together:\n",
            "  curl -LsSf ",
            env!("CARGO_PKG_REPOSITORY"),
            "/releases/download/v",
            env!("CARGO_PKG_VERSION"),
            "/reggie-build-installer.sh | sh\n",
            "  cargo install --locked --git ",
            env!("CARGO_PKG_REPOSITORY"),
            " reggie-build\n",
            "  cargo install --locked --path .      # in a checkout of the repository"
        )
    };
}
#[cfg(not(feature = "image"))]
pub(crate) use full_build;

/// Docker build context optimizer and image builder for monorepos.
#[derive(Debug, Parser)]
#[command(name = "reggie-build", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    globals: Globals,
}

/// Options every command takes.
#[derive(Debug, Args)]
struct Globals {
    /// Colour: auto (on a terminal, unless NO_COLOR is set), always, never.
    #[arg(long, value_enum, global = true, default_value_t = analyze::ColorChoice::Auto)]
    color: analyze::ColorChoice,
    /// Less output: errors only.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// More log output (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List every file Docker would send as the build context.
    #[command(
        after_help = "Examples:\n  reggie-build ls .\n  reggie-build ls . -f backend/Dockerfile\n  reggie-build ls backend --builder classic | wc -l\n  reggie-build ls -0 . | xargs -0 du -cb | tail -1"
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
        after_help = "Examples:\n  reggie-build analyze . -f backend/Dockerfile\n  reggie-build analyze backend --json | jq .minimal\n  reggie-build analyze . -f backend/Dockerfile --write-ignore\n\nThe walk runs on every core (at most 8); REGGIE_WALK_THREADS=N sets the number of threads (1: one)."
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
    #[cfg_attr(
        feature = "image",
        command(after_help = concat!(
            image_help!(),
            "\n\nThe build runs in the reggie-build-image binary installed beside reggie-build (cargo install installs both)."
        ))
    )]
    #[cfg_attr(
        not(feature = "image"),
        command(
            about = "Build the image through the Docker daemon: not in this lean build (`reggie-build image --help` says how to get the full one)",
            after_help = concat!(image_help!(), "\n\n", full_build!())
        )
    )]
    Image(Box<image_args::ImageArgs>),
    /// Find the images the repository builds (Dockerfiles, docker compose
    /// files, SST configs) and optionally write them to reggie-build.toml.
    #[command(
        after_help = "Examples:\n  reggie-build discover\n  reggie-build discover path/to/repo --json | jq '.[].context'\n  reggie-build discover . --write"
    )]
    Discover(discover::DiscoverArgs),
    /// Which images a git change affects, and the first Dockerfile step
    /// whose build cache it busts (exit 0 either way, 2 on errors).
    #[command(
        after_help = "Examples:\n  reggie-build affected                               # HEAD against HEAD~1\n  reggie-build affected --base origin/main --format markdown\n  reggie-build affected --base origin/main --worktree   # uncommitted changes too\n  reggie-build affected --base origin/main --format github   # matrix=... to $GITHUB_OUTPUT\n  reggie-build affected --format json | jq -r '.images[] | select(.affected) | .name'\n\nA shallow clone needs the base commit: `git fetch --deepen=50`, or `fetch-depth: 0` in actions/checkout.\nExit codes: 0 whether or not an image is affected, 2 on errors."
    )]
    Affected(affected::AffectedArgs),
    /// The content digest of what a build reads: the minimal context, the
    /// Dockerfile, build args, target and platform (stable across clones).
    #[command(
        after_help = "Examples:\n  reggie-build digest --image reggie-api\n  reggie-build digest backend -f backend/Dockerfile --build-arg PYTHON=3.12\n  reggie-build digest                  # every image of reggie-build.toml, `DIGEST  NAME` lines\n  reggie-build digest --image web --json | jq -r .digest\n\nMtimes, owners and files the build cannot read do not count; permission bits do (they are sent)."
    )]
    Digest(digest::DigestArgs),
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  reggie-build completions bash > /etc/bash_completion.d/reggie-build\n  reggie-build completions zsh > \"${fpath[1]}/_reggie-build\"\n  reggie-build completions fish > ~/.config/fish/completions/reggie-build.fish"
    )]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
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
    /// One self-contained HTML page (a treemap of the context for
    /// `analyze`, the budgets for `check`).
    Html,
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
    /// Reproduce BuildKit's rules (default) or the classic builder's; for
    /// `image`, also the daemon's builder that runs the build.
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

/// Runs `reggie-build image`: in-process, or by handing over to the
/// binary that has the Docker stack.
pub type ImageCommand = fn(image_args::ImageArgs) -> anyhow::Result<i32>;

/// Parses arguments, runs the command, and returns the exit code.
pub fn run(image: ImageCommand) -> i32 {
    let cli = parse_args();
    let Globals {
        color,
        quiet,
        verbose,
    } = cli.globals;
    init_logging(quiet, verbose, color.enabled_for_stderr());
    output::set_color(color);
    output::set_quiet(quiet);
    let result = match cli.command {
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "reggie-build", &mut std::io::stdout());
            Ok(0)
        }
        Command::Ls(args) => ls::run(args),
        Command::Explain(args) => explain::run(args),
        Command::Context(args) => context_cmd::run(args),
        Command::Image(args) => image(*args),
        Command::Analyze(args) => analyze::run(args),
        Command::Check(args) => check::run(args),
        Command::Discover(args) => discover::run(args),
        Command::Affected(args) => affected::run(args),
        Command::Digest(args) => digest::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            if output::is_broken_pipe(&err) {
                return 0;
            }
            tracing::debug!(error = ?err, "command failed");
            eprintln!("error: {}", error_text(&err));
            2
        }
    }
}

/// An error and its causes on one line each way `{:#}` prints them, but
/// a cause already quoted in the message is not repeated, control
/// characters from file names are escaped (kept: the message's own line
/// breaks), and the whole stays a few KB.
fn error_text(err: &anyhow::Error) -> String {
    let mut out = err.to_string();
    for cause in err.chain().skip(1) {
        let cause = cause.to_string();
        if !out.contains(&cause) {
            out.push_str(": ");
            out.push_str(&cause);
        }
    }
    let escaped: Vec<_> = out.split('\n').map(reggie_build::text::escape).collect();
    reggie_build::text::bounded(&escaped.join("\n"), 4096).into_owned()
}

/// Parses the command line as `Cli::parse` does.
fn parse_args() -> Cli {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    parse_quick(&args).unwrap_or_else(|| parse_full(&args))
}

/// The whole command tree. It stays allocated: freeing it took as long as
/// reading an ignore file, and the process ends soon after anyway.
fn parse_full(args: &[std::ffi::OsString]) -> Cli {
    use clap::{CommandFactory, FromArgMatches};
    let mut cmd = Cli::command();
    let parsed = cmd
        .try_get_matches_from_mut(args)
        .and_then(|mut matches| Cli::from_arg_matches_mut(&mut matches));
    match parsed {
        Ok(cli) => {
            std::mem::forget(cmd);
            cli
        }
        Err(e) => e.format(&mut cmd).exit(),
    }
}

/// The millisecond commands named first (`reggie-build ls ...`), parsed
/// with only their own arguments built: clap builds every subcommand of
/// the full tree first, a tenth of a small `context` run. `None` (help,
/// errors, anything else) leaves it to [`parse_full`], so messages are the
/// full tree's.
fn parse_quick(args: &[std::ffi::OsString]) -> Option<Cli> {
    fn one<A: clap::Args + clap::FromArgMatches>(
        args: &[std::ffi::OsString],
        name: &'static str,
        wrap: fn(A) -> Command,
    ) -> Option<Cli> {
        use clap::FromArgMatches;
        let mut cmd = Globals::augment_args(clap::Command::new("reggie-build"))
            .subcommand(A::augment_args(clap::Command::new(name)));
        let mut matches = cmd.try_get_matches_from_mut(args).ok()?;
        let globals = Globals::from_arg_matches_mut(&mut matches).ok()?;
        let (_, mut sub) = matches.remove_subcommand()?;
        let command = wrap(A::from_arg_matches_mut(&mut sub).ok()?);
        std::mem::forget(cmd);
        Some(Cli { command, globals })
    }
    match args.get(1)?.to_str()? {
        "ls" => one(args, "ls", Command::Ls),
        "context" => one(args, "context", Command::Context),
        "explain" => one(args, "explain", Command::Explain),
        "check" => one(args, "check", Command::Check),
        _ => None,
    }
}

/// Logs go to stderr through `tracing`: warnings by default, `-v` for
/// more, `-q` for errors only, and `RUST_LOG` overrides all of it.
fn init_logging(quiet: bool, verbose: u8, color: bool) {
    use tracing::level_filters::LevelFilter;
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::prelude::*;
    let default = match (quiet, verbose) {
        (true, _) => LevelFilter::ERROR,
        (false, 0) => LevelFilter::WARN,
        (false, 1) => LevelFilter::INFO,
        (false, 2) => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    };
    // `Targets` (level per target, `RUST_LOG=reggie_build=debug,warn`)
    // rather than `EnvFilter`: the latter pulls in regex-automata's full DFA
    // builder, which the ignore patterns' regexes then use too, and its
    // construction was a tenth of a small context's run time.
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|spec| spec.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(default));
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(color)
                .with_target(false),
        )
        .with(filter)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The quick parse gives exactly what the full tree gives, and leaves
    /// help and errors to the full tree.
    #[test]
    fn quick_parse_equals_full_parse() {
        let argvs: &[&[&str]] = &[
            &["ls"],
            &[
                "ls",
                "backend",
                "-f",
                "backend/Dockerfile",
                "--builder",
                "classic",
            ],
            &["ls", "-q", "."],
            &["ls", "-0", "--minimal", "."],
            &["ls", ".", "-vv", "--color", "never"],
            &["context", "backend", "-o", "/dev/null"],
            &[
                "context",
                ".",
                "-o",
                "-",
                "--compress",
                "gzip",
                "--digest",
                "--reproducible",
            ],
            &["explain", ".", "a/b", "c"],
            &["check", "--max-size", "20MB", "--format", "github"],
            &["check", ".", "-f", "backend/Dockerfile", "-q"],
        ];
        for argv in argvs {
            let args: Vec<std::ffi::OsString> = std::iter::once("reggie-build")
                .chain(argv.iter().copied())
                .map(Into::into)
                .collect();
            let quick = parse_quick(&args).unwrap_or_else(|| panic!("{argv:?} not parsed quickly"));
            let full = parse_full(&args);
            assert_eq!(format!("{quick:?}"), format!("{full:?}"), "{argv:?}");
        }
        for argv in [
            &["ls", "--help"][..],
            &["context", "-o"],
            &["ls", "-q", "-v"],
            &["context", "--bogus"],
            &["analyze", "."],
            &["-q", "ls"],
            &["--version"],
        ] {
            let args: Vec<std::ffi::OsString> = std::iter::once("reggie-build")
                .chain(argv.iter().copied())
                .map(Into::into)
                .collect();
            assert!(parse_quick(&args).is_none(), "{argv:?}");
        }
    }
}
