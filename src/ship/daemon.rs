//! Connecting to the Docker daemon.

use std::time::Duration;

use bollard::Docker;

use crate::publish::auth::urlsafe_registry_headers;

/// How long a quick call (ping, version, tag, inspect) may take.
const QUICK: Duration = Duration::from_secs(30);
/// Builds and pushes: the timeout counts the whole upload and every step,
/// so it is effectively off (ten years).
const LONG: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// A connected daemon: one client for quick calls and one without a
/// practical timeout for builds and pushes.
#[derive(Debug, Clone)]
pub struct Daemon {
    pub quick: Docker,
    pub long: Docker,
    /// What DOCKER_HOST said (or the default socket).
    pub host: String,
    /// Whether the daemon is reached over a local socket.
    pub local: bool,
    /// The daemon's architecture (`amd64`, `arm64`, ...).
    pub arch: Option<String>,
    pub version: Option<String>,
}

/// Errors reaching the daemon.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot reach the Docker daemon at {host}: {reason}\n  Start it (`sudo systemctl start docker`, or `dockerd &`), or point DOCKER_HOST at a running one, e.g. DOCKER_HOST=unix:///run/user/1000/docker.sock or DOCKER_HOST=tcp://127.0.0.1:2375")]
    Unreachable { host: String, reason: String },
    #[error("DOCKER_HOST={host} is not supported: {reason}")]
    Unsupported { host: String, reason: String },
}

/// The DOCKER_HOST in effect.
pub fn docker_host() -> String {
    std::env::var("DOCKER_HOST")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unix:///var/run/docker.sock".to_string())
}

/// Connects (DOCKER_HOST or the default socket), negotiates the API
/// version and reads the daemon's architecture.
pub async fn connect() -> Result<Daemon, DaemonError> {
    let host = docker_host();
    let local = host.starts_with("unix://") || host.starts_with('/');
    if host.starts_with("ssh://") {
        return Err(DaemonError::Unsupported {
            host,
            reason: "ssh:// hosts are not supported yet; forward the socket (`ssh -L /tmp/d.sock:/var/run/docker.sock host`) and use DOCKER_HOST=unix:///tmp/d.sock".into(),
        });
    }
    let base = Docker::connect_with_defaults()
        .map_err(|e| match e {
            bollard::errors::Error::SocketNotFoundError(path) => DaemonError::Unreachable {
                host: host.clone(),
                reason: format!("no socket at {path}"),
            },
            other => DaemonError::Unsupported {
                host: host.clone(),
                reason: other.to_string(),
            },
        })?
        .with_request_modifier(urlsafe_registry_headers)
        .with_timeout(QUICK);
    let unreachable = |e: bollard::errors::Error| DaemonError::Unreachable {
        host: host.clone(),
        reason: describe(&e),
    };
    base.ping().await.map_err(unreachable)?;
    let quick = base.negotiate_version().await.map_err(unreachable)?;
    let version = quick.version().await.map_err(unreachable)?;
    let long = quick.clone().with_timeout(LONG);
    Ok(Daemon {
        quick,
        long,
        host,
        local,
        arch: version.arch,
        version: version.version,
    })
}

/// A bollard error in a sentence, with its causes.
pub fn describe(e: &bollard::errors::Error) -> String {
    let mut out = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}
