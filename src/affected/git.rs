//! The git subprocess: revisions, the diff between them, file contents at
//! a revision. Paths are repository-relative `/`-separated bytes, as git
//! prints them with `-z` (never quoted).

use std::ffi::OsStr;
use std::io::{Read as _, Write as _};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::AffectedError;

/// Largest file read from history (a Dockerfile, an ignore file, the
/// config): beyond it something is wrong, and reading it would be unbounded.
const MAX_BLOB: u64 = 16 << 20;

/// One repository, driven through the `git` command.
#[derive(Debug, Clone)]
pub struct Git {
    /// The work tree's top directory.
    pub top: PathBuf,
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
        let out = run(dir, &["rev-parse", "--show-toplevel"])?;
        let Some(out) = out else {
            return Err(AffectedError::NotARepo {
                path: dir.to_path_buf(),
            });
        };
        let text = trim_newline(&out);
        Ok(Git {
            top: PathBuf::from(OsStr::from_bytes(text)),
        })
    }

    fn git(&self, args: &[&str]) -> Result<Option<Vec<u8>>, AffectedError> {
        run(&self.top, args)
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
        let args = ["hash-object", "-t", "tree", "/dev/null"];
        let out = self.git(&args)?.ok_or_else(|| AffectedError::Git {
            args: args.join(" "),
            stderr: "cannot hash the empty tree".into(),
        })?;
        Ok(String::from_utf8_lossy(trim_newline(&out)).into_owned())
    }

    /// Whether this is a shallow clone.
    pub fn is_shallow(&self) -> Result<bool, AffectedError> {
        let out = self.git(&["rev-parse", "--is-shallow-repository"])?;
        Ok(out.is_some_and(|o| trim_newline(&o) == b"true"))
    }

    /// What changed from `base` to `head` (`None`: the work tree, with
    /// untracked files that git does not ignore).
    pub fn diff(&self, base: &str, head: Option<&str>) -> Result<Vec<Change>, AffectedError> {
        let mut args = vec![
            "diff",
            "--name-status",
            "-z",
            "-M",
            "--no-ext-diff",
            "--no-textconv",
            "--ignore-submodules=none",
            base,
        ];
        if let Some(h) = head {
            args.push(h);
        }
        args.push("--");
        let out = self.git(&args)?.ok_or_else(|| AffectedError::Git {
            args: args.join(" "),
            stderr: "git diff failed".into(),
        })?;
        let mut changes = parse_name_status(&out);
        if head.is_none() {
            let args = ["ls-files", "-z", "--others", "--exclude-standard"];
            let out = self.git(&args)?.unwrap_or_default();
            for p in out.split(|&b| b == 0).filter(|p| !p.is_empty()) {
                changes.push(Change {
                    path: p.to_vec(),
                    status: Status::Untracked,
                });
            }
        }
        Ok(changes)
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
        let mut child = Command::new("git")
            .arg("-C")
            .arg(&self.top)
            .args(["cat-file", "--batch"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(AffectedError::GitMissing)?;
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

/// A work-tree file: regular files only (never a FIFO or device, never
/// through a symlink, which git would store as a link), bounded.
fn read_worktree(top: &Path, rel: &str) -> Option<Vec<u8>> {
    let mut path = top.to_path_buf();
    for part in Path::new(rel).components() {
        path.push(part);
        if std::fs::symlink_metadata(&path)
            .ok()?
            .file_type()
            .is_symlink()
        {
            return None;
        }
    }
    let meta = std::fs::symlink_metadata(&path).ok()?;
    if !meta.is_file() || meta.len() > MAX_BLOB {
        return None;
    }
    let mut out = Vec::new();
    std::fs::File::open(&path)
        .ok()?
        .take(MAX_BLOB)
        .read_to_end(&mut out)
        .ok()?;
    Some(out)
}

/// Runs git in `dir`; `None` when it exits non-zero.
fn run(dir: &Path, args: &[&str]) -> Result<Option<Vec<u8>>, AffectedError> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(AffectedError::GitMissing)?;
    if out.status.success() {
        Ok(Some(out.stdout))
    } else {
        tracing::debug!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(None)
    }
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
