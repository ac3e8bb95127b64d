//! Budgets for CI: the limits an image is held to (its size, its largest
//! layer, its waste, its growth against a baseline report) checked
//! against a [`Report`], each failure naming the measured figure, the
//! Dockerfile line of the largest contributor and the fix.
//!
//! Sizes are the layers' bytes uncompressed, which every source knows, so
//! a budget means the same for an archive, the daemon and a registry.
//!
//! ```
//! use reggie_build::inspect::budget::{self, Budgets, Declared};
//! # fn report() -> reggie_build::inspect::Report { unimplemented!() }
//! # fn main() { if true { return; }
//! let budgets = Budgets {
//!     max_size: Some(Declared::new(300_000_000, "--max-size")),
//!     ..Budgets::default()
//! };
//! let verdict = budget::evaluate(&report(), &budgets, None, None);
//! for failed in verdict.checks.iter().filter(|c| !c.passed) {
//!     eprintln!("{}", failed.message);
//! }
//! # }
//! ```

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::report::{Origin, Report, SCHEMA};
use crate::config::Growth;
use crate::units::humanize;

/// A limit and where it was declared (`reggie-build.toml:12`,
/// `--max-size`), for messages.
#[derive(Debug, Clone, PartialEq)]
pub struct Declared<T> {
    /// The limit.
    pub value: T,
    /// Where it comes from.
    pub from: String,
}

impl<T> Declared<T> {
    /// A limit declared at `from`.
    pub fn new(value: T, from: impl Into<String>) -> Declared<T> {
        Declared {
            value,
            from: from.into(),
        }
    }
}

/// The limits to check.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Budgets {
    /// Bytes of all layers (uncompressed).
    pub max_size: Option<Declared<u64>>,
    /// Bytes of the largest layer (uncompressed).
    pub max_layer: Option<Declared<u64>>,
    /// Bytes of waste.
    pub max_waste: Option<Declared<u64>>,
    /// Growth against the baseline.
    pub max_growth: Option<Declared<Growth>>,
}

impl Budgets {
    /// The limits of `reggie-build.toml`'s `size_budget` (declared in
    /// `config` at `line`).
    pub fn from_config(budget: &crate::config::SizeBudget, config: &Path) -> Budgets {
        let from = format!("{}:{}", crate::text::show_path(config), budget.line);
        let declared = |v: Option<u64>| v.map(|v| Declared::new(v, from.clone()));
        Budgets {
            max_size: declared(budget.max_size),
            max_layer: declared(budget.max_layer),
            max_waste: declared(budget.max_waste),
            max_growth: budget.max_growth.map(|g| Declared::new(g, from.clone())),
        }
    }

    /// Whether no limit is set.
    pub fn is_empty(&self) -> bool {
        self.max_size.is_none()
            && self.max_layer.is_none()
            && self.max_waste.is_none()
            && self.max_growth.is_none()
    }
}

/// Why a baseline report cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    /// The file cannot be read.
    #[error("cannot read the baseline {}: {source}", crate::text::show_path(.path))]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: crate::input::InputError,
    },
    /// It is not a report `size --format json` wrote.
    #[error("the baseline {} is not a `reggie-build size --format json` report ({why}): write one with `reggie-build size IMAGE --format json > FILE` on the base branch", crate::text::show_path(.path))]
    Invalid {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong, with the line and column.
        why: String,
    },
    /// A newer reggie-build wrote it.
    #[error("the baseline {} has report schema {schema}; this reggie-build reads schema {SCHEMA}: write the baseline with the same version", crate::text::show_path(.path))]
    Schema {
        /// The file.
        path: std::path::PathBuf,
        /// Its schema.
        schema: u32,
    },
}

/// What a baseline report is read for: the total and the bytes of each
/// step's layer.
#[derive(Debug, Clone, Deserialize)]
pub struct Baseline {
    schema: u32,
    size: BaselineSizes,
    layers: Vec<BaselineLayer>,
    steps: Vec<BaselineStep>,
}

#[derive(Debug, Clone, Deserialize)]
struct BaselineSizes {
    uncompressed: u64,
}

#[derive(Debug, Clone, Deserialize)]
struct BaselineLayer {
    uncompressed: u64,
    step: Option<usize>,
}

#[derive(Debug, Clone, Deserialize)]
struct BaselineStep {
    created_by: String,
    origin: Origin,
}

impl Baseline {
    /// Reads a `size --format json` report (a regular file of at most
    /// [`crate::input::TEXT_LIMIT`] bytes).
    pub fn read(path: &Path) -> Result<Baseline, BaselineError> {
        let bytes = crate::input::read_given(path, crate::input::TEXT_LIMIT).map_err(|source| {
            BaselineError::Read {
                path: path.to_path_buf(),
                source,
            }
        })?;
        Baseline::parse(path, &bytes)
    }

    /// Parses a `size --format json` report (`path` names it in errors).
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Baseline, BaselineError> {
        let invalid = |why: String| BaselineError::Invalid {
            path: path.to_path_buf(),
            why: crate::text::bounded(&crate::text::escape(&why), 300).into_owned(),
        };
        // The schema first: a newer report says so rather than failing on
        // a field it renamed.
        #[derive(Deserialize)]
        struct Versioned {
            schema: Option<u32>,
        }
        let versioned: Versioned = serde_json::from_slice(bytes).map_err(|e| {
            invalid(match e.classify() {
                serde_json::error::Category::Data => format!("{e}"),
                _ => format!("not JSON: {e}"),
            })
        })?;
        match versioned.schema {
            None => return Err(invalid("no `schema` field".into())),
            Some(s) if s > SCHEMA => {
                return Err(BaselineError::Schema {
                    path: path.to_path_buf(),
                    schema: s,
                })
            }
            Some(_) => {}
        }
        let b: Baseline = serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
        if b.layers
            .iter()
            .any(|l| l.step.is_some_and(|s| s >= b.steps.len()))
        {
            return Err(invalid(
                "a layer names a step the report does not have".into(),
            ));
        }
        let _ = b.schema;
        Ok(b)
    }
}

/// One budget checked.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// `max_size`, `max_layer`, `max_waste` or `max_growth`.
    pub budget: &'static str,
    /// Where the limit was declared.
    pub declared: String,
    /// The limit in bytes (for growth: the bytes allowed over the
    /// baseline).
    pub limit: u64,
    /// The limit as written (`300 MB`, `10%`).
    pub limit_text: String,
    /// What was measured, in bytes (for growth: bytes over the baseline,
    /// 0 when it shrank).
    pub measured: u64,
    /// Within the limit.
    pub passed: bool,
    /// The largest contributor to the figure.
    pub culprit: Option<Culprit>,
    /// One sentence: the budget, the figure, the limit.
    pub message: String,
    /// What to change (for a failure).
    pub fix: Option<String>,
}

/// The largest contributor to a figure, where the Dockerfile made it.
#[derive(Debug, Clone, Serialize)]
pub struct Culprit {
    /// `layer 7`, `waste: pip cache /root/.cache/pip`.
    pub what: String,
    /// Its bytes.
    pub bytes: u64,
    /// The Dockerfile, when known.
    pub file: Option<String>,
    /// Its line, when known.
    pub line: Option<usize>,
    /// `backend/Dockerfile:12 COPY . /app`, `base image python:3.12`.
    pub at: String,
}

/// The growth of each step against the baseline.
#[derive(Debug, Clone, Serialize)]
pub struct GrowthReport {
    /// Bytes in the baseline.
    pub before: u64,
    /// Bytes now.
    pub after: u64,
    /// `after - before`.
    pub delta: i64,
    /// The steps whose layers changed, the largest growth first.
    pub steps: Vec<StepGrowth>,
}

/// One step's layers against the baseline.
#[derive(Debug, Clone, Serialize)]
pub struct StepGrowth {
    /// `backend/Dockerfile:12 COPY . /app` (where it is now).
    pub step: String,
    /// The Dockerfile line now, when known.
    pub line: Option<usize>,
    /// Bytes of its layers in the baseline (0: a new step).
    pub before: u64,
    /// Bytes now (0: the step is gone).
    pub after: u64,
    /// `after - before`.
    pub delta: i64,
}

/// The budgets checked against one report.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// Every budget held.
    pub passed: bool,
    /// One per budget set.
    pub checks: Vec<Check>,
    /// Against the baseline, when one was given.
    pub growth: Option<GrowthReport>,
}

/// Where `origin` is, for messages: `Dockerfile:12 COPY . /app`.
fn at(origin: &Origin, dockerfile: Option<&str>) -> (Option<usize>, String) {
    let df = dockerfile.unwrap_or("Dockerfile");
    match origin {
        Origin::Instruction { line, text, .. } => (Some(*line), format!("{df}:{line} {text}")),
        Origin::Base {
            image,
            line: Some(l),
        } => (
            Some(*l),
            format!(
                "{df}:{l} (base image{})",
                image
                    .as_deref()
                    .map(|i| format!(" {i}"))
                    .unwrap_or_default()
            ),
        ),
        Origin::Base { image, line: None } => (
            None,
            format!(
                "base image{}",
                image
                    .as_deref()
                    .map(|i| format!(" {i}"))
                    .unwrap_or_default()
            ),
        ),
        Origin::Unknown => (None, "a step not matched to a Dockerfile line".into()),
    }
}

fn culprit(what: String, bytes: u64, origin: &Origin, report: &Report) -> Culprit {
    let (line, at) = at(origin, report.dockerfile.as_deref());
    Culprit {
        what,
        bytes,
        file: line.and(report.dockerfile.clone()),
        line,
        at,
    }
}

/// What to do about layer `number` being large: its own waste's fix when
/// it has waste, else what fits the kind of step that made it.
fn layer_fix(report: &Report, number: usize, tree: Option<&str>) -> String {
    let mut fix = match report.waste.iter().find(|w| w.added_by.layer == number) {
        Some(w) => format!(
            "{} of it is waste (the largest: {}: {}): {}",
            humanize(
                report
                    .waste
                    .iter()
                    .filter(|x| x.added_by.layer == number)
                    .map(|x| x.bytes)
                    .sum()
            ),
            w.what,
            w.path,
            w.fix
        ),
        None => match report.layer_origin(number) {
            Origin::Base { .. } => "use a smaller base image (a -slim or distroless variant), or build in this stage and COPY --from only what the runtime needs into a small one".into(),
            Origin::Instruction { text, .. } if starts_with_word(&text, &["COPY", "ADD"]) => {
                "copy only what the runtime needs (a narrower source or an ignore file: `reggie-build analyze` shows what the context sends), or build it in an earlier stage and COPY --from its output".into()
            }
            Origin::Instruction { .. } => "remove what this step leaves behind in the same RUN, or run it in a build stage and COPY --from only its output".into(),
            Origin::Unknown => "pass -f DOCKERFILE to name the line that made it".into(),
        },
    };
    if let Some(cmd) = tree {
        fix.push_str(&format!("; its files: `{cmd} --tree {number}`"));
    }
    fix
}

fn starts_with_word(text: &str, words: &[&str]) -> bool {
    let first = text.split_whitespace().next().unwrap_or("");
    words.iter().any(|w| first.eq_ignore_ascii_case(w))
}

/// A key that names the same step in two builds of one Dockerfile: its
/// stage and text (lines move when others are added), and which
/// occurrence of that text it is.
fn step_keys<'a>(steps: impl Iterator<Item = (&'a Origin, &'a str)>) -> Vec<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    steps
        .map(|(origin, created_by)| {
            let base = match origin {
                Origin::Instruction { stage, text, .. } => format!("i\0{stage}\0{text}"),
                Origin::Base { image, .. } => format!("b\0{}", image.as_deref().unwrap_or("")),
                Origin::Unknown => format!("u\0{created_by}"),
            };
            let n = seen.entry(base.clone()).or_default();
            *n += 1;
            format!("{base}\0{n}")
        })
        .collect()
}

/// Each step's layer bytes against the baseline's.
pub fn growth(report: &Report, baseline: &Baseline) -> GrowthReport {
    let before_keys = step_keys(
        baseline
            .steps
            .iter()
            .map(|s| (&s.origin, s.created_by.as_str())),
    );
    let after_keys = step_keys(
        report
            .steps
            .iter()
            .map(|s| (&s.origin, s.created_by.as_str())),
    );
    // Bytes per step key; layers no step names, by number.
    let mut before: HashMap<String, u64> = HashMap::new();
    for (i, l) in baseline.layers.iter().enumerate() {
        let key = match l.step {
            Some(s) => before_keys[s].clone(),
            None => format!("l\0{}", i + 1),
        };
        *before.entry(key).or_default() += l.uncompressed;
    }
    let mut after: Vec<(String, u64, Option<usize>, String)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for l in &report.layers {
        let (key, label, line) = match l.step {
            Some(s) => {
                let (line, label) = at(&report.steps[s].origin, report.dockerfile.as_deref());
                let label = match report.steps[s].origin {
                    Origin::Unknown => report.steps[s].created_by.clone(),
                    _ => label,
                };
                (after_keys[s].clone(), label, line)
            }
            None => (
                format!("l\0{}", l.number),
                format!("layer {}", l.number),
                None,
            ),
        };
        match index.get(&key) {
            Some(&i) => after[i].1 += l.uncompressed,
            None => {
                index.insert(key.clone(), after.len());
                after.push((key, l.uncompressed, line, label));
            }
        }
    }
    let mut steps: Vec<StepGrowth> = Vec::new();
    for (key, bytes, line, label) in &after {
        let was = before.remove(key).unwrap_or(0);
        if was != *bytes {
            steps.push(StepGrowth {
                step: label.clone(),
                line: *line,
                before: was,
                after: *bytes,
                delta: *bytes as i64 - was as i64,
            });
        }
    }
    // Steps of the baseline that are gone.
    let mut gone: Vec<(&String, u64)> = before.iter().map(|(k, v)| (k, *v)).collect();
    gone.sort();
    for (key, bytes) in gone.into_iter().filter(|(_, b)| *b > 0) {
        let mut parts = key.split('\0');
        let label = match (parts.next(), parts.next(), parts.next()) {
            (Some("i"), Some(stage), Some(text)) => format!("[{stage}] {text} (gone)"),
            (Some("b"), Some(image), _) => format!("base image {image} (gone)"),
            (_, Some(what), _) => format!("{what} (gone)"),
            _ => "a step (gone)".into(),
        };
        steps.push(StepGrowth {
            step: label,
            line: None,
            before: bytes,
            after: 0,
            delta: -(bytes as i64),
        });
    }
    steps.sort_by(|a, b| b.delta.cmp(&a.delta).then(a.step.cmp(&b.step)));
    GrowthReport {
        before: baseline.size.uncompressed,
        after: report.size.uncompressed,
        delta: report.size.uncompressed as i64 - baseline.size.uncompressed as i64,
        steps,
    }
}

/// Checks `budgets` against `report` (and `baseline`, for growth).
/// `tree` is the command that lists a layer's files (`reggie-build size
/// app.tar`), for the fixes.
pub fn evaluate(
    report: &Report,
    budgets: &Budgets,
    baseline: Option<&Baseline>,
    tree: Option<&str>,
) -> Verdict {
    let mut checks = Vec::new();
    let largest_layer = report.layers.iter().max_by(|a, b| {
        a.uncompressed
            .cmp(&b.uncompressed)
            .then(b.number.cmp(&a.number))
    });
    let layer_culprit = || {
        largest_layer.map(|l| {
            culprit(
                format!("layer {}", l.number),
                l.uncompressed,
                &report.layer_origin(l.number),
                report,
            )
        })
    };
    if let Some(b) = &budgets.max_size {
        let measured = report.size.uncompressed;
        let passed = measured <= b.value;
        checks.push(Check {
            budget: "max_size",
            declared: b.from.clone(),
            limit: b.value,
            limit_text: humanize(b.value),
            measured,
            passed,
            culprit: layer_culprit(),
            message: over("image size", measured, b.value, "the layers, uncompressed"),
            fix: (!passed).then(|| {
                largest_layer.map_or_else(
                    || "the image has no layers".to_string(),
                    |l| {
                        format!(
                            "start with the largest layer: {}",
                            layer_fix(report, l.number, tree)
                        )
                    },
                )
            }),
        });
    }
    if let Some(b) = &budgets.max_layer {
        let measured = largest_layer.map_or(0, |l| l.uncompressed);
        let passed = measured <= b.value;
        checks.push(Check {
            budget: "max_layer",
            declared: b.from.clone(),
            limit: b.value,
            limit_text: humanize(b.value),
            measured,
            passed,
            culprit: layer_culprit(),
            message: over(
                "largest layer",
                measured,
                b.value,
                &largest_layer.map_or("no layers".into(), |l| format!("layer {}", l.number)),
            ),
            fix: (!passed)
                .then(|| largest_layer.map(|l| layer_fix(report, l.number, tree)))
                .flatten(),
        });
    }
    if let Some(b) = &budgets.max_waste {
        let measured = report.waste_bytes;
        let passed = measured <= b.value;
        let top = report.waste.first();
        checks.push(Check {
            budget: "max_waste",
            declared: b.from.clone(),
            limit: b.value,
            limit_text: humanize(b.value),
            measured,
            passed,
            culprit: top.map(|w| {
                culprit(
                    format!("{}: {}", w.what, w.path),
                    w.bytes,
                    &w.added_by.origin,
                    report,
                )
            }),
            message: over(
                "waste",
                measured,
                b.value,
                &match report.waste.len() {
                    1 => "1 item".to_string(),
                    n => format!("{n} items"),
                },
            ),
            fix: (!passed).then(|| top.map(|w| w.fix.clone())).flatten(),
        });
    }
    let growth = baseline.map(|b| growth(report, b));
    if let (Some(b), Some(g)) = (&budgets.max_growth, &growth) {
        let allowed = b.value.allowed(g.before);
        let measured = g.delta.max(0) as u64;
        let passed = measured <= allowed;
        let limit_text = match b.value {
            Growth::Percent(_) => format!(
                "{} ({} of {})",
                b.value,
                humanize(allowed),
                humanize(g.before)
            ),
            Growth::Bytes(_) => b.value.to_string(),
        };
        let top = g.steps.first().filter(|s| s.delta > 0);
        checks.push(Check {
            budget: "max_growth",
            declared: b.from.clone(),
            limit: allowed,
            limit_text: limit_text.clone(),
            measured,
            passed,
            culprit: top.map(|s| Culprit {
                what: "the step that grew most".into(),
                bytes: s.delta as u64,
                file: s.line.and(report.dockerfile.clone()),
                line: s.line,
                at: s.step.clone(),
            }),
            message: format!(
                "growth {} ({} → {}) against the baseline, budget {limit_text}",
                signed(g.delta),
                humanize(g.before),
                humanize(g.after)
            ),
            fix: (!passed).then(|| {
                "make the step that grew smaller; if the growth is intended, write a new baseline (`reggie-build size IMAGE --format json > FILE`) or raise max_growth".to_string()
            }),
        });
    }
    Verdict {
        passed: checks.iter().all(|c| c.passed),
        checks,
        growth,
    }
}

fn over(what: &str, measured: u64, limit: u64, detail: &str) -> String {
    if measured > limit {
        format!(
            "{what} {} ({detail}) is {} over the {} budget",
            humanize(measured),
            humanize(measured - limit),
            humanize(limit)
        )
    } else {
        format!(
            "{what} {} ({detail}) is within the {} budget",
            humanize(measured),
            humanize(limit)
        )
    }
}

/// `+1.2 MB` / `-300 kB`.
pub fn signed(delta: i64) -> String {
    let size = humanize(delta.unsigned_abs());
    if delta >= 0 {
        format!("+{size}")
    } else {
        format!("-{size}")
    }
}
