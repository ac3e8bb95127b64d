//! Go's `path.Clean` and `filepath.Match` syntax check, on bytes.
//!
//! Docker normalises every pattern with `filepath.Clean` and rejects a
//! pattern when `filepath.Match(pattern, ".")` reports `ErrBadPattern`,
//! which it does only for the part of the pattern read before the match
//! fails; both must be reproduced exactly for the file set to equal
//! Docker's.

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

/// Whether Docker accepts `pattern`: Go's `filepath.Match(pattern, ".")`
/// on Unix returns no `ErrBadPattern` (the only check
/// `patternmatcher.New` makes).
///
/// `filepath.Match` reads the pattern chunk by chunk (a chunk is the text
/// between unbracketed `*`s) and returns at the first chunk that cannot
/// match `.`: a malformed class or trailing `\` after that point is never
/// looked at, so `d*/x\` passes (unlike `path.Match`, which checks the
/// rest of the pattern before returning false). Within a chunk every byte
/// is parsed even after a mismatch. Docker 20.10 (Go 1.19) and 28 (Go
/// 1.24) agree. A pattern accepted here can still fail later, when its
/// regex does not compile (see [`super::pattern`]).
pub fn is_valid_match_pattern(pattern: &[u8]) -> bool {
    match_dot(pattern).is_ok()
}

/// Go's `filepath.Match(pattern, ".")`: `Err` is `ErrBadPattern`.
fn match_dot(mut pattern: &[u8]) -> Result<bool, BadPattern> {
    let mut name: &[u8] = b".";
    'chunks: while !pattern.is_empty() {
        let (star, chunk, rest) = scan_chunk(pattern);
        pattern = rest;
        if star && chunk.is_empty() {
            return Ok(!name.contains(&b'/'));
        }
        if let Some(t) = match_chunk(chunk, name)? {
            if t.is_empty() || !pattern.is_empty() {
                name = t;
                continue;
            }
        }
        if star {
            let mut i = 0;
            while i < name.len() && name[i] != b'/' {
                if let Some(t) = match_chunk(chunk, &name[i + 1..])? {
                    if !pattern.is_empty() || t.is_empty() {
                        name = t;
                        continue 'chunks;
                    }
                }
                i += 1;
            }
        }
        return Ok(false);
    }
    Ok(name.is_empty())
}

/// Go's `ErrBadPattern`.
struct BadPattern;

/// Go's `scanChunk`: leading stars, then the text up to the next star
/// outside a class; `\` skips the next byte.
fn scan_chunk(pattern: &[u8]) -> (bool, &[u8], &[u8]) {
    let start = pattern.iter().take_while(|&&b| b == b'*').count();
    let p = &pattern[start..];
    let mut in_range = false;
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            b'\\' if i + 1 < p.len() => i += 1,
            b'[' => in_range = true,
            b']' => in_range = false,
            b'*' if !in_range => break,
            _ => {}
        }
        i += 1;
    }
    (start > 0, &p[..i], &p[i..])
}

/// Go's `matchChunk`: the rest of `s` when `chunk` matches its start.
/// After a mismatch the chunk is still parsed to the end.
fn match_chunk<'a>(mut chunk: &[u8], mut s: &'a [u8]) -> Result<Option<&'a [u8]>, BadPattern> {
    let mut failed = false;
    while let Some(&c) = chunk.first() {
        if !failed && s.is_empty() {
            failed = true;
        }
        match c {
            b'[' => {
                let mut r = 0u32;
                if !failed {
                    let (rune, n) = decode_rune(s);
                    r = rune;
                    s = &s[n..];
                }
                chunk = &chunk[1..];
                let negated = chunk.first() == Some(&b'^');
                if negated {
                    chunk = &chunk[1..];
                }
                let mut matched = false;
                let mut ranges = 0;
                loop {
                    if chunk.first() == Some(&b']') && ranges > 0 {
                        chunk = &chunk[1..];
                        break;
                    }
                    let (lo, rest) = get_esc(chunk)?;
                    chunk = rest;
                    let mut hi = lo;
                    if chunk.first() == Some(&b'-') {
                        let (h, rest) = get_esc(&chunk[1..])?;
                        hi = h;
                        chunk = rest;
                    }
                    matched |= lo <= r && r <= hi;
                    ranges += 1;
                }
                if matched == negated {
                    failed = true;
                }
            }
            b'?' => {
                if !failed {
                    if s[0] == b'/' {
                        failed = true;
                    }
                    s = &s[decode_rune(s).1..];
                }
                chunk = &chunk[1..];
            }
            _ => {
                if c == b'\\' {
                    chunk = &chunk[1..];
                    if chunk.is_empty() {
                        return Err(BadPattern);
                    }
                }
                if !failed {
                    if chunk[0] != s[0] {
                        failed = true;
                    }
                    s = &s[1..];
                }
                chunk = &chunk[1..];
            }
        }
    }
    Ok((!failed).then_some(s))
}

/// Go's `getEsc`: one possibly escaped character of a class; it may not be
/// `-` or `]`, must be valid UTF-8, and must not end the pattern.
fn get_esc(mut chunk: &[u8]) -> Result<(u32, &[u8]), BadPattern> {
    match chunk.first() {
        None | Some(b'-') | Some(b']') => return Err(BadPattern),
        Some(b'\\') => {
            chunk = &chunk[1..];
            if chunk.is_empty() {
                return Err(BadPattern);
            }
        }
        _ => {}
    }
    let width = utf8_width(chunk).ok_or(BadPattern)?;
    let (rune, _) = decode_rune(chunk);
    let rest = &chunk[width..];
    if rest.is_empty() {
        return Err(BadPattern);
    }
    Ok((rune, rest))
}

/// Go's `utf8.DecodeRune` on a non-empty slice: an invalid sequence is
/// U+FFFD with width 1.
fn decode_rune(s: &[u8]) -> (u32, usize) {
    match utf8_width(s) {
        Some(w) => {
            let c = std::str::from_utf8(&s[..w])
                .ok()
                .and_then(|t| t.chars().next())
                .map_or(0xFFFD, u32::from);
            (c, w)
        }
        None => (0xFFFD, 1),
    }
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

    #[test]
    fn only_the_part_read_before_a_mismatch_is_checked() {
        // Checked against docker 28.2 (Go 1.24, classic) and 20.10 (Go
        // 1.19, BuildKit): a chunk after the first one that cannot match
        // `.` is never parsed. Those with an invalid regex (`d*/x[`) are
        // accepted here and fail when first matched, as in Docker.
        for p in [
            "d*/x\\",
            "d*/[]a]",
            "d*/[-]",
            "d*/[x-]",
            "d*/[a-b-c]",
            "x*[]a]",
            "d*/x[",
            "a*/[",
        ] {
            assert!(is_valid_match_pattern(p.as_bytes()), "{p:?} must be valid");
        }
        // The first chunk is parsed whole; a chunk that matches `.` lets
        // the next one be read.
        for p in [
            "*x/[]a]", "*/x\\", "?*/[", ".*/[", "x/[", "d\\", "[", "*[x", "[.]*/[", "**/x\\",
        ] {
            assert!(
                !is_valid_match_pattern(p.as_bytes()),
                "{p:?} must be invalid"
            );
        }
    }
}
