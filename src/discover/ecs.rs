//! ECS task definitions: the platform each container runs on.
//!
//! A task definition file (`task-definition.json`, the file GitHub's
//! "Deploy to Amazon ECS" workflow renders, or what `aws ecs
//! register-task-definition --cli-input-json` reads) names its containers
//! and, in `runtimePlatform.cpuArchitecture`, the CPU they run on:
//! `X86_64` or `ARM64`. Without `runtimePlatform`, Fargate
//! (`requiresCompatibilities: ["FARGATE"]`) runs X86_64; on EC2 the
//! instances decide, which the file does not say.
//!
//! A container is matched to a build by its image's repository name
//! (`.../reggie-api:latest` is the build `reggie-api`) or else by its own
//! `name`.

use std::path::Path;

use serde_json::Value;

use super::source::{slash, Source};

/// Files larger than this are not task definitions (those are a few kB).
const MAX_BYTES: u64 = 1 << 20;

/// Whether a file name looks like a task definition: JSON with `task` in
/// its name (`task-definition.json`, `taskdef.json`, `api.task.json`).
pub fn is_task_definition_name(name: &str) -> bool {
    name.len() > ".json".len()
        && name.ends_with(".json")
        && name.to_ascii_lowercase().contains("task")
}

/// One container of a task definition, where it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Container {
    /// The container's `name`.
    pub name: String,
    /// The last path segment of its image's repository, without tag or
    /// digest (`reggie-api` of `1234.dkr.ecr.../team/reggie-api:v1`).
    pub repository: Option<String>,
    /// `linux/amd64` or `linux/arm64`.
    pub platform: String,
    /// The task definition and the line that decides the platform.
    pub source: Source,
}

/// The containers of the task definition `file` (root-relative); files
/// that are not task definitions give none, and a warning only when they
/// look like one (they mention `containerDefinitions`) but do not parse.
pub(crate) fn read(root: &Path, file: &Path) -> (Vec<Container>, Vec<String>) {
    // Only a regular file inside the repository, never through a link out.
    let Ok(text) = crate::input::read_text(root, file, MAX_BYTES) else {
        return (Vec::new(), Vec::new());
    };
    match read_text(file, &text) {
        Ok(containers) => (containers, Vec::new()),
        Err(why) => (
            Vec::new(),
            vec![format!("{}: not a task definition: {why}", slash(file))],
        ),
    }
}

/// [`read`] on text: `Err` only for text that mentions
/// `containerDefinitions` and is not a task definition.
pub(crate) fn read_text(file: &Path, text: &str) -> Result<Vec<Container>, String> {
    let looks_like = text.contains("\"containerDefinitions\"");
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) if looks_like => return Err(format!("line {}: {e}", e.line())),
        Err(_) => return Ok(Vec::new()),
    };
    // `register-task-definition` input, or `describe-task-definition`
    // output (`{"taskDefinition": {...}}`).
    let def = value.get("taskDefinition").unwrap_or(&value);
    let Some(containers) = def.get("containerDefinitions").and_then(Value::as_array) else {
        return match looks_like {
            true => Err("`containerDefinitions` is not a list".into()),
            false => Ok(Vec::new()),
        };
    };
    let arch = def
        .get("runtimePlatform")
        .and_then(|p| p.get("cpuArchitecture"))
        .and_then(Value::as_str);
    let fargate = def
        .get("requiresCompatibilities")
        .and_then(Value::as_array)
        .is_some_and(|c| c.iter().any(|v| v.as_str() == Some("FARGATE")));
    let (platform, key) = match arch {
        Some(a) if a.eq_ignore_ascii_case("ARM64") => ("linux/arm64", "\"cpuArchitecture\""),
        Some(a) if a.eq_ignore_ascii_case("X86_64") => ("linux/amd64", "\"cpuArchitecture\""),
        Some(other) => {
            return Err(format!(
                "runtimePlatform.cpuArchitecture \"{}\" is neither X86_64 nor ARM64",
                crate::text::excerpt(other)
            ))
        }
        None if fargate => ("linux/amd64", "\"requiresCompatibilities\""),
        None => return Ok(Vec::new()),
    };
    let line = text
        .lines()
        .position(|l| l.contains(key))
        .map_or(1, |i| i + 1);
    let source = Source::Ecs {
        file: file.to_path_buf(),
        line,
    };
    Ok(containers
        .iter()
        .filter_map(|c| {
            let name = c.get("name").and_then(Value::as_str)?.to_string();
            let repository = c.get("image").and_then(Value::as_str).and_then(repository);
            Some(Container {
                name,
                repository,
                platform: platform.to_string(),
                source: source.clone(),
            })
        })
        .collect())
}

/// The repository's last segment of an image reference, without tag or
/// digest: `reg:5000/team/api:v1@sha256:...` → `api`.
fn repository(image: &str) -> Option<String> {
    let no_digest = image.split('@').next().unwrap_or(image);
    let last = no_digest.rsplit('/').next().unwrap_or(no_digest);
    let name = last.split(':').next().unwrap_or(last);
    (!name.is_empty()).then(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Container name, repository, platform, line.
    type Row = (String, Option<String>, String, usize);

    fn read(text: &str) -> Result<Vec<Row>, String> {
        read_text(Path::new(".aws/task-definition.json"), text).map(|cs| {
            cs.into_iter()
                .map(|c| {
                    let Source::Ecs { line, .. } = c.source else {
                        panic!("{:?}", c.source)
                    };
                    (c.name, c.repository, c.platform, line)
                })
                .collect()
        })
    }

    #[test]
    fn platforms_from_runtime_platform_or_fargate() {
        let arm = r#"{
  "family": "reggie",
  "runtimePlatform": { "cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX" },
  "containerDefinitions": [
    { "name": "api", "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/reggie-api:latest" },
    { "name": "sidecar", "image": "public.ecr.aws/aws-observability/aws-otel-collector@sha256:abc" },
    { "name": "local" }
  ]
}"#;
        assert_eq!(
            read(arm).unwrap(),
            [
                (
                    "api".into(),
                    Some("reggie-api".into()),
                    "linux/arm64".into(),
                    3
                ),
                (
                    "sidecar".into(),
                    Some("aws-otel-collector".into()),
                    "linux/arm64".into(),
                    3
                ),
                ("local".into(), None, "linux/arm64".into(), 3),
            ]
        );
        let fargate = "{\"requiresCompatibilities\": [\"FARGATE\"],\n\"containerDefinitions\": [{\"name\": \"web\", \"image\": \"web:1\"}]}";
        assert_eq!(
            read(fargate).unwrap(),
            [("web".into(), Some("web".into()), "linux/amd64".into(), 1)]
        );
        // describe-task-definition output.
        let described = r#"{"taskDefinition": {"runtimePlatform": {"cpuArchitecture": "X86_64"}, "containerDefinitions": [{"name": "w", "image": "reg:5000/w"}]}}"#;
        assert_eq!(read(described).unwrap()[0].2, "linux/amd64");
        // EC2 without runtimePlatform: the instances decide.
        let ec2 = r#"{"containerDefinitions": [{"name": "w", "image": "w"}]}"#;
        assert!(read(ec2).unwrap().is_empty());
    }

    #[test]
    fn other_json_is_ignored_and_broken_task_definitions_named() {
        assert!(read(r#"{"version": "2.0.0", "tasks": []}"#)
            .unwrap()
            .is_empty());
        assert!(read("not json").unwrap().is_empty());
        let err = read("{\"containerDefinitions\": [\n").unwrap_err();
        assert!(err.starts_with("line 2"), "{err}");
        let err = read(r#"{"runtimePlatform": {"cpuArchitecture": "RISCV\u001b"}, "containerDefinitions": []}"#)
            .unwrap_err();
        assert!(
            err.contains("neither X86_64 nor ARM64") && !err.contains('\u{1b}'),
            "{err}"
        );
        assert!(read(r#"{"containerDefinitions": {"a": 1}}"#).is_err());
    }

    #[test]
    fn task_definition_names() {
        for (name, want) in [
            ("task-definition.json", true),
            ("taskdef.json", true),
            ("api.Task.json", true),
            ("package.json", false),
            ("task-definition.yaml", false),
            ("task.json.bak", false),
        ] {
            assert_eq!(is_task_definition_name(name), want, "{name}");
        }
    }
}
