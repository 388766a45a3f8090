//! Writing counters into Go source.
//!
//! Every insertion lands on an existing line (after a `{`, after a clause's `:`, or before the
//! statement that starts a block), and the declarations go after the last line, so every
//! original line keeps its number: a panic's stack trace points at the user's real line. The
//! only import added is `sync/atomic` from the standard library, under a name no user code
//! uses, so a rewritten file never needs anything from `go.mod`.
//!
//! Given the original file's path, a `/*line*/` directive after each insertion puts the rest
//! of the line back at the user's columns, and one before the `package` keyword names the
//! user's file, so that the compiler, `go vet` and the runtime speak of the user's file, line
//! and column. One limit remains: the compiler keeps columns up to 255 only
//! (`cmd/internal/src`), so on a rewritten line that long, later columns come out wrong.

use crate::blocks::{Cut, Insert};
use crate::position::LineMap;
use crate::scan::{self, Kind};
use crate::{Mode, Prologue};

/// The name under which rewritten files import `sync/atomic`.
pub const ATOMIC_ALIAS: &str = "_livecov_atomic";

/// Line directives that give the rewritten source the positions of the original: the
/// compiler, `go vet` and the runtime then name the user's file, line and column, not the
/// rewritten copy's.
pub(crate) struct Directives<'a> {
    /// The original file's absolute path: the file name wherever no `//line` directive of the
    /// user's applies.
    pub path: &'a str,
    pub lines: &'a LineMap,
}

impl Directives<'_> {
    /// A directive that gives the byte after it the position `offset` has in the original
    /// file, line directives of the user's applied as `go build` applies them. Where the
    /// column is known it is `/*line :L:C*/`, which keeps the file name in effect (the right
    /// one: the user's directives are all there, and ours only repeat their names), unless
    /// `named`; with the column unknown (after a user's `//line f:N`), `/*line FILE:L*/`.
    /// `None` if FILE cannot be written in a comment.
    fn at(&self, offset: usize, named: bool) -> Option<String> {
        let (file, pos) = self.lines.position(offset);
        if pos.col != 0 && !named {
            return Some(format!("/*line :{}:{}*/", pos.line, pos.col));
        }
        let file = match file {
            // A `//line :L:C` with no directive before it names the file itself.
            Some("") if pos.col != 0 => self.path,
            Some(file) => file,
            None => self.path,
        };
        if file.contains("*/") || file.contains(['\n', '\r']) {
            return None;
        }
        Some(match pos.col {
            0 => format!("/*line {file}:{}*/", pos.line),
            col => format!("/*line {file}:{}:{col}*/", pos.line),
        })
    }
}

/// How a rewritten file counts: its mode, whether under the race detector, and the name of its
/// counter array.
pub(crate) struct Counters<'a> {
    pub mode: Mode,
    pub race: bool,
    pub var: &'a str,
}

/// Rewrites `src`: counters of `cut` go into the array `counters.var`, declared at the end of
/// the file.
/// With `directives`, a line directive follows every insertion, and one naming the file
/// comes right before the `package` keyword (not above it: a comment line there would end the
/// header in which `go` reads `//go:build`, and a byte order mark must stay first).
pub(crate) fn rewrite(
    src: &[u8],
    cut: &Cut,
    counters: Counters,
    package: std::ops::Range<usize>,
    prologue: Option<(usize, &Prologue)>,
    directives: Option<&Directives>,
) -> Vec<u8> {
    // Every insertion as (offset, text), in order; at the same offset, in walk order (an
    // `else if`'s `{` comes before its counter), the prologue first in main's body.
    let Counters { mode, race, var } = counters;
    let mut inserts: Vec<(usize, String)> = Vec::with_capacity(cut.inserts.len() + 2);
    let n = cut.blocks.len();
    let mut imports = String::new();
    if n > 0 && (mode == Mode::Atomic || (mode == Mode::Set && race)) {
        imports.push_str(&format!("; import {ATOMIC_ALIAS} \"sync/atomic\""));
    }
    if let Some((_, p)) = prologue {
        imports.push_str(&format!("; import {} {:?}", p.import.0, p.import.1));
    }
    if !imports.is_empty() {
        inserts.push((package.end, imports));
    }
    if let Some((at, p)) = prologue {
        inserts.push((at, format!("{};", p.statement)));
    }
    for insert in &cut.inserts {
        let text = match *insert {
            Insert::Text { text, .. } => text.to_string(),
            Insert::Counter { index, .. } => format!("{};", counter_stmt(mode, race, var, index)),
        };
        inserts.push((insert.offset(), text));
    }
    // Stable: equal offsets keep the order above.
    inserts.sort_by_key(|(offset, _)| *offset);

    let mut out = Vec::with_capacity(src.len() + n * 48 + 128);
    let mut copied = 0;
    let at = package.start;
    if let Some(line) = directives.and_then(|d| d.at(at, true)) {
        out.extend_from_slice(&src[..at]);
        out.extend_from_slice(line.as_bytes());
        copied = at;
    }
    for (i, (offset, text)) in inserts.iter().enumerate() {
        copy(&mut out, src, copied, *offset, directives);
        copied = *offset;
        out.extend_from_slice(text.as_bytes());
        let last_here = inserts.get(i + 1).is_none_or(|(next, _)| next != offset);
        if last_here && let Some(line) = directives.and_then(|d| d.at(*offset, false)) {
            out.extend_from_slice(line.as_bytes());
        }
    }
    copy(&mut out, src, copied, src.len(), directives);
    out.extend_from_slice(format!("\n\nvar {var} [{n}]uint32\n").as_bytes());
    out
}

/// The highest column the compiler tells apart: it keeps 8 bits of column in a position
/// (`cmd/internal/src`), and reads higher ones as this one.
const COL_MAX: usize = 255;

/// Copies `src[from..to]`, which starts right after an insertion (or at the `package` keyword),
/// to `out`. Past [`COL_MAX`] on the rewritten line, the compiler would put every token at the
/// column of the directive before it, so there each token up to the end of the line gets a
/// directive of its own.
fn copy(out: &mut Vec<u8>, src: &[u8], from: usize, to: usize, directives: Option<&Directives>) {
    let mut at = from;
    let text = &src[from..to];
    let first_line = text.iter().position(|&b| b == b'\n').unwrap_or(text.len());
    let line_start = out.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    if let Some(d) = directives
        && out.len() - line_start + first_line >= COL_MAX
    {
        for token in token_starts(&src[from..to]).into_iter().map(|t| from + t) {
            // The column the token gets if the text before it is copied as it is.
            if out.len() - line_start + (token - at) + 1 < COL_MAX {
                continue;
            }
            if let Some(line) = d.at(token, false) {
                out.extend_from_slice(&src[at..token]);
                // `a/b`: the comment must not turn the `/` into `//`.
                if out.last() == Some(&b'/') {
                    out.push(b' ');
                }
                out.extend_from_slice(line.as_bytes());
                at = token;
            }
        }
    }
    out.extend_from_slice(&src[at..to]);
}

/// Where Go tokens start on the first line of `text`, which starts at a token boundary
/// (offset 0 left out): the places a comment can go without changing the program. The lexer
/// merges what it is unsure of ([`crate::scan`]), which only leaves a place out; a comment or a
/// string that goes on to the next line ends the scan.
fn token_starts(text: &[u8]) -> Vec<usize> {
    let line_end = text.iter().position(|&b| b == b'\n').unwrap_or(text.len());
    let mut starts = Vec::new();
    for t in scan::tokens(text) {
        if t.start >= line_end {
            break;
        }
        let spans_lines = t.end > line_end;
        match t.kind {
            Kind::Comment | Kind::Unclosed if spans_lines || t.kind == Kind::Unclosed => break,
            Kind::Comment => continue,
            _ => {}
        }
        if t.start > 0 {
            starts.push(t.start);
        }
        if spans_lines {
            break;
        }
    }
    starts
}

/// The statement that records one execution of block `index`.
///
/// Each is a form the Go compiler recognizes as a coverage counter update once the package is
/// compiled with `-coveragecfg` naming the counter arrays (gobuild does): an assignment to an
/// element of the array, or `sync/atomic`'s `AddUint32`/`StoreUint32` of one. The inliner
/// then counts the statement as free, as it does Go's own counters, so instrumented code is
/// inlined exactly where the plain build's is. That is why count mode writes `c[i] = c[i] + 1`
/// and not `c[i]++` (an increment is a different node, which the inliner charges for), and
/// why set mode stores unconditionally: a `Load`-and-compare before the store would cost
/// inlining budget in every block. Under the race detector (`race`), set mode loads and
/// stores with `sync/atomic` (the agent swaps counters at boundaries, and the detector must
/// see no race of livecov's making), and stores only while the counter is zero.
fn counter_stmt(mode: Mode, race: bool, var: &str, index: usize) -> String {
    match mode {
        Mode::Set if race => format!(
            "if {ATOMIC_ALIAS}.LoadUint32(&{var}[{index}]) == 0 {{ {ATOMIC_ALIAS}.StoreUint32(&{var}[{index}], 1) }}"
        ),
        Mode::Set => format!("{var}[{index}] = 1"),
        Mode::Count => format!("{var}[{index}] = {var}[{index}] + 1"),
        Mode::Atomic => format!("{ATOMIC_ALIAS}.AddUint32(&{var}[{index}], 1)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tokens `token_starts` finds on the first line of `text`.
    fn tokens(text: &str) -> Vec<&str> {
        let mut starts = token_starts(text.as_bytes());
        let end = text.find('\n').unwrap_or(text.len());
        starts.insert(0, 0);
        starts.push(end);
        starts
            .windows(2)
            .map(|w| text[w[0]..w[1]].trim_end())
            .collect()
    }

    #[test]
    fn token_starts_are_where_a_comment_can_go() {
        assert_eq!(
            tokens(" x := a/b + .5*0x1p-2 - 1e+3i; ch <- 'x'\n\ty"),
            [
                "", "x", ":=", "a", "/", "b", "+", ".5", "*", "0x1p-2", "-", "1e+3i", ";", "ch",
                "<-", "'x'"
            ]
        );
        assert_eq!(
            tokens(r#"f("a\"b", '\'', `c`)...) /* d */ != !e"#),
            [
                "f",
                "(",
                r#""a\"b""#,
                ",",
                "'\\''",
                ",",
                "`c`",
                ")",
                "...",
                ") /* d */",
                "!=",
                "!",
                "e"
            ]
        );
        // Unsure or the end of the line: merged, or the scan stops.
        assert_eq!(tokens("0xe-1+x"), ["0xe-1", "+", "x"]);
        assert_eq!(tokens("a+-b"), ["a", "+-", "b"]);
        assert_eq!(tokens("a // b c"), ["a // b c"]);
        assert_eq!(tokens("a /* b\n c */ d"), ["a /* b"]);
        assert_eq!(tokens("a + `b\nc` d"), ["a", "+", "`b"]);
    }
}
