//! What to build ([`BuildSpec`], from `ops`) and what was built
//! ([`Built`]), whichever engine builds it.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use crate::context::tarball::TarOptions;
use crate::context::Context;

use super::session::SecretValues;
use super::{outputs, upload::Compression};

/// What to build.
#[derive(Debug, Clone)]
pub(crate) struct BuildSpec {
    /// The context to upload (already restricted, or whole).
    pub context: Context,
    pub tags: Vec<String>,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub platform: Option<String>,
    /// Labels, on top of the default ones (`prepare`).
    pub labels: BTreeMap<String, String>,
    pub no_cache: bool,
    pub pull: bool,
    pub compression: Compression,
    pub tar: TarOptions,
    /// The network of RUN steps (`default`, `host`, `none`, or a network
    /// name for the classic builder).
    pub network: Option<String>,
    /// Credentials the daemon may use to pull base images, by registry
    /// (`docker.io`, `host:port`).
    pub pull_credentials: BTreeMap<String, crate::auth::Credentials>,
    /// Build secrets by id (`--secret`), served to BuildKit's session.
    pub secrets: SecretValues,
    /// ssh agent sockets by id (`--ssh`), forwarded through the session.
    pub ssh: HashMap<String, std::path::PathBuf>,
    /// How long the upload may make no progress before the build fails
    /// (`--idle-timeout`): a daemon that stops reading must not hang it.
    pub idle_timeout: Duration,
    /// `--output`s; none: the image into the daemon.
    pub outputs: Vec<outputs::OutputSpec>,
    /// `--cache-from`.
    pub cache_from: Vec<outputs::CacheSpec>,
    /// `--cache-to`.
    pub cache_to: Vec<outputs::CacheSpec>,
    /// Attestations as frontend attributes (`attest:provenance` ->
    /// `mode=max`), from [`outputs::parse_attestation`].
    pub attests: BTreeMap<String, String>,
}

/// A finished build.
#[derive(Debug, Clone)]
pub struct Built {
    /// The image's id (`sha256:...`; empty when an `--output` replaced it).
    pub image_id: String,
    /// The digest of the context as sent.
    pub context_digest: String,
    /// Bytes of the upload (the classic builder's body, or the file sync's).
    pub uploaded_bytes: u64,
    /// Dockerfile steps the builder reported.
    pub steps: u32,
}
