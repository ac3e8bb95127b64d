//! One line of comma-separated `key=value` fields, as Go's
//! `encoding/csv` reads it: what BuildKit reads `RUN --mount` with, and
//! buildx `--output`, `--cache-from`, `--cache-to` and `--secret`. A leaf.

/// Splits one record as Go's `encoding/csv` reads it (comma
/// separated; a field that starts with `"` is quoted, `""` in it is a
/// quote; a bare quote elsewhere is an error).
pub fn fields(s: &str) -> Result<Vec<String>, &'static str> {
    if s.contains(['\n', '\r']) {
        return Err("a line break is not allowed");
    }
    let mut fields = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err("a quoted field is not closed (missing \")"),
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                }
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => fields.push(field),
                Some(_) => {
                    return Err(
                        "text after a closing quote: quote the whole field, e.g. \"dest=a,b\"",
                    )
                }
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field);
                        return Ok(fields);
                    }
                    Some(',') => {
                        fields.push(field);
                        break;
                    }
                    Some('"') => {
                        return Err("a quote inside an unquoted field: quote the whole field, e.g. \"dest=a,b\"")
                    }
                    Some(c) => field.push(c),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_as_go_reads_them() {
        assert_eq!(fields("a=1,b=2").unwrap(), ["a=1", "b=2"]);
        assert_eq!(fields("").unwrap(), [""]);
        assert_eq!(fields("a,,b").unwrap(), ["a", "", "b"]);
        assert_eq!(fields("\"src=a,b\",c").unwrap(), ["src=a,b", "c"]);
        assert_eq!(fields("\"say \"\"hi\"\"\"").unwrap(), ["say \"hi\""]);
        assert!(fields("\"open").is_err());
        assert!(fields("\"a\"b").is_err());
        assert!(fields("a\"b").is_err());
        assert!(fields("a\nb").is_err());
    }
}
