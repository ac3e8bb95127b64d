//! The ordered list of patterns of one ignore file, evaluated the way
//! Docker's walkers do (moby/patternmatcher's `PatternMatcher`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::file::IgnoreLine;
use super::gopath::{clean, is_valid_match_pattern};
use super::index::Index;
use super::pattern::{Pattern, PatternError, MAX_REGEX_BYTES};

/// One compiled rule: a pattern, whether it is an exception (`!`), and where
/// it came from.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The compiled pattern.
    pub pattern: Pattern,
    /// Whether it re-includes (`!pattern`).
    pub exception: bool,
    /// 1-based line in the ignore file; 0 for rules Docker adds itself.
    pub line: usize,
    /// The line as written, for messages.
    pub raw: String,
}

/// An ignore file that failed to compile.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    #[error("{path}:{line}: illegal exclusion pattern \"!\": a `!` must be followed by a pattern. Remove the line or add the path to re-include")]
    /// A line holds only `!`.
    BareExclamation {
        /// The ignore file.
        path: PathBuf,
        /// Its line (1-based).
        line: usize,
    },
    #[error("{path}:{line}: syntax error in pattern `{}`: {why}. Docker refuses this ignore file; escape the character with `\\` or close the `[...]` class", crate::text::excerpt(.raw))]
    /// A pattern is not valid `filepath.Match` syntax.
    BadPattern {
        /// The ignore file.
        path: PathBuf,
        /// Its line (1-based).
        line: usize,
        /// The line as written.
        raw: String,
        /// What is wrong with it.
        why: &'static str,
    },
    #[error("{path}:{line}: the patterns up to this line need more than {} MiB of compiled regular expressions ({regexes} distinct patterns need the regex engine: a class `[...]`, an escape, one of `{{}}|^`, or `**` inside a name). Merge them (one `**/*.py[co]` instead of one pattern per name) or remove those that exclude nothing", MAX_REGEX_BYTES >> 20)]
    /// The patterns' regexes together would take more memory than
    /// [`MAX_REGEX_BYTES`] (a hostile or generated ignore file).
    RegexBudget {
        /// The ignore file (or the label of a Dockerfile's paths).
        path: PathBuf,
        /// The line past the budget (1-based; 0 for a Dockerfile's paths).
        line: usize,
        /// The distinct patterns compiled to a regex so far.
        regexes: usize,
    },
}

/// The result of matching one path, carried down to its children
/// (patternmatcher's `MatchInfo`).
#[derive(Debug, Clone, Default)]
pub struct MatchInfo {
    /// The rules this path or an ancestor matched; `None` for "no
    /// information" (the walk root's children).
    parent_matched: Option<RuleSet>,
}

impl MatchInfo {
    /// Whether rule `i` matched this path or one of its ancestors.
    pub fn matched(&self, i: usize) -> bool {
        self.parent_matched
            .as_ref()
            .is_some_and(|set| set.contains(i))
    }
}

/// A set of rule indexes: inline up to 128 rules (no allocation per walked
/// entry); beyond, the few a path matches, in ascending order (a path
/// matches few of many rules, and a bit per rule would cost each walked
/// entry the size of the ignore file).
#[derive(Debug, Clone)]
enum RuleSet {
    Small(u128),
    Large(Vec<u32>),
}

impl RuleSet {
    fn new(rules: usize) -> RuleSet {
        if rules <= 128 {
            RuleSet::Small(0)
        } else {
            RuleSet::Large(Vec::new())
        }
    }

    fn contains(&self, i: usize) -> bool {
        match self {
            RuleSet::Small(bits) => i < 128 && bits >> i & 1 == 1,
            RuleSet::Large(rules) => rules.binary_search(&(i as u32)).is_ok(),
        }
    }

    /// Adds `i`, larger than every rule in the set (rules are matched in
    /// order).
    fn insert(&mut self, i: usize) {
        match self {
            RuleSet::Small(bits) if i < 128 => *bits |= 1 << i,
            RuleSet::Small(_) => {}
            RuleSet::Large(rules) => {
                debug_assert!(rules.last().is_none_or(|&last| (last as usize) < i));
                rules.push(i as u32);
            }
        }
    }

    /// Appends the rules of the set to `out`.
    fn extend_into(&self, out: &mut Vec<u32>) {
        match self {
            RuleSet::Small(bits) => out.extend((0..128).filter(|i| bits >> i & 1 == 1)),
            RuleSet::Large(rules) => out.extend_from_slice(rules),
        }
    }
}

/// From how many rules a matcher finds candidates through an [`Index`]
/// rather than trying every rule.
const INDEXED_FROM: usize = 16;

/// Which rule decided a path, and how: the last rule that matched wins.
///
/// For an ignore file, [`Decision::Pattern`] means excluded. A matcher
/// built from a Dockerfile's paths ([`Matcher::push_include`]) holds only
/// plain patterns, and there it means the path is reached
/// ([`Decision::reached`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// No rule matched the path or a parent.
    Unmatched,
    /// Rule `i`, a plain pattern, matched last.
    Pattern(usize),
    /// Rule `i`, an exception (`!pattern`), matched last: re-included.
    Exception(usize),
}

impl Decision {
    /// For an ignore file: the path is not sent.
    pub fn excluded(self) -> bool {
        matches!(self, Decision::Pattern(_))
    }

    /// For a matcher of paths a build reads: the path is one of them.
    pub fn reached(self) -> bool {
        matches!(self, Decision::Pattern(_))
    }

    /// The rule that decided, if one matched.
    pub fn rule(self) -> Option<usize> {
        match self {
            Decision::Unmatched => None,
            Decision::Pattern(i) | Decision::Exception(i) => Some(i),
        }
    }
}

/// The patterns of one ignore file, ready to match.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    rules: Vec<Rule>,
    has_exceptions: bool,
    /// The patterns compiled to a regex, by their text: a repeated one
    /// shares the first one's.
    regexes: HashMap<Vec<u8>, Pattern>,
    /// What those regexes hold ([`Pattern::regex_bytes`]).
    regex_bytes: usize,
    /// Built at the first match of a matcher of many rules.
    index: std::sync::OnceLock<Index>,
}

impl Matcher {
    /// Compiles the patterns read from an ignore file at `path` (only used
    /// in messages) as `PatternMatcher.New` does: trim, `Clean`, `!`
    /// splitting, and a `filepath.Match` syntax check.
    pub fn new(path: &Path, lines: &[IgnoreLine]) -> Result<Matcher, CompileError> {
        let mut m = Matcher::default();
        for line in lines {
            let raw = String::from_utf8_lossy(&line.raw).into_owned();
            m.push(path, line.line, &line.pattern, raw)?;
        }
        Ok(m)
    }

    /// Adds one pattern string (possibly `!`-prefixed), as Docker's CLI
    /// does for the rules it appends itself.
    pub fn push(
        &mut self,
        path: &Path,
        line: usize,
        pattern: &[u8],
        raw: String,
    ) -> Result<(), CompileError> {
        let trimmed = super::file::go_trim_space(pattern);
        if trimmed.is_empty() {
            return Ok(());
        }
        let mut p = clean(trimmed);
        let exception = p[0] == b'!';
        if exception {
            if p.len() == 1 {
                return Err(CompileError::BareExclamation {
                    path: path.to_path_buf(),
                    line,
                });
            }
            p.remove(0);
        }
        if !is_valid_match_pattern(&p) {
            let why = if p.ends_with(b"\\") && !p.contains(&b'[') {
                "a trailing `\\` escapes nothing"
            } else {
                "malformed character class `[...]` or trailing `\\`"
            };
            return Err(CompileError::BadPattern {
                path: path.to_path_buf(),
                line,
                raw,
                why,
            });
        }
        let pattern = self.compile(&p, path, line)?;
        self.index = Default::default();
        self.has_exceptions |= exception;
        self.rules.push(Rule {
            pattern,
            exception,
            line,
            raw,
        });
        Ok(())
    }

    /// Compiles a cleaned pattern, or shares the regex of the same one
    /// compiled before; refuses it past the regex budget.
    fn compile(&mut self, p: &[u8], path: &Path, line: usize) -> Result<Pattern, CompileError> {
        if let Some(shared) = self.regexes.get(p) {
            return Ok(shared.clone());
        }
        let pattern = Pattern::new(p);
        let bytes = pattern.regex_bytes();
        if bytes > 0 {
            self.regex_bytes += bytes;
            if self.regex_bytes > MAX_REGEX_BYTES {
                return Err(CompileError::RegexBudget {
                    path: path.to_path_buf(),
                    line,
                    regexes: self.regexes.len() + 1,
                });
            }
            self.regexes.insert(p.to_vec(), pattern.clone());
        }
        Ok(pattern)
    }

    /// Adds an include pattern (a path a Dockerfile reads): cleaned, made
    /// root-relative, and never an exception even if it starts with `!`.
    pub fn push_include(&mut self, label: &Path, pattern: &[u8]) -> Result<(), CompileError> {
        let cleaned = clean(pattern);
        let p = cleaned.strip_prefix(b"/").unwrap_or(&cleaned);
        let p = if p.is_empty() { &b"."[..] } else { p };
        let raw = String::from_utf8_lossy(p).into_owned();
        if !is_valid_match_pattern(p) {
            return Err(CompileError::BadPattern {
                path: label.to_path_buf(),
                line: 0,
                raw,
                why: "malformed character class `[...]` or trailing `\\`",
            });
        }
        let pattern = self.compile(p, label, 0)?;
        self.index = Default::default();
        self.rules.push(Rule {
            pattern,
            exception: false,
            line: 0,
            raw,
        });
        Ok(())
    }

    /// The rules, in file order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Whether any rule is an exception (`!pattern`).
    pub fn has_exceptions(&self) -> bool {
        self.has_exceptions
    }

    /// Whether there are no rules at all.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Matches `path` given its parent directory's result, as the walkers
    /// of BuildKit (fsutil) and the classic builder do
    /// (`MatchesUsingParentResults`).
    ///
    /// Each rule remembers whether the parent matched it; a rule the parent
    /// matched matches the child without being evaluated. So with `*/bar`
    /// and `!foo`, `foo/bar` stays excluded: `*/bar` matched nothing above
    /// it, but it matches `foo/bar` itself, after `!foo` was considered.
    pub fn matches_with_parent(
        &self,
        path: &[u8],
        parent: &MatchInfo,
    ) -> Result<(Decision, MatchInfo), PatternError> {
        self.matches_indexed(path, parent, self.rules.len() >= INDEXED_FROM)
    }

    /// [`Matcher::matches_with_parent`], trying only the rules the index
    /// finds or every rule.
    fn matches_indexed(
        &self,
        path: &[u8],
        parent: &MatchInfo,
        indexed: bool,
    ) -> Result<(Decision, MatchInfo), PatternError> {
        let parent_matched = parent.parent_matched.as_ref();
        let mut matched_here = RuleSet::new(self.rules.len());
        let mut decision = Decision::Unmatched;
        // The rules that can match, in order: all of them, or with many,
        // those the index finds and those the parent matched (a rule
        // neither finds cannot match, so skipping it changes nothing).
        let candidates = indexed.then(|| {
            let mut found = Vec::new();
            let index = self.index.get_or_init(|| Index::new(&self.rules));
            index.candidates(path, parent_matched.is_none(), &mut found);
            if let Some(set) = parent_matched {
                set.extend_into(&mut found);
            }
            found.sort_unstable();
            found.dedup();
            found
        });
        let order: &mut dyn Iterator<Item = usize> = match &candidates {
            Some(found) => &mut found.iter().map(|&i| i as usize),
            None => &mut (0..self.rules.len()),
        };
        for i in order {
            let Some(rule) = self.rules.get(i) else {
                continue;
            };
            let excluded = decision.excluded();
            let mut matched = parent_matched.is_some_and(|set| set.contains(i));
            if !matched {
                // Inclusions are skipped once excluded, exceptions until then.
                if rule.exception != excluded {
                    continue;
                }
                matched = rule.pattern.matches(path)?;
                if !matched && parent_matched.is_none() {
                    matched = self.any_ancestor_matches(rule, path);
                }
            }
            if matched {
                matched_here.insert(i);
                decision = if rule.exception {
                    Decision::Exception(i)
                } else {
                    Decision::Pattern(i)
                };
            }
        }
        Ok((
            decision,
            MatchInfo {
                parent_matched: Some(matched_here),
            },
        ))
    }

    /// For a path matched without parent information: does the rule match
    /// one of its ancestor directories? (Errors are ignored, as upstream.)
    fn any_ancestor_matches(&self, rule: &Rule, path: &[u8]) -> bool {
        let mut end = 0;
        while let Some(pos) = path[end..].iter().position(|&b| b == b'/') {
            let ancestor = &path[..end + pos];
            if rule.pattern.matches(ancestor).unwrap_or(false) {
                return true;
            }
            end += pos + 1;
        }
        false
    }

    /// Matches a path from scratch, checking every ancestor against every
    /// rule (`MatchesOrParentMatches`). Used by `explain` and by BuildKit
    /// when it opens a single file.
    pub fn matches_or_parent_matches(&self, path: &[u8]) -> Result<Decision, PatternError> {
        self.matches_with_parent(path, &MatchInfo::default())
            .map(|(v, _)| v)
    }

    /// The legacy `patternmatcher.Matches` that docker/cli still uses to
    /// decide whether the Dockerfile and `.dockerignore` need re-including:
    /// a rule is also tried against the ancestor at the rule's own depth
    /// only.
    pub fn legacy_matches(&self, path: &[u8]) -> bool {
        let parent_dirs: Vec<&[u8]> = match path.iter().rposition(|&b| b == b'/') {
            Some(pos) => path[..pos].split(|&b| b == b'/').collect(),
            None => Vec::new(),
        };
        let mut excluded = false;
        for rule in &self.rules {
            if rule.exception != excluded {
                continue;
            }
            let mut matched = rule.pattern.matches(path).unwrap_or(false);
            let depth = rule.pattern.as_bytes().split(|&b| b == b'/').count();
            if !matched && !parent_dirs.is_empty() && depth <= parent_dirs.len() {
                let ancestor = parent_dirs[..depth].join(&b'/');
                matched = rule.pattern.matches(&ancestor).unwrap_or(false);
            }
            if matched {
                excluded = !rule.exception;
            }
        }
        excluded
    }
}

#[cfg(test)]
mod tests {
    use super::super::file::read_patterns;
    use super::*;

    fn matcher(text: &str) -> Matcher {
        let lines = read_patterns(Path::new(".dockerignore"), text.as_bytes()).unwrap();
        Matcher::new(Path::new(".dockerignore"), &lines).unwrap()
    }

    /// Walks `paths` (parents before children) with parent results carried,
    /// like the BuildKit walker, and returns the excluded ones.
    fn walk_excluded(m: &Matcher, paths: &[&str]) -> Vec<String> {
        let mut infos: Vec<(String, MatchInfo)> = Vec::new();
        let mut out = Vec::new();
        for path in paths {
            let parent = path.rsplit_once('/').map(|(p, _)| p.to_string());
            let info = parent
                .and_then(|p| infos.iter().find(|(q, _)| *q == p).map(|(_, i)| i.clone()))
                .unwrap_or_default();
            let (v, child) = m.matches_with_parent(path.as_bytes(), &info).unwrap();
            infos.push((path.to_string(), child));
            if v.excluded() {
                out.push(path.to_string());
            }
        }
        out
    }

    /// The index finds every rule that matches: random ignore files
    /// (every kind of pattern, exceptions, a regex that fails) give the
    /// same decisions, parent results and errors with it as without, on
    /// random walks and on paths matched from scratch.
    #[test]
    fn indexed_matching_is_exact() {
        let atoms = [
            "a", "b", "ab", "*", "?", "**", "**/", "/", "[ab]", ".", "x.py", "a{2}", "\\*", "a|b",
        ];
        let names = ["a", "b", "ab", "aa", "x.py", "a|b", "*", "\n", ".", "ba"];
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let mut indexed_hits = 0;
        for _ in 0..300 {
            let mut text = String::new();
            for _ in 0..20 + next(200) {
                if next(5) == 0 {
                    text.push('!');
                }
                for _ in 0..1 + next(4) {
                    text.push_str(atoms[next(atoms.len())]);
                }
                text.push('\n');
                // Rarely, a regex that fails when first tried.
                if next(400) == 0 {
                    text.push_str("[z-a]\n");
                }
            }
            let lines = read_patterns(Path::new(".dockerignore"), text.as_bytes()).unwrap();
            let Ok(m) = Matcher::new(Path::new(".dockerignore"), &lines) else {
                continue;
            };
            // A walk: each path under the previous one or a fresh root.
            let mut stack: Vec<(Vec<u8>, MatchInfo, MatchInfo)> = Vec::new();
            for _ in 0..60 {
                stack.truncate(next(stack.len() + 1));
                let mut path = stack.last().map(|s| s.0.clone()).unwrap_or_default();
                if !path.is_empty() {
                    path.push(b'/');
                }
                path.extend_from_slice(names[next(names.len())].as_bytes());
                let (with, without) = match stack.last() {
                    Some((_, w, wo)) => (w.clone(), wo.clone()),
                    None => Default::default(),
                };
                let a = m.matches_indexed(&path, &with, true);
                let b = m.matches_indexed(&path, &without, false);
                match (a, b) {
                    (Ok((da, ia)), Ok((db, ib))) => {
                        assert_eq!(da, db, "{path:?}\n{text}");
                        for i in 0..m.rules().len() {
                            assert_eq!(ia.matched(i), ib.matched(i), "{path:?} rule {i}\n{text}");
                        }
                        indexed_hits += usize::from(da != Decision::Unmatched);
                        stack.push((path.clone(), ia, ib));
                    }
                    (Err(_), Err(_)) => break,
                    (a, b) => panic!("{path:?}: {a:?} / {b:?}\n{text}"),
                }
                // From scratch, every ancestor tried.
                let a = m.matches_indexed(&path, &MatchInfo::default(), true);
                let b = m.matches_indexed(&path, &MatchInfo::default(), false);
                assert_eq!(
                    a.map(|r| r.0).map_err(|e| e.to_string()),
                    b.map(|r| r.0).map_err(|e| e.to_string()),
                    "{path:?}\n{text}"
                );
            }
        }
        assert!(indexed_hits > 1000, "{indexed_hits} matched paths");
    }

    /// Past 128 rules the per-path rule set moves to the heap; results
    /// must not change wherever the deciding rules sit.
    #[test]
    fn many_rules_match_like_few() {
        let rules = "*/bar\n!foo\nkeep/*\n!keep/x\ndeep/a\n";
        let paths = [
            "foo", "foo/bar", "keep", "keep/x", "keep/y", "deep", "deep/a", "deep/a/b", "z/bar",
        ];
        let expected = walk_excluded(&matcher(rules), &paths);
        assert_eq!(
            expected,
            ["foo/bar", "keep/y", "deep/a", "deep/a/b", "z/bar"]
        );
        for filler in [100, 126, 127, 128, 129, 200, 300] {
            let padding: String = (0..filler).map(|i| format!("nothing{i}\n")).collect();
            let m = matcher(&format!("{padding}{rules}"));
            assert_eq!(walk_excluded(&m, &paths), expected, "{filler} rules first");
            let m = matcher(&format!("{rules}{padding}"));
            assert_eq!(walk_excluded(&m, &paths), expected, "{filler} rules after");
        }
    }

    #[test]
    fn parent_results_are_carried() {
        // With `*/bar` then `!foo`, fsutil excludes foo/bar.
        let m = matcher("*/bar\n!foo\n");
        assert_eq!(walk_excluded(&m, &["foo", "foo/bar"]), ["foo/bar"]);
        // One-shot matching (MatchesOrParentMatches) disagrees: `!foo`
        // re-includes it through its ancestor.
        assert!(!m.matches_or_parent_matches(b"foo/bar").unwrap().excluded());
    }

    /// Every vector of moby/patternmatcher's own tests, kept as data in
    /// `testdata/patternmatcher.jsonl`.
    #[test]
    fn upstream_vectors() {
        let data = include_str!("testdata/patternmatcher.jsonl");
        let mut checked = 0;
        for line in data.lines().filter(|l| !l.starts_with('#')) {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let kind = v["kind"].as_str().unwrap();
            let patterns: Vec<&str> = v["patterns"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_str().unwrap())
                .collect();
            let path = v["path"].as_str().unwrap().as_bytes();
            let mut m = Matcher::default();
            let compiled = patterns
                .iter()
                .try_for_each(|p| m.push(Path::new("t"), 1, p.as_bytes(), p.to_string()));
            match kind {
                "bad" => {
                    // Either New refuses it or matching fails.
                    let failed = compiled.is_err() || m.matches_or_parent_matches(path).is_err();
                    assert!(failed, "{line}");
                }
                "parent" => {
                    compiled.unwrap();
                    let got = m.matches_or_parent_matches(path).unwrap().excluded();
                    assert_eq!(got, v["expected"].as_bool().unwrap(), "{line}");
                }
                "legacy" => {
                    compiled.unwrap();
                    let cleaned = clean(path);
                    let got = cleaned != b"." && m.legacy_matches(&cleaned);
                    assert_eq!(got, v["expected"].as_bool().unwrap(), "{line}");
                }
                "kind" => {
                    let p = Pattern::new(&clean(patterns[0].as_bytes()));
                    let want = match v["expected"].as_str().unwrap() {
                        "exactMatch" => super::super::MatchKind::Exact,
                        "prefixMatch" => super::super::MatchKind::Prefix,
                        "suffixMatch" => super::super::MatchKind::Suffix,
                        _ => super::super::MatchKind::Regex,
                    };
                    assert_eq!(p.kind(), want, "{line}");
                }
                other => panic!("unknown vector kind {other}"),
            }
            checked += 1;
        }
        assert!(checked > 140, "only {checked} vectors");
    }

    /// No input may panic: random ignore files (bytes from an alphabet of
    /// pattern syntax, plus arbitrary bytes) against random paths.
    #[test]
    fn never_panics_on_any_input() {
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let alphabet: &[&[u8]] = &[
            b"*",
            b"**",
            b"?",
            b"/",
            b"!",
            b"[",
            b"]",
            b"^",
            b"-",
            b"\\",
            b"a",
            b"b",
            b".",
            b"..",
            b"#",
            b" ",
            b"\n",
            b"\r",
            b"{",
            b"(",
            b"$",
            b"\xff",
            b"\xc3\xa9",
            b"[:alpha:]",
            b"\\d",
            b"\\p{L}",
            b"\\x{41}",
            b"\\Q",
            b"\xef\xbb\xbf",
        ];
        let mut parsed = 0;
        for _ in 0..3000 {
            let mut text = Vec::new();
            for _ in 0..(next() % 40) {
                if next() % 10 == 0 {
                    text.push(next() as u8);
                } else {
                    text.extend_from_slice(alphabet[(next() % alphabet.len() as u64) as usize]);
                }
            }
            let Ok(lines) = read_patterns(Path::new("f"), &text) else {
                continue;
            };
            let Ok(m) = Matcher::new(Path::new("f"), &lines) else {
                continue;
            };
            parsed += 1;
            let mut info = MatchInfo::default();
            let mut path = Vec::new();
            for depth in 0..4 {
                if depth > 0 {
                    path.push(b'/');
                }
                for _ in 0..(1 + next() % 4) {
                    path.extend_from_slice(alphabet[(next() % alphabet.len() as u64) as usize]);
                }
                if let Ok((_, child)) = m.matches_with_parent(&path, &info) {
                    info = child;
                }
                let _ = m.matches_or_parent_matches(&path);
                let _ = m.legacy_matches(&path);
            }
        }
        assert!(parsed > 300, "only {parsed} inputs compiled");
    }

    #[test]
    fn matched_directory_excludes_everything_below() {
        let m = matcher("node_modules\n");
        assert_eq!(
            walk_excluded(
                &m,
                &[
                    "node_modules",
                    "node_modules/a",
                    "node_modules/a/b.js",
                    "src"
                ]
            ),
            ["node_modules", "node_modules/a", "node_modules/a/b.js"]
        );
    }

    #[test]
    fn last_match_wins() {
        let m = matcher("*.md\n!README.md\nREADME.md\n");
        assert!(m
            .matches_or_parent_matches(b"README.md")
            .unwrap()
            .excluded());
        let m = matcher("*.md\n!README.md\n");
        let v = m.matches_or_parent_matches(b"README.md").unwrap();
        assert_eq!(v, Decision::Exception(1));
    }

    /// Vectors from moby/patternmatcher's TestMatchesWithMalformedPatterns
    /// and New tests.
    #[test]
    fn compile_errors() {
        let bad = ["[", "a[", "[]", "a\\", "[\\]", "[^", "!"];
        for p in bad {
            let lines = read_patterns(Path::new("ig"), format!("ok\n{p}\n").as_bytes()).unwrap();
            let err = Matcher::new(Path::new("ig"), &lines).unwrap_err();
            assert!(err.to_string().starts_with("ig:2:"), "{p}: {err}");
        }
    }

    #[test]
    fn exceptions_reopen_excluded_parents() {
        // Vectors from patternmatcher's TestPatternMatchesFolderExclusions.
        let m = matcher("docs\n!docs/README.md\n");
        assert!(!m
            .matches_or_parent_matches(b"docs/README.md")
            .unwrap()
            .excluded());
        let m = matcher("docs/*\n!docs/README.md\n");
        assert!(!m
            .matches_or_parent_matches(b"docs/README.md")
            .unwrap()
            .excluded());
        let m = matcher("docs/\n!docs/README.md\n");
        assert!(!m
            .matches_or_parent_matches(b"docs/README.md")
            .unwrap()
            .excluded());
        let m = matcher("a\n!a/b\n");
        assert!(m.matches_or_parent_matches(b"a/c").unwrap().excluded());
    }

    #[test]
    fn legacy_matches_checks_one_ancestor() {
        // `Matches` only compares the ancestor at the pattern's own depth.
        let m = matcher("backend\n");
        assert!(m.legacy_matches(b"backend/Dockerfile"));
        // `**/b` is tried against `b/c` (its own depth), never against `b`.
        let m = matcher("**/b\n");
        assert!(!m.legacy_matches(b"b/c/d"));
        assert!(m.matches_or_parent_matches(b"b/c/d").unwrap().excluded());
        let m = matcher("a\n");
        assert!(!m.legacy_matches(b"b/a"));
    }
}
