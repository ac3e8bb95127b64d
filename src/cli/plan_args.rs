//! Arguments that select what a Dockerfile build reads.

use std::collections::BTreeMap;

use anyhow::bail;
use clap::Args;

use reggie_build::plan::PlanOptions;

#[derive(Debug, Args, Clone)]
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
        let mut build_args = BTreeMap::new();
        for arg in &self.build_args {
            match arg.split_once('=') {
                Some((k, v)) if !k.is_empty() => {
                    build_args.insert(k.to_string(), v.to_string());
                }
                Some(_) => bail!("--build-arg {arg:?}: the name before `=` is empty"),
                None => {
                    // Docker takes the value from the environment, and drops
                    // the argument when the variable is unset.
                    if let Ok(v) = std::env::var(arg) {
                        build_args.insert(arg.clone(), v);
                    }
                }
            }
        }
        Ok(PlanOptions {
            target: self.target.clone(),
            build_args,
            platform: self.platform.clone(),
            ..PlanOptions::default()
        })
    }
}
