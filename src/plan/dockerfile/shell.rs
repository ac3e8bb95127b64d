//! Shell-like word processing following BuildKit's `shell.Lex`:
//! variable expansion (`$V`, `${V:-x}`, `${V#p}`, `${V/p/r}`, ...), quotes and
//! escapes, plus the quote-aware word splitters used by the parser.

/// Result of expanding one word.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Expansion {
    /// The expanded word, quotes and escapes removed.
    pub value: String,
    /// Variable names referenced by the word, in order of first use.
    pub referenced: Vec<String>,
    /// Referenced variable names that were unset where their (empty) value
    /// was used directly: `$V`, `${V}`, `${V#p}`, `${V%p}`, `${V/p/r}`. Forms
    /// with a fallback (`${V:-x}`, `${V+x}`, `${V?x}`) do not count.
    /// Shell special parameters (`$1`, `$@`, ...) are never reported.
    pub unset: Vec<String>,
}

/// Maximum nesting of `${...}` before giving up (protects the stack).
const MAX_DEPTH: usize = 64;

/// Expands `word` like BuildKit's `ProcessWord`: the whole input is one word
/// (whitespace is kept), quotes are removed, `escape` escapes the next
/// character and variables are looked up with `lookup`.
///
/// Errors (as a message) on unbalanced quotes, bad substitutions and
/// `${V:?msg}` / `${V?msg}` with the variable empty/unset.
pub fn expand_word(
    word: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Expansion, String> {
    let mut lx = Lexer {
        chars: word.chars().collect(),
        pos: 0,
        escape,
        lookup,
        referenced: Vec::new(),
        unset: Vec::new(),
        depth: 0,
    };
    let value = lx.process_stop_on(None, false)?;
    Ok(Expansion {
        value,
        referenced: lx.referenced,
        unset: lx.unset,
    })
}

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    lookup: &'a dyn Fn(&str) -> Option<String>,
    referenced: Vec<String>,
    unset: Vec<String>,
    depth: usize,
}

fn is_identifier(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    /// Looks a variable up and records it. `direct` marks uses where an unset
    /// value is used as-is.
    fn get(&mut self, name: &str, direct: bool) -> Option<String> {
        let v = (self.lookup)(name);
        if is_identifier(name) {
            if !self.referenced.iter().any(|n| n == name) {
                self.referenced.push(name.to_string());
            }
            if v.is_none() && direct && !self.unset.iter().any(|n| n == name) {
                self.unset.push(name.to_string());
            }
        }
        v
    }

    fn process_stop_on(&mut self, stop: Option<char>, raw_escapes: bool) -> Result<String, String> {
        let mut out = String::new();
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.pos += 1;
                return Ok(out);
            }
            match ch {
                '$' => {
                    let v = self.process_dollar()?;
                    out.push_str(&v);
                }
                '\'' => {
                    let v = self.single_quote()?;
                    out.push_str(&v);
                }
                '"' => {
                    let v = self.double_quote()?;
                    out.push_str(&v);
                }
                _ => {
                    self.pos += 1;
                    if ch == self.escape {
                        if raw_escapes {
                            out.push(ch);
                        }
                        match self.next() {
                            Some(c) => out.push(c),
                            None => break,
                        }
                    } else {
                        out.push(ch);
                    }
                }
            }
        }
        match stop {
            Some(s) => Err(format!(
                "unexpected end of statement while looking for matching {s}"
            )),
            None => Ok(out),
        }
    }

    fn single_quote(&mut self) -> Result<String, String> {
        self.pos += 1; // opening quote
        let mut out = String::new();
        loop {
            match self.next() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching single-quote; close the ' quote"
                            .to_string(),
                    )
                }
                Some('\'') => return Ok(out),
                Some(c) => out.push(c),
            }
        }
    }

    fn double_quote(&mut self) -> Result<String, String> {
        self.pos += 1; // opening quote
        let mut out = String::new();
        loop {
            match self.peek() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching double-quote; close the \" quote"
                            .to_string(),
                    )
                }
                Some('"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some('$') => {
                    let v = self.process_dollar()?;
                    out.push_str(&v);
                }
                Some(mut ch) => {
                    self.pos += 1;
                    if ch == self.escape {
                        match self.peek() {
                            None => continue,
                            Some(n) if n == '"' || n == '$' || n == self.escape => {
                                self.pos += 1;
                                ch = n;
                            }
                            Some(_) => {}
                        }
                    }
                    out.push(ch);
                }
            }
        }
    }

    fn process_name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && ch.is_ascii_digit() {
                while let Some(d) = self.peek().filter(|c| c.is_ascii_digit()) {
                    name.push(d);
                    self.pos += 1;
                }
                return name;
            }
            if name.is_empty() && matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.pos += 1;
                name.push(ch);
                return name;
            }
            if !ch.is_alphanumeric() && ch != '_' {
                break;
            }
            self.pos += 1;
            name.push(ch);
        }
        name
    }

    fn process_dollar(&mut self) -> Result<String, String> {
        self.depth += 1;
        let r = if self.depth > MAX_DEPTH {
            Err("variable substitutions are nested too deeply".to_string())
        } else {
            self.process_dollar_inner()
        };
        self.depth -= 1;
        r
    }

    fn process_dollar_inner(&mut self) -> Result<String, String> {
        self.pos += 1; // '$'
        if self.peek() != Some('{') {
            let name = self.process_name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            return Ok(self.get(&name, true).unwrap_or_default());
        }
        self.pos += 1; // '{'
        match self.peek() {
            None => return Err("syntax error: missing '}'".to_string()),
            Some('{') | Some('}') | Some(':') => {
                return Err("syntax error: bad substitution".to_string())
            }
            _ => {}
        }
        let name = self.process_name();
        let Some(mut ch) = self.next() else {
            return Err("syntax error: missing '}'".to_string());
        };
        let mut modifier = ch.to_string();
        let mut null_is_unset = false;
        match ch {
            '}' => return Ok(self.get(&name, true).unwrap_or_default()),
            ':' => {
                null_is_unset = true;
                match self.next() {
                    Some(c) => {
                        ch = c;
                        modifier.push(c);
                    }
                    None => return Err("syntax error: missing '}'".to_string()),
                }
                if !matches!(ch, '+' | '-' | '?') {
                    return Err(format!(
                        "unsupported modifier ({}) in substitution",
                        crate::text::excerpt(&modifier)
                    ));
                }
            }
            '+' | '-' | '?' | '#' | '%' => {}
            '/' => return self.substitute(&name),
            _ => {
                return Err(format!(
                    "unsupported modifier ({}) in substitution",
                    crate::text::excerpt(&modifier)
                ))
            }
        }
        let raw_escapes = ch == '#' || ch == '%';
        let mut word = self.process_stop_on(Some('}'), raw_escapes).map_err(|e| {
            if self.peek().is_none() {
                "syntax error: missing '}'".to_string()
            } else {
                e
            }
        })?;
        let direct = raw_escapes;
        let value = self.get(&name, direct);
        let empty = value
            .as_deref()
            .is_none_or(|v| null_is_unset && v.is_empty());
        match ch {
            '-' => Ok(if empty {
                word
            } else {
                value.unwrap_or_default()
            }),
            '+' => Ok(if empty { String::new() } else { word }),
            '?' => match value {
                None => Err(format!(
                    "{}: {}",
                    crate::text::excerpt(&name),
                    if word.is_empty() {
                        "is not allowed to be unset".into()
                    } else {
                        crate::text::excerpt(&word)
                    }
                )),
                Some(v) if null_is_unset && v.is_empty() => Err(format!(
                    "{}: {}",
                    crate::text::excerpt(&name),
                    if word.is_empty() {
                        "is not allowed to be empty".into()
                    } else {
                        crate::text::excerpt(&word)
                    }
                )),
                Some(v) => Ok(v),
            },
            _ => {
                // '#' or '%'
                let greedy = word.starts_with(ch);
                if greedy {
                    word.remove(0);
                }
                let pat = compile_glob(&word, self.escape);
                let v: Vec<char> = value.unwrap_or_default().chars().collect();
                Ok(if ch == '%' {
                    trim_suffix(&pat, &v, greedy)
                } else {
                    trim_prefix(&pat, &v, greedy)
                })
            }
        }
    }

    fn substitute(&mut self, name: &str) -> Result<String, String> {
        let all = self.peek() == Some('/');
        if all {
            self.pos += 1;
        }
        let pattern = self.process_stop_on(Some('/'), true).map_err(|e| {
            if self.peek().is_none() {
                "syntax error: missing '/' in ${}".to_string()
            } else {
                e
            }
        })?;
        let replacement = self.process_stop_on(Some('}'), true).map_err(|e| {
            if self.peek().is_none() {
                "syntax error: missing '}'".to_string()
            } else {
                e
            }
        })?;
        let value: Vec<char> = self.get(name, true).unwrap_or_default().chars().collect();
        let pat = compile_glob(&pattern, self.escape);
        Ok(replace(&pat, &value, &replacement, all))
    }
}

/// One token of a shell glob pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Lit(char),
    Any,
    Star,
    Class {
        negate: bool,
        ranges: Vec<(char, char)>,
    },
}

/// Compiles a shell pattern (`*`, `?`, `[...]`, `[!...]`, escape char). An
/// unterminated `[` is a literal.
fn compile_glob(p: &str, escape: char) -> Vec<Tok> {
    let cs: Vec<char> = p.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&c) = cs.get(i) {
        i += 1;
        if c == escape {
            match cs.get(i) {
                Some(&n) => {
                    out.push(Tok::Lit(n));
                    i += 1;
                }
                None => out.push(Tok::Lit(c)),
            }
            continue;
        }
        match c {
            '*' => {
                if out.last() != Some(&Tok::Star) {
                    out.push(Tok::Star)
                }
            }
            '?' => out.push(Tok::Any),
            '[' => match parse_class(&cs, i, escape) {
                Some((tok, next)) => {
                    out.push(tok);
                    i = next;
                }
                None => out.push(Tok::Lit('[')),
            },
            _ => out.push(Tok::Lit(c)),
        }
    }
    out
}

/// Parses a bracket expression whose content starts at `i` (after `[`).
fn parse_class(cs: &[char], mut i: usize, escape: char) -> Option<(Tok, usize)> {
    let mut negate = false;
    if matches!(cs.get(i), Some('!') | Some('^')) {
        negate = true;
        i += 1;
    }
    let mut ranges = Vec::new();
    let mut first = true;
    loop {
        let mut c = *cs.get(i)?;
        i += 1;
        if c == ']' && !first {
            return Some((Tok::Class { negate, ranges }, i));
        }
        first = false;
        if c == escape {
            c = *cs.get(i)?;
            i += 1;
        }
        let mut hi = c;
        if cs.get(i) == Some(&'-') && cs.get(i + 1).is_some_and(|n| *n != ']') {
            let mut h = *cs.get(i + 1)?;
            i += 2;
            if h == escape {
                h = *cs.get(i)?;
                i += 1;
            }
            hi = h;
        }
        ranges.push((c, hi));
    }
}

fn tok_matches(t: &Tok, c: char) -> bool {
    match t {
        Tok::Lit(l) => *l == c,
        Tok::Any => true,
        Tok::Star => true,
        Tok::Class { negate, ranges } => {
            ranges.iter().any(|(lo, hi)| *lo <= c && c <= *hi) != *negate
        }
    }
}

/// Whole-string glob match (iterative, O(n*m)).
fn glob_full(pat: &[Tok], s: &[char]) -> bool {
    let (mut p, mut i) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        match (pat.get(p), s.get(i)) {
            (Some(Tok::Star), _) => {
                star = Some((p, i));
                p += 1;
            }
            (Some(t), Some(&c)) if tok_matches(t, c) => {
                p += 1;
                i += 1;
            }
            _ => match star {
                Some((sp, si)) => {
                    p = sp + 1;
                    i = si + 1;
                    star = Some((sp, si + 1));
                }
                None => return false,
            },
        }
    }
    pat.get(p..)
        .is_some_and(|rest| rest.iter().all(|t| *t == Tok::Star))
}

fn collect(cs: &[char]) -> String {
    cs.iter().collect()
}

fn trim_prefix(pat: &[Tok], v: &[char], greedy: bool) -> String {
    let n = v.len();
    let mut ends: Box<dyn Iterator<Item = usize>> = if greedy {
        Box::new((0..=n).rev())
    } else {
        Box::new(0..=n)
    };
    match ends.find(|&e| v.get(..e).is_some_and(|pre| glob_full(pat, pre))) {
        Some(e) => collect(v.get(e..).unwrap_or_default()),
        None => collect(v),
    }
}

fn trim_suffix(pat: &[Tok], v: &[char], greedy: bool) -> String {
    let n = v.len();
    let mut starts: Box<dyn Iterator<Item = usize>> = if greedy {
        Box::new(0..=n)
    } else {
        Box::new((0..=n).rev())
    };
    match starts.find(|&s| v.get(s..).is_some_and(|suf| glob_full(pat, suf))) {
        Some(s) => collect(v.get(..s).unwrap_or_default()),
        None => collect(v),
    }
}

/// Longest match of `pat` starting at `start`, as its end index.
fn longest_match_at(pat: &[Tok], v: &[char], start: usize) -> Option<usize> {
    (start..=v.len())
        .rev()
        .find(|&e| v.get(start..e).is_some_and(|sub| glob_full(pat, sub)))
}

/// `${V/p/r}` (first match) and `${V//p/r}` (all matches), leftmost-longest.
fn replace(pat: &[Tok], v: &[char], repl: &str, all: bool) -> String {
    let n = v.len();
    let mut out = String::new();
    let mut pos = 0;
    let mut prev_end: Option<usize> = None;
    let mut done = false;
    while pos <= n {
        if !done {
            if let Some(end) = longest_match_at(pat, v, pos) {
                if !(end == pos && prev_end == Some(pos)) {
                    out.push_str(repl);
                    prev_end = Some(end);
                    done = !all;
                    if end > pos {
                        pos = end;
                        continue;
                    }
                }
            }
        }
        if let Some(c) = v.get(pos) {
            out.push(*c);
        }
        pos += 1;
    }
    out
}

/// Splits on whitespace keeping quotes and escapes in the words, like
/// BuildKit's `parseWords` (used for `ENV`, `ARG`, `LABEL`).
pub(super) fn parse_words(rest: &str, escape: char) -> Vec<String> {
    let cs: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut word = String::new();
    let mut blank_ok = false;
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut i = 0;
    while let Some(&ch) = cs.get(i) {
        i += 1;
        if let Some(q) = quote {
            if ch == q {
                quote = None;
            }
            if ch == escape && q != '\'' {
                match cs.get(i) {
                    None => {
                        quote = None;
                        continue;
                    }
                    Some(&n) => {
                        word.push(ch);
                        word.push(n);
                        i += 1;
                        continue;
                    }
                }
            }
            word.push(ch);
            continue;
        }
        if !in_word {
            if ch.is_whitespace() {
                continue;
            }
            in_word = true;
        }
        if ch.is_whitespace() {
            if blank_ok || !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            in_word = false;
            blank_ok = false;
            continue;
        }
        if ch == '\'' || ch == '"' {
            quote = Some(ch);
            blank_ok = true;
        }
        if ch == escape {
            match cs.get(i) {
                None => continue,
                Some(&n) => {
                    word.push(ch);
                    word.push(n);
                    i += 1;
                    continue;
                }
            }
        }
        word.push(ch);
    }
    if in_word && (blank_ok || !word.is_empty()) {
        words.push(word);
    }
    words
}

/// Extracts leading `--flag[=value]` words (quotes removed, `\` escapes),
/// like BuildKit's `extractBuilderFlags`. Returns (flag words, rest).
pub(super) fn extract_flags(line: &str) -> (Vec<String>, &str) {
    let mut words = Vec::new();
    let mut pos = 0;
    loop {
        let Some(rel) = line
            .get(pos..)
            .and_then(|r| r.find(|c: char| !c.is_whitespace()))
        else {
            return (words, "");
        };
        let start = pos + rel;
        let rest = line.get(start..).unwrap_or_default();
        if !rest.starts_with("--") {
            return (words, rest);
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        let mut blank_ok = false;
        let mut it = rest.char_indices().peekable();
        let mut end = rest.len();
        while let Some((bi, ch)) = it.next() {
            match quote {
                None if ch.is_whitespace() => {
                    end = bi;
                    break;
                }
                None if ch == '\'' || ch == '"' => {
                    quote = Some(ch);
                    blank_ok = true;
                }
                Some(q) if ch == q => quote = None,
                _ if ch == '\\' => {
                    if let Some((_, n)) = it.next() {
                        word.push(n);
                    } else {
                        quote = None;
                    }
                }
                _ => word.push(ch),
            }
        }
        pos = start + end;
        if word == "--" {
            return (words, line.get(pos..).unwrap_or_default());
        }
        if blank_ok || !word.is_empty() {
            words.push(word.strip_prefix("--").unwrap_or(&word).to_string());
        }
    }
}

/// Splits a line into words keeping quotes and escapes raw (BuildKit's
/// `ProcessWords` with raw quotes/escapes and no variables); used to find
/// heredoc words.
pub(super) fn split_raw_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut it = line.chars();
    while let Some(ch) = it.next() {
        match quote {
            Some(q) => {
                word.push(ch);
                if ch == q {
                    quote = None;
                } else if ch == '\\' && q == '"' {
                    if let Some(n) = it.next() {
                        word.push(n);
                    }
                }
            }
            None => {
                if ch.is_whitespace() {
                    if !word.is_empty() {
                        words.push(std::mem::take(&mut word));
                    }
                    continue;
                }
                word.push(ch);
                if ch == '\'' || ch == '"' {
                    quote = Some(ch);
                } else if ch == '\\' {
                    if let Some(n) = it.next() {
                        word.push(n);
                    }
                }
            }
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// Removes shell quotes from a heredoc delimiter; returns (name, was_quoted).
/// `None` when a quote is unbalanced.
pub(super) fn unquote(word: &str) -> Option<(String, bool)> {
    let mut out = String::new();
    let mut quoted = false;
    let mut quote: Option<char> = None;
    let mut it = word.chars();
    while let Some(ch) = it.next() {
        match quote {
            Some(q) if ch == q => quote = None,
            Some('"') if ch == '\\' => match it.next() {
                Some(n) if matches!(n, '"' | '$' | '\\') => out.push(n),
                Some(n) => {
                    out.push(ch);
                    out.push(n);
                }
                None => return None,
            },
            Some(_) => out.push(ch),
            None if ch == '\'' || ch == '"' => {
                quote = Some(ch);
                quoted = true;
            }
            None if ch == '\\' => {
                if let Some(n) = it.next() {
                    out.push(n);
                }
            }
            None => out.push(ch),
        }
    }
    if quote.is_some() {
        return None;
    }
    Some((out, quoted))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "A" => Some("a".into()),
            "EMPTY" => Some(String::new()),
            "PATHV" => Some("/usr/local/bin/app.tar.gz".into()),
            "SP" => Some("x y".into()),
            "ÄÖ" => Some("umlaut".into()),
            _ => None,
        }
    }

    #[test]
    fn expansion_table() {
        let cases: &[(&str, &str)] = &[
            ("plain", "plain"),
            ("$A", "a"),
            ("${A}", "a"),
            ("x$A.y", "xa.y"),
            ("$UNSET", ""),
            ("${UNSET}", ""),
            ("$", "$"),
            ("a$", "a$"),
            ("$/x", "$/x"),
            ("${A:-d}", "a"),
            ("${UNSET:-d}", "d"),
            ("${EMPTY:-d}", "d"),
            ("${EMPTY-d}", ""),
            ("${UNSET-d}", "d"),
            ("${A:+alt}", "alt"),
            ("${EMPTY:+alt}", ""),
            ("${EMPTY+alt}", "alt"),
            ("${UNSET+alt}", ""),
            ("${A:?boom}", "a"),
            ("${EMPTY?boom}", ""),
            ("${PATHV#*/}", "usr/local/bin/app.tar.gz"),
            ("${PATHV##*/}", "app.tar.gz"),
            ("${PATHV%.*}", "/usr/local/bin/app.tar"),
            ("${PATHV%%.*}", "/usr/local/bin/app"),
            ("${PATHV#/usr}", "/local/bin/app.tar.gz"),
            ("${PATHV#nomatch}", "/usr/local/bin/app.tar.gz"),
            ("${PATHV%.t?r.gz}", "/usr/local/bin/app"),
            ("${PATHV##*[/.]}", "gz"),
            ("${PATHV/local/opt}", "/usr/opt/bin/app.tar.gz"),
            ("${PATHV//\\//_}", "_usr_local_bin_app.tar.gz"),
            ("${PATHV//[a-c]/X}", "/usr/loXXl/Xin/Xpp.tXr.gz"),
            ("${PATHV/#/x}", "/usr/local/bin/app.tar.gz"),
            ("${A/a/}", ""),
            ("${UNSET:-${A}}", "a"),
            ("${UNSET:-${UNSET2:-deep}}", "deep"),
            ("'$A'", "$A"),
            ("\"$A\"", "a"),
            ("\"${SP}\"", "x y"),
            ("\\$A", "$A"),
            ("\"\\$A\"", "$A"),
            ("\"a\\nb\"", "a\\nb"),
            ("a\\ b", "a b"),
            ("'it''s'", "its"),
            ("\"it's\"", "it's"),
            ("${ÄÖ}", "umlaut"),
            ("$1x", "x"),
            ("dir/*.txt", "dir/*.txt"),
            ("with space", "with space"),
            ("trailing\\", "trailing"),
        ];
        for (input, want) in cases {
            let got = expand_word(input, '\\', &env).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(got.value, *want, "input {input:?}");
        }
    }

    #[test]
    fn backtick_escape() {
        let got = expand_word("C:\\dir`$A", '`', &env).unwrap();
        assert_eq!(got.value, "C:\\dir$A");
        let got = expand_word("a` b", '`', &env).unwrap();
        assert_eq!(got.value, "a b");
    }

    #[test]
    fn expansion_errors() {
        let cases: &[(&str, &str)] = &[
            ("${UNSET:?must set UNSET}", "UNSET: must set UNSET"),
            ("${UNSET?}", "UNSET: is not allowed to be unset"),
            ("${EMPTY:?}", "EMPTY: is not allowed to be empty"),
            ("'abc", "single-quote"),
            ("\"abc", "double-quote"),
            ("${A", "missing '}'"),
            ("${", "missing '}'"),
            ("${}", "bad substitution"),
            ("${:a}", "bad substitution"),
            ("${A:#x}", "unsupported modifier (:#)"),
            ("${A!}", "unsupported modifier (!)"),
            ("${A/x", "missing '/'"),
            ("${A/x/y", "missing '}'"),
            ("${A:-x", "missing '}'"),
        ];
        for (input, want) in cases {
            let e = expand_word(input, '\\', &env).unwrap_err();
            assert!(e.contains(want), "{input:?}: {e}");
        }
        let deep = "${A:-".repeat(200) + &"}".repeat(200);
        assert!(expand_word(&deep, '\\', &env)
            .unwrap_err()
            .contains("nested"));
    }

    #[test]
    fn referenced_and_unset() {
        let e = expand_word("$A/${B}/${C:-x}/${D#y}/$1/${A}", '\\', &env).unwrap();
        assert_eq!(e.referenced, vec!["A", "B", "C", "D"]);
        assert_eq!(e.unset, vec!["B", "D"]);
    }

    #[test]
    fn glob_matching() {
        let cases: &[(&str, &str, bool)] = &[
            ("*", "", true),
            ("*", "abc", true),
            ("a*c", "abbbc", true),
            ("a*c", "abbb", false),
            ("a?c", "abc", true),
            ("[!a]bc", "abc", false),
            ("[^a]bc", "xbc", true),
            ("[]]", "]", true),
            ("[a-", "[a-", true),
            ("\\*", "*", true),
            ("\\*", "a", false),
            ("*.*", "a.b.c", true),
        ];
        for (p, s, want) in cases {
            let s: Vec<char> = s.chars().collect();
            assert_eq!(glob_full(&compile_glob(p, '\\'), &s), *want, "{p} vs {s:?}");
        }
    }

    #[test]
    fn replace_semantics() {
        let v: Vec<char> = "abc".chars().collect();
        assert_eq!(replace(&compile_glob("", '\\'), &v, "X", true), "XaXbXcX");
        assert_eq!(replace(&compile_glob("", '\\'), &v, "X", false), "Xabc");
        assert_eq!(replace(&compile_glob("*", '\\'), &v, "X", true), "X");
        assert_eq!(replace(&compile_glob("b", '\\'), &v, "X", true), "aXc");
    }

    #[test]
    fn word_splitters() {
        assert_eq!(
            parse_words(r#"A="x y" B=2 C='q r'  D=a\ b"#, '\\'),
            vec![r#"A="x y""#, "B=2", "C='q r'", r"D=a\ b"]
        );
        assert_eq!(parse_words("  ", '\\'), Vec::<String>::new());
        assert_eq!(parse_words(r#""""#, '\\'), vec![r#""""#]);
        let (f, rest) = extract_flags("--from=build --chown=\"a b\" --link src dst");
        assert_eq!(f, vec!["from=build", "chown=a b", "link"]);
        assert_eq!(rest, "src dst");
        let (f, rest) = extract_flags("-- --x y");
        assert!(f.is_empty());
        assert_eq!(rest, " --x y");
        let (f, rest) = extract_flags("--a --b");
        assert_eq!(f, vec!["a", "b"]);
        assert_eq!(rest, "");
        assert_eq!(
            split_raw_words(r#"cat <<"E O F" > 'a b' x\ y"#),
            vec!["cat", r#"<<"E O F""#, ">", "'a b'", r"x\ y"]
        );
        assert_eq!(unquote(r#""EOF""#), Some(("EOF".into(), true)));
        assert_eq!(unquote("E'O'F"), Some(("EOF".into(), true)));
        assert_eq!(unquote(r"\EOF"), Some(("EOF".into(), false)));
        assert_eq!(unquote("'EOF"), None);
    }
}
