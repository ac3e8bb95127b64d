//! Which images a command covers: `PATH`/`-f`, `--image NAME` from
//! `reggie-build.toml`, or every configured image.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use reggie_build::check::Target;
use reggie_build::config::{self, Budget, Config};
use reggie_build::context::ContextSpec;

use crate::plan_args::PlanArgs;
use crate::shared::heading;
use crate::shared::BuilderArg;

/// Image selection shared by `analyze` and `check`.
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// The build context directory (default `.`, or every image of
    /// reggie-build.toml when neither PATH nor -f is given).
    #[arg(value_name = "PATH")]
    pub path: Option<PathBuf>,
    /// The Dockerfile (default: PATH/Dockerfile).
    #[arg(short = 'f', long = "file", value_name = "DOCKERFILE")]
    #[arg(help_heading = heading::CONTEXT)]
    pub file: Option<PathBuf>,
    /// An image from reggie-build.toml (repeatable).
    #[arg(long = "image", value_name = "NAME")]
    #[arg(help_heading = heading::CONTEXT)]
    pub images: Vec<String>,
    /// The config file (default: reggie-build.toml here or above, up to the
    /// repository root).
    #[arg(long, value_name = "FILE")]
    #[arg(help_heading = heading::CONTEXT)]
    pub config: Option<PathBuf>,
    /// Reproduce BuildKit's rules (default) or the classic builder's.
    #[arg(long, value_enum, default_value_t = BuilderArg::Buildkit)]
    #[arg(help_heading = heading::CONTEXT)]
    pub builder: BuilderArg,
    #[command(flatten)]
    pub plan: PlanArgs,
}

/// Says which config file was found: on stderr when it is not in the
/// current directory (a parent's file deciding what is checked should not
/// be a surprise), in the `-v` log otherwise.
fn announce(path: &std::path::Path) {
    let here = std::env::current_dir().and_then(std::fs::canonicalize).ok();
    let shown = reggie_build::text::show_path(path);
    if path.parent() == here.as_deref() {
        tracing::info!("using config {shown}");
    } else if !crate::output::quiet() {
        eprintln!("note: using config {shown}");
    }
}

impl TargetArgs {
    /// The images to cover.
    pub fn targets(&self) -> anyhow::Result<Vec<Target>> {
        let explicit = self.path.is_some() || self.file.is_some();
        let config = match &self.config {
            Some(p) => Some(Config::load(p)?),
            None if explicit && self.images.is_empty() => None,
            None => match config::find(std::path::Path::new(".")) {
                Some(p) => {
                    announce(&p);
                    Some(Config::load(&p)?)
                }
                None => None,
            },
        };
        if explicit || config.is_none() {
            if !self.images.is_empty() && config.is_none() {
                anyhow::bail!(
                    "--image needs a {} (none found here or above, up to the repository root); run `reggie-build discover --write` to create one",
                    config::FILE_NAME
                );
            }
            let root = self.path.clone().unwrap_or_else(|| PathBuf::from("."));
            let name = root
                .canonicalize()
                .ok()
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_else(|| root.display().to_string());
            return Ok(vec![Target {
                name,
                spec: ContextSpec {
                    root,
                    dockerfile: self.file.clone(),
                    builder: self.builder.into(),
                },
                plan: self.plan.options()?,
                budget: Budget::default(),
            }]);
        }
        let config = config.context("no config")?;
        let selected: Vec<&config::Image> = if self.images.is_empty() {
            config.images.iter().collect()
        } else {
            self.images
                .iter()
                .map(|n| config.image(n))
                .collect::<Result<_, _>>()?
        };
        if selected.is_empty() {
            anyhow::bail!("{} configures no images", config.path.display());
        }
        let cli = self.plan.options()?;
        let builder = self.builder.into();
        Ok(selected
            .into_iter()
            .map(|img| Target::from_image(img, builder, &cli))
            .collect())
    }
}
