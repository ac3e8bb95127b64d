//! Planning the minimal context: which files a build can reach.
//!
//! * `dockerfile` parses a Dockerfile like BuildKit and lists the context
//!   paths the target stage can read (BuildKit's followpaths).
//! * `minimal` turns those paths into the minimal file set, by walking the
//!   context with them as include patterns, as BuildKit's file sync does.

pub(crate) mod dockerfile;
pub(crate) mod minimal;

pub use dockerfile::{DockerfileError, PlanOptions};
pub use minimal::{Plan, PlanError};
