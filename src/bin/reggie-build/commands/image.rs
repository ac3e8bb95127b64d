//! `reggie-build image`: runs in the `reggie-build-image` binary beside
//! this one, which has the Docker, BuildKit and AWS stacks; this binary
//! only checks and documents the arguments (`src/bin/shared/image_args.rs`).

#[cfg(feature = "image")]
use std::os::unix::process::CommandExt;

use crate::shared::image_args::ImageArgs;

/// The binary that runs `image`, expected beside this one.
#[cfg(feature = "image")]
const IMAGE_BINARY: &str = "reggie-build-image";

/// Replaces this process with `reggie-build-image` and the same
/// arguments, so that signals, the terminal and the exit code are the
/// build's own.
#[cfg(feature = "image")]
pub fn run(_: ImageArgs) -> anyhow::Result<i32> {
    hand_over()
}

/// Runs this command line in `reggie-build-image` instead (`image`, and
/// `size` of an image in the daemon or a registry).
#[cfg(feature = "image")]
pub fn hand_over() -> anyhow::Result<i32> {
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

/// In a lean build (`--no-default-features`, the pip wheel) the image
/// builder is not in it, so say how to get the build that has it rather
/// than run a `reggie-build-image` of another build that may sit beside it.
#[cfg(not(feature = "image"))]
pub fn run(_: ImageArgs) -> anyhow::Result<i32> {
    anyhow::bail!(concat!(
        "`reggie-build image` is not in this build.\n",
        full_build!()
    ))
}
