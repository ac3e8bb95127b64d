//! The `build:` entries of docker compose files.
//!
//! Paths are relative to the compose file's directory; `dockerfile` is
//! relative to the context. Override files (`docker-compose.prod.yml`,
//! `compose.override.yaml`) are read after the base files of their
//! directory, and a service they change is merged field by field over the
//! base's build, the way `docker compose -f base -f override` does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};
use saphyr_parser::{Event, Parser};

use super::{join_normal, parent_of, relative_to_root, slash, Declared, Source};

/// What a service's `build:` says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct BuildSpec {
    context: Option<String>,
    dockerfile: Option<String>,
    target: Option<String>,
    /// The service's `platform` (a service key, not a `build` one): where
    /// the image runs.
    platform: Option<String>,
    inline: bool,
}

impl BuildSpec {
    /// `self` with `over`'s fields on top.
    fn overlay(&self, over: &BuildSpec) -> BuildSpec {
        BuildSpec {
            context: over.context.clone().or_else(|| self.context.clone()),
            dockerfile: over.dockerfile.clone().or_else(|| self.dockerfile.clone()),
            target: over.target.clone().or_else(|| self.target.clone()),
            platform: over.platform.clone().or_else(|| self.platform.clone()),
            inline: over.inline || (self.inline && over.dockerfile.is_none()),
        }
    }
}

/// One service with a build, as read from one file.
#[derive(Debug, Clone)]
struct ServiceBuild {
    service: String,
    line: usize,
    spec: BuildSpec,
}

const BASE_NAMES: &[&str] = &[
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];

/// Reads every compose file; returns the builds and file-level warnings.
pub(crate) fn read_all(root: &Path, files: &[PathBuf]) -> (Vec<Declared>, Vec<String>) {
    let mut by_dir: BTreeMap<PathBuf, Vec<&PathBuf>> = BTreeMap::new();
    for f in files {
        by_dir.entry(parent_of(f)).or_default().push(f);
    }
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    for (dir, mut files) in by_dir {
        // Base files first, in Docker's order of preference; then overrides.
        files.sort_by_key(|f| {
            let name = file_name(f);
            let rank = BASE_NAMES
                .iter()
                .position(|b| *b == name)
                .unwrap_or(BASE_NAMES.len());
            (rank, name)
        });
        let mut emitted: BTreeMap<String, Vec<BuildSpec>> = BTreeMap::new();
        for file in files {
            let is_override = !BASE_NAMES.contains(&file_name(file).as_str());
            let text = match crate::input::read_text(root, file, crate::input::TEXT_LIMIT) {
                Ok(t) => t,
                Err(e) => {
                    warnings.push(e.to_string());
                    continue;
                }
            };
            let services = match parse(&text) {
                Ok(s) => s,
                Err(ParseError::Yaml(e)) => {
                    warnings.push(format!(
                        "{}: not valid YAML: {}",
                        slash(file),
                        crate::text::excerpt(&e.to_string())
                    ));
                    continue;
                }
                Err(ParseError::TooDeep { line }) => {
                    warnings.push(format!(
                        "{}:{line}: collections nested more than {MAX_NESTING} deep: not analysed; a compose file needs a handful of levels, so flatten it",
                        slash(file)
                    ));
                    continue;
                }
            };
            for sb in services {
                let prior = emitted.entry(sb.service.clone()).or_default();
                let spec = match prior.first() {
                    Some(base) if is_override => base.overlay(&sb.spec),
                    _ => sb.spec.clone(),
                };
                if prior.contains(&spec) {
                    continue;
                }
                let name = if prior.is_empty() {
                    sb.service.clone()
                } else {
                    format!("{}-{}", sb.service, variant(file))
                };
                prior.push(spec.clone());
                let line = sb.line;
                match declare(root, &dir, file, name, line, &spec) {
                    Ok(d) => out.push(d),
                    Err(w) => warnings.push(w),
                }
            }
        }
    }
    (out, warnings)
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `prod` for `docker-compose.prod.yml`, `override` for
/// `compose.override.yaml`.
fn variant(file: &Path) -> String {
    let name = file_name(file);
    let stem = name
        .strip_suffix(".yml")
        .or_else(|| name.strip_suffix(".yaml"))
        .unwrap_or(&name);
    stem.strip_prefix("docker-compose.")
        .or_else(|| stem.strip_prefix("compose."))
        .unwrap_or(stem)
        .to_string()
}

/// Whether a compose `context` is a remote one (Git or an HTTP tarball).
fn is_remote(context: &str) -> bool {
    [
        "http://",
        "https://",
        "git://",
        "ssh://",
        "git@",
        "github.com/",
    ]
    .iter()
    .any(|p| context.starts_with(p))
}

fn interpolated(s: &str) -> bool {
    s.contains('$')
}

/// A root-relative build from a spec read in `file` (in `dir`).
fn declare(
    root: &Path,
    dir: &Path,
    file: &Path,
    name: String,
    line: usize,
    spec: &BuildSpec,
) -> Result<Declared, String> {
    let where_ = format!("{}:{line}", slash(file));
    let context = spec.context.clone().unwrap_or_else(|| ".".to_string());
    if is_remote(&context) {
        return Err(format!(
            "{where_}: service {} builds from a remote context ({}): not analysed",
            crate::text::excerpt(&name),
            crate::text::excerpt(&context)
        ));
    }
    if spec.inline {
        return Err(format!(
            "{where_}: service {} uses dockerfile_inline: there is no Dockerfile to analyse",
            crate::text::excerpt(&name)
        ));
    }
    let dockerfile = spec
        .dockerfile
        .clone()
        .unwrap_or_else(|| "Dockerfile".to_string());
    let mut warnings = Vec::new();
    let mut resolved = true;
    for (field, value) in [
        ("build.context", &context),
        ("build.dockerfile", &dockerfile),
    ] {
        if interpolated(value) {
            warnings.push(format!(
                "cannot read {field} statically: \"{}\" uses variable interpolation",
                crate::text::excerpt(value)
            ));
            resolved = false;
        }
    }
    let ctx = relative_to_root(root, join_normal(dir, Path::new(&context)));
    let df = relative_to_root(root, join_normal(&ctx, Path::new(&dockerfile)));
    Ok(Declared {
        name,
        context: ctx,
        dockerfile: df,
        target: spec.target.clone(),
        platform: spec.platform.clone().filter(|p| !interpolated(p)),
        source: Source::Compose {
            file: file.to_path_buf(),
            line: Some(line),
        },
        warnings,
        resolved,
    })
}

/// The deepest nesting of collections read. saphyr builds (and drops) its
/// tree recursively, so deeper input would overflow the stack; compose
/// files need about six levels.
const MAX_NESTING: usize = 100;

#[derive(Debug)]
enum ParseError {
    Yaml(saphyr::ScanError),
    /// Collections nested deeper than [`MAX_NESTING`], opened at `line`.
    TooDeep {
        line: usize,
    },
}

/// Checks the nesting of `text` on saphyr's event stream (its parser is a
/// state machine with its own stack on the heap; only the tree builder
/// recurses).
fn check_nesting(text: &str) -> Result<(), ParseError> {
    let mut depth = 0usize;
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(ParseError::Yaml)?;
        match event {
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(ParseError::TooDeep {
                        line: span.start.line(),
                    });
                }
            }
            Event::SequenceEnd | Event::MappingEnd => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

pub(super) fn parse_for_fuzzing(text: &str) -> Result<usize, String> {
    match parse(text) {
        Ok(s) => Ok(s.len()),
        Err(ParseError::Yaml(e)) => Err(e.to_string()),
        Err(ParseError::TooDeep { line }) => Err(format!("too deep at line {line}")),
    }
}

/// The services with a `build:` of one compose file, in file order.
fn parse(text: &str) -> Result<Vec<ServiceBuild>, ParseError> {
    check_nesting(text)?;
    let docs = MarkedYaml::load_from_str(text).map_err(ParseError::Yaml)?;
    let mut out = Vec::new();
    let Some(doc) = docs.first() else {
        return Ok(out);
    };
    let Some(services) = get(doc, "services") else {
        return Ok(out);
    };
    let YamlData::Mapping(map) = &untag(services).data else {
        return Ok(out);
    };
    for (key, service) in map.iter() {
        let Some(name) = scalar(key) else { continue };
        let Some(build) = get(service, "build") else {
            continue;
        };
        let mut spec = match &untag(build).data {
            YamlData::Mapping(_) => BuildSpec {
                context: get(build, "context").and_then(scalar),
                dockerfile: get(build, "dockerfile").and_then(scalar),
                target: get(build, "target").and_then(scalar),
                platform: None,
                inline: get(build, "dockerfile_inline").is_some_and(|n| scalar(n).is_some()),
            },
            _ => match scalar(build) {
                Some(context) => BuildSpec {
                    context: Some(context),
                    ..BuildSpec::default()
                },
                None => continue,
            },
        };
        spec.platform = get(service, "platform").and_then(scalar);
        out.push(ServiceBuild {
            service: name,
            line: key.span.start.line(),
            spec,
        });
    }
    Ok(out)
}

fn untag<'a, 'i>(node: &'a MarkedYaml<'i>) -> &'a MarkedYaml<'i> {
    match &node.data {
        YamlData::Tagged(_, inner) => untag(inner),
        _ => node,
    }
}

/// A mapping's value for `key`, following `<<` merge keys.
fn get<'a, 'i>(node: &'a MarkedYaml<'i>, key: &str) -> Option<&'a MarkedYaml<'i>> {
    let YamlData::Mapping(map) = &untag(node).data else {
        return None;
    };
    let mut merges = Vec::new();
    for (k, v) in map.iter() {
        match scalar(k).as_deref() {
            Some(s) if s == key => return Some(v),
            Some("<<") => merges.push(v),
            _ => {}
        }
    }
    for m in merges {
        match &untag(m).data {
            YamlData::Sequence(items) => {
                if let Some(v) = items.iter().find_map(|i| get(i, key)) {
                    return Some(v);
                }
            }
            _ => {
                if let Some(v) = get(m, key) {
                    return Some(v);
                }
            }
        }
    }
    None
}

/// A scalar as a string (`null` and collections give `None`).
fn scalar(node: &MarkedYaml<'_>) -> Option<String> {
    match &untag(node).data {
        YamlData::Value(Scalar::String(s)) => Some(s.to_string()),
        YamlData::Value(Scalar::Integer(i)) => Some(i.to_string()),
        YamlData::Value(Scalar::FloatingPoint(f)) => Some(f.to_string()),
        YamlData::Value(Scalar::Boolean(b)) => Some(b.to_string()),
        YamlData::Representation(s, _, _) => Some(s.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::discover::tests::tree;

    /// (name, context, dockerfile, target, source, resolved)
    type Row = (String, String, String, Option<String>, String, bool);

    fn rows(builds: &[Declared]) -> Vec<Row> {
        builds
            .iter()
            .map(|d| {
                (
                    d.name.clone(),
                    slash(&d.context),
                    slash(&d.dockerfile),
                    d.target.clone(),
                    d.source.to_string(),
                    d.resolved,
                )
            })
            .collect()
    }

    fn row(name: &str, ctx: &str, df: &str, target: Option<&str>, src: &str) -> Row {
        (
            name.into(),
            ctx.into(),
            df.into(),
            target.map(str::to_string),
            src.into(),
            true,
        )
    }

    #[test]
    fn reads_build_entries() {
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], Vec<Row>);
        let cases: &[Case<'_>] = &[
            (
                "string build",
                &[("compose.yaml", "services:\n  web:\n    build: ./web\n")],
                vec![row("web", "web", "web/Dockerfile", None, "compose:compose.yaml:2")],
            ),
            (
                "map build with dockerfile and target",
                &[(
                    "docker-compose.yml",
                    "services:\n  db:\n    image: postgres\n  api:\n    build:\n      context: .\n      dockerfile: backend/Dockerfile\n      target: prod\n",
                )],
                vec![row(
                    "api",
                    ".",
                    "backend/Dockerfile",
                    Some("prod"),
                    "compose:docker-compose.yml:4",
                )],
            ),
            (
                "paths relative to the compose file's directory",
                &[(
                    "deploy/compose.yml",
                    "services:\n  api:\n    build:\n      context: ../services/api\n      dockerfile: docker/Dockerfile.prod\n",
                )],
                vec![row(
                    "api",
                    "services/api",
                    "services/api/docker/Dockerfile.prod",
                    None,
                    "compose:deploy/compose.yml:2",
                )],
            ),
            (
                "map build without context",
                &[(
                    "svc/compose.yaml",
                    "services:\n  svc:\n    build:\n      dockerfile: Dockerfile.dev\n",
                )],
                vec![row("svc", "svc", "svc/Dockerfile.dev", None, "compose:svc/compose.yaml:2")],
            ),
            (
                "override merges over the base; unchanged services are not repeated",
                &[
                    (
                        "compose.yaml",
                        "services:\n  api:\n    build:\n      context: backend\n  web:\n    build: web\n",
                    ),
                    (
                        "docker-compose.prod.yml",
                        "services:\n  api:\n    build:\n      target: prod\n  web:\n    build: web\n  extra:\n    build: extra\n",
                    ),
                ],
                vec![
                    row("api", "backend", "backend/Dockerfile", None, "compose:compose.yaml:2"),
                    row("web", "web", "web/Dockerfile", None, "compose:compose.yaml:5"),
                    row(
                        "api-prod",
                        "backend",
                        "backend/Dockerfile",
                        Some("prod"),
                        "compose:docker-compose.prod.yml:2",
                    ),
                    row("extra", "extra", "extra/Dockerfile", None, "compose:docker-compose.prod.yml:7"),
                ],
            ),
            (
                "anchors and merge keys",
                &[(
                    "compose.yaml",
                    "x-build: &b\n  build:\n    context: app\n    target: dev\nservices:\n  a:\n    <<: *b\n  b:\n    <<: *b\n    build: other\n",
                )],
                vec![
                    row("a", "app", "app/Dockerfile", Some("dev"), "compose:compose.yaml:6"),
                    row("b", "other", "other/Dockerfile", None, "compose:compose.yaml:8"),
                ],
            ),
        ];
        for (what, files, want) in cases {
            let t = tree(files);
            let paths: Vec<PathBuf> = files.iter().map(|(p, _)| PathBuf::from(p)).collect();
            let (builds, warnings) = read_all(t.path(), &paths);
            assert_eq!(&rows(&builds), want, "{what}");
            assert!(warnings.is_empty(), "{what}: {warnings:?}");
        }
    }

    /// A service's `platform` is where its image runs; an override file
    /// can set it; an interpolated one is unknown.
    #[test]
    fn service_platform_is_read() {
        let t = tree(&[
            (
                "compose.yaml",
                "services:\n  api:\n    platform: linux/amd64\n    build: ./api\n  web:\n    build: ./web\n  job:\n    platform: ${PLATFORM}\n    build: ./job\n",
            ),
            (
                "compose.override.yaml",
                "services:\n  web:\n    platform: linux/arm64\n    build: ./web\n",
            ),
        ]);
        let files = [
            PathBuf::from("compose.yaml"),
            PathBuf::from("compose.override.yaml"),
        ];
        let (builds, _) = read_all(t.path(), &files);
        let platform = |name: &str| {
            builds
                .iter()
                .find(|b| b.name == name)
                .unwrap_or_else(|| panic!("{name}: {builds:?}"))
                .platform
                .clone()
        };
        assert_eq!(platform("api").as_deref(), Some("linux/amd64"));
        // The override's variant is a build of its own.
        assert!(
            builds
                .iter()
                .any(|b| b.name.starts_with("web") && b.platform.as_deref() == Some("linux/arm64")),
            "{builds:?}"
        );
        assert_eq!(platform("job"), None);
    }

    #[test]
    fn unreadable_entries_give_warnings() {
        let t = tree(&[
            (
                "compose.yaml",
                "services:\n  remote:\n    build: https://github.com/x/y.git#main\n  inline:\n    build:\n      dockerfile_inline: FROM scratch\n  env:\n    build: ${APP_DIR}\n",
            ),
            ("bad/compose.yaml", "services: [\n"),
        ]);
        let files = [
            PathBuf::from("bad/compose.yaml"),
            PathBuf::from("compose.yaml"),
        ];
        let (builds, warnings) = read_all(t.path(), &files);
        assert_eq!(builds.len(), 1);
        assert_eq!(builds[0].name, "env");
        assert!(!builds[0].resolved);
        assert_eq!(
            builds[0].warnings,
            ["cannot read build.context statically: \"${APP_DIR}\" uses variable interpolation"]
        );
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        assert!(warnings[0].contains("remote context"), "{}", warnings[0]);
        assert!(warnings[1].contains("dockerfile_inline"), "{}", warnings[1]);
        assert!(
            warnings[2].starts_with("bad/compose.yaml: not valid YAML"),
            "{}",
            warnings[2]
        );
    }

    #[test]
    fn deep_nesting_is_refused() {
        let n = 200_000;
        let cases = [
            ("flow sequences", "[".repeat(n) + &"]".repeat(n)),
            ("flow mappings", "{a: ".repeat(n) + &"}".repeat(n)),
            ("block sequences", "- ".repeat(n) + "x\n"),
            (
                "under services",
                "services:\n  a:\n    build:\n      context: ".to_string() + &"[".repeat(n),
            ),
        ];
        for (what, text) in cases {
            let t = tree(&[("compose.yaml", &text)]);
            let root = t.path().to_path_buf();
            let (builds, warnings) = crate::test_support::on_small_stack(move || {
                read_all(&root, &[PathBuf::from("compose.yaml")])
            });
            assert!(builds.is_empty(), "{what}");
            assert_eq!(warnings.len(), 1, "{what}: {warnings:?}");
            // saphyr refuses flow collections 255 deep by itself.
            assert!(
                warnings[0].contains("nested more than 100 deep: not analysed")
                    || warnings[0].contains("recursion limit exceeded"),
                "{what}: {}",
                warnings[0]
            );
        }
        // Aliases build deeper trees than the text shows; saphyr's alias
        // budget keeps them small.
        let mut text = "a0: &a0 [x]\n".to_string();
        for i in 1..2000 {
            text += &format!("a{i}: &a{i} [*a{}]\n", i - 1);
        }
        let t = tree(&[("compose.yaml", &text)]);
        let root = t.path().to_path_buf();
        let (_, warnings) = crate::test_support::on_small_stack(move || {
            read_all(&root, &[PathBuf::from("compose.yaml")])
        });
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("alias expansion exceeded"),
            "{}",
            warnings[0]
        );
    }
}
