//! Docker's `.dockerignore` semantics, exactly.
//!
//! * [`file`] reads an ignore file into normalised patterns with line
//!   numbers (`ignorefile.ReadAll`).
//! * `pattern` compiles one pattern (`patternmatcher.Pattern`).
//! * `matcher` evaluates the ordered list with parent results carried
//!   down the walk (`PatternMatcher.MatchesUsingParentResults`).
//! * `gopath` holds the Go library behaviour both depend on
//!   (`path.Clean`, `filepath.Match` syntax).

pub(crate) mod file;
pub(crate) mod gopath;
mod index;
pub(crate) mod matcher;
pub(crate) mod pattern;

pub use file::{read_patterns, IgnoreLine, ReadError};
pub use matcher::{CompileError, Decision, MatchInfo, Matcher, Rule};
pub use pattern::{MatchKind, Pattern, PatternError};
