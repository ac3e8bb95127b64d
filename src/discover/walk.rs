//! The walk that finds Dockerfiles, compose files and SST configs, without
//! entering dependency, build-output or tool directories.

use std::path::{Path, PathBuf};

use super::DiscoverError;

/// What the walk found, root-relative, sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    /// Files named like Dockerfiles ([`is_dockerfile_name`]).
    pub dockerfiles: Vec<PathBuf>,
    /// Docker compose files.
    pub compose_files: Vec<PathBuf>,
    /// SST configs (`sst.config.ts`).
    pub sst_configs: Vec<PathBuf>,
    /// What may be ECS task definitions (`*task*.json`).
    pub task_definitions: Vec<PathBuf>,
}

/// Directory names never entered.
const SKIPPED_DIRS: &[&str] = &[
    "node_modules",
    "__pycache__",
    "target",
    "dist",
    "build",
    "vendor",
    "venv",
];

/// Suffixes of `Dockerfile.*` files that are not Dockerfiles: sources,
/// docs, templates and editor leftovers.
const NOT_DOCKERFILE_EXT: &[&str] = &[
    "md", "txt", "rs", "go", "py", "js", "ts", "sh", "json", "yaml", "yml", "toml", "j2", "jinja",
    "tmpl", "tpl", "template", "bak", "orig", "swp", "rej",
];

/// `Dockerfile`, `dockerfile`, `*.Dockerfile` and `Dockerfile.*`, but not
/// their `*.dockerignore` files, nor `Dockerfile.md`-like non-Dockerfiles.
pub fn is_dockerfile_name(name: &str) -> bool {
    if name.ends_with(".dockerignore") {
        return false;
    }
    if name == "Dockerfile" || name == "dockerfile" {
        return true;
    }
    if let Some(rest) = name.strip_prefix("Dockerfile.") {
        let ext = rest.rsplit('.').next().unwrap_or(rest);
        return !rest.is_empty() && !NOT_DOCKERFILE_EXT.contains(&ext);
    }
    name.len() > ".Dockerfile".len() && name.ends_with(".Dockerfile")
}

/// `compose.yaml`, `compose.yml`, `docker-compose.yaml`,
/// `docker-compose.yml` and their `*.override.*`-style variants
/// (`docker-compose.prod.yml`, `compose.override.yaml`).
pub fn is_compose_file(name: &str) -> bool {
    let stem = match name
        .strip_suffix(".yml")
        .or_else(|| name.strip_suffix(".yaml"))
    {
        Some(s) => s,
        None => return false,
    };
    stem == "compose"
        || stem == "docker-compose"
        || (stem.len() > "docker-compose.".len() && stem.starts_with("docker-compose."))
        || (stem.len() > "compose.".len() && stem.starts_with("compose."))
}

fn is_skipped_dir(name: &str, path: &Path) -> bool {
    // `.aws/task-definition.json` is where GitHub's ECS workflow keeps it.
    if name.starts_with('.') && name != ".github" && name != ".aws" {
        return true;
    }
    SKIPPED_DIRS.contains(&name) || path.join("pyvenv.cfg").is_file()
}

/// Walks `root`, depth first, names in byte order. Symlinks are not
/// followed; unreadable subdirectories are skipped (the root must be
/// readable).
pub fn walk(root: &Path) -> Result<Found, DiscoverError> {
    let mut found = Found::default();
    let mut stack: Vec<PathBuf> = vec![PathBuf::new()];
    let mut first = true;
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(source) if first => return Err(DiscoverError::ReadDir { path: dir, source }),
            Err(_) => continue,
        };
        first = false;
        let mut items: Vec<(String, std::fs::FileType)> = entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let t = e.file_type().ok()?;
                Some((e.file_name().to_string_lossy().into_owned(), t))
            })
            .collect();
        items.sort_by(|a, b| a.0.cmp(&b.0));
        let mut subdirs = Vec::new();
        for (name, t) in items {
            let child = rel.join(&name);
            if t.is_dir() {
                if !is_skipped_dir(&name, &root.join(&child)) {
                    subdirs.push(child);
                }
            } else if t.is_file() {
                if is_dockerfile_name(&name) {
                    found.dockerfiles.push(child);
                } else if is_compose_file(&name) {
                    found.compose_files.push(child);
                } else if name == "sst.config.ts" {
                    found.sst_configs.push(child);
                } else if super::ecs::is_task_definition_name(&name) {
                    found.task_definitions.push(child);
                }
            }
        }
        stack.extend(subdirs.into_iter().rev());
    }
    found.dockerfiles.sort();
    found.compose_files.sort();
    found.sst_configs.sort();
    found.task_definitions.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn dockerfile_names() {
        let cases = [
            ("Dockerfile", true),
            ("dockerfile", true),
            ("api.Dockerfile", true),
            ("Dockerfile.prod", true),
            ("Dockerfile.prod.arm64", true),
            ("dockerfile.rs", false),
            ("Dockerfile.md", false),
            ("Dockerfile.j2", false),
            ("Dockerfile.dockerignore", false),
            ("api.Dockerfile.dockerignore", false),
            (".dockerignore", false),
            ("Dockerfile.", false),
            (".Dockerfile", false),
            ("Dockerfiles", false),
            ("README.md", false),
        ];
        for (name, want) in cases {
            assert_eq!(is_dockerfile_name(name), want, "{name}");
        }
    }

    #[test]
    fn compose_names() {
        let cases = [
            ("compose.yaml", true),
            ("compose.yml", true),
            ("docker-compose.yaml", true),
            ("docker-compose.yml", true),
            ("docker-compose.prod.yml", true),
            ("docker-compose.override.yaml", true),
            ("compose.override.yml", true),
            ("docker-compose.json", false),
            ("mycompose.yml", false),
            ("docker-compose..yml", false),
            ("values.yaml", false),
        ];
        for (name, want) in cases {
            assert_eq!(is_compose_file(name), want, "{name}");
        }
    }

    #[test]
    fn skips_dependency_and_output_directories() {
        let dir = tempfile::tempdir().unwrap();
        let files = [
            "Dockerfile",
            "backend/Dockerfile",
            "node_modules/pkg/Dockerfile",
            "apps/web/node_modules/x/Dockerfile",
            ".git/Dockerfile",
            ".venv/Dockerfile",
            "env/pyvenv.cfg",
            "env/lib/Dockerfile",
            "backend/__pycache__/Dockerfile",
            "apps/web/.next/Dockerfile",
            "target/Dockerfile",
            "dist/Dockerfile",
            "build/Dockerfile",
            "vendor/Dockerfile",
            ".devcontainer/Dockerfile",
            ".github/docker/Dockerfile",
            "apps/web/docker-compose.yml",
            "node_modules/x/docker-compose.yml",
            "infra/sst.config.ts",
            "sst.config.ts",
            "node_modules/sst/sst.config.ts",
        ];
        for f in files {
            let p = dir.path().join(f);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, "").unwrap();
        }
        let found = walk(dir.path()).unwrap();
        let strs = |v: &[PathBuf]| -> Vec<String> {
            v.iter().map(|p| p.to_string_lossy().into_owned()).collect()
        };
        assert_eq!(
            strs(&found.dockerfiles),
            [
                ".github/docker/Dockerfile",
                "Dockerfile",
                "backend/Dockerfile"
            ]
        );
        assert_eq!(strs(&found.compose_files), ["apps/web/docker-compose.yml"]);
        assert_eq!(
            strs(&found.sst_configs),
            ["infra/sst.config.ts", "sst.config.ts"]
        );
    }
}
