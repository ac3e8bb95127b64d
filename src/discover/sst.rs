//! The images of SST configs: `new sst.aws.Service(NAME, { image })` and
//! `new sst.aws.Task(NAME, { image })`, read from the TypeScript syntax tree
//! (swc's parser), never by pattern matching on the text.
//!
//! SST resolves `image.context` against the directory of `sst.config.ts`
//! and `image.dockerfile` against the context; both default to `.` and
//! `Dockerfile`. Only string literals and template literals without
//! `${…}` are read: anything else is reported, not evaluated. Relative
//! imports of the config (`import "./infra/api"`, `await
//! import("./infra/api")`) are followed, since SST apps often declare their
//! components there.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use swc_common::{sync::Lrc, FileName, SourceMap, Span};
use swc_ecma_ast::{
    ArrowFunctionBody, BlockStmt, Callee, Decl, DefaultDecl, EsVersion, Expr, Function, Lit,
    MemberProp, Module, ModuleDecl, ModuleItem, NewExpr, ObjectLit, Prop, PropName, PropOrSpread,
    Stmt, VarDeclOrExpr,
};
use swc_ecma_parser::{parse_file_as_module, Syntax, TsSyntax};

use super::{join_normal, nesting, parent_of, relative_to_root, slash, Declared, Source};

/// The most files one config may pull in through relative imports.
const MAX_FILES: usize = 64;

/// Reads one `sst.config.ts` (root-relative) and the files it imports;
/// returns the builds and file-level warnings.
pub(crate) fn read(root: &Path, config: &Path) -> (Vec<Declared>, Vec<String>) {
    let config_dir = parent_of(config);
    let mut reader = Reader {
        root,
        config_dir: &config_dir,
        builds: Vec::new(),
        warnings: Vec::new(),
    };
    let mut queue = vec![config.to_path_buf()];
    let mut seen = BTreeSet::new();
    while let Some(file) = queue.pop() {
        if !seen.insert(file.clone()) || seen.len() > MAX_FILES {
            continue;
        }
        let imports = reader.read_file(&file);
        for spec in imports.into_iter().rev() {
            if let Some(next) = resolve_import(root, &file, &spec) {
                queue.push(next);
            }
        }
    }
    (reader.builds, reader.warnings)
}

/// Reads config text as `sst.config.ts` of `root`, without following its
/// imports; the number of builds and of warnings.
pub(super) fn read_text(root: &Path, text: &str) -> (usize, usize) {
    let config = Path::new("sst.config.ts");
    let mut reader = Reader {
        root,
        config_dir: Path::new(""),
        builds: Vec::new(),
        warnings: Vec::new(),
    };
    reader.read_source(config, text.to_string());
    (reader.builds.len(), reader.warnings.len())
}

/// A relative import specifier resolved to a root-relative file.
fn resolve_import(root: &Path, from: &Path, spec: &str) -> Option<PathBuf> {
    if !(spec.starts_with("./") || spec.starts_with("../")) {
        return None;
    }
    let base = join_normal(&parent_of(from), Path::new(spec));
    if base.starts_with("..") {
        return None;
    }
    let stem = base.to_string_lossy().into_owned();
    let stem = stem
        .strip_suffix(".js")
        .or_else(|| stem.strip_suffix(".mjs"))
        .unwrap_or(&stem)
        .to_string();
    let candidates = [
        base.clone(),
        PathBuf::from(format!("{stem}.ts")),
        PathBuf::from(format!("{stem}.mts")),
        PathBuf::from(format!("{stem}.js")),
        PathBuf::from(format!("{stem}.mjs")),
        base.join("index.ts"),
        base.join("index.js"),
    ];
    candidates.into_iter().find(|c| root.join(c).is_file())
}

struct Reader<'a> {
    root: &'a Path,
    config_dir: &'a Path,
    builds: Vec<Declared>,
    warnings: Vec<String>,
}

/// The component types that build an image.
const COMPONENTS: &[&str] = &["Service", "Task"];

/// What one `image` value says.
#[derive(Default)]
struct Image {
    context: Option<String>,
    dockerfile: Option<String>,
    target: Option<String>,
    /// A string `image` that is not a directory: a pre-built image.
    prebuilt: Option<String>,
    warnings: Vec<String>,
    resolved: bool,
}

impl Reader<'_> {
    /// Parses one file and collects its components; returns the relative
    /// import specifiers it uses.
    fn read_file(&mut self, file: &Path) -> Vec<String> {
        let text = match crate::input::read_text(self.root, file, crate::input::TEXT_LIMIT) {
            Ok(t) => t,
            Err(e) => {
                self.warnings.push(e.to_string());
                return Vec::new();
            }
        };
        self.read_source(file, text)
    }

    /// Parses one file's text and collects its components; returns the
    /// relative import specifiers it uses.
    fn read_source(&mut self, file: &Path, text: String) -> Vec<String> {
        if let Err(deep) = nesting::check(&text) {
            self.warnings.push(format!(
                "{}:{}: expressions or statements nested more than {} deep: not analysed; split the nested code into named parts",
                slash(file),
                deep.line,
                nesting::MAX_NESTING
            ));
            return Vec::new();
        }
        // swc recurses as deep as the code nests, and so do the walk and
        // the tree's drop: all three run on a thread with a stack sized for
        // the nesting checked above.
        let parsed = std::thread::scope(|scope| {
            std::thread::Builder::new()
                .name("sst-parse".into())
                .stack_size(nesting::PARSE_STACK)
                .spawn_scoped(scope, || self.parse_and_walk(file, text))
                .map(|h| h.join())
        });
        match parsed {
            Ok(Ok(imports)) => imports,
            Ok(Err(_)) => {
                self.warnings.push(format!(
                    "{}: the TypeScript parser failed: not analysed",
                    slash(file)
                ));
                Vec::new()
            }
            Err(e) => {
                self.warnings.push(format!(
                    "{}: cannot start a parsing thread: {e}",
                    slash(file)
                ));
                Vec::new()
            }
        }
    }

    fn parse_and_walk(&mut self, file: &Path, text: String) -> Vec<String> {
        let cm: Lrc<SourceMap> = Default::default();
        let fm = cm.new_source_file(Lrc::new(FileName::Custom(slash(file))), text);
        // JSX is not read: the nesting pre-scan does not know its text.
        let syntax = Syntax::Typescript(TsSyntax::default());
        let mut recovered = Vec::new();
        let module =
            match parse_file_as_module(&fm, syntax, EsVersion::latest(), None, &mut recovered) {
                Ok(m) => m,
                Err(e) => {
                    let line = cm.lookup_char_pos(swc_common::Spanned::span(&e).lo).line;
                    self.warnings.push(format!(
                        "{}:{line}: cannot parse as TypeScript: {}",
                        slash(file),
                        crate::text::excerpt(&e.kind().msg())
                    ));
                    return Vec::new();
                }
            };
        let mut walker = Walker {
            cm: &cm,
            found: Vec::new(),
            imports: Vec::new(),
        };
        walker.module(&module);
        let Walker { found, imports, .. } = walker;
        for (new, kind, line) in found {
            self.component(file, new, kind, line);
        }
        imports
    }

    /// One `new sst.aws.Service(...)` / `Task(...)`.
    fn component(&mut self, file: &Path, new: &NewExpr, kind: &str, line: usize) {
        let args = new.args.as_deref().unwrap_or(&[]);
        let mut warnings = Vec::new();
        let name = match args.first().map(|a| literal(&a.expr)) {
            Some(Literal::Str(s)) => s,
            _ => {
                warnings.push("cannot read the component name statically".to_string());
                format!("{kind}-{line}")
            }
        };
        // SST runs Services and Tasks on x86_64 unless `architecture` says.
        let mut platform = Some("linux/amd64".to_string());
        let props = match args.get(1).map(|a| unwrap(&a.expr)) {
            Some(Expr::Object(obj)) => Some(obj),
            None => None,
            Some(_) => {
                warnings.push(
                    "cannot read the component's arguments statically; assumed the default image (./Dockerfile)"
                        .to_string(),
                );
                let image = Image {
                    warnings,
                    resolved: false,
                    ..Image::default()
                };
                self.push(file, line, name, image, None);
                return;
            }
        };
        match props
            .and_then(|p| prop(p, "architecture"))
            .map(Field::literal)
        {
            None => {}
            Some(Literal::Str(a)) if a == "arm64" => platform = Some("linux/arm64".into()),
            Some(Literal::Str(a)) if a == "x86_64" => {}
            Some(_) => {
                warnings.push(
                    "cannot read `architecture` statically; the platform it deploys on is unknown"
                        .to_string(),
                );
                platform = None;
            }
        }
        // A Service may list its containers, each with its own image.
        if let Some(containers) = props.and_then(|p| prop(p, "containers")?.expr()) {
            if let Expr::Array(arr) = unwrap(containers) {
                for (i, el) in arr.elems.iter().enumerate() {
                    let Some(el) = el else { continue };
                    let Expr::Object(c) = unwrap(&el.expr) else {
                        continue;
                    };
                    let cname = match prop(c, "name").map(Field::literal) {
                        Some(Literal::Str(s)) => s,
                        _ => format!("{}", i + 1),
                    };
                    let mut image = self.image(prop(c, "image"));
                    image.warnings.splice(0..0, warnings.iter().cloned());
                    self.push(
                        file,
                        line,
                        format!("{name}-{cname}"),
                        image,
                        platform.clone(),
                    );
                }
                return;
            }
        }
        let mut image = self.image(props.and_then(|p| prop(p, "image")));
        image.warnings.splice(0..0, warnings);
        self.push(file, line, name, image, platform);
    }

    /// Reads an `image` value (`None`: not given, SST's default).
    fn image(&self, value: Option<Field<'_>>) -> Image {
        let mut image = Image {
            resolved: true,
            ..Image::default()
        };
        let value = match value {
            None => return image,
            Some(Field::Shorthand) => {
                image
                    .warnings
                    .push("cannot read image.context statically (a variable)".to_string());
                image
                    .warnings
                    .push("assumed context . and Dockerfile Dockerfile".to_string());
                image.resolved = false;
                return image;
            }
            Some(Field::Value(v)) => v,
        };
        match unwrap(value) {
            Expr::Object(obj) => {
                for (field, slot) in [
                    ("context", &mut image.context),
                    ("dockerfile", &mut image.dockerfile),
                    ("target", &mut image.target),
                ] {
                    match prop(obj, field).map(Field::literal) {
                        None => {}
                        Some(Literal::Str(s)) => *slot = Some(s),
                        Some(Literal::Dynamic(what)) => {
                            image
                                .warnings
                                .push(format!("cannot read image.{field} statically ({what})"));
                            if field != "target" {
                                image.resolved = false;
                            }
                        }
                    }
                }
                if !image.resolved {
                    image.warnings.push(format!(
                        "assumed context {} and Dockerfile {}",
                        image.context.as_deref().unwrap_or("."),
                        image.dockerfile.as_deref().unwrap_or("Dockerfile")
                    ));
                }
            }
            other => match literal(other) {
                Literal::Str(s) => {
                    let dir = join_normal(self.config_dir, Path::new(&s));
                    if self.root.join(&dir).is_dir() {
                        image.context = Some(s);
                    } else {
                        image.prebuilt = Some(s);
                    }
                }
                Literal::Dynamic(what) => {
                    image
                        .warnings
                        .push(format!("cannot read image.context statically ({what})"));
                    image
                        .warnings
                        .push("assumed context . and Dockerfile Dockerfile".to_string());
                    image.resolved = false;
                }
            },
        }
        image
    }

    fn push(
        &mut self,
        file: &Path,
        line: usize,
        name: String,
        image: Image,
        platform: Option<String>,
    ) {
        if let Some(reference) = image.prebuilt {
            self.warnings.push(format!(
                "{}:{line}: {}: image \"{}\" is not a directory: taken as a pre-built image, nothing to build",
                slash(file),
                crate::text::excerpt(&name),
                crate::text::excerpt(&reference)
            ));
            return;
        }
        let context = relative_to_root(
            self.root,
            join_normal(
                self.config_dir,
                Path::new(image.context.as_deref().unwrap_or(".")),
            ),
        );
        let dockerfile = relative_to_root(
            self.root,
            join_normal(
                &context,
                Path::new(image.dockerfile.as_deref().unwrap_or("Dockerfile")),
            ),
        );
        self.builds.push(Declared {
            name,
            context,
            dockerfile,
            target: image.target,
            platform,
            source: Source::Sst {
                file: file.to_path_buf(),
                line,
            },
            warnings: image.warnings,
            resolved: image.resolved,
        });
    }
}

/// A value read statically, or what it is instead.
enum Literal {
    Str(String),
    Dynamic(&'static str),
}

/// A string literal or a template literal without `${…}`.
fn literal(e: &Expr) -> Literal {
    match unwrap(e) {
        Expr::Lit(Lit::Str(s)) => Literal::Str(s.value.to_string_lossy().into_owned()),
        Expr::Tpl(t) if t.exprs.is_empty() => Literal::Str(
            t.quasis
                .iter()
                .map(|q| match &q.cooked {
                    Some(c) => c.to_string_lossy().into_owned(),
                    None => q.raw.to_string(),
                })
                .collect(),
        ),
        Expr::Tpl(_) => Literal::Dynamic("a template literal with expressions"),
        Expr::Ident(_) => Literal::Dynamic("a variable"),
        Expr::Call(_) => Literal::Dynamic("a function call"),
        Expr::Member(_) => Literal::Dynamic("a property access"),
        Expr::Bin(_) => Literal::Dynamic("an expression"),
        Expr::Cond(_) => Literal::Dynamic("a conditional"),
        Expr::Lit(_) => Literal::Dynamic("not a string"),
        _ => Literal::Dynamic("not a literal"),
    }
}

/// Looks through parentheses and TypeScript-only wrappers.
fn unwrap(e: &Expr) -> &Expr {
    match e {
        Expr::Paren(p) => unwrap(&p.expr),
        Expr::TsAs(a) => unwrap(&a.expr),
        Expr::TsSatisfies(s) => unwrap(&s.expr),
        Expr::TsConstAssertion(c) => unwrap(&c.expr),
        Expr::TsNonNull(n) => unwrap(&n.expr),
        Expr::TsTypeAssertion(t) => unwrap(&t.expr),
        other => other,
    }
}

/// A property of an object literal.
enum Field<'a> {
    /// `key: value`
    Value(&'a Expr),
    /// `{ key }`: the value of a variable.
    Shorthand,
}

impl<'a> Field<'a> {
    fn expr(self) -> Option<&'a Expr> {
        match self {
            Field::Value(e) => Some(e),
            Field::Shorthand => None,
        }
    }

    fn literal(self) -> Literal {
        match self {
            Field::Value(e) => literal(e),
            Field::Shorthand => Literal::Dynamic("a variable"),
        }
    }
}

/// The property `key` of an object literal (the last one wins, as in
/// JavaScript).
fn prop<'a>(obj: &'a ObjectLit, key: &str) -> Option<Field<'a>> {
    let mut found = None;
    for p in &obj.props {
        let PropOrSpread::Prop(p) = p else { continue };
        match &**p {
            Prop::KeyValue(kv) if prop_name(&kv.key).as_deref() == Some(key) => {
                found = Some(Field::Value(&kv.value));
            }
            Prop::Shorthand(id) if &*id.sym == key => found = Some(Field::Shorthand),
            _ => {}
        }
    }
    found
}

fn prop_name(key: &PropName) -> Option<String> {
    match key {
        PropName::Ident(i) => Some(i.sym.to_string()),
        PropName::Str(s) => Some(s.value.to_string_lossy().into_owned()),
        _ => None,
    }
}

/// Finds `new sst.aws.<Component>(…)` anywhere in a module, and relative
/// imports.
struct Walker<'a, 'm> {
    cm: &'a SourceMap,
    found: Vec<(&'m NewExpr, &'static str, usize)>,
    imports: Vec<String>,
}

impl<'m> Walker<'_, 'm> {
    fn line(&self, span: Span) -> usize {
        self.cm.lookup_char_pos(span.lo).line
    }

    fn module(&mut self, m: &'m Module) {
        for item in &m.body {
            match item {
                ModuleItem::Stmt(s) => self.stmt(s),
                ModuleItem::ModuleDecl(d) => match d {
                    ModuleDecl::Import(i) if !i.type_only => {
                        self.imports
                            .push(i.src.value.to_string_lossy().into_owned());
                    }
                    ModuleDecl::ExportAll(e) if !e.type_only => {
                        self.imports
                            .push(e.src.value.to_string_lossy().into_owned());
                    }
                    ModuleDecl::ExportDecl(e) => self.decl(&e.decl),
                    ModuleDecl::ExportDefaultExpr(e) => self.expr(&e.expr),
                    ModuleDecl::ExportDefaultDecl(e) => {
                        if let DefaultDecl::Fn(f) = &e.decl {
                            self.function(&f.function);
                        }
                    }
                    _ => {}
                },
            }
        }
    }

    fn block(&mut self, b: &'m BlockStmt) {
        for s in &b.stmts {
            self.stmt(s);
        }
    }

    fn function(&mut self, f: &'m Function) {
        if let Some(body) = &f.body {
            self.stmts(&body.stmts);
        }
    }

    fn stmts(&mut self, stmts: &'m [Stmt]) {
        for s in stmts {
            self.stmt(s);
        }
    }

    fn decl(&mut self, d: &'m Decl) {
        match d {
            Decl::Var(v) => {
                for d in &v.decls {
                    if let Some(init) = &d.init {
                        self.expr(init);
                    }
                }
            }
            Decl::Using(u) => {
                for d in &u.decls {
                    if let Some(init) = &d.init {
                        self.expr(init);
                    }
                }
            }
            Decl::Fn(f) => self.function(&f.function),
            _ => {}
        }
    }

    fn stmt(&mut self, s: &'m Stmt) {
        match s {
            Stmt::Block(b) => self.block(b),
            Stmt::Expr(e) => self.expr(&e.expr),
            Stmt::Decl(d) => self.decl(d),
            Stmt::Return(r) => {
                if let Some(a) = &r.arg {
                    self.expr(a);
                }
            }
            Stmt::If(i) => {
                self.expr(&i.test);
                self.stmt(&i.cons);
                if let Some(alt) = &i.alt {
                    self.stmt(alt);
                }
            }
            Stmt::Labeled(l) => self.stmt(&l.body),
            Stmt::Switch(sw) => {
                for case in &sw.cases {
                    for s in &case.cons {
                        self.stmt(s);
                    }
                }
            }
            Stmt::Try(t) => {
                self.block(&t.block);
                if let Some(h) = &t.handler {
                    self.block(&h.body);
                }
                if let Some(f) = &t.finalizer {
                    self.block(f);
                }
            }
            Stmt::While(w) => self.stmt(&w.body),
            Stmt::DoWhile(w) => self.stmt(&w.body),
            Stmt::For(f) => {
                if let Some(VarDeclOrExpr::Expr(e)) = &f.init {
                    self.expr(e);
                }
                if let Some(VarDeclOrExpr::VarDecl(v)) = &f.init {
                    for d in &v.decls {
                        if let Some(init) = &d.init {
                            self.expr(init);
                        }
                    }
                }
                self.stmt(&f.body);
            }
            Stmt::ForIn(f) => {
                self.expr(&f.right);
                self.stmt(&f.body);
            }
            Stmt::ForOf(f) => {
                self.expr(&f.right);
                self.stmt(&f.body);
            }
            Stmt::Throw(t) => self.expr(&t.arg),
            _ => {}
        }
    }

    fn object(&mut self, o: &'m ObjectLit) {
        for p in &o.props {
            match p {
                PropOrSpread::Spread(s) => self.expr(&s.expr),
                PropOrSpread::Prop(p) => match &**p {
                    Prop::KeyValue(kv) => self.expr(&kv.value),
                    Prop::Method(m) => self.function(&m.function),
                    Prop::Getter(g) => self.function(&g.function),
                    Prop::Setter(s) => self.function(&s.function),
                    Prop::Assign(a) => self.expr(&a.value),
                    Prop::Shorthand(_) => {}
                },
            }
        }
    }

    fn expr(&mut self, e: &'m Expr) {
        match e {
            Expr::New(n) => {
                if let Some(kind) = sst_component(&n.callee) {
                    let line = self.line(n.span);
                    self.found.push((n, kind, line));
                }
                self.expr(&n.callee);
                for a in n.args.iter().flatten() {
                    self.expr(&a.expr);
                }
            }
            Expr::Call(c) => {
                match &c.callee {
                    Callee::Import(_) => {
                        if let Some(Expr::Lit(Lit::Str(s))) = c.args.first().map(|a| &*a.expr) {
                            self.imports.push(s.value.to_string_lossy().into_owned());
                        }
                    }
                    Callee::Expr(callee) => self.expr(callee),
                    Callee::Super(_) => {}
                }
                for a in &c.args {
                    self.expr(&a.expr);
                }
            }
            Expr::Object(o) => self.object(o),
            Expr::Array(a) => {
                for el in a.elems.iter().flatten() {
                    self.expr(&el.expr);
                }
            }
            Expr::Fn(f) => self.function(&f.function),
            Expr::Arrow(a) => match &*a.body {
                ArrowFunctionBody::FunctionBody(b) => self.stmts(&b.stmts),
                ArrowFunctionBody::Expr(e) => self.expr(e),
            },
            Expr::Await(a) => self.expr(&a.arg),
            Expr::Paren(p) => self.expr(&p.expr),
            Expr::Member(m) => self.expr(&m.obj),
            Expr::Seq(s) => {
                for e in &s.exprs {
                    self.expr(e);
                }
            }
            Expr::Cond(c) => {
                self.expr(&c.test);
                self.expr(&c.cons);
                self.expr(&c.alt);
            }
            Expr::Bin(b) => {
                self.expr(&b.left);
                self.expr(&b.right);
            }
            Expr::Assign(a) => self.expr(&a.right),
            Expr::Unary(u) => self.expr(&u.arg),
            Expr::Tpl(t) => {
                for e in &t.exprs {
                    self.expr(e);
                }
            }
            Expr::TsAs(a) => self.expr(&a.expr),
            Expr::TsSatisfies(s) => self.expr(&s.expr),
            Expr::TsNonNull(n) => self.expr(&n.expr),
            Expr::TsConstAssertion(c) => self.expr(&c.expr),
            Expr::TsTypeAssertion(t) => self.expr(&t.expr),
            _ => {}
        }
    }
}

/// `Service` for `sst.aws.Service`, `Task` for `sst.aws.Task`.
fn sst_component(callee: &Expr) -> Option<&'static str> {
    let Expr::Member(outer) = unwrap(callee) else {
        return None;
    };
    let MemberProp::Ident(component) = &outer.prop else {
        return None;
    };
    let Expr::Member(inner) = unwrap(&outer.obj) else {
        return None;
    };
    let MemberProp::Ident(aws) = &inner.prop else {
        return None;
    };
    let Expr::Ident(sst) = unwrap(&inner.obj) else {
        return None;
    };
    if &*sst.sym != "sst" || &*aws.sym != "aws" {
        return None;
    }
    COMPONENTS.iter().copied().find(|c| *c == &*component.sym)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::discover::tests::tree;

    fn read_text_on_small_stack(text: String) -> (Vec<Declared>, Vec<String>) {
        crate::test_support::on_small_stack(move || {
            let t = tree(&[("sst.config.ts", &text)]);
            read(t.path(), Path::new("sst.config.ts"))
        })
    }

    const SERVICE: &str = "new sst.aws.Service(\"Api\", { image: { context: \"app\" } });\n";

    #[test]
    fn deep_nesting_is_refused_not_a_crash() {
        let n = 100_000;
        let cases: Vec<(&str, String)> = vec![
            ("parentheses", "(".repeat(n) + "x" + &")".repeat(n)),
            (
                "objects",
                "x = ".to_string() + &"{a:".repeat(n) + "1" + &"}".repeat(n),
            ),
            ("arrays", "[".repeat(n) + &"]".repeat(n)),
            ("negations", "!".repeat(n) + "x"),
            ("assignments", "a=".repeat(n) + "x"),
            ("assignments over lines", "a =\n".repeat(n) + "x"),
            ("conditionals", "a?b:".repeat(n) + "x"),
            ("arrows", "a=>".repeat(n) + "x"),
            ("new", "new ".repeat(n) + "X"),
            ("templates", "`${".repeat(n) + &"}`".repeat(n)),
            ("sums", "1+".repeat(n) + "1"),
            ("member chain", "x".to_string() + &".a".repeat(n)),
            ("call chain", "f".to_string() + &"()".repeat(n)),
            ("if chain", "if (a)\n".repeat(n) + "x"),
            ("else if chain", "if (a) x;\nelse ".repeat(n) + "x;"),
            ("labels", "a: ".repeat(n) + "x"),
            (
                "types",
                "let x: ".to_string() + &"A<".repeat(n) + "B" + &">".repeat(n),
            ),
            (
                "regex hiding nothing",
                "x = /(/;\n".repeat(10) + &"(".repeat(n),
            ),
        ];
        for (what, text) in cases {
            let (builds, warnings) = read_text_on_small_stack(text + "\n" + SERVICE);
            assert!(builds.is_empty(), "{what}");
            assert_eq!(warnings.len(), 1, "{what}: {warnings:?}");
            assert!(
                warnings[0].contains("nested more than 1000 deep: not analysed"),
                "{what}: {}",
                warnings[0]
            );
        }
    }

    #[test]
    fn nesting_under_the_limit_parses_on_the_big_stack() {
        // Deeper than the caller's 2 MiB stack allows in a debug build
        // (about 60 object levels), under the pre-scan's limit.
        let cases = [
            "x = ".to_string() + &"({a:".repeat(150) + "1" + &"})".repeat(150) + ";\n",
            "x = ".to_string() + &"(".repeat(450) + "1" + &")".repeat(450) + ";\n",
        ];
        for text in cases {
            let (builds, warnings) = read_text_on_small_stack(text + SERVICE);
            assert!(warnings.is_empty(), "{warnings:?}");
            assert_eq!(builds.len(), 1);
        }
        // Ordinary code is far from the limit, with or without semicolons.
        let mut text = String::new();
        for i in 0..3000 {
            text += &format!("const a{i} = f(x.y, \"s\", `t${{i}}`) + 1 / 2\n");
            text += "if (a) {\n  b = c\n} else {\n  d = /re(g)?/.test(e)\n}\n";
        }
        let (builds, warnings) = read_text_on_small_stack(text + SERVICE);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(builds.len(), 1);
    }

    /// name, context, dockerfile, target, source, resolved, warnings
    type Row = (
        String,
        String,
        String,
        Option<String>,
        String,
        bool,
        Vec<String>,
    );

    fn row(
        name: &str,
        ctx: &str,
        df: &str,
        target: Option<&str>,
        src: &str,
        resolved: bool,
        warnings: &[&str],
    ) -> Row {
        (
            name.into(),
            ctx.into(),
            df.into(),
            target.map(str::to_string),
            src.into(),
            resolved,
            warnings.iter().map(|w| w.to_string()).collect(),
        )
    }

    fn config(body: &str) -> String {
        format!(
            "/// <reference path=\"./.sst/platform/config.d.ts\" />\nexport default $config({{\n  app(input) {{\n    return {{ name: \"x\", home: \"aws\" }};\n  }},\n  async run() {{\n{body}\n  }},\n}});\n"
        )
    }

    #[test]
    fn reads_services_and_tasks() {
        /// what, files, builds, file-level warnings (prefixes)
        type Case = (
            &'static str,
            Vec<(&'static str, String)>,
            Vec<Row>,
            Vec<&'static str>,
        );
        let cases: Vec<Case> = vec![
            (
                "service with context and dockerfile",
                vec![(
                    "sst.config.ts",
                    config(
                        "    const vpc = new sst.aws.Vpc(\"Vpc\");\n    const api = new sst.aws.Service(\"ReggieApi\", {\n      cluster,\n      image: { context: \".\", dockerfile: \"backend/Dockerfile\" },\n    });",
                    ),
                )],
                vec![row("ReggieApi", ".", "backend/Dockerfile", None, "sst:sst.config.ts:8", true, &[])],
                vec![],
            ),
            (
                "task without dockerfile, with target",
                vec![(
                    "sst.config.ts",
                    config("    new sst.aws.Task(\"Worker\", { cluster, image: { context: \"./worker\", target: \"prod\" } });"),
                )],
                vec![row("Worker", "worker", "worker/Dockerfile", Some("prod"), "sst:sst.config.ts:7", true, &[])],
                vec![],
            ),
            (
                "string image is the context",
                vec![
                    ("sst.config.ts", config("    new sst.aws.Service(\"Api\", { image: \"backend\" });")),
                    ("backend/Dockerfile", String::new()),
                ],
                vec![row("Api", "backend", "backend/Dockerfile", None, "sst:sst.config.ts:7", true, &[])],
                vec![],
            ),
            (
                "string image that is no directory is a pre-built image",
                vec![("sst.config.ts", config("    new sst.aws.Service(\"Web\", { image: \"nginx:latest\" });"))],
                vec![],
                vec!["sst.config.ts:7: Web: image \"nginx:latest\" is not a directory: taken as a pre-built image, nothing to build"],
            ),
            (
                "template literals without expressions",
                vec![(
                    "sst.config.ts",
                    config("    new sst.aws.Service(`Web`, {\n      image: { context: `apps/web`, dockerfile: `Dockerfile.prod` },\n    });"),
                )],
                vec![row("Web", "apps/web", "apps/web/Dockerfile.prod", None, "sst:sst.config.ts:7", true, &[])],
                vec![],
            ),
            (
                "missing image is SST's default",
                vec![("sst.config.ts", config("    new sst.aws.Service(\"Api\", { cluster });"))],
                vec![row("Api", ".", "Dockerfile", None, "sst:sst.config.ts:7", true, &[])],
                vec![],
            ),
            (
                "non-literal context",
                vec![(
                    "sst.config.ts",
                    config("    new sst.aws.Service(\"Api\", {\n      image: { context: path.join(\"a\", \"b\"), dockerfile: \"Dockerfile\" },\n    });"),
                )],
                vec![row(
                    "Api",
                    ".",
                    "Dockerfile",
                    None,
                    "sst:sst.config.ts:7",
                    false,
                    &[
                        "cannot read image.context statically (a function call)",
                        "assumed context . and Dockerfile Dockerfile",
                    ],
                )],
                vec![],
            ),
            (
                "template literal with an expression, variable image",
                vec![(
                    "sst.config.ts",
                    config("    new sst.aws.Service(\"Api\", { image: { context: `apps/${$app.stage}` } });\n    new sst.aws.Task(\"Job\", { image });"),
                )],
                vec![
                    row(
                        "Api",
                        ".",
                        "Dockerfile",
                        None,
                        "sst:sst.config.ts:7",
                        false,
                        &[
                            "cannot read image.context statically (a template literal with expressions)",
                            "assumed context . and Dockerfile Dockerfile",
                        ],
                    ),
                    row(
                        "Job",
                        ".",
                        "Dockerfile",
                        None,
                        "sst:sst.config.ts:8",
                        false,
                        &[
                            "cannot read image.context statically (a variable)",
                            "assumed context . and Dockerfile Dockerfile",
                        ],
                    ),
                ],
                vec![],
            ),
            (
                "containers, other components and look-alikes",
                vec![(
                    "sst.config.ts",
                    config("    new sst.aws.Function(\"Fn\", { handler: \"x.handler\" });\n    new other.aws.Service(\"No\", { image: { context: \"no\" } });\n    new sst.aws.Service(\"App\", {\n      containers: [\n        { name: \"web\", image: { context: \"web\" } },\n        { name: \"sidecar\", image: { context: \"side\", dockerfile: \"Containerfile\" } },\n      ],\n    });"),
                )],
                vec![
                    row("App-web", "web", "web/Dockerfile", None, "sst:sst.config.ts:9", true, &[]),
                    row("App-sidecar", "side", "side/Containerfile", None, "sst:sst.config.ts:9", true, &[]),
                ],
                vec![],
            ),
            (
                "components in helpers, conditionals and loops",
                vec![(
                    "sst.config.ts",
                    config("    if ($app.stage === \"prod\") {\n      for (const n of [1]) { new sst.aws.Task(\"Cron\", { image: { context: \"cron\" } }); }\n    }\n    const mk = () => new sst.aws.Service(\"Mk\", { image: { context: \"mk\" } as const });\n    return { url: mk() };"),
                )],
                vec![
                    row("Cron", "cron", "cron/Dockerfile", None, "sst:sst.config.ts:8", true, &[]),
                    row("Mk", "mk", "mk/Dockerfile", None, "sst:sst.config.ts:10", true, &[]),
                ],
                vec![],
            ),
            (
                "relative imports are followed; paths stay relative to the config",
                vec![
                    ("sst.config.ts", config("    await import(\"./infra/api\");")),
                    (
                        "infra/api.ts",
                        "import { vpc } from \"./vpc\";\nexport const api = new sst.aws.Service(\"Api\", {\n  image: { context: \"backend\" },\n});\n".to_string(),
                    ),
                    ("infra/vpc.ts", "export const vpc = new sst.aws.Vpc(\"Vpc\");\n".to_string()),
                ],
                vec![row("Api", "backend", "backend/Dockerfile", None, "sst:infra/api.ts:2", true, &[])],
                vec![],
            ),
            (
                "does not parse",
                vec![("sst.config.ts", "export default $config({ run() { new sst.aws.Service(\"A\", { ) } });\n".to_string())],
                vec![],
                vec!["sst.config.ts:1: cannot parse as TypeScript"],
            ),
        ];
        for (what, files, want, want_warnings) in cases {
            let t = tree(
                &files
                    .iter()
                    .map(|(p, s)| (*p, s.as_str()))
                    .collect::<Vec<_>>(),
            );
            let (builds, warnings) = read(t.path(), Path::new("sst.config.ts"));
            let got: Vec<Row> = builds
                .iter()
                .map(|d| {
                    (
                        d.name.clone(),
                        slash(&d.context),
                        slash(&d.dockerfile),
                        d.target.clone(),
                        d.source.to_string(),
                        d.resolved,
                        d.warnings.clone(),
                    )
                })
                .collect();
            assert_eq!(got, want, "{what}");
            assert_eq!(warnings.len(), want_warnings.len(), "{what}: {warnings:?}");
            for (w, prefix) in warnings.iter().zip(&want_warnings) {
                assert!(w.starts_with(prefix), "{what}: {w}");
            }
        }
    }

    #[test]
    fn config_in_a_subdirectory_resolves_against_its_directory() {
        let t = tree(&[
            (
                "infra/sst.config.ts",
                "export default $config({ async run() { new sst.aws.Service(\"Api\", { image: { context: \"..\", dockerfile: \"api/Dockerfile\" } }); } });\n",
            ),
        ]);
        let (builds, warnings) = read(t.path(), Path::new("infra/sst.config.ts"));
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(builds.len(), 1);
        assert_eq!(builds[0].context, PathBuf::from("."));
        assert_eq!(builds[0].dockerfile, PathBuf::from("api/Dockerfile"));
        assert_eq!(builds[0].source.to_string(), "sst:infra/sst.config.ts:1");
    }

    /// The platform the deploy runs on: SST's `architecture`, x86_64
    /// unless set; unknown when not a literal. Containers inherit it.
    #[test]
    fn architecture_is_the_deploy_platform() {
        let cases: &[(&str, Option<&str>, bool)] = &[
            ("{ image: \"./api\" }", Some("linux/amd64"), false),
            (
                "{ architecture: \"arm64\", image: \"./api\" }",
                Some("linux/arm64"),
                false,
            ),
            (
                "{ architecture: \"x86_64\", image: \"./api\" }",
                Some("linux/amd64"),
                false,
            ),
            ("{ architecture: arch, image: \"./api\" }", None, true),
            (
                "{ architecture: \"arm64\", containers: [{ name: \"w\", image: \"./api\" }] }",
                Some("linux/arm64"),
                false,
            ),
        ];
        for (args, want, warns) in cases {
            let text = config(&format!("new sst.aws.Service(\"Api\", {args});"));
            let t = tree(&[
                ("api/Dockerfile", "FROM scratch\n"),
                ("sst.config.ts", &text),
            ]);
            let (builds, _) = read(t.path(), Path::new("sst.config.ts"));
            assert_eq!(builds.len(), 1, "{args}");
            assert_eq!(builds[0].platform.as_deref(), *want, "{args}");
            let warned = builds[0]
                .warnings
                .iter()
                .any(|w| w.contains("architecture"));
            assert_eq!(warned, *warns, "{args}: {:?}", builds[0].warnings);
        }
    }
}
