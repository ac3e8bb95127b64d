//! `image --all` on a pool of BuildKit builders (`--buildkit-addr`
//! repeated, `[[builder]]`): the services' two daemons, each one's
//! embedded BuildKit relayed on a unix socket of the test's own
//! (`tests/relay.py buildkit`), so that an image lands in the image store
//! of the builder that built it, and a builder can be taken away in the
//! middle of a build. Two standalone buildkitd sharing a registry cache
//! are in `e2e_buildkitd.rs` (ignored: CI cannot build buildkitd).
//!
//! These fail when the services are missing (`bash tests/services.sh`).
#![cfg(feature = "image")]

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;
use std::process::Output;

#[path = "common/build.rs"]
mod build;
mod common;
use build::*;

/// The services, with both daemons; `None` only when skips are allowed.
fn two_daemons() -> Option<(BTreeMap<String, String>, String, String)> {
    let env = common::services()?;
    let Some(second) = env.get("REGGIE_TEST_DOCKER2").cloned() else {
        common::missing_prerequisite(
            std::thread::current()
                .name()
                .unwrap_or("a builder-pool test"),
            "the services' env names no second daemon (REGGIE_TEST_DOCKER2)",
            "Start it with `bash tests/services.sh`.",
        );
        return None;
    };
    let first = env["DOCKER_HOST"].clone();
    Some((env, first, second))
}

/// A monorepo of `names` (each `FROM scratch` + its own file, or the
/// Dockerfile `special` gives it), tagged `pool-e2e-<run>-<name>:t`.
fn monorepo(dir: &Path, run: &str, names: &[&str], special: &[(&str, &str)]) {
    let mut config = String::new();
    for name in names {
        let app = dir.join(name);
        std::fs::create_dir_all(&app).unwrap();
        std::fs::write(app.join("file.txt"), format!("{name}\n")).unwrap();
        let dockerfile = special
            .iter()
            .find(|(n, _)| n == name)
            .map_or("FROM scratch\nCOPY file.txt /file.txt\n", |(_, d)| d);
        std::fs::write(app.join("Dockerfile"), dockerfile).unwrap();
        config.push_str(&format!(
            "[[image]]\nname = \"{name}\"\ncontext = \"{name}\"\nrepository = \"pool-e2e-{run}-{name}\"\ntags = [\"t\"]\n\n"
        ));
    }
    std::fs::write(dir.join("reggie-build.toml"), config).unwrap();
}

/// `reggie-build image ARGS` in `dir` (the builders do the work, the
/// daemon of the environment takes no part).
fn run(env: &BTreeMap<String, String>, dir: &Path, config: &Path, args: &[&str]) -> Output {
    reggie(env, dir, config, args, &[])
}

/// Image name → builder, from the `--json` result lines.
fn placements(out: &Output) -> BTreeMap<String, (bool, Option<String>)> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "result" && v["image"].is_string())
        .map(|v| {
            (
                v["image"].as_str().unwrap().to_string(),
                (v["ok"] == true, v["builder"].as_str().map(str::to_string)),
            )
        })
        .collect()
}

/// Whether `image` is in the daemon at `host`.
fn has_image(env: &BTreeMap<String, String>, host: &str, image: &str) -> bool {
    let mut env = env.clone();
    env.insert("DOCKER_HOST".into(), host.into());
    let out = common::docker::docker_may_fail(
        &env,
        common::docker::Cli::Classic,
        Path::new("/"),
        &["image", "inspect", "--format", "{{.Id}}", image],
    );
    out.status.success()
}

fn remove_images(env: &BTreeMap<String, String>, hosts: &[&str], images: &[String]) {
    for host in hosts {
        let mut env = env.clone();
        env.insert("DOCKER_HOST".to_string(), host.to_string());
        let mut args = vec!["rmi", "-f"];
        args.extend(images.iter().map(String::as_str));
        let _ = common::docker::docker_may_fail(
            &env,
            common::docker::Cli::Classic,
            Path::new("/"),
            &args,
        );
    }
}

#[test]
fn each_image_goes_to_its_own_builder_every_run() {
    let Some((env, first, second)) = two_daemons() else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("config");
    std::fs::create_dir_all(&config).unwrap();
    let (a, b) = (
        Relay::start(&first, &work.path().join("a.sock")),
        Relay::start(&second, &work.path().join("b.sock")),
    );
    let repo = work.path().join("repo");
    let names = ["api", "web", "worker", "jobs", "admin", "docs"];
    let run_id = format!("{}", std::process::id());
    monorepo(&repo, &run_id, &names, &[]);
    let images: Vec<String> = names
        .iter()
        .map(|n| format!("pool-e2e-{run_id}-{n}:t"))
        .collect();
    let host_of = |addr: &str| if addr == a.addr { &first } else { &second };
    let flags = [
        "--all",
        "--json",
        "--jobs",
        "1",
        "--buildkit-addr",
        &a.addr,
        "--buildkit-addr",
        &b.addr,
    ];
    let mut runs = Vec::new();
    for _ in 0..2 {
        remove_images(&env, &[&first, &second], &images);
        let out = run(&env, &repo, &config, &flags);
        ok(&out);
        let placed = placements(&out);
        assert_eq!(placed.len(), names.len(), "{}", text(&out));
        for (name, (ok, builder)) in &placed {
            let builder = builder
                .as_deref()
                .unwrap_or_else(|| panic!("{name}: no builder"));
            assert!(ok, "{name}");
            let image = format!("pool-e2e-{run_id}-{name}:t");
            let (there, other) = match host_of(builder) == &first {
                true => (&first, &second),
                false => (&second, &first),
            };
            assert!(has_image(&env, there, &image), "{image} not in {there}");
            assert!(!has_image(&env, other, &image), "{image} also in {other}");
        }
        runs.push(placed);
    }
    assert_eq!(
        runs[0], runs[1],
        "the same builder for each image from run to run"
    );

    // [[builder]] in the config: the same builders, the same placements.
    let mut text_config = std::fs::read_to_string(repo.join("reggie-build.toml")).unwrap();
    for r in [&a, &b] {
        text_config.push_str(&format!("[[builder]]\naddr = \"{}\"\n\n", r.addr));
    }
    std::fs::write(repo.join("reggie-build.toml"), text_config).unwrap();
    remove_images(&env, &[&first, &second], &images);
    let out = run(&env, &repo, &config, &["--all", "--json", "--jobs", "1"]);
    ok(&out);
    assert_eq!(placements(&out), runs[0], "{}", text(&out));
    // A builder event names each image's builder and why.
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|v: &serde_json::Value| v["event"] == "builder")
        .collect();
    assert_eq!(events.len(), names.len(), "{}", text(&out));
    assert!(
        events.iter().all(|e| e["reason"] == "preferred"),
        "{events:?}"
    );
    remove_images(&env, &[&first, &second], &images);
}

#[test]
fn a_builder_down_or_lost_mid_build_fails_only_its_image() {
    let Some((env, first, second)) = two_daemons() else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("config");
    std::fs::create_dir_all(&config).unwrap();
    let mut a = Relay::start(&first, &work.path().join("a.sock"));
    let mut b = Relay::start(&second, &work.path().join("b.sock"));
    // A third builder nobody serves: down from the start.
    let down = format!("unix://{}", work.path().join("nobody.sock").display());
    let repo = work.path().join("repo");
    let names = ["slow", "api", "web", "worker", "jobs"];
    let run_id = format!("lost{}", std::process::id());
    monorepo(
        &repo,
        &run_id,
        &names,
        &[(
            "slow",
            "FROM reggie-busybox:latest\nRUN echo started && sleep 30\n",
        )],
    );
    let images: Vec<String> = names
        .iter()
        .map(|n| format!("pool-e2e-{run_id}-{n}:t"))
        .collect();
    remove_images(&env, &[&first, &second], &images);
    let mut child = reggie_cmd(
        &env,
        &repo,
        &config,
        &[
            "--all",
            "--json",
            "--jobs",
            "1",
            "--network",
            "none",
            "--buildkit-addr",
            &a.addr,
            "--buildkit-addr",
            &b.addr,
            "--buildkit-addr",
            &down,
        ],
        &[],
    )
    .spawn()
    .expect("run reggie-build");
    // `slow` is first: once its RUN step runs, its builder goes away.
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    let mut slow_on: Option<String> = None;
    let mut killed = false;
    for line in stdout.lines() {
        let line = line.unwrap();
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
            if v["image"] == "slow" && v["event"] == "builder" {
                slow_on = v["addr"].as_str().map(str::to_string);
            }
            let runs =
                v["event"] == "log" && v["line"].as_str().is_some_and(|l| l.contains("started"));
            if v["image"] == "slow" && runs && !killed {
                match slow_on.as_deref() {
                    Some(addr) if addr == a.addr => a.stop(),
                    Some(addr) if addr == b.addr => b.stop(),
                    other => panic!("slow runs on {other:?}"),
                }
                killed = true;
            }
        }
        lines.push(line);
    }
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    let all = format!("{}\n{stderr}", lines.join("\n"));
    assert!(killed, "the slow build never ran its step:\n{all}");
    assert_eq!(status.code(), Some(1), "{all}");
    let lost = slow_on.unwrap();
    let results: BTreeMap<String, serde_json::Value> = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "result")
        .map(|v| (v["image"].as_str().unwrap_or_default().to_string(), v))
        .collect();
    let slow = &results["slow"];
    assert_eq!(slow["ok"], false, "{all}");
    assert_eq!(slow["builder"].as_str(), Some(lost.as_str()));
    let error = slow["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(&format!("the builder at {lost} went away during the build")),
        "{error}"
    );
    // The others were built, none on the lost or the dead builder.
    let up = if lost == a.addr {
        (&b.addr, &second)
    } else {
        (&a.addr, &first)
    };
    for name in &names[1..] {
        let r = &results[*name];
        assert_eq!(r["ok"], true, "{name}: {all}");
        assert_eq!(r["builder"].as_str(), Some(up.0.as_str()), "{name}: {all}");
        assert!(has_image(
            &env,
            up.1,
            &format!("pool-e2e-{run_id}-{name}:t")
        ));
    }
    // Images that preferred the dead builder were told so and moved on.
    assert!(
        !all.contains(&format!("\"builder\":\"{down}\"")),
        "an image reported built on the dead builder:\n{all}"
    );
    assert!(stderr.contains("failed: slow"), "{stderr}");
    remove_images(&env, &[&first, &second], &images);
}
