//! What a build reports as it goes: the events `image` prints (plain,
//! live, or one JSON object a line with `--json`).

use serde::Serialize;

/// Something that happened, for progress output (`--json` prints these).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The context as surveyed before the upload.
    Context {
        /// The context digest (`sha256:...`).
        digest: String,
        /// Entries the upload holds (directories included).
        entries: u64,
        /// Bytes of file contents.
        content_bytes: u64,
        /// The Dockerfile, as shown to the user.
        dockerfile: String,
        /// `none` or `gzip`.
        compression: &'static str,
    },
    /// Bytes of the request body sent so far.
    Upload {
        /// Bytes sent.
        bytes: u64,
        /// Whether this is the last report of the upload.
        done: bool,
    },
    /// A Dockerfile step began (`Step 2/5 : COPY ...`, BuildKit's
    /// `[stage 2/5] COPY ...`).
    Step {
        /// 1-based step number.
        number: u32,
        /// Steps in the build (or stage, for BuildKit).
        total: u32,
        /// The instruction as the builder prints it.
        instruction: String,
        /// The stage, when BuildKit names it.
        #[serde(skip_serializing_if = "Option::is_none")]
        stage: Option<String>,
    },
    /// A BuildKit operation changed state (`started` for those that are
    /// not Dockerfile steps, then `done`, `cached` or `error`), numbered
    /// as `docker buildx build --progress=plain` numbers them.
    Vertex {
        /// The operation's number, in order of first appearance.
        index: u32,
        /// BuildKit's name for it.
        name: String,
        /// `started`, `done`, `cached` or `error`.
        status: &'static str,
        /// How long it took, once finished.
        #[serde(skip_serializing_if = "Option::is_none")]
        seconds: Option<f64>,
    },
    /// A line of build output.
    Log {
        /// The line, without its newline.
        line: String,
    },
    /// A warning from the builder or about the build.
    Warning {
        /// The warning.
        message: String,
    },
    /// The built image's id.
    ImageId {
        /// `sha256:...`.
        id: String,
    },
    /// A tag was applied to the built image.
    Tag {
        /// The tag.
        tag: String,
    },
    /// The build was skipped: an image built from the same inputs exists.
    Skip {
        /// Why it counts as the same build.
        reason: String,
        /// The existing image (id or reference).
        image: String,
    },
    /// Progress of a push.
    Push {
        /// The tag being pushed.
        tag: String,
        /// The daemon's status line (`Pushed`, `Layer already exists`...).
        status: String,
        /// The manifest digest, once the registry reports it.
        #[serde(skip_serializing_if = "Option::is_none")]
        digest: Option<String>,
    },
    /// The BuildKit builder this build runs on, when there are several
    /// (`--buildkit-addr` repeated, `[[builder]]`), and why that one.
    Builder {
        /// Its address.
        addr: String,
        /// `preferred` (the image's own builder, the same from run to
        /// run), or why another one: `busy` or `down`, with that builder.
        reason: String,
    },
    /// The end of the command, for `--json` readers.
    Result {
        /// Whether it succeeded.
        ok: bool,
        /// The image built or reused.
        #[serde(skip_serializing_if = "Option::is_none")]
        image_id: Option<String>,
        /// Why it failed.
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
}
