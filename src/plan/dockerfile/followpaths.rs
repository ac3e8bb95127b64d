//! Which files of the build context a build may read (BuildKit's
//! "followpaths"), with BuildKit's `ARG`/`ENV` scoping rules.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::rc::Rc;

use super::instructions::parse_heredoc_word;
use super::mount::Mount;
use super::pmap::PMap;
use super::shell::{expand_word_within, Budget, ExpandError, Expansion};
use super::{locate, Dockerfile, DockerfileError, ErrorKind, Instruction};

/// Options of the build being planned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanOptions {
    /// `--target` stage name; `None` builds the last stage.
    pub target: Option<String>,
    /// `--build-arg` values. They override `ARG` defaults, but only for ARGs
    /// that are declared (globally for `FROM`, or in the stage).
    /// `BUILDKIT_SYNTAX` overrides the `# syntax=` directive.
    pub build_args: BTreeMap<String, String>,
    /// Target platform (`os/arch[/variant]`) for `TARGETPLATFORM` & co;
    /// default `linux/amd64`. The build platform is taken to be the same.
    pub platform: Option<String>,
    /// The classic builder's stage order: it builds every stage up to the
    /// target in file order, needed or not, so all of them read the
    /// context (BuildKit builds only the stages the target depends on).
    pub every_stage_to_target: bool,
}

/// A context path the build can read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsedPath {
    /// Context-root-relative, `/`-separated, cleaned path; `..` is clamped at
    /// the root. May contain Go `filepath.Match` wildcards (`*`, `?`, `[..]`,
    /// `\`).
    pub pattern: String,
    /// 1-based line of the instruction it came from.
    pub line: usize,
    /// The instruction: `COPY`, `ADD`, `RUN --mount`, or `ONBUILD COPY` /
    /// `ONBUILD ADD` / `ONBUILD RUN --mount` for triggers of a parent stage.
    pub instruction: String,
    /// True when [`UsedPath::pattern`] contains an unescaped `*`, `?` or `[`.
    pub has_wildcard: bool,
}

/// Why the build may read the whole context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WholeReason {
    /// 1-based line responsible, if any.
    pub line: Option<usize>,
    /// Human-readable reason, e.g. "`COPY .` at line 12 reads the whole build context".
    pub message: String,
}

impl fmt::Display for WholeReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// How the build uses its context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextUse {
    /// Paths in the context the build can read, in instruction order
    /// (duplicates of the same pattern from the same line removed).
    Paths(Vec<UsedPath>),
    /// The build may read the whole context, with the reasons.
    Whole(Vec<WholeReason>),
}

/// A reachable stage built on an image outside this Dockerfile. Its ONBUILD
/// triggers (which may `COPY` from the context) cannot be known statically:
/// callers should warn, e.g. "base image X may have ONBUILD triggers".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalBase {
    /// Expanded image reference.
    pub image: String,
    /// Index of the stage.
    pub stage: usize,
    /// 1-based line of its `FROM`.
    pub line: usize,
}

/// Full result of [`analyze`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextAnalysis {
    /// Context usage (what [`context_use`] returns).
    pub context: ContextUse,
    /// Index of the target stage.
    pub target_stage: usize,
    /// Indices of the stages the target needs (including itself), ascending.
    pub reachable_stages: Vec<usize>,
    /// Reachable stages whose base is an external image (not `scratch`).
    pub external_bases: Vec<ExternalBase>,
    /// Every context path the reachable stages name, even when the whole
    /// context is used (which step reads what, for `affected`).
    pub paths: Vec<UsedPath>,
    /// Per stage: the stage its `FROM` names, if any.
    pub stage_parents: Vec<Option<usize>>,
    /// Per stage: the stages it needs (`FROM`, `--from`, `from=`).
    pub stage_deps: Vec<Vec<usize>>,
}

/// Which context paths a build of `opts.target` may read. Shorthand for
/// `analyze(df, opts).map(|a| a.context)`.
pub fn context_use(df: &Dockerfile, opts: &PlanOptions) -> Result<ContextUse, DockerfileError> {
    analyze(df, opts).map(|a| a.context)
}

/// Resolves the stages reachable from the target (through `FROM <stage>`,
/// `COPY --from=<stage|index>`, `RUN --mount=...,from=<stage>`), simulates
/// their `ARG`/`ENV` scope and collects the context paths they read.
///
/// Errors: unknown target (the message lists the available stages),
/// expansion errors (`${X:?msg}`, unbalanced quotes, ...) and invalid stage
/// references in reachable stages.
pub fn analyze(df: &Dockerfile, opts: &PlanOptions) -> Result<ContextAnalysis, DockerfileError> {
    let target_stage = find_target(df, opts)?;
    if let Some(syntax) = custom_frontend(df, opts) {
        let line = df
            .directives
            .lines
            .iter()
            .find(|(k, _)| k == "syntax")
            .map(|(_, l)| *l);
        return Ok(ContextAnalysis {
            context: ContextUse::Whole(vec![WholeReason {
                line,
                message: format!(
                    "custom frontend `# syntax={syntax}` may read any file of the build context"
                ),
            }]),
            target_stage,
            reachable_stages: (0..df.stages.len()).collect(),
            external_bases: Vec::new(),
            paths: Vec::new(),
            stage_parents: vec![None; df.stages.len()],
            stage_deps: vec![Vec::new(); df.stages.len()],
        });
    }
    check_copy_flags(df)?;
    let budget = Cell::new(Budget::default());
    let meta = meta_scope(df, &opts.build_args, opts.platform.as_deref(), &budget)?;
    // Stage names: the first stage of a name for `--from` (as BuildKit
    // finds it), the latest earlier one for `FROM`.
    let mut names = Names::default();
    for st in &df.stages {
        if let Some(n) = &st.name {
            names.first.entry(n.clone()).or_insert(st.index);
        }
    }
    let mut results: Vec<StageResult> = Vec::with_capacity(df.stages.len());
    for (i, st) in df.stages.iter().enumerate() {
        let r = simulate_stage(df, opts, &meta, &results, i, &budget, &names);
        results.push(r);
        if let Some(n) = &st.name {
            names.earlier.insert(n.clone(), i);
        }
    }
    find_cycle(df, &results)?;
    // Reachability.
    let mut seen = BTreeSet::new();
    let mut todo = if opts.every_stage_to_target {
        (0..=target_stage).collect()
    } else {
        vec![target_stage]
    };
    while let Some(s) = todo.pop() {
        if seen.insert(s) {
            if let Some(r) = results.get(s) {
                todo.extend(r.deps.iter().copied());
            }
        }
    }
    let mut uses: Vec<UsedPath> = Vec::new();
    let mut seen_uses: HashSet<(&str, usize)> = HashSet::new();
    let mut whole = Vec::new();
    let mut external_bases = Vec::new();
    for &s in &seen {
        let Some(r) = results.get(s) else { continue };
        if let Some(e) = &r.error {
            return Err(e.clone());
        }
        for u in &r.uses {
            if seen_uses.insert((u.pattern.as_str(), u.line)) {
                uses.push(u.clone());
            }
        }
        whole.extend(r.whole.iter().cloned());
        if let (Some(image), Some(st)) = (&r.external_base, df.stages.get(s)) {
            external_bases.push(ExternalBase {
                image: image.clone(),
                stage: s,
                line: st.line,
            });
        }
    }
    let paths = uses.clone();
    let context = if whole.is_empty() {
        ContextUse::Paths(uses)
    } else {
        ContextUse::Whole(whole)
    };
    Ok(ContextAnalysis {
        context,
        target_stage,
        reachable_stages: seen.into_iter().collect(),
        external_bases,
        paths,
        stage_parents: results.iter().map(|r| r.parent).collect(),
        stage_deps: results
            .iter()
            .map(|r| r.deps.iter().copied().collect())
            .collect(),
    })
}

fn find_target(df: &Dockerfile, opts: &PlanOptions) -> Result<usize, DockerfileError> {
    let Some(target) = &opts.target else {
        return Ok(df.stages.len().saturating_sub(1));
    };
    let lower = target.to_ascii_lowercase();
    if let Some(s) = df
        .stages
        .iter()
        .find(|s| s.name.as_deref() == Some(lower.as_str()))
    {
        return Ok(s.index);
    }
    let names: Vec<&str> = df.stages.iter().filter_map(|s| s.name.as_deref()).collect();
    let message = if names.is_empty() {
        format!("target stage `{target}` could not be found: the Dockerfile has no named stages; name one with `FROM <image> AS {lower}`")
    } else {
        format!(
            "target stage `{target}` could not be found; available stages: {}",
            names.join(", ")
        )
    };
    Err(DockerfileError::new(
        &df.path,
        1,
        1,
        ErrorKind::Target,
        message,
    ))
}

/// The flags BuildKit's Dockerfile frontend knows (up to 1.17, `-labs`
/// included); any other makes both builders fail with "Unknown flag".
const COPY_FLAGS: &[&str] = &["from", "chown", "chmod", "link", "parents", "exclude"];
const ADD_FLAGS: &[&str] = &[
    "chown",
    "chmod",
    "link",
    "checksum",
    "keep-git-dir",
    "exclude",
    "unpack",
];

/// Unknown `COPY`/`ADD` flags in any stage: Docker parses every stage
/// before building, so one in an unused stage fails the build too.
fn check_copy_flags(df: &Dockerfile) -> Result<(), DockerfileError> {
    for ins in df.stages.iter().flat_map(|s| &s.instructions) {
        let known = match ins.keyword.as_str() {
            "COPY" => COPY_FLAGS,
            "ADD" => ADD_FLAGS,
            _ => continue,
        };
        if let Some(f) = ins.flags.iter().find(|f| !known.contains(&f.name.as_str())) {
            let (line, column) = locate(ins, &format!("--{}", f.name));
            return Err(DockerfileError::new(
                &df.path,
                line,
                column,
                ErrorKind::Syntax,
                format!(
                    "unknown flag `--{}` for {}: Docker fails with \"Unknown flag: {}\"; {} takes {}",
                    f.name.escape_debug(),
                    ins.keyword,
                    f.name.escape_debug(),
                    ins.keyword,
                    known
                        .iter()
                        .map(|k| format!("--{k}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// The frontend image when it is not an official `docker/dockerfile` one
/// (`docker/dockerfile-upstream` is its development channel).
fn custom_frontend(df: &Dockerfile, opts: &PlanOptions) -> Option<String> {
    let syntax = opts
        .build_args
        .get("BUILDKIT_SYNTAX")
        .or(df.directives.syntax.as_ref())?;
    let s = syntax.trim();
    let no_digest = s.split('@').next().unwrap_or_default();
    let repo = match no_digest.rfind(':') {
        Some(c) if !no_digest.get(c..).unwrap_or_default().contains('/') => {
            no_digest.get(..c).unwrap_or_default()
        }
        _ => no_digest,
    };
    let repo = ["docker.io/", "index.docker.io/", "registry-1.docker.io/"]
        .iter()
        .find_map(|p| repo.strip_prefix(p))
        .unwrap_or(repo);
    if repo == "docker/dockerfile" || repo == "docker/dockerfile-upstream" {
        None
    } else {
        Some(s.to_string())
    }
}

/// Variables visible to `FROM` lines: builtin platform args plus global ARGs.
#[derive(Debug, Clone, Default)]
pub(super) struct MetaScope {
    vars: HashMap<String, Option<String>>,
    tainted: BTreeSet<String>,
}

impl MetaScope {
    fn get(&self, name: &str) -> Option<Option<String>> {
        self.vars.get(name).cloned()
    }
    fn lookup(&self, name: &str) -> Option<String> {
        self.get(name).flatten()
    }
}

fn builtin_args(platform: Option<&str>) -> Vec<(String, Option<String>)> {
    let p = platform.unwrap_or("linux/amd64");
    let mut parts = p.split('/');
    let os = parts.next().filter(|s| !s.is_empty()).unwrap_or("linux");
    let arch = parts.next().filter(|s| !s.is_empty()).unwrap_or("amd64");
    let variant = parts.next().unwrap_or("");
    let mut out = Vec::new();
    for prefix in ["TARGET", "BUILD"] {
        out.push((format!("{prefix}PLATFORM"), Some(p.to_string())));
        out.push((format!("{prefix}OS"), Some(os.to_string())));
        out.push((format!("{prefix}ARCH"), Some(arch.to_string())));
        out.push((format!("{prefix}VARIANT"), Some(variant.to_string())));
    }
    out.push(("TARGETSTAGE".to_string(), None));
    out
}

/// Builds the global (meta) scope: builtins, then global ARGs in order, each
/// overridden by a build-arg or expanded from its default.
pub(super) fn meta_scope(
    df: &Dockerfile,
    build_args: &BTreeMap<String, String>,
    platform: Option<&str>,
    budget: &Cell<Budget>,
) -> Result<MetaScope, DockerfileError> {
    let mut meta = MetaScope {
        vars: builtin_args(platform).into_iter().collect(),
        tainted: BTreeSet::new(),
    };
    for decl in &df.global_args {
        let (value, taint) = if let Some(v) = build_args.get(&decl.name) {
            (Some(v.clone()), false)
        } else if let Some(d) = &decl.default {
            let e = expand_in(df, d, &|n| meta.lookup(n), budget).map_err(|m| {
                DockerfileError::new(
                    &df.path,
                    decl.line,
                    1,
                    kind_of(&m),
                    format!(
                        "cannot expand the default of ARG {}: {m}",
                        crate::text::excerpt(&decl.name)
                    ),
                )
            })?;
            let taint =
                !e.unset.is_empty() || e.referenced.iter().any(|r| meta.tainted.contains(r));
            (Some(e.value), taint)
        } else {
            (meta.get(&decl.name).flatten(), false)
        };
        if taint {
            meta.tainted.insert(decl.name.clone());
        } else {
            meta.tainted.remove(&decl.name);
        }
        meta.vars.insert(decl.name.clone(), value);
    }
    Ok(meta)
}

/// Expands a `FROM` image name with the meta scope.
pub(super) fn expand_from(
    df: &Dockerfile,
    meta: &MetaScope,
    raw: &str,
    budget: &Cell<Budget>,
) -> Result<Expansion, ExpandError> {
    expand_in(df, raw, &|n| meta.lookup(n), budget)
}

/// Expands one word of `df`, charging the shared budget.
fn expand_in(
    df: &Dockerfile,
    word: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    budget: &Cell<Budget>,
) -> Result<Expansion, ExpandError> {
    let mut b = budget.get();
    let r = expand_word_within(word, df.directives.escape, lookup, &mut b);
    budget.set(b);
    r
}

fn kind_of(e: &ExpandError) -> ErrorKind {
    match e {
        ExpandError::Syntax(_) => ErrorKind::Expansion,
        ExpandError::Limit(_) => ErrorKind::Limit,
    }
}

/// Variables inside a stage: ENV (inherited from a parent stage) wins over ARG.
#[derive(Debug, Clone, Default)]
struct StageScope {
    /// `ENV` values with whether they are computed from unknown values;
    /// persistent, so a child stage shares its parent's.
    env: PMap<(Rc<str>, bool)>,
    args: HashMap<String, Option<String>>,
    arg_tainted: BTreeSet<String>,
}

impl StageScope {
    fn lookup(&self, name: &str) -> Option<String> {
        if let Some((v, _)) = self.env.get(name) {
            return Some(v.to_string());
        }
        self.args.get(name).cloned().flatten()
    }
    fn tainted(&self, name: &str) -> bool {
        match self.env.get(name) {
            Some((_, tainted)) => *tainted,
            None => self.arg_tainted.contains(name),
        }
    }
}

/// A stage's reference to another stage.
#[derive(Debug, Clone)]
struct Edge {
    to: usize,
    line: usize,
    /// `FROM`, `COPY --from`, `RUN --mount from`, ...
    what: String,
}

/// BuildKit's name for a stage in messages: its name or `stage-N`.
fn stage_label(df: &Dockerfile, i: usize) -> String {
    match df.stages.get(i).and_then(|s| s.name.clone()) {
        Some(n) => n,
        None => format!("stage-{i}"),
    }
}

/// A dependency cycle between stages (BuildKit refuses the Dockerfile
/// with "circular dependency detected on stage"). Every stage counts,
/// reachable or not, as in BuildKit. Depth-first without recursion: a
/// stack of (stage, next edge).
fn find_cycle(df: &Dockerfile, results: &[StageResult]) -> Result<(), DockerfileError> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    let mut mark = vec![Mark::New; results.len()];
    for start in 0..results.len() {
        if mark.get(start) != Some(&Mark::New) {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        if let Some(m) = mark.get_mut(start) {
            *m = Mark::OnPath;
        }
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            let edge = results.get(node).and_then(|r| r.edges.get(*next));
            *next += 1;
            let Some(edge) = edge else {
                if let Some(m) = mark.get_mut(node) {
                    *m = Mark::Done;
                }
                stack.pop();
                continue;
            };
            match mark.get(edge.to) {
                Some(Mark::New) => {
                    if let Some(m) = mark.get_mut(edge.to) {
                        *m = Mark::OnPath;
                    }
                    stack.push((edge.to, 0));
                }
                Some(Mark::OnPath) => {
                    // The cycle: from `edge.to` along the path to `node`,
                    // then this edge.
                    let from = stack.iter().position(|(n, _)| *n == edge.to).unwrap_or(0);
                    let steps: Vec<(usize, &Edge)> = stack
                        .get(from..)
                        .unwrap_or_default()
                        .iter()
                        .filter_map(|&(n, nx)| {
                            let e = results.get(n)?.edges.get(nx.checked_sub(1)?)?;
                            Some((n, e))
                        })
                        .collect();
                    let name = stage_label(df, edge.to);
                    let chain: Vec<String> = steps
                        .iter()
                        .map(|(n, e)| {
                            format!(
                                "stage {} {} {} at line {}",
                                stage_label(df, *n),
                                if e.what == "FROM" {
                                    "is built FROM"
                                } else {
                                    "uses"
                                },
                                if e.to == *n {
                                    "itself".to_string()
                                } else {
                                    stage_label(df, e.to)
                                },
                                e.line
                            )
                        })
                        .collect();
                    let line = steps.first().map_or(1, |(_, e)| e.line);
                    return Err(DockerfileError::new(
                        &df.path,
                        line,
                        1,
                        ErrorKind::Stage,
                        format!(
                            "circular dependency detected on stage: {name} ({}); a stage can only use stages that do not use it back: copy from an earlier stage or move the shared steps into a stage both use",
                            chain.join(", ")
                        ),
                    ));
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// Stage indices by name.
#[derive(Default)]
struct Names {
    /// The first stage of each name.
    first: HashMap<String, usize>,
    /// The latest stage of each name before the one simulated.
    earlier: HashMap<String, usize>,
}

#[derive(Debug, Clone, Default)]
struct StageResult {
    deps: BTreeSet<usize>,
    /// The first reference to each of `deps`, to explain a cycle.
    edges: Vec<Edge>,
    /// The stage this one is built `FROM`, if any.
    parent: Option<usize>,
    uses: Vec<UsedPath>,
    whole: Vec<WholeReason>,
    error: Option<DockerfileError>,
    scope: StageScope,
    external_base: Option<String>,
}

struct Sim<'a> {
    df: &'a Dockerfile,
    budget: &'a Cell<Budget>,
    opts: &'a PlanOptions,
    meta: &'a MetaScope,
    names: &'a Names,
    index: usize,
    scope: StageScope,
    res: StageResult,
}

/// Names that make an expansion unknowable: unset, or computed from unset.
fn unknown_names(e: &Expansion, tainted: &dyn Fn(&str) -> bool) -> Vec<String> {
    let mut out = e.unset.clone();
    for r in &e.referenced {
        if tainted(r) && !out.contains(r) {
            out.push(r.clone());
        }
    }
    out
}

fn dollar_list(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Could this (partially unknown) value name a stage?
fn maybe_stage_name(v: &str) -> bool {
    !v.contains([':', '/', '@'])
}

fn simulate_stage(
    df: &Dockerfile,
    opts: &PlanOptions,
    meta: &MetaScope,
    done: &[StageResult],
    index: usize,
    budget: &Cell<Budget>,
    names: &Names,
) -> StageResult {
    let mut sim = Sim {
        df,
        budget,
        names,
        opts,
        meta,
        index,
        scope: StageScope::default(),
        res: StageResult::default(),
    };
    if let Err(e) = sim.run(done) {
        sim.res.error = Some(e);
    }
    sim.res.scope = sim.scope;
    sim.res
}

impl Sim<'_> {
    fn err(
        &self,
        ins: &Instruction,
        needle: &str,
        kind: ErrorKind,
        msg: String,
    ) -> DockerfileError {
        let (l, c) = locate(ins, needle);
        DockerfileError::new(&self.df.path, l, c, kind, msg)
    }

    fn run(&mut self, done: &[StageResult]) -> Result<(), DockerfileError> {
        let df = self.df;
        let Some(stage) = df.stages.get(self.index) else {
            return Ok(());
        };
        let from = &stage.from;
        if let Some(Some(p)) = from.flag("platform") {
            expand_from(df, self.meta, p, self.budget).map_err(|m| {
                self.err(
                    from,
                    p,
                    kind_of(&m),
                    format!(
                        "cannot expand --platform `{}`: {m}",
                        crate::text::excerpt(p)
                    ),
                )
            })?;
        }
        let base = expand_from(df, self.meta, &stage.base_raw, self.budget).map_err(|m| {
            self.err(
                from,
                &stage.base_raw,
                kind_of(&m),
                format!(
                    "cannot expand the FROM image `{}`: {m}",
                    crate::text::excerpt(&stage.base_raw)
                ),
            )
        })?;
        if base.value.is_empty() {
            return Err(self.err(
                from,
                &stage.base_raw,
                ErrorKind::Expansion,
                format!(
                    "base name `{}` should not be blank; declare the ARG with a default before the first FROM or pass it with --build-arg",
                    crate::text::excerpt(&stage.base_raw)
                ),
            ));
        }
        let unknown = unknown_names(&base, &|n| self.meta.tainted.contains(n));
        if !unknown.is_empty() && maybe_stage_name(&base.value) {
            self.res.whole.push(WholeReason {
                line: Some(stage.line),
                message: format!(
                    "unknown build argument {} in FROM at line {}: the base may be another stage",
                    dollar_list(&unknown),
                    stage.line
                ),
            });
        }
        let lower = base.value.to_ascii_lowercase();
        let parent = self
            .names
            .earlier
            .get(&lower)
            .and_then(|&i| df.stages.get(i));
        let mut triggers: Vec<&Instruction> = Vec::new();
        match parent {
            Some(p) => {
                self.res.deps.insert(p.index);
                self.res.parent = Some(p.index);
                self.res.edges.push(Edge {
                    to: p.index,
                    line: stage.line,
                    what: "FROM".to_string(),
                });
                if let Some(pr) = done.get(p.index) {
                    self.scope.env = pr.scope.env.clone();
                }
                triggers = p
                    .instructions
                    .iter()
                    .filter_map(|i| i.onbuild.as_deref())
                    .collect();
            }
            None if lower == "scratch" => {}
            None => self.res.external_base = Some(base.value.clone()),
        }
        for t in triggers {
            self.instruction(t, "ONBUILD ")?;
        }
        for ins in &stage.instructions {
            self.instruction(ins, "")?;
        }
        Ok(())
    }

    fn expand(
        &self,
        ins: &Instruction,
        word: &str,
        what: &str,
    ) -> Result<Expansion, DockerfileError> {
        let scope = &self.scope;
        expand_in(self.df, word, &|n| scope.lookup(n), self.budget).map_err(|m| {
            self.err(
                ins,
                word,
                kind_of(&m),
                format!("cannot expand {what} `{}`: {m}", crate::text::excerpt(word)),
            )
        })
    }

    /// Expansion for stage references: stage scope, then global ARGs.
    fn expand_ref(
        &self,
        ins: &Instruction,
        word: &str,
        what: &str,
    ) -> Result<(Expansion, Vec<String>), DockerfileError> {
        let scope = &self.scope;
        let meta = self.meta;
        let e = expand_in(
            self.df,
            word,
            &|n| scope.lookup(n).or_else(|| meta.lookup(n)),
            self.budget,
        )
        .map_err(|m| {
            self.err(
                ins,
                word,
                kind_of(&m),
                format!("cannot expand {what} `{}`: {m}", crate::text::excerpt(word)),
            )
        })?;
        let unknown = unknown_names(&e, &|n| scope.tainted(n) || meta.tainted.contains(n));
        Ok((e, unknown))
    }

    fn instruction(&mut self, ins: &Instruction, prefix: &str) -> Result<(), DockerfileError> {
        match ins.keyword.as_str() {
            "ARG" => self.arg(ins),
            "ENV" => self.env(ins),
            "COPY" | "ADD" => self.copy(ins, prefix),
            "RUN" => self.run_mounts(ins, prefix),
            _ => Ok(()),
        }
    }

    fn arg(&mut self, ins: &Instruction) -> Result<(), DockerfileError> {
        for w in &ins.args {
            let (name, default) = match w.split_once('=') {
                Some((n, d)) => (n, Some(d)),
                None => (w.as_str(), None),
            };
            let (value, taint) = if let Some(v) = self.opts.build_args.get(name) {
                (Some(v.clone()), false)
            } else if let Some(d) = default {
                let e = self.expand(ins, d, &format!("the default of ARG {name}"))?;
                let scope = &self.scope;
                let taint = !unknown_names(&e, &|n| scope.tainted(n)).is_empty();
                (Some(e.value), taint)
            } else {
                (
                    self.meta.get(name).flatten(),
                    self.meta.tainted.contains(name),
                )
            };
            if taint {
                self.scope.arg_tainted.insert(name.to_string());
            } else {
                self.scope.arg_tainted.remove(name);
            }
            self.scope.args.insert(name.to_string(), value);
        }
        Ok(())
    }

    fn env(&mut self, ins: &Instruction) -> Result<(), DockerfileError> {
        for item in &ins.args {
            let (k, v) = item.split_once('=').unwrap_or((item.as_str(), ""));
            let key = self.expand(ins, k, "the ENV name")?.value;
            let e = self.expand(ins, v, &format!("the value of ENV {key}"))?;
            let scope = &self.scope;
            let taint = !unknown_names(&e, &|n| scope.tainted(n)).is_empty();
            self.scope.env.insert(&key, (Rc::from(e.value), taint));
        }
        Ok(())
    }

    /// Resolves a `--from` / `from=` value to a stage index (`None`: image).
    fn resolve_stage(&self, ins: &Instruction, v: &str) -> Result<Option<usize>, DockerfileError> {
        let stages = &self.df.stages;
        if !v.is_empty() && v.chars().all(|c| c.is_ascii_digit()) {
            let idx = v.parse::<usize>().ok().filter(|i| *i < stages.len());
            // A reference to the stage itself is a cycle, reported with
            // the others once every stage is read.
            return match idx {
                Some(i) => Ok(Some(i)),
                None => Err(self.err(
                    ins,
                    v,
                    ErrorKind::Stage,
                    format!(
                        "invalid stage index {v}: the Dockerfile has {} stage(s), numbered from 0",
                        stages.len()
                    ),
                )),
            };
        }
        let lower = v.to_ascii_lowercase();
        match self.names.first.get(&lower).and_then(|&i| stages.get(i)) {
            Some(s) => Ok(Some(s.index)),
            None => Ok(None),
        }
    }

    fn stage_ref(
        &mut self,
        ins: &Instruction,
        raw: &str,
        what: &str,
    ) -> Result<(), DockerfileError> {
        let (e, unknown) = self.expand_ref(ins, raw, what)?;
        if !unknown.is_empty() && maybe_stage_name(&e.value) {
            self.res.whole.push(WholeReason {
                line: Some(ins.line),
                message: format!(
                    "unknown build argument {} in {what} at line {}: it may name any stage",
                    dollar_list(&unknown),
                    ins.line
                ),
            });
        }
        if let Some(s) = self.resolve_stage(ins, &e.value)? {
            if self.res.deps.insert(s) {
                self.res.edges.push(Edge {
                    to: s,
                    line: ins.line,
                    what: what.to_string(),
                });
            }
        }
        Ok(())
    }

    fn add_path(&mut self, ins: &Instruction, instruction: String, raw: &str, value: &str) {
        let pattern = clean_context_path(value);
        if pattern.is_empty() {
            self.res.whole.push(WholeReason {
                line: Some(ins.line),
                message: format!(
                    "`{instruction} {raw}` at line {} reads the whole build context",
                    ins.line
                ),
            });
            return;
        }
        let has_wildcard = has_wildcard(&pattern);
        self.res.uses.push(UsedPath {
            pattern,
            line: ins.line,
            instruction,
            has_wildcard,
        });
    }

    fn copy(&mut self, ins: &Instruction, prefix: &str) -> Result<(), DockerfileError> {
        let kw = format!("{prefix}{}", ins.keyword);
        for f in &ins.flags {
            if let (Some(v), true) = (&f.value, matches!(f.name.as_str(), "chown" | "chmod")) {
                self.expand(ins, v, &format!("--{}", f.name))?;
            }
        }
        if let Some(from) = ins.flag("from") {
            let from = from.unwrap_or_default();
            return self.stage_ref(ins, from, &format!("{kw} --from"));
        }
        let Some((dest, srcs)) = ins.args.split_last() else {
            return Ok(());
        };
        self.expand(ins, dest, &format!("the {kw} destination"))?;
        for src in srcs {
            if !ins.json && parse_heredoc_word(src).is_some() {
                continue;
            }
            let e = self.expand(ins, src, &format!("the {kw} source"))?;
            let scope = &self.scope;
            let unknown = unknown_names(&e, &|n| scope.tainted(n));
            if !unknown.is_empty() {
                self.res.whole.push(WholeReason {
                    line: Some(ins.line),
                    message: format!(
                        "unknown build argument {} in {kw} source `{src}` at line {}; pass it with --build-arg or give the ARG a default",
                        dollar_list(&unknown),
                        ins.line
                    ),
                });
                continue;
            }
            if ins.keyword == "ADD" && is_remote(&e.value) {
                continue;
            }
            self.add_path(ins, kw.clone(), src, &e.value);
        }
        Ok(())
    }

    fn run_mounts(&mut self, ins: &Instruction, prefix: &str) -> Result<(), DockerfileError> {
        let what = format!("{prefix}RUN --mount");
        for m in ins.flag_values("mount") {
            let Mount {
                kind: typ,
                from,
                source,
            } = match Mount::parse(m) {
                Ok(mount) => mount,
                Err(reason) => {
                    // BuildKit refuses it; until then, nothing is known
                    // of what it mounts.
                    self.res.whole.push(WholeReason {
                        line: Some(ins.line),
                        message: format!(
                            "`{what}` at line {} is not key=value fields ({reason})",
                            ins.line
                        ),
                    });
                    continue;
                }
            };
            if let Some(f) = from {
                self.stage_ref(ins, &f, &format!("{what} from"))?;
                continue;
            }
            if typ != "bind" {
                continue;
            }
            let Some(src) = source else {
                self.res.whole.push(WholeReason {
                    line: Some(ins.line),
                    message: format!(
                        "`{what}=type=bind` without `source` at line {} mounts the whole build context",
                        ins.line
                    ),
                });
                continue;
            };
            let e = self.expand(ins, &src, &format!("the {what} source"))?;
            let scope = &self.scope;
            let unknown = unknown_names(&e, &|n| scope.tainted(n));
            if !unknown.is_empty() {
                self.res.whole.push(WholeReason {
                    line: Some(ins.line),
                    message: format!(
                        "unknown build argument {} in {what} source `{src}` at line {}; pass it with --build-arg or give the ARG a default",
                        dollar_list(&unknown),
                        ins.line
                    ),
                });
                continue;
            }
            self.add_path(ins, what.clone(), &format!("source={src}"), &e.value);
        }
        Ok(())
    }
}

/// ADD sources fetched from the network rather than the context.
fn is_remote(src: &str) -> bool {
    let l = src.to_ascii_lowercase();
    ["http://", "https://", "git@", "git://", "ssh://"]
        .iter()
        .any(|p| l.starts_with(p))
}

/// `path.Join("/", p)` made relative: cleans `.`/`..`/`//`, clamps `..` at
/// the root; the root itself is the empty string.
fn clean_context_path(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    parts.join("/")
}

/// Unescaped `*`, `?` or `[` (Go `filepath.Match` syntax, `\` escapes).
fn has_wildcard(p: &str) -> bool {
    let mut it = p.chars();
    while let Some(c) = it.next() {
        match c {
            '\\' => {
                it.next();
            }
            '*' | '?' | '[' => return true,
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::*;

    fn opts(target: Option<&str>, args: &[(&str, &str)]) -> PlanOptions {
        PlanOptions {
            target: target.map(str::to_string),
            build_args: args
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            platform: None,
            every_stage_to_target: false,
        }
    }

    /// Paths as (pattern, line, instruction) or `Err(reasons)` for Whole.
    fn run(src: &str, o: &PlanOptions) -> Result<Vec<(String, usize, String)>, Vec<String>> {
        let df = parse("Dockerfile", src.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        match context_use(&df, o).unwrap_or_else(|e| panic!("{e}")) {
            ContextUse::Paths(p) => Ok(p
                .into_iter()
                .map(|u| (u.pattern, u.line, u.instruction))
                .collect()),
            ContextUse::Whole(r) => Err(r.into_iter().map(|r| r.message).collect()),
        }
    }

    fn paths(src: &str, o: &PlanOptions) -> Vec<String> {
        match run(src, o) {
            Ok(p) => p.into_iter().map(|(p, _, _)| p).collect(),
            Err(r) => panic!("expected paths, got whole: {r:?}\n{src}"),
        }
    }

    fn whole(src: &str, o: &PlanOptions) -> Vec<String> {
        match run(src, o) {
            Ok(p) => panic!("expected whole, got {p:?}\n{src}"),
            Err(r) => r,
        }
    }

    #[test]
    fn clean_and_wildcards() {
        let cases: &[(&str, &str, bool)] = &[
            (".", "", false),
            ("/", "", false),
            ("./", "", false),
            ("", "", false),
            ("a/../..", "", false),
            ("../../etc/passwd", "etc/passwd", false),
            ("/app//src/./x/", "app/src/x", false),
            ("a/./b/*.txt", "a/b/*.txt", true),
            ("file?.txt", "file?.txt", true),
            ("[ab].c", "[ab].c", true),
            ("a\\*b", "a\\*b", false),
        ];
        for (input, want, wild) in cases {
            let c = clean_context_path(input);
            assert_eq!(c, *want, "{input}");
            assert_eq!(has_wildcard(&c), *wild, "{input}");
        }
    }

    #[test]
    fn frontend_detection() {
        let cases: &[(&str, bool)] = &[
            ("docker/dockerfile:1", false),
            ("docker/dockerfile:1.7-labs", false),
            ("docker/dockerfile", false),
            ("docker.io/docker/dockerfile:1", false),
            ("docker/dockerfile:1@sha256:abc", false),
            ("docker/dockerfile-upstream:master", false),
            ("docker/dockerfile-upstream:1.8.0-labs", false),
            ("docker.io/docker/dockerfile:1.7.1-labs", false),
            ("docker/dockerfile:1.4.3@sha256:9ba7531bd80fb0a858632727cf7a112fbfd19b17e94c4e84ced81e24ef1a0dbc", false),
            ("docker.io/docker/dockerfile-upstream:master-labs@sha256:abc", false),
            ("docker/dockerfile-upstream2:x", true),
            ("evil/docker/dockerfile:1", true),
            ("example.com:5000/docker/dockerfile:1", true),
            ("tonistiigi/dockerfile:x", true),
        ];
        for (syntax, custom) in cases {
            let src = format!("# syntax={syntax}\nFROM a\nCOPY x y\n");
            let r = run(&src, &PlanOptions::default());
            assert_eq!(r.is_err(), *custom, "{syntax}: {r:?}");
            if *custom {
                assert!(r.unwrap_err()[0].contains("custom frontend"));
            }
        }
        // BUILDKIT_SYNTAX build-arg overrides the directive.
        let r = whole(
            "# syntax=docker/dockerfile:1\nFROM a\nCOPY x y\n",
            &opts(None, &[("BUILDKIT_SYNTAX", "me/frontend")]),
        );
        assert!(r[0].contains("me/frontend"));
    }

    #[test]
    fn unknown_copy_flags_are_errors_anywhere() {
        // As docker 20.10 (BuildKit) and 28 (classic) report them: even in
        // a stage the target does not need.
        let cases: &[(&str, usize, usize, &str)] = &[
            ("FROM a\nCOPY --user=1 x /x\n", 2, 6, "`--user` for COPY"),
            (
                "FROM a AS unused\nADD --doit x /x\nFROM b\nCOPY y /y\n",
                2,
                5,
                "`--doit` for ADD",
            ),
            (
                "FROM a AS x\nFROM b\nADD --from=x y /y\n",
                3,
                5,
                "`--from` for ADD",
            ),
            (
                "FROM a\nCOPY --link \\\n  --chmodd=644 x /x\n",
                3,
                3,
                "`--chmodd`",
            ),
        ];
        for (src, line, col, msg) in cases {
            let df = parse("Dockerfile", src.as_bytes()).unwrap();
            let e = context_use(&df, &PlanOptions::default()).unwrap_err();
            assert_eq!(
                (e.line, e.column, e.kind),
                (*line, *col, ErrorKind::Syntax),
                "{src}: {e}"
            );
            assert!(e.message.contains(msg), "{e}");
            assert!(e.message.contains("Unknown flag"), "{e}");
        }
        let ok = "FROM a AS s\nFROM b\nCOPY --from=s --chown=1 --chmod=644 --link --parents --exclude=*.md x /x\nADD --chown=1 --chmod=6 --link --checksum=sha256:0 --keep-git-dir --exclude=a --unpack=true y /y\n";
        let df = parse("Dockerfile", ok.as_bytes()).unwrap();
        assert!(context_use(&df, &PlanOptions::default()).is_ok());
    }

    #[test]
    fn classic_builds_every_stage_up_to_the_target() {
        let src = "FROM a AS base\nCOPY base.txt /\nFROM base AS dev\nCOPY dev-only.txt /\nFROM a AS test\nCOPY --from=dev / /d\nCOPY tests /t\nFROM base AS prod\nCOPY app.txt /\nFROM a AS after\nCOPY after.txt /\n";
        let prod = opts(Some("prod"), &[]);
        assert_eq!(paths(src, &prod), vec!["base.txt", "app.txt"]);
        let classic = PlanOptions {
            every_stage_to_target: true,
            ..prod
        };
        assert_eq!(
            paths(src, &classic),
            vec!["base.txt", "dev-only.txt", "tests", "app.txt"]
        );
        let df = parse("Dockerfile", src.as_bytes()).unwrap();
        let a = analyze(&df, &classic).unwrap();
        assert_eq!(a.reachable_stages, vec![0, 1, 2, 3]);
        // An error in a stage before the target now matters.
        let df = parse(
            "df",
            b"FROM a AS bad\nCOPY ${X:?} /x\nFROM b\nCOPY ok /ok\n",
        )
        .unwrap();
        assert!(context_use(
            &df,
            &PlanOptions {
                every_stage_to_target: true,
                ..PlanOptions::default()
            }
        )
        .is_err());
    }

    #[test]
    fn fastapi_backend() {
        let src = "FROM python:3.11-slim\nWORKDIR /app\nCOPY requirements.txt .\nRUN pip install --no-cache-dir -r requirements.txt\nCOPY app/ ./app/\nCOPY alembic/ alembic/\nCOPY alembic.ini .\nCMD [\"uvicorn\", \"app.main:app\", \"--host\", \"0.0.0.0\"]\n";
        let got = run(src, &PlanOptions::default()).unwrap();
        assert_eq!(
            got,
            vec![
                ("requirements.txt".to_string(), 3, "COPY".to_string()),
                ("app".to_string(), 5, "COPY".to_string()),
                ("alembic".to_string(), 6, "COPY".to_string()),
                ("alembic.ini".to_string(), 7, "COPY".to_string()),
            ]
        );
        let df = parse("Dockerfile", src.as_bytes()).unwrap();
        let a = analyze(&df, &PlanOptions::default()).unwrap();
        assert_eq!(
            a.external_bases,
            vec![ExternalBase {
                image: "python:3.11-slim".into(),
                stage: 0,
                line: 1
            }]
        );
    }

    const NODE: &str = r#"# syntax=docker/dockerfile:1.7
ARG NODE_VERSION=20
FROM node:${NODE_VERSION}-alpine AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci

FROM deps AS build
COPY tsconfig.json ./
COPY src ./src
RUN npm run build

FROM node:${NODE_VERSION}-alpine AS test
COPY --from=deps /app/node_modules ./node_modules
COPY tests/ tests/

FROM gcr.io/distroless/nodejs20 AS runtime
COPY --from=build /app/dist /app/dist
COPY --from=deps /app/node_modules /app/node_modules
COPY public/*.html /app/public/
"#;

    #[test]
    fn multi_stage_node() {
        assert_eq!(
            paths(NODE, &PlanOptions::default()),
            vec![
                "package.json",
                "package-lock.json",
                "tsconfig.json",
                "src",
                "public/*.html"
            ]
        );
        assert_eq!(
            paths(NODE, &opts(Some("TEST"), &[])),
            vec!["package.json", "package-lock.json", "tests"]
        );
        let df = parse("Dockerfile", NODE.as_bytes()).unwrap();
        let a = analyze(&df, &PlanOptions::default()).unwrap();
        assert_eq!(a.reachable_stages, vec![0, 1, 3]);
        assert_eq!(a.target_stage, 3);
        let bases: Vec<&str> = a.external_bases.iter().map(|b| b.image.as_str()).collect();
        assert_eq!(bases, vec!["node:20-alpine", "gcr.io/distroless/nodejs20"]);
        let a = analyze(&df, &opts(None, &[("NODE_VERSION", "22")])).unwrap();
        assert_eq!(a.external_bases[0].image, "node:22-alpine");
        if let ContextUse::Paths(p) = &a.context {
            assert!(p
                .iter()
                .any(|u| u.pattern == "public/*.html" && u.has_wildcard));
        }
    }

    #[test]
    fn multi_stage_python() {
        let src = "FROM python:3.12 AS builder\nCOPY pyproject.toml poetry.lock /src/\nRUN --mount=type=bind,source=scripts,target=/scripts /scripts/build.sh\nRUN --mount=type=secret,id=tok --mount=type=cache,target=/c pip wheel\n\nFROM python:3.12-slim\nCOPY --from=0 /wheels /wheels\nCOPY ./app /app\n";
        assert_eq!(
            run(src, &PlanOptions::default()).unwrap(),
            vec![
                ("pyproject.toml".into(), 2, "COPY".into()),
                ("poetry.lock".into(), 2, "COPY".into()),
                ("scripts".into(), 3, "RUN --mount".into()),
                ("app".into(), 8, "COPY".into()),
            ]
        );
    }

    #[test]
    fn whole_context_table() {
        let cases: &[(&str, &str)] = &[
            ("FROM a\nCOPY . .\n", "`COPY .` at line 2"),
            ("FROM a\nADD ./ /app\n", "`ADD ./` at line 2"),
            ("FROM a\nCOPY --chown=1 / /app\n", "`COPY /`"),
            ("FROM a\nCOPY x/.. /app\n", "`COPY x/..`"),
            (
                "FROM a\nRUN --mount=type=bind,target=/src make\n",
                "without `source` at line 2",
            ),
            (
                "FROM a\nRUN --mount=target=/src,source=. make\n",
                "`RUN --mount source=.`",
            ),
            (
                "FROM a\nARG DIR\nCOPY $DIR/x /x\n",
                "unknown build argument $DIR in COPY source `$DIR/x` at line 3",
            ),
            (
                "ARG DIR=x\nFROM a\nCOPY ${DIR}/x /x\n",
                "unknown build argument $DIR",
            ),
            ("FROM a\nCOPY $NOPE /x\n", "unknown build argument $NOPE"),
            (
                "FROM a\nARG V\nENV P=/s/$V\nCOPY $P /x\n",
                "unknown build argument $P",
            ),
            (
                "FROM a\nRUN --mount=type=bind,source=$S,target=/s x\n",
                "unknown build argument $S in RUN --mount source",
            ),
            (
                "FROM a AS x\nFROM a\nARG F\nCOPY --from=$F /a /b\n",
                "unknown build argument $F in COPY --from",
            ),
            (
                "ARG B\nFROM a AS base\nFROM base${B}\n",
                "unknown build argument $B in FROM",
            ),
            (
                "FROM a AS base\nONBUILD COPY . /app\nFROM base\n",
                "`ONBUILD COPY .` at line 2",
            ),
        ];
        for (src, want) in cases {
            let r = whole(src, &PlanOptions::default());
            assert!(r.iter().any(|m| m.contains(want)), "{src}\n{r:?}");
        }
    }

    /// (Dockerfile, build args, expected patterns)
    type PathCase<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a [&'a str]);

    /// (Dockerfile, target, build args, line, kind, message part)
    type ErrCase<'a> = (
        &'a str,
        Option<&'a str>,
        &'a [(&'a str, &'a str)],
        usize,
        ErrorKind,
        &'a str,
    );

    #[test]
    fn paths_table() {
        let cases: &[PathCase] = &[
            // ADD remote sources are skipped, local archives are used
            ("FROM a\nADD https://x.io/f.tgz git@github.com:a/b.git https://github.com/a/b.git#main vendor.tgz /x/\n", &[], &["vendor.tgz"]),
            // heredoc sources are skipped
            ("FROM a\nCOPY <<EOF conf.d/ /etc/\nhi\nEOF\n", &[], &["conf.d"]),
            // --parents marker removed
            ("FROM a\nCOPY --parents ./pkgs/./*/package.json /app/\n", &[], &["pkgs/*/package.json"]),
            // JSON form, with spaces
            ("FROM a\nCOPY [\"my dir/a b.txt\", \"/x/\"]\n", &[], &["my dir/a b.txt"]),
            // quotes inside words are removed by expansion
            ("FROM a\nCOPY 'a$b' \"c\" /x/\n", &[], &["a$b", "c"]),
            // leading slash removed, .. clamped
            ("FROM a\nCOPY /etc/../../conf /x\n", &[], &["conf"]),
            // ARG defaults and ENV
            ("FROM a\nARG APP=web\nENV SRC=apps/${APP}\nCOPY ${SRC}/ /srv/\n", &[], &["apps/web"]),
            // build-arg overrides a declared ARG
            ("FROM a\nARG APP=web\nCOPY apps/$APP /srv/\n", &[("APP", "api")], &["apps/api"]),
            // ... but not an undeclared one (ENV wins over ARG)
            ("FROM a\nENV APP=web\nARG APP=x\nCOPY apps/$APP /srv/\n", &[("APP", "api")], &["apps/web"]),
            // global ARG redeclared in the stage takes the global value/build-arg
            ("ARG APP=web\nFROM a\nARG APP\nCOPY apps/$APP /srv/\n", &[], &["apps/web"]),
            ("ARG APP=web\nFROM a\nARG APP\nCOPY apps/$APP /srv/\n", &[("APP", "cli")], &["apps/cli"]),
            // defaults with ${:-}
            ("FROM a\nARG APP\nCOPY apps/${APP:-web} /srv/\n", &[], &["apps/web"]),
            // builtin platform args once declared
            ("FROM a\nARG TARGETARCH\nCOPY bin/${TARGETARCH}/tool /usr/bin/\n", &[], &["bin/amd64/tool"]),
            // ENV inherited from the parent stage
            ("FROM a AS base\nENV D=lib\nFROM base\nCOPY $D /x\n", &[], &["lib"]),
            // legacy ENV form and quoted values
            ("FROM a\nENV D my dir\nENV E=\"x y\" F='$D'\nCOPY $D $E $F /x/\n", &[], &["my dir", "x y", "$D"]),
            // ONBUILD triggers run in the child, with the child's scope
            ("FROM a AS base\nONBUILD COPY req.txt /r\nONBUILD RUN --mount=type=bind,source=ci,target=/ci x\nFROM base\nCOPY main.py /m\n", &[], &["req.txt", "ci", "main.py"]),
            // ONBUILD in the final stage does not run
            ("FROM a\nONBUILD COPY . /app\nCOPY x /x\n", &[], &["x"]),
            // mounts from stages make them reachable
            ("FROM a AS gen\nCOPY proto/ /p\nFROM a AS other\nCOPY unused /u\nFROM b\nRUN --mount=type=bind,from=gen,source=/p,target=/p x\n", &[], &["proto"]),
            ("FROM a AS cache\nCOPY seed /s\nFROM b\nRUN --mount=type=cache,from=cache,target=/c x\n", &[], &["seed"]),
            // mount from an image uses no context
            ("FROM b\nRUN --mount=type=bind,from=alpine:3,source=/etc,target=/e x\n", &[], &[]),
            // --from with a global ARG naming a stage
            ("ARG SRC=gen\nFROM a AS gen\nCOPY g /g\nFROM b\nCOPY --from=$SRC /g /g\n", &[], &["g"]),
            // --from an external image
            ("FROM b\nCOPY --from=nginx:latest /etc/nginx /n\n", &[], &[]),
            // FROM resolved through a global ARG
            ("ARG BASE=one\nFROM a AS one\nCOPY one.txt /\nFROM a AS two\nCOPY two.txt /\nFROM ${BASE}\n", &[("BASE", "two")], &["two.txt"]),
            // flag values are expanded (chown with an ARG)
            ("FROM a\nARG U=1000\nCOPY --chown=$U:$U f /f\n", &[], &["f"]),
        ];
        for (src, args, want) in cases {
            let got = paths(src, &opts(None, args));
            assert_eq!(got, want.to_vec(), "{src}");
        }
    }

    #[test]
    fn escape_backtick_paths() {
        let src = "# escape=`\nFROM mcr.microsoft.com/windows/nanoserver\nARG D=cfg\nCOPY `\n  ${D}/app.json `\n  C:/app/\n";
        assert_eq!(paths(src, &PlanOptions::default()), vec!["cfg/app.json"]);
    }

    #[test]
    fn heredoc_with_instruction_like_body() {
        let src = "FROM alpine\nCOPY <<EOF /app/start.sh\n#!/bin/sh\nFROM x\nCOPY . /\nEOF\nRUN <<EOF\nset -e\nADD . /x\nEOF\nCOPY <<A <<B /d/\na\nA\nb\nB\nCOPY run.sh /\n";
        assert_eq!(paths(src, &PlanOptions::default()), vec!["run.sh"]);
    }

    #[test]
    fn analysis_errors() {
        let cases: &[ErrCase] = &[
            (
                "FROM a AS one\nFROM b AS two\n",
                Some("three"),
                &[],
                1,
                ErrorKind::Target,
                "available stages: one, two",
            ),
            (
                "FROM a\n",
                Some("x"),
                &[],
                1,
                ErrorKind::Target,
                "no named stages",
            ),
            (
                "FROM a\nCOPY ${X:?set_X_to_the_app_dir} /x\n",
                None,
                &[],
                2,
                ErrorKind::Expansion,
                "X: set_X_to_the_app_dir",
            ),
            (
                "FROM a\nCOPY ${X:?two words} /x\n",
                None,
                &[],
                2,
                ErrorKind::Expansion,
                "missing '}'",
            ),
            (
                "FROM a\nCOPY \"unbalanced /x\n",
                None,
                &[],
                2,
                ErrorKind::Expansion,
                "double-quote",
            ),
            (
                "FROM a\nCOPY --from=3 /a /b\n",
                None,
                &[],
                2,
                ErrorKind::Stage,
                "invalid stage index 3",
            ),
            (
                "FROM a AS me\nCOPY --from=me /a /b\n",
                None,
                &[],
                2,
                ErrorKind::Stage,
                "circular dependency detected on stage: me (stage me uses itself at line 2)",
            ),
            (
                "ARG X\nFROM ${X}\n",
                None,
                &[],
                2,
                ErrorKind::Expansion,
                "should not be blank",
            ),
            (
                "ARG X=${Y:?need_Y}\nFROM a\n",
                None,
                &[],
                1,
                ErrorKind::Expansion,
                "Y: need_Y",
            ),
            (
                "FROM a\nENV A=${B:?}\n",
                None,
                &[],
                2,
                ErrorKind::Expansion,
                "B: is not allowed to be unset",
            ),
        ];
        for (src, target, args, line, kind, msg) in cases {
            let df = parse("ctx/Dockerfile", src.as_bytes()).unwrap();
            let e = context_use(&df, &opts(*target, args)).unwrap_err();
            assert_eq!((e.line, e.kind), (*line, *kind), "{src}: {e}");
            assert!(e.message.contains(msg), "{src}: {e}");
        }
        // column points at the offending word
        let df = parse("df", b"FROM a\nCOPY  ${X:?} /x\n").unwrap();
        let e = context_use(&df, &PlanOptions::default()).unwrap_err();
        assert_eq!((e.line, e.column), (2, 7));
        // errors in unreachable stages are ignored
        let df = parse(
            "df",
            b"FROM a AS bad\nCOPY ${X:?} /x\nFROM b\nCOPY ok /ok\n",
        )
        .unwrap();
        assert_eq!(
            context_use(&df, &PlanOptions::default()).unwrap(),
            ContextUse::Paths(vec![UsedPath {
                pattern: "ok".into(),
                line: 4,
                instruction: "COPY".into(),
                has_wildcard: false
            }])
        );
    }

    fn analyze_err(src: &str) -> DockerfileError {
        let df = parse("Dockerfile", src.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        analyze(&df, &PlanOptions::default()).unwrap_err()
    }

    /// `ARG A1=$A0$A0...` ten times per level: 10^(n+1) bytes at level n.
    fn growth(prefix: &str, levels: usize) -> String {
        let mut src = format!("{prefix} A0=xxxxxxxxxx\n");
        for i in 1..levels {
            src += &format!("{prefix} A{i}={}\n", format!("${{A{}}}", i - 1).repeat(10));
        }
        src
    }

    #[test]
    fn expansion_growth_is_capped() {
        // Global ARGs: A5 is 10^6 bytes (under 1 MiB), A6 would be 10^7.
        let src = growth("ARG", 12) + "FROM scratch\nCOPY $A11 /x\n";
        let e = analyze_err(&src);
        assert_eq!((e.kind, e.line), (ErrorKind::Limit, 7), "{e}");
        assert!(
            e.message.contains("cannot expand the default of ARG A6"),
            "{e}"
        );
        assert!(e.message.contains("exceed 1 MiB"), "{e}");
        // The same inside a stage, with ENV and ARG.
        for kw in ["ENV", "ARG"] {
            let src = format!("FROM scratch\n{}COPY $A11 /x\n", growth(kw, 12));
            let e = analyze_err(&src);
            assert_eq!((e.kind, e.line), (ErrorKind::Limit, 8), "{kw}: {e}");
        }
        // A replacement that multiplies the value.
        let src = growth("ARG", 6) + "FROM scratch\nARG A5\nCOPY ${A5//?/$A5} /x\n";
        let e = analyze_err(&src);
        assert_eq!((e.kind, e.line), (ErrorKind::Limit, 9), "{e}");
    }

    #[test]
    fn expansion_work_is_capped_per_dockerfile() {
        // Each line is under the value cap, but together they are not.
        let mut src = growth("ARG", 6) + "FROM scratch\nARG A5\n";
        for i in 0..100 {
            src += &format!("ENV B{i}=$A5\n");
        }
        let e = analyze_err(&src);
        assert_eq!(e.kind, ErrorKind::Limit, "{e}");
        assert!(e.message.contains("more than 64 MiB"), "{e}");
        assert!(e.line > 9 && e.line < 9 + 100, "{e}");
        // Lookups count even when their value is dropped.
        let src = growth("ARG", 6)
            + "FROM scratch\nARG A5\nRUN --mount=type=bind,source="
            + &"${A5:+}".repeat(200)
            + "x,target=/x true\n";
        let e = analyze_err(&src);
        assert_eq!((e.kind, e.line), (ErrorKind::Limit, 9), "{e}");
    }

    #[test]
    fn long_stage_chains_inherit_env() {
        // Each stage inherits its parent's ENV (shared, not copied) and
        // overrides one variable; names resolve through maps.
        let mut src = String::from("FROM alpine AS s0\nENV V0=d0 KEEP=k\n");
        for i in 1..3000 {
            src += &format!(
                "FROM s{} AS s{i}\nENV V{i}=d{i} V0=o{i}\nCOPY --from=s0 /x /x\n",
                i - 1
            );
        }
        src += "FROM s2999\nCOPY $KEEP/$V0/$V17/$V2999 /app/\nRUN --mount=from=s5,target=/m true\n";
        let got = run(&src, &PlanOptions::default()).unwrap();
        assert_eq!(
            got,
            vec![("k/o2999/d17/d2999".to_string(), 9001, "COPY".to_string())]
        );
        let df = parse("Dockerfile", src.as_bytes()).unwrap();
        let a = analyze(&df, &PlanOptions::default()).unwrap();
        assert_eq!(a.reachable_stages.len(), 3001);
    }

    #[test]
    fn stage_cycles_are_errors() {
        // (Dockerfile, target, line, message)
        let cases: &[(&str, Option<&str>, usize, &str)] = &[
            // BuildKit's own test cases (dockerfile2llb).
            (
                "FROM busybox AS stage0\nCOPY --from=stage0 f1 /sub/\n",
                None,
                2,
                "circular dependency detected on stage: stage0 (stage stage0 uses itself at line 2)",
            ),
            (
                "FROM busybox AS stage0\nCOPY --from=stage2 f1 /sub/\nFROM busybox AS stage1\nCOPY --from=stage0 f2 /sub/\nFROM busybox AS stage2\nCOPY --from=stage1 f2 /sub/\n",
                None,
                2,
                "circular dependency detected on stage: stage0 (stage stage0 uses stage2 at line 2, stage stage2 uses stage1 at line 6, stage stage1 uses stage0 at line 4)",
            ),
            // By index, unnamed stages, through a mount, and unreachable
            // from the target: BuildKit checks every stage.
            (
                "FROM a\nCOPY --from=0 /x /y\n",
                None,
                2,
                "circular dependency detected on stage: stage-0 (stage stage-0 uses itself at line 2)",
            ),
            (
                "FROM a AS x\nRUN --mount=from=y,target=/y true\nFROM b AS y\nCOPY --from=x /a /b\nFROM c AS final\n",
                Some("final"),
                2,
                "stage x uses y at line 2, stage y uses x at line 4",
            ),
            // A later stage built on the one that copies from it.
            (
                "FROM a AS base\nCOPY --from=child /x /x\nFROM base AS child\n",
                None,
                2,
                "stage base uses child at line 2, stage child is built FROM base at line 3",
            ),
        ];
        for (src, target, line, msg) in cases {
            let df = parse("Dockerfile", src.as_bytes()).unwrap();
            let o = opts(*target, &[]);
            let e = analyze(&df, &o).unwrap_err();
            assert_eq!((e.kind, e.line), (ErrorKind::Stage, *line), "{src}: {e}");
            assert!(e.message.contains(msg), "{src}: {e}");
        }
        // FROM a later stage or itself names an image, as in BuildKit
        // (stage names resolve only backwards).
        let df = parse(
            "Dockerfile",
            b"FROM later AS first\nFROM first AS later\nCOPY x /x\n",
        )
        .unwrap();
        let a = analyze(&df, &PlanOptions::default()).unwrap();
        assert_eq!(a.reachable_stages, vec![0, 1]);
        assert_eq!(a.external_bases[0].image, "later");
        // A long chain of forward copies is no cycle (and is not recursed).
        let mut src = String::new();
        for i in 0..20_000 {
            src += &format!("FROM a AS s{i}\nCOPY --from=s{} /x /x\n", i + 1);
        }
        src += "FROM a AS s20000\n";
        let df = parse("Dockerfile", src.as_bytes()).unwrap();
        let a = crate::test_support::on_small_stack(move || {
            analyze(&df, &opts(Some("s0"), &[])).map(|a| a.reachable_stages.len())
        });
        assert_eq!(a, Ok(20_001));
    }
}
