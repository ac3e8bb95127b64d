//! Turning one logical instruction line into an [`Instruction`]: keyword,
//! flags, per-keyword argument shapes (JSON form, whitespace words, `ENV`
//! pairs, ...) and heredoc declarations.

use super::shell::{extract_flags, parse_words, split_raw_words, unquote};
use super::{DockerfileError, ErrorKind, Flag, Heredoc, Instruction};

/// Instructions BuildKit knows.
pub(super) const KEYWORDS: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// Location info used to build errors for the instruction being parsed.
pub(super) struct Ctx<'a> {
    pub path: &'a str,
    pub line: usize,
}

impl Ctx<'_> {
    fn err(&self, kind: ErrorKind, msg: impl Into<String>) -> DockerfileError {
        DockerfileError::new(self.path, self.line, 1, kind, msg)
    }
}

/// Parses one logical line (continuations already joined). `line`,
/// `end_line` and `original` of the result are left for the caller to fill.
pub(super) fn parse_instruction(
    ctx: &Ctx<'_>,
    text: &str,
    escape: char,
) -> Result<Instruction, DockerfileError> {
    let text = text.trim();
    let (word, rest) = match text.find(char::is_whitespace) {
        Some(i) => (
            text.get(..i).unwrap_or_default(),
            text.get(i..).unwrap_or_default(),
        ),
        None => (text, ""),
    };
    let keyword = word.to_ascii_uppercase();
    if !KEYWORDS.contains(&keyword.as_str()) {
        return Err(ctx.err(
            ErrorKind::Syntax,
            format!(
                "unknown instruction `{}`; expected one of {} (check for a typo or a missing line-continuation `{escape}` on the previous line)",
                crate::text::excerpt(word),
                KEYWORDS.join(", ")
            ),
        ));
    }
    let (flag_words, rest) = extract_flags(rest);
    let flags = flag_words
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((n, v)) => Flag {
                name: n.to_string(),
                value: Some(v.to_string()),
            },
            None => Flag {
                name: w,
                value: None,
            },
        })
        .collect();
    let rest = rest.trim();
    let mut ins = Instruction {
        keyword: keyword.clone(),
        flags,
        args: Vec::new(),
        json: false,
        heredocs: Vec::new(),
        onbuild: None,
        line: ctx.line,
        end_line: ctx.line,
        original: String::new(),
    };
    match keyword.as_str() {
        "COPY" | "ADD" | "SHELL" | "VOLUME" => {
            if let Some(list) = parse_json_array(rest) {
                ins.args = list;
                ins.json = true;
            } else {
                ins.args = rest.split_whitespace().map(str::to_string).collect();
            }
        }
        "RUN" | "CMD" | "ENTRYPOINT" => {
            if let Some(list) = parse_json_array(rest) {
                ins.args = list;
                ins.json = true;
            } else if !rest.is_empty() {
                ins.args = vec![rest.to_string()];
            }
        }
        "FROM" | "EXPOSE" => ins.args = rest.split_whitespace().map(str::to_string).collect(),
        "ENV" | "LABEL" => ins.args = parse_name_val(ctx, &keyword, rest, escape)?,
        "ARG" => ins.args = parse_words(rest, escape),
        "ONBUILD" => {
            if rest.is_empty() {
                return Err(ctx.err(
                    ErrorKind::Syntax,
                    "ONBUILD requires an instruction, e.g. `ONBUILD COPY . /app`",
                ));
            }
            // Checked before parsing the trigger, so `ONBUILD ONBUILD ...`
            // never recurses more than once.
            let trigger = rest
                .split(char::is_whitespace)
                .next()
                .unwrap_or_default()
                .to_ascii_uppercase();
            if matches!(trigger.as_str(), "ONBUILD" | "FROM" | "MAINTAINER") {
                return Err(ctx.err(
                    ErrorKind::Syntax,
                    format!(
                        "{} isn't allowed as an ONBUILD trigger",
                        crate::text::excerpt(&trigger)
                    ),
                ));
            }
            let sub = parse_instruction(ctx, rest, escape)?;
            ins.onbuild = Some(Box::new(sub));
        }
        _ => {
            if !rest.is_empty() {
                ins.args = vec![rest.to_string()];
            }
        }
    }
    if matches!(keyword.as_str(), "COPY" | "ADD" | "RUN") && !ins.json {
        ins.heredocs = split_raw_words(rest)
            .filter_map(parse_heredoc_word)
            .collect();
    }
    validate(ctx, &ins)?;
    Ok(ins)
}

fn validate(ctx: &Ctx<'_>, ins: &Instruction) -> Result<(), DockerfileError> {
    let n = ins.args.len();
    let bad = match ins.keyword.as_str() {
        "COPY" | "ADD" if n < 2 => Some(format!(
            "{} requires at least two arguments: one or more sources and a destination, e.g. `{} src/ /app/`",
            ins.keyword, ins.keyword
        )),
        "FROM" if !(n == 1 || (n == 3 && ins.args.get(1).is_some_and(|a| a.eq_ignore_ascii_case("as")))) => {
            Some("FROM requires either one argument (`FROM image`) or three (`FROM image AS name`)".to_string())
        }
        "RUN" | "ARG" | "ENV" | "WORKDIR" | "USER" if n == 0 => Some(format!(
            "{} requires at least one argument",
            ins.keyword
        )),
        _ => None,
    };
    match bad {
        Some(msg) => Err(ctx.err(ErrorKind::Syntax, msg)),
        None => Ok(()),
    }
}

/// `ENV`/`LABEL`: `K=V ...` (quote-aware) or the legacy `K V` form. Returns
/// `K=V` items with raw (quoted, unexpanded) values.
fn parse_name_val(
    ctx: &Ctx<'_>,
    keyword: &str,
    rest: &str,
    escape: char,
) -> Result<Vec<String>, DockerfileError> {
    let words = parse_words(rest, escape);
    let Some(first) = words.first() else {
        return Err(ctx.err(
            ErrorKind::Syntax,
            format!("{keyword} requires at least one argument, e.g. `{keyword} KEY=value`"),
        ));
    };
    if !first.contains('=') {
        let mut parts = rest.splitn(2, char::is_whitespace);
        let key = parts.next().unwrap_or_default();
        let value = parts.next().unwrap_or_default().trim_start();
        if value.is_empty() {
            return Err(ctx.err(
                ErrorKind::Syntax,
                format!(
                    "{keyword} must have two arguments: write `{keyword} {}=value`",
                    crate::text::excerpt(key)
                ),
            ));
        }
        return Ok(vec![format!("{key}={value}")]);
    }
    for w in &words {
        if !w.contains('=') {
            return Err(ctx.err(
                ErrorKind::Syntax,
                format!(
                    "syntax error - can't find = in `{}`; it must be of the form name=value",
                    crate::text::excerpt(w)
                ),
            ));
        }
    }
    Ok(words)
}

/// Recognises a heredoc word: `^(\d*)<<(-?)([^<]*)$` with a non-empty name
/// after quote removal.
pub(super) fn parse_heredoc_word(word: &str) -> Option<Heredoc> {
    let digits = word.chars().take_while(char::is_ascii_digit).count();
    let (fd_text, rest) = word.split_at(digits);
    let rest = rest.strip_prefix("<<")?;
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    if rest.is_empty() || rest.contains('<') {
        return None;
    }
    let (name, quoted) = unquote(rest)?;
    if name.is_empty() {
        return None;
    }
    Some(Heredoc {
        name,
        word: word.to_string(),
        content: String::new(),
        expand: !quoted,
        chomp,
        fd: fd_text.parse().ok(),
    })
}

/// Parses `["a", "b"]` (a JSON array of strings, nothing after it). `None`
/// when the text is not exactly that (the caller falls back to shell form).
pub(super) fn parse_json_array(text: &str) -> Option<Vec<String>> {
    let cs: Vec<char> = text.chars().collect();
    let mut i = 0;
    let ws = |cs: &[char], mut i: usize| {
        while cs
            .get(i)
            .is_some_and(|c| matches!(c, ' ' | '\t' | '\n' | '\r'))
        {
            i += 1;
        }
        i
    };
    i = ws(&cs, i);
    if cs.get(i) != Some(&'[') {
        return None;
    }
    i = ws(&cs, i + 1);
    let mut out = Vec::new();
    if cs.get(i) == Some(&']') {
        i += 1;
    } else {
        loop {
            i = ws(&cs, i);
            if cs.get(i) != Some(&'"') {
                return None;
            }
            let (s, next) = parse_json_string(&cs, i + 1)?;
            out.push(s);
            i = ws(&cs, next);
            match cs.get(i) {
                Some(',') => i += 1,
                Some(']') => {
                    i += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    if ws(&cs, i) != cs.len() {
        return None;
    }
    Some(out)
}

fn hex4(cs: &[char], i: usize) -> Option<u32> {
    let s: String = cs.get(i..i + 4)?.iter().collect();
    if s.len() != 4 {
        return None;
    }
    u32::from_str_radix(&s, 16).ok()
}

/// Parses a JSON string body starting after the opening quote.
fn parse_json_string(cs: &[char], mut i: usize) -> Option<(String, usize)> {
    let mut out = String::new();
    loop {
        let c = *cs.get(i)?;
        i += 1;
        match c {
            '"' => return Some((out, i)),
            '\\' => {
                let e = *cs.get(i)?;
                i += 1;
                match e {
                    '"' => out.push('"'),
                    '\\' => out.push('\\'),
                    '/' => out.push('/'),
                    'b' => out.push('\u{8}'),
                    'f' => out.push('\u{c}'),
                    'n' => out.push('\n'),
                    'r' => out.push('\r'),
                    't' => out.push('\t'),
                    'u' => {
                        let hi = hex4(cs, i)?;
                        i += 4;
                        let ch = if (0xD800..0xDC00).contains(&hi)
                            && cs.get(i) == Some(&'\\')
                            && cs.get(i + 1) == Some(&'u')
                        {
                            match hex4(cs, i + 2) {
                                Some(lo) if (0xDC00..0xE000).contains(&lo) => {
                                    i += 6;
                                    char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))
                                }
                                _ => None,
                            }
                        } else {
                            char::from_u32(hi)
                        };
                        out.push(ch.unwrap_or('\u{FFFD}'));
                    }
                    _ => return None,
                }
            }
            c if (c as u32) < 0x20 => return None,
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse1(text: &str) -> Result<Instruction, DockerfileError> {
        parse_instruction(
            &Ctx {
                path: "Dockerfile",
                line: 3,
            },
            text,
            '\\',
        )
    }

    #[test]
    fn json_table() {
        let cases: &[(&str, Option<&[&str]>)] = &[
            (r#"["a", "b"]"#, Some(&["a", "b"])),
            (
                r#"  [ "a b" ,"c\"d\\e\u00e9\n" ]  "#,
                Some(&["a b", "c\"d\\eé\n"]),
            ),
            (r#"[]"#, Some(&[])),
            (r#"["\ud83d\ude00"]"#, Some(&["😀"])),
            (r#"["a", 1]"#, None),
            (r#"["a" "b"]"#, None),
            (r#"["a",]"#, None),
            (r#"["a"] x"#, None),
            (r#"['a']"#, None),
            (r#"["a"#, None),
            (r#"["\x"]"#, None),
            ("a b", None),
        ];
        for (text, want) in cases {
            let got = parse_json_array(text);
            let want: Option<Vec<String>> = want.map(|w| w.iter().map(|s| s.to_string()).collect());
            assert_eq!(got, want, "{text}");
        }
    }

    #[test]
    fn instruction_shapes() {
        // (text, keyword, flags, args, json)
        type Case<'a> = (
            &'a str,
            &'a str,
            &'a [(&'a str, Option<&'a str>)],
            &'a [&'a str],
            bool,
        );
        let cases: &[Case] = &[
            ("copy a b /c/", "COPY", &[], &["a", "b", "/c/"], false),
            (
                "COPY --from=build --chown=1:1 --link /out ./",
                "COPY",
                &[
                    ("from", Some("build")),
                    ("chown", Some("1:1")),
                    ("link", None),
                ],
                &["/out", "./"],
                false,
            ),
            (r#"COPY ["a b", "c"]"#, "COPY", &[], &["a b", "c"], true),
            (r#"COPY "a b" c"#, "COPY", &[], &["\"a", "b\"", "c"], false),
            (r#"COPY [a, b] c"#, "COPY", &[], &["[a,", "b]", "c"], false),
            (
                "RUN  echo  hi && ls ",
                "RUN",
                &[],
                &["echo  hi && ls"],
                false,
            ),
            (
                "RUN --mount=type=bind,source=x,target=/x --mount=type=cache,target=/c make",
                "RUN",
                &[
                    ("mount", Some("type=bind,source=x,target=/x")),
                    ("mount", Some("type=cache,target=/c")),
                ],
                &["make"],
                false,
            ),
            (
                r#"RUN ["sh", "-c", "x"]"#,
                "RUN",
                &[],
                &["sh", "-c", "x"],
                true,
            ),
            (r#"CMD ["a", 1]"#, "CMD", &[], &[r#"["a", 1]"#], false),
            (
                "FROM --platform=$BUILDPLATFORM golang:1.22 AS build",
                "FROM",
                &[("platform", Some("$BUILDPLATFORM"))],
                &["golang:1.22", "AS", "build"],
                false,
            ),
            (
                "ENV A=1 B=\"x y\"",
                "ENV",
                &[],
                &["A=1", "B=\"x y\""],
                false,
            ),
            ("ENV A hello world", "ENV", &[], &["A=hello world"], false),
            ("ARG V=1 W", "ARG", &[], &["V=1", "W"], false),
            ("WORKDIR /app dir", "WORKDIR", &[], &["/app dir"], false),
            ("EXPOSE 80 443", "EXPOSE", &[], &["80", "443"], false),
            ("VOLUME /a /b", "VOLUME", &[], &["/a", "/b"], false),
        ];
        for (text, kw, flags, args, json) in cases {
            let ins = parse1(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(ins.keyword, *kw, "{text}");
            let got_flags: Vec<(&str, Option<&str>)> = ins
                .flags
                .iter()
                .map(|f| (f.name.as_str(), f.value.as_deref()))
                .collect();
            assert_eq!(got_flags, flags.to_vec(), "{text}");
            assert_eq!(ins.args, args.to_vec(), "{text}");
            assert_eq!(ins.json, *json, "{text}");
        }
    }

    #[test]
    fn onbuild_and_heredoc_words() {
        let ins = parse1("ONBUILD COPY --chown=1 <<EOF src /dst").unwrap();
        let sub = ins.onbuild.unwrap();
        assert_eq!(sub.keyword, "COPY");
        assert_eq!(sub.args, vec!["<<EOF", "src", "/dst"]);
        assert_eq!(sub.heredocs.len(), 1);

        let ins = parse1(r#"RUN 3<<-"A" cat <<'B' >f <<C.d-e_f <<x<y"#).unwrap();
        let hd: Vec<(&str, bool, bool, Option<u32>)> = ins
            .heredocs
            .iter()
            .map(|h| (h.name.as_str(), h.expand, h.chomp, h.fd))
            .collect();
        assert_eq!(
            hd,
            vec![
                ("A", false, true, Some(3)),
                ("B", false, false, None),
                ("C.d-e_f", true, false, None)
            ]
        );
        // quoted heredoc-looking text is not a heredoc
        assert!(parse1(r#"RUN echo "<<EOF""#).unwrap().heredocs.is_empty());
        assert!(parse1(r#"RUN ["cat", "<<EOF"]"#)
            .unwrap()
            .heredocs
            .is_empty());
        assert!(parse1("CMD cat <<EOF").unwrap().heredocs.is_empty());
    }

    #[test]
    fn repeated_onbuild_does_not_recurse() {
        let text = "ONBUILD ".repeat(1_000_000) + "RUN x";
        let e = crate::test_support::on_small_stack(move || {
            parse_instruction(
                &Ctx {
                    path: "Dockerfile",
                    line: 3,
                },
                &text,
                '\\',
            )
            .unwrap_err()
        });
        assert_eq!((e.line, e.kind), (3, ErrorKind::Syntax));
        assert!(e
            .message
            .contains("ONBUILD isn't allowed as an ONBUILD trigger"));
    }

    #[test]
    fn instruction_errors() {
        let cases: &[(&str, &str)] = &[
            ("COPYY a b", "unknown instruction `COPYY`"),
            ("COPY a", "at least two arguments"),
            ("ADD", "at least two arguments"),
            ("FROM", "FROM requires"),
            ("FROM a b", "FROM requires"),
            ("FROM a AS", "FROM requires"),
            ("ENV", "ENV requires"),
            ("ENV A", "two arguments"),
            ("ENV A=1 B", "can't find ="),
            ("ONBUILD", "ONBUILD requires"),
            ("ONBUILD FROM x", "isn't allowed"),
            ("ONBUILD ONBUILD RUN x", "ONBUILD isn't allowed"),
            ("onbuild from x", "FROM isn't allowed"),
            ("RUN", "RUN requires"),
        ];
        for (text, want) in cases {
            let e = parse1(text).unwrap_err();
            assert_eq!(e.line, 3);
            assert!(e.message.contains(want), "{text}: {}", e.message);
        }
    }
}
