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
        Ok(PlanOptions {
            target: self.target.clone(),
            build_args: parse_build_args(&self.build_args)?,
            platform: self.platform.clone(),
            ..PlanOptions::default()
        })
    }
}

/// `--build-arg` values as `docker build` reads them: `KEY=VALUE`, or `KEY`
/// alone for the variable's value, the argument dropped when it is unset.
/// Every command that takes `--build-arg` parses it here, so `analyze`
/// plans exactly what `image` builds.
pub fn parse_build_args(raw: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut build_args = BTreeMap::new();
    for arg in raw {
        match arg.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                build_args.insert(k.to_string(), v.to_string());
            }
            Some(_) => bail!(
                "--build-arg {}: the name before `=` is empty",
                reggie_build::text::excerpt(arg)
            ),
            None => {
                if let Ok(v) = std::env::var(arg) {
                    build_args.insert(arg.clone(), v);
                }
            }
        }
    }
    Ok(build_args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_args_as_docker_reads_them() {
        std::env::set_var("REGGIE_TEST_BUILD_ARG_X", "from-env");
        let a = parse_build_args(&[
            "A=1".into(),
            "B=".into(),
            "C=x=y".into(),
            "REGGIE_TEST_BUILD_ARG_X".into(),
            "REGGIE_TEST_UNSET_Y".into(),
        ])
        .unwrap();
        assert_eq!(a.get("A").map(String::as_str), Some("1"));
        assert_eq!(a.get("B").map(String::as_str), Some(""));
        assert_eq!(a.get("C").map(String::as_str), Some("x=y"));
        assert_eq!(
            a.get("REGGIE_TEST_BUILD_ARG_X").map(String::as_str),
            Some("from-env")
        );
        assert!(!a.contains_key("REGGIE_TEST_UNSET_Y"));
        let err = parse_build_args(&["=v".into()]).unwrap_err().to_string();
        assert!(err.contains("the name before `=` is empty"), "{err}");
    }
}
