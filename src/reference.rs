//! Image references, `[registry/]repository[:tag][@digest]`, read as the
//! docker CLI reads them: the grammar of distribution/reference and its
//! normalisation (`ubuntu` is `docker.io/library/ubuntu`,
//! `index.docker.io/x` is `docker.io/library/x`), and the names a
//! registry goes by for credentials and its API. A leaf: it depends on
//! nothing of this crate but [`crate::text`], and `publish`, `ship`,
//! `auth` and `plan` read references only through it.
//!
//! ```
//! use reggie_build::reference::Reference;
//!
//! let r = Reference::parse("ubuntu:24.04")?;
//! assert_eq!((r.registry.as_str(), r.repository.as_str()), ("docker.io", "library/ubuntu"));
//! assert_eq!(r.tag_or_latest(), "24.04");
//!
//! let r = Reference::parse("localhost:5000/team/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")?;
//! assert_eq!(r.registry, "localhost:5000");
//! assert_eq!(r.tag_or_latest(), "latest");
//! assert!(r.digest.is_some());
//!
//! assert!(Reference::parse("team/App").is_err()); // repositories are lowercase
//! # Ok::<(), reggie_build::reference::ReferenceError>(())
//! ```

use crate::text::excerpt;

/// Docker Hub's name in references (`docker.io/library/ubuntu`).
pub const DOCKER_HUB: &str = "docker.io";
/// Docker Hub's legacy name (the "index"), normalised to [`DOCKER_HUB`].
const LEGACY_HUB: &str = "index.docker.io";
/// The host of Docker Hub's registry API, and the name BuildKit asks its
/// session's credentials for.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";
/// The key docker's config (and the classic builder's
/// `X-Registry-Config`) stores Docker Hub's credentials under.
pub const DOCKER_HUB_INDEX: &str = "https://index.docker.io/v1/";

/// A repository path and domain together are at most this long.
const NAME_MAX: usize = 255;
/// A tag is at most this long.
const TAG_MAX: usize = 128;

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The registry: [`DOCKER_HUB`] for Docker Hub (however written), else
    /// `host[:port]` as written.
    pub registry: String,
    /// The repository in the registry (`library/ubuntu` for `ubuntu`).
    pub repository: String,
    /// The tag, when one is written.
    pub tag: Option<String>,
    /// The digest (`sha256:...`), when one is written.
    pub digest: Option<String>,
}

/// Why a string is not an image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid image reference {input}: {reason}")]
pub struct ReferenceError {
    /// The reference, as a short escaped excerpt.
    pub input: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl Reference {
    /// Parses and normalises `s` as docker does (`ParseNormalizedNamed`).
    pub fn parse(s: &str) -> Result<Reference, ReferenceError> {
        let fail = |reason| ReferenceError {
            input: excerpt(s),
            reason,
        };
        if s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(fail("64 hexadecimal digits are an image id, not a name"));
        }
        let (registry, rest) = split_registry(s);
        let rest: &str = &rest;
        let (before_digest, digest) = match rest.split_once('@') {
            Some((name, digest)) => (name, Some(digest)),
            None => (rest, None),
        };
        let (path, tag) = match before_digest.split_once(':') {
            Some((path, tag)) => (path, Some(tag)),
            None => (before_digest, None),
        };
        if path.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(fail("the repository name must be lowercase"));
        }
        if !valid_domain(registry) {
            return Err(fail(
                "the registry is not a host name or address with an optional :port",
            ));
        }
        if !path.split('/').all(valid_path_component) {
            return Err(fail("the repository is not lowercase letters and digits in /-separated components, joined by `.`, `_`, `__` or dashes"));
        }
        if registry.len() + 1 + path.len() > NAME_MAX {
            return Err(fail("the name is longer than 255 characters"));
        }
        if let Some(tag) = tag {
            if !valid_tag(tag) {
                return Err(fail("the tag is not 1 to 128 letters, digits, `_`, `.` or `-`, not starting with `.` or `-`"));
            }
        }
        if let Some(digest) = digest {
            if !valid_digest(digest) {
                return Err(fail(
                    "the digest is not ALGORITHM:HEX of sha256, sha384 or sha512",
                ));
            }
        }
        Ok(Reference {
            registry: match registry {
                LEGACY_HUB => DOCKER_HUB.to_string(),
                other => other.to_string(),
            },
            repository: path.to_string(),
            tag: tag.map(str::to_string),
            digest: digest.map(str::to_string),
        })
    }

    /// The tag, `latest` when none is written.
    pub fn tag_or_latest(&self) -> &str {
        self.tag.as_deref().unwrap_or("latest")
    }
}

/// The registry part of a reference and the rest, as docker splits them:
/// the first `/`-separated component is a registry when it is
/// `localhost`, holds a `.` or a `:`, or has an uppercase letter (which
/// no repository has); else the reference is Docker Hub's, where a
/// single-component repository is an official image's (`library/`).
fn split_registry(s: &str) -> (&str, std::borrow::Cow<'_, str>) {
    let (registry, rest) = match s.split_once('/') {
        Some((first, rest))
            if first == "localhost"
                || first.contains(['.', ':'])
                || first.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            (first, rest)
        }
        _ => (DOCKER_HUB, s),
    };
    if matches!(registry, DOCKER_HUB | LEGACY_HUB) && !rest.contains('/') {
        return (registry, format!("library/{rest}").into());
    }
    (registry, rest.into())
}

/// `host[:port]`: a domain name (components of letters, digits and
/// inner dashes, joined by `.`), or a bracketed IPv6 address.
fn valid_domain(domain: &str) -> bool {
    let (host, port) = match domain.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((addr, rest)) => {
                if addr.is_empty() || !addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
                    return false;
                }
                (None, rest)
            }
            None => return false,
        },
        None => match domain.find(':') {
            Some(i) => (Some(&domain[..i]), &domain[i..]),
            None => (Some(domain), ""),
        },
    };
    let port_ok = port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let host_ok = host.is_none_or(|h| {
        h.split('.').all(|c| {
            let b = c.as_bytes();
            !b.is_empty()
                && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
                && b[0] != b'-'
                && b[b.len() - 1] != b'-'
        })
    });
    port_ok && host_ok
}

/// Lowercase letters and digits, runs of them joined by one separator:
/// `.`, `_`, `__`, or any number of `-`.
fn valid_path_component(c: &str) -> bool {
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let b = c.as_bytes();
    if b.is_empty() || !alnum(&b[0]) || !alnum(&b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(&b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(&b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// A word character, then up to 127 word characters, `.` or `-`.
fn valid_tag(tag: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= TAG_MAX
        && word(b[0])
        && b.iter().all(|&x| word(x) || x == b'.' || x == b'-')
}

/// `ALGORITHM:HEX` with a registered algorithm and its digest length in
/// lowercase hexadecimal (as go-digest validates).
fn valid_digest(digest: &str) -> bool {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return false;
    };
    let len = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return false,
    };
    hex.len() == len && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Splits `name[:tag]` into repository and tag (a `:` before the last `/`
/// is a registry port), `latest` when there is no tag: the two
/// parameters the daemon's image API takes.
pub fn split_tag(reference: &str) -> (&str, &str) {
    let last_slash = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[last_slash..].rfind(':') {
        Some(i) => (
            &reference[..last_slash + i],
            &reference[last_slash + i + 1..],
        ),
        None => (reference, "latest"),
    }
}

/// The names a registry's credentials may be stored under in docker's
/// config (`auths`, `credHelpers`), the likeliest first.
pub fn credential_keys(registry: &str) -> Vec<String> {
    if registry == DOCKER_HUB || registry == LEGACY_HUB || registry.is_empty() {
        return vec![
            DOCKER_HUB_INDEX.into(),
            DOCKER_HUB.into(),
            LEGACY_HUB.into(),
        ];
    }
    vec![registry.to_string(), format!("https://{registry}")]
}

/// The host a registry's API answers on ([`DOCKER_HUB_API`] for Docker
/// Hub).
pub fn api_host(registry: &str) -> &str {
    match registry {
        DOCKER_HUB | LEGACY_HUB => DOCKER_HUB_API,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c";

    #[test]
    fn tags_split() {
        assert_eq!(split_tag("a/b:1"), ("a/b", "1"));
        assert_eq!(
            split_tag("localhost:5000/a"),
            ("localhost:5000/a", "latest")
        );
        assert_eq!(split_tag("localhost:5000/a:v2"), ("localhost:5000/a", "v2"));
    }

    /// distribution/reference's normalize_test.go: TestValidateReferenceName
    /// and TestValidateRemoteName.
    #[test]
    fn names_valid_and_invalid_as_distribution_reads_them() {
        let long_namespace = format!("{}/docker", "this_is_not_a_valid_namespace".repeat(9));
        for valid in [
            "docker/docker",
            "library/debian",
            "debian",
            "docker.io/docker/docker",
            "docker.io/library/debian",
            "docker.io/debian",
            "index.docker.io/docker/docker",
            "index.docker.io/library/debian",
            "index.docker.io/debian",
            "127.0.0.1:5000/docker/docker",
            "127.0.0.1:5000/library/debian",
            "127.0.0.1:5000/debian",
            "192.168.0.1",
            "192.168.0.1:80",
            "192.168.0.1:8/debian",
            "192.168.0.2:25000/debian",
            "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev",
            "[fc00::1]:5000/docker",
            "[fc00::1]:5000/docker/docker",
            "[fc00:1:2:3:4:5:6:7]:5000/library/debian",
            "docker.io/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
            "Docker/docker",
            "DOCKER/docker",
            "docker-rules/docker",
            "docker---rules/docker",
            "doc/docker",
            "d/docker",
            "jess/t",
            "dock__er/docker",
        ] {
            assert!(Reference::parse(valid).is_ok(), "{valid} should be valid");
        }
        for invalid in [
            "https://github.com/docker/docker",
            "docker/Docker",
            "-docker",
            "-docker/docker",
            "-docker.io/docker/docker",
            "docker///docker",
            "docker.io/docker/Docker",
            "docker.io/docker///docker",
            "[fc00::1]",
            "[fc00::1]:5000",
            "fc00::1:5000/debian",
            "[fe80::1%eth0]:5000/debian",
            "[2001:db8:3:4::192.0.2.33]:5000/debian",
            "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
            "docker-/docker",
            "-docker-/docker",
            "____/____",
            "_docker/_docker",
            "dock..er/docker",
            "dock_.er/docker",
            "dock-.er/docker",
            "docker/",
            long_namespace.as_str(),
            "",
            "app:",
            "app:-x",
            "app@sha256:abc",
            "app@md5:d41d8cd98f00b204e9800998ecf8427e",
        ] {
            assert!(
                Reference::parse(invalid).is_err(),
                "{invalid} should be invalid"
            );
        }
    }

    /// TestParseRepositoryInfo and TestNormalizedSplitHostname: the
    /// registry and repository each form of a name normalises to.
    #[test]
    fn names_normalise_as_docker_does() {
        for (input, registry, repository) in [
            ("fooo/bar", "docker.io", "fooo/bar"),
            ("docker.io/fooo/bar", "docker.io", "fooo/bar"),
            ("index.docker.io/fooo/bar", "docker.io", "fooo/bar"),
            ("ubuntu", "docker.io", "library/ubuntu"),
            ("library/ubuntu", "docker.io", "library/ubuntu"),
            ("docker.io/library/ubuntu", "docker.io", "library/ubuntu"),
            ("nonlibrary/ubuntu", "docker.io", "nonlibrary/ubuntu"),
            ("other/library", "docker.io", "other/library"),
            (
                "127.0.0.1:8000/private/moonbase",
                "127.0.0.1:8000",
                "private/moonbase",
            ),
            (
                "127.0.0.1:8000/privatebase",
                "127.0.0.1:8000",
                "privatebase",
            ),
            (
                "example.com/private/moonbase",
                "example.com",
                "private/moonbase",
            ),
            (
                "example.com:8000/privatebasee",
                "example.com:8000",
                "privatebasee",
            ),
            (
                "index.docker.io/library/ubuntu-12.04-base",
                "docker.io",
                "library/ubuntu-12.04-base",
            ),
            ("docker.io/foo", "docker.io", "library/foo"),
            ("library/foo/bar", "docker.io", "library/foo/bar"),
            ("store/foo/bar", "docker.io", "store/foo/bar"),
            ("Foo/bar", "Foo", "bar"),
            ("FOO/bar", "FOO", "bar"),
            ("test.com/foo", "test.com", "foo"),
            ("test_com/foo", "docker.io", "test_com/foo"),
            ("test-com:8080/foo", "test-com:8080", "foo"),
            ("xn--n3h.com:18080/foo", "xn--n3h.com:18080", "foo"),
            ("localhost/foo", "localhost", "foo"),
            (
                "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/app:v1",
                "123456789012.dkr.ecr.us-east-1.amazonaws.com",
                "team/app",
            ),
        ] {
            let r = Reference::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(
                (r.registry.as_str(), r.repository.as_str()),
                (registry, repository),
                "{input}"
            );
        }
    }

    /// TestParseReferenceWithTagAndDigest and TestParseAnyReference: tags,
    /// digests and both.
    #[test]
    fn tags_and_digests() {
        let both = Reference::parse(&format!("busybox:latest@{SHA}")).unwrap();
        assert_eq!(both.repository, "library/busybox");
        assert_eq!(both.tag.as_deref(), Some("latest"));
        assert_eq!(both.digest.as_deref(), Some(SHA));
        let digested = Reference::parse(&format!("dmcgowan/myapp@{SHA}")).unwrap();
        assert_eq!(digested.tag, None);
        assert_eq!(digested.tag_or_latest(), "latest");
        let tagged = Reference::parse("localhost:5000/a:v2").unwrap();
        assert_eq!(
            (tagged.registry.as_str(), tagged.tag_or_latest()),
            ("localhost:5000", "v2")
        );
        assert!(Reference::parse(&format!("app:{}", "t".repeat(128))).is_ok());
        assert!(Reference::parse(&format!("app:{}", "t".repeat(129))).is_err());
        let err = Reference::parse("Team/App").unwrap_err().to_string();
        assert!(err.contains("must be lowercase"), "{err}");
    }

    #[test]
    fn credential_keys_and_api_hosts() {
        for hub in ["docker.io", "index.docker.io", ""] {
            assert_eq!(
                credential_keys(hub),
                [
                    "https://index.docker.io/v1/",
                    "docker.io",
                    "index.docker.io"
                ]
            );
        }
        assert_eq!(
            credential_keys("127.0.0.1:5000"),
            ["127.0.0.1:5000", "https://127.0.0.1:5000"]
        );
        assert_eq!(api_host("docker.io"), "registry-1.docker.io");
        assert_eq!(api_host("127.0.0.1:5000"), "127.0.0.1:5000");
    }
}
