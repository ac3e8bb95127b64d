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

/// The largest value one word may expand to. Values built from each other
/// (`ARG B=$A$A$A`, `ARG C=$B$B$B`, ...) grow exponentially; real ones are
/// short.
pub const MAX_VALUE_BYTES: usize = 1 << 20;

/// The most bytes all expansions of one Dockerfile may read and produce
/// together (every variable value looked up counts, used or not): bounds
/// the time and memory a hostile Dockerfile can cost.
pub const MAX_TOTAL_BYTES: usize = 64 << 20;

/// What is left of a [`MAX_TOTAL_BYTES`] budget, shared by the expansions
/// of one Dockerfile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget(usize);

impl Default for Budget {
    fn default() -> Self {
        Budget(MAX_TOTAL_BYTES)
    }
}

/// Why an expansion failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpandError {
    /// A syntax error or `${V:?msg}`.
    Syntax(String),
    /// A size or nesting limit was exceeded.
    Limit(String),
}

impl std::fmt::Display for ExpandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExpandError::Syntax(m) | ExpandError::Limit(m) => f.write_str(m),
        }
    }
}

impl From<String> for ExpandError {
    fn from(m: String) -> Self {
        ExpandError::Syntax(m)
    }
}

fn too_large() -> ExpandError {
    ExpandError::Limit(format!(
        "the expanded value would exceed {} MiB: variables built from each other grow exponentially; build long values in a RUN step instead",
        MAX_VALUE_BYTES >> 20
    ))
}

fn budget_spent() -> ExpandError {
    ExpandError::Limit(format!(
        "the variable expansions of this Dockerfile would read or produce more than {} MiB; use fewer or shorter ARG/ENV values",
        MAX_TOTAL_BYTES >> 20
    ))
}

/// Expands `word` like BuildKit's `ProcessWord`: the whole input is one word
/// (whitespace is kept), quotes are removed, `escape` escapes the next
/// character and variables are looked up with `lookup`.
///
/// Errors (as a message) on unbalanced quotes, bad substitutions and
/// `${V:?msg}` / `${V?msg}` with the variable empty/unset.
///
/// The value is capped at [`MAX_VALUE_BYTES`] and the work at
/// [`MAX_TOTAL_BYTES`]; see [`expand_word_within`] to share one budget
/// between the words of a Dockerfile.
#[cfg(test)]
pub(crate) fn expand_word(
    word: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Expansion, String> {
    expand_word_within(word, escape, lookup, &mut Budget::default()).map_err(|e| e.to_string())
}

/// Expands `word` as described above (the tests' `expand_word`), charging
/// what it reads and produces to `budget`.
pub fn expand_word_within(
    word: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
    budget: &mut Budget,
) -> Result<Expansion, ExpandError> {
    if budget.0 < word.len() {
        return Err(budget_spent());
    }
    budget.0 -= word.len();
    let mut lx = Lexer {
        chars: word.chars().collect(),
        pos: 0,
        escape,
        lookup,
        referenced: Vec::new(),
        unset: Vec::new(),
        depth: 0,
        budget: budget.0,
    };
    let r = lx.process_stop_on(None, false);
    budget.0 = lx.budget;
    let value = r?;
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
    /// Bytes left of the caller's [`Budget`].
    budget: usize,
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
    fn get(&mut self, name: &str, direct: bool) -> Result<Option<String>, ExpandError> {
        let v = (self.lookup)(name);
        self.charge(v.as_ref().map_or(0, String::len))?;
        if is_identifier(name) {
            if !self.referenced.iter().any(|n| n == name) {
                self.referenced.push(name.to_string());
            }
            if v.is_none() && direct && !self.unset.iter().any(|n| n == name) {
                self.unset.push(name.to_string());
            }
        }
        Ok(v)
    }

    /// Counts `n` bytes read or produced against the budget.
    fn charge(&mut self, n: usize) -> Result<(), ExpandError> {
        match self.budget.checked_sub(n) {
            Some(left) => {
                self.budget = left;
                Ok(())
            }
            None => {
                self.budget = 0;
                Err(budget_spent())
            }
        }
    }

    /// Appends an expanded piece to a value being built, within the caps.
    fn append(&mut self, out: &mut String, piece: &str) -> Result<(), ExpandError> {
        if out.len() + piece.len() > MAX_VALUE_BYTES {
            return Err(too_large());
        }
        self.charge(piece.len())?;
        out.push_str(piece);
        Ok(())
    }

    fn process_stop_on(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<String, ExpandError> {
        let mut out = String::new();
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.pos += 1;
                return Ok(out);
            }
            match ch {
                '$' => {
                    let v = self.process_dollar()?;
                    self.append(&mut out, &v)?;
                }
                '\'' => {
                    let v = self.single_quote()?;
                    out.push_str(&v);
                }
                '"' => {
                    let v = self.double_quote()?;
                    self.append(&mut out, &v)?;
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
            Some(s) => {
                Err(format!("unexpected end of statement while looking for matching {s}").into())
            }
            None => Ok(out),
        }
    }

    fn single_quote(&mut self) -> Result<String, ExpandError> {
        self.pos += 1; // opening quote
        let mut out = String::new();
        loop {
            match self.next() {
                None => {
                    return Err(ExpandError::Syntax(
                        "unexpected end of statement while looking for matching single-quote; close the ' quote"
                            .to_string(),
                    ))
                }
                Some('\'') => return Ok(out),
                Some(c) => out.push(c),
            }
        }
    }

    fn double_quote(&mut self) -> Result<String, ExpandError> {
        self.pos += 1; // opening quote
        let mut out = String::new();
        loop {
            match self.peek() {
                None => {
                    return Err(ExpandError::Syntax(
                        "unexpected end of statement while looking for matching double-quote; close the \" quote"
                            .to_string(),
                    ))
                }
                Some('"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some('$') => {
                    let v = self.process_dollar()?;
                    self.append(&mut out, &v)?;
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

    fn process_dollar(&mut self) -> Result<String, ExpandError> {
        self.depth += 1;
        let r = if self.depth > MAX_DEPTH {
            Err(ExpandError::Limit(format!(
                "variable substitutions are nested more than {MAX_DEPTH} deep; flatten the `${{...}}` forms"
            )))
        } else {
            self.process_dollar_inner()
        };
        self.depth -= 1;
        r
    }

    fn process_dollar_inner(&mut self) -> Result<String, ExpandError> {
        self.pos += 1; // '$'
        if self.peek() != Some('{') {
            let name = self.process_name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            return Ok(self.get(&name, true)?.unwrap_or_default());
        }
        self.pos += 1; // '{'
        match self.peek() {
            None => return Err(syntax("syntax error: missing '}'")),
            Some('{') | Some('}') | Some(':') => {
                return Err(syntax("syntax error: bad substitution"))
            }
            _ => {}
        }
        let name = self.process_name();
        let Some(mut ch) = self.next() else {
            return Err(syntax("syntax error: missing '}'"));
        };
        let mut modifier = ch.to_string();
        let mut null_is_unset = false;
        match ch {
            '}' => return Ok(self.get(&name, true)?.unwrap_or_default()),
            ':' => {
                null_is_unset = true;
                match self.next() {
                    Some(c) => {
                        ch = c;
                        modifier.push(c);
                    }
                    None => return Err(syntax("syntax error: missing '}'")),
                }
                if !matches!(ch, '+' | '-' | '?') {
                    return Err(syntax(format!(
                        "unsupported modifier ({}) in substitution",
                        crate::text::excerpt(&modifier)
                    )));
                }
            }
            '+' | '-' | '?' | '#' | '%' => {}
            '/' => return self.substitute(&name),
            _ => {
                return Err(syntax(format!(
                    "unsupported modifier ({}) in substitution",
                    crate::text::excerpt(&modifier)
                )))
            }
        }
        let raw_escapes = ch == '#' || ch == '%';
        let mut word = self
            .process_stop_on(Some('}'), raw_escapes)
            .map_err(|e| self.missing_or(e, "syntax error: missing '}'"))?;
        let direct = raw_escapes;
        let value = self.get(&name, direct)?;
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
                None => Err(syntax(format!(
                    "{}: {}",
                    crate::text::excerpt(&name),
                    if word.is_empty() {
                        "is not allowed to be unset".into()
                    } else {
                        crate::text::excerpt(&word)
                    }
                ))),
                Some(v) if null_is_unset && v.is_empty() => Err(syntax(format!(
                    "{}: {}",
                    crate::text::excerpt(&name),
                    if word.is_empty() {
                        "is not allowed to be empty".into()
                    } else {
                        crate::text::excerpt(&word)
                    }
                ))),
                Some(v) => Ok(v),
            },
            _ => {
                // '#' or '%'
                let greedy = word.starts_with(ch);
                if greedy {
                    word.remove(0);
                }
                let mut pat = compile_glob(&word, self.escape);
                let mut v: Vec<char> = value.unwrap_or_default().chars().collect();
                let want = if greedy { Want::Last } else { Want::First };
                if ch == '%' {
                    // The shortest/longest suffix is the shortest/longest
                    // prefix of the reversed value (as BuildKit does it).
                    pat.reverse();
                    v.reverse();
                    let cut = anchored_match(&pat, &v, 0, want, &mut self.budget)?;
                    let keep = v.get(cut.unwrap_or(0)..).unwrap_or_default();
                    Ok(keep.iter().rev().collect())
                } else {
                    let cut = anchored_match(&pat, &v, 0, want, &mut self.budget)?;
                    Ok(v.get(cut.unwrap_or(0)..)
                        .unwrap_or_default()
                        .iter()
                        .collect())
                }
            }
        }
    }

    /// A "missing delimiter" error when the input ended, else `e` itself.
    fn missing_or(&self, e: ExpandError, missing: &str) -> ExpandError {
        match e {
            ExpandError::Syntax(_) if self.peek().is_none() => syntax(missing),
            e => e,
        }
    }

    fn substitute(&mut self, name: &str) -> Result<String, ExpandError> {
        let all = self.peek() == Some('/');
        if all {
            self.pos += 1;
        }
        let pattern = self
            .process_stop_on(Some('/'), true)
            .map_err(|e| self.missing_or(e, "syntax error: missing '/' in ${}"))?;
        let replacement = self
            .process_stop_on(Some('}'), true)
            .map_err(|e| self.missing_or(e, "syntax error: missing '}'"))?;
        let value: Vec<char> = self.get(name, true)?.unwrap_or_default().chars().collect();
        let pat = compile_glob(&pattern, self.escape);
        replace(&pat, &value, &replacement, all, &mut self.budget)
    }
}

fn syntax(m: impl Into<String>) -> ExpandError {
    ExpandError::Syntax(m.into())
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

/// Which accepting end an anchored match reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    First,
    Last,
}

/// The states of a glob's automaton: state `p` has matched the first `p`
/// tokens; `toks.len()` accepts. Runs in time linear in the value for a
/// given pattern (each step touches each state at most once), and every
/// step is charged to the budget so a long pattern on a long value cannot
/// run unbounded.
struct States {
    list: Vec<(usize, usize)>,
    stamp: Vec<u32>,
    generation: u32,
}

impl States {
    fn new(m: usize) -> States {
        States {
            list: Vec::new(),
            stamp: vec![0; m + 1],
            generation: 1,
        }
    }

    fn clear(&mut self) {
        self.list.clear();
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.stamp.iter_mut().for_each(|s| *s = 0);
            self.generation = 1;
        }
    }

    /// Adds state `p` reached by a match that started at `start`, and the
    /// state after a star (which may match nothing). The first add wins:
    /// callers add in order of increasing start.
    fn add(&mut self, toks: &[Tok], mut p: usize, start: usize) {
        while let Some(slot) = self.stamp.get_mut(p) {
            if *slot == self.generation {
                return;
            }
            *slot = self.generation;
            self.list.push((p, start));
            if toks.get(p) != Some(&Tok::Star) {
                return;
            }
            p += 1;
        }
    }

    fn accepts(&self, m: usize) -> Option<usize> {
        self.list.iter().find(|(p, _)| *p == m).map(|(_, s)| *s)
    }
}

/// One step of every state in `cur` over `c` into `next`.
fn step(
    toks: &[Tok],
    cur: &States,
    next: &mut States,
    c: char,
    budget: &mut usize,
) -> Result<(), ExpandError> {
    *budget = budget
        .checked_sub(cur.list.len() + 1)
        .ok_or_else(budget_spent)?;
    next.clear();
    for &(p, start) in &cur.list {
        match toks.get(p) {
            Some(Tok::Star) => next.add(toks, p, start),
            Some(t) if tok_matches(t, c) => next.add(toks, p + 1, start),
            _ => {}
        }
    }
    Ok(())
}

/// The first or last `e` such that `pat` matches `v[start..e]` exactly.
fn anchored_match(
    pat: &[Tok],
    v: &[char],
    start: usize,
    want: Want,
    budget: &mut usize,
) -> Result<Option<usize>, ExpandError> {
    let m = pat.len();
    let (mut cur, mut next) = (States::new(m), States::new(m));
    cur.add(pat, 0, start);
    let mut found = cur.accepts(m).map(|_| start);
    if want == Want::First && found.is_some() {
        return Ok(found);
    }
    for (i, &c) in v.iter().enumerate().skip(start) {
        step(pat, &cur, &mut next, c, budget)?;
        std::mem::swap(&mut cur, &mut next);
        if cur.list.is_empty() {
            break;
        }
        if cur.accepts(m).is_some() {
            found = Some(i + 1);
            if want == Want::First {
                break;
            }
        }
    }
    Ok(found)
}

/// The leftmost `s >= from` where `pat` matches some `v[s..e]`.
fn leftmost_start(
    pat: &[Tok],
    v: &[char],
    from: usize,
    budget: &mut usize,
) -> Result<Option<usize>, ExpandError> {
    let m = pat.len();
    let (mut cur, mut next) = (States::new(m), States::new(m));
    let mut best: Option<usize> = None;
    let mut i = from;
    loop {
        // Threads stay sorted by start: older ones step first, the new one
        // (started here) comes last, so the first to reach a state has the
        // leftmost start.
        if best.is_none() {
            cur.add(pat, 0, i);
        }
        if let Some(s) = cur.accepts(m) {
            best = Some(best.map_or(s, |b| b.min(s)));
        }
        if let Some(b) = best {
            cur.list.retain(|(_, s)| *s < b);
            if cur.list.is_empty() {
                return Ok(best);
            }
        }
        let Some(&c) = v.get(i) else {
            return Ok(best);
        };
        step(pat, &cur, &mut next, c, budget)?;
        std::mem::swap(&mut cur, &mut next);
        i += 1;
    }
}

/// `${V/p/r}` (first match) and `${V//p/r}` (all matches): leftmost, then
/// longest; an empty match right after a match is skipped.
fn replace(
    pat: &[Tok],
    v: &[char],
    repl: &str,
    all: bool,
    budget: &mut usize,
) -> Result<String, ExpandError> {
    let mut out = String::new();
    let push = |out: &mut String, piece: &[char], budget: &mut usize| {
        let bytes: usize = piece.iter().map(|c| c.len_utf8()).sum();
        if out.len() + bytes > MAX_VALUE_BYTES {
            return Err(too_large());
        }
        *budget = budget.checked_sub(bytes).ok_or_else(budget_spent)?;
        out.extend(piece);
        Ok(())
    };
    let repl: Vec<char> = repl.chars().collect();
    let mut pos = 0;
    let mut prev_end: Option<usize> = None;
    while let Some(s) = leftmost_start(pat, v, pos, budget)? {
        let e = anchored_match(pat, v, s, Want::Last, budget)?.unwrap_or(s);
        push(&mut out, v.get(pos..s).unwrap_or_default(), budget)?;
        if e == s && prev_end == Some(s) {
            // An empty match abutting the previous one does not count.
            push(&mut out, v.get(s..s + 1).unwrap_or_default(), budget)?;
            pos = s + 1;
            if s >= v.len() {
                break;
            }
            continue;
        }
        push(&mut out, &repl, budget)?;
        prev_end = Some(e);
        pos = e;
        if !all {
            break;
        }
        if e == s {
            push(&mut out, v.get(s..s + 1).unwrap_or_default(), budget)?;
            pos = s + 1;
            if s >= v.len() {
                break;
            }
        }
    }
    push(&mut out, v.get(pos..).unwrap_or_default(), budget)?;
    Ok(out)
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
/// heredoc words. Each word is a slice of the line, found as the
/// iteration reaches it: a long `RUN` costs no copy of its words.
pub(super) fn split_raw_words(line: &str) -> impl Iterator<Item = &str> {
    let mut rest = line;
    std::iter::from_fn(move || {
        rest = rest.trim_start_matches(char::is_whitespace);
        if rest.is_empty() {
            return None;
        }
        let mut quote: Option<char> = None;
        let mut it = rest.char_indices();
        let mut end = rest.len();
        while let Some((i, ch)) = it.next() {
            match quote {
                Some(q) if ch == q => quote = None,
                Some('"') if ch == '\\' => {
                    it.next();
                }
                Some(_) => {}
                None if ch.is_whitespace() => {
                    end = i;
                    break;
                }
                None if ch == '\'' || ch == '"' => quote = Some(ch),
                None if ch == '\\' => {
                    it.next();
                }
                None => {}
            }
        }
        let (word, after) = rest.split_at(end);
        rest = after;
        Some(word)
    })
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
    use crate::test_support::on_small_stack;

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
    }

    #[test]
    fn nesting_is_bounded() {
        for (open, close) in [
            ("${A:-", "}"),
            ("\"${A:+", "}\""),
            ("${A#", "}"),
            ("${A/", "/x}"),
        ] {
            let deep = open.repeat(100_000) + &close.repeat(100_000);
            let e = on_small_stack(move || expand_word(&deep, '\\', &env).unwrap_err());
            assert!(e.contains("nested more than 64 deep"), "{open}: {e}");
        }
        let ok = "${A:-".repeat(64) + &"}".repeat(64);
        assert_eq!(expand_word(&ok, '\\', &env).unwrap().value, "a");
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
            let full = anchored_match(&compile_glob(p, '\\'), &s, 0, Want::Last, &mut {
                usize::MAX
            })
            .unwrap()
                == Some(s.len());
            assert_eq!(full, *want, "{p} vs {s:?}");
        }
    }

    /// The former quadratic-to-cubic implementations, kept as the oracle
    /// of the automaton-based ones.
    mod naive {
        use super::super::{tok_matches, Tok};

        pub fn full(pat: &[Tok], s: &[char]) -> bool {
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
            pat[p..].iter().all(|t| *t == Tok::Star)
        }

        pub fn trim_prefix(pat: &[Tok], v: &[char], greedy: bool) -> String {
            let n = v.len();
            let ends: Vec<usize> = if greedy {
                (0..=n).rev().collect()
            } else {
                (0..=n).collect()
            };
            match ends.into_iter().find(|&e| full(pat, &v[..e])) {
                Some(e) => v[e..].iter().collect(),
                None => v.iter().collect(),
            }
        }

        pub fn trim_suffix(pat: &[Tok], v: &[char], greedy: bool) -> String {
            let n = v.len();
            let starts: Vec<usize> = if greedy {
                (0..=n).collect()
            } else {
                (0..=n).rev().collect()
            };
            match starts.into_iter().find(|&s| full(pat, &v[s..])) {
                Some(s) => v[..s].iter().collect(),
                None => v.iter().collect(),
            }
        }

        pub fn replace(pat: &[Tok], v: &[char], repl: &str, all: bool) -> String {
            let n = v.len();
            let longest = |start: usize| (start..=n).rev().find(|&e| full(pat, &v[start..e]));
            let mut out = String::new();
            let mut pos = 0;
            let mut prev_end: Option<usize> = None;
            let mut done = false;
            while pos <= n {
                if !done {
                    if let Some(end) = longest(pos) {
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
    }

    #[test]
    fn pattern_operations_match_the_naive_ones() {
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let mut rand = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let pat_atoms = [
            "a", "b", "*", "?", "[ab]", "[!a]", "\\*", "é", "*a", "[z-a]",
        ];
        let val_chars = ['a', 'b', 'c', '*', 'é'];
        for _ in 0..20_000 {
            let p: String = (0..rand(5))
                .map(|_| pat_atoms[rand(pat_atoms.len())])
                .collect();
            let v: Vec<char> = (0..rand(9))
                .map(|_| val_chars[rand(val_chars.len())])
                .collect();
            let pat = compile_glob(&p, '\\');
            let value: String = v.iter().collect();
            let lookup = |n: &str| (n == "V").then(|| value.clone());
            let ex = |w: String| expand_word(&w, '\\', &lookup).unwrap().value;
            assert_eq!(
                ex(format!("${{V#{p}}}")),
                naive::trim_prefix(&pat, &v, false),
                "# {p} {value}"
            );
            assert_eq!(
                ex(format!("${{V##{p}}}")),
                naive::trim_prefix(&pat, &v, true),
                "## {p} {value}"
            );
            assert_eq!(
                ex(format!("${{V%{p}}}")),
                naive::trim_suffix(&pat, &v, false),
                "% {p} {value}"
            );
            assert_eq!(
                ex(format!("${{V%%{p}}}")),
                naive::trim_suffix(&pat, &v, true),
                "%% {p} {value}"
            );
            for all in [false, true] {
                let got = replace(&pat, &v, "R", all, &mut { usize::MAX }).unwrap();
                assert_eq!(
                    got,
                    naive::replace(&pat, &v, "R", all),
                    "/ {p} {value} {all}"
                );
            }
        }
    }

    #[test]
    fn replace_semantics() {
        let v: Vec<char> = "abc".chars().collect();
        let r = |p: &str, all: bool| {
            replace(&compile_glob(p, '\\'), &v, "X", all, &mut { usize::MAX }).unwrap()
        };
        assert_eq!(r("", true), "XaXbXcX");
        assert_eq!(r("", false), "Xabc");
        assert_eq!(r("*", true), "X");
        assert_eq!(r("b", true), "aXc");
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
            split_raw_words(r#" cat <<"E O F" > 'a b' x\ y "a\"b c" 'd\' e"#).collect::<Vec<_>>(),
            vec![
                "cat",
                r#"<<"E O F""#,
                ">",
                "'a b'",
                r"x\ y",
                r#""a\"b c""#,
                r"'d\'",
                "e"
            ]
        );
        assert_eq!(unquote(r#""EOF""#), Some(("EOF".into(), true)));
        assert_eq!(unquote("E'O'F"), Some(("EOF".into(), true)));
        assert_eq!(unquote(r"\EOF"), Some(("EOF".into(), false)));
        assert_eq!(unquote("'EOF"), None);
    }
}
