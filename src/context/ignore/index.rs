//! Which rules of a long ignore file can match a path, found without
//! trying each one.
//!
//! Docker tries every pattern on every path; with thousands of patterns
//! that is patterns x files. Most patterns say up front what a path they
//! match looks like: an exact pattern is the path, `dir**` starts it,
//! `**/name` ends it, and a glob has a literal segment at a fixed place
//! (`**/dist/*.map`: the second segment from the end is `dist`). The index
//! keys each rule by that, and a path looks up its own text, prefixes,
//! suffixes and segments: a few hash lookups per path and per byte, then
//! only the rules found are tried (with the rules its parent matched) in
//! file order, so the result is Docker's. Regexes and globs with no
//! literal segment are tried on every path, as before.

use std::collections::HashMap;

use super::matcher::Rule;
use super::pattern::MatchKind;

/// Rule numbers by the text of a literal segment.
type ByText = HashMap<Box<[u8]>, Vec<u32>>;

/// Rules by what a path they match must contain.
#[derive(Debug, Clone, Default)]
pub(crate) struct Index {
    /// Tried on every path.
    always: Vec<u32>,
    /// By the path (exact patterns; `name` for `**/name`, which matches
    /// `name` itself too).
    exact: HashMap<Box<[u8]>, Vec<u32>>,
    /// `dir**`, by (length, hash) of the prefix the path starts with.
    prefix: HashMap<(usize, u64), Vec<u32>>,
    /// Whether some prefix has this length.
    prefix_lengths: Vec<bool>,
    /// `**name`, by (length, hash of the reversed bytes) of the suffix.
    suffix: HashMap<(usize, u64), Vec<u32>>,
    suffix_lengths: Vec<bool>,
    /// Globs, by where their literal segment is (from the end?, index),
    /// then by its text.
    segments: HashMap<(bool, usize), ByText>,
}

/// FNV-1a, one byte at a time: a path's prefixes (or suffixes) are hashed
/// in one pass. A collision only adds a candidate, which is then tried.
fn step(hash: u64, byte: u8) -> u64 {
    (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
}

const START: u64 = 0xcbf2_9ce4_8422_2325;

fn hash<'a>(bytes: impl Iterator<Item = &'a u8>) -> u64 {
    bytes.fold(START, |h, &b| step(h, b))
}

fn mark(lengths: &mut Vec<bool>, len: usize) {
    if lengths.len() <= len {
        lengths.resize(len + 1, false);
    }
    lengths[len] = true;
}

impl Index {
    pub(crate) fn new(rules: &[Rule]) -> Index {
        let mut index = Index::default();
        for (i, rule) in rules.iter().enumerate() {
            let i = i as u32;
            let p = rule.pattern.as_bytes();
            match rule.pattern.kind() {
                MatchKind::Exact => index.exact.entry(p.into()).or_default().push(i),
                MatchKind::Prefix => {
                    let prefix = &p[..p.len() - 2];
                    if prefix.is_empty() {
                        index.always.push(i);
                        continue;
                    }
                    mark(&mut index.prefix_lengths, prefix.len());
                    let key = (prefix.len(), hash(prefix.iter()));
                    index.prefix.entry(key).or_default().push(i);
                }
                MatchKind::Suffix => {
                    let suffix = &p[2..];
                    if suffix.is_empty() {
                        index.always.push(i);
                        continue;
                    }
                    if let Some(name) = suffix.strip_prefix(b"/") {
                        index.exact.entry(name.into()).or_default().push(i);
                    }
                    mark(&mut index.suffix_lengths, suffix.len());
                    let key = (suffix.len(), hash(suffix.iter().rev()));
                    index.suffix.entry(key).or_default().push(i);
                }
                MatchKind::Regex => match rule.pattern.glob_anchor() {
                    Some((from_end, at, text)) => index
                        .segments
                        .entry((from_end, at))
                        .or_default()
                        .entry(text.into())
                        .or_default()
                        .push(i),
                    None => index.always.push(i),
                },
            }
        }
        index
    }

    /// Adds to `out` the rules that may match `path` (or, with
    /// `ancestors`, one of its ancestor directories).
    pub(crate) fn candidates(&self, path: &[u8], ancestors: bool, out: &mut Vec<u32>) {
        out.extend_from_slice(&self.always);
        self.lookup(path, out);
        if ancestors {
            for (pos, _) in path.iter().enumerate().filter(|(_, &b)| b == b'/') {
                self.lookup(&path[..pos], out);
            }
        }
    }

    fn lookup(&self, path: &[u8], out: &mut Vec<u32>) {
        if let Some(rules) = self.exact.get(path) {
            out.extend_from_slice(rules);
        }
        if !self.prefix.is_empty() {
            let mut h = START;
            for (len, &b) in path.iter().enumerate() {
                h = step(h, b);
                if self.prefix_lengths.get(len + 1) == Some(&true) {
                    if let Some(rules) = self.prefix.get(&(len + 1, h)) {
                        out.extend_from_slice(rules);
                    }
                }
            }
        }
        if !self.suffix.is_empty() {
            let mut h = START;
            for (len, &b) in path.iter().rev().enumerate() {
                h = step(h, b);
                if self.suffix_lengths.get(len + 1) == Some(&true) {
                    if let Some(rules) = self.suffix.get(&(len + 1, h)) {
                        out.extend_from_slice(rules);
                    }
                }
            }
        }
        if !self.segments.is_empty() {
            let parts: Vec<&[u8]> = path.split(|&b| b == b'/').collect();
            for (&(from_end, at), by_text) in &self.segments {
                let part = match from_end {
                    false => parts.get(at),
                    true => parts.len().checked_sub(at + 1).and_then(|k| parts.get(k)),
                };
                if let Some(rules) = part.and_then(|p| by_text.get(*p)) {
                    out.extend_from_slice(rules);
                }
            }
        }
    }
}
