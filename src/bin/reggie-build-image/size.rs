//! `reggie-build size IMAGE` for an image in the Docker daemon or a
//! registry: `ops::size` reads it, `cli::size` prints it.

use std::io::Read;

use anyhow::Context as _;

use reggie_build::inspect::layer::Shared;
use reggie_build::ops::size::{RemoteOptions, Where};
use reggie_build::publish::Credentials;

use crate::shared::size_args::{print, with_progress, FromArg, SizeArgs};

pub fn run(args: &SizeArgs, quiet: bool) -> anyhow::Result<i32> {
    let options = args.options()?;
    let credentials = match (&args.username, args.password_stdin) {
        (Some(user), true) => {
            let mut secret = String::new();
            std::io::stdin()
                .read_to_string(&mut secret)
                .context("reading the password from stdin")?;
            Some(Credentials {
                username: user.clone(),
                secret: secret.trim_end_matches(['\n', '\r']).to_string(),
                source: "--password-stdin".into(),
            })
        }
        _ => None,
    };
    let remote = RemoteOptions {
        reference: args.source.clone(),
        from: match args.from {
            Some(FromArg::Daemon) => Where::Daemon,
            Some(FromArg::Registry) => Where::Registry,
            None => Where::Auto,
        },
        registry_endpoint: args.registry_endpoint.clone(),
        credentials,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let shared = std::sync::Arc::new(Shared::default());
    let inspected = with_progress(&shared, None, quiet, || {
        runtime.block_on(reggie_build::ops::size::size(&remote, &options, &shared))
    })?;
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    print(&inspected, args)
}
