//! Build files and the outputs they imply: what `make`, cargo, a
//! bundler, a test runner or Python writes, as gitignore-syntax lines
//! relative to the build file's directory, each with the tool and the line
//! of the file that says so. Each parser reads a bounded prefix of text and
//! never fails: what it cannot read says nothing.

use std::collections::{HashMap, HashSet};
use std::path::Path;

/// What a source's line says, beyond its text.
#[derive(Debug, Clone)]
pub(crate) struct LineInfo {
    /// The gitignore-syntax line.
    pub(crate) text: String,
    /// 1-based line in the source file.
    pub(crate) line: usize,
    /// For a tool's output: the tool and the output as shown.
    pub(crate) tool: Option<(String, String)>,
}

/// The build files read, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ToolFile {
    Make,
    Cargo,
    PackageJson,
    TsConfig,
    Python,
    Playwright,
    Jest,
    Vitest,
    Gradle,
    Maven,
}

pub(super) fn tool_file(name: &str) -> Option<ToolFile> {
    let stem_is = |stem: &str| {
        name.strip_prefix(stem).is_some_and(|rest| {
            matches!(
                rest,
                ".ts" | ".js" | ".mjs" | ".cjs" | ".mts" | ".cts" | ".json"
            )
        })
    };
    Some(match name {
        "Makefile" | "makefile" | "GNUmakefile" => ToolFile::Make,
        "Cargo.toml" => ToolFile::Cargo,
        "package.json" => ToolFile::PackageJson,
        "tsconfig.json" => ToolFile::TsConfig,
        "pyproject.toml" | "setup.cfg" | "setup.py" => ToolFile::Python,
        "build.gradle" | "build.gradle.kts" | "settings.gradle" | "settings.gradle.kts" => {
            ToolFile::Gradle
        }
        "pom.xml" => ToolFile::Maven,
        _ if stem_is("playwright.config") => ToolFile::Playwright,
        _ if stem_is("jest.config") => ToolFile::Jest,
        _ if stem_is("vitest.config") || stem_is("vitest.workspace") => ToolFile::Vitest,
        _ => return None,
    })
}

/// One output of a tool: `path` relative to the tool file's directory
/// (a directory ends in `/`; `*` and `**/` allowed), what writes it, and
/// the line that says so.
fn output(path: &str, tool: &str, line: usize, dir: &Path) -> Option<LineInfo> {
    let path = path.trim().trim_start_matches("./");
    if path.is_empty()
        || path.starts_with('/')
        || path.contains('$')
        || path.contains('%')
        || path.split('/').any(|c| c == ".." || c == ".")
        || path.contains(['\n', '\r', '"', '\'', '`', ' ', '\\', '!', '#'])
    {
        return None;
    }
    // `**/x`: anywhere below the file's directory.
    if let Some(anywhere) = path.strip_prefix("**/") {
        return Some(LineInfo {
            text: path.to_string(),
            line,
            tool: Some((tool.to_string(), anywhere.to_string())),
        });
    }
    // A nested output in a directory the checkout lacks: that whole
    // directory is the output (`go build -o bin/app` creates `bin/`).
    let shown = if path.contains(['*', '?', '[']) {
        path.to_string()
    } else {
        let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        let mut k = 1;
        while k < parts.len()
            && crate::input::lstat_no_links(dir, Path::new(&parts[..k].join("/"))).is_some_and(
                |st| {
                    rustix::fs::FileType::from_raw_mode(st.st_mode)
                        == rustix::fs::FileType::Directory
                },
            )
        {
            k += 1;
        }
        if k < parts.len() {
            format!("{}/", parts[..k].join("/"))
        } else {
            path.to_string()
        }
    };
    Some(LineInfo {
        text: format!("/{shown}"),
        line,
        tool: Some((tool.to_string(), shown)),
    })
}

/// How many outputs one build file names at most (far above a real one).
const MAX_OUTPUTS: usize = 10_000;

/// The 1-based line of the first occurrence of `needle` at or after
/// line `from` (1 when absent).
fn line_of(text: &str, needle: &str, from: usize) -> usize {
    text.lines()
        .enumerate()
        .skip(from.saturating_sub(1))
        .find(|(_, l)| l.contains(needle))
        .map_or(from.max(1), |(i, _)| i + 1)
}

/// The outputs a build file names or implies.
pub(super) fn tool_lines(kind: ToolFile, text: &str, dir: &Path, name: &str) -> Vec<LineInfo> {
    let mut out = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut add = |o: Option<LineInfo>| {
        if let Some(o) = o {
            if out.len() < MAX_OUTPUTS && seen.insert(o.text.clone()) {
                out.push(o);
            }
        }
    };
    match kind {
        ToolFile::Make => {
            for (path, line) in make_outputs(text) {
                add(output(&path, "make", line, dir));
            }
        }
        ToolFile::Cargo => {
            if text.contains("[package]") || text.contains("[workspace]") {
                let header = if text.contains("[workspace]") {
                    "[workspace]"
                } else {
                    "[package]"
                };
                add(output("target/", "cargo", line_of(text, header, 1), dir));
            }
        }
        ToolFile::PackageJson => {
            for (path, tool, line) in package_json_outputs(text) {
                add(output(&path, &tool, line, dir));
            }
        }
        ToolFile::TsConfig => {
            if let Some((value, line)) = quoted_value(text, "outDir") {
                add(output(&format!("{value}/"), "tsc", line, dir));
            }
        }
        ToolFile::Python => {
            let header = ["[build-system]", "[project]", "[metadata]", "setup("]
                .iter()
                .find(|h| text.contains(*h))
                .map_or(1, |h| line_of(text, h, 1));
            let build = if name == "setup.py" {
                "setup.py"
            } else {
                "python -m build"
            };
            for p in ["build/", "dist/", "**/*.egg-info/"] {
                add(output(p, build, header, dir));
            }
            for p in ["**/__pycache__/", "**/*.py[cod]"] {
                add(output(p, "python", header, dir));
            }
            for (section, path, tool) in [
                ("[tool.pytest", ".pytest_cache/", "pytest"),
                ("[tool:pytest]", ".pytest_cache/", "pytest"),
                ("[tool.mypy", ".mypy_cache/", "mypy"),
                ("[mypy", ".mypy_cache/", "mypy"),
                ("[tool.ruff", ".ruff_cache/", "ruff"),
                ("[tool.coverage", "htmlcov/", "coverage"),
                ("[tool.coverage", ".coverage", "coverage"),
                ("[tool.tox", ".tox/", "tox"),
            ] {
                if text.contains(section) {
                    add(output(path, tool, line_of(text, section, 1), dir));
                }
            }
        }
        ToolFile::Playwright => {
            match quoted_value(text, "outputDir") {
                Some((v, line)) => add(output(&format!("{v}/"), "playwright test", line, dir)),
                None => add(output("test-results/", "playwright test", 1, dir)),
            }
            match quoted_value(text, "outputFolder") {
                Some((v, line)) => add(output(&format!("{v}/"), "playwright test", line, dir)),
                None => add(output("playwright-report/", "playwright test", 1, dir)),
            }
            add(output("blob-report/", "playwright test", 1, dir));
        }
        ToolFile::Jest => match quoted_value(text, "coverageDirectory") {
            Some((v, line)) => add(output(&format!("{v}/"), "jest", line, dir)),
            None => add(output("coverage/", "jest", 1, dir)),
        },
        ToolFile::Vitest => match quoted_value(text, "reportsDirectory") {
            Some((v, line)) => add(output(&format!("{v}/"), "vitest", line, dir)),
            None => add(output("coverage/", "vitest", 1, dir)),
        },
        ToolFile::Gradle => {
            add(output("build/", "gradle", 1, dir));
            add(output(".gradle/", "gradle", 1, dir));
        }
        ToolFile::Maven => add(output(
            "target/",
            "maven",
            line_of(text, "<project", 1),
            dir,
        )),
    }
    out
}

/// `key: 'value'`, `key = "value"` or `"key": "value"`: the first value
/// and its line.
fn quoted_value(text: &str, key: &str) -> Option<(String, usize)> {
    for (i, line) in text.lines().enumerate() {
        let Some(pos) = line.find(key) else { continue };
        let rest = line[pos + key.len()..]
            .trim_start_matches(['"', '\''])
            .trim_start();
        let Some(rest) = rest.strip_prefix([':', '=']) else {
            continue;
        };
        let rest = rest.trim_start();
        let Some(q) = rest
            .chars()
            .next()
            .filter(|c| matches!(c, '"' | '\'' | '`'))
        else {
            continue;
        };
        let body = &rest[1..];
        if let Some(end) = body.find(q) {
            return Some((body[..end].to_string(), i + 1));
        }
    }
    None
}

/// Paths a Makefile writes, with their lines: targets with a `/`, `-o`,
/// `--output`, `--out-dir`/`--outdir` arguments and `mkdir -p`
/// directories in recipes, simple variables expanded.
fn make_outputs(text: &str) -> Vec<(String, usize)> {
    let mut vars: HashMap<String, String> = HashMap::new();
    let mut out = Vec::new();
    let mut phony: HashSet<String> = HashSet::new();
    let mut targets: Vec<String> = Vec::new();
    // Logical lines: a trailing backslash continues a line.
    let mut logical: Vec<(String, usize)> = Vec::new();
    let mut pending: Option<(String, usize)> = None;
    for (i, raw) in text.lines().enumerate().take(100_000) {
        let (mut acc, start) = pending.take().unwrap_or_else(|| (String::new(), i + 1));
        match raw.strip_suffix('\\') {
            Some(head) => {
                acc.push_str(head);
                acc.push(' ');
                pending = Some((acc, start));
            }
            None => {
                acc.push_str(raw);
                logical.push((acc, start));
            }
        }
    }
    logical.extend(pending);
    for (line, no) in &logical {
        if let Some(recipe) = line.strip_prefix('\t') {
            let words: Vec<String> = recipe
                .split_whitespace()
                .map(|w| expand(w, &vars, targets.first().map(String::as_str)))
                .collect();
            let mut k = 0;
            while k < words.len() {
                let w = words[k].trim_start_matches('@');
                let next = words.get(k + 1);
                for flag in [
                    "-o",
                    "--output",
                    "--out-dir",
                    "--outdir",
                    "--out",
                    "-coverprofile",
                ] {
                    if w == flag {
                        if let Some(v) = next {
                            out.push((v.clone(), *no));
                        }
                    } else if let Some(v) = w.strip_prefix(flag).and_then(|r| r.strip_prefix('=')) {
                        out.push((v.to_string(), *no));
                    }
                }
                if w == "mkdir" {
                    for v in words[k + 1..]
                        .iter()
                        .take_while(|v| !matches!(v.as_str(), "&&" | ";" | "||"))
                        .filter(|v| !v.starts_with('-'))
                    {
                        out.push((format!("{}/", v.trim_end_matches(';')), *no));
                    }
                }
                k += 1;
            }
            continue;
        }
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let body = trimmed
            .trim_start_matches("export ")
            .trim_start_matches("override ");
        if let Some((name, value)) = assignment(body) {
            let value = expand(value.trim(), &vars, None);
            vars.entry(name.to_string())
                .and_modify(|v| {
                    if body.contains("+=") {
                        if v.len() + value.len() < MAX_WORD {
                            v.push(' ');
                            v.push_str(&value);
                        }
                    } else if !body.contains("?=") {
                        *v = value.clone();
                    }
                })
                .or_insert(value);
            continue;
        }
        if let Some(colon) = trimmed.find(':') {
            let (lhs, rhs) = trimmed.split_at(colon);
            if rhs.starts_with(":=") || rhs.starts_with("::=") {
                continue;
            }
            let names: Vec<String> = lhs
                .split_whitespace()
                .map(|w| expand(w, &vars, None))
                .collect();
            if lhs.trim() == ".PHONY" {
                phony.extend(rhs[1..].split_whitespace().map(|w| expand(w, &vars, None)));
                continue;
            }
            targets = names.clone();
            for t in names {
                if t.contains('/') && !phony.contains(&t) && !t.starts_with('.') {
                    out.push((t, *no));
                }
            }
        }
    }
    out.retain(|(p, _)| !phony.contains(p));
    out
}

/// `NAME = value`, `NAME := value`, `NAME ?= value`, `NAME += value`.
fn assignment(line: &str) -> Option<(&str, &str)> {
    let eq = line.find('=')?;
    let mut name_end = eq;
    while name_end > 0 && matches!(line.as_bytes()[name_end - 1], b':' | b'?' | b'+' | b'!') {
        name_end -= 1;
    }
    let name = line[..name_end].trim();
    (!name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.'))
    .then(|| (name, &line[eq + 1..]))
}

/// Expands `$(VAR)`, `${VAR}`, `$@` and the current directory's names
/// (`$(CURDIR)`, `$(PWD)`, `$(shell pwd)`) in a word; an unknown variable
/// stays, so the word is not taken as a path.
fn expand(word: &str, vars: &HashMap<String, String>, target: Option<&str>) -> String {
    let mut w = word.to_string();
    for here in [
        "$(CURDIR)/",
        "${CURDIR}/",
        "$(PWD)/",
        "${PWD}/",
        "$(shell pwd)/",
        "$$(pwd)/",
    ] {
        w = w.replace(here, "");
    }
    if let Some(t) = target {
        w = w.replace("$@", t);
    }
    // A few rounds for variables defined through others; each reference
    // looked up by name, and a word grown past MAX_WORD left as written
    // (a `$` in it: never taken as a path).
    for _ in 0..4 {
        if !w.contains('$') {
            break;
        }
        let mut out = String::with_capacity(w.len());
        let mut rest = w.as_str();
        let mut changed = false;
        while let Some(pos) = rest.find('$') {
            out.push_str(&rest[..pos]);
            let after = &rest[pos + 1..];
            let close = match after.as_bytes().first() {
                Some(b'(') => ')',
                Some(b'{') => '}',
                _ => {
                    out.push('$');
                    rest = after;
                    continue;
                }
            };
            let Some(end) = after[1..].find(close) else {
                out.push_str(&rest[pos..]);
                rest = "";
                break;
            };
            match vars.get(&after[1..1 + end]) {
                Some(value) => {
                    out.push_str(value.trim());
                    changed = true;
                }
                None => out.push_str(&rest[pos..pos + end + 3]),
            }
            rest = &after[end + 2..];
            if out.len() > MAX_WORD {
                return word.to_string();
            }
        }
        out.push_str(rest);
        w = out;
        if !changed {
            break;
        }
    }
    w
}

/// The longest a Makefile word or variable grows by expansion.
pub(super) const MAX_WORD: usize = 4096;

/// Script tools and the directories they write by default.
const SCRIPT_OUTPUTS: &[(&str, &str, &[&str])] = &[
    ("next build", "next build", &[".next/"]),
    ("next export", "next export", &["out/"]),
    ("next dev", "next dev", &[".next/"]),
    ("vite build", "vite build", &["dist/"]),
    ("react-scripts build", "react-scripts build", &["build/"]),
    ("webpack", "webpack", &["dist/"]),
    ("tsup", "tsup", &["dist/"]),
    ("parcel build", "parcel build", &["dist/", ".parcel-cache/"]),
    ("astro build", "astro build", &["dist/"]),
    ("nuxt build", "nuxt build", &[".nuxt/", ".output/"]),
    ("nuxi build", "nuxi build", &[".nuxt/", ".output/"]),
    ("svelte-kit", "svelte-kit", &[".svelte-kit/"]),
    ("storybook build", "storybook build", &["storybook-static/"]),
    ("build-storybook", "build-storybook", &["storybook-static/"]),
    ("gatsby build", "gatsby build", &["public/", ".cache/"]),
    ("jest", "jest", &["coverage/"]),
    ("vitest", "vitest", &["coverage/"]),
    ("nyc", "nyc", &[".nyc_output/", "coverage/"]),
    ("c8", "c8", &["coverage/"]),
    (
        "playwright test",
        "playwright test",
        &["test-results/", "playwright-report/"],
    ),
    ("turbo", "turbo", &[".turbo/"]),
];

/// Outputs of `package.json`: what its scripts' tools write, their
/// `--out-dir`-style flags, and the directories `main`, `module`, `types`
/// and `bin` point into.
fn package_json_outputs(text: &str) -> Vec<(String, String, usize)> {
    let mut out = Vec::new();
    let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else {
        return out;
    };
    let scripts_line = line_of(text, "\"scripts\"", 1);
    if let Some(scripts) = v.get("scripts").and_then(|s| s.as_object()) {
        for (name, cmd) in scripts.iter().take(1000) {
            let Some(cmd) = cmd.as_str() else { continue };
            let line = line_of(text, &format!("\"{name}\""), scripts_line);
            for (needle, tool, dirs) in SCRIPT_OUTPUTS {
                if contains_command(cmd, needle) {
                    for d in *dirs {
                        out.push((d.to_string(), tool.to_string(), line));
                    }
                }
            }
            let words: Vec<&str> = cmd.split_whitespace().collect();
            for (k, w) in words.iter().enumerate() {
                for flag in [
                    "--outDir",
                    "--out-dir",
                    "--outdir",
                    "--dist-dir",
                    "--output-path",
                    "--coverageDirectory",
                ] {
                    let value = if *w == flag {
                        words.get(k + 1).map(|s| s.to_string())
                    } else {
                        w.strip_prefix(flag)
                            .and_then(|r| r.strip_prefix('='))
                            .map(str::to_string)
                    };
                    if let Some(v) = value {
                        let tool = words.first().copied().unwrap_or("npm");
                        out.push((
                            format!("{}/", v.trim_end_matches('/')),
                            tool.to_string(),
                            line,
                        ));
                    }
                }
            }
        }
    }
    for key in ["main", "module", "types", "typings"] {
        if let Some(p) = v.get(key).and_then(|p| p.as_str()) {
            let p = p.trim_start_matches("./");
            if p.contains('/') {
                let line = line_of(text, &format!("\"{key}\""), 1);
                out.push((
                    p.to_string(),
                    format!("the build (`{key}` points into it)"),
                    line,
                ));
            }
        }
    }
    out
}

/// Whether a script runs `command` (as a word sequence, not inside a
/// longer word).
fn contains_command(script: &str, command: &str) -> bool {
    let words: Vec<&str> = script
        .split(|c: char| c.is_whitespace() || matches!(c, '&' | ';' | '|' | '(' | ')'))
        .filter(|w| !w.is_empty())
        .collect();
    let want: Vec<&str> = command.split(' ').collect();
    words.windows(want.len()).any(|w| w == want.as_slice())
}

/// [`make_outputs`], for the parent's tests.
#[cfg(test)]
pub(super) fn make_outputs_for_test(text: &str) -> Vec<(String, usize)> {
    make_outputs(text)
}
