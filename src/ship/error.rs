//! Why a build failed: reaching the daemon ([`DaemonError`]), the
//! BuildKit engine behind `--buildkit-addr` ([`ControlError`]), and the
//! build itself ([`ShipError`], which carries both), each message saying
//! what to do.

use super::{outputs, upload};

/// Errors of a build.
#[derive(Debug, thiserror::Error)]
pub enum ShipError {
    /// The daemon could not be reached.
    #[error(transparent)]
    Daemon(#[from] DaemonError),
    /// The BuildKit engine behind `--buildkit-addr` failed or refused.
    #[error(transparent)]
    Control(#[from] ControlError),
    /// The context could not be read while surveyed or sent.
    #[error("cannot read the build context: {0}")]
    Context(#[from] crate::context::tarball::TarError),
    /// The Dockerfile could not be read.
    #[error("cannot read the Dockerfile: {0}")]
    Dockerfile(crate::input::InputError),
    /// The classic builder's upload failed.
    #[error("uploading the build context failed: {0}")]
    Upload(#[from] upload::UploadError),
    /// A Dockerfile step failed.
    #[error("{}", step_failure(.step, .message, .log_tail))]
    Step {
        /// The failing step, when the builder named it.
        step: Option<String>,
        /// The builder's error.
        message: String,
        /// The step's last output lines.
        log_tail: Vec<String>,
    },
    /// The context's digest during the upload differs from the survey's.
    #[error("the build context changed while it was uploaded (digest {before} before, {after} during); run again")]
    Changed {
        /// Digest from the survey.
        before: String,
        /// Digest of what was sent.
        after: String,
    },
    /// The build stream ended with neither an error nor an image id.
    #[error("the daemon ended the build without an image id")]
    NoImage,
    /// The classic builder's daemon stopped reading the upload.
    #[error("the upload stalled: the daemon read nothing of the build context for {secs} s, after {bytes} bytes; the build is abandoned. Check the daemon (disk space, load) and the connection to it, or allow longer with --idle-timeout (REGGIE_IDLE_TIMEOUT)")]
    Stalled {
        /// Bytes sent before the stall.
        bytes: u64,
        /// The idle timeout that ran out, in seconds.
        secs: u64,
    },
    /// A BuildKit session went idle (no progress, no file requests).
    #[error("the BuildKit session stalled: {what} for {secs} s (file sync: {stats} entries listed, {files} files and {bytes} bytes sent); the build is abandoned. Check the builder (a daemon: `docker info`; its disk space and load) and the connection to it, or allow longer with --idle-timeout (REGGIE_IDLE_TIMEOUT)")]
    SessionStalled {
        /// What the builder stopped doing, in words.
        what: &'static str,
        /// The idle timeout that ran out, in seconds.
        secs: u64,
        /// Entries the file sync listed.
        stats: u64,
        /// Files the file sync sent.
        files: u64,
        /// Bytes the file sync sent.
        bytes: u64,
    },
    /// A daemon or engine API call failed.
    #[error("{what}: {message}")]
    Api {
        /// The call, in words.
        what: String,
        /// Its error.
        message: String,
    },
    /// `--output`, `--cache-*` or `--platform` ask for what the builder cannot do.
    #[error(transparent)]
    Outputs(#[from] outputs::OutputError),
    /// Receiving or writing an `--output` failed.
    #[error("--output: {0}")]
    Export(String),
}

/// Adds what to do to daemon messages whose cause is known.
pub(crate) fn with_hint(message: &str) -> String {
    if message.contains("network bridge not found") {
        return format!(
            "{message} (the daemon has no bridge network, e.g. dockerd --bridge=none: pass --network host or --network none)"
        );
    }
    if message.contains("no basic auth credentials") || message.contains("401 Unauthorized") {
        return format!(
            "{message} (a base image needs credentials: `docker login` its registry, or configure a credential helper in docker's config; ECR registries use your AWS credentials)"
        );
    }
    message.to_string()
}

fn step_failure(step: &Option<String>, message: &str, tail: &[String]) -> String {
    // The step's name and output come from the build: escaped line by
    // line, so an indented `::error::` (GitHub's runner trims a line
    // before matching) or a `##[error]` is not a CI workflow command.
    let mut out = match step {
        Some(step) => format!("build failed at {}: {message}", crate::text::escape(step)),
        None => format!("build failed: {message}"),
    };
    if !tail.is_empty() {
        out.push_str("\n  last output:");
        for l in tail {
            out.push_str("\n    ");
            out.push_str(&crate::text::escape(l));
        }
    }
    out
}

fn unreachable_hint(host: &str) -> &'static str {
    if host.starts_with("ssh://") {
        "Check that `ssh HOST docker system dial-stdio` works from this shell (key, agent, ~/.ssh/config, docker installed there); REGGIE_SSH_COMMAND=\"ssh -F FILE\" passes ssh options"
    } else {
        "Start it (`sudo systemctl start docker`, or `dockerd &`), or point DOCKER_HOST at a running one, e.g. DOCKER_HOST=unix:///run/user/1000/docker.sock or DOCKER_HOST=tcp://127.0.0.1:2375"
    }
}

/// Errors reaching the daemon.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// Connecting or the first API call failed.
    #[error("cannot reach the Docker daemon at {host}: {reason}\n  {}", unreachable_hint(.host))]
    Unreachable {
        /// The daemon's address.
        host: String,
        /// Why.
        reason: String,
    },
    /// DOCKER_HOST names a scheme or form this client does not speak.
    #[error("DOCKER_HOST={host} is not supported: {reason}")]
    Unsupported {
        /// The DOCKER_HOST value.
        host: String,
        /// Why.
        reason: String,
    },
    /// The TLS handshake or the TLS files failed.
    #[error("the TLS connection to the Docker daemon at {host} failed: {reason}\n  Check that {ca} is the CA that signed the daemon's certificate, that the certificate names the host you connect to, and that {cert} and {key} are a client certificate the daemon trusts (DOCKER_CERT_PATH, or the context's TLS files)")]
    Tls {
        /// The daemon's address.
        host: String,
        /// Why.
        reason: String,
        /// The CA file used.
        ca: String,
        /// The client certificate file used.
        cert: String,
        /// The client key file used.
        key: String,
    },
    /// The Docker context in use could not be read.
    #[error("Docker context {name:?}: {reason}")]
    Context {
        /// The context's name.
        name: String,
        /// Why.
        reason: String,
    },
}

/// Errors of the Control API path.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("--buildkit-addr {addr:?}: {reason}")]
    Address { addr: String, reason: String },
    #[error("cannot reach the BuildKit builder at {addr}: {reason}\n  {hint}")]
    Unreachable {
        addr: String,
        reason: String,
        hint: String,
    },
    #[error("the TLS connection to the BuildKit builder at {addr} failed: {reason}\n  {check}")]
    Tls {
        addr: String,
        reason: String,
        check: String,
    },
    #[error("the builder at {addr} is {engine}: {what}. It supports {supported}; {instead}")]
    Unsupported {
        addr: String,
        engine: &'static str,
        what: String,
        supported: &'static str,
        instead: &'static str,
    },
    #[error("{what} on the BuildKit builder at {addr} failed: {message}")]
    Call {
        addr: String,
        what: &'static str,
        message: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_failures_say_what_to_do() {
        assert!(with_hint("network bridge not found").contains("--network host"));
        assert!(with_hint("x: no basic auth credentials").contains("docker login"));
        assert_eq!(with_hint("exit code: 3"), "exit code: 3");
    }
}
