//! `reggie-build explain`: why a file is or is not in the context.

use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use clap::Args;

use crate::output::{print_stdout, show};
use crate::shared::heading;
use crate::shared::{BuilderArg, ContextArgs};

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// `[PATH] FILE...`: with two or more arguments the first is the context
    /// directory (default `.`); files are relative to the context.
    #[arg(value_name = "PATH] [FILE", required = true)]
    pub args: Vec<PathBuf>,
    /// The Dockerfile (default: PATH/Dockerfile).
    #[arg(short = 'f', long = "file", value_name = "DOCKERFILE")]
    #[arg(help_heading = heading::CONTEXT)]
    pub file: Option<PathBuf>,
    /// Reproduce BuildKit's rules (default) or the classic builder's.
    #[arg(long, value_enum, default_value_t = BuilderArg::Buildkit)]
    #[arg(help_heading = heading::CONTEXT)]
    pub builder: BuilderArg,
}

pub fn run(args: ExplainArgs) -> anyhow::Result<i32> {
    let (path, files) = match args.args.split_first() {
        Some((first, rest)) if !rest.is_empty() => (first.clone(), rest.to_vec()),
        _ => (PathBuf::from("."), args.args.clone()),
    };
    let context = ContextArgs {
        path,
        file: args.file,
        builder: args.builder,
    };
    let ctx = context.spec().resolve()?;
    let ignore_label = ctx
        .ignore_file()
        .map(|i| reggie_build::text::show_path(&i.path))
        .unwrap_or_else(|| "(no ignore file)".into());
    let mut out = String::new();
    for file in &files {
        let rel = file.as_os_str().as_bytes();
        let e = ctx.explain(rel)?;
        let shown = show(rel);
        let verdict = if e.included { "included" } else { "excluded" };
        let exists = ctx.root().join(file).symlink_metadata().is_ok();
        let missing = if exists {
            ""
        } else {
            " (not present in the context)"
        };
        match e.rule {
            Some(i) => {
                let rule = &ctx.matcher().rules()[i];
                let via = e
                    .via_directory
                    .as_ref()
                    .map(|d| format!(", through directory {}/", show(d)))
                    .unwrap_or_default();
                if rule.line == 0 {
                    out.push_str(&format!(
                        "{shown}: {verdict}{missing}: the classic docker CLI always sends `{}`{via}\n",
                        reggie_build::text::escape(rule.raw.trim_start_matches('!'))
                    ));
                } else {
                    out.push_str(&format!(
                        "{shown}: {verdict}{missing} by {ignore_label}:{}: {}{via}\n",
                        rule.line,
                        reggie_build::text::excerpt(&rule.raw)
                    ));
                }
            }
            None => out.push_str(&format!(
                "{shown}: {verdict}{missing}: no pattern in {ignore_label} matches\n"
            )),
        }
    }
    print_stdout(&out)?;
    Ok(0)
}
