//! reggie-build: a Docker build context optimizer and image builder for
//! monorepos.
//!
//! The library is the pipeline; the `reggie-build` binary is a thin layer
//! over it:
//!
//! 1. [`context`]: which files Docker would send for a build (its exact
//!    `.dockerignore` semantics, BuildKit's or the classic builder's), and
//!    the tar stream that carries them.

pub mod context;
