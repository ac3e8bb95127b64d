//! Registry credentials: docker's config file, credential helpers, and the
//! `X-Registry-Auth` header. Below both `ship` (base images' credentials
//! for the build, the daemon connection's header fix) and `publish`
//! (pushes), so neither imports the other for them.
//!
//! Secrets never reach a message: errors name the registry and the source
//! of the credentials, never their value, and [`Credentials`]' `Debug`
//! hides the secret.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use base64::Engine;
use bollard::auth::DockerCredentials;

/// A username and secret for one registry.
#[derive(Clone)]
pub struct Credentials {
    /// The user name (`AWS` for ECR tokens).
    pub username: String,
    /// The password or token; never printed ([`std::fmt::Debug`] hides it).
    pub secret: String,
    /// Where they came from, for messages ("ECR", "docker config", ...).
    pub source: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("secret", &"<redacted>")
            .field("source", &self.source)
            .finish()
    }
}

impl Credentials {
    /// As bollard sends them to the daemon for `serveraddress`.
    pub fn docker(&self, serveraddress: &str) -> DockerCredentials {
        if self.username == "<token>" {
            return DockerCredentials {
                identitytoken: Some(self.secret.clone()),
                serveraddress: Some(serveraddress.to_string()),
                ..Default::default()
            };
        }
        DockerCredentials {
            username: Some(self.username.clone()),
            password: Some(self.secret.clone()),
            serveraddress: Some(serveraddress.to_string()),
            ..Default::default()
        }
    }
}

/// bollard 0.21 encodes `X-Registry-Auth` and `X-Registry-Config` with the
/// standard base64 alphabet, but dockerd decodes them as base64url: a
/// password whose encoding has `+` or `/` is silently dropped and the push
/// fails with "no basic auth credentials". Installed as bollard's request
/// modifier, this re-encodes both headers with the URL-safe alphabet.
pub fn urlsafe_registry_headers(mut req: bollard::BollardRequest) -> bollard::BollardRequest {
    for name in ["x-registry-auth", "x-registry-config"] {
        let Some(value) = req.headers().get(name) else {
            continue;
        };
        let Some(fixed) = value.to_str().ok().and_then(to_urlsafe) else {
            continue;
        };
        if let Ok(v) = http::HeaderValue::from_str(&fixed) {
            req.headers_mut().insert(name, v);
        }
    }
    req
}

/// Standard base64 → URL-safe base64 (padding kept, as Go's URLEncoding).
pub fn to_urlsafe(value: &str) -> Option<String> {
    if !value.contains(['+', '/']) {
        return None;
    }
    let raw = STANDARD.decode(value).ok()?;
    Some(URL_SAFE.encode(raw))
}

/// Docker's client config directory.
fn docker_config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json"))
}

/// Errors looking up credentials.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The docker config file could not be read or parsed.
    #[error("cannot read {path}: {reason}")]
    Config {
        /// The config file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A credential helper failed.
    #[error("credential helper docker-credential-{helper} failed for {registry}: {reason}")]
    Helper {
        /// The helper's name (`docker-credential-NAME`).
        helper: String,
        /// The registry it was asked about.
        registry: String,
        /// What it said, or why it did not run.
        reason: String,
    },
}

/// Credentials for `registry` from docker's config: `credHelpers`, then
/// `auths` (base64 `user:password` or an identity token), then
/// `credsStore`. `None` when nothing is configured for it.
pub fn from_docker_config(registry: &str) -> Result<Option<Credentials>, AuthError> {
    let Some(path) = docker_config_path() else {
        return Ok(None);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(AuthError::Config {
                path,
                reason: e.to_string(),
            })
        }
    };
    let config: serde_json::Value = serde_json::from_str(&text).map_err(|e| AuthError::Config {
        path: path.clone(),
        reason: format!("not valid JSON ({e})"),
    })?;
    let keys = crate::reference::credential_keys(registry);
    if let Some(helpers) = config.get("credHelpers").and_then(|h| h.as_object()) {
        for key in &keys {
            if let Some(helper) = helpers.get(key).and_then(|h| h.as_str()) {
                return run_helper(helper, key);
            }
        }
    }
    if let Some(auths) = config.get("auths").and_then(|a| a.as_object()) {
        for (name, entry) in auths {
            if !keys.iter().any(|k| normalize(name) == normalize(k)) {
                continue;
            }
            if let Some(token) = entry.get("identitytoken").and_then(|t| t.as_str()) {
                return Ok(Some(Credentials {
                    username: "<token>".into(),
                    secret: token.into(),
                    source: format!("identity token in {}", path.display()),
                }));
            }
            if let Some(auth) = entry.get("auth").and_then(|a| a.as_str()) {
                let decoded = STANDARD
                    .decode(auth.trim())
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| AuthError::Config {
                        path: path.clone(),
                        reason: format!("auths.\"{name}\".auth is not base64 of user:password"),
                    })?;
                let (user, pass) = decoded.split_once(':').ok_or_else(|| AuthError::Config {
                    path: path.clone(),
                    reason: format!("auths.\"{name}\".auth is not base64 of user:password"),
                })?;
                return Ok(Some(Credentials {
                    username: user.into(),
                    secret: pass.into(),
                    source: format!("auths in {}", path.display()),
                }));
            }
        }
    }
    if let Some(store) = config.get("credsStore").and_then(|s| s.as_str()) {
        return run_helper(store, &keys[0]);
    }
    Ok(None)
}

fn normalize(name: &str) -> &str {
    let name = name
        .strip_prefix("https://")
        .or_else(|| name.strip_prefix("http://"))
        .unwrap_or(name);
    name.split('/').next().unwrap_or(name)
}

/// `docker-credential-<helper> get`, registry on stdin.
fn run_helper(helper: &str, registry: &str) -> Result<Option<Credentials>, AuthError> {
    let program = format!("docker-credential-{helper}");
    let fail = |reason: String| AuthError::Helper {
        helper: helper.to_string(),
        registry: registry.to_string(),
        reason,
    };
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("cannot run {program}: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(registry.as_bytes());
    }
    let out = child.wait_with_output().map_err(|e| fail(e.to_string()))?;
    if !out.status.success() {
        let stdout = String::from_utf8_lossy(&out.stdout);
        if stdout.contains("credentials not found") {
            return Ok(None);
        }
        // Helpers print their own error, never the secret.
        return Err(fail(format!(
            "exit {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|_| fail("answer is not JSON".into()))?;
    let user = v
        .get("Username")
        .and_then(|u| u.as_str())
        .unwrap_or_default();
    let secret = v.get("Secret").and_then(|u| u.as_str()).unwrap_or_default();
    if secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(Credentials {
        username: user.to_string(),
        secret: secret.to_string(),
        source: format!("docker-credential-{helper}"),
    }))
}

/// An Amazon ECR registry host: builds (ECR cache attributes) and pushes
/// (ECR tokens) both recognise it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EcrHost {
    /// The 12-digit AWS account.
    pub(crate) account: String,
    /// The AWS region (`eu-west-1`).
    pub(crate) region: String,
}

/// Parses `<acct>.dkr.ecr.<region>.amazonaws.com` (and `.com.cn`),
/// `<acct>.dkr.ecr-fips.<region>.amazonaws.com` and
/// `<acct>.dkr-ecr.<region>.on.aws`.
pub(crate) fn parse_ecr_host(host: &str) -> Option<EcrHost> {
    let host = host.to_ascii_lowercase();
    let labels: Vec<&str> = host.split('.').collect();
    let account = *labels.first()?;
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let region = match labels.as_slice() {
        [_, "dkr", "ecr" | "ecr-fips", region, "amazonaws", "com"] => region,
        [_, "dkr", "ecr" | "ecr-fips", region, "amazonaws", "com", "cn"] => region,
        [_, "dkr-ecr" | "dkr-ecr-fips", region, "on", "aws"] => region,
        _ => return None,
    };
    if region.is_empty() {
        return None;
    }
    Some(EcrHost {
        account: account.to_string(),
        region: region.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The regression: a password whose header encoding has `+` and `/`.
    #[test]
    fn registry_auth_is_reencoded_urlsafe() {
        let creds = Credentials {
            username: "reggie".into(),
            secret: "s3cr?t>>~~??ÿÿ-reggie".into(),
            source: "test".into(),
        };
        let json = serde_json::to_string(&creds.docker("127.0.0.1:5000")).unwrap();
        let standard = STANDARD.encode(&json);
        assert!(
            standard.contains('+') && standard.contains('/'),
            "{standard}"
        );
        let req = http::Request::builder()
            .header("X-Registry-Auth", &standard)
            .body(bollard::body_full(bytes::Bytes::new()))
            .unwrap();
        let fixed = urlsafe_registry_headers(req);
        let sent = fixed.headers()["x-registry-auth"].to_str().unwrap();
        assert!(!sent.contains(['+', '/']));
        assert_eq!(URL_SAFE.decode(sent).unwrap(), json.as_bytes());
    }

    #[test]
    fn debug_hides_secret() {
        let c = Credentials {
            username: "u".into(),
            secret: "hunter2".into(),
            source: "s".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn registry_names_normalize() {
        assert_eq!(normalize("https://index.docker.io/v1/"), "index.docker.io");
        assert_eq!(normalize("127.0.0.1:5000"), "127.0.0.1:5000");
    }
}
