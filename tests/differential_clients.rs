//! Differential test against the real Docker clients, on random trees with
//! ignore files whose patterns are drawn from the tree's own paths (so that
//! exclusions, exceptions and parent directories interact):
//!
//! * **classic**: the docker 28 CLI (`$REGGIE_TEST_DOCKER`, default
//!   `/usr/local/bin/docker`) with `DOCKER_BUILDKIT=0` uploads the context as
//!   a tar; a fake daemon on a Unix socket records it. The archive of
//!   `reggie-build context --builder classic` must hold the same entries in
//!   the same order (name, type, mode, owner, size, mtime, link target,
//!   content) and `reggie-build ls --builder classic` its files.
//! * **BuildKit**: the 20.10 CLI (`$REGGIE_TEST_DOCKER_BUILDKIT`, default
//!   `/usr/bin/docker`) with `DOCKER_BUILDKIT=1` builds `FROM scratch` +
//!   `COPY . /ctx/` on the test daemon with `-o type=local`, which gives
//!   exactly what arrived. It must hold the entries (files, directories,
//!   empty ones, symlinks) of `reggie-build context`'s archive, except for
//!   differences explained by one of the four changes of 2021 that the
//!   20.10 client predates (see docs/docker-compat.md, "Docker versions"). Each
//!   difference is classified by re-checking it with the patterns that
//!   trigger it: the ignore file is shrunk to the fewest lines that still
//!   make that path differ, those lines must carry the change's mark, and
//!   the lines carrying it are then dropped and the rest checked again.
//!
//! Knobs: `REGGIE_CLIENTS_TREES` (default 24 trees, each built by both
//! clients), `REGGIE_CLIENTS_SEED`. A missing CLI or daemon fails the test
//! (tests/common), unless `REGGIE_ALLOW_SKIP=1`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

mod common;

use common::docker::Cli;

const DEFAULT_SEED: u64 = 0xc11e_4715_2021_0001;
const DEFAULT_TREES: u64 = 24;

// ---------------------------------------------------------------- PRNG

/// xorshift64* seeded through splitmix64 (as tests/differential.rs).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Rng(if z == 0 { 1 } else { z })
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

// ---------------------------------------------------------------- trees

/// Names of entries: plain ones, and ones with the regex metacharacters
/// the 20.10 client did not escape.
const NAMES: &[&str] = &[
    "a",
    "b",
    "foo",
    "bar",
    "lib",
    "keep.md",
    "x.pyc",
    "node_modules",
    "a+b",
    "(p)",
    "c{2}",
    "d|e",
    "^h",
    "$x",
    "sp ace",
    "a.b",
];
const LINK_TARGETS: &[&str] = &["a", "../foo", "nowhere", "keep.md"];

#[derive(Clone, Debug)]
enum Kind {
    File,
    Dir(Vec<Node>),
    Symlink(&'static str),
}

#[derive(Clone, Debug)]
struct Node {
    name: &'static str,
    kind: Kind,
}

fn gen_dir(rng: &mut Rng, depth: usize, budget: &mut usize) -> Vec<Node> {
    let mut out: Vec<Node> = Vec::new();
    let want = rng.below(if depth == 0 { 5 } else { 4 }) + usize::from(depth == 0) * 2;
    for _ in 0..want {
        if *budget == 0 {
            break;
        }
        let name = *rng.pick(NAMES);
        if out.iter().any(|n| n.name == name) {
            continue;
        }
        *budget -= 1;
        let roll = rng.below(100);
        let kind = if depth < 3 && roll < 45 {
            Kind::Dir(gen_dir(rng, depth + 1, budget))
        } else if roll < 55 {
            Kind::Symlink(LINK_TARGETS[rng.below(LINK_TARGETS.len())])
        } else {
            Kind::File
        };
        out.push(Node { name, kind });
    }
    out
}

fn paths(nodes: &[Node], prefix: &str, out: &mut Vec<(String, bool)>) {
    for n in nodes {
        let p = join(prefix, n.name);
        let is_dir = matches!(n.kind, Kind::Dir(_));
        out.push((p.clone(), is_dir));
        if let Kind::Dir(children) = &n.kind {
            paths(children, &p, out);
        }
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

fn write_nodes(dir: &Path, rel: &str, nodes: &[Node]) {
    for n in nodes {
        let p = dir.join(n.name);
        let r = join(rel, n.name);
        match &n.kind {
            Kind::File => fs::write(&p, format!("{r}\n")).unwrap(),
            Kind::Dir(children) => {
                fs::create_dir(&p).unwrap();
                write_nodes(&p, &r, children);
            }
            Kind::Symlink(target) => std::os::unix::fs::symlink(target, &p).unwrap(),
        }
    }
}

/// One pattern made from a path of the tree: as is, with a component or
/// its end replaced by a wildcard, under `**/`, or followed by `/**`, `/*`.
fn pattern_from(rng: &mut Rng, path: &str, is_dir: bool) -> String {
    let mut parts: Vec<String> = path.split('/').map(str::to_string).collect();
    match rng.below(10) {
        0 | 1 => {
            let i = rng.below(parts.len());
            parts[i] = "*".into();
        }
        2 => {
            let last = parts.last_mut().unwrap();
            if last.len() > 1 {
                last.truncate(1);
                last.push('*');
            }
        }
        3 => {
            let last = parts.last_mut().unwrap();
            if last.len() > 1 {
                last.replace_range(0..1, "?");
            }
        }
        4 => {
            let keep = parts.split_off(parts.len() - 1);
            parts = vec!["**".into()];
            parts.extend(keep);
        }
        5 if is_dir => parts.push(rng.pick(&["**", "*"]).to_string()),
        _ => {}
    }
    parts.join("/")
}

/// An ignore file: patterns from the tree's paths, exceptions among them,
/// and often an "exclude a directory, re-include something inside" pair.
fn gen_ignore(rng: &mut Rng, all: &[(String, bool)]) -> Vec<String> {
    let mut lines = Vec::new();
    let n = 1 + rng.below(5);
    for _ in 0..n {
        let (path, is_dir) = rng.pick(all).clone();
        let mut line = pattern_from(rng, &path, is_dir);
        if rng.chance(30) {
            line.insert(0, '!');
        }
        lines.push(line);
    }
    let nested: Vec<&(String, bool)> = all.iter().filter(|(p, _)| p.contains('/')).collect();
    if !nested.is_empty() && rng.chance(60) {
        let (path, _) = *rng.pick(&nested);
        let (dir, name) = path.rsplit_once('/').unwrap();
        let exclude = match rng.below(3) {
            0 => dir.to_string(),
            1 => format!("{dir}/**"),
            _ => "*".to_string(),
        };
        let exception = match rng.below(6) {
            0 => format!("!{dir}/{name}"),
            1 => format!("!**/{name}"),
            2 => format!("!{dir}/*"),
            3 => format!("!*/{name}"),
            4 => format!("!{path}/**"),
            _ => format!("!{dir}/{}*", &name[..1]),
        };
        let at = rng.below(lines.len() + 1);
        lines.insert(at, exception);
        lines.insert(at, exclude);
    }
    lines
}

struct Tree {
    nodes: Vec<Node>,
    ignore: Vec<String>,
}

fn gen_tree(seed: u64) -> Tree {
    let mut rng = Rng::new(seed);
    let mut budget = 22;
    let nodes = gen_dir(&mut rng, 0, &mut budget);
    let mut all = Vec::new();
    paths(&nodes, "", &mut all);
    let ignore = gen_ignore(&mut rng, &all);
    Tree { nodes, ignore }
}

fn materialise(tree: &Tree, ignore: &[String], ctx: &Path) {
    fs::create_dir_all(ctx).unwrap();
    write_nodes(ctx, "", &tree.nodes);
    fs::write(ctx.join("Dockerfile"), "FROM scratch\nCOPY . /ctx/\n").unwrap();
    let text: String = ignore.iter().map(|l| format!("{l}\n")).collect();
    fs::write(ctx.join(".dockerignore"), text).unwrap();
}

// ---------------------------------------------------------------- entries

/// One entry of an archive or of an exported tree.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Item {
    /// `d`, `f` or `l`, and for the classic comparison the header's mode,
    /// owner, size and mtime.
    meta: String,
    link: Vec<u8>,
    content: Vec<u8>,
}

/// The entries of a tar stream in order: name (directories without their
/// trailing `/`) and what the header and body hold.
fn tar_items(tar: &[u8], headers: bool) -> Vec<(String, Item)> {
    let mut archive = tar::Archive::new(tar);
    let mut out = Vec::new();
    for e in archive.entries().expect("reading an archive") {
        let mut e = e.expect("reading an archive entry");
        let name = String::from_utf8_lossy(&e.path_bytes())
            .trim_end_matches('/')
            .to_string();
        let h = e.header().clone();
        let kind = match h.entry_type() {
            t if t.is_dir() => "d",
            t if t.is_symlink() => "l",
            t if t.is_file() => "f",
            t => panic!("unexpected entry type {t:?} for {name}"),
        };
        let meta = if headers {
            format!(
                "{kind} mode={:o} uid={} gid={} user={:?} group={:?} size={} mtime={}",
                h.mode().unwrap(),
                h.uid().unwrap(),
                h.gid().unwrap(),
                h.username_bytes().map(String::from_utf8_lossy),
                h.groupname_bytes().map(String::from_utf8_lossy),
                h.size().unwrap(),
                h.mtime().unwrap(),
            )
        } else {
            kind.to_string()
        };
        let link = e
            .link_name_bytes()
            .map(|l| l.into_owned())
            .unwrap_or_default();
        let mut content = Vec::new();
        e.read_to_end(&mut content).unwrap();
        out.push((
            name,
            Item {
                meta,
                link,
                content,
            },
        ));
    }
    out
}

/// What a BuildKit export holds under `dir`: path → entry.
fn exported(dir: &Path, rel: &str, out: &mut BTreeMap<String, Item>) {
    let Ok(read) = fs::read_dir(dir) else { return };
    for e in read {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        let r = join(rel, &name);
        let t = e.file_type().unwrap();
        let item = if t.is_dir() {
            exported(&e.path(), &r, out);
            Item {
                meta: "d".into(),
                link: Vec::new(),
                content: Vec::new(),
            }
        } else if t.is_symlink() {
            Item {
                meta: "l".into(),
                link: fs::read_link(e.path())
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes(),
                content: Vec::new(),
            }
        } else {
            Item {
                meta: "f".into(),
                link: Vec::new(),
                content: fs::read(e.path()).unwrap(),
            }
        };
        out.insert(r, item);
    }
}

// ---------------------------------------------------------------- fake daemon

/// A Unix socket that answers the docker CLI like a daemon with the
/// classic builder: `_ping`, then `POST /build`, whose body (the context
/// tar, chunked) it keeps.
struct FakeDaemon {
    socket: PathBuf,
    body: Arc<Mutex<Option<Vec<u8>>>>,
}

impl FakeDaemon {
    fn start(dir: &Path) -> FakeDaemon {
        let socket = dir.join("fake-docker.sock");
        let listener = UnixListener::bind(&socket).expect("binding the fake daemon's socket");
        let body = Arc::new(Mutex::new(None));
        let keep = body.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let keep = keep.clone();
                std::thread::spawn(move || serve(conn, &keep));
            }
        });
        FakeDaemon { socket, body }
    }

    fn take(&self) -> Option<Vec<u8>> {
        self.body.lock().unwrap().take()
    }
}

fn serve(conn: UnixStream, keep: &Mutex<Option<Vec<u8>>>) {
    let mut out = conn.try_clone().unwrap();
    let mut r = BufReader::new(conn);
    loop {
        let mut request = String::new();
        if r.read_line(&mut request).unwrap_or(0) == 0 {
            return;
        }
        let mut chunked = false;
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (k, v) = h.split_once(':').unwrap_or((h, ""));
            match k.to_ascii_lowercase().as_str() {
                "transfer-encoding" => chunked = v.trim().eq_ignore_ascii_case("chunked"),
                "content-length" => length = v.trim().parse().unwrap_or(0),
                _ => {}
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                let mut size = String::new();
                r.read_line(&mut size).unwrap();
                let n = usize::from_str_radix(size.trim(), 16).unwrap();
                let mut chunk = vec![0; n + 2];
                r.read_exact(&mut chunk).unwrap();
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
        } else {
            body.resize(length, 0);
            r.read_exact(&mut body).unwrap();
        }
        let head = "HTTP/1.1 200 OK\r\nApi-Version: 1.47\r\nOstype: linux\r\n";
        let reply = if request.contains("/build") {
            *keep.lock().unwrap() = Some(body);
            let json = "{\"stream\":\"Successfully built 0123456789ab\\n\"}\r\n";
            format!(
                "{head}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{json}",
                json.len()
            )
        } else if request.starts_with("HEAD") {
            format!("{head}Content-Length: 0\r\n\r\n")
        } else {
            format!("{head}Content-Type: text/plain\r\nContent-Length: 2\r\n\r\nOK")
        };
        if out.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

// ---------------------------------------------------------------- running

struct Env {
    tool: PathBuf,
    classic_cli: String,
    services: BTreeMap<String, String>,
    fake: FakeDaemon,
    config: PathBuf,
}

fn output(cmd: &mut Command) -> Result<Vec<u8>, String> {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(format!(
            "{cmd:?}: {} (stderr: {})",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim_end()
        ))
    }
}

fn reggie(env: &Env, ctx: &Path, args: &[&str]) -> Result<Vec<u8>, String> {
    output(Command::new(&env.tool).args(args).arg(ctx))
}

/// `ls` must list the archive's files, sorted.
fn check_ls(ls: &[u8], items: &[(String, Item)]) -> Result<(), String> {
    let mut files: Vec<&str> = items
        .iter()
        .filter(|(_, i)| !i.meta.starts_with('d'))
        .map(|(n, _)| n.as_str())
        .collect();
    files.sort();
    let want: String = files.iter().map(|f| format!("{f}\n")).collect();
    if ls == want.as_bytes() {
        Ok(())
    } else {
        Err(format!(
            "`ls` lists\n{}but the archive holds these files\n{want}",
            String::from_utf8_lossy(ls)
        ))
    }
}

/// docker 28, classic builder, against `reggie-build --builder classic`.
fn classic(env: &Env, tree: &Tree) -> Result<usize, String> {
    let tmp = tempfile::tempdir().unwrap();
    let ctx = tmp.path().join("ctx");
    materialise(tree, &tree.ignore, &ctx);
    env.fake.take();
    output(
        Command::new(&env.classic_cli)
            .args(["build", "-q"])
            .arg(&ctx)
            .env("DOCKER_BUILDKIT", "0")
            .env("DOCKER_CONFIG", &env.config)
            .env(
                "DOCKER_HOST",
                format!("unix://{}", env.fake.socket.display()),
            ),
    )?;
    let sent = env
        .fake
        .take()
        .ok_or("the docker CLI sent no build request")?;
    let docker = tar_items(&sent, true);
    let ours = tar_items(
        &reggie(env, &ctx, &["context", "--builder", "classic", "-o", "-"])?,
        true,
    );
    if docker != ours {
        let mut s = String::from("archives differ (entry by entry, docker | reggie-build):\n");
        for i in 0..docker.len().max(ours.len()) {
            let d = docker.get(i).map(|(n, it)| format!("{n} {}", it.meta));
            let o = ours.get(i).map(|(n, it)| format!("{n} {}", it.meta));
            let mark = if docker.get(i) == ours.get(i) {
                " "
            } else {
                "!"
            };
            writeln!(s, "{mark} {d:?} | {o:?}").unwrap();
        }
        return Err(s);
    }
    check_ls(&reggie(env, &ctx, &["ls", "--builder", "classic"])?, &ours)?;
    Ok(docker.len())
}

/// The paths where the 20.10 client's BuildKit build and reggie-build's
/// BuildKit archive differ, with `ignore` as the ignore file.
fn buildkit_diff(env: &Env, tree: &Tree, ignore: &[String]) -> Result<Vec<String>, String> {
    let tmp = tempfile::tempdir().unwrap();
    let ctx = tmp.path().join("ctx");
    materialise(tree, ignore, &ctx);
    let dest = tmp.path().join("out");
    let mut cmd = common::docker::docker_cmd(&env.services, Cli::BuildKit, tmp.path());
    cmd.args(["build", "-q", "-o"])
        .arg(format!("type=local,dest={}", dest.display()))
        .arg(&ctx);
    if let Err(e) = output(&mut cmd) {
        // The 20.10 client compiles some patterns to regexes Go refuses
        // (`?p)`): a difference to classify like any other.
        if e.contains("syntax error in pattern") {
            return Ok(vec![REFUSED.to_string()]);
        }
        return Err(e);
    }
    let mut got = BTreeMap::new();
    exported(&dest.join("ctx"), "", &mut got);
    let items = tar_items(&reggie(env, &ctx, &["context", "-o", "-"])?, false);
    check_ls(&reggie(env, &ctx, &["ls"])?, &items)?;
    let ours: BTreeMap<String, Item> = items.into_iter().collect();
    let mut diff: Vec<String> = got
        .iter()
        .filter(|(p, i)| ours.get(*p) != Some(i))
        .map(|(p, _)| p.clone())
        .collect();
    diff.extend(ours.keys().filter(|p| !got.contains_key(*p)).cloned());
    diff.sort();
    Ok(diff)
}

// ---------------------------------------------------------------- classifying

/// The "path" that differs when the 20.10 client refuses the ignore file.
const REFUSED: &str = "(the 20.10 client refuses the ignore file)";

/// The changes of 2021 that the 20.10 client predates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Change {
    /// Regex metacharacters in patterns: moby/moby#42961 escapes `+ ( ) $`,
    /// which the 20.10 client left as regex syntax; and a pattern without
    /// wildcards is now compared as text (patternmatcher's exact match),
    /// where the 20.10 client ran it as a regex (`c{2}` matched `cc`).
    /// (`| { }` were meant to be escaped too, but patternmatcher's escape
    /// table has no bit for them: in a pattern with wildcards Docker still
    /// reads them as regex syntax, as it does `^`.)
    RegexMetacharacters,
    /// fsutil enters an excluded directory when an exception has a
    /// wildcard (`!**/keep.md`); the 20.10 client entered it only when an
    /// exception named a path inside it.
    WildcardExceptions,
    /// `**` matches parent directories at any depth.
    DoubleStarParents,
    /// Each pattern's result on a directory carries to its children
    /// (`MatchesUsingParentResults`) instead of checking one ancestor at the
    /// pattern's own depth (the legacy `Matches`); with it (fsutil, 2021),
    /// an excluded directory that is entered is sent only lazily, before
    /// the first entry inside it that is sent.
    ParentResults,
}

fn has_metachar(line: &str) -> bool {
    let mut in_class = false;
    for c in line.chars() {
        match c {
            '[' => in_class = true,
            ']' => in_class = false,
            '+' | '(' | ')' | '$' | '|' | '{' | '}' | '^' if !in_class => return true,
            _ => {}
        }
    }
    false
}

fn wildcard_exception(line: &str) -> bool {
    line.strip_prefix('!').is_some_and(|p| {
        let p = p.strip_suffix("/**").unwrap_or(p);
        let p = p.strip_suffix("/*").unwrap_or(p);
        p.contains(['*', '?', '[', '\\'])
    })
}

impl Change {
    fn marks(self, line: &str) -> bool {
        match self {
            Change::RegexMetacharacters => has_metachar(line),
            Change::WildcardExceptions => wildcard_exception(line),
            Change::DoubleStarParents => line.contains("**"),
            Change::ParentResults => true,
        }
    }
}

/// Whether the legacy `Matches` and today's matcher disagree on `path` or
/// one of its ancestors with these patterns, or `path` is a directory
/// today's matcher excludes (sent only as a lazy parent, if at all).
fn legacy_disagrees(lines: &[String], path: &str, is_dir: bool) -> bool {
    use reggie_build::context::ignore::{read_patterns, Matcher};
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let label = Path::new(".dockerignore");
    let Ok(parsed) = read_patterns(label, text.as_bytes()) else {
        return false;
    };
    let Ok(m) = Matcher::new(label, &parsed) else {
        return false;
    };
    let mut prefix = String::new();
    for part in path.split('/') {
        prefix = join(&prefix, part);
        let new = m
            .matches_or_parent_matches(prefix.as_bytes())
            .map(|d| d.excluded())
            .unwrap_or(false);
        if new != m.legacy_matches(prefix.as_bytes()) || (new && is_dir && prefix == path) {
            return true;
        }
    }
    false
}

fn classify(trigger: &[String], path: &str, is_dir: bool) -> Option<Change> {
    [
        Change::RegexMetacharacters,
        Change::WildcardExceptions,
        Change::DoubleStarParents,
    ]
    .into_iter()
    .find(|c| trigger.iter().any(|l| c.marks(l)))
    .or_else(|| legacy_disagrees(trigger, path, is_dir).then_some(Change::ParentResults))
}

/// Explains every difference between the 20.10 client and reggie-build on
/// this tree by one of the four changes, or says why it cannot.
fn explain(env: &Env, tree: &Tree, log: &mut String) -> Result<Vec<Change>, String> {
    let mut lines = tree.ignore.clone();
    let mut found = Vec::new();
    for _ in 0..5 {
        let diff = buildkit_diff(env, tree, &lines)?;
        let Some(path) = diff.first().cloned() else {
            return Ok(found);
        };
        // The fewest lines that still make `path` differ.
        let mut trigger = lines.clone();
        let mut i = 0;
        while i < trigger.len() {
            let mut fewer = trigger.clone();
            fewer.remove(i);
            if buildkit_diff(env, tree, &fewer)?.contains(&path) {
                trigger = fewer;
            } else {
                i += 1;
            }
        }
        let mut all = Vec::new();
        paths(&tree.nodes, "", &mut all);
        let is_dir = all.iter().any(|(p, d)| *d && *p == path);
        let Some(change) = classify(&trigger, &path, is_dir) else {
            return Err(format!(
                "`{path}` differs from the 20.10 client with the ignore lines {trigger:?} \
                 (of {lines:?}), which none of the four changes of 2021 explains; \
                 differing paths: {diff:?}"
            ));
        };
        writeln!(log, "  {path}: {change:?}, triggered by {trigger:?}").unwrap();
        found.push(change);
        let before = lines.len();
        if change == Change::ParentResults {
            lines.retain(|l| !trigger.contains(l));
        } else {
            lines.retain(|l| !change.marks(l));
        }
        if lines.len() == before {
            return Err(format!(
                "`{path}` differs and was classified as {change:?} by {trigger:?}, \
                 but no line of {lines:?} carries that change"
            ));
        }
    }
    Err(format!(
        "differences remain after dropping the lines of five changes: {lines:?}"
    ))
}

// ---------------------------------------------------------------- the test

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    let parsed = match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{name}={v:?} is not a number")))
}

fn cli(var: &str, default: &str, test: &str) -> Option<String> {
    let path = std::env::var(var).unwrap_or_else(|_| default.to_string());
    if Path::new(&path).is_file() {
        return Some(path);
    }
    common::missing_prerequisite(
        test,
        &format!("the docker CLI {path} is missing"),
        &format!("Install it there or point {var} at one."),
    );
    None
}

fn describe(nodes: &[Node], prefix: &str, out: &mut String) {
    for n in nodes {
        let p = join(prefix, n.name);
        match &n.kind {
            Kind::File => writeln!(out, "    {p}").unwrap(),
            Kind::Symlink(t) => writeln!(out, "    {p} -> {t}").unwrap(),
            Kind::Dir(c) => {
                writeln!(out, "    {p}/").unwrap();
                describe(c, &p, out);
            }
        }
    }
}

#[test]
fn differential_against_the_real_docker_clients() {
    let test = "differential_against_the_real_docker_clients";
    let Some(services) = common::services() else {
        return;
    };
    let Some(classic_cli) = cli("REGGIE_TEST_DOCKER", "/usr/local/bin/docker", test) else {
        return;
    };
    if cli("REGGIE_TEST_DOCKER_BUILDKIT", "/usr/bin/docker", test).is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("docker-config");
    fs::create_dir(&config).unwrap();
    let env = Env {
        tool: PathBuf::from(env!("CARGO_BIN_EXE_reggie-build")),
        classic_cli,
        services,
        fake: FakeDaemon::start(dir.path()),
        config,
    };
    let seed = env_u64("REGGIE_CLIENTS_SEED").unwrap_or(DEFAULT_SEED);
    let trees = env_u64("REGGIE_CLIENTS_TREES").unwrap_or(DEFAULT_TREES);
    let mut failures = Vec::new();
    let mut entries = 0;
    let mut changes: BTreeMap<Change, usize> = BTreeMap::new();
    for round in 0..trees {
        let tree = gen_tree(seed ^ round.wrapping_mul(0xA24B_AED4_963E_E407));
        let mut log = String::new();
        let result = classic(&env, &tree)
            .map_err(|e| format!("docker 28 (classic) disagrees: {e}"))
            .and_then(|n| {
                entries += n;
                explain(&env, &tree, &mut log)
                    .map_err(|e| format!("the 20.10 client (BuildKit) disagrees: {e}"))
            });
        match result {
            Ok(found) => {
                for c in found {
                    *changes.entry(c).or_default() += 1;
                }
                if !log.is_empty() {
                    eprintln!("round {round}: differences from the 20.10 client:\n{log}");
                }
            }
            Err(e) => {
                let mut s = String::new();
                describe(&tree.nodes, "", &mut s);
                eprintln!(
                    "\n=== MISMATCH: seed {seed:#x}, round {round}\n{e}\n.dockerignore: {:?}\ntree:\n{s}",
                    tree.ignore
                );
                failures.push(round);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "reggie-build disagrees with a real docker client (seed {seed:#x}) in round(s) {failures:?}; \
         see the report(s) above (REGGIE_CLIENTS_SEED={seed:#x} REGGIE_CLIENTS_TREES=N reproduces)"
    );
    eprintln!(
        "differential (real clients): {trees} tree(s) agreed with docker 28 (classic, {entries} \
         archive entries); differences from the 20.10 client explained by: {changes:?}"
    );
}
