//! Local cache directories for a remote builder (`--cache-to
//! type=local,dest=DIR`, `--cache-from type=local,src=DIR`), as buildctl
//! and buildx serve them: the session offers containerd's content service
//! (`containerd.services.content.v1.Content`), and the builder's local
//! cache exporter and importer read and write blobs through it, choosing
//! the directory by the `buildkit-attachable-store-id` header
//! (`local:` + the `dest`/`src` attribute the solve carried).
//!
//! A directory is an OCI image layout: blobs under `blobs/sha256/`, and
//! `index.json` naming the cache manifest under a tag (`latest` unless
//! `tag=` says): the client reads it to give the importer the manifest's
//! `digest`, and writes it after an export from the `cache.manifest`
//! descriptor the solve answers with.
//!
//! Blobs are written to a temporary file beside their final name, hashed
//! as they arrive, and renamed only when size and digest match what the
//! builder said; names are built from validated digests only, and no
//! path is followed through a symlink.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use prost::Message;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use bollard_buildkit_proto::google::protobuf::Timestamp;

use super::filesend::{RawCodec, MAX_MESSAGE};

/// The gRPC metadata that names the store of a call.
const STORE_HEADER: &str = "buildkit-attachable-store-id";

/// The prefix BuildKit puts before a local cache's `dest`/`src`.
pub const STORE_PREFIX: &str = "local:";

/// The tag of a cache in `index.json` when `tag=` names none.
pub const DEFAULT_TAG: &str = "latest";

/// The service's methods, for the session's headers.
pub const METHODS: &[&str] = &[
    "/containerd.services.content.v1.Content/Info",
    "/containerd.services.content.v1.Content/Update",
    "/containerd.services.content.v1.Content/Read",
    "/containerd.services.content.v1.Content/Status",
    "/containerd.services.content.v1.Content/Write",
    "/containerd.services.content.v1.Content/Abort",
];

/// Bytes of one `Read` answer at most.
const READ_CHUNK: usize = 1 << 20;

#[derive(Clone, PartialEq, Message)]
struct Info {
    #[prost(string, tag = "1")]
    digest: String,
    #[prost(int64, tag = "2")]
    size: i64,
    #[prost(message, optional, tag = "3")]
    created_at: Option<Timestamp>,
    #[prost(message, optional, tag = "4")]
    updated_at: Option<Timestamp>,
    #[prost(map = "string, string", tag = "5")]
    labels: HashMap<String, String>,
}

#[derive(Clone, PartialEq, Message)]
struct InfoRequest {
    #[prost(string, tag = "1")]
    digest: String,
}

#[derive(Clone, PartialEq, Message)]
struct InfoResponse {
    #[prost(message, optional, tag = "1")]
    info: Option<Info>,
}

#[derive(Clone, PartialEq, Message)]
struct UpdateRequest {
    #[prost(message, optional, tag = "1")]
    info: Option<Info>,
}

#[derive(Clone, PartialEq, Message)]
struct ReadContentRequest {
    #[prost(string, tag = "1")]
    digest: String,
    #[prost(int64, tag = "2")]
    offset: i64,
    #[prost(int64, tag = "3")]
    size: i64,
}

#[derive(Clone, PartialEq, Message)]
struct ReadContentResponse {
    #[prost(int64, tag = "1")]
    offset: i64,
    #[prost(bytes = "vec", tag = "2")]
    data: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
struct Status {
    #[prost(message, optional, tag = "1")]
    started_at: Option<Timestamp>,
    #[prost(message, optional, tag = "2")]
    updated_at: Option<Timestamp>,
    #[prost(string, tag = "3")]
    r#ref: String,
    #[prost(int64, tag = "4")]
    offset: i64,
    #[prost(int64, tag = "5")]
    total: i64,
    #[prost(string, tag = "6")]
    expected: String,
}

#[derive(Clone, PartialEq, Message)]
struct StatusRequest {
    #[prost(string, tag = "1")]
    r#ref: String,
}

#[derive(Clone, PartialEq, Message)]
struct StatusResponse {
    #[prost(message, optional, tag = "1")]
    status: Option<Status>,
}

/// `STAT`, `WRITE`, `COMMIT`.
const STAT: i32 = 0;
const COMMIT: i32 = 2;

#[derive(Clone, PartialEq, Message)]
struct WriteContentRequest {
    #[prost(int32, tag = "1")]
    action: i32,
    #[prost(string, tag = "2")]
    r#ref: String,
    #[prost(int64, tag = "3")]
    total: i64,
    #[prost(string, tag = "4")]
    expected: String,
    #[prost(int64, tag = "5")]
    offset: i64,
    #[prost(bytes = "vec", tag = "6")]
    data: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
struct WriteContentResponse {
    #[prost(int32, tag = "1")]
    action: i32,
    #[prost(message, optional, tag = "2")]
    started_at: Option<Timestamp>,
    #[prost(message, optional, tag = "3")]
    updated_at: Option<Timestamp>,
    #[prost(int64, tag = "4")]
    offset: i64,
    #[prost(int64, tag = "5")]
    total: i64,
    #[prost(string, tag = "6")]
    digest: String,
}

#[derive(Clone, PartialEq, Message)]
struct AbortRequest {
    #[prost(string, tag = "1")]
    r#ref: String,
}

/// `sha256:<64 hex>` → the hex, for a file name; anything else is refused.
fn digest_hex(digest: &str) -> Result<&str, tonic::Status> {
    digest
        .strip_prefix("sha256:")
        .filter(|h| {
            h.len() == 64
                && h.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        })
        .ok_or_else(|| {
            tonic::Status::invalid_argument(format!(
                "not a sha256 digest: {}",
                crate::text::excerpt(digest)
            ))
        })
}

fn now() -> Option<Timestamp> {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Some(Timestamp {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    })
}

/// Opens a regular file without following a symlink.
fn open_blob(path: &Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Err(io::Error::other(format!(
            "{} is not a file",
            path.display()
        )));
    }
    Ok(f)
}

/// A blob being written: its temporary file, how much arrived, the hash
/// of what arrived.
struct Ingest {
    file: std::fs::File,
    temp: PathBuf,
    offset: i64,
    total: i64,
    expected: String,
    hash: Sha256,
    started: Option<Timestamp>,
}

impl Drop for Ingest {
    fn drop(&mut self) {
        // Committed ingests were renamed away; the rest is debris.
        let _ = std::fs::remove_file(&self.temp);
    }
}

/// The directories a session serves, by store id (`local:DIR`).
#[derive(Default)]
pub struct Stores {
    dirs: HashMap<String, PathBuf>,
    ingests: Mutex<HashMap<(String, String), Ingest>>,
}

impl Stores {
    /// Serves `dirs` (store id → directory).
    pub fn new(dirs: HashMap<String, PathBuf>) -> Stores {
        Stores {
            dirs,
            ingests: Mutex::new(HashMap::new()),
        }
    }

    fn dir<T>(&self, req: &tonic::Request<T>) -> Result<(String, PathBuf), tonic::Status> {
        let id = req
            .metadata()
            .get(STORE_HEADER)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                tonic::Status::invalid_argument(format!("no {STORE_HEADER} metadata"))
            })?;
        let dir = self.dirs.get(id).ok_or_else(|| {
            tonic::Status::not_found(format!("unknown store {}", crate::text::excerpt(id)))
        })?;
        Ok((id.to_string(), dir.clone()))
    }

    fn blob(dir: &Path, digest: &str) -> Result<PathBuf, tonic::Status> {
        Ok(dir.join("blobs/sha256").join(digest_hex(digest)?))
    }

    fn info(dir: &Path, digest: &str) -> Result<Info, tonic::Status> {
        let path = Self::blob(dir, digest)?;
        let meta = match open_blob(&path).and_then(|f| f.metadata()) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(tonic::Status::not_found(format!(
                    "content {digest}: not found"
                )))
            }
            Err(e) => return Err(tonic::Status::internal(format!("{}: {e}", path.display()))),
        };
        Ok(Info {
            digest: digest.to_string(),
            size: i64::try_from(meta.len()).unwrap_or(i64::MAX),
            created_at: now(),
            updated_at: now(),
            labels: HashMap::new(),
        })
    }

    fn status(&self, id: &str, r: &str) -> Option<Status> {
        let ingests = self.ingests.lock().unwrap_or_else(|p| p.into_inner());
        ingests
            .get(&(id.to_string(), r.to_string()))
            .map(|i| Status {
                started_at: i.started,
                updated_at: now(),
                r#ref: r.to_string(),
                offset: i.offset,
                total: i.total,
                expected: i.expected.clone(),
            })
    }

    /// One message of a `Write` stream: the answer, and whether the stream
    /// is done (committed).
    fn write(
        &self,
        id: &str,
        dir: &Path,
        req: WriteContentRequest,
    ) -> Result<(WriteContentResponse, bool), tonic::Status> {
        if req.r#ref.is_empty() {
            return Err(tonic::Status::invalid_argument("a write needs a ref"));
        }
        if !req.expected.is_empty() && Self::blob(dir, &req.expected)?.exists() {
            self.ingests
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&(id.to_string(), req.r#ref.clone()));
            return Err(tonic::Status::already_exists(format!(
                "blob with expected digest {} exists",
                req.expected
            )));
        }
        let mut ingests = self.ingests.lock().unwrap_or_else(|p| p.into_inner());
        let key = (id.to_string(), req.r#ref.clone());
        if !ingests.contains_key(&key) {
            let blobs = dir.join("blobs/sha256");
            std::fs::create_dir_all(&blobs)
                .map_err(|e| tonic::Status::internal(format!("{}: {e}", blobs.display())))?;
            let temp = blobs.join(format!(".reggie-ingest-{}", super::upload::random_hex(16)));
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&temp)
                .map_err(|e| tonic::Status::internal(format!("{}: {e}", temp.display())))?;
            ingests.insert(
                key.clone(),
                Ingest {
                    file,
                    temp,
                    offset: 0,
                    total: req.total,
                    expected: req.expected.clone(),
                    hash: Sha256::new(),
                    started: now(),
                },
            );
        }
        let ingest = ingests
            .get_mut(&key)
            .ok_or_else(|| tonic::Status::internal("the ingest vanished"))?;
        if req.total > 0 {
            ingest.total = req.total;
        }
        if !req.expected.is_empty() {
            ingest.expected = req.expected.clone();
        }
        let mut answer = WriteContentResponse {
            action: req.action,
            offset: ingest.offset,
            started_at: ingest.started,
            updated_at: now(),
            ..Default::default()
        };
        if req.action == STAT {
            answer.total = ingest.total;
            answer.digest = format!("sha256:{:x}", ingest.hash.clone().finalize());
            return Ok((answer, false));
        }
        if req.offset > 0 && req.offset != ingest.offset {
            return Err(tonic::Status::out_of_range(format!(
                "write @{} must occur at current offset {}",
                req.offset, ingest.offset
            )));
        }
        if req.offset == 0 && ingest.offset > 0 {
            // A fresh start of the same ref.
            ingest
                .file
                .set_len(0)
                .and_then(|_| ingest.file.rewind())
                .map_err(|e| tonic::Status::internal(format!("{}: {e}", ingest.temp.display())))?;
            ingest.offset = 0;
            ingest.hash = Sha256::new();
        }
        if !req.data.is_empty() {
            ingest
                .file
                .write_all(&req.data)
                .map_err(|e| tonic::Status::internal(format!("{}: {e}", ingest.temp.display())))?;
            ingest.hash.update(&req.data);
            ingest.offset += i64::try_from(req.data.len()).unwrap_or(i64::MAX);
        }
        answer.offset = ingest.offset;
        let digest = format!("sha256:{:x}", ingest.hash.clone().finalize());
        answer.digest = digest.clone();
        if req.action != COMMIT {
            return Ok((answer, false));
        }
        let ingest = ingests
            .remove(&key)
            .ok_or_else(|| tonic::Status::internal("the ingest vanished"))?;
        if ingest.total > 0 && ingest.offset != ingest.total {
            return Err(tonic::Status::failed_precondition(format!(
                "unexpected commit size {}, expected {}",
                ingest.offset, ingest.total
            )));
        }
        if !ingest.expected.is_empty() && ingest.expected != digest {
            return Err(tonic::Status::failed_precondition(format!(
                "unexpected commit digest {digest}, expected {}",
                ingest.expected
            )));
        }
        let target = Self::blob(dir, &digest)?;
        ingest
            .file
            .sync_all()
            .and_then(|_| std::fs::rename(&ingest.temp, &target))
            .map_err(|e| tonic::Status::internal(format!("{}: {e}", target.display())))?;
        Ok((answer, true))
    }
}

/// `path` from `offset`, `size` bytes (0: to the end), in chunks of at
/// most [`READ_CHUNK`] handed to `send` one at a time (a large layer never
/// sits in memory); stops early when `send` says so.
fn read_blob(
    path: &Path,
    offset: i64,
    size: i64,
    send: &mut dyn FnMut(ReadContentResponse) -> bool,
) -> io::Result<()> {
    let mut f = open_blob(path)?;
    let start = u64::try_from(offset).map_err(|_| io::Error::other("negative offset"))?;
    f.seek(io::SeekFrom::Start(start))?;
    let mut left = match size {
        s if s > 0 => u64::try_from(s).unwrap_or(u64::MAX),
        _ => u64::MAX,
    };
    let mut at = start;
    let mut buf = vec![0u8; READ_CHUNK];
    while left > 0 {
        let want = usize::try_from(left.min(READ_CHUNK as u64)).unwrap_or(READ_CHUNK);
        let n = f.read(&mut buf[..want])?;
        if n == 0 {
            return Ok(());
        }
        let chunk = ReadContentResponse {
            offset: i64::try_from(at).unwrap_or(i64::MAX),
            data: buf[..n].to_vec(),
        };
        if !send(chunk) {
            return Ok(());
        }
        at += n as u64;
        left -= n as u64;
    }
    Ok(())
}

type OutStream =
    Pin<Box<dyn futures_util::Stream<Item = Result<Vec<u8>, tonic::Status>> + Send + 'static>>;

fn decode<M: Message + Default>(bytes: &[u8]) -> Result<M, tonic::Status> {
    M::decode(bytes).map_err(|e| tonic::Status::invalid_argument(e.to_string()))
}

/// One method of the service.
#[derive(Clone)]
struct Call(Arc<Stores>, &'static str);

impl tonic::server::UnaryService<Vec<u8>> for Call {
    type Response = Vec<u8>;
    type Future = tonic::codegen::BoxFuture<tonic::Response<Vec<u8>>, tonic::Status>;

    fn call(&mut self, req: tonic::Request<Vec<u8>>) -> Self::Future {
        let Call(stores, method) = self.clone();
        Box::pin(async move {
            let (id, dir) = stores.dir(&req)?;
            let body = req.into_inner();
            let answer = match method {
                "Info" => {
                    let r: InfoRequest = decode(&body)?;
                    InfoResponse {
                        info: Some(Stores::info(&dir, &r.digest)?),
                    }
                    .encode_to_vec()
                }
                // Labels are the builder's garbage-collection marks: a
                // cache directory has no collector to tell.
                "Update" => {
                    let r: UpdateRequest = decode(&body)?;
                    let digest = r.info.map(|i| i.digest).unwrap_or_default();
                    InfoResponse {
                        info: Some(Stores::info(&dir, &digest)?),
                    }
                    .encode_to_vec()
                }
                "Status" => {
                    let r: StatusRequest = decode(&body)?;
                    let status = stores.status(&id, &r.r#ref).ok_or_else(|| {
                        tonic::Status::not_found(format!("no write in progress for {}", r.r#ref))
                    })?;
                    StatusResponse {
                        status: Some(status),
                    }
                    .encode_to_vec()
                }
                "Abort" => {
                    let r: AbortRequest = decode(&body)?;
                    stores
                        .ingests
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&(id, r.r#ref));
                    Vec::new()
                }
                other => return Err(tonic::Status::unimplemented(other.to_string())),
            };
            Ok(tonic::Response::new(answer))
        })
    }
}

impl tonic::server::ServerStreamingService<Vec<u8>> for Call {
    type Response = Vec<u8>;
    type ResponseStream = OutStream;
    type Future = tonic::codegen::BoxFuture<tonic::Response<OutStream>, tonic::Status>;

    fn call(&mut self, req: tonic::Request<Vec<u8>>) -> Self::Future {
        let stores = self.0.clone();
        Box::pin(async move {
            let (_, dir) = stores.dir(&req)?;
            let r: ReadContentRequest = decode(req.get_ref())?;
            let path = Stores::blob(&dir, &r.digest)?;
            let (tx, rx) = mpsc::channel::<Result<Vec<u8>, tonic::Status>>(4);
            tokio::task::spawn_blocking(move || {
                let result = read_blob(&path, r.offset, r.size, &mut |chunk| {
                    tx.blocking_send(Ok(chunk.encode_to_vec())).is_ok()
                });
                if let Err(e) = result {
                    let status = match e.kind() {
                        io::ErrorKind::NotFound => {
                            tonic::Status::not_found(format!("content {}: not found", r.digest))
                        }
                        _ => tonic::Status::internal(format!("{}: {e}", path.display())),
                    };
                    let _ = tx.blocking_send(Err(status));
                }
            });
            let out = futures_util::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|item| (item, rx))
            });
            Ok(tonic::Response::new(Box::pin(out) as OutStream))
        })
    }
}

impl tonic::server::StreamingService<Vec<u8>> for Call {
    type Response = Vec<u8>;
    type ResponseStream = OutStream;
    type Future = tonic::codegen::BoxFuture<tonic::Response<OutStream>, tonic::Status>;

    fn call(&mut self, req: tonic::Request<tonic::Streaming<Vec<u8>>>) -> Self::Future {
        let stores = self.0.clone();
        Box::pin(async move {
            let (id, dir) = stores.dir(&req)?;
            let mut incoming = req.into_inner();
            let (tx, rx) = mpsc::channel::<Result<Vec<u8>, tonic::Status>>(4);
            tokio::spawn(async move {
                // containerd's writer names the ref in the stream's first
                // message only (its STAT); the rest of the stream is it.
                let mut stream_ref = String::new();
                loop {
                    let msg = match incoming.message().await {
                        Ok(Some(m)) => m,
                        Ok(None) => return,
                        Err(e) => {
                            tracing::debug!(error = %e, "content write stream ended");
                            return;
                        }
                    };
                    let step = decode::<WriteContentRequest>(&msg).and_then(|mut r| {
                        if r.r#ref.is_empty() {
                            r.r#ref.clone_from(&stream_ref);
                        } else {
                            stream_ref.clone_from(&r.r#ref);
                        }
                        stores.write(&id, &dir, r)
                    });
                    match step {
                        Ok((answer, done)) => {
                            if tx.send(Ok(answer.encode_to_vec())).await.is_err() || done {
                                return;
                            }
                        }
                        Err(status) => {
                            let _ = tx.send(Err(status)).await;
                            return;
                        }
                    }
                }
            });
            let out = futures_util::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|item| (item, rx))
            });
            Ok(tonic::Response::new(Box::pin(out) as OutStream))
        })
    }
}

/// The tonic service for the session router.
#[derive(Clone)]
pub struct ContentServer(Arc<Stores>);

impl ContentServer {
    pub fn new(stores: Stores) -> ContentServer {
        ContentServer(Arc::new(stores))
    }
}

impl tonic::server::NamedService for ContentServer {
    const NAME: &'static str = "containerd.services.content.v1.Content";
}

impl<B> tonic::codegen::Service<http::Request<B>> for ContentServer
where
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = tonic::codegen::BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let method = req
            .uri()
            .path()
            .strip_prefix("/containerd.services.content.v1.Content/")
            .unwrap_or("");
        let method: &'static str = match method {
            "Info" => "Info",
            "Update" => "Update",
            "Status" => "Status",
            "Abort" => "Abort",
            "Read" => "Read",
            "Write" => "Write",
            _ => "",
        };
        let call = Call(self.0.clone(), method);
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(RawCodec)
                .apply_max_message_size_config(Some(MAX_MESSAGE), Some(MAX_MESSAGE));
            Ok(match method {
                "Read" => grpc.server_streaming(call, req).await,
                "Write" => grpc.streaming(call, req).await,
                "" => super::filesend::unimplemented(),
                _ => grpc.unary(call, req).await,
            })
        })
    }
}

/// Errors of a local cache directory's `index.json`.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
}

fn index_path(dir: &Path) -> PathBuf {
    dir.join("index.json")
}

/// The digest `index.json` of `dir` names under `tag`; `None` when the
/// directory holds no such cache (yet).
pub fn resolve(dir: &Path, tag: &str) -> Result<Option<String>, IndexError> {
    let path = index_path(dir);
    let text = match open_blob(&path) {
        Ok(mut f) => {
            let mut s = String::new();
            // An index names a few manifests: a large one is not ours.
            (&mut f)
                .take(16 << 20)
                .read_to_string(&mut s)
                .map_err(|e| IndexError::Invalid {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
            s
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(IndexError::Invalid {
                path,
                message: e.to_string(),
            })
        }
    };
    let index: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| IndexError::Invalid {
            path: path.clone(),
            message: format!("not JSON: {e}"),
        })?;
    let digest = index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .and_then(|m| m["digest"].as_str());
    match digest {
        Some(d) => {
            digest_hex(d).map_err(|_| IndexError::Invalid {
                path,
                message: format!("the digest of {tag} is not a sha256 digest"),
            })?;
            Ok(Some(d.to_string()))
        }
        None => Ok(None),
    }
}

/// Names `descriptor` (the `cache.manifest` the solve answered, JSON) in
/// `index.json` of `dir` under `tag`, replacing what had that tag, as
/// buildctl does; the file is replaced whole (written beside, renamed).
pub fn put(dir: &Path, tag: &str, descriptor: &str) -> Result<(), IndexError> {
    let path = index_path(dir);
    let invalid = |message: String| IndexError::Invalid {
        path: path.clone(),
        message,
    };
    let mut desc: serde_json::Value = serde_json::from_str(descriptor)
        .map_err(|e| invalid(format!("the builder's cache.manifest is not JSON: {e}")))?;
    desc["annotations"]["org.opencontainers.image.ref.name"] = tag.into();
    let mut index: serde_json::Value = match resolve(dir, tag) {
        Ok(_) if path.exists() => {
            let text = std::fs::read_to_string(&path).map_err(|e| invalid(e.to_string()))?;
            serde_json::from_str(&text).map_err(|e| invalid(format!("not JSON: {e}")))?
        }
        Ok(_) => serde_json::json!({}),
        Err(e) => return Err(e),
    };
    if index["schemaVersion"].is_null() {
        index["schemaVersion"] = 2.into();
    }
    let mut manifests: Vec<serde_json::Value> = index["manifests"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|m| m["annotations"]["org.opencontainers.image.ref.name"] != tag)
        .collect();
    manifests.push(desc);
    index["manifests"] = manifests.into();
    let temp = dir.join(format!(".index.json.{}", super::upload::random_hex(8)));
    let write = |e| IndexError::Write {
        path: path.clone(),
        source: e,
    };
    std::fs::write(&temp, index.to_string()).map_err(write)?;
    std::fs::rename(&temp, &path).map_err(write)
}

/// The stores a plan's caches need: `local:DIR` → DIR.
pub fn stores_of<'a>(
    caches: impl IntoIterator<Item = &'a super::outputs::CacheSpec>,
) -> BTreeMap<String, PathBuf> {
    caches
        .into_iter()
        .filter(|c| c.kind == "local")
        .filter_map(|c| c.attr("dest").or_else(|| c.attr("src")))
        .map(|d| (format!("{STORE_PREFIX}{d}"), PathBuf::from(d)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stores(dir: &Path) -> Stores {
        Stores::new([("local:x".to_string(), dir.to_path_buf())].into())
    }

    fn write(
        s: &Stores,
        dir: &Path,
        action: i32,
        r: &str,
        data: &[u8],
        expected: &str,
        total: i64,
    ) -> Result<(WriteContentResponse, bool), tonic::Status> {
        s.write(
            "local:x",
            dir,
            WriteContentRequest {
                action,
                r#ref: r.into(),
                total,
                expected: expected.into(),
                offset: 0,
                data: data.to_vec(),
            },
        )
    }

    #[test]
    fn blobs_are_written_only_when_their_digest_matches() {
        let dir = tempfile::tempdir().unwrap();
        let s = stores(dir.path());
        let data = b"a layer";
        let digest = format!("sha256:{:x}", Sha256::digest(data));
        let (stat, done) = write(&s, dir.path(), STAT, "r1", b"", &digest, 7).unwrap();
        assert_eq!((stat.offset, done), (0, false));
        let (w, _) = write(&s, dir.path(), 1, "r1", b"a lay", "", 0).unwrap();
        assert_eq!(w.offset, 5);
        assert_eq!(s.status("local:x", "r1").map(|st| st.offset), Some(5));
        let mut req = WriteContentRequest {
            action: COMMIT,
            r#ref: "r1".into(),
            offset: 5,
            data: b"er".to_vec(),
            total: 7,
            expected: digest.clone(),
        };
        let (c, done) = s.write("local:x", dir.path(), req.clone()).unwrap();
        assert!(done);
        assert_eq!((c.offset, c.digest.as_str()), (7, digest.as_str()));
        let info = Stores::info(dir.path(), &digest).unwrap();
        assert_eq!(info.size, 7);
        // The same blob again: it exists.
        let err = write(&s, dir.path(), STAT, "r2", b"", &digest, 7).unwrap_err();
        assert_eq!(err.code(), tonic::Code::AlreadyExists);
        // A commit whose bytes are not the digest's leaves nothing behind.
        let other = format!("sha256:{}", "0".repeat(64));
        req.r#ref = "r3".into();
        req.expected = other.clone();
        req.offset = 0;
        req.data = b"lies".to_vec();
        req.total = 4;
        let err = s.write("local:x", dir.path(), req).unwrap_err();
        assert_eq!(err.code(), tonic::Code::FailedPrecondition);
        assert!(Stores::info(dir.path(), &other).is_err());
        let names: Vec<String> = std::fs::read_dir(dir.path().join("blobs/sha256"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, [digest.trim_start_matches("sha256:")]);
        // Reads, from an offset, in chunks.
        let path = Stores::blob(dir.path(), &digest).unwrap();
        let mut chunks = Vec::new();
        read_blob(&path, 2, 3, &mut |c| {
            chunks.push(c);
            true
        })
        .unwrap();
        assert_eq!(chunks.len(), 1);
        assert_eq!(
            (chunks[0].offset, chunks[0].data.as_slice()),
            (2, &b"lay"[..])
        );
    }

    #[test]
    fn digests_are_checked_before_they_name_files() {
        for bad in ["sha256:../../etc/passwd", "sha512:00", "sha256:ABC", ""] {
            assert!(digest_hex(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn index_names_the_cache_under_its_tag() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(resolve(dir.path(), "latest").unwrap(), None);
        let d1 = format!("sha256:{}", "1".repeat(64));
        let d2 = format!("sha256:{}", "2".repeat(64));
        let desc = |d: &str| {
            format!(
                r#"{{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"{d}","size":10}}"#
            )
        };
        put(dir.path(), "latest", &desc(&d1)).unwrap();
        put(dir.path(), "other", &desc(&d1)).unwrap();
        put(dir.path(), "latest", &desc(&d2)).unwrap();
        assert_eq!(
            resolve(dir.path(), "latest").unwrap().as_deref(),
            Some(d2.as_str())
        );
        assert_eq!(
            resolve(dir.path(), "other").unwrap().as_deref(),
            Some(d1.as_str())
        );
        let index: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("index.json")).unwrap())
                .unwrap();
        assert_eq!(index["schemaVersion"], 2);
        assert_eq!(index["manifests"].as_array().map(Vec::len), Some(2));
        std::fs::write(dir.path().join("index.json"), "{").unwrap();
        assert!(resolve(dir.path(), "latest").is_err());
    }
}
