//! How to get to the minimal context: the narrowest context directory, the
//! Dockerfile lines and build configuration to change, and an ignore file
//! checked file by file to send what today's build sends under every path
//! the Dockerfile reads (but for what it says it drops, and why).

use crate::context::ignore::file::MAX_LINE;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::context::ignore::gopath::is_valid_match_pattern;
use crate::context::{Builder, Context, ContextSpec, FileKind};
use crate::plan::Plan;

use super::rules::RuleSet;
use super::{os, show, AnalyzeError};

/// A narrower context that still holds everything the build reads.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ContextSuggestion {
    /// The directory, relative to the current context (e.g. `backend`).
    pub dir: String,
    /// The Dockerfile relative to the new context (as compose and SST
    /// read `dockerfile`).
    pub dockerfile: String,
    /// COPY/ADD lines rewritten for the new context.
    pub rewrites: Vec<Rewrite>,
    /// `docker build` before and after, with paths relative to the
    /// current directory.
    pub docker_build: (String, String),
    /// docker compose `build:` section: `context` relative to the current
    /// context (where a compose file building it would sit), `dockerfile`
    /// relative to the new context.
    pub compose: String,
    /// SST `image:` option, with paths like compose's.
    pub sst: String,
}

/// One Dockerfile line, before and after.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Rewrite {
    /// 1-based line in the Dockerfile.
    pub line: usize,
    /// The line as it is.
    pub before: String,
    /// The line with its paths relative to the narrower context.
    pub after: String,
}

/// A suggested ignore file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IgnoreSuggestion {
    /// Where it goes: `<Dockerfile>.dockerignore`, or `.dockerignore` in
    /// the context directory for the classic builder (and for BuildKit in
    /// a narrower context, when neither file exists).
    pub path: PathBuf,
    /// The context directory it is written for.
    pub context: PathBuf,
    /// The file's content, comments included.
    pub text: String,
    /// Checked file by file: under every path the Dockerfile reads, it
    /// sends exactly what today's build sends, except [`Self::dropped`].
    pub verified: bool,
    /// Files and bytes a build with it sends.
    pub files: u64,
    /// See [`Self::files`].
    pub bytes: u64,
    /// What it deliberately leaves out although a COPY reads it today.
    pub dropped: Vec<Dropped>,
    /// When not verified, a few paths (relative to [`Self::context`]) it
    /// sends that today's build does not (`+`) or misses (`-`).
    pub differences: Vec<String>,
}

/// Entries today's build sends under a path the Dockerfile reads that the
/// suggested ignore file leaves out on purpose.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Dropped {
    /// Relative to the suggested context; a directory ends in `/`.
    pub path: String,
    /// Files left out there.
    pub files: u64,
    /// What it is and why it can go.
    pub why: String,
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
    // The Dockerfile relative to the new context, as compose and SST
    // resolve `dockerfile` (`../Dockerfile` when it stays above).
    let (dockerfile_rel, inside) = match ctx.dockerfile_rel() {
        Some(rel) if rel.starts_with(&dir) && rel.get(dir.len()) == Some(&b'/') => {
            (show(&rel[dir.len() + 1..]), true)
        }
        _ => (
            relative_to(&new_root, ctx.dockerfile())
                .unwrap_or_else(|| ctx.dockerfile().display().to_string()),
            false,
        ),
    };
    // Only COPY/ADD sources are rewritten: a RUN --mount source or an
    // ONBUILD trigger would still name the old path.
    if plan
        .used
        .iter()
        .any(|u| !matches!(u.instruction.as_str(), "COPY" | "ADD"))
    {
        return None;
    }
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
                if !ins.json && src.starts_with("<<") {
                    continue;
                }
                let trimmed = src.trim_start_matches("./").trim_start_matches('/');
                let new = if trimmed == dir_s || trimmed == format!("{dir_s}/") {
                    Some(".".to_string())
                } else {
                    trimmed
                        .strip_prefix(&format!("{dir_s}/"))
                        .map(str::to_string)
                };
                // A source that does not spell the directory out
                // (`${DIR}/x`) cannot be rewritten: no narrower context.
                let new = new.filter(|_| !src.contains('$'))?;
                after = replace_word(&after, src, &new);
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
    // Quoted for the shell: the commands are meant to be run as printed.
    let word = |p: &Path| crate::text::shell_word(&p.to_string_lossy()).into_owned();
    let old_ctx = word(ctx.root());
    let df_shown = word(ctx.dockerfile());
    let new_ctx = word(&new_root);
    // docker looks for `Dockerfile` in the context: `-f` can go only when
    // that is the file (paths on the command line are relative to the
    // current directory).
    let after_cmd = if dockerfile_rel == "Dockerfile" && inside {
        format!("docker build {new_ctx}")
    } else {
        format!("docker build -f {df_shown} {new_ctx}")
    };
    Some(ContextSuggestion {
        dir: dir_s.clone(),
        dockerfile: dockerfile_rel.clone(),
        rewrites,
        docker_build: (format!("docker build -f {df_shown} {old_ctx}"), after_cmd),
        compose: format!(
            "build: {{ context: {}, dockerfile: {} }}",
            crate::text::yaml_scalar(&format!("./{dir_s}")),
            crate::text::yaml_scalar(&dockerfile_rel)
        ),
        // A JSON string is a TypeScript string literal.
        sst: format!(
            "image: {{ context: {}, dockerfile: {} }}",
            serde_json::Value::from(format!("./{dir_s}")),
            serde_json::Value::from(dockerfile_rel.as_str())
        ),
    })
}

/// `to` relative to the directory `from`, lexically (both made absolute
/// against the current directory first); `None` when that fails.
fn relative_to(from: &Path, to: &Path) -> Option<String> {
    let from = std::path::absolute(from).ok()?;
    let to = std::path::absolute(to).ok()?;
    let norm = |p: &Path| -> Vec<std::ffi::OsString> {
        let mut out: Vec<std::ffi::OsString> = Vec::new();
        for c in p.components() {
            match c {
                std::path::Component::ParentDir => {
                    out.pop();
                }
                std::path::Component::Normal(n) => out.push(n.to_os_string()),
                _ => {}
            }
        }
        out
    };
    let (f, t) = (norm(&from), norm(&to));
    let common = f.iter().zip(&t).take_while(|(a, b)| a == b).count();
    let mut rel = PathBuf::new();
    for _ in common..f.len() {
        rel.push("..");
    }
    for c in &t[common..] {
        rel.push(c);
    }
    rel.to_str().map(str::to_string)
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

/// Rules whose files the suggestion may drop even where a COPY reads
/// them today: what they match is rebuilt on its own, so the image works
/// the same without it. Every other rule's pattern is suggested only where
/// it leaves the image unchanged.
const DROPPED_EVEN_WHEN_COPIED: &[&str] = &["python/pycache", "python/bytecode"];

/// Entries (relative path -> kind) a walk sends under the paths read.
type Sent = BTreeMap<Vec<u8>, FileKind>;

/// Builds an allowlist ignore file for the suggested (or current) context:
/// exclude everything, re-include what the Dockerfile reads, keep the
/// user's own rules (re-rooted for a narrower context) so that what they
/// exclude stays excluded, then exclude caches, dependencies and secrets
/// where that leaves the image as it is. The result is checked file by
/// file against what today's build sends under the paths read.
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
    let mut used: Vec<Vec<u8>> = plan.includes.iter().filter_map(|p| strip(p)).collect();
    // A path no ignore file can name (Docker refuses lines over 64 KiB):
    // no allowlist can re-include it, so there is nothing to suggest.
    if used.iter().any(|u| u.len() >= MAX_LINE) {
        return Ok(None);
    }
    // The build reads all of the narrower context: no allowlist, but the
    // user's rules still have to follow it there.
    let whole_dir = used.iter().any(|u| u == b".");
    if whole_dir {
        if dir.is_empty() {
            return Ok(None);
        }
        used = vec![b"**".to_vec()];
    }
    // What today's build sends under the paths read, re-rooted.
    let mut today = Sent::new();
    plan.apply(ctx, true)?.walk::<AnalyzeError, _>(|e| {
        if let Some(rel) = strip(e.rel).filter(|r| r != b".") {
            today.insert(rel, e.kind);
        }
        Ok(())
    })?;
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
            let specific = PathBuf::from(name);
            // A file beside the Dockerfile applies to every context it is
            // built with, the current one too, which these patterns would
            // break: for a narrower context, its own `.dockerignore`
            // (BuildKit's fallback) when neither file exists yet.
            let own = root.join(".dockerignore");
            if !dir.is_empty()
                && specific.symlink_metadata().is_err()
                && own.symlink_metadata().is_err()
            {
                own
            } else {
                specific
            }
        }
        Builder::Classic => root.join(".dockerignore"),
    };

    let mut text = String::new();
    if !whole_dir {
        text.push_str(
            "# Everything is excluded, then what the Dockerfile reads is re-included.\n*\n",
        );
        for u in &used {
            text.push('!');
            // Used paths are patterns already (`public/*.html`).
            text.push_str(&show(u));
            text.push('\n');
        }
    }
    let own = user_rules(ctx, &dir);
    // Nothing to say but the file's own name: the narrower context alone
    // is the fix, and writing the file would only add it to a COPY source
    // of today's build.
    let mut has_rules = !whole_dir || !own.is_empty();
    if !own.is_empty() {
        text.push_str("# The rules of your ignore file, so what they exclude stays excluded:\n");
        text.push_str(&own);
    }
    // The file itself, once written inside the context, must stay out of
    // the image as it is today (the walk cannot see a file not written).
    if let Some(rel) = relative_to(&root, &path).filter(|r| !r.starts_with("..")) {
        if !today.contains_key(rel.as_bytes()) {
            if let Some(lit) = escape_literal(rel.as_bytes()) {
                text.push_str(match ctx.builder() {
                    Builder::BuildKit => "# This file itself, which today's build does not send:\n",
                    // The classic client sends it whatever it says; the
                    // daemon drops it from the build when it is excluded.
                    Builder::Classic => "# This file itself: the classic client sends it anyway, and listed here the daemon leaves it out of the build:\n",
                });
                text.push_str(&lit);
                text.push('\n');
            }
        }
    }
    // Where re-rooting cannot say it, name what differs.
    let sent = sent_under(&target, &path, &text, &used)?;
    let (extra, missing) = differences(&sent, &today);
    if !extra.is_empty() || !missing.is_empty() {
        let fixes = literal_fixes(&extra, &missing);
        if !fixes.is_empty() {
            has_rules = true;
            text.push_str("# Sent or excluded by name, as today:\n");
            text.push_str(&fixes);
        }
    }
    let mut sent = sent_under(&target, &path, &text, &used)?;

    // Junk inside the re-included paths.
    let mut junk: Vec<(String, String, String)> = Vec::new();
    for (rel, kind) in &sent {
        if used.iter().any(|u| u == rel) {
            continue;
        }
        let is_dir = *kind == FileKind::Dir;
        let disk = root.join(os(rel));
        // Never through a link, never blocking, never unbounded: the
        // repository is untrusted input.
        let m = rules.classify(
            rel,
            is_dir,
            &|c| disk.join(c).symlink_metadata().is_ok(),
            &|| {
                crate::input::read_head(
                    &root,
                    Path::new(os(rel)),
                    super::rules::CONTENT_LIMIT as u64,
                )
            },
        );
        if let Some(m) = m {
            let name = show(rel.rsplit(|&b| b == b'/').next().unwrap_or(rel));
            let pattern = m.ignore_pattern(&name);
            if !junk.iter().any(|(p, _, _)| *p == pattern) {
                junk.push((pattern, m.rule.id.clone(), m.rule.description.clone()));
            }
        }
    }
    let mut kept: Vec<String> = Vec::new();
    let mut dropped_set = Sent::new();
    let mut dropped: Vec<Dropped> = Vec::new();
    for (pattern, id, why) in junk {
        let trial = render(&text, &kept, Some(&pattern));
        let trial_sent = sent_under(&target, &path, &trial, &used)?;
        if trial_sent.keys().any(|k| !sent.contains_key(k)) {
            continue;
        }
        let removed: Sent = sent
            .iter()
            .filter(|(k, _)| !trial_sent.contains_key(*k))
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        if !removed.is_empty() && !DROPPED_EVEN_WHEN_COPIED.contains(&id.as_str()) {
            continue;
        }
        for top in topmost(&removed) {
            let files = removed
                .iter()
                .filter(|(k, kind)| {
                    **kind != FileKind::Dir && (*k == &top || is_prefix_dir(&top, k))
                })
                .count() as u64;
            let dir_mark = if removed.get(&top) == Some(&FileKind::Dir) {
                "/"
            } else {
                ""
            };
            dropped.push(Dropped {
                path: format!("{}{dir_mark}", show(&top)),
                files,
                why: why.clone(),
            });
        }
        dropped_set.extend(removed);
        kept.push(pattern);
        sent = trial_sent;
    }
    let text = render(&text, &kept, None);
    if text.is_empty() || (!has_rules && kept.is_empty()) {
        return Ok(None);
    }
    let sent = sent_under(&target, &path, &text, &used)?;
    let mut expected = today.clone();
    expected.retain(|k, _| !dropped_set.contains_key(k));
    let (extra, missing) = differences(&sent, &expected);
    // A path the Dockerfile reads is compared as a whole too: one the
    // suggestion sends nothing of fails the build (`COPY` finds nothing)
    // where today's build sends it, or where it is there to send (a file
    // excluded today as well: reproducing a failing `COPY` is no fix). A
    // path that exists in neither (a `dist/` the build step creates, a
    // `.env` the deploy writes) is agreement.
    let lost = used
        .iter()
        .filter(|u| !reaches(&sent, u) && (reaches(&today, u) || on_disk(&root, u)));
    let differences: Vec<String> = extra
        .iter()
        .map(|p| format!("+{}", show(p)))
        .chain(missing.iter().map(|p| format!("-{}", show(p))))
        .chain(lost.map(|u| format!("nothing of {}", show(u))))
        .take(5)
        .collect();
    let header = format!(
        "# Suggested by reggie-build for context {} and Dockerfile {}.\n",
        crate::text::show_path(&root),
        crate::text::show_path(ctx.dockerfile())
    );
    let text = format!("{header}{text}");
    let totals = totals(&target, &path, &text)?;
    Ok(Some(IgnoreSuggestion {
        path,
        context: root,
        text,
        verified: differences.is_empty(),
        files: totals.0,
        bytes: totals.1,
        dropped,
        differences,
    }))
}

/// The user's ignore rules for the context `dir` below the current one:
/// as written when `dir` is the current context, re-rooted otherwise
/// (rules that cannot apply below `dir` go).
fn user_rules(ctx: &Context, dir: &[u8]) -> String {
    let mut out = String::new();
    for rule in ctx.matcher().rules().iter().filter(|r| r.line > 0) {
        // Never copied: the ignore file may be a link to a file of secrets
        // (`.git/config` with a CI token).
        if crate::text::looks_like_credential(&rule.raw) {
            out.push_str(&format!(
                "# Left out: line {} of the ignore file looks like a credential (is the file a link to a file of secrets?)\n",
                rule.line
            ));
            continue;
        }
        let line = if dir.is_empty() {
            Some(rule.raw.trim().to_string())
        } else {
            // A part Docker never checked (`d*/x\\` below `dz` is `x\\`)
            // may be invalid alone: left out, the check below names what
            // differs instead.
            reroot(rule.pattern.as_bytes(), dir)
                .filter(|p| is_valid_match_pattern(p) && std::str::from_utf8(p).is_ok())
                .map(|p| {
                    let bang = if rule.exception { "!" } else { "" };
                    format!("{bang}{}", show(&p))
                })
        };
        if let Some(line) = line {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

/// A cleaned pattern of the current context as a pattern of its
/// subdirectory `dir`, or `None` when it matches nothing below `dir`.
fn reroot(pattern: &[u8], dir: &[u8]) -> Option<Vec<u8>> {
    if pattern.starts_with(b"**") {
        return Some(pattern.to_vec());
    }
    let parts: Vec<&[u8]> = pattern.split(|&b| b == b'/').collect();
    let dirs: Vec<&[u8]> = dir.split(|&b| b == b'/').collect();
    for (i, d) in dirs.iter().enumerate() {
        let Some(part) = parts.get(i) else {
            // It matches an ancestor of the new root: everything in it.
            return Some(b"**".to_vec());
        };
        if *part == b"**" {
            return Some(parts[i..].join(&b'/'));
        }
        if !crate::context::ignore::Pattern::new(part)
            .matches(d)
            .unwrap_or(false)
        {
            return None;
        }
    }
    if parts.len() == dirs.len() {
        return Some(b"**".to_vec());
    }
    Some(parts[dirs.len()..].join(&b'/'))
}

/// A path as an ignore pattern matching only itself, if one can.
fn escape_literal(rel: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(rel).ok()?;
    // Escaped, it must still fit on a line Docker reads.
    if s.is_empty()
        || s.len() * 2 >= MAX_LINE
        || s.starts_with(char::is_whitespace)
        || s.ends_with(char::is_whitespace)
        || s.contains(['\n', '\r'])
    {
        return None;
    }
    let mut out = String::with_capacity(s.len() + 2);
    if s.starts_with(['!', '#']) {
        out.push('\\');
    }
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    Some(out)
}

/// Lines that exclude the topmost `extra` entries and re-include the
/// topmost `missing` ones by name.
fn literal_fixes(extra: &[Vec<u8>], missing: &[Vec<u8>]) -> String {
    let mut out = String::new();
    for (set, bang) in [(extra, ""), (missing, "!")] {
        let set: Sent = set.iter().map(|p| (p.clone(), FileKind::File)).collect();
        for top in topmost(&set) {
            if let Some(lit) = escape_literal(&top) {
                out.push_str(bang);
                out.push_str(&lit);
                out.push('\n');
            }
        }
    }
    out
}

/// Entries with no ancestor in the set.
fn topmost(set: &Sent) -> Vec<Vec<u8>> {
    set.keys()
        .filter(|k| {
            !k.iter()
                .enumerate()
                .any(|(i, &b)| b == b'/' && set.contains_key(&k[..i]))
        })
        .cloned()
        .collect()
}

/// (sent but not expected, expected but not sent).
fn differences(sent: &Sent, expected: &Sent) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let extra = sent
        .keys()
        .filter(|k| !expected.contains_key(*k))
        .cloned()
        .collect();
    let missing = expected
        .keys()
        .filter(|k| !sent.contains_key(*k))
        .cloned()
        .collect();
    (extra, missing)
}

fn is_prefix_dir(dir: &[u8], path: &[u8]) -> bool {
    path.len() > dir.len() && path.starts_with(dir) && path[dir.len()] == b'/'
}

fn render(text: &str, junk: &[String], trial: Option<&str>) -> String {
    let mut text = text.to_string();
    if !junk.is_empty() || trial.is_some() {
        text.push_str("# Never send these (the image stays the same, except as reported):\n");
        for pattern in junk.iter().map(String::as_str).chain(trial) {
            text.push_str(pattern);
            text.push('\n');
        }
    }
    text
}

/// What `target` sends under the paths read with `text` as its ignore
/// file.
fn sent_under(
    target: &Context,
    label: &Path,
    text: &str,
    used: &[Vec<u8>],
) -> Result<Sent, AnalyzeError> {
    let ctx = target.with_ignore_text(label, text.as_bytes())?;
    let mut out = Sent::new();
    ctx.with_includes(used, true)?
        .walk::<AnalyzeError, _>(|e| {
            out.insert(e.rel.to_vec(), e.kind);
            Ok(())
        })?;
    Ok(out)
}

/// Files and bytes `target` sends once `text` is written to `label`:
/// the file itself counts where it lands inside the context and is sent
/// (always, by the classic client, for `.dockerignore`), with its new
/// size, as `ls` lists it after `--write-ignore`.
fn totals(target: &Context, label: &Path, text: &str) -> Result<(u64, u64), AnalyzeError> {
    let ctx = target.with_ignore_text(label, text.as_bytes())?;
    let own = relative_to(target.root(), label)
        .filter(|r| !r.starts_with(".."))
        .map(String::into_bytes);
    let (mut files, mut bytes) = (0u64, 0u64);
    ctx.walk::<AnalyzeError, _>(|e| {
        if own.as_deref() == Some(e.rel) {
            return Ok(());
        }
        if e.kind != FileKind::Dir {
            files += 1;
        }
        if e.kind == FileKind::File {
            bytes += std::fs::symlink_metadata(e.path).map_or(0, |m| m.len());
        }
        Ok(())
    })?;
    if let Some(rel) = own {
        if ctx.explain(&rel)?.included {
            files += 1;
            bytes += text.len() as u64;
        }
    }
    Ok((files, bytes))
}

/// Whether something is there to send under the path the Dockerfile
/// reads `used`: the path itself (not an empty directory), or for a
/// wildcard its literal directory, not empty. Looked at beneath `root`,
/// no link followed.
fn on_disk(root: &Path, used: &[u8]) -> bool {
    let literal: Vec<u8> = literal_components(used).join(&b'/');
    let wild = used.iter().any(|b| matches!(b, b'*' | b'?' | b'[' | b'\\'));
    let rel = Path::new(os(&literal));
    match crate::input::list_dir_no_links(root, rel, 1) {
        Some(entries) => !entries.is_empty(),
        None => !wild && !literal.is_empty() && crate::input::lstat_no_links(root, rel).is_some(),
    }
}

/// Whether `sent` holds something under the path the Dockerfile reads
/// `used` (a pattern: the path itself, below it, or for a wildcard a
/// match or a match's content).
fn reaches(sent: &Sent, used: &[u8]) -> bool {
    if used.iter().any(|b| matches!(b, b'*' | b'?' | b'[' | b'\\')) {
        let pattern = crate::context::ignore::Pattern::new(used);
        return sent.keys().any(|k| pattern.matches_or_parent(k));
    }
    sent.keys().any(|k| k == used || is_prefix_dir(used, k))
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
    fn rules_rerooted_below_the_context() {
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("*/dist", "app", Some("dist")),
            ("app/dist", "app", Some("dist")),
            ("other/dist", "app", None),
            ("**/node_modules", "app", Some("**/node_modules")),
            ("app/**/x", "app", Some("**/x")),
            ("a*/b/*.log", "apps/b", Some("*.log")),
            ("app", "app", Some("**")),
            ("*", "apps/web", Some("**")),
            ("apps/*/.next", "apps/web", Some(".next")),
            ("apps/web", "apps/api", None),
        ];
        for (pattern, dir, want) in cases {
            let got = reroot(pattern.as_bytes(), dir.as_bytes());
            assert_eq!(
                got.as_deref(),
                want.map(str::as_bytes),
                "{pattern} under {dir}"
            );
        }
    }

    #[test]
    fn rerooted_rules_stay_valid() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for (p, c) in [
            ("dz/x", "x"),
            ("dz/y", "y"),
            (".dockerignore", "d*/x\\\nd*/y\n"),
            ("Dockerfile", "FROM scratch\nCOPY dz/x dz/y /\n"),
        ] {
            std::fs::create_dir_all(d.join(p).parent().unwrap()).unwrap();
            std::fs::write(d.join(p), c).unwrap();
        }
        let ctx = ContextSpec {
            root: d.to_path_buf(),
            dockerfile: None,
            builder: Builder::BuildKit,
        }
        .resolve()
        .unwrap();
        assert_eq!(user_rules(&ctx, b"dz"), "y\n");
        let plan = Plan::new(&ctx, &Default::default()).unwrap();
        let s = narrowest_context(&ctx, &plan);
        assert!(ignore_file(&ctx, &plan, &RuleSet::builtin(), s.as_ref()).is_ok());
    }

    /// Writing the file for a narrower context leaves the current
    /// command's upload as it is.
    #[test]
    fn a_narrower_suggestion_does_not_change_the_current_build() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for (p, c) in [
            ("app/src/a.js", "a"),
            ("app/dist/b.js", "b"),
            ("app/package.json", "{}"),
            (".dockerignore", "*/dist\n"),
            (
                "Dockerfile",
                "FROM scratch\nCOPY app/src /src\nCOPY app/package.json /\n",
            ),
        ] {
            std::fs::create_dir_all(d.join(p).parent().unwrap()).unwrap();
            std::fs::write(d.join(p), c).unwrap();
        }
        let sent = || {
            let ctx = ContextSpec {
                root: d.to_path_buf(),
                dockerfile: None,
                builder: Builder::BuildKit,
            }
            .resolve()
            .unwrap();
            let plan = Plan::new(&ctx, &Default::default()).unwrap();
            let mut out = Vec::new();
            plan.apply(&ctx, true)
                .unwrap()
                .walk::<AnalyzeError, _>(|e| {
                    out.push(e.rel.to_vec());
                    Ok(())
                })
                .unwrap();
            (ctx, plan, out)
        };
        let (ctx, plan, before) = sent();
        let s = narrowest_context(&ctx, &plan).unwrap();
        let ig = ignore_file(&ctx, &plan, &RuleSet::builtin(), Some(&s))
            .unwrap()
            .unwrap();
        assert!(ig.verified, "{ig:?}");
        assert_eq!(ig.path, d.join("app/.dockerignore"));
        std::fs::write(&ig.path, &ig.text).unwrap();
        assert_eq!(sent().2, before);
    }

    #[test]
    fn no_narrower_context_when_a_source_cannot_be_rewritten() {
        for df in [
            "FROM scratch\nARG D=conf\nCOPY ${D}/*.toml /etc/\n",
            "FROM busybox\nRUN --mount=type=bind,source=conf/a,target=/a true\nCOPY conf/b /b\n",
            "FROM scratch AS base\nONBUILD COPY conf/a /a\nFROM base\nCOPY conf/b /b\n",
        ] {
            let dir = tempfile::tempdir().unwrap();
            let d = dir.path();
            std::fs::create_dir_all(d.join("conf")).unwrap();
            for f in ["a", "b", "x.toml"] {
                std::fs::write(d.join("conf").join(f), "x").unwrap();
            }
            std::fs::write(d.join("Dockerfile"), df).unwrap();
            let ctx = ContextSpec {
                root: d.to_path_buf(),
                dockerfile: None,
                builder: Builder::BuildKit,
            }
            .resolve()
            .unwrap();
            let plan = Plan::new(&ctx, &Default::default()).unwrap();
            assert!(narrowest_dir(&ctx, &plan).is_some(), "{df}");
            assert!(narrowest_context(&ctx, &plan).is_none(), "{df}");
        }
    }

    /// Issue 13 item 3: a Dockerfile above the narrower context keeps
    /// `-f`, and compose/SST get it relative to the new context.
    #[test]
    fn commands_for_a_dockerfile_above_the_new_context() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("apps/web/src")).unwrap();
        std::fs::write(d.join("apps/web/src/a.js"), "a").unwrap();
        std::fs::write(d.join("apps/web/package.json"), "{}").unwrap();
        std::fs::write(
            d.join("Dockerfile"),
            "FROM scratch\nCOPY apps/web/src /src\nCOPY apps/web/package.json /\n",
        )
        .unwrap();
        let ctx = ContextSpec {
            root: d.to_path_buf(),
            dockerfile: None,
            builder: Builder::BuildKit,
        }
        .resolve()
        .unwrap();
        let plan = Plan::new(&ctx, &Default::default()).unwrap();
        let s = narrowest_context(&ctx, &plan).unwrap();
        assert_eq!(s.dir, "apps/web");
        assert_eq!(s.dockerfile, "../../Dockerfile");
        assert!(
            s.docker_build.1.starts_with("docker build -f "),
            "{}",
            s.docker_build.1
        );
        assert!(
            s.compose.contains("dockerfile: ../../Dockerfile"),
            "{}",
            s.compose
        );
        assert!(
            s.sst.contains("dockerfile: \"../../Dockerfile\""),
            "{}",
            s.sst
        );
        assert_eq!(
            relative_to(Path::new("/a/b/c"), Path::new("/a/x/Dockerfile")).as_deref(),
            Some("../../x/Dockerfile")
        );
    }

    /// Names a shell or YAML would split are quoted in the suggested
    /// commands.
    #[test]
    fn commands_quote_names_with_spaces() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("my repo");
        std::fs::create_dir_all(d.join("web app/src")).unwrap();
        std::fs::write(d.join("web app/src/a.js"), "a").unwrap();
        std::fs::write(
            d.join("Dockerfile"),
            "FROM scratch\nCOPY [\"web app/src\", \"/src\"]\n",
        )
        .unwrap();
        let ctx = ContextSpec {
            root: d.clone(),
            dockerfile: None,
            builder: Builder::BuildKit,
        }
        .resolve()
        .unwrap();
        let plan = Plan::new(&ctx, &Default::default()).unwrap();
        let s = narrowest_context(&ctx, &plan).unwrap();
        assert_eq!(s.dir, "web app/src");
        let root = d.display();
        assert_eq!(
            s.docker_build.1,
            format!("docker build -f '{root}/Dockerfile' '{root}/web app/src'")
        );
        assert_eq!(
            s.compose,
            "build: { context: \"./web app/src\", dockerfile: ../../Dockerfile }"
        );
        assert_eq!(
            s.sst,
            "image: { context: \"./web app/src\", dockerfile: \"../../Dockerfile\" }"
        );
    }

    #[test]
    fn literals_match_only_themselves() {
        assert_eq!(escape_literal(b"a/b[1]*.txt").unwrap(), "a/b\\[1\\]\\*.txt");
        assert_eq!(escape_literal(b"!x").unwrap(), "\\!x");
        assert_eq!(escape_literal(b"#x").unwrap(), "\\#x");
        assert!(escape_literal(b" x").is_none());
        assert!(escape_literal(b"a\nb").is_none());
        assert!(escape_literal(b"\xff").is_none());
    }

    /// Issue 13 item 2: the user's exclusions inside a re-included
    /// directory stay excluded, and nothing a COPY takes today is dropped
    /// but what the report names.
    #[test]
    fn suggestion_sends_what_today_sends() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for (p, c) in [
            ("app/dist/bundle.js", "x"),
            ("app/src/index.js", "s"),
            ("app/.next/cache", "n"),
            ("app/.turbo/log", "t"),
            ("app/coverage/lcov", "c"),
            ("app/npm-debug.log", "l"),
            ("app/.env", "E=1"),
            ("app/lib/__pycache__/m.pyc", "p"),
            ("top.txt", "t"),
            ("other/o.txt", "o"),
            (".dockerignore", "*/dist\nother\n"),
            (
                "Dockerfile",
                "FROM scratch\nCOPY ./app /app\nCOPY top.txt /\n",
            ),
        ] {
            std::fs::create_dir_all(d.join(p).parent().unwrap()).unwrap();
            std::fs::write(d.join(p), c).unwrap();
        }
        for builder in [Builder::BuildKit, Builder::Classic] {
            let ctx = ContextSpec {
                root: d.to_path_buf(),
                dockerfile: None,
                builder,
            }
            .resolve()
            .unwrap();
            let plan = Plan::new(&ctx, &Default::default()).unwrap();
            let ig = ignore_file(&ctx, &plan, &RuleSet::builtin(), None)
                .unwrap()
                .unwrap();
            assert!(ig.verified, "{builder:?}: {ig:?}");
            assert!(ig.text.contains("\n*/dist\n"), "{}", ig.text);
            let with = ctx.with_ignore_text(&ig.path, ig.text.as_bytes()).unwrap();
            let mut sent = Vec::new();
            with.walk::<AnalyzeError, _>(|e| {
                if e.kind != FileKind::Dir {
                    sent.push(show(e.rel));
                }
                Ok(())
            })
            .unwrap();
            for keep in [
                "app/src/index.js",
                "app/.next/cache",
                "app/.turbo/log",
                "app/coverage/lcov",
                "app/npm-debug.log",
                "app/.env",
                "top.txt",
            ] {
                assert!(
                    sent.iter().any(|s| s == keep),
                    "{builder:?}: {keep} {sent:?}"
                );
            }
            assert!(
                !sent
                    .iter()
                    .any(|s| s.starts_with("app/dist") || s.contains("__pycache__")),
                "{sent:?}"
            );
            let dropped: Vec<&str> = ig.dropped.iter().map(|d| d.path.as_str()).collect();
            assert_eq!(dropped, ["app/lib/__pycache__/"]);
        }
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
