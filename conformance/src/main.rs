//! livecov-conformance: checks the instrumenter against the real Go toolchain.
//!
//! ```text
//! livecov-conformance golden FILE.go…     write FILE.golden from `go tool cover`
//! livecov-conformance compare PATH…       compare blocks with `go tool cover`, file by file
//! livecov-conformance modules [--quick]   the pinned real-world modules: compare, build, vet,
//!                                         and `go test -coverprofile`
//! livecov-conformance goroot              compare every file of the Go tree of the Go on PATH
//! ```
//!
//! Each compares with the `go tool cover` of the `go` on PATH, under that Go's rules.
//!
//! Every check exits non-zero on the first kind of mismatch, after printing all of them.

mod gocover;
mod modules;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result, bail};

use gocover::{GoBlock, Outcome};

fn main() {
    if let Err(err) = run() {
        eprintln!("livecov-conformance: {err:#}");
        std::process::exit(1);
    }
}

/// The block rules of the Go on PATH: the one whose `go tool cover` is the oracle.
pub fn rules() -> instrumenter::Rules {
    static RULES: std::sync::OnceLock<instrumenter::Rules> = std::sync::OnceLock::new();
    *RULES.get_or_init(|| {
        let version = livecov_testkit::go(&std::env::temp_dir(), &["env", "GOVERSION"])
            .expect("go env GOVERSION");
        instrumenter::version::rules_for(version.trim())
            .unwrap_or_else(|e| panic!("the Go on PATH: {e}"))
    })
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    println!(
        "go tool cover of {} ({} rules)",
        livecov_testkit::go(&std::env::temp_dir(), &["env", "GOVERSION"])?.trim(),
        rules().releases()
    );
    let Some((cmd, rest)) = args.split_first() else {
        bail!("usage: livecov-conformance golden|compare|modules …");
    };
    match cmd.as_str() {
        "golden" => golden(rest),
        "compare" => {
            let mut files = Vec::new();
            for path in rest {
                files.extend(livecov_testkit::go_files(Path::new(path), false)?);
            }
            let report = compare(&files)?;
            report.print();
            report.check()
        }
        "modules" => modules::run(rest),
        "goroot" => {
            let root = livecov_testkit::goroot_src()?;
            let files = livecov_testkit::go_files(&root, false)?;
            let mut report = compare(&files)?;
            report.known(&root, KNOWN_PARSE_DIFFERENCES)?;
            report.print();
            report.check()
        }
        other => bail!("unknown command {other:?}"),
    }
}

/// Writes `X.<rules>.golden` next to each `X.go` (`X.go120.golden`, `X.go127.golden`): the
/// blocks the `go tool cover` on PATH cuts, as `livecov blocks` prints them for a file named
/// by its base name.
fn golden(files: &[String]) -> Result<()> {
    let scratch = tempdir()?;
    let scratch = scratch.path();
    for file in files {
        let path = Path::new(file);
        let name = path.file_name().context("not a file")?.to_string_lossy();
        match gocover::cover_file(path, &scratch.join("out.go"))? {
            Outcome::Blocks(blocks) => {
                let text = format!("mode: set\n{}", gocover::profile_lines(&name, &blocks));
                std::fs::write(
                    path.with_extension(format!("{}.golden", rules().tag())),
                    text,
                )?;
            }
            Outcome::Refused(msg) => bail!("go tool cover refused {file}: {msg}"),
        }
    }
    Ok(())
}

/// The outcome of comparing files with `go tool cover`.
#[derive(Default)]
pub struct Report {
    pub files: usize,
    pub blocks: usize,
    /// Files both refused as invalid Go.
    pub both_refused: usize,
    pub mismatches: Vec<String>,
}

/// Files of Go's own tree that tree-sitter-go and `go/parser` disagree on: type checker test
/// data, valid syntax for `go/parser` that is meant to fail type checking but which
/// tree-sitter-go's grammar refuses, or the reverse. None is code anyone builds; blocks of every
/// other file are compared.
const KNOWN_PARSE_DIFFERENCES: &[(&str, &str)] = &[
    (
        "cmd/compile/internal/syntax/testdata/issue69506.go",
        "go/parser refuses parameters without types that tree-sitter-go reads as types",
    ),
    (
        "internal/types/testdata/check/builtins0.go",
        "make(1): tree-sitter-go wants a type",
    ),
    (
        "internal/types/testdata/check/constdecl.go",
        "a typed constant without a value",
    ),
    (
        "internal/types/testdata/check/decls0.go",
        "[...] in a field type",
    ),
    (
        "internal/types/testdata/check/expr0.go",
        "unary ~ outside a constraint",
    ),
    (
        "internal/types/testdata/check/go1_25.go",
        "new(123) with a comment between new and (",
    ),
    (
        "internal/types/testdata/check/gotos.go",
        "two labels on one statement",
    ),
    (
        "internal/types/testdata/fixedbugs/issue42987.go",
        "[...] in a conversion",
    ),
    (
        "internal/types/testdata/fixedbugs/issue50372.go",
        "go/parser refuses three range variables, tree-sitter-go reads them",
    ),
    (
        "internal/types/testdata/fixedbugs/issue53358.go",
        "a method expression on a struct literal type",
    ),
    (
        "internal/types/testdata/fixedbugs/issue58612.go",
        ".(type) as an index",
    ),
    (
        "internal/types/testdata/spec/range.go",
        "go/parser refuses three range variables, tree-sitter-go reads them",
    ),
];

impl Report {
    /// Takes the files of `known` (paths under `root`) out of the mismatches. A listed file that
    /// no longer differs is an error: the list must stay true.
    pub fn known(&mut self, root: &Path, known: &[(&str, &str)]) -> Result<()> {
        let mut stale = Vec::new();
        for (file, why) in known {
            let path = root.join(file).display().to_string();
            let before = self.mismatches.len();
            self.mismatches
                .retain(|m| !m.starts_with(&format!("{path}: ")));
            match before - self.mismatches.len() {
                0 => stale.push(*file),
                _ => println!("known difference {file}: {why}"),
            }
        }
        if !stale.is_empty() {
            bail!(
                "listed as known differences but now equal to go tool cover: {}",
                stale.join(", ")
            );
        }
        Ok(())
    }

    pub fn print(&self) {
        for m in &self.mismatches {
            println!("MISMATCH {m}");
        }
        println!(
            "compared {} files, {} blocks: {} mismatches ({} files refused by both)",
            self.files,
            self.blocks,
            self.mismatches.len(),
            self.both_refused
        );
    }

    pub fn check(&self) -> Result<()> {
        if !self.mismatches.is_empty() {
            bail!("{} files differ from go tool cover", self.mismatches.len());
        }
        Ok(())
    }
}

/// Compares the instrumenter's blocks with `go tool cover`'s for each file, on two threads.
pub fn compare(files: &[PathBuf]) -> Result<Report> {
    let scratch = tempdir()?;
    let scratch = scratch.path();
    let next = AtomicUsize::new(0);
    let report = Mutex::new(Report::default());
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|s| -> Result<()> {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (next, report) = (&next, &report);
                s.spawn(move || -> Result<()> {
                    let out = scratch.join(format!("out{t}.go"));
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(file) = files.get(i) else {
                            return Ok(());
                        };
                        let verdict = compare_file(file, &out)?;
                        let mut r = report.lock().unwrap();
                        r.files += 1;
                        match verdict {
                            Verdict::Equal(n) => r.blocks += n,
                            Verdict::BothRefused => r.both_refused += 1,
                            Verdict::Differ(msg) => r.mismatches.push(msg),
                        }
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().expect("worker panicked")?;
        }
        Ok(())
    })?;
    Ok(report.into_inner().unwrap())
}

enum Verdict {
    Equal(usize),
    BothRefused,
    Differ(String),
}

fn compare_file(file: &Path, scratch: &Path) -> Result<Verdict> {
    let src = std::fs::read(file)?;
    let ours = instrumenter::analyze("f.go", &src, rules());
    let theirs = gocover::cover_file(file, scratch)?;
    let d = file.display();
    Ok(match (ours, theirs) {
        (Ok(meta), Outcome::Blocks(want)) => {
            let got: Vec<GoBlock> = meta
                .blocks
                .iter()
                .map(|b| (b.start.line, b.start.col, b.end.line, b.end.col, b.num_stmt))
                .collect();
            if got == want {
                Verdict::Equal(got.len())
            } else {
                Verdict::Differ(format!("{d}: {}", first_difference(&got, &want)))
            }
        }
        (Err(_), Outcome::Refused(_)) => Verdict::BothRefused,
        (Err(e), Outcome::Blocks(_)) => Verdict::Differ(format!(
            "{d}: livecov refused ({e}), go tool cover accepted"
        )),
        (Ok(_), Outcome::Refused(msg)) => Verdict::Differ(format!(
            "{d}: go tool cover refused ({msg}), livecov accepted"
        )),
    })
}

fn first_difference(got: &[GoBlock], want: &[GoBlock]) -> String {
    let fmt = |b: Option<&GoBlock>| match b {
        Some((l0, c0, l1, c1, n)) => format!("{l0}.{c0},{l1}.{c1} {n}"),
        None => "nothing".to_string(),
    };
    let i = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    format!(
        "block #{i}: livecov {} / go tool cover {} ({} vs {} blocks)",
        fmt(got.get(i)),
        fmt(want.get(i)),
        got.len(),
        want.len()
    )
}

pub fn tempdir() -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("livecov-conformance-")
        .tempdir()
        .context("creating a temporary directory")
}
