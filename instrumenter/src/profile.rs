//! The Go coverprofile text format.
//!
//! ```text
//! mode: set
//! example.com/m/file.go:12.34,14.2 3 1
//! ```
//!
//! `file:startLine.startCol,endLine.endCol numStmt count`, columns in bytes, end exclusive.

use std::fmt::Write as _;

use crate::Mode;
use crate::meta::FileMeta;

/// The `mode:` header line, with its newline.
pub fn header(mode: Mode) -> String {
    format!("mode: {}\n", mode.as_str())
}

/// Appends one line per block of `file` to `out`, in counter order, with the count that
/// `count(i)` gives block `i`.
pub fn write_blocks(out: &mut String, file: &FileMeta, count: impl Fn(usize) -> u64) {
    for i in 0..file.blocks.len() {
        let _ = writeln!(out, "{} {}", block(file, i), count(i));
    }
}

/// Block `i` of `file` as a profile line names it, without the count:
/// `name:startLine.startCol,endLine.endCol numStmt`.
pub fn block(file: &FileMeta, i: usize) -> String {
    let b = &file.blocks[i];
    format!(
        "{}:{}.{},{}.{} {}",
        file.name, b.start.line, b.start.col, b.end.line, b.end.col, b.num_stmt
    )
}

/// Appends the blocks of `files` to `out` in the order Go writes textual profiles
/// (`go test -coverprofile`, `go tool covdata textfmt`): by package import path, then file,
/// then start line, end line, start column, end column and statement count.
/// `count(f, i)` gives block `i` of `files[f]` its count.
pub fn write_textual(out: &mut String, files: &[FileMeta], count: impl Fn(usize, usize) -> u64) {
    let mut order: Vec<(usize, usize)> = files
        .iter()
        .enumerate()
        .flat_map(|(f, file)| (0..file.blocks.len()).map(move |i| (f, i)))
        .collect();
    let key = |&(f, i): &(usize, usize)| {
        let file = &files[f];
        let b = &file.blocks[i];
        let pkg = file.name.rsplit_once('/').map_or("", |(dir, _)| dir);
        (
            pkg,
            file.name.as_str(),
            b.start.line,
            b.end.line,
            b.start.col,
            b.end.col,
            b.num_stmt,
        )
    };
    order.sort_by(|a, b| key(a).cmp(&key(b)));
    for (f, i) in order {
        let _ = writeln!(out, "{} {}", block(&files[f], i), count(f, i));
    }
}
