//! Reading images: what an image weighs, layer by layer, which Dockerfile
//! line made each layer, and which bytes are wasted (hidden by a later
//! layer, written twice, caches and toolchains left behind), with the fix.
//!
//! The stage reads each layer once ([`layer`]: a bounded tar reader that
//! keeps a compact path index, never file contents, and checks every
//! digest), from a file or directory ([`source`]: `docker save` archives,
//! OCI layouts) or a stream (the daemon's export and the registry's blobs
//! come through `ops::size`, which owns the Docker and registry clients);
//! joins the image's history to the Dockerfile's instructions
//! ([`attribute`]); applies the layers in order ([`overlay`]) and finds
//! the waste ([`waste`]); and returns one [`Report`] that `formats`
//! renders.
//!
//! # Example
//!
//! ```no_run
//! use reggie_build::inspect::{self, SizeOptions};
//!
//! let shared = inspect::layer::Shared::default();
//! let options = SizeOptions::default();
//! let image = inspect::source::load_path("app.tar".as_ref(), &options.load, &shared)?;
//! let inspected = inspect::analyze(image, &options)?;
//! println!("{} bytes wasted", inspected.report.waste_bytes);
//! # Ok::<(), inspect::InspectError>(())
//! ```

pub mod attribute;
pub mod budget;
pub mod image;
mod inspected;
pub mod layer;
pub mod overlay;
pub mod paths;
pub mod prove;
pub mod report;
pub mod source;
pub mod tar;
pub mod waste;

use std::path::{Path, PathBuf};

pub use inspected::{Inspected, TreeRow};
pub use report::Report;
pub use source::{LoadOptions, Loaded, SourceError};

use crate::analyze::RuleSet;
use crate::plan::dockerfile::{Dockerfile, DockerfileError, PlanOptions};
use attribute::Method;
use report::{KindRow, LayerRef, LayerRow, Origin, Sizes, StepRow, WasteRow};

/// The label `reggie-build image` records on the images it builds: which
/// Dockerfile (its path and SHA-256) and which stage made the image, so
/// that `size` finds the lines without `-f` and knows they are the
/// build's. Build arguments are not recorded (they may hold secrets).
pub const RECORD_LABEL: &str = "dev.reggie-build.dockerfile";

/// The label `reggie-build image` records the build context's path in,
/// relative to the repository holding it (`.` for its top; nothing when
/// the context is in no repository: no local directory name travels in
/// an image), for `size --prove` to rebuild it.
pub const RECORD_CONTEXT_LABEL: &str = "dev.reggie-build.context";

/// The value of [`RECORD_LABEL`]: `v1;<sha256 hex>;<stage index>;<path>`.
pub fn record(path: &str, dockerfile: &[u8], stage: usize) -> String {
    use sha2::{Digest, Sha256};
    let hex = layer::sha_string(&Sha256::digest(dockerfile).into());
    format!("v1;{};{stage};{path}", &hex[7..])
}

/// A parsed [`RECORD_LABEL`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// The Dockerfile's path as given to the build.
    pub path: String,
    /// Its SHA-256 (hex).
    pub sha256: String,
    /// The stage built.
    pub stage: usize,
}

/// Parses a [`RECORD_LABEL`] value.
pub fn parse_record(value: &str) -> Option<Recorded> {
    let mut parts = value.splitn(4, ';');
    if parts.next()? != "v1" {
        return None;
    }
    let sha256 = parts.next()?.to_string();
    let stage = parts.next()?.parse().ok()?;
    let path = parts.next()?.to_string();
    (sha256.len() == 64 && !path.is_empty()).then_some(Recorded {
        path,
        sha256,
        stage,
    })
}

/// How to attribute and measure an image.
#[derive(Debug, Clone, Default)]
pub struct SizeOptions {
    /// How to read it.
    pub load: LoadOptions,
    /// The Dockerfile it was built from (default: the one recorded in its
    /// labels, if any).
    pub dockerfile: Option<PathBuf>,
    /// The target and build arguments of the build.
    pub plan: PlanOptions,
}

/// Why `size` failed.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// Reading the image failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The layers write through a link.
    #[error(transparent)]
    Layers(#[from] overlay::ThroughLink),
    /// The Dockerfile cannot be read.
    #[error("cannot read the Dockerfile {}: {source}", crate::text::show_path(.path))]
    DockerfileRead {
        /// Its path.
        path: PathBuf,
        /// Why.
        source: crate::input::InputError,
    },
    /// The Dockerfile does not parse.
    #[error(transparent)]
    Dockerfile(#[from] DockerfileError),
    /// Reading files to hash them failed.
    #[error("hashing files of the image failed: {0}")]
    Hash(std::io::Error),
}

fn sha_hex(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    layer::sha_string(&Sha256::digest(data).into())[7..].to_string()
}

/// The Dockerfile to match, and what the image's record says of it.
fn dockerfile(
    loaded: &Loaded,
    options: &SizeOptions,
    notes: &mut Vec<String>,
) -> Result<Option<(String, Dockerfile, Option<usize>)>, InspectError> {
    let recorded = loaded
        .config
        .labels
        .get(RECORD_LABEL)
        .and_then(|v| parse_record(v));
    let path = match (&options.dockerfile, &recorded) {
        (Some(p), _) => p.clone(),
        (None, Some(r)) => match find_recorded(&r.path) {
            Some(p) => p,
            None => {
                notes.push(format!(
                    "the image was built from {} (recorded by reggie-build image, relative to its repository), which is not here: run inside that repository, or pass -f",
                    crate::text::escape(&r.path)
                ));
                return Ok(None);
            }
        },
        (None, None) => return Ok(None),
    };
    let bytes = crate::input::read_given(&path, crate::input::TEXT_LIMIT).map_err(|source| {
        InspectError::DockerfileRead {
            path: path.clone(),
            source,
        }
    })?;
    let label = crate::text::show_path(&path);
    let df = crate::plan::dockerfile::parse(&label, &bytes)?;
    let mut target = None;
    if let Some(r) = &recorded {
        if r.sha256 == sha_hex(&bytes) && r.stage < df.stages.len() {
            target = Some(r.stage);
        } else {
            notes.push(format!(
                "{label} is not the Dockerfile the image was built from (reggie-build image recorded {} with another content): lines are matched by instruction",
                crate::text::escape(&r.path)
            ));
        }
    }
    if target.is_none() {
        if let Some(name) = &options.plan.target {
            let lower = name.to_ascii_lowercase();
            target = df
                .stages
                .iter()
                .position(|s| s.name.as_deref() == Some(lower.as_str()));
        }
    }
    Ok(Some((label, df, target)))
}

/// A recorded Dockerfile path (relative to the repository it was built
/// in, or to its context): looked up from each of [`recorded_bases`].
/// An absolute or `..` path (not one `image` writes) is not looked up.
fn find_recorded(recorded: &str) -> Option<PathBuf> {
    let rel = relative(recorded)?;
    recorded_bases()
        .into_iter()
        .map(|d| d.join(rel))
        .find(|p| p.is_file())
}

/// A recorded path, if it is relative and has no `..`.
pub fn relative(recorded: &str) -> Option<&Path> {
    let rel = Path::new(recorded);
    let bad = rel.is_absolute()
        || rel
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir));
    (!bad).then_some(rel)
}

/// Where recorded paths are looked up from, in order: the current
/// directory, then each enclosing directory that holds a `.git` (the
/// repository's top).
pub fn recorded_bases() -> Vec<PathBuf> {
    let Ok(cwd) = std::env::current_dir() else {
        return Vec::new();
    };
    std::iter::once(cwd.clone())
        .chain(
            cwd.ancestors()
                .filter(|d| d.join(".git").symlink_metadata().is_ok())
                .map(Path::to_path_buf),
        )
        .collect()
}

/// Attributes, applies and measures a loaded image.
pub fn analyze(mut image: Loaded, options: &SizeOptions) -> Result<Inspected, InspectError> {
    let mut notes = Vec::new();
    let df = dockerfile(&image, options, &mut notes)?;
    let recorded_target = df.as_ref().and_then(|d| d.2);
    let was_recorded = recorded_target.is_some()
        && options.plan.target.is_none()
        && image.config.labels.contains_key(RECORD_LABEL);
    let attribution = attribute::attribute(
        &image.config.history,
        df.as_ref().map(|d| &d.1),
        &options.plan,
        recorded_target,
        was_recorded,
    );
    // Layers are the history entries that are not empty, in order.
    let with_layer: Vec<usize> = image
        .config
        .history
        .iter()
        .enumerate()
        .filter(|(_, h)| !h.empty_layer)
        .map(|(i, _)| i)
        .collect();
    let layer_step: Vec<Option<usize>> = if with_layer.len() == image.layers.len() {
        with_layer.iter().map(|&i| Some(i)).collect()
    } else {
        if !image.config.history.is_empty() {
            notes.push(format!(
                "the history lists {} steps with a layer for {} layers: layers are not attributed",
                with_layer.len(),
                image.layers.len()
            ));
        }
        vec![None; image.layers.len()]
    };
    let dockerfile_label = df.as_ref().map(|d| d.0.clone());
    let origin_of = |step: usize| -> (Origin, Method) {
        let (o, m) = &attribution.entries[step];
        let origin = match o {
            attribute::Origin::Base { image, line } => Origin::Base {
                image: image.as_deref().map(crate::text::excerpt),
                line: *line,
            },
            attribute::Origin::Instruction {
                stage_name,
                line,
                end_line,
                text,
                ..
            } => Origin::Instruction {
                stage: stage_name.clone(),
                line: *line,
                end_line: *end_line,
                text: crate::text::excerpt(text),
            },
            attribute::Origin::Unknown => Origin::Unknown,
        };
        (origin, *m)
    };
    let roles: Vec<waste::LayerRole> = layer_step
        .iter()
        .map(|s| match s.map(|s| &attribution.entries[s]) {
            Some((
                attribute::Origin::Instruction {
                    keyword,
                    text,
                    from_context,
                    ..
                },
                _,
            )) => waste::LayerRole {
                keyword: keyword.clone(),
                from_context: *from_context,
                base: false,
                text: text.clone(),
            },
            Some((attribute::Origin::Base { .. }, _)) => waste::LayerRole {
                keyword: String::new(),
                from_context: false,
                base: true,
                text: String::new(),
            },
            _ => waste::LayerRole {
                keyword: String::new(),
                from_context: false,
                base: false,
                text: String::new(),
            },
        })
        .collect();

    image.table.link_children();
    let rules = RuleSet::builtin();
    let overlay = {
        let refs: Vec<&layer::LayerIndex> = image.layers.iter().map(|l| &l.index).collect();
        overlay::Overlay::apply(&image.table, &refs)?
    };
    let wanted = {
        let refs: Vec<&layer::LayerIndex> = image.layers.iter().map(|l| &l.index).collect();
        waste::Waste::new(&image.table, refs, &roles, &overlay, &rules).collisions()
    };
    image
        .hash_entries(&wanted, options.load.threads())
        .map_err(InspectError::Hash)?;
    let refs: Vec<&layer::LayerIndex> = image.layers.iter().map(|l| &l.index).collect();
    let waste = waste::Waste::new(&image.table, refs.clone(), &roles, &overlay, &rules);
    let items = waste.items(&rules);

    let mut hidden_per_layer = vec![0u64; image.layers.len()];
    for h in &overlay.hidden {
        hidden_per_layer[h.at.0 as usize] += h.bytes;
    }
    let layers: Vec<LayerRow> = image
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| LayerRow {
            number: i + 1,
            diff_id: layer::sha_string(&l.index.diff_id),
            uncompressed: l.index.size,
            compressed: l.compressed_size,
            files: l.index.file_bytes(),
            entries: l.index.entries.len() as u64,
            hidden: hidden_per_layer[i],
            step: layer_step[i],
        })
        .collect();
    let mut step_layer = vec![None; image.config.history.len()];
    for (l, s) in layer_step.iter().enumerate() {
        if let Some(s) = s {
            step_layer[*s] = Some(l + 1);
        }
    }
    let steps: Vec<StepRow> = image
        .config
        .history
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let (origin, method) = origin_of(i);
            StepRow {
                created_by: crate::text::bounded(&crate::text::escape(&h.created_by), 200)
                    .into_owned(),
                layer: step_layer[i],
                origin,
                method,
            }
        })
        .collect();
    let layer_ref = |l: u16| LayerRef {
        layer: l as usize + 1,
        origin: layer_step[l as usize].map_or(Origin::Unknown, |s| origin_of(s).0),
    };
    let waste_rows: Vec<WasteRow> = items
        .iter()
        .map(|it| WasteRow {
            kind: it.kind,
            what: crate::text::escape(&it.label).into_owned(),
            bytes: it.bytes,
            files: it.files,
            path: image.table.display(it.root),
            sample: it.sample.iter().map(|p| image.table.display(*p)).collect(),
            added_by: layer_ref(it.added),
            hidden_by: it.other.map(layer_ref),
            fix: it.fix.clone(),
        })
        .collect();
    let mut by_kind: std::collections::BTreeMap<waste::Kind, (u64, usize)> = Default::default();
    for w in &waste_rows {
        let e = by_kind.entry(w.kind).or_default();
        e.0 += w.bytes;
        e.1 += 1;
    }
    let mut waste_by_kind: Vec<KindRow> = by_kind
        .into_iter()
        .map(|(kind, (bytes, items))| KindRow {
            kind,
            label: kind.label().to_string(),
            bytes,
            items,
        })
        .collect();
    waste_by_kind.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.kind.cmp(&b.kind)));
    let compressed = image
        .layers
        .iter()
        .map(|l| l.compressed_size)
        .sum::<Option<u64>>();
    if compressed.is_none() {
        notes.push("this source stores layers uncompressed: the size as pushed is not known (read the image from its registry, or an OCI layout with gzip layers, for it)".into());
    }
    if df.is_none() && notes.is_empty() && !image.config.history.is_empty() {
        notes.push(
            "no Dockerfile given: pass -f DOCKERFILE to attribute layers to its lines".into(),
        );
    }
    let report = Report {
        schema: report::SCHEMA,
        source: image.source.clone(),
        image: image
            .name
            .as_deref()
            .map(|n| crate::text::escape(n).into_owned()),
        platform: image.config.platform(),
        config_digest: image.config_digest.clone(),
        dockerfile: dockerfile_label,
        target: attribution.target.and_then(|t| {
            df.as_ref().map(|d| {
                d.1.stages[t]
                    .name
                    .clone()
                    .unwrap_or_else(|| format!("stage-{t}"))
            })
        }),
        size: Sizes {
            uncompressed: image.layers.iter().map(|l| l.index.size).sum(),
            compressed,
            files: waste.live_bytes(),
            entries: image
                .layers
                .iter()
                .map(|l| l.index.entries.len() as u64)
                .sum(),
        },
        layers,
        steps,
        waste_bytes: waste_rows.iter().map(|w| w.bytes).sum(),
        waste: waste_rows,
        waste_by_kind,
        notes,
    };
    drop(waste);
    Ok(Inspected {
        report,
        image,
        overlay,
    })
}

/// Reads and analyses an image in a file or directory (`-` for a
/// `docker save` stream on stdin).
pub fn inspect_path(
    path: &Path,
    options: &SizeOptions,
    shared: &layer::Shared,
) -> Result<Inspected, InspectError> {
    let image = if path == Path::new("-") {
        source::load_stream(
            std::io::stdin().lock(),
            "docker save stream on stdin",
            &options.load,
            shared,
        )?
    } else {
        source::load_path(path, &options.load, shared)?
    };
    analyze(image, options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let v = record("backend/Docker;file", b"FROM scratch\n", 2);
        let r = parse_record(&v).unwrap();
        assert_eq!(r.path, "backend/Docker;file");
        assert_eq!(r.stage, 2);
        assert_eq!(r.sha256, sha_hex(b"FROM scratch\n"));
        assert!(parse_record("v2;x;1;p").is_none());
    }
}
