//! Connecting to the Docker daemon.

use std::path::Path;
use std::time::Duration;

use bollard::{ClientVersion, Docker};

use super::endpoint::{self, Endpoint};
use super::error::DaemonError;
use crate::auth::urlsafe_registry_headers;

/// How long a quick call (ping, version, tag, inspect) may take.
const QUICK: Duration = Duration::from_secs(30);
/// Builds and pushes: the timeout counts the whole upload and every step,
/// so it is effectively off (ten years).
const LONG: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// A connected daemon: one client for quick calls and one without a
/// practical timeout for builds and pushes.
#[derive(Debug, Clone)]
pub struct Daemon {
    /// The client for quick calls (inspect, tag), with bollard's timeout.
    pub quick: Docker,
    /// The client for builds and pushes, without a practical timeout.
    pub long: Docker,
    /// The daemon's address (DOCKER_HOST, the context's, or the default
    /// socket), with the context it came from.
    pub host: String,
    /// Whether the daemon is reached over a local socket.
    pub local: bool,
    /// The daemon's architecture (`amd64`, `arm64`, ...).
    pub arch: Option<String>,
    /// The daemon's version (`28.0.1`), when it reported one.
    pub version: Option<String>,
    /// Where the daemon is, for the connections bollard does not make
    /// (BuildKit sessions).
    pub endpoint: Endpoint,
}

impl Daemon {
    /// The negotiated API version as a path prefix (`v1.41`).
    pub fn api_prefix(&self) -> String {
        let v = self.long.client_version();
        format!("v{}.{}", v.major_version, v.minor_version)
    }
}

/// Installs aws-lc-rs as rustls' process-wide provider (the one the AWS
/// SDK uses too); bollard signs with the process default.
fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    }
}

fn client_for(ep: &Endpoint, version: &ClientVersion) -> Result<Docker, DaemonError> {
    let host = ep.display();
    let other = |e: bollard::errors::Error| DaemonError::Unsupported {
        host: host.clone(),
        reason: describe(&e),
    };
    let timeout = QUICK.as_secs();
    if ep.host.starts_with("ssh://") {
        let target = super::ssh::parse(&ep.host).map_err(|reason| DaemonError::Unsupported {
            host: host.clone(),
            reason,
        })?;
        let transport =
            move |req: bollard::BollardRequest| super::ssh::request(target.clone(), req);
        return Docker::connect_with_custom_transport(
            transport,
            Some("http://docker"),
            timeout,
            version,
        )
        .map_err(other);
    }
    if ep.host.starts_with("unix://") {
        let path = ep.host.trim_start_matches("unix://");
        if !Path::new(path).exists() {
            return Err(DaemonError::Unreachable {
                host,
                reason: format!("no socket at {path}"),
            });
        }
        return Docker::connect_with_unix(&ep.host, timeout, version).map_err(other);
    }
    let is_tcp = ep.host.starts_with("tcp://")
        || ep.host.starts_with("http://")
        || ep.host.starts_with("https://");
    if !is_tcp {
        return Err(DaemonError::Unsupported {
            host,
            reason: "use unix://PATH, tcp://HOST:PORT or https://HOST:PORT".into(),
        });
    }
    match &ep.tls {
        None => Docker::connect_with_http(&ep.host, timeout, version).map_err(other),
        Some(tls) => {
            for (what, path) in [
                ("CA", &tls.ca),
                ("client certificate", &tls.cert),
                ("client key", &tls.key),
            ] {
                if !path.is_file() {
                    return Err(DaemonError::Unsupported {
                        host,
                        reason: format!(
                            "TLS is on (DOCKER_TLS_VERIFY or the context) but the {what} {} does not exist; set DOCKER_CERT_PATH to the directory holding ca.pem, cert.pem and key.pem",
                            path.display()
                        ),
                    });
                }
            }
            install_crypto_provider();
            let host_url = ep.host.replacen("http://", "tcp://", 1);
            Docker::connect_with_ssl(&host_url, &tls.key, &tls.cert, &tls.ca, timeout, version)
                .map_err(other)
        }
    }
}

/// Connects (DOCKER_HOST, the Docker context, or the default socket),
/// negotiates the API version and reads the daemon's architecture.
pub async fn connect() -> Result<Daemon, DaemonError> {
    let ep = endpoint::resolve()?;
    let host = ep.display();
    let local = ep.is_local();
    tracing::info!(host = %host, tls = ep.tls.is_some(), "connecting to the Docker daemon");
    // One request: `/version` answers unversioned, so it also tells which
    // API version to speak (what bollard's negotiation asks it).
    let unreachable = |e: bollard::errors::Error| {
        let reason = describe(&e);
        match &ep.tls {
            Some(tls) if is_tls_failure(&reason) => DaemonError::Tls {
                host: host.clone(),
                reason,
                ca: tls.ca.display().to_string(),
                cert: tls.cert.display().to_string(),
                key: tls.key.display().to_string(),
            },
            _ => DaemonError::Unreachable {
                host: host.clone(),
                reason,
            },
        }
    };
    let base = client_for(&ep, bollard::API_DEFAULT_VERSION)?;
    let version = base.version().await.map_err(unreachable)?;
    let server_api = version
        .api_version
        .as_deref()
        .and_then(parse_api_version)
        .ok_or_else(|| DaemonError::Unsupported {
            host: host.clone(),
            reason: format!(
                "its /version names no API version we can read ({}); is it a Docker daemon?",
                crate::text::excerpt(version.api_version.as_deref().unwrap_or("none"))
            ),
        })?;
    let quick = match server_api < *bollard::API_DEFAULT_VERSION {
        true => client_for(&ep, &server_api)?,
        false => base,
    }
    .with_request_modifier(urlsafe_registry_headers)
    .with_timeout(QUICK);
    let long = quick.clone().with_timeout(LONG);
    Ok(Daemon {
        quick,
        long,
        host,
        local,
        arch: version.arch,
        version: version.version,
        endpoint: ep,
    })
}

/// `1.41` → API version 1.41.
fn parse_api_version(v: &str) -> Option<ClientVersion> {
    let (major, minor) = v.trim().split_once('.')?;
    Some(ClientVersion {
        major_version: major.parse().ok()?,
        minor_version: minor.parse().ok()?,
    })
}

/// A rustls client configuration from a CA and a client certificate and
/// key (PEM files), for connections bollard does not make.
pub fn tls_client_config(tls: &endpoint::TlsFiles) -> std::io::Result<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    install_crypto_provider();
    let pem = |path: &Path, e: rustls::pki_types::pem::Error| {
        std::io::Error::other(format!("{}: {e}", path.display()))
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&tls.ca).map_err(|e| pem(&tls.ca, e))? {
        roots
            .add(cert.map_err(|e| pem(&tls.ca, e))?)
            .map_err(|e| std::io::Error::other(format!("{}: {e}", tls.ca.display())))?;
    }
    let chain = CertificateDer::pem_file_iter(&tls.cert)
        .map_err(|e| pem(&tls.cert, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem(&tls.cert, e))?;
    let key = PrivateKeyDer::from_pem_file(&tls.key).map_err(|e| pem(&tls.key, e))?;
    rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| std::io::Error::other(format!("{}: {e}", tls.cert.display())))
}

fn is_tls_failure(reason: &str) -> bool {
    let r = reason.to_ascii_lowercase();
    ["certificate", "tls", "handshake", "alert", "unknownissuer"]
        .iter()
        .any(|w| r.contains(w))
}

/// An error in a sentence, with its causes (each said once).
pub use crate::error_chain::join as describe;
