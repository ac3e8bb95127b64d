//! Helpers shared by the integration tests.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::Path;

pub mod context;
pub mod docker;
pub mod images;
pub mod rng;

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

/// The variables `tests/services.sh` writes (`DOCKER_HOST`, the registry,
/// moto...), read from `$REGGIE_SERVICES_DIR/env` (default
/// /tmp/reggie-services/env). Missing, or without `DOCKER_HOST`, that is a
/// failure ([`missing_prerequisite`]); `None` only when skips are allowed.
#[allow(dead_code)]
pub fn services() -> Option<BTreeMap<String, String>> {
    let dir =
        std::env::var("REGGIE_SERVICES_DIR").unwrap_or_else(|_| "/tmp/reggie-services".into());
    let path = Path::new(&dir).join("env");
    let test = std::thread::current()
        .name()
        .unwrap_or("an end-to-end test")
        .to_string();
    let how = "Start the services with `bash tests/services.sh` (dockerd, registry, moto), or run `bash tests/run.sh`.";
    let Ok(text) = fs::read_to_string(&path) else {
        missing_prerequisite(&test, &format!("{} is missing", path.display()), how);
        return None;
    };
    let env: BTreeMap<String, String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            let v = v.trim().trim_matches('\'').trim_matches('"');
            (k.to_string(), v.to_string())
        })
        .collect();
    if !env.contains_key("DOCKER_HOST") {
        missing_prerequisite(
            &test,
            &format!("{} names no DOCKER_HOST", path.display()),
            how,
        );
        return None;
    }
    Some(env)
}

/// The wheel under test: `tests/run.sh` packages the lean debug build with
/// maturin (`maturin build --profile dev`: cargo finds the build `.ci/run`
/// made fresh, so maturin only packages) into `REGGIE_TEST_WHEELS`. It is
/// not built here: maturin would put the lean `reggie-build` in
/// target/debug, where the other test binaries expect the full one.
#[allow(dead_code)]
pub fn test_wheel() -> Option<std::path::PathBuf> {
    let dir = std::env::var_os("REGGIE_TEST_WHEELS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-deps/wheel"));
    let prefix = format!("reggie_build-{}-py3-none-", env!("CARGO_PKG_VERSION"));
    let found: Vec<std::path::PathBuf> = fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&prefix))
        })
        .collect();
    match found.as_slice() {
        [one] => Some(one.clone()),
        _ => None,
    }
}
