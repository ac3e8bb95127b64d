//! Differential test: `reggie-build ls` against a Go reference program that
//! uses Docker's real pattern matcher (github.com/moby/patternmatcher).
//!
//! See tests/differential/README.md. Knobs (environment variables):
//!
//! * `REGGIE_DIFF_ROUNDS`     number of random cases (default 300)
//! * `REGGIE_DIFF_SEED`       base seed, decimal or 0x-hex (default fixed)
//! * `REGGIE_DIFF_ROUND`      run only this round of the seed (reproduction)
//! * `REGGIE_DIFF_KEEP_GOING` =1: report every mismatch, panic at the end
//! * `REGGIE_DIFF_NO_SHRINK`  =1: do not minimise a failing case
//! * `REGGIE_DIFF_GOPATH`     GOPATH entry holding github.com/moby/patternmatcher
//!   (default /usr/share/gocode, Debian's golang-github-moby-patternmatcher-dev)
//!
//! If `go` or the patternmatcher sources are missing the test fails, unless
//! `REGGIE_ALLOW_SKIP=1` turns that into a counted skip.

use std::ffi::{CString, OsStr};
use std::fmt::Write as _;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

const DEFAULT_SEED: u64 = 0x5eed_d0c4_e215_0001;
const DEFAULT_ROUNDS: u64 = 300;
const MAX_ENTRIES: usize = 40;
const MAX_DEPTH: usize = 4;

// ---------------------------------------------------------------- PRNG

/// xorshift64* seeded through splitmix64.
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
    /// Uniform in 0..n (n > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// True with probability `percent`/100.
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    fn pick_b(&mut self, items: &[&'static [u8]]) -> &'static [u8] {
        items[self.below(items.len())]
    }
}

// ---------------------------------------------------------------- cases

#[derive(Clone, Debug)]
enum Kind {
    File,
    Dir(Vec<Node>),
    Symlink(Vec<u8>),
    Fifo,
}

#[derive(Clone, Debug)]
struct Node {
    name: Vec<u8>,
    kind: Kind,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Builder {
    Buildkit,
    Classic,
}

#[derive(Clone, Debug)]
struct Case {
    /// Children of the context root (never contains the build files below).
    tree: Vec<Node>,
    /// Directory of the Dockerfile relative to the context (empty = root).
    df_dir: Vec<u8>,
    /// Lines (each with its own line ending) of CONTEXT/.dockerignore.
    ignore: Option<Vec<Vec<u8>>>,
    /// Lines of `<Dockerfile>.dockerignore` (next to the Dockerfile).
    specific: Option<Vec<Vec<u8>>>,
    builder: Builder,
    /// How the tool is invoked: 0 = absolute PATH and omitted -f (only for a
    /// root Dockerfile), 1 = absolute PATH and absolute -f, 2 = cwd=context,
    /// PATH "." and relative -f, 3 = also passes `--builder buildkit`
    /// explicitly when in buildkit mode.
    style: u8,
}

const NAMES: &[&[u8]] = &[
    b"a",
    b"b",
    b"foo",
    b"bar",
    b"node_modules",
    b"x.pyc",
    b"__pycache__",
    b".env",
    b"Dockerfile",
    b".dockerignore",
    b"a.b",
    b"[x]",
    b"sp ace",
    b"st*r",
    b"q?",
    b"back\\slash",
    b"\xffa",
    "é".as_bytes(),
    b"ab",
    b"!bang",
    b"#hash",
    b"Dockerfile.dockerignore",
    b"c{2}",
    b"d|e",
];

const LINK_TARGETS: &[&[u8]] = &[
    b"a", b"foo", b"..", b"../..", b"nowhere", b"/", b"a/b", b".",
];

fn gen_dir(rng: &mut Rng, depth: usize, budget: &mut usize) -> Vec<Node> {
    let mut out: Vec<Node> = Vec::new();
    let want = rng.below(if depth == 0 { 7 } else { 5 }) + usize::from(depth == 0);
    for _ in 0..want {
        if *budget == 0 {
            break;
        }
        let name = rng.pick(NAMES).to_vec();
        if out.iter().any(|n| n.name == name) {
            continue;
        }
        *budget -= 1;
        let roll = rng.below(100);
        let kind = if depth + 1 < MAX_DEPTH && roll < 38 {
            Kind::Dir(gen_dir(rng, depth + 1, budget))
        } else if roll < 50 {
            Kind::Symlink(rng.pick(LINK_TARGETS).to_vec())
        } else if roll < 52 {
            Kind::Fifo
        } else {
            Kind::File
        };
        out.push(Node { name, kind });
    }
    out
}

fn collect_paths(nodes: &[Node], prefix: &[u8], out: &mut Vec<Vec<u8>>) {
    for n in nodes {
        let mut p = prefix.to_vec();
        if !p.is_empty() {
            p.push(b'/');
        }
        p.extend_from_slice(&n.name);
        out.push(p.clone());
        if let Kind::Dir(children) = &n.kind {
            collect_paths(children, &p, out);
        }
    }
}

fn collect_dirs(nodes: &[Node], prefix: &[u8], out: &mut Vec<Vec<u8>>) {
    for n in nodes {
        if let Kind::Dir(children) = &n.kind {
            let p = join(prefix, &n.name);
            out.push(p.clone());
            collect_dirs(children, &p, out);
        }
    }
}

/// One pattern component.
fn gen_segment(rng: &mut Rng, names: &[Vec<u8>]) -> Vec<u8> {
    const GLOBS: &[&[u8]] = &[
        b"*",
        b"**",
        b"?",
        b"[a-c]",
        b"[^a]",
        b"\\*",
        b"*.pyc",
        b"a*",
        b"*b",
        b"f?o",
        b"[!a]",
        b"[ab]*",
        b"\\a",
        b"*?",
        b"**b",
        b".",
        b"..",
        b"[a-c]?",
        b"\\[x]",
        b"[[]x]",
        b"\xffa",
        b"\xff*",
        b"\xef\xbb\xbfa",
        // ASCII-mode regexes (one UTF-8 sequence per `?`) against their
        // Unicode-mode fallback.
        "?\u{e9}".as_bytes(),
        "[^\u{e9}]".as_bytes(),
        b"\\d?",
        b"[\\D]",
        b"[^a-c]?",
        // `|{}` stay regex syntax (patternmatcher's escape table misses them)
        b"c{2}*",
        b"a{1,}?",
        b"d|e*",
        b"x{*",
    ];
    match rng.below(100) {
        0..=54 => rng.pick(names).clone(),
        55..=96 => rng.pick(GLOBS).to_vec(),
        // rare malformed pieces: unclosed class, reversed range, trailing escape
        _ => rng.pick_b(&[&b"["[..], b"[z-a]", b"\\", b"[a"]).to_vec(),
    }
}

fn gen_pattern(rng: &mut Rng, names: &[Vec<u8>], paths: &[Vec<u8>]) -> Vec<u8> {
    let mut p = Vec::new();
    if rng.chance(10) {
        p.extend_from_slice(rng.pick_b(&[&b" "[..], b"  ", b"\t"]));
    }
    if rng.chance(25) {
        p.extend_from_slice(rng.pick_b(&[&b"!"[..], b"!", b"! "]));
    }
    if rng.chance(20) {
        p.extend_from_slice(rng.pick_b(&[&b"/"[..], b"./", b"../", b"**/", b"//", b"/./"]));
    }
    if rng.chance(20) && !paths.is_empty() {
        // a full path from the tree, possibly with a glob tacked on
        let path: &Vec<u8> = rng.pick(paths);
        p.extend_from_slice(path);
    } else {
        let n = 1 + rng.below(3);
        for i in 0..n {
            if i > 0 {
                p.extend_from_slice(if rng.chance(8) { b"//" } else { b"/" });
            }
            p.extend_from_slice(&gen_segment(rng, names));
        }
    }
    if rng.chance(20) {
        p.extend_from_slice(rng.pick_b(&[&b"/"[..], b"/**", b"/*", b"/.", b"*", b"/**/x.pyc"]));
    }
    if rng.chance(10) {
        p.extend_from_slice(rng.pick_b(&[&b" "[..], b"\t", b"  "]));
    }
    p
}

/// An "exclude a directory, then re-include something inside it" pair, the
/// shape where the builders' directory-pruning rules differ.
fn gen_pair(
    rng: &mut Rng,
    dirs: &[Vec<u8>],
    names: &[Vec<u8>],
    paths: &[Vec<u8>],
) -> (Vec<u8>, Vec<u8>) {
    // Prefer an existing nested path `dir/name` so the exception hits.
    let nested: Vec<&Vec<u8>> = paths.iter().filter(|p| p.contains(&b'/')).collect();
    let (dir, name) = if !nested.is_empty() && rng.chance(75) {
        let p = *rng.pick(&nested);
        let cut = p.iter().rposition(|&c| c == b'/').unwrap();
        (p[..cut].to_vec(), p[cut + 1..].to_vec())
    } else {
        let dir = if dirs.is_empty() {
            b"foo".to_vec()
        } else {
            rng.pick(dirs).clone()
        };
        (dir, rng.pick(names).clone())
    };
    let name = &name;
    let exclude = match rng.below(4) {
        0 => dir.clone(),
        1 => join(&dir, b"**"),
        2 => b"*".to_vec(),
        _ => join(&dir, b"*"),
    };
    let inner = match rng.below(7) {
        0 => join(&join(&dir, b"*"), name),
        1 => join(b"*", name),
        2 => join(b"**", name),
        3 => join(&dir, name),
        4 => join(&dir, &[&name[..], b"*"].concat()),
        5 => join(&join(&dir, b"**"), name),
        _ => join(&dir, &join(name, b"**")),
    };
    (exclude, [&b"!"[..], &inner].concat())
}

fn gen_ignore(
    rng: &mut Rng,
    names: &[Vec<u8>],
    paths: &[Vec<u8>],
    dirs: &[Vec<u8>],
) -> Vec<Vec<u8>> {
    // Sometimes long enough for the matcher to use its index (16 rules
    // and more), whose results must be the same.
    let n = if rng.chance(25) {
        16 + rng.below(40)
    } else {
        1 + rng.below(8)
    };
    let crlf = rng.chance(20);
    let mut lines = Vec::new();
    let pair_at = if rng.chance(35) {
        Some(rng.below(n))
    } else {
        None
    };
    for i in 0..n {
        if pair_at == Some(i) {
            let (exclude, exception) = gen_pair(rng, dirs, names, paths);
            let nl: &[u8] = if crlf { b"\r\n" } else { b"\n" };
            lines.push([&exclude[..], nl].concat());
            lines.push([&exception[..], nl].concat());
            continue;
        }
        let mut line = match rng.below(100) {
            0..=7 => b"# comment *".to_vec(),
            8..=9 => b" # not a comment".to_vec(),
            10..=14 => Vec::new(),
            15..=16 => b"   ".to_vec(),
            17 => b"!".to_vec(),
            _ => gen_pattern(rng, names, paths),
        };
        if i == 0 && rng.chance(10) {
            let mut with_bom = b"\xef\xbb\xbf".to_vec();
            with_bom.extend_from_slice(&line);
            line = with_bom;
        }
        let last = i + 1 == n;
        if !(last && rng.chance(30)) {
            if crlf || rng.chance(5) {
                line.extend_from_slice(b"\r\n");
            } else {
                line.push(b'\n');
            }
        }
        lines.push(line);
    }
    lines
}

fn gen_case(seed: u64) -> Case {
    let mut rng = Rng::new(seed);
    let mut budget = MAX_ENTRIES;
    let mut tree = gen_dir(&mut rng, 0, &mut budget);
    tree.retain(|n| {
        n.name != b"Dockerfile"
            && n.name != b".dockerignore"
            && n.name != b"Dockerfile.dockerignore"
    });
    let mut df_dir = Vec::new();
    if rng.chance(20) {
        let dir = rng.pick_b(&[&b"foo"[..], b"a", b"sp ace"]).to_vec();
        let mut children = match tree.iter().position(|n| n.name == dir) {
            Some(i) => match tree.remove(i).kind {
                Kind::Dir(c) => c,
                _ => Vec::new(),
            },
            None => Vec::new(),
        };
        children.retain(|n| n.name != b"Dockerfile" && n.name != b"Dockerfile.dockerignore");
        tree.push(Node {
            name: dir.clone(),
            kind: Kind::Dir(children),
        });
        df_dir = dir;
    }
    let builder = if rng.chance(50) {
        Builder::Buildkit
    } else {
        Builder::Classic
    };
    let mut paths = Vec::new();
    collect_paths(&tree, b"", &mut paths);
    let mut dirs = Vec::new();
    collect_dirs(&tree, b"", &mut dirs);
    let mut names: Vec<Vec<u8>> = NAMES.iter().map(|n| n.to_vec()).collect();
    for p in &paths {
        if let Some(last) = p.rsplit(|&c| c == b'/').next() {
            names.push(last.to_vec());
        }
    }
    let df_path = join(&df_dir, b"Dockerfile");
    paths.push(df_path);
    paths.push(b".dockerignore".to_vec());
    let ignore = if rng.chance(95) {
        Some(gen_ignore(&mut rng, &names, &paths, &dirs))
    } else {
        None
    };
    let specific = if rng.chance(25) {
        Some(gen_ignore(&mut rng, &names, &paths, &dirs))
    } else {
        None
    };
    let style = if df_dir.is_empty() {
        rng.below(4) as u8
    } else {
        1 + rng.below(3) as u8
    };
    Case {
        tree,
        df_dir,
        ignore,
        specific,
        builder,
        style,
    }
}

fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    if dir.is_empty() {
        return name.to_vec();
    }
    let mut p = dir.to_vec();
    p.push(b'/');
    p.extend_from_slice(name);
    p
}

fn os(b: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(b))
}

// ---------------------------------------------------------------- materialise

fn write_nodes(dir: &Path, nodes: &[Node]) {
    for n in nodes {
        let p = dir.join(os(&n.name));
        match &n.kind {
            Kind::File => fs::write(&p, b"x\n").unwrap(),
            Kind::Dir(children) => {
                fs::create_dir(&p).unwrap();
                write_nodes(&p, children);
            }
            Kind::Symlink(target) => std::os::unix::fs::symlink(os(target), &p).unwrap(),
            Kind::Fifo => {
                let c = CString::new(p.as_os_str().as_bytes()).unwrap();
                // SAFETY: c is a valid NUL-terminated path.
                let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o644) };
                assert_eq!(rc, 0, "mkfifo {}", p.display());
            }
        }
    }
}

fn materialise(case: &Case, ctx: &Path) {
    fs::create_dir_all(ctx).unwrap();
    write_nodes(ctx, &case.tree);
    let df_dir = ctx.join(os(&case.df_dir));
    fs::create_dir_all(&df_dir).unwrap();
    fs::write(df_dir.join("Dockerfile"), b"FROM scratch\nCOPY . /\n").unwrap();
    if let Some(lines) = &case.ignore {
        fs::write(ctx.join(".dockerignore"), lines.concat()).unwrap();
    }
    if let Some(lines) = &case.specific {
        fs::write(df_dir.join("Dockerfile.dockerignore"), lines.concat()).unwrap();
    }
}

// ---------------------------------------------------------------- running

/// What a program sent: every archive entry in order (directories end with
/// `/`), and the sorted list of files (`ls`, one per line).
#[derive(Debug, PartialEq)]
struct Listing {
    entries: Vec<Vec<u8>>,
    files: Vec<u8>,
}

/// Why a program refused the case: the ignore file (base name) and line
/// of the pattern it names, if it names one, and its message.
#[derive(Debug)]
struct Failure {
    culprit: Option<(String, u32)>,
    message: String,
}

type Outcome = Result<Listing, Failure>;

fn run(cmd: &mut Command) -> Result<Vec<u8>, Failure> {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    if out.status.success() {
        Ok(out.stdout)
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        Err(Failure {
            culprit: culprit(&stderr),
            message: format!("{} (stderr: {})", out.status, stderr.trim_end()),
        })
    }
}

/// The ignore file and line an error message names: `FILE:LINE:` (the
/// reference, and reggie-build's syntax errors) or `FILE, line LINE`
/// (reggie-build's errors found while matching).
fn culprit(message: &str) -> Option<(String, u32)> {
    let at = message.find("dockerignore")?;
    let start = message[..at].rfind(['/', ' ']).map_or(0, |i| i + 1);
    let file = &message[start..at + "dockerignore".len()];
    let rest = &message[at + "dockerignore".len()..];
    let digits = rest
        .strip_prefix(':')
        .or_else(|| rest.strip_prefix(", line "))?;
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    Some((file.to_string(), digits[..end].parse().ok()?))
}

/// The entries of a tar stream in order, directories with a trailing `/`.
fn tar_entries(tar: &[u8]) -> Vec<Vec<u8>> {
    let mut archive = tar::Archive::new(tar);
    let mut out = Vec::new();
    for e in archive.entries().expect("reading the context archive") {
        let e = e.expect("reading an entry of the context archive");
        let mut name = e.path_bytes().into_owned();
        if e.header().entry_type().is_dir() && !name.ends_with(b"/") {
            name.push(b'/');
        }
        out.push(name);
    }
    out
}

struct Env {
    reference: PathBuf,
    tool: PathBuf,
}

fn outcomes(env: &Env, case: &Case) -> (Outcome, Outcome) {
    let tmp = tempfile::tempdir().unwrap();
    let ctx = tmp.path().join("ctx");
    materialise(case, &ctx);
    let df_rel = join(&case.df_dir, b"Dockerfile");

    let mut r = Command::new(&env.reference);
    if case.builder == Builder::Classic {
        r.args(["--builder", "classic"]);
    }
    r.arg("--entries")
        .arg("--dockerfile")
        .arg(os(&df_rel))
        .arg(&ctx);
    let reference = run(&mut r).map(|out| {
        let entries: Vec<Vec<u8>> = out
            .split(|&c| c == b'\n')
            .filter(|l| !l.is_empty())
            .map(<[u8]>::to_vec)
            .collect();
        let mut files: Vec<&Vec<u8>> = entries.iter().filter(|e| !e.ends_with(b"/")).collect();
        files.sort();
        let files = files
            .iter()
            .flat_map(|f| [&f[..], b"\n"].concat())
            .collect();
        Listing { entries, files }
    });

    let tool_cmd = |command: &[&str]| {
        let mut t = Command::new(&env.tool);
        t.args(command);
        match case.style {
            0 => {
                t.arg(&ctx).current_dir(tmp.path());
            }
            2 => {
                t.arg(".").arg("-f").arg(os(&df_rel)).current_dir(&ctx);
            }
            _ => {
                t.arg(&ctx)
                    .arg("-f")
                    .arg(ctx.join(os(&df_rel)))
                    .current_dir(tmp.path());
            }
        }
        match case.builder {
            Builder::Classic => {
                t.args(["--builder", "classic"]);
            }
            Builder::Buildkit if case.style == 3 => {
                t.args(["--builder", "buildkit"]);
            }
            Builder::Buildkit => {}
        }
        t
    };
    let ls = run(&mut tool_cmd(&["ls"]));
    let archive = run(&mut tool_cmd(&["context", "-o", "-"]));
    let tool = match (ls, archive) {
        (Ok(files), Ok(tar)) => Ok(Listing {
            entries: tar_entries(&tar),
            files,
        }),
        (Err(e), Err(_)) => Err(e),
        (Ok(_), Err(e)) | (Err(e), Ok(_)) => Err(Failure {
            culprit: Some(("(`ls` and `context` disagree)".into(), 0)),
            message: e.message,
        }),
    };
    (reference, tool)
}

/// Both sent the same entries in the same order and list the same files,
/// or both refused the same pattern (or both refused without naming one).
fn agrees(o: &(Outcome, Outcome)) -> bool {
    match o {
        (Ok(a), Ok(b)) => a == b,
        (Err(a), Err(b)) => a.culprit == b.culprit,
        _ => false,
    }
}

// ---------------------------------------------------------------- shrinking

fn count_nodes(nodes: &[Node]) -> usize {
    nodes
        .iter()
        .map(|n| {
            1 + if let Kind::Dir(c) = &n.kind {
                count_nodes(c)
            } else {
                0
            }
        })
        .sum()
}

/// Removes the `k`-th node in pre-order; returns false if out of range.
fn remove_nth(nodes: &mut Vec<Node>, k: &mut usize) -> bool {
    for i in 0..nodes.len() {
        if *k == 0 {
            nodes.remove(i);
            return true;
        }
        *k -= 1;
        if let Kind::Dir(children) = &mut nodes[i].kind {
            if remove_nth(children, k) {
                return true;
            }
        }
    }
    false
}

/// Greedy one-at-a-time minimisation of a failing case.
fn shrink(env: &Env, mut case: Case) -> Case {
    let mut budget = 400;
    loop {
        let mut progress = false;
        for which in 0..2 {
            let mut i = 0;
            loop {
                let lines = if which == 0 {
                    &mut case.ignore
                } else {
                    &mut case.specific
                };
                let Some(ls) = lines else { break };
                if i >= ls.len() || budget == 0 {
                    break;
                }
                let mut cand = case.clone();
                let cl = if which == 0 {
                    &mut cand.ignore
                } else {
                    &mut cand.specific
                };
                cl.as_mut().unwrap().remove(i);
                budget -= 1;
                if !agrees(&outcomes(env, &cand)) {
                    case = cand;
                    progress = true;
                } else {
                    i += 1;
                }
            }
        }
        let mut k = 0;
        while k < count_nodes(&case.tree) && budget > 0 {
            let mut cand = case.clone();
            let mut kk = k;
            remove_nth(&mut cand.tree, &mut kk);
            budget -= 1;
            if !agrees(&outcomes(env, &cand)) {
                case = cand;
                progress = true;
            } else {
                k += 1;
            }
        }
        if !progress || budget == 0 {
            return case;
        }
    }
}

// ---------------------------------------------------------------- reporting

fn esc(b: &[u8]) -> String {
    let mut s = String::new();
    for &c in b {
        match c {
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            b'\t' => s.push_str("\\t"),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(c as char),
            _ => write!(s, "\\x{c:02x}").unwrap(),
        }
    }
    s
}

fn describe_tree(nodes: &[Node], prefix: &[u8], out: &mut String) {
    for n in nodes {
        let p = join(prefix, &n.name);
        match &n.kind {
            Kind::File => writeln!(out, "    {}", esc(&p)).unwrap(),
            Kind::Fifo => writeln!(out, "    {}  (fifo)", esc(&p)).unwrap(),
            Kind::Symlink(t) => writeln!(out, "    {} -> {}", esc(&p), esc(t)).unwrap(),
            Kind::Dir(c) => {
                writeln!(out, "    {}/", esc(&p)).unwrap();
                describe_tree(c, &p, out);
            }
        }
    }
}

fn describe_outcome(o: &Outcome) -> String {
    match o {
        Ok(listing) => {
            let mut s = String::from("exit 0, archive entries in order:\n");
            for l in &listing.entries {
                writeln!(s, "    {}", esc(l)).unwrap();
            }
            s
        }
        Err(e) => format!("FAILED (pattern named: {:?}) {}\n", e.culprit, e.message),
    }
}

fn report(case: &Case, o: &(Outcome, Outcome)) -> String {
    let mut s = String::new();
    let df_rel = join(&case.df_dir, b"Dockerfile");
    writeln!(
        s,
        "builder: {:?}   dockerfile: {}   style: {}",
        case.builder,
        esc(&df_rel),
        case.style
    )
    .unwrap();
    for (label, lines) in [
        (".dockerignore", &case.ignore),
        ("<Dockerfile>.dockerignore", &case.specific),
    ] {
        match lines {
            None => writeln!(s, "{label}: (absent)").unwrap(),
            Some(ls) if ls.is_empty() => writeln!(s, "{label}: (empty file)").unwrap(),
            Some(ls) => {
                writeln!(s, "{label} (escaped, one entry per line):").unwrap();
                for l in ls {
                    writeln!(s, "    \"{}\"", esc(l)).unwrap();
                }
            }
        }
    }
    writeln!(s, "tree (besides the Dockerfile and ignore files):").unwrap();
    describe_tree(&case.tree, b"", &mut s);
    write!(s, "reference: {}", describe_outcome(&o.0)).unwrap();
    write!(s, "reggie-build: {}", describe_outcome(&o.1)).unwrap();
    if let (Ok(a), Ok(b)) = o {
        let (la, lb) = (&a.entries, &b.entries);
        writeln!(s, "diff (- only in reference, + only in reggie-build):").unwrap();
        for l in la {
            if !lb.contains(l) {
                writeln!(s, "  - {}", esc(l)).unwrap();
            }
        }
        for l in lb {
            if !la.contains(l) {
                writeln!(s, "  + {}", esc(l)).unwrap();
            }
        }
        if la.iter().all(|l| lb.contains(l)) && lb.iter().all(|l| la.contains(l)) {
            writeln!(
                s,
                "  (same entries; their order or duplicates differ, or `ls` disagrees with the archive)"
            )
            .unwrap();
        }
    }
    s
}

// ---------------------------------------------------------------- setup

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    let parsed = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{name}={v:?} is not a number")))
}

fn env_flag(name: &str) -> bool {
    std::env::var(name)
        .map(|v| !v.is_empty() && v != "0")
        .unwrap_or(false)
}

fn missing_prerequisite(msg: &str) {
    common::missing_prerequisite(
        "the differential test",
        msg,
        "Install them with: apt-get install golang-go golang-github-moby-patternmatcher-dev",
    );
}

/// Builds the Go reference into `dir`; None (after reporting) if impossible.
fn build_reference(dir: &Path) -> Option<PathBuf> {
    let gopath_src =
        std::env::var("REGGIE_DIFF_GOPATH").unwrap_or_else(|_| "/usr/share/gocode".to_string());
    if Command::new("go")
        .arg("version")
        .output()
        .map(|o| !o.status.success())
        .unwrap_or(true)
    {
        missing_prerequisite("the `go` toolchain is not on PATH");
        return None;
    }
    let pm = Path::new(&gopath_src).join("src/github.com/moby/patternmatcher/patternmatcher.go");
    if !pm.is_file() {
        missing_prerequisite(&format!("{} does not exist", pm.display()));
        return None;
    }
    let out = dir.join("reference");
    let gopath = format!("{}:{}", gopath_src, dir.join("gopath").display());
    let mut cmd = Command::new("go");
    cmd.arg("build")
        .arg("-o")
        .arg(&out)
        .arg("./tests/differential/reference")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("GO111MODULE", "off")
        .env("GOPATH", gopath)
        .env("GOFLAGS", "-mod=mod")
        .env("GOPROXY", "off")
        .env("CGO_ENABLED", "0");
    if std::env::var_os("GOCACHE").is_none() {
        cmd.env("GOCACHE", dir.join("gocache"));
    }
    let res = cmd.output().expect("running go build");
    assert!(
        res.status.success(),
        "building the Go reference failed:\n{}",
        String::from_utf8_lossy(&res.stderr)
    );
    Some(out)
}

#[test]
fn differential_against_docker_patternmatcher() {
    let build_dir = tempfile::tempdir().unwrap();
    let Some(reference) = build_reference(build_dir.path()) else {
        return;
    };
    let env = Env {
        reference,
        tool: PathBuf::from(env!("CARGO_BIN_EXE_reggie-build")),
    };

    let seed = env_u64("REGGIE_DIFF_SEED").unwrap_or(DEFAULT_SEED);
    let rounds: Vec<u64> = match env_u64("REGGIE_DIFF_ROUND") {
        Some(r) => vec![r],
        None => (0..env_u64("REGGIE_DIFF_ROUNDS").unwrap_or(DEFAULT_ROUNDS)).collect(),
    };
    let keep_going = env_flag("REGGIE_DIFF_KEEP_GOING");
    let mut failures = Vec::new();
    let (mut both_failed, mut empty, mut files, mut dirs) = (0usize, 0usize, 0usize, 0usize);
    for &round in &rounds {
        let case = gen_case(seed ^ round.wrapping_mul(0xA24B_AED4_963E_E407));
        let o = outcomes(&env, &case);
        if agrees(&o) {
            match &o.0 {
                Err(_) => both_failed += 1,
                Ok(listing) => {
                    let n = listing.entries.len();
                    dirs += listing.entries.iter().filter(|e| e.ends_with(b"/")).count();
                    files += n;
                    empty += usize::from(n == 0);
                }
            }
            continue;
        }
        let mut msg = format!(
            "\n=== MISMATCH: seed {seed:#x}, round {round}\n\
             === reproduce: REGGIE_DIFF_SEED={seed:#x} REGGIE_DIFF_ROUND={round} \
             cargo test -j1 --test differential -- --nocapture\n{}",
            report(&case, &o)
        );
        if !env_flag("REGGIE_DIFF_NO_SHRINK") {
            let small = shrink(&env, case.clone());
            let o2 = outcomes(&env, &small);
            write!(msg, "--- minimised:\n{}", report(&small, &o2)).unwrap();
        }
        eprintln!("{msg}");
        failures.push(round);
        if !keep_going {
            break;
        }
    }
    assert!(
        failures.is_empty(),
        "reggie-build disagrees with Docker's patternmatcher (seed {seed:#x}) in round(s) {failures:?}; \
         see the report(s) above"
    );
    eprintln!(
        "differential: {} round(s) agreed (seed {seed:#x}; {both_failed} rejected by both \
         on the same pattern, {empty} with an empty archive, {files} archive entries in \
         total, {dirs} of them directories)",
        rounds.len()
    );
}
