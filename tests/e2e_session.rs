//! End-to-end tests of `image`'s BuildKit session (file sync, shared key,
//! secrets) against the real daemon of `tests/services.sh`, side by side
//! with the docker CLI that drives BuildKit the same way
//! (`DOCKER_BUILDKIT=1 /usr/bin/docker build`, the 20.10 CLI).
//!
//! Unlike `e2e_image.rs`, these fail when the services are missing: they
//! are the only check of the session protocol against a real BuildKit.
// The image builder is the default feature `image`.
#![cfg(feature = "image")]

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

#[path = "common/build.rs"]
mod build;
mod common;
use build::*;
use common::images::Images;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The services' environment; a missing one fails the test.
fn services() -> BTreeMap<String, String> {
    common::services().expect("the session tests need the daemon: they never skip")
}

/// A test's directories: the docker config, the context and a TMPDIR.
struct Work {
    _dir: tempfile::TempDir,
    root: PathBuf,
    config: PathBuf,
    ctx: PathBuf,
    tmp: PathBuf,
}

fn work() -> Work {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let [config, ctx, tmp] = ["config", "ctx", "tmp"].map(|d| root.join(d));
    for d in [&config, &ctx, &tmp] {
        std::fs::create_dir_all(d).unwrap();
    }
    Work {
        _dir: dir,
        root,
        config,
        ctx,
        tmp,
    }
}

/// A new ed25519 key without a passphrase at `path`.
fn keygen(path: &Path, comment: &str) {
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .expect("ssh-keygen (openssh-client) must be installed for this test");
    assert!(made.status.success(), "{made:?}");
}

#[test]
fn session_image_equals_docker_buildkit() {
    let env = services();
    let images = Images::new(&env, "session");
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("config");
    std::fs::create_dir_all(&config).unwrap();
    let odd = work.path().join("odd");
    odd_tree(&odd);
    // Dockerfiles outside their contexts: they must not reach the image.
    let copy_all = work.path().join("copy-all.Dockerfile");
    std::fs::write(&copy_all, "FROM scratch\nCOPY . /app/\n").unwrap();
    let copy_all = copy_all.to_str().unwrap().to_string();
    let fixtures = repo_root().join("fixtures");
    let scratch = fixtures.join("image/scratch.Dockerfile");
    let cases: Vec<(&str, PathBuf, String)> = vec![
        (
            "reggie backend paths (followpaths)",
            fixtures.join("reggie"),
            scratch.to_str().unwrap().to_string(),
        ),
        ("odd tree, COPY .", odd.clone(), copy_all.clone()),
        (
            "node-multistage, COPY .",
            fixtures.join("node-multistage"),
            copy_all.clone(),
        ),
        (
            "mounts-wildcards, COPY .",
            fixtures.join("mounts-wildcards"),
            copy_all.clone(),
        ),
    ];
    for (i, (case, ctx, dockerfile)) in cases.iter().enumerate() {
        let ours = images.tag(&format!("ours-{i}"));
        let theirs = images.tag(&format!("docker-{i}"));
        let out = reggie(
            &env,
            ctx,
            &config,
            &["-f", dockerfile, "-t", &ours, "--builder", "buildkit", "."],
            &[],
        );
        ok(&out);
        docker(
            &env,
            ctx,
            true,
            &["build", "-q", "-f", dockerfile, "-t", &theirs, "."],
        );
        let (a, b) = (image_fs(&env, &ours), image_fs(&env, &theirs));
        assert!(a.len() > 2, "{case}: an empty image: {:?}", a.keys());
        assert_same_fs(case, &a, &b);
    }
    let fs = image_fs(&env, &images.tag("ours-1"));
    for (path, kind) in [
        ("app/link-rel", b'2'),
        ("app/deep/hard.txt", b'1'),
        ("app/empty/dir", b'5'),
        ("app/node_modules/keep/README.md", b'0'),
    ] {
        assert_eq!(
            fs.get(path).map(|m| m.kind),
            Some(kind),
            "{path}: {:?}",
            fs.keys()
        );
    }
    assert!(!fs.contains_key("app/x.log") && !fs.contains_key("app/node_modules/pkg"));
    // The FIFO travels as a stat, and BuildKit's COPY leaves it out, as
    // for the docker CLI (the equality above).
    assert!(!fs.contains_key("app/fifo"));
    // The device reaches the image (docker export shows it as a file).
    assert!(fs.contains_key("app/null"));
    assert!(
        !fs.keys().any(|k| k.contains("Dockerfile")),
        "{:?}",
        fs.keys()
    );
}

#[test]
fn session_rebuild_sends_only_what_changed() {
    use std::os::unix::fs::PermissionsExt;
    let env = services();
    let images = Images::new(&env, "session");
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("config");
    std::fs::create_dir_all(&config).unwrap();
    let ctx = work.path().join("ctx");
    std::fs::create_dir_all(ctx.join("src")).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM scratch\nCOPY . /app/\n").unwrap();
    std::fs::write(ctx.join("big.bin"), vec![1u8; 1_000_000]).unwrap();
    std::fs::write(ctx.join("src/edit.py"), "print(1)\n").unwrap();
    std::fs::write(ctx.join("src/old-name.py"), "renamed = True\n").unwrap();
    std::fs::write(ctx.join("src/gone.py"), "gone = True\n").unwrap();
    std::fs::write(ctx.join("src/mode.sh"), "#!/bin/sh\n").unwrap();
    let tag = &images.tag("incremental");
    let build = || {
        let out = reggie(
            &env,
            &ctx,
            &config,
            &["-t", tag, "--no-cache", "--json", "."],
            &[],
        );
        ok(&out);
        out
    };
    let first = build();
    let dockerfile_len = std::fs::metadata(ctx.join("Dockerfile")).unwrap().len();
    let all = 1_000_000 + 9 + 15 + 12 + 10 + dockerfile_len;
    assert!(
        bytes_sent(&first) >= 1_000_000,
        "a first build of this context and key sends everything: {}",
        text(&first)
    );
    assert!(bytes_sent(&first) <= all + 64, "{}", text(&first));
    // Nothing changed: nothing travels (the daemon's copy is reused).
    let second = build();
    assert_eq!(bytes_sent(&second), 0, "{}", text(&second));

    std::fs::write(ctx.join("src/edit.py"), "print(22)\n").unwrap();
    std::fs::rename(ctx.join("src/old-name.py"), ctx.join("src/new-name.py")).unwrap();
    std::fs::remove_file(ctx.join("src/gone.py")).unwrap();
    std::fs::set_permissions(
        ctx.join("src/mode.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let third = build();
    // The edited file, the renamed one under its new name, and the
    // chmod-ed one (BuildKit asks again for a file whose stat changed).
    assert_eq!(bytes_sent(&third), 10 + 15 + 10, "{}", text(&third));
    let fs = image_fs(&env, tag);
    assert_eq!(fs["app/src/edit.py"].content, b"print(22)\n");
    assert!(fs.contains_key("app/src/new-name.py"), "{:?}", fs.keys());
    assert!(!fs.contains_key("app/src/old-name.py"), "{:?}", fs.keys());
    assert!(!fs.contains_key("app/src/gone.py"), "{:?}", fs.keys());
    assert_eq!(fs["app/src/mode.sh"].mode & 0o777, 0o755);
    assert_eq!(fs["app/big.bin"].content.len(), 1_000_000);
}

/// A no-change rebuild is fully cached and gives the same image: no
/// label changes with the clock.
#[test]
fn session_rebuild_is_fully_cached() {
    let env = services();
    let images = Images::new(&env, "session");
    let w = work();
    let (config, ctx) = (w.config.clone(), w.ctx.clone());
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM reggie-busybox:latest\nCOPY a.txt /a.txt\nRUN cat /a.txt > /b.txt\n",
    )
    .unwrap();
    std::fs::write(ctx.join("a.txt"), "a\n").unwrap();
    let tag = &images.tag("cached");
    let build = || {
        let out = reggie(
            &env,
            &ctx,
            &config,
            &["-t", tag, "--network", "none", "--json", "."],
            &[],
        );
        ok(&out);
        out
    };
    let first = build();
    let second = build();
    let image = |out: &Output| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| v["event"] == "result")
            .and_then(|v| v["image_id"].as_str().map(str::to_string))
            .unwrap()
    };
    assert_eq!(image(&first), image(&second), "{}", text(&second));
    let steps: Vec<serde_json::Value> = String::from_utf8_lossy(&second.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| {
            v["event"] == "vertex"
                && v["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("[2/3]") || n.starts_with("[3/3]"))
        })
        .collect();
    assert_eq!(steps.len(), 2, "{}", text(&second));
    assert!(steps.iter().all(|v| v["status"] == "cached"), "{steps:?}");

    // SOURCE_DATE_EPOCH pins the created label.
    let out = reggie(
        &env,
        &ctx,
        &config,
        &["-t", tag, "--network", "none", "--json", "."],
        &[("SOURCE_DATE_EPOCH", "1700000000")],
    );
    ok(&out);
    let inspect = docker(&env, Path::new("/"), false, &["image", "inspect", tag]);
    let v: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(
        v[0]["Config"]["Labels"]["org.opencontainers.image.created"],
        "2023-11-14T22:13:20Z"
    );
}

/// `--secret` reaches `RUN --mount=type=secret` and nothing else: not the
/// output, not the image's files, not its history.
#[test]
fn secret_reaches_the_build_but_not_the_image() {
    let env = services();
    let images = Images::new(&env, "session");
    let w = work();
    let (config, ctx) = (w.config.clone(), w.ctx.clone());
    let value = "s3cr3t-VALUE-7f2a9c";
    let env_value = "env-S3CRET-41d0";
    let secret_file = w.root.join("token");
    std::fs::write(&secret_file, value).unwrap();
    // The RUN step fails unless both values arrived intact (it compares
    // their hashes, so the Dockerfile does not hold them); it writes only
    // a length.
    let sha = |v: &str| -> String {
        use sha2::Digest;
        sha2::Sha256::digest(v.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    std::fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM reggie-busybox:latest\n\
             RUN --mount=type=secret,id=tok --mount=type=secret,id=other \
             test \"$(sha256sum < /run/secrets/tok | cut -d' ' -f1)\" = {} && \
             test \"$(sha256sum < /run/secrets/other | cut -d' ' -f1)\" = {} && \
             wc -c < /run/secrets/tok > /len && echo secret-arrived\n",
            sha(value),
            sha(env_value)
        ),
    )
    .unwrap();
    let tag = &images.tag("secret");
    let src = format!("id=tok,src={}", secret_file.display());
    let out = reggie(
        &env,
        &ctx,
        &config,
        &[
            "-t",
            tag,
            "--network",
            "none",
            "--no-cache",
            "--secret",
            &src,
            "--secret",
            "id=other,env=REGGIE_E2E_SECRET",
            "--json",
            "-vv",
            ".",
        ],
        &[("REGGIE_E2E_SECRET", env_value)],
    );
    ok(&out);
    let all = text(&out);
    assert!(all.contains("secret-arrived"), "{all}");
    assert!(!all.contains(value) && !all.contains(env_value), "{all}");
    let fs = image_fs(&env, tag);
    assert_eq!(fs["len"].content, format!("{}\n", value.len()).into_bytes());
    for (path, meta) in &fs {
        let content = String::from_utf8_lossy(&meta.content);
        assert!(
            !content.contains(value) && !content.contains(env_value),
            "{path} holds a secret"
        );
    }
    assert!(!fs.contains_key("run/secrets/tok"), "{:?}", fs.keys());
    let history = docker(&env, Path::new("/"), false, &["history", "--no-trunc", tag]);
    let inspect = docker(&env, Path::new("/"), false, &["image", "inspect", tag]);
    for o in [&history, &inspect] {
        let t = text(o);
        assert!(!t.contains(value) && !t.contains(env_value), "{t}");
    }

    // A secret not given is absent from the step (BuildKit's secret
    // mounts are optional unless `required`), so this one fails.
    let out = reggie(
        &env,
        &ctx,
        &config,
        &[
            "-t",
            tag,
            "--network",
            "none",
            "--no-cache",
            "--secret",
            &src,
            ".",
        ],
        &[],
    );
    assert!(!out.status.success());
    let all = text(&out);
    assert!(all.contains("can't open /run/secrets/other"), "{all}");
}

/// `--ssh default` forwards the agent of SSH_AUTH_SOCK into
/// `RUN --mount=type=ssh`, which lists its key through the socket.
#[test]
fn ssh_agent_forwarded_into_the_build() {
    let env = services();
    let images = Images::new(&env, "session");
    let w = work();
    let (config, ctx) = (w.config.clone(), w.ctx.clone());
    let sock = w.root.join("agent.sock");
    let mut agent = Command::new("ssh-agent")
        .args(["-D", "-a"])
        .arg(&sock)
        .stdout(Stdio::null())
        .spawn()
        .expect("ssh-agent must be installed for this test");
    for _ in 0..100 {
        if sock.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // The agent's answer to "list identities" with no keys is 5 bytes:
    // length 1, SSH_AGENT_IDENTITIES_ANSWER (12), and a zero count comes
    // after; the build only checks that the forwarded socket answers.
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM reggie-busybox:latest\n\
         RUN --mount=type=ssh test -S \"$SSH_AUTH_SOCK\" && echo agent-socket-mounted\n",
    )
    .unwrap();
    let out = reggie(
        &env,
        &ctx,
        &config,
        &[
            "-t",
            &images.tag("ssh"),
            "--network",
            "none",
            "--no-cache",
            "--ssh",
            "default",
            "--json",
            ".",
        ],
        &[("SSH_AUTH_SOCK", sock.to_str().unwrap())],
    );
    let _ = agent.kill();
    let _ = agent.wait();
    ok(&out);
    assert!(
        text(&out).contains("agent-socket-mounted"),
        "{}",
        text(&out)
    );
}

/// `--ssh ID=KEYFILE` serves the key through a private agent: the build's
/// `RUN --mount=type=ssh` lists it with the host's own `ssh-add` (run
/// from a bind mount with its libraries: busybox has no agent client),
/// and the agent's directory is gone when the build has ended.
#[test]
fn ssh_key_file_served_into_the_build() {
    let env = services();
    let images = Images::new(&env, "session");
    let w = work();
    let (config, ctx, tmp) = (w.config.clone(), w.ctx.clone(), w.tmp.clone());
    let rt = ctx.join("rt");
    std::fs::create_dir_all(&rt).unwrap();
    let key = w.root.join("id_ed25519");
    keygen(&key, "polish-e2e-key");
    let fp = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(key.with_extension("pub"))
        .output()
        .unwrap();
    let fp = String::from_utf8(fp.stdout).unwrap();
    let fp = fp
        .split_whitespace()
        .nth(1)
        .expect("a fingerprint")
        .to_string();
    // ssh-add and what it links, run by their own loader.
    let ssh_add = Path::new("/usr/bin/ssh-add");
    std::fs::copy(ssh_add, rt.join("ssh-add")).unwrap();
    let ldd = Command::new("ldd").arg(ssh_add).output().expect("ldd");
    let ldd = String::from_utf8(ldd.stdout).unwrap();
    let mut loader = None;
    for lib in ldd.split_whitespace().filter(|w| w.starts_with('/')) {
        let name = Path::new(lib).file_name().unwrap().to_str().unwrap();
        std::fs::copy(lib, rt.join(name)).unwrap();
        if name.starts_with("ld-linux") {
            loader = Some(name.to_string());
        }
    }
    let loader = loader.expect("ssh-add's dynamic loader");
    std::fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM reggie-busybox:latest\n\
             RUN --mount=type=ssh,id=deploy --mount=type=bind,source=rt,target=/rt \
             /rt/{loader} --library-path /rt /rt/ssh-add -l | sed 's/^/listed: /'\n"
        ),
    )
    .unwrap();
    let spec = format!("deploy={}", key.display());
    let out = reggie(
        &env,
        &ctx,
        &config,
        &[
            "-t",
            &images.tag("ssh-key"),
            "--network",
            "none",
            "--no-cache",
            "--ssh",
            &spec,
            "--json",
            ".",
        ],
        &[("TMPDIR", tmp.to_str().unwrap()), ("SSH_AUTH_SOCK", "")],
    );
    ok(&out);
    let all = text(&out);
    assert!(
        all.contains(&format!("listed: 256 {fp} polish-e2e-key (ED25519)")),
        "{all}"
    );
    let private = std::fs::read_to_string(&key).unwrap();
    let body = private.lines().nth(1).unwrap();
    assert!(!all.contains(body), "the key's text is in the output");
    let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().flatten().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// The private agent of `--ssh ID=KEYFILE` ends with the build however
/// it ends: a failing step, and Ctrl-C while a step holds the agent's
/// socket. Nothing is left in the temporary directory and no agent runs.
#[test]
fn ssh_key_agent_ends_with_a_failed_or_interrupted_build() {
    let env = services();
    let images = Images::new(&env, "session");
    let w = work();
    let (config, ctx, tmp) = (w.config.clone(), w.ctx.clone(), w.tmp.clone());
    let key = w.root.join("id_ed25519");
    keygen(&key, "polish-e2e-key");
    let spec = format!("default={}", key.display());
    let agents_running = || {
        let needle = tmp.to_string_lossy().into_owned();
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|p| std::fs::read(p.path().join("cmdline")).ok())
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .filter(|c| c.contains("ssh-agent") && c.contains(&needle))
            .collect::<Vec<_>>()
    };
    let left = || -> Vec<PathBuf> {
        std::fs::read_dir(&tmp)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect()
    };
    let args = |tag: &str| -> Vec<String> {
        [
            "-t",
            tag,
            "--network",
            "none",
            "--no-cache",
            "--ssh",
            &spec,
            ".",
        ]
        .iter()
        .map(|a| a.to_string())
        .collect()
    };
    let extra = [("TMPDIR", tmp.to_str().unwrap())];

    // A failing step.
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM reggie-busybox:latest\nRUN --mount=type=ssh test -S \"$SSH_AUTH_SOCK\" && false\n",
    )
    .unwrap();
    let a = args(&images.tag("ssh-fail"));
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let out = reggie(&env, &ctx, &config, &a, &extra);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(left().is_empty(), "left behind: {:?}", left());
    assert!(agents_running().is_empty(), "{:?}", agents_running());

    // Ctrl-C while a step that mounts the agent sleeps.
    let nonce = format!("polish-ssh-sleep-{}", std::process::id());
    std::fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM reggie-busybox:latest\nRUN --mount=type=ssh test -S \"$SSH_AUTH_SOCK\" && sleep 300 && echo {nonce}\n"
        ),
    )
    .unwrap();
    let a = args(&images.tag("ssh-int"));
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let mut child = reggie_cmd(&env, &ctx, &config, &a, &extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let step_runs = || {
        std::fs::read_dir("/proc").unwrap().flatten().any(|p| {
            std::fs::read(p.path().join("cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&nonce))
        })
    };
    let mut running = false;
    for _ in 0..600 {
        if step_runs() {
            running = true;
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the build ended ({status}) before its step ran");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(running, "the step never ran");
    assert_eq!(agents_running().len(), 1, "the agent serves the step");
    // SAFETY: a signal to the child this test started.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(left().is_empty(), "left behind: {:?}", left());
    assert!(agents_running().is_empty(), "{:?}", agents_running());
}

/// A fake daemon on a unix socket: it answers the handshake (`/_ping`,
/// `/version`), accepts `/session` (101) and `/build` (200), then says
/// nothing more, as a daemon that hangs mid-build.
fn silent_daemon(sock: &Path) -> std::thread::JoinHandle<()> {
    use std::io::Write;
    let listener = std::os::unix::net::UnixListener::bind(sock).unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            std::thread::spawn(move || {
                let mut held = Vec::new();
                loop {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        match conn.read(&mut byte) {
                            Ok(1) => head.push(byte[0]),
                            _ => return,
                        }
                    }
                    let head = String::from_utf8_lossy(&head).to_string();
                    let path = head.split(' ').nth(1).unwrap_or("").to_string();
                    let reply = |body: &str| {
                        format!(
                            "HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        )
                    };
                    let out = if path.ends_with("/_ping") {
                        reply("OK")
                    } else if path.ends_with("/version") {
                        reply(
                            r#"{"ApiVersion":"1.41","MinAPIVersion":"1.12","Version":"20.10.0","Arch":"amd64","Os":"linux"}"#,
                        )
                    } else if path.contains("/session") {
                        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n".into()
                    } else if path.contains("/build") {
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".into()
                    } else {
                        let body = r#"{"message":"not in this fake"}"#;
                        format!("HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len())
                    };
                    if conn.write_all(out.as_bytes()).is_err() {
                        return;
                    }
                    if path.contains("/session") || path.contains("/build") {
                        // Silent from now on; keep the connection open.
                        let _ = conn.read_to_end(&mut held);
                        return;
                    }
                }
            });
        }
    })
}

#[test]
fn session_stall_fails_after_idle_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM scratch\nCOPY a.txt /a.txt\n").unwrap();
    std::fs::write(ctx.join("a.txt"), "a\n").unwrap();
    let sock = dir.path().join("docker.sock");
    let _daemon = silent_daemon(&sock);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_reggie-build"));
    cmd.current_dir(&ctx)
        .args(["image", ".", "--idle-timeout", "2"])
        .env("DOCKER_HOST", format!("unix://{}", sock.display()))
        .env("DOCKER_CONFIG", dir.path().join("docker-config"))
        .env("XDG_CACHE_HOME", dir.path().join("cache"))
        .env_remove("DOCKER_CONTEXT")
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("REGGIE_IDLE_TIMEOUT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let started = std::time::Instant::now();
    // Without the timeout the build waits forever: give it a minute.
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > std::time::Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("image still waits on a silent daemon after 60 s (--idle-timeout 2)");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("the BuildKit session stalled")
            && stderr.contains("sent no build progress and asked for no files")
            && stderr.contains("--idle-timeout"),
        "{stderr}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "{stderr}"
    );
}
