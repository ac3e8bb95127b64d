//! End-to-end tests of `reggie-build size` on images the real daemon
//! builds with both builders, with waste planted in them: the report
//! names each planted item with its exact bytes and the lines that added
//! and hid them, attributes every layer, and reads the same image from
//! the daemon, a `docker save` archive and the authenticated test
//! registry alike. Services from `tests/services.sh`.
#![cfg(feature = "image")]

use std::process::Output;

mod common;

use common::context::Ctx;
use common::docker::{docker, text, Cli};
use common::images::Images;

const DOCKERFILE: &str = "\
FROM reggie-busybox:latest AS build
RUN mkdir /out && head -c 120011 /dev/urandom > /out/gen.bin

FROM reggie-busybox:latest
COPY big.bin /app/big.bin
RUN rm /app/big.bin
COPY data.bin /app/data.bin
RUN chmod 600 /app/data.bin
COPY v1.bin /app/conf.bin
COPY v2.bin /app/conf.bin
COPY --from=build /out/gen.bin /app/gen.bin
COPY --from=build /out/gen.bin /app/gen-copy.bin
RUN mkdir -p /var/lib/apt/lists /root/.cache/pip/http /usr/include && head -c 70013 /dev/urandom > /var/lib/apt/lists/x_Packages && head -c 30011 /dev/urandom > /root/.cache/pip/http/blob && head -c 4001 /dev/urandom > /usr/include/x.h
COPY src/ /app/src/
CMD [\"sh\"]
";

/// (kind, bytes, line that added, line that hid or first wrote them).
type Item = (String, u64, Option<usize>, Option<usize>);

/// What was planted, exactly.
fn planted() -> Vec<Item> {
    let mut v: Vec<Item> = vec![
        ("deleted".into(), 300_001, Some(5), Some(6)),
        ("metadata_only".into(), 200_003, Some(7), Some(8)),
        ("duplicate".into(), 120_011, Some(12), Some(11)),
        ("package_cache".into(), 70_013, Some(13), None),
        ("overwritten".into(), 50_007, Some(9), Some(10)),
        ("package_cache".into(), 30_011, Some(13), None),
        ("vcs".into(), 10_007, Some(14), None),
        ("context".into(), 5_003, Some(14), None),
        ("toolchain".into(), 4_001, Some(13), None),
    ];
    v.sort();
    v
}

fn random(len: usize, seed: u8) -> Vec<u8> {
    // Distinct, incompressible-enough bytes per file (no two files alike).
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ u64::from(seed);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn context() -> Ctx {
    Ctx::new()
        .dockerfile(DOCKERFILE)
        .file("big.bin", random(300_001, 1))
        .file("data.bin", random(200_003, 2))
        .file("v1.bin", random(50_007, 3))
        .file("v2.bin", random(50_009, 4))
        .file("src/.git/objects/pack", random(10_007, 5))
        .file("src/tests/test_a.py", random(5_003, 6))
        .file("src/main.py", random(99, 7))
}

use common::docker::reggie_isolated as reggie;

fn report(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "size failed:\n{}", text(out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}:\n{}", text(out)))
}

fn line(v: &serde_json::Value) -> Option<usize> {
    v["origin"]["line"].as_u64().map(|l| l as usize)
}

fn items(r: &serde_json::Value) -> Vec<Item> {
    let mut v: Vec<Item> = r["waste"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["kind"].as_str().unwrap().to_string(),
                w["bytes"].as_u64().unwrap(),
                line(&w["added_by"]),
                line(&w["hidden_by"]),
            )
        })
        .collect();
    v.sort();
    v
}

/// Every layer is attributed to a Dockerfile line or the base image, and
/// the layers' bytes add up to the total.
fn all_attributed(r: &serde_json::Value, method: &str) {
    let steps = r["steps"].as_array().unwrap();
    let mut total = 0;
    for l in r["layers"].as_array().unwrap() {
        total += l["uncompressed"].as_u64().unwrap();
        let step = &steps[l["step"].as_u64().expect("layer without a step") as usize];
        match step["origin"]["type"].as_str() {
            Some("base") => assert_eq!(step["origin"]["image"], "reggie-busybox:latest"),
            Some("instruction") => {
                let m = step["method"].as_str().unwrap();
                assert!(
                    m == method || (method == "exact" && m == "destination"),
                    "{step}"
                );
            }
            other => panic!("layer {l} not attributed: {other:?}"),
        }
    }
    assert_eq!(r["size"]["uncompressed"].as_u64().unwrap(), total);
    let sum: u64 = r["waste"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["bytes"].as_u64().unwrap())
        .sum();
    assert_eq!(r["waste_bytes"].as_u64().unwrap(), sum);
}

#[test]
fn planted_waste_is_found_exactly_with_both_builders() {
    let Some(env) = common::services() else {
        return;
    };
    let dir = context();
    let images = Images::new(&env, "size");
    for (cli, tag) in [
        (Cli::BuildKit, images.tag("buildkit")),
        (Cli::Classic, images.tag("classic")),
    ] {
        let tag = tag.as_str();
        docker(
            &env,
            cli,
            dir.path(),
            &["build", "--network", "none", "-q", "-t", tag, "."],
        );
        // From the daemon's export.
        let from_daemon = report(&reggie(
            &env,
            dir.path(),
            &["size", tag, "-f", "Dockerfile", "--format", "json"],
            None,
        ));
        assert_eq!(items(&from_daemon), planted(), "{tag}:\n{from_daemon:#}");
        all_attributed(&from_daemon, "exact");
        // The duplicate's first copy is the `COPY --from` line, stage named.
        let dup = from_daemon["waste"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["kind"] == "duplicate")
            .unwrap();
        assert_eq!(
            dup["hidden_by"]["origin"]["text"],
            "COPY --from=build /out/gen.bin /app/gen.bin"
        );
        // From a `docker save` archive, the same report.
        let archive = dir.path().join("image.tar");
        docker(
            &env,
            Cli::Classic,
            dir.path(),
            &["save", "-o", archive.to_str().unwrap(), tag],
        );
        let from_file = report(&reggie(
            &env,
            dir.path(),
            &["size", "image.tar", "-f", "Dockerfile", "--format", "json"],
            None,
        ));
        assert_eq!(items(&from_file), planted(), "{tag} archive");
        assert_eq!(from_file["layers"], from_daemon["layers"]);
        std::fs::remove_file(&archive).unwrap();
        // The human report names the lines and the fixes.
        let human = reggie(&env, dir.path(), &["size", tag, "-f", "Dockerfile"], None);
        let human = String::from_utf8_lossy(&human.stdout);
        assert!(
            human.contains("Dockerfile:8") && human.contains("COPY --chmod=600"),
            "{human}"
        );
        assert!(human.contains("rm -rf /var/lib/apt/lists/*"), "{human}");
        // A waste budget fails CI at the line that added the largest item.
        let gate = reggie(
            &env,
            dir.path(),
            &[
                "size",
                tag,
                "-f",
                "Dockerfile",
                "--max-waste",
                "100kB",
                "--format",
                "github",
            ],
            None,
        );
        assert_eq!(gate.status.code(), Some(1), "{}", text(&gate));
        let gate = String::from_utf8_lossy(&gate.stdout);
        assert!(
            gate.starts_with(
                "::error file=Dockerfile,line=5,title=size/max-waste::waste 789.06 kB"
            ),
            "{gate}"
        );
    }
}

#[test]
fn an_image_built_and_pushed_by_image_is_read_from_the_registry() {
    let Some(env) = common::services() else {
        return;
    };
    let registry = env["REGGIE_TEST_REGISTRY"].clone();
    let user = env["REGGIE_TEST_REGISTRY_USER"].clone();
    let password = env["REGGIE_TEST_REGISTRY_PASSWORD"].clone();
    let dir = context();
    let images = Images::new(&env, "size");
    let tag = images.track(format!("{registry}/{}:pushed", images.repository()));
    let built = reggie(
        &env,
        dir.path(),
        &[
            "image",
            ".",
            "-t",
            &tag,
            "--network",
            "none",
            "--push",
            "--username",
            &user,
            "--password-stdin",
        ],
        Some(&password),
    );
    assert!(built.status.success(), "{}", text(&built));
    // The daemon's copy, without -f: the Dockerfile recorded at build time.
    let local = report(&reggie(
        &env,
        dir.path(),
        &["size", &tag, "--from", "daemon", "--format", "json"],
        None,
    ));
    assert_eq!(items(&local), planted());
    all_attributed(&local, "recorded");
    // The registry's, without pulling: same waste, the sizes as pushed,
    // and the record travelled with the image.
    let remote = report(&reggie(
        &env,
        dir.path(),
        &[
            "size",
            &tag,
            "--from",
            "registry",
            "-f",
            "Dockerfile",
            "--format",
            "json",
            "--username",
            &user,
            "--password-stdin",
        ],
        Some(&password),
    ));
    assert_eq!(items(&remote), planted(), "{remote:#}");
    all_attributed(&remote, "recorded");
    let compressed = remote["size"]["compressed"]
        .as_u64()
        .expect("compressed size");
    assert!(compressed > 0 && compressed < remote["size"]["uncompressed"].as_u64().unwrap());
    assert_eq!(remote["config_digest"], local["config_digest"]);
    // Without credentials the registry refuses, and the error says so.
    let refused = reggie(
        &env,
        dir.path(),
        &["size", &tag, "--from", "registry"],
        None,
    );
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("401") || err.contains("token"), "{err}");
    assert!(!err.contains(&password), "the password leaked: {err}");
}
