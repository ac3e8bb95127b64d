//! A minimal Registry HTTP API v2 client: reads a tag's manifest and its
//! image config, to see the labels of an image without pulling it.
//!
//! Auth is Basic with the push credentials, following a
//! `WWW-Authenticate: Bearer` challenge to the registry's token service
//! when it asks for one. Plain http for loopback hosts (as dockerd treats
//! 127.0.0.0/8 as an insecure registry), https with the system roots
//! otherwise. Errors never hold a credential.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, StatusCode, Uri};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::auth::Credentials;

/// Every manifest type the lookup understands.
pub const MANIFEST_ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";

const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_BODY: usize = 8 << 20;
const MAX_REDIRECTS: usize = 5;

type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// An image as the registry describes it.
#[derive(Debug, Clone)]
pub struct RemoteImage {
    /// The digest of the tag's manifest (an index's, when it is one).
    pub digest: Option<String>,
    /// `config.Labels` of the image config.
    pub labels: HashMap<String, String>,
}

/// A registry, with the credentials of one user.
#[derive(Clone)]
pub struct Registry {
    client: HttpClient,
    base: String,
    creds: Option<Credentials>,
    /// The Authorization header in use (Basic, or a Bearer token).
    authorization: Option<String>,
}

/// Whether `host[:port]` is a loopback address (or `localhost`).
pub fn is_loopback(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        match host.rsplit_once(':') {
            Some((h, port)) if !h.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => host,
        }
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn http_client() -> Result<HttpClient, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = match hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(provider.clone())
    {
        Ok(b) => b,
        Err(e) => {
            // No system roots: https fails, plain http still works.
            tracing::debug!("no system CA roots for registry lookups: {e}");
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("TLS setup: {e}"))?
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth();
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(config)
        }
    };
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(CONNECT_TIMEOUT));
    let connector = builder.https_or_http().enable_http1().wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

fn basic(creds: &Credentials) -> Option<String> {
    // An identity token is not a password: only a token service takes it.
    (creds.username != "<token>").then(|| {
        format!(
            "Basic {}",
            STANDARD.encode(format!("{}:{}", creds.username, creds.secret))
        )
    })
}

/// The parameters of a `WWW-Authenticate: Bearer k="v",...` challenge.
pub fn parse_bearer_challenge(header: &str) -> Option<HashMap<String, String>> {
    let rest = header.trim();
    let (scheme, rest) = rest.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut out = HashMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek().copied() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        out.insert(key.trim().to_ascii_lowercase(), value.trim().to_string());
    }
    out.contains_key("realm").then_some(out)
}

fn query_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A response, body read.
struct Response {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Registry {
    /// A client for the registry `host[:port]` (Docker Hub's API for
    /// `docker.io`): http on loopback, https otherwise.
    pub fn new(host: &str, creds: Option<Credentials>) -> Result<Registry, String> {
        let host = crate::reference::api_host(host);
        let scheme = if is_loopback(host) { "http" } else { "https" };
        Ok(Registry {
            client: http_client()?,
            base: format!("{scheme}://{host}"),
            authorization: creds.as_ref().and_then(basic),
            creds,
        })
    }

    /// Sends a GET and waits for the response's head; the body is left
    /// to the caller.
    async fn send_head(
        &self,
        url: &str,
        accept: Option<&str>,
        authorization: Option<&str>,
    ) -> Result<http::Response<hyper::body::Incoming>, String> {
        let mut req = http::Request::get(url).header("User-Agent", "reggie-build");
        if let Some(a) = accept {
            req = req.header("Accept", a);
        }
        if let Some(a) = authorization {
            req = req.header("Authorization", a);
        }
        let req = req
            .body(Empty::new())
            .map_err(|e| format!("bad request to {url}: {e}"))?;
        tokio::time::timeout(REQUEST_TIMEOUT, self.client.request(req))
            .await
            .map_err(|_| format!("GET {url}: no answer in {REQUEST_TIMEOUT:?}"))?
            .map_err(|e| format!("GET {url}: {}", crate::ship::daemon::describe(&e)))
    }

    async fn send(
        &self,
        url: &str,
        accept: Option<&str>,
        authorization: Option<&str>,
    ) -> Result<Response, String> {
        let resp = self.send_head(url, accept, authorization).await?;
        collect(url, resp).await
    }

    /// GET `path` (under the registry) following redirects, and a Bearer
    /// challenge once; the body read (at most [`MAX_BODY`]).
    async fn get(
        &mut self,
        path: &str,
        accept: Option<&str>,
        scope: &str,
    ) -> Result<Response, String> {
        let (url, resp) = self.get_head(path, accept, scope).await?;
        collect(&url, resp).await
    }

    /// [`Registry::get`], the body left unread: the final URL and the
    /// response.
    async fn get_head(
        &mut self,
        path: &str,
        accept: Option<&str>,
        scope: &str,
    ) -> Result<(String, http::Response<hyper::body::Incoming>), String> {
        let mut url = format!("{}{path}", self.base);
        let mut authenticated = false;
        let mut redirects = 0;
        loop {
            // Credentials go to the registry only, never to a redirect's
            // other host (blob storage).
            let same_host = url.starts_with(&format!("{}/", self.base));
            let auth = self.authorization.clone().filter(|_| same_host);
            let resp = self.send_head(&url, accept, auth.as_deref()).await?;
            if resp.status().is_redirection() && redirects < MAX_REDIRECTS {
                let Some(location) = resp
                    .headers()
                    .get(http::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                else {
                    return Err(format!("GET {url}: {} without a Location", resp.status()));
                };
                url = resolve(&url, location);
                redirects += 1;
                continue;
            }
            if resp.status() == StatusCode::UNAUTHORIZED && same_host && !authenticated {
                authenticated = true;
                let challenge = resp
                    .headers()
                    .get(http::header::WWW_AUTHENTICATE)
                    .and_then(|h| h.to_str().ok())
                    .and_then(parse_bearer_challenge);
                if let Some(challenge) = challenge {
                    let token = self.bearer_token(&challenge, scope).await?;
                    self.authorization = Some(format!("Bearer {token}"));
                    continue;
                }
            }
            return Ok((url, resp));
        }
    }

    /// A blob's bytes as they arrive (a layer: never held whole). The
    /// caller times out a stalled stream and checks the digest.
    pub async fn blob(
        &mut self,
        repository: &str,
        digest: &str,
    ) -> Result<hyper::body::Incoming, String> {
        let scope = format!("repository:{repository}:pull");
        let path = format!("/v2/{repository}/blobs/{digest}");
        let (url, resp) = self.get_head(&path, None, &scope).await?;
        if !resp.status().is_success() {
            return Err(format!("GET {url}: {}", resp.status()));
        }
        Ok(resp.into_body())
    }

    /// A small document (a manifest, by tag or digest; an image config)
    /// as bytes, with the digest the registry gives; `None` when it does
    /// not have it.
    pub async fn document(
        &mut self,
        repository: &str,
        kind: &str,
        reference: &str,
    ) -> Result<Option<(Option<String>, Bytes)>, String> {
        let scope = format!("repository:{repository}:pull");
        let path = format!("/v2/{repository}/{kind}/{reference}");
        let accept = (kind == "manifests").then_some(MANIFEST_ACCEPT);
        let resp = self.get(&path, accept, &scope).await?;
        match resp.status {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => Ok(Some((
                resp.headers
                    .get("docker-content-digest")
                    .and_then(|d| d.to_str().ok())
                    .map(str::to_owned),
                resp.body,
            ))),
            s => Err(format!("GET {}{path}: {s}", self.base)),
        }
    }

    async fn bearer_token(
        &self,
        challenge: &HashMap<String, String>,
        scope: &str,
    ) -> Result<String, String> {
        let realm = &challenge["realm"];
        let mut url = format!("{realm}?scope={}", query_escape(scope));
        if let Some(service) = challenge.get("service") {
            url.push_str(&format!("&service={}", query_escape(service)));
        }
        let auth = self.creds.as_ref().and_then(basic);
        let resp = self.send(&url, None, auth.as_deref()).await?;
        if !resp.status.is_success() {
            return Err(format!(
                "the token service {realm} answered {}",
                resp.status
            ));
        }
        let v: serde_json::Value = serde_json::from_slice(&resp.body)
            .map_err(|_| format!("the token service {realm} answered no JSON"))?;
        v.get("token")
            .or_else(|| v.get("access_token"))
            .and_then(|t| t.as_str())
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| format!("the token service {realm} gave no token"))
    }

    /// The manifest of `reference` (tag or digest) and its digest; `None`
    /// when the registry does not have it.
    pub async fn manifest(
        &mut self,
        repository: &str,
        reference: &str,
    ) -> Result<Option<(Option<String>, serde_json::Value)>, String> {
        let scope = format!("repository:{repository}:pull");
        let path = format!("/v2/{repository}/manifests/{reference}");
        let resp = self.get(&path, Some(MANIFEST_ACCEPT), &scope).await?;
        match resp.status {
            StatusCode::NOT_FOUND => return Ok(None),
            s if s.is_success() => {}
            s => return Err(format!("GET {}{path}: {s}", self.base)),
        }
        let digest = resp
            .headers
            .get("docker-content-digest")
            .and_then(|d| d.to_str().ok())
            .map(str::to_owned)
            .or_else(|| {
                use sha2::{Digest, Sha256};
                let hex: String = Sha256::digest(&resp.body)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                Some(format!("sha256:{hex}"))
            });
        let json = serde_json::from_slice(&resp.body)
            .map_err(|e| format!("the manifest of {repository}:{reference} is not JSON: {e}"))?;
        Ok(Some((digest, json)))
    }

    /// The labels of `repository:tag` for `platform` (`os/arch[/variant]`,
    /// picked from an index); `None` when the tag does not exist.
    pub async fn image(
        &mut self,
        repository: &str,
        tag: &str,
        platform: &str,
    ) -> Result<Option<RemoteImage>, String> {
        let Some((digest, mut manifest)) = self.manifest(repository, tag).await? else {
            return Ok(None);
        };
        if let Some(list) = manifest.get("manifests").and_then(|m| m.as_array()) {
            let chosen = pick_platform(list, platform)
                .ok_or_else(|| format!("{repository}:{tag} has no image for {platform}"))?;
            let Some((_, m)) = self.manifest(repository, &chosen).await? else {
                return Err(format!("{repository}@{chosen} is listed but missing"));
            };
            manifest = m;
        }
        let config = manifest["config"]["digest"]
            .as_str()
            .ok_or_else(|| format!("the manifest of {repository}:{tag} has no config digest"))?
            .to_string();
        let scope = format!("repository:{repository}:pull");
        let path = format!("/v2/{repository}/blobs/{config}");
        let resp = self.get(&path, None, &scope).await?;
        if !resp.status.is_success() {
            return Err(format!("GET {}{path}: {}", self.base, resp.status));
        }
        let config: serde_json::Value = serde_json::from_slice(&resp.body)
            .map_err(|e| format!("the image config of {repository}:{tag} is not JSON: {e}"))?;
        let labels = config["config"]["Labels"]
            .as_object()
            .map(|o| {
                o.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Some(RemoteImage { digest, labels }))
    }
}

/// The digest of the entry of an index for `os/arch[/variant]`.
pub fn pick_platform(list: &[serde_json::Value], platform: &str) -> Option<String> {
    let mut parts = platform.split('/');
    let os = parts.next().unwrap_or("linux");
    let arch = parts.next().unwrap_or_default();
    let variant = parts.next();
    let matches = |m: &&serde_json::Value| {
        m["platform"]["os"].as_str() == Some(os)
            && m["platform"]["architecture"].as_str() == Some(arch)
    };
    let candidates: Vec<&serde_json::Value> = list.iter().filter(matches).collect();
    let best = candidates
        .iter()
        .find(|m| variant.is_none() || m["platform"]["variant"].as_str() == variant)
        .or_else(|| candidates.first())?;
    best["digest"].as_str().map(str::to_owned)
}

/// Reads a response's body, at most [`MAX_BODY`] bytes, in
/// [`REQUEST_TIMEOUT`].
async fn collect(
    url: &str,
    resp: http::Response<hyper::body::Incoming>,
) -> Result<Response, String> {
    let (parts, body) = resp.into_parts();
    let body = tokio::time::timeout(REQUEST_TIMEOUT, Limited::new(body, MAX_BODY).collect())
        .await
        .map_err(|_| format!("GET {url}: no answer in {REQUEST_TIMEOUT:?}"))?
        .map_err(|e| format!("GET {url}: reading the body: {e}"))?
        .to_bytes();
    Ok(Response {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}

/// `location` against `url` (absolute, or a path on the same host).
fn resolve(url: &str, location: &str) -> String {
    if location.contains("://") {
        return location.to_string();
    }
    match url.parse::<Uri>() {
        Ok(u) => format!(
            "{}://{}{location}",
            u.scheme_str().unwrap_or("https"),
            u.authority().map(|a| a.as_str()).unwrap_or_default()
        ),
        Err(_) => location.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for h in [
            "127.0.0.1:5000",
            "127.1.2.3",
            "localhost:80",
            "[::1]:5000",
            "::1",
        ] {
            assert!(is_loopback(h), "{h}");
        }
        for h in [
            "10.0.0.1:5000",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com",
            "example.com:443",
        ] {
            assert!(!is_loopback(h), "{h}");
        }
    }

    #[test]
    fn bearer_challenges_parse() {
        let c = parse_bearer_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        )
        .unwrap();
        assert_eq!(c["realm"], "https://auth.docker.io/token");
        assert_eq!(c["service"], "registry.docker.io");
        assert_eq!(c["scope"], "repository:library/busybox:pull");
        assert!(parse_bearer_challenge(r#"Basic realm="Registry Realm""#).is_none());
    }

    #[test]
    fn platforms_pick() {
        let list: Vec<serde_json::Value> = serde_json::from_str(
            r#"[{"digest":"sha256:a","platform":{"os":"linux","architecture":"amd64"}},
                {"digest":"sha256:b","platform":{"os":"linux","architecture":"arm","variant":"v6"}},
                {"digest":"sha256:c","platform":{"os":"linux","architecture":"arm","variant":"v7"}}]"#,
        )
        .unwrap();
        assert_eq!(
            pick_platform(&list, "linux/amd64").as_deref(),
            Some("sha256:a")
        );
        assert_eq!(
            pick_platform(&list, "linux/arm/v7").as_deref(),
            Some("sha256:c")
        );
        assert_eq!(pick_platform(&list, "linux/s390x"), None);
    }

    /// A registry on loopback that wants a Bearer token (from its own
    /// token service, for Basic credentials), serves an index, and
    /// redirects the config blob.
    fn fake_registry() -> (String, std::thread::JoinHandle<Vec<String>>) {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let base = format!("http://{addr}");
        let handle = std::thread::spawn(move || {
            let mut seen = Vec::new();
            let basic = format!("Basic {}", STANDARD.encode("AWS:pw"));
            let config = br#"{"config":{"Labels":{"dev.reggie-build.build-key":"sha256:k"}}}"#;
            let manifest = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"digest":"sha256:cfg"}}"#;
            let index = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
                {"digest":"sha256:arm","platform":{"os":"linux","architecture":"arm64"}},
                {"digest":"sha256:amd","platform":{"os":"linux","architecture":"amd64"}}]}"#;
            for stream in listener.incoming() {
                let mut stream = stream.unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let path = line
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_string();
                let mut auth = String::new();
                loop {
                    let mut h = String::new();
                    reader.read_line(&mut h).unwrap();
                    if h.trim().is_empty() {
                        break;
                    }
                    if let Some(v) = h
                        .strip_prefix("authorization: ")
                        .or_else(|| h.strip_prefix("Authorization: "))
                    {
                        auth = v.trim().to_string();
                    }
                }
                seen.push(format!(
                    "{path} {}",
                    auth.split(' ').next().unwrap_or_default()
                ));
                if path == "/quit" {
                    break;
                }
                let (status, extra, body): (&str, String, Vec<u8>) = if path.starts_with("/token") {
                    if auth == basic && path.contains("scope=repository%3Ateam%2Fapp%3Apull") {
                        ("200 OK", String::new(), br#"{"token":"tok"}"#.to_vec())
                    } else {
                        ("401 Unauthorized", String::new(), Vec::new())
                    }
                } else if auth != "Bearer tok" && !path.starts_with("/storage") {
                    (
                        "401 Unauthorized",
                        format!(
                            "WWW-Authenticate: Bearer realm=\"{base}/token\",service=\"fake\"\r\n"
                        ),
                        Vec::new(),
                    )
                } else if path == "/v2/team/app/manifests/v1" {
                    (
                        "200 OK",
                        "Docker-Content-Digest: sha256:idx\r\n".into(),
                        index.as_bytes().to_vec(),
                    )
                } else if path == "/v2/team/app/manifests/sha256:amd" {
                    ("200 OK", String::new(), manifest.as_bytes().to_vec())
                } else if path == "/v2/team/app/blobs/sha256:cfg" {
                    (
                        "307 Temporary Redirect",
                        "Location: /storage/cfg\r\n".into(),
                        Vec::new(),
                    )
                } else if path == "/storage/cfg" {
                    ("200 OK", String::new(), config.to_vec())
                } else {
                    ("404 Not Found", String::new(), Vec::new())
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(&body);
            }
            seen
        });
        (addr, handle)
    }

    #[test]
    fn bearer_index_and_redirect_against_a_fake_registry() {
        let (addr, handle) = fake_registry();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let creds = Credentials {
            username: "AWS".into(),
            secret: "pw".into(),
            source: "test".into(),
        };
        let (image, missing) = runtime.block_on(async {
            let mut r = Registry::new(&addr, Some(creds)).unwrap();
            let image = r.image("team/app", "v1", "linux/amd64").await.unwrap();
            let missing = r.image("team/app", "nope", "linux/amd64").await.unwrap();
            let _ = r.send(&format!("http://{addr}/quit"), None, None).await;
            (image, missing)
        });
        let image = image.expect("found");
        assert_eq!(image.digest.as_deref(), Some("sha256:idx"));
        assert_eq!(
            image
                .labels
                .get("dev.reggie-build.build-key")
                .map(String::as_str),
            Some("sha256:k")
        );
        assert!(missing.is_none());
        let seen = handle.join().unwrap();
        assert_eq!(seen[0], "/v2/team/app/manifests/v1 Basic", "{seen:?}");
        assert!(seen.iter().any(|s| s.starts_with("/token")), "{seen:?}");
        // The blob's redirect is followed.
        assert!(
            seen.iter().any(|s| s.starts_with("/storage/cfg")),
            "{seen:?}"
        );
    }

    #[test]
    fn redirects_resolve() {
        assert_eq!(
            resolve("http://127.0.0.1:5000/v2/a/blobs/x", "/v2/b"),
            "http://127.0.0.1:5000/v2/b"
        );
        assert_eq!(resolve("https://a/v2/x", "https://s3/y"), "https://s3/y");
    }
}
