//! `affected`: verdicts and busted steps on a fixture git repository made
//! here, one commit per kind of change; and the real daemon's BuildKit
//! confirming that the steps predicted to stay cached are exactly those it
//! reports CACHED.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::process::Command as Std;

use assert_cmd::Command;
use serde_json::Value;

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Std::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

fn commit(dir: &Path, msg: &str) {
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", msg]);
}

/// The monorepo at its base commit. `nonce` goes into a WORKDIR line that
/// never changes between commits, so that no earlier run's build cache
/// can serve this run's steps.
fn fixture(nonce: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    git(p, &["init", "-q", "-b", "main"]);
    write(
        p,
        "backend/Dockerfile",
        &format!(
            "FROM reggie-busybox:latest\nWORKDIR /srv-{nonce}\nCOPY backend/requirements.txt ./\nRUN cat requirements.txt\nCOPY backend/app ./app\nCMD [\"sh\"]\n"
        ),
    );
    write(
        p,
        "frontend/Dockerfile",
        &format!(
            "FROM reggie-busybox:latest AS build\nWORKDIR /w-{nonce}\nARG MODE=dev\nCOPY package.json ./\nRUN echo \"$MODE\" > mode\nCOPY src ./src\n\nFROM scratch\nCOPY --from=build /w-{nonce} /w\n"
        ),
    );
    write(p, ".dockerignore", "**/__pycache__\n");
    write(p, "backend/requirements.txt", "fastapi\n");
    write(p, "backend/app/main.py", "print(1)\n");
    write(p, "backend/app/helpers.py", "X = 1\n");
    write(p, "backend/app/__pycache__/main.pyc", "pyc\n");
    write(p, "frontend/package.json", "{}\n");
    write(p, "frontend/src/a.js", "a\n");
    write(p, "frontend/src/b.js", "b\n");
    write(p, "README.md", "# repo\n");
    write(p, "reggie-build.toml", &config("dev"));
    commit(p, "base");
    d
}

fn config(mode: &str) -> String {
    format!(
        "[[image]]\nname = \"api\"\ndockerfile = \"backend/Dockerfile\"\ncontext = \".\"\n\n[[image]]\nname = \"web\"\ncontext = \"frontend\"\nbuild_args = {{ MODE = \"{mode}\" }}\n"
    )
}

fn bin(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("reggie-build").unwrap();
    cmd.current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("GITHUB_OUTPUT");
    cmd
}

fn report(dir: &Path, extra: &[&str]) -> Value {
    let out = bin(dir)
        .args(["affected", "--format", "json"])
        .args(extra)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Per image: `None` when unaffected, else the first busted steps as
/// (label, instruction, first cause).
type Verdicts = BTreeMap<String, Option<Vec<(String, String, String)>>>;

fn verdicts(r: &Value) -> Verdicts {
    r["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let name = i["name"].as_str().unwrap().to_string();
            if !i["affected"].as_bool().unwrap() {
                return (name, None);
            }
            let steps = i["first_busted"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| {
                    (
                        s["label"].as_str().unwrap().to_string(),
                        s["instruction"].as_str().unwrap().to_string(),
                        s["causes"][0].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            (name, Some(steps))
        })
        .collect()
}

fn step(label: &str, ins: &str, cause: &str) -> (String, String, String) {
    (label.into(), ins.into(), cause.into())
}

/// The steps predicted to stay cached, `FROM` excluded (BuildKit reports
/// an already resolved base as either CACHED or DONE).
fn predicted_cached(r: &Value, image: &str) -> BTreeSet<String> {
    let img = r["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == image)
        .unwrap();
    img["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["cached"].as_bool().unwrap())
        .filter(|s| !s["instruction"].as_str().unwrap().starts_with("FROM"))
        .map(|s| squash(s["label"].as_str().unwrap()))
        .collect()
}

/// Every step of the prediction, `FROM` excluded.
fn predicted_steps(r: &Value, image: &str) -> BTreeSet<String> {
    let img = r["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == image)
        .unwrap();
    img["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| !s["instruction"].as_str().unwrap().starts_with("FROM"))
        .map(|s| squash(s["label"].as_str().unwrap()))
        .collect()
}

fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// One kind of change, committed on top of the previous ones.
struct Case {
    name: &'static str,
    change: fn(&Path),
    want: Verdicts,
}

fn cases() -> Vec<Case> {
    let none =
        |names: &[&str]| -> Verdicts { names.iter().map(|n| (n.to_string(), None)).collect() };
    let with = |mut v: Verdicts, name: &str, steps: Vec<(String, String, String)>| {
        v.insert(name.into(), Some(steps));
        v
    };
    vec![
        Case {
            name: "backend file",
            change: |p| write(p, "backend/app/main.py", "print(2)\n"),
            want: with(
                none(&["web"]),
                "api",
                vec![step("5/5", "COPY backend/app ./app", "backend/app/main.py")],
            ),
        },
        Case {
            name: "frontend file",
            change: |p| write(p, "frontend/src/a.js", "b\n"),
            want: with(
                none(&["api"]),
                "web",
                vec![
                    step("build 5/5", "COPY src ./src", "frontend/src/a.js"),
                    step(
                        "stage-1 1/1",
                        "COPY --from=build /w-NONCE /w",
                        "stage `build` it copies from is rebuilt",
                    ),
                ],
            ),
        },
        Case {
            name: "Dockerfile line",
            change: |p| {
                let df = fs::read_to_string(p.join("backend/Dockerfile")).unwrap();
                write(
                    p,
                    "backend/Dockerfile",
                    &df.replace("RUN cat requirements.txt", "RUN cat requirements.txt && ls"),
                )
            },
            want: with(
                none(&["web"]),
                "api",
                vec![step(
                    "4/5",
                    "RUN cat requirements.txt && ls",
                    "Dockerfile line 4 changed",
                )],
            ),
        },
        Case {
            name: "ignore-file line",
            change: |p| {
                write(
                    p,
                    ".dockerignore",
                    "**/__pycache__\nbackend/app/helpers.py\n",
                )
            },
            want: with(
                none(&["web"]),
                "api",
                vec![step(
                    "5/5",
                    "COPY backend/app ./app",
                    ".dockerignore changed: backend/app/helpers.py now ignored",
                )],
            ),
        },
        Case {
            name: "rename out of a COPY source",
            change: |p| git(p, &["mv", "backend/app/main.py", "backend/main.py"]).truncate(0),
            want: with(
                none(&["web"]),
                "api",
                vec![step(
                    "5/5",
                    "COPY backend/app ./app",
                    "backend/app/main.py (renamed away)",
                )],
            ),
        },
        Case {
            name: "build arg in the config",
            change: |p| write(p, "reggie-build.toml", &config("prod")),
            want: with(
                none(&["api"]),
                "web",
                vec![
                    step(
                        "build 4/5",
                        "RUN echo \"$MODE\" > mode",
                        "build arg MODE changed in the config",
                    ),
                    step(
                        "stage-1 1/1",
                        "COPY --from=build /w-NONCE /w",
                        "stage `build` it copies from is rebuilt",
                    ),
                ],
            ),
        },
        Case {
            name: "mode change",
            change: |p| {
                use std::os::unix::fs::PermissionsExt;
                let f = p.join("backend/requirements.txt");
                fs::set_permissions(f, fs::Permissions::from_mode(0o755)).unwrap();
            },
            want: with(
                none(&["web"]),
                "api",
                vec![step(
                    "3/5",
                    "COPY backend/requirements.txt ./",
                    "backend/requirements.txt",
                )],
            ),
        },
        Case {
            name: "deletion",
            change: |p| fs::remove_file(p.join("frontend/src/b.js")).unwrap(),
            want: with(
                none(&["api"]),
                "web",
                vec![
                    step("build 5/5", "COPY src ./src", "frontend/src/b.js (deleted)"),
                    step(
                        "stage-1 1/1",
                        "COPY --from=build /w-NONCE /w",
                        "stage `build` it copies from is rebuilt",
                    ),
                ],
            ),
        },
        Case {
            name: "Dockerfile comment",
            change: |p| {
                let df = fs::read_to_string(p.join("backend/Dockerfile")).unwrap();
                let df = df.replacen('\n', "\n# the API\n\n", 1);
                write(p, "backend/Dockerfile", &df)
            },
            want: none(&["api", "web"]),
        },
        Case {
            name: "ignored and unread files",
            change: |p| {
                write(p, "backend/app/__pycache__/main.pyc", "pyc2\n");
                write(p, "README.md", "# repo 2\n");
            },
            want: none(&["api", "web"]),
        },
    ]
}

/// Replaces the nonce in instructions for comparison.
fn normalize(v: Verdicts, nonce: &str) -> Verdicts {
    v.into_iter()
        .map(|(k, steps)| {
            (
                k,
                steps.map(|s| {
                    s.into_iter()
                        .map(|(l, i, c)| (l, i.replace(nonce, "NONCE"), c))
                        .collect()
                }),
            )
        })
        .collect()
}

#[test]
fn verdicts_and_busted_steps_per_kind_of_change() {
    let nonce = "fixed";
    let repo = fixture(nonce);
    let p = repo.path();
    for case in cases() {
        (case.change)(p);
        commit(p, case.name);
        let r = report(p, &["--base", "HEAD~1"]);
        assert_eq!(r["schema"], 1);
        assert_eq!(normalize(verdicts(&r), nonce), case.want, "{}", case.name);
    }
    // Steps before the first busted one stay cached, the others do not.
    let first = format!("HEAD~{}", cases().len() - 1);
    git(p, &["checkout", "-q", &first]);
    let r = report(p, &["--base", "HEAD~1"]);
    assert_eq!(
        predicted_cached(&r, "api"),
        ["2/5", "3/5", "4/5"].map(String::from).into()
    );
}

#[test]
fn human_output_names_the_file_and_the_step() {
    let repo = fixture("h");
    let p = repo.path();
    write(p, "backend/app/main.py", "print(2)\n");
    commit(p, "backend");
    let out = bin(p).args(["affected"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("backend/app/main.py busts step 5/5 COPY backend/app ./app (api); steps 1-4 stay cached"),
        "{text}"
    );
    assert!(text.contains("unaffected  web"), "{text}");
    assert!(text.contains("1 of 2 images affected"), "{text}");
}

#[test]
fn worktree_changes_count_untracked_files_too() {
    let repo = fixture("w");
    let p = repo.path();
    write(p, "frontend/src/new.js", "n\n");
    let r = report(p, &["--base", "HEAD", "--worktree"]);
    let v = verdicts(&r);
    assert_eq!(v["api"], None);
    let web = v["web"].as_ref().unwrap();
    assert_eq!(web[0].0, "build 5/5");
    assert_eq!(web[0].2, "frontend/src/new.js (untracked)");
    // Without --worktree, HEAD against HEAD: nothing.
    let r = report(p, &["--base", "HEAD"]);
    assert!(verdicts(&r).values().all(Option::is_none));
}

/// A repository whose git directory lives elsewhere, named by the user's
/// `GIT_DIR` and `GIT_WORK_TREE` (as `benches/compare.sh` does): the
/// environment is the user's own, so it is honoured, while a `.git`
/// found in the tree is still the default.
#[test]
fn the_users_git_dir_and_work_tree_are_honoured() {
    let repo = fixture("g");
    let p = repo.path();
    let elsewhere = tempfile::tempdir().unwrap();
    let git_dir = elsewhere.path().join("history.git");
    fs::rename(p.join(".git"), &git_dir).unwrap();
    write(p, "frontend/src/a.js", "changed by the user\n");
    let out = bin(p)
        .env("GIT_DIR", &git_dir)
        .env("GIT_WORK_TREE", p)
        .args([
            "affected",
            "--format",
            "json",
            "--base",
            "HEAD",
            "--worktree",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = verdicts(&serde_json::from_slice(&out.stdout).unwrap());
    assert_eq!(v["api"], None);
    assert!(v["web"].is_some(), "{v:?}");
    // Without the environment there is no repository here at all.
    let out = bin(p)
        .args(["affected", "--base", "HEAD"])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
}

#[test]
fn control_characters_in_paths_are_escaped() {
    let repo = fixture("e");
    let p = repo.path();
    write(p, "backend/app/x\n\u{1b}[31mred.py", "x\n");
    commit(p, "odd name");
    // Markdown backslashes the backslash, which renders as one.
    for (format, shown) in [("human", "x\\n"), ("markdown", "x\\\\n")] {
        let out = bin(p)
            .args(["affected", "--format", format])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0));
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(!text.contains('\u{1b}'), "{format}: {text}");
        assert!(!text.contains("x\n"), "{format}: {text}");
        assert!(text.contains(shown), "{format}: {text}");
    }
}

#[test]
fn github_format_writes_a_matrix_and_a_summary() {
    let repo = fixture("g");
    let p = repo.path();
    write(p, "frontend/src/a.js", "b\n");
    commit(p, "fe");
    let out_dir = tempfile::tempdir().unwrap();
    let output = out_dir.path().join("output");
    let summary = out_dir.path().join("summary");
    bin(p)
        .args(["affected", "--format", "github"])
        .env("GITHUB_OUTPUT", &output)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .assert()
        .code(0);
    let text = fs::read_to_string(&output).unwrap();
    let matrix = text
        .lines()
        .find_map(|l| l.strip_prefix("matrix="))
        .unwrap();
    let m: Value = serde_json::from_str(matrix).unwrap();
    assert_eq!(
        m,
        serde_json::json!({"include": [{"image": "web", "context": "frontend", "dockerfile": "frontend/Dockerfile"}]})
    );
    assert!(text.lines().any(|l| l == "any=true"), "{text}");
    assert!(text.lines().any(|l| l == "images=web"), "{text}");
    let md = fs::read_to_string(&summary).unwrap();
    assert!(
        md.contains("| web | **affected** | build 5/5 COPY src ./src | steps 1-4 |"),
        "{md}"
    );
    assert!(md.contains("| api | unaffected |"), "{md}");
}

#[test]
fn shallow_clone_without_the_base_says_how_to_fetch_it() {
    let repo = fixture("s");
    let p = repo.path();
    write(p, "backend/app/main.py", "print(2)\n");
    commit(p, "backend");
    let clone = tempfile::tempdir().unwrap();
    let url = format!("file://{}", p.display());
    git(
        clone.path(),
        &["clone", "-q", "--depth", "1", &url, "shallow"],
    );
    let out = bin(&clone.path().join("shallow"))
        .args(["affected", "--base", "HEAD~1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`HEAD~1` is not in this clone, which is shallow"),
        "{err}"
    );
    assert!(err.contains("git fetch --deepen"), "{err}");
    assert!(err.contains("fetch-depth: 0"), "{err}");
    // An unknown revision in a full clone is another message.
    let out = bin(p)
        .args(["affected", "--base", "nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("base revision `nope` was not found"), "{err}");
}

/// Builds `image` of the checked-out fixture with the daemon's BuildKit
/// and returns the labels of its steps (`FROM` aside) and of those it
/// reports CACHED.
fn build_cached(
    env: &BTreeMap<String, String>,
    p: &Path,
    image: &str,
) -> (BTreeSet<String>, BTreeSet<String>) {
    let (context, dockerfile, args): (&str, &str, Vec<String>) = match image {
        "api" => (".", "backend/Dockerfile", vec![]),
        "web" => {
            let cfg = fs::read_to_string(p.join("reggie-build.toml")).unwrap();
            let mode = if cfg.contains("\"prod\"") {
                "prod"
            } else {
                "dev"
            };
            (
                "frontend",
                "frontend/Dockerfile",
                vec!["--build-arg".into(), format!("MODE={mode}")],
            )
        }
        _ => (".", "Dockerfile", vec![]),
    };
    let out = common::docker::docker_cmd(env, common::docker::Cli::BuildKit, p)
        .args([
            "build",
            "--progress=plain",
            "--network",
            "none",
            "-f",
            dockerfile,
        ])
        .args(&args)
        .arg(context)
        .output()
        .expect("docker runs");
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "docker build failed:\n{log}");
    let mut labels: BTreeMap<String, String> = BTreeMap::new();
    let mut cached = BTreeSet::new();
    for line in log.lines() {
        let Some(rest) = line.strip_prefix('#') else {
            continue;
        };
        let Some((id, what)) = rest.split_once(' ') else {
            continue;
        };
        if let Some(label) = what.strip_prefix('[').and_then(|w| w.split_once(']')) {
            if !label.0.starts_with("internal") && !label.1.trim_start().starts_with("FROM") {
                labels.insert(id.to_string(), squash(label.0));
            }
        } else if what.trim() == "CACHED" {
            cached.insert(id.to_string());
        }
    }
    let cached = cached
        .iter()
        .filter_map(|id| labels.get(id).cloned())
        .collect();
    (labels.into_values().collect(), cached)
}

#[test]
fn buildkit_reports_cached_exactly_the_steps_predicted() {
    let Some(env) = services() else { return };
    let nonce = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let repo = fixture(&nonce);
    let p = repo.path();
    for case in cases() {
        // The affected image, or one that is not (all its steps cached).
        let image = case
            .want
            .iter()
            .find(|(_, v)| v.is_some())
            .map_or("api", |(k, _)| k.as_str());
        // Warm the cache with the base...
        build_cached(&env, p, image);
        (case.change)(p);
        commit(p, case.name);
        let r = report(p, &["--base", "HEAD~1"]);
        // ... then the head reuses exactly what was predicted.
        let (all, cached) = build_cached(&env, p, image);
        assert_eq!(all, predicted_steps(&r, image), "{}: {image}", case.name);
        assert_eq!(
            cached,
            predicted_cached(&r, image),
            "{}: {image}",
            case.name
        );
        assert!(!cached.is_empty(), "{}", case.name);
    }
}

#[test]
fn buildkit_confirms_onbuild_bind_mounts_and_whole_context_copies() {
    let Some(env) = services() else { return };
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    let nonce = format!("{}", std::process::id());
    git(p, &["init", "-q", "-b", "main"]);
    write(
        p,
        "Dockerfile",
        &format!(
            "FROM reggie-busybox:latest AS base\nONBUILD COPY req.txt /r\nWORKDIR /{nonce}-{}\nFROM base AS b\nRUN --mount=type=bind,source=scripts,target=/s cat /s/x\nCOPY . /all\n",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ),
    );
    write(p, "req.txt", "r\n");
    write(p, "scripts/x", "x\n");
    write(p, "src/s", "s\n");
    write(p, ".dockerignore", "node_modules\n");
    commit(p, "base");
    let changes: [(&str, &str, &str, &str); 4] = [
        ("scripts/x", "y\n", "b 2/2", "scripts/x"),
        ("req.txt", "r2\n", "b 1/2", "req.txt"),
        ("src/s", "t\n", "b 3/2", "src/s"),
        (
            ".dockerignore",
            "node_modules\nsrc\n",
            "b 3/2",
            ".dockerignore",
        ),
    ];
    for (file, text, label, cause) in changes {
        build_cached(&env, p, "df");
        write(p, file, text);
        commit(p, file);
        // Without a config, the image is the one `discover` finds.
        let r = report(p, &[]);
        let name = r["images"][0]["name"].as_str().unwrap().to_string();
        let v = verdicts(&r);
        let first = v[&name].as_ref().expect("affected");
        assert_eq!((first[0].0.as_str(), first[0].2.as_str()), (label, cause));
        let (all, cached) = build_cached(&env, p, "df");
        assert_eq!(all, predicted_steps(&r, &name), "{file}");
        assert_eq!(cached, predicted_cached(&r, &name), "{file}");
    }
    // An ENV at the end of the parent stage: the parent stays cached, the
    // child's COPY too, but its RUN sees the new environment.
    build_cached(&env, p, "df");
    let df = fs::read_to_string(p.join("Dockerfile")).unwrap();
    write(
        p,
        "Dockerfile",
        &df.replacen("\nFROM base AS b", "\nENV E=1\nFROM base AS b", 1),
    );
    commit(p, "env");
    let r = report(p, &[]);
    let name = r["images"][0]["name"].as_str().unwrap().to_string();
    let first = verdicts(&r)[&name].clone().expect("affected");
    assert_eq!(
        (first[0].0.as_str(), first[0].2.as_str()),
        ("b 2/2", "an ARG, ENV, USER or SHELL line above it changed")
    );
    let (all, cached) = build_cached(&env, p, "df");
    assert_eq!(all, predicted_steps(&r, &name));
    assert_eq!(cached, predicted_cached(&r, &name));
}

/// `DOCKER_HOST` of the test services; a missing daemon fails the test
/// unless skips are allowed.
fn services() -> Option<BTreeMap<String, String>> {
    let env = common::services()?;
    if !Path::new("/usr/bin/docker").exists() {
        common::missing_prerequisite(
            std::thread::current().name().unwrap_or("an e2e test"),
            "/usr/bin/docker (the 20.10 CLI that drives BuildKit) is missing",
            "Install docker.io, or run `bash tests/run.sh`.",
        );
        return None;
    }
    Some(env)
}

#[test]
fn a_submodule_bump_reaches_the_copy_of_its_directory() {
    let repo = fixture("sub");
    let p = repo.path();
    let lib = tempfile::tempdir().unwrap();
    git(lib.path(), &["init", "-q", "-b", "main"]);
    write(lib.path(), "lib.py", "V = 1\n");
    commit(lib.path(), "lib 1");
    let url = format!("file://{}", lib.path().display());
    git(
        p,
        &[
            "-c",
            "protocol.file.allow=always",
            "submodule",
            "add",
            "-q",
            &url,
            "backend/app/vendor",
        ],
    );
    commit(p, "add the submodule");
    write(lib.path(), "lib.py", "V = 2\n");
    commit(lib.path(), "lib 2");
    let sub = p.join("backend/app/vendor");
    git(
        &sub,
        &[
            "-c",
            "protocol.file.allow=always",
            "pull",
            "-q",
            "origin",
            "main",
        ],
    );
    commit(p, "bump");
    let r = report(p, &["--base", "HEAD~1"]);
    assert_eq!(
        verdicts(&r),
        [
            (
                "api".to_string(),
                Some(vec![step(
                    "5/5",
                    "COPY backend/app ./app",
                    "backend/app/vendor"
                )])
            ),
            ("web".to_string(), None),
        ]
        .into()
    );
}

#[test]
fn config_changes_name_the_base_image_build_arg_and_platform() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    git(p, &["init", "-q", "-b", "main"]);
    write(
        p,
        "Dockerfile",
        "ARG BASE=alpine:3.19\nFROM $BASE\nARG V\nCOPY a /a\nRUN echo $V\n",
    );
    write(p, "a", "a\n");
    let cfg = |base: &str, v: &str, platform: &str| {
        format!("[[image]]\nname = \"x\"\n{platform}build_args = {{ BASE = \"{base}\", V = \"{v}\" }}\n")
    };
    write(p, "reggie-build.toml", &cfg("alpine:3.19", "1", ""));
    commit(p, "base");
    let cases = [
        (
            cfg("alpine:3.20", "1", ""),
            step(
                "1/3",
                "FROM $BASE",
                "the base image changed (alpine:3.19 → alpine:3.20)",
            ),
        ),
        (
            cfg("alpine:3.20", "2", ""),
            step("3/3", "RUN echo $V", "build arg V changed in the config"),
        ),
        (
            cfg("alpine:3.20", "2", "platform = \"linux/arm64\"\n"),
            step(
                "1/3",
                "FROM $BASE",
                "platform changed (default → linux/arm64)",
            ),
        ),
    ];
    for (text, want) in cases {
        write(p, "reggie-build.toml", &text);
        commit(p, "config");
        let r = report(p, &[]);
        assert_eq!(verdicts(&r)["x"], Some(vec![want]), "{text}");
    }
}

#[test]
fn image_selects_and_an_unknown_one_lists_the_others() {
    let repo = fixture("i");
    let p = repo.path();
    write(p, "frontend/src/a.js", "b\n");
    commit(p, "fe");
    let r = report(p, &["--image", "web"]);
    assert_eq!(verdicts(&r).keys().collect::<Vec<_>>(), ["web"]);
    let out = bin(p)
        .args(["affected", "--image", "nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no image named `nope`; images: api, web"),
        "{err}"
    );
}

#[test]
fn build_args_that_pick_the_base_stage_or_feed_another_arg() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    git(p, &["init", "-q", "-b", "main"]);
    write(
        p,
        "Dockerfile",
        "ARG FLAVOR=one\nARG TAG=3\nARG IMG=alpine:${TAG}\nFROM alpine AS one\nFROM busybox AS two\nFROM ${FLAVOR}\nARG IMG\nRUN echo $IMG\nCOPY a /a\n",
    );
    write(p, "a", "a\n");
    let cfg = |flavor: &str, tag: &str| {
        format!(
            "[[image]]\nname = \"x\"\nbuild_args = {{ FLAVOR = \"{flavor}\", TAG = \"{tag}\" }}\n"
        )
    };
    write(p, "reggie-build.toml", &cfg("one", "3"));
    commit(p, "base");
    for (text, want) in [
        (
            cfg("two", "3"),
            step(
                "stage-2 1/2",
                "RUN echo $IMG",
                "its base is now stage `two`",
            ),
        ),
        (
            cfg("two", "4"),
            step("stage-2 1/2", "RUN echo $IMG", "build arg IMG changed"),
        ),
    ] {
        write(p, "reggie-build.toml", &text);
        commit(p, "config");
        let r = report(p, &[]);
        assert_eq!(verdicts(&r)["x"], Some(vec![want]), "{text}");
    }
}

/// GitHub's `before` for a push that creates a branch.
#[test]
fn an_all_zero_base_means_everything_is_new() {
    let repo = fixture("z");
    let p = repo.path();
    let r = report(p, &["--base", &"0".repeat(40)]);
    for img in r["images"].as_array().unwrap() {
        assert_eq!(img["affected"], true);
        let reason = img["reasons"][0].as_str().unwrap();
        assert!(
            reason.starts_with("new image: no Dockerfile")
                && reason.contains("the null base revision (a new branch)"),
            "{reason}"
        );
        assert!(img["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["cached"] == false));
    }
}

/// Issue 23 item 10: a changed file named like a workflow command
/// (`##[error]`, legacy form, matched anywhere in a line) is neutralised
/// in every format that reaches a CI log, the matrix included.
#[test]
fn workflow_commands_in_paths_are_neutralised() {
    let repo = fixture("c");
    let p = repo.path();
    write(p, "backend/app/##[error]x.py", "x\n");
    write(p, "frontend/src/##[add-mask]y.js", "y\n");
    commit(p, "odd names");
    for format in ["human", "markdown", "github", "json"] {
        let out = bin(p)
            .args(["affected", "--format", format])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{format}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains("x.py"), "{format}: {text}");
        for line in text.lines() {
            assert!(!line.contains("##["), "{format}: {line:?}");
            assert!(!line.trim_start().starts_with("::"), "{format}: {line:?}");
        }
    }
}
