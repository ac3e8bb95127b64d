//! Which Dockerfile instruction made each history entry of an image (and
//! so each layer), using the project's Dockerfile parser.
//!
//! Both builders write one history entry per instruction of the stages
//! the target is built on (not `FROM`), after the base image's own
//! entries; the classic builder adds one `LABEL` entry per build label
//! at the end. Their `created_by` texts differ:
//!
//! | instruction | BuildKit | classic builder |
//! | --- | --- | --- |
//! | `RUN cmd` | `RUN [\|N K=V ...] /bin/sh -c cmd # buildkit` | `[\|N K=V ...] /bin/sh -c cmd` |
//! | `COPY --from=x a /b` | `COPY a /b # buildkit` (flags dropped) | `/bin/sh -c #(nop) COPY file:<sha> in /b ` |
//! | `ENV A=b` | `ENV A=b` | `/bin/sh -c #(nop)  ENV A=b` |
//!
//! The entries are aligned with the instructions from the end (the base
//! image's entries are the unmatched prefix), allowing only entries and
//! instructions of the same kind to pair, and each pair says how sure it
//! is ([`Method`]).

use super::image::History;
use crate::plan::dockerfile::{Dockerfile, Instruction, PlanOptions};

/// How a history entry was matched to its instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// The entry's text carries the instruction's own words.
    Exact,
    /// The classic builder's `COPY`/`ADD`: same kind and destination (the
    /// sources are only a content hash in the history).
    Destination,
    /// Same kind, in the same order; the texts differ (the builder
    /// rewrites `EXPOSE`, `HEALTHCHECK`...).
    Position,
    /// From what `reggie-build image` recorded in the image's labels when
    /// it built it, the Dockerfile unchanged since.
    Recorded,
    /// Before the Dockerfile's first instruction: the base image's.
    BaseImage,
    /// The classic builder's entry for a build label (`--label`).
    BuildLabel,
    /// No instruction matches (no Dockerfile given, or it is not the one
    /// the image was built from).
    Unmatched,
}

/// What made one history entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The base image of the target's first stage.
    Base {
        /// Its name (`python:3.12-slim`), or `None` for `scratch` or when
        /// unknown.
        image: Option<String>,
        /// The `FROM` line.
        line: Option<usize>,
    },
    /// A Dockerfile instruction.
    Instruction {
        /// The stage's index.
        stage: usize,
        /// The stage's name, or `stage-N`.
        stage_name: String,
        /// 1-based first line.
        line: usize,
        /// 1-based last line.
        end_line: usize,
        /// The instruction on one line, shortened.
        text: String,
        /// `RUN`, `COPY`...
        keyword: String,
        /// Whether it is a `COPY`/`ADD` from the build context (not
        /// `--from`).
        from_context: bool,
    },
    /// Not known.
    Unknown,
}

/// The attribution of every history entry.
#[derive(Debug, Clone)]
pub struct Attribution {
    /// Per history entry.
    pub entries: Vec<(Origin, Method)>,
    /// The stage the image is (its target), when a Dockerfile was given.
    pub target: Option<usize>,
}

/// One instruction that adds a history entry.
struct Expected<'a> {
    stage: usize,
    ins: &'a Instruction,
}

/// The kind and the words of a history entry, builder-independent.
#[derive(Debug, PartialEq, Eq)]
struct Parsed<'a> {
    keyword: String,
    body: &'a str,
    classic: bool,
}

/// Reads `created_by`: the keyword, and what follows it.
fn parse_created_by(created_by: &str) -> Parsed<'_> {
    let s = created_by.trim();
    if let Some(rest) = s.strip_prefix("/bin/sh -c #(nop)") {
        let rest = rest.trim_start();
        let (kw, body) = rest.split_once(' ').unwrap_or((rest, ""));
        return Parsed {
            keyword: kw.to_ascii_uppercase(),
            body: body.trim(),
            classic: true,
        };
    }
    if let Some(rest) = s.strip_suffix("# buildkit") {
        let rest = rest.trim_end();
        let (kw, body) = rest.split_once(' ').unwrap_or((rest, ""));
        return Parsed {
            keyword: kw.to_ascii_uppercase(),
            body,
            classic: false,
        };
    }
    let (kw, body) = s.split_once(' ').unwrap_or((s, ""));
    let upper = kw.to_ascii_uppercase();
    let known = [
        "RUN",
        "COPY",
        "ADD",
        "WORKDIR",
        "ENV",
        "ARG",
        "LABEL",
        "USER",
        "EXPOSE",
        "CMD",
        "ENTRYPOINT",
        "VOLUME",
        "SHELL",
        "STOPSIGNAL",
        "HEALTHCHECK",
        "ONBUILD",
        "MAINTAINER",
    ];
    if known.contains(&upper.as_str()) && kw == upper {
        return Parsed {
            keyword: upper,
            body,
            classic: false,
        };
    }
    // The classic builder's RUN: `/bin/sh -c cmd` or `|1 A=b /bin/sh -c cmd`.
    Parsed {
        keyword: "RUN".into(),
        body: s,
        classic: true,
    }
}

/// The command a `RUN` runs, as the history shows it (lines joined as
/// the parser joins them; an exec form's words joined by spaces).
fn run_command(ins: &Instruction) -> String {
    ins.args.join(" ")
}

/// How well an entry and an instruction match; `None` when they cannot
/// pair.
fn score(entry: &Parsed<'_>, ins: &Instruction) -> Option<(i32, Method)> {
    if entry.keyword != ins.keyword {
        return None;
    }
    let words = ins.args.join(" ");
    let exact = match ins.keyword.as_str() {
        "RUN" => {
            let cmd = run_command(ins);
            !cmd.is_empty() && entry.body.ends_with(cmd.as_str())
        }
        "COPY" | "ADD" if entry.classic => {
            // `file:<sha> in /dest ` (sources hashed): the destination.
            let dest = ins.args.last().map(String::as_str).unwrap_or_default();
            if let Some((_, d)) = entry.body.rsplit_once(" in ") {
                if d.trim() == dest {
                    return Some((3, Method::Destination));
                }
            }
            false
        }
        _ => entry.body.trim() == words.trim(),
    };
    Some(if exact {
        (4, Method::Exact)
    } else {
        (1, Method::Position)
    })
}

/// The stages the target is built on, first to last.
fn chain(df: &Dockerfile, parents: &[Option<usize>], target: usize) -> Vec<usize> {
    let mut out = vec![target];
    let mut cur = target;
    while let Some(Some(p)) = parents.get(cur) {
        if out.contains(p) || out.len() > df.stages.len() {
            break;
        }
        out.push(*p);
        cur = *p;
    }
    out.reverse();
    out
}

/// Per history entry, the instruction paired with it and how.
type Pairs = Vec<Option<(usize, Method)>>;

/// The most instructions or history entries aligned (beyond, the
/// alignment would cost more memory than the image's index).
const MAX_ALIGN: usize = 1024;

/// Aligns history entries with instructions from the end. Returns the
/// score and, per history entry, the instruction and method paired.
fn align(history: &[Parsed<'_>], expected: &[Expected<'_>]) -> (i32, Vec<Option<(usize, Method)>>) {
    let n = history.len();
    let m = expected.len();
    let skip_h = |i: usize, j: usize| -> i32 {
        // After every instruction is placed, what is left is the base
        // image's: free. A trailing LABEL (a build label) costs little.
        if j == m || (j == 0 && history[n - 1 - i].keyword == "LABEL") {
            0
        } else {
            -2
        }
    };
    // dp[i][j]: best score with the last i entries and last j instructions.
    let w = m + 1;
    let mut dp = vec![i32::MIN / 2; (n + 1) * w];
    dp[0] = 0;
    for i in 0..=n {
        for j in 0..=m {
            let cur = dp[i * w + j];
            if cur <= i32::MIN / 4 {
                continue;
            }
            if i < n {
                let v = cur + skip_h(i, j);
                let c = &mut dp[(i + 1) * w + j];
                *c = (*c).max(v);
            }
            if j < m {
                let v = cur - 3;
                let c = &mut dp[i * w + j + 1];
                *c = (*c).max(v);
            }
            if i < n && j < m {
                if let Some((s, _)) = score(&history[n - 1 - i], expected[m - 1 - j].ins) {
                    let c = &mut dp[(i + 1) * w + j + 1];
                    *c = (*c).max(cur + s);
                }
            }
        }
    }
    let best = dp[n * w + m];
    // Trace back.
    let mut out = vec![None; n];
    let (mut i, mut j) = (n, m);
    while i > 0 || j > 0 {
        let cur = dp[i * w + j];
        if i > 0 && j > 0 {
            if let Some((s, method)) = score(&history[n - i], expected[m - j].ins) {
                if dp[(i - 1) * w + j - 1] + s == cur {
                    out[n - i] = Some((m - j, method));
                    i -= 1;
                    j -= 1;
                    continue;
                }
            }
        }
        if i > 0 && dp[(i - 1) * w + j] + skip_h(i - 1, j) == cur {
            i -= 1;
            continue;
        }
        if j > 0 && dp[i * w + j - 1] - 3 == cur {
            j -= 1;
            continue;
        }
        break;
    }
    (best, out)
}

/// One-line, bounded text of an instruction.
fn summary(ins: &Instruction) -> String {
    crate::affected::steps::summary(ins)
}

/// Attributes `history` to the instructions of `df` (when given) for the
/// stage `target` (when known; otherwise the stage whose instructions
/// match best).
pub fn attribute(
    history: &[History],
    df: Option<&Dockerfile>,
    options: &PlanOptions,
    target: Option<usize>,
    recorded: bool,
) -> Attribution {
    let unmatched = || Attribution {
        entries: vec![(Origin::Unknown, Method::Unmatched); history.len()],
        target: None,
    };
    let Some(df) = df else { return unmatched() };
    if df.stages.is_empty() {
        return unmatched();
    }
    let parents = match crate::plan::dockerfile::analyze(df, options) {
        Ok(a) => a.stage_parents,
        Err(_) => df
            .stages
            .iter()
            .map(|s| {
                let base = s.base.to_ascii_lowercase();
                df.stages[..s.index]
                    .iter()
                    .rev()
                    .find(|p| p.name.as_deref() == Some(base.as_str()))
                    .map(|p| p.index)
            })
            .collect(),
    };
    let start = history.len().saturating_sub(MAX_ALIGN);
    let parsed: Vec<Parsed<'_>> = history[start..]
        .iter()
        .map(|h| parse_created_by(&h.created_by))
        .collect();
    let candidates: Vec<usize> = match target {
        Some(t) if t < df.stages.len() => vec![t],
        _ => (0..df.stages.len()).collect(),
    };
    let mut best: Option<(i32, usize, Pairs)> = None;
    for t in candidates {
        let stages = chain(df, &parents, t);
        let expected: Vec<Expected<'_>> = stages
            .iter()
            .flat_map(|&s| {
                df.stages[s]
                    .instructions
                    .iter()
                    .map(move |ins| Expected { stage: s, ins })
            })
            .take(MAX_ALIGN)
            .collect();
        let (score, pairs) = align(&parsed, &expected);
        // Later stages win ties (the default target is the last).
        if best.as_ref().is_none_or(|b| score >= b.0) {
            best = Some((score, t, pairs));
        }
    }
    let Some((_, t, pairs)) = best else {
        return unmatched();
    };
    let stages = chain(df, &parents, t);
    let expected: Vec<Expected<'_>> = stages
        .iter()
        .flat_map(|&s| {
            df.stages[s]
                .instructions
                .iter()
                .map(move |ins| Expected { stage: s, ins })
        })
        .take(MAX_ALIGN)
        .collect();
    let root = &df.stages[stages[0]];
    let base_image = (!root.base.eq_ignore_ascii_case("scratch")).then(|| root.base.clone());
    let first_matched = pairs.iter().position(Option::is_some);
    let multi = df.stages.len() > 1;
    let mut entries = Vec::with_capacity(history.len());
    for i in 0..history.len() {
        if i < start {
            entries.push((
                Origin::Base {
                    image: base_image.clone(),
                    line: Some(root.line),
                },
                Method::BaseImage,
            ));
            continue;
        }
        let k = i - start;
        let e = match pairs[k] {
            Some((j, method)) => {
                let ex = &expected[j];
                let st = &df.stages[ex.stage];
                let method = if recorded { Method::Recorded } else { method };
                (
                    Origin::Instruction {
                        stage: ex.stage,
                        stage_name: match (&st.name, multi) {
                            (Some(n), _) => n.clone(),
                            (None, _) => format!("stage-{}", ex.stage),
                        },
                        line: ex.ins.line,
                        end_line: ex.ins.end_line,
                        text: summary(ex.ins),
                        keyword: ex.ins.keyword.clone(),
                        from_context: matches!(ex.ins.keyword.as_str(), "COPY" | "ADD")
                            && ex.ins.flag("from").is_none(),
                    },
                    method,
                )
            }
            None if first_matched.is_none_or(|f| k < f) => (
                Origin::Base {
                    image: base_image.clone(),
                    line: Some(root.line),
                },
                Method::BaseImage,
            ),
            None if parsed[k].keyword == "LABEL" && pairs[k..].iter().all(Option::is_none) => {
                (Origin::Unknown, Method::BuildLabel)
            }
            None => (Origin::Unknown, Method::Unmatched),
        };
        entries.push(e);
    }
    Attribution {
        entries,
        target: Some(t),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(created_by: &str, empty: bool) -> History {
        History {
            created_by: created_by.into(),
            comment: String::new(),
            empty_layer: empty,
        }
    }

    const DOCKERFILE: &str = "FROM reggie-busybox:latest AS build\nWORKDIR /src\nCOPY big.bin /src/big.bin\nRUN echo hello > /src/out.txt\n\nFROM reggie-busybox:latest\nARG X=1\nENV A=b\nCOPY --from=build /src/out.txt /app/out.txt\nCOPY data.bin /app/data.bin\nRUN chmod 600 /app/data.bin\nLABEL a=b\nEXPOSE 80\n";

    fn lines(a: &Attribution) -> Vec<(Option<usize>, Method)> {
        a.entries
            .iter()
            .map(|(o, m)| match o {
                Origin::Instruction { line, .. } => (Some(*line), *m),
                Origin::Base { .. } => (None, *m),
                Origin::Unknown => (None, *m),
            })
            .collect()
    }

    /// The histories both builders wrote for DOCKERFILE (docker 20.10).
    #[test]
    fn buildkit_and_classic_histories_map_to_lines() {
        let df = crate::plan::dockerfile::parse("Dockerfile", DOCKERFILE.as_bytes()).unwrap();
        let buildkit = [
            h("", false),
            h("ARG X=1", true),
            h("ENV A=b", true),
            h("COPY /src/out.txt /app/out.txt # buildkit", false),
            h("COPY data.bin /app/data.bin # buildkit", false),
            h(
                "RUN |1 X=1 /bin/sh -c chmod 600 /app/data.bin # buildkit",
                false,
            ),
            h("LABEL a=b", true),
            h("EXPOSE map[80/tcp:{}]", true),
        ];
        let classic = [
            h("", false),
            h("/bin/sh -c #(nop)  ARG X=1", true),
            h("/bin/sh -c #(nop)  ENV A=b", true),
            h("/bin/sh -c #(nop) COPY file:ae68 in /app/out.txt ", false),
            h("/bin/sh -c #(nop) COPY file:eb4e in /app/data.bin ", false),
            h("|1 X=1 /bin/sh -c chmod 600 /app/data.bin", false),
            h("/bin/sh -c #(nop)  LABEL a=b", true),
            h("/bin/sh -c #(nop)  EXPOSE 80", true),
            h(
                "/bin/sh -c #(nop)  LABEL dev.reggie-build.build-key=sha256:x",
                true,
            ),
        ];
        let opts = PlanOptions::default();
        let a = attribute(&buildkit, Some(&df), &opts, None, false);
        use Method::*;
        assert_eq!(
            lines(&a),
            vec![
                (None, BaseImage),
                (Some(7), Exact),
                (Some(8), Exact),
                (Some(9), Exact),
                (Some(10), Exact),
                (Some(11), Exact),
                (Some(12), Exact),
                (Some(13), Position),
            ]
        );
        assert_eq!(a.target, Some(1));
        let a = attribute(&classic, Some(&df), &opts, None, false);
        assert_eq!(
            lines(&a),
            vec![
                (None, BaseImage),
                (Some(7), Exact),
                (Some(8), Exact),
                (Some(9), Destination),
                (Some(10), Destination),
                (Some(11), Exact),
                (Some(12), Exact),
                (Some(13), Exact),
                (None, BuildLabel),
            ]
        );
        match &a.entries[3].0 {
            Origin::Instruction {
                text, from_context, ..
            } => {
                assert_eq!(text, "COPY --from=build /src/out.txt /app/out.txt");
                assert!(!from_context);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn without_a_dockerfile_nothing_is_matched() {
        let a = attribute(
            &[h("RUN x # buildkit", false)],
            None,
            &PlanOptions::default(),
            None,
            false,
        );
        assert_eq!(a.entries[0].1, Method::Unmatched);
    }
}
