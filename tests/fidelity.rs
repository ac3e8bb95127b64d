//! Fidelity: what `reggie-build image` builds from the minimal context
//! must be the image `docker build` builds from the whole one, file by
//! file, with both of the daemon's builders.
//!
//! They need the services of `tests/services.sh` (`$REGGIE_SERVICES_DIR/env`,
//! default /tmp/reggie-services/env) and fail without them: a fidelity test
//! that skips proves nothing. The classic builder is driven with `docker`
//! on PATH and `DOCKER_BUILDKIT=0`; BuildKit with `$REGGIE_TEST_DOCKER_BUILDKIT`
//! (default `/usr/bin/docker` when it exists, else `docker`) and
//! `DOCKER_BUILDKIT=1`.
// The image builder is the default feature `image`.
#![cfg(feature = "image")]

use std::path::Path;
use std::process::{Command, Output, Stdio};

mod common;

use common::context::Ctx;
use common::docker::{image_fs, text, Cli, Compare, Env, Fs};
use common::images::Images;

/// The docker CLI for `builder`, on the test daemon, without user config.
fn docker_cmd(env: &Env, builder: Builder, cwd: &Path) -> Command {
    common::docker::docker_cmd(env, builder.cli(), cwd)
}

/// `docker build` as the user runs it: `args` end with the context.
fn docker_build(env: &Env, builder: Builder, cwd: &Path, tag: &str, args: &[&str]) -> Output {
    let mut all = vec!["-q", "-t", tag];
    all.extend_from_slice(args);
    common::docker::docker_build(env, builder.cli(), cwd, &all)
}

/// The two images hold the same paths with the same type, mode, owner,
/// link target and content (random Dockerfile names masked).
fn assert_same_fs(what: &str, ours: &Fs, theirs: &Fs) {
    let how = Compare {
        content: mask_random_names,
        ..Compare::default()
    };
    common::docker::assert_same_fs(what, ours, theirs, how);
}

fn services() -> Env {
    common::services().expect("the fidelity tests need the daemon: they never skip")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Builder {
    Classic,
    BuildKit,
}

const BOTH: [Builder; 2] = [Builder::Classic, Builder::BuildKit];

impl Builder {
    fn cli(self) -> Cli {
        match self {
            Builder::Classic => Cli::Classic,
            Builder::BuildKit => Cli::BuildKit,
        }
    }

    fn arg(self) -> &'static str {
        match self {
            Builder::Classic => "classic",
            Builder::BuildKit => "buildkit",
        }
    }
}

fn reggie(env: &Env, cwd: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_reggie-build"));
    cmd.current_dir(cwd).args(args);
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
    let home = tempfile::tempdir().unwrap();
    cmd.env("HOME", home.path())
        .env("DOCKER_CONFIG", home.path().join(".docker"))
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run reggie-build")
}

/// `reggie-build image` with the minimal upload; `args` end with the context.
fn reggie_image(env: &Env, builder: Builder, cwd: &Path, tag: &str, args: &[&str]) {
    let mut all = vec!["image", "--builder", builder.arg(), "-t", tag];
    all.extend_from_slice(args);
    let out = reggie(env, cwd, &all);
    assert!(
        out.status.success(),
        "reggie-build {all:?} failed:\n{}",
        text(&out)
    );
}

/// The docker CLI names an outside Dockerfile `.dockerfile.<20 hex>` and
/// appends that name to a sent `.dockerignore`: the one part of two
/// builds of the same inputs that may differ.
fn mask_random_names(content: &[u8]) -> Vec<u8> {
    let needle = b".dockerfile.";
    let mut out = Vec::with_capacity(content.len());
    let mut i = 0;
    while i < content.len() {
        if content[i..].starts_with(needle) {
            let start = i + needle.len();
            let hex = content[start..]
                .iter()
                .take_while(|b| b.is_ascii_hexdigit())
                .count();
            if hex == 20 {
                out.extend_from_slice(b".dockerfile.RANDOM");
                i = start + hex;
                continue;
            }
        }
        out.push(content[i]);
        i += 1;
    }
    out
}

/// Builds `args` (ending with the context, relative to `cwd`) with docker
/// and with reggie-build on `builder` and compares the images.
/// Both images are `images`' (removed when the test ends).
fn same_image(
    env: &Env,
    images: &Images,
    builder: Builder,
    name: &str,
    cwd: &Path,
    args: &[&str],
) -> Fs {
    let theirs = images.tag(&format!("{name}.docker-{}", builder.arg()));
    let ours = images.tag(&format!("{name}.ours-{}", builder.arg()));
    docker_build(env, builder, cwd, &theirs, args);
    reggie_image(env, builder, cwd, &ours, args);
    let a = image_fs(env, &ours);
    let b = image_fs(env, &theirs);
    assert_same_fs(&format!("{name} ({builder:?})"), &a, &b);
    a
}

/// Issue 13 item 1: the classic builder builds every stage up to the
/// target, so a `dev` stage's sources must be uploaded too.
#[test]
fn classic_builds_every_stage_before_the_target() {
    let env = services();
    let images = Images::new(&env, "fidelity");
    let ctx = Ctx::new().files([
        ("dev-only.txt", "dev\n"),
        ("app.txt", "app\n"),
        ("unused.txt", "unused\n"),
        (
            "Dockerfile",
            "FROM scratch AS dev\nCOPY dev-only.txt /\nFROM scratch AS prod\nCOPY app.txt /\nFROM scratch AS after\nCOPY unused.txt /\n",
        ),
    ]);
    let d = ctx.path();
    for builder in BOTH {
        let fs = same_image(
            &env,
            &images,
            builder,
            "stages",
            d,
            &["--target", "prod", "."],
        );
        assert!(fs.contains_key("app.txt"), "{:?}", fs.keys());
    }
}

/// Issue 13 item 4: with `-f` outside the context, the classic upload's
/// rewritten `.dockerignore` keeps the original's mode, as the docker CLI
/// keeps its header; so does a Dockerfile sent under its own name.
#[test]
fn classic_outside_dockerfile_keeps_the_ignore_file_mode() {
    use std::os::unix::fs::PermissionsExt;
    let env = services();
    let images = Images::new(&env, "fidelity");
    let ctx = Ctx::in_subdir("ctx")
        .files([
            ("a.txt", "a\n"),
            ("sub/b.txt", "b\n"),
            ("secret.txt", "no\n"),
        ])
        .dockerignore("secret.txt\n")
        .outside("outside.Dockerfile", "FROM scratch\nCOPY . /dest/\n");
    for mode in [0o644, 0o640, 0o755] {
        let ignore = ctx.join(".dockerignore");
        std::fs::set_permissions(&ignore, std::fs::Permissions::from_mode(mode)).unwrap();
        let fs = same_image(
            &env,
            &images,
            Builder::Classic,
            &format!("outside{mode:o}"),
            ctx.path(),
            &["-f", "../outside.Dockerfile", "."],
        );
        assert_eq!(fs["dest/.dockerignore"].mode & 0o7777, mode);
    }
}

/// Runs `analyze` on `cwd` and returns its JSON report.
fn analysis(env: &Env, builder: Builder, cwd: &Path, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["analyze", "--format", "json", "--builder", builder.arg()];
    all.extend_from_slice(args);
    let out = reggie(env, cwd, &all);
    assert!(out.status.success(), "analyze {all:?}:\n{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Follows every piece of advice `analyze` prints for `orig` (built as
/// `docker build -f DF EXTRA... .` there) in a fresh copy: the rewritten
/// COPY lines, the suggested ignore file and the printed `docker build`
/// command (plus the user's own EXTRA flags), then the compose/SST
/// `context`/`dockerfile` pair as compose resolves it. Each image, and the
/// minimal upload's, must equal the user's.
fn advice_keeps_the_image(
    env: &Env,
    images: &Images,
    builder: Builder,
    name: &str,
    orig: &Path,
    df: &str,
    extra: &[&str],
) {
    let mut args: Vec<&str> = vec!["-f", df];
    args.extend_from_slice(extra);
    args.push(".");
    let theirs = images.tag(&format!("{name}.docker-{}", builder.arg()));
    docker_build(env, builder, orig, &theirs, &args);
    let want = image_fs(env, &theirs);
    // The minimal upload first.
    let ours = images.tag(&format!("{name}.ours-{}", builder.arg()));
    reggie_image(env, builder, orig, &ours, &args);
    assert_same_fs(
        &format!("{name}: minimal upload ({builder:?})"),
        &image_fs(env, &ours),
        &want,
    );

    let report = analysis(env, builder, orig, &args);
    let s = &report["suggestion"];
    let ig = &report["suggested_ignore"];
    if !ig.is_object() {
        assert!(
            !report["whole_context_reasons"]
                .as_array()
                .is_none_or(Vec::is_empty)
                || s.is_null(),
            "{name}: no ignore file suggested: {report}"
        );
        return;
    }
    assert_eq!(ig["verified"], true, "{name}: {ig}");
    // What the report says it drops, deleted from a copy: the image the
    // advice must build.
    let dropped = ig["dropped"].as_array().unwrap();
    let want = if dropped.is_empty() {
        want
    } else {
        let pruned = tempfile::tempdir().unwrap();
        common::copy_dir(orig, pruned.path());
        let base = pruned.path().join(s["dir"].as_str().unwrap_or(""));
        for d in dropped {
            let p = base.join(d["path"].as_str().unwrap().trim_end_matches('/'));
            if p.is_dir() {
                std::fs::remove_dir_all(&p).unwrap();
            } else {
                std::fs::remove_file(&p).unwrap();
            }
        }
        let tag = images.tag(&format!("{name}.pruned-{}", builder.arg()));
        docker_build(env, builder, pruned.path(), &tag, &args);
        let pruned_fs = image_fs(env, &tag);
        assert!(
            pruned_fs != want,
            "{name}: the drops change nothing: {dropped:?}"
        );
        pruned_fs
    };

    let adv = tempfile::tempdir().unwrap();
    let adv = adv.path();
    common::copy_dir(orig, adv);
    if s.is_object() {
        let mut dockerfile = std::fs::read_to_string(adv.join(df)).unwrap();
        for r in s["rewrites"].as_array().unwrap() {
            let (before, after) = (r["before"].as_str().unwrap(), r["after"].as_str().unwrap());
            assert!(dockerfile.contains(before), "{before}");
            dockerfile = dockerfile.replacen(before, after, 1);
        }
        std::fs::write(adv.join(df), dockerfile).unwrap();
    }
    std::fs::write(
        adv.join(ig["path"].as_str().unwrap()),
        ig["text"].as_str().unwrap(),
    )
    .unwrap();

    // The printed command, word for word, or the user's with the file.
    let command = if s.is_object() {
        s["docker_build"][1].as_str().unwrap().to_string()
    } else {
        format!("docker build -f {df} .")
    };
    let words: Vec<&str> = command.split_whitespace().collect();
    assert_eq!(&words[..2], ["docker", "build"], "{command}");
    let mut run: Vec<&str> = extra.to_vec();
    run.extend_from_slice(&words[2..]);
    let tag = images.tag(&format!("{name}.advice-{}", builder.arg()));
    docker_build(env, builder, adv, &tag, &run);
    assert_same_fs(
        &format!("{name}: `{command}` ({builder:?})"),
        &image_fs(env, &tag),
        &want,
    );
    if !s.is_object() {
        return;
    }

    // compose and SST: `dockerfile` is relative to `context`, which is
    // relative to the current context (here the directory built from).
    let context = format!("./{}", s["dir"].as_str().unwrap());
    let df = Path::new(&context).join(s["dockerfile"].as_str().unwrap());
    let compose = s["compose"].as_str().unwrap();
    assert!(
        compose.contains(&format!("context: {context},"))
            && compose.contains(&format!(
                "dockerfile: {} }}",
                s["dockerfile"].as_str().unwrap()
            )),
        "{compose}"
    );
    let mut run: Vec<&str> = extra.to_vec();
    run.extend_from_slice(&["-f", df.to_str().unwrap(), &context]);
    let tag = images.tag(&format!("{name}.compose-{}", builder.arg()));
    docker_build(env, builder, adv, &tag, &run);
    assert_same_fs(
        &format!("{name}: compose ({builder:?})"),
        &image_fs(env, &tag),
        &want,
    );
}

/// Issue 13 items 2 and 3: a root Dockerfile whose reads are all under
/// `app/`, with the user's exclusions inside the copied directory.
#[test]
fn narrower_context_advice_builds_the_same_image() {
    let env = services();
    let images = Images::new(&env, "fidelity");
    let ctx = Ctx::new().files([
        ("app/src/index.js", "console.log(1)\n"),
        ("app/src/debug.log", "noise\n"),
        ("app/dist/bundle.js", "built\n"),
        ("app/.env", "API_URL=http://x\n"),
        ("app/.next/cache/x", "next\n"),
        ("app/coverage/lcov.info", "cov\n"),
        ("app/npm-debug.log", "npm\n"),
        ("app/package.json", "{}\n"),
        ("other/big.bin", "other\n"),
        (".dockerignore", "*/dist\nother\n"),
        ("Dockerfile", "FROM scratch\nCOPY ./app /app\n"),
    ]);
    let d = ctx.path();
    let d2 = Ctx::new()
        .copy_of(d)
        .dockerignore("app/src/*.log\n**/dist\n")
        .dockerfile("FROM scratch\nCOPY app/src /src\nCOPY app/package.json app/.env /pkg/\n");
    for builder in BOTH {
        advice_keeps_the_image(&env, &images, builder, "narrow-whole", d, "Dockerfile", &[]);
        advice_keeps_the_image(
            &env,
            &images,
            builder,
            "narrow-parts",
            d2.path(),
            "Dockerfile",
            &[],
        );
    }
}

/// Real-world shapes, each built as the user has it and with every piece
/// of advice, on both builders.
#[test]
fn real_world_shapes_build_the_same_image() {
    let env = services();
    let images = Images::new(&env, "fidelity");
    // (name, files, Dockerfile, extra docker build flags)
    type Shape<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str, Vec<&'a str>);
    let shapes: Vec<Shape> = vec![
        (
            "dev-test-stages",
            vec![
                ("package.json", "{}\n"),
                ("src/index.js", "1\n"),
                ("tests/index.test.js", "t\n"),
                ("dev/seed.sql", "s\n"),
                ("docs/readme.md", "d\n"),
                (
                    "Dockerfile",
                    "FROM scratch AS deps\nCOPY package.json /app/\nFROM deps AS dev\nCOPY dev/ /app/dev/\nFROM deps AS test\nCOPY tests/ /app/tests/\nFROM deps AS prod\nCOPY src/ /app/src/\nFROM scratch AS docs\nCOPY docs /docs\n",
                ),
            ],
            "Dockerfile",
            vec!["--target", "prod"],
        ),
        (
            "monorepo-packages",
            vec![
                ("package.json", "{\"workspaces\":[\"apps/*\",\"packages/*\"]}\n"),
                ("apps/web/package.json", "{}\n"),
                ("apps/web/src/page.tsx", "p\n"),
                ("apps/web/node_modules/react/index.js", "r\n"),
                ("apps/web/.next/cache/x", "n\n"),
                ("apps/admin/src/a.tsx", "a\n"),
                ("packages/ui/package.json", "{}\n"),
                ("packages/ui/src/button.tsx", "b\n"),
                ("packages/ui/dist/button.js", "built\n"),
                ("packages/ui/node_modules/x/i.js", "x\n"),
                ("packages/config/tsconfig.json", "{}\n"),
                ("packages/config/dist/tsconfig.js", "built\n"),
                (".dockerignore", "**/node_modules\n**/.next\n**/dist\n!packages/ui/dist\n"),
                (
                    "apps/web/Dockerfile",
                    "FROM scratch\nWORKDIR /repo\nCOPY package.json ./\nCOPY packages/ ./packages/\nCOPY apps/web/ ./apps/web/\n",
                ),
            ],
            "apps/web/Dockerfile",
            vec![],
        ),
        (
            "exclusions-under-reincluded",
            vec![
                ("app/main.py", "m\n"),
                ("app/settings/local.py", "secret\n"),
                ("app/settings/base.py", "b\n"),
                ("app/data/cache.db", "c\n"),
                ("app/data/keep.csv", "k\n"),
                ("notes.txt", "n\n"),
                ("requirements.txt", "r\n"),
                (".dockerignore", "*\n!app\n!requirements.txt\napp/settings/local.py\napp/data/*\n!app/data/keep.csv\n"),
                ("Dockerfile", "FROM scratch\nCOPY requirements.txt /srv/\nCOPY app /srv/app\n"),
            ],
            "Dockerfile",
            vec![],
        ),
        (
            "arg-dependent-sources",
            vec![
                ("apps/web/index.html", "w\n"),
                ("apps/api/main.go", "a\n"),
                ("apps/api/vendor/x.go", "v\n"),
                ("shared/lib.txt", "l\n"),
                (
                    "Dockerfile",
                    "ARG APP=web\nFROM scratch\nARG APP\nARG SHARED=shared\nCOPY apps/${APP}/ /app/\nCOPY ${SHARED}/lib.txt /lib/\n",
                ),
            ],
            "Dockerfile",
            vec!["--build-arg", "APP=api"],
        ),
        (
            "dockerfile-specific-ignore",
            vec![
                ("web/index.html", "w\n"),
                ("web/draft.html", "d\n"),
                ("api/main.py", "a\n"),
                ("docker/web.Dockerfile", "FROM scratch\nCOPY web /srv/\nCOPY api/main.py /api/\n"),
                ("docker/web.Dockerfile.dockerignore", "web/draft.html\n"),
                (".dockerignore", "api\n!api/main.py\nweb/index.html.bak\n"),
            ],
            "docker/web.Dockerfile",
            vec![],
        ),
    ];
    for (name, files, df, extra) in &shapes {
        let ctx = Ctx::new().files(files.iter().copied());
        for builder in BOTH {
            advice_keeps_the_image(&env, &images, builder, name, ctx.path(), df, extra);
        }
    }
}

/// `-f` outside the context, with BuildKit and the classic builder.
#[test]
fn dockerfile_outside_the_context_builds_the_same_image() {
    let env = services();
    let images = Images::new(&env, "fidelity");
    let ctx = Ctx::in_subdir("ctx")
        .files([
            ("app/a.txt", "a\n"),
            ("app/b.log", "b\n"),
            ("other.txt", "o\n"),
        ])
        .dockerignore("**/*.log\n")
        .outside("build/app.Dockerfile", "FROM scratch\nCOPY app /app\n")
        .outside("build/all.Dockerfile", "FROM scratch\nCOPY . /all/\n");
    for builder in BOTH {
        for df in ["app", "all"] {
            // With BuildKit the Dockerfile travels over the session as its
            // own directory, never inside the context: a COPY of the
            // context root takes only the context, as with docker build.
            let fs = same_image(
                &env,
                &images,
                builder,
                &format!("outside-{df}"),
                ctx.path(),
                &["-f", &format!("../build/{df}.Dockerfile"), "."],
            );
            assert!(!fs.keys().any(|k| k.ends_with(".log")), "{:?}", fs.keys());
        }
    }
}

/// A fixture's Dockerfile with only what a daemon without network can
/// build: bases become `scratch`, RUN steps, heredocs, `COPY --from`,
/// `--parents` (a labs flag the daemon's built-in frontend lacks) and the
/// `# syntax` line go. What the context gives the image is unchanged.
fn scratch_version(dockerfile: &str) -> String {
    let mut out = String::new();
    let mut stages: Vec<String> = Vec::new();
    let mut lines = dockerfile.lines().peekable();
    while let Some(first) = lines.next() {
        let mut ins = first.to_string();
        while ins.ends_with('\\') {
            match lines.next() {
                Some(l) => {
                    ins.push('\n');
                    ins.push_str(l);
                }
                None => break,
            }
        }
        if let Some(pos) = ins.find("<<") {
            let word: String = ins[pos + 2..]
                .trim_start_matches('-')
                .chars()
                .filter(|c| !matches!(c, '\'' | '"'))
                .take_while(|c| !c.is_whitespace())
                .collect();
            for l in lines.by_ref() {
                if l.trim() == word {
                    break;
                }
            }
            continue;
        }
        let trimmed = ins.trim_start();
        if trimmed.starts_with("# syntax") {
            continue;
        }
        let words: Vec<&str> = trimmed.split_whitespace().collect();
        let keyword = words
            .first()
            .map(|w| w.to_ascii_uppercase())
            .unwrap_or_default();
        match keyword.as_str() {
            "RUN" => continue,
            "COPY" | "ADD"
                if words
                    .iter()
                    .any(|w| w.starts_with("--from") || *w == "--parents" || w.contains("://")) =>
            {
                continue
            }
            "FROM" => {
                let rest: Vec<&str> = words[1..]
                    .iter()
                    .copied()
                    .filter(|w| !w.starts_with("--"))
                    .collect();
                let image = rest.first().copied().unwrap_or("scratch");
                let base = if stages.iter().any(|s| s.eq_ignore_ascii_case(image)) {
                    image
                } else {
                    "scratch"
                };
                let mut line = format!("FROM {base}");
                if rest.len() == 3 && rest[1].eq_ignore_ascii_case("as") {
                    line.push_str(&format!(" AS {}", rest[2]));
                    stages.push(rest[2].to_string());
                }
                out.push_str(&line);
                out.push('\n');
                continue;
            }
            _ => {}
        }
        out.push_str(&ins);
        out.push('\n');
    }
    out
}

/// Every fixture's Dockerfile (made buildable offline by
/// [`scratch_version`]), built as its README or compose file says, and
/// with every piece of advice, on both builders.
#[test]
fn fixtures_build_the_same_image() {
    let env = services();
    let images = Images::new(&env, "fidelity");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    // (fixture, context inside it, Dockerfile from the context, flags)
    let cases: &[(&str, &str, &str, &[&str])] = &[
        ("reggie", ".", "backend/Dockerfile", &[]),
        ("node-multistage", ".", "Dockerfile", &[]),
        ("node-multistage", ".", "Dockerfile", &["--target", "build"]),
        ("mounts-wildcards", ".", "Dockerfile", &["--target", "base"]),
        (
            "compose-monorepo",
            ".",
            "services/api/Dockerfile",
            &["--target", "runtime"],
        ),
        ("compose-monorepo", "web", "Dockerfile", &[]),
        ("compose-monorepo", "tools/migrate", "Dockerfile", &[]),
    ];
    for (i, (fixture, context, df, extra)) in cases.iter().enumerate() {
        let copy = Ctx::new().copy_of(&root.join(fixture));
        let ctx = copy.join(context);
        let original = std::fs::read_to_string(ctx.join(df)).unwrap();
        std::fs::write(ctx.join(df), scratch_version(&original)).unwrap();
        for builder in BOTH {
            advice_keeps_the_image(
                &env,
                &images,
                builder,
                &format!("fixture{i}"),
                &ctx,
                df,
                extra,
            );
        }
    }
}

#[test]
fn scratch_version_keeps_what_reads_the_context() {
    let got = scratch_version(
        "# syntax=docker/dockerfile:1\nFROM --platform=$X node:20 AS deps\nCOPY a \\\n  b /x/\nRUN npm ci \\\n  && x\nFROM deps AS build\nCOPY <<EOF /m\nCOPY c /c\nEOF\nCOPY --from=deps /x /y\nCOPY --parents p/./q /r\nFROM alpine\nCOPY d /d\n",
    );
    assert_eq!(
        got,
        "FROM scratch AS deps\nCOPY a \\\n  b /x/\nFROM deps AS build\nFROM scratch\nCOPY d /d\n"
    );
}

/// Issue 13 item 6: which ignore files Docker accepts (it checks a pattern
/// only up to its first chunk that cannot match `.`, and fails on a regex
/// that does not compile) and what it sends with them, against the docker
/// CLIs themselves.
#[test]
fn ignore_syntax_matches_docker() {
    let env = services();
    let images = Images::new(&env, "fidelity");
    let ctx = Ctx::new().files([
        ("a.txt", "a\n"),
        ("dz/x", "x\n"),
        ("dz/x$", "dollar\n"),
        ("dz/a", "a\n"),
        ("dz/-", "dash\n"),
        ("Dockerfile", "FROM scratch\nCOPY . /dest/\n"),
    ]);
    let d = ctx.path();
    let patterns = [
        "d*/x\\", "d*/[]a]", "d*/[-]", "d*/x[", "*x/[]a]", "*/x\\", "?*/[", "x*[]a]",
    ];
    let mut built = 0;
    for pattern in patterns {
        ctx.write(".dockerignore", format!("{pattern}\n"));
        for builder in BOTH {
            let tag = images.tag(builder.arg());
            let out = docker_cmd(&env, builder, d)
                .args(["build", "-q", "-t", &tag, "."])
                .output()
                .unwrap();
            let ls = reggie(&env, d, &["ls", ".", "--builder", builder.arg()]);
            if !out.status.success() {
                assert_eq!(
                    ls.status.code(),
                    Some(2),
                    "{pattern:?} ({builder:?}): docker fails, reggie-build must too:\n{}\n{}",
                    text(&out),
                    text(&ls)
                );
                continue;
            }
            assert!(
                ls.status.success(),
                "{pattern:?} ({builder:?}): docker builds:\n{}",
                text(&ls)
            );
            let sent: Vec<String> = image_fs(&env, &tag)
                .into_iter()
                .filter(|(k, v)| v.kind != b'5' && k.starts_with("dest/"))
                .map(|(k, _)| k["dest/".len()..].to_string())
                .collect();
            let mut ours: Vec<String> = String::from_utf8_lossy(&ls.stdout)
                .lines()
                .map(str::to_string)
                .collect();
            ours.sort();
            assert_eq!(ours, sent, "{pattern:?} ({builder:?})");
            built += 1;
        }
    }
    // d*/x\, d*/[]a], d*/[-] and x*[]a] build with both (docker 20.10 and 28).
    assert_eq!(
        built, 8,
        "docker accepted fewer ignore files than it did when checked"
    );
}
