//! Reading an ignore file the way Docker does (moby/patternmatcher's
//! `ignorefile.ReadAll`), keeping the line number of every pattern so that
//! `explain` and the analyzer can point at it.

use std::path::{Path, PathBuf};

use super::gopath::clean;

/// One pattern line of an ignore file, after Docker's normalisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoreLine {
    /// 1-based line number in the file.
    pub line: usize,
    /// The line as written (without the line ending), for messages.
    pub raw: Vec<u8>,
    /// The pattern as Docker hands it to the matcher, `!` included for
    /// exceptions (`ReadAll`'s output).
    pub pattern: Vec<u8>,
}

/// Docker's `bufio.Scanner` refuses lines longer than this (64 KiB).
pub(crate) const MAX_LINE: usize = 64 * 1024;

/// Errors while reading an ignore file.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{path}:{line}: line is longer than 64 KiB; Docker refuses such ignore files (bufio.Scanner: token too long)")]
    /// A line is longer than Go's scanner takes.
    LineTooLong {
        /// The ignore file.
        path: PathBuf,
        /// The line (1-based).
        line: usize,
    },
}

/// Splits `bytes` into Docker's pattern list.
///
/// Rules (from `ignorefile.ReadAll`): lines split on `\n` with one trailing
/// `\r` dropped; a UTF-8 BOM is stripped from line 1 only; a line whose
/// *first byte* is `#` is a comment (so `  # x` is a pattern, and `*.go # x`
/// is the literal pattern `*.go # x`); then `TrimSpace`; blank lines skipped;
/// a leading `!` marks an exception and is trimmed again; the rest is
/// `filepath.Clean`ed and loses one leading `/`.
pub fn read_patterns(path: &Path, bytes: &[u8]) -> Result<Vec<IgnoreLine>, ReadError> {
    let mut out = Vec::new();
    let mut rest = bytes;
    let mut line_no = 0usize;
    while !rest.is_empty() {
        let (mut line, next) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &[][..]),
        };
        rest = next;
        if line.len() > MAX_LINE {
            return Err(ReadError::LineTooLong {
                path: path.to_path_buf(),
                line: line_no + 1,
            });
        }
        if let Some(stripped) = line.strip_suffix(b"\r") {
            line = stripped;
        }
        if line_no == 0 {
            if let Some(stripped) = line.strip_prefix(b"\xEF\xBB\xBF") {
                line = stripped;
            }
        }
        line_no += 1;
        if line.first() == Some(&b'#') {
            continue;
        }
        let mut pattern = go_trim_space(line);
        if pattern.is_empty() {
            continue;
        }
        let invert = pattern[0] == b'!';
        if invert {
            pattern = go_trim_space(&pattern[1..]);
        }
        let mut normalized = Vec::with_capacity(pattern.len() + 1);
        if invert {
            normalized.push(b'!');
        }
        if !pattern.is_empty() {
            let cleaned = clean(pattern);
            if cleaned.len() > 1 && cleaned[0] == b'/' {
                normalized.extend_from_slice(&cleaned[1..]);
            } else {
                normalized.extend_from_slice(&cleaned);
            }
        }
        out.push(IgnoreLine {
            line: line_no,
            raw: line.to_vec(),
            pattern: normalized,
        });
    }
    Ok(out)
}

/// Go's `strings.TrimSpace` on bytes: trims ASCII whitespace and the Unicode
/// `White_Space` characters encoded in UTF-8 at either end.
pub(crate) fn go_trim_space(mut s: &[u8]) -> &[u8] {
    loop {
        let n = leading_space_len(s);
        if n == 0 {
            break;
        }
        s = &s[n..];
    }
    loop {
        let n = trailing_space_len(s);
        if n == 0 {
            break;
        }
        s = &s[..s.len() - n];
    }
    s
}

fn is_go_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{0B}' | '\u{0C}' | '\r' | ' ' | '\u{85}' | '\u{A0}'
    ) || (c as u32 > 0xFF && c.is_whitespace())
}

fn leading_space_len(s: &[u8]) -> usize {
    let Some(&b) = s.first() else { return 0 };
    if b < 0x80 {
        return usize::from(is_go_space(b as char));
    }
    // A multi-byte character: decode at most 4 bytes.
    let end = s.len().min(4);
    for len in 2..=end {
        if let Ok(text) = std::str::from_utf8(&s[..len]) {
            if let Some(c) = text.chars().next() {
                return if is_go_space(c) { len } else { 0 };
            }
        }
    }
    0
}

fn trailing_space_len(s: &[u8]) -> usize {
    let Some(&b) = s.last() else { return 0 };
    if b < 0x80 {
        return usize::from(is_go_space(b as char));
    }
    let start_min = s.len().saturating_sub(4);
    for start in (start_min..s.len().saturating_sub(1)).rev() {
        if let Ok(text) = std::str::from_utf8(&s[start..]) {
            if let Some(c) = text.chars().next() {
                return if is_go_space(c) && text.chars().count() == 1 {
                    s.len() - start
                } else {
                    0
                };
            }
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patterns(input: &str) -> Vec<String> {
        read_patterns(Path::new(".dockerignore"), input.as_bytes())
            .unwrap()
            .into_iter()
            .map(|l| String::from_utf8(l.pattern).unwrap())
            .collect()
    }

    #[test]
    fn reads_like_ignorefile_readall() {
        // Vectors from the behaviour of moby/patternmatcher's ignorefile.
        let cases: &[(&str, &[&str])] = &[
            ("test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n! /inverted/abs/path\n!\n! \n", &[
                "test1", "test2", "a/file/here", "lastfile", "!inverted/abs/path", "!", "!",
            ]),
            ("\u{FEFF}node_modules\n", &["node_modules"]),
            ("a\n\u{FEFF}b\n", &["a", "\u{FEFF}b"]),
            ("a\r\nb\r\n", &["a", "b"]),
            ("  # not a comment\n", &["# not a comment"]),
            ("*.go # x\n", &["*.go # x"]),
            ("dir/\n./a/../b\n/\n//x\n", &["dir", "b", "/", "x"]),
            ("!/a\n!  b/./c\n", &["!a", "!b/c"]),
            ("last-no-newline", &["last-no-newline"]),
            ("\t\n   \n", &[]),
            ("a\\\n", &["a\\"]),
            ("../x\n..\n", &["../x", ".."]),
        ];
        for (input, want) in cases {
            assert_eq!(patterns(input), *want, "input {input:?}");
        }
    }

    #[test]
    fn keeps_line_numbers() {
        let lines = read_patterns(Path::new("x"), b"# c\n\na\n  \n!b\n").unwrap();
        let got: Vec<_> = lines.iter().map(|l| l.line).collect();
        assert_eq!(got, [3, 5]);
    }

    #[test]
    fn too_long_line_is_an_error() {
        let mut data = vec![b'a'; MAX_LINE + 1];
        data.push(b'\n');
        let err = read_patterns(Path::new("ig"), &data).unwrap_err();
        assert!(err.to_string().contains("ig:1"), "{err}");
    }

    #[test]
    fn trim_space_matches_go() {
        assert_eq!(go_trim_space(b"  a b \t"), b"a b");
        assert_eq!(go_trim_space("\u{A0}x\u{3000}".as_bytes()), b"x");
        assert_eq!(go_trim_space(b"\xff "), b"\xff");
        assert_eq!(go_trim_space("é ".as_bytes()), "é".as_bytes());
    }
}
