//! One `.dockerignore` pattern, compiled exactly like moby/patternmatcher.
//!
//! Docker turns a pattern into one of four match kinds:
//!
//! * **exact**: no wildcard at all; the path must equal the pattern.
//! * **prefix**: ends in `**` with no other wildcard (`dir/**`); the path
//!   must start with the pattern minus `**` (so `dir/**` does *not* match
//!   `dir` itself).
//! * **suffix**: starts with `**` with no other wildcard (`**/foo`); the
//!   path must end with the pattern minus `**`, or equal it minus `**/`.
//! * **regexp**: anything else. `**` (with its following `/`) becomes
//!   `(.*/)?`, a trailing `**` becomes `.*`, `*` is `[^/]*`, `?` is `[^/]`,
//!   `.+()$` are escaped, `\c` passes `\c` to the regex, and `[`/`]` pass
//!   through verbatim. patternmatcher means to escape `|{}` too, but its
//!   escape table (8 bytes, one bit per character / 8) has no bit for a
//!   character above `?`: they reach the regex as alternation and counted
//!   repetition (`c{2}*` matches `ccx`, not `c{2}x`), in docker 28 as well. The result is anchored at both ends, so patterns are
//!   anchored at the context root: `*.pyc` does not match `a/b.pyc`.
//!
//! The regex dialect is Go's RE2, which [`regex`] follows closely; the few
//! places where the dialects differ (ASCII-only `\d \w \s \b`, how invalid
//! UTF-8 in names is matched, `[` inside classes) are translated here.
//!
//! Most regexp patterns are only literals, `*`, `?` and whole-segment
//! `**` (`*.log`, `models/*.joblib`, `**/__pycache__/*`). Those skip the
//! regex engine: neither `*` nor `?` crosses a `/`, so the path is matched
//! segment by segment (`Glob`), a `**/` standing for any number of whole
//! segments and a trailing `**` for the rest of the path (neither across a
//! newline: Go's `.` does not match one), which is what the regex does,
//! without building one. A compiled regex costs tens of kilobytes; a glob
//! costs its text.
//!
//! A regex is compiled once per distinct pattern of a [`Matcher`] and
//! shared, and its size is known ([`Pattern::regex_bytes`]): the matcher
//! refuses an ignore file whose regexes together need more than
//! [`MAX_REGEX_BYTES`], instead of growing without bound on a hostile one.
//!
//! [`Matcher`]: super::Matcher

use std::borrow::Cow;
use std::sync::Arc;

use regex_automata::meta;
use regex_automata::util::syntax;

/// What the compiled regexes of one matcher may hold in memory together
/// (their automata and the search caches they may grow to).
pub const MAX_REGEX_BYTES: usize = 64 << 20;

/// What one pattern's regex may compile to: a `{n}` repetition multiplies
/// it, and no ignore pattern needs more.
const MAX_ONE_REGEX_BYTES: usize = 8 << 20;

/// The lazy DFA's cache of one regex: it grows while matching up to this
/// (the regex crate's default is 2 MiB, which a few thousand patterns
/// multiply past any memory). Too small for a regex's automaton, the
/// search runs without it, just as exactly.
const REGEX_CACHE_BYTES: usize = 64 << 10;

/// How a pattern is matched; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchKind {
    /// No wildcard: the path must equal the pattern.
    Exact,
    /// `dir/**` and no other wildcard: the path must start with `dir/`.
    Prefix,
    /// `**/name` and no other wildcard: the path must end with `/name` or be `name`.
    Suffix,
    /// Anything else: the pattern compiled to a Go regex.
    Regex,
}

/// A compiled pattern (without its `!`). Cloning shares the compiled
/// regex.
#[derive(Debug, Clone)]
pub struct Pattern {
    cleaned: Vec<u8>,
    kind: MatchKind,
    /// `Err` holds Go's compile error: Docker reports it only when the
    /// pattern is first evaluated, so we keep it until then.
    regex: Option<Result<Arc<Compiled>, String>>,
}

/// A pattern's regex, matched against the path as Go reads it (valid
/// UTF-8, each invalid byte one U+FFFD).
#[derive(Debug)]
enum Compiled {
    /// Literals, `*`, `?` and whole-segment `**`; see the module docs.
    Glob(Glob),
    /// The regex; see [`compile`] for its two modes.
    Regex(meta::Regex),
}

impl Pattern {
    /// Compiles a cleaned pattern (as `PatternMatcher.New` stores it).
    pub fn new(cleaned: &[u8]) -> Pattern {
        let chars = go_chars(cleaned);
        let (kind, go) = go_regex_of(&chars);
        let regex = (kind == MatchKind::Regex).then(|| match Glob::parse(&chars) {
            Some(glob) => Ok(Arc::new(Compiled::Glob(glob))),
            None => compile(&go).map(|re| Arc::new(Compiled::Regex(re))),
        });
        Pattern {
            cleaned: cleaned.to_vec(),
            kind,
            regex,
        }
    }

    /// For a glob: a segment every path it matches has, as (counted from
    /// the end, index, text): a literal ASCII segment with no `**` between
    /// it and that end. What the matcher's index finds the pattern by.
    pub(crate) fn glob_anchor(&self) -> Option<(bool, usize, &[u8])> {
        let Some(Ok(Compiled::Glob(glob))) = self.regex.as_ref().map(|r| r.as_deref()) else {
            return None;
        };
        fn literal(s: &GlobSegment) -> Option<&[u8]> {
            match s {
                GlobSegment::Tokens(t) => match t.as_slice() {
                    [GlobToken::Literal(text)] if text.is_ascii() => Some(text.as_bytes()),
                    _ => None,
                },
                _ => None,
            }
        }
        let fixed = |s: &&GlobSegment| matches!(s, GlobSegment::Tokens(_));
        let from_start = glob.segments.iter().take_while(fixed).enumerate();
        let from_end = glob.segments.iter().rev().take_while(fixed).enumerate();
        from_start
            .filter_map(|(i, s)| Some((false, i, literal(s)?)))
            .chain(from_end.filter_map(|(i, s)| Some((true, i, literal(s)?))))
            .next()
    }

    /// The memory its compiled regex holds and may grow to while matching
    /// (its search cache): 0 for a pattern matched without one.
    pub fn regex_bytes(&self) -> usize {
        match self.regex.as_ref().map(|r| r.as_deref()) {
            Some(Ok(Compiled::Regex(re))) => re.memory_usage() + REGEX_CACHE_BYTES,
            _ => 0,
        }
    }

    /// The pattern text as Docker stores it (`Pattern.String()`).
    pub fn as_bytes(&self) -> &[u8] {
        &self.cleaned
    }

    /// The match kind Docker chose.
    pub fn kind(&self) -> MatchKind {
        self.kind
    }

    /// Whether `path` or one of its parent directories matches (what
    /// Docker's exclusion of a directory does to everything below it);
    /// a pattern that does not compile matches nothing here.
    pub fn matches_or_parent(&self, path: &[u8]) -> bool {
        let mut cut = path.len();
        loop {
            if self.matches(&path[..cut]).unwrap_or(false) {
                return true;
            }
            match path[..cut].iter().rposition(|&b| b == b'/') {
                Some(i) => cut = i,
                None => return false,
            }
        }
    }

    /// Whether `path` (context-relative, `/`-separated) matches.
    ///
    /// Fails only for a pattern whose regex does not compile, as Docker
    /// does on first use.
    pub fn matches(&self, path: &[u8]) -> Result<bool, PatternError> {
        let p = &self.cleaned;
        Ok(match self.kind {
            MatchKind::Exact => path == p.as_slice(),
            MatchKind::Prefix => path.starts_with(&p[..p.len() - 2]),
            MatchKind::Suffix => {
                let suffix = &p[2..];
                path.ends_with(suffix) || (suffix.first() == Some(&b'/') && path == &suffix[1..])
            }
            MatchKind::Regex => match self.regex.as_ref().map(|r| r.as_deref()) {
                Some(Ok(Compiled::Glob(glob))) => glob.is_match(&go_string(path)),
                Some(Ok(Compiled::Regex(re))) => re.is_match(go_string(path).as_bytes()),
                Some(Err(msg)) => {
                    return Err(PatternError {
                        message: msg.clone(),
                    })
                }
                None => false,
            },
        })
    }
}

/// A pattern Docker accepts at parse time but whose regex fails to compile.
#[derive(Debug, Clone, thiserror::Error)]
#[error("syntax error in pattern: {message}")]
pub struct PatternError {
    /// What the regex compiler said, in a few words.
    pub message: String,
}

/// Decodes one UTF-8 character like Go's `text/scanner`/`utf8`: an invalid
/// byte decodes as U+FFFD with width 1.
fn next_char(s: &[u8]) -> (char, usize) {
    let Some(&first) = s.first() else {
        return ('\u{FFFD}', 1);
    };
    let width = match first {
        0x00..=0x7F => return (first as char, 1),
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => return ('\u{FFFD}', 1),
    };
    match s.get(..width).and_then(|c| std::str::from_utf8(c).ok()) {
        Some(text) => (text.chars().next().unwrap_or('\u{FFFD}'), width),
        None => ('\u{FFFD}', 1),
    }
}

/// The characters of a pattern as patternmatcher scans them: `text/scanner`
/// skips a leading BOM and reads each invalid byte as U+FFFD.
fn go_chars(pattern: &[u8]) -> Vec<char> {
    let mut chars: Vec<char> = Vec::with_capacity(pattern.len());
    let mut i = 0;
    while i < pattern.len() {
        let (c, w) = next_char(&pattern[i..]);
        chars.push(c);
        i += w;
    }
    if chars.first() == Some(&'\u{FEFF}') {
        chars.remove(0);
    }
    chars
}

/// A pattern of literals, `*` (`[^/]*`), `?` (`[^/]`) and whole-segment
/// `**`, as `/`-separated segments; see the module docs.
#[derive(Debug, Clone)]
struct Glob {
    segments: Vec<GlobSegment>,
    /// Whether a segment is `**`: then the match backtracks over segments.
    any_dirs: bool,
}

#[derive(Debug, Clone)]
enum GlobSegment {
    /// One segment, matched by its tokens.
    Tokens(Vec<GlobToken>),
    /// `**/` (`(.*/)?`): any number of whole segments, none with a newline.
    AnyDirs,
    /// A trailing `**` after a `/` (`.*`): the rest of the path, at least
    /// one (maybe empty) segment, with no newline.
    Rest,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum GlobToken {
    Literal(String),
    /// `?`: one character other than `/`.
    One,
    /// `*`: any run of characters other than `/`.
    Star,
}

/// Segments a [`Glob`] matches with a bit set of its positions.
const MAX_GLOB_SEGMENTS: usize = 127;

impl Glob {
    /// `None` when the pattern needs the regex: `**` inside a segment, a
    /// class, an escape, or `^|{}` (which patternmatcher leaves in the
    /// regex as an anchor, alternation and counted repetition).
    fn parse(chars: &[char]) -> Option<Glob> {
        let mut segments = Vec::new();
        let mut tokens: Vec<GlobToken> = Vec::new();
        // At the start of a segment, with nothing in it yet.
        let mut fresh = true;
        let mut i = 0;
        while let Some(&c) = chars.get(i) {
            i += 1;
            match c {
                '*' if chars.get(i) == Some(&'*') => {
                    i += 1;
                    if !fresh {
                        return None;
                    }
                    // A `/` after it is part of it; at the end, it is the
                    // rest of the path.
                    match chars.get(i) {
                        Some('/') if i + 1 < chars.len() => {
                            i += 1;
                            segments.push(GlobSegment::AnyDirs);
                        }
                        Some('/') | None => {
                            segments.push(GlobSegment::Rest);
                            break;
                        }
                        Some(_) => return None,
                    }
                    continue;
                }
                '*' => tokens.push(GlobToken::Star),
                '?' => tokens.push(GlobToken::One),
                '[' | ']' | '\\' | '^' | '|' | '{' | '}' => return None,
                '/' => {
                    segments.push(GlobSegment::Tokens(std::mem::take(&mut tokens)));
                    fresh = true;
                    continue;
                }
                c => match tokens.last_mut() {
                    Some(GlobToken::Literal(text)) => text.push(c),
                    _ => tokens.push(GlobToken::Literal(c.to_string())),
                },
            }
            fresh = false;
        }
        // A trailing `**` ends the pattern; otherwise the last segment
        // (maybe empty) does.
        if !matches!(segments.last(), Some(GlobSegment::Rest)) {
            segments.push(GlobSegment::Tokens(tokens));
        }
        if segments.len() > MAX_GLOB_SEGMENTS {
            return None;
        }
        let any_dirs = segments
            .iter()
            .any(|s| !matches!(s, GlobSegment::Tokens(_)));
        Some(Glob { segments, any_dirs })
    }

    fn is_match(&self, path: &str) -> bool {
        if !self.any_dirs {
            let mut parts = path.split('/');
            return self.segments.iter().all(|segment| {
                let GlobSegment::Tokens(tokens) = segment else {
                    return false;
                };
                parts
                    .next()
                    .is_some_and(|part| segment_matches(tokens, part))
            }) && parts.next().is_none();
        }
        // Positions in `segments` reached after each path segment, as bits
        // (an NFA: `**` can take any number of segments, so no one choice
        // is right up front).
        let n = self.segments.len();
        let closure = |mut at: u128| {
            for (i, s) in self.segments.iter().enumerate() {
                if at >> i & 1 == 1 && matches!(s, GlobSegment::AnyDirs) {
                    at |= 1 << (i + 1);
                }
            }
            at
        };
        let mut at = closure(1);
        for part in path.split('/') {
            let plain = !part.contains('\n');
            let mut next = 0u128;
            for (i, s) in self.segments.iter().enumerate() {
                if at >> i & 1 == 0 {
                    continue;
                }
                match s {
                    GlobSegment::AnyDirs if plain => next |= 1 << i,
                    GlobSegment::Rest if plain => next |= 1 << i | 1 << n,
                    GlobSegment::Tokens(tokens) if segment_matches(tokens, part) => {
                        next |= 1 << (i + 1)
                    }
                    _ => {}
                }
            }
            at = closure(next);
            if at == 0 {
                return false;
            }
        }
        at >> n & 1 == 1
    }
}

/// Wildcard matching within one segment (no `/` on either side): on a
/// mismatch, the last `*` takes one more character and matching resumes
/// after it.
fn segment_matches(tokens: &[GlobToken], text: &str) -> bool {
    let char_len = |at: usize| text[at..].chars().next().map_or(0, char::len_utf8);
    let (mut t, mut at) = (0, 0);
    // Token after the last `*`, and where in the text its match starts.
    let mut star: Option<(usize, usize)> = None;
    loop {
        match tokens.get(t) {
            Some(GlobToken::Star) => {
                star = Some((t + 1, at));
                t += 1;
                continue;
            }
            Some(GlobToken::One) if at < text.len() => {
                at += char_len(at);
                t += 1;
                continue;
            }
            Some(GlobToken::Literal(lit)) if text[at..].starts_with(lit.as_str()) => {
                at += lit.len();
                t += 1;
                continue;
            }
            None if at == text.len() => return true,
            _ => {}
        }
        match star {
            Some((after, from)) if from < text.len() => {
                let from = from + char_len(from);
                star = Some((after, from));
                t = after;
                at = from;
            }
            _ => return false,
        }
    }
}

/// [`go_regex_of`] from the pattern's bytes.
#[cfg(test)]
fn go_regex(pattern: &[u8]) -> (MatchKind, String) {
    go_regex_of(&go_chars(pattern))
}

/// Builds the Go regex text patternmatcher builds for a pattern (its
/// characters as [`go_chars`] decodes them), and the match kind it settles
/// on. This is a line-by-line port of the rules, not of the code: every
/// wildcard is emitted as regex text even inside a
/// user's `[...]`, where Go's regex parser then reads it as class members.
fn go_regex_of(chars: &[char]) -> (MatchKind, String) {
    let mut re = String::from("^");
    let mut kind = MatchKind::Exact;
    let mut pos = 0;
    let mut index = 0;
    while pos < chars.len() {
        let ch = chars[pos];
        pos += 1;
        match ch {
            '*' if chars.get(pos) == Some(&'*') => {
                pos += 1;
                if chars.get(pos) == Some(&'/') {
                    pos += 1;
                }
                if pos >= chars.len() {
                    if kind == MatchKind::Exact {
                        kind = MatchKind::Prefix;
                    } else {
                        re.push_str(".*");
                        kind = MatchKind::Regex;
                    }
                } else {
                    re.push_str("(.*/)?");
                    kind = MatchKind::Regex;
                }
                if index == 0 {
                    kind = MatchKind::Suffix;
                }
            }
            '*' => {
                re.push_str("[^/]*");
                kind = MatchKind::Regex;
            }
            '?' => {
                re.push_str("[^/]");
                kind = MatchKind::Regex;
            }
            '.' | '+' | '(' | ')' | '$' => {
                re.push('\\');
                re.push(ch);
            }
            '\\' => {
                if let Some(&next) = chars.get(pos) {
                    pos += 1;
                    re.push('\\');
                    re.push(next);
                    kind = MatchKind::Regex;
                } else {
                    re.push('\\');
                }
            }
            '[' | ']' => {
                re.push(ch);
                kind = MatchKind::Regex;
            }
            _ => re.push(ch),
        }
        index += 1;
    }
    re.push('$');
    (kind, re)
}

/// A regex failure in a few words: the regex crate's own message quotes
/// the whole expression over several lines.
fn regex_error(e: meta::BuildError) -> String {
    match e.size_limit() {
        Some(limit) => format!("the pattern compiles to more than {limit} bytes; simplify it"),
        None => "the pattern is not a valid regular expression".to_string(),
    }
}

/// Compiles the Go regex text of a pattern. When every class is
/// ASCII-only, over bytes without Unicode classes, each "any character
/// but" spelled as one ASCII byte or one UTF-8 sequence: equivalent on
/// valid UTF-8, and compiling it skips the UTF-8 automaton builder, whose
/// tables cost a few hundred kilobytes of fresh memory per pattern
/// (measurable in start-up). Otherwise (a class with non-ASCII members or
/// a Unicode property) in Unicode mode. `Err` carries the message of a
/// regex Go would refuse to compile.
fn compile(go: &str) -> Result<meta::Regex, String> {
    let (src, unicode) = match go_regex_to_rust(go, Mode::Ascii) {
        Ok(src) => (src, false),
        Err(Untranslatable::Go(message)) => return Err(message),
        Err(Untranslatable::NeedsUnicode) => {
            let src = go_regex_to_rust(go, Mode::Unicode).map_err(|e| match e {
                Untranslatable::Go(message) => message,
                Untranslatable::NeedsUnicode => "unsupported class".to_string(),
            })?;
            (src, true)
        }
    };
    // As the regex crate's `Regex` (Unicode) and `bytes::Regex` (ASCII)
    // configure the engine, with the size limits above.
    meta::Builder::new()
        .configure(
            meta::Config::new()
                .nfa_size_limit(Some(MAX_ONE_REGEX_BYTES))
                .onepass_size_limit(Some(MAX_ONE_REGEX_BYTES))
                .hybrid_cache_capacity(REGEX_CACHE_BYTES)
                .utf8_empty(unicode),
        )
        .syntax(syntax::Config::new().unicode(unicode).utf8(unicode))
        .build(&src)
        .map_err(regex_error)
}

/// Which Rust regex dialect a translation targets; see [`Compiled`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Ascii,
    Unicode,
}

/// Why a Go regex was not translated.
#[derive(Debug)]
enum Untranslatable {
    /// Go refuses it too, with this message.
    Go(String),
    /// It has a class that ASCII mode cannot spell.
    NeedsUnicode,
}

impl From<String> for Untranslatable {
    fn from(message: String) -> Untranslatable {
        Untranslatable::Go(message)
    }
}

impl From<&str> for Untranslatable {
    fn from(message: &str) -> Untranslatable {
        Untranslatable::Go(message.to_string())
    }
}

/// Translates a Go regex (RE2 syntax, as patternmatcher generates it) into
/// an equivalent Rust regex in `mode`.
fn go_regex_to_rust(go: &str, mode: Mode) -> Result<String, Untranslatable> {
    let chars: Vec<char> = go.chars().collect();
    let mut out = String::with_capacity(go.len() * 2);
    let mut i = 0;
    // Go refuses a repetition of a repetition (`[^/]*{2}`) and one with
    // nothing before it (`(|{2})`).
    let mut after_repeat = false;
    let mut after_operand = false;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        let was_repeat = std::mem::replace(&mut after_repeat, matches!(c, '*' | '?' | '+'));
        let had_operand = std::mem::replace(&mut after_operand, !matches!(c, '(' | '|'));
        match c {
            '{' => match counted_repeat(&chars, i) {
                Some((min, max, next)) => {
                    if was_repeat {
                        return Err("invalid nested repetition operator".into());
                    }
                    if !had_operand {
                        return Err("missing argument to repetition operator".into());
                    }
                    if min > 1000 || max.is_some_and(|m| m > 1000 || m < min) {
                        return Err("invalid repeat count".into());
                    }
                    match max {
                        Some(m) if m == min => out.push_str(&format!("{{{min}}}")),
                        Some(m) => out.push_str(&format!("{{{min},{m}}}")),
                        None => out.push_str(&format!("{{{min},}}")),
                    }
                    after_repeat = true;
                    i = next;
                }
                // Not `{n}`, `{n,}` or `{n,m}`: a literal, as in Go.
                None => push_literal(&mut out, c, mode),
            },
            '^' => out.push_str("(?-m:^)"),
            '$' => out.push_str("(?-m:$)"),
            '(' => out.push_str("(?:"),
            ')' | '*' | '?' | '|' | '+' => out.push(c),
            '.' => match mode {
                Mode::Ascii => out.push_str(ANY_BUT_NEWLINE_ASCII),
                Mode::Unicode => out.push_str(ANY_BUT_NEWLINE),
            },
            '[' => i = translate_class(&chars, i, &mut out, mode)?,
            '\\' => i = translate_escape(&chars, i, &mut out, mode)?,
            // Go reads `]`, `{` and `}` outside a class as literals here.
            _ => push_literal(&mut out, c, mode),
        }
    }
    Ok(out)
}

/// Go's counted repetition after the `{` before `at`: `{n}`, `{n,}` or
/// `{n,m}` (min, max, the index after `}`); `None` when the text is not of
/// that form and Go reads the `{` as a literal.
fn counted_repeat(chars: &[char], at: usize) -> Option<(u32, Option<u32>, usize)> {
    let number = |from: usize| -> Option<(u32, usize)> {
        let end = chars[from..]
            .iter()
            .position(|c| !c.is_ascii_digit())
            .map_or(chars.len(), |n| from + n);
        if end == from {
            return None;
        }
        // Longer than Go's int parses is invalid there too; cap it.
        let value = chars[from..end]
            .iter()
            .take(8)
            .fold(0u32, |v, c| v * 10 + c.to_digit(10).unwrap_or(0));
        let value = if end - from > 8 { u32::MAX } else { value };
        Some((value, end))
    };
    let (min, i) = number(at)?;
    match chars.get(i)? {
        '}' => Some((min, Some(min), i + 1)),
        ',' if chars.get(i + 1) == Some(&'}') => Some((min, None, i + 2)),
        ',' => {
            let (max, j) = number(i + 1)?;
            (chars.get(j) == Some(&'}')).then_some((min, Some(max), j + 1))
        }
        _ => None,
    }
}

/// Go's `.`: any character but a newline.
const ANY_BUT_NEWLINE: &str = "[^\\n]";

/// Go's `.` in ASCII mode: an ASCII byte but a newline, or one UTF-8
/// sequence.
const ANY_BUT_NEWLINE_ASCII: &str = "(?:[^\\n\\x80-\\xFF]|[\\xC0-\\xFF][\\x80-\\xBF]*)";

/// A path as Go's regexp reads it: each byte that is not part of valid
/// UTF-8 is one U+FFFD (unlike Rust's lossy conversion, which merges a
/// broken sequence into one).
fn go_string(path: &[u8]) -> Cow<'_, str> {
    if let Ok(s) = std::str::from_utf8(path) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(path.len() + 8);
    let mut i = 0;
    while i < path.len() {
        let (c, w) = next_char(&path[i..]);
        out.push(c);
        i += w;
    }
    Cow::Owned(out)
}

fn push_literal(out: &mut String, c: char, mode: Mode) {
    let mut buf = [0u8; 4];
    if mode == Mode::Ascii && !c.is_ascii() {
        // ASCII mode takes no non-ASCII literal: spell its UTF-8 bytes.
        for b in c.encode_utf8(&mut buf).bytes() {
            out.push_str(&format!("\\x{b:02X}"));
        }
        return;
    }
    out.push_str(&regex::escape(c.encode_utf8(&mut buf)));
}

/// Pushes `c` as a class member in Rust syntax.
fn push_class_char(out: &mut String, c: char) {
    if c.is_ascii_alphanumeric() {
        out.push(c);
    } else {
        out.push_str(&format!("\\x{{{:X}}}", c as u32));
    }
}

/// Translates the escape after a `\` at `i` outside a class.
fn translate_escape(
    chars: &[char],
    i: usize,
    out: &mut String,
    mode: Mode,
) -> Result<usize, Untranslatable> {
    let Some(&c) = chars.get(i) else {
        return Err("trailing backslash at end of expression".into());
    };
    match c {
        'A' => out.push_str("(?-m:^)"),
        'z' => out.push_str("(?-m:$)"),
        'b' | 'B' => {
            out.push_str("(?-u:\\");
            out.push(c);
            out.push(')');
        }
        'd' | 'D' | 's' | 'S' | 'w' | 'W' | 'p' | 'P' => {
            let mut class = ClassBuilder::default();
            let next = class.add_escape_class(chars, i)?;
            let negated = c.is_ascii_uppercase();
            class.emit(out, negated, mode)?;
            return Ok(next);
        }
        'Q' => {
            // Literal text up to `\E` (or the end).
            let mut j = i + 1;
            while j < chars.len() {
                if chars[j] == '\\' && chars.get(j + 1) == Some(&'E') {
                    return Ok(j + 2);
                }
                push_literal(out, chars[j], mode);
                j += 1;
            }
            return Ok(j);
        }
        _ => {
            let (ch, next) = parse_char_escape(chars, i)?;
            push_literal(out, ch, mode);
            return Ok(next);
        }
    }
    Ok(i + 1)
}

/// Go's `parseEscape` for escapes that denote one character; `i` points
/// after the backslash.
fn parse_char_escape(chars: &[char], i: usize) -> Result<(char, usize), String> {
    let bad = |s: String| Err(format!("invalid escape sequence: `\\{s}`"));
    let Some(&c) = chars.get(i) else {
        return Err("trailing backslash at end of expression".into());
    };
    let octal = |c: char| ('0'..='7').contains(&c);
    match c {
        '1'..='7' if !chars.get(i + 1).is_some_and(|&n| octal(n)) => bad(c.to_string()),
        '0'..='7' => {
            let mut value = c as u32 - '0' as u32;
            let mut j = i + 1;
            while j < i + 3 && chars.get(j).is_some_and(|&n| octal(n)) {
                value = value * 8 + (chars[j] as u32 - '0' as u32);
                j += 1;
            }
            Ok((char::from_u32(value).unwrap_or('\u{FFFD}'), j))
        }
        'x' => {
            if chars.get(i + 1) == Some(&'{') {
                let mut j = i + 2;
                let mut value: u32 = 0;
                let mut digits = 0;
                while let Some(d) = chars.get(j).and_then(|c| c.to_digit(16)) {
                    value = value.saturating_mul(16).saturating_add(d);
                    digits += 1;
                    j += 1;
                }
                if digits == 0 || chars.get(j) != Some(&'}') || value > 0x10FFFF {
                    return bad("x{".into());
                }
                return char::from_u32(value)
                    .map(|ch| (ch, j + 1))
                    .ok_or_else(|| "invalid escape sequence: `\\x{`".to_string());
            }
            let hi = chars.get(i + 1).and_then(|c| c.to_digit(16));
            let lo = chars.get(i + 2).and_then(|c| c.to_digit(16));
            match (hi, lo) {
                (Some(h), Some(l)) => Ok((char::from_u32(h * 16 + l).unwrap_or('\u{FFFD}'), i + 3)),
                _ => bad("x".into()),
            }
        }
        'a' => Ok(('\u{07}', i + 1)),
        'f' => Ok(('\u{0C}', i + 1)),
        'n' => Ok(('\n', i + 1)),
        'r' => Ok(('\r', i + 1)),
        't' => Ok(('\t', i + 1)),
        'v' => Ok(('\u{0B}', i + 1)),
        c if c.is_ascii() && !c.is_ascii_alphanumeric() => Ok((c, i + 1)),
        c => bad(c.to_string()),
    }
}

/// A character class being collected in Go semantics and emitted in Rust.
#[derive(Default)]
struct ClassBuilder {
    /// Rust class items (ranges, nested classes), already escaped.
    items: String,
    /// Whether an item may match a non-ASCII character (a non-ASCII range
    /// end, a negated nested class, a Unicode property).
    unicode: bool,
}

impl ClassBuilder {
    fn add_range(&mut self, lo: char, hi: char) {
        self.unicode |= !hi.is_ascii();
        push_class_char(&mut self.items, lo);
        if hi != lo {
            self.items.push('-');
            push_class_char(&mut self.items, hi);
        }
    }

    /// A nested Rust class with the same meaning as Go's; `non_ascii`
    /// when it can match a non-ASCII character (a negation or a Unicode
    /// property).
    fn add_nested(&mut self, rust: &str, non_ascii: bool) {
        self.unicode |= non_ascii;
        self.items.push_str(rust);
    }

    /// `\d \D \s \S \w \W \pX \p{X} \PX \P{X}` at `i` (the letter).
    fn add_escape_class(&mut self, chars: &[char], i: usize) -> Result<usize, String> {
        let c = chars[i];
        let ascii = match c {
            'd' => Some("[0-9]"),
            'D' => Some("[^0-9]"),
            's' => Some("[\\t\\n\\x0C\\r ]"),
            'S' => Some("[^\\t\\n\\x0C\\r ]"),
            'w' => Some("[0-9A-Za-z_]"),
            'W' => Some("[^0-9A-Za-z_]"),
            _ => None,
        };
        if let Some(rust) = ascii {
            self.add_nested(rust, c.is_ascii_uppercase());
            return Ok(i + 1);
        }
        // \p / \P with a one-letter name or a braced name.
        let (name, next) = match chars.get(i + 1) {
            Some('{') => {
                let end = chars[i + 2..]
                    .iter()
                    .position(|&c| c == '}')
                    .map(|p| p + i + 2)
                    .ok_or("invalid character class range: missing `}`")?;
                (chars[i + 2..end].iter().collect::<String>(), end + 1)
            }
            Some(&n) => (n.to_string(), i + 2),
            None => return Err("invalid character class range: `\\p`".into()),
        };
        let (negated, name) = match name.strip_prefix('^') {
            Some(rest) => (c == 'p', rest.to_string()),
            None => (c == 'P', name),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("invalid character class range: `\\p{{{name}}}`"));
        }
        let rust = format!("\\{}{{{}}}", if negated { 'P' } else { 'p' }, name);
        self.add_nested(&rust, true);
        Ok(next)
    }

    fn emit(&self, out: &mut String, negated: bool, mode: Mode) -> Result<(), Untranslatable> {
        if mode == Mode::Ascii {
            if self.unicode {
                return Err(Untranslatable::NeedsUnicode);
            }
            if negated {
                // Any character but these: an ASCII byte but these, or
                // one UTF-8 sequence.
                out.push_str("(?:[^");
                out.push_str(&self.items);
                out.push_str("\\x80-\\xFF]|[\\xC0-\\xFF][\\x80-\\xBF]*)");
                return Ok(());
            }
        }
        out.push('[');
        if negated {
            out.push('^');
        }
        if self.items.is_empty() {
            // Cannot happen for classes Go accepts; keep Rust's syntax valid.
            out.push_str("\\x{0}&&\\x{1}");
        }
        out.push_str(&self.items);
        out.push(']');
        Ok(())
    }
}

/// Go's POSIX class names, which Rust spells the same way.
const POSIX_CLASSES: &[&str] = &[
    "alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower", "print", "punct",
    "space", "upper", "word", "xdigit",
];

/// Translates a Go class whose `[` was just consumed (`i` points after it);
/// returns the index after its `]`.
fn translate_class(
    chars: &[char],
    mut i: usize,
    out: &mut String,
    mode: Mode,
) -> Result<usize, Untranslatable> {
    let mut class = ClassBuilder::default();
    let negated = chars.get(i) == Some(&'^');
    if negated {
        i += 1;
    }
    let mut first = true;
    loop {
        let Some(&c) = chars.get(i) else {
            return Err("missing closing ]".into());
        };
        if c == ']' && !first {
            i += 1;
            break;
        }
        first = false;
        // POSIX class `[:name:]` / `[:^name:]`.
        if c == '[' && chars.get(i + 1) == Some(&':') {
            let rest: String = chars[i + 2..].iter().collect();
            if let Some(end) = rest.find(":]") {
                let name = &rest[..end];
                let bare = name.strip_prefix('^').unwrap_or(name);
                if !POSIX_CLASSES.contains(&bare) {
                    return Err(format!("invalid character class range: `[:{name}:]`").into());
                }
                class.add_nested(&format!("[[:{name}:]]"), name.starts_with('^'));
                i += 2 + name.chars().count() + 2;
                continue;
            }
        }
        if c == '\\' {
            if let Some(&e) = chars.get(i + 1) {
                if matches!(e, 'd' | 'D' | 's' | 'S' | 'w' | 'W' | 'p' | 'P') {
                    i = class.add_escape_class(chars, i + 1)?;
                    continue;
                }
            }
        }
        let (lo, next) = class_char(chars, i)?;
        i = next;
        let mut hi = lo;
        if chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|&n| n != ']') {
            let (h, next) = class_char(chars, i + 1)?;
            if h < lo {
                return Err("invalid character class range".into());
            }
            hi = h;
            i = next;
        }
        class.add_range(lo, hi);
    }
    class.emit(out, negated, mode)?;
    Ok(i)
}

/// One character of a class: literal or escape.
fn class_char(chars: &[char], i: usize) -> Result<(char, usize), String> {
    match chars.get(i) {
        None => Err("missing closing ]".into()),
        Some('\\') => parse_char_escape(chars, i + 1),
        Some(&c) => Ok((c, i + 1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, path: &str) -> bool {
        Pattern::new(pattern.as_bytes())
            .matches(path.as_bytes())
            .unwrap()
    }

    #[test]
    fn match_kinds() {
        let cases = [
            ("foo", MatchKind::Exact),
            ("foo.txt", MatchKind::Exact),
            ("dir/**", MatchKind::Prefix),
            ("a**", MatchKind::Prefix),
            ("**/foo", MatchKind::Suffix),
            ("**", MatchKind::Suffix),
            ("**/foo.txt", MatchKind::Suffix),
            ("**/*.pyc", MatchKind::Regex),
            ("*", MatchKind::Regex),
            ("a\\b", MatchKind::Regex),
            ("a/**/b", MatchKind::Regex),
            ("[ab]", MatchKind::Regex),
        ];
        for (p, kind) in cases {
            assert_eq!(Pattern::new(p.as_bytes()).kind(), kind, "{p}");
        }
    }

    /// ASCII mode must agree with Unicode mode wherever it applies, on
    /// ASCII, multi-byte and invalid UTF-8 paths alike.
    /// The glob path and the regex path agree on every pattern the glob
    /// path takes, over paths with multi-byte, invalid and `/` bytes.
    #[test]
    fn globs_match_like_their_regex() {
        let pattern_atoms = [
            "a", "b", "é", ".", "*", "?", "/", "$", "+", "(", "\u{FFFD}", "**", "**/", "/**",
        ];
        let path_atoms: [&[u8]; 9] = [
            b"a",
            b"b",
            "é".as_bytes(),
            b".",
            b"/",
            b"\xff",
            b"\n",
            b"$",
            b"+",
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let (mut globs, mut with_any_dirs) = (0, 0);
        for _ in 0..8000 {
            let pattern: String = (0..1 + next(6))
                .map(|_| pattern_atoms[next(pattern_atoms.len())])
                .collect();
            let Some(glob) = Glob::parse(&go_chars(pattern.as_bytes())) else {
                continue;
            };
            let (kind, go) = go_regex(pattern.as_bytes());
            if kind != MatchKind::Regex {
                continue;
            }
            globs += 1;
            with_any_dirs += usize::from(glob.any_dirs);
            let regex = compile(&go).unwrap();
            for _ in 0..20 {
                let path: Vec<u8> = (0..next(7))
                    .flat_map(|_| path_atoms[next(path_atoms.len())].to_vec())
                    .collect();
                let haystack = go_string(&path);
                let by_regex = regex.is_match(haystack.as_bytes());
                assert_eq!(
                    glob.is_match(&haystack),
                    by_regex,
                    "{pattern:?} on {path:?} ({go})"
                );
            }
        }
        assert!(
            globs > 1500 && with_any_dirs > 300,
            "{globs} glob patterns, {with_any_dirs} with `**`"
        );
        let is_glob = |p: &str| {
            matches!(
                Pattern::new(p.as_bytes())
                    .regex
                    .as_ref()
                    .map(|r| r.as_deref()),
                Some(Ok(Compiled::Glob(_)))
            )
        };
        // Common patterns take the glob path; the others keep the regex.
        for p in [
            "*.pyc",
            "models/*.joblib",
            "*/__pycache__",
            "a?c/*",
            "a.b$c*",
            "**/a*",
            "a/**/b*",
            "**/node_modules/**",
            "a*/**",
            "**/**",
        ] {
            assert!(is_glob(p), "{p}");
            assert_eq!(Pattern::new(p.as_bytes()).regex_bytes(), 0, "{p}");
        }
        for p in [
            "[ab]*",
            "a\\*",
            "^a*",
            "\u{FEFF}x[y]",
            "a**b*",
            "**a/*",
            "a/***",
        ] {
            assert!(!is_glob(p), "{p}");
            assert!(Pattern::new(p.as_bytes()).regex_bytes() > 0, "{p}");
        }
        // A leading BOM is skipped, as patternmatcher's scanner does.
        assert!(Pattern::new("\u{FEFF}*.md".as_bytes())
            .matches(b"x.md")
            .unwrap());
    }

    #[test]
    fn ascii_mode_matches_like_unicode_mode() {
        let patterns = [
            "*",
            "?",
            "??",
            "*.pyc",
            "a?c",
            "?é",
            "é?",
            "*é*",
            "[^a]",
            "[^a]?",
            "[a-c]*",
            "x[^/]y",
            "\\d?",
            "\\D",
            "[\\d]",
            "\\w*",
            ".?",
            "[[:alpha:]]?",
            "a/**/b",
            "**/?",
            "\\Qé?\\E*",
        ];
        let paths: [&[u8]; 16] = [
            b"a",
            b"abc",
            b"a\xc3\xa9c",
            "é".as_bytes(),
            "éé".as_bytes(),
            "ab\u{1F600}".as_bytes(),
            b"\xff",
            b"\xff\xfe",
            b"a\x80c",
            b"x/y",
            b"a1",
            "aé".as_bytes(),
            b"a/x/b",
            "\u{FFFD}".as_bytes(),
            b"\xe9?",
            "é?x".as_bytes(),
        ];
        let mut ascii = 0;
        for p in patterns {
            let (kind, go) = go_regex(p.as_bytes());
            assert_eq!(kind, MatchKind::Regex, "{p}");
            let unicode = go_regex_to_rust(&go, Mode::Unicode).unwrap();
            let unicode = regex::Regex::new(&unicode).unwrap();
            let Ok(src) = go_regex_to_rust(&go, Mode::Ascii) else {
                continue;
            };
            ascii += 1;
            let bytes = regex::bytes::RegexBuilder::new(&src)
                .unicode(false)
                .build()
                .unwrap();
            for path in paths {
                let haystack = go_string(path);
                assert_eq!(
                    bytes.is_match(haystack.as_bytes()),
                    unicode.is_match(&haystack),
                    "{p} on {path:?} ({src})"
                );
            }
        }
        assert!(ascii >= patterns.len() - 3, "{ascii} in ASCII mode");
        // The usual patterns take the cheap path.
        for p in ["*.pyc", "?", "[^a]", "a/**/b", "\\d"] {
            let (_, go) = go_regex(p.as_bytes());
            assert!(go_regex_to_rust(&go, Mode::Ascii).is_ok(), "{p}");
        }
        for p in ["[é]", "[^é]", "\\pL", "\\D"] {
            let (_, go) = go_regex(p.as_bytes());
            assert!(go_regex_to_rust(&go, Mode::Ascii).is_err(), "{p}");
            assert!(compile(&go).is_ok(), "{p}");
        }
    }

    #[test]
    fn anchored_at_root() {
        assert!(!m("*.pyc", "a/b/c.pyc"));
        assert!(m("*.pyc", "c.pyc"));
        assert!(!m("foo", "a/foo"));
        assert!(!m("__pycache__", "app/__pycache__"));
        assert!(m("**/__pycache__", "app/__pycache__"));
    }

    #[test]
    fn go_regex_dialect() {
        // `\d` is ASCII-only in Go.
        assert!(m("a\\d", "a1"));
        assert!(!m("a\\d", "a\u{0663}"));
        assert!(m("[[:alpha:]]", "x"));
        assert!(!m("[[:alpha:]]", "1"));
        assert!(m("[[]", "["));
        assert!(m("[]a]", "]"));
        assert!(m("x[\\d]", "x7"));
        assert!(m("a]", "a]"));
        assert!(m("?", "é"));
        assert!(m("?", "\u{FFFD}"));
        assert!(Pattern::new(b"?").matches(b"\xff").unwrap());
        assert!(!Pattern::new(b"?").matches(b"\xff\xfe").unwrap());
        assert!(Pattern::new(b"*").matches(b"\xff\xfe").unwrap());
        assert!(m("a&&b*", "a&&bc"));
        assert!(m("[a&&b]", "&"));
        assert!(m("[a-c--]x", "-x"));
        // `^` does not make a pattern a regex: this is an exact match...
        assert!(m("a^b", "a^b"));
        // ... but inside a regex it is Go's start-of-text anchor.
        assert!(!m("a^b*", "a^b"));
        // Wildcards inside a user class become class members in Go's regex.
        assert!(!m("[*]", "[*]") && m("[*]", "/]") && m("[*]", "]"));
        assert!(m("[?]", "^]"));
        // `.` in Go's regex does not match a newline; `[^/]` does.
        assert!(!m("**/x*", "a\nb/x"));
        assert!(m("*", "a\nb"));
    }

    #[test]
    fn bad_regex_errors_on_use() {
        let p = Pattern::new(b"[z-a]");
        assert!(p.matches(b"x").is_err());
        // Accepted by the syntax check (see gopath), then: Docker 20.10 with
        // BuildKit fails with "failed to match excludepatterns" on `d*/x[`
        // and builds with `d*/x\`, whose regex ends in an escaped `$`.
        assert!(Pattern::new(b"d*/x[").matches(b"dz/x").is_err());
        let p = Pattern::new(b"d*/x\\");
        assert!(!p.matches(b"dz/x").unwrap());
        assert!(p.matches(b"dz/x$").unwrap());
        assert!(Pattern::new(b"d*/[]a]").matches(b"dz/a").unwrap());
    }

    /// patternmatcher's escape table has no bit for `|{}` (nor `^`), so
    /// they stay regex syntax: checked against docker 28 and
    /// moby/patternmatcher v0.6 by tests/differential_clients.rs.
    #[test]
    fn bar_and_braces_stay_regex_syntax() {
        let m = |p: &str, path: &str| Pattern::new(p.as_bytes()).matches(path.as_bytes()).ok();
        assert_eq!(m("c{2}*", "ccx"), Some(true));
        assert_eq!(m("c{2}*", "c{2}x"), Some(false));
        assert_eq!(m("c{1,}?", "cccx"), Some(true));
        assert_eq!(m("d|e*", "dx"), Some(true));
        assert_eq!(m("d|e*", "Dockerfile"), Some(true));
        assert_eq!(m("d|e*", "xa"), Some(false));
        // Not a counted repetition: literal braces, as in Go.
        assert_eq!(m("a{*", "a{b"), Some(true));
        assert_eq!(m("a{x}*", "a{x}y"), Some(true));
        // What Go refuses.
        assert!(m("a*{2}", "a").is_none());
        assert!(m("a{1001}*", "a").is_none());
        assert!(m("a{3,2}*", "a").is_none());
        // Exact patterns compare text.
        assert_eq!(m("c{2}", "c{2}"), Some(true));
    }
}
