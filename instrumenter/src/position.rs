//! Byte offsets to the `line.column` positions that `go tool cover` writes.
//!
//! Up to Go 1.26 cover reports *adjusted* positions: `//line` and `/*line*/` directives move
//! the line (and column, or make it unknown: 0) of everything after them, exactly as
//! `go/token.File.PositionFor(p, true)` does. Columns count bytes; lines break on `\n` only.

use tree_sitter::{Node, Tree};

use crate::syntax::SyntaxError;

/// A 1-based line and byte column, as in a coverprofile. Column 0 means "unknown", which a
/// `//line file:N` directive (no column) causes for the rest of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

/// One line directive: from `offset` on, positions are relative to (`line`, `col`) in `file`.
#[derive(Debug, Clone)]
struct LineInfo {
    offset: usize,
    file: String,
    line: usize,
    col: usize,
}

/// Maps byte offsets of one file to adjusted positions.
#[derive(Debug)]
pub struct LineMap {
    /// Byte offset at which each line starts.
    lines: Vec<usize>,
    infos: Vec<LineInfo>,
}

impl LineMap {
    /// Builds the map of `src`, reading line directives from the comments of `tree`. A
    /// malformed directive is a syntax error, as it is for `go/parser`.
    pub fn new(src: &[u8], tree: &Tree) -> Result<LineMap, SyntaxError> {
        let mut lines = vec![0];
        lines.extend(
            src.iter()
                .enumerate()
                .filter(|(_, b)| **b == b'\n')
                .map(|(i, _)| i + 1),
        );
        let mut map = LineMap {
            lines,
            infos: Vec::new(),
        };
        // Nearly no file has a directive: look for the text before walking the tree for comments.
        let has_directive = src
            .windows(7)
            .any(|w| w[0] == b'/' && matches!(w[1], b'/' | b'*') && &w[2..] == b"line ");
        let mut comments = Vec::new();
        if has_directive {
            collect_comments(tree.root_node(), &mut comments);
        }
        for c in comments {
            map.add_directive(src, c.start_byte(), c.end_byte())
                .map_err(|(offset, message)| {
                    let i = map.line_index(offset);
                    SyntaxError {
                        line: i + 1,
                        column: offset - map.lines[i] + 1,
                        message,
                    }
                })?;
        }
        Ok(map)
    }

    /// The 0-based index of the line holding `offset`.
    fn line_index(&self, offset: usize) -> usize {
        self.lines.partition_point(|&start| start <= offset) - 1
    }

    /// The physical position of `offset`, ignoring line directives (Go 1.27 cover's).
    pub fn physical(&self, offset: usize) -> Pos {
        let i = self.line_index(offset);
        Pos {
            line: (i + 1) as u32,
            col: (offset - self.lines[i] + 1) as u32,
        }
    }

    /// The adjusted position of `offset`, with the file name line directives give it
    /// (`None` while no directive applies).
    pub fn position(&self, offset: usize) -> (Option<&str>, Pos) {
        let i = self.line_index(offset);
        let mut line = i + 1;
        let mut col = offset - self.lines[i] + 1;
        let mut file = None;
        let k = self.infos.partition_point(|info| info.offset <= offset);
        if k > 0 {
            let alt = &self.infos[k - 1];
            file = Some(alt.file.as_str());
            let base = self.line_index(alt.offset) + 1;
            let d = line as isize - base as isize;
            line = (alt.line as isize + d) as usize;
            if alt.col == 0 {
                col = 0;
            } else if d == 0 {
                col = alt.col + (offset - alt.offset);
            }
        }
        (
            file,
            Pos {
                line: line as u32,
                col: col as u32,
            },
        )
    }

    /// Records the comment at `start..end` if it is a line directive, following
    /// `go/scanner.(*Scanner).updateLineInfo`. Errors carry the offset of the bad number.
    fn add_directive(
        &mut self,
        src: &[u8],
        start: usize,
        end: usize,
    ) -> Result<(), (usize, String)> {
        let mut lit = &src[start..end];
        let block = lit.starts_with(b"/*");
        if !block && let Some(stripped) = lit.strip_suffix(b"\r") {
            lit = stripped;
        }
        // `//line` only counts at the very start of a line; `/*line` anywhere.
        if !lit[2..].starts_with(b"line ")
            || (!block && self.lines[self.line_index(start)] != start)
        {
            return Ok(());
        }
        // The position right after the comment: past the newline for `//`, past `*/` for `/*`.
        let next = if block {
            end
        } else if src.get(end) == Some(&b'\n') {
            end + 1
        } else if src.get(end) == Some(&b'\r') && src.get(end + 1) == Some(&b'\n') {
            end + 2
        } else {
            end
        };
        let mut text = if block {
            &lit[7..lit.len().saturating_sub(2).max(7)]
        } else {
            &lit[7..]
        };
        let offs = start + 7;
        let Some((mut i, n)) = trailing_digits(text) else {
            return Ok(());
        };
        let number = |from: usize, to: usize| String::from_utf8_lossy(&text[from..to]).into_owned();
        let Some(n) = n else {
            return Err((
                offs + i,
                format!("invalid line number: {}", number(i, text.len())),
            ));
        };
        let (line, col);
        match trailing_digits(&text[..i - 1]) {
            Some((i2, Some(n2))) => {
                line = n2;
                col = n;
                if col == 0 || col > MAX_LINE_COL {
                    return Err((
                        offs + i,
                        format!("invalid column number: {}", number(i, text.len())),
                    ));
                }
                i = i2;
                text = &text[..i2 - 1];
            }
            _ => {
                line = n;
                col = 0;
                text = &text[..i - 1];
            }
        }
        if line == 0 || line > MAX_LINE_COL {
            return Err((offs + i, format!("invalid line number: {line}")));
        }
        let mut file = String::from_utf8_lossy(text).into_owned();
        if file.is_empty() && col != 0 {
            file = self.position(start).0.unwrap_or("").to_string();
        }
        let size = src.len();
        if self.infos.last().is_none_or(|last| last.offset < next) && next < size {
            self.infos.push(LineInfo {
                offset: next,
                file,
                line,
                col,
            });
        }
        Ok(())
    }
}

const MAX_LINE_COL: usize = 1 << 30;

/// Splits `text` at its last `:`: the index just after it, and the number that follows if it
/// is one.
fn trailing_digits(text: &[u8]) -> Option<(usize, Option<usize>)> {
    let i = text.iter().rposition(|&b| b == b':')?;
    let digits = &text[i + 1..];
    let n = if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) {
        std::str::from_utf8(digits).ok()?.parse::<usize>().ok()
    } else {
        None
    };
    Some((i + 1, n))
}

fn collect_comments<'t>(node: Node<'t>, out: &mut Vec<Node<'t>>) {
    if node.kind() == "comment" {
        out.push(node);
        return;
    }
    let mut cursor = node.walk();
    for child in node.children(&mut cursor) {
        collect_comments(child, out);
    }
}
