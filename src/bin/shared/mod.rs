//! What both binaries parse and how both end: the global options, the
//! context and `image` arguments, logging, and an error's exit code.
//!
//! `reggie-build` parses `image`'s arguments (to check and document them)
//! and hands the command over, same arguments, to `reggie-build-image`,
//! which parses them again to run it. Each binary includes this file
//! (`#[path]`), and nothing else of the other: the image binary does not
//! compile the other commands, and every item here is used by both.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

use reggie_build::context::{Builder, ContextSpec};

pub mod image_args;
pub mod size_args;

/// `image --help`'s examples and daemon notes (both builds, both binaries,
/// show them).
macro_rules! image_help {
    () => {
        "Examples:\n  reggie-build image . -f backend/Dockerfile -t app:dev\n  reggie-build image . -f backend/Dockerfile -t 123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:v1 --push --create-repo\n  reggie-build image --affected --base origin/main --push   # the images of reggie-build.toml a change affects\n\nMore (secrets, ssh, outputs, caches, remote builders): docs/guide.md.\nDaemon: DOCKER_HOST (unix://, tcp:// with DOCKER_TLS_VERIFY/DOCKER_CERT_PATH, ssh://[USER@]HOST[:PORT] through `ssh HOST docker system dial-stdio`; REGGIE_SSH_COMMAND replaces `ssh`, e.g. \"ssh -F ./ssh_config\"), else DOCKER_CONTEXT or the docker config's current context."
    };
}

/// `size --help`'s examples (both binaries show them).
macro_rules! size_help {
    () => {
        "Examples:\n  docker save app:1 -o app.tar && reggie-build size app.tar -f backend/Dockerfile\n  reggie-build size app.tar --tree 3               # the entries of layer 3\n  reggie-build size 123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:v1 --from registry\n\nFiles and directories are read by every build (the lean one too); an image in the Docker daemon or a registry by the full build (reggie-build-image)."
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

/// The headings `--help` groups options under, the same names in every
/// command (and in the generated reference pages and man pages); those
/// of one command only are beside it (`check`'s "Budget", `affected`'s
/// "Git change").
pub mod heading {
    /// What is sent: the context directory, the Dockerfile, the config's
    /// images, the builder whose rules apply.
    pub const CONTEXT: &str = "Context";
    /// What the Dockerfile build is: stage, build args, platform, and for
    /// `image` how it runs.
    pub const BUILD: &str = "Build";
    /// What is printed or written, and where.
    pub const OUTPUT: &str = "Output";
    /// Pushing and registry credentials.
    pub const REGISTRY: &str = "Registry";
    /// A BuildKit engine reached through its Control API.
    pub const REMOTE: &str = "Remote builder";
    /// Several images of reggie-build.toml at once.
    pub const MANY: &str = "Several images";
}

/// Options every command takes (listed first, under "Options", as cargo
/// lists its own).
#[derive(Debug, Args)]
pub struct Globals {
    /// Colour: auto (on a terminal, unless NO_COLOR is set), always, never.
    #[arg(long, value_enum, global = true, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Less output: errors only.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// More log output (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// When to use colour.
#[derive(Debug, Clone, Copy, ValueEnum, Default)]
pub enum ColorChoice {
    #[default]
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    /// Colour on a stream that is (or is not) a terminal: on a terminal
    /// unless `NO_COLOR` is set, or as forced.
    pub fn enabled_for(self, terminal: bool) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && terminal
            }
        }
    }
}

/// The builder whose rules to reproduce.
#[derive(Debug, Clone, Copy, ValueEnum, Default)]
pub enum BuilderArg {
    #[default]
    Buildkit,
    Classic,
}

impl From<BuilderArg> for Builder {
    fn from(arg: BuilderArg) -> Builder {
        match arg {
            BuilderArg::Buildkit => Builder::BuildKit,
            BuilderArg::Classic => Builder::Classic,
        }
    }
}

/// Where the context is and how Docker would read it.
#[derive(Debug, Args)]
pub struct ContextArgs {
    /// The build context directory.
    #[arg(value_name = "PATH", default_value = ".")]
    pub path: PathBuf,
    /// The Dockerfile (default: PATH/Dockerfile).
    #[arg(short = 'f', long = "file", value_name = "DOCKERFILE")]
    #[arg(help_heading = heading::CONTEXT)]
    pub file: Option<PathBuf>,
    /// Reproduce BuildKit's rules (default) or the classic builder's; for
    /// `image`, also the daemon's builder that runs the build.
    #[arg(long, value_enum, default_value_t = BuilderArg::Buildkit)]
    #[arg(help_heading = heading::CONTEXT)]
    pub builder: BuilderArg,
}

impl ContextArgs {
    pub fn spec(&self) -> ContextSpec {
        ContextSpec {
            root: self.path.clone(),
            dockerfile: self.file.clone(),
            builder: self.builder.into(),
        }
    }
}

/// `--build-arg` values as `docker build` reads them: `KEY=VALUE`, or `KEY`
/// alone for the variable's value, the argument dropped when it is unset.
/// Every command that takes `--build-arg` parses it here, so `analyze`
/// plans exactly what `image` builds.
pub fn parse_build_args(raw: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut build_args = BTreeMap::new();
    for arg in raw {
        match arg.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                build_args.insert(k.to_string(), v.to_string());
            }
            Some(_) => anyhow::bail!(
                "--build-arg {}: the name before `=` is empty",
                reggie_build::text::excerpt(arg)
            ),
            None => {
                if let Ok(v) = std::env::var(arg) {
                    build_args.insert(arg.clone(), v);
                }
            }
        }
    }
    Ok(build_args)
}

/// Logs go to stderr through `tracing`: warnings by default, `-v` for
/// more, `-q` for errors only, and `RUST_LOG` overrides all of it.
pub fn init_logging(globals: &Globals) {
    use tracing::level_filters::LevelFilter;
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::prelude::*;
    let default = match (globals.quiet, globals.verbose) {
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
                .with_ansi(globals.color.enabled_for(std::io::stderr().is_terminal()))
                .with_target(false),
        )
        .with(filter)
        .try_init();
}

/// A command's exit code: its own, 0 for a closed stdout
/// (`reggie-build ls | head` is not a failure), 2 with the error printed.
pub fn exit_code(result: anyhow::Result<i32>) -> i32 {
    match result {
        Ok(code) => code,
        // A reader that went away (`| head`) cut the output: not a
        // success. Silent, with the code a process killed by SIGPIPE
        // reports (as cat, find or git give), so `set -o pipefail` scripts
        // see it and `| head` prints no noise.
        Err(err) if is_broken_pipe(&err) => BROKEN_PIPE_EXIT,
        Err(err) => {
            tracing::debug!(error = ?err, "command failed");
            eprintln!("error: {}", error_text(&err));
            2
        }
    }
}

/// The exit code when stdout's reader went away: 128 + SIGPIPE, what a
/// shell reports for a process the signal killed.
pub const BROKEN_PIPE_EXIT: i32 = 141;

/// Writes `bytes` to stdout and flushes them: a failure (a full disk, a
/// closed pipe) is an error, never a panic as `print!` would make it.
pub fn print_stdout_bytes(bytes: &[u8]) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .context("writing to stdout")
}

/// Exits after a `--help`, `--version` or argument error clap reported:
/// clap's own `exit` ignores a failed write to stdout (a full disk, a
/// closed pipe) and says 0.
pub fn exit_for(e: clap::Error) -> ! {
    if e.use_stderr() {
        e.exit()
    }
    let code = match e.print() {
        Ok(()) => e.exit_code(),
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => BROKEN_PIPE_EXIT,
        Err(err) => {
            eprintln!("error: writing to stdout: {err}");
            2
        }
    };
    std::process::exit(code)
}

/// Whether an error is a closed stdout: the output was cut, and the run
/// exits [`BROKEN_PIPE_EXIT`] without a message.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// An error and its causes on one line each way `{:#}` prints them, but
/// a cause already quoted in the message is not repeated, control
/// characters from file names are escaped (kept: the message's own line
/// breaks), and the whole stays a few KB.
fn error_text(err: &anyhow::Error) -> String {
    let out = reggie_build::error_chain::join(err.as_ref());
    let escaped: Vec<_> = out.split('\n').map(reggie_build::text::escape).collect();
    reggie_build::text::bounded(&escaped.join("\n"), 4096).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_args_as_docker_reads_them() {
        std::env::set_var("REGGIE_TEST_BUILD_ARG_X", "from-env");
        let a = parse_build_args(&[
            "A=1".into(),
            "B=".into(),
            "C=x=y".into(),
            "REGGIE_TEST_BUILD_ARG_X".into(),
            "REGGIE_TEST_UNSET_Y".into(),
        ])
        .unwrap();
        assert_eq!(a.get("A").map(String::as_str), Some("1"));
        assert_eq!(a.get("B").map(String::as_str), Some(""));
        assert_eq!(a.get("C").map(String::as_str), Some("x=y"));
        assert_eq!(
            a.get("REGGIE_TEST_BUILD_ARG_X").map(String::as_str),
            Some("from-env")
        );
        assert!(!a.contains_key("REGGIE_TEST_UNSET_Y"));
        let err = parse_build_args(&["=v".into()]).unwrap_err().to_string();
        assert!(err.contains("the name before `=` is empty"), "{err}");
    }
}
