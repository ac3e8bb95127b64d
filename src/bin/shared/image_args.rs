//! The arguments of `reggie-build image`. The command itself runs in the
//! `reggie-build-image` binary (see `src/bin/reggie-build-image/`), so
//! that the Docker, BuildKit and AWS stacks are loaded only when an image
//! is built; `reggie-build` parses these to validate and document them,
//! and the image binary parses them again to run the build.

use super::heading;
use super::ContextArgs;
use clap::{Args, ValueEnum};

/// Compression of the upload.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum CompressArg {
    /// None for a local socket, gzip for a remote daemon.
    Auto,
    None,
    Gzip,
}

/// Arguments of `reggie-build image`.
#[derive(Debug, Args)]
pub struct ImageArgs {
    #[command(flatten)]
    pub context: ContextArgs,
    /// Name and tag the image (repeatable).
    #[arg(short = 't', long = "tag", value_name = "NAME[:TAG]")]
    #[arg(help_heading = heading::BUILD)]
    pub tags: Vec<String>,
    /// A build argument; `KEY` alone takes the value of the environment
    /// variable KEY.
    #[arg(long = "build-arg", value_name = "KEY[=VALUE]")]
    #[arg(help_heading = heading::BUILD)]
    pub build_args: Vec<String>,
    /// The stage to build.
    #[arg(long)]
    #[arg(help_heading = heading::BUILD)]
    pub target: Option<String>,
    /// Target platform, e.g. linux/amd64 (several, comma-separated, where
    /// the builder can build them; the Docker daemon builds one).
    #[arg(long, value_name = "OS/ARCH[,OS/ARCH...]")]
    #[arg(help_heading = heading::BUILD)]
    pub platform: Option<String>,
    /// Where the result goes instead of an image, as `docker build -o`:
    /// type=local,dest=DIR (or DIR), type=tar,dest=FILE (or - for stdout).
    #[arg(
        short = 'o',
        long = "output",
        value_name = "type=local,dest=DIR|type=tar,dest=FILE|DIR|-"
    )]
    #[arg(help_heading = heading::OUTPUT)]
    pub outputs: Vec<String>,
    /// Import build cache: an image pushed with inline cache
    /// (type=registry,ref=IMAGE, or IMAGE); on a standalone buildkitd
    /// (--buildkit-addr) also a registry cache and type=local,src=DIR (a
    /// cache directory of this machine, served over the session).
    #[arg(
        long = "cache-from",
        value_name = "type=registry,ref=IMAGE|IMAGE|type=local,src=DIR"
    )]
    #[arg(help_heading = heading::BUILD)]
    pub cache_from: Vec<String>,
    /// Export build cache: type=inline puts it in the image (push it with
    /// --push; a later build imports it with --cache-from); on a
    /// standalone buildkitd also type=registry,ref=IMAGE[,mode=max] and
    /// type=local,dest=DIR[,mode=max].
    #[arg(
        long = "cache-to",
        value_name = "type=inline|type=registry,ref=IMAGE|type=local,dest=DIR"
    )]
    #[arg(help_heading = heading::BUILD)]
    pub cache_to: Vec<String>,
    /// Attach a SLSA provenance attestation to the image (a standalone
    /// buildkitd, BuildKit 0.11+, with --buildkit-addr): --provenance
    /// (mode=min), --provenance=mode=max (with the Dockerfile and where
    /// each step comes from), --provenance=false.
    #[arg(
        long,
        value_name = "mode=min|max",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true"
    )]
    #[arg(help_heading = heading::REMOTE)]
    pub provenance: Option<String>,
    /// Attach an SBOM attestation, made by BuildKit's scanner image
    /// (default docker/buildkit-syft-scanner; --sbom=generator=IMAGE for
    /// another) on a standalone buildkitd (--buildkit-addr).
    #[arg(
        long,
        value_name = "true|generator=IMAGE",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true"
    )]
    #[arg(help_heading = heading::REMOTE)]
    pub sbom: Option<String>,
    /// An image label (repeatable).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    #[arg(help_heading = heading::BUILD)]
    pub labels: Vec<String>,
    /// The network of RUN steps: default, host, none (or, for the classic
    /// builder, a network name), as `docker build --network`.
    #[arg(long, value_name = "MODE")]
    #[arg(help_heading = heading::BUILD)]
    pub network: Option<String>,
    /// A build secret for `RUN --mount=type=secret,id=ID`, read from a
    /// file (a regular file of at most 500 KiB, BuildKit's limit; one
    /// inside the repository never through a link out of it) or an
    /// environment variable; never in output, logs or the image (BuildKit
    /// only). E.g. `--secret id=npm,src=$HOME/.npmrc`.
    #[arg(long = "secret", value_name = "id=ID,src=PATH|env=VAR")]
    #[arg(help_heading = heading::BUILD)]
    pub secrets: Vec<String>,
    /// An ssh agent for `RUN --mount=type=ssh,id=ID`: `default` is
    /// $SSH_AUTH_SOCK; `ID=SOCKET` an agent socket; `ID=KEY[,KEY]` private
    /// key files, served by a private ssh-agent for the build
    /// (openssh-client; a key with a passphrase: add it to your agent and
    /// pass `default`). BuildKit only.
    #[arg(long = "ssh", value_name = "default|ID[=SOCKET|KEY[,KEY]]")]
    #[arg(help_heading = heading::BUILD)]
    pub ssh: Vec<String>,
    /// Do not use the build cache.
    #[arg(long)]
    #[arg(help_heading = heading::BUILD)]
    pub no_cache: bool,
    /// Always pull newer base images.
    #[arg(long)]
    #[arg(help_heading = heading::BUILD)]
    pub pull: bool,
    /// With --builder classic: upload the whole context as `docker build`
    /// does, not the minimal one (BuildKit asks for what it reads itself).
    #[arg(long)]
    #[arg(help_heading = heading::BUILD)]
    pub full: bool,
    /// Compression of the classic builder's upload.
    #[arg(long, value_enum, default_value_t = CompressArg::Auto)]
    #[arg(help_heading = heading::BUILD)]
    pub compress: CompressArg,
    /// One JSON event per line on stdout.
    #[arg(long)]
    #[arg(help_heading = heading::OUTPUT)]
    pub json: bool,
    /// After the build, print `size`'s report of the image: layers by
    /// Dockerfile line and the waste (with --push, read from the
    /// registry, with the compressed sizes as pushed; with --json, one
    /// `size` event).
    #[arg(long, conflicts_with_all = ["all", "affected"])]
    #[arg(help_heading = heading::OUTPUT)]
    pub size: bool,
    /// Push every tag after the build.
    #[arg(long)]
    #[arg(help_heading = heading::REGISTRY)]
    pub push: bool,
    /// Push to this HOST:PORT instead of the tag's registry, keeping its
    /// identity for credentials (env REGGIE_REGISTRY_ENDPOINT).
    #[arg(long, value_name = "HOST:PORT")]
    #[arg(help_heading = heading::REGISTRY)]
    pub registry_endpoint: Option<String>,
    /// Create missing ECR repositories before pushing.
    #[arg(long)]
    #[arg(help_heading = heading::REGISTRY)]
    pub create_repo: bool,
    /// Registry user (with --password-stdin).
    #[arg(long)]
    #[arg(help_heading = heading::REGISTRY)]
    pub username: Option<String>,
    /// Read the registry password from stdin.
    #[arg(long)]
    #[arg(help_heading = heading::REGISTRY)]
    pub password_stdin: bool,
    /// Skip the build when an image built from the same context,
    /// Dockerfile, target, build args and platform exists: in the daemon,
    /// or (with --push) under the first tag in the registry.
    #[arg(long)]
    #[arg(help_heading = heading::REGISTRY)]
    pub skip_if_exists: bool,
    /// Build on this BuildKit engine through its Control API instead of
    /// the Docker daemon: a buildkitd (on Kubernetes, a hosted builder)
    /// pushes the image itself (--push); a Docker daemon's embedded
    /// BuildKit stores it in that daemon. Repeat it for a pool of
    /// builders: each image goes to its own one (the same from run to
    /// run), or to the least-loaded when that one is busy or down.
    #[arg(
        long,
        env = "BUILDKIT_HOST",
        value_name = "tcp://HOST:PORT|unix://PATH"
    )]
    #[arg(help_heading = heading::REMOTE)]
    pub buildkit_addr: Vec<String>,
    /// The CA that signed the builder's certificate (TLS to --buildkit-addr).
    #[arg(long, value_name = "PATH", requires = "buildkit_addr")]
    #[arg(help_heading = heading::REMOTE)]
    pub buildkit_ca: Option<std::path::PathBuf>,
    /// The client certificate for mutual TLS with the builder.
    #[arg(long, value_name = "PATH", requires_all = ["buildkit_addr", "buildkit_key"])]
    #[arg(help_heading = heading::REMOTE)]
    pub buildkit_cert: Option<std::path::PathBuf>,
    /// The client certificate's key.
    #[arg(long, value_name = "PATH", requires_all = ["buildkit_addr", "buildkit_cert"])]
    #[arg(help_heading = heading::REMOTE)]
    pub buildkit_key: Option<std::path::PathBuf>,
    /// The name the builder's certificate carries, when not the host of
    /// --buildkit-addr.
    #[arg(long, value_name = "NAME", requires = "buildkit_ca")]
    #[arg(help_heading = heading::REMOTE)]
    pub buildkit_server_name: Option<String>,
    /// Fail when the daemon reads nothing of the upload for this many
    /// seconds (a stalled daemon or connection); progress is reported as
    /// stalled before that.
    #[arg(
        long,
        value_name = "SECONDS",
        env = "REGGIE_IDLE_TIMEOUT",
        default_value_t = 300,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    #[arg(help_heading = heading::BUILD)]
    pub idle_timeout: u64,
    /// Build every image of reggie-build.toml (tags from its templates).
    #[arg(long, conflicts_with_all = ["affected", "tags", "file"])]
    #[arg(help_heading = heading::MANY)]
    pub all: bool,
    /// Build the images of reggie-build.toml that a git change affects
    /// (as `reggie-build affected` decides), tags from its templates.
    #[arg(long, conflicts_with_all = ["tags", "file"])]
    #[arg(help_heading = heading::MANY)]
    pub affected: bool,
    /// With --affected: the revision to compare with (default HEAD~1).
    #[arg(long, value_name = "REF", requires = "affected")]
    #[arg(help_heading = heading::MANY)]
    pub base: Option<String>,
    /// With --affected: the revision to check (default HEAD).
    #[arg(
        long,
        value_name = "REF",
        requires = "affected",
        conflicts_with = "worktree"
    )]
    #[arg(help_heading = heading::MANY)]
    pub head: Option<String>,
    /// With --affected: check the work tree as it is instead of --head.
    #[arg(long, requires = "affected")]
    #[arg(help_heading = heading::MANY)]
    pub worktree: bool,
    /// With --all or --affected: the config file (default:
    /// reggie-build.toml here or above, up to the repository root).
    #[arg(long, value_name = "FILE")]
    #[arg(help_heading = heading::MANY)]
    pub config: Option<std::path::PathBuf>,
    /// With --all or --affected: images built at the same time.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 2,
        value_parser = clap::value_parser!(u64).range(1..=64)
    )]
    #[arg(help_heading = heading::MANY)]
    pub jobs: u64,
}
