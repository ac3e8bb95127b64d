//! Which changed files reach which steps, answered once per distinct
//! question: images that share a context, its ignore files and a step's
//! patterns share the answer (a config may name one build many times, with
//! other tags or build args), and each answer is one pass over the changed
//! paths. The paths are sorted, so a source with a literal directory
//! (`COPY src/ ...`, `COPY src/**/*.py ...`) looks only at the range of
//! paths under it; a large rename costs one pass per distinct pattern set,
//! not one per image and step.

use std::collections::HashMap;
use std::path::Path;
use std::rc::Rc;

use super::git::Change;
use super::steps;
use crate::context::ignore::gopath::clean;
use crate::context::ignore::Matcher;

/// The path under `dir` (repository-relative), if inside.
pub(super) fn under<'a>(dir: &str, path: &'a [u8]) -> Option<&'a [u8]> {
    if dir == "." || dir.is_empty() {
        return Some(path);
    }
    path.strip_prefix(dir.as_bytes())?.strip_prefix(b"/")
}

/// The ignore file that applies: its path and compiled rules.
pub(super) struct IgnoreRules {
    pub(super) path: Option<String>,
    pub(super) matcher: Matcher,
}

impl IgnoreRules {
    pub(super) fn excluded(&self, rel: &[u8]) -> bool {
        self.matcher
            .matches_or_parent_matches(rel)
            .map(|v| v.excluded())
            .unwrap_or(false)
    }
}

/// Compiled include patterns of one step.
pub(super) struct Reader {
    pub(super) matcher: Matcher,
    pub(super) literal_prefixes: Vec<Vec<u8>>,
    pub(super) whole: bool,
    /// The step's patterns as given, and whether it reads everything: what
    /// steps with the same answer share ([`reach::Reach`]).
    pub(super) reads: Vec<String>,
    pub(super) reads_whole: bool,
}

impl Reader {
    pub(super) fn new(step: &steps::Step) -> Reader {
        let mut matcher = Matcher::default();
        let mut literal_prefixes = Vec::new();
        let mut whole = step.reads_whole;
        for p in &step.reads {
            if p == "." || p.is_empty() {
                whole = true;
                continue;
            }
            if matcher
                .push_include(Path::new("(Dockerfile paths)"), p.as_bytes())
                .is_err()
            {
                // A pattern that does not compile: the step may read anything.
                whole = true;
            }
            let lit: Vec<u8> = p
                .split('/')
                .take_while(|s| !s.contains(['*', '?', '[', '\\']))
                .collect::<Vec<_>>()
                .join("/")
                .into_bytes();
            literal_prefixes.push(lit);
        }
        Reader {
            matcher,
            literal_prefixes,
            whole,
            reads: step.reads.clone(),
            reads_whole: step.reads_whole,
        }
    }

    /// Whether a change at `rel` (context-relative) can change what it reads.
    pub(super) fn reaches(&self, rel: &[u8]) -> bool {
        if self.whole {
            return true;
        }
        if self
            .matcher
            .matches_or_parent_matches(rel)
            .is_ok_and(|v| v.excluded())
        {
            return true;
        }
        // A changed path above a pattern: a directory that became a
        // symlink or a submodule.
        self.literal_prefixes
            .iter()
            .any(|l| l.len() > rel.len() && l.starts_with(rel) && l[rel.len()] == b'/')
    }

    pub(super) fn reads_context(&self) -> bool {
        self.whole || !self.literal_prefixes.is_empty()
    }
}

/// The changes inside one context that its ignore files (at either
/// revision) send, sorted by context-relative path.
pub(super) struct Touched {
    id: usize,
    /// (context-relative path, index of the change), ascending.
    paths: Vec<(Vec<u8>, usize)>,
}

/// Answers shared by the images of one comparison.
pub(super) struct Reach<'a> {
    changes: &'a [Change],
    /// By (context, head ignore file, base ignore file).
    touched: HashMap<(String, Option<String>, Option<String>), Rc<Touched>>,
    /// By (touched id, a step's patterns, whether it reads everything):
    /// the indexes of the changes that reach the step, ascending.
    reached: HashMap<(usize, Vec<String>, bool), Rc<[usize]>>,
}

impl<'a> Reach<'a> {
    pub(super) fn new(changes: &'a [Change]) -> Reach<'a> {
        Reach {
            changes,
            touched: HashMap::new(),
            reached: HashMap::new(),
        }
    }

    /// The changes under `context` that are not ignored at both revisions.
    pub(super) fn touched(
        &mut self,
        context: &str,
        head: &IgnoreRules,
        base: &IgnoreRules,
    ) -> Rc<Touched> {
        let key = (context.to_string(), head.path.clone(), base.path.clone());
        let id = self.touched.len();
        let changes = self.changes;
        self.touched
            .entry(key)
            .or_insert_with(|| {
                let mut paths: Vec<(Vec<u8>, usize)> = changes
                    .iter()
                    .enumerate()
                    .filter_map(|(i, c)| {
                        let rel = under(context, &c.path).filter(|r| !r.is_empty())?;
                        let ignored = head.excluded(rel) && base.excluded(rel);
                        (!ignored).then(|| (rel.to_vec(), i))
                    })
                    .collect();
                paths.sort_unstable();
                Rc::new(Touched { id, paths })
            })
            .clone()
    }

    /// The indexes of the changes in `touched` that reach the step
    /// `reader` reads for, ascending.
    pub(super) fn reached(&mut self, touched: &Touched, reader: &Reader) -> Rc<[usize]> {
        let key = (touched.id, reader.reads.clone(), reader.reads_whole);
        if let Some(hit) = self.reached.get(&key) {
            return hit.clone();
        }
        let paths = &touched.paths;
        let candidates: Vec<usize> = if reader.whole {
            (0..paths.len()).collect()
        } else {
            candidates(paths, reader)
        };
        let mut found: Vec<usize> = candidates
            .into_iter()
            .filter_map(|at| {
                let (rel, i) = &paths[at];
                reader.reaches(rel).then_some(*i)
            })
            .collect();
        found.sort_unstable();
        let found: Rc<[usize]> = found.into();
        self.reached.insert(key, found.clone());
        found
    }
}

/// Positions in `paths` the step `reader` reads for can reach, ascending: for
/// each pattern, the paths under its literal directory (all of them when
/// it starts with a wildcard), and the paths above a literal prefix of
/// `reader` (a directory that became a link or a submodule). A superset:
/// [`Reader::reaches`] decides each.
fn candidates(paths: &[(Vec<u8>, usize)], reader: &Reader) -> Vec<usize> {
    let mut out: Vec<usize> = Vec::new();
    for p in &reader.reads {
        let Some(dir) = literal_dir(p) else {
            return (0..paths.len()).collect();
        };
        // `dir` itself, then everything under `dir/` (between them sort
        // names such as `dir-x`, which are skipped).
        let exact = paths.partition_point(|(r, _)| r.as_slice() < dir.as_slice());
        let end = paths.partition_point(|(r, _)| r.as_slice() <= dir.as_slice());
        out.extend(exact..end);
        let mut below = dir;
        below.push(b'/');
        let start = paths.partition_point(|(r, _)| r.as_slice() < below.as_slice());
        let len = paths[start..]
            .iter()
            .take_while(|(r, _)| r.starts_with(&below))
            .count();
        out.extend(start..start + len);
    }
    for l in &reader.literal_prefixes {
        for (pos, _) in l.iter().enumerate().filter(|(_, &b)| b == b'/') {
            let above = &l[..pos];
            let from = paths.partition_point(|(r, _)| r.as_slice() < above);
            let to = paths.partition_point(|(r, _)| r.as_slice() <= above);
            out.extend(from..to);
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// The leading directories of an include pattern (as the matcher cleans
/// it) that hold no character with a meaning to Docker's matcher: every
/// path the pattern matches is that path or below it. `None` when the
/// first segment has one (`*.py`, `**/x`), or a character whose meaning
/// depends on the regex (`{`, `^`; non-ASCII, which includes a BOM the
/// matcher drops), and when a `|` anywhere makes the pattern's regex an
/// alternation (patternmatcher does not escape it: `src/a|b` matches `xb`).
fn literal_dir(pattern: &str) -> Option<Vec<u8>> {
    let cleaned = clean(pattern.as_bytes());
    if cleaned.contains(&b'|') {
        return None;
    }
    let p = cleaned.strip_prefix(b"/").unwrap_or(&cleaned);
    let plain = |seg: &&[u8]| {
        !seg.is_empty()
            && seg
                .iter()
                .all(|&b| b.is_ascii() && !b"*?[]\\{}|^".contains(&b))
    };
    let segments: Vec<&[u8]> = p.split(|&b| b == b'/').take_while(plain).collect();
    (!segments.is_empty()).then(|| segments.join(&b'/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_dirs_stop_at_the_first_meaningful_character() {
        for (pattern, dir) in [
            ("src", Some("src")),
            ("/src/app/", Some("src/app")),
            ("./src/./a/../b", Some("src/b")),
            ("src/**/*.py", Some("src")),
            ("src/a{b,c}/x", Some("src")),
            ("a|b/c", None),
            ("src/a|b", None),
            ("*.py", None),
            ("**/x", None),
            ("\u{feff}src/x", None),
            (".", Some(".")),
        ] {
            assert_eq!(
                literal_dir(pattern).map(|d| String::from_utf8(d).unwrap()),
                dir.map(str::to_string),
                "{pattern}"
            );
        }
    }
}
