//! `size`'s budgets: the command line's limits over those of the image's
//! `size_budget` in `reggie-build.toml`, and the baseline report, read
//! before the image is (a bad config or baseline fails at once).

use std::path::{Path, PathBuf};

use clap::Args;

use reggie_build::config::{self, Config};
use reggie_build::inspect::budget::{self, Baseline, Budgets, Declared, Verdict};
use reggie_build::inspect::{Report, SizeOptions};

fn parse_size_arg(s: &str) -> Result<u64, String> {
    config::parse_size(s)
}

fn parse_growth_arg(s: &str) -> Result<config::Growth, String> {
    config::parse_growth(s)
}

/// The `--help` heading of the budget options (as `check`'s).
const BUDGET: &str = "Budget";

/// Budgets of `size` (flattened into its arguments).
#[derive(Debug, Args)]
pub struct BudgetArgs {
    /// Fail when the image's layers (uncompressed) are larger, e.g.
    /// `--max-size 300MB` (over `size_budget.max_size`).
    #[arg(long, value_name = "SIZE", value_parser = parse_size_arg, help_heading = BUDGET)]
    pub max_size: Option<u64>,
    /// Fail when a layer (uncompressed) is larger, e.g. `--max-layer
    /// 150MB`.
    #[arg(long, value_name = "SIZE", value_parser = parse_size_arg, help_heading = BUDGET)]
    pub max_layer: Option<u64>,
    /// Fail when the waste found adds up to more, e.g. `--max-waste 5MB`.
    #[arg(long, value_name = "SIZE", value_parser = parse_size_arg, help_heading = BUDGET)]
    pub max_waste: Option<u64>,
    /// A report `size --format json` wrote (a regular file of at most 32
    /// MiB), to report each step's growth against, e.g. `--baseline
    /// main-size.json`.
    #[arg(long, value_name = "FILE", help_heading = BUDGET)]
    pub baseline: Option<PathBuf>,
    /// Fail when the image grew more than this against --baseline: bytes
    /// (`20MB`) or a percent (`5%`).
    #[arg(long, value_name = "SIZE|PCT", value_parser = parse_growth_arg, requires = "baseline", help_heading = BUDGET)]
    pub max_growth: Option<config::Growth>,
    /// The image of reggie-build.toml whose `size_budget` applies (and
    /// whose Dockerfile, target and build args attribute the layers);
    /// default: the one built from -f's Dockerfile.
    #[arg(long, value_name = "NAME", help_heading = BUDGET)]
    pub name: Option<String>,
    /// The config file (default: reggie-build.toml here or above, up to
    /// the repository root).
    #[arg(long, value_name = "FILE", help_heading = BUDGET)]
    pub config: Option<PathBuf>,
}

/// The budgets and baseline of a run.
#[derive(Debug, Default)]
pub struct Budgeted {
    budgets: Budgets,
    baseline: Option<Baseline>,
}

impl Budgeted {
    /// The verdict on `report`, when there is anything to check or
    /// compare; `source` is the image as given (for the fixes' commands).
    pub fn evaluate(&self, report: &Report, source: &str) -> Option<Verdict> {
        if self.budgets.is_empty() && self.baseline.is_none() {
            return None;
        }
        let tree = format!(
            "reggie-build size {}",
            reggie_build::text::shell_word(source)
        );
        Some(budget::evaluate(
            report,
            &self.budgets,
            self.baseline.as_ref(),
            Some(&tree),
        ))
    }
}

impl BudgetArgs {
    /// The config, when one is named or found.
    fn config(&self) -> anyhow::Result<Option<Config>> {
        let path = match &self.config {
            Some(p) => p.clone(),
            None => match config::find(Path::new(".")) {
                Some(p) => p,
                None if self.name.is_some() => anyhow::bail!(
                    "--name needs a {} (none found here or above, up to the repository root); pass --config FILE",
                    config::FILE_NAME
                ),
                None => return Ok(None),
            },
        };
        Ok(Some(Config::load(&path)?))
    }

    /// The configured image whose budget applies: `--name`'s, else the
    /// one with a `size_budget` built from `file` (and `target`, when
    /// several are).
    fn image<'c>(
        &self,
        config: &'c Config,
        file: Option<&Path>,
        target: Option<&str>,
    ) -> anyhow::Result<Option<&'c config::Image>> {
        if let Some(name) = &self.name {
            return Ok(Some(config.image(name)?));
        }
        let Some(file) = file.and_then(|f| std::fs::canonicalize(f).ok()) else {
            return Ok(None);
        };
        let matching: Vec<&config::Image> = config
            .images
            .iter()
            .filter(|i| !i.size_budget.is_empty())
            .filter(|i| std::fs::canonicalize(&i.dockerfile).ok().as_ref() == Some(&file))
            .filter(|i| target.is_none() || i.target.as_deref() == target)
            .collect();
        match matching[..] {
            [] => Ok(None),
            [one] => Ok(Some(one)),
            _ => anyhow::bail!(
                "several images of {} are built from {} with a size_budget ({}): pass --name NAME to pick one",
                reggie_build::text::show_path(&config.path),
                reggie_build::text::show_path(file.as_path()),
                matching
                    .iter()
                    .map(|i| reggie_build::text::excerpt(&i.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// With `--name`: the configured image's Dockerfile, target, platform
    /// and build args where the command line gives none.
    pub fn configured_defaults(&self, options: &mut SizeOptions) -> anyhow::Result<()> {
        if self.name.is_none() {
            return Ok(());
        }
        let Some(config) = self.config()? else {
            return Ok(());
        };
        let Some(image) = self.image(&config, None, None)? else {
            return Ok(());
        };
        if options.dockerfile.is_none() {
            // Relative to here when below, so reports name short paths.
            let cwd = std::env::current_dir().unwrap_or_default();
            let path = image
                .dockerfile
                .strip_prefix(&cwd)
                .unwrap_or(&image.dockerfile);
            options.dockerfile = Some(path.to_path_buf());
        }
        options.plan.target = options.plan.target.take().or(image.target.clone());
        options.plan.platform = options.plan.platform.take().or(image.platform.clone());
        if options.load.platform.is_none() {
            options.load.platform = image.platform.clone();
        }
        for (k, v) in &image.build_args {
            options
                .plan
                .build_args
                .entry(k.clone())
                .or_insert_with(|| v.clone());
        }
        Ok(())
    }

    /// The budgets (the command line's over the config's) and the
    /// baseline; `file` and `target` are `-f` and `--target`.
    pub fn resolve(
        &self,
        file: Option<&Path>,
        target: Option<&str>,
        quiet: bool,
    ) -> anyhow::Result<Budgeted> {
        let mut budgets = Budgets::default();
        if let Some(config) = self.config()? {
            match self.image(&config, file, target)? {
                Some(image) => {
                    // Named as the user would: relative to here when below.
                    let cwd = std::env::current_dir().unwrap_or_default();
                    let shown = config.path.strip_prefix(&cwd).unwrap_or(&config.path);
                    budgets = Budgets::from_config(&image.size_budget, shown);
                }
                None if !quiet && config.images.iter().any(|i| !i.size_budget.is_empty()) => {
                    eprintln!(
                        "note: {} sets size budgets; none applies to this image: pass --name NAME (or -f the image's Dockerfile)",
                        reggie_build::text::show_path(&config.path)
                    );
                }
                None => {}
            }
        }
        let cli = |v: Option<u64>, flag: &str| v.map(|v| Declared::new(v, flag));
        if let Some(b) = cli(self.max_size, "--max-size") {
            budgets.max_size = Some(b);
        }
        if let Some(b) = cli(self.max_layer, "--max-layer") {
            budgets.max_layer = Some(b);
        }
        if let Some(b) = cli(self.max_waste, "--max-waste") {
            budgets.max_waste = Some(b);
        }
        if let Some(g) = self.max_growth {
            budgets.max_growth = Some(Declared::new(g, "--max-growth"));
        }
        let baseline = self.baseline.as_deref().map(Baseline::read).transpose()?;
        if baseline.is_none() && budgets.max_growth.is_some() {
            // A configured growth limit needs a baseline to measure against.
            budgets.max_growth = None;
        }
        Ok(Budgeted { budgets, baseline })
    }
}
