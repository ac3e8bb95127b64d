//! `reggie-build ls`: the files a build would receive, one per line.

use std::io::Write;

use anyhow::Context as _;
use clap::Args;

use reggie_build::context::{FileKind, WalkError};

use reggie_build::plan::Plan;

use crate::output::show;
use crate::plan_args::PlanArgs;
use crate::shared::heading;
use crate::shared::ContextArgs;

#[derive(Debug, Args)]
pub struct LsArgs {
    #[command(flatten)]
    pub context: ContextArgs,
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Only what the Dockerfile can read (the minimal context).
    #[arg(long)]
    #[arg(help_heading = heading::OUTPUT)]
    pub minimal: bool,
    /// End each path with a NUL byte instead of a newline (names may hold
    /// newlines), like `find -print0`; for `xargs -0`.
    #[arg(short = '0', long = "null")]
    #[arg(help_heading = heading::OUTPUT)]
    pub null: bool,
}

pub fn run(args: LsArgs) -> anyhow::Result<i32> {
    let mut ctx = args.context.spec().resolve()?;
    if args.minimal {
        let plan = Plan::new(&ctx, &args.plan.options()?)?;
        for reason in &plan.whole {
            tracing::warn!("the whole context is used: {reason}");
        }
        ctx = plan.apply(&ctx, true)?;
    }
    let mut paths: Vec<Vec<u8>> = Vec::new();
    let summary = ctx.walk::<WalkError, _>(|entry| {
        if entry.kind != FileKind::Dir {
            paths.push(entry.rel.to_vec());
        }
        Ok(())
    })?;
    for socket in &summary.skipped_sockets {
        tracing::warn!("{} is a socket; Docker does not send sockets", show(socket));
    }
    paths.sort_unstable();
    let stdout = std::io::stdout();
    // Raw bytes for pipes; on a terminal, control characters escaped (as
    // GNU ls does), so a name cannot drive the terminal. A name that would
    // break its line or pass for a CI workflow command (`::error::`,
    // `##[error]`: CI logs are pipes) is escaped on a pipe too, unless
    // `--null` asks for every name as it is.
    let terminal = std::io::IsTerminal::is_terminal(&stdout);
    let end: &[u8] = if args.null { b"\0" } else { b"\n" };
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, stdout.lock());
    for p in &paths {
        if terminal || (!args.null && reggie_build::text::unsafe_as_line(p)) {
            out.write_all(show(p).as_bytes())
        } else {
            out.write_all(p)
        }
        .context("writing to stdout")?;
        out.write_all(end).context("writing to stdout")?;
    }
    out.flush().context("writing to stdout")?;
    Ok(0)
}
