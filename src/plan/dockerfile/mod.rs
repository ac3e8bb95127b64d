//! Dockerfile parsing and build-context analysis following BuildKit semantics.
//!
//! The module mirrors the behaviour of BuildKit's `frontend/dockerfile/parser`
//! (parser directives, line continuations, heredocs, flags, JSON form), its
//! `shell` word lexer (variable expansion, quotes, escapes) and the part of
//! `dockerfile2llb` that decides which files of the build context a build can
//! read ("followpaths").
//!
//! Entry points:
//! * [`parse`] turns Dockerfile bytes into a [`Dockerfile`];
//! * [`context_use`] (or the richer [`analyze`]) tells which context paths the
//!   build reachable from a target may read, or that it may read everything.
//!
//! Nothing in this module panics on any input; every failure is a
//! [`DockerfileError`] carrying the Dockerfile path, a 1-based line and column
//! and a message saying what to do.

mod directives;
mod followpaths;
mod instructions;
pub(crate) mod mount;
mod parser;
mod pmap;
mod shell;

pub use directives::Directives;
pub use followpaths::{
    analyze, context_use, ContextAnalysis, ContextUse, ExternalBase, PlanOptions, UsedPath,
    WholeReason,
};
pub use parser::parse;
pub use shell::{expand_word_within, Budget, MAX_VALUE_BYTES};

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// The path label given to [`parse`]; used in error messages.
    pub path: String,
    /// Parser directives found in the leading comment lines.
    pub directives: Directives,
    /// `ARG` declarations before the first `FROM` (they only apply to `FROM`
    /// lines unless redeclared inside a stage).
    pub global_args: Vec<ArgDecl>,
    /// Build stages, in file order.
    pub stages: Vec<Stage>,
}

/// One `NAME[=default]` item of an `ARG` instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    /// Variable name (not expanded).
    pub name: String,
    /// Raw (unexpanded) default value, if any.
    pub default: Option<String>,
    /// 1-based line of the `ARG` instruction.
    pub line: usize,
}

/// A build stage: a `FROM` instruction and the instructions following it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// 0-based index of the stage (usable as `COPY --from=<index>`).
    pub index: usize,
    /// Lower-cased stage name from `FROM image AS name`.
    pub name: Option<String>,
    /// Base image name expanded with the global `ARG` defaults and the default
    /// platform (`linux/amd64`); the raw text if the expansion fails.
    pub base: String,
    /// Base image name as written.
    pub base_raw: String,
    /// Raw `--platform` flag value of the `FROM`, if any.
    pub platform: Option<String>,
    /// 1-based line of the `FROM` instruction.
    pub line: usize,
    /// The `FROM` instruction itself.
    pub from: Instruction,
    /// Instructions after `FROM` (not including it).
    pub instructions: Vec<Instruction>,
}

/// A `--name[=value]` flag written before an instruction's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    /// Flag name without the leading `--`, as written.
    pub name: String,
    /// Value after the first `=` (quotes removed, not variable-expanded);
    /// `None` for a bare boolean flag such as `--link`.
    pub value: Option<String>,
}

/// A heredoc (`<<EOF` ... `EOF`) attached to a `COPY`, `ADD` or `RUN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// Delimiter name with quotes removed.
    pub name: String,
    /// The `<<...` word as written in the instruction.
    pub word: String,
    /// Body text; every line ends with `\n`. For `<<-` leading tabs are removed.
    pub content: String,
    /// False when the delimiter was quoted (`<<"EOF"`, `<<'EOF'`): no expansion.
    pub expand: bool,
    /// True for `<<-`.
    pub chomp: bool,
    /// File descriptor prefix (`3<<EOF`), if written.
    pub fd: Option<u32>,
}

/// One instruction (possibly spanning several lines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// Upper-cased instruction keyword (`COPY`, `RUN`, ...).
    pub keyword: String,
    /// Leading `--flag[=value]` words, in order.
    pub flags: Vec<Flag>,
    /// Arguments, not variable-expanded. Their shape depends on the keyword:
    /// whitespace-separated words (`COPY`, `ADD`, `FROM`, `EXPOSE`, shell-form
    /// `VOLUME`/`SHELL`), JSON array items when [`Instruction::json`] is set,
    /// the rest of the line as one string (shell-form `RUN`, `CMD`,
    /// `ENTRYPOINT`, `WORKDIR`, `USER`, ...), quote-aware words (`ARG`), or
    /// `KEY=VALUE` items (`ENV`, `LABEL`; the legacy `ENV K V` form becomes
    /// `K=V`). Empty for `ONBUILD` (see [`Instruction::onbuild`]).
    pub args: Vec<String>,
    /// True when the arguments were given as a JSON array.
    pub json: bool,
    /// Heredocs declared by this instruction, in order.
    pub heredocs: Vec<Heredoc>,
    /// For `ONBUILD`, the trigger instruction.
    pub onbuild: Option<Box<Instruction>>,
    /// 1-based line where the instruction starts.
    pub line: usize,
    /// 1-based last line of the instruction (including heredoc bodies).
    pub end_line: usize,
    /// The source text of the instruction (all its lines, joined by `\n`).
    pub original: String,
}

impl Instruction {
    /// Value of the last flag named `name` (case-sensitive, without `--`).
    /// `Some(None)` means the flag was given without a value.
    pub fn flag(&self, name: &str) -> Option<Option<&str>> {
        self.flags
            .iter()
            .rev()
            .find(|f| f.name == name)
            .map(|f| f.value.as_deref())
    }

    /// All values of flags named `name`, in order (e.g. several `--mount`).
    pub fn flag_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.flags
            .iter()
            .filter(move |f| f.name == name)
            .filter_map(|f| f.value.as_deref())
    }
}

/// What went wrong, for callers that want to branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Invalid or duplicate parser directive.
    Directive,
    /// Malformed instruction.
    Syntax,
    /// Unterminated heredoc.
    Heredoc,
    /// Variable expansion failed (`${X:?msg}`, bad substitution, unbalanced quote).
    Expansion,
    /// Invalid stage reference (`--from` index out of range, self reference).
    Stage,
    /// The requested target stage does not exist.
    Target,
    /// An input limit was exceeded: expanded value size, total expansion
    /// work, nesting depth.
    Limit,
}

/// An error with its location in the Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}:{line}:{column}: {message}")]
pub struct DockerfileError {
    /// The path label given to `parse`.
    pub path: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// Category of the error.
    pub kind: ErrorKind,
    /// Human-readable explanation, including how to fix it.
    pub message: String,
}

impl DockerfileError {
    pub(super) fn new(
        path: &str,
        line: usize,
        column: usize,
        kind: ErrorKind,
        message: impl Into<String>,
    ) -> Self {
        DockerfileError {
            path: path.to_string(),
            line: line.max(1),
            column: column.max(1),
            kind,
            message: message.into(),
        }
    }
}

/// Finds the 1-based (line, column) of `needle` inside an instruction's
/// source text; falls back to the instruction start.
pub(super) fn locate(instr: &Instruction, needle: &str) -> (usize, usize) {
    if !needle.is_empty() {
        for (i, l) in instr.original.split('\n').enumerate() {
            if let Some(b) = l.find(needle) {
                let col = l.get(..b).map(|p| p.chars().count()).unwrap_or(0) + 1;
                return (instr.line + i, col);
            }
        }
    }
    (instr.line, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tiny deterministic xorshift64* PRNG.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            self.0 = x;
            x.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    const TOKENS: &[&[u8]] = &[
        b"FROM ",
        b"FROM a AS b\n",
        b"COPY ",
        b"ADD ",
        b"RUN ",
        b"ARG ",
        b"ENV ",
        b"ONBUILD ",
        b"AS ",
        b"--from=",
        b"--mount=type=bind,source=",
        b",from=",
        b"--parents ",
        b"--chown=",
        b"\\",
        b"`",
        b"\"",
        b"'",
        b"$",
        b"{",
        b"}",
        b"${",
        b":-",
        b":?",
        b":+",
        b"#",
        b"##",
        b"%",
        b"/",
        b"//",
        b"<<",
        b"<<-",
        b"EOF",
        b"\nEOF\n",
        b"\n",
        b"\r\n",
        b" ",
        b"\t",
        b"=",
        b"[",
        b"]",
        b"[\"",
        b"\",",
        b",",
        b"\xff",
        b"\xc3",
        b"\xef\xbb\xbf",
        b"*",
        b"?",
        b"..",
        b".",
        b"a",
        b"b",
        b"0",
        b"1",
        b"# escape=`\n",
        b"# syntax=x\n",
        b"# check=a\n",
        b"\\u00",
        b"scratch",
        b"X",
        b"$X",
        b"http://",
        b"!",
        b"-",
    ];

    const LINE_STARTS: &[&[u8]] = &[
        b"FROM a AS c ",
        b"COPY ",
        b"COPY --from=b ",
        b"ADD ",
        b"RUN ",
        b"RUN --mount=source=",
        b"ARG X=",
        b"ENV X=",
        b"ONBUILD COPY ",
        b"# ",
        b"COPY <<EOF ",
        b"RUN <<-EOF ",
    ];

    #[test]
    fn random_inputs_never_panic() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let option_sets = [
            PlanOptions::default(),
            PlanOptions {
                target: Some("b".into()),
                build_args: [("X".to_string(), "a/b".to_string())].into_iter().collect(),
                platform: Some("linux/arm64/v8".into()),
                every_stage_to_target: true,
            },
        ];
        let mut parsed = 0usize;
        for _ in 0..4000 {
            let mut input = Vec::new();
            if rng.below(8) == 0 {
                for _ in 0..rng.below(200) {
                    input.push(rng.next() as u8);
                }
            } else if rng.below(2) == 0 {
                // Line-structured: mostly valid instructions with noisy arguments.
                input.extend_from_slice(b"FROM a AS b\n");
                for _ in 0..rng.below(12) {
                    input.extend_from_slice(LINE_STARTS[rng.below(LINE_STARTS.len())]);
                    for _ in 0..rng.below(8) {
                        let t = TOKENS[rng.below(TOKENS.len())];
                        if !t.contains(&b'\n') {
                            input.extend_from_slice(t);
                        }
                    }
                    input.extend_from_slice(b" x y\n");
                }
            } else {
                if rng.below(2) == 0 {
                    input.extend_from_slice(b"FROM a AS b\n");
                }
                for _ in 0..rng.below(60) {
                    input.extend_from_slice(TOKENS[rng.below(TOKENS.len())]);
                }
            }
            let result = std::panic::catch_unwind(|| {
                if let Ok(df) = parse("Dockerfile", &input) {
                    for o in &option_sets {
                        let _ = context_use(&df, o);
                        let _ = analyze(&df, o);
                    }
                    return true;
                }
                false
            });
            match result {
                Ok(true) => parsed += 1,
                Ok(false) => {}
                Err(_) => panic!("panicked on input {:?}", String::from_utf8_lossy(&input)),
            }
        }
        // Make sure the generator also exercises the analysis, not only errors.
        assert!(parsed > 400, "only {parsed} inputs parsed");
    }

    #[test]
    fn public_api_end_to_end() {
        let src = b"# syntax=docker/dockerfile:1\nARG GO=1.22\nFROM golang:${GO} AS build\nWORKDIR /src\nRUN --mount=type=bind,source=go.mod,target=go.mod \\\n    --mount=type=bind,source=go.sum,target=go.sum \\\n    go mod download\nCOPY cmd/ cmd/\nCOPY internal/ internal/\nRUN go build -o /out/app ./cmd/app\n\nFROM scratch\nCOPY --from=build /out/app /app\nENTRYPOINT [\"/app\"]\n";
        let df = parse("Dockerfile", src).unwrap();
        assert_eq!(df.stages.len(), 2);
        assert_eq!(df.stages[0].base, "golang:1.22");
        let run = &df.stages[0].instructions[1];
        assert_eq!((run.line, run.end_line), (5, 7));
        assert_eq!(run.flag_values("mount").count(), 2);
        let a = analyze(&df, &PlanOptions::default()).unwrap();
        let ContextUse::Paths(p) = a.context else {
            panic!("expected paths")
        };
        let got: Vec<(&str, usize, &str)> = p
            .iter()
            .map(|u| (u.pattern.as_str(), u.line, u.instruction.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("go.mod", 5, "RUN --mount"),
                ("go.sum", 5, "RUN --mount"),
                ("cmd", 8, "COPY"),
                ("internal", 9, "COPY"),
            ]
        );
        assert_eq!(a.reachable_stages, vec![0, 1]);
        assert_eq!(a.external_bases.len(), 1);
        let e = parse("sub/Dockerfile.dev", b"FROM a\nCOPY x\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "sub/Dockerfile.dev:2:1: COPY requires at least two arguments: one or more sources and a destination, e.g. `COPY src/ /app/`"
        );
    }
}
