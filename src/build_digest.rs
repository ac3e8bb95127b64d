//! `reggie-build digest`: one content digest of everything a build reads,
//! for tools that key deploys on a hash (CDK `assetHash`, Pulumi, SST, a
//! Makefile).
//!
//! It covers the minimal context (paths, kinds, permission bits, link
//! targets and contents of what the Dockerfile can reach, as
//! [`crate::context::digest`] hashes them: no mtimes, owners or inode
//! numbers), the Dockerfile's bytes, every build argument, the target and
//! the platform. Two clones of the same commit hash the same; a file the
//! build cannot read changes nothing. A second run reads only the files
//! that changed (the context survey's hash cache).

use sha2::{Digest as _, Sha256};

use crate::check::Target;
use crate::context::survey::survey;
use crate::context::tarball::{TarError, TarOptions};
use crate::context::ContextError;
use crate::plan::{Plan, PlanError};

/// Errors computing a build digest.
#[derive(Debug, thiserror::Error)]
pub enum BuildDigestError {
    #[error(transparent)]
    /// The context could not be resolved.
    Context(#[from] ContextError),
    #[error(transparent)]
    /// The Dockerfile could not be planned.
    Plan(#[from] PlanError),
    #[error(transparent)]
    /// The minimal context's include patterns do not compile.
    Include(#[from] crate::context::ignore::CompileError),
    #[error(transparent)]
    /// Walking or reading the context failed.
    Tar(#[from] TarError),
}

/// A build's digest and what went into it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BuildDigest {
    /// `sha256:<hex>` over all of the below.
    pub digest: String,
    /// The minimal context alone.
    pub context: String,
    /// Entries of the minimal context (directories included).
    pub entries: u64,
    /// Bytes of file contents.
    pub bytes: u64,
}

/// Format version, hashed first: a change of what is covered changes
/// every digest rather than colliding with an old one.
const VERSION: &[u8] = b"reggie-build build digest 1\0";

/// Computes the digest of `target`'s build.
pub fn build_digest(target: &Target) -> Result<BuildDigest, BuildDigestError> {
    let ctx = target.spec.resolve()?;
    let plan = Plan::new(&ctx, &target.plan)?;
    let minimal = plan.apply(&ctx, true)?;
    // Files unchanged since the last run are not read (the hash cache).
    let survey = survey(&minimal, &TarOptions::default())?;
    let context = survey.digest;
    let mut h = Sha256::new();
    let mut field = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_be_bytes());
        h.update(bytes);
    };
    field(VERSION);
    field(context.as_bytes());
    field(plan.source.as_bytes());
    field(target.plan.target.as_deref().unwrap_or("").as_bytes());
    field(target.plan.platform.as_deref().unwrap_or("").as_bytes());
    // Sorted (a BTreeMap): the order they were given in does not matter.
    for (k, v) in &target.plan.build_args {
        field(k.as_bytes());
        field(v.as_bytes());
    }
    let digest = format!("sha256:{}", hex(&h.finalize()));
    Ok(BuildDigest {
        digest,
        context,
        entries: survey.entries,
        bytes: survey.content_bytes,
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
