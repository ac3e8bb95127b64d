//! The bodies of the fuzz targets (`fuzz/fuzz_targets/`), one per parser,
//! kept here so `tests/fuzz_corpus.rs` replays the committed corpus
//! through exactly the same calls under plain `cargo test`. Each takes
//! arbitrary bytes and must neither panic nor run unbounded.

use std::collections::BTreeMap;
use std::path::Path;

use crate::config::Config;
use crate::context::ignore::{read_patterns, MatchInfo, Matcher};
use crate::plan::dockerfile::{
    analyze, context_use, expand_word_within, parse, Budget, PlanOptions, MAX_VALUE_BYTES,
};

/// A Dockerfile: parse, then plan with and without options.
pub fn dockerfile(data: &[u8]) {
    if let Ok(df) = parse("Dockerfile", data) {
        let _ = context_use(&df, &PlanOptions::default());
        let mut opts = PlanOptions::default();
        opts.build_args.insert("X".to_string(), "a/b".to_string());
        opts.target = df.stages.first().and_then(|s| s.name.clone());
        let _ = analyze(&df, &opts);
    }
}

/// An ignore file after a first line that is a path to match.
pub fn ignore(data: &[u8]) {
    let (path, ignore) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (
            data.get(..i).unwrap_or_default(),
            data.get(i + 1..).unwrap_or_default(),
        ),
        None => (data, &[][..]),
    };
    let Ok(lines) = read_patterns(Path::new("fuzz"), ignore) else {
        return;
    };
    let Ok(m) = Matcher::new(Path::new("fuzz"), &lines) else {
        return;
    };
    let _ = m.matches_or_parent_matches(path);
    let _ = m.legacy_matches(path);
    let mut info = MatchInfo::default();
    let mut prefix = Vec::new();
    for part in path.split(|&b| b == b'/') {
        if !prefix.is_empty() {
            prefix.push(b'/');
        }
        prefix.extend_from_slice(part);
        match m.matches_with_parent(&prefix, &info) {
            Ok((_, child)) => info = child,
            Err(_) => return,
        }
    }
}

/// Shell expansion: the first line is the word, the others `NAME=VALUE`
/// variables; a word starting with a backtick uses it as escape.
pub fn shell(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let word = lines.next().unwrap_or_default();
    let vars: BTreeMap<&str, &str> = lines.filter_map(|l| l.split_once('=')).collect();
    let escape = if word.starts_with('`') { '`' } else { '\\' };
    let lookup = |n: &str| vars.get(n).map(|v| v.to_string());
    let mut budget = Budget::default();
    if let Ok(e) = expand_word_within(word, escape, &lookup, &mut budget) {
        assert!(e.value.len() <= MAX_VALUE_BYTES, "value over the cap");
    }
}

/// A compose file.
pub fn compose(data: &[u8]) {
    let _ = crate::discover::fuzzing::compose(&String::from_utf8_lossy(data));
}

/// A `reggie-build.toml`.
pub fn config(data: &[u8]) {
    let _ = Config::parse(
        Path::new("repo/reggie-build.toml"),
        &String::from_utf8_lossy(data),
    );
}

/// An `sst.config.ts` (its imports are not read).
pub fn sst(data: &[u8]) {
    let _ = crate::discover::fuzzing::sst(&String::from_utf8_lossy(data));
}

/// An image layer (a tar, plain or gzip), then the layers of a `docker
/// save` stream made of the same bytes: indexed, applied and measured.
pub fn layer(data: &[u8]) {
    use crate::inspect::layer::{index_layer, Hashing, Shared};
    use crate::inspect::{overlay::Overlay, paths::PathTable, source};
    let shared = Shared::default();
    if let Ok(mut index) = index_layer(data, Hashing::All, &shared) {
        let mut table = PathTable::new();
        if source::merge(&mut table, &mut index).is_ok() {
            table.link_children();
            let _ = Overlay::apply(&table, &[&index, &index]);
        }
    }
    if let Ok(image) = source::load_stream(data, "fuzz", &Default::default(), &shared) {
        let _ = crate::inspect::analyze(image, &Default::default());
    }
}

/// An image reference: parsed, and a parsed one written back out parses
/// to itself (the normalisation is a fixed point).
pub fn reference(data: &[u8]) {
    use crate::reference::{split_tag, Reference};
    let text = String::from_utf8_lossy(data);
    let _ = split_tag(&text);
    if let Ok(r) = Reference::parse(&text) {
        let mut again = format!("{}/{}", r.registry, r.repository);
        if let Some(tag) = &r.tag {
            again.push(':');
            again.push_str(tag);
        }
        if let Some(digest) = &r.digest {
            again.push('@');
            again.push_str(digest);
        }
        assert_eq!(Reference::parse(&again).as_ref(), Ok(&r), "{again}");
    }
}

/// A `RUN --mount` value (also a buildx `--output`/`--cache-*`/`--secret`
/// value): one CSV record of `key=value` fields. Fields read back from
/// their quoted form are the same fields, and the mount parser fails
/// exactly when the record is not CSV.
pub fn mount(data: &[u8]) {
    use crate::plan::dockerfile::mount::Mount;
    let text = String::from_utf8_lossy(data);
    match crate::csv::fields(&text) {
        Ok(fields) => {
            let quoted: Vec<String> = fields
                .iter()
                .map(|f| format!("\"{}\"", f.replace('"', "\"\"")))
                .collect();
            let again = quoted.join(",");
            assert_eq!(crate::csv::fields(&again).as_ref(), Ok(&fields), "{again}");
            let mount = Mount::parse(&text).expect("a CSV record is a mount");
            assert_eq!(mount.kind, mount.kind.to_ascii_lowercase());
        }
        Err(_) => assert!(Mount::parse(&text).is_err()),
    }
}

/// An ECS task definition (JSON).
pub fn ecs(data: &[u8]) {
    let _ = crate::discover::fuzzing::ecs(&String::from_utf8_lossy(data));
}

/// A build file (`Makefile`, `package.json`, `pyproject.toml`, a test
/// runner's config...) or a `.gitignore`: the outputs `analyze` reads from
/// it, made matchers and examples.
pub fn build_files(data: &[u8]) {
    crate::analyze::fuzz_build_files(data);
}
