//! `reggie-build check`: the context-size guard for CI and pre-commit.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use reggie_build::analyze::{RuleSet, Severity};
use reggie_build::check::{self, CheckOptions, Verdict};
use reggie_build::config::parse_size;
use reggie_build::formats;
use reggie_build::text::escape as esc;
use reggie_build::units::humanize;

use crate::output::{self, append_step_summary, FormatArg};
use crate::shared::heading;
use crate::targets::TargetArgs;

/// The `--help` heading of the budget options.
const BUDGET: &str = "Budget";

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub targets: TargetArgs,
    /// Measure the whole context as Docker sends it, not the minimal one.
    #[arg(long)]
    #[arg(help_heading = BUDGET)]
    pub full: bool,
    /// Fail when the uploaded context is larger (e.g. "50 MB").
    #[arg(long, value_name = "SIZE", value_parser = parse_size_arg)]
    #[arg(help_heading = BUDGET)]
    pub max_size: Option<u64>,
    /// Fail when the uploaded context has more files.
    #[arg(long, value_name = "N")]
    #[arg(help_heading = BUDGET)]
    pub max_files: Option<u64>,
    /// Warnings fail the check too.
    #[arg(long)]
    #[arg(help_heading = BUDGET)]
    pub strict: bool,
    /// A saved report (`analyze --json` or `check --format json`, a
    /// regular file of at most 32 MiB) to compare with: names what grew.
    /// E.g. `--baseline main-report.json`.
    #[arg(long, value_name = "FILE")]
    #[arg(help_heading = BUDGET)]
    pub baseline: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = FormatArg::Human)]
    #[arg(help_heading = heading::OUTPUT)]
    pub format: FormatArg,
    /// Only check images these changed files can affect (for pre-commit,
    /// which passes the staged files); exit 0 at once when none.
    #[arg(long, value_name = "FILE", num_args = 0..)]
    #[arg(help_heading = BUDGET)]
    pub changed: Option<Vec<PathBuf>>,
    /// Extra rule files (`*.toml`).
    #[arg(long, value_name = "DIR", env = "REGGIE_BUILD_RULES")]
    #[arg(help_heading = heading::OUTPUT)]
    pub rules: Option<PathBuf>,
    /// Write the report to FILE instead of stdout (e.g. `--format html -o
    /// budget.html`).
    #[arg(short = 'o', long, value_name = "FILE")]
    #[arg(help_heading = heading::OUTPUT)]
    pub output: Option<PathBuf>,
}

fn parse_size_arg(s: &str) -> Result<u64, String> {
    parse_size(s)
}

pub fn run(args: CheckArgs) -> anyhow::Result<i32> {
    let rules = match &args.rules {
        Some(dir) => RuleSet::with_user_dir(dir)?,
        None => RuleSet::builtin(),
    };
    let baseline: Option<serde_json::Value> = match &args.baseline {
        Some(p) => {
            // A report, not an unbounded read: regular files only, capped,
            // and a file inside the repository read only inside it.
            let bytes = reggie_build::input::read_given(p, reggie_build::input::TEXT_LIMIT)
                .context("cannot read the baseline")?;
            let text = String::from_utf8(bytes)
                .with_context(|| format!("baseline {} is not UTF-8 JSON", p.display()))?;
            Some(
                serde_json::from_str(&text)
                    .with_context(|| format!("baseline {} is not JSON", p.display()))?,
            )
        }
        None => None,
    };
    let opts = CheckOptions {
        full: args.full,
        strict: args.strict,
    };
    let mut verdicts: Vec<Verdict> = Vec::new();
    let config_path = args
        .targets
        .config
        .clone()
        .or_else(|| reggie_build::config::find(std::path::Path::new(".")));
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let mut targets = Vec::new();
    for mut target in args.targets.targets()? {
        if let Some(changed) = &args.changed {
            if !check::affected_by(&target, config_path.as_deref(), changed, &cwd)? {
                tracing::info!("{}: no staged file can change its context", target.name);
                continue;
            }
        }
        if args.max_size.is_some() {
            target.budget.max_bytes = args.max_size;
        }
        if args.max_files.is_some() {
            target.budget.max_files = args.max_files;
        }
        targets.push(target);
    }
    // The deploys' architectures, as `discover` reads them from the
    // config's directory (else here).
    let deploys = if targets.is_empty() {
        check::Deploys::default()
    } else {
        // Relative to here when below, so findings name short paths.
        let root = config_path
            .as_deref()
            .and_then(|p| p.parent())
            .map(|p| p.strip_prefix(&cwd).unwrap_or(p))
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        check::Deploys::discover(root).unwrap_or_else(|e| {
            eprintln!("warning: the deploys' architectures are not checked: {e}");
            check::Deploys::default()
        })
    };
    for target in &targets {
        verdicts.push(
            check::check_deployed(target, &rules, opts, &deploys)
                .with_context(|| format!("checking image `{}`", target.name))?,
        );
    }
    let growth: Vec<(String, Vec<String>)> = match &baseline {
        Some(b) => verdicts
            .iter()
            .map(|v| (v.name.clone(), check::growth_against(b, v)))
            .collect(),
        None => Vec::new(),
    };
    let passed = verdicts.iter().all(|v| v.passed);
    let text = match args.format {
        FormatArg::Human => human(&verdicts, &growth),
        FormatArg::Json => {
            let mut images = serde_json::to_value(&verdicts)?;
            if let Some(list) = images.as_array_mut() {
                for (v, (_, g)) in list.iter_mut().zip(
                    growth
                        .iter()
                        .chain(std::iter::repeat(&(String::new(), Vec::new()))),
                ) {
                    v["grew"] = serde_json::json!(g);
                }
            }
            let report = serde_json::json!({
                "schema": reggie_build::analyze::report::SCHEMA,
                "result": if passed { "pass" } else { "fail" },
                "images": images,
            });
            format!("{}\n", reggie_build::text::json(&report)?)
        }
        FormatArg::Markdown => formats::check_markdown(&verdicts, &growth),
        FormatArg::Github => {
            let mut out = String::new();
            for v in &verdicts {
                out.push_str(&formats::github_annotations(&v.findings));
                if v.over_bytes > 0 || v.over_files > 0 {
                    out.push_str(&formats::github_error(
                        &format!("reggie-build: {} over budget", v.name),
                        &formats::failure_summary(v),
                    ));
                }
            }
            append_step_summary(&formats::check_markdown(&verdicts, &growth))?;
            out
        }
        FormatArg::Sarif => {
            let all: Vec<_> = verdicts.iter().flat_map(|v| v.findings.clone()).collect();
            format!("{}\n", formats::sarif(&all))
        }
        FormatArg::Html => formats::html::check_page(&verdicts, &growth, passed),
    };
    output::write_report(args.output.as_deref(), &text)?;
    Ok(if passed { 0 } else { 1 })
}

fn human(verdicts: &[Verdict], growth: &[(String, Vec<String>)]) -> String {
    let mut o = String::new();
    for v in verdicts {
        let budget = match (v.max_bytes, v.max_files) {
            (Some(b), Some(f)) => format!("budget {} / {f} files", humanize(b)),
            (Some(b), None) => format!("budget {}", humanize(b)),
            (None, Some(f)) => format!("budget {f} files"),
            (None, None) => "no budget".into(),
        };
        let mark = if v.passed { "ok  " } else { "FAIL" };
        o.push_str(&format!(
            "{mark} {}: {} in {} files uploaded ({} context), {budget}\n",
            esc(&v.name),
            humanize(v.uploaded.bytes),
            v.uploaded.files,
            v.measured
        ));
        if !v.passed {
            o.push_str(&format!("     {}\n", formats::failure_summary(v)));
            if v.over_bytes > 0 || v.over_files > 0 {
                o.push_str("     largest contributors:\n");
                for c in v.contributors.iter().take(5) {
                    o.push_str(&format!(
                        "       {:>10}  {:>6} files  {}\n",
                        humanize(c.bytes),
                        c.files,
                        esc(&c.name)
                    ));
                }
            }
            for fix in &v.fixes {
                o.push_str(&format!("     fix: {}\n", esc(fix)));
            }
        }
        for f in v.findings.iter().filter(|f| f.severity != Severity::Info) {
            let loc = match f.line {
                Some(l) => format!("{}:{l}", f.file),
                None => f.file.clone(),
            };
            o.push_str(&format!(
                "     {} {} {}: {}\n",
                f.severity,
                esc(&f.rule),
                esc(&loc),
                esc(&f.message)
            ));
        }
        if let Some((_, lines)) = growth.iter().find(|(n, _)| *n == v.name) {
            for l in lines {
                o.push_str(&format!("     grew: {}\n", esc(l)));
            }
        }
    }
    o
}
