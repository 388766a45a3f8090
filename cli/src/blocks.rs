//! `livecov blocks`: print the coverage blocks of Go files as a coverprofile with zero counts.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use instrumenter::{Mode, profile};

/// Print the coverage blocks of Go files, as `go tool cover` would cut them.
///
/// The output is a Go coverprofile in `set` mode with every count 0: one line per block,
/// `name:startLine.startCol,endLine.endCol numStmt 0`, in the order `go test -coverprofile`
/// writes (by package, file, then position). It is the debugging aid for the instrumenter:
/// diff it against a `go test -coverprofile` of the same files to see where blocks differ.
#[derive(clap::Args)]
pub struct Args {
    /// Import path of the package the files belong to: blocks are named IMPORTPATH/file.go.
    /// Without it, files are named by the path given on the command line.
    #[arg(long, value_name = "IMPORTPATH")]
    pkg_path: Option<String>,

    #[command(flatten)]
    go: crate::build::GoRules,

    /// Go source files.
    #[arg(required = true, value_name = "FILE.go")]
    files: Vec<PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
    let rules = match args.go.rules {
        Some(rules) => rules,
        None => {
            let dir = std::env::current_dir().context("cannot read the current directory")?;
            gobuild::go_rules(&dir)
                .map(|(rules, _)| rules)
                .context("cannot tell whose blocks to cut: pass --go 1.26 or --go 1.27")?
        }
    };
    // Read and analyze everything before printing anything: a bad file refuses the whole run.
    let mut files = Vec::with_capacity(args.files.len());
    for path in &args.files {
        let name = profile_name(args.pkg_path.as_deref(), path)?;
        let src = read_go_file(path)?;
        let meta = instrumenter::analyze(&name, &src, rules)
            .map_err(|e| anyhow::anyhow!("{}:{e}", path.display()))?;
        files.push(meta);
    }
    let mut out = profile::header(Mode::Set);
    profile::write_textual(&mut out, &files, |_, _| 0);
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(out.as_bytes())?;
    stdout.flush()?;
    Ok(())
}

fn profile_name(pkg_path: Option<&str>, path: &Path) -> Result<String> {
    match pkg_path {
        None => Ok(path.to_string_lossy().into_owned()),
        Some(pkg) => {
            let base = path
                .file_name()
                .with_context(|| format!("{}: not a file name", path.display()))?;
            Ok(format!(
                "{}/{}",
                pkg.trim_end_matches('/'),
                base.to_string_lossy()
            ))
        }
    }
}

fn read_go_file(path: &Path) -> Result<Vec<u8>> {
    if path.is_dir() {
        bail!(
            "{}: is a directory; give the .go files in it (for example {}/*.go)",
            path.display(),
            path.display()
        );
    }
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}
