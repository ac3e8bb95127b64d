//! `reggie-build digest`: the content digest of what a build reads.

use anyhow::Context as _;
use clap::Args;

use reggie_build::build_digest::build_digest;

use crate::output::print_stdout;
use crate::shared::heading;
use crate::targets::TargetArgs;

#[derive(Debug, Args)]
pub struct DigestArgs {
    #[command(flatten)]
    pub targets: TargetArgs,
    /// One JSON object per image: `name`, `digest`, `context` (the minimal
    /// context's own digest), `entries`, `bytes`.
    #[arg(long)]
    #[arg(help_heading = heading::OUTPUT)]
    pub json: bool,
}

pub fn run(args: DigestArgs) -> anyhow::Result<i32> {
    let targets = args.targets.targets()?;
    let several = targets.len() > 1;
    let mut out = String::new();
    for t in &targets {
        let d = build_digest(t).with_context(|| format!("image `{}`", t.name))?;
        if args.json {
            let mut v = serde_json::to_value(&d)?;
            v["name"] = serde_json::json!(t.name);
            out.push_str(&reggie_build::text::json_line(&v)?);
            out.push('\n');
        } else if several {
            out.push_str(&format!("{}  {}\n", d.digest, t.name));
        } else {
            out.push_str(&format!("{}\n", d.digest));
        }
    }
    print_stdout(&out)?;
    Ok(0)
}
