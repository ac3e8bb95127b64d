//! `--secret`, parsed as the docker CLI parses it (`--ssh` is in `ssh`).

use std::collections::HashMap;
use std::path::PathBuf;

use super::session::SecretValues;

/// Errors in `--secret`.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("--secret {spec:?}: {why}; write --secret id=ID,src=PATH or --secret id=ID,env=VAR")]
    Spec { spec: String, why: String },
    #[error("--secret id={id}: {source}")]
    Read {
        id: String,
        source: crate::input::InputError,
    },
    #[error("--secret id={id}: the environment variable {var} is not set")]
    Env { id: String, var: String },
}

/// Reads every `--secret` value (`id=ID,src=PATH`, `id=ID,env=VAR`,
/// optionally `type=file|env`, `source=` for `src=`; `id=ID` alone reads
/// the variable ID as buildx does).
pub fn parse_secrets(specs: &[String]) -> Result<SecretValues, SecretError> {
    let mut out = HashMap::new();
    for spec in specs {
        let bad = |why: &str| SecretError::Spec {
            // The spec names a file or a variable, never a value.
            spec: spec.chars().take(80).collect(),
            why: why.into(),
        };
        let (mut id, mut src, mut env, mut kind) = (None, None, None, None);
        // One CSV record, as buildx reads it (a quoted field may hold a
        // comma).
        for field in crate::csv::fields(spec).map_err(&bad)? {
            let (k, v) = field
                .split_once('=')
                .ok_or_else(|| bad(&format!("{field:?} is not KEY=VALUE")))?;
            match k.trim().to_ascii_lowercase().as_str() {
                "id" => id = Some(v.to_string()),
                "src" | "source" => src = Some(v.to_string()),
                "env" => env = Some(v.to_string()),
                "type" if v == "file" || v == "env" => kind = Some(v.to_string()),
                "type" => return Err(bad("type must be file or env")),
                other => return Err(bad(&format!("unknown key {other:?}"))),
            }
        }
        let id = id.filter(|i| !i.is_empty()).ok_or_else(|| bad("no id"))?;
        if src.is_some() && env.is_some() {
            return Err(bad("give src or env, not both"));
        }
        let value = match (src, env, kind.as_deref()) {
            (Some(path), None, None | Some("file")) => {
                let path = PathBuf::from(path);
                // Bounded by BuildKit's own limit, never a FIFO or device;
                // a file inside the repository is read only inside it.
                crate::input::read_given(&path, crate::input::SECRET_LIMIT).map_err(|source| {
                    SecretError::Read {
                        id: id.clone(),
                        source,
                    }
                })?
            }
            (Some(var), None, Some("env")) | (None, Some(var), _) => std::env::var_os(&var)
                .map(|v| v.into_encoded_bytes())
                .ok_or(SecretError::Env {
                    id: id.clone(),
                    var,
                })?,
            (None, None, _) => std::env::var_os(&id)
                .map(|v| v.into_encoded_bytes())
                .ok_or(SecretError::Env {
                    id: id.clone(),
                    var: id.clone(),
                })?,
            _ => return Err(bad("give src or env")),
        };
        out.insert(id, value);
    }
    Ok(SecretValues(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_specs() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tok");
        std::fs::write(&file, b"file-value").unwrap();
        std::env::set_var("REGGIE_TEST_SECRET_VAR", "env-value");
        let specs = vec![
            format!("id=a,src={}", file.display()),
            format!("type=file,id=b,source={}", file.display()),
            "id=c,env=REGGIE_TEST_SECRET_VAR".to_string(),
            "id=REGGIE_TEST_SECRET_VAR".to_string(),
        ];
        let got = parse_secrets(&specs).unwrap();
        assert_eq!(got.0["a"], b"file-value");
        assert_eq!(got.0["b"], b"file-value");
        assert_eq!(got.0["c"], b"env-value");
        assert_eq!(got.0["REGGIE_TEST_SECRET_VAR"], b"env-value");
        let shown = format!("{got:?}");
        assert!(
            !shown.contains("value\"") && !shown.contains("file-value"),
            "{shown}"
        );
        for bad in [
            "src=/x",
            "id=a,src=/x,env=Y",
            "id=a,what=1",
            "id=a,type=ssh",
            "noequals",
        ] {
            assert!(parse_secrets(&[bad.to_string()]).is_err(), "{bad}");
        }
        let err = parse_secrets(&["id=x,src=/nonexistent/reggie".to_string()]).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/reggie"), "{err}");
    }
}
