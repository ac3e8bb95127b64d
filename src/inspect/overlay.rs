//! The layers applied in order, as overlayfs and Docker's layer apply do:
//! which entry of which layer each path shows at the end, and every copy
//! of a file that a later entry hid (overwrote, deleted through a
//! whiteout, hid under an opaque directory, or replaced by another kind
//! of entry).
//!
//! A hidden copy is counted once, as the bytes its layer stores; the copy
//! that survives is never counted. Hard links of one layer share their
//! bytes: they are hidden only when every name of the group is.

use std::collections::HashMap;

use super::layer::{Entry, EntryKind, LayerIndex};
use super::paths::{PathId, PathTable};

/// A layer's entry: `(layer, entry)`.
pub type At = (u16, u32);

const EMPTY: u64 = u64::MAX;

fn pack(at: At) -> u64 {
    (u64::from(at.0) << 32) | u64::from(at.1)
}

fn unpack(v: u64) -> Option<At> {
    (v != EMPTY).then_some(((v >> 32) as u16, v as u32))
}

/// How a copy came to be hidden.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    /// A later entry at the same path.
    Overwritten,
    /// A whiteout of the path or of a directory above it.
    Deleted,
    /// An opaque directory above it.
    Opaque,
    /// A later entry of another kind (a directory where a file was, or a
    /// file where a directory was) at the path or above it.
    Replaced,
}

/// One hidden copy of a file's bytes.
#[derive(Debug, Clone, Copy)]
pub struct Hidden {
    /// The copy: a regular file (its hard links all hidden too).
    pub at: At,
    /// The entry that hid it (the whiteout, the opaque marker, the new
    /// entry).
    pub by: At,
    /// How.
    pub how: How,
    /// Its bytes.
    pub bytes: u64,
}

/// Why the layers cannot be applied.
#[derive(Debug, Clone, thiserror::Error)]
#[error("layer {layer}: \"{path}\" lies below \"{through}\", which an earlier entry made a {kind}: a layer never writes through one (a hostile or corrupt archive)")]
pub struct ThroughLink {
    /// 1-based layer.
    pub layer: usize,
    /// The entry's path.
    pub path: String,
    /// The ancestor that is not a directory.
    pub through: String,
    /// `symbolic link`, `file`...
    pub kind: &'static str,
}

/// The hard-link groups of one layer: the file entry each link shares
/// bytes with, and each file's links.
#[derive(Default)]
struct Groups {
    file_of: HashMap<u32, u32>,
    links_of: HashMap<u32, Vec<u32>>,
}

impl Groups {
    fn of(layer: &LayerIndex) -> Groups {
        let mut g = Groups::default();
        if !layer.entries.iter().any(|e| e.kind == EntryKind::Hardlink) {
            return g;
        }
        let mut last_file: HashMap<PathId, u32> = HashMap::new();
        for (i, e) in layer.entries.iter().enumerate() {
            match e.kind {
                EntryKind::File => {
                    last_file.insert(e.path, i as u32);
                }
                EntryKind::Hardlink => {
                    // A link to a link shares the first one's bytes.
                    let target = last_file.get(&e.link).copied();
                    if let Some(f) = target {
                        g.file_of.insert(i as u32, f);
                        g.links_of.entry(f).or_default().push(i as u32);
                        last_file.insert(e.path, f);
                    }
                }
                _ => {}
            }
        }
        g
    }
}

/// The merged view of an image's layers.
pub struct Overlay {
    /// Per path: the entry shown at the end.
    visible: Vec<u64>,
    /// Every hidden copy, in the order the layers hid them.
    pub hidden: Vec<Hidden>,
    groups: Vec<Groups>,
}

impl Overlay {
    /// Applies `layers` (base first; paths in `table`, whose children are
    /// linked) in order.
    pub fn apply(table: &PathTable, layers: &[&LayerIndex]) -> Result<Overlay, ThroughLink> {
        let mut o = Overlay {
            visible: vec![EMPTY; table.len()],
            hidden: Vec::new(),
            groups: layers.iter().map(|l| Groups::of(l)).collect(),
        };
        for (l, layer) in layers.iter().enumerate() {
            let l16 = l as u16;
            for (i, e) in layer.entries.iter().enumerate() {
                let here = (l16, i as u32);
                o.check_parents(table, layers, l, e.path)?;
                match e.kind {
                    EntryKind::Whiteout => {
                        o.hide_below(table, layers, e.path, here, How::Deleted, l16);
                        o.hide_one(layers, e.path, here, How::Deleted, Some(l16));
                    }
                    EntryKind::Opaque => {
                        o.hide_below(table, layers, e.path, here, How::Opaque, l16);
                    }
                    EntryKind::Dir => {
                        if let Some(prev) = o.shown(e.path) {
                            if o.entry(layers, prev).kind != EntryKind::Dir {
                                o.hide_one(layers, e.path, here, How::Replaced, None);
                            }
                        }
                        o.visible[e.path as usize] = pack(here);
                    }
                    _ => {
                        if let Some(prev) = o.shown(e.path) {
                            if o.entry(layers, prev).kind == EntryKind::Dir {
                                o.hide_below(table, layers, e.path, here, How::Replaced, u16::MAX);
                                o.hide_one(layers, e.path, here, How::Replaced, None);
                            } else {
                                o.hide_one(layers, e.path, here, How::Overwritten, None);
                            }
                        }
                        o.visible[e.path as usize] = pack(here);
                    }
                }
            }
        }
        Ok(o)
    }

    fn entry<'a>(&self, layers: &[&'a LayerIndex], at: At) -> &'a Entry {
        &layers[at.0 as usize].entries[at.1 as usize]
    }

    /// The entry `path` shows now.
    pub fn shown(&self, path: PathId) -> Option<At> {
        unpack(self.visible[path as usize])
    }

    /// Refuses an entry below a path that is (now) not a directory.
    fn check_parents(
        &self,
        table: &PathTable,
        layers: &[&LayerIndex],
        l: usize,
        path: PathId,
    ) -> Result<(), ThroughLink> {
        let mut cur = table.parent(path);
        while let Some(p) = cur {
            if p == PathTable::ROOT {
                return Ok(());
            }
            if let Some(at) = self.shown(p) {
                let kind = match self.entry(layers, at).kind {
                    EntryKind::Dir => return Ok(()),
                    EntryKind::Symlink => "symbolic link",
                    EntryKind::Hardlink | EntryKind::File => "file",
                    _ => "device or FIFO",
                };
                return Err(ThroughLink {
                    layer: l + 1,
                    path: table.display(path),
                    through: table.display(p),
                    kind,
                });
            }
            cur = table.parent(p);
        }
        Ok(())
    }

    /// Hides the entry shown at `path` when it is from a layer below
    /// `below` (any layer when `None`).
    fn hide_one(
        &mut self,
        layers: &[&LayerIndex],
        path: PathId,
        by: At,
        how: How,
        below: Option<u16>,
    ) {
        let Some(at) = self.shown(path) else { return };
        if below.is_some_and(|b| at.0 >= b) {
            return;
        }
        self.visible[path as usize] = EMPTY;
        self.account(layers, at, by, how);
    }

    /// Hides everything shown below `path` from layers below `below`.
    fn hide_below(
        &mut self,
        table: &PathTable,
        layers: &[&LayerIndex],
        path: PathId,
        by: At,
        how: How,
        below: u16,
    ) {
        let mut found = Vec::new();
        table.descendants(path, |n| {
            if let Some(at) = self.shown(n) {
                if at.0 < below {
                    found.push((n, at));
                }
            }
        });
        for (n, at) in found {
            self.visible[n as usize] = EMPTY;
            self.account(layers, at, by, how);
        }
    }

    /// Records the bytes of a copy that just lost its last visible name.
    fn account(&mut self, layers: &[&LayerIndex], at: At, by: At, how: How) {
        let e = self.entry(layers, at);
        let groups = &self.groups[at.0 as usize];
        let file = match e.kind {
            EntryKind::File => at.1,
            EntryKind::Hardlink => match groups.file_of.get(&at.1) {
                Some(&f) => f,
                None => return,
            },
            _ => return,
        };
        let file_at = (at.0, file);
        if self.group_live(layers, file_at) {
            return;
        }
        let bytes = self.entry(layers, file_at).size;
        if bytes > 0 {
            self.hidden.push(Hidden {
                at: file_at,
                by,
                how,
                bytes,
            });
        }
    }

    /// Whether any name of the file `at`'s hard-link group is shown.
    fn group_live(&self, layers: &[&LayerIndex], at: At) -> bool {
        let shows = |j: u32| {
            let p = layers[at.0 as usize].entries[j as usize].path;
            self.shown(p) == Some((at.0, j))
        };
        shows(at.1)
            || self.groups[at.0 as usize]
                .links_of
                .get(&at.1)
                .is_some_and(|links| links.iter().any(|&j| shows(j)))
    }

    /// The regular files whose bytes the final image holds: each as the
    /// file entry and the path that shows it (the file's own, or a hard
    /// link's when the file's name was hidden), in path-id order.
    pub fn live_files(&self, layers: &[&LayerIndex]) -> Vec<(At, PathId)> {
        let mut out = Vec::new();
        let mut seen: std::collections::HashSet<At> = std::collections::HashSet::new();
        for (p, &v) in self.visible.iter().enumerate() {
            let Some(at) = unpack(v) else { continue };
            let e = self.entry(layers, at);
            let file = match e.kind {
                EntryKind::File => at,
                EntryKind::Hardlink => match self.groups[at.0 as usize].file_of.get(&at.1) {
                    Some(&f) => (at.0, f),
                    None => continue,
                },
                _ => continue,
            };
            if seen.insert(file) {
                out.push((file, p as PathId));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::layer::{Entry, NONE};
    use super::*;

    fn layer(table: &mut PathTable, entries: &[(&str, EntryKind, u64, &str)]) -> LayerIndex {
        let mut l = LayerIndex::default();
        for (path, kind, size, link) in entries {
            let id = table.intern(path.as_bytes()).unwrap();
            let link = match kind {
                EntryKind::Hardlink => table.intern(link.as_bytes()).unwrap(),
                _ => NONE,
            };
            l.entries.push(Entry {
                path: id,
                kind: *kind,
                mode: 0o644,
                uid: 0,
                gid: 0,
                size: *size,
                link,
                offset: 0,
                hash: NONE,
            });
        }
        l
    }

    use EntryKind::*;

    fn run(layers: &[&[(&str, EntryKind, u64, &str)]]) -> (Vec<(String, How, u64, u16)>, u64) {
        let mut table = PathTable::new();
        let built: Vec<LayerIndex> = layers.iter().map(|l| layer(&mut table, l)).collect();
        table.link_children();
        let refs: Vec<&LayerIndex> = built.iter().collect();
        let o = Overlay::apply(&table, &refs).unwrap();
        let hidden = o
            .hidden
            .iter()
            .map(|h| {
                let p = refs[h.at.0 as usize].entries[h.at.1 as usize].path;
                (table.display(p), h.how, h.bytes, h.by.0)
            })
            .collect();
        let live: u64 = o
            .live_files(&refs)
            .iter()
            .map(|(at, _)| refs[at.0 as usize].entries[at.1 as usize].size)
            .sum();
        (hidden, live)
    }

    #[test]
    fn overwrite_counts_the_hidden_copy_once() {
        let (h, live) = run(&[
            &[("app", Dir, 0, ""), ("app/a", File, 100, "")],
            &[("app/a", File, 100, "")],
        ]);
        assert_eq!(h, vec![("/app/a".into(), How::Overwritten, 100, 1)]);
        assert_eq!(live, 100);
    }

    #[test]
    fn whiteouts_and_opaque_directories_hide_lower_layers_only() {
        let (h, live) = run(&[
            &[
                ("d", Dir, 0, ""),
                ("d/x", File, 10, ""),
                ("d/y", File, 20, ""),
                ("z", File, 5, ""),
            ],
            &[
                ("z", Whiteout, 0, ""),
                ("d/new", File, 7, ""),
                ("d", Opaque, 0, ""),
            ],
        ]);
        assert_eq!(
            h,
            vec![
                ("/z".into(), How::Deleted, 5, 1),
                ("/d/y".into(), How::Opaque, 20, 1),
                ("/d/x".into(), How::Opaque, 10, 1),
            ]
        );
        assert_eq!(live, 7);
    }

    #[test]
    fn a_whiteout_of_a_directory_hides_its_tree() {
        let (h, _) = run(&[
            &[
                ("d", Dir, 0, ""),
                ("d/e", Dir, 0, ""),
                ("d/e/x", File, 3, ""),
            ],
            &[("d", Whiteout, 0, "")],
        ]);
        assert_eq!(h, vec![("/d/e/x".into(), How::Deleted, 3, 1)]);
    }

    #[test]
    fn hard_links_keep_bytes_until_every_name_is_gone() {
        let (h, live) = run(&[
            &[("a", File, 50, ""), ("b", Hardlink, 0, "a")],
            &[("a", Whiteout, 0, "")],
        ]);
        assert!(h.is_empty(), "{h:?}");
        assert_eq!(live, 50);
        let (h, live) = run(&[
            &[("a", File, 50, ""), ("b", Hardlink, 0, "a")],
            &[("a", Whiteout, 0, ""), ("b", Whiteout, 0, "")],
        ]);
        assert_eq!(h, vec![("/a".into(), How::Deleted, 50, 1)]);
        assert_eq!(live, 0);
    }

    #[test]
    fn a_file_replacing_a_directory_hides_the_tree() {
        let (h, _) = run(&[
            &[("d", Dir, 0, ""), ("d/x", File, 4, "")],
            &[("d", File, 1, "")],
        ]);
        assert_eq!(h, vec![("/d/x".into(), How::Replaced, 4, 1)]);
    }

    #[test]
    fn paths_through_a_symlink_are_refused() {
        let mut table = PathTable::new();
        let a = layer(&mut table, &[("lib", Symlink, 0, "")]);
        let b = layer(&mut table, &[("lib/x", File, 1, "")]);
        table.link_children();
        let e = Overlay::apply(&table, &[&a, &b]).err().unwrap().to_string();
        assert!(e.contains("/lib/x") && e.contains("symbolic link"), "{e}");
    }
}
