//! Go 1.27's cut of a basic block into the ranges that hold code.
//!
//! From Go 1.27 on, `go tool cover` no longer gives a basic block one range from its first
//! statement to where the block ends. It scans the block's text with `go/scanner` and splits it
//! at every run of lines that hold no code (blank lines, comment-only lines, lines holding only
//! braces), gives a block without code a zero-width range, and then glues back ranges that start
//! inside a multi-line statement (a `const (…)` with a blank line in it). Each range gets a
//! counter of its own. This is a port of `codeRanges`, `insideStatement` and
//! `mergeRangesWithinStatements` in Go 1.27's `src/cmd/cover/cover.go`.
//!
//! Only where tokens start and which lines they touch matters here: [`crate::scan`] tells.

use crate::scan;

/// A range of a block that holds code, in byte offsets of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub start: usize,
    pub end: usize,
}

/// A range after merging, with the number of statements that start in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counted {
    pub range: Range,
    pub num_stmt: u32,
}

/// `codeRanges`: the ranges of `src[start..end]` that hold code, in order. Never empty: a
/// block without code gets the zero-width range `start..start`.
pub fn code_ranges(src: &[u8], start: usize, end: usize) -> Vec<Range> {
    let s = &src[start..end];
    // go/token's lines of the scanned slice: a newline starts a line unless it is the slice's
    // last byte. `line_starts[k]` is where line k+1 starts.
    let mut line_starts = vec![0];
    line_starts.extend(
        s.iter()
            .enumerate()
            .filter(|&(i, &b)| b == b'\n' && i + 1 < s.len())
            .map(|(i, _)| i + 1),
    );
    let line_of = |offset: usize| line_starts.partition_point(|&l| l <= offset);

    let mut ranges = Vec::new();
    let mut code_start = 0;
    let mut prev_end_line = 0; // last line with code; 0: no code yet
    for t in scan::tokens(s) {
        let pos = t.start;
        let end_line = match t.kind {
            // Braces delimit blocks; they are not code.
            scan::Kind::Punct(b'{' | b'}') | scan::Kind::Comment => continue,
            // go/scanner's literal leaves out carriage returns (https://go.dev/issue/74958),
            // so cover may see a raw string end a line early.
            scan::Kind::Raw => {
                let crs = s[t.start..t.end].iter().filter(|&&b| b == b'\r').count();
                line_of(t.end - crs)
            }
            _ => line_of(pos),
        };
        let start_line = line_of(pos);
        if prev_end_line == 0 {
            code_start = pos;
        } else if start_line > prev_end_line + 1 {
            ranges.push(Range {
                start: start + code_start,
                end: start + line_starts[prev_end_line],
            });
            code_start = pos;
        }
        prev_end_line = prev_end_line.max(end_line);
    }
    if prev_end_line > 0 {
        let range_end = if prev_end_line < line_starts.len() {
            // Lines without code follow the last code (a lone `}`): stop at the next line.
            start + line_starts[prev_end_line]
        } else {
            end
        };
        ranges.push(Range {
            start: start + code_start,
            end: range_end,
        });
    }
    if ranges.is_empty() {
        ranges.push(Range { start, end: start });
    }
    ranges
}

/// `mergeRangesWithinStatements`: counts the statements (`stmts`, as `(start, end)` offsets in
/// source order) that start in each range, and folds a range into the one before it when it
/// starts strictly inside a statement.
pub fn merge_within_statements(ranges: &[Range], stmts: &[(usize, usize)]) -> Vec<Counted> {
    let first_at_or_after = |pos: usize| stmts.partition_point(|&(s, _)| s < pos);
    let mut merged: Vec<Counted> = Vec::with_capacity(ranges.len());
    for r in ranges {
        let num_stmt = (first_at_or_after(r.end) - first_at_or_after(r.start)) as u32;
        let i = first_at_or_after(r.start);
        let inside = i > 0 && r.start < stmts[i - 1].1;
        match merged.last_mut() {
            Some(last) if inside => {
                last.range.end = r.end;
                last.num_stmt += num_stmt;
            }
            _ => merged.push(Counted {
                range: *r,
                num_stmt,
            }),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges(src: &str) -> Vec<(usize, usize)> {
        code_ranges(src.as_bytes(), 0, src.len())
            .into_iter()
            .map(|r| (r.start, r.end))
            .collect()
    }

    #[test]
    fn blank_and_comment_lines_split() {
        let src = "a()\n\n// c\nb()\n";
        // The slice's trailing newline is no line of its own: b() is the last line.
        assert_eq!(ranges(src), vec![(0, 4), (10, src.len())]);
    }

    #[test]
    fn adjacent_lines_stay_together() {
        assert_eq!(ranges("a()\nb()"), vec![(0, 7)]);
    }

    #[test]
    fn no_code_is_zero_width() {
        assert_eq!(ranges("{ // x\n /* y */ }"), vec![(0, 0)]);
        assert_eq!(ranges(""), vec![(0, 0)]);
    }

    #[test]
    fn lone_brace_line_ends_the_range_at_its_start() {
        let src = "{\n\tx()\n}";
        assert_eq!(ranges(src), vec![(3, 7)]);
    }

    #[test]
    fn comment_markers_in_literals_are_not_comments() {
        assert_eq!(ranges("a(\"/*\")\n\nb('\\'')"), vec![(0, 8), (9, 16)]);
        assert_eq!(ranges("a(`x\n\n//y`)\nb()"), vec![(0, 15)]);
    }

    #[test]
    fn raw_string_end_leaves_out_carriage_returns() {
        // The literal really ends on line 3 and c() is on line 4, but without its two CRs the
        // literal's length ends it on line 2, so cover sees a gap before c().
        let src = "s = `a\r\nb\r\n`\r\nc()";
        assert_eq!(ranges(src), vec![(0, 11), (14, src.len())]);
        let lf = "s = `a\nb\n`\nc()";
        assert_eq!(ranges(lf), vec![(0, lf.len())]);
    }

    #[test]
    fn merge_folds_ranges_inside_a_statement() {
        let r = [Range { start: 0, end: 10 }, Range { start: 20, end: 30 }];
        let got = merge_within_statements(&r, &[(0, 25)]);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].range, Range { start: 0, end: 30 });
        assert_eq!(got[0].num_stmt, 1);
        let got = merge_within_statements(&r, &[(0, 5), (20, 25)]);
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].num_stmt, got[1].num_stmt), (1, 1));
    }
}
