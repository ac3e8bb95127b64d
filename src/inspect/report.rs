//! The one report `size` produces, which every format renders: the
//! image's totals, its layers and history attributed to Dockerfile
//! lines, and the waste items with their fixes. Its JSON form is the
//! `--format json` output (versioned by [`SCHEMA`]).

use serde::Serialize;

use super::attribute::Method;
use super::waste::Kind;

/// The version of the JSON report's shape.
pub const SCHEMA: u32 = 1;

/// What `size` found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// [`SCHEMA`].
    pub schema: u32,
    /// What was read (`docker save archive app.tar`, `image app:1 in the
    /// daemon`).
    pub source: String,
    /// The image's name, when the source gives one.
    pub image: Option<String>,
    /// `os/arch`.
    pub platform: String,
    /// The image config's digest (the image id).
    pub config_digest: Option<String>,
    /// The Dockerfile the history was matched against.
    pub dockerfile: Option<String>,
    /// The stage the image was matched to.
    pub target: Option<String>,
    /// Totals.
    pub size: Sizes,
    /// Layers, base first.
    pub layers: Vec<LayerRow>,
    /// Every history entry, with what made it.
    pub steps: Vec<StepRow>,
    /// Waste items, largest first.
    pub waste: Vec<WasteRow>,
    /// Waste per kind, largest first.
    pub waste_by_kind: Vec<KindRow>,
    /// Bytes of all waste items.
    pub waste_bytes: u64,
    /// Things the reader should know (a history that does not match,
    /// sizes not known for this source).
    pub notes: Vec<String>,
}

/// An image's totals.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Sizes {
    /// Bytes of the layers' tars, uncompressed (what the daemon stores
    /// and `docker save` writes).
    pub uncompressed: u64,
    /// Bytes of the layers as pushed (compressed), when the source says.
    pub compressed: Option<u64>,
    /// Bytes of the files the final image shows.
    pub files: u64,
    /// Entries in all layers.
    pub entries: u64,
}

/// Where an instruction is.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Origin {
    /// The base image.
    Base {
        /// Its name, when known.
        image: Option<String>,
        /// The `FROM` line.
        line: Option<usize>,
    },
    /// A Dockerfile instruction.
    Instruction {
        /// Its stage's name.
        stage: String,
        /// First line.
        line: usize,
        /// Last line.
        end_line: usize,
        /// The instruction, on one line, shortened and escaped.
        text: String,
    },
    /// Not known.
    Unknown,
}

/// One layer.
#[derive(Debug, Clone, Serialize)]
pub struct LayerRow {
    /// 1-based.
    pub number: usize,
    /// The diff id.
    pub diff_id: String,
    /// Bytes of its tar.
    pub uncompressed: u64,
    /// Bytes as pushed, when known.
    pub compressed: Option<u64>,
    /// Bytes of the files it holds.
    pub files: u64,
    /// Its entries.
    pub entries: u64,
    /// Bytes of its files that later layers hide.
    pub hidden: u64,
    /// Its history entry (index into [`Report::steps`]), when known.
    pub step: Option<usize>,
}

/// One history entry.
#[derive(Debug, Clone, Serialize)]
pub struct StepRow {
    /// Its `created_by`, escaped and shortened.
    pub created_by: String,
    /// The layer it made (1-based), if any.
    pub layer: Option<usize>,
    /// What made it.
    pub origin: Origin,
    /// How that was found.
    pub method: Method,
}

/// A layer and the instruction that made it, in an item.
#[derive(Debug, Clone, Serialize)]
pub struct LayerRef {
    /// 1-based layer.
    pub layer: usize,
    /// Its instruction.
    pub origin: Origin,
}

/// One waste item.
#[derive(Debug, Clone, Serialize)]
pub struct WasteRow {
    /// The kind.
    pub kind: Kind,
    /// What, in words.
    pub what: String,
    /// Bytes wasted.
    pub bytes: u64,
    /// Files.
    pub files: u64,
    /// The path that sums it up.
    pub path: String,
    /// A few of its files.
    pub sample: Vec<String>,
    /// The layer (and line) that added the bytes.
    pub added_by: LayerRef,
    /// The layer (and line) that hid them, or added the first copy of a
    /// duplicate.
    pub hidden_by: Option<LayerRef>,
    /// What to change.
    pub fix: String,
}

/// Waste of one kind.
#[derive(Debug, Clone, Serialize)]
pub struct KindRow {
    /// The kind.
    pub kind: Kind,
    /// Words.
    pub label: String,
    /// Bytes.
    pub bytes: u64,
    /// Items.
    pub items: usize,
}

impl Report {
    /// The origin of layer `number` (1-based).
    pub fn layer_origin(&self, number: usize) -> Origin {
        self.layers
            .get(number.wrapping_sub(1))
            .and_then(|l| l.step)
            .and_then(|s| self.steps.get(s))
            .map_or(Origin::Unknown, |s| s.origin.clone())
    }
}

impl Origin {
    /// `Dockerfile:12` / `base image python:3.12` / `unknown`, for
    /// text formats.
    pub fn short(&self, dockerfile: &str) -> String {
        match self {
            Origin::Base { image: Some(i), .. } => format!("base image {i}"),
            Origin::Base { image: None, .. } => "base image".to_string(),
            Origin::Instruction { line, .. } => format!("{dockerfile}:{line}"),
            Origin::Unknown => "unknown step".to_string(),
        }
    }
}
