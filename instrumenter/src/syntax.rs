//! Parsing Go source with tree-sitter-go, and refusing what `go/parser` would refuse.
//!
//! tree-sitter never fails: it returns a tree with `ERROR` and `MISSING` nodes in it. The
//! instrumenter must not guess at broken code, so any such node is turned into a
//! [`SyntaxError`] pointing at the first place that is wrong. A few things that tree-sitter-go
//! accepts on purpose but a Go compiler does not (top-level statements, a missing package
//! clause) are refused here too.

use tree_sitter::{Node, Parser, Tree};

/// The UTF-8 byte order mark. `go/scanner` skips it at the start of a file and refuses it
/// anywhere else.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// A place in the source that does not parse, in the terms `go build` would use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in bytes.
    pub column: usize,
    /// What is wrong there.
    pub message: String,
}

/// Parses Go source. A leading byte order mark is accepted (it keeps its three bytes in the
/// column count of line 1, as in `go/token`). `generic_methods`: the language has methods
/// with type parameters (Go 1.27 on); before that `go/parser` refuses them, and so does this.
pub fn parse(src: &[u8], generic_methods: bool) -> Result<Tree, SyntaxError> {
    let mut parser = Parser::new();
    parser
        .set_language(&tree_sitter_go::LANGUAGE.into())
        .expect("tree-sitter-go is ABI-compatible with the linked tree-sitter");
    // tree-sitter-go does not know the BOM: hide it behind spaces so byte offsets stay put.
    let mut buf = match src.strip_prefix(BOM) {
        Some(rest) => [b"   ".as_slice(), rest].concat(),
        None => src.to_vec(),
    };
    let first = parse_with(&mut parser, &buf);
    let first_err = match check(&first, src) {
        Ok(()) => return Ok(first),
        Err(e) => e,
    };
    // Two more gaps, bridged the same way: text respelled at the same offsets, a new parse.
    // A comment spanning lines ends a statement in Go (the scanner takes it for a newline), but
    // tree-sitter-go sees no newline there: make those comments white space with their line
    // breaks. And the grammar has no type parameters on methods (Go 1.27): blocks do not depend
    // on them and all text is read from the original source, so blank the lists out.
    let comments = blank_multiline_comments(&mut buf);
    let methods = generic_methods && blank_method_type_params(&mut buf);
    if comments || methods {
        let tree = parse_with(&mut parser, &buf);
        if check(&tree, src).is_ok() {
            return Ok(tree);
        }
    }
    // Go 1.26 lets `new` take an expression (`new(42)`), which tree-sitter-go's grammar, with
    // `new` as a keyword that takes a type, cannot parse. Where a parse fails after a `new(`,
    // spell that `new` as an ordinary identifier of the same length and try again: blocks only
    // depend on statement structure, and all text is read from the original source.
    let mut err_at = first_error(first.root_node()).map(|n| n.end_byte());
    for _ in 0..MAX_NEW_RETRIES {
        let Some(at) = err_at else { break };
        let Some(kw) = last_new_call_before(&buf, at) else {
            break;
        };
        buf[kw..kw + 3].copy_from_slice(b"n3w");
        let tree = parse_with(&mut parser, &buf);
        if check(&tree, src).is_ok() {
            return Ok(tree);
        }
        err_at = first_error(tree.root_node()).map(|n| n.end_byte());
    }
    Err(first_err)
}

/// Turns every `/* */` comment of `buf` that spans lines into spaces and its line breaks;
/// answers whether there was one.
fn blank_multiline_comments(buf: &mut [u8]) -> bool {
    use crate::scan::{Kind, tokens};
    let spans: Vec<_> = tokens(buf)
        .filter(|t| t.kind == Kind::Comment && buf[t.start + 1] == b'*')
        .filter(|t| buf[t.start..t.end].contains(&b'\n'))
        .map(|t| t.start..t.end)
        .collect();
    for span in &spans {
        blank(&mut buf[span.clone()]);
    }
    !spans.is_empty()
}

/// Spaces for every byte of `text` but line breaks.
fn blank(text: &mut [u8]) {
    for b in text {
        if !matches!(*b, b'\n' | b'\r') {
            *b = b' ';
        }
    }
}

/// Replaces the `[…]` in every `func (receiver) Name[…]` of `buf` with spaces (newlines kept);
/// answers whether there was one. A name after a receiver makes it a method declaration, so
/// nothing else has that shape.
fn blank_method_type_params(buf: &mut [u8]) -> bool {
    use crate::scan::{Kind, tokens};
    let toks: Vec<_> = tokens(buf).filter(|t| t.kind != Kind::Comment).collect();
    let is = |i: usize, k: Kind| toks.get(i).is_some_and(|t| t.kind == k);
    // The index of the token that closes the bracket opened at `open`.
    let close = |open: usize, (l, r): (u8, u8)| {
        let mut depth = 0usize;
        for (j, t) in toks.iter().enumerate().skip(open) {
            match t.kind {
                Kind::Punct(b) if b == l => depth += 1,
                Kind::Punct(b) if b == r => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(j);
                    }
                }
                _ => {}
            }
        }
        None
    };
    let mut spans = Vec::new();
    for (i, t) in toks.iter().enumerate() {
        if t.kind != Kind::Word || &buf[t.start..t.end] != b"func" || !is(i + 1, Kind::Punct(b'('))
        {
            continue;
        }
        let Some(rparen) = close(i + 1, (b'(', b')')) else {
            continue;
        };
        if is(rparen + 1, Kind::Word)
            && is(rparen + 2, Kind::Punct(b'['))
            && let Some(rbrack) = close(rparen + 2, (b'[', b']'))
        {
            spans.push(toks[rparen + 2].start..toks[rbrack].end);
        }
    }
    for span in &spans {
        blank(&mut buf[span.clone()]);
    }
    !spans.is_empty()
}

/// How many `new(expr)` calls one failed parse may repair; each costs a reparse.
const MAX_NEW_RETRIES: usize = 64;

fn parse_with(parser: &mut Parser, buf: &[u8]) -> Tree {
    parser
        .parse(buf, None)
        .expect("parsing without a timeout or cancellation flag always returns a tree")
}

/// The offset of the last word `new` followed by `(` that starts before `limit` (the end of
/// the first bad node: tree-sitter may wrap the whole call in it).
fn last_new_call_before(buf: &[u8], limit: usize) -> Option<usize> {
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80;
    (0..limit.min(buf.len())).rev().find(|&i| {
        buf[i..].starts_with(b"new")
            && (i == 0 || !is_ident(buf[i - 1]))
            && buf[i + 3..]
                .iter()
                .find(|b| !b.is_ascii_whitespace())
                .is_some_and(|&b| b == b'(')
    })
}

fn check(tree: &Tree, src: &[u8]) -> Result<(), SyntaxError> {
    let root = tree.root_node();
    if root.has_error()
        && let Some(bad) = first_error(root)
    {
        let message = if bad.is_missing() {
            format!("syntax error: missing {}", describe_kind(bad.kind()))
        } else {
            let text = snippet(src, bad);
            if text.is_empty() {
                "syntax error".to_string()
            } else {
                format!("syntax error near {text:?}")
            }
        };
        return Err(at(src, bad.start_byte(), message));
    }
    if let Some(pos) = find_bom(src) {
        return Err(at(src, pos, "illegal byte order mark".to_string()));
    }
    let mut cursor = root.walk();
    let mut seen_package = false;
    for child in root.named_children(&mut cursor) {
        match child.kind() {
            "comment" => {}
            "package_clause" if !seen_package => seen_package = true,
            "package_clause" => {
                return Err(at(
                    src,
                    child.start_byte(),
                    "unexpected second package clause".into(),
                ));
            }
            _ if !seen_package => {
                return Err(at(src, child.start_byte(), "expected 'package'".into()));
            }
            "import_declaration"
            | "function_declaration"
            | "method_declaration"
            | "const_declaration"
            | "type_declaration"
            | "var_declaration" => {}
            _ => {
                return Err(at(
                    src,
                    child.start_byte(),
                    "non-declaration statement outside function body".into(),
                ));
            }
        }
    }
    if !seen_package {
        return Err(at(src, src.len(), "expected 'package'".into()));
    }
    Ok(())
}

/// The first ERROR or MISSING node in source order.
fn first_error(node: Node) -> Option<Node> {
    if node.is_error() || node.is_missing() {
        return Some(node);
    }
    let mut cursor = node.walk();
    for child in node.children(&mut cursor) {
        if (child.has_error() || child.is_missing())
            && let Some(found) = first_error(child)
        {
            return Some(found);
        }
    }
    None
}

/// A BOM anywhere but at the very start is illegal in Go; tree-sitter takes it for text.
fn find_bom(src: &[u8]) -> Option<usize> {
    src.windows(3)
        .enumerate()
        .skip(1)
        .find(|(_, w)| *w == BOM)
        .map(|(i, _)| i)
}

fn describe_kind(kind: &str) -> String {
    if kind.chars().all(|c| c.is_ascii_punctuation()) {
        format!("{kind:?}")
    } else {
        kind.replace('_', " ")
    }
}

fn snippet(src: &[u8], node: Node) -> String {
    let end = node.end_byte().min(node.start_byte() + 24).min(src.len());
    let text = String::from_utf8_lossy(&src[node.start_byte().min(end)..end]);
    let line = text.lines().next().unwrap_or("").trim();
    line.to_string()
}

fn at(src: &[u8], offset: usize, message: String) -> SyntaxError {
    let offset = offset.min(src.len());
    let line_start = src[..offset]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let line = src[..offset].iter().filter(|&&b| b == b'\n').count() + 1;
    SyntaxError {
        line,
        column: offset - line_start + 1,
        message,
    }
}

/// Text of a node.
pub(crate) fn text<'s>(src: &'s [u8], node: Node) -> &'s [u8] {
    &src[node.start_byte()..node.end_byte()]
}

/// The named children of `node`, without comments.
pub(crate) fn named_children<'t>(node: Node<'t>) -> Vec<Node<'t>> {
    let mut cursor = node.walk();
    node.named_children(&mut cursor)
        .filter(|n| n.kind() != "comment")
        .collect()
}

/// The first anonymous child token of `node` whose kind is `kind` (such as `{`, `:`, `else`).
pub(crate) fn token<'t>(node: Node<'t>, kind: &str) -> Option<Node<'t>> {
    let mut cursor = node.walk();
    node.children(&mut cursor)
        .find(|n| !n.is_named() && n.kind() == kind)
}
