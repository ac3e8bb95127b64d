//! Building an image through the Docker daemon.
//!
//! BuildKit (the default) builds through a session, as `DOCKER_BUILDKIT=1
//! docker build` does: `session` opens `POST /session` (upgraded to
//! h2c, the daemon calling back into gRPC services served here) and
//! `/build` runs with `remote=client-session`. BuildKit then pulls the
//! named directories `context` (the context root) and `dockerfile` (the
//! Dockerfile's own directory, so a Dockerfile outside the context never
//! rides inside it) over `filesync`, asking only for the paths the
//! Dockerfile reads (its followpaths), excluding what the ignore file its
//! frontend read excludes, and requesting only the files that changed
//! since its copy of the last transfer under the docker CLI's shared key.
//! The same session answers registry credentials (private base images)
//! and `--secret`/`--ssh` (`secrets`, `ssh`). With `--output` the result is
//! not stored as an image: BuildKit sends its files back through the
//! session's `FileSend` (`filesend`); [`outputs`] maps `--output`,
//! `--cache-from`/`--cache-to` and `--platform` onto what the daemon's
//! BuildKit can do, and names what it cannot.
//!
//! With `--buildkit-addr` the same session reaches a BuildKit engine
//! through its Control API instead (`control` over `grpc_io`): a
//! standalone buildkitd, or a daemon's embedded BuildKit.
//!
//! The classic builder (`version=1`) gets the context (minimal or whole)
//! streamed as the body of `/build` (`upload`); it applies the root
//! `.dockerignore` it finds in the upload again, which
//! `upload::place_dockerfile` accounts for.
//!
//! Progress arrives as events (BuildKit's decoded by `buildkit`); an
//! error inside the 200 response stream ends the build with the failing
//! step. No label changes with the clock (`prepare`), so a rebuild of
//! unchanged inputs is fully cached and gives the same image.

//! # Layout
//!
//! This file is the module's face: what `ops` and `publish` use is
//! re-exported here, and [`build_prepared`] picks the daemon's path. The
//! children use one another and the crate's leaves, never this file.
//!
//! - `spec`, `event`, `error`: what to build and what was built, what
//!   happens, what failed.
//! - `prepare`: the survey, labels, build key and session setup every
//!   path shares.
//! - `classic` (tar upload, `upload`) and `daemon_session` (BuildKit
//!   through the daemon) read the daemon's response through `stream`;
//!   `control` (over `grpc_io`) builds on a BuildKit engine's Control
//!   API. `daemon`, `endpoint`: reaching the daemon; `skip`: images
//!   in it.
//! - `session`, `filesync`, `filesend`, `secrets`, `ssh`: the BuildKit
//!   session's services; `buildkit`: its progress; `outputs`: `--output`,
//!   `--cache-*` and `--platform`.

pub(crate) mod buildkit;
mod classic;
mod content;
pub(crate) mod control;
pub(crate) mod daemon;
mod daemon_session;
pub(crate) mod endpoint;
pub(crate) mod error;
mod event;
pub(crate) mod filesend;
pub(crate) mod filesync;
pub(crate) mod grpc_io;
pub mod outputs;
mod prepare;
pub(crate) mod secrets;
pub(crate) mod session;
pub(crate) mod skip;
mod spec;
pub(crate) mod ssh;
mod stream;
pub(crate) mod upload;

use crate::context::Builder;

pub use control::Remote;
pub use daemon::{connect, Daemon};
pub use endpoint::context_dir_name;
pub use error::{DaemonError, ShipError};
pub use event::Event;
pub use grpc_io::TlsOptions;
pub(crate) use prepare::{prepare_surveyed, survey, Prepared, Surveyed};
pub use prepare::{BUILD_KEY_LABEL, CONTEXT_DIGEST_LABEL};
pub use secrets::parse_secrets;
pub use session::SecretValues;
pub(crate) use spec::BuildSpec;
pub use spec::Built;
pub use ssh::{parse_ssh, SshAgents, SshError};
pub(crate) use upload::Compression;

/// Runs a build [`prepare_surveyed`] prepared on the daemon: with
/// BuildKit through a session, with the classic builder as a tar upload.
pub(crate) async fn build_prepared(
    daemon: &Daemon,
    spec: &BuildSpec,
    prepared: Prepared,
    on_event: &mut (dyn FnMut(Event) + Send),
) -> Result<Built, ShipError> {
    match spec.context.builder() {
        Builder::BuildKit => daemon_session::build(daemon, spec, prepared, on_event).await,
        Builder::Classic => classic::build(daemon, spec, prepared, on_event).await,
    }
}
