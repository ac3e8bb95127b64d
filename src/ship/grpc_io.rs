//! Connections to a BuildKit engine's gRPC API, as buildctl and buildx's
//! remote driver dial `buildkitd --addr`: `tcp://HOST:PORT` (h2c, or TLS
//! with ALPN `h2` and, for mutual TLS, a client certificate) or
//! `unix://PATH`.
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
}

impl Addr {
    /// Parses `tcp://HOST:PORT` or `unix://PATH` (buildctl's `--addr`).
    pub fn parse(addr: &str) -> Result<Addr, String> {
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
                _ => "use tcp://HOST:PORT or unix://PATH".into(),
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

/// Dials the engine once: TCP (or the unix socket), then TLS if set.
async fn dial(
    addr: &Addr,
    tls: Option<&(Arc<rustls::ClientConfig>, String)>,
) -> io::Result<Box<dyn Conn>> {
    let tcp = match addr {
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

/// A gRPC channel to the engine. The first connection is dialed here, so
/// that an unreachable address or a refused handshake fails now, with the
/// I/O error; reconnections dial again.
pub async fn channel(addr: &Addr, tls: &TlsOptions) -> io::Result<Channel> {
    let tls = if tls.enabled() {
        let name = tls.server_name.clone().unwrap_or_else(|| match addr {
            Addr::Tcp { host, .. } => host.clone(),
            Addr::Unix(_) => "localhost".into(),
        });
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
        // The session's file data shares this connection: windows grow
        // with the bandwidth-delay product, as grpc-go's do.
        .http2_adaptive_window(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true)
        .connect_with_connector(connector)
        .await
        .map_err(|e| io::Error::other(super::daemon::describe(&e)))
}

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
        for (bad, says) in [
            ("tcp://host", "needs a port"),
            ("tcp://:1234", "needs a host"),
            ("tcp://h:0", "1 to 65535"),
            ("tcp://h:x", "1 to 65535"),
            ("unix://", "socket path"),
            ("http://h:1", "tcp://HOST:PORT or unix://PATH"),
            ("docker-container://buildx", "not supported"),
            ("h:1234", "tcp://HOST:PORT or unix://PATH"),
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
