/*!
The livecov instrumenter: Go source in, coverage blocks and counted source out.

Everything livecov reports rests on one promise: its coverage blocks are exactly those of the
`go tool cover` that ships with the Go used to build. This crate keeps that promise. It parses a
file with tree-sitter-go, cuts it into blocks with a port of cover's own walk, and writes a
counter statement at the start of each block without moving any line.

# Brief overview

* [`analyze`] parses one file and returns its [`FileMeta`]: the blocks (positions, statement
  counts, enclosing function) and the functions (names, content hashes).
* [`instrument`] does the same and also returns the rewritten source, in one of the three
  counter [`Mode`]s.
* [`BuildMeta`] gathers the files of a build; its [`build_id`](BuildMeta::build_id) names the
  build by the hash of all of its metadata.
* [`profile`] writes the Go coverprofile text format, in counter order or in the order
  `go test -coverprofile` writes.

Source that does not parse is refused with an [`Error`] naming the line and column; nothing is
ever produced from broken input.

# Example

```
let src = b"package p\n\nfunc Abs(x int) int {\n\tif x < 0 {\n\t\treturn -x\n\t}\n\treturn x\n}\n";
let file = instrumenter::analyze("example.com/p/abs.go", src, instrumenter::Rules::Go120).unwrap();
let mut text = instrumenter::profile::header(instrumenter::Mode::Set);
instrumenter::profile::write_textual(&mut text, &[file], |_, _| 0);
assert_eq!(text, "mode: set\n\
    example.com/p/abs.go:3.21,4.11 1 0\n\
    example.com/p/abs.go:4.11,6.3 1 0\n\
    example.com/p/abs.go:7.2,7.10 1 0\n");
```
*/

mod blocks;
mod meta;
mod position;
pub mod profile;
mod ranges;
mod rewrite;
mod scan;
mod syntax;
pub mod version;

use std::collections::HashSet;
use std::fmt;

pub use blocks::Rules;
pub use meta::{Block, BuildMeta, FileMeta, Func, hex, lines_between};
pub use position::Pos;
pub use rewrite::ATOMIC_ALIAS;

/// How counters count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Mode {
    /// Whether a block ran at all.
    #[default]
    Set,
    /// How many times a block ran (plain increments: racy under heavy concurrency, like Go's).
    Count,
    /// How many times a block ran, with atomic increments.
    Atomic,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Set => "set",
            Mode::Count => "count",
            Mode::Atomic => "atomic",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Mode, String> {
        match s {
            "set" => Ok(Mode::Set),
            "count" => Ok(Mode::Count),
            "atomic" => Ok(Mode::Atomic),
            _ => Err(format!("unknown mode {s:?}: want set, count or atomic")),
        }
    }
}

/// Why a file was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The source is not valid Go.
    Syntax {
        /// 1-based line.
        line: usize,
        /// 1-based byte column.
        column: usize,
        message: String,
    },
}

impl fmt::Display for Error {
    /// `line:col: message`; callers put the file's path in front.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Syntax {
                line,
                column,
                message,
            } => write!(f, "{line}:{column}: {message}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<syntax::SyntaxError> for Error {
    fn from(e: syntax::SyntaxError) -> Error {
        Error::Syntax {
            line: e.line,
            column: e.column,
            message: e.message,
        }
    }
}

/// Options for [`instrument`].
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub mode: Mode,
    /// Name of the counter array declared in the rewritten file. `None` derives a name from the
    /// file's profile name that no user code plausibly uses ([`counter_var`]).
    pub counter_var: Option<String>,
    pub rules: Rules,
    /// A statement to run first in `func main()`, if the file is of package main and has it.
    pub main_prologue: Option<Prologue>,
    /// The original file's absolute path, as `go build` names it. With it, the rewritten
    /// source carries `/*line*/` directives after each insertion (and one before the `package`
    /// keyword), so that compiler errors, `go vet` findings and stack traces give the user's
    /// file, line and column; the user's own `//line` directives keep working as in a plain
    /// build. `None`: no directives.
    pub source_path: Option<String>,
    /// The build runs under the race detector (`go build -race`): set-mode counters are then
    /// read and written with `sync/atomic`, so that the detector sees no race between the
    /// instrumented code and the agent.
    pub race: bool,
}

/// A statement put at the very start of `func main()`, with the import it needs: livecov uses
/// it to defer a final write of the counters when `main` returns.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Prologue {
    /// The import the statement needs, as `(name, path)`; the name should be one no user code
    /// uses.
    pub import: (String, String),
    /// The statement, without a trailing `;`.
    pub statement: String,
}

/// The result of [`instrument`].
#[derive(Debug, Clone)]
pub struct Instrumented {
    /// The rewritten source: the original with counters, every line where it was.
    pub source: Vec<u8>,
    /// The name of the `[N]uint32` counter array it declares (N = number of blocks).
    pub counter_var: String,
    pub meta: FileMeta,
}

/// The counter array name [`instrument`] uses for a file by default.
pub fn counter_var(profile_name: &str) -> String {
    format!(
        "_livecov_c_{}",
        &hex(&meta::sha256(profile_name.as_bytes()))[..16]
    )
}

/// Parses `src` and returns its coverage blocks, named `profile_name` (`importpath/file.go`),
/// cut by `rules`.
pub fn analyze(profile_name: &str, src: &[u8], rules: Rules) -> Result<FileMeta, Error> {
    Ok(Analysis::new(profile_name, src, rules)?.meta)
}

/// Parses `src` and rewrites it with a counter at the start of every block.
pub fn instrument(profile_name: &str, src: &[u8], opts: &Options) -> Result<Instrumented, Error> {
    let analysis = Analysis::new(profile_name, src, opts.rules)?;
    let var = opts
        .counter_var
        .clone()
        .unwrap_or_else(|| counter_var(profile_name));
    let prologue = opts
        .main_prologue
        .as_ref()
        .and_then(|p| analysis.main_body.map(|at| (at, p)));
    // A path that cannot be written in a comment gets no directives.
    let path = opts
        .source_path
        .as_deref()
        .filter(|p| !p.contains("*/") && !p.contains(['\n', '\r']));
    let directives = path.map(|path| rewrite::Directives {
        path,
        lines: &analysis.lines,
    });
    let source = rewrite::rewrite(
        src,
        &analysis.cut,
        rewrite::Counters {
            mode: opts.mode,
            race: opts.race,
            var: &var,
        },
        analysis.package.clone(),
        prologue,
        directives.as_ref(),
    );
    Ok(Instrumented {
        source,
        counter_var: var,
        meta: analysis.meta,
    })
}

/// The rules under which `src` cuts into exactly the blocks and functions of `file`, if any:
/// whether `src` is the source a build's `file` was made from, whichever Go built it.
/// An error when every release's rules refuse `src`.
pub fn cut_from(file: &FileMeta, src: &[u8]) -> Result<Option<Rules>, Error> {
    cut_where(file, src, Same::Exact)
}

/// How much of a file's metadata a source must cut into for [`cut_where`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Same {
    /// The blocks in counter order and the functions with their content hashes: a build's
    /// metadata, as [`cut_from`] checks it.
    Exact,
    /// The blocks' positions and statement counts, in any order: for metadata rebuilt from a
    /// report, which keeps blocks in position order and carries no function hashes.
    Blocks,
}

/// [`cut_from`], comparing what `same` says. The one check of "is this the source of that
/// file": each Go release's rules are tried in turn.
pub fn cut_where(file: &FileMeta, src: &[u8], same: Same) -> Result<Option<Rules>, Error> {
    let mut refused = None;
    let mut parsed = false;
    for rules in Rules::ALL {
        match analyze(&file.name, src, rules) {
            Ok(got) if same.holds(file, &got) => return Ok(Some(rules)),
            Ok(_) => parsed = true,
            Err(e) => refused = refused.or(Some(e)),
        }
    }
    match refused {
        Some(e) if !parsed => Err(e),
        _ => Ok(None),
    }
}

impl Same {
    fn holds(self, want: &FileMeta, got: &FileMeta) -> bool {
        match self {
            Same::Exact => got.blocks == want.blocks && got.funcs == want.funcs,
            Same::Blocks => {
                let key =
                    |b: &Block| (b.start.line, b.start.col, b.end.line, b.end.col, b.num_stmt);
                let mut a: Vec<_> = want.blocks.iter().map(key).collect();
                let mut b: Vec<_> = got.blocks.iter().map(key).collect();
                a.sort_unstable();
                b.sort_unstable();
                a == b
            }
        }
    }
}

struct Analysis {
    cut: blocks::Cut,
    meta: FileMeta,
    /// Offsets to positions, the user's line directives applied.
    lines: position::LineMap,
    /// The package clause: from the `package` keyword to the end of the name.
    package: std::ops::Range<usize>,
    /// Offset just past the `{` of `func main()`, in package main.
    main_body: Option<usize>,
}

impl Analysis {
    fn new(profile_name: &str, src: &[u8], rules: Rules) -> Result<Analysis, Error> {
        let tree = syntax::parse(src, rules == Rules::Go127)?;
        let lines = position::LineMap::new(src, &tree)?;
        let name_pos = |offset: usize| {
            let p = lines.position(offset).1;
            (p.line, p.col)
        };
        let cut = blocks::cut(src, &tree, rules, &name_pos);

        // Up to Go 1.26 block positions follow //line directives; from 1.27 they are physical
        // (a package-level func literal's name follows them in both).
        let position = |offset: usize| match rules.adjusts_positions() {
            true => lines.position(offset),
            false => (None, lines.physical(offset)),
        };
        // cover makes (start, end) pairs unique by pushing the end column out, which only
        // matters when //line directives without columns fold blocks onto each other.
        let mut seen = HashSet::new();
        let blocks = cut
            .blocks
            .iter()
            .map(|b| {
                let (file, start) = position(b.start);
                let (_, mut end) = position(b.end);
                while !seen.insert((file, start, end)) {
                    end.col += 1;
                }
                Block {
                    start,
                    end,
                    num_stmt: b.num_stmt,
                    func: b.func as u32,
                }
            })
            .collect();
        let funcs = cut
            .funcs
            .iter()
            .map(|f| Func {
                name: f.name.clone(),
                hash: meta::sha256(&src[f.start..f.end]),
            })
            .collect();
        let package = package_clause(&tree);
        let main_body = main_body(src, &tree);
        Ok(Analysis {
            meta: FileMeta {
                name: profile_name.to_string(),
                blocks,
                funcs,
            },
            cut,
            lines,
            package,
            main_body,
        })
    }
}

fn package_clause(tree: &tree_sitter::Tree) -> std::ops::Range<usize> {
    let root = tree.root_node();
    let mut cursor = root.walk();
    let clause = root
        .named_children(&mut cursor)
        .find(|n| n.kind() == "package_clause")
        .expect("syntax::parse refuses files without a package clause");
    clause.byte_range()
}

/// Offset just past the `{` of `func main()` if the file is of package main and declares it.
fn main_body(src: &[u8], tree: &tree_sitter::Tree) -> Option<usize> {
    let root = tree.root_node();
    let mut cursor = root.walk();
    let children: Vec<_> = root.named_children(&mut cursor).collect();
    let clause = children.iter().find(|n| n.kind() == "package_clause")?;
    let mut cc = clause.walk();
    let name = clause.named_children(&mut cc).next()?;
    if &src[name.byte_range()] != b"main" {
        return None;
    }
    let main = children.iter().find(|n| {
        n.kind() == "function_declaration"
            && n.child_by_field_name("name")
                .is_some_and(|id| &src[id.byte_range()] == b"main")
            && n.child_by_field_name("type_parameters").is_none()
    })?;
    Some(main.child_by_field_name("body")?.start_byte() + 1)
}
