//! The hash cache trusts only what this user wrote: records in a
//! directory another user owns or anyone may write are ignored (a forged
//! record would make `digest` return an old digest), and a `hashes`
//! directory that is a symbolic link is neither written through nor
//! pruned through.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::text;

/// A context whose files are older than the cache's racy window (2 s).
fn old_context() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(ctx.join("Dockerfile"), "FROM scratch\nCOPY . /app\n").unwrap();
    fs::write(ctx.join("a.txt"), "one\n").unwrap();
    // ctime cannot be set back: wait it out (not a timed assertion).
    std::thread::sleep(std::time::Duration::from_secs(3));
    dir
}

/// `digest ctx` with the cache under `cache`.
fn digest(dir: &Path, cache: &Path) -> String {
    let bin = std::env::var_os("REGGIE_TEST_BIN")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_reggie-build").into());
    let out = Command::new(bin)
        .current_dir(dir)
        .args(["digest", "ctx"])
        .env("XDG_CACHE_HOME", cache)
        .env_remove("REGGIE_HASH_CACHE")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The cache files in `dir`.
fn caches(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().len() == 64)
        .collect()
}

/// Overwrites every record's hash, as someone who can write there would.
fn forge(hashes: &Path) {
    for path in caches(hashes) {
        let mut bytes = fs::read(&path).unwrap();
        // 16-byte magic, then records of a 48-byte key and a 32-byte hash.
        for record in bytes[16..].chunks_mut(80) {
            record[48..].fill(0xaa);
        }
        fs::write(&path, bytes).unwrap();
    }
}

fn chown(path: &Path, uid: u32) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    assert_eq!(unsafe { libc::lchown(c.as_ptr(), uid, uid) }, 0, "{path:?}");
}

#[test]
fn forged_records_are_ignored() {
    use std::os::unix::fs::PermissionsExt;
    let dir = old_context();
    let cache = dir.path().join("cache");
    let hashes = cache.join("reggie-build/hashes");
    let truth = digest(dir.path(), &cache);
    assert_eq!(caches(&hashes).len(), 1, "the first digest saves a cache");
    // The directory world-writable: anyone could have written the records.
    forge(&hashes);
    fs::set_permissions(&hashes, fs::Permissions::from_mode(0o777)).unwrap();
    assert_eq!(
        digest(dir.path(), &cache),
        truth,
        "world-writable directory"
    );
    // Owned by another user (tests run as root, who can give it away).
    if unsafe { libc::geteuid() } == 0 {
        fs::set_permissions(&hashes, fs::Permissions::from_mode(0o700)).unwrap();
        for p in [cache.join("reggie-build"), hashes.clone()]
            .into_iter()
            .chain(caches(&hashes))
        {
            chown(&p, 4242);
        }
        forge(&hashes);
        assert_eq!(
            digest(dir.path(), &cache),
            truth,
            "another user's directory"
        );
        // Only the file another user's.
        for p in [cache.join("reggie-build"), hashes.clone()] {
            chown(&p, 0);
        }
        assert_eq!(digest(dir.path(), &cache), truth, "another user's file");
    }
}

#[test]
fn a_linked_hashes_directory_is_not_written_or_pruned() {
    let dir = old_context();
    let cache = dir.path().join("cache");
    fs::create_dir_all(cache.join("reggie-build")).unwrap();
    // A content store naming blobs by their 64-hex digest.
    let store = dir.path().join("store");
    fs::create_dir(&store).unwrap();
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(86_400);
    for i in 0..70u32 {
        let f = fs::File::create(store.join(format!("{i:064x}"))).unwrap();
        f.set_modified(old).unwrap();
    }
    std::os::unix::fs::symlink(&store, cache.join("reggie-build/hashes")).unwrap();
    let first = digest(dir.path(), &cache);
    assert_eq!(caches(&store).len(), 70, "nothing written or removed there");
    assert_eq!(digest(dir.path(), &cache), first);
}
