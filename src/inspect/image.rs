//! The JSON documents that describe an image: the image config (history,
//! diff ids, labels), OCI manifests and indexes, and `docker save`'s
//! `manifest.json`. Each is read from at most [`MAX_JSON`] bytes.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::layer::{parse_sha, Sha};

/// The largest JSON document of an image read (configs with long
/// histories are tens of KB).
pub const MAX_JSON: u64 = 8 << 20;

/// One `history` entry of an image config.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct History {
    /// What made it: `RUN /bin/sh -c ... # buildkit`, `/bin/sh -c #(nop) COPY ...`.
    pub created_by: String,
    /// `buildkit.dockerfile.v0`, `Imported from -`...
    pub comment: String,
    /// Whether it added no layer.
    pub empty_layer: bool,
}

/// The parts of an image config this reader uses.
#[derive(Debug, Clone, Default)]
pub struct ImageConfig {
    /// `linux`.
    pub os: String,
    /// `amd64`.
    pub architecture: String,
    /// `v8`, when given.
    pub variant: Option<String>,
    /// The layers' uncompressed digests, base first.
    pub diff_ids: Vec<Sha>,
    /// How each step was made.
    pub history: Vec<History>,
    /// `config.Labels`.
    pub labels: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawConfig {
    os: String,
    architecture: String,
    variant: Option<String>,
    config: RawRunConfig,
    rootfs: RawRootfs,
    history: Vec<History>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawRunConfig {
    #[serde(rename = "Labels")]
    labels: Option<BTreeMap<String, serde_json::Value>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawRootfs {
    diff_ids: Vec<String>,
}

/// Why an image's JSON is refused.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{what}: {message}")]
pub struct JsonError {
    /// Which document.
    pub what: String,
    /// What is wrong.
    pub message: String,
}

fn json_error(what: &str, message: impl std::fmt::Display) -> JsonError {
    JsonError {
        what: what.to_string(),
        message: crate::text::bounded(&message.to_string(), 300).into_owned(),
    }
}

impl ImageConfig {
    /// Parses an image config.
    pub fn parse(data: &[u8]) -> Result<ImageConfig, JsonError> {
        let raw: RawConfig =
            serde_json::from_slice(data).map_err(|e| json_error("the image config", e))?;
        let diff_ids = raw
            .rootfs
            .diff_ids
            .iter()
            .map(|d| {
                parse_sha(d).ok_or_else(|| {
                    json_error(
                        "the image config",
                        format!(
                            "diff id \"{}\" is not a sha256 digest",
                            crate::text::excerpt(d)
                        ),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let labels = raw
            .config
            .labels
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(k, v)| Some((k, v.as_str()?.to_string())))
            .collect();
        Ok(ImageConfig {
            os: raw.os,
            architecture: raw.architecture,
            variant: raw.variant,
            diff_ids,
            history: raw.history,
            labels,
        })
    }

    /// `os/arch[/variant]`.
    pub fn platform(&self) -> String {
        match &self.variant {
            Some(v) if !v.is_empty() => format!("{}/{}/{v}", self.os, self.architecture),
            _ => format!("{}/{}", self.os, self.architecture),
        }
    }
}

/// An OCI descriptor.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub struct Descriptor {
    /// Its media type.
    pub media_type: String,
    /// `sha256:...`.
    pub digest: String,
    /// Bytes.
    pub size: u64,
    /// For index entries.
    pub platform: Option<Platform>,
    /// `org.opencontainers.image.ref.name` and others.
    pub annotations: BTreeMap<String, String>,
}

/// An index entry's platform.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default)]
pub struct Platform {
    /// `linux`.
    pub os: String,
    /// `amd64`.
    pub architecture: String,
    /// `v8`.
    pub variant: Option<String>,
}

/// An image manifest or an index (OCI or Docker v2).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub struct Manifest {
    /// Its media type (may be absent in an OCI index).
    pub media_type: String,
    /// An image manifest's config.
    pub config: Option<Descriptor>,
    /// An image manifest's layers.
    pub layers: Vec<Descriptor>,
    /// An index's manifests.
    pub manifests: Vec<Descriptor>,
}

impl Manifest {
    /// Parses a manifest or index.
    pub fn parse(data: &[u8], what: &str) -> Result<Manifest, JsonError> {
        serde_json::from_slice(data).map_err(|e| json_error(what, e))
    }

    /// Whether it lists manifests rather than layers.
    pub fn is_index(&self) -> bool {
        self.config.is_none() && !self.manifests.is_empty()
            || self.media_type.contains("index")
            || self.media_type.contains("manifest.list")
    }
}

/// The platform an index entry should match: `--platform`, else the
/// machine's (`linux/amd64` here).
pub fn default_platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        other => other,
    };
    format!("linux/{arch}")
}

/// The entry of an index for `platform` (`os/arch[/variant]`), skipping
/// attestation manifests (`unknown/unknown`). Errors list what is there.
pub fn choose<'a>(
    index: &'a Manifest,
    platform: &str,
    what: &str,
) -> Result<&'a Descriptor, JsonError> {
    let mut parts = platform.split('/');
    let os = parts.next().unwrap_or("linux");
    let arch = parts.next().unwrap_or_default();
    let variant = parts.next();
    let images: Vec<&Descriptor> = index
        .manifests
        .iter()
        .filter(|d| {
            d.platform
                .as_ref()
                .is_none_or(|p| p.os != "unknown" && p.architecture != "unknown")
        })
        .collect();
    // An index of one image without a platform (docker save, an OCI
    // layout of one image) is that image.
    if images.len() == 1 && images[0].platform.is_none() {
        return Ok(images[0]);
    }
    let matching: Vec<&&Descriptor> = images
        .iter()
        .filter(|d| {
            d.platform
                .as_ref()
                .is_some_and(|p| p.os == os && p.architecture == arch)
        })
        .collect();
    matching
        .iter()
        .find(|d| {
            variant.is_none() || d.platform.as_ref().and_then(|p| p.variant.as_deref()) == variant
        })
        .or_else(|| matching.first())
        .map(|d| **d)
        .ok_or_else(|| {
            let have: Vec<String> = images
                .iter()
                .map(|d| match &d.platform {
                    Some(p) => match &p.variant {
                        Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
                        None => format!("{}/{}", p.os, p.architecture),
                    },
                    None => "no platform".into(),
                })
                .collect();
            json_error(
                what,
                format!(
                    "no image for {platform} (it has {}); pass --platform with one of them",
                    crate::text::escape(&have.join(", "))
                ),
            )
        })
}

/// One image of `docker save`'s `manifest.json`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
pub struct SavedImage {
    /// The config's file name in the archive.
    pub config: String,
    /// `name:tag`s.
    pub repo_tags: Option<Vec<String>>,
    /// Layer file names, base first.
    pub layers: Vec<String>,
}

/// Parses `manifest.json`.
pub fn parse_saved(data: &[u8]) -> Result<Vec<SavedImage>, JsonError> {
    serde_json::from_slice(data).map_err(|e| json_error("manifest.json", e))
}

/// The image of a `docker save` archive: the only one, or the one
/// `name` tags.
pub fn choose_saved<'a>(
    images: &'a [SavedImage],
    name: Option<&str>,
) -> Result<&'a SavedImage, JsonError> {
    if let Some(name) = name {
        let full = if name.contains(':') {
            name.to_string()
        } else {
            format!("{name}:latest")
        };
        return images
            .iter()
            .find(|i| {
                i.repo_tags
                    .iter()
                    .flatten()
                    .any(|t| t == name || *t == full)
            })
            .ok_or_else(|| {
                json_error(
                    "manifest.json",
                    format!("no image tagged {}", crate::text::excerpt(name)),
                )
            });
    }
    match images {
        [one] => Ok(one),
        [] => Err(json_error("manifest.json", "it lists no image")),
        many => {
            let tags: Vec<String> = many
                .iter()
                .map(|i| {
                    i.repo_tags
                        .iter()
                        .flatten()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect();
            Err(json_error(
                "manifest.json",
                format!(
                    "it holds {} images ({}): name one with --image",
                    many.len(),
                    crate::text::excerpt(&tags.join(", "))
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_parse() {
        let c = ImageConfig::parse(br#"{"architecture":"amd64","os":"linux","config":{"Labels":{"a":"b","n":1}},
            "rootfs":{"type":"layers","diff_ids":["sha256:596ae37600ee694fdaf234f1a2adcbad0ee730bc0eae325c46c7d3cc21f0cd93"]},
            "history":[{"created":"x","comment":"Imported from -"},{"created_by":"ENV A=b","empty_layer":true}]}"#).unwrap();
        assert_eq!(c.platform(), "linux/amd64");
        assert_eq!(c.diff_ids.len(), 1);
        assert_eq!(c.history[1].created_by, "ENV A=b");
        assert!(c.history[1].empty_layer);
        assert_eq!(c.labels.len(), 1);
        assert!(ImageConfig::parse(br#"{"rootfs":{"diff_ids":["md5:x"]}}"#).is_err());
    }

    #[test]
    fn platforms_choose() {
        let index = Manifest::parse(
            br#"{"manifests":[
            {"digest":"sha256:a","platform":{"os":"linux","architecture":"amd64"}},
            {"digest":"sha256:att","platform":{"os":"unknown","architecture":"unknown"}},
            {"digest":"sha256:b","platform":{"os":"linux","architecture":"arm","variant":"v7"}}]}"#,
            "index",
        )
        .unwrap();
        assert!(index.is_index());
        assert_eq!(
            choose(&index, "linux/amd64", "x").unwrap().digest,
            "sha256:a"
        );
        assert_eq!(
            choose(&index, "linux/arm/v7", "x").unwrap().digest,
            "sha256:b"
        );
        let e = choose(&index, "linux/s390x", "x").unwrap_err().to_string();
        assert!(e.contains("linux/amd64, linux/arm/v7"), "{e}");
    }
}
