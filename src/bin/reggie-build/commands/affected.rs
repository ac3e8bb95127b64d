//! `reggie-build affected`: which images a git change affects, and the
//! first step whose cache it busts.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, ValueEnum};

use reggie_build::affected::{self, render, Head, Options};

use crate::output::{append_step_summary, print_stdout};
use crate::shared::heading;

/// Report formats of `affected`.
#[derive(Debug, Clone, Copy, ValueEnum, Default, PartialEq, Eq)]
pub enum AffectedFormat {
    #[default]
    Human,
    Json,
    Github,
    Markdown,
}

/// The `--help` heading of the revisions compared.
const CHANGE: &str = "Git change";

#[derive(Debug, Args)]
pub struct AffectedArgs {
    /// The revision to compare with (what the cache was built from).
    #[arg(long, value_name = "REF", default_value = "HEAD~1")]
    #[arg(help_heading = CHANGE)]
    pub base: String,
    /// The revision to check.
    #[arg(
        long,
        value_name = "REF",
        default_value = "HEAD",
        conflicts_with = "worktree"
    )]
    #[arg(help_heading = CHANGE)]
    pub head: String,
    /// Check the work tree as it is (uncommitted and untracked files too)
    /// instead of --head.
    #[arg(long)]
    #[arg(help_heading = CHANGE)]
    pub worktree: bool,
    /// The config file (default: reggie-build.toml here or above; without
    /// one, the builds `discover` finds).
    #[arg(long, value_name = "FILE")]
    #[arg(help_heading = heading::CONTEXT)]
    pub config: Option<PathBuf>,
    /// Only this image (repeatable).
    #[arg(long = "image", value_name = "NAME")]
    #[arg(help_heading = heading::CONTEXT)]
    pub images: Vec<String>,
    /// Output format: human; json (`"schema": 1`); github (writes
    /// `matrix`, `any` and `images` to $GITHUB_OUTPUT and a summary to
    /// $GITHUB_STEP_SUMMARY); markdown (a pull-request comment).
    #[arg(long, value_enum, default_value_t = AffectedFormat::Human)]
    #[arg(help_heading = heading::OUTPUT)]
    pub format: AffectedFormat,
}

pub fn run(args: AffectedArgs) -> anyhow::Result<i32> {
    let opts = Options {
        base: args.base.clone(),
        head: if args.worktree {
            Head::Worktree
        } else {
            Head::Rev(args.head.clone())
        },
        config: args.config.clone(),
        dir: PathBuf::from("."),
        images: args.images.clone(),
    };
    let report = affected::affected(&opts)?;
    let text = match args.format {
        AffectedFormat::Human => render::human(&report),
        AffectedFormat::Json => format!("{}\n", reggie_build::text::json(&report)?),
        AffectedFormat::Markdown => render::markdown(&report),
        AffectedFormat::Github => {
            let outputs = render::github_outputs(&report);
            match std::env::var_os("GITHUB_OUTPUT").filter(|p| !p.is_empty()) {
                Some(path) => {
                    let mut f = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&path)
                        .with_context(|| format!("cannot append to GITHUB_OUTPUT {path:?}"))?;
                    f.write_all(outputs.as_bytes())?;
                }
                None => tracing::warn!(
                    "GITHUB_OUTPUT is not set (not in GitHub Actions?): the outputs follow on stdout"
                ),
            }
            append_step_summary(&render::markdown(&report))?;
            let mut text = render::human(&report);
            if std::env::var_os("GITHUB_OUTPUT").is_none_or(|p| p.is_empty()) {
                text.push_str(&outputs);
            }
            text
        }
    };
    print_stdout(&text)?;
    Ok(0)
}
