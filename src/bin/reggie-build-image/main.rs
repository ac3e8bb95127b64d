//! `reggie-build-image`: runs `reggie-build image`, which hands over to
//! this binary with the same arguments; it must sit beside `reggie-build`
//! (`cargo install` puts both there). It carries the Docker, BuildKit and
//! AWS stacks that the other commands never load, and parses only what
//! `image` takes: the global options and `image`'s arguments
//! (`src/bin/shared`, the same definitions `reggie-build` checks them
//! with).

#[macro_use]
#[path = "../shared/mod.rs"]
mod shared;

mod image;
mod interrupt;
mod live;
mod many;
mod printer;
mod size;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use shared::image_args::ImageArgs;
use shared::Globals;

/// Docker build context optimizer and image builder for monorepos.
#[derive(Debug, Parser)]
#[command(name = "reggie-build", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    globals: Globals,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build the image through the Docker daemon from the minimal context,
    /// and optionally push it.
    #[command(after_help = image_help!())]
    Image(Box<ImageArgs>),
    /// What an image weighs, layer by layer, by Dockerfile line: the waste
    /// (hidden, duplicated, caches, toolchains) found exactly, with the fix.
    #[command(after_help = size_help!())]
    Size(Box<shared::size_args::SizeArgs>),
}

fn main() {
    let cli = Cli::try_parse().unwrap_or_else(|e| shared::exit_for(e));
    shared::init_logging(&cli.globals);
    let result = match cli.command {
        Command::Image(args) => run(&args),
        Command::Size(args) => size::run(&args, cli.globals.quiet),
    };
    std::process::exit(shared::exit_code(result));
}

/// One image, or the images of reggie-build.toml (`--all`, `--affected`),
/// on a single-threaded runtime.
fn run(args: &ImageArgs) -> anyhow::Result<i32> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let code = runtime.block_on(async {
        if args.all || args.affected {
            many::run(args).await
        } else {
            image::run(args).await
        }
    });
    // The upload thread of a cancelled build ends as soon as it sees the
    // body dropped; do not wait for anything else.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    code
}
