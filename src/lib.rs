//! reggie-build: a Docker build context optimizer and image builder for
//! monorepos.
//!
//! The library is the pipeline; the `reggie-build` binary is a thin layer
//! over it:
//!
//! 1. [`context`]: which files Docker would send for a build (its exact
//!    `.dockerignore` semantics, BuildKit's or the classic builder's), and
//!    the tar stream that carries them.
//! 2. [`plan`]: which of those files the Dockerfile can reach.
//! 3. [`analyze`]: measure and report: what is sent, what is needed, what
//!    is wasted and why, and how to fix it.
//! 4. [`ship`]: build the image through the Docker daemon, the context
//!    streamed as the request body.
//! 5. [`publish`]: push it (ECR tokens, docker config credentials).
//!
//! [`ops`] has one entry point per command that runs several stages
//! ([`ops::image`]: plan, build, push).
//!
//! [`discover`] finds the images a repo builds (Dockerfiles, compose, SST);
//! [`affected`] says which of them a git change affects, and from which
//! step their build cache is busted.
//!
//! # Example
//!
//! What Docker would send for a build, with BuildKit's rules:
//!
//! ```
//! use reggie_build::context::{ContextSpec, FileKind, WalkError};
//!
//! let dir = tempfile::tempdir()?;
//! std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\nCOPY . /app/\n")?;
//! std::fs::write(dir.path().join(".dockerignore"), "*.pyc\n")?;
//! std::fs::write(dir.path().join("main.py"), "print(1)\n")?;
//! std::fs::write(dir.path().join("main.pyc"), "")?;
//!
//! let ctx = ContextSpec::new(dir.path()).resolve()?;
//! let mut sent = Vec::new();
//! ctx.walk::<WalkError, _>(|entry| {
//!     if entry.kind != FileKind::Dir {
//!         sent.push(String::from_utf8_lossy(entry.rel).into_owned());
//!     }
//!     Ok(())
//! })?;
//! sent.sort();
//! assert_eq!(sent, [".dockerignore", "Dockerfile", "main.py"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Public API
//!
//! Each stage is a public module; the pieces inside a stage that only the
//! stage itself uses (the walk, the ignore file's parser, the Dockerfile
//! parser, git access, analyze's suggestion and treemap builders, the
//! registry and ECR clients, the BuildKit session, file sync and gRPC
//! plumbing...) are private or crate-private, and what the binaries need
//! is re-exported at the stage's root (`analyze::Detail`,
//! `publish::EcrError`, `ship::Remote`, `ship::parse_secrets`...).
//! Everything public is documented: `missing_docs` is denied, with no
//! exceptions.

#![deny(missing_docs)]

pub mod affected;
pub mod analyze;
#[cfg(feature = "image")]
pub mod auth;
pub mod build_digest;
pub mod check;
pub mod config;
pub mod context;
pub mod csv;
pub mod discover;
pub mod error_chain;
pub mod formats;
#[doc(hidden)]
pub mod fuzzing;
pub mod git;
pub mod input;
pub mod inspect;
#[cfg(feature = "image")]
pub mod ops;
pub mod output;
pub mod plan;
pub mod reference;
// The image builder (feature `image`, on by default): the Docker, BuildKit
// and AWS stacks, which the analysis commands never need.
#[cfg(feature = "image")]
pub mod publish;
#[cfg(feature = "image")]
pub mod ship;
pub mod text;
pub mod units;

#[cfg(test)]
pub(crate) mod test_support {
    /// Runs the real `git ARGS` in `dir` (a test's own setup, with an
    /// author), asserting it succeeds.
    pub(crate) fn git(dir: &std::path::Path, args: &[&str]) {
        let out = std::process::Command::new("git")
            .current_dir(dir)
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .output()
            .expect("git runs");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs `f` on a thread with a 2 MiB stack (a quarter of the main
    /// thread's 8 MiB), so a recursion on input that is not bounded
    /// overflows in the test.
    pub(crate) fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(f)
            .expect("spawn a test thread")
            .join()
            .expect("the test thread panicked")
    }
}
