//! Connections to a BuildKit engine's gRPC API, as buildctl and buildx's
//! remote driver dial `buildkitd --addr`: `tcp://HOST:PORT` (h2c, or TLS
//! with ALPN `h2` and, for mutual TLS, a client certificate) or
//! `unix://PATH`; `ssh://[USER@]HOST[:PORT][/SOCKET]` runs `buildctl
//! [--addr unix://SOCKET] dial-stdio` there, as buildctl's ssh helper
//! does; `docker-context://[NAME]` is the embedded BuildKit of a Docker
//! daemon (of the context NAME, or the one the daemon path would use),
//! reached as buildx's docker driver reaches it: `POST /grpc` upgraded to
//! h2c on any connection the daemon path makes (unix, tcp, TLS, ssh).
//!
//! Also the session's transport over the Control API: `Control.Session`
//! is a bidirectional stream of `BytesMessage`s that carries the bytes of
//! an HTTP/2 connection on which the engine is the client (buildkit's
//! session/grpchijack), so [`session_stream`] turns it into a byte
//! stream that [`super::session::serve`] serves like the daemon's
//! upgraded `/session`.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bollard_buildkit_proto::moby::buildkit::v1::control_client::ControlClient;
use bollard_buildkit_proto::moby::buildkit::v1::BytesMessage;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::transport::Channel;

use super::session::Conn;

/// How long dialing the engine (TCP and TLS handshake) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// Where the engine listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Addr {
    /// `tcp://HOST:PORT`.
    Tcp { host: String, port: u16 },
    /// `unix://PATH`.
    Unix(PathBuf),
    /// `ssh://[USER@]HOST[:PORT][/SOCKET]`.
    Ssh {
        target: super::ssh::SshTarget,
        /// buildkitd's socket there (buildctl's default when none).
        socket: Option<PathBuf>,
    },
    /// `docker-context://[NAME]`.
    DockerContext(Option<String>),
}

impl Addr {
    /// Parses `tcp://HOST:PORT`, `unix://PATH`, `ssh://...` (buildctl's
    /// `--addr`) or `docker-context://[NAME]`.
    pub fn parse(addr: &str) -> Result<Addr, String> {
        if let Some(rest) = addr.strip_prefix("ssh://") {
            let (hostpart, socket) = match rest.find('/') {
                Some(i) if i + 1 < rest.len() => (&rest[..i], Some(PathBuf::from(&rest[i..]))),
                Some(i) => (&rest[..i], None),
                None => (rest, None),
            };
            let target = super::ssh::parse(&format!("ssh://{hostpart}"))?;
            return Ok(Addr::Ssh { target, socket });
        }
        if let Some(name) = addr.strip_prefix("docker-context://") {
            let name = name.trim_end_matches('/');
            if name.contains(['/', '?', '#']) {
                return Err("docker-context:// takes a context name (`docker context ls`), or nothing for the current one".into());
            }
            return Ok(Addr::DockerContext(
                (!name.is_empty()).then(|| name.to_string()),
            ));
        }
        if let Some(path) = addr.strip_prefix("unix://") {
            if path.is_empty() {
                return Err(
                    "unix:// needs a socket path, e.g. unix:///run/buildkit/buildkitd.sock".into(),
                );
            }
            return Ok(Addr::Unix(PathBuf::from(path)));
        }
        let Some(rest) = addr.strip_prefix("tcp://") else {
            let scheme = addr.split_once("://").map_or("", |(s, _)| s);
            return Err(match scheme {
                "docker-container" | "kube-pod" | "podman-container" | "nerdctl-container" => {
                    format!("{scheme}:// is not supported: expose buildkitd on tcp://HOST:PORT (e.g. kubectl port-forward) or unix://PATH")
                }
                _ => "use tcp://HOST:PORT, unix://PATH, ssh://[USER@]HOST[:PORT][/SOCKET] or docker-context://[NAME]".into(),
            });
        };
        let rest = rest.trim_end_matches('/');
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or("tcp:// needs a port: tcp://HOST:PORT")?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err("tcp:// needs a host: tcp://HOST:PORT".into());
        }
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or("the port must be a number from 1 to 65535")?;
        Ok(Addr::Tcp {
            host: host.to_string(),
            port,
        })
    }
}

impl std::fmt::Display for Addr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Addr::Tcp { host, port } if host.contains(':') => write!(f, "tcp://[{host}]:{port}"),
            Addr::Tcp { host, port } => write!(f, "tcp://{host}:{port}"),
            Addr::Unix(path) => write!(f, "unix://{}", path.display()),
            Addr::Ssh { target, socket } => {
                f.write_str("ssh://")?;
                if let Some(user) = &target.user {
                    write!(f, "{user}@")?;
                }
                match target.host.contains(':') {
                    true => write!(f, "[{}]", target.host)?,
                    false => f.write_str(&target.host)?,
                }
                if let Some(port) = target.port {
                    write!(f, ":{port}")?;
                }
                match socket {
                    Some(s) => write!(f, "{}", s.display()),
                    None => Ok(()),
                }
            }
            Addr::DockerContext(name) => {
                write!(f, "docker-context://{}", name.as_deref().unwrap_or(""))
            }
        }
    }
}

/// TLS to the engine: the CA that signed its certificate, and for mutual
/// TLS a client certificate and key (buildctl's --tlscacert, --tlscert,
/// --tlskey, --tlsservername).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// The CA certificate (PEM) that signed the engine's certificate.
    pub ca: Option<PathBuf>,
    /// The client certificate (PEM), for mutual TLS.
    pub cert: Option<PathBuf>,
    /// The client certificate's key (PEM).
    pub key: Option<PathBuf>,
    /// The name the engine's certificate must carry (default: the host).
    pub server_name: Option<String>,
}

impl TlsOptions {
    /// Whether any TLS option is set (then the connection uses TLS).
    pub fn enabled(&self) -> bool {
        self.ca.is_some() || self.cert.is_some() || self.key.is_some()
    }
}

fn pem_error(path: &Path, e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("{}: {e}", path.display()))
}

/// The rustls configuration of `tls`: roots from the CA file, the client
/// certificate when given, ALPN `h2` (gRPC servers require it).
pub fn tls_config(tls: &TlsOptions) -> io::Result<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    }
    let ca = tls.ca.as_ref().ok_or_else(|| {
        io::Error::other("TLS needs --buildkit-ca, the CA that signed the builder's certificate")
    })?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).map_err(|e| pem_error(ca, e))? {
        roots
            .add(cert.map_err(|e| pem_error(ca, e))?)
            .map_err(|e| pem_error(ca, e))?;
    }
    let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
    let mut config = match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .map_err(|e| pem_error(cert, e))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| pem_error(cert, e))?;
            let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| pem_error(key, e))?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| pem_error(cert, e))?
        }
        (None, None) => builder.with_no_client_auth(),
        (Some(_), None) => return Err(io::Error::other("--buildkit-cert needs --buildkit-key")),
        (None, Some(_)) => return Err(io::Error::other("--buildkit-key needs --buildkit-cert")),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// Dials the engine once: TCP (or the unix socket), then TLS if set; or
/// a process's stdio through ssh; or a Docker daemon's `/grpc`.
async fn dial(
    addr: &Addr,
    tls: Option<&(Arc<rustls::ClientConfig>, String)>,
) -> io::Result<Box<dyn Conn>> {
    let tcp = match addr {
        Addr::Ssh { target, socket } => {
            let socket = socket.as_ref().map(|s| format!("unix://{}", s.display()));
            let mut remote = vec!["buildctl"];
            if let Some(s) = &socket {
                remote.extend(["--addr", s]);
            }
            remote.push("dial-stdio");
            return Ok(Box::new(super::ssh::dial_running(target, &remote)?));
        }
        Addr::DockerContext(name) => return docker_grpc(name.as_deref()).await,
        Addr::Unix(path) => {
            let s = tokio::net::UnixStream::connect(path).await?;
            return match tls {
                None => Ok(Box::new(s)),
                Some((config, name)) => Ok(Box::new(handshake(s, config, name).await?)),
            };
        }
        Addr::Tcp { host, port } => tokio::net::TcpStream::connect((host.as_str(), *port)).await?,
    };
    let _ = tcp.set_nodelay(true);
    match tls {
        None => Ok(Box::new(tcp)),
        Some((config, name)) => Ok(Box::new(handshake(tcp, config, name).await?)),
    }
}

async fn handshake<S: Conn>(
    s: S,
    config: &Arc<rustls::ClientConfig>,
    name: &str,
) -> io::Result<tokio_rustls::client::TlsStream<S>> {
    let name = rustls::pki_types::ServerName::try_from(name.to_string())
        .map_err(|e| io::Error::other(format!("server name {name:?}: {e}")))?;
    tokio_rustls::TlsConnector::from(config.clone())
        .connect(name, s)
        .await
}

/// The BuildKit of the Docker daemon of context `name`: `POST /grpc`,
/// upgraded to h2c, on a connection the daemon path would make.
async fn docker_grpc(name: Option<&str>) -> io::Result<Box<dyn Conn>> {
    use http_body_util::BodyExt;
    let ep = super::endpoint::resolve_context(name).map_err(io::Error::other)?;
    let conn = super::session::dial(&ep).await.map_err(io::Error::other)?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(conn))
        .await
        .map_err(io::Error::other)?;
    tokio::spawn(async move {
        let _ = connection.with_upgrades().await;
    });
    let req = hyper::Request::post("/grpc")
        .header(hyper::header::HOST, "docker")
        .header(hyper::header::CONNECTION, "Upgrade")
        .header(hyper::header::UPGRADE, "h2c")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .map_err(io::Error::other)?;
    let resp = sender.send_request(req).await.map_err(io::Error::other)?;
    if resp.status() != hyper::StatusCode::SWITCHING_PROTOCOLS {
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        return Err(io::Error::other(format!(
            "the Docker daemon at {} answered POST /grpc with {status}: {} (its BuildKit is reached this way since Docker 18.09; is BuildKit enabled there?)",
            ep.display(),
            super::session::daemon_message(&body).unwrap_or_default()
        )));
    }
    let upgraded = hyper::upgrade::on(resp).await.map_err(io::Error::other)?;
    Ok(Box::new(TokioIo::new(upgraded)))
}

/// A gRPC channel to the engine. The first connection is dialed here, so
/// that an unreachable address or a refused handshake fails now, with the
/// I/O error; reconnections dial again.
pub async fn channel(addr: &Addr, tls: &TlsOptions) -> io::Result<Channel> {
    let tls = if tls.enabled() {
        let name = tls.server_name.clone().unwrap_or_else(|| match addr {
            Addr::Tcp { host, .. } => host.clone(),
            Addr::Unix(_) => "localhost".into(),
            Addr::Ssh { target, .. } => target.host.clone(),
            Addr::DockerContext(_) => "docker".into(),
        });
        if matches!(addr, Addr::Ssh { .. } | Addr::DockerContext(_)) {
            return Err(io::Error::other(format!(
                "--buildkit-ca/--buildkit-cert/--buildkit-key apply to tcp:// and unix:// builders; {addr} is secured by ssh or by the Docker context's own TLS files"
            )));
        }
        Some(Arc::new((Arc::new(tls_config(tls)?), name)))
    } else {
        None
    };
    let first = tokio::time::timeout(CONNECT_TIMEOUT, dial(addr, tls.as_deref()))
        .await
        .map_err(|_| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
            )
        })??;
    let first = Arc::new(std::sync::Mutex::new(Some(first)));
    let addr = addr.clone();
    let connector = tower::service_fn(move |_: tonic::transport::Uri| {
        let first = first.lock().ok().and_then(|mut f| f.take());
        let addr = addr.clone();
        let tls = tls.clone();
        async move {
            let conn = match first {
                Some(c) => c,
                None => dial(&addr, tls.as_deref()).await?,
            };
            Ok::<_, io::Error>(TokioIo::new(conn))
        }
    });
    // The URI only names the :authority of requests; the connector dials.
    tonic::transport::Endpoint::from_static("http://buildkitd")
        .connect_timeout(CONNECT_TIMEOUT)
        // The session's file data shares this connection, as many small
        // DATA frames (one fsutil packet each, tunnelled in
        // `Control.Session` messages) when a build reads many small
        // files. h2 closes a connection whose buffered small frames
        // exceed half the connection window (GOAWAY ENHANCE_YOUR_CALM
        // "too_many_data_frames"); an adaptive window starts at 64 KiB,
        // so a first build of ~2,000 files tripped it. Fixed windows
        // keep the budget out of reach within flow control (checked
        // below), as the session's own server does.
        .initial_stream_window_size(CLIENT_STREAM_WINDOW)
        .initial_connection_window_size(CLIENT_CONNECTION_WINDOW)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true)
        .connect_with_connector(connector)
        .await
        .map_err(|e| io::Error::other(super::daemon::describe(&e)))
}

/// Each stream's receive window on the Control API connection: 1 MiB in
/// flight per stream (20 MB/s at a 50 ms round trip).
const CLIENT_STREAM_WINDOW: u32 = 1 << 20;
/// The connection's window, whose half is h2's small-DATA-frame budget.
const CLIENT_CONNECTION_WINDOW: u32 = 1 << 30;
/// Streams this client has open on one connection at most: Solve, Status,
/// Session, and an Info or ListWorkers call, with room to spare.
const CLIENT_STREAMS: u64 = 8;
/// Every stream's window full of the smallest frames (a 5-byte gRPC
/// header and an empty message), each charged 256 - 5 bytes by h2, stays
/// within the budget: flow control stops the builder before h2 would.
const _: () = assert!(
    CLIENT_STREAMS * (CLIENT_STREAM_WINDOW as u64 / 5) * (256 - 5)
        <= CLIENT_CONNECTION_WINDOW as u64 / 2
);

/// Bytes of one `BytesMessage` of the session stream at most.
const CHUNK: usize = 64 * 1024;

/// Opens `Control.Session` with `headers` as its metadata and returns the
/// local end of the byte stream it carries, and the task that copies the
/// engine's messages into it.
pub async fn session_stream(
    client: &mut ControlClient<Channel>,
    headers: &[(&'static str, String)],
) -> Result<(tokio::io::DuplexStream, tokio::task::JoinHandle<()>), tonic::Status> {
    let (ours, theirs) = tokio::io::duplex(4 * CHUNK);
    let (rd, mut wr) = tokio::io::split(theirs);
    let outgoing = futures_util::stream::unfold(rd, |mut rd| async move {
        let mut buf = vec![0u8; CHUNK];
        match rd.read(&mut buf).await {
            Ok(0) | Err(_) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((BytesMessage { data: buf }, rd))
            }
        }
    });
    let mut request = tonic::Request::new(outgoing);
    for (name, value) in headers {
        let key = tonic::metadata::MetadataKey::from_bytes(name.to_ascii_lowercase().as_bytes())
            .map_err(|e| tonic::Status::internal(format!("session header {name}: {e}")))?;
        let value = tonic::metadata::MetadataValue::try_from(value.as_str())
            .map_err(|e| tonic::Status::internal(format!("session header {name}: {e}")))?;
        request.metadata_mut().append(key, value);
    }
    let mut incoming = client.session(request).await?.into_inner();
    let pump = tokio::spawn(async move {
        while let Ok(Some(msg)) = incoming.message().await {
            if wr.write_all(&msg.data).await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    });
    Ok((ours, pump))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_like_buildctl() {
        assert_eq!(
            Addr::parse("tcp://127.0.0.1:1234"),
            Ok(Addr::Tcp {
                host: "127.0.0.1".into(),
                port: 1234
            })
        );
        assert_eq!(
            Addr::parse("tcp://[::1]:1234/").map(|a| a.to_string()),
            Ok("tcp://[::1]:1234".to_string())
        );
        assert_eq!(
            Addr::parse("unix:///run/buildkit/buildkitd.sock"),
            Ok(Addr::Unix("/run/buildkit/buildkitd.sock".into()))
        );
        // buildctl's ssh://[USER@]HOST[:PORT][/SOCKET], shown as given.
        for (given, user, host, port, socket) in [
            (
                "ssh://me@b.example:2222/run/buildkit/buildkitd.sock",
                Some("me"),
                "b.example",
                Some(2222),
                Some("/run/buildkit/buildkitd.sock"),
            ),
            ("ssh://b.example", None, "b.example", None, None),
            ("ssh://[::1]:22/s", None, "::1", Some(22), Some("/s")),
        ] {
            let parsed = Addr::parse(given).unwrap();
            let Addr::Ssh { target, socket: s } = &parsed else {
                panic!("{given}: {parsed:?}")
            };
            assert_eq!(target.user.as_deref(), user, "{given}");
            assert_eq!((target.host.as_str(), target.port), (host, port), "{given}");
            assert_eq!(s.as_deref(), socket.map(Path::new), "{given}");
            assert_eq!(parsed.to_string(), given);
        }
        assert_eq!(
            Addr::parse("docker-context://second"),
            Ok(Addr::DockerContext(Some("second".into())))
        );
        assert_eq!(
            Addr::parse("docker-context://"),
            Ok(Addr::DockerContext(None))
        );
        for (bad, says) in [
            ("tcp://host", "needs a port"),
            ("tcp://:1234", "needs a host"),
            ("tcp://h:0", "1 to 65535"),
            ("tcp://h:x", "1 to 65535"),
            ("unix://", "socket path"),
            ("http://h:1", "use tcp://HOST:PORT, unix://PATH, ssh://"),
            ("docker-container://buildx", "not supported"),
            ("ssh://", "no host name"),
            ("ssh://h:x/s", "not a port number"),
            ("docker-context://a/b", "context name"),
            ("h:1234", "docker-context://[NAME]"),
        ] {
            let err = Addr::parse(bad).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn tls_options_need_their_pairs() {
        assert!(!TlsOptions::default().enabled());
        let no_ca = TlsOptions {
            cert: Some("c.pem".into()),
            key: Some("k.pem".into()),
            ..Default::default()
        };
        assert!(no_ca.enabled());
        let err = tls_config(&no_ca).unwrap_err().to_string();
        assert!(err.contains("--buildkit-ca"), "{err}");
    }
}
