//! End-to-end tests of `reggie-build image` against a real Docker daemon,
//! registry and moto (a local ECR API), started by `tests/services.sh`.
//!
//! They read `$REGGIE_SERVICES_DIR/env` (default /tmp/reggie-services/env).
//! Without it they fail, unless `REGGIE_ALLOW_SKIP=1` turns that into a
//! counted skip.
// The image builder is the default feature `image`.
#![cfg(feature = "image")]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

mod common;

use common::context::Ctx;
use common::docker::{assert_same_fs, image_fs, text, Cli::Classic, Compare};
use common::images::{unique, Images};

fn docker(env: &BTreeMap<String, String>, cwd: &Path, args: &[&str]) -> Output {
    common::docker::docker(env, Classic, cwd, args)
}

fn docker_may_fail(env: &BTreeMap<String, String>, cwd: &Path, args: &[&str]) -> Output {
    common::docker::docker_may_fail(env, Classic, cwd, args)
}

const ECR_HOST: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
const ECR_PASSWORD: &str = "123456789012-auth-token";

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The services' environment, or `None` when skips are allowed and the
/// services are missing (see [`common::missing_prerequisite`]).
fn services() -> Option<BTreeMap<String, String>> {
    common::services()
}

fn reggie(
    env: &BTreeMap<String, String>,
    cwd: &Path,
    args: &[&str],
    extra_env: &[(&str, &str)],
    stdin: Option<&str>,
) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_reggie-build"));
    cmd.current_dir(cwd).arg("image").args(args);
    // Only the daemon settings the test passes apply, never the shell's.
    for var in [
        "DOCKER_HOST",
        "DOCKER_CONTEXT",
        "DOCKER_TLS_VERIFY",
        "DOCKER_CERT_PATH",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    // No ambient credentials or config of the machine's user.
    let home = tempfile::tempdir().unwrap();
    cmd.env("HOME", home.path())
        .env("DOCKER_CONFIG", home.path().join(".docker"))
        .env_remove("AWS_PROFILE")
        .env_remove("REGGIE_REGISTRY_ENDPOINT");
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run reggie-build");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    child.wait_with_output().unwrap()
}

fn ok(out: &Output) {
    assert!(out.status.success(), "reggie-build failed:\n{}", text(out));
}

fn inspect(env: &BTreeMap<String, String>, image: &str) -> serde_json::Value {
    let out = docker(env, Path::new("/"), &["image", "inspect", image]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v[0].clone()
}

#[test]
fn scratch_build_matches_docker_build() {
    let Some(env) = services() else { return };
    let images = Images::new(&env, "scratch");
    let ctx = repo_root().join("fixtures/reggie");
    let df = "../image/scratch.Dockerfile";
    // Both of the daemon's builders, from the minimal context, against
    // the classic `docker build` of the whole one.
    for builder in ["classic", "buildkit"] {
        let tag = images.tag(&format!("ours-{builder}"));
        let out = reggie(
            &env,
            &ctx,
            &[
                "-f",
                df,
                "-t",
                &tag,
                "--no-cache",
                "--builder",
                builder,
                ".",
            ],
            &[],
            None,
        );
        ok(&out);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("upload: "), "{stderr}");
        assert!(stderr.contains("step 2/"), "{stderr}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.trim().starts_with("sha256:"), "{stdout}");
    }
    let stderr_of_buildkit = {
        let out = reggie(
            &env,
            &ctx,
            &["-f", df, "-t", &images.tag("again"), "."],
            &[],
            None,
        );
        ok(&out);
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    // BuildKit's progress is decoded, never dumped: numbered operations
    // with their state, and no base64 trace items.
    assert!(
        stderr_of_buildkit.contains(" CACHED"),
        "{stderr_of_buildkit}"
    );
    assert!(
        stderr_of_buildkit.contains("[internal] load build context"),
        "{stderr_of_buildkit}"
    );
    assert!(
        !stderr_of_buildkit.contains("moby.buildkit.trace"),
        "{stderr_of_buildkit}"
    );

    docker(
        &env,
        &ctx,
        &[
            "build",
            "-q",
            "--no-cache",
            "-f",
            df,
            "-t",
            &images.tag("docker"),
            ".",
        ],
    );
    let theirs = image_fs(&env, &images.tag("docker"));
    for builder in ["classic", "buildkit"] {
        let ours = image_fs(&env, &images.tag(&format!("ours-{builder}")));
        assert!(ours.contains_key("app/app/main.py"), "{:?}", ours.keys());
        assert!(ours.contains_key("app/requirements.txt"));
        assert_same_fs("scratch build", &ours, &theirs, Compare::default());
    }

    let labels = &inspect(&env, &images.tag("ours-buildkit"))["Config"]["Labels"];
    assert!(
        labels["dev.reggie-build.context-digest"].is_string(),
        "label missing: {labels}"
    );
    // The clock's time is no label: it would change the image every build.
    assert!(
        labels.get("org.opencontainers.image.created").is_none(),
        "{labels}"
    );
    assert!(labels["dev.reggie-build.context-digest"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    if Command::new("git")
        .arg("-C")
        .arg(&ctx)
        .args(["rev-parse", "HEAD"])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        assert!(labels["org.opencontainers.image.revision"].is_string());
    }
}

/// `COPY .` must see exactly what `docker build` shows: neither the
/// Dockerfile added to the upload nor an ignore file that excludes itself.
#[test]
fn dockerfile_travels_but_stays_invisible() {
    let Some(env) = services() else { return };
    let images = Images::new(&env, "visible");
    let body = "FROM scratch\nCOPY . /ctx/\n";
    let dir = Ctx::in_subdir("ctx")
        .file("a.txt", "a\n")
        .file("sub/b.txt", "b\n")
        .file("secret.txt", "no\n")
        // 1. Dockerfile outside the context, no ignore file.
        .outside("outside.Dockerfile", body)
        // 2. Dockerfile inside, excluded along with the ignore file itself.
        .dockerfile(body)
        .outside("ignore-self", "Dockerfile\n.dockerignore\nsecret.txt\n")
        // 3. Dockerfile inside, excluded; the ignore file is sent.
        .outside("ignore-df", "Dockerfile\nsecret.txt\n");
    let ctx = dir.path();
    let outside = dir.temp().join("outside.Dockerfile");

    let cases: [(&str, Option<&str>, &Path); 3] = [
        ("outside", None, outside.as_path()),
        ("ignoreself", Some("ignore-self"), &ctx.join("Dockerfile")),
        ("ignoredf", Some("ignore-df"), &ctx.join("Dockerfile")),
    ];
    for (name, ignore, df) in cases {
        let _ = std::fs::remove_file(ctx.join(".dockerignore"));
        if let Some(src) = ignore {
            std::fs::copy(dir.temp().join(src), ctx.join(".dockerignore")).unwrap();
        }
        let df = df.to_str().unwrap();
        let ours = images.tag(&format!("{name}-ours"));
        let theirs = images.tag(&format!("{name}-docker"));
        let out = reggie(
            &env,
            ctx,
            &["-f", df, "-t", &ours, "--builder", "classic", "."],
            &[],
            None,
        );
        ok(&out);
        docker(
            &env,
            ctx,
            &["build", "-q", "--no-cache", "-f", df, "-t", &theirs, "."],
        );
        let a = image_fs(&env, &ours);
        let b = image_fs(&env, &theirs);
        let listing: Vec<&String> = a.keys().filter(|k| k.starts_with("ctx")).collect();
        assert!(
            !listing.iter().any(|k| k.contains(".dockerfile.")),
            "{name}: {listing:?}"
        );
        assert_same_fs("build", &a, &b, Compare::default());
    }
}

/// Builds `fixtures/image/fails.Dockerfile` (its third step fails) with
/// `args` added.
fn build_failing_fixture(env: &BTreeMap<String, String>, args: &[&str]) -> Output {
    let mut all = vec!["-f", "fails.Dockerfile"];
    all.extend_from_slice(args);
    all.push(".");
    reggie(env, &repo_root().join("fixtures/image"), &all, &[], None)
}

#[test]
fn failing_run_step_names_the_step() {
    let Some(env) = services() else { return };
    let images = Images::new(&env, "fails");
    let out = build_failing_fixture(&env, &["-t", &images.tag("x"), "--builder", "classic"]);
    assert!(!out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("build failed at Step 3/")
            && stderr.contains("exit 3")
            && stderr.contains("returned a non-zero code: 3"),
        "{stderr}"
    );
    assert!(
        stderr.contains("about to fail"),
        "log tail missing: {stderr}"
    );
    assert!(!stderr.contains("never reached"), "{stderr}");
}

#[test]
fn failing_run_step_names_the_step_with_buildkit() {
    let Some(env) = services() else { return };
    let images = Images::new(&env, "fails");
    // The test daemon runs without a bridge network (--bridge=none).
    let out = build_failing_fixture(&env, &["-t", &images.tag("bk"), "--network", "none"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("build failed at [3/4] RUN echo \"about to fail\" && exit 3")
            && stderr.contains("exit code: 3"),
        "{stderr}"
    );
    let tail = stderr
        .split_once("last output:")
        .map(|(_, t)| t)
        .unwrap_or_default();
    assert!(tail.contains("about to fail"), "log tail missing: {stderr}");
    assert!(!stderr.contains("never reached"), "{stderr}");
}

/// BuildKit syncs the Dockerfile's directory apart from the context, so a
/// Dockerfile the ignore file excludes never reaches the image, even
/// through a COPY of the context root.
#[test]
fn buildkit_upload_with_an_excluded_dockerfile() {
    let Some(env) = services() else { return };
    let images = Images::new(&env, "bkdf");
    let dir = Ctx::new()
        .file("sub/b.txt", "b\n")
        .file("secret.txt", "no\n")
        .dockerignore("Dockerfile\nsecret.txt\n")
        .dockerfile("FROM scratch\nCOPY sub /sub\n");
    let ctx = dir.path();
    let out = reggie(&env, ctx, &["-t", &images.tag("sub"), "."], &[], None);
    ok(&out);
    assert!(!text(&out).contains("travels as"), "{}", text(&out));
    docker(
        &env,
        ctx,
        &["build", "-q", "-t", &images.tag("docker"), "."],
    );
    assert_same_fs(
        "excluded Dockerfile",
        &image_fs(&env, &images.tag("sub")),
        &image_fs(&env, &images.tag("docker")),
        Compare::default(),
    );

    dir.write("Dockerfile", "FROM scratch\nCOPY . /ctx/\n");
    let out = reggie(&env, ctx, &["-t", &images.tag("root"), "."], &[], None);
    ok(&out);
    assert!(!text(&out).contains("travels as"), "{}", text(&out));
    let fs = image_fs(&env, &images.tag("root"));
    assert!(fs.contains_key("ctx/sub/b.txt"), "{:?}", fs.keys());
    assert!(!fs.contains_key("ctx/secret.txt"), "{:?}", fs.keys());
    assert!(
        !fs.keys()
            .any(|k| k.starts_with("ctx/Dockerfile") || k.starts_with("ctx/.dockerfile")),
        "{:?}",
        fs.keys()
    );
}

/// A base image in a registry that needs credentials: each builder pulls
/// it with the ones docker's config holds for that registry, and fails
/// clearly without them.
#[test]
fn private_base_image_pulled_with_docker_config_credentials() {
    use base64::Engine;
    let Some(env) = services() else { return };
    let images = Images::new(&env, "private");
    let registry = env["REGGIE_TEST_REGISTRY"].clone();
    let user = env["REGGIE_TEST_REGISTRY_USER"].clone();
    let password = env["REGGIE_TEST_REGISTRY_PASSWORD"].clone();
    let config = tempfile::tempdir().unwrap();
    let cfg = config.path().to_str().unwrap().to_string();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    std::fs::write(
        config.path().join("config.json"),
        serde_json::json!({ "auths": { registry.clone(): { "auth": auth } } }).to_string(),
    )
    .unwrap();

    // Publish a base, then forget it locally so that builds must pull.
    let base = images.track(format!(
        "{registry}/reggie-e2e/private-base:{}",
        unique("v")
    ));
    let ctx = Ctx::new()
        .dockerfile("FROM reggie-busybox:latest\nCOPY marker /marker\n")
        .file("marker", "base\n");
    let out = reggie(
        &env,
        ctx.path(),
        &["-t", &base, "--push", "."],
        &[("DOCKER_CONFIG", &cfg)],
        None,
    );
    ok(&out);
    docker(&env, Path::new("/"), &["rmi", &base]);

    ctx.write(
        "Dockerfile",
        format!("FROM {base}\nRUN cat /marker > /copied\n"),
    );
    for builder in ["buildkit", "classic"] {
        let tag = images.tag(builder);
        let args = [
            "-t",
            &tag,
            "--builder",
            builder,
            "--network",
            "none",
            "--no-cache",
            ".",
        ];
        let denied = reggie(&env, ctx.path(), &args, &[], None);
        assert_eq!(
            denied.status.code(),
            Some(1),
            "{builder}: {}",
            text(&denied)
        );
        assert!(
            text(&denied).contains("a base image needs credentials: `docker login`"),
            "{builder}: {}",
            text(&denied)
        );
        let out = reggie(&env, ctx.path(), &args, &[("DOCKER_CONFIG", &cfg)], None);
        ok(&out);
        assert_no_secret(&out, &password);
        let fs = image_fs(&env, &tag);
        assert_eq!(
            fs.get("copied").map(|f| f.content.as_slice()),
            Some(&b"base\n"[..]),
            "{builder}"
        );
        // The classic builder keeps the pulled base under its name.
        let _ = docker_may_fail(&env, Path::new("/"), &["rmi", &base]);
    }
}

/// `ssh://` daemons through `ssh HOST docker system dial-stdio`, with
/// both builders (BuildKit's session travels over the same connection),
/// and a refused login named with what ssh said.
#[test]
fn builds_over_ssh() {
    let Some(env) = services() else { return };
    let images = Images::new(&env, "ssh");
    let config = env["REGGIE_TEST_SSH_CONFIG"].clone();
    let ctx = scratch_context();
    let ssh = format!("ssh -F {config}");
    let mut over_ssh = env.clone();
    over_ssh.insert("DOCKER_HOST".into(), "ssh://reggie-test".into());
    for builder in ["buildkit", "classic"] {
        let tag = images.tag(builder);
        let out = reggie(
            &over_ssh,
            ctx.path(),
            &["-t", &tag, "--builder", builder, "--json", "."],
            &[("REGGIE_SSH_COMMAND", &ssh)],
            None,
        );
        ok(&out);
        // A remote daemon: the classic upload is compressed; BuildKit
        // pulls the files it needs over its session instead.
        let want = if builder == "classic" { "gzip" } else { "none" };
        assert_eq!(compression_of(&out), want, "{}", text(&out));
        assert!(image_fs(&env, &tag).contains_key("hello.txt"));
    }

    let nobody = tempfile::tempdir().unwrap();
    let bad_config = nobody.path().join("ssh_config");
    let refused = std::fs::read_to_string(&config)
        .unwrap()
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("IdentityFile") {
                format!(
                    "    IdentityFile {}",
                    nobody.path().join("no-such-key").display()
                )
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&bad_config, refused).unwrap();
    let out = reggie(
        &over_ssh,
        ctx.path(),
        &["-t", &images.tag("refused"), "."],
        &[(
            "REGGIE_SSH_COMMAND",
            &format!("ssh -F {}", bad_config.display()),
        )],
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("ssh://reggie-test")
            && stderr.contains("Permission denied")
            && stderr.contains("REGGIE_SSH_COMMAND"),
        "{stderr}"
    );
}

/// On a terminal the build shows a live region (redrawn with ANSI
/// escapes) under the lines that stay; the image id still ends stdout.
#[test]
fn live_view_on_a_terminal() {
    let Some(env) = services() else { return };
    let images = Images::new(&env, "tty");
    let tag = images.tag("x");
    let ctx = scratch_context();
    let home = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_reggie-build");
    // `script` gives the command a pseudo-terminal and copies its output.
    let out = Command::new("script")
        .args(["-qefc"])
        .arg(format!("{bin} image -t {tag} --no-cache --network none ."))
        .arg("/dev/null")
        .current_dir(ctx.path())
        .envs(&env)
        .env("HOME", home.path())
        .env("DOCKER_CONFIG", home.path().join(".docker"))
        .stdin(Stdio::null())
        .output()
        .expect("run script(1)");
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("\x1b[J"), "no redraw: {shown:?}");
    assert!(shown.contains("> step 1/1: COPY hello.txt /"), "{shown:?}");
    assert!(shown.contains(&format!("tagged: {tag}")), "{shown:?}");
    let last = shown.trim_end().lines().last().unwrap_or_default();
    assert!(
        last.trim_start_matches(|c: char| c != 's')
            .starts_with("sha256:"),
        "{last:?}"
    );
}

/// A stand-in for the AWS SSO portal (moto has none): it writes the token
/// cache an `aws sso login` leaves, then answers GetRoleCredentials for
/// that token only, and logs what it was asked.
const SSO_PORTAL: &str = r#"
import hashlib, http.server, json, os, sys, urllib.parse
home, start_url, token, log = sys.argv[1:5]
cache = os.path.join(home, ".aws", "sso", "cache")
os.makedirs(cache, exist_ok=True)
with open(os.path.join(cache, hashlib.sha1(start_url.encode()).hexdigest() + ".json"), "w") as f:
    json.dump({"accessToken": token, "expiresAt": "2099-01-01T00:00:00Z",
               "region": "us-east-1", "startUrl": start_url}, f)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        u = urllib.parse.urlparse(self.path)
        q = urllib.parse.parse_qs(u.query)
        ok = (u.path == "/federation/credentials"
              and self.headers.get("x-amz-sso_bearer_token") == token)
        with open(log, "a") as f:
            f.write(json.dumps({"path": u.path, "query": q, "ok": ok}) + "\n")
        if not ok:
            self.send_response(401); self.end_headers(); return
        body = json.dumps({"roleCredentials": {
            "accessKeyId": "ASIASSOTEST", "secretAccessKey": "sso-secret-key-do-not-print",
            "sessionToken": "sso-session-token", "expiration": 4070908800000}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;

/// ECR credentials from an SSO profile (`aws sso login` done): the token
/// cache, the portal's GetRoleCredentials, then ECR's token, then a push.
#[test]
fn push_with_an_sso_profile() {
    use std::io::BufRead;
    let Some(env) = services() else { return };
    let images = Images::new(&env, "push");
    let ctx = scratch_context();
    let home = tempfile::tempdir().unwrap();
    let start_url = "https://reggie-test.awsapps.com/start";
    let sso_token = "sso-access-token-do-not-print";
    let log = home.path().join("portal.log");
    let mut portal = Command::new("python3")
        .args(["-c", SSO_PORTAL])
        .arg(home.path())
        .args([start_url, sso_token])
        .arg(&log)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the SSO portal stand-in");
    let mut port = String::new();
    std::io::BufReader::new(portal.stdout.take().unwrap())
        .read_line(&mut port)
        .unwrap();
    let config = home.path().join("aws-config");
    std::fs::write(
        &config,
        format!(
            "[profile reggie-sso]\nsso_start_url = {start_url}\nsso_region = us-east-1\n\
             sso_account_id = 123456789012\nsso_role_name = Deployer\nregion = us-east-1\n"
        ),
    )
    .unwrap();

    let repo = unique("reggie-e2e/sso");
    let tag = images.track(format!("{ECR_HOST}/{repo}:v1"));
    let registry = env["REGGIE_TEST_REGISTRY"].clone();
    let portal_url = format!("http://127.0.0.1:{}", port.trim());
    let home_s = home.path().to_str().unwrap().to_string();
    let config_s = config.to_str().unwrap().to_string();
    let out = reggie(
        &env,
        ctx.path(),
        &["-t", &tag, "--push", "--create-repo", "."],
        &[
            ("HOME", &home_s),
            ("AWS_CONFIG_FILE", &config_s),
            ("AWS_PROFILE", "reggie-sso"),
            ("AWS_ENDPOINT_URL_SSO", &portal_url),
            ("AWS_ENDPOINT_URL_ECR", &env["REGGIE_TEST_MOTO"]),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("REGGIE_REGISTRY_ENDPOINT", &registry),
            ("RUST_LOG", "trace"),
        ],
        None,
    );
    let _ = portal.kill();
    let _ = portal.wait();
    let asked = std::fs::read_to_string(&log).unwrap_or_default();
    ok(&out);
    assert!(
        asked.contains(r#""ok": true"#) && asked.contains("Deployer"),
        "the portal was not asked for the role: {asked}"
    );
    for secret in [sso_token, "sso-secret-key-do-not-print", ECR_PASSWORD] {
        assert_no_secret(&out, secret);
    }
    assert!(registry_has(&env, "AWS", ECR_PASSWORD, &repo, "v1"));
}

#[test]
fn busybox_build_with_target_args_labels_tags_and_json() {
    let Some(env) = services() else { return };
    let images = Images::new(&env, "bb");
    let dir = Ctx::new().dockerfile(
        "FROM reggie-busybox:latest AS base\nARG GREETING\nARG FIXED\nRUN echo \"$GREETING $FIXED\" > /greeting\n\
         FROM base AS final\nRUN touch /final\n",
    );
    let out = reggie(
        &env,
        dir.path(),
        &[
            "--target",
            "base",
            "--build-arg",
            "GREETING",
            "--build-arg",
            "FIXED=there",
            "--label",
            "team=platform",
            "-t",
            &images.tag("one"),
            "-t",
            &images.tag("two"),
            "--compress",
            "gzip",
            "--network",
            "none",
            "--json",
            ".",
        ],
        &[("GREETING", "hello")],
        None,
    );
    ok(&out);
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    for k in ["context", "upload", "step", "image_id", "tag", "result"] {
        assert!(kinds.contains(&k), "no {k} event in {kinds:?}");
    }
    let last = events.last().unwrap();
    assert_eq!(last["event"], "result");
    assert_eq!(last["ok"], true);
    let run = docker(
        &env,
        Path::new("/"),
        &[
            "run",
            "--rm",
            "--network",
            "none",
            &images.tag("two"),
            "cat",
            "/greeting",
        ],
    );
    assert_eq!(String::from_utf8_lossy(&run.stdout), "hello there\n");
    let img = inspect(&env, &images.tag("one"));
    assert_eq!(img["Config"]["Labels"]["team"], "platform");
    let fs = image_fs(&env, &images.tag("one"));
    assert!(
        !fs.contains_key("final"),
        "--target base built the final stage"
    );
}

#[test]
fn daemon_down_says_how_to_start_it() {
    // Needs no services: the daemon is one that does not exist.
    let dir = Ctx::new().dockerfile("FROM scratch\n");
    let env = BTreeMap::from([(
        "DOCKER_HOST".to_string(),
        format!("unix://{}/nothing.sock", dir.path().display()),
    )]);
    let out = reggie(&env, dir.path(), &["-t", "x:y", "."], &[], None);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot reach the Docker daemon at unix://")
            && stderr.contains("DOCKER_HOST")
            && stderr.contains("dockerd"),
        "{stderr}"
    );
}

/// A context whose image is new at each call (its file holds the time).
fn scratch_context() -> Ctx {
    let stamp = format!(
        "{:?}\n",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
    );
    Ctx::new()
        .dockerfile("FROM scratch\nCOPY hello.txt /\n")
        .file("hello.txt", stamp)
}

/// Every way a secret could leak into output.
fn assert_no_secret(out: &Output, secret: &str) {
    use base64::Engine;
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut forms = vec![secret.to_string()];
    for user in ["AWS", "reggie"] {
        let pair = format!("{user}:{secret}");
        forms.push(base64::engine::general_purpose::STANDARD.encode(&pair));
        forms.push(base64::engine::general_purpose::URL_SAFE.encode(&pair));
    }
    for f in forms {
        assert!(
            !all.contains(&f),
            "output contains a secret ({f:?}):\n{all}"
        );
    }
    let lower = all.to_ascii_lowercase();
    assert!(!lower.contains("x-registry-auth"), "{all}");
}

fn registry_has(
    env: &BTreeMap<String, String>,
    user: &str,
    password: &str,
    repo: &str,
    tag: &str,
) -> bool {
    let url = format!(
        "http://{}/v2/{repo}/manifests/{tag}",
        env["REGGIE_TEST_REGISTRY"]
    );
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-u"])
        .arg(format!("{user}:{password}"))
        .args([
            "-H",
            "Accept: application/vnd.docker.distribution.manifest.v2+json",
            &url,
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout) == "200"
}

fn moto_env(env: &BTreeMap<String, String>) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL_ECR", env["REGGIE_TEST_MOTO"].clone()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_SESSION_TOKEN", "testing-session".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
    ]
}

#[test]
fn push_through_ecr_with_moto_to_local_registry() {
    let Some(env) = services() else { return };
    let images = Images::new(&env, "push");
    let ctx = scratch_context();
    // moto keeps its repositories across runs: a fresh name each time.
    let repo = unique("reggie-e2e/ecr");
    let tag = images.track(format!("{ECR_HOST}/{repo}:v1"));
    let registry = env["REGGIE_TEST_REGISTRY"].clone();
    let aws = moto_env(&env);
    let mut extra: Vec<(&str, &str)> = aws.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // Secrets must stay out of the log at every level.
    extra.push(("RUST_LOG", "trace"));
    extra.push(("REGGIE_REGISTRY_ENDPOINT", &registry));
    let out = reggie(
        &env,
        ctx.path(),
        &["-t", &tag, "--push", "--create-repo", "."],
        &extra,
        None,
    );
    ok(&out);
    assert_no_secret(&out, ECR_PASSWORD);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("{tag}@sha256:")),
        "no pushed digest: {}",
        text(&out)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("created ECR repository {repo}")),
        "{stderr}"
    );
    assert!(registry_has(&env, "AWS", ECR_PASSWORD, &repo, "v1"));

    // The repository exists now: a second push describes, creates nothing.
    let out = reggie(
        &env,
        ctx.path(),
        &[
            "-t",
            &tag,
            "--push",
            "--create-repo",
            "--registry-endpoint",
            &registry,
            "--json",
            ".",
        ],
        &extra[..extra.len() - 1],
        None,
    );
    ok(&out);
    assert_no_secret(&out, ECR_PASSWORD);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("created ECR repository"), "{stdout}");
    assert!(stdout.contains("\"event\":\"push\""), "{stdout}");
}

/// bollard 0.21 sends X-Registry-Auth in standard base64; dockerd reads
/// base64url. This password's header has both `+` and `/`.
#[test]
fn push_with_password_whose_header_needs_urlsafe_base64() {
    let Some(env) = services() else { return };
    let images = Images::new(&env, "push");
    let ctx = scratch_context();
    let registry = &env["REGGIE_TEST_REGISTRY"];
    let user = &env["REGGIE_TEST_REGISTRY_USER"];
    let password = &env["REGGIE_TEST_REGISTRY_PASSWORD"];
    let tag = images.track(format!("{registry}/reggie-e2e/plain:v1"));
    let out = reggie(
        &env,
        ctx.path(),
        &[
            "-t",
            &tag,
            "--push",
            "--username",
            user,
            "--password-stdin",
            ".",
        ],
        &[("RUST_LOG", "trace")],
        Some(&format!("{password}\n")),
    );
    ok(&out);
    assert_no_secret(&out, password);
    assert!(registry_has(&env, user, password, "reggie-e2e/plain", "v1"));
}

#[test]
fn wrong_credentials_fail_clearly() {
    let Some(env) = services() else { return };
    let images = Images::new(&env, "push");
    let ctx = scratch_context();
    let registry = &env["REGGIE_TEST_REGISTRY"];
    let tag = images.track(format!("{registry}/reggie-e2e/denied:v1"));
    let wrong = "not-the-password-4711";
    let out = reggie(
        &env,
        ctx.path(),
        &[
            "-t",
            &tag,
            "--push",
            "--username",
            "reggie",
            "--password-stdin",
            ".",
        ],
        &[],
        Some(wrong),
    );
    assert!(!out.status.success(), "{}", text(&out));
    assert_no_secret(&out, wrong);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("pushing {tag} to {registry} failed"))
            && stderr.contains("refused the credentials from --password-stdin"),
        "{stderr}"
    );

    // No credentials at all for the local registry.
    let out = reggie(&env, ctx.path(), &["-t", &tag, "--push", "."], &[], None);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("No credentials were found"), "{stderr}");
}

/// Credentials from docker's config: `auths` (base64 user:password), then
/// a `credHelpers` entry answered by a `docker-credential-*` program.
#[test]
fn push_with_docker_config_auths_and_cred_helper() {
    use base64::Engine;
    let Some(env) = services() else { return };
    let images = Images::new(&env, "push");
    let ctx = scratch_context();
    let registry = env["REGGIE_TEST_REGISTRY"].clone();
    let user = env["REGGIE_TEST_REGISTRY_USER"].clone();
    let password = env["REGGIE_TEST_REGISTRY_PASSWORD"].clone();
    let config = tempfile::tempdir().unwrap();
    let cfg = config.path().to_str().unwrap().to_string();

    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    std::fs::write(
        config.path().join("config.json"),
        serde_json::json!({ "auths": { registry.clone(): { "auth": auth } } }).to_string(),
    )
    .unwrap();
    let tag = images.track(format!("{registry}/reggie-e2e/config-auths:v1"));
    let out = reggie(
        &env,
        ctx.path(),
        &["-t", &tag, "--push", "."],
        &[("DOCKER_CONFIG", &cfg)],
        None,
    );
    ok(&out);
    assert_no_secret(&out, &password);
    assert!(registry_has(
        &env,
        &user,
        &password,
        "reggie-e2e/config-auths",
        "v1"
    ));

    // A credential helper on PATH.
    let bin = config.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let helper = bin.join("docker-credential-reggietest");
    let answer =
        serde_json::json!({ "ServerURL": registry.clone(), "Username": user, "Secret": password });
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread host\n[ \"$host\" = '{registry}' ] || {{ echo 'credentials not found in native keychain'; exit 1; }}\ncat <<'JSON'\n{answer}\nJSON\n"
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        config.path().join("config.json"),
        serde_json::json!({ "credHelpers": { registry.clone(): "reggietest" } }).to_string(),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let tag = images.track(format!("{registry}/reggie-e2e/cred-helper:v1"));
    let out = reggie(
        &env,
        ctx.path(),
        &["-t", &tag, "--push", "."],
        &[("DOCKER_CONFIG", &cfg), ("PATH", &path)],
        None,
    );
    ok(&out);
    assert_no_secret(&out, &password);
    assert!(registry_has(
        &env,
        &user,
        &password,
        "reggie-e2e/cred-helper",
        "v1"
    ));
}

/// The services' environment without DOCKER_HOST plus `extra`, for tests
/// that choose the daemon another way.
fn env_with(
    env: &BTreeMap<String, String>,
    extra: &[(&str, &str)],
    drop_host: bool,
) -> BTreeMap<String, String> {
    let mut out = env.clone();
    if drop_host {
        out.remove("DOCKER_HOST");
    }
    for (k, v) in extra {
        out.insert(k.to_string(), v.to_string());
    }
    out
}

fn json_events(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn compression_of(out: &Output) -> String {
    json_events(out)
        .iter()
        .find(|e| e["event"] == "context")
        .map(|e| e["compression"].as_str().unwrap_or_default().to_string())
        .unwrap_or_default()
}

/// SIGINT during a RUN step: exit 130 at once, and the daemon kills and
/// removes the step's container (the classic builder does so when the
/// build request's connection closes).
#[test]
fn ctrl_c_cancels_the_build() {
    ctrl_c_cancels(DaemonBuilder::Classic);
}

#[test]
fn ctrl_c_cancels_the_buildkit_build() {
    ctrl_c_cancels(DaemonBuilder::BuildKit);
}

#[derive(PartialEq)]
enum DaemonBuilder {
    Classic,
    BuildKit,
}

/// Whether a process on this machine has `needle` in its command line
/// (BuildKit runs RUN steps with runc, not as daemon containers).
fn process_running(needle: &str) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return false;
    };
    dir.flatten().any(|p| {
        std::fs::read(p.path().join("cmdline"))
            .is_ok_and(|c| String::from_utf8_lossy(&c).contains(needle))
    })
}

fn ctrl_c_cancels(builder: DaemonBuilder) {
    use std::io::BufRead;
    let Some(env) = services() else { return };
    let images = Images::new(&env, "ctrlc");
    let nonce = unique("reggie-ctrlc");
    let dir = Ctx::new().dockerfile(&format!(
        "FROM reggie-busybox:latest\nRUN sleep 30; echo {nonce}\n"
    ));
    let home = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_reggie-build"))
        .current_dir(dir.path())
        .args(["image", "-t", &images.tag("x"), "."])
        .args(match builder {
            DaemonBuilder::Classic => ["--builder", "classic"],
            DaemonBuilder::BuildKit => ["--builder", "buildkit"],
        })
        .args(["--network", "none"])
        .envs(&env)
        .env("HOME", home.path())
        .env("DOCKER_CONFIG", home.path().join(".docker"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    // Wait until the RUN step's container is running.
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
            .unwrap_or_else(|_| panic!("the RUN step never started: {seen:?}"));
        seen.push(line.clone());
        let step_started = seen.iter().any(|l| l.contains("step 2/"));
        let running = match builder {
            DaemonBuilder::Classic => line.contains("Running in"),
            DaemonBuilder::BuildKit => process_running(&nonce),
        };
        if step_started && running {
            break;
        }
        if builder == DaemonBuilder::BuildKit && step_started {
            // BuildKit prints nothing until the step writes output.
            for _ in 0..100 {
                if process_running(&nonce) {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            assert!(process_running(&nonce), "the RUN step never ran: {seen:?}");
            break;
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    let started = std::time::Instant::now();
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "still running 5 s after SIGINT"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    while let Ok(l) = rx.recv_timeout(std::time::Duration::from_secs(1)) {
        seen.push(l);
    }
    assert_eq!(status.code(), Some(130), "{seen:?}");
    assert!(seen.iter().any(|l| l.contains("interrupted")), "{seen:?}");
    // The step's container is killed and removed by the daemon.
    let mut leftover = String::new();
    for _ in 0..40 {
        let ps = docker(
            &env,
            Path::new("/"),
            &["ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Command}}"],
        );
        leftover = String::from_utf8_lossy(&ps.stdout)
            .lines()
            .filter(|l| l.contains(&nonce))
            .collect::<Vec<_>>()
            .join("\n");
        if leftover.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    assert!(leftover.is_empty(), "build container left: {leftover}");
    // And the step's process is gone (BuildKit kills it with the build).
    for _ in 0..40 {
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

/// DOCKER_HOST=tcp://… (plain) and with DOCKER_TLS_VERIFY: both build,
/// with gzip chosen automatically; a wrong CA is a clear TLS error.
#[test]
fn builds_over_tcp_and_tls_and_rejects_a_wrong_ca() {
    let Some(env) = services() else { return };
    let images = Images::new(&env, "tcp");
    let (Some(tcp), Some(tls)) = (
        env.get("REGGIE_TEST_DOCKER_TCP"),
        env.get("REGGIE_TEST_DOCKER_TLS"),
    ) else {
        panic!("the services' env has no tcp endpoints: run `bash tests/services.sh` again");
    };
    let certs = &env["REGGIE_TEST_DOCKER_CERTS"];
    let wrong = &env["REGGIE_TEST_DOCKER_WRONG_CERTS"];
    let ctx = scratch_context();

    let plain = env_with(&env, &[("DOCKER_HOST", tcp)], false);
    let out = reggie(
        &plain,
        ctx.path(),
        &[
            "-t",
            &images.tag("plain"),
            "--builder",
            "classic",
            "--json",
            ".",
        ],
        &[],
        None,
    );
    ok(&out);
    assert_eq!(compression_of(&out), "gzip", "{}", text(&out));
    // --compress none is honoured over tcp too.
    let out = reggie(
        &plain,
        ctx.path(),
        &[
            "-t",
            &images.tag("plain"),
            "--compress",
            "none",
            "--json",
            ".",
        ],
        &[],
        None,
    );
    ok(&out);
    assert_eq!(compression_of(&out), "none");
    // The unix socket: no compression.
    let out = reggie(
        &env,
        ctx.path(),
        &["-t", &images.tag("unix"), "--json", "."],
        &[],
        None,
    );
    ok(&out);
    assert_eq!(compression_of(&out), "none");

    let secure = env_with(
        &env,
        &[
            ("DOCKER_HOST", tls),
            ("DOCKER_TLS_VERIFY", "1"),
            ("DOCKER_CERT_PATH", certs),
        ],
        false,
    );
    for _ in 0..2 {
        let out = reggie(
            &secure,
            ctx.path(),
            &["-t", &images.tag("tls"), "--json", "."],
            &[],
            None,
        );
        ok(&out);
        // BuildKit's session over TLS: nothing to compress.
        assert_eq!(compression_of(&out), "none");
    }
    inspect(&env, &images.tag("tls"));

    let bad = env_with(&secure, &[("DOCKER_CERT_PATH", wrong)], false);
    let out = reggie(
        &bad,
        ctx.path(),
        &["-t", &images.tag("bad"), "."],
        &[],
        None,
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "the TLS connection to the Docker daemon at {tls} failed"
        )) && stderr.contains("UnknownIssuer")
            && stderr.contains(&format!("{wrong}/ca.pem")),
        "{stderr}"
    );
    // TLS on but no certificates where DOCKER_CERT_PATH points.
    let empty = tempfile::tempdir().unwrap();
    let none = env_with(
        &secure,
        &[("DOCKER_CERT_PATH", empty.path().to_str().unwrap())],
        false,
    );
    let out = reggie(
        &none,
        ctx.path(),
        &["-t", &images.tag("bad"), "."],
        &[],
        None,
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("DOCKER_CERT_PATH") && stderr.contains("ca.pem"),
        "{stderr}"
    );
}

/// A Docker context (currentContext in config.json) pointing at the TLS
/// endpoint, with its TLS files in the context store; DOCKER_HOST wins.
#[test]
fn docker_context_selects_the_daemon() {
    let Some(env) = services() else { return };
    let images = Images::new(&env, "context");
    let Some(tls) = env.get("REGGIE_TEST_DOCKER_TLS") else {
        panic!("the services' env has no tcp endpoints: run `bash tests/services.sh` again");
    };
    let certs = Path::new(&env["REGGIE_TEST_DOCKER_CERTS"]);
    let config = tempfile::tempdir().unwrap();
    let id = reggie_build::ship::context_dir_name("reggie-remote");
    let meta = config.path().join("contexts/meta").join(&id);
    std::fs::create_dir_all(&meta).unwrap();
    std::fs::write(
        meta.join("meta.json"),
        serde_json::json!({
            "Name": "reggie-remote",
            "Metadata": {},
            "Endpoints": { "docker": { "Host": tls, "SkipTLSVerify": false } }
        })
        .to_string(),
    )
    .unwrap();
    let tls_dir = config.path().join("contexts/tls").join(&id).join("docker");
    std::fs::create_dir_all(&tls_dir).unwrap();
    for f in ["ca.pem", "cert.pem", "key.pem"] {
        std::fs::copy(certs.join(f), tls_dir.join(f)).unwrap();
    }
    std::fs::write(
        config.path().join("config.json"),
        r#"{"currentContext":"reggie-remote"}"#,
    )
    .unwrap();
    let cfg = config.path().to_str().unwrap();
    let ctx = scratch_context();
    let no_host = env_with(&env, &[], true);
    let out = reggie(
        &no_host,
        ctx.path(),
        &[
            "-t",
            &images.tag("x"),
            "--builder",
            "classic",
            "--json",
            "-v",
            ".",
        ],
        &[("DOCKER_CONFIG", cfg)],
        None,
    );
    ok(&out);
    assert_eq!(compression_of(&out), "gzip", "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("context reggie-remote"), "{stderr}");

    // DOCKER_CONTEXT naming a missing context.
    let out = reggie(
        &no_host,
        ctx.path(),
        &["-t", &images.tag("x"), "."],
        &[("DOCKER_CONFIG", cfg), ("DOCKER_CONTEXT", "nope")],
        None,
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Docker context \"nope\"") && stderr.contains("does not exist"),
        "{stderr}"
    );

    // DOCKER_HOST wins over the context: the unix socket, no gzip.
    let out = reggie(
        &env,
        ctx.path(),
        &["-t", &images.tag("x"), "--json", "."],
        &[("DOCKER_CONFIG", cfg)],
        None,
    );
    ok(&out);
    assert_eq!(compression_of(&out), "none");
}

/// A registry that is down: the push is retried with backoff (visible at
/// -v), then fails naming the registry.
#[test]
fn registry_down_is_retried_then_named() {
    let Some(env) = services() else { return };
    let images = Images::new(&env, "push");
    let ctx = scratch_context();
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let endpoint = format!("127.0.0.1:{closed}");
    let tag = images.track(format!("{endpoint}/reggie-e2e/down:v1"));
    let started = std::time::Instant::now();
    let out = reggie(
        &env,
        ctx.path(),
        &[
            "-v",
            "-t",
            &tag,
            "--push",
            "--registry-endpoint",
            &endpoint,
            "--username",
            "reggie",
            "--password-stdin",
            ".",
        ],
        &[],
        Some("not-a-real-password-0815"),
    );
    assert!(!out.status.success(), "{}", text(&out));
    assert_no_secret(&out, "not-a-real-password-0815");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("retry 1/3") && stderr.contains("retry 3/3"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("pushing {tag} to {endpoint} failed"))
            && stderr.contains(&format!(
                "The registry {endpoint} cannot be reached (tried 4 times)"
            )),
        "{stderr}"
    );
    assert!(started.elapsed() >= std::time::Duration::from_millis(3500));
}

/// Pushing to an ECR repository that does not exist, without
/// --create-repo: a message that says so and how to fix it.
#[test]
fn ecr_repository_missing_without_create_repo() {
    let Some(env) = services() else { return };
    let images = Images::new(&env, "push");
    let ctx = scratch_context();
    let repo = unique("reggie-e2e/missing");
    let tag = images.track(format!("{ECR_HOST}/{repo}:v1"));
    let registry = env["REGGIE_TEST_REGISTRY"].clone();
    let aws = moto_env(&env);
    let mut extra: Vec<(&str, &str)> = aws.iter().map(|(k, v)| (*k, v.as_str())).collect();
    extra.push(("REGGIE_REGISTRY_ENDPOINT", &registry));
    let out = reggie(&env, ctx.path(), &["-t", &tag, "--push", "."], &extra, None);
    assert!(!out.status.success(), "{}", text(&out));
    assert_no_secret(&out, ECR_PASSWORD);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("the ECR repository {repo} does not exist"))
            && stderr.contains("--create-repo"),
        "{stderr}"
    );
    assert!(!registry_has(&env, "AWS", ECR_PASSWORD, &repo, "v1"));
}

fn skip_events(out: &Output, name: &str) -> Vec<serde_json::Value> {
    json_events(out)
        .into_iter()
        .filter(|e| e["event"] == name)
        .collect()
}

fn skip_result_image_id(out: &Output) -> String {
    let events = skip_events(out, "result");
    let id = events
        .last()
        .and_then(|e| e["image_id"].as_str())
        .unwrap_or_else(|| panic!("no image id: {}", text(out)));
    id.to_string()
}

/// `--skip-if-exists` with the image in the daemon: the second run builds
/// nothing and tags the same image; a changed file builds again.
#[test]
fn skip_if_exists_reuses_the_local_image() {
    let Some(env) = services() else { return };
    let images = Images::new(&env, "skip");
    let ctx = scratch_context();
    let first_tag = images.track(format!("{}:v1", unique("reggie-e2e-skip-local")));
    let second_tag = images.track(format!("{}:v2", unique("reggie-e2e-skip-local")));
    let args = |tag: &str, json: bool| {
        let mut a = vec!["-t".to_string(), tag.to_string(), "--skip-if-exists".into()];
        if json {
            a.push("--json".into());
        }
        a.push(".".into());
        a
    };
    let run = |a: Vec<String>| {
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        reggie(&env, ctx.path(), &a, &[], None)
    };

    let out = run(args(&first_tag, true));
    ok(&out);
    assert!(!skip_events(&out, "step").is_empty(), "{}", text(&out));
    assert!(skip_events(&out, "skip").is_empty(), "{}", text(&out));
    let id = skip_result_image_id(&out);
    let key = inspect(&env, &first_tag)["Config"]["Labels"]["dev.reggie-build.build-key"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(key.starts_with("sha256:"), "no build key label");

    let out = run(args(&second_tag, true));
    ok(&out);
    assert!(skip_events(&out, "step").is_empty(), "{}", text(&out));
    assert!(skip_events(&out, "context").is_empty(), "{}", text(&out));
    let skips = skip_events(&out, "skip");
    assert_eq!(skips.len(), 1, "{}", text(&out));
    assert_eq!(skips[0]["image"], id.as_str());
    assert!(skips[0]["reason"].as_str().is_some_and(|r| !r.is_empty()));
    assert_eq!(skip_result_image_id(&out), id);
    assert_eq!(inspect(&env, &second_tag)["Id"], id.as_str());

    // Plain output says so in a line.
    let out = run(args(&first_tag, false));
    ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "skipped build: image {id} already built from this context"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("step 1/"), "{stderr}");

    // A changed file: another build key, another build.
    ctx.write("hello.txt", format!("{}\n", unique("changed")));
    let out = run(args(&first_tag, true));
    ok(&out);
    assert!(!skip_events(&out, "step").is_empty(), "{}", text(&out));
    assert!(skip_events(&out, "skip").is_empty(), "{}", text(&out));
    assert_ne!(skip_result_image_id(&out), id);
}

/// `--skip-if-exists --push` with the image only in the registry (ECR
/// flow with moto, pushed to the local registry): the labels are read
/// from the registry, the image is pulled and tagged, the missing tag is
/// pushed, nothing is built, and no secret reaches the output.
#[test]
fn skip_if_exists_reuses_the_registry_image() {
    let Some(env) = services() else { return };
    let images = Images::new(&env, "push");
    let ctx = scratch_context();
    let repo = format!("reggie-e2e/{}", unique("skip-registry"));
    let tag = images.track(format!("{ECR_HOST}/{repo}:v1"));
    let fresh = images.track(format!("{ECR_HOST}/{repo}:v2"));
    let registry = env["REGGIE_TEST_REGISTRY"].clone();
    let aws = moto_env(&env);
    let mut extra: Vec<(&str, &str)> = aws.iter().map(|(k, v)| (*k, v.as_str())).collect();
    extra.push(("RUST_LOG", "trace"));
    extra.push(("REGGIE_REGISTRY_ENDPOINT", &registry));

    let out = reggie(
        &env,
        ctx.path(),
        &[
            "-t",
            &tag,
            "--push",
            "--create-repo",
            "--skip-if-exists",
            "--json",
            ".",
        ],
        &extra,
        None,
    );
    ok(&out);
    assert_no_secret(&out, ECR_PASSWORD);
    assert!(!skip_events(&out, "step").is_empty(), "{}", text(&out));
    assert!(skip_events(&out, "skip").is_empty(), "{}", text(&out));
    let id = skip_result_image_id(&out);
    assert!(registry_has(&env, "AWS", ECR_PASSWORD, &repo, "v1"));

    // Only the registry has it now.
    docker(&env, Path::new("/"), &["rmi", &tag]);

    let out = reggie(
        &env,
        ctx.path(),
        &[
            "-t",
            &tag,
            "-t",
            &fresh,
            "--push",
            "--skip-if-exists",
            "--json",
            ".",
        ],
        &extra,
        None,
    );
    ok(&out);
    assert_no_secret(&out, ECR_PASSWORD);
    assert!(skip_events(&out, "step").is_empty(), "{}", text(&out));
    let skips = skip_events(&out, "skip");
    assert_eq!(skips.len(), 1, "{}", text(&out));
    assert_eq!(skips[0]["image"], id.as_str());
    // Found in the registry, not in the daemon.
    assert!(
        skips[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains(&registry)),
        "{}",
        text(&out)
    );
    assert_eq!(skip_result_image_id(&out), id);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("\"event\":\"push\""), "{stdout}");
    assert!(registry_has(&env, "AWS", ECR_PASSWORD, &repo, "v2"));
    assert_eq!(inspect(&env, &tag)["Id"], id.as_str());
    assert_eq!(inspect(&env, &fresh)["Id"], id.as_str());
}

/// `--skip-if-exists --push` when the registry's tag was built from other
/// inputs: the lookup (Basic auth with --password-stdin) says why at -v,
/// and the image is built and pushed as without the flag.
#[test]
fn skip_if_exists_builds_when_the_registry_image_differs() {
    let Some(env) = services() else { return };
    let images = Images::new(&env, "push");
    let ctx = scratch_context();
    let registry = env["REGGIE_TEST_REGISTRY"].clone();
    let user = env["REGGIE_TEST_REGISTRY_USER"].clone();
    let password = env["REGGIE_TEST_REGISTRY_PASSWORD"].clone();
    let repo = format!("reggie-e2e/{}", unique("skip-differs"));
    let tag = images.track(format!("{registry}/{repo}:v1"));
    let run = || {
        reggie(
            &env,
            ctx.path(),
            &[
                "-v",
                "-t",
                &tag,
                "--push",
                "--skip-if-exists",
                "--username",
                &user,
                "--password-stdin",
                "--json",
                ".",
            ],
            &[],
            Some(&format!("{password}\n")),
        )
    };
    let out = run();
    ok(&out);
    assert_no_secret(&out, &password);
    assert!(!skip_events(&out, "step").is_empty(), "{}", text(&out));
    let first = skip_result_image_id(&out);
    docker(&env, Path::new("/"), &["rmi", &tag]);

    ctx.write("hello.txt", format!("{}\n", unique("changed")));
    let out = run();
    ok(&out);
    assert_no_secret(&out, &password);
    assert!(!skip_events(&out, "step").is_empty(), "{}", text(&out));
    assert!(skip_events(&out, "skip").is_empty(), "{}", text(&out));
    assert_ne!(skip_result_image_id(&out), first);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("built from other inputs"), "{stderr}");
    assert!(registry_has(&env, &user, &password, &repo, "v1"));
}
