//! `reggie-build discover`: the images a repository builds, from its
//! Dockerfiles, compose files and SST configs; `--write` turns them into
//! `reggie-build.toml`.

use std::path::{Path, PathBuf};

use anyhow::bail;
use clap::Args;

use reggie_build::context::{Builder, ContextSpec, FileKind, WalkError};
use reggie_build::discover::{self, write, DiscoveredBuild};
use reggie_build::plan::{Plan, PlanOptions};
use reggie_build::units::humanize;

use crate::output::{self, print_stdout};
use crate::shared::heading;

#[derive(Debug, Args)]
pub struct DiscoverArgs {
    /// The repository to scan.
    #[arg(value_name = "PATH", default_value = ".")]
    pub path: PathBuf,
    /// Print a JSON array, one object per build.
    #[arg(long)]
    #[arg(help_heading = heading::OUTPUT)]
    pub json: bool,
    /// Write `reggie-build.toml` at PATH, one `[[image]]` per build, with a
    /// size budget a little above today's minimal context.
    #[arg(long)]
    #[arg(help_heading = heading::OUTPUT)]
    pub write: bool,
    /// Overwrite an existing `reggie-build.toml` with `--write`.
    #[arg(long, requires = "write")]
    #[arg(help_heading = heading::OUTPUT)]
    pub force: bool,
}

pub fn run(args: DiscoverArgs) -> anyhow::Result<i32> {
    let found = discover::discover_all(&args.path)?;
    for w in &found.warnings {
        eprintln!("warning: {}", reggie_build::text::escape(w));
    }
    let sizes: Vec<Result<u64, String>> = found
        .builds
        .iter()
        .map(|b| minimal_size(&args.path, b))
        .collect();

    if args.json {
        let items: Vec<serde_json::Value> = found
            .builds
            .iter()
            .zip(&sizes)
            .map(|(b, size)| {
                let mut v = serde_json::to_value(b).expect("a build serializes");
                if let Some(obj) = v.as_object_mut() {
                    obj.insert("minimal_bytes".into(), size.as_ref().ok().copied().into());
                    obj.insert("minimal_error".into(), size.as_ref().err().cloned().into());
                }
                v
            })
            .collect();
        let mut text = reggie_build::text::json(&items)?;
        text.push('\n');
        print_stdout(&text)?;
    } else if found.builds.is_empty() {
        eprintln!(
            "no Dockerfile, compose build or SST image found under {}",
            args.path.display()
        );
    } else {
        print_stdout(&table(&found.builds, &sizes))?;
    }

    if args.write {
        write_config(&args, &found.builds, &sizes)?;
    }
    Ok(0)
}

/// The bytes of the minimal context (what the Dockerfile can read), or why
/// it cannot be measured.
fn minimal_size(root: &Path, b: &DiscoveredBuild) -> Result<u64, String> {
    if !b.resolved {
        return Err("context or Dockerfile not known statically".into());
    }
    let context = root.join(&b.context);
    let dockerfile = root.join(&b.dockerfile);
    if !context.is_dir() {
        return Err(format!("no directory {}", context.display()));
    }
    if !dockerfile.is_file() {
        return Err(format!("no file {}", dockerfile.display()));
    }
    let ctx = ContextSpec {
        root: context,
        dockerfile: Some(dockerfile),
        builder: Builder::BuildKit,
    }
    .resolve()
    .map_err(|e| e.to_string())?;
    let opts = PlanOptions {
        target: b.target.clone(),
        ..PlanOptions::default()
    };
    let plan = Plan::new(&ctx, &opts).map_err(|e| e.to_string())?;
    let minimal = plan.apply(&ctx, true).map_err(|e| e.to_string())?;
    let mut bytes = 0u64;
    minimal
        .walk::<WalkError, _>(|entry| {
            if entry.kind == FileKind::File {
                bytes += std::fs::symlink_metadata(entry.path).map_or(0, |m| m.len());
            }
            Ok(())
        })
        .map_err(|e| e.to_string())?;
    Ok(bytes)
}

/// The human report: one row per build, its warnings below it.
fn table(builds: &[DiscoveredBuild], sizes: &[Result<u64, String>]) -> String {
    let header = ["NAME", "SOURCE", "CONTEXT", "DOCKERFILE", "MINIMAL"];
    let rows: Vec<[String; 5]> = builds
        .iter()
        .zip(sizes)
        .map(|(b, size)| {
            [
                reggie_build::text::escape(&b.name).into_owned(),
                b.source.to_string(),
                reggie_build::text::show_path(&b.context),
                reggie_build::text::show_path(&b.dockerfile),
                match size {
                    Ok(n) => humanize(*n),
                    Err(_) => "?".to_string(),
                },
            ]
        })
        .collect();
    let mut width = header.map(str::len);
    for row in &rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 5]| -> String {
        let mut s = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  ", w = width[i]));
            }
        }
        s.push('\n');
        s
    };
    let mut out = line(header);
    for ((row, b), size) in rows.iter().zip(builds).zip(sizes) {
        out.push_str(&line([&row[0], &row[1], &row[2], &row[3], &row[4]]));
        if let Some(t) = &b.target {
            out.push_str(&format!("  target: {}\n", reggie_build::text::escape(t)));
        }
        for w in &b.warnings {
            out.push_str(&format!("  ! {}\n", reggie_build::text::escape(w)));
        }
        if let (Err(e), true) = (size, b.resolved) {
            out.push_str(&format!(
                "  ! minimal size unavailable: {}\n",
                reggie_build::text::escape(e)
            ));
        }
    }
    out
}

fn write_config(
    args: &DiscoverArgs,
    builds: &[DiscoveredBuild],
    sizes: &[Result<u64, String>],
) -> anyhow::Result<()> {
    let path = args.path.join(write::CONFIG_FILE);
    if std::fs::symlink_metadata(&path).is_ok() && !args.force {
        bail!(
            "{} already exists; pass --force to overwrite it",
            path.display()
        );
    }
    let mut entries = Vec::new();
    for (b, size) in builds.iter().zip(sizes) {
        if !b.resolved {
            eprintln!(
                "not writing {}: its context or Dockerfile cannot be read statically",
                reggie_build::text::escape(&b.name)
            );
            continue;
        }
        entries.push((b, size.as_ref().ok().copied()));
    }
    if entries.is_empty() {
        bail!("no build to write to {}", path.display());
    }
    output::replace_file(&path, write::render(&entries).as_bytes(), args.force)?;
    eprintln!("wrote {} ({} images)", path.display(), entries.len());
    Ok(())
}
