//! The `html` export: one self-contained page (inline CSS, no external resources, no sources)
//! for people. A header with the service, the snapshot, its label and time and the statement
//! totals; a table of files (sorted by name) with their statements, the covered ones and a bar;
//! and per file a table of its functions in source order with their first line, statements,
//! covered statements and entry count. A little inline script sorts a table by the column
//! whose heading is clicked; the page reads the same without it.
//!
//! A statement is covered when its block's count is not 0, as in the `json` export. The page is
//! written with pushes onto one `String`: a snapshot of 100,000 blocks takes one pass over them.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::project::{Change, FuncView, Origin};
use crate::rfc3339;
use crate::{Coverage, FileCov, Options};

/// What the page says about the snapshot besides its coverage.
#[derive(Debug, Clone, Copy, Default)]
pub struct Header<'a> {
    pub service: &'a str,
    pub label: Option<&'a str>,
    /// More facts, each a term and its text, after the others: what the builds left out
    /// ("Excluded when built") and the files a filter took out of the report.
    pub notes: &'a [(&'a str, String)],
}

pub const STYLE: &str = "\
body{font-family:system-ui,-apple-system,\"Segoe UI\",sans-serif;margin:2em;color:#222}\
h1{font-size:1.5em;margin-bottom:.3em}h2{font-size:1.1em;margin-top:2em;word-break:break-all}\
dl.meta{display:grid;grid-template-columns:max-content auto;gap:.2em 1em;margin:0 0 1.5em}\
dl.meta dt{font-weight:600}dl.meta dd{margin:0}\
table{border-collapse:collapse;margin-bottom:1em}\
th,td{padding:.25em .7em;border-bottom:1px solid #ddd;text-align:right;white-space:nowrap}\
th{background:#f4f4f4;cursor:pointer;user-select:none}\
th.l,td.l{text-align:left;white-space:normal;word-break:break-all}\
td.z{color:#b00}\
.bar{display:inline-block;width:6em;height:.7em;background:#e8b4b4;margin-right:.5em;\
vertical-align:middle}\
.bar span{display:block;height:100%;background:#4c9a4c}\
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,monospace}\
h2 a.src{font-size:.8em;font-weight:normal;margin-left:.6em}\
pre.src{font-size:.85em;line-height:1.35;color:#777;background:#fafafa;padding:.5em 0;tab-size:4;\
overflow-x:auto;border:1px solid #eee}\
pre.src .ln::before{content:attr(data-n);display:inline-block;width:4em;padding-right:1em;\
text-align:right;color:#aaa;user-select:none}\
pre.src .c0{color:#a00;background:#fde2e2}pre.src .c1{color:#175e17;background:#dcf5dc}\
pre.src .c2{color:#175e17;background:#e6eefb}\
td.st-changed{color:#b00}td.st-carried{color:#2a5db0}";

/// Sorts a table by the clicked column: numerically by the cells' `data-v` where the heading
/// has `data-k="n"`, else by text; a second click reverses.
pub const SCRIPT: &str = "\
document.querySelectorAll('th').forEach(function(th){th.addEventListener('click',function(){\
var b=th.closest('table').tBodies[0],i=th.cellIndex,n=th.getAttribute('data-k')==='n',\
d=th.getAttribute('data-d')==='1'?-1:1;th.setAttribute('data-d',d===1?'1':'0');\
var rows=Array.prototype.slice.call(b.rows);rows.sort(function(x,y){\
var p=x.cells[i],q=y.cells[i];if(n){return d*(Number(p.getAttribute('data-v'))-\
Number(q.getAttribute('data-v')));}return d*p.textContent.localeCompare(q.textContent);});\
rows.forEach(function(r){b.appendChild(r);});});});";

/// Statements and covered statements.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stmts {
    total: u64,
    covered: u64,
}

impl Stmts {
    /// `covered` of `total` statements, as the store counts them.
    pub fn new(covered: i64, total: i64) -> Stmts {
        Stmts {
            total: total.max(0) as u64,
            covered: covered.max(0) as u64,
        }
    }

    fn of(file: &FileCov, blocks: impl IntoIterator<Item = usize>) -> Stmts {
        blocks.into_iter().fold(Stmts::default(), |s, i| {
            let b = &file.blocks[i];
            let n = u64::from(b.stmts);
            Stmts {
                total: s.total + n,
                covered: s.covered + if b.count > 0 { n } else { 0 },
            }
        })
    }

    /// Tenths of a percent, rounded down (100.0 only when all are covered); `None` when there
    /// are no statements.
    fn tenths(self) -> Option<u64> {
        (self.total > 0).then(|| self.covered * 1000 / self.total)
    }
}

/// How a report shows the sources of its files.
#[derive(Clone, Copy, Default)]
pub enum Sources<'a> {
    /// None at hand: the tables only.
    #[default]
    None,
    /// Each file's source, found by its coverprofile name, annotated after its function table.
    Inline(&'a dyn Fn(&str) -> Option<&'a str>),
    /// Each file's heading links to a page of its annotated source (the dashboard), where
    /// this gives an address.
    Linked(&'a dyn Fn(&str) -> Option<String>),
}

/// The standalone page: everything inline, nothing fetched.
pub fn write(
    cov: &Coverage,
    header: &Header<'_>,
    options: &Options,
    sources: Sources<'_>,
) -> String {
    let mut out = String::with_capacity(capacity(cov));
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    out.push_str("<title>livecov: ");
    escape(&mut out, header.service);
    let _ = write!(out, ", snapshot {}", cov.snapshot);
    out.push_str("</title>\n<style>");
    out.push_str(STYLE);
    out.push_str("</style>\n</head>\n<body>\n<h1>livecov: ");
    escape(&mut out, header.service);
    let _ = writeln!(out, ", snapshot {}</h1>", cov.snapshot);
    body(&mut out, cov, header, options, sources);
    let _ = write!(
        out,
        "<p>Written by livecov {}.</p>\n<script>{SCRIPT}</script>\n</body>\n</html>\n",
        env!("CARGO_PKG_VERSION")
    );
    out
}

/// A guess at the size of a page, so that it is written without regrowing.
pub fn capacity(cov: &Coverage) -> usize {
    let blocks: usize = cov.files.iter().map(|f| f.blocks.len()).sum();
    let funcs: usize = cov.files.iter().map(|f| f.funcs.len()).sum();
    4096 + cov.files.len() * 600 + funcs * 220 + blocks
}

/// The report without the page around it: the facts, the table of files and each file's
/// table of functions (and source, as `sources` says). The dashboard's snapshot page is this
/// in its own frame.
pub fn body(
    out: &mut String,
    cov: &Coverage,
    header: &Header<'_>,
    options: &Options,
    sources: Sources<'_>,
) {
    // Files by the name shown (stripping a prefix can change the order).
    let mut files: Vec<(&str, &FileCov, Stmts)> = cov
        .files
        .iter()
        .map(|f| {
            (
                options.file_name(&f.name),
                f,
                Stmts::of(f, 0..f.blocks.len()),
            )
        })
        .collect();
    files.sort_by(|a, b| a.0.cmp(b.0));
    let total = files.iter().fold(Stmts::default(), |t, (_, _, s)| Stmts {
        total: t.total + s.total,
        covered: t.covered + s.covered,
    });
    let funcs: usize = cov.files.iter().map(|f| f.funcs.len()).sum();
    // Functions get a state only where other builds could have carried coverage in.
    let several = cov.builds > 1;

    out.push_str("<dl class=\"meta\">\n<dt>Service</dt><dd>");
    escape(out, header.service);
    let _ = write!(
        out,
        "</dd>\n<dt>Snapshot</dt><dd>{}</dd>\n<dt>Label</dt><dd>",
        cov.snapshot
    );
    match header.label {
        Some(l) if !l.is_empty() => escape(out, l),
        _ => out.push_str("none"),
    }
    let _ = write!(
        out,
        "</dd>\n<dt>Taken at</dt><dd>{}</dd>\n<dt>Statements</dt><dd>{} of {} covered (",
        rfc3339(cov.taken_at),
        total.covered,
        total.total
    );
    percent(out, total);
    let _ = write!(
        out,
        ")</dd>\n<dt>Files</dt><dd>{}</dd>\n<dt>Functions</dt><dd>{funcs}</dd>\n",
        files.len()
    );
    for (term, text) in header.notes {
        out.push_str("<dt>");
        escape(out, term);
        out.push_str("</dt><dd>");
        escape(out, text);
        out.push_str("</dd>\n");
    }
    out.push_str("</dl>\n");

    out.push_str(
        "<table class=\"files\">\n<thead><tr><th class=\"l\">File</th>\
         <th data-k=\"n\">Statements</th><th data-k=\"n\">Covered</th>\
         <th data-k=\"n\">Coverage</th></tr></thead>\n<tbody>\n",
    );
    for (i, (name, _, stmts)) in files.iter().enumerate() {
        let _ = write!(out, "<tr><td class=\"l\"><a href=\"#f{i}\">");
        escape(out, name);
        out.push_str("</a></td>");
        counts(out, *stmts);
        cell(out, *stmts);
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n<tfoot><tr><td class=\"l\">Total</td>");
    counts(out, total);
    cell(out, total);
    out.push_str("</tr></tfoot>\n</table>\n");

    for (i, (name, file, _)) in files.iter().enumerate() {
        let _ = write!(out, "<h2 id=\"f{i}\"><code>");
        escape(out, name);
        out.push_str("</code>");
        // Where the source is, each function's name links to its first line there.
        let (link, inline) = match sources {
            Sources::None => (None, None),
            Sources::Linked(link) => (link(&file.name).map(|url| format!("{url}#L")), None),
            Sources::Inline(source) => match source(&file.name) {
                Some(text) => (Some(format!("#f{i}L")), Some(text)),
                None => (None, None),
            },
        };
        if let (Sources::Linked(_), Some(to_line)) = (sources, &link) {
            out.push_str(" <a class=\"src\" href=\"");
            escape(out, to_line.strip_suffix("#L").unwrap_or(to_line));
            out.push_str("\">source</a>");
        }
        out.push_str(
            "</h2>\n<table class=\"funcs\">\n<thead><tr><th class=\"l\">Function</th>\
             <th data-k=\"n\">Line</th><th data-k=\"n\">Statements</th>\
             <th data-k=\"n\">Covered</th><th data-k=\"n\">Coverage</th>\
             <th data-k=\"n\">Entered</th>",
        );
        if several {
            out.push_str("<th class=\"l\">State</th>");
        }
        out.push_str("</tr></thead>\n<tbody>\n");
        for f in &file.funcs {
            let stmts = Stmts::of(file, f.blocks.iter().copied());
            let (line, entered) = (f.line(file), f.count(file));
            out.push_str("<tr><td class=\"l\">");
            if let Some(to_line) = &link {
                out.push_str("<a href=\"");
                escape(out, to_line);
                let _ = write!(out, "{line}\">");
            }
            out.push_str("<code>");
            escape(out, &f.name);
            out.push_str("</code>");
            if link.is_some() {
                out.push_str("</a>");
            }
            let _ = write!(out, "</td><td data-v=\"{line}\">{line}</td>");
            counts(out, stmts);
            cell(out, stmts);
            let zero = if entered == 0 { " class=\"z\"" } else { "" };
            let _ = write!(out, "<td{zero} data-v=\"{entered}\">{entered}</td>");
            if several {
                state(out, f.view);
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</tbody>\n</table>\n");
        if let Some(text) = inline {
            annotate(out, file, text, &format!("f{i}L"));
        }
    }
    gone(out, cov, options);
}

/// A function's state, and what changed: `carried`, `changed (added)`, `measured (edited)`.
fn state(out: &mut String, v: FuncView) {
    let _ = write!(out, "<td class=\"l st-{s}\">{s}", s = v.state.as_str());
    if v.change != Change::Same {
        let _ = write!(out, " ({})", v.change.as_str());
    }
    out.push_str("</td>");
}

/// The functions only other builds have: what was measured on code the reported build no
/// longer has, apart from every total.
fn gone(out: &mut String, cov: &Coverage, options: &Options) {
    if cov.gone.is_empty() {
        return;
    }
    let _ = write!(
        out,
        "<h2 id=\"gone\">Only in other builds</h2>\n<p>{} functions that the reported build \
         edited or removed, with what was measured on them; in no total above.</p>\n\
         <table class=\"gone\">\n<thead><tr><th class=\"l\">File</th>\
         <th class=\"l\">Function</th><th class=\"l\">Change</th><th class=\"l\">Build</th>\
         <th data-k=\"n\">Statements</th><th data-k=\"n\">Covered</th></tr></thead>\n<tbody>\n",
        cov.gone.len()
    );
    for g in &cov.gone {
        out.push_str("<tr><td class=\"l\">");
        escape(out, options.file_name(&g.file));
        out.push_str("</td><td class=\"l\"><code>");
        escape(out, &g.func);
        let _ = write!(
            out,
            "</code></td><td class=\"l\">{}</td><td class=\"l\"><code>",
            g.change.as_str()
        );
        escape(out, g.build.get(..12).unwrap_or(&g.build));
        let _ = writeln!(
            out,
            "</code></td><td data-v=\"{s}\">{s}</td><td data-v=\"{c}\">{c}</td></tr>",
            s = g.stmts,
            c = g.stmts_covered
        );
    }
    out.push_str("</tbody>\n</table>\n");
}

/// `text`, the source of `file`, as `go tool cover -html` shows it: each block's text marked
/// covered (`c1`) or not (`c0`), with its count as the title, and the lines numbered. Line
/// `n` has the id `{id}{n}` so that a function's line can be linked to.
///
/// Blocks are cut by `go tool cover`'s rules and do not overlap (a coverage is always of one
/// build's blocks); should they overlap anyway, the block that started last wins until it
/// ends. Block positions are 1-based lines and byte columns; a column past its line's
/// end is taken as the end.
pub fn annotate(out: &mut String, file: &FileCov, text: &str, id: &str) {
    // Events per line, in position order: (column, is start, count). Ends sort before starts
    // at the same column, so adjacent blocks do not nest.
    let mut events: BTreeMap<u32, Vec<(u32, bool, Mark)>> = BTreeMap::new();
    // An empty block (Go 1.27 gives a body without code one) marks no text.
    for b in file.blocks.iter().filter(|b| b.start != b.end) {
        events
            .entry(b.start.line)
            .or_default()
            .push((b.start.col, true, Mark(b.count, b.origin)));
        events
            .entry(b.end.line)
            .or_default()
            .push((b.end.col, false, Mark(b.count, b.origin)));
    }
    for list in events.values_mut() {
        list.sort_by_key(|&(col, start, _)| (col, start));
    }
    let mut open: Vec<Mark> = Vec::new();
    out.push_str("<pre class=\"src\">");
    for (n, line) in (1u32..).zip(text.split_inclusive('\n')) {
        let line = line.strip_suffix('\n').unwrap_or(line);
        let line = line.strip_suffix('\r').unwrap_or(line);
        let _ = write!(
            out,
            "<span class=\"ln\" id=\"{id}{n}\" data-n=\"{n}\"></span>"
        );
        span(out, open.last().copied());
        let mut at = 0usize;
        for &(col, start, mark) in events.get(&n).map_or(&[][..], Vec::as_slice) {
            let to = (col as usize).saturating_sub(1).min(line.len());
            let to = floor_char_boundary(line, to.max(at));
            escape(out, &line[at..to]);
            at = to;
            if open.last().is_some() {
                out.push_str("</span>");
            }
            if start {
                open.push(mark);
            } else if let Some(i) = open.iter().rposition(|&c| c == mark) {
                open.remove(i);
            }
            span(out, open.last().copied());
        }
        escape(out, &line[at..]);
        if open.last().is_some() {
            out.push_str("</span>");
        }
        out.push('\n');
    }
    out.push_str("</pre>\n");
}

/// A block's count and where its coverage came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Mark(u32, Origin);

/// Opens the span of a block, if inside one: `c1` covered on the reported build, `c2`
/// covered on another build of the same function (carried), `c0` not covered.
fn span(out: &mut String, mark: Option<Mark>) {
    match mark {
        Some(Mark(c, Origin::Carried)) => {
            let _ = write!(
                out,
                "<span class=\"c2\" title=\"{c}, carried from an earlier build\">"
            );
        }
        Some(Mark(c, _)) => {
            let class = if c == 0 { "c0" } else { "c1" };
            let _ = write!(out, "<span class=\"{class}\" title=\"{c}\">");
        }
        None => {}
    }
}

/// The largest char boundary of `s` at or before `i`.
fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The statements and covered cells.
fn counts(out: &mut String, s: Stmts) {
    let _ = write!(
        out,
        "<td data-v=\"{t}\">{t}</td><td data-v=\"{c}\">{c}</td>",
        t = s.total,
        c = s.covered
    );
}

/// The coverage cell: a bar and the percentage; `n/a` (sorted first) without statements.
pub fn cell(out: &mut String, s: Stmts) {
    match s.tenths() {
        None => out.push_str("<td data-v=\"-1\">n/a</td>"),
        Some(t) => {
            let _ = write!(
                out,
                "<td data-v=\"{t}\"><span class=\"bar\"><span style=\"width:{}.{}%\"></span>\
                 </span>",
                t / 10,
                t % 10
            );
            percent(out, s);
            out.push_str("</td>");
        }
    }
}

/// `71.4%`, rounded down; `n/a` without statements.
pub fn percent(out: &mut String, s: Stmts) {
    match s.tenths() {
        None => out.push_str("n/a"),
        Some(t) => {
            let _ = write!(out, "{}.{}%", t / 10, t % 10);
        }
    }
}

/// `s` as HTML text or attribute value.
pub fn escape(out: &mut String, s: &str) {
    let mut rest = s;
    while let Some(i) = rest.find(['&', '<', '>', '"', '\'']) {
        out.push_str(&rest[..i]);
        out.push_str(match rest.as_bytes()[i] {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            _ => "&#39;",
        });
        rest = &rest[i + 1..];
    }
    out.push_str(rest);
}

#[cfg(test)]
mod tests {
    use instrumenter::{Block, BuildMeta, FileMeta, Func, Mode, Pos};

    use super::*;
    use crate::coverage::tests::sample;

    const HEADER: Header<'static> = Header {
        service: "svc <&> \"q\"",
        label: Some("round 'one'"),
        notes: &[],
    };

    /// One file named with markup, its one function too.
    fn hostile() -> Coverage {
        let meta = BuildMeta {
            mode: Mode::Set,
            files: vec![FileMeta {
                name: "ex.com/<script>alert(1)</script>&amp;.go".into(),
                blocks: vec![Block {
                    start: Pos { line: 4, col: 1 },
                    end: Pos { line: 6, col: 2 },
                    num_stmt: 3,
                    func: 0,
                }],
                funcs: vec![Func {
                    name: "(*T[<\"x\">]).M&'".into(),
                    hash: [0; 32],
                }],
            }],
        };
        Coverage::of_build(2, 0, &meta, &[1u32])
    }

    #[test]
    fn escapes_names() {
        let html = write(&hostile(), &HEADER, &Options::default(), Sources::None);
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(!html.contains("&amp;.go"), "{html}");
        assert!(
            html.contains("ex.com/&lt;script&gt;alert(1)&lt;/script&gt;&amp;amp;.go"),
            "{html}"
        );
        assert!(
            html.contains("<code>(*T[&lt;&quot;x&quot;&gt;]).M&amp;&#39;</code>"),
            "{html}"
        );
        assert!(html.contains("svc &lt;&amp;&gt; &quot;q&quot;"), "{html}");
        assert!(html.contains("round &#39;one&#39;"), "{html}");
        // The only script element is the page's own.
        assert_eq!(html.matches("<script").count(), 1, "{html}");
        let mut s = String::new();
        escape(&mut s, "plain, é, <a href=\"x\">&</a>");
        assert_eq!(s, "plain, é, &lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;");
    }

    #[test]
    fn totals_and_percentages() {
        let options = Options {
            strip: Some("example.com/m/".into()),
            source: None,
        };
        let html = write(&sample(), &Header::default(), &options, Sources::None);
        assert!(html.starts_with("<!DOCTYPE html>\n"), "{html}");
        assert!(html.ends_with("</html>\n"), "{html}");
        assert!(html.contains("<dt>Snapshot</dt><dd>7</dd>"), "{html}");
        assert!(html.contains("<dt>Label</dt><dd>none</dd>"), "{html}");
        assert!(html.contains("<dd>2025-11-24T16:00:00.123Z</dd>"), "{html}");
        assert!(html.contains("<dd>5 of 7 covered (71.4%)</dd>"), "{html}");
        // Files sorted by the name shown, with their rows.
        let (b, d) = (
            html.find("<a href=\"#f0\">a/b.go</a>").unwrap(),
            html.find("<a href=\"#f1\">a/c/d.go</a>").unwrap(),
        );
        assert!(b < d);
        assert!(
            html.contains(
                "a/b.go</a></td><td data-v=\"5\">5</td><td data-v=\"3\">3</td>\
                 <td data-v=\"600\"><span class=\"bar\"><span style=\"width:60.0%\"></span>\
                 </span>60.0%</td></tr>"
            ),
            "{html}"
        );
        assert!(html.contains(">100.0%</td></tr>"), "{html}");
        assert!(
            html.contains("<td class=\"l\">Total</td><td data-v=\"7\">7</td>"),
            "{html}"
        );
        // Functions: name, line, statements, covered, coverage, entry count.
        assert!(
            html.contains(
                "<code>F</code></td><td data-v=\"3\">3</td><td data-v=\"4\">4</td>\
                 <td data-v=\"3\">3</td><td data-v=\"750\">"
            ),
            "{html}"
        );
        assert!(
            html.contains("75.0%</td><td data-v=\"3\">3</td></tr>"),
            "{html}"
        );
        assert!(
            html.contains("0.0%</td><td class=\"z\" data-v=\"0\">0</td></tr>"),
            "{html}"
        );
        assert!(html.contains("<code>G &amp; &lt;x&gt;</code>"), "{html}");
        assert_eq!(html.matches("<table").count(), 3);
        assert!(!html.contains("http://") && !html.contains("https://"));
    }

    #[test]
    fn no_statements_no_division() {
        let meta = BuildMeta {
            mode: Mode::Count,
            files: vec![FileMeta {
                name: "m/empty.go".into(),
                blocks: vec![Block {
                    start: Pos { line: 1, col: 1 },
                    end: Pos { line: 1, col: 2 },
                    num_stmt: 0,
                    func: 0,
                }],
                funcs: vec![Func {
                    name: "Empty".into(),
                    hash: [0; 32],
                }],
            }],
        };
        let cov = Coverage::of_build(1, 0, &meta, &[0u32]);
        let html = write(&cov, &HEADER, &Options::default(), Sources::None);
        assert!(html.contains("<dd>0 of 0 covered (n/a)</dd>"), "{html}");
        assert!(html.contains("<td data-v=\"-1\">n/a</td>"), "{html}");
        let empty = Coverage {
            snapshot: 1,
            taken_at: 0,
            files: Vec::new(),
            gone: Vec::new(),
            builds: 1,
        };
        let html = write(&empty, &HEADER, &Options::default(), Sources::None);
        assert!(html.contains("(n/a)"), "{html}");
        assert_eq!(html.matches("<table").count(), 1);
    }

    #[test]
    fn xmllint_parses_it() {
        let ok = std::process::Command::new("xmllint")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            eprintln!("xmllint is not on PATH: not checking that the HTML parses");
            return;
        }
        for (name, cov) in [("sample", sample()), ("hostile", hostile())] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("report.html");
            std::fs::write(
                &path,
                write(&cov, &HEADER, &Options::default(), Sources::None),
            )
            .unwrap();
            let out = std::process::Command::new("xmllint")
                .args(["--html", "--noout"])
                .arg(&path)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success() && stderr.trim().is_empty(),
                "{name}: xmllint: {stderr}"
            );
        }
    }

    #[test]
    fn annotated_source() {
        let blk = |l0, c0, l1, c1| Block {
            start: Pos { line: l0, col: c0 },
            end: Pos { line: l1, col: c1 },
            num_stmt: 1,
            func: 0,
        };
        let meta = BuildMeta {
            mode: Mode::Count,
            files: vec![FileMeta {
                name: "m/x.go".into(),
                // A block inside a line (after a two-byte character), one over two lines with
                // an end column past its line's end, and one where the other ends.
                blocks: vec![blk(1, 6, 1, 9), blk(2, 1, 3, 40), blk(1, 9, 1, 11)],
                funcs: vec![Func {
                    name: "F".into(),
                    hash: [0; 32],
                }],
            }],
        };
        let cov = Coverage::of_build(1, 0, &meta, &[4u32, 0, 1]);
        let text = "ab\u{e9}cd<e>&f\nxy\r\nzz\nlast";
        let mut out = String::new();
        annotate(&mut out, &cov.files[0], text, "L");
        assert_eq!(
            out,
            "<pre class=\"src\"><span class=\"ln\" id=\"L1\" data-n=\"1\"></span>ab\u{e9}c\
             <span class=\"c1\" title=\"4\">d&lt;e</span><span class=\"c1\" title=\"1\">&gt;&amp;\
             </span>f\n<span class=\"ln\" id=\"L2\" data-n=\"2\"></span><span class=\"c0\" \
             title=\"0\">xy</span>\n<span class=\"ln\" id=\"L3\" data-n=\"3\"></span><span \
             class=\"c0\" title=\"0\">zz</span>\n<span class=\"ln\" id=\"L4\" data-n=\"4\">\
             </span>last\n</pre>\n"
        );
        // Inline in the standalone page, after the file's functions.
        let source = |name: &str| (name == "m/x.go").then_some(text);
        let html = write(&cov, &HEADER, &Options::default(), Sources::Inline(&source));
        assert!(html.contains("id=\"f0L2\""), "{html}");
        assert!(
            html.contains("<td class=\"l\"><a href=\"#f0L1\"><code>F</code></a></td>"),
            "{html}"
        );
        assert!(html.find("<table class=\"funcs\">").unwrap() < html.find("<pre").unwrap());
    }

    #[test]
    fn large_snapshot() {
        // 1,000 files of 100 blocks in 10 functions: 100,000 blocks.
        let files = (0..1000)
            .map(|f| FileMeta {
                name: format!("example.com/big/pkg{}/file{f}.go", f / 10),
                blocks: (0..100)
                    .map(|b| Block {
                        start: Pos {
                            line: 10 + 3 * b,
                            col: 2,
                        },
                        end: Pos {
                            line: 12 + 3 * b,
                            col: 3,
                        },
                        num_stmt: 2,
                        func: b / 10,
                    })
                    .collect(),
                funcs: (0..10)
                    .map(|i| Func {
                        name: format!("F{i}"),
                        hash: [0; 32],
                    })
                    .collect(),
            })
            .collect();
        let meta = BuildMeta {
            mode: Mode::Count,
            files,
        };
        let counts: Vec<u32> = (0..100_000).map(|i| i % 3).collect();
        let cov = Coverage::of_build(1, 0, &meta, &counts);
        let html = write(&cov, &Header::default(), &Options::default(), Sources::None);
        assert_eq!(html.matches("<tr><td class=\"l\"><code>").count(), 10_000);
    }
}
