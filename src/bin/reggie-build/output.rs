//! Where output goes: the report formats, stdout, files written safely,
//! the GitHub step summary, and the global colour and `-q` choices.

use std::io::IsTerminal;

use clap::ValueEnum;

use crate::shared::ColorChoice;

/// Report formats of `analyze` and `check`.
#[derive(Debug, Clone, Copy, ValueEnum, Default, PartialEq, Eq)]
pub enum FormatArg {
    #[default]
    Human,
    Json,
    Markdown,
    Github,
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

/// Creates a new temporary file beside `path` (same directory, so a
/// rename replaces `path` atomically): an unpredictable name, created
/// exclusively and not through a link, so nothing planted there is
/// followed or reused.
pub fn create_temp_beside(
    path: &std::path::Path,
) -> anyhow::Result<(std::fs::File, std::path::PathBuf)> {
    use anyhow::Context as _;
    use std::os::unix::fs::OpenOptionsExt;
    let name = path
        .file_name()
        .with_context(|| format!("{} is not a file name", path.display()))?;
    let mut attempt = 0;
    loop {
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".tmp-{:016x}", random_u64()));
        let tmp = path.with_file_name(tmp_name);
        let opened = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp);
        match opened {
            Ok(file) => return Ok((file, tmp)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 16 => {
                attempt += 1;
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "cannot create a temporary file beside {}",
                        reggie_build::text::show_path(path)
                    )
                })
            }
        }
    }
}

/// Writes `contents` to `path` the safe way: never through a symlink (it
/// may point anywhere, a dangling one included), an existing file only
/// with `force` and keeping its mode, through an exclusive temporary file
/// renamed over it (a failure leaves the old file whole).
pub fn replace_file(path: &std::path::Path, contents: &[u8], force: bool) -> anyhow::Result<()> {
    use anyhow::{bail, Context as _};
    let shown = reggie_build::text::show_path(path);
    let mode = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => bail!(
            "{shown} is a symbolic link; not writing through it. Replace the link with a regular file (or remove it) and run again"
        ),
        Ok(m) if !m.is_file() => bail!("{shown} exists and is not a regular file; not writing it"),
        Ok(_) if !force => bail!("{shown} already exists; pass --force to overwrite it"),
        Ok(m) => Some(m.permissions()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("cannot inspect {shown}")),
    };
    let (mut file, tmp) = create_temp_beside(path)?;
    let written = (|| -> std::io::Result<()> {
        use std::io::Write as _;
        file.write_all(contents)?;
        if let Some(mode) = mode {
            file.set_permissions(mode)?;
        }
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {shown}"));
    }
    Ok(())
}

/// 64 random bits for a temporary name (the standard library's hasher keys
/// come from the OS's random source).
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
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

pub fn print_stdout(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
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
