//! `ssh://` daemons, the docker CLI's way: every connection is a process
//! `ssh [-l USER] [-p PORT] HOST -- docker system dial-stdio`, and HTTP
//! runs over its stdin and stdout. ssh's own configuration (keys, agent,
//! `~/.ssh/config`, known hosts) applies unchanged; `REGGIE_SSH_COMMAND`
//! replaces the `ssh` command itself (e.g. `ssh -F ./ssh_config`), as
//! `GIT_SSH_COMMAND` does for git.

use std::io;
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
        cmd.args(["--", &self.host, "docker", "system", "dial-stdio"]);
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
    let mut child = target
        .command()
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
}
