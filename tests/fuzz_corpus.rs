//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) through the
//! fuzz targets' own entry points, so plain `cargo test` (CI) runs every
//! input `cargo fuzz` found interesting. Each file runs on a 2 MiB stack:
//! a recursion on input that is not bounded fails here.

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(
        files.len() >= 5,
        "{}: only {} files",
        dir.display(),
        files.len()
    );
    for file in files {
        let data = std::fs::read(&file).unwrap();
        let name = file.display().to_string();
        std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || run(&data))
            .unwrap()
            .join()
            .unwrap_or_else(|_| panic!("{name} panicked"));
    }
}

#[test]
fn dockerfile_corpus() {
    replay("dockerfile", reggie_build::fuzzing::dockerfile);
}

#[test]
fn ignore_corpus() {
    replay("ignore", reggie_build::fuzzing::ignore);
}

#[test]
fn shell_corpus() {
    replay("shell", reggie_build::fuzzing::shell);
}

#[test]
fn compose_corpus() {
    replay("compose", reggie_build::fuzzing::compose);
}

#[test]
fn config_corpus() {
    replay("config", reggie_build::fuzzing::config);
}

#[test]
fn sst_corpus() {
    replay("sst", reggie_build::fuzzing::sst);
}

#[test]
fn layer_corpus() {
    replay("layer", reggie_build::fuzzing::layer);
}

#[test]
fn reference_corpus() {
    replay("reference", reggie_build::fuzzing::reference);
}

#[test]
fn mount_corpus() {
    replay("mount", reggie_build::fuzzing::mount);
}

#[test]
fn ecs_corpus() {
    replay("ecs", reggie_build::fuzzing::ecs);
}

#[test]
fn build_files_corpus() {
    replay("build_files", reggie_build::fuzzing::build_files);
}
