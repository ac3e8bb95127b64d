//! End-to-end tests of `image --buildkit-addr`: builds through BuildKit's
//! Control API on a remote engine. No buildkitd can be installed here, so
//! the engine is the services' daemon's embedded BuildKit, exposed by
//! `tests/relay.py buildkit` as a gRPC listener (plain, and mutual TLS),
//! the real engine behind it; results are compared with
//! `DOCKER_BUILDKIT=1 /usr/bin/docker build` on the same daemon.
//!
//! These fail when the relays are missing (`bash tests/services.sh`).
#![cfg(feature = "image")]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

#[path = "common/build.rs"]
mod build;
mod common;
use build::*;
use common::context::Ctx;
use common::images::Images;

/// The services' environment and the value of `key` in it; a missing
/// relay fails the test (unless skips are allowed: then `None`).
fn relay(key: &str) -> Option<(BTreeMap<String, String>, String)> {
    let env = common::services()?;
    match env.get(key).cloned() {
        Some(v) => Some((env, v)),
        None => {
            common::missing_prerequisite(
                std::thread::current()
                    .name()
                    .unwrap_or("a remote-builder test"),
                &format!(
                    "{key} is not in the services' env file (the BuildKit relay is not running)"
                ),
                "Start it with `bash tests/services.sh` (tests/relay.py).",
            );
            None
        }
    }
}

fn work() -> (tempfile::TempDir, PathBuf) {
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("config");
    std::fs::create_dir_all(&config).unwrap();
    (work, config)
}

fn failed_with(out: &Output) -> String {
    assert!(!out.status.success(), "expected a failure:\n{}", text(out));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn remote_image_equals_docker_buildkit() {
    let Some((env, addr)) = relay("REGGIE_TEST_BUILDKIT_TCP") else {
        return;
    };
    let images = Images::new(&env, "remote");
    let (work, config) = work();
    let odd = work.path().join("odd");
    odd_tree(&odd);
    let copy_all = work.path().join("copy-all.Dockerfile");
    std::fs::write(&copy_all, "FROM scratch\nCOPY . /app/\n").unwrap();
    let copy_all = copy_all.to_str().unwrap().to_string();
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let scratch = fixtures.join("image/scratch.Dockerfile");
    let cases: Vec<(&str, PathBuf, String)> = vec![
        (
            "reggie backend paths (followpaths)",
            fixtures.join("reggie"),
            scratch.to_str().unwrap().to_string(),
        ),
        ("odd tree, COPY .", odd, copy_all),
    ];
    for (i, (case, ctx, dockerfile)) in cases.iter().enumerate() {
        let ours = images.tag(&format!("ours-{i}"));
        let theirs = images.tag(&format!("docker-{i}"));
        let out = reggie(
            &env,
            ctx,
            &config,
            &["--buildkit-addr", &addr, "-f", dockerfile, "-t", &ours, "."],
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
        assert!(
            !a.keys().any(|k| k.contains("Dockerfile")),
            "{case}: {:?}",
            a.keys()
        );
    }
}

#[test]
fn remote_rebuild_sends_only_what_changed() {
    let Some((env, addr)) = relay("REGGIE_TEST_BUILDKIT_TCP") else {
        return;
    };
    let images = Images::new(&env, "remote");
    let (_work, config) = work();
    let ctx = Ctx::new()
        .dockerfile("FROM scratch\nCOPY . /app/\n")
        .file("big.bin", vec![7u8; 1_000_000])
        .file("src/edit.py", "print(1)\n");
    let tag = &images.tag("incremental");
    let build = || {
        let out = reggie(
            &env,
            &ctx,
            &config,
            &[
                "--buildkit-addr",
                &addr,
                "-t",
                tag,
                "--no-cache",
                "--json",
                ".",
            ],
            &[],
        );
        ok(&out);
        out
    };
    let first = build();
    assert!(bytes_sent(&first) >= 1_000_000, "{}", text(&first));
    let second = build();
    assert_eq!(bytes_sent(&second), 0, "{}", text(&second));
    ctx.write("src/edit.py", "print(22)\n");
    let third = build();
    assert_eq!(bytes_sent(&third), 10, "{}", text(&third));
    let fs = image_fs(&env, tag);
    assert_eq!(fs["app/src/edit.py"].content, b"print(22)\n");
    assert_eq!(fs["app/big.bin"].content.len(), 1_000_000);
    // --json names the image the engine exported, the one now tagged.
    let result: serde_json::Value = String::from_utf8_lossy(&third.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .find(|v: &serde_json::Value| v["event"] == "result")
        .unwrap_or_else(|| panic!("no result event:\n{}", text(&third)));
    let inspect = docker(
        &env,
        Path::new("/"),
        false,
        &["image", "inspect", "--format", "{{.Id}}", tag],
    );
    assert_eq!(
        result["image_id"].as_str(),
        Some(String::from_utf8_lossy(&inspect.stdout).trim()),
        "{}",
        text(&third)
    );
}

/// A client certificate no CA of the builder signed: self-signed.
fn stranger_cert(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("stranger-cert.pem"), dir.join("stranger-key.pem"));
    let out = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
        .args(["-subj", "/CN=bkctl stranger", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .args(["-addext", "extendedKeyUsage=clientAuth"])
        .output()
        .expect("run openssl");
    assert!(out.status.success(), "openssl:\n{}", text(&out));
    (cert, key)
}

#[test]
fn remote_mtls_needs_the_right_client_certificate() {
    let Some((env, addr)) = relay("REGGIE_TEST_BUILDKIT_TLS") else {
        return;
    };
    let images = Images::new(&env, "remote");
    let certs = PathBuf::from(&env["REGGIE_TEST_BUILDKIT_CERTS"]);
    let (work, config) = work();
    let ctx = Ctx::new()
        .dockerfile("FROM scratch\nCOPY a.txt /a.txt\n")
        .file("a.txt", "over mTLS\n");
    let ca = certs.join("ca.pem");
    let run = |cert: Option<(&Path, &Path)>| {
        let mut args = vec![
            "--buildkit-addr".to_string(),
            addr.clone(),
            "--buildkit-ca".into(),
            ca.display().to_string(),
            "-t".into(),
            images.tag("mtls"),
        ];
        if let Some((c, k)) = cert {
            args.extend([
                "--buildkit-cert".into(),
                c.display().to_string(),
                "--buildkit-key".into(),
                k.display().to_string(),
            ]);
        }
        args.push(".".into());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        reggie(&env, &ctx, &config, &args, &[])
    };
    let out = run(Some((&certs.join("cert.pem"), &certs.join("key.pem"))));
    ok(&out);
    let fs = image_fs(&env, &images.tag("mtls"));
    assert_eq!(fs["a.txt"].content, b"over mTLS\n");

    let (cert, key) = stranger_cert(work.path());
    let err = failed_with(&run(Some((&cert, &key))));
    assert!(
        err.contains(&format!(
            "TLS connection to the BuildKit builder at {addr} failed"
        )) && err.contains(&cert.display().to_string())
            && err.contains("signed by a CA the builder trusts"),
        "{err}"
    );
    let err = failed_with(&run(None));
    assert!(
        err.contains(&addr) && err.contains("pass --buildkit-cert and --buildkit-key"),
        "{err}"
    );
    // Plain gRPC to a TLS listener: the hint names the TLS flags.
    let out = reggie(&env, &ctx, &config, &["--buildkit-addr", &addr, "."], &[]);
    let err = failed_with(&out);
    assert!(
        err.contains(&addr) && err.contains("--buildkit-ca"),
        "{err}"
    );
}

#[test]
fn remote_unreachable_and_env_address() {
    let Some((env, addr)) = relay("REGGIE_TEST_BUILDKIT_TCP") else {
        return;
    };
    let images = Images::new(&env, "remote");
    let (_work, config) = work();
    let ctx = Ctx::new()
        .dockerfile("FROM scratch\nCOPY a.txt /a.txt\n")
        .file("a.txt", "a\n");
    // A port nobody listens on: bound, then released.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("tcp://127.0.0.1:{}", l.local_addr().unwrap().port())
    };
    let err = failed_with(&reggie(
        &env,
        &ctx,
        &config,
        &["--buildkit-addr", &closed, "."],
        &[],
    ));
    assert!(
        err.contains(&format!("cannot reach the BuildKit builder at {closed}"))
            && err.contains("Check that buildkitd listens there"),
        "{err}"
    );
    // BUILDKIT_HOST chooses the builder; the flag wins over it.
    let err = failed_with(&reggie(
        &env,
        &ctx,
        &config,
        &["."],
        &[("BUILDKIT_HOST", &closed)],
    ));
    assert!(err.contains(&closed), "{err}");
    let out = reggie(
        &env,
        &ctx,
        &config,
        &["--buildkit-addr", &addr, "-t", &images.tag("env"), "."],
        &[("BUILDKIT_HOST", &closed)],
    );
    ok(&out);
    // The daemon's engine stores images in that daemon; it cannot push.
    let err = failed_with(&reggie(
        &env,
        &ctx,
        &config,
        &[
            "--buildkit-addr",
            &addr,
            "-t",
            "127.0.0.1:9/bkctl:x",
            "--push",
            ".",
        ],
        &[],
    ));
    assert!(
        err.contains(&addr) && err.contains("embedded BuildKit") && err.contains("moby"),
        "{err}"
    );
}

#[test]
fn remote_secret_reaches_the_build_but_not_the_output() {
    let Some((env, addr)) = relay("REGGIE_TEST_BUILDKIT_TCP") else {
        return;
    };
    let images = Images::new(&env, "remote");
    let (work, config) = work();
    let ctx = Ctx::new();
    let value = "bkctl-REMOTE-s3cret-9b1e";
    let secret_file = work.path().join("token");
    std::fs::write(&secret_file, value).unwrap();
    let sha: String = {
        use sha2::Digest;
        sha2::Sha256::digest(value.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    ctx.write(
        "Dockerfile",
        format!(
            "FROM reggie-busybox:latest\n\
             RUN --mount=type=secret,id=tok \
             test \"$(sha256sum < /run/secrets/tok | cut -d' ' -f1)\" = {sha} && \
             wc -c < /run/secrets/tok > /len && echo secret-arrived\n"
        ),
    );
    let tag = &images.tag("secret");
    let src = format!("id=tok,src={}", secret_file.display());
    let out = reggie(
        &env,
        &ctx,
        &config,
        &[
            "--buildkit-addr",
            &addr,
            "-t",
            tag,
            "--network",
            "none",
            "--no-cache",
            "--secret",
            &src,
            "--json",
            "-vv",
            ".",
        ],
        &[],
    );
    ok(&out);
    let all = text(&out);
    assert!(all.contains("secret-arrived"), "{all}");
    assert!(!all.contains(value), "{all}");
    let fs = image_fs(&env, tag);
    assert_eq!(fs["len"].content, format!("{}\n", value.len()).into_bytes());
    assert!(
        fs.values()
            .all(|m| !String::from_utf8_lossy(&m.content).contains(value)),
        "an image file holds the secret"
    );
    let history = docker(&env, Path::new("/"), false, &["history", "--no-trunc", tag]);
    assert!(!text(&history).contains(value));
}

/// Build arguments, the target stage, labels, the platform and the
/// network reach the engine as the docker CLI's frontend attributes.
#[test]
fn remote_build_args_target_labels_and_network() {
    let Some((env, addr)) = relay("REGGIE_TEST_BUILDKIT_TCP") else {
        return;
    };
    let images = Images::new(&env, "remote");
    let (_work, config) = work();
    let ctx = Ctx::new();
    ctx.write(
        "Dockerfile",
        "FROM reggie-busybox:latest AS base\n\
         ARG GREETING=unset\n\
         RUN echo \"$GREETING\" > /greeting\n\
         FROM base AS other\n\
         RUN echo other > /other\n\
         FROM base AS picked\n\
         RUN echo picked > /picked\n",
    );
    let tag = &images.tag("attrs");
    let out = reggie(
        &env,
        &ctx,
        &config,
        &[
            "--buildkit-addr",
            &addr,
            "-t",
            tag,
            "-t",
            &images.tag("attrs-second"),
            "--target",
            "base",
            "--build-arg",
            "GREETING=hello-remote",
            "--label",
            "dev.bkctl.test=yes",
            "--platform",
            "linux/amd64",
            "--network",
            "none",
            "--no-cache",
            ".",
        ],
        &[],
    );
    ok(&out);
    let fs = image_fs(&env, tag);
    assert_eq!(fs["greeting"].content, b"hello-remote\n");
    assert!(!fs.contains_key("picked") && !fs.contains_key("other"));
    let inspect = docker(&env, Path::new("/"), false, &["image", "inspect", tag]);
    let v: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(v[0]["Config"]["Labels"]["dev.bkctl.test"], "yes");
    assert!(
        v[0]["Config"]["Labels"]["dev.reggie-build.context-digest"]
            .as_str()
            .is_some_and(|d| d.starts_with("sha256:")),
        "{v}"
    );
    assert_eq!(v[0]["Architecture"], "amd64");
    // Every tag names the image (the moby exporter's name=A,B).
    let second = docker(
        &env,
        Path::new("/"),
        false,
        &["image", "inspect", &images.tag("attrs-second")],
    );
    let second: serde_json::Value = serde_json::from_slice(&second.stdout).unwrap();
    assert_eq!(second[0]["Id"], v[0]["Id"]);

    // --target picked builds that stage; the daemon has no bridge network,
    // so without --network the RUN step fails with the hint.
    let out = reggie(
        &env,
        &ctx,
        &config,
        &[
            "--buildkit-addr",
            &addr,
            "-t",
            tag,
            "--target",
            "picked",
            "--no-cache",
            ".",
        ],
        &[],
    );
    let err = failed_with(&out);
    assert!(err.contains("--network host or --network none"), "{err}");
    let out = reggie(
        &env,
        &ctx,
        &config,
        &[
            "--buildkit-addr",
            &addr,
            "-t",
            tag,
            "--target",
            "picked",
            "--network",
            "host",
            ".",
        ],
        &[],
    );
    ok(&out);
    let fs = image_fs(&env, tag);
    assert_eq!(fs["picked"].content, b"picked\n");
    assert_eq!(fs["greeting"].content, b"unset\n");
}

/// Whether a process on this machine has `needle` in its command line
/// (the engine runs RUN steps with runc).
fn process_running(needle: &str) -> bool {
    std::fs::read_dir("/proc").is_ok_and(|dir| {
        dir.flatten().any(|p| {
            std::fs::read(p.path().join("cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(needle))
        })
    })
}

/// SIGINT during a RUN step on the remote builder: exit 130, and the
/// engine cancels the build (the step's process goes away).
#[test]
fn remote_ctrl_c_cancels_the_build() {
    let Some((env, addr)) = relay("REGGIE_TEST_BUILDKIT_TCP") else {
        return;
    };
    let (_work, config) = work();
    let ctx = Ctx::new();
    let nonce = format!(
        "bkctl-ctrlc-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    ctx.write(
        "Dockerfile",
        format!("FROM reggie-busybox:latest\nRUN sleep 60; echo {nonce}\n"),
    );
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_reggie-build"))
        .current_dir(&ctx)
        .args(["image", "--buildkit-addr", &addr, "--network", "none", "."])
        .envs(&env)
        .env("HOME", &config)
        .env("DOCKER_CONFIG", &config)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut waited = 0;
    while !process_running(&nonce) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the build ended before its RUN step ran"
        );
        waited += 1;
        assert!(waited < 600, "the RUN step never ran");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // SAFETY: signals our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    for _ in 0..80 {
        if !process_running(&nonce) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    assert!(
        !process_running(&nonce),
        "the RUN step still runs after SIGINT"
    );
}

/// A base image in a registry that needs credentials: the remote engine
/// asks the session's Auth service, which answers with docker config's;
/// without them the pull is refused with the hint.
#[test]
fn remote_private_base_image_pulled_through_the_session() {
    use base64::Engine;
    let Some((env, addr)) = relay("REGGIE_TEST_BUILDKIT_TCP") else {
        return;
    };
    let images = Images::new(&env, "remote");
    let registry = env["REGGIE_TEST_REGISTRY"].clone();
    let user = env["REGGIE_TEST_REGISTRY_USER"].clone();
    let password = env["REGGIE_TEST_REGISTRY_PASSWORD"].clone();
    let (work, config) = work();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    std::fs::write(
        config.join("config.json"),
        serde_json::json!({ "auths": { registry.clone(): { "auth": auth } } }).to_string(),
    )
    .unwrap();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let base = format!("{registry}/bkctl-e2e/private-base:v{nanos}");
    let ctx = Ctx::new();
    ctx.write(
        "Dockerfile",
        "FROM reggie-busybox:latest\nCOPY marker /marker\n",
    );
    ctx.write("marker", "base\n");
    // Published through the daemon, then forgotten so that builds pull.
    ok(&reggie(
        &env,
        &ctx,
        &config,
        &["-t", &base, "--push", "."],
        &[],
    ));
    docker(&env, Path::new("/"), false, &["rmi", &base]);

    ctx.write(
        "Dockerfile",
        format!("FROM {base}\nRUN cat /marker > /copied\n"),
    );
    let tag = &images.tag("private");
    let args = [
        "--buildkit-addr",
        &addr,
        "-t",
        tag,
        "--network",
        "none",
        "--no-cache",
        ".",
    ];
    let anonymous = work.path().join("anonymous");
    std::fs::create_dir_all(&anonymous).unwrap();
    let err = failed_with(&reggie(&env, &ctx, &anonymous, &args, &[]));
    assert!(
        err.contains("a base image needs credentials: `docker login`"),
        "{err}"
    );
    let out = reggie(&env, &ctx, &config, &args, &[]);
    ok(&out);
    assert!(!text(&out).contains(&password), "{}", text(&out));
    let fs = image_fs(&env, tag);
    assert_eq!(fs["copied"].content, b"base\n");
}

/// `unix://PATH`: the relay on a socket of this test's own.
#[test]
fn remote_builds_over_a_unix_socket() {
    let Some((env, _)) = relay("REGGIE_TEST_BUILDKIT_TCP") else {
        return;
    };
    let images = Images::new(&env, "remote");
    let (work, config) = work();
    let mut relay = Relay::start(&env["DOCKER_HOST"], &work.path().join("buildkitd.sock"));
    let ctx = Ctx::new()
        .dockerfile("FROM scratch\nCOPY a.txt /a.txt\n")
        .file("a.txt", "over a unix socket\n");
    let addr = relay.addr.clone();
    let out = reggie(
        &env,
        &ctx,
        &config,
        &["--buildkit-addr", &addr, "-t", &images.tag("unix"), "."],
        &[],
    );
    relay.stop();
    ok(&out);
    let fs = image_fs(&env, &images.tag("unix"));
    assert_eq!(fs["a.txt"].content, b"over a unix socket\n");
}

/// Flags that cannot work are refused before anything runs (no service
/// needed).
#[test]
fn remote_flags_refused_clearly() {
    let (_work, config) = work();
    let ctx = Ctx::new().dockerfile("FROM scratch\n");
    let env = BTreeMap::new();
    for (args, says) in [
        (
            vec!["--buildkit-addr", "http://h:1", "."],
            "--buildkit-addr \"http://h:1\": use tcp://HOST:PORT, unix://PATH, ssh://[USER@]HOST[:PORT][/SOCKET] or docker-context://[NAME]",
        ),
        (
            vec![
                "--buildkit-addr",
                "tcp://127.0.0.1:1",
                "--skip-if-exists",
                ".",
            ],
            "--skip-if-exists is not available with --buildkit-addr",
        ),
        (
            vec![
                "--buildkit-addr",
                "tcp://127.0.0.1:1",
                "--builder",
                "classic",
                ".",
            ],
            "--builder classic is not available with --buildkit-addr",
        ),
        (
            vec![
                "--buildkit-addr",
                "tcp://127.0.0.1:1",
                "--buildkit-cert",
                "c.pem",
                ".",
            ],
            "--buildkit-key",
        ),
    ] {
        let err = failed_with(&reggie(&env, &ctx, &config, &args, &[]));
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

/// A platform the builder does not list is built (a `FROM scratch` image
/// needs no emulation) with a warning naming what it lists.
#[test]
fn remote_foreign_platform_warns() {
    let Some((env, addr)) = relay("REGGIE_TEST_BUILDKIT_TCP") else {
        return;
    };
    let images = Images::new(&env, "remote");
    let (_work, config) = work();
    let ctx = Ctx::new()
        .dockerfile("FROM scratch\nCOPY a.txt /a.txt\n")
        .file("a.txt", "riscv\n");
    let tag = &images.tag("riscv64");
    let out = reggie(
        &env,
        &ctx,
        &config,
        &[
            "--buildkit-addr",
            &addr,
            "-t",
            tag,
            "--platform",
            "linux/riscv64",
            ".",
        ],
        &[],
    );
    ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "the builder at {addr} does not list linux/riscv64 among its platforms (linux/"
        )),
        "{stderr}"
    );
    let inspect = docker(
        &env,
        Path::new("/"),
        false,
        &["image", "inspect", "--format", "{{.Architecture}}", tag],
    );
    assert_eq!(String::from_utf8_lossy(&inspect.stdout).trim(), "riscv64");
}

/// Every entry below `root`: relative path, kind, permission bits and
/// contents (a link's target; files by length and a checksum), as the
/// output left them.
fn tree(root: &Path) -> BTreeMap<String, (String, u32, String)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let path = e.path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            let mode = meta.permissions().mode() & 0o7777;
            let (kind, data) = if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                ("link", target.display().to_string())
            } else if meta.is_dir() {
                stack.push(path.clone());
                ("dir", String::new())
            } else {
                let data = std::fs::read(&path).unwrap();
                let sum = data
                    .iter()
                    .fold(0u64, |h, &b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
                ("file", format!("{} bytes, {sum:x}", data.len()))
            };
            out.insert(rel, (kind.to_string(), mode, data));
        }
    }
    out
}

#[test]
fn remote_outputs_equal_docker_and_caches_the_engine_cannot_do_are_refused() {
    let Some((env, addr)) = relay("REGGIE_TEST_BUILDKIT_TCP") else {
        return;
    };
    let (work, config) = work();
    let ctx = work.path().join("odd");
    odd_tree(&ctx);
    let dockerfile = work.path().join("out.Dockerfile");
    std::fs::write(&dockerfile, "FROM scratch\nCOPY . /app/\n").unwrap();
    let dockerfile = dockerfile.to_str().unwrap();

    // -o type=local: the files docker's own -o writes, under the same modes.
    let ours = work.path().join("ours");
    let out = reggie(
        &env,
        &ctx,
        &config,
        &[
            "--buildkit-addr",
            &addr,
            "-f",
            dockerfile,
            "-o",
            &format!("type=local,dest={}", ours.display()),
            ".",
        ],
        &[],
    );
    ok(&out);
    let theirs = work.path().join("theirs");
    let done = docker(
        &env,
        &ctx,
        true,
        &[
            "build",
            "-f",
            dockerfile,
            "-o",
            &format!("type=local,dest={}", theirs.display()),
            ".",
        ],
    );
    ok(&done);
    let (a, mut b) = (tree(&ours), tree(&theirs));
    assert!(a.len() > 2, "an empty output: {:?}", a.keys());
    // On purpose, reggie-build writes no setuid/setgid bits (README).
    assert!(a.values().all(|(_, mode, _)| mode & 0o6000 == 0), "{a:?}");
    assert!(b.values().any(|(_, mode, _)| mode & 0o6000 != 0), "{b:?}");
    for (_, mode, _) in b.values_mut() {
        *mode &= !0o6000;
    }
    let differ: Vec<_> = a
        .keys()
        .chain(b.keys())
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| (k, a.get(k), b.get(k)))
        .collect();
    assert!(
        differ.is_empty(),
        "-o type=local through --buildkit-addr differs from docker's (path, ours, docker's): {differ:?}"
    );

    // -o type=tar: the same entries as a tar stream.
    let tarball = work.path().join("out.tar");
    ok(&reggie(
        &env,
        &ctx,
        &config,
        &[
            "--buildkit-addr",
            &addr,
            "-f",
            dockerfile,
            "-o",
            &format!("type=tar,dest={}", tarball.display()),
            ".",
        ],
        &[],
    ));
    let mut names: Vec<String> = tar::Archive::new(std::fs::File::open(&tarball).unwrap())
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            e.path()
                .unwrap()
                .display()
                .to_string()
                .trim_end_matches('/')
                .to_string()
        })
        .collect();
    names.sort();
    let mut want: Vec<String> = a.keys().cloned().collect();
    want.sort();
    assert_eq!(names, want);

    // Attestations: that engine has no way to attach them.
    let err = failed_with(&reggie(
        &env,
        &ctx,
        &config,
        &[
            "--buildkit-addr",
            &addr,
            "-f",
            dockerfile,
            "--provenance=mode=max",
            "-t",
            "x:1",
            ".",
        ],
        &[],
    ));
    assert!(
        err.contains(&format!("the builder at {addr} is a Docker daemon's embedded BuildKit: --provenance cannot be attached there")),
        "{err}"
    );
    // What the daemon's embedded BuildKit cannot do, said before a build.
    for (flag, value, says) in [
        (
            "--cache-to",
            "type=registry,ref=127.0.0.1:9/x",
            "exports only inline cache",
        ),
        ("--cache-from", "type=local,src=/tmp", "no cache directory"),
        (
            "--output",
            "type=oci,dest=/tmp/x.tar",
            "type=local,dest=DIR",
        ),
    ] {
        let err = failed_with(&reggie(
            &env,
            &ctx,
            &config,
            &["--buildkit-addr", &addr, "-f", dockerfile, flag, value, "."],
            &[],
        ));
        assert!(err.contains(says), "{flag} {value}: {err}");
        assert!(
            err.contains(&addr),
            "{flag} {value} names the builder: {err}"
        );
    }
}

/// `docker-context://[NAME]`: a Docker daemon's BuildKit through its
/// `/grpc` endpoint, on the connection the daemon path makes: the current
/// daemon (DOCKER_HOST), or the daemon of a context by name.
#[test]
fn remote_through_docker_contexts() {
    let Some(env) = common::services() else {
        return;
    };
    let images = Images::new(&env, "remote");
    let Some(second) = env.get("REGGIE_TEST_DOCKER2").cloned() else {
        common::missing_prerequisite(
            "remote_through_docker_contexts",
            "the services' env names no second daemon (REGGIE_TEST_DOCKER2)",
            "Start it with `bash tests/services.sh`.",
        );
        return;
    };
    let (_work, config) = work();
    // A context as `docker context create second --docker host=...` writes it.
    use sha2::Digest;
    let id = format!("{:x}", sha2::Sha256::digest(b"second"));
    let meta = config.join("contexts/meta").join(id);
    std::fs::create_dir_all(&meta).unwrap();
    std::fs::write(
        meta.join("meta.json"),
        serde_json::json!({
            "Name": "second", "Metadata": {},
            "Endpoints": {"docker": {"Host": second, "SkipTLSVerify": false}}
        })
        .to_string(),
    )
    .unwrap();
    let ctx = Ctx::new()
        .dockerfile("FROM scratch\nCOPY a.txt /a.txt\n")
        .file("a.txt", "through a docker context\n");
    let on = |host: &str| {
        let mut e = env.clone();
        e.insert("DOCKER_HOST".into(), host.into());
        e
    };
    let has = |host: &str, image: &str| {
        common::docker::docker_may_fail(
            &on(host),
            common::docker::Cli::Classic,
            Path::new("/"),
            &["image", "inspect", image],
        )
        .status
        .success()
    };
    let first = env["DOCKER_HOST"].clone();
    // The second daemon's image has a guard of its own.
    let images2 = Images::new(&on(&second), "remote");
    for (addr, tag, there, not_there) in [
        (
            "docker-context://",
            &images.tag("ctx-current"),
            &first,
            &second,
        ),
        (
            "docker-context://second",
            &images2.tag("ctx-second"),
            &second,
            &first,
        ),
    ] {
        for host in [&first, &second] {
            let _ = common::docker::docker_may_fail(
                &on(host),
                common::docker::Cli::Classic,
                Path::new("/"),
                &["rmi", "-f", tag],
            );
        }
        ok(&reggie(
            &env,
            &ctx,
            &config,
            &["--buildkit-addr", addr, "-t", tag, "."],
            &[],
        ));
        assert!(has(there, tag), "{addr}: {tag} not in {there}");
        assert!(!has(not_there, tag), "{addr}: {tag} in {not_there}");
        let fs = image_fs(&on(there), tag);
        assert_eq!(fs["a.txt"].content, b"through a docker context\n");
        let _ = common::docker::docker_may_fail(
            &on(there),
            common::docker::Cli::Classic,
            Path::new("/"),
            &["rmi", "-f", tag],
        );
    }
    let err = failed_with(&reggie(
        &env,
        &ctx,
        &config,
        &[
            "--buildkit-addr",
            "docker-context://nowhere",
            "-t",
            "x:1",
            ".",
        ],
        &[],
    ));
    assert!(
        err.contains("docker-context://nowhere") && err.contains("`docker context ls`"),
        "{err}"
    );
}

/// `ssh://HOST/SOCKET`: `ssh HOST buildctl --addr unix://SOCKET
/// dial-stdio`, as buildctl's ssh helper runs it, through the services'
/// sshd. No buildctl is installed there: REGGIE_SSH_COMMAND is ssh with
/// a stand-in for it that does what `buildctl dial-stdio` does (pipes
/// stdio to the socket, here a relay of the daemon's BuildKit).
#[test]
fn remote_over_ssh_runs_buildctl_dial_stdio() {
    let Some(env) = common::services() else {
        return;
    };
    let images = Images::new(&env, "remote");
    let Some(ssh_config) = env.get("REGGIE_TEST_SSH_CONFIG").cloned() else {
        common::missing_prerequisite(
            "remote_over_ssh_runs_buildctl_dial_stdio",
            "the services' env names no sshd (REGGIE_TEST_SSH_CONFIG)",
            "Start it with `bash tests/services.sh`.",
        );
        return;
    };
    let (work, config) = work();
    let sock = work.path().join("bk.sock");
    let _relay = Relay::start(&env["DOCKER_HOST"], &sock);
    let log = work.path().join("buildctl-args");
    let stand_in = work.path().join("buildctl");
    std::fs::write(
        &stand_in,
        format!(
            "#!/bin/sh\necho \"$@\" >>{log}\n[ \"$1\" = --addr ] || exit 2\naddr=${{2#unix://}}\n[ \"$3\" = dial-stdio ] || exit 2\nexec socat - UNIX-CONNECT:\"$addr\"\n",
            log = log.display()
        ),
    )
    .unwrap();
    let ssh = work.path().join("ssh");
    std::fs::write(
        &ssh,
        format!(
            "#!/bin/sh\nfor a; do shift; [ \"$a\" = buildctl ] && a={stand_in}; set -- \"$@\" \"$a\"; done\nexec ssh -F {ssh_config} \"$@\"\n",
            stand_in = stand_in.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    for f in [&stand_in, &ssh] {
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let ctx = Ctx::new()
        .dockerfile("FROM scratch\nCOPY a.txt /a.txt\n")
        .file("a.txt", "over ssh\n");
    let addr = format!("ssh://reggie-test{}", sock.display());
    let tag = &images.tag("ssh");
    let ssh_cmd = ssh.display().to_string();
    let out = reggie(
        &env,
        &ctx,
        &config,
        &["--buildkit-addr", &addr, "-t", tag, "."],
        &[("REGGIE_SSH_COMMAND", &ssh_cmd)],
    );
    ok(&out);
    assert_eq!(image_fs(&env, tag)["a.txt"].content, b"over ssh\n");
    let args = std::fs::read_to_string(&log).unwrap();
    assert!(
        args.lines()
            .all(|l| l == format!("--addr unix://{} dial-stdio", sock.display())),
        "{args}"
    );
    // A host that is not there: what to check, said.
    let err = failed_with(&reggie(
        &env,
        &ctx,
        &config,
        &[
            "--buildkit-addr",
            "ssh://reggie-nowhere.invalid/s.sock",
            "-t",
            "x:1",
            ".",
        ],
        &[("REGGIE_SSH_COMMAND", &ssh_cmd)],
    ));
    assert!(err.contains("`ssh HOST buildctl dial-stdio`"), "{err}");
}
