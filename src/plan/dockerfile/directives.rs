//! Parser directives (`# syntax=`, `# escape=`, `# check=`).

use super::{DockerfileError, ErrorKind};

/// Parser directives from the leading comment lines of a Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directives {
    /// `# syntax=<frontend image>`.
    pub syntax: Option<String>,
    /// `# escape=` character: `\` (default) or a backtick.
    pub escape: char,
    /// `# check=<options>` (build checks configuration).
    pub check: Option<String>,
    /// 1-based line of each directive seen, keyed by lower-cased name.
    pub lines: Vec<(String, usize)>,
}

impl Default for Directives {
    fn default() -> Self {
        Directives {
            syntax: None,
            escape: '\\',
            check: None,
            lines: Vec::new(),
        }
    }
}

/// Go RE2 `\s`.
fn is_re_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0c')
}

/// Matches `^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$` and returns (key, value).
fn match_directive(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix('#')?;
    let rest = rest.trim_start_matches(is_re_space);
    let key_len = rest
        .char_indices()
        .take_while(|(i, c)| {
            if *i == 0 {
                c.is_ascii_alphabetic()
            } else {
                c.is_ascii_alphanumeric()
            }
        })
        .count();
    if key_len == 0 {
        return None;
    }
    let (key, rest) = rest.split_at(key_len);
    let rest = rest.trim_start_matches(is_re_space);
    let rest = rest.strip_prefix('=')?;
    let value = rest.trim_matches(is_re_space);
    if value.is_empty() {
        return None;
    }
    Some((key, value))
}

/// Parses the directive section: leading comment lines that are known
/// directives. The first line that is not one (blank line, instruction, other
/// comment) ends the section.
pub(super) fn parse_directives(path: &str, lines: &[&str]) -> Result<Directives, DockerfileError> {
    let mut d = Directives::default();
    for (i, line) in lines.iter().enumerate() {
        let Some((key, value)) = match_directive(line) else {
            break;
        };
        let key = key.to_ascii_lowercase();
        if !matches!(key.as_str(), "syntax" | "escape" | "check") {
            break;
        }
        let lineno = i + 1;
        if d.lines.iter().any(|(k, _)| *k == key) {
            return Err(DockerfileError::new(
                path,
                lineno,
                1,
                ErrorKind::Directive,
                format!(
                    "only one `{}` parser directive can be used; remove the duplicate",
                    crate::text::excerpt(&key)
                ),
            ));
        }
        d.lines.push((key.clone(), lineno));
        match key.as_str() {
            "syntax" => d.syntax = Some(value.to_string()),
            "check" => d.check = Some(value.to_string()),
            _ => {
                d.escape = match value {
                    "\\" => '\\',
                    "`" => '`',
                    other => {
                        return Err(DockerfileError::new(
                            path,
                            lineno,
                            1,
                            ErrorKind::Directive,
                            format!(
                                "invalid escape token `{}`: use `# escape=\\` or `# escape=` followed by a backtick",
                                crate::text::excerpt(other)
                            ),
                        ))
                    }
                }
            }
        }
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directive_table() {
        // (input lines, syntax, escape, check)
        let cases: &[(&str, Option<&str>, char, Option<&str>)] = &[
            (
                "# syntax=docker/dockerfile:1\nFROM x",
                Some("docker/dockerfile:1"),
                '\\',
                None,
            ),
            ("#SYNTAX = a/b:c  \nFROM x", Some("a/b:c"), '\\', None),
            ("# escape=`\nFROM x", None, '`', None),
            ("# Escape = \\\nFROM x", None, '\\', None),
            (
                "# syntax=docker/dockerfile:1.7\n# check=skip=all\n# escape=`\n",
                Some("docker/dockerfile:1.7"),
                '`',
                Some("skip=all"),
            ),
            // a blank line ends the directive section
            ("\n# escape=`\nFROM x", None, '\\', None),
            // a non-directive comment ends it
            ("# hello\n# escape=`\n", None, '\\', None),
            // an unknown directive ends it
            ("# foo=bar\n# escape=`\n", None, '\\', None),
            // an instruction ends it
            ("FROM x\n# escape=`\n", None, '\\', None),
            // empty value is not a directive
            ("# syntax=\n# escape=`\n", None, '\\', None),
        ];
        for (src, syntax, escape, check) in cases {
            let lines: Vec<&str> = src.split('\n').collect();
            let d = parse_directives("Dockerfile", &lines).unwrap();
            assert_eq!(d.syntax.as_deref(), *syntax, "{src:?}");
            assert_eq!(d.escape, *escape, "{src:?}");
            assert_eq!(d.check.as_deref(), *check, "{src:?}");
        }
    }

    #[test]
    fn directive_errors() {
        let cases: &[(&str, usize, &str)] = &[
            ("# escape=`\n# escape=\\\n", 2, "only one `escape`"),
            ("# syntax=a\n#syntax=b\n", 2, "only one `syntax`"),
            ("# escape=x\n", 1, "invalid escape token `x`"),
        ];
        for (src, line, msg) in cases {
            let lines: Vec<&str> = src.split('\n').collect();
            let e = parse_directives("df", &lines).unwrap_err();
            assert_eq!(e.line, *line, "{src:?}");
            assert_eq!(e.kind, ErrorKind::Directive);
            assert!(e.message.contains(msg), "{src:?}: {}", e.message);
        }
    }
}
