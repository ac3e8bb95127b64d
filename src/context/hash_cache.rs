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
//! ignored; it is opened without following links, bounded in size, and
//! replaced atomically (written aside, then renamed); the caches of the
//! [`MAX_CONTEXTS`] most recently built contexts are kept. Set
//! `REGGIE_HASH_CACHE=0` to disable it.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::walk::Stat;

/// Entries kept at most (80 bytes each on disk).
pub const MAX_ENTRIES: usize = 250_000;
/// Contexts with a cache kept at most; the least recently saved go first.
pub const MAX_CONTEXTS: usize = 64;
/// Files whose ctime or mtime is this recent are not cached.
pub const RACY_SECS: i64 = 2;

const MAGIC: &[u8; 16] = b"reggie-hashes-v1";
const RECORD: usize = 48 + 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: i64,
    mtime_nsec: u32,
    ctime: i64,
    ctime_nsec: u32,
}

impl Key {
    fn of(st: &Stat) -> Key {
        Key {
            dev: st.dev,
            ino: st.ino,
            size: st.size,
            mtime: st.mtime,
            mtime_nsec: st.mtime_nsec,
            ctime: st.ctime,
            ctime_nsec: st.ctime_nsec,
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.dev.to_le_bytes());
        out.extend_from_slice(&self.ino.to_le_bytes());
        out.extend_from_slice(&self.size.to_le_bytes());
        out.extend_from_slice(&self.mtime.to_le_bytes());
        out.extend_from_slice(&self.mtime_nsec.to_le_bytes());
        out.extend_from_slice(&self.ctime.to_le_bytes());
        out.extend_from_slice(&self.ctime_nsec.to_le_bytes());
    }

    fn decode(b: &[u8]) -> Option<Key> {
        let u64_at = |i: usize| Some(u64::from_le_bytes(b.get(i..i + 8)?.try_into().ok()?));
        let u32_at = |i: usize| Some(u32::from_le_bytes(b.get(i..i + 4)?.try_into().ok()?));
        Some(Key {
            dev: u64_at(0)?,
            ino: u64_at(8)?,
            size: u64_at(16)?,
            mtime: u64_at(24)? as i64,
            mtime_nsec: u32_at(32)?,
            ctime: u64_at(36)? as i64,
            ctime_nsec: u32_at(44)?,
        })
    }
}

/// The hashes known from the last survey of one context, and those seen
/// in this one (the only ones saved: deleted files drop out).
#[derive(Debug, Default)]
pub struct HashCache {
    path: Option<PathBuf>,
    old: HashMap<Key, [u8; 32]>,
    seen: HashMap<Key, [u8; 32]>,
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
        let old = path.as_deref().map(load).unwrap_or_default();
        HashCache {
            path,
            old,
            seen: HashMap::new(),
            now,
            hits: 0,
        }
    }

    /// A cache kept in `path` (tests).
    pub fn at(path: PathBuf, now: i64) -> HashCache {
        let old = load(&path);
        HashCache {
            path: Some(path),
            old,
            seen: HashMap::new(),
            now,
            hits: 0,
        }
    }

    /// The content hash of the file with this `stat`, when known.
    pub fn get(&mut self, st: &Stat) -> Option<[u8; 32]> {
        let key = Key::of(st);
        let hash = match self.old.remove(&key) {
            Some(h) => h,
            None => *self.seen.get(&key)?,
        };
        self.seen.insert(key, hash);
        self.hits += 1;
        Some(hash)
    }

    /// Records the hash of a file read with this `stat`.
    pub fn put(&mut self, st: &Stat, hash: [u8; 32]) {
        let recent = self.now.saturating_sub(RACY_SECS);
        if st.mtime >= recent || st.ctime >= recent || self.seen.len() >= MAX_ENTRIES {
            return;
        }
        self.seen.insert(Key::of(st), hash);
    }

    /// Replaces the cache file with the hashes seen (best effort: a cache
    /// that cannot be written is only slower next time).
    pub fn save(self) {
        let Some(path) = self.path else { return };
        if let Err(e) = save(&path, &self.seen) {
            tracing::debug!("not saving the hash cache {}: {e}", path.display());
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

fn load(path: &Path) -> HashMap<Key, [u8; 32]> {
    let mut map = HashMap::new();
    let Ok(file) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    else {
        return map;
    };
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return map;
    }
    let limit = (MAGIC.len() + MAX_ENTRIES * RECORD) as u64;
    let mut bytes = Vec::new();
    if file.take(limit + 1).read_to_end(&mut bytes).is_err()
        || bytes.len() as u64 > limit
        || !bytes.starts_with(MAGIC)
        || !(bytes.len() - MAGIC.len()).is_multiple_of(RECORD)
    {
        return map;
    }
    for rec in bytes[MAGIC.len()..].chunks_exact(RECORD) {
        let (Some(key), Ok(hash)) = (Key::decode(&rec[..48]), rec[48..].try_into()) else {
            return HashMap::new();
        };
        map.insert(key, hash);
    }
    map
}

fn save(path: &Path, seen: &HashMap<Key, [u8; 32]>) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let mut bytes = Vec::with_capacity(MAGIC.len() + seen.len() * RECORD);
    bytes.extend_from_slice(MAGIC);
    for (key, hash) in seen {
        key.encode(&mut bytes);
        bytes.extend_from_slice(hash);
    }
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let tmp = dir.join(format!(".tmp-{}-{nonce}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)?;
        f.write_all(&bytes)?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    prune(dir, MAX_CONTEXTS);
    Ok(())
}

/// Keeps the `keep` most recently saved caches in `dir` (only files named
/// as caches are touched, never through a link).
fn prune(dir: &Path, keep: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut caches: Vec<(std::time::SystemTime, PathBuf)> = entries
        .filter_map(Result::ok)
        .take(10 * keep + 100)
        .filter(|e| {
            let name = e.file_name();
            let name = name.as_encoded_bytes();
            name.len() == 64 && name.iter().all(u8::is_ascii_hexdigit)
        })
        .filter_map(|e| {
            let meta = std::fs::symlink_metadata(e.path()).ok()?;
            let modified = meta.modified().ok()?;
            meta.is_file().then(|| (modified, e.path()))
        })
        .collect();
    if caches.len() <= keep {
        return;
    }
    caches.sort_by_key(|c| std::cmp::Reverse(c.0));
    for (_, path) in caches.drain(keep..) {
        let _ = std::fs::remove_file(path);
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
        prune(dir.path(), 2);
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
    fn hash_cache_drops_unseen_and_ignores_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c");
        let mut c = HashCache::at(path.clone(), 1000);
        c.put(&stat(1, 10), [1; 32]);
        c.put(&stat(2, 10), [2; 32]);
        c.save();
        let mut c = HashCache::at(path.clone(), 1000);
        assert!(c.get(&stat(1, 10)).is_some());
        c.save();
        let mut c = HashCache::at(path.clone(), 1000);
        assert_eq!(c.get(&stat(2, 10)), None);
        assert!(c.get(&stat(1, 10)).is_some());
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
}
