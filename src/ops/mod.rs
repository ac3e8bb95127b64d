//! One entry point per command that runs several stages, as cargo's
//! `ops`: the binaries parse arguments into options, call one function
//! here, and print the events and the outcome it returns.

pub mod image;
pub mod images;
pub mod size;

pub use image::{image, CompressionChoice, ImageError, ImageOptions, ImageOutcome};
pub use images::images;
