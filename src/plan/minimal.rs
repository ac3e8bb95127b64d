//! From a Dockerfile to the minimal context: the paths the target stage
//! reads become include patterns (symlinks along them resolved and their
//! targets added, as BuildKit's `FollowPaths` does), and the context walked
//! with them is exactly what a BuildKit build can see.

use std::collections::HashSet;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::context::ignore::gopath::clean;
use crate::context::{ignore::CompileError, Builder, Context};

use super::dockerfile::{self, ContextUse, Dockerfile, PlanOptions, UsedPath, WholeReason};

/// Errors while planning.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("cannot read the Dockerfile: {0}")]
    /// The Dockerfile could not be read.
    Read(crate::input::InputError),
    #[error(transparent)]
    /// The Dockerfile could not be parsed or planned.
    Dockerfile(#[from] dockerfile::DockerfileError),
    #[error("a COPY source is not a valid pattern: {0}")]
    /// A COPY source is not a valid pattern.
    Include(#[from] CompileError),
}

/// What a build reads of its context.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The parsed Dockerfile.
    pub dockerfile: Dockerfile,
    /// Its source text, for rewriting lines.
    pub source: String,
    /// The paths read, with the instructions that read them; empty when
    /// the whole context is used.
    pub used: Vec<UsedPath>,
    /// Why the whole context is used, if it is.
    pub whole: Vec<WholeReason>,
    /// Include patterns: the used paths plus resolved symlink targets.
    pub includes: Vec<Vec<u8>>,
    /// External base images, whose ONBUILD triggers cannot be known.
    pub external_bases: Vec<dockerfile::ExternalBase>,
}

impl Plan {
    /// Parses the context's Dockerfile and lists what the build reads.
    pub fn new(ctx: &Context, opts: &PlanOptions) -> Result<Plan, PlanError> {
        let path = ctx.dockerfile();
        let bytes = ctx.read_dockerfile().map_err(PlanError::Read)?;
        let label = path.display().to_string();
        let df = dockerfile::parse(&label, &bytes)?;
        let opts = PlanOptions {
            every_stage_to_target: opts.every_stage_to_target || ctx.builder() == Builder::Classic,
            ..opts.clone()
        };
        let analysis = dockerfile::analyze(&df, &opts)?;
        let (used, whole) = match analysis.context {
            ContextUse::Paths(paths) => (paths, Vec::new()),
            ContextUse::Whole(reasons) => (Vec::new(), reasons),
        };
        let mut includes: Vec<Vec<u8>> = Vec::new();
        if whole.is_empty() {
            for u in &used {
                follow_links(ctx.root(), u.pattern.as_bytes(), &mut includes);
            }
            includes.sort();
            includes.dedup();
        }
        Ok(Plan {
            dockerfile: df,
            source: String::from_utf8_lossy(&bytes).into_owned(),
            used,
            whole,
            includes,
            external_bases: analysis.external_bases,
        })
    }

    /// Whether the build may read the whole context.
    pub fn uses_whole_context(&self) -> bool {
        !self.whole.is_empty()
    }

    /// The context restricted to what the build reads. `filter` false keeps
    /// every sent entry and marks the needed ones (for analysis).
    pub fn apply(&self, ctx: &Context, filter: bool) -> Result<Context, PlanError> {
        if self.uses_whole_context() {
            return Ok(ctx.with_includes(&[b"**".to_vec()], filter)?);
        }
        Ok(ctx.with_includes(&self.includes, filter)?)
    }
}

/// Adds `pattern` and, for every symlink along it inside the context, the
/// link itself and the pattern re-rooted at the link's target.
pub(crate) fn follow_links(root: &Path, pattern: &[u8], out: &mut Vec<Vec<u8>>) {
    let mut queue = vec![normalize(pattern)];
    // A link loop must not run forever; Linux gives up after 40 hops.
    let mut hops = 0;
    // What this call added (a search of `out` would be quadratic in the
    // number of patterns; the caller sorts and dedups).
    let mut seen: HashSet<Vec<u8>> = HashSet::new();
    while let Some(p) = queue.pop() {
        if !seen.insert(p.clone()) {
            continue;
        }
        out.push(p.clone());
        if hops >= 40 {
            continue;
        }
        let components: Vec<&[u8]> = p.split(|&b| b == b'/').collect();
        let mut prefix: Vec<u8> = Vec::new();
        for (i, comp) in components.iter().enumerate() {
            if comp.iter().any(|b| matches!(b, b'*' | b'?' | b'[' | b'\\')) {
                break;
            }
            if !prefix.is_empty() {
                prefix.push(b'/');
            }
            prefix.extend_from_slice(comp);
            let disk = root.join(std::ffi::OsStr::from_bytes(&prefix));
            let Ok(meta) = std::fs::symlink_metadata(&disk) else {
                break;
            };
            if !meta.file_type().is_symlink() {
                continue;
            }
            let Ok(target) = std::fs::read_link(&disk) else {
                break;
            };
            let target = target.as_os_str().as_bytes();
            // Targets resolve inside the context: absolute ones from its
            // root, relative ones from the link's directory.
            let mut resolved = if target.starts_with(b"/") {
                target.to_vec()
            } else {
                let parent_len = prefix.iter().rposition(|&b| b == b'/').unwrap_or(0);
                let mut r = prefix[..parent_len].to_vec();
                r.push(b'/');
                r.extend_from_slice(target);
                r
            };
            for rest in &components[i + 1..] {
                resolved.push(b'/');
                resolved.extend_from_slice(rest);
            }
            if seen.insert(prefix.clone()) {
                out.push(prefix.clone());
            }
            queue.push(normalize(&resolved));
            hops += 1;
            break;
        }
    }
}

/// Cleans a path and clamps it inside the root: no leading `/` or `..`.
fn normalize(p: &[u8]) -> Vec<u8> {
    let mut rooted = b"/".to_vec();
    rooted.extend_from_slice(p);
    let cleaned = clean(&rooted);
    let rel = cleaned.strip_prefix(b"/").unwrap_or(&cleaned);
    if rel.is_empty() {
        b".".to_vec()
    } else {
        rel.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_clamps_at_root() {
        assert_eq!(normalize(b"../../a/./b/"), b"a/b");
        assert_eq!(normalize(b"/x"), b"x");
        assert_eq!(normalize(b".."), b".");
    }

    #[test]
    fn symlinks_along_a_path_add_their_targets() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("shared/lib")).unwrap();
        std::fs::create_dir_all(d.join("backend")).unwrap();
        std::os::unix::fs::symlink("../shared/lib", d.join("backend/lib")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", d.join("abs")).unwrap();
        std::os::unix::fs::symlink("loop", d.join("loop")).unwrap();
        let mut out = Vec::new();
        follow_links(d, b"backend/lib/x.py", &mut out);
        out.sort();
        assert_eq!(
            out,
            [
                b"backend/lib".to_vec(),
                b"backend/lib/x.py".to_vec(),
                b"shared/lib/x.py".to_vec()
            ]
        );
        let mut out = Vec::new();
        follow_links(d, b"abs", &mut out);
        assert!(out.contains(&b"etc/passwd".to_vec()));
        let mut out = Vec::new();
        follow_links(d, b"loop", &mut out);
        assert_eq!(out, [b"loop".to_vec()]);
    }
}
