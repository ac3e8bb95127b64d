//! Helpers shared by the integration tests.

use std::fs;
use std::io::Write;
use std::path::Path;

/// Copies a directory tree (files and directories; fixtures have no links).
#[allow(dead_code)]
pub fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// A test cannot run because `what` is missing (`how` says how to get it).
///
/// That is a failure, unless the run allows skips with
/// `REGGIE_ALLOW_SKIP=1`: then the notice goes to the real stderr (the
/// harness' capture would swallow `eprintln!`) and, when
/// `REGGIE_SKIP_LOG` names a file, a line is appended to it so that
/// `tests/run.sh` can count skips in its closing summary. The caller
/// returns after this.
#[allow(dead_code)]
pub fn missing_prerequisite(test: &str, what: &str, how: &str) {
    let allowed = std::env::var("REGGIE_ALLOW_SKIP")
        .map(|v| !v.is_empty() && v != "0")
        .unwrap_or(false);
    if !allowed {
        panic!(
            "{test} cannot run: {what}.\n{how}\n(set REGGIE_ALLOW_SKIP=1 to skip it instead; the skip is then counted in the summary)"
        );
    }
    let notice = format!("\n!!! SKIPPED {test}: {what}. {how}\n\n");
    let _ = std::io::stderr().write_all(notice.as_bytes());
    if let Some(log) = std::env::var_os("REGGIE_SKIP_LOG") {
        if let Ok(mut f) = fs::OpenOptions::new().create(true).append(true).open(log) {
            let _ = writeln!(f, "{test}: {what}");
        }
    }
}
