//! End-to-end tests of `image --output`, `--cache-from`/`--cache-to` and
//! Ctrl-C during a BuildKit session, against the real daemon and registry
//! started by `tests/services.sh` (a missing service fails the test), side
//! by side with `DOCKER_BUILDKIT=1 /usr/bin/docker build` (the 20.10 CLI
//! that speaks BuildKit sessions).
#![cfg(feature = "image")]

use std::collections::BTreeMap;
use std::io::BufRead;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output};

#[path = "common/build.rs"]
mod build;
mod common;
use build::{ok, reggie_cmd, text};
use common::docker::{assert_same_fs, dir_fs, docker_build, docker_may_fail, tar_fs, Cli};

fn nonce(prefix: &str) -> String {
    format!(
        "bkout-{prefix}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

/// `reggie-build image ARGS` in `cwd`, with only the services' daemon
/// settings and `home/.docker` as HOME and DOCKER_CONFIG (no ambient
/// credentials).
fn reggie(env: &BTreeMap<String, String>, cwd: &Path, args: &[&str], home: &Path) -> Output {
    build::reggie(env, cwd, &home.join(".docker"), args, &[])
}

/// `docker ARGS` on the test daemon; the caller checks the status.
fn docker(env: &BTreeMap<String, String>, args: &[&str]) -> Output {
    docker_may_fail(env, Cli::Classic, Path::new("/"), args)
}

fn json_events(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The entries of a tar file.
fn tar_file(path: &Path) -> common::docker::Fs {
    tar_fs(std::fs::File::open(path).unwrap())
}

/// Same paths, types, modes, owners, link targets and contents.
fn assert_same(what: &str, ours: &common::docker::Fs, theirs: &common::docker::Fs) {
    assert_same_fs(what, ours, theirs, Default::default());
}

/// A two-stage build whose result has directories with their own modes,
/// an executable, an empty file, symlinks (one dangling, one absolute),
/// a hard link, and the context itself.
fn output_fixture(tag: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    std::fs::create_dir_all(r.join("src/deep")).unwrap();
    std::fs::write(r.join("src/deep/a.txt"), "alpha\n").unwrap();
    std::fs::write(r.join("src/run.sh"), "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(r.join("src/run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(r.join("src/empty"), "").unwrap();
    std::fs::write(r.join("with space.txt"), vec![b'z'; 300_000]).unwrap();
    std::os::unix::fs::symlink("deep/a.txt", r.join("src/ln")).unwrap();
    std::fs::write(
        r.join("Dockerfile"),
        format!(
            "FROM reggie-busybox:latest AS gen\n\
             RUN mkdir -p /out/d/e && echo {tag} > /out/d/x && ln -s x /out/d/y \
             && ln -s /etc/passwd /out/d/abs && ln -s missing /out/d/dangling \
             && ln /out/d/x /out/d/hard && chmod 0750 /out/d && chmod 0700 /out/d/e \
             && touch /out/d/e/f && chmod 0600 /out/d/e/f\n\
             FROM scratch\n\
             COPY --from=gen /out /gen/\n\
             COPY . /ctx/\n"
        ),
    )
    .unwrap();
    dir
}

/// `-o type=local,dest=DIR` and `-o type=tar,dest=FILE` give exactly the
/// files the docker CLI's `-o` gives on the same build.
#[test]
fn outputs_match_docker_build() {
    let Some(env) = common::services() else {
        return;
    };
    let tag = nonce("out");
    let fx = output_fixture(&tag);
    let home = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let o = out.path();

    let theirs_dir = o.join("docker-dir");
    docker_build(
        &env,
        Cli::BuildKit,
        fx.path(),
        &[
            "--network",
            "none",
            "-o",
            &format!("type=local,dest={}", theirs_dir.display()),
            ".",
        ],
    );
    // Into a directory that does not exist yet, two levels down.
    let ours_dir = o.join("ours/dir");
    let res = reggie(
        &env,
        fx.path(),
        &[
            "--network",
            "none",
            "--json",
            "-o",
            &format!("type=local,dest={}", ours_dir.display()),
            ".",
        ],
        home.path(),
    );
    ok(&res);
    let result = json_events(&res)
        .into_iter()
        .find(|e| e["event"] == "result")
        .unwrap();
    assert_eq!(result["ok"], true);
    assert!(result.get("image_id").is_none(), "no image: {result}");
    let ours = dir_fs(&ours_dir);
    assert!(
        ours.contains_key("gen/d/hard") && ours.contains_key("ctx/src/ln"),
        "{:?}",
        ours.keys()
    );
    assert_eq!(ours["gen/d/x"].content, format!("{tag}\n").into_bytes());
    assert_same("-o type=local", &ours, &dir_fs(&theirs_dir));
    assert_eq!(
        std::fs::metadata(ours_dir.join("gen/d/hard"))
            .unwrap()
            .ino(),
        std::fs::metadata(ours_dir.join("gen/d/x")).unwrap().ino(),
        "the hard link is one"
    );

    // The DIR shorthand, into the same directory again: merged, same tree.
    let res = reggie(
        &env,
        fx.path(),
        &["--network", "none", "-o", ours_dir.to_str().unwrap(), "."],
        home.path(),
    );
    ok(&res);
    assert!(
        res.stdout.is_empty(),
        "no image id on stdout: {}",
        text(&res)
    );
    assert_same("-o DIR, again", &dir_fs(&ours_dir), &dir_fs(&theirs_dir));

    let theirs_tar = o.join("docker.tar");
    docker_build(
        &env,
        Cli::BuildKit,
        fx.path(),
        &[
            "--network",
            "none",
            "-o",
            &format!("type=tar,dest={}", theirs_tar.display()),
            ".",
        ],
    );
    let ours_tar = o.join("ours.tar");
    ok(&reggie(
        &env,
        fx.path(),
        &[
            "--network",
            "none",
            "-o",
            &format!("type=tar,dest={}", ours_tar.display()),
            ".",
        ],
        home.path(),
    ));
    assert_same("-o type=tar", &tar_file(&ours_tar), &tar_file(&theirs_tar));
    // `-o -`: the tar on stdout, byte for byte the file's entries.
    let res = reggie(
        &env,
        fx.path(),
        &["--network", "none", "-o", "-", "."],
        home.path(),
    );
    ok(&res);
    let piped = o.join("piped.tar");
    std::fs::write(&piped, &res.stdout).unwrap();
    assert_same("-o -", &tar_file(&piped), &tar_file(&theirs_tar));
    let leftovers: Vec<String> = std::fs::read_dir(o)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("reggie-"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

/// What the daemon's BuildKit cannot do is refused before anything is
/// sent, with what it can do and what to use instead.
#[test]
fn unsupported_outputs_and_caches_say_what_works() {
    let Some(env) = common::services() else {
        return;
    };
    let fx = output_fixture("unsupported");
    let home = tempfile::tempdir().unwrap();
    for (args, want) in [
        (
            vec!["--cache-to", "type=local,dest=cache"],
            vec![
                "--cache-to type=local",
                "exports only inline cache",
                "type=inline",
                "--buildkit-addr",
            ],
        ),
        (
            vec!["--cache-from", "type=gha"],
            vec!["--cache-from type=gha", "type=registry,ref=IMAGE"],
        ),
        (
            vec!["-o", "type=oci,dest=x.tar"],
            vec!["no \"oci\" exporter", "type=local,dest=DIR", "docker save"],
        ),
        (
            vec!["--platform", "linux/amd64,linux/arm64"],
            vec![
                "one platform per build",
                "--platform linux/amd64, then --platform linux/arm64",
            ],
        ),
        (
            vec!["-o", "type=local,dest=x", "-t", "bkout-x:1", "--push"],
            vec!["--push and --output type=local cannot be used together"],
        ),
    ] {
        let mut all = args.clone();
        all.push(".");
        let res = reggie(&env, fx.path(), &all, home.path());
        assert_eq!(res.status.code(), Some(1), "{args:?}: {}", text(&res));
        let stderr = String::from_utf8_lossy(&res.stderr);
        for w in want {
            assert!(stderr.contains(w), "{args:?}: {w:?} not in {stderr}");
        }
        assert!(
            !stderr.contains("upload:"),
            "refused before the build: {stderr}"
        );
    }
    assert!(!fx.path().join("x").exists() && !fx.path().join("cache").exists());
}

/// The builder cache records whose description names `needle`.
fn cache_records(env: &BTreeMap<String, String>, needle: &str) -> Vec<String> {
    let out = docker(
        env,
        &["system", "df", "-v", "--format", "{{json .BuildCache}}"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let records: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap_or_default();
    records
        .iter()
        .filter(|r| {
            r["Description"]
                .as_str()
                .is_some_and(|d| d.contains(needle))
        })
        .filter_map(|r| r["ID"].as_str().map(str::to_string))
        .collect()
}

/// `--cache-to type=inline`, pushed; then a second daemon with a data root
/// of its own (none of the first one's build cache, as on a fresh CI
/// runner) builds with `--cache-from` that image and reuses its layers:
/// the steps are reported CACHED and the image has the first build's layers.
#[test]
fn inline_cache_is_imported_from_the_registry() {
    use base64::Engine;
    let Some(env) = common::services() else {
        return;
    };
    let Some(second) = env.get("REGGIE_TEST_DOCKER2").cloned() else {
        common::missing_prerequisite(
            "inline_cache_is_imported_from_the_registry",
            "the services' env names no second daemon (REGGIE_TEST_DOCKER2)",
            "Restart the services with `bash tests/services.sh`.",
        );
        return;
    };
    let mut env2 = env.clone();
    env2.insert("DOCKER_HOST".into(), second);
    let registry = env["REGGIE_TEST_REGISTRY"].clone();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        env["REGGIE_TEST_REGISTRY_USER"], env["REGGIE_TEST_REGISTRY_PASSWORD"]
    ));
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join(".docker")).unwrap();
    std::fs::write(
        home.path().join(".docker/config.json"),
        serde_json::json!({ "auths": { registry.clone(): { "auth": auth } } }).to_string(),
    )
    .unwrap();
    let n = nonce("cache");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!("FROM reggie-busybox:latest\nRUN echo {n} > /one\nRUN echo {n}-two > /two\n"),
    )
    .unwrap();
    let image = format!(
        "{registry}/bkout-cache:{}",
        n.rsplit('-').next().unwrap_or("x")
    );
    let res = reggie(
        &env,
        dir.path(),
        &[
            "--network",
            "none",
            "--cache-to",
            "type=inline",
            "-t",
            &image,
            "--push",
            "--json",
            ".",
        ],
        home.path(),
    );
    ok(&res);
    let layers = |env: &BTreeMap<String, String>, image: &str| {
        let out = docker(
            env,
            &[
                "image",
                "inspect",
                "--format",
                "{{json .RootFS.Layers}}",
                image,
            ],
        );
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let built = layers(&env, &image);
    let _ = docker(&env, &["rmi", &image]);
    assert!(
        cache_records(&env2, &n).is_empty(),
        "the second daemon has no build cache of these steps"
    );

    let res = reggie(
        &env2,
        dir.path(),
        &[
            "--network",
            "none",
            "--cache-from",
            &format!("type=registry,ref={image}"),
            "-t",
            "bkout-cache-from:x",
            "--json",
            ".",
        ],
        home.path(),
    );
    ok(&res);
    let events = json_events(&res);
    let cached: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "vertex" && e["status"] == "cached")
        .filter_map(|e| e["name"].as_str())
        .collect();
    for step in [
        format!("RUN echo {n} > /one"),
        format!("RUN echo {n}-two > /two"),
    ] {
        assert!(
            cached.iter().any(|c| c.ends_with(&step)),
            "{step} not CACHED on the second daemon: {cached:?}\n{}",
            text(&res)
        );
    }
    assert_eq!(
        layers(&env2, "bkout-cache-from:x"),
        built,
        "the second daemon's image is made of the first build's layers"
    );
    let _ = docker(&env2, &["rmi", "bkout-cache-from:x"]);
    let _ = docker(&env2, &["builder", "prune", "-af"]);
}

/// Whether a process on this machine has `needle` in its command line.
fn process_running(needle: &str) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return false;
    };
    dir.flatten().any(|p| {
        std::fs::read(p.path().join("cmdline"))
            .is_ok_and(|c| String::from_utf8_lossy(&c).contains(needle))
    })
}

/// Waits (bounded) for `cond`; false when it never held.
fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..600 {
        if cond() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    false
}

/// Sends SIGINT once `ready` holds for a line of stdout (JSON events) or
/// the polled state; returns the exit status and the output seen.
fn interrupt_when(
    mut cmd: Command,
    mut ready: impl FnMut(&str) -> bool,
) -> (std::process::ExitStatus, Vec<String>) {
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let tx2 = tx.clone();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx2.send(line);
        }
    });
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let line = rx
            .recv_timeout(std::time::Duration::from_millis(50))
            .unwrap_or_default();
        if !line.is_empty() {
            seen.push(line.clone());
        }
        if ready(&line) {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("ended ({status}) before the moment to interrupt: {seen:?}");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never ready: {seen:?}"
        );
    }
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let status = child.wait().unwrap();
    while let Ok(l) = rx.recv_timeout(std::time::Duration::from_millis(500)) {
        seen.push(l);
    }
    (status, seen)
}

fn temp_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            // Files land as `.tmp.reggie-*` in a `.DEST.tmp-*` directory
            // beside the destination.
            if name.contains("reggie-") || name.contains(".tmp-") {
                out.push(name);
            }
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(e.path());
            }
        }
    }
    out
}

/// Ctrl-C while the context travels, while a RUN step sleeps, and while
/// the output comes back: exit 130, the step's process gone, nothing
/// left running in the daemon, no temporary files.
#[test]
fn ctrl_c_during_transfer_build_and_export() {
    let Some(env) = common::services() else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let n = nonce("ctrlc");
    let dir = tempfile::tempdir().unwrap();
    // A big context, 64 files of 8 MiB: its transfer outlasts several
    // progress ticks (500 ms) even on a fast machine.
    std::fs::create_dir_all(dir.path().join("big")).unwrap();
    for i in 0..64 {
        std::fs::write(
            dir.path().join(format!("big/{i:02}")),
            vec![i as u8; 8 << 20],
        )
        .unwrap();
    }
    let out_dir = tempfile::tempdir().unwrap();
    let dest = out_dir.path().join("dest");
    let dest_arg = format!("type=local,dest={}", dest.display());
    let containers_before = docker(&env, &["ps", "-aq", "--no-trunc"]).stdout;

    // 1. Mid-transfer: the first upload progress that is not the end.
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!("FROM scratch\nCOPY big /big\nCOPY Dockerfile /{n}\n"),
    )
    .unwrap();
    let cmd = reggie_cmd(
        &env,
        dir.path(),
        &home.path().join(".docker"),
        &["--json", "--no-cache", "-o", &dest_arg, "."],
        &[],
    );
    let (status, seen) = interrupt_when(cmd, |l| {
        serde_json::from_str::<serde_json::Value>(l).is_ok_and(|e| {
            e["event"] == "upload" && e["done"] == false && e["bytes"].as_u64() > Some(0)
        })
    });
    assert_eq!(status.code(), Some(130), "{seen:?}");
    assert!(seen.iter().any(|l| l.contains("interrupted")), "{seen:?}");

    // 2. Mid-build: a RUN step that sleeps.
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!("FROM reggie-busybox:latest\nRUN sleep 300; echo {n}\n"),
    )
    .unwrap();
    let cmd = reggie_cmd(
        &env,
        dir.path(),
        &home.path().join(".docker"),
        &["--network", "none", "-o", &dest_arg, "."],
        &[],
    );
    let (status, seen) = interrupt_when(cmd, |_| process_running(&n));
    assert_eq!(status.code(), Some(130), "{seen:?}");
    assert!(
        eventually(|| !process_running(&n)),
        "the RUN step still runs after SIGINT"
    );

    // 3. Mid-export: the output's first temporary file.
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!("FROM scratch\nCOPY big /big\nCOPY Dockerfile /{n}\n"),
    )
    .unwrap();
    let cmd = reggie_cmd(
        &env,
        dir.path(),
        &home.path().join(".docker"),
        &["-o", &dest_arg, "."],
        &[],
    );
    let (status, seen) = interrupt_when(cmd, |_| !temp_files(out_dir.path()).is_empty());
    assert_eq!(status.code(), Some(130), "{seen:?}");
    assert!(
        temp_files(out_dir.path()).is_empty(),
        "temporary files left: {:?}",
        temp_files(out_dir.path())
    );
    assert!(!dest.exists(), "a partial output is left");

    // Nothing left in the daemon: no new container, and a build runs.
    let containers_after = docker(&env, &["ps", "-aq", "--no-trunc"]).stdout;
    let new: Vec<&str> = std::str::from_utf8(&containers_after)
        .unwrap()
        .lines()
        .filter(|c| !String::from_utf8_lossy(&containers_before).contains(c))
        .collect();
    assert!(
        new.iter().all(|c| {
            let inspect = docker(&env, &["inspect", "--format", "{{.Config.Cmd}}", c]);
            !String::from_utf8_lossy(&inspect.stdout).contains(&n)
        }),
        "a container of these builds is left: {new:?}"
    );
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\nCOPY Dockerfile /\n",
    )
    .unwrap();
    ok(&reggie(
        &env,
        dir.path(),
        &["-o", &dest_arg, "."],
        home.path(),
    ));
    assert!(dest.join("Dockerfile").is_file());
}

/// Issue 23 item 4: `-o type=local,dest=DIR`, `-o DIR` and
/// `-o type=tar,dest=FILE` refuse a destination that is a link the
/// repository holds, or one reached through such a link, before building;
/// nothing is written where the link points. A link above the repository
/// (the user's own) is followed.
#[test]
fn linked_output_destinations_are_refused() {
    let Some(env) = common::services() else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let top = tempfile::tempdir().unwrap();
    let top = std::fs::canonicalize(top.path()).unwrap();
    let repo = top.join("repo");
    let outside = top.join("outside");
    std::fs::create_dir_all(repo.join(".git")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("precious"), "precious\n").unwrap();
    let n = nonce("link");
    std::fs::write(
        repo.join("Dockerfile"),
        format!("FROM scratch\nCOPY Dockerfile /{n}\n"),
    )
    .unwrap();
    std::os::unix::fs::symlink(&outside, repo.join("dist")).unwrap();
    std::os::unix::fs::symlink(&outside, repo.join("sub")).unwrap();
    std::os::unix::fs::symlink(outside.join("precious"), repo.join("out.tar")).unwrap();
    let listing = || {
        let mut v: Vec<_> = std::fs::read_dir(&outside)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        v.sort();
        v
    };
    let before = listing();
    let abs_dist = format!("type=local,dest={}", repo.join("dist").display());
    for (args, says) in [
        (vec!["-o", "type=local,dest=dist"], "is a symbolic link"),
        (vec!["-o", "dist"], "is a symbolic link"),
        (
            vec!["-o", "type=local,dest=dist/deeper"],
            "symbolic link inside",
        ),
        (
            vec!["-o", "type=tar,dest=sub/x.tar"],
            "symbolic link inside",
        ),
        (vec!["-o", "type=tar,dest=out.tar"], "is a symbolic link"),
        (vec!["-o", abs_dist.as_str()], "is a symbolic link"),
    ] {
        let mut all = args.clone();
        all.push(".");
        let started = std::time::Instant::now();
        let res = reggie(&env, &repo, &all, home.path());
        let err = text(&res);
        assert!(!res.status.success(), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(
            !err.contains(&format!("/{n}")),
            "{args:?}: it built first: {err}"
        );
        assert_eq!(listing(), before, "{args:?}: written through the link");
        assert_eq!(
            std::fs::read_to_string(outside.join("precious")).unwrap(),
            "precious\n"
        );
        let _ = started;
    }
    // From outside the repository, a link in the context is still refused.
    let res = reggie(&env, &top, &["-o", abs_dist.as_str(), "repo"], home.path());
    assert!(!res.status.success(), "{}", text(&res));
    assert_eq!(listing(), before);

    // A link above the repository: the user's own, followed.
    std::fs::create_dir(top.join("real-home")).unwrap();
    std::os::unix::fs::symlink(top.join("real-home"), top.join("home")).unwrap();
    let dest = format!("type=local,dest={}", top.join("home/out").display());
    ok(&reggie(&env, &repo, &["-o", &dest, "."], home.path()));
    assert!(top.join("real-home/out").join(&n).is_file());
}

/// Issue 23 item 11: an output of 100,000 small files arrives whole (h2
/// closed the session after about 1,200 with GOAWAY ENHANCE_YOUR_CALM),
/// with nothing left beside it.
#[test]
fn a_hundred_thousand_small_files_arrive() {
    let Some(env) = common::services() else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let n = nonce("many");
    // 100 directories of 1,000 files, each holding its own name, written
    // by awk (no process per file); the stage itself is the output (a COPY
    // of 100k files into another stage takes the daemon longer than the
    // transfer).
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!(
            "FROM reggie-busybox:latest AS gen\n\
             RUN mkdir /out && cd /out && awk 'BEGIN {{ for (d = 0; d < 100; d++) {{ \
             system(\"mkdir d\" d); for (f = 0; f < 1000; f++) {{ n = d \".\" f; p = \"d\" d \"/\" n; \
             print n > p; close(p) }} }} }}' && echo {n} > /out/nonce\n"
        ),
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("dest");
    let arg = format!("type=local,dest={}", dest.display());
    let res = reggie(
        &env,
        dir.path(),
        &["--network", "none", "-o", &arg, "."],
        home.path(),
    );
    ok(&res);
    let dest = dest.join("out");
    let mut files = 0;
    for d in 0..100 {
        for f in 0..1000 {
            let name = format!("{d}.{f}");
            let got = std::fs::read_to_string(dest.join(format!("d{d}/{name}"))).unwrap();
            assert_eq!(got, format!("{name}\n"));
            files += 1;
        }
        assert_eq!(
            std::fs::read_dir(dest.join(format!("d{d}")))
                .unwrap()
                .count(),
            1000
        );
    }
    assert_eq!(files, 100_000);
    assert_eq!(
        std::fs::read_to_string(dest.join("nonce")).unwrap(),
        format!("{n}\n")
    );
    let beside: Vec<_> = std::fs::read_dir(out.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(beside, ["dest"], "nothing left beside the destination");
}
