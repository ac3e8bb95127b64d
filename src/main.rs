//! The `reggie-build` command line; all logic lives in the library.

mod cli;

#[cfg(feature = "image")]
use std::os::unix::process::CommandExt;

/// The binary that runs `image`, expected beside this one.
#[cfg(feature = "image")]
const IMAGE_BINARY: &str = "reggie-build-image";

fn main() {
    std::process::exit(cli::run(hand_over_image, hand_over_size));
}

/// `reggie-build image`: replaces this process with `reggie-build-image`
/// and the same arguments, so that signals, the terminal and the exit
/// code are the build's own.
#[cfg(feature = "image")]
fn hand_over_image(_: cli::image_args::ImageArgs) -> anyhow::Result<i32> {
    hand_over()
}

/// `reggie-build size IMAGE` for an image in the daemon or a registry:
/// handed over as `image` is.
#[cfg(feature = "image")]
fn hand_over_size(_: cli::size::SizeArgs) -> anyhow::Result<i32> {
    hand_over()
}

#[cfg(feature = "image")]
fn hand_over() -> anyhow::Result<i32> {
    let exe = std::env::current_exe()
        .map_err(|e| anyhow::anyhow!("cannot locate the reggie-build binary: {e}"))?;
    let image = exe.with_file_name(IMAGE_BINARY);
    let err = std::process::Command::new(&image)
        .args(std::env::args_os().skip(1))
        .exec();
    anyhow::bail!(
        "cannot run {}: {err}. `reggie-build image` runs the {IMAGE_BINARY} binary installed \
         beside reggie-build: install both (cargo install installs every binary of the package; \
         in a checkout, `cargo build --bins`, or `cargo run --bin {IMAGE_BINARY} -- image ...`)",
        image.display()
    )
}

/// `reggie-build image` in a lean build (`--no-default-features`, the pip
/// wheel): the image builder is not in it, so say how to get the build
/// that has it rather than run a `reggie-build-image` of another build
/// that may sit beside it.
#[cfg(not(feature = "image"))]
fn hand_over_image(_: cli::image_args::ImageArgs) -> anyhow::Result<i32> {
    anyhow::bail!(concat!(
        "`reggie-build image` is not in this build.\n",
        cli::full_build!()
    ))
}

/// `reggie-build size IMAGE` in a lean build: reading the daemon or a
/// registry needs the full build; a saved archive does not.
#[cfg(not(feature = "image"))]
fn hand_over_size(args: cli::size::SizeArgs) -> anyhow::Result<i32> {
    anyhow::bail!(
        "{} is not a file or directory, and reading an image from the Docker daemon or a registry is not in this build: `docker save {} -o image.tar` and run `reggie-build size image.tar`, or use the full build.\n{}",
        reggie_build::text::excerpt(&args.source),
        reggie_build::text::shell_word(&args.source),
        cli::full_build!()
    )
}
