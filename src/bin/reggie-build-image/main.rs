//! `reggie-build-image`: the `reggie-build` command line with `image` run
//! in-process. `reggie-build image` hands over to this binary, which must
//! sit beside `reggie-build` (`cargo install` puts both there); it carries
//! the Docker, BuildKit and AWS stacks that the other commands never load.

#[path = "../../cli/mod.rs"]
mod cli;
mod image;
mod live;
mod many;
mod size;

fn main() {
    std::process::exit(cli::run(image::run, size::run));
}
