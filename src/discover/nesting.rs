//! A lexical bound on how deeply swc's parser (and the walk and drop of
//! its tree) will recurse on a TypeScript file, computed before parsing.
//!
//! swc's recursive-descent parser has no depth limit: `((((…` or `!!!!…`
//! a few thousand deep overflows an 8 MiB stack (one level of nested
//! object literal costs about 34 KiB of stack in a debug build). So a file
//! is parsed only when this estimate is under [`MAX_NESTING`], and then on
//! a thread whose stack ([`PARSE_STACK`]) holds many times that estimate's
//! worst case. The estimate is the sum, over the brackets open at a point,
//! of one per bracket plus every token since the last `;` or `,` at that
//! bracket level (an expression of n tokens nests at most n deep), plus
//! `else`/`do`, which keep their statement open past a `;`. A line break
//! ends the count where JavaScript would insert a semicolon. Strings,
//! comments, template text and regular expressions are skipped; a `/` is
//! a regular expression where an operand is expected, as in the language.

/// The largest nesting estimate parsed.
pub(crate) const MAX_NESTING: usize = 1000;

/// The stack of the parsing thread: only touched pages cost memory, and
/// [`MAX_NESTING`] levels of the costliest construct need about 20 MiB.
pub(crate) const PARSE_STACK: usize = 256 << 20;

/// Where the estimate first passed [`MAX_NESTING`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooDeep {
    pub line: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Prev {
    /// Start of input, after `;`, `{`, a block's `}`, an operator or a
    /// keyword: an operand may follow (`/` starts a regular expression).
    Operand,
    /// After an identifier, literal, `)`, `]`, an object's `}` or a postfix
    /// `++`/`--`: an operator may follow (`/` divides).
    Operator,
    /// After the `)` of `if (…)`, `while (…)`, `for (…)`, `with (…)`: a
    /// statement follows, and a line break does not end it.
    Head,
}

struct Level {
    open: u8,
    /// `{` of a block (not an object literal).
    block: bool,
    /// `(` right after `if`, `while`, `for`, `with`.
    head: bool,
    run: usize,
    sticky: usize,
}

const KEYWORDS_BEFORE_OPERAND: &[&[u8]] = &[
    b"return",
    b"typeof",
    b"instanceof",
    b"in",
    b"of",
    b"new",
    b"delete",
    b"void",
    b"throw",
    b"case",
    b"do",
    b"else",
    b"yield",
    b"await",
    b"extends",
    b"keyof",
    b"as",
    b"satisfies",
    b"export",
    b"default",
    b"import",
    b"const",
    b"let",
    b"var",
];

/// Words that continue an expression or statement on the next line.
const CONTINUING_WORDS: &[&[u8]] = &[
    b"in",
    b"instanceof",
    b"as",
    b"satisfies",
    b"extends",
    b"else",
    b"catch",
    b"finally",
    b"while",
    b"of",
];

struct Scan {
    levels: Vec<Level>,
    total: usize,
    line: usize,
    prev: Prev,
    /// A line break since the previous token.
    broke: bool,
    /// The previous token was `if`/`while`/`for`/`with`.
    head_word: bool,
    /// A `{` here opens a block rather than an object literal.
    block_next: bool,
    /// A statement just ended: unless `else` or `while` follows, the
    /// `if`/`do` statements kept open at this level are done.
    stmt_end: bool,
}

impl Scan {
    fn level(&mut self) -> &mut Level {
        if self.levels.is_empty() {
            self.levels.push(Level {
                open: 0,
                block: true,
                head: false,
                run: 0,
                sticky: 0,
            });
        }
        let i = self.levels.len() - 1;
        &mut self.levels[i]
    }

    fn check(&self) -> Result<(), TooDeep> {
        if self.total > MAX_NESTING {
            return Err(TooDeep { line: self.line });
        }
        Ok(())
    }

    /// A token begins: ends the count where a line break ends a statement.
    fn token(&mut self, continues: bool) -> Result<(), TooDeep> {
        self.token_keeping(continues, false)
    }

    /// A token; `keep` for `else`/`while`, which continue an `if`/`do`.
    fn token_keeping(&mut self, continues: bool, keep: bool) -> Result<(), TooDeep> {
        if self.broke && self.prev == Prev::Operator && !continues {
            let l = self.level();
            let run = std::mem::take(&mut l.run);
            self.total -= run;
            self.stmt_end = true;
        }
        if std::mem::take(&mut self.stmt_end) && !keep {
            let l = self.level();
            let sticky = std::mem::take(&mut l.sticky);
            self.total -= sticky;
        }
        self.broke = false;
        self.level().run += 1;
        self.total += 1;
        self.check()
    }

    fn separator(&mut self, c: u8) {
        self.block_next = c == b';';
        self.stmt_end = c == b';';
        let l = self.level();
        let run = std::mem::take(&mut l.run);
        self.total -= run;
        self.broke = false;
        self.prev = Prev::Operand;
    }

    fn open(&mut self, c: u8) -> Result<(), TooDeep> {
        let continues = c != b'{';
        self.token(continues)?;
        let block = c == b'{' && self.block_next;
        let head = c == b'(' && self.head_word;
        self.levels.push(Level {
            open: c,
            block,
            head,
            run: 0,
            sticky: 0,
        });
        self.total += 1;
        self.prev = Prev::Operand;
        self.check()
    }

    /// Closes the innermost bracket `c` closes (a mismatched one is
    /// closed with it, as a parser's error recovery would).
    fn close(&mut self, c: u8) -> Option<Level> {
        let want = match c {
            b')' => b'(',
            b']' => b'[',
            _ => b'{',
        };
        let pos = self
            .levels
            .iter()
            .rposition(|l| l.open == want || (want == b'{' && l.open == b'$'))?;
        let mut last = None;
        while self.levels.len() > pos {
            if let Some(l) = self.levels.pop() {
                self.total -= 1 + l.run + l.sticky;
                last = Some(l);
            }
        }
        let l = last?;
        self.prev = match l.open {
            b'(' if l.head => Prev::Head,
            b'{' if l.block => {
                self.stmt_end = true;
                Prev::Operand
            }
            _ => Prev::Operator,
        };
        self.broke = false;
        self.block_next = true;
        Some(l)
    }
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80 || c == b'\\'
}

/// The nesting estimate of `text`, or where it passes [`MAX_NESTING`].
pub(crate) fn check(text: &str) -> Result<(), TooDeep> {
    let b = text.as_bytes();
    let mut s = Scan {
        levels: Vec::new(),
        total: 1,
        line: 1,
        prev: Prev::Operand,
        broke: false,
        head_word: false,
        block_next: true,
        stmt_end: false,
    };
    s.level();
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b'\n' => {
                s.line += 1;
                s.broke = true;
                i += 1;
            }
            b' ' | b'\t' | b'\r' | 0x0b | 0x0c => i += 1,
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while b.get(i).is_some_and(|&c| c != b'\n') {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while let Some(&c) = b.get(i) {
                    if c == b'\n' {
                        s.line += 1;
                        s.broke = true;
                    }
                    if c == b'*' && b.get(i + 1) == Some(&b'/') {
                        i += 2;
                        break;
                    }
                    i += 1;
                }
            }
            b'/' if s.prev != Prev::Operator && regex_end(b, i).is_some() => {
                // A regular expression (it ends on its line).
                s.token(false)?;
                i = regex_end(b, i).unwrap_or(i + 1);
                while b.get(i).is_some_and(|&c| is_word(c)) {
                    i += 1;
                }
                s.prev = Prev::Operator;
                s.head_word = false;
                s.block_next = false;
            }
            b'\'' | b'"' => {
                s.token(false)?;
                i += 1;
                while let Some(&q) = b.get(i) {
                    i += 1;
                    match q {
                        b'\\' => {
                            if b.get(i) == Some(&b'\n') {
                                s.line += 1;
                            }
                            i += 1;
                        }
                        b'\n' => {
                            s.line += 1;
                            break;
                        }
                        q if q == c => break,
                        _ => {}
                    }
                }
                s.prev = Prev::Operator;
                s.head_word = false;
                s.block_next = false;
            }
            b'`' => {
                s.token(true)?;
                s.head_word = false;
                s.block_next = false;
                i = template(b, i + 1, &mut s)?;
            }
            b'(' | b'[' | b'{' => {
                s.open(c)?;
                s.head_word = false;
                s.block_next = c == b'{';
                i += 1;
            }
            b')' | b']' | b'}' => {
                let closed = s.close(c);
                i += 1;
                s.head_word = false;
                if closed.is_some_and(|l| l.open == b'$') {
                    // Back in the text of a template literal.
                    i = template(b, i, &mut s)?;
                }
            }
            b';' | b',' => {
                s.separator(c);
                s.head_word = false;
                i += 1;
            }
            c if is_word(c) => {
                let start = i;
                let number = c.is_ascii_digit();
                while b
                    .get(i)
                    .is_some_and(|&c| is_word(c) || (number && c == b'.'))
                {
                    i += 1;
                }
                let word = b.get(start..i).unwrap_or_default();
                let continues = CONTINUING_WORDS.contains(&word);
                if matches!(word, b"else" | b"do") {
                    // Their statement stays open past a `;`.
                    s.token_keeping(true, true)?;
                    let l = s.level();
                    l.run -= 1;
                    l.sticky += 1;
                } else {
                    s.token_keeping(continues, word == b"while")?;
                }
                s.head_word = matches!(word, b"if" | b"while" | b"for" | b"with");
                s.prev = if c.is_ascii_digit() || !KEYWORDS_BEFORE_OPERAND.contains(&word) {
                    Prev::Operator
                } else {
                    Prev::Operand
                };
                // `x = {` is an object, `class A {`/`) {`/`=> {` a block;
                // words before `{` other than these keywords start blocks.
                s.block_next = !matches!(
                    word,
                    b"return"
                        | b"typeof"
                        | b"in"
                        | b"of"
                        | b"case"
                        | b"yield"
                        | b"await"
                        | b"throw"
                        | b"new"
                        | b"delete"
                        | b"void"
                        | b"default"
                        | b"as"
                        | b"satisfies"
                );
            }
            _ => {
                // Punctuation, one character at a time.
                let postfix = (c == b'+' || c == b'-')
                    && b.get(i + 1) == Some(&c)
                    && s.prev == Prev::Operator
                    && !s.broke;
                let continues = !matches!(c, b'!' | b'~' | b'@' | b'#');
                s.token(continues)?;
                s.head_word = false;
                if postfix {
                    s.token(true)?;
                    i += 2;
                    s.prev = Prev::Operator;
                } else {
                    i += 1;
                    s.prev = Prev::Operand;
                }
                // `=> {` and `: {` after a label are blocks; after other
                // operators `{` is an object.
                s.block_next = c == b'>' && b.get(i.wrapping_sub(2)) == Some(&b'=');
            }
        }
    }
    Ok(())
}

/// The position after the regular expression starting at `i` (its `/`),
/// if it ends on its line.
fn regex_end(b: &[u8], mut i: usize) -> Option<usize> {
    i += 1;
    let mut class = false;
    while let Some(&c) = b.get(i) {
        match c {
            b'\\' => i += 1,
            b'[' => class = true,
            b']' => class = false,
            b'/' if !class => return Some(i + 1),
            b'\n' | b'\r' => return None,
            _ => {}
        }
        i += 1;
    }
    None
}

/// Skips template text from `i` to the closing backtick, or opens the
/// `${` level and returns the position after it.
fn template(b: &[u8], mut i: usize, s: &mut Scan) -> Result<usize, TooDeep> {
    while let Some(&c) = b.get(i) {
        match c {
            b'\\' => i += 2,
            b'\n' => {
                s.line += 1;
                i += 1;
            }
            b'`' => {
                s.prev = Prev::Operator;
                return Ok(i + 1);
            }
            b'$' if b.get(i + 1) == Some(&b'{') => {
                s.token(true)?;
                s.levels.push(Level {
                    open: b'$',
                    block: false,
                    head: false,
                    run: 0,
                    sticky: 0,
                });
                s.total += 1;
                s.prev = Prev::Operand;
                s.check()?;
                return Ok(i + 2);
            }
            _ => i += 1,
        }
    }
    Ok(i)
}
