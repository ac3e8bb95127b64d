//! `ssh://` daemons, the docker CLI's way: every connection is a process
//! `ssh [-l USER] [-p PORT] HOST -- docker system dial-stdio`, and HTTP
//! runs over its stdin and stdout. ssh's own configuration (keys, agent,
//! `~/.ssh/config`, known hosts) applies unchanged; `REGGIE_SSH_COMMAND`
//! replaces the `ssh` command itself (e.g. `ssh -F ./ssh_config`), as
//! `GIT_SSH_COMMAND` does for git.
//!
//! And `--ssh`, as the docker CLI takes it (`default|ID[=SOCKET|KEY[,KEY]]`):
//! an agent socket is forwarded as it is; key files are served by a
//! private `ssh-agent` started for the build (where buildx runs an agent
//! in-process), in a 0700 directory of its own, killed and removed when
//! the build ends ([`SshAgents`] drops).

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Stdio;
use std::task::{Context, Poll};

use bollard::BollardRequest;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::process::{ChildStdin, ChildStdout};

/// Where `ssh://[USER@]HOST[:PORT]` points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

/// Parses `ssh://[USER@]HOST[:PORT]` (a path, as in `ssh://host/x`, is
/// refused: the docker CLI refuses it too).
pub fn parse(url: &str) -> Result<SshTarget, String> {
    let rest = url
        .strip_prefix("ssh://")
        .ok_or_else(|| format!("{url} is not an ssh:// address"))?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains('/') || rest.contains('?') {
        return Err(format!(
            "{url}: an ssh:// address takes no path; use ssh://[USER@]HOST[:PORT]"
        ));
    }
    let (user, hostport) = match rest.rsplit_once('@') {
        Some((u, h)) if !u.is_empty() => (Some(u.to_string()), h),
        Some(_) => return Err(format!("{url}: the user before @ is empty")),
        None => (None, rest),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) if !hostport.starts_with('[') || h.ends_with(']') => {
            let port = p
                .parse::<u16>()
                .map_err(|_| format!("{url}: {p:?} is not a port number"))?;
            (h.trim_start_matches('[').trim_end_matches(']'), Some(port))
        }
        _ => (hostport.trim_start_matches('[').trim_end_matches(']'), None),
    };
    if host.is_empty() || host.starts_with('-') {
        return Err(format!("{url}: no host name"));
    }
    Ok(SshTarget {
        user,
        host: host.to_string(),
        port,
    })
}

impl SshTarget {
    /// The command that opens one connection to the daemon.
    pub fn command(&self) -> tokio::process::Command {
        self.command_running(&["docker", "system", "dial-stdio"])
    }

    /// `ssh ... HOST -- REMOTE...`: the command that runs `remote` there
    /// with its stdin and stdout as the connection.
    pub fn command_running(&self, remote: &[&str]) -> tokio::process::Command {
        let configured = std::env::var("REGGIE_SSH_COMMAND").unwrap_or_default();
        let mut words = configured.split_whitespace();
        let mut cmd = tokio::process::Command::new(words.next().unwrap_or("ssh"));
        cmd.args(words);
        // Never prompt: nobody can answer on a CI runner, and a prompt
        // would read the HTTP stream.
        cmd.args(["-o", "BatchMode=yes", "-T"]);
        if let Some(user) = &self.user {
            cmd.args(["-l", user]);
        }
        if let Some(port) = self.port {
            cmd.args(["-p", &port.to_string()]);
        }
        cmd.args(["--", &self.host]);
        cmd.args(remote);
        cmd
    }
}

/// The child's stdout and stdin as one duplex stream.
pub struct Stdio2 {
    out: ChildStdout,
    inp: ChildStdin,
    /// Killed when the stream is dropped.
    _child: Option<tokio::process::Child>,
}

/// Opens one raw connection through `ssh HOST docker system dial-stdio`
/// (for connections bollard does not make: BuildKit sessions).
pub fn dial(target: &SshTarget) -> io::Result<Stdio2> {
    dial_running(target, &["docker", "system", "dial-stdio"])
}

/// Opens one raw connection through `ssh HOST REMOTE...` (`buildctl
/// dial-stdio` for a buildkitd there).
pub fn dial_running(target: &SshTarget, remote: &[&str]) -> io::Result<Stdio2> {
    let mut child = target
        .command_running(remote)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot run ssh: {e}")))?;
    let (Some(out), Some(inp)) = (child.stdout.take(), child.stdin.take()) else {
        return Err(io::Error::other("ssh started without its pipes"));
    };
    Ok(Stdio2 {
        out,
        inp,
        _child: Some(child),
    })
}

impl AsyncRead for Stdio2 {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.out).poll_read(cx, buf)
    }
}

impl AsyncWrite for Stdio2 {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inp).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inp).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inp).poll_shutdown(cx)
    }
}

/// Sends one request over a fresh `dial-stdio` connection.
pub async fn request(
    target: SshTarget,
    mut req: BollardRequest,
) -> Result<hyper::Response<hyper::body::Incoming>, bollard::errors::Error> {
    let mut child = target
        .command()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot run ssh: {e}")))?;
    let (Some(out), Some(inp), Some(mut stderr)) =
        (child.stdout.take(), child.stdin.take(), child.stderr.take())
    else {
        return Err(io::Error::other("ssh started without its pipes").into());
    };
    // One connection per request: the request line takes the path alone,
    // and Go's server wants a Host header.
    let path = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    *req.uri_mut() = path
        .parse()
        .map_err(|e: hyper::http::uri::InvalidUri| io::Error::other(e.to_string()))?;
    req.headers_mut()
        .entry(hyper::header::HOST)
        .or_insert(hyper::header::HeaderValue::from_static("docker"));

    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(Stdio2 {
        out,
        inp,
        _child: None,
    }))
    .await?;
    tokio::spawn(async move {
        // Upgrades carry BuildKit's session; ssh ends with the connection.
        let _ = conn.with_upgrades().await;
        let _ = child.kill().await;
    });
    match sender.send_request(req).await {
        Ok(response) => Ok(response),
        Err(e) => {
            // ssh says why on stderr (host unknown, key refused, no docker).
            let mut why = Vec::new();
            let _ = tokio::time::timeout(
                std::time::Duration::from_secs(2),
                stderr.read_to_end(&mut why),
            )
            .await;
            let why = String::from_utf8_lossy(&why).trim().to_string();
            if why.is_empty() {
                Err(e.into())
            } else {
                Err(io::Error::other(format!("{e}; ssh said: {why}")).into())
            }
        }
    }
}

/// Errors in `--ssh`.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    /// The spec or one of its paths is wrong.
    #[error("--ssh {spec:?}: {why}")]
    Spec {
        /// The spec as given (ids and paths, never key contents).
        spec: String,
        /// What is wrong and what to do.
        why: String,
    },
    /// `ssh-agent` or `ssh-add` is not installed.
    #[error("--ssh {spec:?}: key files are served by a private agent, but {program} cannot run ({why}); install openssh-client (apt-get install openssh-client, apk add openssh-client), or load the keys into your own agent and pass --ssh default")]
    Missing {
        /// The spec with key files.
        spec: String,
        /// `ssh-agent` or `ssh-add`.
        program: String,
        /// Why it could not start.
        why: String,
    },
    /// The key is protected by a passphrase.
    #[error("--ssh {spec:?}: {} is protected by a passphrase, which reggie-build does not ask for; load it into your agent (ssh-add {}) and pass --ssh default, or --ssh ID=$SSH_AUTH_SOCK", crate::text::show_path(path), crate::text::shell_word(&crate::text::show_path(path)))]
    Encrypted {
        /// The spec with key files.
        spec: String,
        /// The key file.
        path: PathBuf,
    },
    /// The private agent did not start, or refused a key.
    #[error("--ssh {spec:?}: {why}")]
    Agent {
        /// The spec with key files.
        spec: String,
        /// What failed, with the tool's own message.
        why: String,
    },
}

/// `--ssh` resolved: an agent socket for each id, some of them private
/// agents serving key files, which live as long as this value.
#[derive(Debug, Default)]
pub struct SshAgents {
    sockets: HashMap<String, PathBuf>,
    private: Vec<KeyAgent>,
}

impl SshAgents {
    /// The agent socket of each id, as the session forwards them.
    pub fn sockets(&self) -> &HashMap<String, PathBuf> {
        &self.sockets
    }
}

/// Resolves every `--ssh` spec: `default` ($SSH_AUTH_SOCK), `ID=SOCKET`
/// (an agent socket), or `ID=KEY[,KEY]` (key files, loaded into a private
/// agent started here; the keys are read by `ssh-add` alone).
pub fn parse_ssh(specs: &[String]) -> Result<SshAgents, SshError> {
    parse_ssh_with(specs, "ssh-agent", "ssh-add")
}

/// [`parse_ssh`] with the agent's programs named (tests name missing ones).
fn parse_ssh_with(specs: &[String], agent: &str, add: &str) -> Result<SshAgents, SshError> {
    use std::os::unix::fs::FileTypeExt;
    let mut out = SshAgents::default();
    for spec in specs {
        let bad = |why: String| SshError::Spec {
            spec: crate::text::excerpt(spec),
            why,
        };
        let (id, paths) = match spec.split_once('=') {
            Some((id, paths)) => (id, paths.split(',').map(PathBuf::from).collect()),
            None => {
                let sock = std::env::var_os("SSH_AUTH_SOCK").ok_or_else(|| {
                    bad("SSH_AUTH_SOCK is not set: start an agent (eval $(ssh-agent); ssh-add) or pass ID=SOCKET or ID=KEYFILE".into())
                })?;
                (spec.as_str(), vec![PathBuf::from(sock)])
            }
        };
        if id.is_empty() || paths.iter().any(|p: &PathBuf| p.as_os_str().is_empty()) {
            return Err(bad(
                "write default, ID=SOCKET or ID=KEYFILE[,KEYFILE]".into()
            ));
        }
        if out.sockets.contains_key(id) {
            return Err(bad(format!("the id {id:?} is given twice")));
        }
        let mut sockets = 0;
        for path in &paths {
            let shown = crate::text::show_path(path);
            match std::fs::metadata(path) {
                Ok(m) if m.file_type().is_socket() => sockets += 1,
                Ok(m) if m.is_file() => {}
                Ok(_) => {
                    return Err(bad(format!(
                        "{shown} is neither an ssh agent socket nor a key file; pass an agent socket or private key files"
                    )))
                }
                Err(e) => return Err(bad(format!("{shown}: {e}"))),
            }
        }
        let socket = match (sockets, paths.as_slice()) {
            (0, _) => {
                let started = KeyAgent::start(spec, &paths, agent, add)?;
                let socket = started.socket();
                out.private.push(started);
                socket
            }
            (_, [one]) => one.clone(),
            _ => {
                return Err(bad(
                    "an agent socket comes alone: pass either one socket or key files".into(),
                ))
            }
        };
        out.sockets.insert(id.to_string(), socket);
    }
    Ok(out)
}

/// A private `ssh-agent -D` serving key files: its socket lives in a
/// 0700 directory made for it. Dropping it kills the agent and removes the
/// directory, whether the build succeeded, failed or was interrupted.
#[derive(Debug)]
struct KeyAgent {
    /// The agent; its stdout stays open (it wrote its socket's name
    /// there, and a write to a closed pipe would kill it).
    child: std::process::Child,
    dir: PathBuf,
}

impl KeyAgent {
    fn start(spec: &str, keys: &[PathBuf], agent: &str, add: &str) -> Result<KeyAgent, SshError> {
        use std::io::Read;
        let spec = crate::text::excerpt(spec);
        let failed = |why: String| SshError::Agent {
            spec: spec.clone(),
            why,
        };
        let dir = private_dir("reggie-ssh").map_err(|e| {
            failed(format!(
                "cannot make a private directory for the agent in {}: {e}",
                crate::text::show_path(&std::env::temp_dir())
            ))
        })?;
        let log_path = dir.join("agent.log");
        let log = std::fs::File::create(&log_path);
        let started = log.and_then(|log| {
            std::process::Command::new(agent)
                .arg("-D")
                .arg("-a")
                .arg(dir.join("agent.sock"))
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(log)
                .spawn()
        });
        let child = match started {
            Ok(child) => child,
            Err(source) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(SshError::Missing {
                    spec,
                    program: agent.to_string(),
                    why: source.to_string(),
                });
            }
        };
        // From here on, dropping `me` kills the agent and removes the
        // directory, on every way out.
        let mut me = KeyAgent { child, dir };
        // The agent prints `SSH_AUTH_SOCK=...` once it listens; before
        // that the socket cannot be used, and if it exits it prints
        // nothing.
        let mut first = [0u8; 1];
        let listening = me
            .child
            .stdout
            .as_mut()
            .is_some_and(|out| matches!(out.read(&mut first), Ok(1)));
        if !listening {
            let _ = me.child.wait();
            let said = std::fs::read_to_string(&log_path).unwrap_or_default();
            return Err(failed(format!(
                "ssh-agent did not start: {}",
                crate::text::bounded(&crate::text::escape(said.trim()), 400)
            )));
        }
        for key in keys {
            me.add(&spec, key, add)?;
        }
        Ok(me)
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("agent.sock")
    }

    /// Loads one key with `ssh-add`, which never prompts: no askpass, no
    /// terminal (its own session), stdin empty. Its messages name the file
    /// and the key's comment, never the key.
    fn add(&self, spec: &str, key: &Path, program: &str) -> Result<(), SshError> {
        use std::os::unix::process::CommandExt;
        let mut cmd = std::process::Command::new(program);
        cmd.arg("--")
            .arg(key)
            .env("SSH_AUTH_SOCK", self.socket())
            .env_remove("SSH_ASKPASS")
            .env("SSH_ASKPASS_REQUIRE", "never")
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: setsid is async-signal-safe; without a controlling
        // terminal ssh-add cannot ask for a passphrase on /dev/tty.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        let out = cmd.output().map_err(|source| SshError::Missing {
            spec: spec.to_string(),
            program: program.to_string(),
            why: source.to_string(),
        })?;
        if out.status.success() {
            return Ok(());
        }
        let said = String::from_utf8_lossy(&out.stderr);
        if said.contains("passphrase") {
            return Err(SshError::Encrypted {
                spec: spec.to_string(),
                path: key.to_path_buf(),
            });
        }
        // One line of its words: ssh-add frames warnings in lines of @.
        let said: Vec<&str> = said
            .lines()
            .map(|l| l.trim_matches(|c: char| c == '@' || c.is_whitespace()))
            .filter(|l| !l.is_empty())
            .collect();
        Err(SshError::Agent {
            spec: spec.to_string(),
            why: format!(
                "ssh-add could not load {}: {}",
                crate::text::show_path(key),
                crate::text::bounded(&crate::text::escape(&said.join(" ")), 400)
            ),
        })
    }
}

impl Drop for KeyAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A new directory only this user can enter, under the temporary
/// directory (short: a socket's path has at most 107 bytes), named
/// `<prefix>-<pid>-<random>`.
pub(crate) fn private_dir(prefix: &str) -> io::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let base = std::env::temp_dir();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut last = io::Error::other("no attempt");
    for attempt in 0..100u32 {
        let dir = base.join(format!(
            "{prefix}-{}-{:x}",
            std::process::id(),
            nanos.wrapping_add(attempt.wrapping_mul(0x9e37_79b9))
        ));
        // create, not create_all: an existing path (a link planted
        // there) is never reused.
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse() {
        let t = |user: Option<&str>, host: &str, port: Option<u16>| SshTarget {
            user: user.map(str::to_string),
            host: host.to_string(),
            port,
        };
        let table = [
            ("ssh://host", Ok(t(None, "host", None))),
            ("ssh://me@host:2222", Ok(t(Some("me"), "host", Some(2222)))),
            ("ssh://me@host/", Ok(t(Some("me"), "host", None))),
            ("ssh://[::1]:22", Ok(t(None, "::1", Some(22)))),
            ("ssh://a@b@host", Ok(t(Some("a@b"), "host", None))),
        ];
        for (url, want) in table {
            assert_eq!(parse(url), want, "{url}");
        }
        for bad in [
            "ssh://host/var/run/docker.sock",
            "ssh://",
            "ssh://@host",
            "ssh://host:port",
            "ssh://-oProxyCommand=x",
            "tcp://host",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn command_never_prompts_and_ends_options() {
        let cmd = parse("ssh://me@host:2200").map(|t| t.command());
        let cmd = cmd.expect("parses");
        let args: Vec<String> = cmd
            .as_std()
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let joined = args.join(" ");
        assert!(
            joined.contains("-o BatchMode=yes -T -l me -p 2200 -- host docker system dial-stdio"),
            "{joined}"
        );
    }

    /// `ssh-keygen` makes a key in `dir` (its comment `comment`); returns
    /// its path and its fingerprint line as `ssh-keygen -l` prints it.
    fn keygen(dir: &Path, name: &str, passphrase: &str) -> (PathBuf, String) {
        let key = dir.join(name);
        let out = std::process::Command::new("ssh-keygen")
            .args([
                "-q",
                "-t",
                "ed25519",
                "-C",
                &format!("polish-{name}"),
                "-N",
                passphrase,
                "-f",
            ])
            .arg(&key)
            .stdin(Stdio::null())
            .output()
            .expect("ssh-keygen (openssh-client) must be installed for this test");
        assert!(out.status.success(), "{out:?}");
        let fp = std::process::Command::new("ssh-keygen")
            .arg("-lf")
            .arg(key.with_extension("pub"))
            .output()
            .unwrap();
        let fp = String::from_utf8(fp.stdout).unwrap();
        let fp = fp.split_whitespace().nth(1).unwrap().to_string();
        (key, fp)
    }

    /// What the agent at `sock` lists (`ssh-add -l`).
    fn listed(sock: &Path) -> String {
        let out = std::process::Command::new("ssh-add")
            .arg("-l")
            .env("SSH_AUTH_SOCK", sock)
            .output()
            .expect("ssh-add must be installed for this test");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    // One test: each private agent's directory is checked gone, and
    // parallel tests of this process would share the name prefix.
    #[test]
    fn key_files_are_served_by_a_private_agent() {
        let dir = tempfile::tempdir().unwrap();
        let (k1, fp1) = keygen(dir.path(), "one", "");
        let (k2, fp2) = keygen(dir.path(), "two", "");
        let (k3, fp3) = keygen(dir.path(), "three", "");
        let specs = vec![
            format!("default={},{}", k1.display(), k2.display()),
            format!("deploy={}", k3.display()),
        ];
        let agents = parse_ssh(&specs).unwrap();
        assert_eq!(agents.private.len(), 2);
        let default = agents.sockets()["default"].clone();
        let deploy = agents.sockets()["deploy"].clone();
        let (a, b) = (listed(&default), listed(&deploy));
        assert!(
            a.contains(&fp1) && a.contains(&fp2) && !a.contains(&fp3),
            "{a}"
        );
        assert!(b.contains(&fp3) && !b.contains(&fp1), "{b}");
        use std::os::unix::fs::PermissionsExt;
        let private = default.parent().unwrap().to_path_buf();
        let mode = std::fs::metadata(&private).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "{}", private.display());
        let pids: Vec<u32> = agents.private.iter().map(|a| a.child.id()).collect();
        drop(agents);
        assert!(!private.exists(), "{} left behind", private.display());
        assert!(!deploy.parent().unwrap().exists());
        for pid in pids {
            // Reaped by the drop, so no process (or zombie) has the pid
            // unless the system reused it at once.
            let status = std::fs::read_to_string(format!("/proc/{pid}/cmdline"));
            assert!(
                !status.is_ok_and(|c| c.contains("ssh-agent")),
                "agent {pid} still running"
            );
        }

        // An encrypted key: a clear error, no prompt (stdin is not read
        // here: the test would hang), nothing left running.
        let (locked, _) = keygen(dir.path(), "locked", "correct horse");
        let before = leftover_dirs();
        let err = parse_ssh(&[format!("default={}", locked.display())]).unwrap_err();
        assert!(matches!(err, SshError::Encrypted { .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("passphrase") && msg.contains("--ssh default"),
            "{msg}"
        );
        assert!(
            msg.contains(&format!("ssh-add {}", locked.display())),
            "{msg}"
        );
        assert_eq!(leftover_dirs(), before);

        // Not a key: ssh-add's message, never the file's contents.
        let junk = dir.path().join("junk");
        std::fs::write(
            &junk,
            "-----BEGIN OPENSSH PRIVATE KEY-----\nc2VjcmV0LXRleHQ=\n",
        )
        .unwrap();
        let err = parse_ssh(&[format!("k={}", junk.display())]).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, SshError::Agent { .. }), "{msg}");
        assert!(
            msg.contains("ssh-add could not load") && !msg.contains("c2VjcmV0"),
            "{msg}"
        );
        assert_eq!(leftover_dirs(), before);

        // No ssh-agent, no ssh-add: say what to install.
        for (agent, add) in [
            ("/nonexistent/ssh-agent", "ssh-add"),
            ("ssh-agent", "/nonexistent/ssh-add"),
        ] {
            let err = parse_ssh_with(&[format!("k={}", k1.display())], agent, add).unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, SshError::Missing { .. }), "{msg}");
            assert!(
                msg.contains("openssh-client") && msg.contains("/nonexistent/"),
                "{msg}"
            );
            assert_eq!(leftover_dirs(), before);
        }
    }

    /// This process's private agent directories.
    fn leftover_dirs() -> Vec<PathBuf> {
        let prefix = format!("reggie-ssh-{}-", std::process::id());
        let mut found: Vec<PathBuf> = std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .map(|e| e.path())
            .collect();
        found.sort();
        found
    }

    #[test]
    fn sockets_and_bad_paths() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("agent.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let key = dir.path().join("id_ed25519");
        std::fs::write(&key, b"not read here").unwrap();
        let got = parse_ssh(&[format!("work={}", sock.display())]).unwrap();
        assert_eq!(got.sockets()["work"], sock);
        assert!(got.private.is_empty());
        let shown = dir.path().display().to_string();
        let table = [
            (
                format!("work={}", dir.path().display()),
                "neither an ssh agent socket nor a key file",
            ),
            (format!("work={}/missing", shown), "missing"),
            (
                format!("work={},{}", sock.display(), key.display()),
                "an agent socket comes alone",
            ),
            (format!("={}", sock.display()), "write default"),
            ("work=".to_string(), "write default"),
            (format!("work={},", key.display()), "write default"),
        ];
        for (spec, want) in table {
            let err = parse_ssh(std::slice::from_ref(&spec))
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{spec}: {err}");
        }
        let twice = [
            format!("a={}", sock.display()),
            format!("a={}", sock.display()),
        ];
        let err = parse_ssh(&twice).unwrap_err().to_string();
        assert!(err.contains("given twice"), "{err}");
    }
}
