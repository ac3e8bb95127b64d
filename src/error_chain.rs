//! An error and its causes in one sentence, the way every message of the
//! tool joins them: `what failed: why: the cause below`, each cause said
//! once (a cause already quoted in the text above it is not repeated).
//! A leaf.

use std::error::Error;

/// `e` and its sources, joined by `: `.
pub fn join(e: &dyn Error) -> String {
    join_after(e.to_string(), e.source())
}

/// `head` and then `source` and its own sources, joined by `: `, for an
/// error whose own text is not its `Display` (a gRPC status's message).
pub fn join_after(head: String, source: Option<&dyn Error>) -> String {
    let mut out = head;
    let mut source = source;
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct E(&'static str, Option<Box<E>>);
    impl std::fmt::Display for E {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl Error for E {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    #[test]
    fn causes_joined_once() {
        let e = E(
            "pushing a: connection refused",
            Some(Box::new(E(
                "connection refused",
                Some(Box::new(E("os error 111", None))),
            ))),
        );
        assert_eq!(join(&e), "pushing a: connection refused: os error 111");
        assert_eq!(join_after("status".into(), None), "status");
    }
}
