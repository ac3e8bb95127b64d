//! Quoting untrusted text (file names, file contents) in messages and
//! reports: control characters escaped, so nothing from a repository moves
//! the cursor, colours the terminal or starts a new line (which CI systems
//! would read as a command), and contents quoted only as short excerpts.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::path::Path;

/// How many characters of input an error message quotes at most.
pub const EXCERPT_CHARS: usize = 80;

/// Whether `c` must not reach a terminal or a log as it is: C0 and C1
/// controls (NEL, U+0085, among them), DEL, the line and paragraph
/// separators (U+2028, U+2029: editors, browsers and some log viewers
/// start a new line there), and the bidirectional controls that reorder
/// what is shown ("Trojan Source").
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if (c as u32) < 0x100 => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
}

/// `s` with control characters escaped (`\n`, `\x1b`, `\u{202e}`); other
/// text, backslashes included, unchanged.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if needs_escape(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Raw bytes (a file name) for a message: valid UTF-8 escaped as by
/// [`escape`], each invalid byte as `\xNN`.
pub fn show_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(&escape(chunk.valid()));
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// A path for a message, escaped as by [`show_bytes`].
pub fn show_path(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    show_bytes(path.as_os_str().as_bytes())
}

/// `s` as one word of a POSIX shell command line: as it is when every
/// character is plain (letters, digits, `-_./,:=@+%`), else in single
/// quotes (`'` written as `'\''`). Suggested commands are run as printed.
pub fn shell_word(s: &str) -> Cow<'_, str> {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./,:=@+%".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(format!("'{}'", s.replace('\'', "'\\''")))
}

/// `s` as a YAML flow scalar: as it is when plain, else a double-quoted
/// (JSON) string, which YAML reads the same.
pub fn yaml_scalar(s: &str) -> Cow<'_, str> {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(serde_json::Value::from(s).to_string())
}

/// A short excerpt of input for an error message: at most
/// [`EXCERPT_CHARS`] characters of `s`, escaped, with `…` when cut. A
/// message never quotes a whole line: a "Dockerfile" may be a link to a
/// file of secrets.
pub fn excerpt(s: &str) -> String {
    let mut out = String::new();
    for (n, c) in s.chars().enumerate() {
        if n == EXCERPT_CHARS {
            out.push('…');
            break;
        }
        if needs_escape(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    out
}

/// [`excerpt`] of raw bytes (invalid UTF-8 shown as U+FFFD).
pub fn excerpt_bytes(bytes: &[u8]) -> String {
    let end = bytes.len().min(EXCERPT_CHARS * 4);
    let mut text = excerpt(&String::from_utf8_lossy(&bytes[..end]));
    if end < bytes.len() && !text.ends_with('…') {
        text.push('…');
    }
    text
}

/// Cuts an error message that grew past `max` bytes (a cause repeated, a
/// long list), keeping its start and end, which say what failed and what
/// to do.
pub fn bounded(message: &str, max: usize) -> Cow<'_, str> {
    if message.len() <= max {
        return Cow::Borrowed(message);
    }
    let half = max / 2;
    let mut head = half;
    while !message.is_char_boundary(head) {
        head -= 1;
    }
    let mut tail = message.len() - half;
    while !message.is_char_boundary(tail) {
        tail += 1;
    }
    Cow::Owned(format!(
        "{} … ({} bytes left out) … {}",
        &message[..head],
        tail - head,
        &message[tail..]
    ))
}

#[cfg(test)]
mod tests {

    #[test]
    fn shell_words_and_yaml_scalars_quote_only_when_needed() {
        assert_eq!(shell_word("apps/web"), "apps/web");
        assert_eq!(shell_word("my app"), "'my app'");
        assert_eq!(shell_word("it's"), "'it'\\''s'");
        assert_eq!(shell_word("$(rm -rf ~)"), "'$(rm -rf ~)'");
        assert_eq!(shell_word(""), "''");
        assert_eq!(yaml_scalar("./apps/web"), "./apps/web");
        assert_eq!(yaml_scalar("./a: b"), "\"./a: b\"");
        assert_eq!(yaml_scalar("./x#y\"z"), "\"./x#y\\\"z\"");
    }

    use super::*;

    #[test]
    fn escapes_controls_only() {
        let cases = [
            ("plain/name.txt", "plain/name.txt"),
            ("a\nb", "a\\nb"),
            ("\x1b[31mred", "\\x1b[31mred"),
            ("tab\there\r", "tab\\there\\r"),
            ("del\x7f", "del\\x7f"),
            ("c1\u{9b}", "c1\\x9b"),
            ("rtl\u{202e}txt", "rtl\\u{202e}txt"),
            ("back\\slash é", "back\\slash é"),
            // Every Unicode line break (UAX #14's mandatory breaks).
            ("vt\x0bff\x0c", "vt\\x0bff\\x0c"),
            ("nel\u{85}x", "nel\\x85x"),
            ("ls\u{2028}x", "ls\\u{2028}x"),
            ("ps\u{2029}x", "ps\\u{2029}x"),
            // Bidi marks, embeddings, overrides and isolates.
            (
                "alm\u{61c}lrm\u{200e}rlm\u{200f}",
                "alm\\u{61c}lrm\\u{200e}rlm\\u{200f}",
            ),
            (
                "\u{202a}\u{202b}\u{202c}\u{202d}",
                "\\u{202a}\\u{202b}\\u{202c}\\u{202d}",
            ),
            (
                "\u{2066}\u{2067}\u{2068}\u{2069}",
                "\\u{2066}\\u{2067}\\u{2068}\\u{2069}",
            ),
            // Neighbours that are plain text.
            (
                "\u{2027}\u{202f}\u{2065}\u{2070}",
                "\u{2027}\u{202f}\u{2065}\u{2070}",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(escape(input), want, "{input:?}");
            assert_eq!(excerpt(input), want, "{input:?}");
            assert_eq!(show_bytes(input.as_bytes()), want, "{input:?}");
        }
        assert_eq!(show_bytes(b"caf\xe9\n"), "caf\\xe9\\n");
    }

    #[test]
    fn excerpts_are_short_and_escaped() {
        let long = "SECRET=x".repeat(1000);
        let e = excerpt(&long);
        assert_eq!(e.chars().count(), EXCERPT_CHARS + 1, "{e}");
        assert!(e.ends_with('…'));
        assert_eq!(excerpt("a\0b\x1b"), "a\\x00b\\x1b");
        assert_eq!(excerpt("short"), "short");
        let e = excerpt_bytes(&[b'x'; 10_000]);
        assert_eq!(e.chars().count(), EXCERPT_CHARS + 1);
    }

    #[test]
    fn bounded_messages_keep_both_ends() {
        let m = format!("start {} end", "é".repeat(10_000));
        let b = bounded(&m, 200);
        assert!(b.len() < 260, "{}", b.len());
        assert!(b.starts_with("start ") && b.ends_with(" end"), "{b}");
        assert_eq!(bounded("short", 200), "short");
    }
}
