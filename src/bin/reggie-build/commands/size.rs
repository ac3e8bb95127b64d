//! `reggie-build size`: what an image weighs, layer by layer, by
//! Dockerfile line, and its waste with the fix. Files and directories
//! (`docker save` archives, OCI layouts, `-` for a stream) are read here,
//! in the lean build too; an image in the daemon or a registry is read by
//! `reggie-build-image` (the full build), which this hands over to.

use std::path::PathBuf;

use reggie_build::inspect::{self, layer::Shared};

use crate::shared::size_args::{print, with_progress, SizeArgs};

pub fn run(args: SizeArgs) -> anyhow::Result<i32> {
    let local = args.source == "-" || std::path::Path::new(&args.source).exists();
    if !local {
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
    let inspected = with_progress(&shared, total, crate::output::quiet(), || {
        inspect::inspect_path(&path, &options, &shared)
    })?;
    print(&inspected, &args)
}

/// An image in the daemon or a registry: read by `reggie-build-image`,
/// as `image` is.
#[cfg(feature = "image")]
fn remote(_: SizeArgs) -> anyhow::Result<i32> {
    super::image::hand_over()
}

/// In a lean build: reading the daemon or a registry needs the full
/// build; a saved archive does not.
#[cfg(not(feature = "image"))]
fn remote(args: SizeArgs) -> anyhow::Result<i32> {
    anyhow::bail!(
        "{} is not a file or directory, and reading an image from the Docker daemon or a registry is not in this build: `docker save {} -o image.tar` and run `reggie-build size image.tar`, or use the full build.\n{}",
        reggie_build::text::excerpt(&args.source),
        reggie_build::text::shell_word(&args.source),
        full_build!()
    )
}
