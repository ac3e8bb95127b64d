//! The `reggie-build` command line; all logic lives in the library.

mod cli;

fn main() {
    std::process::exit(cli::run());
}
