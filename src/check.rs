//! The context-size guard behind `reggie-build check`: for each image, the
//! context that would be uploaded against its budget, plus the findings
//! that make a build fail (a COPY source excluded or missing, secrets).
//!
//! A deploy on another architecture than the image is built for (SST's
//! `architecture`, a compose service's `platform`, read by `discover`) is
//! a warning too: the image would fail there with "exec format error".
//!
//! The common case, nothing wrong, is one walk of the minimal context with
//! the Dockerfile's paths as filters, so it stays fast enough for a
//! pre-commit hook. Only a failing image gets the full analysis, for the
//! fix to print.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::analyze::findings::{
    cap_per_rule, copy_source_findings, is_cap_closing, secret_finding, MAX_PER_RULE,
};
use crate::analyze::{
    self, AnalyzeError, AnalyzeOptions, Finding, Group, RuleSet, Severity, Totals,
};
use crate::config::{self, Budget};
use crate::context::{Builder, ContextSpec, FileKind};
use crate::plan::{Plan, PlanOptions};

/// One image to check.
#[derive(Debug, Clone)]
pub struct Target {
    /// Its name (from `reggie-build.toml`, or the context path).
    pub name: String,
    /// Its build context.
    pub spec: ContextSpec,
    /// How its Dockerfile is planned (target, build args, platform).
    pub plan: PlanOptions,
    /// Its upload budget.
    pub budget: Budget,
}

impl Target {
    /// An image of `reggie-build.toml` built with the command line's
    /// build inputs (`shared`): the image's context and Dockerfile, both
    /// sides' build args (the command line's win, as for `image`), the
    /// command line's target and platform, else the image's, and its
    /// budget. `check`, `analyze`, `digest` and `image --all` merge a
    /// configured image this one way.
    pub fn from_image(image: &config::Image, builder: Builder, shared: &PlanOptions) -> Target {
        let mut plan = shared.clone();
        for (k, v) in &image.build_args {
            plan.build_args
                .entry(k.clone())
                .or_insert_with(|| v.clone());
        }
        plan.target = plan.target.or_else(|| image.target.clone());
        plan.platform = plan.platform.or_else(|| image.platform.clone());
        Target {
            name: image.name.clone(),
            spec: ContextSpec {
                root: image.context.clone(),
                dockerfile: Some(image.dockerfile.clone()),
                builder,
            },
            plan,
            budget: image.budget,
        }
    }
}

/// Options of a check.
#[derive(Debug, Clone, Copy, Default)]
pub struct CheckOptions {
    /// Measure the whole context as Docker sends it, not the minimal one.
    pub full: bool,
    /// Warnings fail the check too.
    pub strict: bool,
}

/// The verdict for one image.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Verdict {
    /// The image's name.
    pub name: String,
    /// Its context directory, as given.
    pub context: String,
    /// Its Dockerfile, as given.
    pub dockerfile: String,
    /// `minimal` or `full`.
    pub measured: &'static str,
    /// What the build uploads.
    pub uploaded: Totals,
    /// The byte budget, if any.
    pub max_bytes: Option<u64>,
    /// The file budget, if any.
    pub max_files: Option<u64>,
    /// Bytes and files over the budget (0 when within).
    pub over_bytes: u64,
    /// Files over the budget (0 when within).
    pub over_files: u64,
    /// What analysis found (warnings fail a strict check).
    pub findings: Vec<Finding>,
    /// Largest directories of what is uploaded.
    pub contributors: Vec<Group>,
    /// How to get back under budget (from a full analysis), when failing.
    pub fixes: Vec<String>,
    /// Within budget, and no warning in a strict check.
    pub passed: bool,
}

/// Where the repository's deploys run their images, as `discover` reads
/// them: each build that names a platform (SST's `architecture`, x86_64
/// unless set; a compose service's `platform`), by its context and
/// Dockerfile.
#[derive(Debug, Clone, Default)]
pub struct Deploys {
    /// By canonical context directory and Dockerfile: an image finds its
    /// deploys in one lookup, not by comparing with every one of them.
    builds: HashMap<(PathBuf, PathBuf), Vec<Deployed>>,
}

#[derive(Debug, Clone)]
struct Deployed {
    name: String,
    platform: String,
    /// The declaration's file (as reached from the discovery root) and line.
    file: String,
    line: Option<usize>,
}

impl Deploys {
    /// The deploys of the builds declared under `root` (the directory of
    /// `reggie-build.toml`, or the repository).
    pub fn discover(root: &Path) -> Result<Deploys, crate::discover::DiscoverError> {
        use crate::discover::Source;
        let mut builds: HashMap<(PathBuf, PathBuf), Vec<Deployed>> = HashMap::new();
        for b in crate::discover::discover(root)? {
            let Some(platform) = b.platform.filter(|_| b.resolved) else {
                continue;
            };
            let (file, line) = match &b.source {
                Source::Sst { file, line } => (file, Some(*line)),
                Source::Compose { file, line } => (file, *line),
                Source::Dockerfile => continue,
            };
            let (Ok(context), Ok(dockerfile)) = (
                std::fs::canonicalize(root.join(&b.context)),
                std::fs::canonicalize(root.join(&b.dockerfile)),
            ) else {
                continue;
            };
            let file = root.join(file);
            let file = file.strip_prefix(".").unwrap_or(&file);
            builds
                .entry((context, dockerfile))
                .or_default()
                .push(Deployed {
                    name: b.name,
                    platform,
                    file: crate::text::show_path(file),
                    line,
                });
        }
        Ok(Deploys { builds })
    }

    /// A warning for the deploys of this build whose architecture is not
    /// the one it is built for (`built`, else this machine's): one per
    /// deploy file and platform, naming the first service and counting the
    /// others (a compose file may run one build as hundreds of services).
    fn findings(&self, context: &Path, dockerfile: &Path, built: Option<&str>) -> Vec<Finding> {
        if self.builds.is_empty() {
            return Vec::new();
        }
        let (Ok(context), Ok(dockerfile)) = (
            std::fs::canonicalize(context),
            std::fs::canonicalize(dockerfile),
        ) else {
            return Vec::new();
        };
        let Some(deploys) = self.builds.get(&(context, dockerfile)) else {
            return Vec::new();
        };
        // Per (file, platform): the first deploy, why, and how many more.
        let mut grouped: Vec<(&Deployed, String, usize)> = Vec::new();
        let mut index: HashMap<(&str, &str), usize> = HashMap::new();
        for d in deploys {
            if let Some(&i) = index.get(&(d.file.as_str(), d.platform.as_str())) {
                grouped[i].2 += 1;
                continue;
            }
            let Some(why) =
                crate::discover::platform_warning(&d.platform, built, std::env::consts::ARCH)
            else {
                continue;
            };
            index.insert((&d.file, &d.platform), grouped.len());
            grouped.push((d, why, 0));
        }
        grouped
            .into_iter()
            .map(|(d, why, more)| Finding {
                rule: "deploy/architecture".into(),
                severity: Severity::Warning,
                file: d.file.clone(),
                line: d.line,
                message: match more {
                    0 => format!("`{}` is {why}", d.name),
                    n => format!("`{}` and {n} more in this file are {why}", d.name),
                },
            })
            .collect()
    }
}

/// Checks one image.
pub fn check(
    target: &Target,
    rules: &RuleSet,
    opts: CheckOptions,
) -> Result<Verdict, AnalyzeError> {
    check_deployed(target, rules, opts, &Deploys::default())
}

/// Checks one image, and that it is built for the architecture its
/// deploys run on.
pub fn check_deployed(
    target: &Target,
    rules: &RuleSet,
    opts: CheckOptions,
    deploys: &Deploys,
) -> Result<Verdict, AnalyzeError> {
    let ctx = target.spec.resolve()?;
    let plan = Plan::new(&ctx, &target.plan)?;
    // Sizes come from the walk's directory-relative stat.
    let measured_ctx = plan.apply(&ctx, !opts.full)?.with_sizes();
    let mut uploaded = Totals::default();
    let mut dirs: HashMap<Vec<u8>, Totals> = HashMap::new();
    let mut secrets = Vec::new();
    let summary = measured_ctx.walk::<AnalyzeError, _>(|e| {
        if e.kind == FileKind::Dir {
            return Ok(());
        }
        let size = e.size;
        uploaded.files += 1;
        uploaded.bytes += size;
        // Tally the file into its ancestors up to three levels deep.
        let mut end = 0;
        for _ in 0..3 {
            match e.rel[end..].iter().position(|&b| b == b'/') {
                Some(p) => {
                    end += p;
                    let t = dirs.entry(e.rel[..end].to_vec()).or_default();
                    t.files += 1;
                    t.bytes += size;
                    end += 1;
                }
                None => break,
            }
        }
        let read = || e.read_head(crate::analyze::rules::CONTENT_LIMIT);
        if let Some(m) = rules.classify(e.rel, false, &|_| false, &read) {
            if m.rule.secret {
                secrets.push(secret_finding(
                    &String::from_utf8_lossy(e.rel),
                    &m.rule.id,
                    &m.rule.description,
                ));
            }
        }
        Ok(())
    })?;

    let mut findings = copy_source_findings(&ctx, &plan, &summary.include_hits);
    // The full analysis below plans the Dockerfile again: a large one is
    // not held twice.
    drop((measured_ctx, plan, summary));
    findings.extend(secrets);
    findings.extend(deploys.findings(
        ctx.root(),
        ctx.dockerfile(),
        target.plan.platform.as_deref(),
    ));
    let contributors = analyze::contributors(dirs.iter().map(|(k, v)| (k.as_slice(), *v)));

    let max_bytes = target.budget.max_bytes;
    let max_files = target.budget.max_files;
    let over_bytes = max_bytes.map_or(0, |m| uploaded.bytes.saturating_sub(m));
    let over_files = max_files.map_or(0, |m| uploaded.files.saturating_sub(m));
    let mut fixes = Vec::new();
    let mut failed_findings = findings.iter().any(|f| f.severity == Severity::Error);

    if opts.strict || over_bytes > 0 || over_files > 0 || failed_findings {
        let analysis = analyze::analyze(
            &ctx,
            rules,
            &AnalyzeOptions {
                plan: target.plan.clone(),
                top: 5,
                detail: false,
            },
        )?;
        let mut have: HashSet<Finding> = findings.iter().cloned().collect();
        for f in analysis.findings {
            // Secrets count only when they are in what is measured, which
            // the walk above already judged; a count of findings left out
            // is made again when these are capped below.
            if f.rule.starts_with("secrets/") || is_cap_closing(&f) {
                continue;
            }
            let relevant = match f.severity {
                Severity::Error => true,
                Severity::Warning => opts.strict,
                Severity::Info => false,
            };
            if relevant && have.insert(f.clone()) {
                findings.push(f);
            }
        }
        if let Some(s) = &analysis.suggestion {
            if opts.full {
                fixes.push(format!(
                    "narrow the context to `{}` ({}): {}",
                    s.dir, s.sst, s.docker_build.1
                ));
            }
        }
        if let Some(ig) = analysis.suggested_ignore.as_ref().filter(|i| i.verified) {
            fixes.push(format!(
                "use the ignore file `reggie-build analyze --write-ignore` suggests ({}): it sends {} files, {}",
                ig.path.display(),
                ig.files,
                crate::units::humanize(ig.bytes)
            ));
        }
        if opts.full {
            for u in analysis.top_unused.iter().take(3) {
                fixes.push(format!(
                    "exclude `{}` ({}, {})",
                    u.path.trim_end_matches('/'),
                    u.kind,
                    crate::units::humanize(u.bytes)
                ));
            }
        }
        failed_findings = findings.iter().any(|f| match f.severity {
            Severity::Error => true,
            Severity::Warning => opts.strict,
            Severity::Info => false,
        });
    }
    findings.sort_by(|a, b| a.severity.cmp(&b.severity).then(a.file.cmp(&b.file)));
    let findings = cap_per_rule(findings, MAX_PER_RULE);
    let passed = over_bytes == 0 && over_files == 0 && !failed_findings;
    Ok(Verdict {
        name: target.name.clone(),
        context: ctx.root().display().to_string(),
        dockerfile: ctx.dockerfile().display().to_string(),
        measured: if opts.full { "full" } else { "minimal" },
        uploaded,
        max_bytes,
        max_files,
        over_bytes,
        over_files,
        findings,
        contributors,
        fixes,
        passed,
    })
}

/// What grew against a baseline report (`analyze --json` or
/// `check --format json` output).
pub fn growth_against(baseline: &serde_json::Value, v: &Verdict) -> Vec<String> {
    // A check report holds several images; pick the one with this name or
    // Dockerfile. An analyze report is the image itself.
    let image = match baseline.get("images").and_then(|i| i.as_array()) {
        Some(images) => images
            .iter()
            .find(|i| i["name"] == v.name.as_str())
            .or_else(|| {
                images
                    .iter()
                    .find(|i| i["dockerfile"] == v.dockerfile.as_str())
            }),
        None => Some(baseline),
    };
    let Some(image) = image else {
        return vec![format!("no image `{}` in the baseline", v.name)];
    };
    let base_total = image.get("uploaded").or_else(|| {
        image.get(if v.measured == "full" {
            "before"
        } else {
            "minimal"
        })
    });
    let mut out = Vec::new();
    if let Some(bytes) = base_total.and_then(|t| t["bytes"].as_u64()) {
        let delta = v.uploaded.bytes as i128 - bytes as i128;
        if delta != 0 {
            out.push(format!(
                "{} total ({} → {})",
                signed(delta),
                crate::units::humanize(bytes),
                crate::units::humanize(v.uploaded.bytes)
            ));
        }
    }
    let base_dirs: HashMap<&str, u64> = image
        .get("contributors")
        .and_then(|c| c.as_array())
        .map(|list| {
            list.iter()
                .filter_map(|g| Some((g["name"].as_str()?, g["bytes"].as_u64()?)))
                .collect()
        })
        .unwrap_or_default();
    let mut grew: Vec<(i128, &str)> = v
        .contributors
        .iter()
        .map(|g| {
            let before = base_dirs.get(g.name.as_str()).copied().unwrap_or(0);
            (g.bytes as i128 - before as i128, g.name.as_str())
        })
        .filter(|(d, _)| *d > 0)
        .collect();
    grew.sort_by_key(|g| std::cmp::Reverse(g.0));
    for (delta, name) in grew.into_iter().take(5) {
        out.push(format!("{} {}", signed(delta), name.trim_end_matches('/')));
    }
    out
}

fn signed(delta: i128) -> String {
    let size = crate::units::humanize(delta.unsigned_abs() as u64);
    if delta >= 0 {
        format!("+{size}")
    } else {
        format!("-{size}")
    }
}

/// Whether a change to `changed` (paths relative to `cwd`, as a
/// pre-commit hook receives them) can change `target`'s verdict: its
/// Dockerfile, an ignore file, the config, a file the Dockerfile reads,
/// or a deploy's declaration (an SST config or a compose file, which may
/// change the architecture it deploys on).
///
/// Paths are compared resolved, so a repository reached through a
/// symlinked directory is still recognised (a miss here would skip the
/// check silently).
pub fn affected_by(
    target: &Target,
    config: Option<&std::path::Path>,
    changed: &[std::path::PathBuf],
    cwd: &std::path::Path,
) -> Result<bool, AnalyzeError> {
    use crate::context::ignore::gopath::clean;
    use crate::context::ignore::Matcher;
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;

    let cwd = std::fs::canonicalize(cwd).unwrap_or_else(|_| cwd.to_path_buf());
    let absolute = |p: &Path| -> Vec<u8> {
        let joined = if p.is_absolute() {
            p.to_path_buf()
        } else {
            cwd.join(p)
        };
        clean(joined.as_os_str().as_bytes())
    };
    let ctx = target.spec.resolve()?;
    let root = std::fs::canonicalize(ctx.root())
        .map(|p| clean(p.as_os_str().as_bytes()))
        .unwrap_or_else(|_| absolute(ctx.root()));
    let dockerfile = absolute(ctx.dockerfile());
    let mut special: Vec<Vec<u8>> = vec![dockerfile.clone()];
    let mut dockerignore = dockerfile.clone();
    dockerignore.extend_from_slice(b".dockerignore");
    special.push(dockerignore);
    let mut root_ignore = root.clone();
    root_ignore.extend_from_slice(b"/.dockerignore");
    special.push(root_ignore);
    if let Some(c) = config {
        special.push(absolute(c));
    }
    let plan = Plan::new(&ctx, &target.plan)?;
    let mut includes = Matcher::default();
    for p in &plan.includes {
        includes.push_include(Path::new("(Dockerfile paths)"), p)?;
    }
    for file in changed {
        let abs = absolute(file);
        if special.contains(&abs) {
            return Ok(true);
        }
        let name = file.file_name().map(|n| n.to_string_lossy());
        if name.is_some_and(|n| n == "sst.config.ts" || crate::discover::is_compose_file(&n)) {
            return Ok(true);
        }
        let Some(rel) = abs
            .strip_prefix(root.as_slice())
            .and_then(|r| r.strip_prefix(b"/"))
        else {
            continue;
        };
        if plan.uses_whole_context()
            || includes
                .matches_or_parent_matches(rel)
                .map(|v| v.reached())
                .unwrap_or(true)
        {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    /// ctx/Dockerfile copies `app`; `docs` is excluded by the ignore file.
    fn fixture() -> (tempfile::TempDir, Target, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let top = std::fs::canonicalize(dir.path()).unwrap();
        let ctx = top.join("ctx");
        for (path, text) in [
            ("Dockerfile", "FROM scratch\nCOPY app /app\n"),
            (".dockerignore", "docs\n"),
            ("app/main.py", "print(1)\n"),
            ("docs/readme.md", "# docs\n"),
            ("other/notes.txt", "x\n"),
        ] {
            let p = ctx.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        std::fs::write(top.join("reggie-build.toml"), "").unwrap();
        let target = Target {
            name: "app".into(),
            spec: ContextSpec::new(&ctx),
            plan: PlanOptions::default(),
            budget: Default::default(),
        };
        (dir, target, top)
    }

    #[test]
    fn only_changes_that_reach_the_build_affect_it() {
        let (_dir, target, top) = fixture();
        let config = top.join("reggie-build.toml");
        let cases: &[(&str, bool)] = &[
            ("ctx/app/main.py", true),
            ("ctx/app/new.py", true),
            ("ctx/Dockerfile", true),
            ("ctx/.dockerignore", true),
            ("ctx/Dockerfile.dockerignore", true),
            ("reggie-build.toml", true),
            ("sst.config.ts", true),
            ("deploy/docker-compose.yml", true),
            ("ctx/other/notes.txt", false),
            ("ctx/sst.config.js", false),
            ("ctx/apps/main.py", false),
            ("README.md", false),
            ("../elsewhere/app/main.py", false),
        ];
        for (path, want) in cases {
            let got = affected_by(&target, Some(&config), &[PathBuf::from(path)], &top).unwrap();
            assert_eq!(got, *want, "{path}");
        }
        // Absolute paths, and several at once.
        let many = [top.join("README.md"), top.join("ctx/app/main.py")];
        assert!(affected_by(&target, None, &many, Path::new("/")).unwrap());
        assert!(!affected_by(&target, None, &[], &top).unwrap());
    }

    #[test]
    fn a_repository_reached_through_a_symlink_is_recognised() {
        let (dir, target, top) = fixture();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&top, &link).unwrap();
        let changed = [PathBuf::from("ctx/app/main.py")];
        assert!(affected_by(&target, None, &changed, &link).unwrap());
    }
}
