//! `reggie-build.toml`: the images of a monorepo, their contexts and size
//! budgets.
//!
//! ```toml
//! [[image]]
//! name = "reggie-api"
//! dockerfile = "backend/Dockerfile"
//! context = "."
//! target = "runtime"                  # optional
//! platform = "linux/amd64"            # optional
//! build_args = { PYTHON = "3.11" }     # optional
//! repository = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/reggie-api"
//! tags = ["{git_sha}", "{branch}", "latest"]
//! budget = { max_size = "50 MB", max_files = 2000 }
//! size_budget = { max_size = "300 MB", max_layer = "150 MB", max_waste = "5 MB", max_growth = "10%" }
//!
//! [[builder]]                          # optional: BuildKit builders of image --all
//! addr = "tcp://buildkitd-0.ci:1234"
//! ca = "certs/ca.pem"                  # optional, mutual TLS with cert and key
//! cert = "certs/cert.pem"
//! key = "certs/key.pem"
//! ```
//!
//! `budget` limits the build context (`check`); `size_budget` the built
//! image (`size`): its layers' bytes uncompressed, its largest layer, its
//! waste, and its growth against a baseline report (bytes or a percent).
//!
//! Paths are relative to the file's directory and stay inside the
//! repository that holds it (the nearest directory above it with `.git`,
//! else its own directory): a committed config is untrusted input, so an
//! absolute path, a `..` that leaves the repository or a symbolic link
//! out of it is an error naming the key and line, never read. Unknown
//! keys and bad values are errors that name the key and line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::input::{self, repository_root, InputError};

/// The file name looked for, walking up from the current directory to
/// the repository root.
pub const FILE_NAME: &str = "reggie-build.toml";

/// Errors reading a config file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config: {0}")]
    /// The file could not be read (a symbolic link out of the
    /// repository, a FIFO or device, too large...).
    Read(#[from] InputError),
    #[error("{path}:{line}: {message}")]
    /// The file is not a valid config.
    Invalid {
        /// The config file.
        path: PathBuf,
        /// The line at fault (1-based).
        line: usize,
        /// What is wrong and how to fix it.
        message: String,
    },
    #[error("{path}: no image named `{name}`; configured images: {known}")]
    /// No image has the name asked for.
    UnknownImage {
        /// The config file.
        path: PathBuf,
        /// The name asked for.
        name: String,
        /// The names configured, comma-separated.
        known: String,
    },
}

/// A loaded config file.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file.
    pub path: PathBuf,
    /// Its directory: paths in it are relative to this.
    pub root: PathBuf,
    /// The images, in file order.
    pub images: Vec<Image>,
    /// The BuildKit builders `image --all|--affected` shares the images
    /// among (`[[builder]]`), in file order.
    pub builders: Vec<Builder>,
}

/// A BuildKit builder (`[[builder]]`): what `--buildkit-addr` and the
/// `--buildkit-*` TLS flags give on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Builder {
    /// Where it listens (`tcp://HOST:PORT`, `unix://PATH`, ...).
    pub addr: String,
    /// The CA of its certificate, resolved against the config's directory.
    pub ca: Option<PathBuf>,
    /// A client certificate for mutual TLS, resolved likewise.
    pub cert: Option<PathBuf>,
    /// The client certificate's key, resolved likewise.
    pub key: Option<PathBuf>,
    /// The name its certificate carries, when not the host of `addr`.
    pub server_name: Option<String>,
    /// Line of its `[[builder]]` header.
    pub line: usize,
}

/// One image.
#[derive(Debug, Clone)]
pub struct Image {
    /// Its name (`name = ...`).
    pub name: String,
    /// Resolved against the config's directory.
    pub dockerfile: PathBuf,
    /// Its build context, resolved against the config's directory.
    pub context: PathBuf,
    /// The stage to build (`--target`).
    pub target: Option<String>,
    /// The platform it is built for (`--platform`).
    pub platform: Option<String>,
    /// Build arguments (`--build-arg`).
    pub build_args: BTreeMap<String, String>,
    /// The repository it is pushed to.
    pub repository: Option<String>,
    /// Tags to push.
    pub tags: Vec<String>,
    /// Its upload budget.
    pub budget: Budget,
    /// The limits `size` holds the built image to.
    pub size_budget: SizeBudget,
    /// Line of its `[[image]]` header.
    pub line: usize,
}

/// Size limits of an image's context.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Budget {
    /// At most this many bytes uploaded.
    pub max_bytes: Option<u64>,
    /// At most this many files uploaded.
    pub max_files: Option<u64>,
}

/// Limits on the built image (`size_budget = { ... }`), which `size`
/// enforces. Sizes are of the layers uncompressed: what every source
/// reports, so one budget means the same for an archive and a registry.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SizeBudget {
    /// At most this many bytes in all layers.
    pub max_size: Option<u64>,
    /// At most this many bytes in any one layer.
    pub max_layer: Option<u64>,
    /// At most this many bytes of waste.
    pub max_waste: Option<u64>,
    /// At most this much growth against a baseline report.
    pub max_growth: Option<Growth>,
    /// The line of the `size_budget` key (0 when not declared).
    pub line: usize,
}

impl SizeBudget {
    /// Whether any limit is set.
    pub fn is_empty(&self) -> bool {
        self.max_size.is_none()
            && self.max_layer.is_none()
            && self.max_waste.is_none()
            && self.max_growth.is_none()
    }
}

/// How much an image may grow: bytes, or a percent of the baseline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Growth {
    /// At most this many bytes more.
    Bytes(u64),
    /// At most this percent more (`10` for 10%).
    Percent(f64),
}

impl Growth {
    /// The bytes allowed on top of `before`.
    pub fn allowed(&self, before: u64) -> u64 {
        match *self {
            Growth::Bytes(b) => b,
            Growth::Percent(p) => (before as f64 * p / 100.0).floor() as u64,
        }
    }
}

impl std::fmt::Display for Growth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Growth::Bytes(b) => f.write_str(&crate::units::humanize(*b)),
            Growth::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// Parses a growth limit: a size (`20 MB`, see [`parse_size`]) or a
/// percent (`5%`, `2.5 %`).
pub fn parse_growth(text: &str) -> Result<Growth, String> {
    match text.trim().strip_suffix('%') {
        Some(num) => {
            let p: f64 = num.trim().parse().map_err(|_| {
                "expected a percent like \"10%\" or a size like \"20 MB\"".to_string()
            })?;
            if !p.is_finite() || p < 0.0 {
                return Err("a percent must be 0 or more".into());
            }
            Ok(Growth::Percent(p))
        }
        None => parse_size(text).map(Growth::Bytes),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    image: Vec<toml::Spanned<RawImage>>,
    #[serde(default)]
    builder: Vec<toml::Spanned<RawBuilder>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBuilder {
    addr: String,
    ca: Option<String>,
    cert: Option<String>,
    key: Option<String>,
    server_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImage {
    name: String,
    dockerfile: Option<toml::Spanned<String>>,
    context: Option<toml::Spanned<String>>,
    target: Option<String>,
    platform: Option<String>,
    #[serde(default)]
    build_args: BTreeMap<String, String>,
    repository: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    budget: Option<toml::Spanned<RawBudget>>,
    size_budget: Option<toml::Spanned<RawSizeBudget>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSizeBudget {
    max_size: Option<toml::Spanned<String>>,
    max_layer: Option<toml::Spanned<String>>,
    max_waste: Option<toml::Spanned<String>>,
    max_growth: Option<toml::Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBudget {
    max_size: Option<toml::Spanned<String>>,
    max_files: Option<u64>,
}

/// Finds `reggie-build.toml` in `start` or the nearest ancestor up to the
/// repository root (the first directory holding `.git`, a directory or a
/// file), never above it, as git finds its own files: a file planted in a
/// shared parent (`/tmp`, a CI workspace) must not decide what is read.
/// Outside a repository only `start` itself is looked at.
pub fn find(start: &Path) -> Option<PathBuf> {
    let start = std::fs::canonicalize(start).ok()?;
    let root = start
        .ancestors()
        .find(|dir| dir.join(".git").symlink_metadata().is_ok())
        .unwrap_or(&start);
    start
        .ancestors()
        .take_while(|dir| dir.starts_with(root))
        .map(|dir| dir.join(FILE_NAME))
        // Whatever it is (a link, a FIFO, a device): `load` refuses what
        // it cannot read, rather than a hostile one being skipped silently
        // for a parent's.
        .find(|p| p.symlink_metadata().is_ok_and(|m| !m.is_dir()))
}

/// The directory of a config file (`.` for a bare name).
fn dir_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

impl Config {
    /// Reads and validates a config file: it must be a regular file inside
    /// its repository (a link to one elsewhere in it is followed), and so
    /// must every path it names (see the module docs).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let dir = dir_of(path);
        let repo = repository_root(dir);
        let canonical_dir = std::fs::canonicalize(dir).map_err(|source| InputError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let name = path.file_name().unwrap_or(path.as_os_str());
        let rel = canonical_dir
            .strip_prefix(&repo)
            .unwrap_or(Path::new(""))
            .join(name);
        let text = input::read_text(&repo, &rel, input::TEXT_LIMIT)?;
        let config = Config::parse_in(path, &text, &repo)?;
        config.check_links(&repo, &text)?;
        Ok(config)
    }

    /// Refuses a context or Dockerfile that resolves out of the repository
    /// through a symbolic link (`..` and absolute paths are refused when
    /// parsing).
    fn check_links(&self, repo: &Path, text: &str) -> Result<(), ConfigError> {
        let base = std::fs::canonicalize(dir_of(&self.path)).unwrap_or_else(|_| repo.to_path_buf());
        let base = base.strip_prefix(repo).unwrap_or(Path::new(""));
        for image in &self.images {
            for (key, value) in [
                ("context", &image.context),
                ("dockerfile", &image.dockerfile),
            ] {
                let rel = value.strip_prefix(&self.root).unwrap_or(value);
                match input::check_beneath(repo, &base.join(rel)) {
                    Ok(_) => {}
                    Err(InputError::Escapes { .. }) => {
                        let line = key_line(text, image.line, key);
                        return Err(ConfigError::Invalid {
                            path: self.path.clone(),
                            line,
                            message: format!(
                                "image `{}`: `{key}` leads out of the repository {} through a symbolic link: it is never read there; name a {} inside the repository",
                                crate::text::excerpt(&image.name),
                                crate::text::show_path(repo),
                                if key == "context" { "directory" } else { "file" },
                            ),
                        });
                    }
                    // Missing or unreadable: said where it is used.
                    Err(_) => {}
                }
            }
        }
        Ok(())
    }

    /// Parses config text; `path` is used for messages and to resolve
    /// paths, which must stay inside the repository holding `path`
    /// ([`repository_root`]).
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        Config::parse_in(path, text, &repository_root(dir_of(path)))
    }

    /// [`Config::parse`] with the repository root given.
    pub fn parse_in(path: &Path, text: &str, repo: &Path) -> Result<Config, ConfigError> {
        let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
        let invalid = |offset: usize, message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            line: line_of(offset),
            message,
        };
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start);
            // toml's messages quote values: bounded and escaped.
            invalid(
                offset,
                crate::text::bounded(&crate::text::escape(e.message()), 300).into_owned(),
            )
        })?;
        let root = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        // Line of each `[[image]]` header, in order (spans of array-of-table
        // values start before their header).
        let headers = headers_of(text, "image");
        let offset_of_line = |line: usize| -> usize {
            text.split_inclusive('\n')
                .take(line.saturating_sub(1))
                .map(str::len)
                .sum()
        };
        let mut images: Vec<Image> = Vec::new();
        for (n, spanned) in raw.image.into_iter().enumerate() {
            let offset = headers
                .get(n)
                .map_or(spanned.span().start, |&l| offset_of_line(l));
            let raw = spanned.into_inner();
            if raw.name.trim().is_empty() {
                return Err(invalid(offset, "`name` must not be empty".into()));
            }
            if images.iter().any(|i| i.name == raw.name) {
                return Err(invalid(
                    offset,
                    format!(
                        "image `{}` is defined twice; names must be unique",
                        crate::text::excerpt(&raw.name)
                    ),
                ));
            }
            // How deep the config's directory is in the repository: a `..`
            // may climb that far and no further.
            let depth = std::fs::canonicalize(&root)
                .ok()
                .and_then(|d| d.strip_prefix(repo).ok().map(|r| r.components().count()))
                .unwrap_or(0);
            let checked = |key: &str, value: &toml::Spanned<String>| {
                check_path(key, value.get_ref(), depth, repo)
                    .map_err(|message| invalid(value.span().start, message))
            };
            if let Some(c) = &raw.context {
                checked("context", c)?;
            }
            if let Some(d) = &raw.dockerfile {
                checked("dockerfile", d)?;
            }
            let context = root.join(raw.context.as_ref().map_or(".", |c| c.get_ref().as_str()));
            let dockerfile = match &raw.dockerfile {
                Some(d) => root.join(d.get_ref()),
                None => context.join("Dockerfile"),
            };
            let mut budget = Budget::default();
            if let Some(b) = raw.budget {
                let b = b.into_inner();
                if let Some(size) = b.max_size {
                    let at = size.span().start;
                    let size = size.into_inner();
                    budget.max_bytes = Some(parse_size(&size).map_err(|why| {
                        invalid(
                            at,
                            format!(
                                "budget.max_size = \"{}\": {why}",
                                crate::text::excerpt(&size)
                            ),
                        )
                    })?);
                }
                budget.max_files = b.max_files;
            }
            let mut size_budget = SizeBudget::default();
            if let Some(b) = raw.size_budget {
                size_budget.line = line_of(b.span().start);
                let b = b.into_inner();
                let size = |key: &str, value: Option<toml::Spanned<String>>| {
                    value
                        .map(|v| {
                            parse_size(v.get_ref()).map_err(|why| {
                                invalid(
                                    v.span().start,
                                    format!(
                                        "size_budget.{key} = \"{}\": {why}",
                                        crate::text::excerpt(v.get_ref())
                                    ),
                                )
                            })
                        })
                        .transpose()
                };
                size_budget.max_size = size("max_size", b.max_size)?;
                size_budget.max_layer = size("max_layer", b.max_layer)?;
                size_budget.max_waste = size("max_waste", b.max_waste)?;
                if let Some(g) = b.max_growth {
                    size_budget.max_growth = Some(parse_growth(g.get_ref()).map_err(|why| {
                        invalid(
                            g.span().start,
                            format!(
                                "size_budget.max_growth = \"{}\": {why}",
                                crate::text::excerpt(g.get_ref())
                            ),
                        )
                    })?);
                }
            }
            for tag in &raw.tags {
                check_tag_template(tag).map_err(|why| {
                    invalid(
                        offset,
                        format!("tags: \"{}\": {why}", crate::text::excerpt(tag)),
                    )
                })?;
            }
            images.push(Image {
                name: raw.name,
                dockerfile,
                context,
                target: raw.target,
                platform: raw.platform,
                build_args: raw.build_args,
                repository: raw.repository,
                tags: raw.tags,
                budget,
                size_budget,
                line: line_of(offset),
            });
        }
        let builder_headers = headers_of(text, "builder");
        let mut builders: Vec<Builder> = Vec::new();
        for (n, spanned) in raw.builder.into_iter().enumerate() {
            let offset = builder_headers
                .get(n)
                .map_or(spanned.span().start, |&l| offset_of_line(l));
            let raw = spanned.into_inner();
            let problem = if raw.addr.trim().is_empty() {
                Some("`addr` must not be empty: give tcp://HOST:PORT or unix://PATH".to_string())
            } else if raw.cert.is_some() != raw.key.is_some() {
                Some("`cert` and `key` go together (a client certificate and its key)".into())
            } else if raw.server_name.is_some() && raw.ca.is_none() {
                Some("`server_name` needs `ca` (it is the name TLS checks)".into())
            } else if builders.iter().any(|b| b.addr == raw.addr) {
                Some(format!(
                    "builder {} is listed twice",
                    crate::text::excerpt(&raw.addr)
                ))
            } else {
                None
            };
            if let Some(message) = problem {
                return Err(invalid(offset, message));
            }
            builders.push(Builder {
                addr: raw.addr,
                ca: raw.ca.map(|p| root.join(p)),
                cert: raw.cert.map(|p| root.join(p)),
                key: raw.key.map(|p| root.join(p)),
                server_name: raw.server_name,
                line: line_of(offset),
            });
        }
        Ok(Config {
            path: path.to_path_buf(),
            root,
            images,
            builders,
        })
    }

    /// The image called `name`.
    pub fn image(&self, name: &str) -> Result<&Image, ConfigError> {
        self.images
            .iter()
            .find(|i| i.name == name)
            .ok_or_else(|| ConfigError::UnknownImage {
                path: self.path.clone(),
                name: name.to_string(),
                known: self
                    .images
                    .iter()
                    .map(|i| i.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

/// Lines (1-based) of the `[[table]]` headers of `table`, in order.
fn headers_of(text: &str, table: &str) -> Vec<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| {
            let l = l.trim_start();
            l.strip_prefix("[[")
                .and_then(|r| r.trim_start().strip_prefix(table))
                .is_some_and(|r| r.trim_start().starts_with("]]"))
        })
        .map(|(i, _)| i + 1)
        .collect()
}

/// Checks a path of the config lexically: relative, and its `..` never
/// climbing above the repository (the config's directory is `depth`
/// levels inside it).
fn check_path(key: &str, value: &str, depth: usize, repo: &Path) -> Result<(), String> {
    let shown = format!("{key} = \"{}\"", crate::text::excerpt(value));
    if value.starts_with('/') {
        return Err(format!(
            "`{shown}` is an absolute path: paths in {FILE_NAME} are relative to its directory and stay inside the repository {}; write it relative to the config, e.g. `{key} = \"{}\"`",
            crate::text::show_path(repo),
            if key == "context" { "apps/web" } else { "apps/web/Dockerfile" },
        ));
    }
    if climbs_out(value, depth) {
        return Err(format!(
            "`{shown}` leads out of the repository {} with `..`: paths in {FILE_NAME} stay inside it; name a {} inside the repository",
            crate::text::show_path(repo),
            if key == "context" { "directory" } else { "file" },
        ));
    }
    Ok(())
}

/// Whether `/`-separated `path`, starting `depth` directories down,
/// climbs above the top with `..` at some point (cleaning a path clamps
/// `..` at the root, which would hide it).
pub(crate) fn climbs_out(path: &str, depth: usize) -> bool {
    let mut level = depth as i64;
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => level -= 1,
            _ => level += 1,
        }
        if level < 0 {
            return true;
        }
    }
    false
}

/// The line of `key = ` in the image whose header is on `header` (the
/// header's own line when the key is not found).
fn key_line(text: &str, header: usize, key: &str) -> usize {
    text.lines()
        .enumerate()
        .skip(header)
        .take_while(|(_, l)| !l.trim_start().starts_with('['))
        .find(|(_, l)| {
            let l = l.trim_start();
            l.strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map_or(header, |(i, _)| i + 1)
}

/// The placeholders a tag template may use.
pub const TAG_PLACEHOLDERS: &[&str] = &["git_sha", "git_short_sha", "branch", "context_digest"];

fn check_tag_template(tag: &str) -> Result<(), String> {
    let mut rest = tag;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            return Err("unclosed `{`".into());
        };
        let name = &rest[open + 1..open + close];
        if !TAG_PLACEHOLDERS.contains(&name) {
            return Err(format!(
                "unknown placeholder {{{}}}; use one of {}",
                crate::text::excerpt(name),
                TAG_PLACEHOLDERS
                    .iter()
                    .map(|p| format!("{{{p}}}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        rest = &rest[open + close + 1..];
    }
    Ok(())
}

/// Parses a size such as `50 MB`, `1.5GiB`, `800kB` or `1234` (bytes).
/// Decimal units are powers of 1000, binary ones (`KiB`) of 1024.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| "expected a number followed by a unit, like \"50 MB\"".to_string())?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024f64.powi(4),
        other => {
            return Err(format!(
                "unknown unit \"{}\"; use B, kB, MB, GB, KiB, MiB or GiB",
                crate::text::excerpt(other)
            ))
        }
    };
    let bytes = value * mult;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err("size out of range".into());
    }
    Ok(bytes.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        let cases = [
            ("50 MB", Ok(50_000_000)),
            ("1.5GiB", Ok(1_610_612_736)),
            ("800kB", Ok(800_000)),
            ("1234", Ok(1234)),
            ("12 mb", Ok(12_000_000)),
            ("ten MB", Err(())),
            ("5 parsecs", Err(())),
        ];
        for (text, want) in cases {
            assert_eq!(parse_size(text).map_err(|_| ()), want, "{text}");
        }
    }

    #[test]
    fn paths_stay_inside_the_repository() {
        let repo = Path::new("/repo");
        let parse = |cfg: &str, body: &str| {
            Config::parse_in(
                &repo.join(cfg),
                &format!("[[image]]\nname = \"a\"\n{body}\n"),
                repo,
            )
        };
        // `..` that stays inside is fine.
        assert!(parse("reggie-build.toml", "context = \"apps/../web\"").is_ok());
        for (cfg, body, why) in [
            (
                "reggie-build.toml",
                "dockerfile = \"/proc/self/environ\"",
                "absolute path",
            ),
            ("reggie-build.toml", "context = \"..\"", "with `..`"),
            ("reggie-build.toml", "context = \"a/../../b\"", "with `..`"),
        ] {
            let err = parse(cfg, body).unwrap_err().to_string();
            assert!(err.starts_with("/repo/reggie-build.toml:3: `"), "{err}");
            assert!(err.contains(why), "{err}");
            assert!(err.contains("the repository /repo"), "{err}");
        }
        assert_eq!(
            key_line(
                "[[image]]\nname = \"a\"\n dockerfile= \"x\"\n",
                1,
                "dockerfile"
            ),
            3
        );
        assert_eq!(
            key_line(
                "[[image]]\nname = \"a\"\n[[image]]\ncontext = \"x\"\n",
                1,
                "context"
            ),
            1
        );
    }

    #[test]
    fn loads_images_with_resolved_paths() {
        let text = r#"
[[image]]
name = "api"
dockerfile = "backend/Dockerfile"
context = "."
tags = ["{git_sha}", "latest"]
budget = { max_size = "12 MB", max_files = 500 }

[[image]]
name = "web"
context = "apps/web"
"#;
        let c = Config::parse(Path::new("/repo/reggie-build.toml"), text).unwrap();
        assert_eq!(c.images.len(), 2);
        let api = c.image("api").unwrap();
        assert_eq!(api.dockerfile, Path::new("/repo/backend/Dockerfile"));
        assert_eq!(api.context, Path::new("/repo/."));
        assert_eq!(api.budget.max_bytes, Some(12_000_000));
        assert_eq!(api.budget.max_files, Some(500));
        assert_eq!(api.line, 2);
        assert!(api.size_budget.is_empty());
        let web = c.image("web").unwrap();
        assert_eq!(web.dockerfile, Path::new("/repo/apps/web/Dockerfile"));
        assert_eq!(web.line, 9);
        let err = c.image("nope").unwrap_err().to_string();
        assert!(err.contains("api, web"), "{err}");
    }

    #[test]
    fn builders_with_resolved_tls_files() {
        let text = "[[image]]\nname = \"api\"\n\n[[builder]]\naddr = \"tcp://b0:1234\"\n\n\
                    [[builder]]\naddr = \"tcp://b1:1234\"\nca = \"certs/ca.pem\"\n\
                    cert = \"certs/cert.pem\"\nkey = \"certs/key.pem\"\nserver_name = \"b\"\n";
        let c = Config::parse(Path::new("/r/reggie-build.toml"), text).unwrap();
        assert_eq!(c.images.len(), 1);
        let [b0, b1] = c.builders.as_slice() else {
            panic!("{:?}", c.builders)
        };
        assert_eq!(
            (b0.addr.as_str(), b0.line, b0.ca.as_ref()),
            ("tcp://b0:1234", 4, None)
        );
        assert_eq!(b1.line, 7);
        assert_eq!(b1.ca.as_deref(), Some(Path::new("/r/certs/ca.pem")));
        assert_eq!(b1.key.as_deref(), Some(Path::new("/r/certs/key.pem")));
        assert_eq!(b1.server_name.as_deref(), Some("b"));
    }

    #[test]
    fn size_budgets_parse_sizes_and_percents() {
        let text = "[[image]]\nname = \"api\"\n\nsize_budget = { max_size = \"300 MB\", max_layer = \"1.5GiB\", max_waste = \"0\", max_growth = \"2.5%\" }\n[[image]]\nname = \"b\"\nsize_budget = { max_growth = \"20 MB\" }\n";
        let c = Config::parse(Path::new("/repo/reggie-build.toml"), text).unwrap();
        let api = c.image("api").unwrap().size_budget;
        assert_eq!(api.max_size, Some(300_000_000));
        assert_eq!(api.max_layer, Some(1_610_612_736));
        assert_eq!(api.max_waste, Some(0));
        assert_eq!(api.max_growth, Some(Growth::Percent(2.5)));
        assert_eq!(api.line, 4);
        assert_eq!(Growth::Percent(2.5).allowed(1000), 25);
        let b = c.image("b").unwrap().size_budget;
        assert_eq!(b.max_growth, Some(Growth::Bytes(20_000_000)));
        assert!(b.max_size.is_none() && !b.is_empty());
        for (bad, want) in [("-1%", "0 or more"), ("x%", "percent"), ("lots", "number")] {
            let e = parse_growth(bad).unwrap_err();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }

    #[test]
    fn errors_name_the_key_and_line() {
        let cases = [
            ("[[image]]\nname = \"a\"\ncontxt = \".\"\n", 3, "contxt"),
            (
                "[[image]]\nname = \"a\"\nbudget = { max_size = \"lots\" }\n",
                3,
                "max_size",
            ),
            (
                "[[image]]\nname = \"a\"\nsize_budget = { max_waste = \"lots\" }\n",
                3,
                "size_budget.max_waste",
            ),
            (
                "[[image]]\nname = \"a\"\nsize_budget = { max_growth = \"x%\" }\n",
                3,
                "size_budget.max_growth",
            ),
            (
                "[[image]]\nname = \"a\"\nsize_budget = { max_files = 3 }\n",
                3,
                "max_files",
            ),
            (
                "[[image]]\nname = \"a\"\n[[image]]\nname = \"a\"\n",
                3,
                "twice",
            ),
            (
                "[[image]]\nname = \"a\"\ntags = [\"{sha}\"]\n",
                1,
                "placeholder",
            ),
            ("[[image]]\ndockerfile = \"x\"\n", 1, "name"),
            ("[[imag]]\nname = \"a\"\n", 1, "imag"),
            (
                "[[image]]\nname = \"a\"\n\n[[builder]]\naddr = \"\"\n",
                4,
                "addr",
            ),
            (
                "[[builder]]\naddr = \"tcp://a:1\"\n[[builder]]\naddr = \"tcp://a:1\"\n",
                3,
                "twice",
            ),
            (
                "[[builder]]\naddr = \"tcp://a:1\"\ncert = \"c.pem\"\n",
                1,
                "`cert` and `key`",
            ),
            (
                "[[builder]]\naddr = \"tcp://a:1\"\nserver_name = \"b\"\n",
                1,
                "needs `ca`",
            ),
            ("[[builder]]\nadr = \"tcp://a:1\"\n", 2, "adr"),
        ];
        for (text, line, needle) in cases {
            let err = Config::parse(Path::new("r.toml"), text)
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with(&format!("r.toml:{line}:")),
                "{text:?}: {err}"
            );
            assert!(err.contains(needle), "{text:?}: {err}");
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        // The toml crate stops at 80 levels (its default recursion limit,
        // kept by never enabling its `unbounded` feature).
        let n = 100_000;
        let cases = [
            "x = ".to_string() + &"[".repeat(n) + &"]".repeat(n),
            "x = ".to_string() + &"{a = ".repeat(n) + "1" + &"}".repeat(n),
            "a".to_string() + &".a".repeat(n) + " = 1",
            "[a".to_string() + &".a".repeat(n) + "]",
            "[[image]]\nname = \"a\"\nbuild_args = ".to_string() + &"[".repeat(n),
        ];
        for text in cases {
            let head: String = text.chars().take(20).collect();
            let err = crate::test_support::on_small_stack(move || {
                Config::parse(Path::new("r.toml"), &text)
                    .unwrap_err()
                    .to_string()
            });
            assert!(err.starts_with("r.toml:"), "{head}: {err}");
            assert!(err.len() < 500, "{head}: {err}");
        }
    }

    #[test]
    fn find_walks_up_to_the_repository_root_only() {
        let dir = tempfile::tempdir().unwrap();
        let top = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::create_dir_all(top.join("repo/a/b")).unwrap();
        // Planted above the repository: never taken.
        std::fs::write(top.join(FILE_NAME), "").unwrap();
        let start = top.join("repo/a/b");
        // Outside any repository: only the start directory.
        assert_eq!(find(&start), None);
        std::fs::write(top.join("repo/a/b").join(FILE_NAME), "").unwrap();
        assert_eq!(find(&start), Some(start.join(FILE_NAME)));
        std::fs::remove_file(start.join(FILE_NAME)).unwrap();
        // `.git` as a directory or as a file (worktrees, submodules).
        for git in ["dir", "file"] {
            let dot_git = top.join("repo/.git");
            match git {
                "dir" => std::fs::create_dir(&dot_git).unwrap(),
                _ => std::fs::write(&dot_git, "gitdir: elsewhere\n").unwrap(),
            }
            assert_eq!(find(&start), None, ".git {git}");
            std::fs::write(top.join("repo").join(FILE_NAME), "").unwrap();
            assert_eq!(find(&start), Some(top.join("repo").join(FILE_NAME)));
            std::fs::write(top.join("repo/a").join(FILE_NAME), "").unwrap();
            assert_eq!(find(&start), Some(top.join("repo/a").join(FILE_NAME)));
            std::fs::remove_file(top.join("repo/a").join(FILE_NAME)).unwrap();
            std::fs::remove_file(top.join("repo").join(FILE_NAME)).unwrap();
            match git {
                "dir" => std::fs::remove_dir(&dot_git).unwrap(),
                _ => std::fs::remove_file(&dot_git).unwrap(),
            }
        }
    }
}
