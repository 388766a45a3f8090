//! Running the real `go tool cover` and reading back the blocks it chose.
//!
//! In its legacy mode (`-mode=set -var=NAME`, no `-pkgcfg`), cover appends a struct to the
//! rewritten file whose `Pos` and `NumStmt` arrays list every block in counter order:
//!
//! ```text
//!     Pos: [3 * 2]uint32{
//!         3, 5, 0x2000d, // [0]
//! ```
//!
//! Each block is `startLine, endLine, endCol<<16 | startCol`.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// A block as cover reports it: start line, start column, end line, end column, statements.
pub type GoBlock = (u32, u32, u32, u32, u32);

const VAR: &str = "LivecovConformanceVar";

/// What `go tool cover` made of one file.
pub enum Outcome {
    Blocks(Vec<GoBlock>),
    /// cover refused the file (it does not parse); the message is cover's.
    Refused(String),
}

/// Runs `go tool cover` on `file`, writing its output to `scratch`.
pub fn cover_file(file: &Path, scratch: &Path) -> Result<Outcome> {
    let out = Command::new("go")
        .args(["tool", "cover", "-mode=set", "-var", VAR, "-o"])
        .arg(scratch)
        .arg(file)
        .output()
        .context("cannot run `go tool cover`: is Go installed and on PATH?")?;
    if !out.status.success() {
        return Ok(Outcome::Refused(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    let text = std::fs::read_to_string(scratch)
        .with_context(|| format!("reading cover output {}", scratch.display()))?;
    parse(&text)
        .map(Outcome::Blocks)
        .with_context(|| format!("parsing cover output for {}", file.display()))
}

fn parse(text: &str) -> Result<Vec<GoBlock>> {
    let decl = format!("\nvar {VAR} = struct {{");
    let Some(at) = text.rfind(&decl) else {
        bail!("no counter struct in cover output")
    };
    let tail = &text[at..];
    let pos = section(tail, "\tPos: [")?;
    let nstmt = section(tail, "\tNumStmt: [")?;
    let mut nums = Vec::new();
    for line in pos {
        let fields: Vec<&str> = line
            .split("//")
            .next()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if fields.len() != 3 {
            bail!("unexpected Pos line {line:?}");
        }
        let l0: u32 = fields[0].parse()?;
        let l1: u32 = fields[1].parse()?;
        let packed = u32::from_str_radix(fields[2].trim_start_matches("0x"), 16)?;
        nums.push((l0, packed & 0xFFFF, l1, packed >> 16));
    }
    let stmts: Vec<u32> = nstmt
        .iter()
        .map(|l| l.split(',').next().unwrap_or("").trim().parse())
        .collect::<Result<_, _>>()?;
    if stmts.len() != nums.len() {
        bail!(
            "{} positions but {} statement counts",
            nums.len(),
            stmts.len()
        );
    }
    Ok(nums
        .into_iter()
        .zip(stmts)
        .map(|((l0, c0, l1, c1), n)| (l0, c0, l1, c1, n))
        .collect())
}

/// The element lines of the array literal that starts with `head`.
fn section<'a>(text: &'a str, head: &str) -> Result<Vec<&'a str>> {
    let start = text.find(head).with_context(|| format!("no {head:?}"))?;
    Ok(text[start..]
        .lines()
        .skip(1)
        .take_while(|l| l.trim() != "},")
        .collect())
}

/// Formats blocks as coverprofile lines named `name` with count 0.
pub fn profile_lines(name: &str, blocks: &[GoBlock]) -> String {
    blocks
        .iter()
        .map(|(l0, c0, l1, c1, n)| format!("{name}:{l0}.{c0},{l1}.{c1} {n} 0\n"))
        .collect()
}
