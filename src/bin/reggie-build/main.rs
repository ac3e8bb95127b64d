//! `reggie-build`: parses the command line and runs a command over the
//! library; every command is a thin module in `commands/`.
//!
//! `image` is handed over, same arguments, to the `reggie-build-image`
//! binary beside this one (the Docker, BuildKit and AWS stacks are most of
//! the code and of the start-up's relocations, and `ls`, `context` and
//! `check` run in a few milliseconds). The arguments both binaries parse
//! are in `src/bin/shared`.

#[macro_use]
#[path = "../shared/mod.rs"]
mod shared;

mod commands;
#[cfg(feature = "image")]
mod generate;
mod output;
mod plan_args;
mod targets;

use clap::{Args, Parser, Subcommand};

use commands::{affected, analyze, check, context, digest, discover, explain, image, ls, size};
use shared::image_args::ImageArgs;
use shared::Globals;

/// Docker build context optimizer and image builder for monorepos.
#[derive(Debug, Parser)]
#[command(name = "reggie-build", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    globals: Globals,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List every file Docker would send as the build context.
    #[command(
        after_help = "Examples:\n  reggie-build ls . -f backend/Dockerfile --minimal     # what the build can read\n  reggie-build ls backend --builder classic | wc -l\n  reggie-build ls -0 . -f backend/Dockerfile | xargs -0 du -cb | tail -1"
    )]
    Ls(ls::LsArgs),
    /// Say whether files are sent, and which ignore-file line decided.
    #[command(
        after_help = "Examples:\n  reggie-build explain backend app/__pycache__/main.cpython-311.pyc\n  reggie-build explain . node_modules/turbo/package.json -f backend/Dockerfile"
    )]
    Explain(explain::ExplainArgs),
    /// Before and after: what the build sends, what it needs, what is
    /// wasted and why, and how to fix it.
    #[command(
        after_help = "Examples:\n  reggie-build analyze . -f backend/Dockerfile\n  reggie-build analyze . -f backend/Dockerfile --format html -o report.html\n  reggie-build analyze backend --json | jq .minimal\n\nThe walk runs on every core (at most 8); REGGIE_WALK_THREADS=N sets the number of threads (1: one)."
    )]
    Analyze(analyze::AnalyzeArgs),
    /// Fail when an image's context is over budget or would break the build
    /// (exit 0 all fit, 1 one does not, 2 usage or analysis error).
    #[command(
        after_help = "Examples:\n  reggie-build check . -f backend/Dockerfile --max-size 20MB\n  reggie-build check                        # every image in reggie-build.toml\n  reggie-build check --format github --baseline main-report.json\n\nExit codes: 0 every image fits, 1 one does not, 2 usage or analysis error."
    )]
    Check(check::CheckArgs),
    /// Write the build context as a tar stream.
    #[command(
        after_help = "Examples:\n  reggie-build context backend -o context.tar\n  reggie-build context . -f backend/Dockerfile -o - --compress gzip | wc -c\n  reggie-build context backend -o /dev/null --digest"
    )]
    Context(context::ContextCmdArgs),
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
    Image(Box<ImageArgs>),
    /// Find the images the repository builds (Dockerfiles, docker compose
    /// files, SST configs) and optionally write them to reggie-build.toml.
    #[command(
        after_help = "Examples:\n  reggie-build discover\n  reggie-build discover . --json | jq '.[].context'\n  reggie-build discover . --write"
    )]
    Discover(discover::DiscoverArgs),
    /// Which images a git change affects, and the first Dockerfile step
    /// whose build cache it busts (exit 0 either way, 2 on errors).
    #[command(
        after_help = "Examples:\n  reggie-build affected                               # HEAD against HEAD~1\n  reggie-build affected --base origin/main --worktree   # uncommitted changes too\n  reggie-build affected --base origin/main --format github   # matrix=... to $GITHUB_OUTPUT\n\nA shallow clone needs the base commit: `git fetch --deepen=50`, or `fetch-depth: 0` in actions/checkout.\nExit codes: 0 whether or not an image is affected, 2 on errors."
    )]
    Affected(affected::AffectedArgs),
    /// The content digest of what a build reads: the minimal context, the
    /// Dockerfile, build args, target and platform (stable across clones).
    #[command(
        after_help = "Examples:\n  reggie-build digest . -f backend/Dockerfile\n  reggie-build digest --image reggie-api --json | jq -r .digest\n  reggie-build digest                  # every image of reggie-build.toml, `DIGEST  NAME` lines\n\nMtimes, owners and files the build cannot read do not count; permission bits do (they are sent)."
    )]
    Digest(digest::DigestArgs),
    /// What an image weighs, layer by layer, by Dockerfile line: the waste
    /// (hidden, duplicated, caches, toolchains) found exactly, with the fix.
    #[command(after_help = size_help!())]
    Size(Box<shared::size_args::SizeArgs>),
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  reggie-build completions bash > /etc/bash_completion.d/reggie-build\n  reggie-build completions zsh > \"${fpath[1]}/_reggie-build\"\n  reggie-build completions fish > ~/.config/fish/completions/reggie-build.fish"
    )]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

fn main() {
    // Not a command of the tree (completions and man pages would offer
    // it): the maintainers' generator of those very documents.
    #[cfg(feature = "image")]
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == generate::NAME)
    {
        let code = shared::exit_code(generate::run(<Cli as clap::CommandFactory>::command()));
        std::process::exit(code);
    }
    let cli = parse_args();
    shared::init_logging(&cli.globals);
    output::set_color(cli.globals.color);
    output::set_quiet(cli.globals.quiet);
    let result = match cli.command {
        Command::Completions { shell } => {
            // Into memory first: clap_complete panics when its writer
            // fails (a full or closed stdout).
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut cmd, "reggie-build", &mut script);
            shared::print_stdout_bytes(&script).map(|()| 0)
        }
        Command::Ls(args) => ls::run(args),
        Command::Explain(args) => explain::run(args),
        Command::Context(args) => context::run(args),
        Command::Image(args) => image::run(*args),
        Command::Analyze(args) => analyze::run(args),
        Command::Check(args) => check::run(args),
        Command::Discover(args) => discover::run(args),
        Command::Affected(args) => affected::run(args),
        Command::Digest(args) => digest::run(args),
        Command::Size(args) => size::run(*args),
    };
    std::process::exit(shared::exit_code(result));
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
        Err(e) => shared::exit_for(e.format(&mut cmd)),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every option of a command sits under a heading of `--help` (context,
    /// build, output...), but the global ones and help, which `--help`
    /// lists first under "Options".
    #[test]
    fn every_option_has_a_heading() {
        let mut cli = <Cli as clap::CommandFactory>::command();
        cli.build();
        for cmd in cli.get_subcommands() {
            for arg in cmd.get_arguments() {
                let general = arg.is_global_set() || arg.get_id() == "help" || arg.is_positional();
                assert!(
                    general || arg.get_help_heading().is_some(),
                    "`{} --{}` has no help_heading (src/bin/shared/mod.rs, `heading`)",
                    cmd.get_name(),
                    arg.get_id()
                );
            }
        }
    }

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
