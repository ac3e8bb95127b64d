//! What a file in a context *is*: `node_modules`, a `.next` cache, a Python
//! venv, a secret. The rule set is data (`rules/*.toml`, one file per
//! ecosystem), embedded in the binary and extendable with the user's own
//! files.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

/// How much of a file content rules look at (`_authToken` in `.npmrc`):
/// the start of a config file, never an unbounded read.
pub const CONTENT_LIMIT: usize = 64 * 1024;

/// The rule files shipped with reggie-build.
const BUILTIN: &[(&str, &str)] = &[
    ("node.toml", include_str!("../../rules/node.toml")),
    ("python.toml", include_str!("../../rules/python.toml")),
    ("ml.toml", include_str!("../../rules/ml.toml")),
    ("vcs.toml", include_str!("../../rules/vcs.toml")),
    ("tests.toml", include_str!("../../rules/tests.toml")),
    ("secrets.toml", include_str!("../../rules/secrets.toml")),
];

/// One ecosystem's rule file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ecosystem {
    /// Short id, e.g. `node`.
    pub ecosystem: String,
    /// Display name.
    pub name: String,
    /// Files whose presence in a directory shows the ecosystem is used.
    #[serde(default)]
    pub markers: Vec<String>,
    /// Base-name globs of paths a clean checkout lacks but builds create
    /// (`dist`, `*.log`); see [`RuleSet::names_uncommitted`].
    #[serde(default)]
    pub uncommitted: Vec<String>,
    /// Its rules, in file order (the first match wins).
    #[serde(default, rename = "rule")]
    pub rules: Vec<Rule>,
}

/// Which entries a rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryType {
    /// Directories only.
    Dir,
    /// Anything but a directory.
    File,
    /// Both.
    Any,
}

/// One recognisable kind of file or directory.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Stable id, e.g. `node/node_modules`.
    pub id: String,
    /// What it is, in a few words (shown in reports).
    pub kind: String,
    /// Why it does not belong in a build context.
    pub description: String,
    /// Which entries it applies to (`type` in the TOML).
    #[serde(rename = "type")]
    pub entry_type: EntryType,
    /// Exact base names.
    #[serde(default)]
    pub names: Vec<String>,
    /// Base-name globs (`*` and `?`).
    #[serde(default)]
    pub globs: Vec<String>,
    /// Path suffixes (`.aws/credentials`).
    #[serde(default)]
    pub paths: Vec<String>,
    /// Base-name globs that never match, even if a name or glob does
    /// (`*.example`: committed templates).
    #[serde(default)]
    pub except: Vec<String>,
    /// For directories: a file that must exist inside.
    #[serde(default)]
    pub contains: Vec<String>,
    /// For files: one of these strings must occur in the content.
    #[serde(default)]
    pub content: Vec<String>,
    /// Whether a match is a secret that must not be sent.
    #[serde(default)]
    pub secret: bool,
    /// Whether a clean checkout usually lacks it (installed, built, or
    /// created on a developer's machine).
    #[serde(default)]
    pub uncommitted: bool,
    /// The ignore pattern that excludes it anywhere; `{name}` is the
    /// matched base name, `{ext}` its extension with the dot.
    pub ignore: String,
}

/// Errors loading rule files.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// A rule file is not valid TOML or not a valid rule set.
    #[error("rule file {file}: {message}. Fix the TOML (see rules/*.toml in reggie-build for the format)")]
    Parse {
        /// The rule file.
        file: String,
        /// The parser's message.
        message: String,
    },
    /// A rule file could not be read.
    #[error("cannot read rule file {file}: {source}")]
    Read {
        /// The rule file.
        file: String,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// A rule file is a FIFO or device, or too large.
    #[error("rule file: {0}")]
    Input(#[from] crate::input::InputError),
}

/// All rules in force.
#[derive(Debug, Clone)]
pub struct RuleSet {
    /// The built-in ecosystems, then the user's, in load order.
    pub ecosystems: Vec<Ecosystem>,
    /// Rules by exact base name and by extension (`*.pkl` globs), then the
    /// few globs and path suffixes that need a check: classifying a file
    /// is two hash lookups and a short scan, whatever the number of rules.
    by_name: HashMap<String, Vec<(usize, usize)>, FastHash>,
    by_ext: HashMap<String, Vec<(usize, usize)>, FastHash>,
    other_globs: Vec<(String, (usize, usize))>,
    by_path: Vec<(usize, usize)>,
}

/// FNV-1a: the keys are short base names and extensions from the rule
/// files, not attacker-chosen, and SipHash showed in profiles.
#[derive(Debug, Clone, Copy, Default)]
struct FastHash;

impl std::hash::BuildHasher for FastHash {
    type Hasher = Fnv;
    fn build_hasher(&self) -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// `X` of a glob `*.X` whose `X` is plain text without a dot: then a name
/// matches exactly when its last extension is `X`.
fn extension_glob(glob: &str) -> Option<&str> {
    let ext = glob.strip_prefix("*.")?;
    (!ext.is_empty() && !ext.contains(['*', '?', '[', ']', '\\', '.'])).then_some(ext)
}

/// A rule that matched, with the ignore pattern for that entry.
#[derive(Debug, Clone, Copy)]
pub struct RuleMatch<'a> {
    /// The ecosystem the rule belongs to.
    pub ecosystem: &'a Ecosystem,
    /// The rule.
    pub rule: &'a Rule,
    /// `(ecosystem, rule)` indexes into [`RuleSet::ecosystems`].
    pub index: (usize, usize),
}

impl RuleSet {
    /// The built-in rules.
    pub fn builtin() -> RuleSet {
        let ecosystems = BUILTIN
            .iter()
            .map(|(file, text)| parse(file, text).expect("built-in rules are valid"))
            .collect();
        RuleSet::indexed(ecosystems)
    }

    fn indexed(ecosystems: Vec<Ecosystem>) -> RuleSet {
        let mut by_name: HashMap<String, Vec<(usize, usize)>, FastHash> = HashMap::default();
        let mut by_ext: HashMap<String, Vec<(usize, usize)>, FastHash> = HashMap::default();
        let mut other_globs = Vec::new();
        let mut by_path = Vec::new();
        for (e, eco) in ecosystems.iter().enumerate() {
            for (r, rule) in eco.rules.iter().enumerate() {
                for n in &rule.names {
                    by_name.entry(n.clone()).or_default().push((e, r));
                }
                for g in &rule.globs {
                    match extension_glob(g) {
                        Some(ext) => by_ext.entry(ext.to_string()).or_default().push((e, r)),
                        None => other_globs.push((g.clone(), (e, r))),
                    }
                }
                if !rule.paths.is_empty() {
                    by_path.push((e, r));
                }
            }
        }
        RuleSet {
            ecosystems,
            by_name,
            by_ext,
            other_globs,
            by_path,
        }
    }

    /// The built-in rules plus every `*.toml` in `dir` (a user's rules come
    /// first, so they can override a kind).
    pub fn with_user_dir(dir: &Path) -> Result<RuleSet, RulesError> {
        let mut set = RuleSet::builtin();
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map_err(|source| RulesError::Read {
                file: dir.display().to_string(),
                source,
            })?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        let mut user = Vec::new();
        for path in files {
            let label = path.display().to_string();
            let text = crate::input::read_named_text(&path, crate::input::TEXT_LIMIT)?;
            user.push(parse(&label, &text)?);
        }
        user.append(&mut set.ecosystems);
        Ok(RuleSet::indexed(user))
    }

    /// The first rule recognising `rel` (a context-relative path whose last
    /// component is `name`). `read` gives file contents for rules that need
    /// them (the entry itself, not followed if a link, at most
    /// [`CONTENT_LIMIT`] bytes: [`crate::context::Entry::read_head`]), and
    /// `has_child` tells whether a directory holds a file.
    pub fn classify<'a>(
        &'a self,
        rel: &[u8],
        is_dir: bool,
        has_child: &dyn Fn(&str) -> bool,
        read: &dyn Fn() -> Option<Vec<u8>>,
    ) -> Option<RuleMatch<'a>> {
        let name = match rel.iter().rposition(|&b| b == b'/') {
            Some(p) => &rel[p + 1..],
            None => rel,
        };
        let name = std::str::from_utf8(name).ok()?;
        // Every rule the name or path matches, then the first of them in
        // file order whose other conditions hold.
        let mut candidates: Vec<(usize, usize)> = Vec::new();
        if let Some(rules) = self.by_name.get(name) {
            candidates.extend_from_slice(rules);
        }
        if let Some(rules) = name
            .rfind('.')
            .and_then(|dot| self.by_ext.get(&name[dot + 1..]))
        {
            candidates.extend_from_slice(rules);
        }
        for (glob, index) in &self.other_globs {
            if glob_match(glob.as_bytes(), name.as_bytes()) {
                candidates.push(*index);
            }
        }
        for &(e, r) in &self.by_path {
            if self.ecosystems[e].rules[r].paths.iter().any(|p| {
                rel.ends_with(p.as_bytes())
                    && (rel.len() == p.len() || rel[rel.len() - p.len() - 1] == b'/')
            }) {
                candidates.push((e, r));
            }
        }
        if candidates.is_empty() {
            return None;
        }
        candidates.sort_unstable();
        candidates.dedup();
        for (e, r) in candidates {
            let eco = &self.ecosystems[e];
            let rule = &eco.rules[r];
            {
                let type_ok = match rule.entry_type {
                    EntryType::Dir => is_dir,
                    EntryType::File => !is_dir,
                    EntryType::Any => true,
                };
                if !type_ok
                    || rule
                        .except
                        .iter()
                        .any(|e| glob_match(e.as_bytes(), name.as_bytes()))
                {
                    continue;
                }
                if !rule.contains.is_empty() && !rule.contains.iter().any(|c| has_child(c)) {
                    continue;
                }
                if !rule.content.is_empty() {
                    let Some(data) = read() else { continue };
                    if !rule
                        .content
                        .iter()
                        .any(|needle| contains(&data, needle.as_bytes()))
                    {
                        continue;
                    }
                }
                return Some(RuleMatch {
                    ecosystem: eco,
                    rule,
                    index: (e, r),
                });
            }
        }
        None
    }
}

impl RuleSet {
    /// Whether an ignore pattern names something a clean checkout usually
    /// lacks: one of its path components is a name or glob of a rule with
    /// `uncommitted = true` or of an ecosystem's `uncommitted` list
    /// (`node_modules`, `**/dist`, `*.log`). Such a pattern matching nothing
    /// today is not dead: the next build after an install would send what
    /// it names.
    pub fn names_uncommitted(&self, pattern: &[u8]) -> bool {
        self.uncommitted_by(pattern).is_some()
    }

    /// Why [`Self::names_uncommitted`] holds: the name or glob of the
    /// data that `pattern` names, and the ecosystem it belongs to
    /// (`("node_modules", "Node.js")`).
    pub fn uncommitted_by(&self, pattern: &[u8]) -> Option<(&str, &str)> {
        pattern
            .split(|&b| b == b'/')
            .filter(|c| !c.is_empty() && !c.iter().all(|&b| b == b'*'))
            .find_map(|c| self.component_uncommitted(c))
    }

    fn component_uncommitted(&self, c: &[u8]) -> Option<(&str, &str)> {
        let wild = c.iter().any(|b| matches!(b, b'*' | b'?' | b'[' | b'\\'));
        // A literal component against the data's globs; a wildcard one
        // (`*.log`, `node_*`) against the data's names and globs as text.
        let hit = |glob: &&String| {
            let glob = glob.as_bytes();
            glob == c || (!wild && glob_match(glob, c)) || (wild && glob_match(c, glob))
        };
        self.ecosystems.iter().find_map(|eco| {
            eco.uncommitted
                .iter()
                .find(hit)
                .or_else(|| {
                    eco.rules
                        .iter()
                        .filter(|r| r.uncommitted)
                        .find_map(|r| r.names.iter().chain(&r.globs).find(hit))
                })
                .map(|name| (name.as_str(), eco.name.as_str()))
        })
    }
}

impl RuleMatch<'_> {
    /// The ignore pattern for the entry named `name`.
    pub fn ignore_pattern(&self, name: &str) -> String {
        let ext = name.rfind('.').map(|i| &name[i..]).unwrap_or("");
        self.rule
            .ignore
            .replace("{name}", name)
            .replace("{ext}", ext)
    }
}

fn parse(file: &str, text: &str) -> Result<Ecosystem, RulesError> {
    toml::from_str(text).map_err(|e| RulesError::Parse {
        file: file.to_string(),
        message: e.to_string(),
    })
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// A base-name glob with `*` (any run) and `?` (one byte).
fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while n < name.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == name[n]) {
            p += 1;
            n += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some(p);
            mark = n;
            p += 1;
        } else if let Some(s) = star {
            p = s + 1;
            mark += 1;
            n = mark;
        } else {
            return false;
        }
    }
    while p < pattern.len() && pattern[p] == b'*' {
        p += 1;
    }
    p == pattern.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(set: &RuleSet, rel: &str, is_dir: bool) -> Option<String> {
        set.classify(rel.as_bytes(), is_dir, &|c| c == "pyvenv.cfg", &|| {
            Some(b"//registry.npmjs.org/:_authToken=x".to_vec())
        })
        .map(|m| m.rule.id.clone())
    }

    #[test]
    fn builtin_rules_load_and_classify() {
        let set = RuleSet::builtin();
        let cases = [
            ("apps/web/node_modules", true, Some("node/node_modules")),
            ("apps/web/.next", true, Some("node/next-cache")),
            ("backend/venv", true, Some("python/venv")),
            ("backend/app/__pycache__", true, Some("python/pycache")),
            ("x.pyc", false, Some("python/bytecode")),
            ("backend/models/v1.joblib", false, Some("ml/model-files")),
            (".git", true, Some("vcs/git")),
            ("backend/tests", true, Some("dev/tests")),
            ("backend/.env", false, Some("secrets/dotenv")),
            (".env.production", false, Some("secrets/dotenv")),
            (".env.example", false, None),
            (".env.dev.example", false, None),
            ("app/.env.prod.sample", false, None),
            (".env.template", false, None),
            (".env.local.dist", false, None),
            (".env.local", false, Some("secrets/dotenv")),
            (
                "home/.aws/credentials",
                false,
                Some("secrets/cloud-credentials"),
            ),
            (".npmrc", false, Some("secrets/npmrc")),
            ("backend/app/main.py", false, None),
            ("node_modules", false, None),
        ];
        for (rel, dir, want) in cases {
            assert_eq!(kind(&set, rel, dir).as_deref(), want, "{rel}");
        }
    }

    #[test]
    fn ignore_patterns_substitute_names() {
        let set = RuleSet::builtin();
        let m = set
            .classify(b"a/m.joblib", false, &|_| false, &|| None)
            .unwrap();
        assert_eq!(m.ignore_pattern("m.joblib"), "**/*.joblib");
        let m = set.classify(b".turbo", true, &|_| false, &|| None).unwrap();
        assert_eq!(m.ignore_pattern(".turbo"), "**/.turbo");
    }

    #[test]
    fn user_rules_extend_and_bad_rules_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("rust.toml"),
            "ecosystem = \"rust\"\nname = \"Rust\"\nmarkers = [\"Cargo.toml\"]\n[[rule]]\nid = \"rust/target\"\nkind = \"cargo target\"\ndescription = \"build output\"\ntype = \"dir\"\nnames = [\"target\"]\nignore = \"**/target\"\n",
        )
        .unwrap();
        let set = RuleSet::with_user_dir(dir.path()).unwrap();
        assert_eq!(
            kind(&set, "crate/target", true).as_deref(),
            Some("rust/target")
        );
        std::fs::write(dir.path().join("bad.toml"), "ecosystem = 1\n").unwrap();
        let err = RuleSet::with_user_dir(dir.path()).unwrap_err();
        assert!(err.to_string().contains("bad.toml"), "{err}");
    }

    #[test]
    fn patterns_for_what_builds_create_are_known() {
        let set = RuleSet::builtin();
        for p in [
            "node_modules",
            "**/node_modules",
            "**/dist",
            "apps/*/dist/**",
            ".next",
            ".turbo",
            "coverage",
            "*.log",
            "npm-debug.log",
            "__pycache__",
            "**/*.py[co]",
            ".venv",
            "build",
            ".env",
            ".env.*",
        ] {
            assert!(set.names_uncommitted(p.as_bytes()), "{p}");
        }
        for p in ["src", "docs/*.md", "secret-notes.txt", "**", "tests"] {
            assert!(!set.names_uncommitted(p.as_bytes()), "{p}");
        }
    }

    #[test]
    fn globs() {
        assert!(glob_match(b"*.pyc", b"a.pyc"));
        assert!(!glob_match(b"*.pyc", b"a.pyco"));
        assert!(glob_match(b".env.*", b".env.local"));
        assert!(glob_match(b"npm-debug.log*", b"npm-debug.log"));
        assert!(glob_match(b"a?c", b"abc"));
    }

    /// The first matching rule by a plain scan of every rule in file
    /// order: what the index must reproduce.
    fn scan<'a>(set: &'a RuleSet, rel: &str, is_dir: bool) -> Option<&'a str> {
        let name = rel.rsplit('/').next().unwrap_or(rel);
        for eco in &set.ecosystems {
            for rule in &eco.rules {
                let type_ok = match rule.entry_type {
                    EntryType::Dir => is_dir,
                    EntryType::File => !is_dir,
                    EntryType::Any => true,
                };
                let hit = rule.names.iter().any(|n| n == name)
                    || rule
                        .globs
                        .iter()
                        .any(|g| glob_match(g.as_bytes(), name.as_bytes()))
                    || rule
                        .paths
                        .iter()
                        .any(|p| rel == p || rel.ends_with(&format!("/{p}")));
                if type_ok
                    && hit
                    && !rule
                        .except
                        .iter()
                        .any(|e| glob_match(e.as_bytes(), name.as_bytes()))
                    && rule.contains.is_empty()
                    && rule.content.is_empty()
                {
                    return Some(&rule.id);
                }
            }
        }
        None
    }

    #[test]
    fn index_agrees_with_a_scan_of_every_rule() {
        let set = RuleSet::builtin();
        let mut names: Vec<String> = vec![
            "index.js".into(),
            "a.tar.gz".into(),
            "model.PT".into(),
            ".pt".into(),
            "x.".into(),
            "".into(),
            "npm-debug.log.1".into(),
            "gcloud-service-key-prod.json".into(),
            "a-credentials.json".into(),
        ];
        for eco in &set.ecosystems {
            for rule in &eco.rules {
                names.extend(rule.names.iter().cloned());
                names.extend(rule.except.iter().cloned());
                names.extend(rule.paths.iter().cloned());
                for g in &rule.globs {
                    names.push(g.replace('*', "x").replace('?', "y"));
                    names.push(g.replace('*', "").replace('?', "z"));
                    names.push(format!("{}.bak", g.replace('*', "w")));
                }
            }
        }
        let mut checked = 0;
        for name in &names {
            for rel in [name.clone(), format!("deep/dir/{name}")] {
                for is_dir in [false, true] {
                    // With no children and no contents, rules that need them
                    // never match, as in the scan.
                    let got = set.classify(rel.as_bytes(), is_dir, &|_| false, &|| None);
                    let want = scan(&set, &rel, is_dir);
                    assert_eq!(
                        got.map(|g| g.rule.id.as_str()),
                        want,
                        "{rel:?} dir={is_dir}"
                    );
                    checked += usize::from(want.is_some());
                }
            }
        }
        assert!(checked > 50, "only {checked} names matched a rule");
    }
}
