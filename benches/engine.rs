//! Criterion benches of the context engine's hot paths: ignore matching,
//! the walk (on one thread and folded on two), tar writing and gzip; and
//! the `crates` group, the same walk and archive done with `walkdir` and
//! `tar` (the design card's crates, which the engine does not use: see
//! ARCHITECTURE.md).
//!
//! ```text
//! cargo bench --bench engine                  # all
//! cargo bench --bench engine -- walk          # a group
//! REGGIE_BENCH_SCALE=0.1 cargo bench --bench engine
//! ```
//!
//! The tree is the one `examples/gen-monorepo.rs` writes (that file is
//! compiled in here, so the bench and `benches/compare.sh` measure the same
//! shape), at scale 0.02 by default (~2,400 files, ~28 MB) in a temporary
//! directory, generated once per run. Scales stay small so a run takes a
//! minute or two on a shared machine; `compare.sh` covers full scale.

use std::hint::black_box;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput};
use flate2::write::GzEncoder;
use flate2::Compression;

use reggie_build::context::fold::{Fold, Spread, SPLIT_DEPTH};
use reggie_build::context::ignore::{read_patterns, MatchInfo, Matcher};
use reggie_build::context::tarball::{write_context, TarOptions};
use reggie_build::context::{Context, ContextSpec, FileKind, WalkError};

// Only `generate` is used; the example's `main` and helpers are not.
#[allow(dead_code)]
#[path = "../examples/gen-monorepo.rs"]
mod gen_monorepo;

/// A realistic monorepo ignore file: globs, `**`, an exception, a comment.
const IGNORE_FILE: &[u8] = b"# Reggie monorepo: keep the context to what the images need
**/node_modules
**/.next
**/__pycache__
**/*.pyc
.git
backend/venv
backend/tests
backend/.pytest_cache
backend/models/*.joblib
**/.env
*.md
!README.md
apps/*/public/**/*.png
sst.config.ts
";

struct Fixture {
    _dir: tempfile::TempDir,
    /// Context `.` with `-f backend/Dockerfile`: everything (no root
    /// `.dockerignore`), as in the Reggie mistake.
    whole: Context,
    /// Context `backend` with its `.dockerignore`.
    backend: Context,
    /// Every path of the tree in walk order, with whether it is a directory.
    paths: Vec<(Vec<u8>, bool)>,
}

impl Fixture {
    fn new() -> Fixture {
        let scale = std::env::var("REGGIE_BENCH_SCALE")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0.02);
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("monorepo");
        let (files, bytes) = gen_monorepo::generate(&root, scale).expect("generate fixture");
        eprintln!("fixture: {files} files, {bytes} bytes at scale {scale}");
        let whole = ContextSpec {
            dockerfile: Some(root.join("backend/Dockerfile")),
            ..ContextSpec::new(&root)
        }
        .resolve()
        .expect("resolve .");
        let backend = ContextSpec::new(root.join("backend"))
            .resolve()
            .expect("resolve backend");
        let mut paths = Vec::new();
        whole
            .walk::<WalkError, _>(|e| {
                paths.push((e.rel.to_vec(), e.kind == FileKind::Dir));
                Ok(())
            })
            .expect("walk");
        Fixture {
            _dir: dir,
            whole,
            backend,
            paths,
        }
    }
}

fn matcher() -> Matcher {
    let path = Path::new("bench.dockerignore");
    let lines = read_patterns(path, IGNORE_FILE).expect("patterns");
    Matcher::new(path, &lines).expect("compile")
}

/// Paths per second through the 15-line ignore file, both ways the engine
/// matches: with the parent's result carried down (the walk) and from
/// scratch (`explain`, single-file checks).
fn bench_matcher(c: &mut Criterion, fx: &Fixture) {
    let m = matcher();
    // The parent results the walk would carry, computed outside the timed
    // loop so only matching is measured.
    let mut infos: Vec<MatchInfo> = vec![MatchInfo::default()];
    let mut stack: Vec<(usize, usize)> = Vec::new(); // (rel len, info index)
    let mut with_parent: Vec<(&[u8], usize)> = Vec::with_capacity(fx.paths.len());
    for (rel, is_dir) in &fx.paths {
        while let Some(&(len, _)) = stack.last() {
            if rel.len() > len && rel[len] == b'/' {
                break;
            }
            stack.pop();
        }
        let parent = stack.last().map_or(0, |&(_, i)| i);
        with_parent.push((rel, parent));
        if *is_dir {
            let (_, info) = m.matches_with_parent(rel, &infos[parent]).expect("match");
            infos.push(info);
            stack.push((rel.len(), infos.len() - 1));
        }
    }

    let mut g = c.benchmark_group("match");
    g.throughput(Throughput::Elements(fx.paths.len() as u64));
    g.bench_function("with_parent", |b| {
        b.iter(|| {
            let mut excluded = 0usize;
            for &(rel, parent) in &with_parent {
                let (v, _) = m.matches_with_parent(rel, &infos[parent]).unwrap();
                excluded += v.excluded() as usize;
            }
            black_box(excluded)
        })
    });
    g.bench_function("or_parent_matches", |b| {
        b.iter(|| {
            let mut excluded = 0usize;
            for (rel, _) in &fx.paths {
                excluded += m.matches_or_parent_matches(rel).unwrap().excluded() as usize;
            }
            black_box(excluded)
        })
    });
    g.finish();
}

fn count(ctx: &Context) -> u64 {
    let mut n = 0u64;
    ctx.walk::<WalkError, _>(|_| {
        n += 1;
        Ok(())
    })
    .expect("walk");
    n
}

/// The walk alone (readdir, sort, match), warm cache.
fn bench_walk(c: &mut Criterion, fx: &Fixture) {
    let mut g = c.benchmark_group("walk");
    for (name, ctx) in [("whole", &fx.whole), ("backend", &fx.backend)] {
        g.throughput(Throughput::Elements(count(ctx)));
        g.bench_function(name, |b| b.iter(|| black_box(count(ctx))));
    }
    g.finish();
}

/// Files and bytes, folded by subtree.
#[derive(Default)]
struct Sizes {
    files: u64,
    bytes: u64,
}

impl Fold for Sizes {
    type Error = WalkError;
    fn fork(&self, _root: &reggie_build::context::Entry<'_>) -> Sizes {
        Sizes::default()
    }
    fn visit(&mut self, e: &reggie_build::context::Entry<'_>) -> Result<(), WalkError> {
        self.files += 1;
        self.bytes += e.size;
        Ok(())
    }
    fn join(&mut self, sub: Sizes) -> Result<(), WalkError> {
        self.files += sub.files;
        self.bytes += sub.bytes;
        Ok(())
    }
}

/// The walk with a `statx` per entry (as `analyze` reads sizes), on one
/// thread and folded on two.
fn bench_fold(c: &mut Criterion, fx: &Fixture) {
    let mut g = c.benchmark_group("fold");
    let ctx = fx.whole.clone().with_sizes();
    g.throughput(Throughput::Elements(count(&ctx)));
    for threads in [1, 2] {
        let spread = Spread {
            threads,
            depth: SPLIT_DEPTH,
        };
        g.bench_function(BenchmarkId::new("whole", threads), |b| {
            b.iter(|| {
                let (sizes, _) = ctx
                    .walk_fold_spread(Sizes::default(), spread)
                    .expect("walk");
                black_box(sizes.bytes)
            })
        });
    }
    g.finish();
}

fn tar_into<W: Write>(ctx: &Context, w: W) -> u64 {
    write_context(ctx, w, &TarOptions::default(), &mut ())
        .expect("tar")
        .archive_bytes
}

/// Tar writing to a sink: walk + stat + read + headers, no output cost.
fn bench_tar(c: &mut Criterion, fx: &Fixture) {
    let mut g = c.benchmark_group("tar");
    for (name, ctx) in [("whole", &fx.whole), ("backend", &fx.backend)] {
        g.throughput(Throughput::Bytes(tar_into(ctx, io::sink())));
        g.bench_function(name, |b| b.iter(|| tar_into(ctx, io::sink())));
    }
    g.finish();
}

/// Gzip at the CLI's default level (1) and gzip's own default (6, what
/// `tar -cz` uses): over an in-memory tar of the whole tree (compressor
/// only, a mix of text and incompressible binaries), and end to end for
/// the backend context.
fn bench_gzip(c: &mut Criterion, fx: &Fixture) {
    let mut whole_tar = Vec::new();
    tar_into(&fx.whole, &mut whole_tar);
    let mut g = c.benchmark_group("gzip");
    g.throughput(Throughput::Bytes(whole_tar.len() as u64));
    for level in [1, 6] {
        g.bench_with_input(
            BenchmarkId::new("whole_in_memory", level),
            &level,
            |b, &level| {
                b.iter(|| {
                    let mut gz = GzEncoder::new(io::sink(), Compression::new(level));
                    gz.write_all(&whole_tar).unwrap();
                    gz.finish().unwrap();
                })
            },
        );
    }
    g.throughput(Throughput::Bytes(tar_into(&fx.backend, io::sink())));
    for level in [1, 6] {
        g.bench_with_input(
            BenchmarkId::new("backend_tar", level),
            &level,
            |b, &level| {
                b.iter(|| {
                    let mut gz = GzEncoder::new(io::sink(), Compression::new(level));
                    tar_into(&fx.backend, &mut gz);
                    gz.finish().unwrap();
                })
            },
        );
    }
    g.finish();
}

/// The engine's walk and tar writer against `walkdir` and `tar` on the same
/// tree (context `.` without an ignore file, so all four visit the same
/// entries): the figures behind ARCHITECTURE.md's choice.
fn bench_crates(c: &mut Criterion, fx: &Fixture) {
    let root = fx.whole.root().to_path_buf();
    let mut g = c.benchmark_group("crates");
    g.throughput(Throughput::Elements(fx.paths.len() as u64));
    g.bench_function("walk/engine", |b| b.iter(|| black_box(count(&fx.whole))));
    // Same order as Docker's walk (byte order of names, depth first); the
    // file type comes from readdir, as the engine's does.
    g.bench_function("walk/walkdir", |b| {
        b.iter(|| {
            let n = walkdir::WalkDir::new(&root)
                .min_depth(1)
                .sort_by(|a, b| a.file_name().cmp(b.file_name()))
                .into_iter()
                .filter(|e| e.is_ok())
                .count();
            black_box(n)
        })
    });
    g.bench_function("tar/engine", |b| b.iter(|| tar_into(&fx.whole, io::sink())));
    // The `tar` crate given the same entries in the same order, no
    // symlinks followed; it stats each path again and builds its own
    // headers (GNU format by default).
    g.bench_function("tar/tar-crate", |b| {
        b.iter(|| {
            let mut builder = tar::Builder::new(io::sink());
            builder.follow_symlinks(false);
            for (rel, _) in &fx.paths {
                let rel = Path::new(std::ffi::OsStr::from_bytes(rel));
                builder
                    .append_path_with_name(root.join(rel), rel)
                    .expect("tar crate append");
            }
            builder.finish().expect("tar crate finish");
        })
    });
    g.finish();
}

fn main() {
    let fx = Fixture::new();
    // Short runs: the machine is shared and these are regression checks,
    // not publication figures (compare.sh makes those).
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    bench_matcher(&mut c, &fx);
    bench_walk(&mut c, &fx);
    bench_fold(&mut c, &fx);
    bench_tar(&mut c, &fx);
    bench_gzip(&mut c, &fx);
    bench_crates(&mut c, &fx);
    c.final_summary();
}
