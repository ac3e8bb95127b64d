//! Find the images a repository builds: its Dockerfiles, the `build:`
//! entries of its docker compose files, and the `sst.aws.Service` /
//! `sst.aws.Task` images of its SST configs; and the platform their
//! deploys run on (SST `architecture`, compose `platform`, ECS task
//! definitions' `runtimePlatform`).
//!
//! Every build comes with its Dockerfile and context as paths relative to
//! the scanned root, where it was declared, and warnings about it (the
//! Reggie mistake first: a repository-root context for a Dockerfile that
//! lives in a subdirectory).
//!
//! Nothing is executed: compose files are read as YAML and SST configs are
//! parsed as TypeScript; values that are not literals are reported, not
//! guessed.

mod compose;
mod ecs;
mod nesting;
mod source;
mod sst;

/// Entry points for the fuzz targets (`fuzz/`): each parser on text alone.
#[doc(hidden)]
pub mod fuzzing {
    use std::path::Path;

    /// Parses compose text; the number of services with a build.
    pub fn compose(text: &str) -> Result<usize, String> {
        super::compose::parse_for_fuzzing(text)
    }

    /// Parses SST config text (nothing on disk is read: the root does not
    /// exist); the number of builds and of warnings.
    pub fn sst(text: &str) -> (usize, usize) {
        super::sst::read_text(Path::new("/nonexistent-reggie-fuzz-root"), text)
    }

    /// Reads an ECS task definition; the number of containers, or why it
    /// is not one.
    pub fn ecs(text: &str) -> Result<usize, String> {
        super::ecs::read_text(Path::new("task-definition.json"), text).map(|c| c.len())
    }
}
mod walk;
pub mod write;

use std::collections::{BTreeSet, HashMap};
use std::path::{Component, Path, PathBuf};

use serde::{Serialize, Serializer};

pub(crate) use source::slash;
pub use source::Source;
pub use walk::{is_compose_file, is_dockerfile_name, Found};

/// One image the repository builds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiscoveredBuild {
    /// The SST component name, the compose service name, or the
    /// Dockerfile's directory. Unique within one discovery.
    pub name: String,
    /// The Dockerfile, relative to the root (`/`-separated).
    #[serde(serialize_with = "ser_path")]
    pub dockerfile: PathBuf,
    /// The build context, relative to the root (`.` for the root itself).
    #[serde(serialize_with = "ser_path")]
    pub context: PathBuf,
    /// Where it was declared.
    pub source: Source,
    /// The stage to build, if the declaration names one.
    pub target: Option<String>,
    /// The platform the deploy runs the image on (SST's `architecture`,
    /// `x86_64` unless set), when the declaration says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// Where `platform` comes from when not from the declaration itself:
    /// an ECS task definition that runs the image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform_source: Option<Source>,
    /// What could not be resolved, or looks wrong (e.g. another architecture than this machine).
    pub warnings: Vec<String>,
    /// `false` when the context or Dockerfile could not be read statically
    /// (the paths shown are then the tool's defaults, see the warnings).
    pub resolved: bool,
}

fn ser_path<S: Serializer>(p: &Path, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&slash(p))
}

/// Everything a discovery found: the builds, and warnings about files that
/// gave no build (a compose file that does not parse, a remote context…).
#[derive(Debug, Clone, Default)]
pub struct Discovery {
    /// The builds, ordered by name.
    pub builds: Vec<DiscoveredBuild>,
    /// Files that gave no build, and why.
    pub warnings: Vec<String>,
}

/// Errors that stop a discovery.
#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    #[error("{0} is not a directory")]
    /// The root given is not a directory.
    NotADirectory(PathBuf),
    #[error("cannot read directory {path}: {source}")]
    /// A directory of the repository could not be read.
    ReadDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// A build as a compose file or SST config declares it, before naming,
/// de-duplication and checks. Paths are relative to the root, normalized.
#[derive(Debug, Clone)]
pub(crate) struct Declared {
    pub name: String,
    pub context: PathBuf,
    pub dockerfile: PathBuf,
    pub target: Option<String>,
    /// The platform the deploy runs the image on, when it says
    /// (`linux/amd64`).
    pub platform: Option<String>,
    pub source: Source,
    pub warnings: Vec<String>,
    pub resolved: bool,
}

/// The builds under `root`.
pub fn discover(root: &Path) -> Result<Vec<DiscoveredBuild>, DiscoverError> {
    Ok(discover_all(root)?.builds)
}

/// The builds under `root`, and warnings about files that gave none.
pub fn discover_all(root: &Path) -> Result<Discovery, DiscoverError> {
    if !root.is_dir() {
        return Err(DiscoverError::NotADirectory(root.to_path_buf()));
    }
    let found = walk::walk(root)?;
    let mut out = Discovery::default();
    let mut declared: Vec<Declared> = Vec::new();

    for file in &found.sst_configs {
        let (builds, warnings) = sst::read(root, file);
        declared.extend(builds);
        out.warnings.extend(warnings);
    }
    let (builds, warnings) = compose::read_all(root, &found.compose_files);
    declared.extend(builds);
    out.warnings.extend(warnings);

    // Dockerfiles that a declaration refers to are not listed again.
    let referenced: BTreeSet<PathBuf> = declared
        .iter()
        .filter(|d| d.resolved)
        .map(|d| d.dockerfile.clone())
        .collect();
    for dockerfile in &found.dockerfiles {
        if referenced.contains(dockerfile) {
            continue;
        }
        let dir = parent_of(dockerfile);
        declared.push(Declared {
            name: dockerfile_name(root, dockerfile),
            context: dir,
            dockerfile: dockerfile.clone(),
            target: None,
            platform: None,
            source: Source::Dockerfile,
            warnings: Vec::new(),
            resolved: true,
        });
    }

    let mut deployed = Vec::new();
    for file in &found.task_definitions {
        let (containers, warnings) = ecs::read(root, file);
        deployed.extend(containers);
        out.warnings.extend(warnings);
    }
    let mut platform_sources = Vec::with_capacity(declared.len());
    for d in &mut declared {
        platform_sources.push(ecs_platform(d, &deployed));
    }

    for (mut d, platform_source) in declared.into_iter().zip(platform_sources) {
        check(root, &mut d);
        if let Some(w) = d
            .platform
            .as_deref()
            .and_then(|p| platform_warning(p, None, std::env::consts::ARCH))
        {
            d.warnings.push(w);
        }
        out.builds.push(DiscoveredBuild {
            name: d.name,
            dockerfile: d.dockerfile,
            context: d.context,
            source: d.source,
            target: d.target,
            platform: d.platform,
            platform_source,
            warnings: d.warnings,
            resolved: d.resolved,
        });
    }
    unique_names(&mut out.builds);
    Ok(out)
}

/// The warning for a deploy on `platform` whose image is built for
/// `built` (`--platform`, or the `platform` of `reggie-build.toml`) or,
/// without one, for this machine, whose CPU is `host_arch` (Rust's
/// `std::env::consts::ARCH` names): an image built for another
/// architecture runs `RUN` steps and gets binaries for it, which the
/// deploy's machines refuse ("exec format error"), the arm64 laptop to
/// x86_64 Fargate mistake. `discover` and `check` both say it.
pub(crate) fn platform_warning(
    platform: &str,
    built: Option<&str>,
    host_arch: &str,
) -> Option<String> {
    let arch = |p: &str| {
        p.split('/')
            .nth(1)
            .filter(|a| !a.is_empty())
            .map(str::to_string)
    };
    let deploy = arch(platform)?;
    let (built_arch, what) = match built {
        Some(b) => (arch(b)?, format!("it is built for {b}")),
        None => {
            let host = match host_arch {
                "x86_64" => "amd64",
                "aarch64" => "arm64",
                "arm" => "arm",
                other => other,
            };
            (
                host.to_string(),
                format!("this machine builds {host} images"),
            )
        }
    };
    (deploy != built_arch).then(|| {
        format!(
            "deployed on {platform}, but {what}: build with --platform {platform} (in reggie-build.toml `platform = \"{platform}\"`, which `discover --write` writes), or the image fails with \"exec format error\""
        )
    })
}

/// The platform ECS task definitions run `d` on, for a build whose
/// declaration names none (then `d.platform` is set and the task
/// definition returned); a task definition that disagrees with the
/// declaration's platform is a warning.
fn ecs_platform(d: &mut Declared, deployed: &[ecs::Container]) -> Option<Source> {
    // By image repository first: container names are often generic
    // (`app`). A bare Dockerfile's build is named by its directory
    // (`apps/web`): its last part names the repository.
    let last = d.name.rsplit('/').next().unwrap_or(&d.name);
    let named = |n: &str| n == d.name || n == last;
    let runs = deployed
        .iter()
        .find(|c| c.repository.as_deref().is_some_and(named))
        .or_else(|| deployed.iter().find(|c| named(&c.name)))?;
    match &d.platform {
        None => {
            d.platform = Some(runs.platform.clone());
            Some(runs.source.clone())
        }
        Some(declared) if platform_warning(&runs.platform, Some(declared), "").is_some() => {
            let at = match &runs.source {
                Source::Ecs { file, line } => format!("{}:{line}", slash(file)),
                other => other.to_string(),
            };
            d.warnings.push(format!(
                "the ECS task definition {at} runs it on {}, but {} says {declared}",
                runs.platform, d.source
            ));
            None
        }
        Some(_) => None,
    }
}

/// Warnings that hold whatever declared the build.
fn check(root: &Path, d: &mut Declared) {
    if !d.resolved {
        return;
    }
    let escapes = |p: &Path| p.is_absolute() || p.components().next() == Some(Component::ParentDir);
    if escapes(&d.context) {
        d.warnings.push(format!(
            "context {} is outside the scanned directory",
            slash(&d.context)
        ));
    } else if !root.join(&d.context).is_dir() {
        d.warnings
            .push(format!("context {} does not exist", show_dir(&d.context)));
    }
    if !escapes(&d.dockerfile) && !root.join(&d.dockerfile).is_file() {
        d.warnings.push(format!(
            "Dockerfile {} does not exist",
            slash(&d.dockerfile)
        ));
    }
    // The Reggie mistake: a context far above the Dockerfile sends the whole
    // monorepo (node_modules, venvs, models…) for a build that reads one
    // directory.
    let dir = parent_of(&d.dockerfile);
    if dir != d.context && !escapes(&dir) && is_strict_ancestor(&d.context, &dir) {
        let msg = if d.context == Path::new(".") {
            format!(
                "context is the repository root for a Dockerfile in {}/: narrow it to ./{}",
                slash(&dir),
                slash(&dir)
            )
        } else {
            format!(
                "context {}/ is above the Dockerfile's directory {}/: narrow it to ./{}",
                slash(&d.context),
                slash(&dir),
                slash(&dir)
            )
        };
        d.warnings.push(msg);
    }
}

/// Whether `a` (normalized, relative) is a proper ancestor of `b`.
fn is_strict_ancestor(a: &Path, b: &Path) -> bool {
    if a == b {
        return false;
    }
    a == Path::new(".") || b.starts_with(a)
}

/// The name of a build from a bare Dockerfile: its directory, and the
/// variant of `Dockerfile.<v>` / `<v>.Dockerfile`.
fn dockerfile_name(root: &Path, dockerfile: &Path) -> String {
    let dir = parent_of(dockerfile);
    let base = if dir == Path::new(".") {
        None
    } else {
        Some(slash(&dir))
    };
    let file = dockerfile
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let variant = file
        .strip_prefix("Dockerfile.")
        .or_else(|| file.strip_suffix(".Dockerfile"))
        .map(str::to_string);
    match (base, variant) {
        (Some(b), Some(v)) => format!("{b}-{v}"),
        (Some(b), None) => b,
        (None, Some(v)) => v,
        (None, None) => root_name(root),
    }
}

/// The scanned directory's own name, for a Dockerfile at the root.
fn root_name(root: &Path) -> String {
    root.canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "app".to_string())
}

/// Makes names unique, in order: the second `api` becomes `api-2`.
fn unique_names(builds: &mut [DiscoveredBuild]) {
    let taken: BTreeSet<String> = builds.iter().map(|b| b.name.clone()).collect();
    let mut used: BTreeSet<String> = BTreeSet::new();
    // Where the search for a free `name-N` resumes: a candidate refused
    // once stays refused (`taken` is fixed, `used` only grows), so many
    // builds of one name cost one pass, not one pass each.
    let mut next: HashMap<String, usize> = HashMap::new();
    for b in builds.iter_mut() {
        if used.contains(&b.name) {
            let i = next.entry(b.name.clone()).or_insert(2);
            loop {
                let candidate = format!("{}-{i}", b.name);
                *i += 1;
                if !taken.contains(&candidate) && !used.contains(&candidate) {
                    b.name = candidate;
                    break;
                }
            }
        }
        used.insert(b.name.clone());
    }
}

/// The directory of a root-relative path (`.` for the root).
pub(crate) fn parent_of(p: &Path) -> PathBuf {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// `base.join(rel)`, with `.` and `..` folded away lexically; the root is
/// `.`. Leading `..` that climb above the root are kept.
pub(crate) fn join_normal(base: &Path, rel: &Path) -> PathBuf {
    if rel.is_absolute() {
        return normalize(rel);
    }
    normalize(&base.join(rel))
}

pub(crate) fn normalize(p: &Path) -> PathBuf {
    let mut parts: Vec<Component<'_>> = Vec::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match parts.last() {
                Some(Component::Normal(_)) => {
                    parts.pop();
                }
                Some(Component::RootDir) | Some(Component::Prefix(_)) => {}
                _ => parts.push(c),
            },
            other => parts.push(other),
        }
    }
    if parts.is_empty() {
        return PathBuf::from(".");
    }
    parts.iter().collect()
}

/// An absolute path inside `root` made root-relative; others unchanged.
pub(crate) fn relative_to_root(root: &Path, p: PathBuf) -> PathBuf {
    if !p.is_absolute() {
        return p;
    }
    let canon_root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    match p
        .strip_prefix(&canon_root)
        .or_else(|_| p.strip_prefix(root))
    {
        Ok(rest) if rest.as_os_str().is_empty() => PathBuf::from("."),
        Ok(rest) => rest.to_path_buf(),
        Err(_) => p,
    }
}

/// A directory for messages: `./backend`, or `.` for the root.
pub(crate) fn show_dir(p: &Path) -> String {
    if p == Path::new(".") || p.is_absolute() || p.starts_with("..") {
        slash(p)
    } else {
        format!("./{}", slash(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    /// A temporary tree of `(path, contents)` files, for the discover tests.
    pub(crate) fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let p = dir.path().join(path);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, text).unwrap();
        }
        dir
    }

    #[test]
    fn normalizes_paths() {
        let cases = [
            (".", ".", "."),
            (".", "./backend", "backend"),
            ("services", "..", "."),
            ("services/api", "../shared/./x", "services/shared/x"),
            (".", "../outside", "../outside"),
            ("a", "b/../c", "a/c"),
        ];
        for (base, rel, want) in cases {
            assert_eq!(
                join_normal(Path::new(base), Path::new(rel)),
                PathBuf::from(want),
                "{base} + {rel}"
            );
        }
    }

    #[test]
    fn names_bare_dockerfiles() {
        let root = Path::new("/nonexistent/shop");
        let cases = [
            ("backend/Dockerfile", "backend"),
            ("apps/web/Dockerfile", "apps/web"),
            ("backend/Dockerfile.worker", "backend-worker"),
            ("backend/worker.Dockerfile", "backend-worker"),
            ("Dockerfile.dev", "dev"),
            ("Dockerfile", "app"),
        ];
        for (path, want) in cases {
            assert_eq!(dockerfile_name(root, Path::new(path)), want, "{path}");
        }
    }

    #[test]
    fn bare_dockerfiles_use_their_own_directory() {
        let t = tree(&[
            ("backend/Dockerfile", "FROM scratch\n"),
            ("apps/web/Dockerfile.prod", "FROM scratch\n"),
        ]);
        let builds = discover(t.path()).unwrap();
        let got: Vec<(String, String, String, String)> = builds
            .iter()
            .map(|b| {
                (
                    b.name.clone(),
                    slash(&b.context),
                    slash(&b.dockerfile),
                    b.source.to_string(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "apps/web-prod".into(),
                    "apps/web".into(),
                    "apps/web/Dockerfile.prod".into(),
                    "dockerfile".into()
                ),
                (
                    "backend".into(),
                    "backend".into(),
                    "backend/Dockerfile".into(),
                    "dockerfile".into()
                ),
            ]
        );
        assert!(builds.iter().all(|b| b.warnings.is_empty()));
    }

    #[test]
    fn referenced_dockerfiles_are_not_listed_twice() {
        let t = tree(&[
            ("backend/Dockerfile", "FROM scratch\n"),
            ("worker/Dockerfile", "FROM scratch\n"),
            (
                "compose.yaml",
                "services:\n  api:\n    build:\n      context: .\n      dockerfile: backend/Dockerfile\n",
            ),
        ]);
        let builds = discover(t.path()).unwrap();
        let names: Vec<&str> = builds.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["api", "worker"]);
        assert_eq!(
            builds[0].warnings,
            ["context is the repository root for a Dockerfile in backend/: narrow it to ./backend"]
        );
    }

    #[test]
    fn warns_about_missing_paths_and_parent_contexts() {
        let t = tree(&[
            ("apps/web/Dockerfile", "FROM scratch\n"),
            (
                "compose.yaml",
                "services:\n  web:\n    build:\n      context: apps\n      dockerfile: web/Dockerfile\n  gone:\n    build: ./gone\n",
            ),
        ]);
        let builds = discover(t.path()).unwrap();
        assert_eq!(builds.len(), 2);
        assert_eq!(
            builds[0].warnings,
            ["context apps/ is above the Dockerfile's directory apps/web/: narrow it to ./apps/web"]
        );
        assert_eq!(
            builds[1].warnings,
            [
                "context ./gone does not exist",
                "Dockerfile gone/Dockerfile does not exist"
            ]
        );
    }

    #[test]
    fn a_deploy_on_another_architecture_is_named() {
        let cases: &[(&str, &str, bool)] = &[
            ("linux/amd64", "x86_64", false),
            ("linux/amd64", "aarch64", true),
            ("linux/arm64", "aarch64", false),
            ("linux/arm64", "x86_64", true),
            ("linux/arm64/v8", "aarch64", false),
            ("linux", "x86_64", false),
        ];
        for (platform, host, warns) in cases {
            let w = platform_warning(platform, None, host);
            assert_eq!(w.is_some(), *warns, "{platform} on {host}: {w:?}");
            if let Some(w) = w {
                assert!(w.contains(&format!("--platform {platform}")), "{w}");
                assert!(w.contains("exec format error"), "{w}");
            }
        }
        // Built for a platform of its own (config, --platform): the host
        // does not matter, the platforms' architectures do.
        let built: &[(&str, &str, bool)] = &[
            ("linux/amd64", "linux/amd64", false),
            ("linux/arm64", "linux/arm64/v8", false),
            ("linux/arm64", "linux/amd64", true),
        ];
        for (platform, built, warns) in built {
            for host in ["x86_64", "aarch64"] {
                let w = platform_warning(platform, Some(built), host);
                assert_eq!(w.is_some(), *warns, "{platform} built for {built}: {w:?}");
                if let Some(w) = w {
                    assert!(w.contains(&format!("built for {built}")), "{w}");
                    assert!(w.contains(&format!("--platform {platform}")), "{w}");
                }
            }
        }
    }

    #[test]
    fn ecs_task_definitions_give_the_deploy_platform() {
        let task = r#"{
  "family": "shop",
  "requiresCompatibilities": ["FARGATE"],
  "runtimePlatform": {"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"},
  "containerDefinitions": [
    {"name": "app", "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:latest"},
    {"name": "worker", "image": "busybox"}
  ]
}"#;
        let compose = "services:\n  worker:\n    build: ./worker\n    platform: linux/amd64\n";
        let dir = tree(&[
            ("apps/web/Dockerfile", "FROM scratch\n"),
            ("worker/Dockerfile", "FROM scratch\n"),
            ("lone/Dockerfile", "FROM scratch\n"),
            ("compose.yaml", compose),
            (".aws/task-definition.json", task),
            ("package.json", "{\"name\": \"task\"}"),
        ]);
        let found = discover_all(dir.path()).unwrap();
        assert!(found.warnings.is_empty(), "{:?}", found.warnings);
        let get = |n: &str| found.builds.iter().find(|b| b.name == n).unwrap();
        // By repository: apps/web runs as `app`, from the image `web`.
        let web = get("apps/web");
        assert_eq!(web.platform.as_deref(), Some("linux/arm64"));
        assert_eq!(
            web.platform_source
                .as_ref()
                .map(|s| s.to_string())
                .as_deref(),
            Some("ecs:.aws/task-definition.json:4")
        );
        let on_amd64 = platform_warning("linux/arm64", None, std::env::consts::ARCH).is_some();
        assert_eq!(
            web.warnings
                .iter()
                .any(|w| w.contains("--platform linux/arm64")),
            on_amd64,
            "{:?}",
            web.warnings
        );
        // By container name, against the compose file's own platform.
        let worker = get("worker");
        assert_eq!(worker.platform.as_deref(), Some("linux/amd64"));
        assert!(worker.platform_source.is_none());
        assert!(
            worker.warnings.iter().any(|w| w
                == "the ECS task definition .aws/task-definition.json:4 runs it on linux/arm64, but compose:compose.yaml:2 says linux/amd64"),
            "{:?}",
            worker.warnings
        );
        let lone = get("lone");
        assert_eq!(
            (lone.platform.as_ref(), lone.platform_source.as_ref()),
            (None, None)
        );
        // A file that looks like a task definition and is not one is named.
        let dir = tree(&[("taskdef.json", "{\"containerDefinitions\": [")]);
        let found = discover_all(dir.path()).unwrap();
        assert!(
            found
                .warnings
                .iter()
                .any(|w| w.starts_with("taskdef.json: not a task definition: line 1")),
            "{:?}",
            found.warnings
        );
    }

    #[test]
    fn duplicate_names_get_a_suffix() {
        let mk = |name: &str| DiscoveredBuild {
            name: name.into(),
            dockerfile: "Dockerfile".into(),
            context: ".".into(),
            source: Source::Dockerfile,
            target: None,
            platform: None,
            platform_source: None,
            warnings: vec![],
            resolved: true,
        };
        let mut builds = vec![mk("api"), mk("api"), mk("api-2"), mk("web")];
        unique_names(&mut builds);
        let names: Vec<&str> = builds.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["api", "api-3", "api-2", "web"]);
    }

    #[test]
    fn not_a_directory_is_an_error() {
        let t = tree(&[("file", "x")]);
        assert!(matches!(
            discover(&t.path().join("file")),
            Err(DiscoverError::NotADirectory(_))
        ));
    }
}
