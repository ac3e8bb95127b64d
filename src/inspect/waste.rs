//! The waste in an image, exactly: bytes a later layer hid, bytes written
//! twice (the same content rewritten for a `chmod`, or at another path),
//! package-manager caches, build toolchains, headers and VCS directories
//! left in the final image, and files of the kinds `analyze` names as
//! waste in a build context, copied in from it.
//!
//! Every byte is counted in one item at most: hidden copies are not in
//! the final image; of what the final image shows, a path rule (caches,
//! toolchains, VCS, the context kinds) claims a file first, and only
//! unclaimed files are compared for duplicate content.

use std::collections::HashMap;

use super::layer::{EntryKind, LayerIndex, Sha};
use super::overlay::{At, How, Overlay};
use super::paths::{PathId, PathTable};
use crate::analyze::RuleSet;

/// What kind of waste an item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Deleted by a later layer (a whiteout or an opaque directory): the
    /// bytes stay in the layer that added them.
    Deleted,
    /// Replaced by a later layer's different content at the same path.
    Overwritten,
    /// Rewritten by a later layer with the same content and other
    /// permissions or owner (`RUN chmod`/`chown` copies the whole file).
    MetadataOnly,
    /// Written again by a later layer, content and metadata unchanged.
    Rewritten,
    /// The same content at another path of the final image.
    Duplicate,
    /// A package manager's cache or lists left in a layer.
    PackageCache,
    /// A compiler toolchain or C headers in the final image.
    Toolchain,
    /// A version-control directory in the final image.
    Vcs,
    /// A file of a kind `analyze` names as waste in a build context,
    /// copied from the context.
    Context,
}

impl Kind {
    /// Words for reports.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Deleted => "deleted in a later layer",
            Kind::Overwritten => "overwritten in a later layer",
            Kind::MetadataOnly => "rewritten only to change permissions or owner",
            Kind::Rewritten => "written again unchanged",
            Kind::Duplicate => "same content at another path",
            Kind::PackageCache => "package manager caches and lists",
            Kind::Toolchain => "build toolchains and headers",
            Kind::Vcs => "version-control directories",
            Kind::Context => "build-context files analyze names as waste",
        }
    }
}

/// A rule naming a kind of path in an image.
struct PathRule {
    kind: Kind,
    label: &'static str,
    /// `/`-separated; a leading `**/` matches at any depth, `*` within a
    /// name any characters.
    patterns: &'static [&'static str],
    fix: &'static str,
}

const RUNTIME_STAGE: &str = "build in a stage of its own and `COPY --from=<build stage>` only what runs into a runtime stage on a slim base";

const PATH_RULES: &[PathRule] = &[
    PathRule {
        kind: Kind::PackageCache,
        label: "apt package lists",
        patterns: &["var/lib/apt/lists"],
        fix: "end the RUN that runs `apt-get update` with `&& rm -rf /var/lib/apt/lists/*`, or mount them: `RUN --mount=type=cache,target=/var/lib/apt,sharing=locked`",
    },
    PathRule {
        kind: Kind::PackageCache,
        label: "apt package archives",
        patterns: &["var/cache/apt"],
        fix: "`apt-get install --no-install-recommends ... && apt-get clean` in the same RUN, or `RUN --mount=type=cache,target=/var/cache/apt,sharing=locked`",
    },
    PathRule {
        kind: Kind::PackageCache,
        label: "apk cache",
        patterns: &["var/cache/apk", "etc/apk/cache"],
        fix: "`apk add --no-cache ...`",
    },
    PathRule {
        kind: Kind::PackageCache,
        label: "pip cache",
        patterns: &["**/.cache/pip"],
        fix: "`pip install --no-cache-dir ...`, or `RUN --mount=type=cache,target=/root/.cache/pip`",
    },
    PathRule {
        kind: Kind::PackageCache,
        label: "npm cache",
        patterns: &["**/.npm"],
        fix: "`npm ci && npm cache clean --force` in the same RUN, or `RUN --mount=type=cache,target=/root/.npm`",
    },
    PathRule {
        kind: Kind::PackageCache,
        label: "yarn cache",
        patterns: &["usr/local/share/.cache/yarn", "**/.cache/yarn", "**/.yarn/berry/cache"],
        fix: "`yarn install && yarn cache clean` in the same RUN, or `RUN --mount=type=cache,target=/usr/local/share/.cache/yarn`",
    },
    PathRule {
        kind: Kind::PackageCache,
        label: "pnpm store",
        patterns: &["**/.local/share/pnpm/store", "**/.pnpm-store", "**/.cache/pnpm"],
        fix: "`RUN --mount=type=cache,id=pnpm,target=/root/.local/share/pnpm/store pnpm install --frozen-lockfile`",
    },
    PathRule {
        kind: Kind::PackageCache,
        label: "Go build cache",
        patterns: &["**/.cache/go-build"],
        fix: "`RUN --mount=type=cache,target=/root/.cache/go-build go build ...`, in a build stage",
    },
    PathRule {
        kind: Kind::PackageCache,
        label: "Go module cache",
        patterns: &["go/pkg/mod", "**/go/pkg/mod"],
        fix: "`RUN --mount=type=cache,target=/go/pkg/mod go mod download`, in a build stage",
    },
    PathRule {
        kind: Kind::PackageCache,
        label: "cargo registry",
        patterns: &[
            "usr/local/cargo/registry",
            "usr/local/cargo/git",
            "**/.cargo/registry",
            "**/.cargo/git",
        ],
        fix: "`RUN --mount=type=cache,target=/usr/local/cargo/registry cargo build --release`, in a build stage",
    },
    PathRule {
        kind: Kind::PackageCache,
        label: "Next.js build cache",
        patterns: &["**/.next/cache"],
        fix: "`next build && rm -rf .next/cache` in the same RUN, or `RUN --mount=type=cache,target=/app/.next/cache`",
    },
    PathRule {
        kind: Kind::Toolchain,
        label: "C/C++ compiler",
        patterns: &["usr/lib/gcc", "usr/libexec/gcc", "usr/lib/llvm-*"],
        fix: RUNTIME_STAGE,
    },
    PathRule {
        kind: Kind::Toolchain,
        label: "C headers",
        patterns: &["usr/include", "usr/local/include"],
        fix: RUNTIME_STAGE,
    },
    PathRule {
        kind: Kind::Toolchain,
        label: "Go toolchain",
        patterns: &["usr/local/go", "usr/lib/go-*"],
        fix: RUNTIME_STAGE,
    },
    PathRule {
        kind: Kind::Toolchain,
        label: "Rust toolchain",
        patterns: &["usr/local/rustup", "**/.rustup"],
        fix: RUNTIME_STAGE,
    },
    PathRule {
        kind: Kind::Vcs,
        label: "version-control directory",
        patterns: &["**/.git", "**/.hg", "**/.svn"],
        fix: "",
    },
];

fn glob(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.iter().position(|&b| b == b'*') {
        None => pattern == name,
        Some(star) => {
            let (pre, post) = (&pattern[..star], &pattern[star + 1..]);
            name.len() >= pre.len() + post.len() && name.starts_with(pre) && name.ends_with(post)
        }
    }
}

/// Whether `parts` (a path's names) is what `pattern` names.
fn matches(pattern: &str, parts: &[&[u8]]) -> bool {
    let (anywhere, pattern) = match pattern.strip_prefix("**/") {
        Some(rest) => (true, rest),
        None => (false, pattern),
    };
    let want: Vec<&[u8]> = pattern.split('/').map(str::as_bytes).collect();
    if parts.len() < want.len() || (!anywhere && parts.len() != want.len()) {
        return false;
    }
    let tail = &parts[parts.len() - want.len()..];
    want.iter().zip(tail).all(|(p, n)| glob(p, n))
}

/// What the layers are, for the fixes: which instruction made each.
#[derive(Debug, Clone)]
pub struct LayerRole {
    /// `RUN`, `COPY`... (empty for a base image's layer or an unknown one).
    pub keyword: String,
    /// A `COPY`/`ADD` from the build context.
    pub from_context: bool,
    /// A layer of the base image.
    pub base: bool,
    /// The instruction's text (for `chmod`/`chown`).
    pub text: String,
}

/// A waste item, before it is rendered.
#[derive(Debug, Clone)]
pub struct Item {
    /// Its kind.
    pub kind: Kind,
    /// What, in a few words (`pip cache`, `.git`).
    pub label: String,
    /// Bytes wasted.
    pub bytes: u64,
    /// Files counted.
    pub files: u64,
    /// The path that sums it up (a deleted directory, a cache's root).
    pub root: PathId,
    /// A few of the files.
    pub sample: Vec<PathId>,
    /// The layer that added the bytes.
    pub added: u16,
    /// The layer that hid them, or (for a duplicate) added the first copy.
    pub other: Option<u16>,
    /// The fix.
    pub fix: String,
}

const SAMPLE: usize = 5;

fn entry<'a>(layers: &[&'a LayerIndex], at: At) -> &'a super::layer::Entry {
    &layers[at.0 as usize].entries[at.1 as usize]
}

/// The deepest path both `a` and `b` lie in.
fn common(table: &PathTable, a: PathId, b: PathId) -> PathId {
    let (mut a, mut b) = (a, b);
    let (mut da, mut db) = (table.depth(a), table.depth(b));
    while da > db {
        a = table.parent(a).unwrap_or(PathTable::ROOT);
        da -= 1;
    }
    while db > da {
        b = table.parent(b).unwrap_or(PathTable::ROOT);
        db -= 1;
    }
    while a != b {
        a = table.parent(a).unwrap_or(PathTable::ROOT);
        b = table.parent(b).unwrap_or(PathTable::ROOT);
    }
    a
}

/// A path category found on the final tree: the rule, and the directory
/// (or file) it named.
#[derive(Debug, Clone, Copy)]
enum Claim {
    Path(usize),
    Rule((usize, usize)),
}

/// A claim and the node its rule named.
type Claimed = (Claim, PathId);

/// What waste items are grouped by: kind, label, the layer that added
/// the bytes, the layer that hid or first wrote them, and a path or
/// entry that sets one item apart from another.
type GroupKey = (Kind, String, u16, Option<u16>, Option<u32>);

/// The analysis of an applied image.
pub struct Waste<'a> {
    table: &'a PathTable,
    layers: Vec<&'a LayerIndex>,
    roles: &'a [LayerRole],
    overlay: &'a Overlay,
    /// The files the final image shows: `(file entry, path shown)`.
    live: Vec<(At, PathId)>,
    /// Per live file, its claim, if any.
    claims: Vec<Option<Claimed>>,
}

impl<'a> Waste<'a> {
    /// Classifies the final image's paths by the path rules and, for
    /// files a `COPY`/`ADD` took from the context, `rules`.
    pub fn new(
        table: &'a PathTable,
        layers: Vec<&'a LayerIndex>,
        roles: &'a [LayerRole],
        overlay: &'a Overlay,
        rules: &RuleSet,
    ) -> Waste<'a> {
        let live = overlay.live_files(&layers);
        // Walk the tree once, top down, with each node's names; the
        // first rule that names a node claims everything below it.
        let mut claim_of: HashMap<PathId, Claimed> = HashMap::new();
        let mut stack: Vec<(PathId, usize, Option<Claimed>)> = vec![(PathTable::ROOT, 0, None)];
        let mut parts: Vec<&[u8]> = Vec::new();
        while let Some((node, depth, inherited)) = stack.pop() {
            parts.truncate(depth.saturating_sub(1));
            if node != PathTable::ROOT {
                parts.push(table.name(node));
            }
            let mut claim = inherited;
            if claim.is_none() && node != PathTable::ROOT {
                claim = Self::claim(table, &layers, roles, overlay, rules, node, &parts);
            }
            if let Some(c) = claim {
                claim_of.insert(node, c);
            }
            for child in table.children(node) {
                stack.push((child, depth + 1, claim));
            }
        }
        let claims = live.iter().map(|(_, p)| claim_of.get(p).copied()).collect();
        Waste {
            table,
            layers,
            roles,
            overlay,
            live,
            claims,
        }
    }

    fn claim(
        table: &PathTable,
        layers: &[&LayerIndex],
        roles: &[LayerRole],
        overlay: &Overlay,
        rules: &RuleSet,
        node: PathId,
        parts: &[&[u8]],
    ) -> Option<Claimed> {
        if let Some(i) = PATH_RULES
            .iter()
            .position(|r| r.patterns.iter().any(|p| matches(p, parts)))
        {
            return Some((Claim::Path(i), node));
        }
        let at = overlay.shown(node)?;
        if !roles.get(at.0 as usize).is_some_and(|r| r.from_context) {
            return None;
        }
        let is_dir = entry(layers, at).kind == EntryKind::Dir;
        let rel = table.path(node);
        let has_child = |name: &str| {
            table
                .child(node, name.as_bytes())
                .is_some_and(|c| overlay.shown(c).is_some())
        };
        let m = rules.classify(&rel, is_dir, &has_child, &|| None)?;
        // What a build never needs at run time; models and venvs may be
        // the application itself.
        let counted =
            !matches!(m.ecosystem.ecosystem.as_str(), "ml") && m.rule.id != "python/egg-info";
        counted.then_some((Claim::Rule(m.index), node))
    }

    /// The entries whose contents must be hashed: both sides of an
    /// overwrite of the same size, and the unclaimed files of the final
    /// image whose size another one shares.
    pub fn collisions(&self) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        for h in &self.overlay.hidden {
            if h.how == How::Overwritten {
                let new = entry(&self.layers, h.by);
                if new.kind == EntryKind::File && new.size == h.bytes {
                    out.push((h.at.0 as usize, h.at.1 as usize));
                    out.push((h.by.0 as usize, h.by.1 as usize));
                }
            }
        }
        let mut by_size: HashMap<u64, Vec<At>> = HashMap::new();
        for (i, (at, _)) in self.live.iter().enumerate() {
            let size = entry(&self.layers, *at).size;
            if size > 0 && self.claims[i].is_none() {
                by_size.entry(size).or_default().push(*at);
            }
        }
        for group in by_size.into_values().filter(|g| g.len() > 1) {
            out.extend(group.into_iter().map(|(l, e)| (l as usize, e as usize)));
        }
        out
    }

    fn hash(&self, at: At) -> Option<&'a Sha> {
        self.layers[at.0 as usize].hash_of(at.1 as usize)
    }

    /// The items, largest first; call after the [`Waste::collisions`]
    /// were hashed.
    pub fn items(&self, rules: &RuleSet) -> Vec<Item> {
        let mut groups: HashMap<GroupKey, Item> = HashMap::new();
        let mut add = |key: GroupKey,
                       path: PathId,
                       root: Option<PathId>,
                       bytes: u64,
                       fix: &dyn Fn() -> String| {
            let item = groups.entry(key.clone()).or_insert_with(|| Item {
                kind: key.0,
                label: key.1.clone(),
                bytes: 0,
                files: 0,
                root: root.unwrap_or(path),
                sample: Vec::new(),
                added: key.2,
                other: key.3,
                fix: fix(),
            });
            item.bytes += bytes;
            item.files += 1;
            if root.is_none() {
                item.root = common(self.table, item.root, path);
            }
            if item.sample.len() < SAMPLE {
                item.sample.push(path);
            }
        };
        for h in &self.overlay.hidden {
            let old = entry(&self.layers, h.at);
            let new = entry(&self.layers, h.by);
            let (kind, root) = match h.how {
                How::Deleted | How::Opaque => (Kind::Deleted, Some(new.path)),
                How::Replaced => (Kind::Overwritten, Some(new.path)),
                How::Overwritten => {
                    let same = new.kind == EntryKind::File
                        && new.size == old.size
                        && self.hash(h.at).is_some()
                        && self.hash(h.at) == self.hash(h.by);
                    let kind = match same {
                        true if (old.mode, old.uid, old.gid) != (new.mode, new.uid, new.gid) => {
                            Kind::MetadataOnly
                        }
                        true => Kind::Rewritten,
                        false => Kind::Overwritten,
                    };
                    (kind, None)
                }
            };
            // Whiteouts group by the path they delete.
            let by_entry = matches!(h.how, How::Deleted | How::Opaque).then_some(h.by.1);
            let label = kind.label().to_string();
            add(
                (kind, label, h.at.0, Some(h.by.0), by_entry),
                old.path,
                root,
                h.bytes,
                &|| self.hidden_fix(kind, h.at, h.by),
            );
        }
        // Claimed files of the final image.
        let mut unclaimed: HashMap<(u64, Sha), Vec<(At, PathId)>> = HashMap::new();
        for (i, &(at, path)) in self.live.iter().enumerate() {
            let e = entry(&self.layers, at);
            match self.claims[i] {
                Some((claim, root)) => {
                    let (kind, label, fix) = self.claim_info(claim, root, at, rules);
                    add(
                        (kind, label, at.0, None, Some(root)),
                        path,
                        Some(root),
                        e.size,
                        &|| fix.clone(),
                    );
                }
                None => {
                    if let Some(h) = self.hash(at).filter(|_| e.size > 0) {
                        unclaimed.entry((e.size, *h)).or_default().push((at, path));
                    }
                }
            }
        }
        // Duplicates: the first copy (lowest layer, then path) stays.
        for (_, mut copies) in unclaimed.into_iter().filter(|(_, c)| c.len() > 1) {
            copies.sort_by_key(|(at, p)| (*at, self.table.path(*p)));
            let (first_at, first_path) = copies[0];
            for &(at, path) in &copies[1..] {
                let size = entry(&self.layers, at).size;
                let label = format!("same content as {}", self.table.display(first_path));
                add(
                    (
                        Kind::Duplicate,
                        label,
                        at.0,
                        Some(first_at.0),
                        Some(first_path),
                    ),
                    path,
                    None,
                    size,
                    &|| self.duplicate_fix(at, first_at),
                );
            }
        }
        let mut items: Vec<Item> = groups.into_values().filter(|i| i.bytes > 0).collect();
        for item in &mut items {
            item.sample.sort_by_key(|p| self.table.path(*p));
        }
        items.sort_by(|a, b| {
            b.bytes
                .cmp(&a.bytes)
                .then(a.kind.cmp(&b.kind))
                .then_with(|| self.table.path(a.root).cmp(&self.table.path(b.root)))
                .then(a.added.cmp(&b.added))
        });
        items
    }

    fn claim_info(
        &self,
        claim: Claim,
        root: PathId,
        at: At,
        rules: &RuleSet,
    ) -> (Kind, String, String) {
        let role = &self.roles[at.0 as usize];
        match claim {
            Claim::Path(i) => {
                let rule = &PATH_RULES[i];
                let fix = match (rule.kind, role.from_context, role.base) {
                    (_, true, _) => format!(
                        "do not copy it: add `{}` to the ignore file",
                        ignore_line(self.table, root, None)
                    ),
                    (Kind::Vcs, _, _) => {
                        "delete it in the RUN that creates it (`git clone --depth 1 ... && rm -rf .git`)".to_string()
                    }
                    (Kind::Toolchain, _, true) => format!(
                        "the base image brings it: {RUNTIME_STAGE}"
                    ),
                    _ => rule.fix.to_string(),
                };
                (rule.kind, rule.label.to_string(), fix)
            }
            Claim::Rule((e, r)) => {
                let rule = &rules.ecosystems[e].rules[r];
                let name = String::from_utf8_lossy(self.table.name(root));
                let fix = format!(
                    "do not copy it: add `{}` to the ignore file",
                    crate::analyze::rules::RuleMatch {
                        ecosystem: &rules.ecosystems[e],
                        rule,
                        index: (e, r),
                    }
                    .ignore_pattern(&name)
                );
                let kind = if rule.id == "vcs/git" {
                    Kind::Vcs
                } else {
                    Kind::Context
                };
                (kind, rule.kind.clone(), fix)
            }
        }
    }

    fn hidden_fix(&self, kind: Kind, at: At, by: At) -> String {
        let adder = &self.roles[at.0 as usize];
        let hider = &self.roles[by.0 as usize];
        let new = entry(&self.layers, by);
        match kind {
            Kind::MetadataOnly => {
                let old = entry(&self.layers, at);
                let mut flags = Vec::new();
                if old.mode != new.mode {
                    flags.push(format!("--chmod={:o}", new.mode));
                }
                if (old.uid, old.gid) != (new.uid, new.gid) {
                    flags.push(format!("--chown={}:{}", new.uid, new.gid));
                }
                if matches!(adder.keyword.as_str(), "COPY" | "ADD") {
                    format!(
                        "set them while copying: `{} {} ...`, and drop the {} that rewrites the file",
                        adder.keyword,
                        flags.join(" "),
                        if hider.text.contains("chown") { "chown" } else { "chmod" }
                    )
                } else {
                    "change permissions and owner in the same RUN that writes the file".to_string()
                }
            }
            Kind::Rewritten => "the later step writes the same bytes again: drop it, or write the file once".to_string(),
            Kind::Deleted if adder.base => "the base image holds it, and a whiteout frees nothing: a smaller base, or a runtime stage that copies only what runs".to_string(),
            Kind::Deleted if adder.from_context => format!(
                "do not copy it: add `{}` to the ignore file, or copy only what is needed",
                ignore_line(self.table, entry(&self.layers, by).path, None)
            ),
            Kind::Deleted if adder.keyword == "RUN" => "delete it in the same RUN that creates it: a later RUN rm only hides it".to_string(),
            Kind::Deleted => "do not add what a later step deletes (copy less, or delete in the same step)".to_string(),
            _ => "write the file once: produce its final content in one step (or in a build stage)".to_string(),
        }
    }

    fn duplicate_fix(&self, at: At, first: At) -> String {
        if at.0 == first.0 {
            "one step writes the same content twice: keep one copy (a symbolic or hard link for the other path)".to_string()
        } else {
            "keep one copy: link the second path to the first, or copy the content once".to_string()
        }
    }

    /// Bytes of files the final image shows.
    pub fn live_bytes(&self) -> u64 {
        self.live
            .iter()
            .map(|(at, _)| entry(&self.layers, *at).size)
            .sum()
    }
}

/// An ignore-file line for `node` (`app/.git` → `app/.git`), relative to
/// nothing: the build's context root is not in the image, so the line
/// names the path under the `COPY` destination.
fn ignore_line(table: &PathTable, node: PathId, _dest: Option<&str>) -> String {
    format!("**/{}", crate::text::show_bytes(table.name(node)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_patterns_match() {
        let p =
            |s: &'static str| -> Vec<&'static [u8]> { s.split('/').map(str::as_bytes).collect() };
        assert!(matches("var/lib/apt/lists", &p("var/lib/apt/lists")));
        assert!(!matches("var/lib/apt/lists", &p("x/var/lib/apt/lists")));
        assert!(matches("**/.cache/pip", &p("root/.cache/pip")));
        assert!(matches("**/.cache/pip", &p(".cache/pip")));
        assert!(matches("usr/lib/go-*", &p("usr/lib/go-1.22")));
        assert!(!matches("usr/lib/go-*", &p("usr/lib/golang")));
    }
}
