//! How to get to the minimal context: the narrowest context directory, the
//! Dockerfile lines and build configuration to change, and an ignore file
//! that is checked to keep every path the Dockerfile reads.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::context::{Builder, Context, ContextSpec, FileKind};
use crate::plan::Plan;

use super::rules::RuleSet;
use super::{os, show, AnalyzeError};

/// A narrower context that still holds everything the build reads.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ContextSuggestion {
    /// The directory, relative to the current context (e.g. `backend`).
    pub dir: String,
    /// The Dockerfile relative to the new context.
    pub dockerfile: String,
    /// COPY/ADD lines rewritten for the new context.
    pub rewrites: Vec<Rewrite>,
    /// `docker build` before and after.
    pub docker_build: (String, String),
    /// docker compose `build:` section.
    pub compose: String,
    /// SST `image:` option.
    pub sst: String,
}

/// One Dockerfile line, before and after.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Rewrite {
    pub line: usize,
    pub before: String,
    pub after: String,
}

/// A suggested ignore file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IgnoreSuggestion {
    /// Where it goes (`<Dockerfile>.dockerignore`, or `.dockerignore` in the
    /// context directory for the classic builder).
    pub path: PathBuf,
    /// The context directory it is written for.
    pub context: PathBuf,
    pub text: String,
    /// Every path the Dockerfile reads is still sent with it (checked by
    /// walking the context with it).
    pub verified: bool,
    /// Files and bytes sent with it.
    pub files: u64,
    pub bytes: u64,
}

/// Components of a used path up to its first wildcard.
fn literal_components(p: &[u8]) -> Vec<&[u8]> {
    p.split(|&b| b == b'/')
        .take_while(|c| !c.iter().any(|b| matches!(b, b'*' | b'?' | b'[' | b'\\')))
        .filter(|c| !c.is_empty() && *c != b".")
        .collect()
}

/// The deepest directory holding every path the build reads, if deeper
/// than the context root.
pub fn narrowest_dir(ctx: &Context, plan: &Plan) -> Option<Vec<u8>> {
    if plan.uses_whole_context() || plan.includes.is_empty() {
        return None;
    }
    let mut common: Option<Vec<&[u8]>> = None;
    for inc in &plan.includes {
        let comps = literal_components(inc);
        common = Some(match common {
            None => comps,
            Some(prev) => prev
                .iter()
                .zip(comps.iter())
                .take_while(|(a, b)| a == b)
                .map(|(a, _)| *a)
                .collect(),
        });
    }
    let mut comps = common?;
    // A context is a directory: drop a last component that is a file.
    while !comps.is_empty() {
        let joined = comps.join(&b'/');
        let on_disk = ctx.root().join(os(&joined));
        if on_disk.is_dir() && !on_disk.is_symlink() {
            return Some(joined);
        }
        comps.pop();
    }
    None
}

/// The narrowest context suggestion, with the edits it takes.
pub fn narrowest_context(ctx: &Context, plan: &Plan) -> Option<ContextSuggestion> {
    let dir = narrowest_dir(ctx, plan)?;
    let dir_s = show(&dir);
    let new_root = ctx.root().join(os(&dir));
    let dockerfile_rel = match ctx.dockerfile_rel() {
        Some(rel) if rel.starts_with(&dir) && rel.get(dir.len()) == Some(&b'/') => {
            show(&rel[dir.len() + 1..])
        }
        _ => ctx.dockerfile().display().to_string(),
    };
    let used_lines: BTreeSet<usize> = plan.used.iter().map(|u| u.line).collect();
    let mut rewrites = Vec::new();
    for stage in &plan.dockerfile.stages {
        for ins in &stage.instructions {
            if !used_lines.contains(&ins.line) || !matches!(ins.keyword.as_str(), "COPY" | "ADD") {
                continue;
            }
            if ins.flag("from").is_some() {
                continue;
            }
            let mut after = ins.original.clone();
            let sources = ins.args.len().saturating_sub(1);
            for src in &ins.args[..sources] {
                let trimmed = src.trim_start_matches("./").trim_start_matches('/');
                let new = if trimmed == dir_s || trimmed == format!("{dir_s}/") {
                    Some(".".to_string())
                } else {
                    trimmed
                        .strip_prefix(&format!("{dir_s}/"))
                        .map(str::to_string)
                };
                if let Some(new) = new {
                    after = replace_word(&after, src, &new);
                }
            }
            if after != ins.original {
                rewrites.push(Rewrite {
                    line: ins.line,
                    before: ins.original.clone(),
                    after,
                });
            }
        }
    }
    let old_ctx = ctx.root().display().to_string();
    let df_shown = ctx.dockerfile().display().to_string();
    let new_ctx = new_root.display().to_string();
    // `-f` can go when the Dockerfile is the new context's default one.
    let after_cmd = if dockerfile_rel == "Dockerfile" {
        format!("docker build {new_ctx}")
    } else {
        format!("docker build -f {df_shown} {new_ctx}")
    };
    Some(ContextSuggestion {
        dir: dir_s.clone(),
        dockerfile: dockerfile_rel.clone(),
        rewrites,
        docker_build: (format!("docker build -f {df_shown} {old_ctx}"), after_cmd),
        compose: format!("build: {{ context: ./{dir_s}, dockerfile: {dockerfile_rel} }}"),
        sst: format!("image: {{ context: \"./{dir_s}\", dockerfile: \"{dockerfile_rel}\" }}"),
    })
}

/// Replaces whole-word occurrences of `word` (bounded by whitespace,
/// quotes, brackets or commas).
fn replace_word(text: &str, word: &str, new: &str) -> String {
    if word.is_empty() {
        return text.to_string();
    }
    let boundary = |c: Option<char>| {
        c.is_none_or(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '[' | ']' | ','))
    };
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find(word) {
        let before = rest[..pos].chars().last();
        let after = rest[pos + word.len()..].chars().next();
        let at_start = pos == 0 && out.is_empty();
        let before_ok = if at_start { true } else { boundary(before) };
        out.push_str(&rest[..pos]);
        if before_ok && boundary(after) {
            out.push_str(new);
        } else {
            out.push_str(word);
        }
        rest = &rest[pos + word.len()..];
    }
    out.push_str(rest);
    out
}

/// Rules whose matches may be wanted by a Dockerfile that copies them, so
/// they are not excluded inside re-included directories.
const NEVER_AUTO_EXCLUDE: &[&str] = &["ml/model-files", "dev/tests"];

/// Builds an allowlist ignore file for the suggested (or current) context:
/// exclude everything, re-include what the Dockerfile reads, then exclude
/// caches, dependencies and secrets found inside those paths. The result is
/// checked by walking the context with it; a junk pattern that would drop
/// a used path is left out.
pub fn ignore_file(
    ctx: &Context,
    plan: &Plan,
    rules: &RuleSet,
    suggestion: Option<&ContextSuggestion>,
) -> Result<Option<IgnoreSuggestion>, AnalyzeError> {
    if plan.uses_whole_context() {
        return Ok(None);
    }
    let dir: Vec<u8> = suggestion
        .map(|s| s.dir.as_bytes().to_vec())
        .unwrap_or_default();
    let root = if dir.is_empty() {
        ctx.root().to_path_buf()
    } else {
        ctx.root().join(os(&dir))
    };
    let strip = |p: &[u8]| -> Option<Vec<u8>> {
        if dir.is_empty() {
            return Some(p.to_vec());
        }
        if p == dir.as_slice() {
            return Some(b".".to_vec());
        }
        p.strip_prefix(dir.as_slice())
            .and_then(|r| r.strip_prefix(b"/"))
            .map(<[u8]>::to_vec)
    };
    let used: Vec<Vec<u8>> = plan.includes.iter().filter_map(|p| strip(p)).collect();
    if used.iter().any(|u| u == b".") {
        return Ok(None);
    }
    let target = ContextSpec {
        root: root.clone(),
        dockerfile: Some(ctx.dockerfile().to_path_buf()),
        builder: ctx.builder(),
    }
    .resolve()?;
    let path = match ctx.builder() {
        Builder::BuildKit => {
            let mut name = ctx.dockerfile().as_os_str().to_os_string();
            name.push(".dockerignore");
            PathBuf::from(name)
        }
        Builder::Classic => root.join(".dockerignore"),
    };

    let mut allow = String::from(
        "# Everything is excluded, then what the Dockerfile reads is re-included.\n*\n",
    );
    for u in &used {
        allow.push('!');
        allow.push_str(&show(u));
        allow.push('\n');
    }
    // Junk inside the re-included paths.
    let base = target.with_ignore_text(&path, allow.as_bytes())?;
    let minimal = base.with_includes(&used, true)?;
    let mut junk: Vec<(String, String)> = Vec::new();
    minimal.walk::<AnalyzeError, _>(|e| {
        if used
            .iter()
            .any(|u| u.as_slice() == e.rel || is_prefix_dir(e.rel, u))
        {
            return Ok(());
        }
        let is_dir = e.kind == FileKind::Dir;
        let path = e.path;
        let has_child = |c: &str| path.join(c).symlink_metadata().is_ok();
        let m = rules.classify(e.rel, is_dir, &has_child, &|| {
            e.read_head(super::rules::CONTENT_LIMIT)
        });
        if let Some(m) = m {
            if NEVER_AUTO_EXCLUDE.contains(&m.rule.id.as_str()) {
                return Ok(());
            }
            let name = show(e.rel.rsplit(|&b| b == b'/').next().unwrap_or(e.rel));
            let pattern = m.ignore_pattern(&name);
            if !junk.iter().any(|(p, _)| *p == pattern) {
                junk.push((pattern, m.rule.kind.clone()));
            }
        }
        Ok(())
    })?;

    // Keep only junk patterns that leave every used path in place.
    let mut kept: Vec<(String, String)> = Vec::new();
    for candidate in junk {
        let mut trial = kept.clone();
        trial.push(candidate.clone());
        if keeps_every_used_path(&target, &path, &render(&allow, &trial), &used)?.ok {
            kept = trial;
        }
    }
    let text = render(&allow, &kept);
    let check = keeps_every_used_path(&target, &path, &text, &used)?;
    let header = format!(
        "# Suggested by reggie-build for context {} and Dockerfile {}.\n",
        root.display(),
        ctx.dockerfile().display()
    );
    Ok(Some(IgnoreSuggestion {
        path,
        context: root,
        text: format!("{header}{text}"),
        verified: check.ok,
        files: check.files,
        bytes: check.bytes,
    }))
}

fn is_prefix_dir(dir: &[u8], path: &[u8]) -> bool {
    path.len() > dir.len() && path.starts_with(dir) && path[dir.len()] == b'/'
}

fn render(allow: &str, junk: &[(String, String)]) -> String {
    let mut text = allow.to_string();
    if !junk.is_empty() {
        text.push_str("# Never send these, even inside re-included directories:\n");
        for (pattern, _) in junk {
            text.push_str(pattern);
            text.push('\n');
        }
    }
    text
}

struct Check {
    ok: bool,
    files: u64,
    bytes: u64,
}

/// Walks `target` with `text` as its ignore file and the used paths as
/// includes; ok when each used path still sends at least one file (or,
/// for a symlink or empty directory, itself).
fn keeps_every_used_path(
    target: &Context,
    label: &Path,
    text: &str,
    used: &[Vec<u8>],
) -> Result<Check, AnalyzeError> {
    let ctx = target.with_ignore_text(label, text.as_bytes())?;
    let minimal = ctx.with_includes(used, true)?;
    let mut hit = vec![false; used.len()];
    let mut files = 0u64;
    let mut bytes = 0u64;
    let summary = minimal.walk::<AnalyzeError, _>(|e| {
        if e.kind != FileKind::Dir {
            files += 1;
        }
        if e.kind == FileKind::File {
            bytes += std::fs::symlink_metadata(e.path).map_or(0, |m| m.len());
        }
        for (i, u) in used.iter().enumerate() {
            if e.rel == u.as_slice() || (e.kind != FileKind::Dir && is_prefix_dir(u, e.rel)) {
                hit[i] = true;
            }
        }
        Ok(())
    })?;
    // Wildcard paths are judged by the include matcher's own hits.
    for (i, h) in hit.iter_mut().enumerate() {
        if !*h && summary.include_hits.get(i).copied().unwrap_or(0) > 0 {
            let u = &used[i];
            *h = u.iter().any(|b| matches!(b, b'*' | b'?' | b'['));
        }
    }
    // A used directory that exists but is empty on disk is fine as is.
    for (i, h) in hit.iter_mut().enumerate() {
        if !*h {
            let on_disk = target.root().join(os(&used[i]));
            // Not through a link: its target may lie outside the context.
            let is_dir = on_disk.symlink_metadata().is_ok_and(|m| m.is_dir());
            if is_dir && std::fs::read_dir(&on_disk).is_ok_and(|mut d| d.next().is_none()) {
                *h = true;
            }
        }
    }
    Ok(Check {
        ok: hit.iter().all(|&h| h),
        files,
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_word_only_replaces_whole_words() {
        assert_eq!(
            replace_word("COPY backend/app/ ./app/", "backend/app/", "app/"),
            "COPY app/ ./app/"
        );
        assert_eq!(
            replace_word("COPY [\"backend/a b\", \"/x\"]", "backend/a b", "a b"),
            "COPY [\"a b\", \"/x\"]"
        );
        assert_eq!(
            replace_word("COPY xbackend/a .", "backend/a", "a"),
            "COPY xbackend/a ."
        );
    }

    #[test]
    fn literal_components_stop_at_wildcards() {
        assert_eq!(
            literal_components(b"backend/*.txt"),
            [b"backend".as_slice()]
        );
        assert_eq!(
            literal_components(b"a/b/c"),
            [b"a".as_slice(), b"b".as_slice(), b"c".as_slice()]
        );
    }
}
