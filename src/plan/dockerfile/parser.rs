//! Line handling (continuations, comments, heredoc bodies) and stage
//! assembly, following BuildKit's `parser.Parse`.

use std::cell::Cell;
use std::collections::BTreeMap;

use super::directives::parse_directives;
use super::followpaths::{expand_from, meta_scope};
use super::instructions::{parse_instruction, Ctx};
use super::shell::Budget;
use super::{ArgDecl, Dockerfile, DockerfileError, ErrorKind, Instruction, Stage};

/// Parses a Dockerfile.
///
/// `path_label` is only used in error messages. Input bytes that are not
/// valid UTF-8 are replaced with U+FFFD; a leading UTF-8 BOM is ignored.
///
/// Errors on invalid/duplicate directives, unknown instructions, malformed
/// arguments, an instruction other than `ARG` before the first `FROM`, a
/// Dockerfile without `FROM`, invalid stage names and unterminated heredocs
/// (like BuildKit, an unterminated heredoc is an error, reported at the
/// instruction that opened it).
pub fn parse(path_label: &str, source: &[u8]) -> Result<Dockerfile, DockerfileError> {
    let text = String::from_utf8_lossy(source);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let directives = parse_directives(path_label, &lines)?;
    let escape = directives.escape;
    let instructions = split_instructions(path_label, &lines, escape)?;

    let mut global_args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for ins in instructions {
        if ins.keyword == "FROM" {
            let index = stages.len();
            let base_raw = ins.args.first().cloned().unwrap_or_default();
            let name = match ins.args.get(2) {
                Some(n) => {
                    let lower = n.to_ascii_lowercase();
                    if !valid_stage_name(&lower) {
                        let (l, c) = super::locate(&ins, n);
                        return Err(DockerfileError::new(
                            path_label,
                            l,
                            c,
                            ErrorKind::Syntax,
                            format!("invalid name for build stage: `{}`; a stage name must start with a letter and contain only letters, digits, `-`, `_` and `.`", crate::text::excerpt(n)),
                        ));
                    }
                    Some(lower)
                }
                None => None,
            };
            let platform = ins
                .flag("platform")
                .map(|v| v.unwrap_or_default().to_string());
            stages.push(Stage {
                index,
                name,
                base: base_raw.clone(),
                base_raw,
                platform,
                line: ins.line,
                from: ins,
                instructions: Vec::new(),
            });
        } else if let Some(stage) = stages.last_mut() {
            stage.instructions.push(ins);
        } else if ins.keyword == "ARG" {
            for w in &ins.args {
                let (name, default) = match w.split_once('=') {
                    Some((n, d)) => (n.to_string(), Some(d.to_string())),
                    None => (w.clone(), None),
                };
                global_args.push(ArgDecl {
                    name,
                    default,
                    line: ins.line,
                });
            }
        } else {
            return Err(DockerfileError::new(
                path_label,
                ins.line,
                1,
                ErrorKind::Syntax,
                format!(
                    "`{}` appears before the first FROM; only ARG may precede FROM, so start the build stage with `FROM <image>`",
                    crate::text::excerpt(&ins.keyword)
                ),
            ));
        }
    }
    if stages.is_empty() {
        return Err(DockerfileError::new(
            path_label,
            lines.len(),
            1,
            ErrorKind::Syntax,
            "the Dockerfile has no FROM instruction; add `FROM <image>` to start a build stage",
        ));
    }
    let mut df = Dockerfile {
        path: path_label.to_string(),
        directives,
        global_args,
        stages,
    };
    // Expand base names with the defaults (lenient: keep the raw text on error).
    let budget = Cell::new(Budget::default());
    if let Ok(meta) = meta_scope(&df, &BTreeMap::new(), None, &budget) {
        for i in 0..df.stages.len() {
            let expanded = df
                .stages
                .get(i)
                .and_then(|st| expand_from(&df, &meta, &st.base_raw, &budget).ok());
            if let (Some(e), Some(st)) = (expanded, df.stages.get_mut(i)) {
                st.base = e.value;
            }
        }
    }
    Ok(df)
}

/// `^[a-z][a-z0-9-_\.]*$`
fn valid_stage_name(n: &str) -> bool {
    let mut cs = n.chars();
    cs.next().is_some_and(|c| c.is_ascii_lowercase())
        && cs.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// Strips a trailing escape char (followed only by spaces/tabs); returns the
/// content before it and whether the line continues.
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let t = line.trim_end_matches([' ', '\t']);
    match t.strip_suffix(escape) {
        Some(body) => (body, true),
        None => (line, false),
    }
}

fn split_instructions(
    path: &str,
    lines: &[&str],
    escape: char,
) -> Result<Vec<Instruction>, DockerfileError> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(raw) = lines.get(i) {
        i += 1;
        let first = raw.trim_start();
        if first.is_empty() || first.starts_with('#') {
            continue;
        }
        let start_line = i;
        let (content, mut cont) = trim_continuation(first, escape);
        let mut logical = content.to_string();
        while cont {
            let Some(raw) = lines.get(i) else { break };
            i += 1;
            if is_comment(raw) || raw.trim().is_empty() {
                continue;
            }
            let (c, more) = trim_continuation(raw, escape);
            logical.push_str(c);
            cont = more;
        }
        let ctx = Ctx {
            path,
            line: start_line,
        };
        let mut ins = parse_instruction(&ctx, &logical, escape)?;
        // Heredoc bodies follow the instruction, one after the other.
        let target = match ins.onbuild.as_deref_mut() {
            Some(sub) => &mut sub.heredocs,
            None => &mut ins.heredocs,
        };
        for hd in target.iter_mut() {
            let mut terminated = false;
            let mut content = String::new();
            while let Some(body) = lines.get(i) {
                i += 1;
                let candidate = if hd.chomp {
                    body.trim_start_matches('\t')
                } else {
                    body
                };
                if candidate == hd.name {
                    terminated = true;
                    break;
                }
                content.push_str(candidate);
                content.push('\n');
            }
            if !terminated {
                return Err(DockerfileError::new(
                    path,
                    start_line,
                    1,
                    ErrorKind::Heredoc,
                    format!(
                        "unterminated heredoc `{}`: add a line containing only `{}` after its body",
                        crate::text::excerpt(&hd.word),
                        crate::text::excerpt(&hd.name)
                    ),
                ));
            }
            hd.content = content;
        }
        let original = lines
            .get(start_line - 1..i)
            .map(|ls| ls.join("\n"))
            .unwrap_or_default();
        set_location(&mut ins, start_line, i, &original);
        out.push(ins);
    }
    Ok(out)
}

fn set_location(ins: &mut Instruction, line: usize, end_line: usize, original: &str) {
    ins.line = line;
    ins.end_line = end_line.max(line);
    ins.original = original.to_string();
    if let Some(sub) = ins.onbuild.as_deref_mut() {
        set_location(sub, line, end_line, original);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(src: &str) -> Dockerfile {
        parse("Dockerfile", src.as_bytes()).unwrap_or_else(|e| panic!("{e}\n{src}"))
    }

    /// (keyword, args, line, end_line) for every instruction of every stage.
    fn shape(df: &Dockerfile) -> Vec<(String, Vec<String>, usize, usize)> {
        df.stages
            .iter()
            .flat_map(|s| std::iter::once(&s.from).chain(s.instructions.iter()))
            .map(|i| (i.keyword.clone(), i.args.clone(), i.line, i.end_line))
            .collect()
    }

    fn sv(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn continuation_and_comments() {
        let df = p("FROM alpine\r\nRUN apk add \\\n  # a comment inside\n\n     curl \\  \n  git\n# trailing\nrun echo done\\");
        assert_eq!(
            shape(&df),
            vec![
                ("FROM".into(), sv(&["alpine"]), 1, 1),
                ("RUN".into(), sv(&["apk add      curl   git"]), 2, 6),
                ("RUN".into(), sv(&["echo done"]), 8, 8),
            ]
        );
        assert_eq!(
            df.stages[0].instructions[0].original,
            "RUN apk add \\\n  # a comment inside\n\n     curl \\  \n  git"
        );
    }

    #[test]
    fn escape_backtick() {
        let df = p("# escape=`\nFROM mcr.microsoft.com/windows/servercore\nCOPY C:\\src\\app `\n  C:\\app\\\nRUN dir c:\\");
        assert_eq!(df.directives.escape, '`');
        assert_eq!(
            shape(&df)[1..],
            vec![
                ("COPY".into(), sv(&["C:\\src\\app", "C:\\app\\"]), 3, 4),
                ("RUN".into(), sv(&["dir c:\\"]), 5, 5),
            ]
        );
    }

    #[test]
    fn heredocs() {
        let src = "FROM alpine\nCOPY <<EOF /app/start.sh\n#!/bin/sh\nFROM x\nCOPY . /\nEOF\nRUN <<-\"SCRIPT\" cat <<EOT2 > /f\n\techo $HOME\n\tSCRIPT\nline2\nEOT2\nRUN echo after\n";
        let df = p(src);
        let ins = &df.stages[0].instructions;
        assert_eq!(df.stages.len(), 1);
        assert_eq!(ins.len(), 3);
        assert_eq!(ins[0].heredocs[0].content, "#!/bin/sh\nFROM x\nCOPY . /\n");
        assert_eq!((ins[0].line, ins[0].end_line), (2, 6));
        assert_eq!(ins[1].heredocs.len(), 2);
        assert_eq!(ins[1].heredocs[0].content, "echo $HOME\n");
        assert!(!ins[1].heredocs[0].expand);
        assert_eq!(ins[1].heredocs[1].name, "EOT2");
        assert_eq!(ins[1].heredocs[1].content, "line2\n");
        assert_eq!((ins[1].line, ins[1].end_line), (7, 11));
        assert_eq!(ins[2].args, sv(&["echo after"]));
        assert_eq!(ins[2].line, 12);
        // continuation before the heredoc body; empty body
        let df = p(
            "FROM a\nRUN --mount=type=cache,target=/c \\\n  <<EOF\nEOF\nONBUILD RUN <<X\nbody\nX\n",
        );
        let ins = &df.stages[0].instructions;
        assert_eq!(ins[0].heredocs[0].content, "");
        assert_eq!(ins[0].end_line, 4);
        let sub = ins[1].onbuild.as_ref().unwrap();
        assert_eq!(sub.heredocs[0].content, "body\n");
        assert_eq!(sub.line, 5);
    }

    #[test]
    fn stages_and_global_args() {
        let df = p("# syntax=docker/dockerfile:1\nARG BASE=node:20 VARIANT\nARG TAG=${BASE}-alpine\nFROM ${TAG} AS Deps\nFROM --platform=$BUILDPLATFORM deps\nFROM scratch\n");
        assert_eq!(df.directives.syntax.as_deref(), Some("docker/dockerfile:1"));
        let names: Vec<_> = df
            .global_args
            .iter()
            .map(|a| (a.name.as_str(), a.default.as_deref(), a.line))
            .collect();
        assert_eq!(
            names,
            vec![
                ("BASE", Some("node:20"), 2),
                ("VARIANT", None, 2),
                ("TAG", Some("${BASE}-alpine"), 3)
            ]
        );
        let st: Vec<_> = df
            .stages
            .iter()
            .map(|s| {
                (
                    s.index,
                    s.name.as_deref(),
                    s.base.as_str(),
                    s.platform.as_deref(),
                    s.line,
                )
            })
            .collect();
        assert_eq!(
            st,
            vec![
                (0, Some("deps"), "node:20-alpine", None, 4),
                (1, None, "deps", Some("$BUILDPLATFORM"), 5),
                (2, None, "scratch", None, 6),
            ]
        );
    }

    #[test]
    fn invalid_utf8_and_bom() {
        let mut src = b"\xef\xbb\xbf# escape=`\nFROM a\nRUN echo \xff\xfe\n".to_vec();
        src.push(b'\n');
        let df = parse("df", &src).unwrap();
        assert_eq!(df.directives.escape, '`');
        assert_eq!(
            df.stages[0].instructions[0].args,
            sv(&["echo \u{fffd}\u{fffd}"])
        );
    }

    #[test]
    fn parse_errors() {
        let cases: &[(&str, usize, ErrorKind, &str)] = &[
            ("", 1, ErrorKind::Syntax, "no FROM"),
            ("# just a comment\n\n", 3, ErrorKind::Syntax, "no FROM"),
            (
                "RUN x\nFROM a",
                1,
                ErrorKind::Syntax,
                "before the first FROM",
            ),
            (
                "ARG A\nFROM a\nBOGUS x",
                3,
                ErrorKind::Syntax,
                "unknown instruction `BOGUS`",
            ),
            (
                "FROM a\nRUN <<EOF\nbody\n",
                2,
                ErrorKind::Heredoc,
                "unterminated heredoc `<<EOF`",
            ),
            (
                "FROM a\nCOPY <<A <<B /d\na\nA\nb\n",
                2,
                ErrorKind::Heredoc,
                "`B`",
            ),
            (
                "FROM a AS 1st",
                1,
                ErrorKind::Syntax,
                "invalid name for build stage",
            ),
            ("FROM a AS b@c", 1, ErrorKind::Syntax, "invalid name"),
            (
                "# escape=`\n# escape=`\nFROM a",
                2,
                ErrorKind::Directive,
                "only one",
            ),
            (
                "# escape=ab\nFROM a",
                1,
                ErrorKind::Directive,
                "invalid escape",
            ),
            ("FROM a\nENV\n", 2, ErrorKind::Syntax, "ENV requires"),
        ];
        for (src, line, kind, msg) in cases {
            let e = parse("path/Dockerfile", src.as_bytes()).unwrap_err();
            assert_eq!((e.line, e.kind), (*line, *kind), "{src:?}: {e}");
            assert!(e.message.contains(msg), "{src:?}: {e}");
            assert!(e
                .to_string()
                .starts_with(&format!("path/Dockerfile:{line}:")));
        }
    }
}
