//! Reading images: what an image weighs, layer by layer, which Dockerfile
//! line made each layer, and which bytes are wasted (hidden by a later
//! layer, written twice, caches and toolchains left behind), with the fix.
//!
//! The stage streams each layer once ([`layer`]: a bounded tar reader
//! that keeps a compact path index, never file contents), from a file or
//! directory ([`source`]: `docker save` archives, OCI layouts) or, with
//! the `image` feature, from the daemon or a registry; joins the image's
//! history to the Dockerfile's instructions ([`attribute`]); applies the
//! layers in order and finds the waste ([`waste`]); and returns one
//! [`Report`] that the formats render.

pub mod attribute;
pub mod image;
pub mod layer;
pub mod overlay;
pub mod paths;
pub mod source;
pub mod tar;
