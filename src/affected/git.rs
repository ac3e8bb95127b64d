//! The git subprocess: revisions, the diff between them, file contents at
//! a revision. Paths are repository-relative `/`-separated bytes, as git
//! prints them with `-z` (never quoted). Every command goes through the
//! hardened runner ([`crate::git`]); the work tree is compared without git
//! reading it (see [`Git::diff`]).

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::io::{Read as _, Write as _};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use super::AffectedError;

/// Largest file read from history (a Dockerfile, an ignore file, the
/// config): beyond it something is wrong, and reading it would be unbounded.
const MAX_BLOB: u64 = 16 << 20;

/// One repository, driven through the `git` command.
#[derive(Debug, Clone)]
pub struct Git {
    /// The work tree's top directory.
    pub top: PathBuf,
    repo: crate::git::Repo,
}

/// How a path changed between the two sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Added,
    Deleted,
    Modified,
    /// A file became a symlink, a submodule, ... (git's `T`).
    TypeChanged,
    /// The old side of a rename: counted as a deletion.
    RenamedFrom,
    /// The new side of a rename: counted as an addition.
    RenamedTo,
    /// Not tracked (with `--worktree`): counted as an addition.
    Untracked,
}

impl Status {
    pub fn word(self) -> &'static str {
        match self {
            Status::Added => "added",
            Status::Deleted => "deleted",
            Status::Modified => "modified",
            Status::TypeChanged => "type changed",
            Status::RenamedFrom => "renamed away",
            Status::RenamedTo => "renamed here",
            Status::Untracked => "untracked",
        }
    }
}

/// A changed path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub path: Vec<u8>,
    pub status: Status,
}

impl Git {
    /// The repository that holds `dir`.
    pub fn discover(dir: &Path) -> Result<Git, AffectedError> {
        let repo = crate::git::Repo::discover(dir).ok_or_else(|| AffectedError::NotARepo {
            path: dir.to_path_buf(),
        })?;
        Ok(Git {
            top: repo.top().to_path_buf(),
            repo,
        })
    }

    fn git(&self, args: &[&str]) -> Result<Option<Vec<u8>>, AffectedError> {
        Ok(self.repo.run(args)?)
    }

    /// The commit `rev` names, or `None` when this clone lacks it.
    pub fn commit(&self, rev: &str) -> Result<Option<String>, AffectedError> {
        if rev.starts_with('-') || rev.is_empty() || rev.contains(['\n', '\0']) {
            return Err(AffectedError::BadRevision { rev: rev.into() });
        }
        let spec = format!("{rev}^{{commit}}");
        let out = self.git(&[
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            &spec,
        ])?;
        Ok(out.map(|o| String::from_utf8_lossy(trim_newline(&o)).into_owned()))
    }

    /// The empty tree's id (SHA-1 or SHA-256, as the repository uses).
    pub fn empty_tree(&self) -> Result<String, AffectedError> {
        Ok(self.repo.empty_tree().to_string())
    }

    /// Whether this is a shallow clone.
    pub fn is_shallow(&self) -> Result<bool, AffectedError> {
        let out = self.git(&["rev-parse", "--is-shallow-repository"])?;
        Ok(out.is_some_and(|o| trim_newline(&o) == b"true"))
    }

    /// What changed from `base` to `head` (`None`: the work tree, with
    /// untracked files that git does not ignore).
    ///
    /// Revisions are compared by git with rename detection (and without
    /// it when that fails, as it does when it would need objects a partial
    /// clone lacks: renames only label changes). The work tree is compared
    /// here, never by git: a `git diff` against the work tree runs the
    /// repository's filters on files whose stat data changed. git lists
    /// the index (its stat data and blob ids) and what differs between
    /// `base` and the index; a file whose stat data differs from the
    /// index's (or that was written in the index's own tick, "racily
    /// clean") is hashed here as git hashes a blob, with no filter.
    /// Renames in the work tree are paired when the content is identical.
    pub fn diff(&self, base: &str, head: Option<&str>) -> Result<Vec<Change>, AffectedError> {
        let Some(head) = head else {
            return self.worktree_diff(base);
        };
        let mut args = vec![
            "diff",
            "--name-status",
            "-z",
            "-M",
            "--no-ext-diff",
            "--no-textconv",
            "--ignore-submodules=none",
            base,
            head,
            "--",
        ];
        let out = match self.git(&args)? {
            Some(out) => out,
            None => {
                args[4] = "--no-renames";
                self.git(&args)?.ok_or_else(|| AffectedError::Git {
                    args: args.join(" "),
                    stderr: "git diff failed (run with -v for its message)".into(),
                })?
            }
        };
        Ok(parse_name_status(&out))
    }

    /// `base` against the work tree (see [`Git::diff`]).
    fn worktree_diff(&self, base: &str) -> Result<Vec<Change>, AffectedError> {
        let failed = |args: &[&str]| AffectedError::Git {
            args: args.join(" "),
            stderr: "failed (run with -v for its message)".into(),
        };
        let cached_args = [
            "diff-index",
            "--cached",
            "--raw",
            "-z",
            "--no-renames",
            "--ignore-submodules=none",
            "--no-ext-diff",
            "--no-textconv",
            base,
            "--",
        ];
        let cached = self
            .git(&cached_args)?
            .ok_or_else(|| failed(&cached_args))?;
        let cached = parse_raw(&cached);
        let index_args = ["ls-files", "-z", "-s", "-v", "--debug"];
        let index = self.git(&index_args)?.ok_or_else(|| failed(&index_args))?;
        let index = parse_index(&index);
        let index_time = self
            .repo
            .line(&["rev-parse", "--git-path", "index"])
            .and_then(|p| std::fs::metadata(self.top.join(p)).ok())
            .map(|m| {
                use std::os::unix::fs::MetadataExt;
                (m.mtime(), m.mtime_nsec() as u32)
            });
        let file_mode = self
            .repo
            .line(&["config", "--type=bool", "--get", "core.filemode"])
            .is_none_or(|v| v == "true");

        // Each path's base side and work-tree side.
        let mut sides: BTreeMap<Vec<u8>, (Side, Side)> = BTreeMap::new();
        let mut conflicted: Vec<Vec<u8>> = Vec::new();
        for e in &index {
            if e.stage != 0 {
                conflicted.push(e.path.clone());
                continue;
            }
            let base_side = match cached.get(&e.path) {
                Some(side) => side.clone(),
                None => Side::Blob {
                    mode: e.mode,
                    oid: e.oid.clone(),
                },
            };
            let work = self.worktree_side(e, index_time, file_mode);
            sides.insert(e.path.clone(), (base_side, work));
        }
        for (path, base_side) in &cached {
            // Only in the base: deleted from the index (a file left on
            // disk is untracked, listed below).
            sides
                .entry(path.clone())
                .or_insert_with(|| (base_side.clone(), Side::Absent));
        }
        conflicted.sort();
        conflicted.dedup();
        let mut changes = Vec::new();
        let mut added: Vec<(Vec<u8>, String)> = Vec::new();
        let mut deleted: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
        for (path, (b, w)) in sides {
            if conflicted.binary_search(&path).is_ok() {
                continue;
            }
            let status = match (&b, &w) {
                (Side::Absent, Side::Absent) => continue,
                (Side::Absent, Side::Blob { oid, .. }) => {
                    added.push((path, oid.clone()));
                    continue;
                }
                (Side::Blob { oid, .. }, Side::Absent) => {
                    deleted.entry(oid.clone()).or_default().push(path);
                    continue;
                }
                (Side::Blob { mode: bm, oid: bo }, Side::Blob { mode: wm, oid: wo }) => {
                    if bm >> 12 != wm >> 12 {
                        Status::TypeChanged
                    } else if bm != wm || bo != wo || wo.is_empty() {
                        Status::Modified
                    } else {
                        continue;
                    }
                }
            };
            changes.push(Change { path, status });
        }
        for (path, oid) in added {
            let from = deleted
                .get_mut(&oid)
                .filter(|_| !oid.is_empty())
                .and_then(Vec::pop);
            match from {
                Some(from) => {
                    changes.push(Change {
                        path: from,
                        status: Status::RenamedFrom,
                    });
                    changes.push(Change {
                        path,
                        status: Status::RenamedTo,
                    });
                }
                None => changes.push(Change {
                    path,
                    status: Status::Added,
                }),
            }
        }
        for path in deleted.into_values().flatten() {
            changes.push(Change {
                path,
                status: Status::Deleted,
            });
        }
        for path in conflicted {
            changes.push(Change {
                path,
                status: Status::Modified,
            });
        }
        changes.sort_by(|a, b| a.path.cmp(&b.path));
        let args = ["ls-files", "-z", "--others", "--exclude-standard"];
        let out = self.git(&args)?.unwrap_or_default();
        for p in out.split(|&b| b == 0).filter(|p| !p.is_empty()) {
            changes.push(Change {
                path: p.to_vec(),
                status: Status::Untracked,
            });
        }
        Ok(changes)
    }

    /// What the work tree holds at an index entry's path.
    fn worktree_side(
        &self,
        e: &IndexEntry,
        index_time: Option<(i64, u32)>,
        file_mode: bool,
    ) -> Side {
        let same = Side::Blob {
            mode: e.mode,
            oid: e.oid.clone(),
        };
        // Skip-worktree (sparse checkout) and assume-unchanged entries are
        // the index's, as git takes them.
        if e.tag == b'S' || e.tag.is_ascii_lowercase() {
            return same;
        }
        let rel = Path::new(OsStr::from_bytes(&e.path));
        if e.mode == GITLINK {
            // A submodule: its checked-out commit, read with the same
            // hardened runner; one not checked out is unchanged, as in git.
            let dir = self.top.join(rel);
            return crate::git::Repo::discover(&dir)
                .filter(|r| r.top() == dir)
                .and_then(|r| r.line(&["rev-parse", "--verify", "--quiet", "HEAD"]))
                .map_or(same, |oid| Side::Blob { mode: GITLINK, oid });
        }
        let Some(st) = crate::input::lstat_no_links(&self.top, rel) else {
            return Side::Absent;
        };
        let kind = st.st_mode & libc::S_IFMT;
        let mode = match kind {
            libc::S_IFREG if !file_mode && e.mode >> 12 == 0o10 => e.mode,
            libc::S_IFREG if st.st_mode & 0o100 != 0 => 0o100755,
            libc::S_IFREG => 0o100644,
            libc::S_IFLNK => 0o120000,
            _ => return Side::Absent,
        };
        // The index keeps the low 32 bits of each field.
        #[allow(clippy::unnecessary_cast)]
        let clean = mode >> 12 == e.mode >> 12
            && e.size == st.st_size as u32
            && e.mtime == (st.st_mtime as u32, st.st_mtime_nsec as u32)
            && e.ctime == (st.st_ctime as u32, st.st_ctime_nsec as u32)
            && e.ino == st.st_ino as u32
            && index_time.is_some_and(|t| (i64::from(e.mtime.0), e.mtime.1) < t);
        if clean {
            return Side::Blob {
                mode,
                oid: e.oid.clone(),
            };
        }
        let sha256 = self.repo.is_sha256();
        let oid = match kind {
            libc::S_IFLNK => crate::input::read_link_no_links(&self.top, rel, 4096)
                .map(|target| blob_id(sha256, &target)),
            _ => crate::input::read_no_links(&self.top, rel, MAX_HASHED)
                .ok()
                .map(|data| blob_id(sha256, &data)),
        };
        // Unreadable or too large: changed, as far as anyone can tell.
        Side::Blob {
            mode,
            oid: oid.unwrap_or_default(),
        }
    }

    /// Every file under `dir` (repository-relative, `.` for all) at `rev`,
    /// or in the work tree (tracked and untracked) for `None`.
    pub fn files(&self, rev: Option<&str>, dir: &str) -> Result<Vec<Vec<u8>>, AffectedError> {
        let out = match rev {
            Some(r) => self.git(&["ls-tree", "-r", "-z", "--name-only", r, "--", dir])?,
            None => self.git(&["ls-files", "-z", "--cached", "--others", "--", dir])?,
        };
        Ok(out
            .unwrap_or_default()
            .split(|&b| b == 0)
            .filter(|p| !p.is_empty())
            .map(<[u8]>::to_vec)
            .collect())
    }

    /// The contents of repository-relative `paths` at `rev` (`None`: the
    /// work tree); `None` for a path that is not there (or not a file).
    pub fn read(
        &self,
        rev: Option<&str>,
        paths: &[String],
    ) -> Result<Vec<Option<Vec<u8>>>, AffectedError> {
        match rev {
            None => Ok(paths.iter().map(|p| read_worktree(&self.top, p)).collect()),
            Some(rev) => self.read_blobs(rev, paths),
        }
    }

    /// One `git cat-file --batch` for all the paths.
    fn read_blobs(
        &self,
        rev: &str,
        paths: &[String],
    ) -> Result<Vec<Option<Vec<u8>>>, AffectedError> {
        // A name with a newline cannot go through --batch; none of the
        // files read here can have one and still be used by a build.
        let mut input = Vec::new();
        for p in paths {
            if !p.contains('\n') {
                input.extend_from_slice(format!("{rev}:{p}\n").as_bytes());
            }
        }
        let mut child = self
            .repo
            .command()
            .args(["cat-file", "--batch"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(crate::git::GitError::Missing)?;
        let mut stdin = child.stdin.take();
        let writer = std::thread::spawn(move || {
            if let Some(s) = stdin.as_mut() {
                let _ = s.write_all(&input);
            }
        });
        let mut out = Vec::new();
        let mut too_big = None;
        if let Some(mut stdout) = child.stdout.take() {
            let mut buf = Vec::new();
            // Bounded: at most every requested blob up to MAX_BLOB.
            let limit = (MAX_BLOB + 4096)
                .saturating_mul(paths.len() as u64)
                .saturating_add(4096);
            let _ = (&mut stdout).take(limit).read_to_end(&mut buf);
            out = buf;
        }
        let _ = writer.join();
        let _ = child.kill();
        let _ = child.wait();
        let mut rest: &[u8] = &out;
        let mut result = Vec::with_capacity(paths.len());
        for p in paths {
            if p.contains('\n') {
                result.push(None);
                continue;
            }
            let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
                result.push(None);
                continue;
            };
            let header = &rest[..nl];
            rest = &rest[nl + 1..];
            let fields: Vec<&[u8]> = header.split(|&b| b == b' ').collect();
            if header.ends_with(b" missing") && self.in_tree(rev, p) {
                // The tree names it but the object is not here: a partial
                // clone, which git is not allowed to fetch from.
                return Err(AffectedError::MissingObject {
                    what: format!("{}:{p}", &rev[..rev.len().min(12)]),
                });
            }
            match fields.as_slice() {
                [_, kind, size] if !header.ends_with(b" missing") => {
                    let size: u64 = std::str::from_utf8(size)
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(u64::MAX);
                    if size > MAX_BLOB {
                        too_big = Some(p.clone());
                        break;
                    }
                    let size = size as usize;
                    if rest.len() < size + 1 {
                        result.push(None);
                        rest = &[];
                        continue;
                    }
                    let body = &rest[..size];
                    rest = &rest[size + 1..];
                    result.push((*kind == b"blob").then(|| body.to_vec()));
                }
                _ => result.push(None),
            }
        }
        if let Some(path) = too_big {
            return Err(AffectedError::TooLarge {
                path: format!("{rev}:{path}"),
            });
        }
        Ok(result)
    }
}

impl Git {
    /// Whether `rev`'s tree has an entry at `path` (its object may still be
    /// missing from a partial clone).
    fn in_tree(&self, rev: &str, path: &str) -> bool {
        let spec = format!("{rev}:{path}");
        self.repo
            .line(&[
                "rev-parse",
                "--verify",
                "--quiet",
                "--end-of-options",
                &spec,
            ])
            .is_some()
    }
}

/// A work-tree file: regular files only (never a FIFO or device, never
/// through a symlink, which git would store as a link), bounded.
fn read_worktree(top: &Path, rel: &str) -> Option<Vec<u8>> {
    crate::input::read_no_links(top, Path::new(rel), MAX_BLOB).ok()
}

/// A submodule's mode in the index.
const GITLINK: u32 = 0o160000;

/// The largest work-tree file hashed to compare it with the index: a
/// larger one whose stat data changed counts as changed.
const MAX_HASHED: u64 = 256 << 20;

/// One side of a path in a comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Side {
    Absent,
    /// A blob (or link, or submodule commit) with its mode and id; an
    /// empty id is one that could not be computed (equal to none).
    Blob {
        mode: u32,
        oid: String,
    },
}

/// git's id of a blob: the hash of `blob <len>\0` and the bytes.
fn blob_id(sha256: bool, data: &[u8]) -> String {
    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
    let header = format!("blob {}\0", data.len());
    if sha256 {
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        h.update(header.as_bytes());
        h.update(data);
        hex(&h.finalize())
    } else {
        use sha1::Digest as _;
        let mut h = sha1::Sha1::new();
        h.update(header.as_bytes());
        h.update(data);
        hex(&h.finalize())
    }
}

/// One entry of `git ls-files -z -s -v --debug`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct IndexEntry {
    /// `H`, `S` (skip-worktree), `M` (unmerged)...; lowercase when
    /// assume-unchanged.
    tag: u8,
    mode: u32,
    oid: String,
    stage: u8,
    path: Vec<u8>,
    ctime: (u32, u32),
    mtime: (u32, u32),
    ino: u32,
    size: u32,
}

/// Parses `git ls-files -z -s -v --debug`: per entry `T MODE OID
/// STAGE\tPATH\0`, then five lines of stat data (`ctime: S:N`, `mtime:
/// S:N`, `dev: D\tino: I`, `uid: U\tgid: G`, `size: S\tflags: F`). A
/// record that does not parse ends the list.
fn parse_index(out: &[u8]) -> Vec<IndexEntry> {
    let mut entries = Vec::new();
    let mut rest = out;
    while let Some(nul) = rest.iter().position(|&b| b == 0) {
        let header = &rest[..nul];
        rest = &rest[nul + 1..];
        let Some(tab) = header.iter().position(|&b| b == b'\t') else {
            break;
        };
        let meta: Vec<&[u8]> = header[..tab].split(|&b| b == b' ').collect();
        let [tag, mode, oid, stage] = meta.as_slice() else {
            break;
        };
        let mut stat: HashMap<&[u8], Vec<u32>> = HashMap::new();
        for _ in 0..5 {
            let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
                break;
            };
            let line = &rest[..nl];
            rest = &rest[nl + 1..];
            let mut key: &[u8] = b"";
            for word in line
                .split(|&b| b == b' ' || b == b'\t')
                .filter(|w| !w.is_empty())
            {
                match word.strip_suffix(b":") {
                    Some(k) => key = k,
                    None => {
                        let values = word
                            .split(|&b| b == b':')
                            .filter_map(|n| std::str::from_utf8(n).ok()?.parse().ok())
                            .collect();
                        stat.insert(key, values);
                    }
                }
            }
        }
        let num = |k: &[u8], i: usize| stat.get(k).and_then(|v| v.get(i).copied()).unwrap_or(0);
        let (Some(&tag), Ok(mode)) = (
            tag.first(),
            u32::from_str_radix(&String::from_utf8_lossy(mode), 8),
        ) else {
            break;
        };
        entries.push(IndexEntry {
            tag,
            mode,
            oid: String::from_utf8_lossy(oid).into_owned(),
            stage: stage.first().map_or(0, |s| s.wrapping_sub(b'0')),
            path: header[tab + 1..].to_vec(),
            ctime: (num(b"ctime", 0), num(b"ctime", 1)),
            mtime: (num(b"mtime", 0), num(b"mtime", 1)),
            ino: num(b"ino", 0),
            size: num(b"size", 0),
        });
    }
    entries
}

/// Parses `git diff-index --raw -z` into each path's base side: `:OLD_MODE
/// NEW_MODE OLD_OID NEW_OID STATUS\0PATH\0`.
fn parse_raw(out: &[u8]) -> BTreeMap<Vec<u8>, Side> {
    let mut sides = BTreeMap::new();
    let mut fields = out.split(|&b| b == 0);
    while let (Some(meta), Some(path)) = (fields.next(), fields.next()) {
        let meta: Vec<&[u8]> = meta
            .strip_prefix(b":")
            .unwrap_or(meta)
            .split(|&b| b == b' ')
            .collect();
        let [old_mode, _, old_oid, _, _] = meta.as_slice() else {
            break;
        };
        let mode = u32::from_str_radix(&String::from_utf8_lossy(old_mode), 8).unwrap_or(0);
        let side = if mode == 0 {
            Side::Absent
        } else {
            Side::Blob {
                mode,
                oid: String::from_utf8_lossy(old_oid).into_owned(),
            }
        };
        sides.insert(path.to_vec(), side);
    }
    sides
}

fn trim_newline(b: &[u8]) -> &[u8] {
    let b = b.strip_suffix(b"\n").unwrap_or(b);
    b.strip_suffix(b"\r").unwrap_or(b)
}

/// Parses `git diff --name-status -z`: a status, then one path (two for
/// renames and copies), each NUL-terminated.
pub fn parse_name_status(out: &[u8]) -> Vec<Change> {
    let mut fields = out.split(|&b| b == 0);
    let mut changes = Vec::new();
    while let Some(status) = fields.next() {
        let Some(&letter) = status.first() else {
            continue;
        };
        let Some(path) = fields.next() else { break };
        match letter {
            b'R' | b'C' => {
                let Some(to) = fields.next() else { break };
                if letter == b'R' {
                    changes.push(Change {
                        path: path.to_vec(),
                        status: Status::RenamedFrom,
                    });
                }
                changes.push(Change {
                    path: to.to_vec(),
                    status: if letter == b'R' {
                        Status::RenamedTo
                    } else {
                        Status::Added
                    },
                });
            }
            other => changes.push(Change {
                path: path.to_vec(),
                status: match other {
                    b'A' => Status::Added,
                    b'D' => Status::Deleted,
                    b'T' => Status::TypeChanged,
                    _ => Status::Modified,
                },
            }),
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(dir: &Path, script: &str) {
        let out = std::process::Command::new("sh")
            .current_dir(dir)
            .args(["-ec", script])
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The work-tree comparison done here agrees with `git diff` (renames
    /// paired by content as git pairs exact ones), on every kind of change,
    /// in both object formats.
    #[test]
    fn worktree_diff_agrees_with_git() {
        for format in ["sha1", "sha256"] {
            let dir = tempfile::tempdir().unwrap();
            let top = dir.path();
            sh(
                top,
                &format!(
                    "git init -q --object-format={format}
                     for f in a b c d f h j k l; do echo $f > $f; done
                     ln -s a m
                     mkdir sub && echo s > sub/s
                     git add . && git commit -qm base
                     echo changed > a
                     rm b
                     chmod +x c
                     rm d && ln -s a d
                     echo new > e && git add e
                     git mv f g
                     mv h i
                     echo staged > j && git add j && echo j > j
                     echo K > k && git add k && echo Q > k
                     touch l
                     rm m && ln -s b m
                     echo untracked > u"
                ),
            );
            let git = Git::discover(top).unwrap();
            let base = git.commit("HEAD").unwrap().unwrap();
            let mut ours: Vec<(String, char)> = git
                .diff(&base, None)
                .unwrap()
                .into_iter()
                .map(|c| {
                    let letter = match c.status {
                        Status::Added | Status::RenamedTo => 'A',
                        Status::Deleted | Status::RenamedFrom => 'D',
                        Status::Modified => 'M',
                        Status::TypeChanged => 'T',
                        Status::Untracked => '?',
                    };
                    (String::from_utf8(c.path).unwrap(), letter)
                })
                .collect();
            ours.sort();
            let out = std::process::Command::new("git")
                .current_dir(top)
                .args(["diff", "--name-status", "--no-renames", &base])
                .output()
                .unwrap();
            let mut theirs: Vec<(String, char)> = String::from_utf8(out.stdout)
                .unwrap()
                .lines()
                .map(|l| {
                    let (s, p) = l.split_once('\t').unwrap();
                    (p.to_string(), s.chars().next().unwrap())
                })
                .collect();
            theirs.push(("i".into(), '?'));
            theirs.push(("u".into(), '?'));
            theirs.sort();
            assert_eq!(ours, theirs, "{format}");
            let renamed: Vec<Status> = git
                .diff(&base, None)
                .unwrap()
                .into_iter()
                .filter(|c| c.path == b"f" || c.path == b"g")
                .map(|c| c.status)
                .collect();
            assert_eq!(
                renamed,
                [Status::RenamedFrom, Status::RenamedTo],
                "{format}"
            );
        }
    }

    #[test]
    fn index_listing() {
        let out = b"H 100644 45b983be36b73c0788dc9cbcb76cbb80fc7bb057 0\ta b\0  ctime: 17:73\n  mtime: 18:74\n  dev: 65024\tino: 10027313\n  uid: 0\tgid: 0\n  size: 3\tflags: 0\ns 120000 2e65efe2a145dda7ee51d1741299f848e5bf752e 0\tl\nx\0  ctime: 1:2\n  mtime: 3:4\n  dev: 5\tino: 6\n  uid: 0\tgid: 0\n  size: 1\tflags: 8000\n";
        let got = parse_index(out);
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[0],
            IndexEntry {
                tag: b'H',
                mode: 0o100644,
                oid: "45b983be36b73c0788dc9cbcb76cbb80fc7bb057".into(),
                stage: 0,
                path: b"a b".to_vec(),
                ctime: (17, 73),
                mtime: (18, 74),
                ino: 10027313,
                size: 3,
            }
        );
        assert_eq!(
            (got[1].tag, got[1].mode, &got[1].path[..]),
            (b's', 0o120000, &b"l\nx"[..])
        );
        assert_eq!(
            blob_id(false, b"hi\n"),
            "45b983be36b73c0788dc9cbcb76cbb80fc7bb057"
        );
    }

    #[test]
    fn name_status() {
        let out =
            b"M\0a b.txt\0R087\0old/x.py\0new/x.py\0D\0gone\0A\0new\nline\0T\0link\0C100\0s\0t\0";
        let got: Vec<(String, Status)> = parse_name_status(out)
            .into_iter()
            .map(|c| (String::from_utf8_lossy(&c.path).into_owned(), c.status))
            .collect();
        assert_eq!(
            got,
            vec![
                ("a b.txt".into(), Status::Modified),
                ("old/x.py".into(), Status::RenamedFrom),
                ("new/x.py".into(), Status::RenamedTo),
                ("gone".into(), Status::Deleted),
                ("new\nline".into(), Status::Added),
                ("link".into(), Status::TypeChanged),
                ("t".into(), Status::Added),
            ]
        );
    }
}
