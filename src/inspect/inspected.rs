//! An analysed image and its `--tree` rows: what `size` prints and
//! `--prove` compares, read back from the layers' indexes and the overlay.

use super::layer;
use super::overlay::Overlay;
use super::prove;
use super::report::Report;
use super::source::Loaded;

/// An analysed image: the report, and what it was computed from (for
/// `--tree`).
pub struct Inspected {
    /// The report.
    pub report: Report,
    /// The image read.
    pub image: Loaded,
    pub(super) overlay: Overlay,
}

/// One row of `--tree`: a path the image (or a layer) shows.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TreeRow {
    /// `/usr/bin/x`.
    pub path: String,
    /// `file`, `dir`, `symlink`, `hardlink`, `special`, `whiteout`, `opaque`.
    pub kind: &'static str,
    /// Bytes (regular files).
    pub size: u64,
    /// Octal permissions.
    pub mode: String,
    /// `uid:gid`.
    pub owner: String,
    /// The layer the entry is from.
    pub layer: usize,
    /// A link's target.
    pub target: Option<String>,
}

fn kind_name(k: layer::EntryKind) -> &'static str {
    use layer::EntryKind::*;
    match k {
        File => "file",
        Dir => "dir",
        Symlink => "symlink",
        Hardlink => "hardlink",
        Special => "special",
        Whiteout => "whiteout",
        Opaque => "opaque",
    }
}

impl Inspected {
    /// Every path the final image shows, sorted, with its content hash
    /// (regular files): what `size --prove` compares before and after a
    /// fix. A file whose hash was not taken (a file source reads lazily)
    /// has `sha256: None`, and a comparison never counts it as unchanged.
    pub fn shown(&self) -> Vec<prove::Shown> {
        let mut rows: Vec<(Vec<u8>, prove::Shown)> = (0..self.image.table.len() as u32)
            .filter_map(|p| {
                let (l, e) = self.overlay.shown(p)?;
                let index = &self.image.layers[l as usize].index;
                let entry = &index.entries[e as usize];
                let row = self.row(l as usize, entry);
                let sha256 = index.hash_of(e as usize).map(layer::sha_string);
                Some((self.image.table.path(p), prove::Shown { row, sha256 }))
            })
            .collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        rows.into_iter().map(|(_, r)| r).collect()
    }

    fn row(&self, l: usize, e: &layer::Entry) -> TreeRow {
        TreeRow {
            path: self.image.table.display(e.path),
            kind: kind_name(e.kind),
            size: e.size,
            mode: format!("{:04o}", e.mode),
            owner: format!("{}:{}", e.uid, e.gid),
            layer: l + 1,
            target: match e.kind {
                layer::EntryKind::Hardlink => Some(self.image.table.display(e.link)),
                layer::EntryKind::Symlink => self.image.layers[l]
                    .index
                    .symlinks
                    .get(e.link as usize)
                    .map(|t| crate::text::show_bytes(t)),
                _ => None,
            },
        }
    }

    /// The entries of layer `number` (1-based) in archive order, or the
    /// paths the final image shows (sorted) when `None`.
    pub fn tree(&self, number: Option<usize>) -> Option<Vec<TreeRow>> {
        let row = |l: usize, e: &layer::Entry| self.row(l, e);
        match number {
            Some(n) => {
                let l = self.image.layers.get(n.checked_sub(1)?)?;
                Some(l.index.entries.iter().map(|e| row(n - 1, e)).collect())
            }
            None => {
                let mut rows: Vec<(Vec<u8>, TreeRow)> = (0..self.image.table.len() as u32)
                    .filter_map(|p| {
                        let (l, e) = self.overlay.shown(p)?;
                        let entry = &self.image.layers[l as usize].index.entries[e as usize];
                        Some((self.image.table.path(p), row(l as usize, entry)))
                    })
                    .collect();
                rows.sort_by(|a, b| a.0.cmp(&b.0));
                Some(rows.into_iter().map(|(_, r)| r).collect())
            }
        }
    }
}
