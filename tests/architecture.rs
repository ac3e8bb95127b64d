//! ARCHITECTURE.md's directions, checked on the sources: each top-level
//! module of the library imports (`crate::x`) only the modules listed
//! before it in [`LAYERS`], and a child module never imports its parent
//! module's own items (`super::helper`), only its siblings
//! (`super::sibling::Item`) and other modules. Reads `src/` as text: no
//! build of anything, and a new import against the direction fails here
//! with the file and line.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The library's top-level modules, bottom first: each may import only
/// the ones before it. `fuzzing` (the fuzz targets' bodies) may import
/// anything and nothing imports it.
const LAYERS: &[&str] = &[
    // Leaves: depend on nothing of ours.
    "text",
    "units",
    "csv",
    "error_chain",
    "git",
    // Leaves over `text` (excerpts in their errors).
    "input",
    "output",
    "reference",
    "auth",
    // The pipeline's stages.
    "context",
    "config",
    "discover",
    "plan",
    "analyze",
    "check",
    "affected",
    "inspect",
    "build_digest",
    "formats",
    "ship",
    "publish",
    // One call per command that runs several stages.
    "ops",
];

/// Children that still import their parent module's own items: the debt
/// this test keeps from growing. Remove a line when its module is fixed;
/// never add one.
const PARENT_IMPORTS_LEFT: &[&str] = &[
    "src/affected/git.rs",
    "src/affected/render.rs",
    "src/analyze/findings.rs",
    "src/analyze/report.rs",
    "src/analyze/suggest.rs",
    "src/analyze/tree.rs",
    "src/context/fold.rs",
    "src/context/survey.rs",
    "src/context/tarball.rs",
    "src/context/walk.rs",
    "src/discover/compose.rs",
    "src/discover/sst.rs",
    "src/discover/walk.rs",
    "src/discover/write.rs",
    "src/plan/dockerfile/directives.rs",
    "src/plan/dockerfile/followpaths.rs",
    "src/plan/dockerfile/instructions.rs",
    "src/plan/dockerfile/parser.rs",
    "src/publish/reuse.rs",
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The lines of a file that are code: comments and the unit tests at the
/// end (`#[cfg(test)] mod tests`) left out.
fn code_lines(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut prev = "";
    for (i, line) in text.lines().enumerate() {
        if line.starts_with("mod tests") && prev.contains("cfg(test)") {
            out.pop();
            break;
        }
        prev = line;
        if !line.trim_start().starts_with("//") {
            out.push((i + 1, line));
        }
    }
    out
}

/// The module paths a line names from the crate root (`crate::a::b`, and
/// each item of `use crate::{a, b::c}`), as segment lists.
fn crate_paths(line: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("crate::") {
        let before = rest[..i].chars().last();
        rest = &rest[i + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                out.push(segments(item.trim()));
            }
            continue;
        }
        out.push(segments(rest));
    }
    out
}

/// `a::b::{c, d}` or `a::b::C as D;` → `[a, b, ...]` up to the first
/// character that is not part of a path.
fn segments(s: &str) -> Vec<String> {
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(s.len());
    s[..end]
        .split("::")
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

/// The names a line takes from `super::` (`super::x`, `super::{x, y}`).
fn super_names(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("super::") {
        rest = &rest[i + "super::".len()..];
        if rest.starts_with("super::") {
            // A grandparent: not this rule's business.
            rest = &rest["super::".len()..];
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                if let Some(first) = segments(item.trim()).into_iter().next() {
                    out.push(first);
                }
            }
            continue;
        }
        if let Some(first) = segments(rest).into_iter().next() {
            out.push(first);
        }
    }
    out
}

/// The top-level module a library file belongs to (`src/ship/x.rs` →
/// `ship`, `src/units.rs` → `units`); `None` for the crate root.
fn top_module(rel: &Path) -> Option<String> {
    let first = rel.components().next()?.as_os_str().to_str()?;
    match first {
        "lib.rs" => None,
        f => Some(f.trim_end_matches(".rs").to_string()),
    }
}

/// The child modules a parent module file declares (`mod x;`,
/// `pub(crate) mod x;`...).
fn declared_modules(parent: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(parent).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let l = l.trim_start();
            let l = l
                .strip_prefix("pub(crate) ")
                .or_else(|| l.strip_prefix("pub(super) "))
                .or_else(|| l.strip_prefix("pub "))
                .unwrap_or(l);
            let name = l.strip_prefix("mod ")?.strip_suffix(';')?;
            Some(name.trim().to_string())
        })
        .collect()
}

#[test]
fn modules_import_only_what_is_below_them() {
    let root = src();
    let mut wrong = Vec::new();
    let mut seen = BTreeSet::new();
    for file in rust_files(&root) {
        let rel = file.strip_prefix(&root).unwrap().to_path_buf();
        if rel.starts_with("bin") {
            continue;
        }
        let Some(module) = top_module(&rel) else {
            continue;
        };
        seen.insert(module.clone());
        if module == "fuzzing" {
            continue;
        }
        let Some(level) = LAYERS.iter().position(|m| *m == module) else {
            wrong.push(format!(
                "src/{}: module `{module}` is not in LAYERS (tests/architecture.rs) nor in ARCHITECTURE.md's table; add it to both where it belongs",
                rel.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in code_lines(&text) {
            for path in crate_paths(line) {
                let Some(target) = path.first() else { continue };
                if *target == module {
                    continue;
                }
                match LAYERS.iter().position(|m| m == target) {
                    Some(t) if t < level => {}
                    Some(_) => wrong.push(format!(
                        "src/{}:{n}: `{module}` imports `{target}`, which is above it in ARCHITECTURE.md's order: {}",
                        rel.display(),
                        line.trim()
                    )),
                    None => {}
                }
            }
        }
    }
    for m in LAYERS {
        assert!(
            seen.contains(*m),
            "LAYERS names `{m}`, which src/ does not have"
        );
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn children_do_not_import_their_parents_helpers() {
    let root = src();
    let mut wrong = Vec::new();
    let mut still = BTreeSet::new();
    for file in rust_files(&root) {
        let rel = file.strip_prefix(&root).unwrap().to_path_buf();
        if rel.starts_with("bin") {
            continue;
        }
        let name = file.file_name().unwrap().to_str().unwrap();
        if name == "mod.rs" || name == "lib.rs" {
            // A mod.rs's `super` is its grandparent's face: not a helper.
            continue;
        }
        let Some(dir) = file.parent() else { continue };
        let parent = dir.join("mod.rs");
        if !parent.exists() {
            continue;
        }
        let siblings = declared_modules(&parent);
        let shown = format!("src/{}", rel.display());
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in code_lines(&text) {
            for item in super_names(line) {
                if item == "self" || siblings.contains(&item) {
                    continue;
                }
                if PARENT_IMPORTS_LEFT.contains(&shown.as_str()) {
                    still.insert(shown.clone());
                    continue;
                }
                wrong.push(format!(
                    "{shown}:{n}: imports `{item}` from its parent module ({}): move it into a sibling module both use, and import it from there",
                    parent.strip_prefix(&root).unwrap().display()
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    let fixed: Vec<&&str> = PARENT_IMPORTS_LEFT
        .iter()
        .filter(|f| !still.contains(**f))
        .collect();
    assert!(
        fixed.is_empty(),
        "no longer import their parent's items, remove them from PARENT_IMPORTS_LEFT: {fixed:?}"
    );
}
