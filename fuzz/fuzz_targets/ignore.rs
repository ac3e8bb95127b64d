#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use reggie_build::context::ignore::{read_patterns, MatchInfo, Matcher};

// The first line of the input is a path to match; the rest an ignore file.
fuzz_target!(|data: &[u8]| {
    let (path, ignore) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
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
});
