//! Where an image's bytes come from, and reading them into a [`Loaded`]
//! image: its config and each layer's index, every digest checked.
//!
//! * A file or directory ([`load_path`]): a `docker save` archive (the
//!   legacy `<id>/layer.tar` layout Docker 20.10 writes, or the OCI layout
//!   inside that Docker 25+ writes; `manifest.json` names the layers in
//!   both), an OCI layout directory or its tar. Random access: the
//!   archive's headers are scanned first (contents skipped by seeking),
//!   then layers are read on several threads, each from its own offset.
//! * A stream ([`load_stream`]): `docker save` from stdin or the daemon's
//!   image export. Read once, in order; `manifest.json` comes last, so
//!   each blob is recognised by its first bytes (JSON is kept, a tar or
//!   gzip stream is indexed) and put in order at the end.
//!
//! The daemon and registry sources (`image` feature) feed these same
//! readers.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::image::{self, ImageConfig, JsonError, Manifest, MAX_JSON};
use super::layer::{self, index_layer, sha_string, Hashing, LayerError, LayerIndex, Sha, Shared};
use super::paths::PathTable;
use super::tar::{read_small, Archive, Seeking, Stream, TarError};

/// How to pick and read an image.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// The platform of an index to read (`os/arch[/variant]`); default the
    /// machine's.
    pub platform: Option<String>,
    /// The image of an archive holding several (`name:tag`).
    pub image: Option<String>,
    /// Threads reading layers (0: the machine's cores).
    pub threads: usize,
}

impl LoadOptions {
    /// Threads to use: `threads`, or the machine's cores when 0.
    pub fn threads(&self) -> usize {
        match self.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }

    fn platform(&self) -> String {
        self.platform
            .clone()
            .unwrap_or_else(image::default_platform)
    }
}

/// One layer of a loaded image.
#[derive(Debug, Clone)]
pub struct Layer {
    /// Its entries (paths in [`Loaded::table`]).
    pub index: LayerIndex,
    /// Bytes as pushed (the compressed blob), when known: an archive of
    /// plain layers does not say.
    pub compressed_size: Option<u64>,
    /// The media type, when a manifest gave one.
    pub media_type: String,
    /// Where its plain tar sits in a file, for hashing files afterwards.
    locator: Option<(Arc<File>, u64)>,
}

/// An image read: config and layers, every digest verified.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// Every path of every layer.
    pub table: PathTable,
    /// The layers, base first.
    pub layers: Vec<Layer>,
    /// The image config.
    pub config: ImageConfig,
    /// The config's digest.
    pub config_digest: Option<String>,
    /// A name the source gives (`repo:tag`), if any.
    pub name: Option<String>,
    /// What was read, for the report (`docker save archive FILE`).
    pub source: String,
}

/// Why an image cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The file or directory cannot be opened or read.
    #[error("cannot read {}: {source}", crate::text::show_path(.path))]
    Open {
        /// The path.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Neither a `docker save` archive nor an OCI layout.
    #[error("{what} is not an image: {reason}")]
    NotAnImage {
        /// The source.
        what: String,
        /// What is missing.
        reason: String,
    },
    /// A JSON document is malformed or names nothing usable.
    #[error(transparent)]
    Json(#[from] JsonError),
    /// The archive's tar structure is broken.
    #[error("{what}: {source}")]
    Archive {
        /// The source.
        what: String,
        /// What broke.
        source: TarError,
    },
    /// A document names a blob the source does not hold.
    #[error("{what} names {name}, which it does not hold")]
    Missing {
        /// The source.
        what: String,
        /// The missing name.
        name: String,
    },
    /// A layer cannot be read.
    #[error("layer {number} of {total} ({digest}): {source}")]
    Layer {
        /// 1-based.
        number: usize,
        /// Layers in the image.
        total: usize,
        /// Its digest, shortened.
        digest: String,
        /// What is wrong.
        source: LayerError,
    },
    /// Manifest and config do not describe the same layers.
    #[error("{0}")]
    Mismatch(String),
}

/// What to read for one layer, and what it must hash to.
#[derive(Debug, Clone)]
pub(crate) struct LayerSpec {
    /// The blob's name in the store.
    pub name: String,
    /// Its digest, when the name or a manifest says it.
    pub blob: Option<Sha>,
    /// The media type a manifest gives.
    pub media_type: String,
    /// The size a manifest gives.
    pub size: Option<u64>,
}

impl Layer {
    /// A layer read from a stream (no second pass over its files).
    pub(crate) fn streamed(index: LayerIndex, media_type: String) -> Layer {
        Layer {
            compressed_size: index.compressed.map(|(_, n)| n),
            media_type,
            index,
            locator: None,
        }
    }
}

pub(crate) fn short(d: &Sha) -> String {
    sha_string(d)[..19].to_string()
}

/// Blobs by name: the files of a directory, or the entries of a tar file.
enum Store {
    Dir(PathBuf),
    Tar {
        file: Arc<File>,
        entries: HashMap<String, (u64, u64)>,
    },
}

/// Opens a regular file without blocking on a FIFO or device; links are
/// followed only when `follow` (the path the user named), never for a
/// blob inside an OCI layout.
fn open_regular(path: &Path, follow: bool) -> io::Result<File> {
    use rustix::fs::{Mode, OFlags};
    let mut flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK;
    if !follow {
        flags |= OFlags::NOFOLLOW;
    }
    let fd = rustix::fs::open(path, flags, Mode::empty())?;
    let file = File::from(fd);
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file (a FIFO, socket or device is never read)",
        ));
    }
    // Blocking reads from here on: a regular file never blocks anyway.
    Ok(file)
}

/// A blob name from a digest: `blobs/sha256/<hex>`, only for a well-formed
/// sha256 (a digest is never a path).
fn blob_name(digest: &str, what: &str) -> Result<(String, Sha), SourceError> {
    let sha = layer::parse_sha(digest).ok_or_else(|| {
        SourceError::Json(JsonError {
            what: what.to_string(),
            message: format!(
                "\"{}\" is not a sha256 digest",
                crate::text::excerpt(digest)
            ),
        })
    })?;
    Ok((format!("blobs/sha256/{}", &digest[7..]), sha))
}

impl Store {
    fn open(path: &Path) -> Result<Store, SourceError> {
        let open_err = |source| SourceError::Open {
            path: path.to_path_buf(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(open_err)?;
        if meta.is_dir() {
            return Ok(Store::Dir(path.to_path_buf()));
        }
        let file = open_regular(path, true).map_err(open_err)?;
        let len = file.metadata().map_err(open_err)?.len();
        let what = crate::text::show_path(path);
        let scan = file.try_clone().map_err(open_err)?;
        let mut archive = Archive::new(Seeking(scan), false);
        let mut entries = HashMap::new();
        let archive_err = |source| SourceError::Archive {
            what: what.clone(),
            source,
        };
        while let Some(h) = archive.next_header().map_err(archive_err)? {
            if h.offset + h.size > len {
                return Err(archive_err(TarError::Truncated {
                    offset: len,
                    what: format!("\"{}\"", crate::text::excerpt_bytes(&h.path)),
                }));
            }
            if let Ok(clean) = super::tar::clean_path(&h.path) {
                if let Ok(name) = String::from_utf8(clean) {
                    entries.insert(name, (h.offset, h.size));
                }
            }
            archive.skip_data(&h, None).map_err(archive_err)?;
            if entries.len() > 1_000_000 {
                return Err(SourceError::NotAnImage {
                    what,
                    reason: "more than a million entries".into(),
                });
            }
        }
        Ok(Store::Tar {
            file: Arc::new(file),
            entries,
        })
    }

    fn describe(&self, path: &Path) -> String {
        let p = crate::text::show_path(path);
        match self {
            Store::Dir(_) => format!("OCI layout {p}"),
            Store::Tar { entries, .. } if entries.contains_key("manifest.json") => {
                format!("docker save archive {p}")
            }
            Store::Tar { .. } => format!("OCI archive {p}"),
        }
    }

    fn has(&self, name: &str) -> bool {
        match self {
            Store::Dir(d) => d.join(name).is_file(),
            Store::Tar { entries, .. } => entries.contains_key(name),
        }
    }

    /// A blob's reader, its length, and where its bytes sit in a file.
    fn reader(&self, name: &str) -> io::Result<Blob> {
        match self {
            Store::Dir(d) => {
                let file = Arc::new(open_regular(&d.join(name), false)?);
                let len = file.metadata()?.len();
                let r = ReadAt {
                    file: file.clone(),
                    pos: 0,
                    end: len,
                };
                Ok(Blob {
                    reader: r,
                    len,
                    file,
                    base: 0,
                })
            }
            Store::Tar { file, entries } => {
                let &(offset, size) = entries
                    .get(name)
                    .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such entry"))?;
                let r = ReadAt {
                    file: file.clone(),
                    pos: offset,
                    end: offset + size,
                };
                Ok(Blob {
                    reader: r,
                    len: size,
                    file: file.clone(),
                    base: offset,
                })
            }
        }
    }

    fn read_json(&self, name: &str, what: &str) -> Result<Vec<u8>, SourceError> {
        let Blob {
            reader: mut r, len, ..
        } = self.reader(name).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => SourceError::Missing {
                what: what.to_string(),
                name: name.to_string(),
            },
            _ => SourceError::Open {
                path: PathBuf::from(name),
                source: e,
            },
        })?;
        if len > MAX_JSON {
            return Err(SourceError::Mismatch(format!(
                "{name} is {len} bytes, more than the {MAX_JSON} a JSON document of an image may have"
            )));
        }
        let mut data = Vec::with_capacity(len as usize);
        r.read_to_end(&mut data).map_err(|e| SourceError::Open {
            path: PathBuf::from(name),
            source: e,
        })?;
        Ok(data)
    }
}

/// A blob of a [`Store`]: its reader, length, and the file and offset its
/// bytes sit at.
struct Blob {
    reader: ReadAt,
    len: u64,
    file: Arc<File>,
    base: u64,
}

/// A range of a file, read with `pread` (each thread its own position).
struct ReadAt {
    file: Arc<File>,
    pos: u64,
    end: u64,
}

impl Read for ReadAt {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let want = ((self.end - self.pos) as usize).min(buf.len());
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// What `manifest.json` or an OCI index says about the image.
struct Plan {
    config_name: String,
    config_digest: Option<Sha>,
    layers: Vec<LayerSpec>,
    name: Option<String>,
}

/// From `docker save`'s `manifest.json`.
fn plan_saved(data: &[u8], options: &LoadOptions) -> Result<Plan, SourceError> {
    let images = image::parse_saved(data)?;
    let chosen = image::choose_saved(&images, options.image.as_deref())?;
    let layers = chosen
        .layers
        .iter()
        .map(|name| {
            // Docker 25+: `blobs/sha256/<hex>`, the name is the digest.
            let blob = name
                .strip_prefix("blobs/sha256/")
                .and_then(|hex| layer::parse_sha(&format!("sha256:{hex}")));
            LayerSpec {
                name: name.clone(),
                blob,
                media_type: String::new(),
                size: None,
            }
        })
        .collect();
    let config_digest = chosen
        .config
        .strip_prefix("blobs/sha256/")
        .map(|hex| format!("sha256:{hex}"))
        .or_else(|| {
            chosen
                .config
                .strip_suffix(".json")
                .map(|hex| format!("sha256:{hex}"))
        })
        .and_then(|d| layer::parse_sha(&d));
    Ok(Plan {
        config_name: chosen.config.clone(),
        config_digest,
        layers,
        name: chosen.repo_tags.iter().flatten().next().cloned(),
    })
}

/// Reads a small JSON document of the source by name.
type ReadJson<'a> = &'a dyn Fn(&str, &str) -> Result<Vec<u8>, SourceError>;

/// From an OCI layout's `index.json`, through nested indexes, to the
/// manifest for the platform.
fn plan_oci(read: ReadJson<'_>, options: &LoadOptions) -> Result<Plan, SourceError> {
    let mut doc = Manifest::parse(&read("index.json", "the OCI layout")?, "index.json")?;
    let mut name = None;
    let mut what = "index.json".to_string();
    // An index may point to an index (BuildKit's OCI export): a few levels.
    for _ in 0..4 {
        if !doc.is_index() {
            break;
        }
        let chosen = match &options.image {
            Some(want) => doc
                .manifests
                .iter()
                .find(|d| {
                    d.annotations
                        .get("org.opencontainers.image.ref.name")
                        .or_else(|| d.annotations.get("io.containerd.image.name"))
                        .is_some_and(|n| n == want || n.ends_with(&format!(":{want}")))
                })
                .ok_or_else(|| {
                    SourceError::Json(JsonError {
                        what: what.clone(),
                        message: format!("no image named {}", crate::text::excerpt(want)),
                    })
                })?,
            None => image::choose(&doc, &options.platform(), &what)?,
        };
        if name.is_none() {
            name = chosen
                .annotations
                .get("io.containerd.image.name")
                .or_else(|| chosen.annotations.get("org.opencontainers.image.ref.name"))
                .cloned();
        }
        let (blob, _) = blob_name(&chosen.digest, &what)?;
        what = format!("manifest {}", crate::text::excerpt(&chosen.digest));
        let data = read(&blob, &what)?;
        check_digest(&data, &chosen.digest, &what)?;
        doc = Manifest::parse(&data, &what)?;
    }
    let config = doc.config.as_ref().ok_or_else(|| {
        SourceError::Json(JsonError {
            what: what.clone(),
            message: "no config: not an image manifest".into(),
        })
    })?;
    let (config_name, config_digest) = blob_name(&config.digest, &what)?;
    let layers = doc
        .layers
        .iter()
        .map(|d| {
            let (name, sha) = blob_name(&d.digest, &what)?;
            Ok(LayerSpec {
                name,
                blob: Some(sha),
                media_type: d.media_type.clone(),
                size: Some(d.size),
            })
        })
        .collect::<Result<Vec<_>, SourceError>>()?;
    Ok(Plan {
        config_name,
        config_digest: Some(config_digest),
        layers,
        name,
    })
}

/// Checks a small document against the digest that named it.
pub(crate) fn check_digest(data: &[u8], digest: &str, what: &str) -> Result<(), SourceError> {
    use sha2::{Digest, Sha256};
    let actual: Sha = Sha256::digest(data).into();
    if layer::parse_sha(digest) != Some(actual) {
        return Err(SourceError::Mismatch(format!(
            "{what} hashes to {}, not {}: the source holds other bytes than its index names",
            sha_string(&actual),
            crate::text::excerpt(digest)
        )));
    }
    Ok(())
}

/// Merges a layer's own path table into the image's, rewriting its
/// entries' paths.
pub(crate) fn merge(table: &mut PathTable, layer: &mut LayerIndex) -> Result<(), LayerError> {
    let local = std::mem::take(&mut layer.table);
    let mut map = vec![PathTable::ROOT; local.len()];
    for id in 1..local.len() {
        let parent = local.parent(id as u32).unwrap_or(PathTable::ROOT);
        map[id] = table.intern_child(map[parent as usize], local.name(id as u32))?;
    }
    for e in &mut layer.entries {
        e.path = map[e.path as usize];
        if e.kind == layer::EntryKind::Hardlink {
            e.link = map[e.link as usize];
        }
    }
    Ok(())
}

/// Verifies a layer against its spec and the config's diff id.
pub(crate) fn verify(
    spec: &LayerSpec,
    index: &LayerIndex,
    diff_id: Option<&Sha>,
) -> Result<(), LayerError> {
    let blob_digest = index.compressed.map_or(index.diff_id, |(d, _)| d);
    if let Some(expected) = &spec.blob {
        if *expected != blob_digest {
            return Err(LayerError::Digest {
                what: "digest",
                expected: sha_string(expected),
                actual: sha_string(&blob_digest),
            });
        }
    }
    if let Some(expected) = diff_id {
        if *expected != index.diff_id {
            return Err(LayerError::Digest {
                what: "diff id (the digest of its uncompressed tar)",
                expected: sha_string(expected),
                actual: sha_string(&index.diff_id),
            });
        }
    }
    if let Some(size) = spec.size {
        let stored = index.compressed.map_or(index.size, |(_, n)| n);
        if size != stored {
            return Err(LayerError::Compression(format!(
                "the manifest says {size} bytes, the blob has {stored}"
            )));
        }
    }
    Ok(())
}

/// Reads an image from a file or directory.
pub fn load_path(
    path: &Path,
    options: &LoadOptions,
    shared: &Shared,
) -> Result<Loaded, SourceError> {
    let store = Store::open(path)?;
    let what = store.describe(path);
    let read = |name: &str, what: &str| store.read_json(name, what);
    let plan = if store.has("manifest.json") {
        plan_saved(&read("manifest.json", &what)?, options)?
    } else if store.has("index.json") {
        plan_oci(&read, options)?
    } else {
        return Err(SourceError::NotAnImage {
            what,
            reason: "it has neither a manifest.json (docker save) nor an index.json (OCI layout)"
                .into(),
        });
    };
    let config_data = read(&plan.config_name, &what)?;
    if let Some(d) = &plan.config_digest {
        check_digest(&config_data, &sha_string(d), "the image config")?;
    }
    let config = ImageConfig::parse(&config_data)?;
    check_counts(&config, plan.layers.len())?;
    let total = plan.layers.len();
    for spec in &plan.layers {
        if !store.has(&spec.name) {
            return Err(SourceError::Missing {
                what: what.clone(),
                name: spec.name.clone(),
            });
        }
    }
    let threads = options.threads().min(total.max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let (tx, rx) = std::sync::mpsc::channel::<(usize, Result<Layer, SourceError>)>();
    let mut table = PathTable::new();
    let mut layers: Vec<Option<Layer>> = vec![None; total];
    let result = std::thread::scope(|scope| -> Result<(), SourceError> {
        for _ in 0..threads {
            let tx = tx.clone();
            let (next, store, plan, config) = (&next, &store, &plan, &config);
            scope.spawn(move || loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let spec = &plan.layers[i];
                let layer_err = |source| SourceError::Layer {
                    number: i + 1,
                    total,
                    digest: spec
                        .blob
                        .as_ref()
                        .or(config.diff_ids.get(i))
                        .map_or_else(|| spec.name.clone(), short),
                    source,
                };
                let result = (|| {
                    let Blob {
                        reader, file, base, ..
                    } = store
                        .reader(&spec.name)
                        .map_err(|source| SourceError::Open {
                            path: PathBuf::from(&spec.name),
                            source,
                        })?;
                    let index = index_layer(reader, Hashing::Later, shared).map_err(&layer_err)?;
                    verify(spec, &index, config.diff_ids.get(i)).map_err(&layer_err)?;
                    let locator = index.compressed.is_none().then_some((file, base));
                    Ok(Layer {
                        compressed_size: index.compressed.map(|(_, n)| n),
                        media_type: spec.media_type.clone(),
                        index,
                        locator,
                    })
                })();
                let failed = result.is_err();
                if tx.send((i, result)).is_err() || failed {
                    // Stop the others early: nothing more is needed.
                    next.store(total, std::sync::atomic::Ordering::Relaxed);
                    break;
                }
            });
        }
        drop(tx);
        // Merge in layer order, whatever order the threads finish in, so
        // that path ids (and every listing) are the same on each run.
        let mut pending: HashMap<usize, Layer> = HashMap::new();
        let mut merged = 0;
        for (i, result) in rx {
            pending.insert(i, result?);
            while let Some(mut layer) = pending.remove(&merged) {
                merge(&mut table, &mut layer.index).map_err(|source| SourceError::Layer {
                    number: merged + 1,
                    total,
                    digest: short(&layer.index.diff_id),
                    source,
                })?;
                layers[merged] = Some(layer);
                merged += 1;
            }
        }
        if merged != total {
            return Err(SourceError::Mismatch("a layer reader stopped early".into()));
        }
        Ok(())
    });
    result?;
    Ok(Loaded {
        table,
        layers: layers.into_iter().flatten().collect(),
        config,
        config_digest: plan.config_digest.as_ref().map(sha_string),
        name: plan.name,
        source: what,
    })
}

pub(crate) fn check_counts(config: &ImageConfig, layers: usize) -> Result<(), SourceError> {
    if config.diff_ids.len() != layers {
        return Err(SourceError::Mismatch(format!(
            "the manifest lists {layers} layers, the image config {}: they describe different images",
            config.diff_ids.len()
        )));
    }
    if layers > u16::MAX as usize {
        return Err(SourceError::Mismatch(format!(
            "{layers} layers: more than any image builder makes"
        )));
    }
    Ok(())
}

/// Reads an image from a `docker save` stream (stdin, the daemon's
/// export), once, in order.
pub fn load_stream<R: Read>(
    reader: R,
    what: &str,
    options: &LoadOptions,
    shared: &Shared,
) -> Result<Loaded, SourceError> {
    let mut archive = Archive::new(Stream(reader), false);
    let archive_err = |source| SourceError::Archive {
        what: what.to_string(),
        source,
    };
    let mut json: HashMap<String, Vec<u8>> = HashMap::new();
    let mut indexed: HashMap<String, LayerIndex> = HashMap::new();
    let mut json_bytes = 0u64;
    while let Some(h) = archive.next_header().map_err(archive_err)? {
        let Ok(name) = super::tar::clean_path(&h.path).map(String::from_utf8) else {
            archive.skip_data(&h, None).map_err(archive_err)?;
            continue;
        };
        let Ok(name) = name else {
            archive.skip_data(&h, None).map_err(archive_err)?;
            continue;
        };
        if h.kind != super::tar::Kind::File {
            archive.skip_data(&h, None).map_err(archive_err)?;
            continue;
        }
        let is_blob = name.starts_with("blobs/sha256/");
        let is_json = name.ends_with(".json") || name == "repositories" || name == "oci-layout";
        if is_json && !name.contains('/') {
            // manifest.json, index.json, the legacy `<id>.json` configs.
            if let Some(data) = read_small(&mut archive, &h, MAX_JSON).map_err(archive_err)? {
                json_bytes += data.len() as u64;
                json.insert(name, data);
            }
        } else if name.ends_with("/layer.tar") || is_blob {
            let mut contents = archive.contents(&h);
            let mut head = [0u8; 1];
            let got = read_full(&mut contents, &mut head).map_err(|source| SourceError::Open {
                path: PathBuf::from(&name),
                source,
            })?;
            if is_blob && got == 1 && head[0] == b'{' && h.size <= MAX_JSON {
                let mut data = head.to_vec();
                (&mut contents)
                    .take(MAX_JSON)
                    .read_to_end(&mut data)
                    .map_err(|source| SourceError::Open {
                        path: PathBuf::from(&name),
                        source,
                    })?;
                contents.finish().map_err(archive_err)?;
                json_bytes += data.len() as u64;
                json.insert(name, data);
            } else {
                let stream = io::Cursor::new(head[..got].to_vec()).chain(&mut contents);
                let index = index_layer(stream, Hashing::All, shared).map_err(|source| {
                    SourceError::Layer {
                        number: indexed.len() + 1,
                        total: 0,
                        digest: crate::text::excerpt(&name),
                        source,
                    }
                })?;
                contents.finish().map_err(archive_err)?;
                indexed.insert(name, index);
            }
        } else {
            archive.skip_data(&h, None).map_err(archive_err)?;
        }
        if json_bytes > 4 * MAX_JSON || indexed.len() > u16::MAX as usize {
            return Err(SourceError::NotAnImage {
                what: what.to_string(),
                reason: "too many documents or layers for one image".into(),
            });
        }
    }
    let read = |name: &str, w: &str| {
        json.get(name).cloned().ok_or_else(|| SourceError::Missing {
            what: w.to_string(),
            name: name.to_string(),
        })
    };
    let plan = if json.contains_key("manifest.json") {
        plan_saved(&read("manifest.json", what)?, options)?
    } else if json.contains_key("index.json") {
        plan_oci(&read, options)?
    } else {
        return Err(SourceError::NotAnImage {
            what: what.to_string(),
            reason: "the stream has no manifest.json (is it `docker save` output?)".into(),
        });
    };
    let config_data = read(&plan.config_name, what)?;
    if let Some(d) = &plan.config_digest {
        check_digest(&config_data, &sha_string(d), "the image config")?;
    }
    let config = ImageConfig::parse(&config_data)?;
    check_counts(&config, plan.layers.len())?;
    let total = plan.layers.len();
    let mut table = PathTable::new();
    let mut layers = Vec::with_capacity(total);
    for (i, spec) in plan.layers.iter().enumerate() {
        // The same blob may serve two positions (an identical layer twice).
        let mut index = match plan.layers[i + 1..].iter().any(|s| s.name == spec.name) {
            true => indexed.get(&spec.name).cloned(),
            false => indexed.remove(&spec.name),
        }
        .ok_or_else(|| SourceError::Missing {
            what: what.to_string(),
            name: spec.name.clone(),
        })?;
        let layer_err = |source| SourceError::Layer {
            number: i + 1,
            total,
            digest: short(&config.diff_ids[i]),
            source,
        };
        verify(spec, &index, config.diff_ids.get(i)).map_err(layer_err)?;
        merge(&mut table, &mut index).map_err(layer_err)?;
        layers.push(Layer::streamed(index, spec.media_type.clone()));
    }
    Ok(Loaded {
        table,
        layers,
        config,
        config_digest: plan.config_digest.as_ref().map(sha_string),
        name: plan.name,
        source: what.to_string(),
    })
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Bytes read first from each file of a size group (see
/// [`Loaded::hash_entries`]).
const PREFIX: u64 = 4096;

impl Loaded {
    /// Takes the content hashes of `wanted` entries (`(layer, entry)`)
    /// not hashed yet, reading only their bytes, on several threads.
    ///
    /// Files of a size group whose first [`PREFIX`] bytes differ from
    /// every other's cannot share their content: they are left unhashed
    /// (distinct), and only the rest are read whole.
    pub fn hash_entries(&mut self, wanted: &[(usize, usize)], threads: usize) -> io::Result<()> {
        let mut wanted = wanted.to_vec();
        wanted.sort_unstable();
        wanted.dedup();
        let mut by_size: HashMap<u64, Vec<(usize, usize)>> = HashMap::new();
        for &(l, e) in &wanted {
            by_size
                .entry(self.layers[l].index.entries[e].size)
                .or_default()
                .push((l, e));
        }
        let unhashed = |l: usize, e: usize| self.layers[l].index.entries[e].hash == layer::NONE;
        let mut per_layer: Vec<Vec<usize>> = vec![Vec::new(); self.layers.len()];
        for (size, group) in by_size {
            if group.len() < 2 {
                continue;
            }
            // Against a file hashed already (read from a stream), or when
            // the prefix is the whole file: hash them all.
            let whole = size <= PREFIX
                || group.iter().any(|&(l, e)| !unhashed(l, e))
                || group.iter().any(|&(l, _)| self.layers[l].locator.is_none());
            if whole {
                for (l, e) in group.into_iter().filter(|&(l, e)| unhashed(l, e)) {
                    per_layer[l].push(e);
                }
                continue;
            }
            let mut prefixes: HashMap<Sha, Vec<(usize, usize)>> = HashMap::new();
            for (l, e) in group {
                let layer = &self.layers[l];
                let Some((file, base)) = &layer.locator else {
                    continue;
                };
                let mut buf = vec![0u8; PREFIX as usize];
                use std::os::unix::fs::FileExt;
                file.read_exact_at(&mut buf, base + layer.index.entries[e].offset)?;
                use sha2::{Digest, Sha256};
                prefixes
                    .entry(Sha256::digest(&buf).into())
                    .or_default()
                    .push((l, e));
            }
            for same in prefixes.into_values().filter(|g| g.len() > 1) {
                for (l, e) in same {
                    per_layer[l].push(e);
                }
            }
        }
        for v in &mut per_layer {
            // In archive order: the reads go forward through the file.
            v.sort_unstable();
        }
        let work: Vec<(&mut Layer, Vec<usize>)> = self
            .layers
            .iter_mut()
            .zip(per_layer)
            .filter(|(_, v)| !v.is_empty())
            .collect();
        if work.is_empty() {
            return Ok(());
        }
        let threads = threads.max(1).min(work.len());
        let queue = std::sync::Mutex::new(work);
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    scope.spawn(|| -> io::Result<()> {
                        loop {
                            let item = queue
                                .lock()
                                .map_err(|_| io::Error::other("poisoned"))?
                                .pop();
                            let Some((layer, entries)) = item else {
                                return Ok(());
                            };
                            let Some((file, base)) = layer.locator.clone() else {
                                return Err(io::Error::other(
                                    "a layer read from a stream has no hashes for its files",
                                ));
                            };
                            layer::hash_entries(&file, base, &mut layer.index, &entries)?;
                        }
                    })
                })
                .collect();
            handles.into_iter().try_for_each(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(io::Error::other("a hashing thread panicked")))
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::layer::testing::tar;
    use super::*;
    use sha2::{Digest, Sha256};

    fn hex(data: &[u8]) -> String {
        sha_string(&Sha256::digest(data).into())[7..].to_string()
    }

    fn config(diff_ids: &[&[u8]]) -> Vec<u8> {
        let ids: Vec<String> = diff_ids
            .iter()
            .map(|d| format!("\"sha256:{}\"", hex(d)))
            .collect();
        format!(
            r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":[{}]}},"history":[{{"created_by":"COPY a /a # buildkit"}},{{"created_by":"RUN rm /a # buildkit"}}]}}"#,
            ids.join(",")
        )
        .into_bytes()
    }

    fn layers() -> (Vec<u8>, Vec<u8>) {
        (
            tar(&[("a", b'0', &[1u8; 1000], "")]),
            tar(&[(".wh.a", b'0', b"", "")]),
        )
    }

    /// A legacy `docker save` archive, as Docker 20.10 writes it.
    fn saved(l1: &[u8], l2: &[u8], cfg: &[u8]) -> Vec<u8> {
        let cfg_name = format!("{}.json", hex(cfg));
        let manifest = format!(
            r#"[{{"Config":"{cfg_name}","RepoTags":["app:1"],"Layers":["aaa/layer.tar","bbb/layer.tar"]}}]"#
        );
        tar(&[
            ("aaa/", b'5', b"", ""),
            ("aaa/layer.tar", b'0', l1, ""),
            ("bbb/", b'5', b"", ""),
            ("bbb/layer.tar", b'0', l2, ""),
            (&cfg_name, b'0', cfg, ""),
            ("manifest.json", b'0', manifest.as_bytes(), ""),
        ])
    }

    #[test]
    fn docker_save_archives_from_a_file_and_a_stream() {
        let (l1, l2) = layers();
        let cfg = config(&[&l1, &l2]);
        let archive = saved(&l1, &l2, &cfg);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.tar");
        std::fs::write(&path, &archive).unwrap();
        let from_file = load_path(&path, &LoadOptions::default(), &Shared::default()).unwrap();
        let from_stream = load_stream(
            &archive[..],
            "stdin",
            &LoadOptions::default(),
            &Shared::default(),
        )
        .unwrap();
        for l in [&from_file, &from_stream] {
            assert_eq!(l.name.as_deref(), Some("app:1"));
            assert_eq!(l.layers.len(), 2);
            assert_eq!(l.layers[0].index.file_bytes(), 1000);
            assert_eq!(l.config.history.len(), 2);
        }
        assert!(from_file.source.starts_with("docker save archive"));
        // A layer whose bytes are not the config's diff id.
        let cfg_lie = config(&[&l2, &l2]);
        let lie = saved(&l1, &l2, &cfg_lie);
        std::fs::write(&path, &lie).unwrap();
        let e = load_path(&path, &LoadOptions::default(), &Shared::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("layer 1 of 2") && e.contains("diff id"), "{e}");
        let e = load_stream(
            &lie[..],
            "stdin",
            &LoadOptions::default(),
            &Shared::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("diff id"), "{e}");
        // Truncated.
        std::fs::write(&path, &archive[..archive.len() / 2]).unwrap();
        assert!(load_path(&path, &LoadOptions::default(), &Shared::default()).is_err());
        assert!(load_stream(
            &archive[..archive.len() / 2],
            "s",
            &LoadOptions::default(),
            &Shared::default()
        )
        .is_err());
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn oci_layouts_pick_the_platform_and_check_every_digest() {
        let (l1, l2) = layers();
        let (g1, g2) = (gzip(&l1), gzip(&l2));
        let cfg = config(&[&l1, &l2]);
        let dir = tempfile::tempdir().unwrap();
        let blobs = dir.path().join("blobs/sha256");
        std::fs::create_dir_all(&blobs).unwrap();
        let put = |data: &[u8]| {
            std::fs::write(blobs.join(hex(data)), data).unwrap();
            format!("sha256:{}", hex(data))
        };
        let desc = |mt: &str, data: &[u8]| {
            format!(
                r#"{{"mediaType":"{mt}","digest":"sha256:{}","size":{}}}"#,
                hex(data),
                data.len()
            )
        };
        put(&g1);
        put(&g2);
        put(&cfg);
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[{},{}]}}"#,
            desc("application/vnd.oci.image.config.v1+json", &cfg),
            desc("application/vnd.oci.image.layer.v1.tar+gzip", &g1),
            desc("application/vnd.oci.image.layer.v1.tar+gzip", &g2)
        );
        let m = put(manifest.as_bytes());
        let index = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{m}","size":{},"platform":{{"os":"linux","architecture":"amd64"}}}}]}}"#,
            manifest.len()
        );
        std::fs::write(dir.path().join("index.json"), &index).unwrap();
        std::fs::write(
            dir.path().join("oci-layout"),
            r#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .unwrap();
        let opts = LoadOptions {
            platform: Some("linux/amd64".into()),
            ..Default::default()
        };
        let l = load_path(dir.path(), &opts, &Shared::default()).unwrap();
        assert_eq!(l.layers[0].compressed_size, Some(g1.len() as u64));
        assert!(
            l.layers[0].index.hash_of(0).is_some(),
            "gzip layers are hashed in the pass"
        );
        let arm = LoadOptions {
            platform: Some("linux/arm64".into()),
            ..Default::default()
        };
        let e = load_path(dir.path(), &arm, &Shared::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no image for linux/arm64") && e.contains("linux/amd64"),
            "{e}"
        );
        // A blob that is not what its digest says.
        std::fs::write(blobs.join(hex(&g2)), &g1).unwrap();
        let e = load_path(dir.path(), &opts, &Shared::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("layer 2 of 2") && e.contains("digest"), "{e}");
        // A blob that is a symbolic link is not followed.
        std::fs::remove_file(blobs.join(hex(&g2))).unwrap();
        std::os::unix::fs::symlink("/dev/zero", blobs.join(hex(&g2))).unwrap();
        assert!(load_path(dir.path(), &opts, &Shared::default()).is_err());
    }
}
