//! The images a test makes: names unique to the test run, and a guard that
//! removes them when the test ends, passed or failed (on drop, which also
//! runs while a failed assertion unwinds), or, while other tests of the
//! process still build, as soon as the last of them ends.
//!
//! ```ignore
//! let images = Images::new(&env, "scratch");
//! let tag = images.tag("ours"); // reggie-t-scratch-<run>:ours
//! let pushed = images.track(format!("{registry}/reggie-e2e/x:v1"));
//! ```
#![allow(dead_code)]

use std::path::Path;
use std::sync::{Mutex, OnceLock};

use super::docker::{docker_cmd, Cli, Env};

/// What tells this test process's images from any other run's: the
/// process id and the clock, in lowercase hex (valid in a repository name).
pub fn run_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        format!("{:x}{:06x}", std::process::id(), nanos & 0xff_ffff)
    })
}

/// A name unique to this run and call: `<name>-<run>-<n>`.
pub fn unique(name: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{name}-{}-{n}", run_id())
}

/// Removes, on drop, every image of its repository (`reggie-t-<name>-<run>-<n>`,
/// whatever tags the test gave them, and of `<repository>-*`) and every reference it was told to
/// [`track`](Images::track) (registry tags, names a fixture chose).
pub struct Images {
    env: Env,
    repository: String,
    tracked: Mutex<Vec<String>>,
}

impl Images {
    /// A guard for the images of one test, named after `name`.
    pub fn new(env: &Env, name: &str) -> Images {
        LIVE.lock().unwrap_or_else(|e| e.into_inner()).guards += 1;
        Images {
            env: env.clone(),
            repository: format!("reggie-t-{}", unique(name)),
            tracked: Mutex::new(Vec::new()),
        }
    }

    /// The guarded repository (`reggie-t-<name>-<run>-<n>`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// `<repository>:<tag>`, removed on drop.
    pub fn tag(&self, tag: &str) -> String {
        format!("{}:{tag}", self.repository)
    }

    /// Removes `reference` too on drop; returns it.
    pub fn track(&self, reference: impl Into<String>) -> String {
        let reference = reference.into();
        self.tracked.lock().unwrap().push(reference.clone());
        reference
    }

    /// Every reference the guard removes now: its repository's tags as
    /// the daemon lists them, and the tracked ones.
    fn references(&self) -> Vec<String> {
        let mut all = self.tracked.lock().unwrap().clone();
        let listed = docker_cmd(&self.env, Cli::Classic, Path::new("/"))
            .args(["images", "--format", "{{.Repository}}:{{.Tag}}"])
            // The repository, and repositories named after it (a
            // monorepo's `<repository>-api`).
            .arg(format!("--filter=reference={}", self.repository))
            .arg(format!("--filter=reference={}-*", self.repository))
            .output();
        if let Ok(out) = listed {
            all.extend(
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .filter(|l| !l.is_empty() && !l.ends_with(":<none>"))
                    .map(str::to_string),
            );
        }
        all.sort();
        all.dedup();
        all
    }
}

impl Drop for Images {
    fn drop(&mut self) {
        let references = self.references();
        let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
        live.guards -= 1;
        live.pending.extend(references);
        if live.guards > 0 {
            return;
        }
        let pending = std::mem::take(&mut live.pending);
        if pending.is_empty() {
            return;
        }
        // One `docker rmi` for all: it removes what exists and reports the
        // rest; a cleanup failure never fails (or hides) the test's result.
        // The lock stays held: a test starting now builds after it.
        let _ = docker_cmd(&self.env, Cli::Classic, Path::new("/"))
            .args(["rmi", "-f"])
            .args(&pending)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// The guards alive in this test process and what the dropped ones left
/// to remove. Removal waits until no guard is alive: the classic builder
/// takes a cached step's image by id, so an image one test removes could
/// be the very one another test's build is about to use (it then fails
/// with "unable to find image").
struct Live {
    guards: usize,
    pending: Vec<String>,
}

static LIVE: Mutex<Live> = Mutex::new(Live {
    guards: 0,
    pending: Vec::new(),
});
