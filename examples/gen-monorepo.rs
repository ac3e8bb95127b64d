//! Generates a Reggie-shaped monorepo to benchmark against.
//!
//! ```text
//! cargo run --release --example gen-monorepo -- DEST [--scale 1.0]
//! ```
//!
//! The tree mimics the repository where the Reggie backend image was built
//! with the monorepo root as context: two Next.js apps with `node_modules`
//! and `.next` caches, a root `node_modules`, a FastAPI backend with a
//! virtualenv, bytecode, models and a `.dockerignore`, and a `.git`
//! directory. At scale 1.0 it is about 1.3 GB in about 120,000 files.
//!
//! Output is deterministic (a fixed-seed xorshift generator, no clock, no
//! `HashMap` iteration), so two runs at one scale give identical trees and
//! timings stay comparable between machines and commits. `--scale`
//! multiplies file counts and the sizes of big files.
//!
//! Text files are slices of a generated JavaScript or Python corpus, so they
//! compress like source code; `.pack`, `.joblib`, `.pyc`, `.so` and git
//! objects are random bytes, so they do not compress at all, like the real
//! ones.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

const KB: u64 = 1024;
const MB: u64 = 1024 * 1024;

/// Words for identifiers, package names and prose.
const WORDS: &[&str] = &[
    "user",
    "account",
    "session",
    "token",
    "auth",
    "request",
    "response",
    "handler",
    "router",
    "config",
    "options",
    "state",
    "store",
    "action",
    "reducer",
    "effect",
    "context",
    "provider",
    "client",
    "server",
    "cache",
    "query",
    "mutation",
    "schema",
    "model",
    "field",
    "value",
    "item",
    "list",
    "map",
    "set",
    "key",
    "index",
    "count",
    "total",
    "price",
    "order",
    "invoice",
    "payment",
    "customer",
    "product",
    "cart",
    "checkout",
    "shipping",
    "address",
    "email",
    "phone",
    "name",
    "title",
    "label",
    "button",
    "form",
    "input",
    "modal",
    "dialog",
    "table",
    "row",
    "column",
    "cell",
    "header",
    "footer",
    "layout",
    "page",
    "route",
    "link",
    "image",
    "icon",
    "theme",
    "color",
    "style",
    "format",
    "parse",
    "render",
    "update",
    "create",
    "delete",
    "fetch",
    "load",
    "save",
    "validate",
    "transform",
    "filter",
    "reduce",
    "merge",
    "split",
    "join",
    "encode",
    "decode",
    "stream",
    "buffer",
    "event",
    "emit",
    "listen",
    "timer",
    "retry",
    "error",
    "result",
    "status",
    "debug",
    "logger",
    "metric",
    "trace",
    "span",
    "worker",
    "queue",
    "job",
    "task",
    "batch",
    "chunk",
    "node",
    "tree",
    "graph",
    "edge",
    "path",
    "file",
    "module",
    "plugin",
    "core",
    "util",
    "helper",
    "common",
    "shared",
    "base",
    "data",
    "meta",
    "info",
];

/// xorshift64*: tiny, fast, and the same sequence everywhere.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// Log-uniform between `lo` and `hi`: many small files, a long tail,
    /// which is how source file sizes are spread.
    fn log_size(&mut self, lo: u64, hi: u64) -> u64 {
        let u = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let (a, b) = ((lo as f64).ln(), (hi as f64).ln());
        (a + u * (b - a)).exp() as u64
    }

    fn word(&mut self) -> &'static str {
        WORDS[self.below(WORDS.len() as u64) as usize]
    }

    fn fill(&mut self, buf: &mut [u8]) {
        let mut chunks = buf.chunks_exact_mut(8);
        for c in &mut chunks {
            c.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let rest = chunks.into_remainder();
        let last = self.next_u64().to_le_bytes();
        rest.copy_from_slice(&last[..rest.len()]);
    }
}

#[derive(Clone, Copy)]
enum Lang {
    Js,
    Py,
}

struct Gen {
    root: String,
    scale: f64,
    rng: Rng,
    js: Vec<u8>,
    py: Vec<u8>,
    /// Reused for every binary write: one allocation for the whole run.
    bin: Vec<u8>,
    /// Reused for every path, so writing a file allocates nothing.
    path: String,
    files: u64,
    bytes: u64,
}

impl Gen {
    fn new(root: String, scale: f64) -> Gen {
        let mut rng = Rng(0x5EED_BA5E_D0C4_E12B);
        let js = corpus(&mut rng, Lang::Js, 4 * MB as usize);
        let py = corpus(&mut rng, Lang::Py, 4 * MB as usize);
        Gen {
            root,
            scale,
            rng,
            js,
            py,
            bin: vec![0; MB as usize],
            path: String::with_capacity(512),
            files: 0,
            bytes: 0,
        }
    }

    /// A file count at this scale (at least one, so every shape exists).
    fn n(&self, base: u64) -> u64 {
        ((base as f64 * self.scale).round() as u64).max(1)
    }

    /// A big file's size at this scale.
    fn big(&self, bytes: u64) -> u64 {
        ((bytes as f64 * self.scale) as u64).max(4 * KB)
    }

    fn set_path(&mut self, rel: std::fmt::Arguments<'_>) {
        self.path.clear();
        self.path.push_str(&self.root);
        self.path.push('/');
        self.path.write_fmt(rel).unwrap();
    }

    /// Creates the file at `self.path`, making its directory on first use
    /// (one failed `open` per new directory is cheaper than tracking them).
    fn create(&mut self) -> io::Result<File> {
        match File::create(&self.path) {
            Ok(f) => Ok(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let parent = std::path::Path::new(&self.path).parent().unwrap();
                fs::create_dir_all(parent)?;
                File::create(&self.path)
            }
            Err(e) => Err(e),
        }
    }

    fn literal(&mut self, rel: std::fmt::Arguments<'_>, content: &[u8]) -> io::Result<()> {
        self.set_path(rel);
        self.create()?.write_all(content)?;
        self.files += 1;
        self.bytes += content.len() as u64;
        Ok(())
    }

    /// A source file of `len` bytes cut from the corpus at a random line.
    fn text(&mut self, rel: std::fmt::Arguments<'_>, lang: Lang, len: u64) -> io::Result<()> {
        self.set_path(rel);
        let mut f = self.create()?;
        let corpus = match lang {
            Lang::Js => &self.js,
            Lang::Py => &self.py,
        };
        let mut start = self.rng.below(corpus.len() as u64) as usize;
        start = corpus[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(0, |p| start + p + 1);
        let mut left = len as usize;
        while left > 0 {
            let end = (start + left).min(corpus.len());
            f.write_all(&corpus[start..end])?;
            left -= end - start;
            start = 0;
        }
        self.files += 1;
        self.bytes += len;
        Ok(())
    }

    /// A file of `len` random bytes, written in 1 MiB chunks.
    fn binary(&mut self, rel: std::fmt::Arguments<'_>, len: u64) -> io::Result<()> {
        self.set_path(rel);
        let mut f = self.create()?;
        let mut left = len;
        while left > 0 {
            let n = left.min(self.bin.len() as u64) as usize;
            self.rng.fill(&mut self.bin[..n]);
            f.write_all(&self.bin[..n])?;
            left -= n as u64;
        }
        self.files += 1;
        self.bytes += len;
        Ok(())
    }

    /// A package name, unique within `taken` (sorted, for determinism).
    fn package_name(&mut self, taken: &mut Vec<String>) -> String {
        loop {
            let mut name = String::new();
            if self.rng.chance(12) {
                let _ = write!(name, "@{}/", self.rng.word());
            }
            name.push_str(self.rng.word());
            if self.rng.chance(70) {
                name.push('-');
                name.push_str(self.rng.word());
            }
            if let Err(pos) = taken.binary_search(&name) {
                taken.insert(pos, name.clone());
                return name;
            }
        }
    }

    /// One npm package and, sometimes, its own nested `node_modules`.
    fn npm_package(&mut self, dir: &str, name: &str, files: u64, depth: u32) -> io::Result<()> {
        let pkg = format!("{dir}/{name}");
        let manifest = format!(
            "{{\n  \"name\": \"{name}\",\n  \"version\": \"{}.{}.{}\",\n  \"main\": \"index.js\",\n  \"license\": \"MIT\"\n}}\n",
            self.rng.below(20),
            self.rng.below(30),
            self.rng.below(10)
        );
        self.literal(format_args!("{pkg}/package.json"), manifest.as_bytes())?;
        let len = self.rng.range(800, 12_000);
        self.text(format_args!("{pkg}/README.md"), Lang::Js, len)?;
        self.literal(format_args!("{pkg}/LICENSE"), LICENSE)?;
        let len = self.rng.range(200, 2_000);
        self.text(format_args!("{pkg}/index.js"), Lang::Js, len)?;
        let subdirs = ["lib", "dist", "dist/esm", "dist/cjs", "src", "types"];
        for i in 0..files.saturating_sub(4) {
            let sub = subdirs[self.rng.below(subdirs.len() as u64) as usize];
            let w = self.rng.word();
            let ext = match self.rng.below(10) {
                0..=5 => "js",
                6 => "mjs",
                7 => "d.ts",
                8 => "js.map",
                _ => "cjs",
            };
            // A few bundles are large, as in real packages.
            let len = if self.rng.chance(1) {
                self.rng.log_size(50 * KB, 300 * KB)
            } else {
                self.rng.log_size(500, 20 * KB)
            };
            self.text(format_args!("{pkg}/{sub}/{w}-{i}.{ext}"), Lang::Js, len)?;
        }
        if depth < 2 && self.rng.chance(15) {
            let mut taken = Vec::new();
            for _ in 0..self.rng.range(1, 4) {
                let dep = self.package_name(&mut taken);
                let n = self.rng.range(4, 30);
                self.npm_package(&format!("{pkg}/node_modules"), &dep, n, depth + 1)?;
            }
        }
        Ok(())
    }

    /// A `node_modules` of about `files` files (at this scale).
    fn node_modules(&mut self, dir: &str, files: u64) -> io::Result<()> {
        let target = self.files + self.n(files);
        let mut taken = Vec::new();
        while self.files < target {
            let name = self.package_name(&mut taken);
            let n = self.rng.log_size(5, 200);
            self.npm_package(&format!("{dir}/node_modules"), &name, n, 0)?;
        }
        self.literal(
            format_args!("{dir}/node_modules/.modules.yaml"),
            b"layoutVersion: 5\nnodeLinker: isolated\n",
        )
    }

    fn next_app(&mut self, app: &str, scale_files: u64) -> io::Result<()> {
        let dir = format!("apps/{app}");
        let manifest = format!(
            "{{\n  \"name\": \"@reggie/{app}\",\n  \"private\": true,\n  \"scripts\": {{ \"dev\": \"next dev\", \"build\": \"next build\" }},\n  \"dependencies\": {{ \"next\": \"14.2.3\", \"react\": \"18.3.1\", \"react-dom\": \"18.3.1\" }}\n}}\n"
        );
        self.literal(format_args!("{dir}/package.json"), manifest.as_bytes())?;
        self.literal(
            format_args!("{dir}/next.config.js"),
            b"/** @type {import('next').NextConfig} */\nmodule.exports = { output: 'standalone' };\n",
        )?;
        self.text(format_args!("{dir}/tsconfig.json"), Lang::Js, 700)?;
        for i in 0..self.n(300) {
            let area = ["app", "components", "lib", "hooks", "styles"][self.rng.below(5) as usize];
            let w = self.rng.word();
            let len = self.rng.log_size(500, 20 * KB);
            self.text(format_args!("{dir}/src/{area}/{w}-{i}.tsx"), Lang::Js, len)?;
        }
        for i in 0..self.n(40) {
            let len = self.rng.log_size(2 * KB, 300 * KB);
            self.binary(format_args!("{dir}/public/img-{i}.png"), len)?;
        }
        // The webpack cache: a few very large binaries.
        for kind in [
            "client-production",
            "server-production",
            "edge-server-production",
        ] {
            for i in 0..4 {
                let len = self.rng.range(6 * MB, 14 * MB);
                let len = self.big(len);
                self.binary(
                    format_args!("{dir}/.next/cache/webpack/{kind}/{i}.pack"),
                    len,
                )?;
            }
            let len = self.big(MB);
            self.binary(
                format_args!("{dir}/.next/cache/webpack/{kind}/index.pack"),
                len,
            )?;
        }
        for i in 0..self.n(400) {
            let w = self.rng.word();
            let len = self.rng.log_size(KB, 60 * KB);
            self.text(
                format_args!("{dir}/.next/server/app/{w}/page-{i}.js"),
                Lang::Js,
                len,
            )?;
        }
        for i in 0..self.n(500) {
            let len = self.rng.log_size(KB, 120 * KB);
            let (sub, ext) = if i % 8 == 0 {
                ("css", "css")
            } else {
                ("chunks", "js")
            };
            let h = self.rng.next_u64();
            self.text(
                format_args!("{dir}/.next/static/{sub}/{h:016x}.{ext}"),
                Lang::Js,
                len,
            )?;
        }
        self.node_modules(&dir, scale_files)
    }

    /// A Python package tree with bytecode beside it.
    fn py_tree(&mut self, dir: &str, modules: u64, pycache: bool) -> io::Result<()> {
        let subs = [
            "api",
            "api/routes",
            "core",
            "db",
            "models",
            "schemas",
            "services",
            "utils",
        ];
        for i in 0..self.n(modules) {
            let sub = subs[self.rng.below(subs.len() as u64) as usize];
            let w = self.rng.word();
            let len = self.rng.log_size(500, 20 * KB);
            self.text(format_args!("{dir}/{sub}/{w}_{i}.py"), Lang::Py, len)?;
            if pycache {
                let len = len / 2 + 300;
                self.binary(
                    format_args!("{dir}/{sub}/__pycache__/{w}_{i}.cpython-311.pyc"),
                    len,
                )?;
            }
        }
        for sub in subs {
            self.literal(format_args!("{dir}/{sub}/__init__.py"), b"")?;
        }
        Ok(())
    }

    fn venv(&mut self, files: u64) -> io::Result<()> {
        let sp = "backend/venv/lib/python3.11/site-packages";
        self.literal(
            format_args!("backend/venv/pyvenv.cfg"),
            b"home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.11.9\n",
        )?;
        for tool in ["python", "pip", "uvicorn", "alembic", "pytest"] {
            self.text(format_args!("backend/venv/bin/{tool}"), Lang::Py, 300)?;
        }
        let target = self.files + self.n(files);
        let mut taken = Vec::new();
        while self.files < target {
            let name = self.package_name(&mut taken).replace(['-', '/', '@'], "_");
            let v = format!(
                "{}.{}.{}",
                self.rng.below(5),
                self.rng.below(30),
                self.rng.below(10)
            );
            for meta in ["METADATA", "RECORD", "WHEEL", "top_level.txt"] {
                let len = self.rng.log_size(100, 8 * KB);
                self.text(
                    format_args!("{sp}/{name}-{v}.dist-info/{meta}"),
                    Lang::Py,
                    len,
                )?;
            }
            for i in 0..self.rng.log_size(3, 150) {
                let w = self.rng.word();
                let len = self.rng.log_size(500, 30 * KB);
                self.text(format_args!("{sp}/{name}/{w}_{i}.py"), Lang::Py, len)?;
                if self.rng.chance(60) {
                    let len = len / 2 + 300;
                    self.binary(
                        format_args!("{sp}/{name}/__pycache__/{w}_{i}.cpython-311.pyc"),
                        len,
                    )?;
                }
            }
            // Compiled extensions are the venv's big files.
            if self.rng.chance(8) {
                let len = self.rng.log_size(200 * KB, 8 * MB);
                self.binary(
                    format_args!("{sp}/{name}/_speedups.cpython-311-x86_64-linux-gnu.so"),
                    len,
                )?;
            }
        }
        Ok(())
    }

    fn backend(&mut self) -> io::Result<()> {
        self.literal(format_args!("backend/Dockerfile"), DOCKERFILE_ROOT_CONTEXT)?;
        self.literal(
            format_args!("backend/Dockerfile.backend-context"),
            DOCKERFILE_BACKEND_CONTEXT,
        )?;
        self.literal(
            format_args!("backend/Dockerfile.scratch"),
            DOCKERFILE_SCRATCH,
        )?;
        self.literal(format_args!("backend/.dockerignore"), DOCKERIGNORE)?;
        self.literal(
            format_args!("backend/.env"),
            b"DATABASE_URL=postgresql://reggie:secret@localhost/reggie\nSECRET_KEY=not-a-real-key\n",
        )?;
        self.literal(format_args!("backend/requirements.txt"), REQUIREMENTS)?;
        self.literal(format_args!("backend/alembic.ini"), ALEMBIC_INI)?;
        self.text(format_args!("backend/app/main.py"), Lang::Py, 3 * KB)?;
        self.literal(format_args!("backend/app/__init__.py"), b"")?;
        self.py_tree("backend/app", 350, true)?;
        self.text(format_args!("backend/alembic/env.py"), Lang::Py, 3 * KB)?;
        for i in 0..self.n(150) {
            let h = self.rng.next_u64() & 0xffff_ffff_ffff;
            let (w1, w2) = (self.rng.word(), self.rng.word());
            let len = self.rng.log_size(KB, 12 * KB);
            self.text(
                format_args!("backend/alembic/versions/{h:012x}_{i:04}_{w1}_{w2}.py"),
                Lang::Py,
                len,
            )?;
        }
        for i in 0..self.n(30) {
            let w = self.rng.word();
            let len = self.rng.log_size(500, 10 * KB);
            self.text(format_args!("backend/scripts/{w}_{i}.py"), Lang::Py, len)?;
        }
        self.py_tree("backend/tests", 200, true)?;
        self.literal(
            format_args!("backend/.pytest_cache/v/cache/lastfailed"),
            b"{}\n",
        )?;
        for i in 0..4 {
            let len = self.rng.range(36 * MB, 44 * MB);
            let len = self.big(len);
            self.binary(format_args!("backend/models/model-{i}.joblib"), len)?;
        }
        self.literal(
            format_args!("backend/models/README.md"),
            b"Trained models; see scripts/train.py.\n",
        )?;
        self.venv(20_000)
    }

    fn git(&mut self) -> io::Result<()> {
        self.literal(format_args!(".git/HEAD"), b"ref: refs/heads/main\n")?;
        self.literal(
            format_args!(".git/config"),
            b"[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = false\n",
        )?;
        let head = self.rng.next_u64();
        self.literal(
            format_args!(".git/refs/heads/main"),
            format!("{head:016x}{head:024x}\n").as_bytes(),
        )?;
        self.binary(format_args!(".git/index"), self.big(12 * MB))?;
        for i in 0..2 {
            let h = self.rng.next_u64();
            let len = self.big(if i == 0 { 160 * MB } else { 30 * MB });
            self.binary(
                format_args!(".git/objects/pack/pack-{h:016x}{h:024x}.pack"),
                len,
            )?;
            let len = self.big(4 * MB);
            self.binary(
                format_args!(".git/objects/pack/pack-{h:016x}{h:024x}.idx"),
                len,
            )?;
        }
        for _ in 0..self.n(9_000) {
            let (a, b) = (self.rng.next_u64(), self.rng.next_u64());
            let len = self.rng.log_size(60, 8 * KB);
            self.binary(
                format_args!(
                    ".git/objects/{:02x}/{:014x}{b:024x}",
                    a >> 56,
                    a & 0xff_ffff_ffff_ffff
                ),
                len,
            )?;
        }
        Ok(())
    }

    fn root_files(&mut self) -> io::Result<()> {
        self.literal(format_args!("package.json"), ROOT_PACKAGE_JSON)?;
        self.literal(format_args!("sst.config.ts"), SST_CONFIG)?;
        self.literal(
            format_args!(".gitignore"),
            b"node_modules\n.next\n__pycache__\nvenv\n.env\n*.joblib\n",
        )?;
        self.literal(
            format_args!("README.md"),
            b"# Reggie\n\nThe Reggie monorepo: web, admin, backend.\n",
        )?;
        self.literal(
            format_args!("pnpm-workspace.yaml"),
            b"packages:\n  - apps/*\n",
        )?;
        self.text(format_args!("pnpm-lock.yaml"), Lang::Js, self.big(2 * MB))
    }
}

/// A corpus of `len` bytes of JavaScript- or Python-like lines.
fn corpus(rng: &mut Rng, lang: Lang, len: usize) -> Vec<u8> {
    let mut s = String::with_capacity(len + 256);
    let mut indent = 0usize;
    while s.len() < len {
        for _ in 0..indent {
            s.push_str("  ");
        }
        let (a, b, c) = (rng.word(), rng.word(), rng.word());
        let n = rng.below(1000);
        match (lang, rng.below(9)) {
            (Lang::Js, 0) => writeln!(s, "import {{ {a}, {b}{} }} from \"./{c}\";", cap(c)),
            (Lang::Js, 1) => {
                indent = (indent + 1).min(4);
                writeln!(s, "export function {a}{}({b}, {c}) {{", cap(b))
            }
            (Lang::Js, 2) => {
                indent = indent.saturating_sub(1);
                writeln!(s, "}}")
            }
            (Lang::Js, 3) => writeln!(s, "const {a}{} = {b}.{c}({n});", cap(b)),
            (Lang::Js, 4) => writeln!(s, "if ({a} === null || {a}.{b} > {n}) return {c};"),
            (Lang::Js, 5) => writeln!(s, "// {a} the {b} before {c} is ready"),
            (Lang::Js, 6) => writeln!(s, "{a}.{b} = {{ {c}: {n}, {b}: \"{a}-{c}\" }};"),
            (Lang::Js, 7) => writeln!(s, "return await {a}{}({b}, {{ {c} }});", cap(b)),
            (Lang::Js, _) => writeln!(s, "let {a} = [{n}, \"{b}\", {c}];"),
            (Lang::Py, 0) => writeln!(s, "from app.{a} import {b}_{c}"),
            (Lang::Py, 1) => {
                indent = (indent + 1).min(3);
                writeln!(s, "def {a}_{b}(self, {c}: int = {n}) -> dict:")
            }
            (Lang::Py, 2) => {
                indent = indent.saturating_sub(1);
                writeln!(s, "return {a}_{b}")
            }
            (Lang::Py, 3) => writeln!(s, "{a}_{b} = self.{c}.get(\"{a}\", {n})"),
            (Lang::Py, 4) => writeln!(s, "if {a} is None or {b} > {n}:"),
            (Lang::Py, 5) => writeln!(s, "# {a} the {b} before {c} is ready"),
            (Lang::Py, 6) => writeln!(s, "{a}: Mapped[str] = mapped_column(String({n}))"),
            (Lang::Py, 7) => writeln!(
                s,
                "raise HTTPException(status_code=404, detail=\"{a} {b}\")"
            ),
            (Lang::Py, _) => writeln!(s, "{a} = [{b} for {b} in {c} if {b}.{a}]"),
        }
        .unwrap();
    }
    s.into_bytes()
}

fn cap(w: &str) -> String {
    let mut c = w.chars();
    c.next()
        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
        .unwrap_or_default()
}

const LICENSE: &[u8] = b"MIT License\n\nPermission is hereby granted, free of charge, to any person obtaining a copy\nof this software, to deal in the Software without restriction.\n";

/// The Reggie mistake: written for the monorepo root as context.
const DOCKERFILE_ROOT_CONTEXT: &[u8] = b"FROM python:3.11-slim
WORKDIR /app
COPY backend/requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY backend/app/ ./app/
COPY backend/alembic/ ./alembic/
COPY backend/alembic.ini .
COPY backend/scripts/ ./scripts/
CMD [\"uvicorn\", \"app.main:app\", \"--host\", \"0.0.0.0\", \"--port\", \"8000\"]
";

/// The fix: the same image with `backend` as context.
const DOCKERFILE_BACKEND_CONTEXT: &[u8] = b"FROM python:3.11-slim
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY app/ ./app/
COPY alembic/ ./alembic/
COPY alembic.ini .
COPY scripts/ ./scripts/
CMD [\"uvicorn\", \"app.main:app\", \"--host\", \"0.0.0.0\", \"--port\", \"8000\"]
";

/// For timing `image` against `docker build` without pulling a base image.
const DOCKERFILE_SCRATCH: &[u8] = b"FROM scratch
COPY backend/requirements.txt /app/
COPY backend/app/ /app/app/
COPY backend/alembic/ /app/alembic/
COPY backend/alembic.ini /app/
COPY backend/scripts/ /app/scripts/
";

const DOCKERIGNORE: &[u8] = b"__pycache__
*.pyc
.pytest_cache
tests/
venv/
.env
.git
node_modules
.next
models/*.joblib
";

const REQUIREMENTS: &[u8] = b"fastapi==0.111.0\nuvicorn[standard]==0.30.1\nsqlalchemy==2.0.30\nalembic==1.13.1\npydantic==2.7.4\npsycopg[binary]==3.1.19\nscikit-learn==1.5.0\njoblib==1.4.2\n";

const ALEMBIC_INI: &[u8] =
    b"[alembic]\nscript_location = alembic\nsqlalchemy.url = driver://user:pass@localhost/dbname\n";

const ROOT_PACKAGE_JSON: &[u8] = b"{\n  \"name\": \"reggie\",\n  \"private\": true,\n  \"workspaces\": [\"apps/*\"],\n  \"devDependencies\": { \"sst\": \"3.0.1\", \"turbo\": \"2.0.4\", \"typescript\": \"5.4.5\" }\n}\n";

const SST_CONFIG: &[u8] = b"/// <reference path=\"./.sst/platform/config.d.ts\" />
export default $config({
  app(input) {
    return { name: \"reggie\", removal: input?.stage === \"production\" ? \"retain\" : \"remove\", home: \"aws\" };
  },
  async run() {
    const vpc = new sst.aws.Vpc(\"Vpc\");
    const cluster = new sst.aws.Cluster(\"Cluster\", { vpc });
    cluster.addService(\"Backend\", { image: { context: \".\", dockerfile: \"backend/Dockerfile\" } });
    new sst.aws.Nextjs(\"Web\", { path: \"apps/web\" });
    new sst.aws.Nextjs(\"Admin\", { path: \"apps/admin\" });
  },
});
";

fn main() {
    let mut args = std::env::args().skip(1);
    let mut dest = None;
    let mut scale = 1.0f64;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--scale" => {
                scale = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .filter(|s: &f64| *s > 0.0)
                    .unwrap_or_else(|| usage("--scale needs a positive number"))
            }
            "-h" | "--help" => usage(""),
            _ if dest.is_none() && !a.starts_with('-') => dest = Some(PathBuf::from(a)),
            _ => usage(&format!("unexpected argument {a}")),
        }
    }
    let dest = dest.unwrap_or_else(|| usage("DEST is required"));
    // Refuse to mix with an existing tree: counts would no longer be the
    // generator's, and a typo must not scribble into a real repository.
    if fs::read_dir(&dest).is_ok_and(|mut d| d.next().is_some()) {
        usage(&format!("{} exists and is not empty", dest.display()));
    }
    let started = Instant::now();
    match generate(&dest, scale) {
        Ok((files, bytes)) => println!(
            "gen-monorepo: {files} files, {bytes} bytes ({:.1} MiB) at scale {scale} in {:.1}s -> {}",
            bytes as f64 / MB as f64,
            started.elapsed().as_secs_f64(),
            dest.display()
        ),
        Err(e) => {
            eprintln!("gen-monorepo: {e}");
            std::process::exit(1);
        }
    }
}

/// Writes the monorepo under `dest` and returns (files, bytes). Public so
/// `benches/engine.rs` can build the same tree (it includes this file).
pub fn generate(dest: &Path, scale: f64) -> io::Result<(u64, u64)> {
    let mut g = Gen::new(dest.to_string_lossy().into_owned(), scale);
    let result = (|| -> io::Result<()> {
        g.root_files()?;
        g.next_app("web", 36_000)?;
        g.next_app("admin", 20_000)?;
        g.node_modules(".", 30_000)?;
        g.backend()?;
        g.git()
    })();
    result.map_err(|e| io::Error::new(e.kind(), format!("writing {}: {e}", g.path)))?;
    Ok((g.files, g.bytes))
}

fn usage(msg: &str) -> ! {
    if !msg.is_empty() {
        eprintln!("gen-monorepo: {msg}");
    }
    eprintln!("usage: gen-monorepo DEST [--scale S]   (S=1.0: ~1.3 GB, ~120,000 files)");
    std::process::exit(if msg.is_empty() { 0 } else { 2 });
}
