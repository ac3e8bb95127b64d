//! `reggie-build size IMAGE` for an image reference: read from the Docker
//! daemon (its image export, streamed, never written to disk) or from a
//! registry without pulling (manifest or index, config, and each layer
//! blob streamed, inflated and indexed as it arrives, two at a time), with
//! the credentials `image --push` uses (docker config, credential
//! helpers, ECR tokens). Both feed `inspect`, which attributes and
//! measures.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::BodyExt;

use crate::inspect::image::{self, ImageConfig, Manifest};
use crate::inspect::layer::{self, index_layer, Hashing, Shared};
use crate::inspect::source::{self, Layer, LayerSpec, Loaded, SourceError};
use crate::inspect::{InspectError, Inspected, SizeOptions};
use crate::publish::{self, Credentials};
use crate::ship::{self, DaemonError};

/// How long a stream may deliver nothing before it counts as stalled.
pub const STALL: Duration = Duration::from_secs(60);

/// Where to read a reference from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Where {
    /// The daemon when it has the image, else the registry.
    Auto,
    /// The daemon.
    Daemon,
    /// The registry.
    Registry,
}

/// Which image, and how to reach it.
#[derive(Debug, Clone)]
pub struct RemoteOptions {
    /// `[registry/]repository[:tag][@digest]`, or an image id for the
    /// daemon.
    pub reference: String,
    /// Where to read it.
    pub from: Where,
    /// Reach the registry at this `host:port` instead of the reference's.
    pub registry_endpoint: Option<String>,
    /// Explicit registry credentials.
    pub credentials: Option<Credentials>,
}

/// Why an image reference cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SizeError {
    /// The daemon cannot be reached.
    #[error(transparent)]
    Daemon(#[from] DaemonError),
    /// The daemon has no such image (with `--from daemon`).
    #[error("the Docker daemon at {host} has no image {reference}: build or pull it, or read it from its registry with --from registry")]
    NotInDaemon {
        /// The daemon.
        host: String,
        /// The reference.
        reference: String,
    },
    /// The daemon's export failed or stalled.
    #[error("exporting {reference} from the Docker daemon failed: {message}")]
    Export {
        /// The reference.
        reference: String,
        /// Why.
        message: String,
    },
    /// Credentials could not be found.
    #[error(transparent)]
    Credentials(#[from] publish::PublishError),
    /// The registry refused, failed or stalled.
    #[error("reading {reference} from {registry}: {message}")]
    Registry {
        /// The reference.
        reference: String,
        /// The registry.
        registry: String,
        /// Why.
        message: String,
    },
    /// Reading or measuring the image failed.
    #[error(transparent)]
    Inspect(#[from] InspectError),
}

impl From<image::JsonError> for SizeError {
    fn from(e: image::JsonError) -> SizeError {
        SourceError::from(e).into()
    }
}

impl From<SourceError> for SizeError {
    fn from(e: SourceError) -> SizeError {
        SizeError::Inspect(e.into())
    }
}

/// Reads an image reference and analyses it.
pub async fn size(
    remote: &RemoteOptions,
    options: &SizeOptions,
    shared: &Arc<Shared>,
) -> Result<Inspected, SizeError> {
    let loaded = match remote.from {
        Where::Registry => from_registry(remote, options, shared).await?,
        Where::Daemon => {
            let daemon = ship::daemon::connect().await?;
            from_daemon(&daemon, remote, options, shared).await?
        }
        Where::Auto => match ship::daemon::connect().await {
            Ok(daemon) if daemon.quick.inspect_image(&remote.reference).await.is_ok() => {
                from_daemon(&daemon, remote, options, shared).await?
            }
            _ => from_registry(remote, options, shared).await?,
        },
    };
    let options = options.clone();
    tokio::task::spawn_blocking(move || crate::inspect::analyze(loaded, &options))
        .await
        .map_err(|e| SizeError::Export {
            reference: remote.reference.clone(),
            message: format!("the analysis thread failed: {e}"),
        })?
        .map_err(SizeError::from)
}

/// Chunks of a stream, read as a `Read` on a blocking thread.
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<Result<Bytes, String>>,
    chunk: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => self.chunk = chunk,
                Some(Err(message)) => return Err(std::io::Error::other(message)),
                None => return Ok(0),
            }
        }
        let n = self.chunk.len().min(buf.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        self.chunk = self.chunk.slice(n..);
        Ok(n)
    }
}

/// A channel whose reader side is a [`ChannelReader`]; a few chunks in
/// flight keep the memory flat.
fn channel() -> (
    tokio::sync::mpsc::Sender<Result<Bytes, String>>,
    ChannelReader,
) {
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    (
        tx,
        ChannelReader {
            rx,
            chunk: Bytes::new(),
        },
    )
}

async fn from_daemon(
    daemon: &ship::Daemon,
    remote: &RemoteOptions,
    options: &SizeOptions,
    shared: &Arc<Shared>,
) -> Result<Loaded, SizeError> {
    let reference = remote.reference.clone();
    if daemon.quick.inspect_image(&reference).await.is_err() {
        return Err(SizeError::NotInDaemon {
            host: daemon.host.clone(),
            reference: crate::text::excerpt(&reference),
        });
    }
    let (tx, reader) = channel();
    let what = format!(
        "image {} in the Docker daemon",
        crate::text::excerpt(&reference)
    );
    let load = options.load.clone();
    let counters = shared.clone();
    let worker =
        tokio::task::spawn_blocking(move || source::load_stream(reader, &what, &load, &counters));
    let mut stream = daemon.long.export_images(&[reference.as_str()]);
    let mut failure = None;
    loop {
        match tokio::time::timeout(STALL, stream.next()).await {
            Ok(Some(Ok(chunk))) => {
                if tx.send(Ok(chunk)).await.is_err() {
                    break; // the reader failed; its error says why
                }
            }
            Ok(Some(Err(e))) => {
                let message = ship::daemon::describe(&e);
                failure = Some(message.clone());
                let _ = tx.send(Err(message)).await;
                break;
            }
            Ok(None) => break,
            Err(_) => {
                let message = format!("the daemon sent nothing for {STALL:?}");
                failure = Some(message.clone());
                let _ = tx.send(Err(message)).await;
                break;
            }
        }
    }
    drop(tx);
    let loaded = worker.await.map_err(|e| SizeError::Export {
        reference: reference.clone(),
        message: e.to_string(),
    })?;
    match (loaded, failure) {
        (Ok(l), _) => Ok(l),
        (Err(_), Some(message)) => Err(SizeError::Export { reference, message }),
        (Err(e), None) => Err(e.into()),
    }
}

async fn from_registry(
    remote: &RemoteOptions,
    options: &SizeOptions,
    shared: &Arc<Shared>,
) -> Result<Loaded, SizeError> {
    let parsed =
        crate::reference::Reference::parse(&remote.reference).map_err(|e| SizeError::Registry {
            reference: crate::text::excerpt(&remote.reference),
            registry: String::new(),
            message: e.to_string(),
        })?;
    let tag = parsed
        .digest
        .clone()
        .or_else(|| parsed.tag.clone())
        .unwrap_or_else(|| "latest".to_string());
    let push_options = publish::PushOptions {
        registry_endpoint: remote.registry_endpoint.clone(),
        create_repo: false,
        credentials: remote.credentials.clone(),
    };
    let creds = publish::credentials_for(&parsed, &push_options).await?;
    let host = remote
        .registry_endpoint
        .clone()
        .unwrap_or_else(|| crate::reference::api_host(&parsed.registry).to_string());
    let repository = parsed.repository.clone();
    let fail = |message: String| SizeError::Registry {
        reference: crate::text::excerpt(&remote.reference),
        registry: host.clone(),
        message,
    };
    let mut registry = publish::registry::Registry::new(&host, creds).map_err(&fail)?;
    let what = format!(
        "{}:{}",
        crate::text::excerpt(&repository),
        crate::text::excerpt(&tag)
    );
    let (digest, body) = registry
        .document(&repository, "manifests", &tag)
        .await
        .map_err(&fail)?
        .ok_or_else(|| fail(format!("the registry has no {what}")))?;
    if tag.starts_with("sha256:") {
        source::check_digest(&body, &tag, "the manifest")?;
    }
    let mut manifest = Manifest::parse(&body, "the manifest")?;
    let _ = digest;
    for _ in 0..2 {
        if !manifest.is_index() {
            break;
        }
        let platform = options
            .load
            .platform
            .clone()
            .unwrap_or_else(image::default_platform);
        let chosen = image::choose(&manifest, &platform, "the index")?
            .digest
            .clone();
        let (_, body) = registry
            .document(&repository, "manifests", &chosen)
            .await
            .map_err(&fail)?
            .ok_or_else(|| {
                fail(format!(
                    "the index lists {chosen}, which the registry does not have"
                ))
            })?;
        source::check_digest(&body, &chosen, "the manifest")?;
        manifest = Manifest::parse(&body, "the manifest")?;
    }
    let config_desc = manifest
        .config
        .clone()
        .ok_or_else(|| fail("the manifest has no config: not an image".into()))?;
    let (_, config_data) = registry
        .document(&repository, "blobs", &config_desc.digest)
        .await
        .map_err(&fail)?
        .ok_or_else(|| fail("the registry does not have the image config".into()))?;
    source::check_digest(&config_data, &config_desc.digest, "the image config")?;
    let config = ImageConfig::parse(&config_data)?;
    source::check_counts(&config, manifest.layers.len())?;
    let total = manifest.layers.len();
    let specs: Vec<LayerSpec> = manifest
        .layers
        .iter()
        .map(|d| {
            Ok(LayerSpec {
                name: d.digest.clone(),
                blob: Some(layer::parse_sha(&d.digest).ok_or_else(|| {
                    fail(format!(
                        "layer digest {} is not sha256",
                        crate::text::excerpt(&d.digest)
                    ))
                })?),
                media_type: d.media_type.clone(),
                size: Some(d.size),
            })
        })
        .collect::<Result<_, SizeError>>()?;
    // Two blobs at a time, each inflated and indexed on its own thread.
    let parallel = options.load.threads.clamp(1, 8).max(2).min(total.max(1));
    let mut results: Vec<Option<layer::LayerIndex>> = vec![None; total];
    let mut next = 0;
    let mut running = futures_util::stream::FuturesUnordered::new();
    let fetch = |i: usize, mut registry: publish::registry::Registry| {
        let spec = specs[i].clone();
        let repository = repository.clone();
        let diff_id = config.diff_ids.get(i).copied();
        async move {
            let result: Result<layer::LayerIndex, String> = async {
                let body = registry.blob(&repository, &spec.name).await?;
                let (tx, reader) = channel();
                let counters = shared.clone();
                let worker = tokio::task::spawn_blocking(move || {
                    index_layer(reader, Hashing::All, &counters)
                });
                let mut body = body;
                let mut failure = None;
                loop {
                    match tokio::time::timeout(STALL, body.frame()).await {
                        Ok(Some(Ok(frame))) => {
                            if let Ok(data) = frame.into_data() {
                                if tx.send(Ok(data)).await.is_err() {
                                    break;
                                }
                            }
                        }
                        Ok(Some(Err(e))) => {
                            failure = Some(format!("reading blob {}: {e}", spec.name));
                            break;
                        }
                        Ok(None) => break,
                        Err(_) => {
                            failure = Some(format!(
                                "the registry sent nothing of blob {} for {STALL:?}",
                                spec.name
                            ));
                            break;
                        }
                    }
                }
                if let Some(f) = &failure {
                    let _ = tx.send(Err(f.clone())).await;
                }
                drop(tx);
                let index = worker.await.map_err(|e| e.to_string())?;
                match (index, failure) {
                    (_, Some(f)) => Err(f),
                    (Ok(index), None) => {
                        source::verify(&spec, &index, diff_id.as_ref())
                            .map_err(|e| e.to_string())?;
                        Ok(index)
                    }
                    (Err(e), None) => Err(e.to_string()),
                }
            }
            .await;
            (i, result, registry)
        }
    };
    // One client per download (each keeps its own token).
    let mut clients: Vec<_> = (1..parallel).map(|_| registry.clone()).collect();
    clients.push(registry);
    while next < total && !clients.is_empty() {
        running.push(fetch(next, clients.pop().expect("a client")));
        next += 1;
    }
    while let Some((i, result, client)) = running.next().await {
        let index = result.map_err(|message| {
            fail(format!(
                "layer {} of {total} ({}): {message}",
                i + 1,
                crate::text::excerpt(&specs[i].name)
            ))
        })?;
        results[i] = Some(index);
        if next < total {
            running.push(fetch(next, client));
            next += 1;
        }
    }
    let mut table = crate::inspect::paths::PathTable::new();
    let mut layers = Vec::with_capacity(total);
    for (i, index) in results.into_iter().enumerate() {
        let mut index = index.ok_or_else(|| fail(format!("layer {} was not read", i + 1)))?;
        source::merge(&mut table, &mut index).map_err(|e| SourceError::Layer {
            number: i + 1,
            total,
            digest: source::short(&index.diff_id),
            source: e,
        })?;
        layers.push(Layer::streamed(index, specs[i].media_type.clone()));
    }
    Ok(Loaded {
        table,
        layers,
        config,
        config_digest: Some(config_desc.digest.clone()),
        name: Some(crate::text::excerpt(&remote.reference)),
        source: format!("registry {}", crate::text::excerpt(&host)),
    })
}
