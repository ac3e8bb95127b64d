//! The paths of an image, interned: each path is a node (its parent and
//! its last name), so `usr/lib/python3/dist-packages/...` shares its
//! prefix with every sibling and a path is a `u32`. A layer's entries and
//! the merged image refer to nodes; two layers writing the same path
//! write the same node.

use std::hash::{BuildHasher, Hash, Hasher};

use hashbrown::HashTable;

/// A path in a [`PathTable`]; [`PathTable::ROOT`] is the image's root.
pub type PathId = u32;

#[derive(Debug, Clone, Copy)]
struct Node {
    parent: PathId,
    name_start: u32,
    name_len: u16,
}

/// Interned paths, with each node's children once [`PathTable::link_children`]
/// has run.
#[derive(Debug, Clone)]
pub struct PathTable {
    nodes: Vec<Node>,
    names: Vec<u8>,
    index: HashTable<PathId>,
    hasher: std::hash::RandomState,
    /// First child and next sibling per node (after `link_children`).
    first_child: Vec<PathId>,
    next_sibling: Vec<PathId>,
}

const NONE: PathId = PathId::MAX;

/// The table is full (more distinct paths or name bytes than it indexes).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("more than {MAX_NODES} distinct paths or {MAX_NAME_BYTES} bytes of names")]
pub struct TableFull;

/// The most distinct paths an image may have (hostile archives with
/// millions of entries stop here, with memory bounded).
pub const MAX_NODES: usize = 2_000_000;
/// The most bytes of path names (each name stored once per directory).
pub const MAX_NAME_BYTES: usize = 32 << 20;

impl Default for PathTable {
    fn default() -> PathTable {
        PathTable::new()
    }
}

impl PathTable {
    /// The root directory.
    pub const ROOT: PathId = 0;

    /// A table holding only the root.
    pub fn new() -> PathTable {
        PathTable {
            nodes: vec![Node {
                parent: NONE,
                name_start: 0,
                name_len: 0,
            }],
            names: Vec::new(),
            index: HashTable::new(),
            hasher: std::hash::RandomState::new(),
            first_child: Vec::new(),
            next_sibling: Vec::new(),
        }
    }

    /// How many paths (the root included).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Only the root.
    pub fn is_empty(&self) -> bool {
        self.nodes.len() == 1
    }

    fn hash(hasher: &std::hash::RandomState, parent: PathId, name: &[u8]) -> u64 {
        let mut h = hasher.build_hasher();
        parent.hash(&mut h);
        name.hash(&mut h);
        h.finish()
    }

    /// The last component of `id` (empty for the root).
    pub fn name(&self, id: PathId) -> &[u8] {
        let n = self.nodes[id as usize];
        &self.names[n.name_start as usize..n.name_start as usize + n.name_len as usize]
    }

    /// The parent of `id` (`None` for the root).
    pub fn parent(&self, id: PathId) -> Option<PathId> {
        let p = self.nodes[id as usize].parent;
        (p != NONE).then_some(p)
    }

    /// The child `name` of `parent`, if interned.
    pub fn child(&self, parent: PathId, name: &[u8]) -> Option<PathId> {
        let h = Self::hash(&self.hasher, parent, name);
        self.index
            .find(h, |&id| {
                self.nodes[id as usize].parent == parent && self.name(id) == name
            })
            .copied()
    }

    /// Interns `parent/name`.
    pub fn intern_child(&mut self, parent: PathId, name: &[u8]) -> Result<PathId, TableFull> {
        let h = Self::hash(&self.hasher, parent, name);
        let nodes = &self.nodes;
        let names = &self.names;
        let name_of = |id: PathId| {
            let n = nodes[id as usize];
            &names[n.name_start as usize..n.name_start as usize + n.name_len as usize]
        };
        if let Some(&id) = self.index.find(h, |&id| {
            nodes[id as usize].parent == parent && name_of(id) == name
        }) {
            return Ok(id);
        }
        if self.nodes.len() >= MAX_NODES
            || self.names.len() + name.len() > MAX_NAME_BYTES
            || name.len() > u16::MAX as usize
        {
            return Err(TableFull);
        }
        let id = self.nodes.len() as PathId;
        self.nodes.push(Node {
            parent,
            name_start: self.names.len() as u32,
            name_len: name.len() as u16,
        });
        self.names.extend_from_slice(name);
        let (nodes, hasher) = (&self.nodes, &self.hasher);
        let names = &self.names;
        self.index.insert_unique(h, id, |&id| {
            let n = nodes[id as usize];
            Self::hash(
                hasher,
                n.parent,
                &names[n.name_start as usize..n.name_start as usize + n.name_len as usize],
            )
        });
        Ok(id)
    }

    /// Interns a clean relative path (`a/b/c`; empty is the root).
    pub fn intern(&mut self, path: &[u8]) -> Result<PathId, TableFull> {
        let mut id = Self::ROOT;
        if path.is_empty() {
            return Ok(id);
        }
        for part in path.split(|&b| b == b'/') {
            id = self.intern_child(id, part)?;
        }
        Ok(id)
    }

    /// The path of `id`, `/`-separated, without a leading slash.
    pub fn path(&self, id: PathId) -> Vec<u8> {
        let mut parts = Vec::new();
        let mut cur = id;
        while let Some(parent) = self.parent(cur) {
            parts.push(cur);
            cur = parent;
        }
        let mut out = Vec::new();
        for (i, p) in parts.iter().rev().enumerate() {
            if i > 0 {
                out.push(b'/');
            }
            out.extend_from_slice(self.name(*p));
        }
        out
    }

    /// The path of `id` as text for reports (`/usr/bin/x`), escaped.
    pub fn display(&self, id: PathId) -> String {
        format!("/{}", crate::text::show_bytes(&self.path(id)))
    }

    /// How deep `id` is (the root is 0).
    pub fn depth(&self, id: PathId) -> usize {
        let mut d = 0;
        let mut cur = id;
        while let Some(p) = self.parent(cur) {
            d += 1;
            cur = p;
        }
        d
    }

    /// Links every node to its children, for [`PathTable::children`] and
    /// [`PathTable::descendants`]; call once all paths are interned.
    pub fn link_children(&mut self) {
        let n = self.nodes.len();
        self.first_child = vec![NONE; n];
        self.next_sibling = vec![NONE; n];
        // Backwards, so that children come out in interning order.
        for id in (1..n).rev() {
            let p = self.nodes[id].parent as usize;
            self.next_sibling[id] = self.first_child[p];
            self.first_child[p] = id as PathId;
        }
    }

    /// The children of `id` (after [`PathTable::link_children`]).
    pub fn children(&self, id: PathId) -> impl Iterator<Item = PathId> + '_ {
        let mut cur = self.first_child.get(id as usize).copied().unwrap_or(NONE);
        std::iter::from_fn(move || {
            if cur == NONE {
                return None;
            }
            let out = cur;
            cur = self.next_sibling[cur as usize];
            Some(out)
        })
    }

    /// Calls `f` on every node strictly below `id`, depth first, without
    /// recursion (paths may be thousands of levels deep).
    pub fn descendants(&self, id: PathId, mut f: impl FnMut(PathId)) {
        let mut stack: Vec<PathId> = self.children(id).collect();
        while let Some(n) = stack.pop() {
            f(n);
            stack.extend(self.children(n));
        }
    }

    /// Bytes held, for the memory bound.
    pub fn heap_bytes(&self) -> usize {
        self.nodes.capacity() * std::mem::size_of::<Node>()
            + self.names.capacity()
            + self.index.capacity() * (std::mem::size_of::<PathId>() + 1)
            + (self.first_child.capacity() + self.next_sibling.capacity())
                * std::mem::size_of::<PathId>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_shares_prefixes_and_round_trips() {
        let mut t = PathTable::new();
        let a = t.intern(b"usr/lib/a").unwrap();
        let b = t.intern(b"usr/lib/b").unwrap();
        assert_eq!(t.intern(b"usr/lib/a").unwrap(), a);
        assert_ne!(a, b);
        assert_eq!(t.len(), 5);
        assert_eq!(t.path(b), b"usr/lib/b");
        assert_eq!(t.display(a), "/usr/lib/a");
        assert_eq!(t.depth(a), 3);
        let lib = t
            .child(t.child(PathTable::ROOT, b"usr").unwrap(), b"lib")
            .unwrap();
        t.link_children();
        assert_eq!(t.children(lib).collect::<Vec<_>>(), vec![a, b]);
        let mut below = Vec::new();
        t.descendants(PathTable::ROOT, |n| below.push(t.path(n)));
        below.sort();
        assert_eq!(below.len(), 4);
    }
}
