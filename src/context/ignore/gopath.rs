//! Go's `path.Clean` and `filepath.Match` syntax check, on bytes.
//!
//! Docker normalises every pattern with `filepath.Clean` and rejects a
//! pattern when `filepath.Match(pattern, ".")` reports `ErrBadPattern`; both
//! must be reproduced exactly for the file set to equal Docker's.

/// Go's `path.Clean` (Unix separators) on raw bytes.
///
/// Returns the shortest path equivalent to `path` by purely lexical
/// processing: repeated `/` collapse, `.` elements go, `x/..` pairs go,
/// `..` at the start of a rooted path goes, a trailing `/` goes. An empty
/// result becomes `.`.
pub fn clean(path: &[u8]) -> Vec<u8> {
    if path.is_empty() {
        return b".".to_vec();
    }
    let rooted = path[0] == b'/';
    let mut parts: Vec<&[u8]> = Vec::new();
    // Number of leading `..` elements that cannot be cancelled (unrooted).
    let mut dotdots = 0usize;
    for part in path.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                if parts.len() > dotdots {
                    parts.pop();
                } else if !rooted {
                    parts.push(b"..");
                    dotdots += 1;
                }
            }
            _ => parts.push(part),
        }
    }
    let mut out = Vec::with_capacity(path.len());
    if rooted {
        out.push(b'/');
    }
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        out.extend_from_slice(part);
    }
    if out.is_empty() {
        out.push(b'.');
    }
    out
}

/// Whether `pattern` is syntactically valid for Go's `filepath.Match` on
/// Unix: every `[...]` class is closed, non-empty, with well-formed ranges
/// and no invalid UTF-8 inside, and no `\` ends the pattern or a class.
///
/// Go checks the whole pattern even after a mismatch, so validity does not
/// depend on the name being matched.
pub fn is_valid_match_pattern(pattern: &[u8]) -> bool {
    let mut i = 0;
    while i < pattern.len() {
        match pattern[i] {
            b'[' => match class_end(pattern, i + 1) {
                Some(end) => i = end,
                None => return false,
            },
            b'\\' => {
                if i + 1 >= pattern.len() {
                    return false;
                }
                i += 2;
            }
            _ => i += 1,
        }
    }
    true
}

/// Parses a character class body starting at `i` (just after `[`) with Go's
/// `matchChunk`/`getEsc` rules; returns the index after the closing `]`.
fn class_end(p: &[u8], mut i: usize) -> Option<usize> {
    if p.get(i) == Some(&b'^') {
        i += 1;
    }
    let mut ranges = 0;
    loop {
        if p.get(i) == Some(&b']') && ranges > 0 {
            return Some(i + 1);
        }
        i = class_char(p, i)?;
        if p.get(i) == Some(&b'-') {
            i = class_char(p, i + 1)?;
        }
        ranges += 1;
    }
}

/// Go's `getEsc`: one possibly escaped character of a class; it may not be
/// `-` or `]`, must be valid UTF-8, and must not end the pattern.
fn class_char(p: &[u8], mut i: usize) -> Option<usize> {
    match p.get(i) {
        None | Some(b'-') | Some(b']') => return None,
        Some(b'\\') => {
            i += 1;
            if i >= p.len() {
                return None;
            }
        }
        _ => {}
    }
    let width = utf8_width(&p[i..])?;
    let next = i + width;
    if next >= p.len() {
        return None;
    }
    Some(next)
}

/// Width of the UTF-8 sequence at the start of `s`, `None` when it is
/// invalid (Go's `RuneError` with width 1 is a bad pattern inside a class).
fn utf8_width(s: &[u8]) -> Option<usize> {
    let first = *s.first()?;
    let width = match first {
        0x00..=0x7F => return Some(1),
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => return None,
    };
    let chunk = s.get(..width)?;
    std::str::from_utf8(chunk).ok().map(|_| width)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_matches_go_path_clean() {
        // Vectors from Go's path.Clean tests.
        let cases = [
            ("", "."),
            ("abc", "abc"),
            ("abc/def", "abc/def"),
            ("a/b/c", "a/b/c"),
            (".", "."),
            ("..", ".."),
            ("../..", "../.."),
            ("../../abc", "../../abc"),
            ("/abc", "/abc"),
            ("/", "/"),
            ("abc/", "abc"),
            ("abc/def/", "abc/def"),
            ("a/b/c/", "a/b/c"),
            ("./", "."),
            ("../", ".."),
            ("../../", "../.."),
            ("/abc/", "/abc"),
            ("abc//def//ghi", "abc/def/ghi"),
            ("//abc", "/abc"),
            ("///abc", "/abc"),
            ("//abc//", "/abc"),
            ("abc//", "abc"),
            ("abc/./def", "abc/def"),
            ("/./abc/def", "/abc/def"),
            ("abc/.", "abc"),
            ("abc/def/ghi/../jkl", "abc/def/jkl"),
            ("abc/def/../ghi/../jkl", "abc/jkl"),
            ("abc/def/..", "abc"),
            ("abc/def/../..", "."),
            ("/abc/def/../..", "/"),
            ("abc/def/../../..", ".."),
            ("/abc/def/../../..", "/"),
            ("abc/def/../../../ghi/jkl/../../../mno", "../../mno"),
            ("abc/./../def", "def"),
            ("abc//./../def", "def"),
            ("abc/../../././../def", "../../def"),
        ];
        for (input, want) in cases {
            assert_eq!(
                String::from_utf8(clean(input.as_bytes())).unwrap(),
                want,
                "clean({input:?})"
            );
        }
    }

    #[test]
    fn match_syntax_matches_go() {
        // Vectors from Go's filepath.Match tests (ErrBadPattern cases).
        let valid = [
            "abc",
            "*",
            "*c",
            "a*",
            "a*/b",
            "a[b-c]d",
            "[^a-c]",
            "a\\*b",
            "[\\-]",
            "[x\\-]",
            "[]a]",
            "[-]",
            "[x-]",
            "[a-b-c]",
            "[",
            "[^",
            "[^bc",
            "a[",
            "*x",
            "a\\",
            "[]",
            "[\\]",
            "[\\]a]",
            "[[]",
            "[[:alpha:]]",
            "\\[",
            "[é]",
            "a]b",
            "*[x",
        ];
        let invalid = [
            "[]a]", "[-]", "[x-]", "[a-b-c]", "[", "[^", "[^bc", "a[", "a\\", "[]", "[\\]", "*[x",
        ];
        for p in invalid {
            assert!(
                !is_valid_match_pattern(p.as_bytes()),
                "{p:?} must be invalid"
            );
        }
        for p in valid.iter().filter(|p| !invalid.contains(p)) {
            assert!(is_valid_match_pattern(p.as_bytes()), "{p:?} must be valid");
        }
        assert!(!is_valid_match_pattern(b"[\xff]"));
        assert!(is_valid_match_pattern(b"\xff"));
    }
}
