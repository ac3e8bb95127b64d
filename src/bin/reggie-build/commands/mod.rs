//! One module per command: its arguments, and a `run` that builds the
//! library's options from them, calls the stage (or `ops`), and prints.

pub mod affected;
pub mod analyze;
pub mod check;
pub mod context;
pub mod digest;
pub mod discover;
pub mod explain;
pub mod image;
pub mod ls;
pub mod size;
