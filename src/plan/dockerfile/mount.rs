//! `RUN --mount=...` as BuildKit reads it: the flag's value (its own
//! quotes already removed by the instruction parser) is one CSV record of
//! `key=value` fields ([`crate::csv`]), keys case-insensitive.

/// What of a mount decides what the step reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// `type`, lowercased (`bind` when absent).
    pub kind: String,
    /// `from`: the stage or image it mounts, instead of the context.
    pub from: Option<String>,
    /// `source` (or `src`): the path mounted.
    pub source: Option<String>,
}

impl Mount {
    /// Parses one `--mount` value; the error is why it is not CSV.
    pub fn parse(value: &str) -> Result<Mount, &'static str> {
        let mut mount = Mount {
            kind: "bind".to_string(),
            from: None,
            source: None,
        };
        for field in crate::csv::fields(value)? {
            let (k, v) = match field.split_once('=') {
                Some((k, v)) => (k.trim().to_ascii_lowercase(), v.to_string()),
                None => (field.trim().to_ascii_lowercase(), String::new()),
            };
            match k.as_str() {
                "type" => mount.kind = v.to_ascii_lowercase(),
                "from" => mount.from = Some(v),
                "source" | "src" => mount.source = Some(v),
                _ => {}
            }
        }
        Ok(mount)
    }

    /// Whether it mounts from the build context (a bind mount without
    /// `from`).
    pub fn reads_context(&self) -> bool {
        self.kind == "bind" && self.from.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_as_buildkit_reads_them() {
        let m = Mount::parse("type=bind,\"source=a,from=b\",target=/t").unwrap();
        assert_eq!(
            (m.source.as_deref(), m.from.as_deref()),
            (Some("a,from=b"), None)
        );
        assert!(m.reads_context());
        let m = Mount::parse("TYPE=Cache,target=/c").unwrap();
        assert_eq!(m.kind, "cache");
        assert!(!m.reads_context());
        let m = Mount::parse("\"from=builder\",src=/out,target=/in").unwrap();
        assert_eq!(
            (m.from.as_deref(), m.source.as_deref()),
            (Some("builder"), Some("/out"))
        );
        assert!(!m.reads_context());
        assert!(Mount::parse("target=/t").unwrap().reads_context());
        assert!(Mount::parse("type=bind,\"source=a").is_err());
    }
}
