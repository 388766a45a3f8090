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

/// Appends one line per block of `file` to `out`, with the count that `count(i)` gives block
/// `i`.
pub fn write_blocks(out: &mut String, file: &FileMeta, count: impl Fn(usize) -> u64) {
    for (i, b) in file.blocks.iter().enumerate() {
        let _ = writeln!(
            out,
            "{}:{}.{},{}.{} {} {}",
            file.name,
            b.start.line,
            b.start.col,
            b.end.line,
            b.end.col,
            b.num_stmt,
            count(i)
        );
    }
}
