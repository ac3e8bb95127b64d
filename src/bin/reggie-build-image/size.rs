//! `reggie-build size IMAGE` for an image in the Docker daemon or a
//! registry: `ops::size` reads it, `cli::size` prints it.

use std::io::Read;

use anyhow::Context as _;

use reggie_build::inspect::layer::Shared;
use reggie_build::ops::size::{RemoteOptions, Where};
use reggie_build::publish::Credentials;

use reggie_build::ops::prove::ProveOptions;

use crate::shared::size_args::{print, with_progress, FromArg, SizeArgs, SizeFormat};

pub fn run(args: &SizeArgs, quiet: bool) -> anyhow::Result<i32> {
    if args.prove {
        return prove(args, quiet);
    }
    let options = args.options()?;
    let budgets = args.budgets(quiet)?;
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
    print(&inspected, args, &budgets)
}

/// `size --prove`: `ops::prove` builds and measures; this prints.
fn prove(args: &SizeArgs, quiet: bool) -> anyhow::Result<i32> {
    const FORMATS: &str =
        "size --prove prints --format human or json: run it again with one of them";
    if !matches!(args.format, SizeFormat::Human | SizeFormat::Json) {
        anyhow::bail!(FORMATS);
    }
    let local = args.source == "-" || std::path::Path::new(&args.source).exists();
    let options = ProveOptions {
        // A file or directory has no daemon labels: -f and --context say.
        image: (!local).then(|| args.source.clone()),
        dockerfile: args.file.clone(),
        context: args.context.clone(),
        target: args.target.clone(),
        build_args: crate::shared::parse_build_args(&args.build_args)?,
        top: args.top,
        network: args.network.clone(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let mut progress = |line: String| {
        if !quiet {
            eprintln!("{line}");
        }
    };
    let proof = runtime.block_on(reggie_build::ops::prove::prove(&options, &mut progress))?;
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    let text = match args.format {
        SizeFormat::Json => serde_json::to_string_pretty(&proof)? + "\n",
        SizeFormat::Human => reggie_build::formats::prove::human(&proof),
        _ => anyhow::bail!(FORMATS),
    };
    crate::shared::print_stdout_bytes(text.as_bytes())?;
    Ok(0)
}
