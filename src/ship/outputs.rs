//! Build outputs (`--output`/`-o`), cache import and export
//! (`--cache-from`/`--cache-to`) and platform lists, parsed as buildx
//! parses them, and what each engine does with them.
//!
//! The syntax mirrors buildx: one CSV record (Go's `encoding/csv`: a field
//! may be double-quoted to hold commas, `""` inside quotes is a quote) of
//! `key=value` fields; `-o DIR` is `type=local,dest=DIR` and `-o -` is
//! `type=tar,dest=-` (the docker CLI's shorthand); a cache entry without
//! `=` is a registry reference. [`OutputSpec`] and [`CacheSpec`] keep the
//! attributes as given, so a Control-API client can hand them to Solve's
//! exporter and cache options unchanged; [`plan_daemon`] maps them onto
//! the Docker daemon's `/build` API (moby 20.10's builder-next: one
//! output, `local` or `tar` only, sent back through the session's
//! `FileSend`; cache imports are image references; the only cache export
//! is inline metadata, `BUILDKIT_INLINE_CACHE=1`; one platform).

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::text::excerpt;

/// The exporter an output names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputKind {
    /// The result's files into a directory.
    Local,
    /// The result's files as a tar stream.
    Tar,
    /// An OCI image layout tarball.
    Oci,
    /// A `docker load` tarball (or, without `dest`, the daemon's image).
    Docker,
    /// An image (into the daemon, or pushed with `push=true`).
    Image,
    /// An image pushed to a registry.
    Registry,
    /// Anything else, passed on as named.
    Other(String),
}

impl OutputKind {
    fn parse(s: &str) -> OutputKind {
        match s {
            "local" => OutputKind::Local,
            "tar" => OutputKind::Tar,
            "oci" => OutputKind::Oci,
            "docker" => OutputKind::Docker,
            "image" => OutputKind::Image,
            "registry" => OutputKind::Registry,
            other => OutputKind::Other(other.to_string()),
        }
    }

    /// The exporter's name, as BuildKit calls it.
    pub fn name(&self) -> &str {
        match self {
            OutputKind::Local => "local",
            OutputKind::Tar => "tar",
            OutputKind::Oci => "oci",
            OutputKind::Docker => "docker",
            OutputKind::Image => "image",
            OutputKind::Registry => "registry",
            OutputKind::Other(s) => s,
        }
    }
}

/// One `--output`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputSpec {
    /// The `type=` of the output.
    pub kind: OutputKind,
    /// Every attribute but `type`, as given (`dest`, `platform-split`, ...).
    pub attrs: BTreeMap<String, String>,
}

/// One `--cache-from` or `--cache-to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheSpec {
    /// `registry`, `inline`, `local`, `gha`, `s3`, ...
    pub kind: String,
    /// Every attribute but `type`, as given (`ref`, `src`, `dest`, `mode`).
    pub attrs: BTreeMap<String, String>,
}

/// Errors of the output, cache and platform options.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutputError {
    /// The option's value does not parse as `key=value,...`.
    #[error("{flag} \"{excerpt}\": {reason}")]
    Syntax {
        /// The option (`--output`...).
        flag: &'static str,
        /// Its value, shortened.
        excerpt: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The value parses but its attributes are wrong or missing.
    #[error("{flag} \"{excerpt}\": {reason}")]
    Invalid {
        /// The option (`--output`...).
        flag: &'static str,
        /// Its value, shortened.
        excerpt: String,
        /// What is wrong.
        reason: String,
    },
    /// The engine cannot do what was asked: what it can, and what to use.
    #[error("{what}: {engine} {cannot}; it supports {supports}. {instead}")]
    Unsupported {
        /// The option asked for.
        what: String,
        /// The builder, in words.
        engine: String,
        /// What it cannot do.
        cannot: String,
        /// What it can.
        supports: &'static str,
        /// What to use instead.
        instead: String,
    },
    /// Options that contradict each other.
    #[error("{0}")]
    Conflict(String),
}

/// [`crate::csv::fields`], its error as this option's.
fn csv_fields(flag: &'static str, s: &str) -> Result<Vec<String>, OutputError> {
    crate::csv::fields(s).map_err(|reason| OutputError::Syntax {
        flag,
        excerpt: excerpt(s),
        reason,
    })
}

/// `key=value` fields into a map (keys lowercased, as buildx does);
/// `type` separately.
fn key_values(
    flag: &'static str,
    s: &str,
    fields: Vec<String>,
) -> Result<(Option<String>, BTreeMap<String, String>), OutputError> {
    let mut kind = None;
    let mut attrs = BTreeMap::new();
    for f in fields {
        let Some((k, v)) = f.split_once('=') else {
            return Err(OutputError::Invalid {
                flag,
                excerpt: excerpt(s),
                reason: format!("\"{}\" is not KEY=VALUE", excerpt(&f)),
            });
        };
        let k = k.trim().to_ascii_lowercase();
        if k == "type" {
            kind = Some(v.to_string());
        } else {
            attrs.insert(k, v.to_string());
        }
    }
    Ok((kind, attrs))
}

impl OutputSpec {
    /// Parses one `--output` value.
    pub fn parse(s: &str) -> Result<OutputSpec, OutputError> {
        const FLAG: &str = "--output";
        if s.is_empty() {
            return Err(OutputError::Syntax {
                flag: FLAG,
                excerpt: String::new(),
                reason: "empty: give type=local,dest=DIR, type=tar,dest=FILE, or a directory",
            });
        }
        let fields = csv_fields(FLAG, s)?;
        // The docker CLI's shorthand: a path alone.
        if fields.len() == 1 && !fields[0].contains('=') {
            let (kind, dest) = if fields[0] == "-" {
                (OutputKind::Tar, "-")
            } else {
                (OutputKind::Local, fields[0].as_str())
            };
            return Ok(OutputSpec {
                kind,
                attrs: [("dest".to_string(), dest.to_string())].into(),
            });
        }
        let (kind, attrs) = key_values(FLAG, s, fields)?;
        let Some(kind) = kind.filter(|k| !k.is_empty()) else {
            return Err(OutputError::Syntax {
                flag: FLAG,
                excerpt: excerpt(s),
                reason: "no type=: give type=local,dest=DIR or type=tar,dest=FILE",
            });
        };
        let spec = OutputSpec {
            kind: OutputKind::parse(&kind),
            attrs,
        };
        let needs_dest = matches!(spec.kind, OutputKind::Local | OutputKind::Tar);
        if needs_dest && spec.dest().is_none_or(str::is_empty) {
            return Err(OutputError::Invalid {
                flag: FLAG,
                excerpt: excerpt(s),
                reason: format!("type={kind} needs dest=PATH"),
            });
        }
        Ok(spec)
    }

    /// The `dest` attribute.
    pub fn dest(&self) -> Option<&str> {
        self.attrs.get("dest").map(String::as_str)
    }

    /// Whether the result is the image in the daemon (`type=image` or
    /// `type=docker` without a file, not pushed).
    pub fn is_daemon_image(&self) -> bool {
        match self.kind {
            OutputKind::Image => !self.attrs.get("push").is_some_and(|v| parse_bool(v)),
            OutputKind::Docker => self.dest().is_none(),
            _ => false,
        }
    }
}

fn parse_bool(v: &str) -> bool {
    matches!(v, "1" | "t" | "T" | "true" | "TRUE" | "True")
}

impl CacheSpec {
    /// Parses one `--cache-from` value (`REF` alone is a registry ref).
    pub fn parse_from(s: &str) -> Result<CacheSpec, OutputError> {
        Self::parse("--cache-from", s)
    }

    /// Parses one `--cache-to` value.
    pub fn parse_to(s: &str) -> Result<CacheSpec, OutputError> {
        Self::parse("--cache-to", s)
    }

    fn parse(flag: &'static str, s: &str) -> Result<CacheSpec, OutputError> {
        if s.is_empty() {
            return Err(OutputError::Syntax {
                flag,
                excerpt: String::new(),
                reason: "empty: give type=registry,ref=IMAGE, type=inline, or IMAGE",
            });
        }
        if !s.contains('=') {
            return Ok(CacheSpec {
                kind: "registry".into(),
                attrs: [("ref".to_string(), s.to_string())].into(),
            });
        }
        let fields = csv_fields(flag, s)?;
        let (kind, attrs) = key_values(flag, s, fields)?;
        let Some(kind) = kind.filter(|k| !k.is_empty()) else {
            return Err(OutputError::Syntax {
                flag,
                excerpt: excerpt(s),
                reason: "no type=: give type=registry,ref=IMAGE or type=inline",
            });
        };
        let spec = CacheSpec { kind, attrs };
        let missing = match spec.kind.as_str() {
            "registry" if spec.attr("ref").is_none() => Some("type=registry needs ref=IMAGE"),
            "local" if flag == "--cache-from" && spec.attr("src").is_none() => {
                Some("type=local needs src=DIR")
            }
            "local" if flag == "--cache-to" && spec.attr("dest").is_none() => {
                Some("type=local needs dest=DIR")
            }
            _ => None,
        };
        if let Some(reason) = missing {
            return Err(OutputError::Invalid {
                flag,
                excerpt: excerpt(s),
                reason: reason.into(),
            });
        }
        Ok(spec)
    }

    /// A non-empty attribute.
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attrs
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// For a registry export to ECR: the attributes ECR needs that are
    /// not set (`image-manifest=true`, `oci-mediatypes=true`): ECR refuses
    /// BuildKit's default cache manifest list.
    pub fn ecr_missing_attrs(&self) -> Vec<&'static str> {
        let is_ecr = self.kind == "registry"
            && self
                .attr("ref")
                .is_some_and(|r| crate::auth::parse_ecr_host(registry_host(r)).is_some());
        if !is_ecr {
            return Vec::new();
        }
        ["image-manifest", "oci-mediatypes"]
            .into_iter()
            .filter(|k| !self.attr(k).is_some_and(parse_bool))
            .collect()
    }
}

impl CacheSpec {
    /// Sets what ECR needs on a registry export to ECR (see
    /// [`CacheSpec::ecr_missing_attrs`]); returns the attributes it set,
    /// for a warning that says so.
    pub fn set_ecr_attrs(&mut self) -> Vec<&'static str> {
        let missing = self.ecr_missing_attrs();
        for k in &missing {
            self.attrs.insert(k.to_string(), "true".into());
        }
        missing
    }
}

/// The registry host of an image reference (`docker.io` when it names none).
fn registry_host(reference: &str) -> &str {
    match reference.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => first,
        _ => "docker.io",
    }
}

/// `--platform a,b` → the platforms, in order, without duplicates.
pub fn parse_platforms(values: &[String]) -> Result<Vec<String>, OutputError> {
    let mut out: Vec<String> = Vec::new();
    for v in values {
        for p in v.split(',') {
            let p = p.trim();
            if p.is_empty() {
                return Err(OutputError::Syntax {
                    flag: "--platform",
                    excerpt: excerpt(v),
                    reason:
                        "an empty platform: give OS/ARCH[/VARIANT], e.g. linux/amd64,linux/arm64",
                });
            }
            if !out.iter().any(|q| q == p) {
                out.push(p.to_string());
            }
        }
    }
    Ok(out)
}

/// Where the session writes an export the daemon sends back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Export {
    /// `type=local`: the files into this directory (created if missing).
    Dir(PathBuf),
    /// `type=tar`: the tar stream into this file.
    File(PathBuf),
    /// `type=tar,dest=-`: the tar stream on stdout.
    Stdout,
}

/// The options of a daemon build, as moby's `/build` takes them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DaemonPlan {
    /// `outputs` (JSON), when the result is not the daemon's image.
    pub outputs_json: Option<String>,
    /// What the session receives through `FileSend`.
    pub export: Option<Export>,
    /// `cachefrom`: image references.
    pub cache_from: Vec<String>,
    /// `BUILDKIT_INLINE_CACHE=1` as a build argument.
    pub inline_cache: bool,
    /// The one platform (`platform`), if any.
    pub platform: Option<String>,
}

impl DaemonPlan {
    /// Whether the build ends with an image in the daemon.
    pub fn makes_image(&self) -> bool {
        self.export.is_none()
    }
}

/// What the build asks for, on top of outputs and caches.
#[derive(Debug, Clone, Default)]
pub struct Request<'a> {
    /// `--output`s.
    pub outputs: &'a [OutputSpec],
    /// `--cache-from`s.
    pub cache_from: &'a [CacheSpec],
    /// `--cache-to`s.
    pub cache_to: &'a [CacheSpec],
    /// `--platform`'s platforms.
    pub platforms: &'a [String],
}

const DAEMON_OUTPUTS: &str =
    "the image into the daemon (the default), type=local,dest=DIR and type=tar,dest=FILE|-";
const DAEMON_CACHE_FROM: &str = "type=registry,ref=IMAGE (or IMAGE alone)";
const DAEMON_CACHE_TO: &str =
    "type=inline only (cache metadata in the image, pushed with it by --push)";
const STANDALONE: &str =
    "a standalone buildkitd (--buildkit-addr tcp://HOST:PORT, or BUILDKIT_HOST), which does all of these";

/// Options of `image` that cannot go with an output that is not the
/// daemon's image (docker's rules: `--push` needs an image; stdout cannot
/// carry both a tar and `--json` events).
pub fn check_conflicts(
    outputs: &[OutputSpec],
    push: bool,
    skip_if_exists: bool,
    json: bool,
) -> Result<(), OutputError> {
    for out in outputs.iter().filter(|o| !o.is_daemon_image()) {
        let kind = out.kind.name();
        if push {
            return Err(OutputError::Conflict(format!(
                "--push and --output type={kind} cannot be used together: that output is not an image in the daemon; drop --push, or drop --output to build and push an image"
            )));
        }
        if skip_if_exists {
            return Err(OutputError::Conflict(format!(
                "--skip-if-exists and --output type={kind} cannot be used together: it reuses an image built from the same inputs, and this build makes none; drop one of them"
            )));
        }
        if json && out.dest() == Some("-") {
            return Err(OutputError::Conflict(
                "--output - writes the tar to stdout, where --json writes its events: give dest=FILE, or drop --json".into(),
            ));
        }
    }
    Ok(())
}

/// Maps outputs, caches and platforms onto the daemon's `/build` API,
/// or says what the daemon (`engine`, e.g. `Docker 20.10.24`) cannot do.
pub fn plan_daemon(req: &Request<'_>, engine: &str) -> Result<DaemonPlan, OutputError> {
    let engine = format!("the Docker daemon's embedded BuildKit ({engine})");
    let mut plan = DaemonPlan::default();
    match req.platforms {
        [] => {}
        [one] => plan.platform = Some(one.clone()),
        many => {
            return Err(OutputError::Unsupported {
                what: format!("--platform {}", many.join(",")),
                engine,
                cannot: "builds one platform per build (its /build API takes a single platform, and its image store keeps no multi-platform images)".into(),
                supports: "one --platform per build",
                instead: format!(
                    "Build each platform on its own ({}), or use {STANDALONE} (-o type=local or type=tar with platform-split=true writes one directory per platform).",
                    many.iter()
                        .map(|p| format!("--platform {p}"))
                        .collect::<Vec<_>>()
                        .join(", then ")
                ),
            })
        }
    }
    let outputs: Vec<&OutputSpec> = req
        .outputs
        .iter()
        .filter(|o| !o.is_daemon_image())
        .collect();
    if outputs.len() > 1 || (outputs.len() == 1 && req.outputs.len() > 1) {
        return Err(OutputError::Unsupported {
            what: format!("{} outputs", req.outputs.len()),
            engine,
            cannot: "exports one result per build".into(),
            supports: DAEMON_OUTPUTS,
            instead: format!("Give one --output, or use {STANDALONE}."),
        });
    }
    if let Some(out) = outputs.first() {
        let export = match (&out.kind, out.dest()) {
            (OutputKind::Local, Some(dest)) => Export::Dir(PathBuf::from(dest)),
            (OutputKind::Tar, Some("-")) => Export::Stdout,
            (OutputKind::Tar, Some(dest)) => Export::File(PathBuf::from(dest)),
            (kind, _) => {
                let instead = match kind {
                    OutputKind::Registry | OutputKind::Image => {
                        "Push with -t NAME --push (the daemon builds the image, then reggie-build pushes it)".to_string()
                    }
                    OutputKind::Oci | OutputKind::Docker => format!(
                        "Build into the daemon and save it (`docker save IMAGE -o FILE`, a docker tarball), write the files with type=tar, or use {STANDALONE}"
                    ),
                    _ => format!("Use {STANDALONE}"),
                };
                return Err(OutputError::Unsupported {
                    what: format!("--output type={}", out.kind.name()),
                    engine,
                    cannot: format!("has no {:?} exporter", out.kind.name()),
                    supports: DAEMON_OUTPUTS,
                    instead: format!("{instead}."),
                });
            }
        };
        let attrs: BTreeMap<&str, &str> = out
            .attrs
            .iter()
            .filter(|(k, _)| k.as_str() != "dest")
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        // The daemon never sees the client's path: the files come back
        // through the session, as the docker CLI does it.
        let json = serde_json::json!([{ "Type": out.kind.name(), "Attrs": attrs }]);
        plan.outputs_json = Some(json.to_string());
        plan.export = Some(export);
    }
    for c in req.cache_from {
        match (c.kind.as_str(), c.attr("ref")) {
            ("registry", Some(r)) => plan.cache_from.push(r.to_string()),
            (kind, _) => {
                return Err(OutputError::Unsupported {
                    what: format!("--cache-from type={kind}"),
                    engine,
                    cannot: format!("cannot import a {kind:?} cache (its /build API takes image references only)"),
                    supports: DAEMON_CACHE_FROM,
                    instead: format!(
                        "Import from an image pushed with --cache-to type=inline (--cache-from type=registry,ref=IMAGE), or use {STANDALONE}."
                    ),
                })
            }
        }
    }
    for c in req.cache_to {
        if c.kind == "inline" {
            plan.inline_cache = true;
            continue;
        }
        let mut instead = format!(
            "Use --cache-to type=inline with --push (a later build imports it with --cache-from type=registry,ref=IMAGE), or {STANDALONE}"
        );
        let missing = c.ecr_missing_attrs();
        if !missing.is_empty() {
            instead.push_str(&format!(
                "; for ECR, a registry cache also needs {}",
                missing
                    .iter()
                    .map(|k| format!("{k}=true"))
                    .collect::<Vec<_>>()
                    .join(",")
            ));
        }
        return Err(OutputError::Unsupported {
            what: format!("--cache-to type={}", c.kind),
            engine,
            cannot: "exports only inline cache".into(),
            supports: DAEMON_CACHE_TO,
            instead: format!("{instead}."),
        });
    }
    Ok(plan)
}

/// What a solve through BuildKit's Control API (`--buildkit-addr`)
/// exports and caches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemotePlan {
    /// The exporter for a file output (`local`, `tar`, `oci`, `docker`)
    /// with its attributes (`dest` stays on the client); `None`: the
    /// image exporter the caller chooses from the tags.
    pub exporter: Option<(String, BTreeMap<String, String>)>,
    /// Where the files the exporter sends back through the session go.
    pub export: Option<Export>,
    /// Cache imports and exports, as the engine takes them.
    pub cache_imports: Vec<CacheSpec>,
    /// See [`Self::cache_imports`].
    pub cache_exports: Vec<CacheSpec>,
}

const REMOTE_DAEMON_OUTPUTS: &str =
    "the image into that daemon (the default), type=local,dest=DIR and type=tar,dest=FILE|-";
const REMOTE_CACHE: &str =
    "type=registry, inline, gha and s3 (a local cache directory would need the client's content store, which reggie-build does not serve)";

/// Maps outputs and caches onto a Control-API solve on `engine` (its
/// description; `daemon_engine`: a Docker daemon's embedded BuildKit,
/// which has fewer exporters and exports only inline cache).
pub fn plan_remote(
    req: &Request<'_>,
    daemon_engine: bool,
    engine: &str,
) -> Result<RemotePlan, OutputError> {
    let mut plan = RemotePlan::default();
    let outputs: Vec<&OutputSpec> = req
        .outputs
        .iter()
        .filter(|o| !o.is_daemon_image())
        .collect();
    if outputs.len() > 1 || (outputs.len() == 1 && req.outputs.len() > 1) {
        return Err(OutputError::Unsupported {
            what: format!("{} outputs", req.outputs.len()),
            engine: engine.to_string(),
            cannot: "is given one result per build by reggie-build".into(),
            supports: "one --output",
            instead: "Give one --output and build again for another.".into(),
        });
    }
    if let Some(out) = outputs.first() {
        let file = |dest: &str| match dest {
            "-" => Export::Stdout,
            d => Export::File(PathBuf::from(d)),
        };
        let export = match (&out.kind, out.dest()) {
            (OutputKind::Local, Some(dest)) => Export::Dir(PathBuf::from(dest)),
            (OutputKind::Tar, Some(dest)) => file(dest),
            (OutputKind::Oci | OutputKind::Docker, Some(dest)) if !daemon_engine => file(dest),
            (kind, _) => {
                let (supports, instead) = if daemon_engine {
                    (
                        REMOTE_DAEMON_OUTPUTS,
                        "Build into that daemon and `docker save` it, or write the files with type=local or type=tar.",
                    )
                } else {
                    (
                        "type=local,dest=DIR, type=tar|oci|docker,dest=FILE|-, and pushed images (-t NAME --push)",
                        "Push with -t NAME --push, or give the output a dest=.",
                    )
                };
                return Err(OutputError::Unsupported {
                    what: format!("--output type={}", kind.name()),
                    engine: engine.to_string(),
                    cannot: "cannot take this output from reggie-build".into(),
                    supports,
                    instead: instead.into(),
                });
            }
        };
        let attrs = out
            .attrs
            .iter()
            .filter(|(k, _)| k.as_str() != "dest")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        plan.exporter = Some((out.kind.name().to_string(), attrs));
        plan.export = Some(export);
    }
    for (flag, list, into) in [
        ("--cache-from", req.cache_from, &mut plan.cache_imports),
        ("--cache-to", req.cache_to, &mut plan.cache_exports),
    ] {
        for c in list {
            let refused = match (c.kind.as_str(), flag == "--cache-to", daemon_engine) {
                ("local", _, _) => Some("has no access to this machine's cache directories"),
                ("inline", false, _) => {
                    Some("reads inline cache from an image: give it as type=registry,ref=IMAGE")
                }
                ("registry", false, true) | ("inline", true, true) => None,
                (_, false, true) => Some("imports only registry cache"),
                (_, true, true) => Some("exports only inline cache"),
                _ => None,
            };
            if let Some(cannot) = refused {
                return Err(OutputError::Unsupported {
                    what: format!("{flag} type={}", c.kind),
                    engine: engine.to_string(),
                    cannot: cannot.into(),
                    supports: if daemon_engine {
                        "--cache-from type=registry,ref=IMAGE and --cache-to type=inline"
                    } else {
                        REMOTE_CACHE
                    },
                    instead: "Use --cache-to type=inline (or type=registry,ref=IMAGE on a standalone buildkitd) and --cache-from type=registry,ref=IMAGE.".into(),
                });
            }
            let mut c = c.clone();
            if flag == "--cache-to" {
                // ECR refuses BuildKit's default cache manifest list.
                c.set_ecr_attrs();
            }
            into.push(c);
        }
    }
    Ok(plan)
}

/// The architecture part of a platform (`linux/arm64/v8` → `arm64`).
pub(crate) fn platform_arch(platform: &str) -> Option<&str> {
    platform.split('/').nth(1).filter(|a| !a.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    type OutputCase<'a> = (&'a str, OutputKind, &'a [(&'a str, &'a str)]);
    /// Outputs, cache imports, cache exports, platforms; a part of the error.
    type RefusedCase<'a> = (
        Vec<&'a str>,
        Vec<&'a str>,
        Vec<&'a str>,
        Vec<&'a str>,
        &'a str,
    );

    #[test]
    fn outputs_parse_like_buildx() {
        let table: &[OutputCase] = &[
            ("type=local,dest=out", OutputKind::Local, &[("dest", "out")]),
            ("out", OutputKind::Local, &[("dest", "out")]),
            ("-", OutputKind::Tar, &[("dest", "-")]),
            ("type=tar,dest=a.tar", OutputKind::Tar, &[("dest", "a.tar")]),
            (
                r#"type=local,"dest=a,b""#,
                OutputKind::Local,
                &[("dest", "a,b")],
            ),
            (
                r#"type=local,"dest=say ""hi""""#,
                OutputKind::Local,
                &[("dest", r#"say "hi""#)],
            ),
            (
                "TYPE=local,Dest=x,platform-split=true",
                OutputKind::Local,
                &[("dest", "x"), ("platform-split", "true")],
            ),
            ("type=oci,dest=o.tar", OutputKind::Oci, &[("dest", "o.tar")]),
            (
                "type=image,push=true",
                OutputKind::Image,
                &[("push", "true")],
            ),
            ("type=cacheonly", OutputKind::Other("cacheonly".into()), &[]),
        ];
        for (input, kind, want) in table {
            let spec = OutputSpec::parse(input).unwrap();
            assert_eq!(spec.kind, *kind, "{input}");
            assert_eq!(spec.attrs, attrs(want), "{input}");
        }
    }

    #[test]
    fn bad_outputs_quote_an_escaped_excerpt() {
        for (input, reason) in [
            ("type=local", "needs dest=PATH"),
            ("type=tar,dest=", "needs dest=PATH"),
            ("dest=x", "no type="),
            ("type=local,dest", "is not KEY=VALUE"),
            (r#"type=local,"dest=a"b"#, "text after a closing quote"),
            (r#"type=local,de"st=a"#, "a quote inside an unquoted field"),
            (r#"type=local,"dest=a"#, "not closed"),
            ("", "empty"),
        ] {
            let err = OutputSpec::parse(input).unwrap_err().to_string();
            assert!(err.contains(reason), "{input}: {err}");
        }
        let err = OutputSpec::parse("type=local,\u{1b}[31m")
            .unwrap_err()
            .to_string();
        assert!(!err.contains('\u{1b}'), "{err}");
        assert!(err.contains("\\x1b[31m"), "{err}");
    }

    #[test]
    fn caches_parse_like_buildx() {
        let c = CacheSpec::parse_from("reg.example/app:cache").unwrap();
        assert_eq!(c.kind, "registry");
        assert_eq!(c.attr("ref"), Some("reg.example/app:cache"));
        let c = CacheSpec::parse_to("type=inline").unwrap();
        assert_eq!((c.kind.as_str(), c.attrs.len()), ("inline", 0));
        let c = CacheSpec::parse_from("type=local,src=/tmp/c").unwrap();
        assert_eq!(c.attr("src"), Some("/tmp/c"));
        assert!(CacheSpec::parse_from("type=registry")
            .unwrap_err()
            .to_string()
            .contains("needs ref=IMAGE"));
        assert!(CacheSpec::parse_to("type=local,src=x")
            .unwrap_err()
            .to_string()
            .contains("needs dest=DIR"));
        let ecr = CacheSpec::parse_to(
            "type=registry,ref=123456789012.dkr.ecr.us-east-1.amazonaws.com/app:cache,oci-mediatypes=true",
        )
        .unwrap();
        assert_eq!(ecr.ecr_missing_attrs(), ["image-manifest"]);
        let mut set = ecr.clone();
        assert_eq!(set.set_ecr_attrs(), ["image-manifest"]);
        assert!(set.ecr_missing_attrs().is_empty());
        assert_eq!(set.attr("image-manifest"), Some("true"));
        let hub = CacheSpec::parse_to("type=registry,ref=me/app:cache").unwrap();
        assert!(hub.ecr_missing_attrs().is_empty());
    }

    #[test]
    fn platforms_split_and_dedup() {
        assert_eq!(
            parse_platforms(&["linux/amd64,linux/arm64".into(), "linux/amd64".into()]).unwrap(),
            ["linux/amd64", "linux/arm64"]
        );
        assert!(parse_platforms(&["linux/amd64,".into()]).is_err());
    }

    fn plan(req: Request<'_>) -> Result<DaemonPlan, OutputError> {
        plan_daemon(&req, "Docker 20.10.24")
    }

    #[test]
    fn daemon_plan_maps_local_and_tar_outputs() {
        let outputs = [OutputSpec::parse("type=local,dest=out,foo=bar").unwrap()];
        let p = plan(Request {
            outputs: &outputs,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(p.export, Some(Export::Dir("out".into())));
        assert_eq!(
            p.outputs_json.as_deref(),
            Some(r#"[{"Attrs":{"foo":"bar"},"Type":"local"}]"#)
        );
        let outputs = [OutputSpec::parse("-").unwrap()];
        let p = plan(Request {
            outputs: &outputs,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(p.export, Some(Export::Stdout));
        // The daemon's image: no outputs parameter at all.
        let outputs = [OutputSpec::parse("type=image").unwrap()];
        let p = plan(Request {
            outputs: &outputs,
            ..Default::default()
        })
        .unwrap();
        assert!(p.makes_image() && p.outputs_json.is_none());
    }

    #[test]
    fn daemon_plan_refuses_what_the_engine_cannot_do() {
        let cases: Vec<RefusedCase> = vec![
            (
                vec!["type=oci,dest=x.tar"],
                vec![],
                vec![],
                vec![],
                "docker save",
            ),
            (
                vec!["type=docker,dest=x.tar"],
                vec![],
                vec![],
                vec![],
                "no \"docker\" exporter",
            ),
            (vec!["type=registry"], vec![], vec![], vec![], "--push"),
            (
                vec!["a", "b"],
                vec![],
                vec![],
                vec![],
                "one result per build",
            ),
            (
                vec![],
                vec!["type=local,src=c"],
                vec![],
                vec![],
                "image references only",
            ),
            (vec![], vec!["type=gha"], vec![], vec![], "--buildkit-addr"),
            (
                vec![],
                vec![],
                vec!["type=registry,ref=r/x"],
                vec![],
                "exports only inline cache",
            ),
            (
                vec![],
                vec![],
                vec!["type=registry,ref=123456789012.dkr.ecr.us-east-1.amazonaws.com/a:c"],
                vec![],
                "image-manifest=true,oci-mediatypes=true",
            ),
            (
                vec![],
                vec![],
                vec![],
                vec!["linux/amd64", "linux/arm64"],
                "one platform per build",
            ),
        ];
        for (outs, from, to, platforms, want) in cases {
            let outputs: Vec<OutputSpec> =
                outs.iter().map(|s| OutputSpec::parse(s).unwrap()).collect();
            let from: Vec<CacheSpec> = from
                .iter()
                .map(|s| CacheSpec::parse_from(s).unwrap())
                .collect();
            let to: Vec<CacheSpec> = to.iter().map(|s| CacheSpec::parse_to(s).unwrap()).collect();
            let platforms: Vec<String> = platforms.iter().map(|s| s.to_string()).collect();
            let err = plan(Request {
                outputs: &outputs,
                cache_from: &from,
                cache_to: &to,
                platforms: &platforms,
            })
            .unwrap_err()
            .to_string();
            assert!(err.contains(want), "{outs:?} {want}: {err}");
            if err.contains("it supports") {
                assert!(err.contains("Docker 20.10.24"), "{err}");
            }
        }
    }

    #[test]
    fn contradictions_are_named() {
        let outputs = [OutputSpec::parse("type=tar,dest=x.tar").unwrap()];
        let err = check_conflicts(&outputs, true, false, false).unwrap_err();
        assert!(
            err.to_string().contains("--push and --output type=tar"),
            "{err}"
        );
        let err = check_conflicts(&outputs, false, true, false).unwrap_err();
        assert!(err.to_string().contains("--skip-if-exists"), "{err}");
        let stdout = [OutputSpec::parse("-").unwrap()];
        assert!(check_conflicts(&stdout, false, false, true).is_err());
        assert!(check_conflicts(&outputs, false, false, true).is_ok());
        let image = [OutputSpec::parse("type=image").unwrap()];
        assert!(check_conflicts(&image, true, true, true).is_ok());
        let from = [CacheSpec::parse_from("r/x:c").unwrap()];
        let to = [CacheSpec::parse_to("type=inline").unwrap()];
        let p = plan(Request {
            cache_from: &from,
            cache_to: &to,
            platforms: &["linux/arm64".into()],
            ..Default::default()
        })
        .unwrap();
        assert_eq!(p.cache_from, ["r/x:c"]);
        assert!(p.inline_cache);
        assert_eq!(p.platform.as_deref(), Some("linux/arm64"));
    }

    #[test]
    fn remote_plan_per_engine() {
        let out = |s: &str| OutputSpec::parse(s).unwrap();
        let from = |s: &str| CacheSpec::parse_from(s).unwrap();
        let to = |s: &str| CacheSpec::parse_to(s).unwrap();
        let plan = |o: &[OutputSpec], f: &[CacheSpec], t: &[CacheSpec], daemon: bool| {
            let req = Request {
                outputs: o,
                cache_from: f,
                cache_to: t,
                platforms: &[],
            };
            plan_remote(&req, daemon, "the engine")
        };
        // A file output: its exporter without the client's dest.
        let p = plan(&[out("type=tar,dest=-")], &[], &[], true).unwrap();
        assert_eq!(p.exporter, Some(("tar".to_string(), BTreeMap::new())));
        assert_eq!(p.export, Some(Export::Stdout));
        let p = plan(&[out("type=oci,dest=o.tar")], &[], &[], false).unwrap();
        assert_eq!(p.export, Some(Export::File("o.tar".into())));
        assert!(plan(&[out("type=oci,dest=o.tar")], &[], &[], true).is_err());
        // Caches: a daemon engine imports registry and exports inline only.
        let p = plan(&[], &[from("r.example/a:c")], &[to("type=inline")], true).unwrap();
        assert_eq!(p.cache_imports[0].kind, "registry");
        assert_eq!(p.cache_exports[0].kind, "inline");
        let err = plan(&[], &[], &[to("type=registry,ref=r.example/a:c")], true).unwrap_err();
        assert!(
            err.to_string().contains("exports only inline cache"),
            "{err}"
        );
        let err = plan(&[], &[from("type=local,src=d")], &[], false).unwrap_err();
        assert!(err.to_string().contains("cache directories"), "{err}");
        // ECR gets the attributes it needs from a standalone engine.
        let ecr = "type=registry,ref=123456789012.dkr.ecr.us-east-1.amazonaws.com/a:c";
        let p = plan(&[], &[], &[to(ecr)], false).unwrap();
        assert_eq!(p.cache_exports[0].attr("image-manifest"), Some("true"));
        assert_eq!(p.cache_exports[0].attr("oci-mediatypes"), Some("true"));
    }
}
