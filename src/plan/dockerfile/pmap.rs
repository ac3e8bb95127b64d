//! A persistent map (a hash array mapped trie): cloning is O(1) and an
//! insert copies one path of at most 16 nodes, so every stage can inherit
//! its parent stage's `ENV` without copying it (a chain of n stages with
//! an `ENV` each costs O(n log n), not O(n²) time and memory).

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::rc::Rc;

const BITS: u32 = 4;
const WIDTH: usize = 1 << BITS;

#[derive(Debug)]
enum Node<V> {
    Leaf(u64, Rc<str>, V),
    /// Keys whose whole hash is equal.
    Bucket(u64, Vec<(Rc<str>, V)>),
    Branch(Box<[Option<Rc<Node<V>>>; WIDTH]>),
}

#[derive(Debug)]
pub(super) struct PMap<V> {
    root: Option<Rc<Node<V>>>,
}

impl<V> Clone for PMap<V> {
    fn clone(&self) -> Self {
        PMap {
            root: self.root.clone(),
        }
    }
}

impl<V> Default for PMap<V> {
    fn default() -> Self {
        PMap { root: None }
    }
}

fn hash(key: &str) -> u64 {
    let mut h = DefaultHasher::new();
    key.hash(&mut h);
    h.finish()
}

fn slot(hash: u64, shift: u32) -> usize {
    (hash.checked_shr(shift).unwrap_or(0) & (WIDTH as u64 - 1)) as usize
}

impl<V: Clone> PMap<V> {
    pub(super) fn get(&self, key: &str) -> Option<&V> {
        let h = hash(key);
        let mut node = self.root.as_deref()?;
        let mut shift = 0;
        loop {
            match node {
                Node::Leaf(lh, k, v) => return (*lh == h && &**k == key).then_some(v),
                Node::Bucket(_, items) => {
                    return items.iter().find(|(k, _)| &**k == key).map(|(_, v)| v)
                }
                Node::Branch(children) => {
                    node = children.get(slot(h, shift))?.as_deref()?;
                    shift += BITS;
                }
            }
        }
    }

    pub(super) fn insert(&mut self, key: &str, value: V) {
        let h = hash(key);
        self.root = Some(insert(self.root.as_ref(), h, 0, Rc::from(key), value));
    }
}

/// The node with `key` set, sharing everything off its path. Recursion is
/// at most 64 / BITS + 1 deep.
fn insert<V: Clone>(
    node: Option<&Rc<Node<V>>>,
    h: u64,
    shift: u32,
    key: Rc<str>,
    value: V,
) -> Rc<Node<V>> {
    let Some(node) = node else {
        return Rc::new(Node::Leaf(h, key, value));
    };
    match &**node {
        Node::Leaf(lh, k, _) if *lh == h && *k == key => Rc::new(Node::Leaf(h, key, value)),
        Node::Leaf(lh, k, v) if *lh == h => {
            Rc::new(Node::Bucket(h, vec![(k.clone(), v.clone()), (key, value)]))
        }
        Node::Bucket(bh, items) if *bh == h => {
            let mut items = items.clone();
            match items.iter_mut().find(|(k, _)| *k == key) {
                Some(item) => item.1 = value,
                None => items.push((key, value)),
            }
            Rc::new(Node::Bucket(h, items))
        }
        Node::Leaf(lh, ..) | Node::Bucket(lh, _) => {
            // Two different hashes: split into a branch at this level.
            let mut children: [Option<Rc<Node<V>>>; WIDTH] = Default::default();
            if let Some(c) = children.get_mut(slot(*lh, shift)) {
                *c = Some(node.clone());
            }
            let branch = Rc::new(Node::Branch(Box::new(children)));
            insert(Some(&branch), h, shift, key, value)
        }
        Node::Branch(children) => {
            let mut children = children.clone();
            if let Some(c) = children.get_mut(slot(h, shift)) {
                *c = Some(insert(c.as_ref(), h, shift + BITS, key, value));
            }
            Rc::new(Node::Branch(children))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_like_a_map_and_shares() {
        let mut m: PMap<usize> = PMap::default();
        let mut reference = std::collections::HashMap::new();
        for i in 0..5000usize {
            let k = format!("K{}", i % 1700);
            m.insert(&k, i);
            reference.insert(k, i);
        }
        let before = m.clone();
        m.insert("K1", 0);
        for (k, v) in &reference {
            assert_eq!(before.get(k), Some(v));
        }
        assert_eq!(m.get("K1"), Some(&0));
        assert_eq!(m.get("nope"), None);
        assert_eq!(PMap::<usize>::default().get("x"), None);
    }
}
