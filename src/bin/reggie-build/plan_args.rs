//! Arguments that select what a Dockerfile build reads.

use clap::Args;

use reggie_build::plan::PlanOptions;

use crate::shared::{heading, parse_build_args};

#[derive(Debug, Args, Clone)]
#[command(next_help_heading = heading::BUILD)]
pub struct PlanArgs {
    /// The stage to build (default: the last one).
    #[arg(long)]
    pub target: Option<String>,
    /// A build argument, `KEY=VALUE`, or `KEY` to take it from the
    /// environment (repeatable).
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    pub build_args: Vec<String>,
    /// Target platform, e.g. linux/amd64.
    #[arg(long)]
    pub platform: Option<String>,
}

impl PlanArgs {
    pub fn options(&self) -> anyhow::Result<PlanOptions> {
        Ok(PlanOptions {
            target: self.target.clone(),
            build_args: parse_build_args(&self.build_args)?,
            platform: self.platform.clone(),
            ..PlanOptions::default()
        })
    }
}
