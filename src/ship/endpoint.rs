//! Which Docker daemon to talk to, as the docker CLI decides it.
//!
//! 1. `DOCKER_HOST` (with `DOCKER_TLS_VERIFY` and `DOCKER_CERT_PATH`) wins.
//! 2. Otherwise the context named by `DOCKER_CONTEXT`, or `currentContext`
//!    in `$DOCKER_CONFIG/config.json` (default `~/.docker`): its
//!    `contexts/meta/<sha256(name)>/meta.json` holds
//!    `Endpoints.docker.Host` and `SkipTLSVerify`, and
//!    `contexts/tls/<sha256(name)>/docker/{ca,cert,key}.pem` its TLS files.
//! 3. Otherwise the default socket, `unix:///var/run/docker.sock`.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::error::DaemonError;

/// The default socket.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// A resolved daemon endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `unix://...`, `tcp://host:port`, `https://...`, `ssh://...`.
    pub host: String,
    /// Client TLS files, when the connection uses TLS.
    pub tls: Option<TlsFiles>,
    /// Where the endpoint came from, for messages.
    pub source: String,
}

/// The CA, client certificate and key of a TLS connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsFiles {
    fn in_dir(dir: &Path) -> TlsFiles {
        TlsFiles {
            ca: dir.join("ca.pem"),
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        }
    }
}

impl Endpoint {
    /// Whether the daemon is reached over a local socket.
    pub fn is_local(&self) -> bool {
        self.host.starts_with("unix://") || self.host.starts_with("npipe://")
    }

    /// `host` and, when not plain DOCKER_HOST/default, where it came from.
    pub fn display(&self) -> String {
        match self.source.as_str() {
            "DOCKER_HOST" | "default" => self.host.clone(),
            s => format!("{} ({s})", self.host),
        }
    }
}

/// Resolves from the process environment.
pub fn resolve() -> Result<Endpoint, DaemonError> {
    resolve_with(&|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
}

/// Resolves with `env` as the environment (non-empty values only).
pub fn resolve_with(env: &dyn Fn(&str) -> Option<String>) -> Result<Endpoint, DaemonError> {
    let config_dir = env("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".docker")));
    if let Some(host) = env("DOCKER_HOST") {
        let tls = env("DOCKER_TLS_VERIFY").is_some_and(|v| v != "0" && v != "false");
        let tls = match (tls, host.starts_with("https://")) {
            (false, false) => None,
            _ => {
                let dir = env("DOCKER_CERT_PATH")
                    .map(PathBuf::from)
                    .or_else(|| config_dir.clone())
                    .unwrap_or_else(|| PathBuf::from(".docker"));
                Some(TlsFiles::in_dir(&dir))
            }
        };
        return Ok(Endpoint {
            host,
            tls,
            source: "DOCKER_HOST".into(),
        });
    }
    let default = || Endpoint {
        host: DEFAULT_HOST.into(),
        tls: None,
        source: "default".into(),
    };
    let Some(config_dir) = config_dir else {
        return Ok(default());
    };
    let name = match env("DOCKER_CONTEXT") {
        Some(n) => Some((n, "DOCKER_CONTEXT")),
        None => current_context(&config_dir)?.map(|n| (n, "currentContext")),
    };
    let Some((name, why)) = name else {
        return Ok(default());
    };
    if name == "default" {
        return Ok(default());
    }
    context_endpoint(&config_dir, &name, why)
}

/// The daemon of the Docker context `name`, as `docker --context NAME`
/// reaches it (`default`: DOCKER_HOST, else the default socket); `None`:
/// as [`resolve`] decides.
pub fn resolve_context(name: Option<&str>) -> Result<Endpoint, DaemonError> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    match name {
        None => resolve(),
        Some("default") => {
            // DOCKER_HOST's TLS settings apply as for the daemon path.
            let host_only = |k: &str| match k {
                "DOCKER_CONTEXT" => None,
                k => env(k),
            };
            match env("DOCKER_HOST") {
                Some(_) => resolve_with(&host_only),
                None => Ok(Endpoint {
                    host: DEFAULT_HOST.into(),
                    tls: None,
                    source: "context default".into(),
                }),
            }
        }
        Some(name) => {
            let config_dir = env("DOCKER_CONFIG")
                .map(PathBuf::from)
                .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".docker")))
                .ok_or_else(|| DaemonError::Context {
                    name: name.to_string(),
                    reason:
                        "neither DOCKER_CONFIG nor HOME is set: no docker config to read it from"
                            .into(),
                })?;
            context_endpoint(&config_dir, name, "--buildkit-addr")
        }
    }
}

fn unsupported(host: &str, reason: String) -> DaemonError {
    DaemonError::Unsupported {
        host: host.to_string(),
        reason,
    }
}

fn current_context(config_dir: &Path) -> Result<Option<String>, DaemonError> {
    let path = config_dir.join("config.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(DaemonError::Context {
                name: String::new(),
                reason: format!("cannot read {}: {e}", path.display()),
            })
        }
    };
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| DaemonError::Context {
        name: String::new(),
        reason: format!("{} is not valid JSON: {e}", path.display()),
    })?;
    Ok(v.get("currentContext")
        .and_then(|c| c.as_str())
        .filter(|c| !c.is_empty())
        .map(str::to_owned))
}

/// `sha256(name)` in hex: the directory of a context's files.
pub fn context_dir_name(name: &str) -> String {
    Sha256::digest(name.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn context_endpoint(config_dir: &Path, name: &str, why: &str) -> Result<Endpoint, DaemonError> {
    let id = context_dir_name(name);
    let meta_path = config_dir.join("contexts/meta").join(&id).join("meta.json");
    let fail = |reason: String| DaemonError::Context {
        name: name.to_string(),
        reason,
    };
    let text = std::fs::read_to_string(&meta_path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            fail(format!(
                "it does not exist (no {}; selected by {why}); `docker context ls` lists the contexts",
                meta_path.display()
            ))
        } else {
            fail(format!("cannot read {}: {e}", meta_path.display()))
        }
    })?;
    let meta: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| fail(format!("{} is not valid JSON: {e}", meta_path.display())))?;
    let docker = &meta["Endpoints"]["docker"];
    let host = docker["Host"]
        .as_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| {
            fail(format!(
                "{} has no Endpoints.docker.Host",
                meta_path.display()
            ))
        })?
        .to_string();
    let tls_dir = config_dir.join("contexts/tls").join(&id).join("docker");
    let tls = (tls_dir.join("ca.pem").exists() || tls_dir.join("cert.pem").exists())
        .then(|| TlsFiles::in_dir(&tls_dir));
    if docker["SkipTLSVerify"].as_bool() == Some(true) && !host.starts_with("unix://") {
        return Err(unsupported(
            &host,
            format!("context {name:?} sets SkipTLSVerify; reggie-build always verifies the daemon's certificate: give the context the CA (`docker context update {name} --docker \"host={host},ca=/path/ca.pem,cert=...,key=...\"`)"),
        ));
    }
    Ok(Endpoint {
        host,
        tls,
        source: format!("context {name}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn resolve_in(vars: &[(&str, &str)]) -> Result<Endpoint, DaemonError> {
        let map: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        resolve_with(&|k| map.get(k).cloned().filter(|v| !v.is_empty()))
    }

    fn write_context(config: &Path, name: &str, host: &str, skip: bool, tls: bool) {
        let id = context_dir_name(name);
        let meta = config.join("contexts/meta").join(&id);
        std::fs::create_dir_all(&meta).unwrap();
        std::fs::write(
            meta.join("meta.json"),
            serde_json::json!({
                "Name": name,
                "Metadata": {},
                "Endpoints": { "docker": { "Host": host, "SkipTLSVerify": skip } }
            })
            .to_string(),
        )
        .unwrap();
        if tls {
            let dir = config.join("contexts/tls").join(&id).join("docker");
            std::fs::create_dir_all(&dir).unwrap();
            for f in ["ca.pem", "cert.pem", "key.pem"] {
                std::fs::write(dir.join(f), "x").unwrap();
            }
        }
    }

    #[test]
    fn context_dir_is_sha256_of_the_name() {
        // The well-known directory of the `default` context.
        assert_eq!(
            context_dir_name("default"),
            "37a8eec1ce19687d132fe29051dca629d164e2c4958ba141d5f4133a33f0688f"
        );
    }

    #[test]
    fn default_without_anything() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().to_str().unwrap();
        let e = resolve_in(&[("DOCKER_CONFIG", cfg)]).unwrap();
        assert_eq!(e.host, DEFAULT_HOST);
        assert!(e.tls.is_none() && e.is_local());
    }

    #[test]
    fn docker_host_and_tls_verify() {
        let e = resolve_in(&[("DOCKER_HOST", "tcp://10.0.0.1:2375")]).unwrap();
        assert_eq!(
            (e.host.as_str(), e.tls.is_none()),
            ("tcp://10.0.0.1:2375", true)
        );
        assert!(!e.is_local());
        let e = resolve_in(&[
            ("DOCKER_HOST", "tcp://10.0.0.1:2376"),
            ("DOCKER_TLS_VERIFY", "1"),
            ("DOCKER_CERT_PATH", "/certs"),
        ])
        .unwrap();
        let tls = e.tls.unwrap();
        assert_eq!(tls.ca, Path::new("/certs/ca.pem"));
        assert_eq!(tls.key, Path::new("/certs/key.pem"));
        // Without DOCKER_CERT_PATH: the config directory.
        let e = resolve_in(&[
            ("DOCKER_HOST", "tcp://h:2376"),
            ("DOCKER_TLS_VERIFY", "1"),
            ("HOME", "/home/u"),
        ])
        .unwrap();
        assert_eq!(e.tls.unwrap().cert, Path::new("/home/u/.docker/cert.pem"));
    }

    #[test]
    fn contexts_from_env_and_config() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path();
        let cfg = config.to_str().unwrap();
        write_context(config, "remote", "tcp://127.0.0.1:9999", false, false);
        write_context(config, "secure", "tcp://127.0.0.1:9998", false, true);
        write_context(config, "lax", "tcp://127.0.0.1:9997", true, true);

        // DOCKER_CONTEXT selects.
        let e = resolve_in(&[("DOCKER_CONFIG", cfg), ("DOCKER_CONTEXT", "remote")]).unwrap();
        assert_eq!(e.host, "tcp://127.0.0.1:9999");
        assert!(e.tls.is_none());
        assert_eq!(e.source, "context remote");

        // currentContext selects, with TLS files.
        std::fs::write(
            config.join("config.json"),
            r#"{"auths":{},"currentContext":"secure"}"#,
        )
        .unwrap();
        let e = resolve_in(&[("DOCKER_CONFIG", cfg)]).unwrap();
        assert_eq!(e.host, "tcp://127.0.0.1:9998");
        let tls = e.tls.unwrap();
        assert_eq!(
            tls.ca,
            config
                .join("contexts/tls")
                .join(context_dir_name("secure"))
                .join("docker/ca.pem")
        );

        // DOCKER_CONTEXT wins over currentContext; "default" is the socket.
        let e = resolve_in(&[("DOCKER_CONFIG", cfg), ("DOCKER_CONTEXT", "default")]).unwrap();
        assert_eq!(e.host, DEFAULT_HOST);

        // DOCKER_HOST wins over both.
        let e = resolve_in(&[
            ("DOCKER_CONFIG", cfg),
            ("DOCKER_CONTEXT", "remote"),
            ("DOCKER_HOST", "unix:///x.sock"),
        ])
        .unwrap();
        assert_eq!(e.host, "unix:///x.sock");

        // A missing context and SkipTLSVerify are clear errors.
        let err = resolve_in(&[("DOCKER_CONFIG", cfg), ("DOCKER_CONTEXT", "nope")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("\"nope\"") && err.contains("does not exist"),
            "{err}"
        );
        let err = resolve_in(&[("DOCKER_CONFIG", cfg), ("DOCKER_CONTEXT", "lax")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("SkipTLSVerify"), "{err}");
    }
}
