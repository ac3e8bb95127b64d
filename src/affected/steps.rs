//! A Dockerfile as BuildKit's steps: what each one is numbered
//! (`[stage i/n]`), what its cache key depends on, and which context paths
//! it reads.
//!
//! BuildKit (dockerfile2llb) numbers, per stage, the `FROM` of an image
//! (not `scratch`, not another stage) and each `COPY`, `ADD`, `RUN` and
//! `WORKDIR`; other instructions only change the image config or the
//! variables later steps see. The stage name prefixes the number only when
//! the Dockerfile has more than one stage (`stage-N` for an unnamed one).
//! `ONBUILD` triggers of a parent stage run first in the child and are
//! numbered there, but left out of the total (`[stage-2 2/1]` on Docker
//! 20.10's BuildKit).

use std::collections::BTreeMap;

use crate::plan::dockerfile::mount::Mount;
use crate::plan::dockerfile::{ContextAnalysis, ContextUse, Dockerfile, Instruction, PlanOptions};

/// What a step's cache key depends on, in parts, so that a difference can
/// be named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    /// The instruction as written (the base image for `FROM`).
    pub text: String,
    /// The `ARG`/`ENV`/`USER`/`SHELL` lines above it in the stage, when the
    /// step can see them (a `RUN` always; others when they expand a `$`).
    pub scope: String,
    /// Effective build-arg values in that scope.
    pub args: BTreeMap<String, String>,
    pub platform: String,
}

/// One numbered step.
#[derive(Debug, Clone)]
pub struct Step {
    /// Position among the stage's steps (0-based; triggers first).
    pub pos: usize,
    /// BuildKit's label: `3/7` or `runtime 3/7`.
    pub label: String,
    /// 1-based line of the instruction.
    pub line: usize,
    /// The instruction, on one line, shortened.
    pub text: String,
    pub key: Key,
    /// Context patterns it reads (`COPY`/`ADD` sources, bind mounts).
    pub reads: Vec<String>,
    /// It may read any file of the context.
    pub reads_whole: bool,
    /// Stages whose result it copies or mounts.
    pub from_stages: Vec<usize>,
    pub is_from: bool,
    /// A `COPY`/`ADD` without `--from` or a `RUN` with a bind mount: it
    /// reads the context even when its paths cannot be told.
    pub may_read_context: bool,
}

/// One stage.
#[derive(Debug, Clone)]
pub struct Stage {
    pub index: usize,
    /// The name a stage is matched by across revisions.
    pub name: Option<String>,
    pub parent: Option<usize>,
    pub steps: Vec<Step>,
    /// Instructions that only set the image config (`LABEL`, `CMD`, ...).
    pub config: String,
    /// The `ARG`/`ENV`/`USER`/`SHELL` lines in effect at its end, its
    /// parent's included: what a child stage's steps and the image see.
    pub scope: String,
}

/// A Dockerfile's reachable stages as steps.
#[derive(Debug, Clone)]
pub struct Model {
    /// Every stage; only `reachable` ones are built.
    pub stages: Vec<Stage>,
    pub reachable: Vec<usize>,
    pub target: usize,
}

/// Instructions BuildKit numbers.
fn is_step(keyword: &str) -> bool {
    matches!(keyword, "COPY" | "ADD" | "RUN" | "WORKDIR")
}

/// Instructions that change what later steps see.
fn is_scope(keyword: &str) -> bool {
    matches!(keyword, "ARG" | "ENV" | "USER" | "SHELL")
}

/// What BuildKit sees of an instruction: not its comments, line breaks
/// or position, but its words (a shell-form command as one string, with
/// its spacing) and heredoc bodies.
fn key_text(ins: &Instruction) -> String {
    let heredocs: Vec<(&str, &str, bool, bool)> = ins
        .heredocs
        .iter()
        .map(|h| (h.name.as_str(), h.content.as_str(), h.expand, h.chomp))
        .collect();
    let flags: Vec<(&str, Option<&str>)> = ins
        .flags
        .iter()
        .map(|f| (f.name.as_str(), f.value.as_deref()))
        .collect();
    format!(
        "{} {flags:?} {:?} {} {heredocs:?}",
        ins.keyword, ins.args, ins.json
    )
}

/// One-line, bounded summary of an instruction for messages.
pub fn summary(ins: &Instruction) -> String {
    let one: String = ins
        .original
        .split('\n')
        .map(|l| l.trim().trim_end_matches('\\').trim())
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let one = one.trim().to_string();
    if one.chars().count() > 80 {
        let cut: String = one.chars().take(77).collect();
        format!("{cut}...")
    } else {
        one
    }
}

impl Model {
    /// Builds the model; `follow` expands a context pattern (symlinks along
    /// it add their targets).
    pub fn new(
        df: &Dockerfile,
        analysis: &ContextAnalysis,
        opts: &PlanOptions,
        follow: &dyn Fn(&str) -> Vec<String>,
    ) -> Model {
        let platform = opts.platform.clone().unwrap_or_default();
        let multi = df.stages.len() > 1;
        let mut reads_by_line: BTreeMap<usize, Vec<String>> = BTreeMap::new();
        for u in &analysis.paths {
            let e = reads_by_line.entry(u.line).or_default();
            for p in follow(&u.pattern) {
                if !e.contains(&p) {
                    e.push(p);
                }
            }
        }
        let whole_lines: Vec<usize> = match &analysis.context {
            ContextUse::Paths(_) => Vec::new(),
            ContextUse::Whole(reasons) => reasons.iter().filter_map(|r| r.line).collect(),
        };
        let global_default = |name: &str| -> Option<String> {
            opts.build_args.get(name).cloned().or_else(|| {
                df.global_args
                    .iter()
                    .rev()
                    .find(|a| a.name == name)
                    .and_then(|a| a.default.clone())
                    // A default that expands other global ARGs changes
                    // with them: count every build arg in it.
                    .map(|d| {
                        if d.contains('$') {
                            format!("{d} {:?}", opts.build_args)
                        } else {
                            d
                        }
                    })
            })
        };
        let mut stages = Vec::with_capacity(df.stages.len());
        for st in &df.stages {
            let parent = analysis.stage_parents.get(st.index).copied().flatten();
            let deps = analysis
                .stage_deps
                .get(st.index)
                .cloned()
                .unwrap_or_default();
            // The base image: expanded with the build args for a stage that
            // is built; for one that is not (it may be at the other
            // revision) or not analysed (a custom frontend), with the
            // global ARG defaults.
            let external: Option<String> = analysis
                .external_bases
                .iter()
                .find(|b| b.stage == st.index)
                .map(|b| b.image.clone())
                .or_else(|| {
                    let lower = st.base.to_ascii_lowercase();
                    let is_stage = df
                        .stages
                        .iter()
                        .take(st.index)
                        .any(|s| s.name.as_deref() == Some(lower.as_str()));
                    (parent.is_none() && lower != "scratch" && !is_stage).then(|| st.base.clone())
                });
            let counted = usize::from(external.is_some())
                + st.instructions
                    .iter()
                    .filter(|i| is_step(&i.keyword))
                    .count();
            // BuildKit pads the number to the width of the total.
            let width = counted.max(1).to_string().len();
            let label = |n: usize| -> String {
                let n = format!("{n:>width$}/{counted}");
                if multi {
                    let name = st
                        .name
                        .clone()
                        .unwrap_or_else(|| format!("stage-{}", st.index));
                    format!("{name} {n}")
                } else {
                    n
                }
            };
            let mut steps: Vec<Step> = Vec::new();
            let mut config = String::new();
            // ENV, USER and SHELL carry over from a parent stage (its ARGs
            // do not, but counting them only errs towards rebuilding).
            let mut scope = parent
                .and_then(|p| stages.get(p))
                .map(|p: &Stage| p.scope.clone())
                .unwrap_or_default();
            let mut args: BTreeMap<String, String> = BTreeMap::new();
            let triggers: Vec<&Instruction> = parent
                .and_then(|p| df.stages.get(p))
                .map(|p| {
                    p.instructions
                        .iter()
                        .filter_map(|i| i.onbuild.as_deref())
                        .collect()
                })
                .unwrap_or_default();
            let mut n = 0;
            if let Some(image) = &external {
                n += 1;
                steps.push(Step {
                    pos: 0,
                    label: label(n),
                    line: st.line,
                    text: summary(&st.from),
                    key: Key {
                        text: format!(
                            "FROM {} {}",
                            st.platform.as_deref().unwrap_or_default(),
                            image
                        ),
                        scope: String::new(),
                        args: BTreeMap::new(),
                        platform: platform.clone(),
                    },
                    reads: Vec::new(),
                    reads_whole: false,
                    from_stages: Vec::new(),
                    is_from: true,
                    may_read_context: false,
                });
            }
            let n_triggers = triggers.len();
            for (i, ins) in triggers
                .into_iter()
                .chain(st.instructions.iter())
                .enumerate()
            {
                let kw = ins.keyword.as_str();
                if is_scope(kw) {
                    scope.push_str(&key_text(ins));
                    scope.push('\n');
                    if kw == "ARG" {
                        for w in &ins.args {
                            let (name, default) = match w.split_once('=') {
                                Some((n, d)) => (n, Some(d.to_string())),
                                None => (w.as_str(), None),
                            };
                            let value = opts
                                .build_args
                                .get(name)
                                .cloned()
                                .or(default)
                                .or_else(|| global_default(name))
                                .unwrap_or_default();
                            args.insert(name.to_string(), value);
                        }
                    }
                    continue;
                }
                if !is_step(kw) {
                    if kw != "ONBUILD" {
                        config.push_str(&key_text(ins));
                        config.push('\n');
                    }
                    continue;
                }
                n += 1;
                let sees_scope = kw == "RUN" || kw == "WORKDIR" || key_text(ins).contains('$');
                let mut from_stages = Vec::new();
                // A mount that is not CSV reads anything (BuildKit refuses
                // it; until then the prediction stays on the safe side).
                let mounts: Vec<Mount> = ins
                    .flag_values("mount")
                    .map(|m| {
                        Mount::parse(m).unwrap_or_else(|_| Mount {
                            kind: "bind".into(),
                            from: None,
                            source: None,
                        })
                    })
                    .collect();
                let froms: Vec<&str> = match kw {
                    "COPY" | "ADD" => ins.flag("from").flatten().into_iter().collect(),
                    _ => mounts.iter().filter_map(|m| m.from.as_deref()).collect(),
                };
                for f in froms {
                    match resolve_stage(df, f) {
                        Some(s) => from_stages.push(s),
                        // A reference through a variable: any stage this
                        // one needs.
                        None if f.contains('$') => {
                            from_stages.extend(deps.iter().filter(|d| Some(**d) != parent))
                        }
                        None => {}
                    }
                }
                let reads = reads_by_line.get(&ins.line).cloned().unwrap_or_default();
                let reads_whole = whole_lines.contains(&ins.line);
                steps.push(Step {
                    pos: steps.len(),
                    label: label(n),
                    line: ins.line,
                    // BuildKit shows a trigger without its ONBUILD.
                    text: if i < n_triggers {
                        trigger_text(&summary(ins))
                    } else {
                        summary(ins)
                    },
                    key: Key {
                        text: key_text(ins),
                        scope: if sees_scope {
                            scope.clone()
                        } else {
                            String::new()
                        },
                        args: if sees_scope {
                            args.clone()
                        } else {
                            BTreeMap::new()
                        },
                        platform: platform.clone(),
                    },
                    reads,
                    reads_whole,
                    may_read_context: match kw {
                        "COPY" | "ADD" => ins.flag("from").is_none(),
                        "RUN" => mounts.iter().any(Mount::reads_context),
                        _ => false,
                    },
                    from_stages,
                    is_from: false,
                });
            }
            stages.push(Stage {
                index: st.index,
                name: st.name.clone(),
                parent,
                steps,
                config,
                scope,
            });
        }
        let mut model = Model {
            stages,
            reachable: analysis.reachable_stages.clone(),
            target: analysis.target_stage,
        };
        // Reasons without a step of their own (a custom frontend, an
        // unknown stage in FROM): every step that reads the context may
        // read all of it.
        let unplaced = match &analysis.context {
            ContextUse::Whole(reasons) => reasons.iter().any(|r| {
                !r.line.is_some_and(|l| {
                    model
                        .stages
                        .iter()
                        .any(|s| s.steps.iter().any(|st| st.line == l && !st.is_from))
                })
            }),
            ContextUse::Paths(_) => false,
        };
        if unplaced {
            model.mark_context_readers_whole();
        }
        model
    }

    /// Conservatively: every step that reads the context reads all of it;
    /// with none, the target's first step.
    pub fn mark_context_readers_whole(&mut self) {
        let mut any = false;
        for &s in &self.reachable {
            if let Some(stage) = self.stages.get_mut(s) {
                for st in &mut stage.steps {
                    if !st.reads.is_empty() || st.reads_whole || st.may_read_context {
                        st.reads_whole = true;
                        any = true;
                    }
                }
            }
        }
        if !any {
            if let Some(st) = self
                .stages
                .get_mut(self.target)
                .and_then(|s| s.steps.iter_mut().find(|s| !s.is_from))
            {
                st.reads_whole = true;
            }
        }
    }

    /// The stage `other` (from another revision) matches: same name, or
    /// same index when both are unnamed.
    pub fn matching<'a>(&self, other: &'a Model, stage: &Stage) -> Option<&'a Stage> {
        match &stage.name {
            Some(n) => other.stages.iter().find(|s| s.name.as_ref() == Some(n)),
            None => other.stages.get(stage.index).filter(|s| s.name.is_none()),
        }
    }
}

fn trigger_text(s: &str) -> String {
    match s.split_once(char::is_whitespace) {
        Some((first, rest)) if first.eq_ignore_ascii_case("ONBUILD") => {
            rest.trim_start().to_string()
        }
        _ => s.to_string(),
    }
}

/// A `--from` value naming a stage of this Dockerfile (index or name).
fn resolve_stage(df: &Dockerfile, v: &str) -> Option<usize> {
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        return v.parse().ok().filter(|i| *i < df.stages.len());
    }
    let lower = v.to_ascii_lowercase();
    df.stages
        .iter()
        .find(|s| s.name.as_deref() == Some(lower.as_str()))
        .map(|s| s.index)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::dockerfile::{analyze, parse};

    fn labels(src: &str, target: Option<&str>) -> Vec<(String, String)> {
        let df = parse("Dockerfile", src.as_bytes()).unwrap();
        let opts = PlanOptions {
            target: target.map(str::to_string),
            ..PlanOptions::default()
        };
        let a = analyze(&df, &opts).unwrap();
        let m = Model::new(&df, &a, &opts, &|p| vec![p.to_string()]);
        m.reachable
            .iter()
            .flat_map(|&s| m.stages[s].steps.iter())
            .map(|s| (s.label.clone(), s.text.clone()))
            .collect()
    }

    /// Numbered as Docker 20.10's BuildKit prints them (checked by hand
    /// against `docker build --progress=plain`).
    #[test]
    fn buildkit_numbering() {
        let l = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        assert_eq!(
            labels(
                "FROM alpine AS named\nENV A=1\nWORKDIR /w\nCOPY a /a\nCMD x\n",
                None
            ),
            l(&[
                ("1/3", "FROM alpine AS named"),
                ("2/3", "WORKDIR /w"),
                ("3/3", "COPY a /a")
            ])
        );
        assert_eq!(
            labels("FROM scratch\nCOPY a /a\n", None),
            l(&[("1/1", "COPY a /a")])
        );
        // Stage names prefix when there are several; the target's
        // unreachable stages are not built; ONBUILD triggers are numbered
        // in the child but left out of its total.
        let src = "FROM alpine AS base\nONBUILD COPY r /r\nONBUILD ENV Q=1\nONBUILD WORKDIR /x\nFROM alpine AS unused\nCOPY u /u\nFROM base\nCOPY a /a\n";
        assert_eq!(
            labels(src, None),
            l(&[
                ("base 1/1", "FROM alpine AS base"),
                ("stage-2 1/1", "COPY r /r"),
                ("stage-2 2/1", "WORKDIR /x"),
                ("stage-2 3/1", "COPY a /a"),
            ])
        );
        // Widths follow the total.
        let many: String = std::iter::once("FROM scratch\n".to_string())
            .chain((0..10).map(|i| format!("COPY f{i} /f{i}\n")))
            .collect();
        let got = labels(&many, None);
        assert_eq!(got[0].0, " 1/10");
        assert_eq!(got[9].0, "10/10");
    }

    /// `RUN --mount` fields are CSV as BuildKit reads them (after the
    /// flag's own quotes are removed, so the CSV quotes are inside single
    /// quotes): a quoted `"from=builder"` mounts the stage (a rebuilt
    /// `builder` busts the step), and a `from=` inside a quoted source is
    /// part of the path (the step reads the context, not the stage).
    #[test]
    fn quoted_mount_fields_are_read_as_buildkit_reads_them() {
        let run_step = |src: &str| -> (Vec<usize>, bool) {
            let df = parse("Dockerfile", src.as_bytes()).unwrap();
            let opts = PlanOptions::default();
            let a = analyze(&df, &opts).unwrap();
            let m = Model::new(&df, &a, &opts, &|p| vec![p.to_string()]);
            let step = m
                .stages
                .iter()
                .flat_map(|s| &s.steps)
                .find(|st| st.text.starts_with("RUN"))
                .expect("a RUN step");
            (step.from_stages.clone(), step.may_read_context)
        };
        assert_eq!(
            run_step("FROM a AS builder\nCOPY x /x\nFROM b\nRUN --mount='type=bind,\"from=builder\",source=/x,target=/in' cat /in\n"),
            (vec![0], false)
        );
        assert_eq!(
            run_step("FROM a AS builder\nCOPY x /x\nFROM b\nRUN --mount='type=bind,\"source=a,from=builder\",target=/in' cat /in\n"),
            (vec![], true)
        );
    }
}
