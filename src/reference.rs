//! Image references (`[registry/]repository[:tag][@digest]`).

/// Splits `name[:tag]` into repository and tag (a `:` before the last `/`
/// is a registry port).
pub(crate) fn split_tag(reference: &str) -> (&str, &str) {
    let last_slash = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[last_slash..].rfind(':') {
        Some(i) => (
            &reference[..last_slash + i],
            &reference[last_slash + i + 1..],
        ),
        None => (reference, "latest"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_split() {
        assert_eq!(split_tag("a/b:1"), ("a/b", "1"));
        assert_eq!(
            split_tag("localhost:5000/a"),
            ("localhost:5000/a", "latest")
        );
        assert_eq!(split_tag("localhost:5000/a:v2"), ("localhost:5000/a", "v2"));
    }
}
