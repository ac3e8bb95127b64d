//! A BuildKit session with the Docker daemon, the docker CLI's way.
//!
//! `POST /session` with `Upgrade: h2c` turns one connection around: the
//! daemon's BuildKit becomes the gRPC client and calls the services this
//! side serves over it: file sync of the build's directories
//! ([`super::filesync`]), registry credentials (`Auth`), build secrets
//! (`Secrets`) and health checks. The headers name the session (its id, a
//! name, the shared key under which BuildKit keeps the last transfer of
//! each directory) and every gRPC method served.
//!
//! The build itself is `POST /build?remote=client-session&session=ID`
//! with no body, on its own connection ([`build_request`]); its response
//! is the same JSON stream as an uploaded build's.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bollard_buildkit_proto::health::health_check_response::ServingStatus;
use bollard_buildkit_proto::health::health_server::{Health, HealthServer};
use bollard_buildkit_proto::health::{
    HealthCheckRequest, HealthCheckResponse, HealthListRequest, HealthListResponse,
};
use bollard_buildkit_proto::moby::buildkit::secrets::v1::secrets_server::{Secrets, SecretsServer};
use bollard_buildkit_proto::moby::buildkit::secrets::v1::{GetSecretRequest, GetSecretResponse};
use bollard_buildkit_proto::moby::filesync::v1::auth_server::{Auth, AuthServer};
use bollard_buildkit_proto::moby::filesync::v1::file_sync_server::FileSyncServer;
use bollard_buildkit_proto::moby::filesync::v1::{
    CredentialsRequest, CredentialsResponse, FetchTokenRequest, FetchTokenResponse,
    GetTokenAuthorityRequest, GetTokenAuthorityResponse, VerifyTokenAuthorityRequest,
    VerifyTokenAuthorityResponse,
};
use bollard_buildkit_proto::moby::sshforward::v1::ssh_server::{Ssh, SshServer};
use bollard_buildkit_proto::moby::sshforward::v1::{
    BytesMessage, CheckAgentRequest, CheckAgentResponse,
};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::endpoint::Endpoint;
use super::filesync::{Counters, FileSyncService, SyncDir};

/// The gRPC methods a session serves, announced in its headers.
const METHODS: &[&str] = &[
    "/grpc.health.v1.Health/Check",
    "/moby.filesync.v1.FileSync/DiffCopy",
    "/moby.filesync.v1.FileSync/TarStream",
    "/moby.filesync.v1.Auth/Credentials",
    "/moby.filesync.v1.Auth/FetchToken",
    "/moby.filesync.v1.Auth/GetTokenAuthority",
    "/moby.filesync.v1.Auth/VerifyTokenAuthority",
    "/moby.buildkit.secrets.v1.Secrets/GetSecret",
    "/moby.sshforward.v1.SSH/CheckAgent",
    "/moby.sshforward.v1.SSH/ForwardAgent",
];

const FILE_SEND: &str = "/moby.filesync.v1.FileSend/DiffCopy";

/// Errors of a session.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("cannot connect to the Docker daemon at {host}: {source}")]
    Dial { host: String, source: io::Error },
    #[error("DOCKER_HOST={host}: {reason}")]
    Unsupported { host: String, reason: String },
    #[error("{what} at {host} failed: {message}")]
    Http {
        what: &'static str,
        host: String,
        message: String,
    },
}

/// Any connection to the daemon.
pub trait Conn: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Conn for T {}

/// Opens one raw connection to the daemon (unix, tcp, TLS or ssh).
pub async fn dial(ep: &Endpoint) -> Result<Box<dyn Conn>, SessionError> {
    let host = ep.display();
    let dial_err = |source: io::Error| SessionError::Dial {
        host: host.clone(),
        source,
    };
    if let Some(path) = ep.host.strip_prefix("unix://") {
        let s = tokio::net::UnixStream::connect(path)
            .await
            .map_err(dial_err)?;
        return Ok(Box::new(s));
    }
    if ep.host.starts_with("ssh://") {
        let target = super::ssh::parse(&ep.host).map_err(|reason| SessionError::Unsupported {
            host: host.clone(),
            reason,
        })?;
        return Ok(Box::new(super::ssh::dial(&target).map_err(dial_err)?));
    }
    let addr = ["tcp://", "http://", "https://"]
        .iter()
        .find_map(|p| ep.host.strip_prefix(p))
        .map(|rest| rest.trim_end_matches('/'))
        .ok_or_else(|| SessionError::Unsupported {
            host: host.clone(),
            reason: "use unix://PATH, tcp://HOST:PORT or https://HOST:PORT".into(),
        })?;
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(dial_err)?;
    let _ = tcp.set_nodelay(true);
    match &ep.tls {
        None => Ok(Box::new(tcp)),
        Some(tls) => {
            let server = addr
                .rsplit_once(':')
                .map_or(addr, |(h, _)| h)
                .trim_start_matches('[')
                .trim_end_matches(']');
            let config = super::daemon::tls_client_config(tls).map_err(dial_err)?;
            let name = rustls::pki_types::ServerName::try_from(server.to_string())
                .map_err(|e| dial_err(io::Error::other(e.to_string())))?;
            let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
            let s = connector.connect(name, tcp).await.map_err(dial_err)?;
            Ok(Box::new(s))
        }
    }
}

/// What a session offers BuildKit.
pub struct Services {
    /// Directories by the name BuildKit asks for.
    pub dirs: HashMap<String, SyncDir>,
    /// Registry credentials by host as BuildKit asks (`registry-1.docker.io`).
    pub credentials: HashMap<String, (String, String)>,
    /// Build secrets by id.
    pub secrets: SecretValues,
    /// ssh agent sockets by id (`--ssh`).
    pub ssh: HashMap<String, std::path::PathBuf>,
    pub counters: Arc<Counters>,
    /// Where an `--output` the daemon sends back is written.
    pub export: Option<super::outputs::Export>,
    pub export_state: Arc<super::filesend::ExportState>,
}

/// Who the session is, for the daemon.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub id: String,
    /// The docker CLI names it after the context directory.
    pub name: String,
    /// Under this key BuildKit keeps each directory's last transfer, so
    /// the next one sends only what changed.
    pub shared_key: String,
}

impl SessionInfo {
    /// The headers that name the session and the methods it serves: HTTP
    /// headers of `POST /session`, gRPC metadata of `Control.Session`
    /// (where BuildKit reads them lower-cased). As the docker CLI, it
    /// offers `FileSend` only when the build exports files.
    pub fn headers(&self, exports_files: bool) -> Vec<(&'static str, String)> {
        let mut h = vec![
            ("X-Docker-Expose-Session-Uuid", self.id.clone()),
            ("X-Docker-Expose-Session-Name", self.name.clone()),
            ("X-Docker-Expose-Session-Sharedkey", self.shared_key.clone()),
        ];
        h.extend(
            METHODS
                .iter()
                .map(|m| ("X-Docker-Expose-Session-Grpc-Method", m.to_string())),
        );
        if exports_files {
            h.push(("X-Docker-Expose-Session-Grpc-Method", FILE_SEND.to_string()));
        }
        h
    }
}

/// Opens the session and serves it until the daemon closes it (or the
/// returned task is aborted).
pub async fn start(
    ep: &Endpoint,
    api: &str,
    info: &SessionInfo,
    services: Services,
) -> Result<tokio::task::JoinHandle<()>, SessionError> {
    let host = ep.display();
    let conn = dial(ep).await?;
    let http_err = |message: String| SessionError::Http {
        what: "opening a BuildKit session (POST /session)",
        host: host.clone(),
        message,
    };
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(conn))
        .await
        .map_err(|e| http_err(e.to_string()))?;
    tokio::spawn(async move {
        let _ = connection.with_upgrades().await;
    });
    let mut req = hyper::Request::post(format!("/{api}/session"))
        .header(hyper::header::HOST, "docker")
        .header(hyper::header::CONNECTION, "Upgrade")
        .header(hyper::header::UPGRADE, "h2c");
    for (name, value) in info.headers(services.export.is_some()) {
        req = req.header(name, value);
    }
    let req = req
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .map_err(|e| http_err(e.to_string()))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| http_err(e.to_string()))?;
    if resp.status() != hyper::StatusCode::SWITCHING_PROTOCOLS {
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        return Err(http_err(format!(
            "{status}: {}",
            daemon_message(&body).unwrap_or_default()
        )));
    }
    let upgraded = hyper::upgrade::on(resp)
        .await
        .map_err(|e| http_err(e.to_string()))?;
    Ok(serve(TokioIo::new(upgraded), services))
}

/// Serves the session's services on `io`, a connection on which the
/// engine is the HTTP/2 client: the daemon's upgraded `/session`, or the
/// bytes of a `Control.Session` stream ([`super::grpc_io`]). The task ends
/// when the engine closes it (or is aborted).
pub fn serve<T: Conn>(io: T, services: Services) -> tokio::task::JoinHandle<()> {
    let io = Served {
        io,
        goaway: GoAwayWatch::new(services.export_state.clone()),
    };
    let router = tonic::transport::Server::builder()
        // The engine is the HTTP/2 client here and sends many small DATA
        // frames (one fsutil packet each: a STAT, a file's few bytes, an
        // empty end-of-file) to the FileSend receiver. h2 closes a
        // connection whose buffered small frames exceed a budget (GOAWAY
        // ENHANCE_YOUR_CALM "too_many_data_frames") that is half the
        // connection window, while the stream windows let the engine
        // buffer far more frames than that whenever the receiver is
        // slower than the engine (writing 100k small files). The limits
        // below make the budget unreachable within flow control (checked
        // where they are defined).
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_concurrent_streams(MAX_STREAMS)
        .add_service(HealthServer::new(HealthService))
        .add_service(
            FileSyncServer::new(FileSyncService::new(services.dirs, services.counters))
                .max_decoding_message_size(16 << 20)
                .max_encoding_message_size(16 << 20),
        )
        .add_service(super::filesend::FileSendServer(
            super::filesend::FileSendService::new(services.export, services.export_state),
        ))
        .add_service(AuthServer::new(AuthService {
            credentials: services.credentials,
        }))
        .add_service(SecretsServer::new(SecretsService {
            secrets: services.secrets,
        }))
        .add_service(SshServer::new(SshService {
            agents: services.ssh,
        }));
    tokio::spawn(async move {
        let incoming = futures_util::stream::iter([Ok::<_, io::Error>(io)]);
        if let Err(e) = router.serve_with_incoming(incoming).await {
            tracing::debug!(error = %e, "the BuildKit session ended");
        }
    })
}

/// Each stream's receive window: what the engine may send on one stream
/// before the session reads it.
const STREAM_WINDOW: u32 = 256 << 10;
/// Streams the engine may open at once (BuildKit opens a handful: health,
/// a file sync per local directory, the file send, auth, secrets, ssh).
const MAX_STREAMS: u32 = 32;
/// The connection's window, whose half is h2's small-DATA-frame budget.
const CONNECTION_WINDOW: u32 = 1 << 30;
/// The smallest DATA frame a gRPC peer sends with a message: the 5-byte
/// message header and an empty message (fsutil's final empty STAT).
const MIN_FRAME: u64 = 5;
/// h2 charges each DATA frame under 256 bytes `256 - len` against its
/// budget (h2 0.4.20, `DEFAULT_DATA_FRAME_OVERHEAD_THRESHOLD`).
const FRAME_CHARGE: u64 = 256;
/// Every stream's window full of the smallest frames stays within the
/// budget: flow control stops the engine before h2 would.
const _: () = assert!(
    MAX_STREAMS as u64 * (STREAM_WINDOW as u64 / MIN_FRAME) * (FRAME_CHARGE - MIN_FRAME)
        <= CONNECTION_WINDOW as u64 / 2
);

/// Aborts a task when dropped: the session's tasks end with the build,
/// whatever way it ends.
pub struct AbortOnDrop(pub tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The `message` of a daemon's JSON error body.
pub fn daemon_message(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Msg {
        message: String,
    }
    serde_json::from_slice::<Msg>(body)
        .ok()
        .map(|m| m.message)
        .or_else(|| {
            let s = String::from_utf8_lossy(body).trim().to_string();
            (!s.is_empty()).then_some(s)
        })
}

/// A session connection, as tonic's server takes a connection.
struct Served<T> {
    io: T,
    goaway: GoAwayWatch,
}

/// Watches the HTTP/2 frames the session writes for a GOAWAY with an error
/// (h2 refusing the engine's traffic, say): the true cause of a transfer
/// the engine then reports only as "transport is closing". Reads frame
/// headers only, skipping payloads, so it costs nothing per byte.
struct GoAwayWatch {
    state: Arc<super::filesend::ExportState>,
    header: [u8; 9],
    have: usize,
    /// Payload bytes of the current frame still to pass.
    skip: usize,
    /// The current frame's payload, kept when it is a GOAWAY (capped).
    goaway: Option<Vec<u8>>,
}

impl GoAwayWatch {
    fn new(state: Arc<super::filesend::ExportState>) -> GoAwayWatch {
        GoAwayWatch {
            state,
            header: [0; 9],
            have: 0,
            skip: 0,
            goaway: None,
        }
    }

    /// Follows the frames in `written`, the bytes just written.
    fn saw(&mut self, mut written: &[u8]) {
        while !written.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(written.len());
                if let Some(p) = self.goaway.as_mut() {
                    let room = 4096usize.saturating_sub(p.len());
                    p.extend_from_slice(&written[..n.min(room)]);
                }
                self.skip -= n;
                written = &written[n..];
                if self.skip == 0 {
                    if let Some(p) = self.goaway.take() {
                        self.report(&p);
                    }
                }
                continue;
            }
            let n = (9 - self.have).min(written.len());
            self.header[self.have..self.have + n].copy_from_slice(&written[..n]);
            self.have += n;
            written = &written[n..];
            if self.have == 9 {
                self.have = 0;
                let len = u32::from_be_bytes([0, self.header[0], self.header[1], self.header[2]]);
                self.skip = len as usize;
                // Frame type 7: GOAWAY.
                self.goaway = (self.header[3] == 7).then(Vec::new);
                if self.skip == 0 {
                    if let Some(p) = self.goaway.take() {
                        self.report(&p);
                    }
                }
            }
        }
    }

    /// A GOAWAY's payload: last stream id, error code, debug data.
    fn report(&self, payload: &[u8]) {
        let Some(code) = payload.get(4..8) else {
            return;
        };
        let code = u32::from_be_bytes([code[0], code[1], code[2], code[3]]);
        if code == 0 {
            return;
        }
        let name = match code {
            1 => "PROTOCOL_ERROR",
            2 => "INTERNAL_ERROR",
            3 => "FLOW_CONTROL_ERROR",
            6 => "FRAME_SIZE_ERROR",
            11 => "ENHANCE_YOUR_CALM",
            _ => "",
        };
        let debug = crate::text::excerpt(&String::from_utf8_lossy(&payload[8..]));
        self.state.connection_failed(format!(
            "this client's HTTP/2 server closed the session connection: GOAWAY {name} (code {code}){}",
            if debug.is_empty() { String::new() } else { format!(", {debug}") }
        ));
    }
}

impl<T> tonic::transport::server::Connected for Served<T> {
    type ConnectInfo = ();
    fn connect_info(&self) {}
}

impl<T: Conn> AsyncRead for Served<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: Conn> AsyncWrite for Served<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let me = &mut *self;
        let written = Pin::new(&mut me.io).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = written {
            me.goaway.saw(&buf[..n]);
        }
        written
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// The body of a build response, as a stream of byte chunks.
pub type BuildBody = hyper::body::Incoming;

/// `POST /build` for a session build (no body); returns the response
/// body once the daemon accepted the request.
pub async fn build_request(
    ep: &Endpoint,
    api: &str,
    query: &str,
) -> Result<BuildBody, SessionError> {
    let host = ep.display();
    let http_err = |message: String| SessionError::Http {
        what: "the build request (POST /build)",
        host: host.clone(),
        message,
    };
    let conn = dial(ep).await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(conn))
        .await
        .map_err(|e| http_err(e.to_string()))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let req = hyper::Request::post(format!("/{api}/build?{query}"))
        .header(hyper::header::HOST, "docker")
        .header(hyper::header::CONTENT_TYPE, "application/x-tar")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .map_err(|e| http_err(e.to_string()))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| http_err(e.to_string()))?;
    if !resp.status().is_success() {
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        return Err(http_err(format!(
            "{status}: {}",
            daemon_message(&body).unwrap_or_default()
        )));
    }
    Ok(resp.into_body())
}

/// The docker CLI's shared key: sha256 of its node id and the context
/// directory as given, so rebuilds of the same directory from this machine
/// reuse BuildKit's copy of the last transfer, ours and the docker CLI's
/// alike.
pub fn shared_key(context_dir: &std::path::Path) -> String {
    let dir = std::env::var_os("DOCKER_CONFIG")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".docker")))
        .unwrap_or_else(|| std::path::PathBuf::from(".docker"));
    shared_key_with(&node_id_in(&dir), context_dir)
}

fn shared_key_with(node_id: &str, context_dir: &std::path::Path) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(node_id.as_bytes());
    h.update(b":");
    h.update(context_dir.as_os_str().as_encoded_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The docker CLI's node id: 32 random bytes in hex kept in
/// `$DOCKER_CONFIG/.buildNodeID` (default `~/.docker`), created when
/// missing; the config directory's path when it cannot be kept.
fn node_id_in(dir: &std::path::Path) -> String {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let fallback = dir.display().to_string();
    let file = dir.join(".buildNodeID");
    if std::fs::symlink_metadata(&file).is_err() {
        let mut random = [0u8; 32];
        let read = std::fs::File::open("/dev/urandom")
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut random));
        if read.is_err() {
            return fallback;
        }
        let id: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let created = std::fs::create_dir_all(dir).and_then(|_| {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&file)?
                .write_all(id.as_bytes())
        });
        if created.is_err() {
            return fallback;
        }
    }
    std::fs::read_to_string(&file).unwrap_or(fallback)
}

struct HealthService;

#[tonic::async_trait]
impl Health for HealthService {
    async fn check(
        &self,
        _request: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<HealthCheckResponse>, tonic::Status> {
        Ok(tonic::Response::new(HealthCheckResponse {
            status: ServingStatus::Serving as i32,
        }))
    }

    async fn list(
        &self,
        _request: tonic::Request<HealthListRequest>,
    ) -> Result<tonic::Response<HealthListResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("List"))
    }

    type WatchStream = Pin<
        Box<dyn futures_util::Stream<Item = Result<HealthCheckResponse, tonic::Status>> + Send>,
    >;

    async fn watch(
        &self,
        _request: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<Self::WatchStream>, tonic::Status> {
        Err(tonic::Status::unimplemented("Watch"))
    }
}

struct AuthService {
    credentials: HashMap<String, (String, String)>,
}

#[tonic::async_trait]
impl Auth for AuthService {
    async fn credentials(
        &self,
        request: tonic::Request<CredentialsRequest>,
    ) -> Result<tonic::Response<CredentialsResponse>, tonic::Status> {
        let host = &request.get_ref().host;
        // Unknown hosts get empty credentials: an anonymous pull.
        let (username, secret) = self.credentials.get(host).cloned().unwrap_or_default();
        Ok(tonic::Response::new(CredentialsResponse {
            username,
            secret,
        }))
    }

    async fn fetch_token(
        &self,
        _request: tonic::Request<FetchTokenRequest>,
    ) -> Result<tonic::Response<FetchTokenResponse>, tonic::Status> {
        Err(token_fetching_off())
    }

    async fn get_token_authority(
        &self,
        _request: tonic::Request<GetTokenAuthorityRequest>,
    ) -> Result<tonic::Response<GetTokenAuthorityResponse>, tonic::Status> {
        // Unavailable makes BuildKit fetch tokens itself with Credentials.
        Err(token_fetching_off())
    }

    async fn verify_token_authority(
        &self,
        _request: tonic::Request<VerifyTokenAuthorityRequest>,
    ) -> Result<tonic::Response<VerifyTokenAuthorityResponse>, tonic::Status> {
        Err(token_fetching_off())
    }
}

/// Build secret values by id; their `Debug` shows the ids only.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretValues(pub HashMap<String, Vec<u8>>);

impl std::fmt::Debug for SecretValues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut ids: Vec<&String> = self.0.keys().collect();
        ids.sort();
        write!(f, "SecretValues({ids:?}, values hidden)")
    }
}

struct SecretsService {
    secrets: SecretValues,
}

#[tonic::async_trait]
impl Secrets for SecretsService {
    async fn get_secret(
        &self,
        request: tonic::Request<GetSecretRequest>,
    ) -> Result<tonic::Response<GetSecretResponse>, tonic::Status> {
        let id = &request.get_ref().id;
        match self.secrets.0.get(id) {
            Some(data) => Ok(tonic::Response::new(GetSecretResponse {
                data: data.clone(),
            })),
            None => Err(tonic::Status::not_found(format!(
                "secret {id:?} was not given: pass --secret id={id},src=PATH or id={id},env=VAR"
            ))),
        }
    }
}

/// Credentials as the session's Auth service answers them.
pub fn session_credentials(
    creds: &BTreeMap<String, crate::auth::Credentials>,
) -> HashMap<String, (String, String)> {
    creds
        .iter()
        .map(|(registry, c)| {
            let host = crate::reference::api_host(registry);
            (host.to_string(), (c.username.clone(), c.secret.clone()))
        })
        .collect()
}

/// Splits a build response into its JSON objects (one per line).
#[derive(Default)]
pub struct JsonLines {
    partial: Vec<u8>,
}

/// A JSON line longer than this is not progress: the stream is broken.
const MAX_LINE: usize = 64 << 20;

impl JsonLines {
    /// Adds a chunk; returns the objects it completed.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<bollard::models::BuildInfo>, String> {
        self.partial.extend_from_slice(chunk);
        let mut out = Vec::new();
        let mut start = 0;
        while let Some(pos) = self.partial[start..].iter().position(|&b| b == b'\n') {
            let line = self.partial[start..start + pos].trim_ascii();
            start += pos + 1;
            if line.is_empty() {
                continue;
            }
            match serde_json::from_slice::<bollard::models::BuildInfo>(line) {
                Ok(info) => out.push(info),
                Err(e) => {
                    let excerpt: String = String::from_utf8_lossy(&line[..line.len().min(80)])
                        .escape_debug()
                        .collect();
                    return Err(format!("not a progress message ({e}): {excerpt}"));
                }
            }
        }
        self.partial.drain(..start);
        if self.partial.len() > MAX_LINE {
            return Err(format!(
                "a progress message longer than {} MiB",
                MAX_LINE >> 20
            ));
        }
        Ok(out)
    }
}

/// Forwards `RUN --mount=type=ssh` connections to local ssh agents.
struct SshService {
    agents: HashMap<String, std::path::PathBuf>,
}

impl SshService {
    fn agent(&self, id: &str) -> Result<&std::path::PathBuf, tonic::Status> {
        let id = if id.is_empty() { "default" } else { id };
        self.agents.get(id).ok_or_else(|| {
            tonic::Status::not_found(format!(
                "no ssh agent for id {id:?}: pass --ssh {id}=SOCKET (or --ssh default with SSH_AUTH_SOCK set)"
            ))
        })
    }
}

type BytesStream =
    Pin<Box<dyn futures_util::Stream<Item = Result<BytesMessage, tonic::Status>> + Send>>;

#[tonic::async_trait]
impl Ssh for SshService {
    async fn check_agent(
        &self,
        request: tonic::Request<CheckAgentRequest>,
    ) -> Result<tonic::Response<CheckAgentResponse>, tonic::Status> {
        self.agent(&request.get_ref().id)?;
        Ok(tonic::Response::new(CheckAgentResponse {}))
    }

    type ForwardAgentStream = BytesStream;

    async fn forward_agent(
        &self,
        request: tonic::Request<tonic::Streaming<BytesMessage>>,
    ) -> Result<tonic::Response<BytesStream>, tonic::Status> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let id = request
            .metadata()
            .get("buildkit.ssh.id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let path = self.agent(&id)?.clone();
        let conn = tokio::net::UnixStream::connect(&path).await.map_err(|e| {
            tonic::Status::unavailable(format!("ssh agent {}: {e}", path.display()))
        })?;
        let (rd, mut wr) = conn.into_split();
        let mut incoming = request.into_inner();
        tokio::spawn(async move {
            while let Ok(Some(msg)) = incoming.message().await {
                if wr.write_all(&msg.data).await.is_err() {
                    return;
                }
            }
            let _ = wr.shutdown().await;
        });
        let out = futures_util::stream::unfold(rd, |mut rd| async move {
            let mut buf = vec![0u8; 32 * 1024];
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(BytesMessage { data: buf }), rd))
                }
            }
        });
        Ok(tonic::Response::new(Box::pin(out)))
    }
}

/// The answer to BuildKit's token calls: Unavailable makes it fetch
/// tokens itself, with the credentials the session gives.
fn token_fetching_off() -> tonic::Status {
    tonic::Status::unavailable("client-side token fetching is off")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_split_across_chunks() {
        let mut lines = JsonLines::default();
        assert!(lines
            .push(b"{\"stream\":\"Step 1/2 : FROM")
            .unwrap()
            .is_empty());
        let got = lines
            .push(b" x\\n\"}\r\n\r\n{\"aux\":{\"ID\":\"sha256:ab\"}}\n{\"errorDetail\":{\"message\":\"boom\"}}\n")
            .unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].stream.as_deref(), Some("Step 1/2 : FROM x\n"));
        assert!(matches!(
            &got[1].aux,
            Some(bollard::models::BuildInfoAux::Default(bollard::models::ImageId { id: Some(id) })) if id == "sha256:ab"
        ));
        assert_eq!(
            got[2]
                .error_detail
                .as_ref()
                .and_then(|d| d.message.as_deref()),
            Some("boom")
        );
        let err = lines.push(b"<html>bad gateway\n").unwrap_err();
        assert!(err.contains("<html>bad gateway"), "{err}");
    }

    #[test]
    fn daemon_messages() {
        assert_eq!(
            daemon_message(br#"{"message":"session not found"}"#).as_deref(),
            Some("session not found")
        );
        assert_eq!(
            daemon_message(b"plain text\n").as_deref(),
            Some("plain text")
        );
        assert_eq!(daemon_message(b""), None);
    }

    #[test]
    fn shared_key_follows_the_docker_cli() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("docker");
        // Created once, 64 hex digits, then read back unchanged.
        let node = node_id_in(&config);
        assert_eq!(node.len(), 64, "{node}");
        assert!(node.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(node_id_in(&config), node);
        use sha2::Digest;
        let want: String = sha2::Sha256::digest(format!("{node}:.").as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(shared_key_with(&node, std::path::Path::new(".")), want);
        assert_ne!(
            shared_key_with(&node, std::path::Path::new("backend")),
            want
        );
    }
}
