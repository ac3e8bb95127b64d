//! Sizes for people, as Docker prints them. A leaf: every stage and both
//! binaries print sizes through it.
//!
//! ```
//! assert_eq!(reggie_build::units::humanize(1_400_000_000), "1.40 GB");
//! ```

/// Bytes in decimal units (`1.40 GB`), as Docker prints sizes.
pub fn humanize(bytes: u64) -> String {
    humansize::format_size(bytes, humansize::DECIMAL)
}
