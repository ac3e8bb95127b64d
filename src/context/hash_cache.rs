//! A per-context cache of file content hashes, so that surveying a context
//! again reads only the files changed since the last survey.
//!
//! A file's hash is reused while its device, inode, size, mtime and ctime
//! (to the nanosecond) are unchanged: any write or `chmod`/rename updates
//! ctime. Files changed within the last [`RACY_SECS`] seconds are not
//! cached, as a write in the same timestamp tick could go unseen.
//!
//! The cache lives under `$XDG_CACHE_HOME/reggie-build/hashes/` (else
//! `~/.cache/...`), one file per context root and Dockerfile (the images
//! of a monorepo often share a root but read different parts of it, and
//! one survey must not drop another's hashes), never inside the context.
//! It is advisory: a missing, unreadable, foreign or corrupt cache is
//! ignored; it is bounded in size, and replaced atomically (written
//! aside, then renamed); the caches of the [`MAX_CONTEXTS`] most recently
//! built contexts are kept. Set `REGGIE_HASH_CACHE=0` to disable it.
//!
//! A record decides what `digest` returns and whether `--skip-if-exists`
//! skips a build, so the cache trusts only what this user wrote: its
//! directories (`reggie-build/` and `hashes/`) are created 0700, opened
//! without following links (one that is a symbolic link is refused, and
//! pruning works through the opened directory, never through a link),
//! and must be owned by this user and writable by no one else; so must
//! each cache file. Anything else is ignored, and said once at `-v`.
//!
//! A survey that finds every file in the cache costs the walk's `lstat`s
//! and one read of the cache file: its records are sorted, searched in
//! place, and the file is rewritten only when a hash was learnt (git's
//! index, which also keys on stat data, is likewise rewritten only when
//! an entry changed).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use sha2::{Digest as _, Sha256};

use super::walk::Stat;

/// Entries kept at most (80 bytes each on disk).
pub const MAX_ENTRIES: usize = 250_000;
/// Contexts with a cache kept at most; the least recently saved go first.
pub const MAX_CONTEXTS: usize = 64;
/// Files whose ctime or mtime is this recent are not cached.
pub const RACY_SECS: i64 = 2;

const MAGIC: &[u8; 16] = b"reggie-hashes-v2";
const KEY: usize = 48;
const RECORD: usize = KEY + 32;
/// A cache not rewritten for this long gets its mtime refreshed, so that
/// [`prune`] (which keeps the most recently saved) does not drop a cache
/// that is read on every run but never changes.
const TOUCH_SECS: u64 = 3600;

/// A file's identity and version: its hash is reused only while all of
/// these are unchanged. Encoded as 48 bytes and ordered as bytes (the
/// order of the records on disk); the inode comes first, big-endian, so
/// that a lookup mostly compares one integer.
type Key = [u8; KEY];

fn key_of(st: &Stat) -> Key {
    let mut k = [0u8; KEY];
    k[0..8].copy_from_slice(&st.ino.to_be_bytes());
    k[8..16].copy_from_slice(&st.dev.to_le_bytes());
    k[16..24].copy_from_slice(&st.size.to_le_bytes());
    k[24..32].copy_from_slice(&st.mtime.to_le_bytes());
    k[32..36].copy_from_slice(&st.mtime_nsec.to_le_bytes());
    k[36..44].copy_from_slice(&st.ctime.to_le_bytes());
    k[44..48].copy_from_slice(&st.ctime_nsec.to_le_bytes());
    k
}

/// Byte order of two keys, inode first as an integer.
fn key_cmp(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    let ino = |k: &[u8]| k.first_chunk::<8>().map(|b| u64::from_be_bytes(*b));
    ino(a)
        .cmp(&ino(b))
        .then_with(|| a.get(8..KEY).cmp(&b.get(8..KEY)))
}

/// Hashes learnt or used by every survey of this process, for the
/// surveys after them: images of one run (`image --all`, `digest` of
/// every image) whose contexts hold the same files read each file once,
/// though each context and Dockerfile has its own cache file. Keyed
/// exactly as the cache files, bounded by [`MAX_ENTRIES`].
static SHARED: std::sync::Mutex<Option<HashMap<Key, [u8; 32]>>> = std::sync::Mutex::new(None);

fn shared_get(key: &Key) -> Option<[u8; 32]> {
    let shared = SHARED.lock().unwrap_or_else(|p| p.into_inner());
    shared.as_ref()?.get(key).copied()
}

fn shared_put(key: Key, hash: [u8; 32]) {
    let mut shared = SHARED.lock().unwrap_or_else(|p| p.into_inner());
    let map = shared.get_or_insert_with(HashMap::new);
    if map.len() < MAX_ENTRIES {
        map.insert(key, hash);
    }
}

/// The hashes known from earlier surveys of one context, and those
/// learnt in this one.
///
/// The file holds records sorted by key, so it is searched where it was
/// read (no map is built, nothing is rehashed). It is rewritten only
/// when this survey learnt a hash it did not hold; the rewrite keeps the
/// entries this survey used and drops the others (files deleted or
/// changed since). A survey that learnt nothing leaves the file as it is.
#[derive(Debug, Default)]
pub struct HashCache {
    /// The cache file (for messages) ...
    path: Option<PathBuf>,
    /// ... and its directory, opened and checked once: the file is reached
    /// through it by name.
    dir: Option<OwnedFd>,
    /// The records read, `RECORD` bytes each, sorted by key (a file that
    /// is not only costs lookups that miss: a hit is an exact key match).
    old: Vec<u8>,
    /// Which of `old`'s records this survey used.
    used: Vec<bool>,
    /// Records used, counted once each.
    used_count: usize,
    /// Hashes learnt in this survey.
    new: HashMap<Key, [u8; 32]>,
    /// The cache file's mtime when read.
    loaded_mtime: Option<std::time::SystemTime>,
    /// Uses and feeds the hashes of the process's other surveys.
    share: bool,
    now: i64,
    /// Files whose hash came from the cache.
    pub hits: u64,
}

impl HashCache {
    /// The cache of the context at `root` built with `dockerfile` (empty
    /// when there is none, or no cache directory).
    pub fn open(root: &Path, dockerfile: &Path) -> HashCache {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(i64::MAX);
        let path = if std::env::var_os("REGGIE_HASH_CACHE").is_some_and(|v| v == "0") {
            None
        } else {
            cache_file(root, dockerfile)
        };
        let dir = path.as_ref().and_then(|p| {
            let base = p.parent()?.parent()?.parent()?;
            checked_dirs(base)
                .map_err(|why| report(&format!("{}: {why}", p.display())))
                .ok()
        });
        let cache = match (path, dir) {
            (Some(path), Some(dir)) => HashCache::in_dir(dir, path, now),
            _ => HashCache {
                now,
                ..HashCache::default()
            },
        };
        HashCache {
            share: true,
            ..cache
        }
    }

    /// A cache kept in `path`, apart from the process's other surveys
    /// (tests). Its directory must exist and be this user's alone.
    pub fn at(path: PathBuf, now: i64) -> HashCache {
        let dir = path.parent().and_then(|d| {
            let fd = rustix::fs::open(d, DIR_FLAGS, Mode::empty()).ok()?;
            owned(&fd).map_err(|why| report(&why)).ok()?;
            Some(fd)
        });
        match dir {
            Some(dir) => HashCache::in_dir(dir, path, now),
            None => HashCache {
                now,
                ..HashCache::default()
            },
        }
    }

    fn in_dir(dir: OwnedFd, path: PathBuf, now: i64) -> HashCache {
        let (old, loaded_mtime) = load(&dir, &path).unwrap_or_default();
        let records = old.len() / RECORD;
        HashCache {
            dir: Some(dir),
            path: Some(path),
            old,
            used: vec![false; records],
            used_count: 0,
            new: HashMap::new(),
            loaded_mtime,
            share: false,
            now,
            hits: 0,
        }
    }

    fn record(&self, i: usize) -> &[u8] {
        &self.old[i * RECORD..(i + 1) * RECORD]
    }

    /// The content hash of the file with this `stat`, when known.
    pub fn get(&mut self, st: &Stat) -> Option<[u8; 32]> {
        let key = key_of(st);
        let records = self.old.len() / RECORD;
        let found = {
            let (mut lo, mut hi) = (0usize, records);
            let mut found = None;
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                match key_cmp(&self.record(mid)[..KEY], &key) {
                    std::cmp::Ordering::Less => lo = mid + 1,
                    std::cmp::Ordering::Greater => hi = mid,
                    std::cmp::Ordering::Equal => {
                        found = Some(mid);
                        break;
                    }
                }
            }
            found
        };
        let hash = match found {
            Some(i) => {
                if !self.used[i] {
                    self.used[i] = true;
                    self.used_count += 1;
                }
                self.record(i)[KEY..].try_into().ok()?
            }
            None => match self.new.get(&key) {
                // A file read earlier in this survey (another hard link).
                Some(hash) => *hash,
                // Read by another survey of this process: learnt here too.
                None if self.share => {
                    let hash = shared_get(&key)?;
                    if self.used_count + self.new.len() < MAX_ENTRIES {
                        self.new.insert(key, hash);
                    }
                    hash
                }
                None => return None,
            },
        };
        self.hits += 1;
        Some(hash)
    }

    /// Records the hash of a file read with this `stat`.
    pub fn put(&mut self, st: &Stat, hash: [u8; 32]) {
        let recent = self.now.saturating_sub(RACY_SECS);
        if st.mtime >= recent
            || st.ctime >= recent
            || self.used_count + self.new.len() >= MAX_ENTRIES
        {
            return;
        }
        let key = key_of(st);
        self.new.insert(key, hash);
        if self.share {
            shared_put(key, hash);
        }
    }

    /// Saves what this survey learnt (best effort: a cache that cannot be
    /// written is only slower next time). Nothing learnt: the file is not
    /// rewritten (its stale entries stay until a survey learns something).
    pub fn save(self) {
        let (Some(path), Some(dir)) = (&self.path, &self.dir) else {
            return;
        };
        if self.new.is_empty() {
            self.touch(dir, path);
            return;
        }
        let mut records: Vec<[u8; RECORD]> = Vec::with_capacity(self.used_count + self.new.len());
        for (i, used) in self.used.iter().enumerate() {
            if *used {
                if let Ok(r) = self.record(i).try_into() {
                    records.push(r);
                }
            }
        }
        for (key, hash) in &self.new {
            let mut r = [0u8; RECORD];
            r[..KEY].copy_from_slice(key);
            r[KEY..].copy_from_slice(hash);
            records.push(r);
        }
        records.sort_unstable_by(|a, b| key_cmp(&a[..KEY], &b[..KEY]));
        records.dedup_by(|a, b| a[..KEY] == b[..KEY]);
        // A larger file would be refused on load.
        records.truncate(MAX_ENTRIES);
        if let Err(e) = save(dir, path, &records) {
            tracing::debug!("not saving the hash cache {}: {e}", path.display());
        }
    }

    /// Refreshes the mtime of a cache read but not rewritten, at most once
    /// every [`TOUCH_SECS`], so that it counts as recently used.
    fn touch(&self, dir: &OwnedFd, path: &Path) {
        let Some(mtime) = self.loaded_mtime else {
            return;
        };
        let now = std::time::SystemTime::now();
        if now
            .duration_since(mtime)
            .is_ok_and(|age| age.as_secs() < TOUCH_SECS)
        {
            return;
        }
        let flags = OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let touched = rustix::fs::openat(dir, name_of(path), flags, Mode::empty())
            .map_err(std::io::Error::from)
            .and_then(|fd| std::fs::File::from(fd).set_modified(now));
        if let Err(e) = touched {
            tracing::debug!("not touching the hash cache {}: {e}", path.display());
        }
    }
}

fn cache_file(root: &Path, dockerfile: &Path) -> Option<PathBuf> {
    let base = match std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(std::env::var_os("HOME").filter(|v| !v.is_empty())?).join(".cache"),
    };
    if !base.is_absolute() {
        return None;
    }
    let root = root.canonicalize().ok()?;
    let mut key = Sha256::new();
    key.update(root.as_os_str().as_encoded_bytes());
    // A Dockerfile that cannot be resolved (it is read later, and fails
    // there) shares the root's cache.
    if let Ok(dockerfile) = dockerfile.canonicalize() {
        key.update(b"\0");
        key.update(dockerfile.as_os_str().as_encoded_bytes());
    }
    let name: String = key.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Some(base.join("reggie-build").join("hashes").join(name))
}

/// Flags of the cache's directories: never through a link.
const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// Says once (at `-v`) why a cache is not used.
fn report(why: &str) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| tracing::info!("not using the hash cache: {why}"));
}

/// Whether what `fd` is is this user's alone: owned by the effective
/// user, writable by no group or other.
fn owned(fd: &impl AsFd) -> Result<rustix::fs::Stat, String> {
    let st = rustix::fs::fstat(fd).map_err(|e| e.to_string())?;
    let me = rustix::process::geteuid().as_raw();
    if st.st_uid != me {
        return Err(format!("owned by uid {}, not this user ({me})", st.st_uid));
    }
    if st.st_mode & 0o022 != 0 {
        return Err(format!(
            "writable by others (mode {:o})",
            st.st_mode & 0o7777
        ));
    }
    Ok(st)
}

/// `base/reggie-build/hashes`, created 0700 where missing: each of ours
/// opened without following a link and checked with [`owned`]. `base`
/// itself (the user's cache directory) may be a link.
fn checked_dirs(base: &Path) -> Result<OwnedFd, String> {
    if let Err(e) = std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(base)
    {
        return Err(e.to_string());
    }
    let mut dir = rustix::fs::open(base, DIR_FLAGS.difference(OFlags::NOFOLLOW), Mode::empty())
        .map_err(|e| e.to_string())?;
    for name in ["reggie-build", "hashes"] {
        match rustix::fs::mkdirat(&dir, name, Mode::from_raw_mode(0o700)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(format!("cannot create {name}/: {e}")),
        }
        let next = match rustix::fs::openat(&dir, name, DIR_FLAGS, Mode::empty()) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR) => {
                return Err(format!("{name} is a symbolic link or not a directory"))
            }
            Err(e) => return Err(format!("{name}/: {e}")),
        };
        owned(&next).map_err(|why| format!("{name}/ is {why}"))?;
        dir = next;
    }
    Ok(dir)
}

fn name_of(path: &Path) -> &std::ffi::OsStr {
    path.file_name().unwrap_or(path.as_os_str())
}

/// The records of the cache file at `path` (in `dir`) and its mtime;
/// `None` when missing, not a regular file, not this user's alone, too
/// large or not a cache.
fn load(dir: &OwnedFd, path: &Path) -> Option<(Vec<u8>, Option<std::time::SystemTime>)> {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(dir, name_of(path), flags, Mode::empty()).ok()?;
    let st = owned(&fd)
        .map_err(|why| report(&format!("{} is {why}", path.display())))
        .ok()?;
    let limit = (MAGIC.len() + MAX_ENTRIES * RECORD) as u64;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile || st.st_size as u64 > limit {
        return None;
    }
    let file = std::fs::File::from(fd);
    let modified = file.metadata().ok().and_then(|m| m.modified().ok());
    let mut bytes = Vec::with_capacity(st.st_size as usize);
    file.take(limit + 1).read_to_end(&mut bytes).ok()?;
    if bytes.len() as u64 > limit
        || !bytes.starts_with(MAGIC)
        || !(bytes.len() - MAGIC.len()).is_multiple_of(RECORD)
    {
        return None;
    }
    bytes.drain(..MAGIC.len());
    Some((bytes, modified))
}

fn save(dir: &OwnedFd, path: &Path, records: &[[u8; RECORD]]) -> std::io::Result<()> {
    let mut bytes = Vec::with_capacity(MAGIC.len() + records.len() * RECORD);
    bytes.extend_from_slice(MAGIC);
    for r in records {
        bytes.extend_from_slice(r);
    }
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let tmp = format!(".tmp-{}-{nonce}", std::process::id());
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(dir, tmp.as_str(), flags, Mode::from_raw_mode(0o600))?;
    let result = std::fs::File::from(fd)
        .write_all(&bytes)
        .and_then(|()| Ok(rustix::fs::renameat(dir, tmp.as_str(), dir, name_of(path))?));
    if result.is_err() {
        let _ = rustix::fs::unlinkat(dir, tmp.as_str(), AtFlags::empty());
    }
    result?;
    prune(dir, MAX_CONTEXTS);
    Ok(())
}

/// Keeps the `keep` most recently saved caches in `dir` (only regular
/// files named as caches are removed, by name in the opened directory:
/// never through a link).
fn prune(dir: &OwnedFd, keep: usize) {
    let Ok(entries) = rustix::fs::Dir::read_from(dir) else {
        return;
    };
    let mut caches: Vec<(i64, u64, std::ffi::CString)> = entries
        .filter_map(Result::ok)
        .take(10 * keep + 100)
        .filter(|e| {
            let name = e.file_name().to_bytes();
            name.len() == 64 && name.iter().all(u8::is_ascii_hexdigit)
        })
        .filter_map(|e| {
            let st = rustix::fs::statat(dir, e.file_name(), AtFlags::SYMLINK_NOFOLLOW).ok()?;
            (FileType::from_raw_mode(st.st_mode) == FileType::RegularFile).then(|| {
                (
                    st.st_mtime as i64,
                    st.st_mtime_nsec as u64,
                    e.file_name().to_owned(),
                )
            })
        })
        .collect();
    if caches.len() <= keep {
        return;
    }
    caches.sort_by_key(|c| std::cmp::Reverse((c.0, c.1)));
    for (_, _, name) in caches.drain(keep..) {
        let _ = rustix::fs::unlinkat(dir, name.as_c_str(), AtFlags::empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(ino: u64, mtime: i64) -> Stat {
        Stat {
            mode: 0o100644,
            size: 5,
            mtime,
            mtime_nsec: 7,
            ctime: mtime,
            ctime_nsec: 9,
            uid: 0,
            gid: 0,
            dev: 1,
            ino,
            nlink: 1,
            rdev: 0,
        }
    }

    #[test]
    fn each_dockerfile_of_a_root_has_its_own_cache() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["api.Dockerfile", "web.Dockerfile"] {
            std::fs::write(dir.path().join(f), "FROM scratch\n").unwrap();
        }
        let api = cache_file(dir.path(), &dir.path().join("api.Dockerfile"));
        let web = cache_file(dir.path(), &dir.path().join("web.Dockerfile"));
        let (api, web) = api
            .zip(web)
            .expect("HOME or XDG_CACHE_HOME names a cache directory");
        assert_ne!(api, web);
        // The same context and Dockerfile, however named, share one.
        let again = cache_file(&dir.path().join("."), &dir.path().join("./api.Dockerfile"));
        assert_eq!(again, Some(api));
    }

    #[test]
    fn hash_cache_keeps_the_newest_contexts() {
        let dir = tempfile::tempdir().unwrap();
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(100);
        for i in 0..5u8 {
            let path = dir.path().join(format!("{i:064x}"));
            let f = std::fs::File::create(&path).unwrap();
            f.set_modified(old + std::time::Duration::from_secs(i.into()))
                .unwrap();
        }
        std::fs::write(dir.path().join("not-a-cache"), "x").unwrap();
        let fd = rustix::fs::open(dir.path(), DIR_FLAGS, Mode::empty()).unwrap();
        prune(&fd, 2);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                format!("{:064x}", 3),
                format!("{:064x}", 4),
                "not-a-cache".into()
            ]
        );
    }

    #[test]
    fn hash_cache_round_trip_and_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c");
        let mut c = HashCache::at(path.clone(), 1000);
        c.put(&stat(1, 10), [1; 32]);
        c.put(&stat(2, 999), [2; 32]); // too recent: not cached
        c.save();
        let mut c = HashCache::at(path.clone(), 1000);
        assert_eq!(c.get(&stat(1, 10)), Some([1; 32]));
        assert_eq!(c.get(&stat(2, 999)), None);
        // Another mtime or ctime is another file.
        assert_eq!(c.get(&stat(1, 11)), None);
        let mut other = stat(1, 10);
        other.ctime_nsec = 10;
        assert_eq!(c.get(&other), None);
        other = stat(1, 10);
        other.size = 6;
        assert_eq!(c.get(&other), None);
    }

    #[test]
    fn hash_cache_drops_unseen_only_when_rewritten_and_ignores_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c");
        let mut c = HashCache::at(path.clone(), 1000);
        c.put(&stat(1, 10), [1; 32]);
        c.put(&stat(2, 10), [2; 32]);
        c.save();
        // Nothing learnt: the file stays, unused entries with it.
        let mut c = HashCache::at(path.clone(), 1000);
        assert!(c.get(&stat(1, 10)).is_some());
        c.save();
        let mut c = HashCache::at(path.clone(), 1000);
        assert_eq!(c.get(&stat(2, 10)), Some([2; 32]));
        // Something learnt: the rewrite keeps what was used and the new.
        let mut c = HashCache::at(path.clone(), 1000);
        assert!(c.get(&stat(1, 10)).is_some());
        c.put(&stat(3, 10), [3; 32]);
        c.save();
        let mut c = HashCache::at(path.clone(), 1000);
        assert_eq!(c.get(&stat(2, 10)), None);
        assert_eq!(c.get(&stat(1, 10)), Some([1; 32]));
        assert_eq!(c.get(&stat(3, 10)), Some([3; 32]));
        // Truncated, foreign and linked caches are ignored.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.pop();
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(HashCache::at(path.clone(), 1000).get(&stat(1, 10)), None);
        std::fs::write(&path, b"something else entirely").unwrap();
        assert_eq!(HashCache::at(path.clone(), 1000).get(&stat(1, 10)), None);
        let good = dir.path().join("good");
        let mut c = HashCache::at(good.clone(), 1000);
        c.put(&stat(1, 10), [1; 32]);
        c.save();
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink(&good, &path).unwrap();
        assert_eq!(HashCache::at(path.clone(), 1000).get(&stat(1, 10)), None);
    }

    fn identity(path: &Path) -> (u64, i64, i64, Vec<u8>) {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::symlink_metadata(path).unwrap();
        (
            m.ino(),
            m.mtime(),
            m.mtime_nsec(),
            std::fs::read(path).unwrap(),
        )
    }

    #[test]
    fn a_survey_that_learns_nothing_leaves_the_file_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c");
        let mut c = HashCache::at(path.clone(), 1000);
        for ino in 0..50 {
            c.put(&stat(ino, 10), [ino as u8; 32]);
        }
        c.save();
        let before = identity(&path);
        let mut c = HashCache::at(path.clone(), 1000);
        for ino in (0..50).rev() {
            assert_eq!(c.get(&stat(ino, 10)), Some([ino as u8; 32]));
        }
        // A miss that is too recent to cache learns nothing either.
        assert_eq!(c.get(&stat(99, 999)), None);
        c.put(&stat(99, 999), [9; 32]);
        assert_eq!(c.hits, 50);
        c.save();
        assert_eq!(identity(&path), before);
    }

    #[test]
    fn a_changed_or_added_file_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c");
        let mut c = HashCache::at(path.clone(), 1000);
        c.put(&stat(1, 10), [1; 32]);
        c.put(&stat(2, 10), [2; 32]);
        c.save();
        let mut c = HashCache::at(path.clone(), 1000);
        assert!(c.get(&stat(1, 10)).is_some());
        // File 2 changed (new mtime), file 5 is new.
        assert_eq!(c.get(&stat(2, 20)), None);
        c.put(&stat(2, 20), [22; 32]);
        assert_eq!(c.get(&stat(5, 10)), None);
        c.put(&stat(5, 10), [5; 32]);
        // A second link to a file read in this survey is a hit.
        assert_eq!(c.get(&stat(5, 10)), Some([5; 32]));
        c.save();
        let mut c = HashCache::at(path.clone(), 1000);
        assert_eq!(c.get(&stat(1, 10)), Some([1; 32]));
        assert_eq!(c.get(&stat(2, 20)), Some([22; 32]));
        assert_eq!(c.get(&stat(5, 10)), Some([5; 32]));
        assert_eq!(c.get(&stat(2, 10)), None);
        // The records are sorted and unique.
        let bytes = std::fs::read(&path).unwrap();
        let keys: Vec<&[u8]> = bytes[MAGIC.len()..]
            .chunks_exact(RECORD)
            .map(|r| &r[..KEY])
            .collect();
        assert_eq!(keys.len(), 3);
        assert!(keys.windows(2).all(|w| key_cmp(w[0], w[1]).is_lt()));
    }

    #[test]
    fn surveys_of_one_process_share_what_they_read() {
        let dir = tempfile::tempdir().unwrap();
        // A device no other test uses: the shared hashes are the process's.
        let st = |ino| Stat {
            dev: 0x5eed_0001,
            ..stat(ino, 10)
        };
        let mut api = HashCache::at(dir.path().join("api"), 1000);
        api.share = true;
        let mut web = HashCache::at(dir.path().join("web"), 1000);
        web.share = true;
        assert_eq!(api.get(&st(1)), None);
        api.put(&st(1), [1; 32]);
        assert_eq!(web.get(&st(1)), Some([1; 32]));
        assert_eq!(web.get(&st(2)), None);
        api.save();
        web.save();
        // Each context's own cache holds it, for the next run.
        let mut web = HashCache::at(dir.path().join("web"), 1000);
        assert_eq!(web.get(&st(1)), Some([1; 32]));
        // A cache apart (tests, the default of `at`) neither sees nor feeds.
        let mut apart = HashCache::at(dir.path().join("apart"), 1000);
        assert_eq!(apart.get(&st(1)), None);
        apart.put(&st(3), [3; 32]);
        assert_eq!(shared_get(&key_of(&st(3))), None);
    }

    #[test]
    fn an_unchanged_cache_is_touched_once_it_is_old() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c");
        let mut c = HashCache::at(path.clone(), 1000);
        c.put(&stat(1, 10), [1; 32]);
        c.save();
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * TOUCH_SECS);
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.set_modified(old).unwrap();
        drop(f);
        let bytes = std::fs::read(&path).unwrap();
        let mut c = HashCache::at(path.clone(), 1000);
        assert!(c.get(&stat(1, 10)).is_some());
        c.save();
        let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
        assert!(modified > old + std::time::Duration::from_secs(TOUCH_SECS));
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
    }
}
