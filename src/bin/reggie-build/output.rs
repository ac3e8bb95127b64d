//! Where output goes: the report formats, stdout, files written safely,
//! the GitHub step summary, and the global colour and `-q` choices.

use std::io::IsTerminal;

use clap::ValueEnum;

use crate::shared::ColorChoice;

/// Report formats of `analyze` and `check`.
#[derive(Debug, Clone, Copy, ValueEnum, Default, PartialEq, Eq)]
pub enum FormatArg {
    /// The report for a terminal.
    #[default]
    Human,
    /// One versioned JSON object (`"schema": 1`).
    Json,
    /// Markdown, for a pull-request comment.
    Markdown,
    /// GitHub workflow commands (findings on pull-request lines), and a
    /// summary appended to $GITHUB_STEP_SUMMARY.
    Github,
    /// SARIF 2.1.0, for code scanning.
    Sarif,
    /// One self-contained HTML page (a treemap of the context for
    /// `analyze`, the budgets for `check`).
    Html,
}

/// Appends markdown to `$GITHUB_STEP_SUMMARY` when it is set.
pub fn append_step_summary(markdown: &str) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use std::io::Write as _;
    if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot append to GITHUB_STEP_SUMMARY {path:?}"))?;
        f.write_all(markdown.as_bytes())?;
    }
    Ok(())
}

/// Renders raw path bytes for messages and reports: control characters
/// and invalid UTF-8 escaped (`ls` listings stay raw).
pub fn show(bytes: &[u8]) -> String {
    reggie_build::text::show_bytes(bytes)
}

/// Writes `contents` to `path` the safe way: never through a symlink (the
/// destination itself, or a directory on the way inside the repository or
/// the current directory: see `reggie_build::output`), an existing file
/// only with `force` and keeping its mode, through an exclusive temporary
/// file renamed over it (a failure leaves the old file whole).
pub fn replace_file(path: &std::path::Path, contents: &[u8], force: bool) -> anyhow::Result<()> {
    use anyhow::{bail, Context as _};
    use reggie_build::output::{Destination, Existing};
    use std::os::unix::fs::PermissionsExt;
    let shown = reggie_build::text::show_path(path);
    let dest = Destination::open(path, &[], false)?;
    let mode = match dest.existing()? {
        Existing::Nothing => None,
        Existing::File(_) if !force => {
            bail!("{shown} already exists; pass --force to overwrite it")
        }
        Existing::File(mode) => Some(mode),
        Existing::Dir | Existing::Special => {
            bail!("{shown} exists and is not a regular file; not writing it")
        }
    };
    let (mut file, tmp) = dest.create_temp()?;
    let written = (|| -> std::io::Result<()> {
        use std::io::Write as _;
        file.write_all(contents)?;
        if let Some(mode) = mode {
            file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        }
        file.sync_all()
    })();
    drop(file);
    if let Err(e) = written
        .map_err(anyhow::Error::from)
        .and_then(|()| Ok(dest.commit(&tmp)?))
    {
        dest.remove_temp(&tmp);
        return Err(e).with_context(|| format!("cannot write {shown}"));
    }
    Ok(())
}

/// Writes `text` to stdout, returning an error (not panicking) when stdout
/// is closed.
/// A report to `-o FILE` (replaced as a whole, never through a symbolic
/// link: a report is regenerated, so an existing file is overwritten), or
/// to stdout.
pub fn write_report(output: Option<&std::path::Path>, text: &str) -> anyhow::Result<()> {
    match output {
        Some(path) => {
            replace_file(path, text.as_bytes(), true)?;
            if !quiet() {
                eprintln!("wrote {}", reggie_build::text::show_path(path));
            }
            Ok(())
        }
        None => print_stdout(text),
    }
}

/// Writes `text` to stdout and flushes it: a failure (a full disk, a
/// closed pipe) is an error, never a panic.
pub fn print_stdout(text: &str) -> anyhow::Result<()> {
    crate::shared::print_stdout_bytes(text.as_bytes())
}

use std::sync::atomic::{AtomicBool, Ordering};

static COLOR: AtomicBool = AtomicBool::new(false);
static QUIET: AtomicBool = AtomicBool::new(false);

/// Records the global `--color` choice for stdout reports.
pub fn set_color(choice: ColorChoice) {
    COLOR.store(
        choice.enabled_for(std::io::stdout().is_terminal()),
        Ordering::Relaxed,
    );
}

/// Whether stdout reports use colour.
pub fn color_enabled() -> bool {
    COLOR.load(Ordering::Relaxed)
}

/// Records `-q`.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// Whether `-q` was given: notes and warnings are not printed.
pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}
