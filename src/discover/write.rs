//! `reggie-build.toml` as `discover --write` writes it: one `[[image]]`
//! table per build, with a size budget a little above today's minimal
//! context.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::{slash, DiscoveredBuild};

/// The file `discover --write` creates.
pub const CONFIG_FILE: &str = "reggie-build.toml";

const HEADER: &str =
    "# Written by `reggie-build discover --write`. One [[image]] table per image.\n";

/// Headroom over today's minimal size.
const HEADROOM: f64 = 1.2;

/// A budget for a minimal context of `bytes`: `bytes` × 1.2, rounded up to
/// two significant digits in decimal units (`"12 MB"`, `"2.6 MB"`,
/// `"130 KB"`); never below `1 KB`.
pub fn budget(bytes: u64) -> String {
    const UNITS: [(&str, f64); 4] = [("KB", 1e3), ("MB", 1e6), ("GB", 1e9), ("TB", 1e12)];
    let want = (bytes as f64 * HEADROOM).max(1e3);
    let mut unit = 0;
    while unit + 1 < UNITS.len() && want >= UNITS[unit + 1].1 {
        unit += 1;
    }
    let mut x = round_up_2(want / UNITS[unit].1);
    if x >= 1000.0 && unit + 1 < UNITS.len() {
        unit += 1;
        x = round_up_2(x / 1000.0);
    }
    let text = if x >= 10.0 || (x - x.round()).abs() < 1e-9 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    };
    format!("{text} {}", UNITS[unit].0)
}

/// Rounds `x` (≥ 1) up to two significant digits, ignoring float noise.
fn round_up_2(x: f64) -> f64 {
    let digits = x.log10().floor() as i32 + 1;
    let step = 10f64.powi(digits - 2);
    let q = x / step;
    // 12.000000001 is 12, not 13.
    let q = if (q - q.round()).abs() < 1e-9 {
        q.round()
    } else {
        q.ceil()
    };
    q * step
}

/// A lower-case, dash-separated image name: `ReggieApi` → `reggie-api`,
/// `apps/web` → `apps-web`.
pub fn image_name(name: &str) -> String {
    let mut out = String::new();
    let mut prev: Option<char> = None;
    let chars: Vec<char> = name.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_alphanumeric() {
            if c.is_ascii_uppercase() {
                let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
                let boundary = match prev {
                    Some(p) if p.is_ascii_lowercase() || p.is_ascii_digit() => true,
                    Some(p) if p.is_ascii_uppercase() => next_lower,
                    _ => false,
                };
                if boundary && !out.ends_with('-') {
                    out.push('-');
                }
            }
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
        prev = Some(c);
    }
    while out.ends_with('-') {
        out.pop();
    }
    if out.is_empty() {
        out.push_str("image");
    }
    out
}

/// A TOML basic string.
fn toml_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The text of `reggie-build.toml` for these builds, each with its minimal
/// context size when it is known (a build without one gets no budget).
pub fn render(builds: &[(&DiscoveredBuild, Option<u64>)]) -> String {
    let mut out = String::from(HEADER);
    let mut used = BTreeSet::new();
    for (i, (b, minimal)) in builds.iter().enumerate() {
        let base = image_name(&b.name);
        let mut name = base.clone();
        let mut n = 2;
        while !used.insert(name.clone()) {
            name = format!("{base}-{n}");
            n += 1;
        }
        if i > 0 {
            out.push('\n');
        }
        out.push_str("[[image]]\n");
        let _ = writeln!(out, "name = {}", toml_str(&name));
        let _ = writeln!(out, "dockerfile = {}", toml_str(&slash(&b.dockerfile)));
        let _ = writeln!(out, "context = {}", toml_str(&slash(&b.context)));
        if let Some(t) = &b.target {
            let _ = writeln!(out, "target = {}", toml_str(t));
        }
        if let Some(p) = &b.platform {
            let _ = writeln!(out, "platform = {}", toml_str(p));
        }
        match minimal {
            Some(bytes) => {
                let _ = writeln!(
                    out,
                    "budget = {{ max_size = {} }}",
                    toml_str(&budget(*bytes))
                );
            }
            None => out.push_str("# budget: the minimal context could not be measured\n"),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discover::Source;

    #[test]
    fn budgets_round_up_to_readable_sizes() {
        let cases = [
            (0, "1 KB"),
            (500, "1 KB"),
            (10_000, "12 KB"),
            (10_000_000, "12 MB"),
            (8_300_000, "10 MB"),
            (2_100_000, "2.6 MB"),
            (2_000_000, "2.4 MB"),
            (102_800_000, "130 MB"),
            (830_000_000, "1 GB"),
            (900_000, "1.1 MB"),
            (5_000_000_000, "6 GB"),
            (2_500_000, "3 MB"),
        ];
        for (bytes, want) in cases {
            assert_eq!(budget(bytes), want, "{bytes}");
        }
    }

    #[test]
    fn image_names() {
        let cases = [
            ("ReggieApi", "reggie-api"),
            ("api", "api"),
            ("apps/web", "apps-web"),
            ("backend-worker", "backend-worker"),
            ("HTTPServer", "http-server"),
            ("Api2Worker", "api2-worker"),
            ("my_app", "my-app"),
            ("///", "image"),
        ];
        for (name, want) in cases {
            assert_eq!(image_name(name), want, "{name}");
        }
    }

    #[test]
    fn renders_the_config() {
        let api = DiscoveredBuild {
            name: "ReggieApi".into(),
            dockerfile: "backend/Dockerfile".into(),
            context: ".".into(),
            source: Source::Dockerfile,
            target: None,
            platform: None,
            platform_source: None,
            warnings: vec![],
            resolved: true,
        };
        let worker = DiscoveredBuild {
            name: "worker".into(),
            dockerfile: "worker/Dockerfile".into(),
            context: "worker".into(),
            target: Some("prod \"x\"".into()),
            platform: Some("linux/arm64".into()),
            platform_source: None,
            ..api.clone()
        };
        let text = render(&[(&api, Some(10_000_000)), (&worker, None)]);
        assert_eq!(
            text,
            "# Written by `reggie-build discover --write`. One [[image]] table per image.\n\
             [[image]]\n\
             name = \"reggie-api\"\n\
             dockerfile = \"backend/Dockerfile\"\n\
             context = \".\"\n\
             budget = { max_size = \"12 MB\" }\n\
             \n\
             [[image]]\n\
             name = \"worker\"\n\
             dockerfile = \"worker/Dockerfile\"\n\
             context = \"worker\"\n\
             target = \"prod \\\"x\\\"\"\n\
             platform = \"linux/arm64\"\n\
             # budget: the minimal context could not be measured\n"
        );
        // The config reader accepts it.
        let config =
            crate::config::Config::parse(std::path::Path::new(CONFIG_FILE), &text).unwrap();
        assert_eq!(config.images.len(), 2);
        assert_eq!(config.images[0].name, "reggie-api");
        assert_eq!(config.images[0].budget.max_bytes, Some(12_000_000));
        assert_eq!(config.images[1].target.as_deref(), Some("prod \"x\""));
        assert_eq!(config.images[1].platform.as_deref(), Some("linux/arm64"));
    }
}
