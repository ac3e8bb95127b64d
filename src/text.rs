//! Quoting untrusted text (file names, file contents) in messages and
//! reports: control characters escaped, so nothing from a repository moves
//! the cursor, colours the terminal or starts a new line; CI workflow
//! commands (`::error::`, `##[error]`) neutralised; contents quoted only as
//! short excerpts, and a line that looks like a credential not at all (an
//! "ignore file" may be a link to `.git/config`, where a CI checkout leaves
//! its token). JSON written for tools goes through [`json`], which also
//! escapes what serde_json writes raw (bidi controls, U+2028/U+2029, NEL).

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

/// Whether `s`, printed as a line or at the start of one, could be read
/// as a workflow command by a CI runner: GitHub's runner trims the line
/// (Unicode whitespace) and matches `::` at its start, and matches the
/// legacy `##[` anywhere in it.
fn looks_like_command(s: &str) -> bool {
    s.trim_start().starts_with("::") || s.contains("##[")
}

/// Whether raw bytes (a file name) printed as a line could end the line
/// early or pass for a CI workflow command (see [`escape`]): such a name
/// is printed escaped even where names are otherwise printed raw.
pub fn unsafe_as_line(bytes: &[u8]) -> bool {
    bytes.contains(&b'\n')
        || bytes.contains(&b'\r')
        || looks_like_command(&String::from_utf8_lossy(bytes))
}

/// Appends `s` escaped to `out`: control characters as [`escape`] says, a
/// leading `::` (after whitespace) as `\x3a:` and each `##[` as `#\x23[`,
/// at most `limit` characters of `s` (then `…`).
fn push_text(out: &mut String, s: &str, limit: Option<usize>) {
    let lead = s.len() - s.trim_start().len();
    let command_at = s[lead..].starts_with("::").then_some(lead);
    let mut prev_hashes = 0usize;
    for (n, (i, c)) in s.char_indices().enumerate() {
        if limit == Some(n) {
            out.push('…');
            return;
        }
        if Some(i) == command_at {
            out.push_str("\\x3a");
        } else if c == '#' && prev_hashes >= 1 && s[i + 1..].starts_with('[') {
            // The second `#` of `##[`: a `#` before it and `[` after.
            out.push_str("\\x23");
        } else if needs_escape(c) {
            push_escaped(out, c);
        } else {
            out.push(c);
        }
        prev_hashes = if c == '#' { prev_hashes + 1 } else { 0 };
    }
}

/// `s` with control characters escaped (`\n`, `\x1b`, `\u{202e}`) and CI
/// workflow commands neutralised (`::error::x` at the start, after any
/// whitespace, as `\x3a:error::x`; `##[error]` anywhere as `#\x23[error]`);
/// other text, backslashes included, unchanged.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) && !looks_like_command(s) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    push_text(&mut out, s, None);
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

/// What a quoted line that looks like a credential becomes.
pub const HIDDEN: &str = "[not shown: it looks like a credential]";

/// Whether a line of input looks like it carries a credential: an
/// `Authorization` header or git's `extraheader`, a token, password,
/// secret or key given a value (`token = …`, `PASSWORD: …`), a URL with
/// `user:password@`, an AWS access key id, a well-known token prefix, a
/// private key, or a long base64 or hex run (a content digest after
/// `sha256:` is not one). Such a line is never quoted, whatever file it
/// came from: an ignore file or a Dockerfile may be a link to one.
pub fn looks_like_credential(s: &str) -> bool {
    // Bytes and ASCII classes: the crate's Unicode word and space classes
    // are not compiled in (its `unicode-perl` feature is off).
    static RULES: std::sync::OnceLock<Option<regex::bytes::Regex>> = std::sync::OnceLock::new();
    let rules = RULES.get_or_init(|| {
        regex::bytes::Regex::new(concat!(
            r"(?i-u)authorization\s*[:=]|extraheader|\b(basic|bearer)\s+[A-Za-z0-9+/_.~=-]{8,}",
            r"|(token|passw(or)?d|pwd|secret|api[_-]?key|access[_-]?key|private[_-]?key|credentials?)",
            r#"[A-Za-z0-9_.-]*["']?\s*[:=]\s*\S"#,
            r"|[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@",
            r"|\b(AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b",
            r"|\b(gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|glpat-[A-Za-z0-9_-]{20,}|xox[abprs]-[A-Za-z0-9-]{10,})",
            r"|-----BEGIN [A-Z ]*PRIVATE KEY",
        ))
        .ok()
    });
    // The patterns are constant: failing to compile them is a bug the
    // tests catch; hide everything rather than quote a secret.
    let Some(rules) = rules else {
        return true;
    };
    rules.is_match(s.as_bytes()) || has_long_token(s)
}

/// A run of base64 (at least 24 characters between `/`, upper and lower
/// case letters and digits, few `-`/`_`) or of hex (at least 32 digits and
/// letters), not a digest named by its algorithm.
fn has_long_token(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let token_byte =
            |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'=' | b'-' | b'_');
        if !token_byte(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && token_byte(b[i]) {
            i += 1;
        }
        let run = &b[start..i];
        let before = &b[start.saturating_sub(7)..start];
        let digest = ["sha1:", "sha256:", "sha384:", "sha512:"].iter().any(|p| {
            before.len() >= p.len()
                && before[before.len() - p.len()..].eq_ignore_ascii_case(p.as_bytes())
        });
        let hex = run.iter().filter(|c| c.is_ascii_hexdigit()).count();
        if !digest && run.len() >= 32 && hex == run.len() && run.iter().any(u8::is_ascii_digit) {
            return true;
        }
        let seps = run.iter().filter(|c| matches!(c, b'-' | b'_')).count();
        if run.len() >= 24
            && seps * 10 <= run.len()
            && run.iter().any(u8::is_ascii_uppercase)
            && run.iter().any(u8::is_ascii_lowercase)
            && run.iter().any(u8::is_ascii_digit)
            && !digest
        {
            return true;
        }
    }
    false
}

/// A line of input quoted for a message: `` `excerpt` ``, or [`HIDDEN`]
/// when it looks like a credential.
pub fn quote(s: &str) -> String {
    if looks_like_credential(s) {
        return HIDDEN.to_string();
    }
    format!("`{}`", excerpt(s))
}

/// `value` as pretty JSON for tools, with [`json_safe`]'s escapes.
pub fn json<T: serde::Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    serde_json::to_string_pretty(value).map(json_safe)
}

/// `value` as one line of JSON (JSON Lines), with [`json_safe`]'s escapes.
pub fn json_line<T: serde::Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    serde_json::to_string(value).map(json_safe)
}

/// Serialized JSON with every character [`escape`] would escape written as
/// `\uXXXX`: serde_json escapes only C0 controls, and DEL, C1 controls
/// (NEL), U+2028/U+2029 and bidi controls reach a log or a viewer raw
/// otherwise; and `##[` as `#\u0023[`, so a line of it printed to a CI log
/// is no legacy workflow command (a line of JSON never starts with `::`).
/// Outside strings JSON has only ASCII punctuation, so a plain replacement
/// is exact: the values read back the same.
pub fn json_safe(text: String) -> String {
    let text = if text.contains("##[") {
        text.replace("##[", "#\\u0023[")
    } else {
        text
    };
    if !text.chars().any(needs_escape) {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        // C0 controls in serialized JSON are its own `\n` between values
        // (pretty printing): kept.
        if needs_escape(c) && c as u32 >= 0x20 {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push(c);
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
/// [`EXCERPT_CHARS`] characters of `s`, escaped as by [`escape`], with `…`
/// when cut; [`HIDDEN`] when `s` looks like a credential. A message never
/// quotes a whole line: a "Dockerfile" may be a link to a file of secrets.
pub fn excerpt(s: &str) -> String {
    if looks_like_credential(s) {
        return HIDDEN.to_string();
    }
    let mut out = String::new();
    push_text(&mut out, s, Some(EXCERPT_CHARS));
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
        let long = "NAME=x ".repeat(1000);
        assert_eq!(excerpt(&"SECRET=x".repeat(1000)), HIDDEN);
        let e = excerpt(&long);
        assert_eq!(e.chars().count(), EXCERPT_CHARS + 1, "{e}");
        assert!(e.ends_with('…'));
        assert_eq!(excerpt("a\0b\x1b"), "a\\x00b\\x1b");
        assert_eq!(excerpt("short"), "short");
        let e = excerpt_bytes(&[b'x'; 10_000]);
        assert_eq!(e.chars().count(), EXCERPT_CHARS + 1);
    }

    /// GitHub's runner trims a line before matching `::`, and matches the
    /// legacy `##[` anywhere in it.
    #[test]
    fn workflow_commands_are_neutralised() {
        let cases = [
            ("::error::pwned", "\\x3a:error::pwned"),
            ("   ::add-mask::x", "   \\x3a:add-mask::x"),
            (
                "\u{a0}\u{3000}::stop-commands::t",
                "\u{a0}\u{3000}\\x3a:stop-commands::t",
            ),
            ("\t::error::x", "\\t\\x3a:error::x"),
            ("a ##[error]x", "a #\\x23[error]x"),
            ("###[set-output name=a]b", "##\\x23[set-output name=a]b"),
            ("##[a]##[b]", "#\\x23[a]#\\x23[b]"),
            // Not commands: `::` later in a line, `#[`, `##` alone.
            ("a::b", "a::b"),
            ("x ::error", "x ::error"),
            ("#[x] ## y", "#[x] ## y"),
        ];
        for (input, want) in cases {
            assert_eq!(escape(input), want, "{input:?}");
            assert_eq!(excerpt(input), want, "{input:?}");
            assert_eq!(show_bytes(input.as_bytes()), want, "{input:?}");
        }
    }

    #[test]
    fn credentials_are_recognised() {
        let secret = [
            "\textraheader = AUTHORIZATION: basic c2VjcmV0dG9rZW4xMjM0NTY3ODkw",
            "Authorization: Bearer abcdefgh.ijkl",
            "authorization=xyz",
            "token = abc",
            "GITHUB_TOKEN=ghs_x",
            "password: hunter2",
            "db_passwd=1",
            "\"secret_key\": \"v\"",
            "api-key: v",
            "https://user:pa55@example.com/repo.git",
            "aws AKIAIOSFODNN7EXAMPLE x",
            "ghp_0123456789abcdefghijABCDEFGHIJ",
            "-----BEGIN OPENSSH PRIVATE KEY-----",
            "x c2VjcmV0dG9rZW5DQU5BUlkxMjM0NTY3ODkw",
            "0123456789abcdef0123456789abcdef",
        ];
        for s in secret {
            assert!(looks_like_credential(s), "{s:?}");
            assert_eq!(excerpt(s), HIDDEN, "{s:?}");
            assert_eq!(quote(s), HIDDEN, "{s:?}");
        }
        let plain = [
            "node_modules",
            "**/*.secret",
            "secrets/",
            "**/token.json",
            "COPY --from=build /app/dist /usr/share/nginx/html",
            "RUN --mount=type=secret,id=npm_token npm ci",
            "FROM alpine@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "/usr/local/lib/python3.12/site-packages",
            "apps/Frontend2/src/components/HeaderBar",
            "my-very-long-package-name-v2-Release",
            "https://example.com/a:b@c",
        ];
        for s in plain {
            assert!(!looks_like_credential(s), "{s:?}");
        }
        assert_eq!(quote("node_modules"), "`node_modules`");
    }

    /// serde_json writes bidi controls, line separators and NEL raw.
    #[test]
    fn json_escapes_what_serde_json_leaves_raw() {
        let v = serde_json::json!({"a\u{202e}": "x\u{2028}y\u{2029}\u{85}\u{7f}\u{2066}\n\u{1b}é"});
        let out = json_line(&v).unwrap();
        assert_eq!(
            out,
            r#"{"a\u202e":"x\u2028y\u2029\u0085\u007f\u2066\n\u001bé"}"#
        );
        let back: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(back, v);
        assert!(json(&v).unwrap().contains("\\u2028"));
        let v = serde_json::json!({"##[error]": "a ###[b"});
        let out = json_line(&v).unwrap();
        assert_eq!(out, r##"{"#\u0023[error]":"a ##\u0023[b"}"##);
        assert_eq!(serde_json::from_str::<serde_json::Value>(&out).unwrap(), v);
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
