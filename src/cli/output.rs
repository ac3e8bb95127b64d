//! Small helpers for writing to the terminal.

/// Whether an error is a closed stdout (`reggie-build ls | head`), which is
/// not a failure.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Renders raw path bytes for messages and reports: control characters
/// and invalid UTF-8 escaped (`ls` listings stay raw).
pub fn show(bytes: &[u8]) -> String {
    reggie_build::text::show_bytes(bytes)
}

/// Writes `text` to stdout, returning an error (not panicking) when stdout
/// is closed.
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
pub fn set_color(choice: super::analyze::ColorChoice) {
    COLOR.store(choice.enabled(), Ordering::Relaxed);
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
