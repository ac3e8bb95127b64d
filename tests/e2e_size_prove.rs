//! End-to-end tests of `size --prove` and `image --size` against the
//! test daemon and registry (services from `tests/services.sh`): on an
//! image with planted waste (a `RUN chmod` after a `COPY`, a file copied
//! and deleted by a later `RUN rm`, a cache left by a `RUN`), every fix
//! is built, measured and checked: the bytes saved are the planted
//! bytes exactly, and every other path comes out unchanged.
#![cfg(feature = "image")]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

mod common;

use common::docker::{text, Cli};
use common::images::Images;

type Env = BTreeMap<String, String>;

const DOCKERFILE: &str = "\
FROM reggie-busybox:latest
COPY big.bin /app/big.bin
RUN chmod 755 /app/big.bin
COPY keep.txt junk.bin /app/
RUN rm /app/junk.bin
RUN mkdir -p /root/.cache/pip/http && head -c 100005 /dev/zero > /root/.cache/pip/http/blob
COPY conf.txt /app/conf.txt
";

/// (what, bytes) planted, largest first.
const PLANTED: [(&str, u64); 3] = [
    ("metadata_only", 300_001),
    ("deleted", 200_003),
    ("package_cache", 100_005),
];

fn random(len: usize, seed: u8) -> Vec<u8> {
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

fn context(dir: &Path) {
    std::fs::write(dir.join("Dockerfile"), DOCKERFILE).unwrap();
    std::fs::write(dir.join("big.bin"), random(300_001, 1)).unwrap();
    std::fs::write(dir.join("junk.bin"), random(200_003, 2)).unwrap();
    std::fs::write(dir.join("keep.txt"), "keep\n").unwrap();
    std::fs::write(dir.join("conf.txt"), "conf\n").unwrap();
}

use common::docker::reggie_isolated as reggie;

fn json(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "failed:\n{}", text(out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}:\n{}", text(out)))
}

/// Removes the images a test made, whatever happens.
fn prove_images(env: &Env) -> String {
    let out = common::docker::docker(
        env,
        Cli::Classic,
        Path::new("/"),
        &["images", "-q", "reggie-build-prove"],
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn prove_measures_each_fix_exactly_and_checks_the_rest() {
    let Some(env) = common::services() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    context(dir.path());
    // A repository: `image` records the context relative to its top.
    std::fs::create_dir(dir.path().join(".git")).unwrap();
    let tag = "reggie-e2e-prove:1";
    let images = Images::new(&env, "prove");
    images.track(tag);
    let leftover = prove_images(&env);
    let built = reggie(
        &env,
        dir.path(),
        &["image", ".", "-t", tag, "--network", "none"],
        None,
    );
    assert!(built.status.success(), "{}", text(&built));
    // Without -f or --context: the Dockerfile and context `image` recorded.
    let proof = json(&reggie(
        &env,
        dir.path(),
        &[
            "size",
            tag,
            "--prove",
            "--network",
            "none",
            "--format",
            "json",
        ],
        None,
    ));
    let steps = proof["steps"].as_array().unwrap();
    assert_eq!(steps.len(), PLANTED.len(), "{proof:#}");
    let mut file_bytes = proof["before"]["file_bytes"].as_u64().unwrap();
    for (step, (kind, bytes)) in steps.iter().zip(PLANTED) {
        let outcome = &step["outcome"];
        assert_eq!(outcome["result"], "built", "{step:#}");
        assert_eq!(step["predicted"], bytes, "{kind}: {step:#}");
        assert_eq!(outcome["saved_file_bytes"], bytes, "{kind}: {step:#}");
        assert_eq!(outcome["verified"], true, "{kind}: {step:#}");
        assert_eq!(outcome["check"]["differences_total"], 0, "{step:#}");
        assert!(outcome["check"]["unchanged"].as_u64().unwrap() > 100);
        // Each step's image is the previous one less the planted bytes.
        file_bytes -= bytes;
        assert_eq!(outcome["size"]["file_bytes"], file_bytes, "{step:#}");
        assert!(outcome["saved"].as_i64().unwrap() >= bytes as i64);
    }
    assert_eq!(proof["saved_file_bytes"], 600_009);
    assert_eq!(proof["after"]["file_bytes"], file_bytes);
    assert_eq!(proof["after"]["waste_bytes"], 0, "{proof:#}");
    assert_eq!(
        proof["fixed_dockerfile"],
        "FROM reggie-busybox:latest\n\
         COPY --chmod=755 big.bin /app/big.bin\n\
         # removed by reggie-build size --prove: RUN chmod 755 /app/big.bin\n\
         COPY keep.txt /app/\n\
         # removed by reggie-build size --prove: RUN rm /app/junk.bin\n\
         RUN mkdir -p /root/.cache/pip/http && head -c 100005 /dev/zero > /root/.cache/pip/http/blob && rm -rf /root/.cache/pip\n\
         COPY conf.txt /app/conf.txt\n"
    );
    // The repository's Dockerfile is untouched, and no image is left.
    assert_eq!(
        std::fs::read_to_string(dir.path().join("Dockerfile")).unwrap(),
        DOCKERFILE
    );
    assert_eq!(prove_images(&env), leftover);

    // The human form says "verified" per fix, with the bytes.
    let human = reggie(
        &env,
        dir.path(),
        &[
            "size",
            tag,
            "-f",
            "Dockerfile",
            "--context",
            ".",
            "--prove",
            "--network",
            "none",
        ],
        None,
    );
    assert!(human.status.success(), "{}", text(&human));
    let human = String::from_utf8_lossy(&human.stdout);
    assert_eq!(human.matches("  verified: ").count(), 3, "{human}");
    assert!(
        human.contains("(300001 bytes of files, as counted)"),
        "{human}"
    );
    assert!(human.contains("by 3 verified fixes"), "{human}");
    assert!(!human.contains("not verified"), "{human}");
}

#[test]
fn a_fix_that_changes_other_paths_is_not_verified() {
    let Some(env) = common::services() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    context(dir.path());
    // The chmod RUN also makes /app/conf.txt... no: it chmods a file of
    // the base image too, so dropping it changes a path that is no waste.
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM reggie-busybox:latest\nCOPY big.bin /app/big.bin\nRUN chmod 700 /app/big.bin /bin/busybox\n",
    )
    .unwrap();
    let out = reggie(
        &env,
        dir.path(),
        &[
            "size",
            "ignored",
            "-f",
            "Dockerfile",
            "--context",
            ".",
            "--prove",
            "--network",
            "none",
            "--format",
            "json",
        ],
        None,
    );
    let proof = json(&out);
    let steps = proof["steps"].as_array().unwrap();
    let built: Vec<&serde_json::Value> = steps
        .iter()
        .filter(|s| s["outcome"]["result"] == "built")
        .collect();
    assert!(!built.is_empty(), "{proof:#}");
    for s in built {
        assert_eq!(s["outcome"]["verified"], false, "{s:#}");
        let diffs = s["outcome"]["check"]["differences"].as_array().unwrap();
        assert!(diffs.iter().any(|d| d["path"] == "/bin/busybox"), "{s:#}");
    }
    assert_eq!(proof["saved"], 0);
}

#[test]
fn prove_without_a_dockerfile_says_what_to_pass() {
    let Some(env) = common::services() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = reggie(
        &env,
        dir.path(),
        &["size", "reggie-busybox:latest", "--prove"],
        None,
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("size --prove needs the Dockerfile") && err.contains("pass -f DOCKERFILE"),
        "{err}"
    );
}

#[test]
fn image_size_reports_the_image_just_built() {
    let Some(env) = common::services() else {
        return;
    };
    let registry = env["REGGIE_TEST_REGISTRY"].clone();
    let user = env["REGGIE_TEST_REGISTRY_USER"].clone();
    let password = env["REGGIE_TEST_REGISTRY_PASSWORD"].clone();
    let dir = tempfile::tempdir().unwrap();
    context(dir.path());
    let local = "reggie-e2e-image-size:1";
    let pushed = format!("{registry}/reggie-e2e-image-size:1");
    let images = Images::new(&env, "image-size");
    images.track(local);
    images.track(pushed.clone());
    // Human: the image id, then the report, lines attributed.
    let out = reggie(
        &env,
        dir.path(),
        &["image", ".", "-t", local, "--network", "none", "--size"],
        None,
    );
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("sha256:"), "{stdout}");
    assert!(stdout.contains("Dockerfile:3"), "{stdout}");
    assert!(stdout.contains("COPY --chmod=755"), "{stdout}");
    // JSON: one `size` event after the result, the same waste.
    let out = reggie(
        &env,
        dir.path(),
        &[
            "image",
            ".",
            "-t",
            local,
            "--network",
            "none",
            "--size",
            "--json",
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out));
    let last: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap();
    assert_eq!(last["event"], "size");
    let report = &last["report"];
    let mut waste: Vec<(String, u64)> = report["waste"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["kind"].as_str().unwrap().to_string(),
                w["bytes"].as_u64().unwrap(),
            )
        })
        .collect();
    waste.sort_by_key(|w| std::cmp::Reverse(w.1));
    let want: Vec<(String, u64)> = PLANTED.iter().map(|(k, b)| (k.to_string(), *b)).collect();
    assert_eq!(waste, want, "{report:#}");
    assert!(report["size"]["compressed"].is_null());
    // Pushed: read from the registry, with the compressed sizes.
    let out = reggie(
        &env,
        dir.path(),
        &[
            "image",
            ".",
            "-t",
            &pushed,
            "--network",
            "none",
            "--push",
            "--size",
            "--json",
            "--username",
            &user,
            "--password-stdin",
        ],
        Some(&password),
    );
    assert!(out.status.success(), "{}", text(&out));
    let last: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap();
    let report = &last["report"];
    assert!(
        report["source"].as_str().unwrap().starts_with("registry"),
        "{report:#}"
    );
    let compressed = report["size"]["compressed"].as_u64().expect("compressed");
    assert!(compressed > 0 && compressed < report["size"]["uncompressed"].as_u64().unwrap());
    assert_eq!(report["waste_bytes"], 600_009);
    assert_eq!(report["steps"][1]["method"], "recorded", "{report:#}");
}
